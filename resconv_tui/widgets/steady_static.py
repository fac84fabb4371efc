"""A Static that sends nothing to the terminal when it is given what it shows already.

The runs screen's poll updates the summary above the table, the line under it and the
workers panel every second, mostly with the text already there. ``Static.update``
repaints the widget and lays the whole screen out again all the same, and every layout
also repaints the runs table's scrollbar (Textual's ``ScrollView._size_updated``
compares the table's own virtual size with the compositor's, which always differ, and
refreshes its scrollbars): 2.7 KB a second of an idle dashboard at 160x45, for nothing.
"""

from __future__ import annotations

from rich.text import Text
from textual.visual import VisualType
from textual.widgets import Static


class SteadyStatic(Static):
    """``update`` with the text or ``Text`` shown already does nothing; any other
    renderable (a rich Table has no equality) is drawn again as by Static."""

    def update(self, content: VisualType = "", *, layout: bool = True) -> None:
        if not same_text(content, self.content):
            super().update(content, layout=layout)


def same_text(new: VisualType, old: VisualType) -> bool:
    """Whether ``new`` draws as ``old`` does: equal strings, or Texts equal in their
    characters, spans and whole-text style and layout (Text's own ``==`` compares only
    the characters and spans)."""
    if isinstance(new, str) and isinstance(old, str):
        return new == old
    if isinstance(new, Text) and isinstance(old, Text) and new is not old:  # not mutated since
        return new == old and _looks(new) == _looks(old)
    return False


def _looks(text: Text) -> tuple[object, ...]:
    return text.style, text.justify, text.overflow, text.no_wrap, text.end, text.tab_size
