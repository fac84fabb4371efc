"""A bare App that shows one screen: tests of a single screen need no dashboard."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from textual.app import App
from textual.geometry import Region
from textual.pilot import Pilot
from textual.screen import Screen
from textual.widget import Widget
from textual.worker import WorkerCancelled


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


def region_lines(app: App[Any], region: Region) -> list[str]:
    """What the terminal shows now inside ``region`` (a widget's), one string a line."""
    strips = app.screen._compositor.render_strips()[region.y : region.bottom]
    return [strip.crop(region.x, region.right).text.rstrip() for strip in strips]


def assert_folds_at_separators(parts: list[str], name: str) -> None:
    """``parts``, the lines a name (without spaces) is drawn in, are the whole name, and
    each but the last ends after a separator: no line ends inside a token."""
    assert "".join(parts) == name
    assert all(part[-1] in "_-/" for part in parts[:-1]), parts


async def drawn_in(pilot: Pilot[Any], widget: Widget, text: str, timeout: float = 10.0) -> str:
    """The words ``widget``'s region shows, joined by single spaces, once they are ``text``
    or as they are after ``timeout``: on a loaded machine one pause after a focus move
    sometimes still showed the previous field's hint (CI read "seed: ..." for priority)."""

    def words() -> str:
        return " ".join(" ".join(region_lines(pilot.app, widget.region)).split())

    shown = words()
    for _ in range(int(timeout / 0.05)):
        if shown == text:
            break
        await pilot.pause(0.05)
        shown = words()
    return shown


async def drawn_among(pilot: Pilot[Any], widget: Widget, text: str, timeout: float = 10.0) -> str:
    """The words ``widget``'s region shows, joined by single spaces, once ``text`` is among
    them or as they are after ``timeout``: for a test that then reads the region's lines as
    they are laid out (a column, a fold), which only a drawn frame of the new content has."""

    def words() -> str:
        return " ".join(" ".join(region_lines(pilot.app, widget.region)).split())

    shown = words()
    for _ in range(int(timeout / 0.05)):
        if text in shown:
            break
        await pilot.pause(0.05)
        shown = words()
    return shown


async def drawn(pilot: Pilot[Any], text: str, timeout: float = 10.0) -> str:
    """The screen's text once ``text`` is drawn in it, or as it is after ``timeout``.

    A widget's new content reaches the terminal on a later refresh than the update that
    set it; on a loaded machine one pause was sometimes not enough (CI saw an old preview).
    """
    shown = screen_text(pilot.app)
    for _ in range(int(timeout / 0.05)):
        if text in shown:
            break
        await pilot.pause(0.05)
        shown = screen_text(pilot.app)
    return shown


async def eventually(pilot: Pilot[Any], holds: Callable[[], bool], timeout: float = 10.0) -> bool:
    """Whether ``holds()`` is true within ``timeout``, asked every 0.05 s: for what a later
    layout settles (a scroll into sight once laid out), which one pause did not always
    reach on a loaded machine."""
    for _ in range(int(timeout / 0.05)):
        if holds():
            return True
        await pilot.pause(0.05)
    return holds()


async def settle(pilot: Pilot[Any]) -> None:
    """Wait until every thread worker (polls, writes) has finished and its message drawn."""
    for _ in range(20):
        try:
            await pilot.app.workers.wait_for_complete()
        except WorkerCancelled:
            # An exclusive poll replaced by a newer one (a timer tick, a refresh after a
            # write) ends cancelled by design: wait for the newer one on the next turn.
            await pilot.pause()
            continue
        await pilot.pause()
        if any(w.is_running for w in pilot.app.workers):
            continue
        # A drawn poll can post a follow-up (a removal that waited for the run to stop,
        # then its refresh): give queued messages one more turn before calling it settled.
        await pilot.pause()
        if not any(w.is_running for w in pilot.app.workers):
            return
