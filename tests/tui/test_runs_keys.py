"""Every key of the runs view: press it, then check the widgets AND the database rows."""

from __future__ import annotations

from typing import Any

from core.queue import Repo, RunStatus
from resconv_tui.screens.confirm import ConfirmScreen
from resconv_tui.screens.runs import RunsScreen
from resconv_tui.widgets.run_table import RunTable
from resconv_tui.widgets.workers_panel import WorkersPanel

SIZE = (120, 36)


def table(app: Any) -> RunTable:
    return app.screen.query_one(RunTable)


def cell(app: Any, run_id: int, column: str) -> str:
    return str(table(app).get_cell(str(run_id), column))


async def goto(pilot: Any, run_id: int) -> None:
    runs_table = table(pilot.app)
    runs_table.move_cursor(row=runs_table.get_row_index(str(run_id)), animate=False)
    await pilot.pause()


def run(db_url: str, run_id: int) -> Any:
    repo = Repo.open(db_url)
    try:
        return repo.get_run(run_id)
    finally:
        repo.close()


def fresh_heartbeat(db_url: str, run_id: int) -> None:
    """Beat now (real time) so the repo treats the run's worker as alive."""
    repo = Repo.open(db_url)
    repo.heartbeat(repo.get_run(run_id).worker_id, run_id=run_id)
    repo.close()


async def test_opens_on_every_run_with_workers(seeded, app_factory, settle) -> None:
    app = app_factory()
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        assert isinstance(app.screen, RunsScreen)
        assert table(app).row_count == 8
        assert cell(app, seeded["running"], "status") == "running"
        assert "50%" in cell(app, seeded["running"], "progress")
        assert cell(app, 1, "loss") == "0.161000"
        assert len(app.screen.query_one(WorkersPanel).rows) == 2
        summary = str(app.screen.query_one("#runs-summary").render())
        assert "8 runs · 2 queued · 1 running · 3 succeeded · 1 failed · 1 cancelled" in summary


async def test_plus_and_minus_change_priority(seeded, app_factory, settle, db_url) -> None:
    app = app_factory()
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await goto(pilot, 7)
        await pilot.press("plus", "plus")
        await settle(pilot)
        assert run(db_url, 7).priority == 2
        assert cell(app, 7, "priority") == "2"
        await pilot.press("minus")
        await settle(pilot)
        assert run(db_url, 7).priority == 1


async def test_cancel_queued_run_needs_no_confirmation(seeded, app_factory, settle, db_url):
    app = app_factory()
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await goto(pilot, 7)
        await pilot.press("c")
        await settle(pilot)
        assert run(db_url, 7).status == RunStatus.CANCELLED
        assert cell(app, 7, "status") == "cancelled"


async def test_cancel_running_run_asks_first(seeded, app_factory, settle, db_url) -> None:
    running = seeded["running"]
    fresh_heartbeat(db_url, running)
    app = app_factory()
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await goto(pilot, running)
        await pilot.press("c")
        await settle(pilot)
        assert isinstance(app.screen, ConfirmScreen)
        await pilot.press("n")
        await settle(pilot)
        assert isinstance(app.screen, RunsScreen)
        assert not run(db_url, running).cancel_requested
        await pilot.press("c", "y")
        await settle(pilot)
        assert run(db_url, running).cancel_requested
        assert cell(app, running, "status") == "running ⨯"


async def test_retry_failed_run_queues_it(seeded, app_factory, settle, db_url) -> None:
    app = app_factory()
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await goto(pilot, seeded["failed"])
        await pilot.press("r")
        await settle(pilot)
        row = run(db_url, seeded["failed"])
        assert row.status == RunStatus.QUEUED and row.error is None
        assert cell(app, seeded["failed"], "status") == "queued"


async def test_retry_succeeded_run_changes_nothing(seeded, app_factory, settle, db_url) -> None:
    app = app_factory()
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await goto(pilot, 1)
        await pilot.press("r")
        await settle(pilot)
        assert run(db_url, 1).status == RunStatus.SUCCEEDED
        assert any("only failed or cancelled" in n.message for n in app._notifications)


async def test_run_next_moves_to_front(seeded, app_factory, settle, db_url) -> None:
    app = app_factory()
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await goto(pilot, 8)
        await pilot.press("t")
        await settle(pilot)
        # Run 5 was queued-at priority 5 before it failed; queued runs top out at 0.
        assert run(db_url, 8).priority == 1
        assert cell(app, 8, "priority") == "1"


async def test_remove_queued_run(seeded, app_factory, settle, db_url) -> None:
    app = app_factory()
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await goto(pilot, 7)
        await pilot.press("x")
        await settle(pilot)
        assert 7 not in [r.id for r in Repo.open(db_url).list_runs()]
        assert table(app).row_count == 7


async def test_remove_running_run_cancels_then_removes(seeded, app_factory, settle, db_url):
    running = seeded["running"]
    fresh_heartbeat(db_url, running)
    app = app_factory()
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await goto(pilot, running)
        await pilot.press("x")
        await settle(pilot)
        assert isinstance(app.screen, ConfirmScreen)
        await pilot.press("y")
        await settle(pilot)
        assert run(db_url, running).cancel_requested
        # The worker acknowledges the cancel; the next poll removes the run.
        repo = Repo.open(db_url)
        assert repo.mark_cancelled(running, run(db_url, running).worker_id)
        app.screen.refresh_now()
        await settle(pilot)
        assert running not in [r.id for r in repo.list_runs()]
        assert table(app).row_count == 7


async def test_space_marks_and_actions_apply_to_marked(seeded, app_factory, settle, db_url):
    app = app_factory()
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await goto(pilot, 7)
        await pilot.press("space")
        await goto(pilot, 8)
        await pilot.press("space")
        assert app.screen.marked == {7, 8}
        assert cell(app, 7, "mark") == "●"
        await pilot.press("plus")
        await settle(pilot)
        assert [run(db_url, i).priority for i in (7, 8)] == [1, 1]
        await pilot.press("space")
        assert app.screen.marked == {7}


async def test_text_status_and_experiment_filters(seeded, app_factory, settle) -> None:
    app = app_factory()
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await pilot.press("slash", *"act-m")
        assert [r.id for r in app.screen.visible_runs()] == [7]
        assert table(app).row_count == 1
        await pilot.press("enter")
        assert app.focused is table(app)
        await pilot.press("escape")
        assert table(app).row_count == 8
        await pilot.press("f")  # status: queued
        assert table(app).row_count == 2
        await pilot.press("f", "f")  # succeeded
        assert table(app).row_count == 3
        await pilot.press("escape", "F")  # first experiment
        assert {r.experiment for r in app.screen.visible_runs()} == {"t1-layers-32"}


async def test_w_stops_local_worker_then_starts_one(seeded, app_factory, settle, launcher):
    app = app_factory()
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await pilot.press("w")  # the seeded local worker is online and idle
        assert launcher.stopped == [2222]
        assert launcher.started == []


async def test_w_starts_a_detached_worker_when_none_runs_here(
    seeded, app_factory, settle, launcher, db_url
) -> None:
    repo = Repo.open(db_url)
    for worker in repo.list_workers():
        if worker.pid == 2222:
            repo.update_worker(worker.id, state="stopped")
    app = app_factory()
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await pilot.press("w")
        assert len(launcher.started) == 1
        url, device = launcher.started[0]
        assert url.endswith("runs.db") and url.startswith("sqlite:////") and device == "auto"


async def test_help_results_and_quit(seeded, app_factory, settle) -> None:
    from resconv_tui.screens.help import HelpScreen
    from resconv_tui.screens.results import ResultsScreen

    app = app_factory()
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await pilot.press("question_mark")
        assert isinstance(app.screen, HelpScreen)
        await pilot.press("escape", "R")
        await settle(pilot)
        assert isinstance(app.screen, ResultsScreen)
        await pilot.press("escape")
        assert isinstance(app.screen, RunsScreen)
        await pilot.press("q")
    assert app.return_code == 0
