"""A bare App that shows one screen: tests of a single screen need no dashboard."""

from __future__ import annotations

from typing import Any

from textual.app import App
from textual.screen import Screen


class ScreenHost(App[None]):
    """Pushes ``screen`` on mount and keeps what it dismissed with in ``result``."""

    def __init__(self, screen: Screen[Any]) -> None:
        super().__init__()
        self.hosted = screen
        self.result: Any = "not dismissed"

    def on_mount(self) -> None:
        self.push_screen(self.hosted, self._dismissed)

    def _dismissed(self, result: Any) -> None:
        self.result = result


def screen_text(app: App[Any]) -> str:
    """What the terminal shows now, as plain text (for asserting on drawn content)."""
    strips = app.screen._compositor.render_strips()
    return "\n".join(strip.text.rstrip() for strip in strips)
