"""Whether a screen is on view, for the screens that poll only while they are."""

from __future__ import annotations

from typing import Any

from textual.screen import Screen


def on_view(screen: Screen[Any]) -> bool:
    """True when ``screen`` is the top screen, or lies under dialogs only (a
    ``ModalScreen``'s translucent background lets it show through).

    Not Textual's ``Screen.is_current``: that also holds for the screen right under a
    full, opaque screen (Textual counts it as a background that might show through).
    The runs screen under a run's detail then went on polling every second, and each of
    its repaints made the detail screen repaint the whole terminal, three times a second.
    """
    stack = screen.app.screen_stack
    if screen not in stack:
        return False
    above = stack[stack.index(screen) + 1 :]
    return all(other.styles.background.a < 1 for other in above)
