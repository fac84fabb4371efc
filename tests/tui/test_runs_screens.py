"""Keys of the runs view that open other screens, the command palette, polling, two dashboards.

The other screens (form, detail, compare) are replaced by recording stand-ins:
these tests check what the runs view passes them, not how they look.
"""

from __future__ import annotations

import sys
import types
from pathlib import Path
from typing import Any

import pytest
from screen_host import drawn, eventually
from textual.screen import Screen

from core.queue import Repo, RunStatus
from resconv_tui.screens.runs import RunsScreen
from resconv_tui.screens.runs_actions import PALETTE
from resconv_tui.widgets.run_table import RunTable

SIZE = (120, 36)


class Recorded(Screen[None]):
    calls: list[tuple[Any, ...]] = []

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__()
        Recorded.calls.append((type(self).__name__, args, kwargs))


@pytest.fixture
def stand_ins(monkeypatch: pytest.MonkeyPatch) -> list[tuple[Any, ...]]:
    Recorded.calls = []
    for module, name in (
        ("new_sweep", "NewSweepScreen"),
        ("run_detail", "RunDetailScreen"),
        ("compare", "CompareScreen"),
    ):
        fake = types.ModuleType(f"resconv_tui.screens.{module}")
        setattr(fake, name, type(name, (Recorded,), {}))
        monkeypatch.setitem(sys.modules, f"resconv_tui.screens.{module}", fake)
    return Recorded.calls


async def goto(pilot: Any, run_id: int) -> None:
    table = pilot.app.screen.query_one(RunTable)
    table.move_cursor(row=table.get_row_index(str(run_id)), animate=False)
    await pilot.pause()


async def test_enter_opens_run_detail(seeded, app_factory, settle, stand_ins, db_url) -> None:
    app = app_factory()
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await goto(pilot, 3)
        settled = app.screen.dashboard.settled
        await pilot.press("enter")
        # With the runs not running as this screen read them: the detail's forecast
        # reads them again only if they changed (10,000 of them took half a second). And
        # the dashboard's memory of beats: its ETA row says "silent" as the table does.
        # And the --db its suggested retry carries, as the dashboard's command line gave it.
        assert settled.signature is not None and settled.runs
        handed = {"settled": settled, "heard": app.ctx.heard, "db_hint": app.ctx.db_hint}
        assert stand_ins == [("RunDetailScreen", (db_url, 3), handed)]


async def test_n_and_d_open_the_form(seeded, app_factory, settle, stand_ins, db_url) -> None:
    app = app_factory()
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await pilot.press("n")
        assert stand_ins[-1] == ("NewSweepScreen", (db_url,), {})
        app.pop_screen()
        await goto(pilot, 2)
        await pilot.press("d")
        name, args, kwargs = stand_ins[-1]
        assert (name, args) == ("NewSweepScreen", (db_url,))
        base = kwargs["base_run"]
        assert (base.id, base.experiment, base.name) == (2, "t1-layers-32", "l-2")


async def test_compare_needs_marks(seeded, app_factory, settle, stand_ins, db_url) -> None:
    app = app_factory()
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await pilot.press("C")
        assert stand_ins == []
        await goto(pilot, 3)
        await pilot.press("space", "C")  # one run: its detail shows its curves (enter)
        assert stand_ins == []
        assert list(app._notifications)[-1].message == (
            "compare needs two runs or more: mark another with space "
            "(enter on run 3 shows it alone)"
        )
        await goto(pilot, 1)
        await pilot.press("space", "C")
        assert stand_ins == [("CompareScreen", (db_url, [1, 3]), {})]
        # One marked run on screen, the others hidden by a filter: they are not compared.
        app.pop_screen()
        await goto(pilot, seeded["failed"])
        await pilot.press("space")
        commands = {c.title: c for c in app.get_system_commands(app.screen)}
        commands["Filter: failed"].callback()
        await pilot.press("C")
        assert len(stand_ins) == 1 and list(app._notifications)[-1].message == (
            "compare needs two runs or more on screen (2 more marked, hidden by the "
            f"filters): mark another with space (enter on run {seeded['failed']} shows it alone)"
        )


async def test_palette_has_every_action(seeded, app_factory, settle, db_url) -> None:
    app = app_factory()
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        commands = {c.title: c for c in app.get_system_commands(app.screen)}
        for title, *_ in PALETTE:
            assert title in commands
        assert "Filter experiment: act-demo" in commands
        await goto(pilot, 7)
        commands["Priority up"].callback()
        await settle(pilot)
        assert Repo.open(db_url).get_run(7).priority == 1
        commands["Filter: failed"].callback()
        assert [r.status for r in app.screen.visible_runs()] == [RunStatus.FAILED]
        # Failed runs by cause: the seeded failure ran out of memory.
        commands["Retry failed runs: out of memory (1)"].callback()
        await settle(pilot)
        assert Repo.open(db_url).get_run(seeded["failed"]).status == RunStatus.QUEUED


async def test_every_screen_s_palette_has_its_way_back(seeded, app_factory, settle) -> None:
    # esc went back from results, a run's detail and compare; the palette had no entry.
    app = app_factory()
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        for key, back in (("R", "Back to runs"), ("enter", "Back")):
            await pilot.press(key)
            await settle(pilot)
            assert not isinstance(app.screen, RunsScreen)
            commands = {c.title: c for c in app.get_system_commands(app.screen)}
            commands[back].callback()
            await settle(pilot)
            assert isinstance(app.screen, RunsScreen), key


async def test_palette_opens_and_runs_a_command(seeded, app_factory, settle) -> None:
    app = app_factory()
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await pilot.press("ctrl+p")
        await pilot.press(*"Filter: queued")
        await settle(pilot)  # the palette searches in a worker of its own
        await pilot.press("enter")
        await settle(pilot)
        assert isinstance(app.screen, RunsScreen)
        assert app.screen.filters.status == RunStatus.QUEUED


async def test_poll_rearms_and_shows_outside_changes(seeded, app_factory, settle, db_url):
    app = app_factory()
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        screen = app.screen
        assert screen._timer is not None  # the next poll is armed after each one
        Repo.open(db_url).set_priority([8], 9)  # another dashboard or the CLI
        screen.refresh_now()
        await settle(pilot)
        assert str(screen.query_one(RunTable).get_cell("8", "priority")) == "9"


async def test_two_dashboards_side_by_side(seeded, app_factory, settle, db_url) -> None:
    first, second = app_factory(), app_factory()
    async with first.run_test(size=SIZE) as one, second.run_test(size=SIZE) as two:
        await settle(one)
        await settle(two)
        await goto(one, 7)
        await one.press("c")
        await settle(one)
        second.screen.refresh_now()
        await settle(two)
        table = second.screen.query_one(RunTable)
        assert str(table.get_cell("7", "status")) == "cancelled"
        assert Repo.open(db_url).get_run(7).status == RunStatus.CANCELLED


async def test_columns_grow_when_a_cell_gets_longer(app_factory, settle, db_url) -> None:
    """Cells are patched in place: "queued" -> "cancelled" must not be shown as "cancel"."""
    from core.queue import NewRun
    from core.sweep import expand_sweep_text

    repo = Repo.open(db_url)
    runs = expand_sweep_text("name: x\nlayers: 2\nmatrix:\n  act: [gelu, relu]\n")
    repo.enqueue([NewRun.from_expanded(r) for r in runs])
    app = app_factory()
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        table = app.screen.query_one(RunTable)
        width = {c.key.value: c.content_width for c in table.ordered_columns}
        assert width["status"] == len("queued")
        repo.request_cancel([1])
        repo.set_priority([2], 123456789)
        app.screen.refresh_now()
        await settle(pilot)
        assert str(table.get_cell("1", "status")) == "cancelled"
        width = {c.key.value: c.content_width for c in table.ordered_columns}
        assert width["status"] >= len("cancelled")
        assert width["priority"] >= len("123456789")


async def test_a_paint_between_a_rebuild_and_its_measure_is_drawn_again(
    seeded, app_factory, settle
) -> None:
    """A rebuild makes the columns anew at their labels' widths and measures the rows on
    idle. A paint that came first (a busy machine, a screen popped) drew "succee" under
    "status"; the measure gave the table its old size again, so nothing was drawn anew
    and every row not patched since kept the cut cells until a resize (seen at 80 cols)."""
    app = app_factory()
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        table = app.screen.query_one(RunTable)
        assert "succeeded" in await drawn(pilot, "succeeded")
        settled = app.export_screenshot()
        assert "succeeded" in settled
        table.clear(columns=True)
        table._add_columns()
        table._rebuild(dict(table._shown))
        app.export_screenshot()  # the paint that comes before the table's idle measure
        await settle(pilot)
        # Drawn again once measured, on idle (a later refresh): cut cells stayed for good.
        assert await eventually(pilot, lambda: app.export_screenshot() == settled)


async def test_the_first_frame_with_runs_has_the_columns_measured(
    seeded, app_factory, settle
) -> None:
    """DataTable measures new rows on its idle, which comes only after the table's next
    message: the screen painted first, so at 80x24 the first frame of the runs showed
    each column at its label's width ("succee", "3,17", "3m0") for about half a second."""
    from screen_host import screen_text

    app = app_factory()
    frames: list[str] = []  # the runs screen as each paint sent it to the terminal
    display = app._display

    def recorded(screen: Screen[Any], renderable: Any) -> None:
        if renderable is not None and isinstance(screen, RunsScreen):
            frames.append(screen_text(app))
        display(screen, renderable)

    app._display = recorded  # type: ignore[method-assign]
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        assert "succeeded" in await drawn(pilot, "succeeded")
    with_runs = [frame for frame in frames if " l-1 " in frame]
    assert with_runs, frames
    rows = [line for line in with_runs[0].splitlines() if " l-1 " in line or " l-5 " in line]
    assert "succeeded" in rows[0] and "3,172" in rows[0], rows  # run 1's status and rate
    assert "3m02s" in rows[1], rows  # the running run's ETA


async def test_the_palette_screenshot_is_saved_beside_the_exports_and_named(
    seeded, app_factory, settle, tmp_path
) -> None:
    # Textual's default folder, ~/Downloads, is missing on most servers: it said only
    # "Failed to save screenshot".
    app = app_factory()
    async with app.run_test(size=(100, 30)) as pilot:
        await settle(pilot)
        saved = app.deliver_screenshot()
        assert saved is not None and Path(saved).parent == tmp_path
        assert Path(saved).read_text().startswith("<svg")
        await pilot.pause()
        assert f"screenshot saved: {saved}" in [n.message for n in app._notifications]
        blocked = tmp_path / "a-file"
        blocked.write_text("")
        assert app.deliver_screenshot(path=str(blocked / "sub")) is None
        await pilot.pause()
        assert any(n.message.startswith(f"screenshot not saved in {blocked / 'sub'}: ")
                   for n in app._notifications)  # fmt: skip


async def test_keys_typed_while_the_dashboard_starts_never_reach_the_hidden_filter(
    seeded, app_factory, settle, monkeypatch
) -> None:
    """The hidden filter field came first in the screen, so Textual's auto-focus gave it
    the focus as the screen was composed, before ``on_mount`` moved it to the table: on a
    busy machine a key pressed in the dashboard's first seconds (``q``, ``R``, ``?``) was
    typed into the filter (``16 runs (0 shown) · text="q"``) instead of acting."""
    focused: list[str | None] = []
    set_focus = Screen.set_focus

    def recording(self: Screen[Any], widget: Any, *args: Any, **kwargs: Any) -> None:
        if isinstance(self, RunsScreen) and widget is not None:
            focused.append(widget.id)
        set_focus(self, widget, *args, **kwargs)

    monkeypatch.setattr(Screen, "set_focus", recording)
    app = app_factory()
    async with app.run_test(size=(120, 36)) as pilot:
        await settle(pilot)
        assert focused and "runs-search" not in focused, focused
        assert app.focused is not None and app.focused.id == "runs-table"
        await pilot.press("R")  # the first key acts: the results screen, no filter
        await settle(pilot)
        assert type(app.screen).__name__ == "ResultsScreen"
