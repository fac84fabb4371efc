"""A dashboard left open for hours: a covered screen must not keep polling and repainting.

Textual's ``Screen.is_current`` also holds for the screen right under a full screen, so
the runs screen under a run's detail (or the results screen under one) polled every
second, and each repaint of it made the top screen repaint the whole terminal: about
55 KB a second over SSH on a 160x45 detail screen, against 5 KB with it stopped.
"""

from __future__ import annotations

from typing import Any

import pytest
from conftest import LOCAL_HOST, NOW, frozen_repo_time
from rich.text import Text
from textual.geometry import Region
from textual.screen import Screen
from textual.widget import Widget
from textual.widgets import Static

import resconv_tui.polling as polling
import resconv_tui.screens.results as results_module
import resconv_tui.screens.runs as runs_module
from core.queue import Repo
from resconv_tui.app import make_app
from resconv_tui.screens.results import ResultsScreen
from resconv_tui.screens.runs import RunsScreen
from resconv_tui.widgets.run_table import RunTable
from resconv_tui.widgets.steady_static import same_text

SIZE = (120, 36)
TICK_S = 0.05


async def polled_twice(pilot: Any, counted: dict[str, int], screen: str) -> None:
    """Wait until ``screen`` has polled twice more, at its tick of TICK_S; within 100
    ticks. Ten ticks failed once under a full CI run on 2 cores, where a poll of the
    results took longer than a tick."""
    for _ in range(100):
        if counted[screen] >= 2:
            return
        await pilot.pause(TICK_S)
    assert counted[screen] >= 2, f"{screen} polled {counted[screen]} times in 100 ticks"


class Covering(Screen[None]):
    """A full screen on top, as the run detail, compare and form screens are."""


class Repaints:
    """Within ``with``: which widgets asked for a repaint, which for a layout of the
    screen, and how often ``table``'s vertical scrollbar was repainted."""

    def __init__(self, table: RunTable) -> None:
        self.table = table
        self.widgets: list[Widget] = []
        self.layouts: list[str] = []
        self.scrollbar = 0
        self.refresh = Widget.refresh

    def __enter__(self) -> Repaints:
        refresh, spied = self.refresh, self

        def spy(widget: Widget, *regions: Region, **kwargs: Any) -> Any:
            spied.widgets.append(widget)
            if kwargs.get("layout"):
                spied.layouts.append(f"{type(widget).__name__}#{widget.id}")
            if widget is spied.table.vertical_scrollbar:
                spied.scrollbar += 1
            return refresh(widget, *regions, **kwargs)

        Widget.refresh = spy  # type: ignore[method-assign,assignment]
        return self

    def __exit__(self, *_: object) -> None:
        Widget.refresh = self.refresh  # type: ignore[method-assign]


@pytest.fixture
def counted(monkeypatch: pytest.MonkeyPatch) -> dict[str, int]:
    """How many times the runs and the results screens read the database."""
    counts = {"runs": 0, "results": 0}

    def runs_read(*args: Any, **kwargs: Any) -> Any:
        counts["runs"] += 1
        return polling.read_dashboard(*args, **kwargs)

    def results_read(*args: Any, **kwargs: Any) -> Any:
        counts["results"] += 1
        return polling.read_runs(*args, **kwargs)

    monkeypatch.setattr(runs_module, "read_dashboard", runs_read)
    monkeypatch.setattr(results_module, "read_runs", results_read)
    return counts


async def test_runs_screen_under_a_full_screen_stops_polling(
    seeded: dict[str, Any], db_url: str, settle: Any, counted: dict[str, int]
) -> None:
    app = make_app(db_url, poll_interval_s=TICK_S)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        runs = app.screen
        assert isinstance(runs, RunsScreen)
        await app.push_screen(Covering())
        await pilot.pause(3 * TICK_S)  # a poll already armed may still come
        counted["runs"] = 0
        await pilot.pause(20 * TICK_S)
        assert counted["runs"] == 0
        app.pop_screen()  # back: polls again at once, and on
        await polled_twice(pilot, counted, "runs")


async def test_results_screen_under_a_full_screen_stops_polling(
    seeded: dict[str, Any], db_url: str, settle: Any, counted: dict[str, int]
) -> None:
    app = make_app(db_url, poll_interval_s=TICK_S)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await pilot.press("R")
        await settle(pilot)
        assert isinstance(app.screen, ResultsScreen)
        await app.push_screen(Covering())
        await pilot.pause(5 * TICK_S)
        counted["results"] = 0
        await pilot.pause(20 * TICK_S)
        assert counted["results"] == 0
        app.pop_screen()
        await polled_twice(pilot, counted, "results")


async def test_a_training_run_repaints_its_row_only(
    seeded: dict[str, Any], app_factory: Any, settle: Any, db_url: str
) -> None:
    """Each poll the running run's progress, rate and ETA change: its row is drawn
    again, not the whole table (every visible row, each second, over SSH)."""
    app = app_factory()
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        screen = app.screen
        assert isinstance(screen, RunsScreen)
        table = screen.query_one(RunTable)
        running = str(seeded["running"])
        before = str(table.get_cell(running, "progress"))
        calls: list[tuple[Region, ...]] = []
        original = RunTable.refresh

        def spy(self: RunTable, *regions: Region, **kwargs: Any) -> Any:
            # A repaint that happens, not one the table holds back.
            if not getattr(self, "_quiet", False):
                calls.append(regions)
            return original(self, *regions, **kwargs)

        with frozen_repo_time(NOW):
            repo = Repo.open(db_url)
            worker = next(w.id for w in repo.list_workers() if w.host == "gpu-box")
            repo.heartbeat(worker, run_id=seeded["running"], inputs_done=120_000)
            repo.close()
        RunTable.refresh = spy  # type: ignore[method-assign]
        try:
            screen.refresh_now()
            await settle(pilot)
        finally:
            RunTable.refresh = original  # type: ignore[method-assign]
        assert str(table.get_cell(running, "progress")) != before  # drawn: 67%, not 50%
        assert calls, "the changed row was not repainted"
        assert all(regions for regions in calls), "the whole table was repainted"
        assert {region.height for regions in calls for region in regions} == {1}


async def test_an_idle_poll_sends_nothing_to_the_terminal(
    seeded: dict[str, Any], app_factory: Any, settle: Any
) -> None:
    """A poll that finds what is on screen draws nothing: the summary, the line under the
    table and the workers panel were updated with their own text, which laid the screen
    out again, and each layout also repainted the table's scrollbar (2.7 KB a second of
    an idle dashboard at 160x45)."""
    app = app_factory()
    async with app.run_test(size=(120, 12)) as pilot:  # low: the table scrolls
        await settle(pilot)
        screen = app.screen
        assert isinstance(screen, RunsScreen)
        table = screen.query_one(RunTable)
        assert table.show_vertical_scrollbar
        screen.refresh_now()  # the first poll had no run highlighted: this one reads its losses
        await settle(pilot)
        with Repaints(table) as repaints:
            for _ in range(2):
                screen.refresh_now()
                await settle(pilot)
        assert repaints.layouts == [] and repaints.scrollbar == 0
        await pilot.press("space")  # a mark: the summary says so (drawn, not held back)
        await settle(pilot)
        assert "1 marked" in str(screen.query_one("#runs-summary", Static).content)


def test_same_text_compares_what_a_text_draws() -> None:
    assert same_text("a", "a") and not same_text("a", "b")
    assert same_text(Text("a", style="red"), Text("a", style="red"))
    assert not same_text(Text("a", style="red"), Text("a", style="green"))  # Text's == is True
    assert not same_text(Text.assemble(("a", "bold")), Text("a"))
    shown = Text("a")
    assert not same_text(shown, shown)  # the same object may have been changed since


async def test_a_heartbeat_ageing_repaints_the_workers_panel_alone(
    seeded: dict[str, Any], db_url: str, launcher: Any, tmp_path: Any, settle: Any
) -> None:
    """While a worker lives its panel line changes every second ("beat 3 s ago"): new
    digits on the same lines, which laid the whole screen out again, and so repainted the
    table's scrollbar (1.2 KB a second at 160x45). A line more still makes room for it."""
    from resconv_tui.widgets.workers_panel import WorkersPanel

    now = [NOW]
    app = make_app(
        db_url, clock=lambda: now[0], launcher=launcher, poll_interval_s=3600,
        export_dir=tmp_path, hostname=LOCAL_HOST,
    )  # fmt: skip
    async with app.run_test(size=(120, 12)) as pilot:  # low: the table scrolls
        await settle(pilot)
        screen = app.screen
        assert isinstance(screen, RunsScreen)
        table, panel = screen.query_one(RunTable), screen.query_one(WorkersPanel)
        assert table.show_vertical_scrollbar
        shown = str(panel.content)
        with Repaints(table) as repaints:
            now[0] += 7  # every heartbeat 7 s older
            screen.refresh_now()
            await settle(pilot)
        assert str(panel.content) != shown and panel in repaints.widgets  # new ages, drawn
        assert repaints.layouts == [] and repaints.scrollbar == 0
        lines = panel.size.height
        repo = Repo.open(db_url)
        with frozen_repo_time(now[0]):
            repo.register_worker("another-box", 4444, "cuda:1")
        repo.close()
        screen.refresh_now()
        await settle(pilot)
        assert panel.size.height == lines + 1  # a line more: laid out again, room made
