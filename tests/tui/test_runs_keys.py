"""Every key of the runs view: press it, then check the widgets AND the database rows."""

from __future__ import annotations

import contextlib
import os
import re
import signal
import sqlite3
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import replace
from typing import Any

import pytest
from conftest import LAUNCHED_PID, LOCAL_HOST, NOW, frozen_repo_time, new_runs
from rich.cells import cell_len
from screen_host import drawn, drawn_among, eventually, region_lines, screen_text
from screen_host import settle as settle_pilot

import core.queue.repo as repo_module
from core.queue import Repo, RunStatus
from resconv_tui import polling
from resconv_tui.app import make_app
from resconv_tui.screens.confirm import ConfirmScreen
from resconv_tui.screens.results import ResultsScreen
from resconv_tui.screens.runs import RunsScreen
from resconv_tui.screens.start_worker import StartWorkerScreen
from resconv_tui.widgets.param_field import ParamField
from resconv_tui.widgets.run_table import RunTable
from resconv_tui.widgets.workers_panel import WorkersPanel
from resconv_tui.worker_launcher import DEFAULT_WORKER, Launched, WorkerLauncher, WorkerOptions

SIZE = (120, 36)


def table(app: Any) -> RunTable:
    return app.screen.query_one(RunTable)


def cell(app: Any, run_id: int, column: str) -> str:
    return str(table(app).get_cell(str(run_id), column))


async def press_on(pilot: Any, settle: Any, run_id: int, key: str) -> None:
    """Once the dashboard has read the database: ``key`` on run ``run_id``'s row."""
    await settle(pilot)
    await goto(pilot, run_id)
    await pilot.press(key)
    await settle(pilot)


async def press_settled(pilot: Any, *keys: str) -> None:
    """Each of ``keys``, then what it started in a thread: ``w`` and a yes to its stop
    question read the workers' runs afresh before they ask or signal."""
    for key in keys:
        await pilot.press(key)
        await settle_pilot(pilot)


def in_final_pass(db_url: str, run_id: int) -> None:
    """Run ``run_id``'s worker says by its heartbeat it has trained all the run's inputs."""
    repo = Repo.open(db_url)
    row = repo.get_run(run_id)
    repo.heartbeat(row.worker_id or "", run_id=run_id, inputs_done=row.total_inputs)
    repo.close()


async def w_question(pilot: Any) -> str:
    """``w``, and the stop question it must ask (a ConfirmScreen, left open)."""
    await press_settled(pilot, "w")
    assert isinstance(pilot.app.screen, ConfirmScreen)
    return pilot.app.screen.question


async def goto(pilot: Any, run_id: int) -> None:
    runs_table = table(pilot.app)
    runs_table.move_cursor(row=runs_table.get_row_index(str(run_id)), animate=False)
    await pilot.pause()


async def mark(pilot: Any, *run_ids: int) -> None:
    for run_id in run_ids:
        await goto(pilot, run_id)
        await pilot.press("space")


def dialog_fields(app: Any) -> dict[str, ParamField]:
    """The start-worker dialog's fields by key."""
    assert isinstance(app.screen, StartWorkerScreen)
    return {field.key: field for field in app.screen.query(ParamField)}


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
        assert summary == (
            "8 runs · 2 queued · 1 running · 3 succeeded · 1 failed (1 oom) · 1 cancelled  │  "
            "queue ETA 3m02s"
        )


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
        detail = str(app.screen.query_one("#runs-detail").render())
        assert (
            detail.startswith(f"run 7 · {run(db_url, 7).experiment} · ")
            and " · priority 1" in detail
        )
        # Two presses before the next poll (a slow database, a fast typist) count twice.
        app.screen.action_priority(1)
        app.screen.action_priority(1)
        await settle(pilot)
        assert run(db_url, 7).priority == 3


async def test_priority_leaves_a_succeeded_run_as_it_is(seeded, app_factory, settle, db_url):
    # A failed run keeps its priority for its retry; a succeeded one trains no more.
    app = app_factory()
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await goto(pilot, 1)
        await pilot.press("plus")
        await settle(pilot)
        assert run(db_url, 1).priority == 0
        said = "run 1 succeeded and will not train again: its priority is left as it is"
        assert said in notices(app)
        await goto(pilot, 5)  # failed, at priority 5
        await pilot.press("plus")
        await settle(pilot)
        assert run(db_url, 5).priority == 6


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
        await press_on(pilot, settle, running, "c")
        assert isinstance(app.screen, ConfirmScreen)
        await pilot.press("n")
        await settle(pilot)
        assert isinstance(app.screen, RunsScreen)
        assert not run(db_url, running).cancel_requested
        await pilot.press("c", "y")
        await settle(pilot)
        assert run(db_url, running).cancel_requested
        assert cell(app, running, "status") == "running ⨯"


def notices(app: Any) -> list[str]:
    return [n.message for n in app._notifications]


async def test_cancel_says_the_run_is_asked_to_stop_not_the_worker(
    seeded, app_factory, settle, db_url
) -> None:
    # "asked the worker to stop: run 6" read as stopping the worker; a run past its
    # last step (validating) then succeeded, which the CLI's cancel says beforehand.
    running = seeded["running"]
    fresh_heartbeat(db_url, running)
    app = app_factory()
    async with app.run_test(size=SIZE) as pilot:
        await press_on(pilot, settle, running, "c")
        await pilot.press("y")
        await settle(pilot)
        assert (
            f"cancel requested: run {running} (its worker stops it within a few seconds)"
            in notices(app)
        )
    in_final_pass(db_url, running)
    app = app_factory()
    async with app.run_test(size=SIZE) as pilot:
        await press_on(pilot, settle, running, "c")
        # It asked "Run 4 is training. Cancel it?", then said it would likely succeed.
        assert isinstance(app.screen, ConfirmScreen)
        assert app.screen.question == (
            f"Run {running}: it has trained all its inputs and is finishing: it will likely "
            "succeed. Cancel it?"
        )
        await pilot.press("y")
        await settle(pilot)
        assert (
            f"run {running}: cancel requested, but it has trained all its inputs and is "
            "finishing: it will likely succeed" in notices(app)
        )


async def cancel_question(pilot: Any, *marked: int) -> str:
    """Mark ``marked`` (beside the marks made), press c: the question it asks."""
    await mark(pilot, *marked)
    await pilot.press("c")
    await settle_pilot(pilot)
    assert isinstance(pilot.app.screen, ConfirmScreen)
    return pilot.app.screen.question


async def test_cancel_of_several_running_runs_asks_of_them(
    seeded, app_factory, settle, db_url
) -> None:
    # "Run 4, 7 is training. ... Cancel it?" for two runs, one of them finishing.
    running = seeded["running"]
    repo = Repo.open(db_url)
    worker = repo.register_worker("other-box", 77, "cuda:0")
    other = repo.claim(worker)
    assert other is not None
    repo.heartbeat(worker, run_id=other.id, inputs_done=other.total_inputs)
    repo.close()
    fresh_heartbeat(db_url, running)
    app = app_factory()
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        assert await cancel_question(pilot, running, other.id) == (
            f"Run {running} is training. Run {other.id}: it has trained all its inputs and "
            "is finishing: it will likely succeed. Cancel them?"
        )
        await pilot.press("n")
        await settle(pilot)
        # A queued run marked too is cancelled by the same yes: "Cancel it?" left it out.
        question = await cancel_question(pilot, 8)
        assert question.endswith(f"Cancel runs {running}, {other.id}, 8?")
        await pilot.press("n")
        await settle(pilot)
    in_final_pass(db_url, running)  # both in their final pass: said of them, before and after
    app = app_factory()
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        assert await cancel_question(pilot, running, other.id) == (
            f"Runs {running}, {other.id}: they have trained all their inputs and are "
            "finishing: they will likely succeed. Cancel them?"
        )
        await pilot.press("y")
        await settle(pilot)
        assert (
            f"runs {running}, {other.id}: cancel requested, but they have trained all their "
            "inputs and are finishing: they will likely succeed" in notices(app)
        )


async def test_a_run_past_its_last_step_says_it_is_validating(
    seeded, app_factory, settle, db_url
) -> None:
    # It sat at "running  100%  0s" for the 70 s of its final validation pass.
    running = seeded["running"]
    in_final_pass(db_url, running)
    app = app_factory()
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        assert cell(app, running, "status") == "validating"
        # No finished run of its size tells how long a final pass takes: not known, not 0.
        assert cell(app, running, "eta") == "—"


async def test_cancel_of_a_run_whose_worker_went_silent_asks_nothing(
    seeded, app_factory, settle, db_url, monkeypatch: pytest.MonkeyPatch
) -> None:
    # "running?", its worker silent: it trains no more, and is cancelled at once (it
    # asked "Run 4 is training. Cancel it?").
    # Its beat is watched a while first: it may be a live one from a box whose clock is
    # behind (the next test).
    monkeypatch.setattr(repo_module, "SILENCE_CONFIRM_S", 0.5, raising=False)
    running = seeded["running"]
    with sqlite3.connect(db_url.removeprefix("sqlite:///")) as conn:
        conn.execute(f"UPDATE run SET heartbeat_at = heartbeat_at - 1500 WHERE id = {running}")
    app = app_factory()
    async with app.run_test(size=SIZE) as pilot:
        await press_on(pilot, settle, running, "c")
        assert isinstance(app.screen, RunsScreen)
        assert run(db_url, running).status == RunStatus.CANCELLED


async def test_cancel_of_a_run_whose_beat_reads_old_says_why_it_waits(
    seeded, app_factory, settle, db_url, monkeypatch: pytest.MonkeyPatch
) -> None:
    # c on a run whose beat reads old here watches it up to SILENCE_CONFIRM_S (7 s) before
    # cancelling it at once; the dashboard said nothing until then, as if c had done
    # nothing (the CLI says why it pauses).
    monkeypatch.setattr(repo_module, "SILENCE_CONFIRM_S", 1.0, raising=False)
    running = seeded["running"]
    with sqlite3.connect(db_url.removeprefix("sqlite:///")) as conn:
        conn.execute(f"UPDATE run SET heartbeat_at = heartbeat_at - 1500 WHERE id = {running}")
    app = app_factory()
    async with app.run_test(size=SIZE) as pilot:
        await press_on(pilot, settle, running, "c")
        await settle(pilot)
        said = notices(app)
        assert said[-1] == f"cancelled: run {running}", said
        watching = re.compile(
            rf"run {running}: its last heartbeat reads [^ ]+ (s|min|h|d) old by this machine's "
            r"clock; watching it up to 1 s for its worker's next one before cancelling it at once"
        )
        assert any(watching.fullmatch(notice) for notice in said[:-1]), said
    assert run(db_url, running).status == RunStatus.CANCELLED


@pytest.mark.parametrize(
    "meanwhile", ["the silent run is marked lost", "the queued run is deleted"]
)
async def test_cancel_says_a_run_that_ended_while_its_beat_was_watched(
    seeded, app_factory, settle, db_url, monkeypatch: pytest.MonkeyPatch, meanwhile: str
) -> None:
    # A worker's look marked the silent run lost while c watched its beat: the cancel
    # was refused whole ("run 4 has failed: only queued or running runs can be
    # cancelled; nothing changed", the queued run marked beside it left queued). The
    # queued run removed (`rm` in a shell) meanwhile: "no run with id 7 ...; nothing
    # changed", the silent run left running.
    monkeypatch.setattr(repo_module, "SILENCE_CONFIRM_S", 0.5, raising=False)
    running, queued = seeded["running"], seeded["ids"][6]
    assert run(db_url, queued).status == RunStatus.QUEUED
    path = db_url.removeprefix("sqlite:///")
    with sqlite3.connect(path) as conn:
        conn.execute(f"UPDATE run SET heartbeat_at = heartbeat_at - 1500 WHERE id = {running}")
    real_sleep = repo_module.sleep

    def one_ends_during_the_watch(seconds: float) -> None:
        with sqlite3.connect(path) as conn:
            if meanwhile == "the silent run is marked lost":
                conn.execute(
                    "UPDATE run SET status = 'failed', error = 'worker lost' "
                    f"WHERE id = {running} AND status = 'running'"
                )
            else:
                conn.execute(f"DELETE FROM metric WHERE run_id = {queued}")
                conn.execute(f"DELETE FROM run WHERE id = {queued}")
        real_sleep(seconds)

    monkeypatch.setattr(repo_module, "sleep", one_ends_during_the_watch)
    app = app_factory()
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await mark(pilot, queued, running)
        await press_settled(pilot, "c")
        await settle(pilot)
        if meanwhile == "the silent run is marked lost":
            said = f"cancelled: run {queued}; run {running} failed meanwhile: not cancelled"
        else:
            said = f"cancelled: run {running}; run {queued} was deleted meanwhile: not cancelled"
        assert said in notices(app), notices(app)
    if meanwhile == "the silent run is marked lost":
        assert run(db_url, queued).status == RunStatus.CANCELLED
        assert run(db_url, running).status == RunStatus.FAILED
    else:
        assert run(db_url, running).status == RunStatus.CANCELLED


@contextlib.contextmanager
def beating_behind(db_url: str, run_id: int, behind_s: float) -> Any:
    """Run ``run_id``'s worker beats on (every 50 ms) from a box whose clock is
    ``behind_s`` behind this one's: each beat a new one, always that old here."""
    beating = threading.Event()
    beating.set()

    def beat() -> None:  # as that box's worker writes its beats: the run's and its own
        beat_at = time.time() - behind_s
        with sqlite3.connect(db_url.removeprefix("sqlite:///")) as conn:
            conn.execute(f"UPDATE run SET heartbeat_at = {beat_at} WHERE id = {run_id}")
            conn.execute(
                f"UPDATE worker SET last_seen_at = {beat_at} "
                f"WHERE id = (SELECT worker_id FROM run WHERE id = {run_id})"
            )
        conn.close()

    def beat_on() -> None:
        while beating.is_set():
            beat()
            time.sleep(0.05)

    beat()
    beats = threading.Thread(target=beat_on)
    beats.start()
    try:
        yield
    finally:
        beating.clear()
        beats.join()


async def test_cancel_asks_the_worker_of_a_live_run_whose_box_clock_is_behind(
    seeded, app_factory, settle, db_url, monkeypatch: pytest.MonkeyPatch
) -> None:
    # On a box 40 s ahead of the training box, c cancelled the live run at once ("cancelled:
    # run 4") as its beat read 40 s old; its worker trained on, its end refused.
    monkeypatch.setattr(repo_module, "SILENCE_CONFIRM_S", 5.0, raising=False)
    running = seeded["running"]
    with beating_behind(db_url, running, 40):
        app = app_factory()
        async with app.run_test(size=SIZE) as pilot:
            await press_on(pilot, settle, running, "c")
            assert isinstance(app.screen, ConfirmScreen)  # by this app's clock, it beats
            await pilot.press("y")
            await settle(pilot)
            assert (
                f"cancel requested: run {running} (its worker stops it within a few seconds)"
                in notices(app)
            )
    row = run(db_url, running)
    assert (row.status, row.cancel_requested) == (RunStatus.RUNNING, True)


async def test_a_live_run_of_a_box_whose_clock_is_behind_is_not_silent_on_the_dashboard(
    seeded, app_factory, settle, db_url
) -> None:
    # The dashboard judged a run silent by its beat's age on its own clock: on a box 40 s
    # ahead of the training box, every live run of that box read "running?  silent 40s",
    # and c cancelled it without "Cancel it?". Its beat changes: it is heard, not silent.
    running = seeded["running"]
    with beating_behind(db_url, running, 40):
        app = app_factory()
        app.ctx.clock = time.time  # this box's clock: each beat reads 40 s old
        async with app.run_test(size=SIZE) as pilot:
            await settle(pilot)
            for _ in range(2):  # a poll after the first: the beat has changed between them
                time.sleep(0.2)
                app.screen.refresh_now()
                await settle(pilot)
                assert cell(app, running, "status") == "running"
                assert not cell(app, running, "eta").startswith("silent")
            await press_on(pilot, settle, running, "c")
            assert isinstance(app.screen, ConfirmScreen)
            assert app.screen.question == f"Run {running} is training. Cancel it?"
            await pilot.press("n")
            await settle(pilot)
    assert run(db_url, running).status == RunStatus.RUNNING


async def two_polls_apart(pilot: Any, settle: Any, screen: Any) -> None:
    """Two polls of ``screen`` 0.2 s apart: the worker's beat seen to change between them,
    its silence timed by this dashboard since."""
    for _ in range(2):
        time.sleep(0.2)
        screen.refresh_now()
        await settle(pilot)


async def test_a_live_worker_of_a_box_whose_clock_is_behind_is_online_and_forecast(
    seeded, app_factory, settle, db_url
) -> None:
    # Its beats read 40 s old here: the panel said "stale  ...  beat 40s ago" of a worker
    # beating every few seconds, and the forecast left it out (no ETA for its run).
    running = seeded["running"]
    with beating_behind(db_url, running, 40):
        app = app_factory()
        app.ctx.clock = time.time
        async with app.run_test(size=SIZE) as pilot:
            await settle(pilot)
            await two_polls_apart(pilot, settle, app.screen)
            panel = str(app.screen.query_one(WorkersPanel).render())
            (line,) = [line for line in panel.splitlines() if "gpu-box" in line]
            assert line.startswith("● online") and re.search(r"beat \d s ago", line), line
            assert running in app.screen.dashboard.run_ends  # the forecast counts it


async def test_the_results_screen_s_panel_calls_a_live_worker_of_a_box_behind_online(
    seeded, app_factory, settle, db_url
) -> None:
    # The results screen's workers panel judged by age on this box's clock: "◐ stale ...
    # beat 40s ago" of a worker beating every few seconds, that the runs screen's panel
    # called "● online" (its rows are watched: ``HeardBeats.watched``).
    running = seeded["running"]
    with beating_behind(db_url, running, 40):
        app = app_factory()
        app.ctx.clock = time.time
        async with app.run_test(size=SIZE) as pilot:
            await settle(pilot)
            await pilot.press("R")
            await settle(pilot)
            screen = app.screen
            assert isinstance(screen, ResultsScreen)
            await two_polls_apart(pilot, settle, screen)
            panel = str(screen.query_one(WorkersPanel).render())
            (line,) = [line for line in panel.splitlines() if "gpu-box" in line]
            assert line.startswith("● online") and re.search(r"beat \d s ago", line), line


async def test_a_run_reads_silent_once_the_dashboard_has_seen_its_beat_unchanged_that_long(
    seeded, app_factory, settle, db_url, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Silent by the dashboard's own watch: its beat read unchanged for the stale limit
    # (half a second here) on this process's clock. Its age by this clock (20 s at the
    # tests' "now") says nothing at the first read: a box whose clock is behind writes
    # beats that read old here. Then c asks nothing, as of any silent run.
    monkeypatch.setattr(polling, "STALE_AFTER_S", 0.5)
    monkeypatch.setattr(repo_module, "SILENCE_CONFIRM_S", 0.5, raising=False)
    running = seeded["running"]
    app = app_factory()
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        assert (cell(app, running, "status"), cell(app, running, "eta")) == ("running", "3m02s")
        time.sleep(0.6)
        app.screen.refresh_now()
        await settle(pilot)
        assert cell(app, running, "status") == "running?"
        assert re.fullmatch(r"silent \ds", cell(app, running, "eta")), cell(app, running, "eta")
        await press_on(pilot, settle, running, "c")
        assert isinstance(app.screen, RunsScreen)
    assert run(db_url, running).status == RunStatus.CANCELLED


async def test_cancel_of_a_run_whose_worker_here_has_exited_is_done_at_once(
    local_slot_workers, app_factory, settle, launcher, db_url, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Its worker killed (-9) a moment ago, before a poll marks it lost (silent 10 s): the
    # dashboard's c only asked it to stop ("cancel requested"), which nobody was left to
    # do, and its beat, old by then, was watched 7 s first; `cancel` cancels it at once.
    monkeypatch.setattr(repo_module, "SILENCE_CONFIRM_S", 30.0, raising=False)
    (training,) = local_slot_workers
    fresh_heartbeat(db_url, training)  # its last beat: just now by the database's clock
    launcher.exited.add(3001)
    app = app_factory()
    async with app.run_test(size=SIZE) as pilot:
        await press_on(pilot, settle, training, "c")
        assert isinstance(app.screen, ConfirmScreen)  # it beat just now: asked
        began = time.monotonic()
        await pilot.press("y")
        await settle(pilot)
        assert time.monotonic() - began < 10
        assert f"cancelled: run {training}" in notices(app)
    assert run(db_url, training).status == RunStatus.CANCELLED


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


async def test_retry_of_a_diverged_run_asks_first(seeded, app_factory, settle, db_url) -> None:
    repo = Repo.open(db_url)
    worker = repo.register_worker("h", 9, "cpu")
    assert repo.claim(worker).id == 7  # type: ignore[union-attr]
    repo.fail(7, worker, "loss became NaN at step 12")
    repo.close()
    app = app_factory()
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        summary = str(app.screen.query_one("#runs-summary").render())
        assert "2 failed (1 oom, 1 nan)" in summary
        await pilot.press("slash", *"nan/inf", "enter")  # a failure is found by its cause
        assert [r.id for r in app.screen.visible_runs()] == [7]
        await pilot.press("r")
        assert isinstance(app.screen, ConfirmScreen)
        assert app.screen.question.startswith(
            "Run 7 failed with loss NaN/inf: the same config and seed most likely diverge again"
        )
        await pilot.press("n")
        await settle(pilot)
        assert run(db_url, 7).status == RunStatus.FAILED
        await pilot.press("r", "y")
        await settle(pilot)
        assert run(db_url, 7).status == RunStatus.QUEUED


async def test_retry_succeeded_run_changes_nothing(seeded, app_factory, settle, db_url) -> None:
    app = app_factory()
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await goto(pilot, 1)
        await pilot.press("r")
        await settle(pilot)
        assert run(db_url, 1).status == RunStatus.SUCCEEDED
        assert any("only failed or cancelled" in message for message in notices(app))


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
        await goto(pilot, 5)  # failed: not waiting for a worker
        await pilot.press("t")
        await settle(pilot)
        assert run(db_url, 5).priority == 5
        assert (
            "run 5 has failed: only queued runs wait for a worker (r queues a failed or "
            "cancelled run again)"
        ) in notices(app)


async def test_the_summary_counts_runs_no_worker_will_take(seeded, app_factory, settle, db_url):
    with sqlite3.connect(db_url.removeprefix("sqlite:///")) as conn:  # both at --max-runs
        conn.execute("UPDATE worker SET max_runs = runs_done + (current_run_id IS NOT NULL)")
    summary = await shown_summary(app_factory, settle, SIZE)
    assert re.search(r"ETA — \(2 left queued, workers done in \d+m\d+s\)$", summary), summary


async def shown_summary(app_factory: Any, settle: Any, size: tuple[int, int]) -> str:
    """The runs screen's summary line as a dashboard opened now shows it."""
    app = app_factory()
    async with app.run_test(size=size) as pilot:
        await settle(pilot)
        return str(app.screen.query_one("#runs-summary").render())


@pytest.mark.parametrize("size", [SIZE, (80, 24)])
async def test_the_summary_has_no_eta_when_nothing_is_left_and_a_dash_when_unknown(
    seeded, app_factory, settle, db_url, size: tuple[int, int]
) -> None:
    # Nothing queued or running read "ETA —", as a queue whose workers are all silent
    # does: "unknown" for both. Now no ETA part, as `status` prints no ETA line then.
    path = db_url.removeprefix("sqlite:///")
    with sqlite3.connect(path) as conn:  # the workers' runs stay theirs: only quiet
        conn.execute("UPDATE worker SET last_seen_at = last_seen_at - 3600")
        conn.execute("UPDATE run SET heartbeat_at = heartbeat_at - 3600")
    summary = await shown_summary(app_factory, settle, size)
    assert re.search(r"│  ?(queue )?ETA —", summary), summary  # silent: unknown
    with sqlite3.connect(path) as conn:  # every run settled
        conn.execute("UPDATE run SET status = 'cancelled' WHERE status IN ('queued', 'running')")
        conn.execute("UPDATE worker SET current_run_id = NULL")
    summary = await shown_summary(app_factory, settle, size)
    assert summary.startswith("8 runs") and "ETA" not in summary, summary


async def test_o_orders_rows_as_runs_train(seeded, app_factory, settle, db_url) -> None:
    # By id, "t" or "+" on a queued run changed nothing on screen but a number.
    app = app_factory()
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        rows = lambda: [int(str(row.key.value)) for row in table(app).ordered_rows]  # noqa: E731
        assert rows() == [1, 2, 3, 4, 5, 6, 7, 8]
        await pilot.press("o")
        await settle(pilot)
        assert rows() == [4, 7, 8, 1, 2, 3, 5, 6]  # running, queued as claimed, ended
        assert "order=queue" in str(app.screen.query_one("#runs-summary").render())
        await press_on(pilot, settle, 8, "t")  # 8 trains next: its row moves up
        assert rows() == [4, 8, 7, 1, 2, 3, 5, 6]
        assert table(app).highlighted_id == 8
        await pilot.press("o")  # by id again
        await settle(pilot)
        assert rows() == [1, 2, 3, 4, 5, 6, 7, 8]


async def test_o_moves_the_rows_without_making_them_again(
    seeded, app_factory, settle, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Made again, each new row had every cell measured: 0.2 s of the key's 0.45 s with
    # 650 runs. The same runs in another order are moved (DataTable.sort).
    added: list[object] = []
    add_row = RunTable.add_row

    def spy(self: RunTable, *cells: Any, **kwargs: Any) -> Any:
        added.append(kwargs.get("key"))
        return add_row(self, *cells, **kwargs)

    monkeypatch.setattr(RunTable, "add_row", spy)
    app = app_factory()
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await goto(pilot, 2)
        added.clear()
        await pilot.press("o")
        await settle(pilot)
        assert added == []
        assert table(app).highlighted_id == 2  # the cursor stays on its run...
        assert table(app).cursor_row == 4  # ...which is 5th as runs train
        lines = (await drawn(pilot, "order=queue")).splitlines()  # the new order's frame
        ids = [int(line.split()[0]) for line in lines[3:11]]  # as drawn, under the header
        assert ids == [4, 7, 8, 1, 2, 3, 5, 6]


async def test_remove_queued_run(seeded, app_factory, settle, db_url) -> None:
    app = app_factory()
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await goto(pilot, 7)
        await pilot.press("x")  # one queued run: removed at once, nothing to lose
        await settle(pilot)
        assert isinstance(app.screen, RunsScreen)
        assert 7 not in [r.id for r in Repo.open(db_url).list_runs()]
        assert table(app).row_count == 7
        assert table(app).highlighted_id == 8  # the next run, not back at the top
        await pilot.press("home")
        assert table(app).highlighted_id == 1
        await pilot.press("end")
        assert table(app).highlighted_id == 8


async def test_remove_queued_run_that_trained_before_names_its_folder(
    seeded, app_factory, settle, db_url, tmp_path
) -> None:
    # A run put back or retried is queued again with its folder: x removed it at once
    # and said "removed: run 7" alone, where `rm 7` and x's question name the folder.
    folder = tmp_path / "checkpoints" / "exp" / "run-7"
    folder.mkdir(parents=True)
    with sqlite3.connect(db_url.removeprefix("sqlite:///")) as conn:
        conn.execute("UPDATE run SET attempts = 1, checkpoint_path = ? WHERE id = 7", [str(folder)])
    app = app_factory()
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await goto(pilot, 7)
        await pilot.press("x")  # queued: removed at once, no question
        await settle(pilot)
        assert isinstance(app.screen, RunsScreen)
        assert 7 not in [r.id for r in Repo.open(db_url).list_runs()]
        said = [str(n.message).replace("/\n", "/") for n in app._notifications]  # its lines
        assert f"removed: run 7\ncheckpoint folders stay on disk:\n{folder}" in said, said
    assert folder.is_dir()


async def test_at_80_columns_x_s_notice_breaks_a_folder_only_after_a_slash(
    seeded, app_factory, settle, db_url, tmp_path
) -> None:
    # At 80 columns the notice after x wrapped "checkpoint folders stay on disk: /tmp/...
    # /a-long-experiment-na" and put "me/run-7" on the next line: not copied whole.
    from textual.geometry import Region

    folder = tmp_path / "checkpoints" / "an-experiment-with-a-rather-long-name" / "run-7"
    folder.mkdir(parents=True)
    with sqlite3.connect(db_url.removeprefix("sqlite:///")) as conn:
        conn.execute("UPDATE run SET attempts = 1, checkpoint_path = ? WHERE id = 7", [str(folder)])
    app = app_factory()
    async with app.run_test(size=(80, 24), notifications=True) as pilot:
        await settle(pilot)
        await goto(pilot, 7)
        await pilot.press("x")  # queued: removed at once, no question
        await settle(pilot)
        stay = "checkpoint folders stay on disk:"
        assert stay in await drawn(pilot, stay)  # the notice, laid out, before it is read
        (toast,) = app.screen.query("Toast")
        seen = [s.text.strip(" ▌") for s in toast.render_lines(Region(0, 0, toast.size.width, 12))]
    lines = [line for line in seen if line]
    start = lines.index("checkpoint folders stay on disk:") + 1
    path_lines = lines[start:]
    assert "".join(path_lines) == str(folder), repr(seen)
    assert len(path_lines) > 1 and all(line.endswith("/") for line in path_lines[:-1]), seen


async def test_removing_the_run_with_the_longest_name_keeps_the_cursor_near(
    seeded, app_factory, settle, db_url
) -> None:
    # At 80 columns the longest name sizes the name column: removing it made the table
    # again, and the cursor went to the first row, not to the run beside the removed one.
    Repo.open(db_url).enqueue(
        new_runs("name: act-demo\nlayers: 2\nmatrix:\n  weight_decay: [0.123456789]\n")
    )
    app = app_factory()
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        assert table(app).narrow
        await goto(pilot, 9)
        width = table(app).name_width
        await pilot.press("x")
        await settle(pilot)
        assert 9 not in [r.id for r in Repo.open(db_url).list_runs()]
        assert table(app).name_width < width  # made again, to the names left
        assert table(app).highlighted_id == 8


async def test_a_filter_matching_nothing_says_so(seeded, app_factory, settle) -> None:
    app = app_factory()
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await pilot.press("slash", *"nothing-like-this", "enter")
        await settle(pilot)
        assert table(app).row_count == 0
        detail = str(app.screen.query_one("#runs-detail").render())
        assert detail == "no runs match the filters — escape shows every run"


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
        assert app.screen.question == (
            f"Run {running} is training: cancelled first, removed once stopped. "
            f"Remove run {running} (running) and its metrics and results? "
            f"This cannot be undone. Run {running}'s checkpoint folder, if made, stays on disk."
        )
        await pilot.press("y")
        await settle(pilot)
        assert isinstance(app.screen, RunsScreen)  # one question, not a second one
        assert run(db_url, running).cancel_requested
        # The worker acknowledges the cancel; the next poll removes the run.
        repo = Repo.open(db_url)
        assert repo.mark_cancelled(running, run(db_url, running).worker_id)
        app.screen.refresh_now()
        await settle(pilot)
        assert running not in [r.id for r in repo.list_runs()]
        assert table(app).row_count == 7


def run_ids(db_url: str) -> list[int]:
    repo = Repo.open(db_url)
    try:
        return [r.id for r in repo.list_runs()]
    finally:
        repo.close()


def metric_count(db_url: str, run_id: int) -> int:
    repo = Repo.open(db_url)
    try:
        return len(repo.metrics_since(run_id))
    finally:
        repo.close()


@pytest.mark.parametrize("key", ["r", "c"])
async def test_a_refused_batch_keeps_its_marks(
    seeded, app_factory, settle, db_url, key: str
) -> None:
    # r on a failed and a cancelled run (c on two queued runs), one of them retried (or
    # cancelled) elsewhere since the last poll, is refused whole, nothing changed: the
    # marks were dropped all the same, to be made again.
    kept, changed = (seeded["failed"], seeded["cancelled"]) if key == "r" else (7, 8)
    app = app_factory()
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await mark(pilot, kept, changed)
        before = run(db_url, kept).status
        repo = Repo.open(db_url)
        (repo.retry if key == "r" else repo.request_cancel)([changed])
        repo.close()
        await pilot.press(key)
        await settle(pilot)
        assert app.screen.marked == {kept, changed}
        assert run(db_url, kept).status == before
        await mark(pilot, changed)  # unmarked: the retry or cancel of the other goes ahead
        await pilot.press(key)
        await settle(pilot)
        assert app.screen.marked == set()
        assert run(db_url, kept).status != before


async def test_remove_of_marked_runs_asks_first(seeded, app_factory, settle, db_url) -> None:
    # Runs marked for compare, then x: n keeps every row and metric, y removes them.
    app = app_factory()
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await mark(pilot, 1, 2, 7)
        await pilot.press("x")
        await settle(pilot)
        assert isinstance(app.screen, ConfirmScreen)
        assert app.screen.question == (
            "Remove 3 runs (1 queued, 2 succeeded) and their metrics and results? "
            "This cannot be undone. The checkpoint folders of the 2 that started stay on disk."
        )
        assert app.screen.yes_label == "Remove"
        await pilot.press("n")
        await settle(pilot)
        assert isinstance(app.screen, RunsScreen)
        assert run_ids(db_url) == [1, 2, 3, 4, 5, 6, 7, 8]
        assert metric_count(db_url, 1) > 0
        assert app.screen.marked == {1, 2, 7}  # still marked, to compare or remove
        await pilot.press("x", "y")
        await settle(pilot)
        assert run_ids(db_url) == [3, 4, 5, 6, 8]
        assert metric_count(db_url, 1) == 0
        assert table(app).row_count == 5
        assert app.screen.marked == frozenset()


async def remove_marked_after(
    pilot: Any,
    db_url: str,
    ids: tuple[int, ...],
    meanwhile: Callable[[Repo], object],
    poll: bool = True,
) -> None:
    """Mark ``ids``, press x, and while the question is open let ``meanwhile`` change the
    database (as a worker or the command line would) and the runs screen poll (``poll``);
    then y."""
    await mark(pilot, *ids)
    await pilot.press("x")
    await settle_pilot(pilot)
    assert isinstance(pilot.app.screen, ConfirmScreen)
    repo = Repo.open(db_url)
    meanwhile(repo)
    repo.close()
    runs_screen = pilot.app.screen_stack[-2]
    assert isinstance(runs_screen, RunsScreen)
    if poll:
        runs_screen.refresh_now()
    await settle_pilot(pilot)
    await pilot.press("y")
    await settle_pilot(pilot)


async def test_remove_uses_the_runs_as_they_are_when_confirmed(
    seeded, app_factory, settle, db_url
) -> None:
    # Run 7 was claimed while the question was open: it is cancelled (removed once its
    # worker stops), and run 8 is removed, instead of the batch failing as "running".
    def claim_7(repo: Repo) -> None:
        worker = repo.register_worker("box", 7777, "cpu")
        repo.set_priority([7], 9)
        claimed = repo.claim(worker)
        assert claimed is not None and claimed.id == 7

    app = app_factory()
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await remove_marked_after(pilot, db_url, (7, 8), claim_7)
        assert run_ids(db_url) == [1, 2, 3, 4, 5, 6, 7]
        assert run(db_url, 7).cancel_requested


async def test_remove_of_a_finished_run_asks_first(seeded, app_factory, settle, db_url) -> None:
    app = app_factory()
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await goto(pilot, 1)
        await pilot.press("x")
        await settle(pilot)
        assert isinstance(app.screen, ConfirmScreen)
        assert app.screen.question.startswith(
            "Remove run 1 (succeeded) and its metrics and results?"
        )
        await pilot.press("n")
        await settle(pilot)
        assert run(db_url, 1).validation_loss == pytest.approx(0.161)
        assert table(app).row_count == 8
        await pilot.press("x", "y")
        await settle(pilot)
        assert 1 not in run_ids(db_url)


async def test_at_80_columns_a_filter_leaves_the_marks_in_the_summary(
    seeded, app_factory, settle
) -> None:
    # The last form kept the total alone: "8 runs (1 shown) │ ETA … │ text=…" said nothing
    # of the two marked runs, one of them hidden, which no action would touch.
    app = app_factory()
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        await mark(pilot, 1, 2)
        await pilot.press("slash", *"act-mish", "enter")
        app.screen.refresh_now()
        await settle(pilot)
        summary = app.screen.query_one("#runs-summary")
        said = str(summary.render())
        assert summary.size.height == 1 and "2 marked (2 hidden)" in said, said
        assert said.startswith("8 runs (1 shown)·") and said.endswith(' │ text="act-mish"')


async def test_at_80_columns_two_filters_and_the_order_keep_the_summary_one_line(
    seeded, app_factory, settle
) -> None:
    # Status and experiment filters with order=queue wrapped the total-alone form onto a
    # second line, a row taken from the table.
    app = app_factory()
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        await pilot.press("F", *"fff", "o")  # exp=t1-layers-32, status=succeeded
        app.screen.refresh_now()
        await settle(pilot)
        summary = app.screen.query_one("#runs-summary")
        assert "order=queue" in await drawn_among(pilot, summary, "order=queue")
        (line,) = region_lines(app, summary.content_region)
        # The experiment's own ETA goes first: every filter stays named.
        assert summary.size.height == 1 and line == (
            "8 runs (3 shown) │ ETA 3m02s │ status=succeeded exp=t1-layers-32 order=queue"
        )
        # A third filter leaves no form that fits: the end is cut, and seen to be.
        await pilot.press("slash", *"l-", "enter")
        app.screen.refresh_now()
        await settle(pilot)
        assert 'text="l-"' in await drawn_among(pilot, summary, 'text="l-"')
        (line,) = region_lines(app, summary.content_region)
        assert summary.size.height == 1 and line.endswith("…") and len(line) == 78
        assert line.startswith(
            '8 runs (3 shown) │ ETA 3m02s │ status=succeeded exp=t1-layers-32 text="l-"'
        )


@pytest.mark.parametrize("inputs", [256, 1000])
async def test_at_80_columns_a_long_experiment_name_is_cut_in_its_middle(
    inputs, seeded, app_factory, settle, db_url
) -> None:
    # Two quick checks of one logbook file (`queue --max-inputs N`) differ only at their
    # names' end: the line cut at its end read "exp=t4-batchnorm-position-inpu…" for
    # both, and said nothing of order=queue after it.
    repo = Repo.open(db_url)
    for n in (256, 1000):
        repo.enqueue(new_runs(f"name: t4-batchnorm-position-inputs-{n}\nmax_inputs: {n}\n"))
    repo.close()
    app = app_factory()
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        assert isinstance(app.screen, RunsScreen)
        app.screen.set_experiment_filter(f"t4-batchnorm-position-inputs-{inputs}")
        await pilot.press("f", "o")  # status=queued; the queue's order
        app.screen.refresh_now()
        await settle(pilot)
        summary = app.screen.query_one("#runs-summary")
        assert "order=queue" in await drawn_among(pilot, summary, "order=queue")
        (line,) = region_lines(app, summary.content_region)
        assert summary.size.height == 1 and len(line) <= 78, line
        # Its start and its end stay, and every filter after it.
        assert re.search(rf" │ status=queued exp=t4-batc\S*…\S*-{inputs} order=queue$", line), line


@pytest.mark.parametrize("width", [68, 72, 74, 80])
async def test_a_long_experiment_name_cut_in_its_middle_keeps_its_numbers_whole(
    width, app_factory, settle, db_url
) -> None:
    # Cut around "…", t1-layers-32-channels-128-inputs-1000 read "t1-layers-3…inputs-1000"
    # (layers 3) at 68 columns, and "t1-layers-32-…8-inputs-1000" (channels 8) at 72.
    experiment = "t1-layers-32-channels-128-inputs-1000"
    repo = Repo.open(db_url)
    repo.enqueue(new_runs(f"name: {experiment}\nmax_inputs: 1000\n"))
    repo.close()
    app = app_factory()
    numbers = re.compile(r"\d[\d.,]*(?:[eE][-+]?\d+)?")
    async with app.run_test(size=(width, 24)) as pilot:
        await settle(pilot)
        app.screen.set_experiment_filter(experiment)
        await pilot.press("f", "o")  # status=queued; the queue's order
        app.screen.refresh_now()
        await settle(pilot)
        summary = app.screen.query_one("#runs-summary")
        assert "status=queued" in await drawn_among(pilot, summary, "status=queued")
        (line,) = region_lines(app, summary.content_region)
        said = re.search(r"exp=(\S+)", line)
        assert said is not None, line
        assert set(numbers.findall(said[1])) <= {"1", "32", "128", "1000"}, line


async def test_at_80_columns_a_filter_that_matches_nothing_keeps_the_narrow_layout(
    seeded, app_factory, settle
) -> None:
    # With no row to measure, the header turned wide (experiment, pri, the bar) at 80
    # columns, and back when the filter was cleared.
    app = app_factory()
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        assert table(app).narrow
        narrow_columns = [str(c.label) for c in table(app).columns.values()]
        await pilot.press("slash", *"no-such-run")
        await settle(pilot)
        assert table(app).row_count == 0 and table(app).narrow
        assert [str(c.label) for c in table(app).columns.values()] == narrow_columns


async def test_a_marked_run_removed_elsewhere_is_no_longer_marked(
    seeded, app_factory, settle, db_url
) -> None:
    # Removed from the command line, run 2 stayed marked: "2 marked (1 hidden)" with no
    # filter set, and x refused as if a filter hid it.
    app = app_factory()
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await mark(pilot, 1, 2)
        repo = Repo.open(db_url)
        repo.remove([2])
        repo.close()
        app.screen.refresh_now()
        await settle(pilot)
        assert app.screen.marked == {1}
        assert "hidden" not in str(app.screen.query_one("#runs-summary").render())


@pytest.mark.parametrize("poll", [True, False], ids=["polled", "before the poll"])
async def test_remove_confirmed_after_one_of_its_runs_went_elsewhere_removes_the_rest(
    seeded, app_factory, settle, db_url, poll
) -> None:
    # "Unknown run: no run with id 2", and run 1 was left without a word; removed after the
    # dashboard's last poll, the batch failed "...; nothing changed", and run 1 stayed.
    app = app_factory()
    async with app.run_test(size=SIZE, notifications=True) as pilot:
        await settle(pilot)
        await remove_marked_after(pilot, db_url, (1, 2), lambda repo: repo.remove([2]), poll)
        assert 1 not in run_ids(db_url)
        assert notices(app)[-1] == "removed: run 1; already removed: run 2"


async def test_remove_confirmed_as_one_is_claimed_before_the_poll_cancels_it(
    seeded, app_factory, settle, db_url
) -> None:
    # Claimed after the last poll: "run 7 is running: cancel it first; nothing changed",
    # and run 8 stayed.
    def claim_7(repo: Repo) -> None:
        repo.set_priority([7], 99)
        repo.claim(repo.register_worker("gpu-box", 77, "cuda:0"))

    app = app_factory()
    async with app.run_test(size=SIZE, notifications=True) as pilot:
        await settle(pilot)
        await remove_marked_after(pilot, db_url, (7, 8), claim_7, poll=False)
        await settle_pilot(pilot)
        assert 8 not in run_ids(db_url)
        repo = Repo.open(db_url)
        assert repo.get_run(7).cancel_requested  # removed once its worker stops
        repo.close()
        assert "removed: run 8" in notices(app)
        # A poll read before the claim, come now, shows run 7 queued: it stays waiting
        # (its removal was refused as running, and the run was left, cancelled).
        screen = app.screen
        assert isinstance(screen, RunsScreen) and screen.dashboard is not None
        stale = [replace(r, status=RunStatus.QUEUED) if r.id == 7 else r
                 for r in screen.dashboard.runs]  # fmt: skip
        screen.dashboard = replace(screen.dashboard, runs=stale)
        screen.after_refresh()
        await settle_pilot(pilot)
        assert 7 in run_ids(db_url) and 7 in screen._remove_when_stopped
        assert not any("cancel it first" in notice for notice in notices(app)), notices(app)


async def test_remove_of_marked_runs_one_training_is_one_question(
    seeded, app_factory, settle, db_url
) -> None:
    running = seeded["running"]
    fresh_heartbeat(db_url, running)
    app = app_factory()
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await mark(pilot, running, 8)
        await pilot.press("x")
        await settle(pilot)
        assert isinstance(app.screen, ConfirmScreen)
        assert app.screen.question == (
            f"Run {running} is training: cancelled first, removed once stopped. "
            "Remove 2 runs (1 queued, 1 running) and their metrics and results? "
            f"This cannot be undone. Run {running}'s checkpoint folder, if made, stays on disk."
        )
        await pilot.press("y")
        await settle(pilot)
        assert isinstance(app.screen, RunsScreen)  # no second question for the training run
        assert run(db_url, running).cancel_requested
        assert 8 not in run_ids(db_url)
        repo = Repo.open(db_url)
        assert repo.mark_cancelled(running, run(db_url, running).worker_id)
        repo.close()
        app.screen.refresh_now()
        await settle(pilot)
        assert run_ids(db_url) == [1, 2, 3, 5, 6, 7]


async def test_space_marks_and_actions_apply_to_marked(seeded, app_factory, settle, db_url):
    app = app_factory()
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await goto(pilot, 7)
        await pilot.press("space")
        assert table(app).highlighted_id == 8  # space goes on to the next run
        await pilot.press("space")
        assert app.screen.marked == {7, 8}
        assert cell(app, 7, "mark") == "●"
        await pilot.press("plus")
        await settle(pilot)
        assert [run(db_url, i).priority for i in (7, 8)] == [1, 1]
        await pilot.press("space")
        assert app.screen.marked == {7}


async def test_clear_marks_says_how_many_from_the_key_and_the_palette(seeded, app_factory, settle):
    # escape said "2 marks cleared"; the palette's Clear marks cleared them silently.
    app = app_factory()
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await goto(pilot, 7)
        await pilot.press("space", "space")
        commands = {c.title: c for c in app.get_system_commands(app.screen)}
        commands["Clear marks"].callback()
        await settle(pilot)
        commands["Clear marks"].callback()
        await settle(pilot)
        assert app.screen.marked == frozenset()
        said = notices(app)
        assert said[-2:] == ["2 marks cleared", "no run was marked"]
        await pilot.press("space", "escape")
        await settle(pilot)
        assert notices(app)[-1] == "1 mark cleared"


async def test_marks_a_filter_hides_are_never_acted_on(seeded, app_factory, settle, db_url):
    # Marked 7 and 8, then filtered to run 3 (highlighted): c must cancel nothing unseen.
    app = app_factory()
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await mark(pilot, 7, 8)
        await pilot.press("slash", *"l-3", "enter")
        await settle(pilot)
        assert [r.id for r in app.screen.visible_runs()] == [3]
        summary = str(app.screen.query_one("#runs-summary").render())
        assert "2 marked (2 hidden)" in summary
        await pilot.press("plus")  # neither the hidden marked runs nor the highlighted one
        await settle(pilot)
        assert [run(db_url, i).priority for i in (3, 7, 8)] == [0, 0, 0]
        assert (
            "2 marked runs are hidden by the filters: nothing done (escape clears the marks)"
        ) in notices(app)
        await pilot.press("escape")  # the marks first...
        assert app.screen.marked == frozenset()
        assert [r.id for r in app.screen.visible_runs()] == [3]
        await pilot.press("plus")  # no marks now: the highlighted run (succeeded: says so)
        await settle(pilot)
        assert any("run 3 succeeded" in message for message in notices(app))
        assert [run(db_url, i).priority for i in (7, 8)] == [0, 0]
        await pilot.press("escape")  # ...then the filter
        assert table(app).row_count == 8


async def test_cancel_of_marked_runs_clears_their_marks(seeded, app_factory, settle, db_url):
    app = app_factory()
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await mark(pilot, 7, 8)
        await pilot.press("c")
        await settle(pilot)
        assert [run(db_url, i).status for i in (7, 8)] == [RunStatus.CANCELLED] * 2
        assert app.screen.marked == frozenset()
        await goto(pilot, 1)
        await pilot.press("t")  # the next key acts on the highlighted run again
        await settle(pilot)
        assert run(db_url, 7).priority == 0


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
        summary = str(app.screen.query_one("#runs-summary").render())
        assert summary.endswith(" │ ETA 3m02s │ status=queued")  # only those in force
        assert summary.startswith("8 runs (2 shown)·2 queued·")  # how many the table shows
        await pilot.press("f", "f")  # succeeded
        assert table(app).row_count == 3
        await pilot.press("escape", "slash", *"oom", "enter")  # a failure, by its cause's word
        assert [r.id for r in app.screen.visible_runs()] == [5]
        await pilot.press("escape", "F")  # first experiment
        assert {r.experiment for r in app.screen.visible_runs()} == {"t1-layers-32"}
        await settle(pilot)
        summary = str(app.screen.query_one("#runs-summary").render())
        # When its last run ends: run 4's own 3m02s (the idle local worker takes the rest).
        # (Closed up where the whole line would take two: "·" and " │ "; in minutes, to
        # keep the failure's cause.)
        assert re.search(r"\(1 oom\).* │ +exp=t1-layers-32 \(ETA 3m\)$", summary), summary
        await pilot.press("F")  # act-demo: two queued runs, one after the other
        await settle(pilot)
        summary = str(app.screen.query_one("#runs-summary").render())
        assert re.search(r"exp=act-demo \(ETA (\d+m)?\d+s\)$", summary), summary


async def test_w_says_a_run_in_its_final_pass_ends_there(
    local_slots_one_finishing: list[int], app_factory, settle, launcher
) -> None:
    # The question said every run would train again from the start, and a run past its
    # last step ended its final pass (87 s on a CPU) and succeeded.
    back, finishing = local_slots_one_finishing
    app = app_factory()
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        assert (await w_question(pilot)).endswith(
            f"Stop? Run {back} goes back to the queue and trains again from the start. "
            f"Run {finishing} trained all its inputs: its final pass ends first, and most "
            "likely succeeds."
        )


async def test_w_says_a_run_with_a_cancel_asked_for_ends_cancelled(
    local_slots_one_finishing: list[int], app_factory, settle, launcher, db_url
) -> None:
    # A stalled worker had not read `resconv-tui cancel N`: the question said run N goes
    # back to the queue and trains again, and the stop ended it cancelled (Repo.requeue).
    back, finishing = local_slots_one_finishing
    repo = Repo.open(db_url)
    with frozen_repo_time(NOW):
        repo.request_cancel([back])
    repo.close()
    app = app_factory()
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        assert (await w_question(pilot)).endswith(
            f"Stop? Run {back} ends cancelled (a cancel was asked for). Run {finishing} "
            "trained all its inputs: its final pass ends first, and most likely succeeds."
        )


async def test_w_asks_again_when_a_slot_took_another_run_while_the_question_stood(
    local_slots_one_finishing: list[int], app_factory, settle, launcher, db_url
) -> None:
    # User walk: the question named runs 27, 28 (final pass) and 31, 32; by "y" 27 and 28
    # had succeeded and their slot had claimed 29 and 30, which the stop sent back to the
    # queue at 40% without a word.

    from core.queue import FinalFigures

    back, finishing = local_slots_one_finishing
    app = app_factory()
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await w_question(pilot)
        repo = Repo.open(db_url)
        with frozen_repo_time(NOW):
            slot_2 = next(w.id for w in repo.list_workers() if w.pid == 3002)
            repo.enqueue(new_runs("name: next\nlayers: 2\n"))
            assert repo.finish(finishing, slot_2, FinalFigures(0.05, inputs_done=64_000))
            taken = repo.claim(slot_2)
        repo.close()
        assert taken is not None
        runs_screen = app.screen_stack[-2]
        assert isinstance(runs_screen, RunsScreen)
        runs_screen.refresh_now()  # its next poll, which goes on under the question
        await settle(pilot)
        await press_settled(pilot, "y")
        await settle(pilot)
        assert launcher.stopped == []  # not yet: the new run was not named
        assert isinstance(app.screen, ConfirmScreen)
        assert f"training runs {back}, {taken.id} " in app.screen.question
        await press_settled(pilot, "y")
        assert launcher.stopped == [3001, 3002]


async def test_w_asks_of_the_runs_its_workers_train_now_not_at_the_last_poll(
    local_slot_workers: list[int], app_factory, settle, launcher, db_url, monkeypatch
) -> None:
    # Pressed right after `resconv-tui cancel 5` in another shell, the question named run
    # 5 (the last poll's), which the worker had ended and put behind it for the next.
    from core.queue import QueueError

    (cancelled,) = local_slot_workers
    app = app_factory()
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)  # the poll: slot 1 trains `cancelled`
        repo = Repo.open(db_url)
        with frozen_repo_time(NOW):
            slot_1 = next(w.id for w in repo.list_workers() if w.pid == 3001)
            repo.request_cancel([cancelled])
            assert repo.requeue(cancelled, slot_1) == RunStatus.CANCELLED  # as its worker does
            taken = repo.claim(slot_1)
        repo.close()
        assert taken is not None and taken.id != cancelled
        assert (await w_question(pilot)).startswith(
            "The 2 worker processes here (pids 3001, 3002) are training "
            f"run {taken.id} (0% done). Stop?"
        )
        await press_settled(pilot, "n")

        # Unreadable now: the question says so, rather than name the last poll's runs.
        def locked(*_args: object) -> None:
            raise QueueError("database is locked")

        monkeypatch.setattr(app.ctx.repo, "list_runs", locked)
        assert (await w_question(pilot)).startswith(
            "The 2 worker processes here (pids 3001, 3002) are training runs that could "
            "not be read now (database is locked). Stop?"
        )
        await press_settled(pilot, "y")
        assert launcher.stopped == [3001, 3002]


def slow_held_runs(monkeypatch: pytest.MonkeyPatch) -> threading.Event:
    """w's fresh read of the workers' runs held until the returned event is set: keys
    pressed meanwhile come before its question, as on a slow database."""
    from resconv_tui.screens import runs_actions

    read = runs_actions.read_held_runs
    go_on = threading.Event()

    def held_back(*args: Any) -> Any:
        assert go_on.wait(10)
        return read(*args)

    monkeypatch.setattr(runs_actions, "read_held_runs", held_back)
    return go_on


@pytest.mark.parametrize("workers", ["seeded", "local_slot_workers"])
async def test_w_pressed_twice_before_its_question_stops_the_workers_once(
    workers, request, app_factory, settle, launcher, monkeypatch
) -> None:
    # w reads the runs in a thread before it asks: a second w in that time started a
    # second read, and the workers were signalled twice (a second SIGTERM: "exit at
    # once", the final pass and the step cut short), or asked twice, one question
    # under the other.
    request.getfixturevalue(workers)
    app = app_factory()
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        go_on = slow_held_runs(monkeypatch)
        await pilot.press("w", "w")
        go_on.set()
        await settle(pilot)
        await settle(pilot)
        if workers == "local_slot_workers":  # training: one question
            assert isinstance(app.screen, ConfirmScreen)
            await press_settled(pilot, "y")
            assert not isinstance(app.screen, ConfirmScreen)
            assert launcher.stopped == [3001, 3002]
        else:  # idle: stopped at once, once
            assert launcher.stopped == [2222]
        # Once its question is answered, w acts again (here: a stop at once, asked).
        await w_question(pilot)


async def test_w_stops_local_worker_then_starts_one(seeded, app_factory, settle, launcher):
    app = app_factory()
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await press_settled(pilot, "w")  # the seeded local worker is online and idle
        assert launcher.stopped == [2222]
        assert launcher.started == []


@pytest.mark.parametrize(
    ("workers", "pids", "who"),
    [
        # `worker --slots 2` as processes: a row per slot process.
        ("local_slot_workers", [3001, 3002], "The 2 worker processes here (pids 3001, 3002) are"),
        # `worker --stack 3`: one row naming one run, three runs training.
        ("local_stack_worker", [3003], "Worker pid 3003 is"),
    ],
)
async def test_w_stops_every_local_worker_process_after_naming_its_runs(
    workers, pids, who, request, app_factory, settle, launcher
) -> None:
    training = request.getfixturevalue(workers)
    app = app_factory()
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        runs = f"run{'s' if len(training) > 1 else ''} {', '.join(map(str, training))}"
        done = ", ".join("0%" for _ in training)  # claimed, nothing trained yet
        assert (await w_question(pilot)) == (
            f"{who} training {runs} ({done} done). Stop? Runs go back to the queue, and "
            "train again from the start: their progress so far is lost."
        )
        await press_settled(pilot, "n")
        assert launcher.stopped == []
        await press_settled(pilot, "w", "y")
        assert launcher.stopped == pids and launcher.started == []
        # They finish their step before their rows say so: w must not signal them again
        # by accident (a second SIGTERM means "exit at once"), nor start another worker...
        assert (await w_question(pilot)).startswith(
            f"Worker pid{'s' if len(pids) > 1 else ''} {', '.join(map(str, pids))} "
            f"{'were' if len(pids) > 1 else 'was'} asked"
        )
        await press_settled(pilot, "n")
        assert launcher.stopped == pids and launcher.started == []
        await press_settled(pilot, "w", "y")  # ...only when asked to stop them at once
        assert launcher.stopped == pids + pids
        launcher.exited.update(pids)  # they exit before the next poll shows it
        await press_settled(pilot, "w")
        assert isinstance(app.screen, RunsScreen) and launcher.stopped == pids + pids


async def test_stop_at_once_answered_after_the_workers_left_signals_nothing(
    local_stack_worker, app_factory, settle, launcher
) -> None:
    # The question stood while the worker finished its step and exited; "y" then said
    # "exiting now, runs back in the queue" and signalled a pid that was gone.
    app = app_factory()
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await press_settled(pilot, "w", "y", "w")
        assert isinstance(app.screen, ConfirmScreen)
        launcher.exited.add(3003)
        await press_settled(pilot, "y")
        await settle(pilot)
        assert launcher.stopped == [3003]  # the first stop only
        messages = notices(app)
        assert messages[-1] == "worker pid 3003 had stopped already", messages


async def test_w_offers_stop_at_once_for_a_worker_stopping_by_another_s_hand(
    local_slot_workers, app_factory, settle, launcher, db_url
) -> None:
    repo = Repo.open(db_url)
    for worker in repo.list_workers():
        if worker.pid == 3001:  # its heartbeat wrote this at the first signal
            repo.update_worker(worker.id, state="stopping")
    repo.close()
    app = app_factory()
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await press_settled(pilot, "w")  # 3002 (idle) was not asked: it is now; 3001 is left alone
        assert launcher.stopped == [3002]
        # Both asked: stop at once is offered for both.
        question = await w_question(pilot)
        assert question.startswith("Worker pids 3001, 3002 were asked to stop")


async def test_w_signals_thread_slots_once_by_their_shared_pid(
    local_thread_slots, app_factory, settle, launcher
) -> None:
    app = app_factory()
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await press_settled(pilot, "w")  # idle: no question
        assert launcher.stopped == [3004]


async def test_workers_panel_names_every_run_of_a_stack(
    local_stack_worker, app_factory, settle
) -> None:
    app = app_factory()
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        panel = str(app.screen.query_one(WorkersPanel).render())
        line = next(line for line in panel.splitlines() if "pid 3003" in line)
        assert f"runs {','.join(map(str, local_stack_worker))}" in line
        assert "run 4 " in panel  # the GPU box's single run
        assert len({line.index(" done ") for line in panel.splitlines()}) == 1  # aligned


async def test_workers_panel_columns_line_up_and_fit_at_120_and_80_columns(
    local_slot_workers, app_factory, settle
) -> None:
    # A `worker --slots 2` here beside the GPU box: at 80 columns the GPU column, as wide
    # as the box's "GPU  87% mem 5.0 GiB/24.0 GiB" on every line, cut each line's
    # heartbeat to "beat 0 …" and "beat 20…", the age that says whether a worker lives.
    for size in ((120, 40), (80, 24)):
        app = app_factory()
        async with app.run_test(size=size) as pilot:
            await settle(pilot)
            panel = app.screen.query_one(WorkersPanel)
            assert "ago" in await drawn_among(pilot, panel, "ago")  # the poll's workers
            lines = region_lines(app, panel.content_region)
            assert len(lines) == 4 and all(line.rstrip().endswith(" ago") for line in lines), lines
            for column in ("slot", "GPU", "beat"):
                starts = {line.index(column) for line in lines if column in line}
                assert len(starts) == 1, (size, column, lines)
            assert (
                len(
                    {line.index(" run 7 ") for line in lines if "run 7" in line}
                    | {line.index(" idle ") for line in lines if " idle " in line}
                )
                == 1
            ), lines


async def test_workers_panel_columns_line_up_beside_a_wide_character_host(
    local_slot_workers, app_factory, settle, db_url
) -> None:
    # A host name in CJK (two cells a character) was cut and padded by characters: its
    # line ran 16 cells (10 narrow) longer than the others, every column after it shifted.
    with sqlite3.connect(db_url.removeprefix("sqlite:///")) as conn:
        conn.execute(
            "UPDATE worker SET host = ? WHERE host = 'gpu-box'", ("東京ＧＰＵサーバー研究室",)
        )
    for size in ((120, 40), (80, 24)):
        app = app_factory()
        async with app.run_test(size=size) as pilot:
            await settle(pilot)
            panel = app.screen.query_one(WorkersPanel)
            lines = region_lines(app, panel.content_region)
            assert len(lines) == 4 and any("東京" in line for line in lines), lines
            for column in (" GPU", " beat"):
                starts = {cell_len(line[: line.index(column)]) for line in lines if column in line}
                assert len(starts) == 1, (size, column, lines)


async def test_at_80_columns_a_stack_workers_rules_are_cut_not_wrapped(
    no_local_worker, app_factory, settle, db_url
) -> None:
    # `worker --stack 3 --order largest-first --max-runs 5` beside the GPU box: its
    # "stack 3, largest first, max 5 runs" wrapped onto a line of its own in the panel.
    repo = Repo.open(db_url)
    with frozen_repo_time(NOW):
        worker = repo.register_worker(LOCAL_HOST, 3003, "cpu", stack=3, largest_first=True,
                                      max_runs=5)  # fmt: skip
        repo.claim(worker)
    repo.close()
    app = app_factory()
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        panel = app.screen.query_one(WorkersPanel)
        assert "workstatio" in await drawn_among(pilot, panel, "workstatio")
        lines = region_lines(app, panel.content_region)
        assert len(lines) == len(panel.rows) == 3  # one line a worker
        assert lines[0].startswith("● workstatio 3003 cpu") and lines[0].endswith("…")
        await pilot.resize_terminal(120, 36)  # room for them: whole
        await settle(pilot)
        assert "max 5 runs" in await drawn_among(pilot, panel, "max 5 runs")
        lines = region_lines(app, panel.content_region)
        assert len(lines) == 3 and lines[0].endswith("  stack 3, largest first, max 5 runs")


async def test_w_asks_how_then_starts_a_detached_worker(
    no_local_worker, app_factory, settle, launcher
) -> None:
    app = app_factory()
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await pilot.press("w")
        assert isinstance(app.screen, StartWorkerScreen)
        assert app.screen.field_values() == {"device": "auto", "slots": "1", "stack": "1",
                                             "order": "queue"}  # fmt: skip
        await pilot.press("enter")  # the defaults: the worker picks its device, one run
        assert isinstance(app.screen, RunsScreen)
        url, options = launcher.started[0]
        assert url.endswith("runs.db") and url.startswith("sqlite:////")
        assert options.argv() == ["--device", "auto"]

        # Stopped again: w offers the last choice; change it and start.
        await pilot.press("w")
        fields = dialog_fields(app)
        fields["slots"].value, fields["stack"].value = "4", "2"
        fields["order"].value = "largest-first"
        await pilot.press("enter")
        _, options = launcher.started[1]
        assert options.argv() == ["--device", "auto", "--slots", "4", "--stack", "2",
                                  "--order", "largest-first"]  # fmt: skip
        await pilot.press("w")
        assert app.screen.field_values()["slots"] == "4"  # remembered for the next start
        await pilot.press("escape")
        assert isinstance(app.screen, RunsScreen) and len(launcher.started) == 2


async def test_the_workers_panel_says_a_worker_w_started_is_starting(
    no_local_worker, app_factory, settle, launcher, db_url
) -> None:
    # It imports torch before it registers (about 10 s on a CPU box): the panel said
    # nothing of it meanwhile, beside the toast "worker started (pid 4242 ...)".
    app = app_factory()
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await pilot.press("w", "enter")
        await settle(pilot)
        starting = f"worker pid {LAUNCHED_PID} starting (loading torch)…"
        assert starting in str(app.screen.query_one(WorkersPanel).render())
        repo = Repo.open(db_url)
        repo.register_worker(LOCAL_HOST, LAUNCHED_PID, "cpu")  # it has come
        repo.close()
        app.screen.refresh_now()
        await settle(pilot)
        panel = str(app.screen.query_one(WorkersPanel).render())
        assert starting not in panel and f"pid {LAUNCHED_PID}" in panel


async def test_w_dialog_names_each_bad_field_and_starts_nothing(
    no_local_worker, app_factory, settle, launcher
) -> None:
    app = app_factory()
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await pilot.press("w")
        fields = dialog_fields(app)
        fields["device"].value, fields["slots"].value = "gpu", "0"
        fields["stack"].value, fields["order"].value = "two", "biggest"
        await pilot.press("enter")
        assert isinstance(app.screen, StartWorkerScreen) and launcher.started == []
        reasons = {key: str(f.query_one(".field-reason").render()) for key, f in fields.items()}
        assert reasons == {
            "device": "device: 'gpu' is not a device: use auto, cpu, cuda or cuda:N",
            "slots": "slots: '0' is not a number of slots (a whole number from 1 to 16)",
            "stack": "stack: 'two' is not a number of runs to stack (a whole number from 1 to 64)",
            "order": "order: 'biggest' is not an order: use queue or largest-first",
        }
        fields["slots"].value = "2"  # corrected: its reason goes at once, not at enter
        await pilot.pause()
        assert fields["slots"].error == "" and fields["stack"].error != ""
        fields["device"].value, fields["slots"].value = "cuda:1", "2"
        fields["stack"].value, fields["order"].value = "1", "queue"
        await pilot.press("enter")
        assert launcher.started[0][1].argv() == ["--device", "cuda:1", "--slots", "2"]


async def test_w_dialog_refuses_a_gpu_this_machine_lacks(
    no_local_worker, app_factory, settle, launcher, monkeypatch
) -> None:
    import resconv_tui.screens.start_worker as start_worker

    monkeypatch.setattr(start_worker, "visible_gpu_count", lambda: 1)  # as NVML counts
    app = app_factory()
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await pilot.press("w")
        await app.workers.wait_for_complete()
        fields = dialog_fields(app)
        fields["device"].value = "cuda:1"
        await pilot.press("enter")
        assert isinstance(app.screen, StartWorkerScreen) and launcher.started == []
        reason = str(fields["device"].query_one(".field-reason").render())
        assert reason == "device: 'cuda:1': this machine has 1 CUDA device: cuda:0"
        fields["device"].value = "cuda:0"
        await pilot.pause()
        assert fields["device"].error == ""  # corrected: its reason goes at once
        await pilot.press("enter")
        assert launcher.started[0][1].device == "cuda:0"


async def test_w_dialog_refuses_a_gpu_uuid_this_machine_lacks(
    no_local_worker, app_factory, settle, launcher, monkeypatch
) -> None:
    # CUDA_VISIBLE_DEVICES naming another box's GPU by UUID: the dialog took the UUID on
    # trust and started a worker on cuda:0, which failed 10 s later importing torch.
    import types

    import core.gpu
    import resconv_tui.screens.start_worker as start_worker

    nvml = types.ModuleType("pynvml")  # one GPU, as NVML tells it
    nvml.nvmlInit = nvml.nvmlShutdown = lambda: None  # type: ignore[attr-defined]
    nvml.nvmlDeviceGetCount = lambda: 1  # type: ignore[attr-defined]
    nvml.nvmlDeviceGetHandleByIndex = lambda index: index  # type: ignore[attr-defined]
    nvml.nvmlDeviceGetUUID = lambda handle: "GPU-8a1c0f2e-1111"  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "pynvml", nvml)
    monkeypatch.setattr(start_worker, "visible_gpu_count", core.gpu.visible_gpu_count)
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "GPU-ffff0000-2222")
    app = app_factory()
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await pilot.press("w")
        await app.workers.wait_for_complete()
        fields = dialog_fields(app)
        fields["device"].value = "cuda:0"
        await pilot.press("enter")
        assert isinstance(app.screen, StartWorkerScreen) and launcher.started == []
        reason = str(fields["device"].query_one(".field-reason").render())
        assert reason == (
            "device: 'cuda:0': CUDA_VISIBLE_DEVICES='GPU-ffff0000-2222' leaves no GPU "
            "(use cpu or auto)"
        )
        fields["device"].value = "cpu"
        await pilot.press("enter")
        assert launcher.started[0][1].device == "cpu"


async def start_a_worker_that_exits(
    pilot: Any, settle: Any, launcher: Any, field: str, value: str
) -> None:
    """``w``, the dialog's ``field`` set to ``value``, enter; then the launch watch's looks
    until the started worker has exited (``launcher.exits_after``)."""
    pilot.app.ctx.launch_poll_s = 0.01
    await settle(pilot)
    await pilot.press("w")
    dialog_fields(pilot.app)[field].value = value
    await pilot.press("enter")
    for _ in range(1000):  # 10 s, polled: room for the launch watch on a loaded machine
        await pilot.pause(0.01)
        if launcher.alive_calls > launcher.exits_after:
            break
    await pilot.pause()


async def test_a_worker_that_exits_at_once_shows_its_last_log_line(
    no_local_worker, app_factory, settle, launcher, tmp_path
) -> None:
    launcher.exits_after = 3  # alive for three looks: torch's import comes before its checks
    launcher.log_path = tmp_path / "worker.log"
    launcher.log_path.write_text("starting\nresconv-tui: invalid configuration: --device cuda:3: "
                                 "this machine has 1 CUDA device: cuda:0\n\n")  # fmt: skip
    app = app_factory()
    async with app.run_test(size=SIZE) as pilot:
        await start_a_worker_that_exits(pilot, settle, launcher, "device", "cuda:3")
        assert launcher.started[0][1].device == "cuda:3"
        messages = notices(app)
        assert any(
            "worker pid 4242 exited: resconv-tui: invalid configuration: --device cuda:3: "
            "this machine has 1 CUDA device: cuda:0" in m
            for m in messages
        ), messages
        assert app.ctx.worker_options == DEFAULT_WORKER  # the failed choice is not offered again


async def test_a_worker_whose_log_cannot_be_written_is_said_not_started(
    no_local_worker, db_url, settle, tmp_path
) -> None:
    # A dashboard opened in a folder it cannot write (/sys, another user's): w then enter
    # ended the dashboard with a traceback, "PermissionError: ... resconv-worker-....log".
    folder = tmp_path / "gone"
    app = make_app(db_url, clock=lambda: NOW, launcher=WorkerLauncher(log_folder=folder),
                   poll_interval_s=3600, export_dir=tmp_path, hostname=LOCAL_HOST)  # fmt: skip
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await pilot.press("w")
        dialog_fields(app)["slots"].value = "2"
        await pilot.press("enter")
        await settle(pilot)
        assert isinstance(app.screen, RunsScreen)  # running on, the dialog closed
        (said,) = [m for m in notices(app) if m.startswith("Worker not started")]
        assert f"cannot write its log {folder}/resconv-worker-" in said, said
        assert "No such file or directory: open the dashboard in a folder" in said, said
        assert app.ctx.worker_options.slots == 2  # the choice was not at fault: kept
    assert not folder.exists()


async def test_a_worker_started_from_a_removed_folder_is_said_not_started(
    no_local_worker, db_url, settle, tmp_path, monkeypatch
) -> None:
    # The dashboard's folder removed while it runs (rm -rf of a scratch folder): w then
    # enter ended the dashboard with "FileNotFoundError" from finding the log's folder.
    folder = tmp_path / "scratch"
    folder.mkdir()
    monkeypatch.chdir(folder)
    folder.rmdir()
    app = make_app(db_url, clock=lambda: NOW, launcher=WorkerLauncher(),
                   poll_interval_s=3600, export_dir=tmp_path, hostname=LOCAL_HOST)  # fmt: skip
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await pilot.press("w")
        await pilot.press("enter")
        await settle(pilot)
        assert isinstance(app.screen, RunsScreen)  # running on, the dialog closed
        (said,) = [m for m in notices(app) if m.startswith("Worker not started")]
        assert "the dashboard's folder is gone" in said, said
        assert "open the dashboard in a folder you can write" in said, said


async def test_a_worker_killed_at_once_is_said_killed_not_its_last_log_line(
    no_local_worker, app_factory, settle, launcher, tmp_path
) -> None:
    # kill -9 within the launch watch: "exited: 20:59:38 worker: run 17 lost/run: started"
    # quoted what it was doing as the reason, and the dialog's choice was taken back.
    launcher.exits_after, launcher.exit_status = 3, -signal.SIGKILL
    launcher.log_path = tmp_path / "worker.log"
    launcher.log_path.write_text("20:59:38 worker: run 17 lost/run: started\n")
    app = app_factory()
    async with app.run_test(size=SIZE) as pilot:
        await start_a_worker_that_exits(pilot, settle, launcher, "slots", "2")
        messages = notices(app)
        said = "worker pid 4242 was killed (SIGKILL); log:"
        (killed,) = [m.split("\n") for m in messages if m.startswith(said)]
        assert "".join(killed[1:]) == str(launcher.log_path), killed  # on lines of its own
        assert not any("run 17" in m for m in messages), messages
        assert app.ctx.worker_options.slots == 2  # the choice was not at fault: kept


async def test_a_worker_stopped_from_a_shell_is_no_failed_start(
    no_local_worker, app_factory, settle, launcher, tmp_path
) -> None:
    # `resconv-tui stop` within the launch watch: an error toast "exited", and the
    # dialog went back to offering the choice before (the stack of 4 was forgotten).
    launcher.exits_after, launcher.exit_status = 3, 0
    launcher.log_path = tmp_path / "worker.log"
    launcher.log_path.write_text("14:08:46 worker: stopped after 0 run(s)\n")
    app = app_factory()
    async with app.run_test(size=SIZE) as pilot:
        await start_a_worker_that_exits(pilot, settle, launcher, "stack", "4")
        notes = [(n.message, n.severity) for n in app._notifications]
        said = "worker pid 4242 stopped: 14:08:46 worker: stopped after 0 run(s)"
        assert (said, "information") in notes, notes
        assert app.ctx.worker_options.stack == 4  # kept for the next start


async def test_a_real_worker_on_a_missing_gpu_says_why_in_the_dashboard(
    no_local_worker, db_url, tmp_path, settle
) -> None:
    # The real launcher and worker process: the device is checked only after torch's import.
    class Launcher(WorkerLauncher):
        pids: list[int] = []

        def start(self, db_url: str, options: WorkerOptions = DEFAULT_WORKER) -> Launched:
            launched = super().start(db_url, options)
            self.pids.append(launched.pid)
            return launched

    launcher = Launcher(tmp_path)
    app = make_app(db_url, launcher=launcher, poll_interval_s=3600, export_dir=tmp_path)
    app.ctx.launch_poll_s = 0.2
    try:
        async with app.run_test(size=SIZE) as pilot:
            await settle(pilot)
            await pilot.press("w")
            dialog_fields(app)["device"].value = "cuda:999"
            await pilot.press("enter")
            for _ in range(300):
                messages = notices(app)
                if any("exited" in m for m in messages):
                    break
                await pilot.pause(0.1)
            assert any("exited: resconv-tui: invalid configuration: --device cuda:999: this "
                       "machine has" in m for m in messages), messages  # fmt: skip
    finally:
        for pid in launcher.pids:  # never leave a worker behind, whatever happened
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)


async def test_a_new_database_file_is_said_on_opening(tmp_path, settle) -> None:
    # `resconv-tui --db rusn.db` (a typo) must not look like an empty queue of the real one.
    typo = tmp_path / "rusn.db"
    app = make_app(f"sqlite:///{typo}", poll_interval_s=3600)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        messages = notices(app)
    assert f"new database {typo}: nothing queued yet (n: new sweep)" in messages
    again = make_app(f"sqlite:///{typo}", poll_interval_s=3600)
    assert again.ctx.notes == []


def first_help_section(app: Any) -> str:
    """The first section heading of the help screen shown."""
    table = app.screen.query_one("#help-keys").content
    headings = [str(cell) for cell in table.columns[1]._cells if str(cell).startswith("[b u]")]
    return headings[0].removeprefix("[b u]").removesuffix("[/]")


async def test_help_results_and_quit(seeded, app_factory, settle) -> None:
    from resconv_tui.screens.help import HelpScreen
    from resconv_tui.screens.results import ResultsScreen

    app = app_factory()
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await pilot.press("question_mark")
        assert isinstance(app.screen, HelpScreen)
        assert first_help_section(app) == "Runs (home)"
        await pilot.press("escape", "R")
        await settle(pilot)
        assert isinstance(app.screen, ResultsScreen)
        await pilot.press("question_mark")  # the results screen's keys first, not the runs'
        assert first_help_section(app) == "Results"
        await pilot.press("escape", "escape")
        assert isinstance(app.screen, RunsScreen)
        await pilot.press("q")
    assert app.return_code == 0


async def test_ctrl_c_says_which_key_quits_in_plain_words(seeded, app_factory, settle) -> None:
    """ctrl+c out of habit: Textual's note is markup, and this app's notifications are
    plain text: it read "Press [b]ctrl+q[/b] to quit the app"."""
    app = app_factory()
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await pilot.press("ctrl+c")
        await pilot.pause()
        said = notices(app)[-1]
        assert "q quits" in said and "[" not in said
        assert app.is_running


async def test_the_help_names_a_key_that_quits_from_a_form_field(
    seeded, app_factory, settle
) -> None:
    """The help's quit row: q is typed into a field of the new-sweep form (the form is all
    fields); the row must name a key that quits from there too."""
    from resconv_tui.screens.help import KEYS

    everywhere = dict(next(rows for section, rows in KEYS if section == "Everywhere"))
    quit_keys = next(key for key, what in everywhere.items() if what.startswith("quit"))
    quitting = []
    for key in quit_keys.split(" / "):
        app = app_factory()
        async with app.run_test(size=SIZE) as pilot:
            await settle(pilot)
            await pilot.press("n")
            await settle(pilot)
            await pilot.press(key)
            await settle(pilot)
            if not app.is_running:
                quitting.append(key)
    assert quitting, f"none of {quit_keys!r} quits from a form field"


async def test_the_help_names_a_key_that_shows_it_from_a_form_field(
    seeded, app_factory, settle
) -> None:
    """? is typed into a field (the form is all fields, the w dialog, the / filter)."""
    from resconv_tui.screens.help import KEYS, HelpScreen

    everywhere = dict(next(rows for section, rows in KEYS if section == "Everywhere"))
    help_keys = next(key for key, what in everywhere.items() if what.startswith("this help"))
    for opening in ("n", "w", "slash"):
        app = app_factory()
        async with app.run_test(size=SIZE) as pilot:
            await settle(pilot)
            await pilot.press(opening)
            await settle(pilot)
            for key in help_keys.split(" / "):
                await pilot.press(key)
                await settle(pilot)
                if isinstance(app.screen, HelpScreen):
                    break
            assert isinstance(app.screen, HelpScreen), (opening, help_keys)


async def test_the_footer_offers_no_find_key_while_typing_the_filter(
    seeded, app_factory, settle
) -> None:
    """In the filter field ``/`` is typed (Textual hides q, f ... there, not /)."""
    app = app_factory()
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        assert "/ Find" in (await drawn(pilot, "/ Find")).splitlines()[-1]
        await pilot.press("slash", "a", "slash")
        await settle(pilot)
        assert app.screen.query_one("#runs-search").value == "a/"
        # The typing footer, drawn (its keys), before what it must not offer.
        footer = (await drawn(pilot, "enter Keep filter")).splitlines()[-1]
        assert "/ Find" not in footer
        # Typed over, the placeholder no longer says how to leave: the footer does.
        assert "enter Keep filter" in footer and "esc Clear" in footer
        await pilot.press("enter")  # back in the table: / finds again
        await settle(pilot)
        assert "/ Find" in (await drawn(pilot, "/ Find")).splitlines()[-1]


async def test_an_80_column_terminal_shows_val_loss_and_params_without_scrolling(
    seeded, app_factory, settle, db_url
) -> None:
    from core.config import RunConfig
    from core.queue import NewRun

    long_name = "l-1_ch-8_seed-0_channels-24_act-relu"  # cut, not pushing params off screen
    repo = Repo.open(db_url)
    repo.enqueue([NewRun.from_config(RunConfig(), experiment="x", name=long_name, param_count=1)])
    repo.close()
    app = app_factory()
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        keys = [str(c.key.value) for c in table(app).columns.values()]
        assert "priority" not in keys and "experiment" not in keys
        assert keys[-2:] == ["loss", "params"]
        assert table(app).max_scroll_x == 0
        assert cell(app, 4, "progress") == " 50%"
        panel = str(app.screen.query_one(WorkersPanel).render()).splitlines()
        assert len(panel) == 2 and all(len(line) <= 78 for line in panel)  # one line each
        # The narrow GPU figure keeps room for the line's heartbeat age.
        assert panel[1].startswith("● gpu-box    cuda:0  GPU  87% 5.0/24.0 GiB  run 4")
        assert panel[1].endswith("ago")
        await goto(pilot, 4)
        # Cut where the 80 columns run out, and seen to be cut.
        # (Room is kept for a vertical scrollbar, and ETA and in/s have floors: 14 here.)
        assert cell(app, 9, "name").endswith("…") and len(cell(app, 9, "name")) >= 14
        # At 120 the long name would still push params off screen (it did at 100), but
        # the narrow layout's names take the room there is: whole again.
        await pilot.resize_terminal(120, 36)
        await settle(pilot)
        assert len(table(app).columns) == 9 and table(app).max_scroll_x == 0
        assert cell(app, 9, "name") == long_name
        await pilot.resize_terminal(140, 36)  # wide again: every column, the bar back
        await settle(pilot)
        assert len(table(app).columns) == 11 and table(app).highlighted_id == 4
        assert cell(app, 9, "name") == long_name
        assert cell(app, 4, "progress").startswith("━")
        assert table(app).max_scroll_x == 0
        # Once the long-named run is gone, 120 columns hold every column again.
        await pilot.resize_terminal(120, 36)
        await settle(pilot)
        assert len(table(app).columns) == 9
        Repo.open(db_url).remove([9])
        app.screen.refresh_now()
        await settle(pilot)
        assert len(table(app).columns) == 11 and table(app).max_scroll_x == 0


async def test_at_80_columns_cut_names_keep_what_tells_runs_apart(
    seeded, app_factory, settle, db_url
) -> None:
    # Three seeds of a variant read "act-gelu_see…" each: the end, which differs, was cut.
    from dataclasses import replace

    from core.config import RunConfig
    from core.queue import NewRun
    from core.sweep import slug

    repo = Repo.open(db_url)
    swept = [{"act": "gelu", "seed": seed, "max_inputs": 640} for seed in range(3)]
    runs = [
        NewRun.from_config(replace(RunConfig(), seed=s["seed"]), experiment="x", name=slug(s),
                           param_count=1, swept=s)
        for s in swept
    ]  # fmt: skip
    ids = repo.enqueue(runs).added_ids
    repo.close()
    app = app_factory()
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        assert table(app).narrow
        names = [cell(app, run_id, "name") for run_id in ids]
        assert names == ["…seed-0…", "…seed-1…", "…seed-2…"], names


async def test_at_80_columns_a_cut_name_keeps_a_key_where_it_fits(
    db_url, app_factory, settle
) -> None:
    # Two activations' seeds read "…gelu_0" at 80 columns: no key left in the cut.
    repo = Repo.open(db_url)
    sweep = "name: acts\nlayers: 2\nchannels: 4\nmatrix:\n  act: [gelu, relu]\n  seed: [0, 1, 2]\n"
    # A 7-digit parameter count and a "cancelled" leave the names 10 to 13 cells.
    ids = repo.enqueue([replace(r, param_count=1_234_567) for r in new_runs(sweep)]).added_ids
    repo.request_cancel([ids[-1]])
    repo.close()
    app = app_factory()
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        assert table(app).narrow
        names = [cell(app, run_id, "name") for run_id in ids]
        width = table(app).name_width
        assert len(set(names)) == 6 and all(cell_len(name) <= width for name in names)
        # In 11 cells "…gelu_seed-0" (12) does not fit, and act's key does.
        assert (width, names[0], names[4]) == (11, "…act-gelu_0", "…act-relu_1"), names


# At 60 columns the rate and params columns are left out (TIGHT_DROPS): the names have
# the room of 80 columns' and are all told apart there too (4 of 8 in 8 cells before).
@pytest.mark.parametrize(("size", "told_apart"), [((80, 24), 8), ((60, 24), 8)])
async def test_narrow_names_of_three_swept_keys_stay_told_apart(
    db_url, app_factory, settle, size, told_apart
) -> None:
    # Each part is shared by four runs, so dropping shared parts tells none apart, and
    # kept from the end channels-16_kernel_size-3_lr-0.001 and its channels-32 twin both
    # read "…size-3_lr-0.001" at 80 columns (4 names for 8 runs), "…r-0.001" at 60 (2).
    repo = Repo.open(db_url)
    sweep = ("name: exp\nmax_inputs: 256\nmatrix:\n  channels: [16, 32]\n"
             "  kernel_size: [3, 5]\n  lr: [0.001, 0.003]\n")  # fmt: skip
    ids = repo.enqueue(new_runs(sweep)).added_ids
    repo.close()
    app = app_factory()
    async with app.run_test(size=size) as pilot:
        await settle(pilot)
        assert table(app).narrow
        names = [cell(app, run_id, "name") for run_id in ids]
        assert len(set(names)) == told_apart, names  # 8 cells at 60 columns: no more
        assert all(cell_len(name) <= table(app).name_width for name in names)
        if told_apart == 8:
            assert names[0] == "…16_3_0.001" and names[7] == "…32_5_0.003"


async def test_narrow_names_of_three_experiments_sweeping_other_keys_stay_told_apart(
    db_url, app_factory, settle
) -> None:
    # At 66 columns (11 cells of names) RWF beside act and lr at each name's start kept
    # every key in the values: "RWF--0.5…" for three runs, "act-gelu…" for two, 9 names
    # for 21 runs.
    repo = Repo.open(db_url)
    sweeps = (
        "name: rw-neg\nlayers: 2\nchannels: 4\nmatrix:\n  RWF: [-0.5, -0.25, 0.5]\n"
        "  ks: [[3, 5], [3, 7], 3]\n",
        "name: acts\nlayers: 2\nchannels: 4\nmatrix:\n  act: [gelu, relu]\n  seed: [0, 1]\n",
        "name: lrs\nlayers: 2\nmatrix:\n  lr: [0.00125, 0.003, 1.0e-05, 0.001]\n  ch: [16, 32]\n",
    )
    ids = [run_id for sweep in sweeps for run_id in repo.enqueue(new_runs(sweep)).added_ids]
    repo.close()
    app = app_factory()
    async with app.run_test(size=(66, 34)) as pilot:
        await settle(pilot)
        assert table(app).narrow
        names = [cell(app, run_id, "name") for run_id in ids]
        assert all(cell_len(name) <= table(app).name_width for name in names)
        assert len(set(names)) >= 20, names  # RWF 0.5's ks lists alone share "RWF-0.5…"
        assert names[9] == "…act-gelu_0" and "…0.00125_16" in names, names


@pytest.mark.parametrize("width", [80, 81, 82, 83])
async def test_narrow_names_never_start_inside_a_value(db_url, app_factory, settle, width) -> None:
    # Kept from its end, lr-0.1_kernel_size-3 read "…-0.1_kernel_size-3" (lr -0.1) or
    # "….1_kernel_size-3" (lr .1) where the name column had 19 or 17 cells (83 and 81
    # columns), "…0.1_kernel_size-3" (no key) at 82 and "…1_kernel_size-3" at 80.
    repo = Repo.open(db_url)
    sweep = ("name: exp\nmax_inputs: 256\nmatrix:\n  lr: [0.1, 0.3]\n"
             "  kernel_size: [3, 5]\n")  # fmt: skip
    ids = repo.enqueue(new_runs(sweep)).added_ids
    repo.close()
    app = app_factory()
    async with app.run_test(size=(width, 24)) as pilot:
        await settle(pilot)
        names = [cell(app, run_id, "name") for run_id in ids]
        assert len(set(names)) == 4, names
        for name in names:
            tail = name.removeprefix("…")
            assert not tail.startswith(("-", ".", "1", "3")), names
            assert "kernel_size-" not in name or name.startswith("lr-") or tail[0] == "k", names


@pytest.mark.parametrize("width", [60, 66, 72])
async def test_narrow_names_never_end_inside_a_number(db_url, app_factory, settle, width) -> None:
    # Cut at its start, ch-16_lr-0.00125 read "…16_0.001…" (lr 0.001, the sweep's usual
    # lr) where the name column had 10 cells.
    repo = Repo.open(db_url)
    sweep = ("name: exp\nmax_inputs: 256\nmatrix:\n  ch: [16, 32]\n"
             "  lr: [0.00125, 0.003]\n")  # fmt: skip
    ids = repo.enqueue(new_runs(sweep)).added_ids
    repo.close()
    app = app_factory()
    numbers = re.compile(r"\d[\d.,]*(?:[eE][-+]?\d+)?")
    async with app.run_test(size=(width, 24)) as pilot:
        await settle(pilot)
        names = [cell(app, run_id, "name") for run_id in ids]
        assert all(set(numbers.findall(name)) <= {"16", "32", "0.00125", "0.003"}
                   for name in names), names  # fmt: skip


def test_a_name_given_otherwise_is_not_cut_inside_a_number() -> None:
    from resconv_tui.name_cuts import cut_names

    # No key known: kept from the end, run-0.15 read "….15" at 4 cells.
    names = {1: "run-0.15", 2: "run-0.25", 3: "job-a-1", 4: "job-b-1"}
    parts = {run_id: (name,) for run_id, name in names.items()}
    for width in (3, 4):
        assert not any(cut.startswith(("….", "…-", "…1", "…5")) for cut in
                       cut_names(parts, names, width).values())  # fmt: skip
    assert cut_names(parts, names, 5)[1] == "…0.15"  # from the '-' on: the number whole


def test_values_kept_leaves_out_the_keys_the_names_share_at_each_place() -> None:
    from resconv_tui.name_cuts import values_kept

    parts = {1: ("channels-16", "lr-0.001"), 2: ("channels-32", "lr-0.003"),
             3: ("channels-32", "lr-0.003", "bs-32"), 4: ("given-name",)}  # fmt: skip
    assert values_kept(parts) == {
        1: "…16_0.001", 2: "…32_0.003", 3: "…32_0.003_bs-32", 4: "given-name"
    }  # fmt: skip
    # Up to the first '-': a value's own '-' stays (lr-1e-05 beside lr-1e-06), and a key
    # with a '-' (an alias such as bnp-e) is still told apart.
    assert values_kept({1: ("bnp-e-1", "lr-1e-05"), 2: ("bnp-e-2", "lr-1e-06")}) == {
        1: "…e-1_1e-05", 2: "…e-2_1e-06"
    }  # fmt: skip


def test_values_kept_leaves_out_each_key_other_names_share_at_its_place() -> None:
    from resconv_tui.name_cuts import values_kept

    # The dashboard lists every experiment's runs: one sweep's RWF beside another's act
    # at place 0 kept both keys in every name, and at 66 columns (11 cells) 21 runs of
    # three sweeps read as 9 names ("RWF--0.5…" for three).
    parts = {1: ("RWF--0.5", "ks-3,5"), 2: ("RWF--0.25", "ks-3,5"), 3: ("act-gelu", "seed-0"),
             4: ("act-relu", "seed-0"), 5: ("lr-0.1", "ch-16")}  # fmt: skip
    assert values_kept(parts) == {
        1: "…-0.5_3,5", 2: "…-0.25_3,5", 3: "…gelu_0", 4: "…relu_0", 5: "…lr-0.1_ch-16"
    }  # fmt: skip


def test_a_cut_name_loses_its_most_shared_parts_first() -> None:
    from collections import Counter

    from resconv_tui.name_cuts import cut_name

    names = [("act-gelu", f"seed-{s}", "max_inputs-640") for s in range(3)]
    names += [("l-1", "ch-16"), ("l-1", "ch-24"), ("act-gelu",)]
    shared = Counter(part for name in names for part in name)
    assert cut_name(names[0], shared, 13) == "…seed-0…"
    assert cut_name(names[0], shared, 22) == "…seed-0_max_inputs-640"  # act-gelu: in 4
    assert cut_name(names[3], shared, 8) == "…ch-16"
    assert cut_name(("l-1", "ch-16", "lr-0.001"), Counter({"ch-16": 2}), 13) == "l-1…lr-0.001"
    assert cut_name(("a-very-long-unique-part",), shared, 8) == "a-very-…"  # one part: cut


def test_a_text_kept_by_its_ends_never_cuts_a_number() -> None:
    from resconv_tui.name_cuts import keep_ends

    # "t1-layers-3…inputs-1000" (layers 3) in 23 cells, "t1…00" in 5, "t4-…-256" (minus).
    numbers = re.compile(r"\d[\d.,]*(?:[eE][-+]?\d+)?")
    for text in ("t1-layers-32-inputs-1000", "t4-batchnorm-position-inputs-256", "lr-0.125-a"):
        for width in range(5, len(text)):
            kept = keep_ends(text, width)
            assert cell_len(kept) <= width and not re.search(r"…-\d", kept), (width, kept)
            assert set(numbers.findall(kept)) <= set(numbers.findall(text)), (width, kept)
    assert keep_ends("t1-layers-32-inputs-1000", 23) == "t1-layers-…inputs-1000"
    assert keep_ends("t1-layers-32-inputs-1000", 8) == "t1-…1000"  # the end's number whole


def test_a_name_kept_from_its_start_never_ends_inside_a_number() -> None:
    from resconv_tui.name_cuts import keep_start

    # "lr-0.1…" of lr-0.125 read as lr 0.1: a number that does not fit goes whole.
    assert keep_start("lr-0.125", 7) == "lr-…" and keep_start("lr-0.125", 8) == "lr-0.125"
    assert keep_start("lr-1e-05_act-gelu", 7) == "lr-…"  # not "lr-1e-…", nor "lr-1…"
    assert keep_start("ks-3,5_act-gelu", 6) == "ks-…"  # a list is one value
    assert keep_start("lr-0.125_act-gelu", 9) == "lr-0.125…"  # the number whole: kept
    assert keep_start("…0.125_gelu", 5) == "…"  # not "……"
    assert keep_start("t1-layers-32-inputs-640", 12) == "t1-layers-…"


def test_a_name_queued_with_python_s_booleans_keeps_its_parts() -> None:
    from resconv_tui.name_cuts import name_parts

    # Today's names write false; a row queued before, bnp-e-False, is still cut by its
    # parts in its own spelling (one part, it lost its key first of all).
    swept = {"bnp-e": False, "lr": 0.001}
    assert name_parts("bnp-e-false_lr-0.001", swept) == ("bnp-e-false", "lr-0.001")
    assert name_parts("bnp-e-False_lr-0.001", swept) == ("bnp-e-False", "lr-0.001")
    assert name_parts("renamed_lr-0.001", swept) == ("renamed_lr-0.001",)


def test_cut_names_stay_told_apart() -> None:
    from resconv_tui.name_cuts import cut_names

    # Two cells' seeds: dropping the most shared part made both "…seed-0".
    parts = {1: ("act-gelu", "seed-0"), 2: ("act-gelu", "seed-1"), 3: ("act-gelu", "seed-2"),
             4: ("act-relu", "seed-0"), 5: ("act-relu", "seed-1")}  # fmt: skip
    names = {run_id: "_".join(each) for run_id, each in parts.items()}
    cut = cut_names(parts, names, 14)
    assert cut[1] == "…t-gelu_seed-0" and cut[4] == "…t-relu_seed-0"
    assert len(set(cut.values())) == 5
    # Where dropping the shared parts tells them apart, that is the cut.
    seeds = {i: ("act-gelu", f"seed-{i}", "max_inputs-640") for i in range(3)}
    assert set(cut_names(seeds, {i: "_".join(p) for i, p in seeds.items()}, 13).values()) == {
        "…seed-0…", "…seed-1…", "…seed-2…"
    }  # fmt: skip
    assert cut_names(parts, names, 40) == {}  # every name fits
    # At 10 cells (a "validating ⨯" status at 80 columns) the first way's cut alone
    # showed both act-tanh seeds as "act-tanh…"; their values tell them apart, each key
    # left out where another name has it at its place (ks-, act-, seed-).
    names = {1: "ks-3_seed-0", 2: "ks-3_seed-1", 3: "ks-3_seed-2", 4: "act-relu_seed-0",
             5: "act-gelu_seed-0", 6: "act-tanh_seed-1", 7: "act-tanh_seed-2"}  # fmt: skip
    parts = {run_id: tuple(name.split("_")) for run_id, name in names.items()}
    cut = cut_names(parts, names, 10)
    assert len(set(cut.values())) == 7 and all(len(c) <= 10 for c in cut.values())
    assert (cut[1], cut[6], cut[7]) == ("…ks-3_0", "…tanh_1", "…tanh_2")


def test_a_cut_of_values_gives_keys_back_where_the_room_allows() -> None:
    from resconv_tui.name_cuts import cut_names

    # Two activations' seeds: each key left out, act-gelu_seed-0 read "…gelu_0" in 12
    # cells, where "…gelu_seed-0" fits: what 0 is was left to guess.
    parts = {
        i: (f"act-{act}", f"seed-{i % 3}") for i, act in enumerate(["gelu"] * 3 + ["relu"] * 3)
    }
    names = {run_id: "_".join(each) for run_id, each in parts.items()}
    assert cut_names(parts, names, 12)[0] == "…gelu_seed-0"
    assert cut_names(parts, names, 11)[0] == "…act-gelu_0"  # the one that fits
    assert cut_names(parts, names, 10)[0] == "…gelu_0"
    # A number is given no key after it where it lost its own: "…0.1_kernel_size-3"
    # reads as a name's end cut inside it (lr-10.1, at lr 0.1).
    parts = {i: (f"lr-0.{i // 2 + 1}", f"kernel_size-{3 + 2 * (i % 2)}") for i in range(4)}
    names = {run_id: "_".join(each) for run_id, each in parts.items()}
    assert cut_names(parts, names, 18)[0] == "…lr-0.1_3"


def test_a_cut_that_reads_as_another_row_s_name_does_not_tell_its_row_apart() -> None:
    from resconv_tui.name_cuts import cut_names

    # In 15 cells lr-0.00125_ch-16 read "…ch-16", its lr left out: a row of its own only
    # beside lr-0.003_ch-16 shown whole, whose end it is too.
    names = {1: "lr-0.00125_ch-16", 2: "lr-0.00125_ch-32", 3: "lr-0.003_ch-16",
             4: "lr-0.003_ch-32"}  # fmt: skip
    parts = {run_id: tuple(name.split("_")) for run_id, name in names.items()}
    assert cut_names(parts, names, 15) == {1: "…lr-0.00125_16", 2: "…lr-0.00125_32"}
    # Where no cut tells them apart, the one showing the most rows differently.
    assert len(set(cut_names(parts, names, 8).values())) == 2


async def test_at_80_columns_wide_cells_cut_the_names_not_params(
    seeded, app_factory, settle, db_url
) -> None:
    # A cancelled run's "cancelled ⨯" and a 7-digit count made the other columns so wide
    # that the names' 18 cells pushed params to "1,33" and a sideways scrollbar.
    from core.config import RunConfig
    from core.queue import NewRun

    repo = Repo.open(db_url)
    big = NewRun.from_config(RunConfig(), experiment="x", name="l-30_ch-64_seed-0_act-relu",
                             param_count=1_234_567)  # fmt: skip
    (big_id,) = repo.enqueue([big]).added_ids
    repo.request_cancel([7])  # queued: cancelled at once
    repo.close()
    app = app_factory()
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        assert cell(app, 7, "status") == "cancelled"  # no ⨯ once it is done
        assert table(app).max_scroll_x == 0
        assert cell(app, big_id, "params") == "1,234,567"
        assert cell(app, big_id, "name").endswith("…")
        # The summary closes up rather than wrapping onto a second line (a table row).
        summary = app.screen.query_one("#runs-summary")
        said = "9 runs·2 queued·1 running·3 succeeded·1 failed (1 oom)·2 cancelled │ ETA "
        assert summary.size.height == 1 and str(summary.render()).startswith(said)
        # Narrower, the failures' causes go, then the settled counts (the causes come back
        # in their room); never the failed count before the total alone (it read "17 runs
        # │ ETA 5m15s" with 1 failed).
        await pilot.resize_terminal(72, 24)
        app.screen.refresh_now()
        await settle(pilot)
        said = "9 runs·2 queued·1 running·3 succeeded·1 failed·2 cancelled │ ETA "
        assert str(summary.render()).startswith(said)
        await pilot.resize_terminal(60, 24)
        app.screen.refresh_now()
        await settle(pilot)
        said = "9 runs·2 queued·1 running·1 failed (1 oom) │ ETA "
        assert str(summary.render()).startswith(said)
        await pilot.resize_terminal(80, 24)
        # With a filter too (F), the counts but the total go.
        await pilot.press("F")
        app.screen.refresh_now()
        await settle(pilot)
        assert str(summary.render()).startswith("9 runs (4 shown) │ ETA ")
        assert summary.size.height == 1 and " │ exp=" in str(summary.render())
        await pilot.resize_terminal(120, 36)  # room for the counts again
        app.screen.refresh_now()
        await settle(pilot)
        assert "2 queued" in str(summary.render()) and summary.size.height == 1


def footer(app: Any) -> str:
    """The screen's last line as drawn: its footer."""
    return screen_text(app).splitlines()[-1].rstrip()


def footer_ends_with(app: Any, keys: str) -> bool:
    return footer(app).endswith(keys)


async def test_at_80_columns_the_footers_keep_help_and_quit(seeded, app_factory, settle) -> None:
    app = app_factory()
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        assert await eventually(pilot, lambda: footer_ends_with(app, "? Help q Quit")), footer(app)
        await pilot.press("R")  # results
        await settle(pilot)
        # The results screen's frame (its status line) before its footer is read.
        assert "finished run" in await drawn(pilot, "finished run")
        assert footer(app).endswith("? Help q Quit")


async def test_a_footer_drawn_wide_fits_again_when_the_terminal_narrows(
    seeded, app_factory, settle
) -> None:
    # Opened at 160 columns and narrowed to 80, the results footer kept its ^p palette
    # key over its last ones ("? He▏^p palette"); widened again, a screen opened narrow
    # never showed it.
    app = app_factory()
    async with app.run_test(size=(160, 45)) as pilot:
        await settle(pilot)
        await pilot.press("R")  # results
        await settle(pilot)
        # The results screen's frame (its status line) before its footer is read.
        assert "finished run" in await drawn(pilot, "finished run")
        assert footer(app).endswith("^p palette")
        await pilot.resize_terminal(80, 24)
        await settle(pilot)
        assert await eventually(pilot, lambda: footer_ends_with(app, "? Help q Quit")), footer(app)
        await pilot.resize_terminal(160, 45)
        await settle(pilot)
        assert await eventually(pilot, lambda: footer_ends_with(app, "^p palette")), footer(app)


async def test_help_fits_an_80_column_terminal(seeded, app_factory, settle) -> None:
    app = app_factory()
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        await pilot.press("question_mark")
        await settle(pilot)
        dialog = app.screen.query_one("#help-dialog")
        assert dialog.region.right <= 80  # wraps its lines instead of clipping them


def test_the_remove_question_says_checkpoint_folders_stay(seeded, db_url, tmp_path) -> None:
    from dataclasses import replace

    from core.run_folders import claim_run_folder, run_owner
    from resconv_tui.screens.runs_actions import _remove_question

    here = tmp_path / "ck" / "t1" / "run-1"
    here.mkdir(parents=True)
    one, two = (replace(run(db_url, i), checkpoint_path=str(here)) for i in (1, 2))
    assert _remove_question([one], db_url) == (
        "Remove run 1 (succeeded) and its metrics and results? This cannot be undone. "
        f"The checkpoint folder {here} stays on disk."
    )
    assert _remove_question([one, two, run(db_url, 7)], db_url).endswith(
        "This cannot be undone. The checkpoint folders of the 2 that started stay on disk."
    )
    # A failed run records no folder, but may have one: counted too.
    assert _remove_question([run(db_url, 5)], db_url).endswith(
        "This cannot be undone. Run 5's checkpoint folder, if made, stays on disk."
    )
    assert _remove_question([run(db_url, 7)], db_url).endswith("This cannot be undone.")  # queued
    # Queued again after it trained (put back, retried): its folder stays too, as `rm` says.
    again = replace(run(db_url, 7), attempts=1, checkpoint_path="/ck/t1/run-7")
    assert _remove_question([run(db_url, 5), again], db_url).endswith(
        "This cannot be undone. The checkpoint folders of the 2 that started stay on disk."
    )
    # The question said "stays on disk" of the row's folder alone, unlooked for: another
    # box's (a shared queue) or one deleted since is said not here, as `rm` says it...
    gone = replace(one, checkpoint_path="/ck/t1/run-1")
    assert _remove_question([gone], db_url).endswith(
        "This cannot be undone. The checkpoint folder /ck/t1/run-1 is not found on this host."
    )
    # ... and one its row does not name (a run lost with its worker) is found by its
    # run.json, as `rm` and `show` find it: named, not "Run 5's".
    lost = run(db_url, 5)
    owner = run_owner(lost.id, lost.experiment, lost.config_hash, lost.created_at)
    folder = claim_run_folder(tmp_path / "checkpoints" / lost.experiment, lost.id, owner)
    assert _remove_question([lost], db_url).endswith(
        f"This cannot be undone. The checkpoint folder {folder} stays on disk."
    )


async def test_a_wide_eta_cell_makes_the_table_narrow_rather_than_scroll(
    seeded, app_factory, settle, db_url
) -> None:
    # "silent 25m00s" is wider than any ETA: judged from the cells shown, not a guess.
    app = app_factory()
    async with app.run_test(size=(100, 30)) as pilot:
        await settle(pilot)
        assert len(table(app).columns) == 11 and table(app).max_scroll_x == 0
        with sqlite3.connect(db_url.removeprefix("sqlite:///")) as conn:
            conn.execute("UPDATE run SET heartbeat_at = heartbeat_at - 1500 WHERE id = 4")
        app.screen.refresh_now()
        await settle(pilot)
        assert cell(app, 4, "eta").startswith("silent ")
        assert len(table(app).columns) == 9 and table(app).max_scroll_x == 0


def test_an_experiment_filter_says_its_experiment_is_done(seeded: dict, db_url: str) -> None:
    # At 80 columns "│ ETA 3m35s │ exp=t1" read as the finished experiment's ETA: the
    # queue's, for other experiments' runs. The filter says "done" instead.
    from seed_runs import new_run

    from core.queue.rows import FinalFigures
    from resconv_tui.polling import read_dashboard

    repo = Repo.open(db_url)
    (finished,) = repo.enqueue([new_run(2, experiment="finished")], priority=99).added_ids
    worker = repo.register_worker("h", 1, "cpu")
    assert repo.claim(worker).id == finished
    assert repo.finish(finished, worker, FinalFigures(0.1, None, 10.0, 100.0, None, 64_000))
    dash = read_dashboard(repo, time.time())
    assert RunsScreen._experiment_eta(dash, "finished") == " (done)"
    # Runs left whose end this clock cannot tell (the seeded workers are long silent): no
    # ETA, and not "done" either.
    assert "t1-layers-32" not in dash.experiment_etas
    assert RunsScreen._experiment_eta(dash, "t1-layers-32") == ""


def test_the_line_under_the_table_is_shortened_to_fit_not_cut() -> None:
    # At 80 columns it read "... train loss 0.37212 · val", the val loss cut off.
    from rich.cells import cell_len

    from resconv_tui.screens.runs import _fitted

    line = "run 3 · t1-layers-32-inputs-300 · l-3 · priority 1 · train loss 0.37212 · val loss "
    line += "0.35000 @ 300 inputs"
    assert _fitted(line, 120) == line
    assert _fitted(line, 90) == (
        "run 3 · t1-layers-32-inputs-300 · l-3 · pri 1 · train 0.37212 · val 0.35000 @ 300 inputs"
    )
    assert _fitted(line, 78).endswith("· pri 1 · train 0.37212 · val 0.35000")
    # Still too long (a failed run's error): cut where it must be, and marked so.
    failed = "run 14 · boom · act-gelu · priority 10 · failed, loss NaN/inf: loss became NaN "
    failed += "at step 4"
    assert _fitted(failed, 80) == (
        "run 14 · boom · act-gelu · pri 10 · failed, loss NaN/inf: loss became NaN at st…"
    )
    assert cell_len(_fitted("実験 " * 50, 80)) == 80


def test_the_line_under_the_table_says_where_the_val_loss_was_measured() -> None:
    # It read "val loss 0.11305 @ 81,888 inputs" for a pass made at 60,000 inputs: the
    # inputs were the newest train point's.
    from types import SimpleNamespace

    from core.queue import MetricRow
    from resconv_tui.polling import LatestLosses, fold_losses
    from resconv_tui.screens.runs import _detail_text

    rows = [
        MetricRow(1, 3, 937, 60_000, "train_loss", 0.3),
        MetricRow(2, 3, 937, 60_000, "val_loss", 0.11305),
        MetricRow(3, 3, 1279, 81_888, "train_loss", 0.23464),
    ]
    run = SimpleNamespace(id=3, experiment="t3", name="RWF-0.01", priority=0, error=None,
                          status=RunStatus.RUNNING)  # fmt: skip
    early = fold_losses(LatestLosses(3), rows[:1])
    assert _detail_text(run, early).endswith(  # type: ignore[arg-type]
        "train loss 0.30000 @ 60,000 inputs · val loss —"
    )
    latest = fold_losses(early, rows[1:])
    assert _detail_text(run, latest).endswith(  # type: ignore[arg-type]
        "train loss 0.23464 · val loss 0.11305 @ 60,000 inputs"
    )


def queue_seeds(db_url: str, count: int) -> list[int]:
    """``count`` more queued runs (seeds 0..count-1 of one config): their ids."""
    from core.config import RunConfig
    from core.queue import NewRun

    runs = [
        NewRun.from_config(replace(RunConfig(), seed=seed), experiment="many",
                           name=f"seed-{seed}", param_count=1)
        for seed in range(count)
    ]  # fmt: skip
    repo = Repo.open(db_url)
    try:
        return list(repo.enqueue(runs).added_ids)
    finally:
        repo.close()


async def test_the_cancel_question_of_many_runs_names_a_few(
    seeded, app_factory, settle, db_url
) -> None:
    # Hundreds of marked runs, one training: the question named every id, and the dialog grew
    # past the screen's foot with its buttons. A few ids and how many more; the answer's
    # notice alike.
    running = seeded["running"]
    fresh_heartbeat(db_url, running)
    many = queue_seeds(db_url, 20)
    app = app_factory()
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        question = await cancel_question(pilot, running, *many)
        assert question == (
            f"Run {running} is training. Cancel runs {running}, {many[0]}, {many[1]}, "
            f"{many[2]}, {many[3]} and 16 more?"
        )
        await pilot.press("n")
        await settle(pilot)
        await pilot.press("escape")  # clear the marks
        # Six ids are named whole: cutting one off would save nothing.
        question = await cancel_question(pilot, running, *many[:5])
        listed = ", ".join(map(str, many[:5]))
        assert question == f"Run {running} is training. Cancel runs {running}, {listed}?"
        await pilot.press("escape", "escape")  # no, and clear the marks
        await settle(pilot)
        await cancel_question(pilot, running, *many)
        await pilot.press("y")
        await settle(pilot)
        assert all(run(db_url, i).status == RunStatus.CANCELLED for i in many)
        assert run(db_url, running).cancel_requested
        assert (
            f"cancelled: runs {many[0]}, {many[1]}, {many[2]}, {many[3]}, {many[4]} and 15 more; "
            f"cancel requested: run {running} (its worker stops it within a few seconds)"
        ) in notices(app)


@pytest.mark.parametrize(("key", "now"), [("c", "cancelled"), ("r", "queued")])
async def test_a_batch_refused_for_runs_changed_since_the_poll_names_a_few(
    seeded, app_factory, settle, db_url, key: str, now: str
) -> None:
    # Many marked runs cancelled (retried) elsewhere after the last poll: c (r) was refused
    # naming each, "run 9 is cancelled, run 10 is cancelled, ..." twenty times over.
    many = queue_seeds(db_url, 20)
    repo = Repo.open(db_url)
    if key == "r":
        repo.request_cancel(many)  # as the poll reads them: cancelled, so r retries them
    repo.close()
    app = app_factory()
    async with app.run_test(size=SIZE, notifications=True) as pilot:
        await settle(pilot)
        await mark(pilot, *many)
        repo = Repo.open(db_url)
        (repo.retry if key == "r" else repo.request_cancel)(many)
        repo.close()
        await pilot.press(key)
        await settle(pilot)
        assert notices(app)[-1].startswith(
            f"Not allowed: runs {', '.join(map(str, many[:5]))} and 15 more are {now}: "
        ) and notices(app)[-1].endswith("; nothing changed"), notices(app)
        assert app.screen.marked == set(many)  # refused whole: the marks kept


async def test_cancel_of_marked_runs_leaves_the_finished_ones_and_says_so(
    seeded, app_factory, settle, db_url
) -> None:
    # A succeeded run marked for compare beside a training and a queued run: the question
    # named all three ("Cancel runs 1, 4, 7?"), and its yes failed whole ("run 1 has
    # succeeded: only queued or running runs can be cancelled; nothing changed").
    running = seeded["running"]
    fresh_heartbeat(db_url, running)
    app = app_factory()
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        assert await cancel_question(pilot, 1, running, 7) == (
            "Run 1 has succeeded: only queued or running runs can be cancelled. "
            f"Run {running} is training. Cancel runs {running}, 7?"
        )
        await pilot.press("y")
        await settle(pilot)
        assert run(db_url, running).cancel_requested
        assert run(db_url, 7).status == RunStatus.CANCELLED
        assert run(db_url, 1).status == RunStatus.SUCCEEDED
        assert cell(app, 7, "status") == "cancelled" and cell(app, 1, "status") == "succeeded"
        assert app.screen.marked == frozenset()
        # Nothing training: no question, the others said in a warning beside the cancel.
        await mark(pilot, 1, 2, seeded["failed"], seeded["cancelled"], 8)
        await pilot.press("c")
        await settle(pilot)
        assert isinstance(app.screen, RunsScreen)
        assert run(db_url, 8).status == RunStatus.CANCELLED
        assert [run(db_url, i).status for i in (1, 2, 5, 6)] == [
            RunStatus.SUCCEEDED, RunStatus.SUCCEEDED, RunStatus.FAILED, RunStatus.CANCELLED
        ]  # fmt: skip
        assert notices(app)[-2:] == [
            "runs 1, 2 have succeeded, run 5 has failed, run 6 is cancelled: only queued or "
            "running runs can be cancelled",
            "cancelled: run 8",
        ]
        assert app.screen.marked == frozenset()
        # None of them can be: said, nothing written, the marks kept.
        await mark(pilot, 1, 8)
        await pilot.press("c")
        await settle(pilot)
        assert notices(app)[-1] == (
            "run 1 has succeeded, run 8 is cancelled: only queued or running runs can be "
            "cancelled; nothing changed"
        )
        assert app.screen.marked == {1, 8}


async def test_retry_of_marked_runs_leaves_the_others_and_says_so(
    seeded, app_factory, settle, db_url
) -> None:
    # A succeeded run marked beside a failed and a cancelled one failed the whole retry
    # ("run 1 has succeeded: only failed or cancelled runs can be retried; nothing
    # changed"), as c did: r queues the two again and names the others, as c, t and + do.
    failed, cancelled = seeded["failed"], seeded["cancelled"]
    app = app_factory()
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await mark(pilot, 1, failed, cancelled, 7)
        await pilot.press("r")
        await settle(pilot)
        assert [run(db_url, i).status for i in (1, failed, cancelled, 7)] == [
            RunStatus.SUCCEEDED, RunStatus.QUEUED, RunStatus.QUEUED, RunStatus.QUEUED
        ]  # fmt: skip
        assert cell(app, failed, "status") == "queued" and cell(app, 1, "status") == "succeeded"
        assert notices(app)[-2:] == [
            "run 1 has succeeded, run 7 is queued: only failed or cancelled runs can be retried",
            f"queued again: runs {failed}, {cancelled}",
        ]
        assert app.screen.marked == frozenset()
        # None of them can be: said, nothing written, the marks kept.
        await mark(pilot, 1, 2)
        await pilot.press("r")
        await settle(pilot)
        assert notices(app)[-1] == (
            "runs 1, 2 have succeeded: only failed or cancelled runs can be retried; "
            "nothing changed"
        )
        assert app.screen.marked == {1, 2}


def finish_next(db_url: str, count: int) -> list[int]:
    """Claim and finish the next ``count`` queued runs (one worker): their ids."""
    from core.queue import FinalFigures

    repo = Repo.open(db_url)
    try:
        worker = repo.register_worker("other-box", 77, "cuda:0")
        done = []
        for _ in range(count):
            claimed = repo.claim(worker)
            assert claimed is not None
            assert repo.finish(claimed.id, worker, FinalFigures(0.05, inputs_done=64_000))
            done.append(claimed.id)
        return done
    finally:
        repo.close()


async def test_the_warnings_of_t_and_plus_name_a_few_runs(
    seeded, app_factory, settle, db_url
) -> None:
    # t and + on many marked runs they leave alone named every one ("run 9 is cancelled,
    # run 10 is cancelled, ..." and "runs 1, 2, ..., 300 succeeded"), where c and r name a
    # few of each status.
    many = queue_seeds(db_url, 9)
    repo = Repo.open(db_url)
    repo.request_cancel(many[:7])
    repo.close()
    succeeded = finish_next(db_url, 4)  # the queued: runs 7 and 8, then many's last two
    app = app_factory()
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await mark(pilot, *many[:8])  # seven cancelled, one succeeded
        await pilot.press("t")
        await settle(pilot)
        cancelled = ", ".join(map(str, many[:5]))
        assert (
            f"runs {cancelled} and 2 more are cancelled, run {many[7]} has succeeded: only "
            "queued runs wait for a worker (r queues a failed or cancelled run again)"
        ) in notices(app)
        await pilot.press("escape")  # clear the marks
        done = [1, 2, 3, *succeeded]  # the seeded three and the four finished here
        await mark(pilot, *done)
        await pilot.press("plus")
        await settle(pilot)
        named = ", ".join(map(str, done[:5]))
        assert (
            f"runs {named} and 2 more succeeded and will not train again: their priorities "
            "are left as they are"
        ) in notices(app)


async def test_the_remove_question_names_a_few_training_runs(
    seeded, app_factory, settle, db_url
) -> None:
    # x on many training runs named every one of them in its question.
    repo = Repo.open(db_url)
    queue_seeds(db_url, 7)
    training = [seeded["running"]]
    for pid in range(6):
        claimed = repo.claim(repo.register_worker("other-box", 100 + pid, "cuda:0"))
        assert claimed is not None
        training.append(claimed.id)
    repo.close()
    app = app_factory()
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await mark(pilot, *training)
        await pilot.press("x")
        await settle(pilot)
        assert isinstance(app.screen, ConfirmScreen)
        named = ", ".join(map(str, sorted(training)[:5]))
        assert app.screen.question.startswith(
            f"Runs {named} and 2 more are training: cancelled first, removed once stopped. "
        )


@pytest.mark.parametrize("order", [False, True], ids=["", "order=queue"])
async def test_at_80_columns_the_failures_causes_outlast_the_etas_seconds_and_the_order(
    order, seeded, app_factory, settle, db_url
) -> None:
    # Nine runs of a learning-rate sweep diverged: with its filter set at 80 columns the
    # counts went, "9 failed (9 nan)" with them (the causes say `retry --cause nan` fits),
    # and the line kept "17 runs (10 shown) │ ETA 5m03s │ exp=t3-lr (ETA 5m03s)": both
    # ETAs to the second, the experiment's the queue's again, and order=queue.
    repo = Repo.open(db_url)
    repo.remove([seeded["failed"]])  # the seeded oom: the failures are the nine NaNs
    sweep = "name: t3-lr\nmax_inputs: 60000\nmatrix:\n  lr: [1, 2, 3, 4, 5, 6, 7, 8, 9, 10]\n"
    added = repo.enqueue(new_runs(sweep)).added_ids
    worker = repo.register_worker("h", 9, "cpu")
    repo.set_priority(list(added[:9]), 5)  # claimed before the queued runs
    for _ in range(9):
        claimed = repo.claim(worker)
        assert claimed is not None
        repo.fail(claimed.id, worker, "loss became NaN at step 12")
    repo.close()
    app = app_factory()
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        assert isinstance(app.screen, RunsScreen)
        app.screen.set_experiment_filter("t3-lr")
        if order:
            await pilot.press("o")
        app.screen.refresh_now()
        await settle(pilot)
        summary = app.screen.query_one("#runs-summary")
        assert "exp=t3-lr" in await drawn_among(pilot, summary, "exp=t3-lr")  # the filter's
        (line,) = region_lines(app, summary.content_region)
        assert summary.size.height == 1, line
        # The counts of runs still to train or fail stay, the causes with them; the
        # settled counts go (no room), the ETA is said in minutes.
        assert re.fullmatch(
            r"17 runs \(10 shown\)·3 queued·1 running·9 failed \(9 nan\) │ ETA \d+m │ exp=t3-lr",
            line,
        ), line


@pytest.mark.parametrize("size", [(120, 36), (80, 24)])
async def test_the_worker_started_notice_breaks_its_log_path_only_after_a_slash(
    no_local_worker, app_factory, settle, launcher, tmp_path, size: tuple[int, int]
) -> None:
    # At 80 columns the notice wrapped "log: /tmp/.../resconv-worker-2023" and put
    # "1114-222320.123-4242.log" on the next line: the path could not be copied whole.
    from textual.geometry import Region

    launcher.log_path = tmp_path / "logs" / "resconv-worker-20231114-222320.123-4242.log"
    app = app_factory()
    async with app.run_test(size=size, notifications=True) as pilot:
        await settle(pilot)
        await pilot.press("w", "enter")
        await settle(pilot)
        assert "log:" in await drawn(pilot, "log:")  # the notice, laid out, before it is read
        (toast,) = app.screen.query("Toast")
        seen = [s.text.strip(" ▌") for s in toast.render_lines(Region(0, 0, toast.size.width, 12))]
    lines = [line for line in seen if line]
    start = next(i for i, line in enumerate(lines) if line.endswith("log:")) + 1
    path_lines = lines[start:]
    assert "".join(path_lines) == str(launcher.log_path), repr(seen)
    assert all(line.endswith("/") for line in path_lines[:-1]), seen


@pytest.mark.parametrize("size", [(120, 36), (80, 24)])
async def test_the_worker_exited_notice_breaks_its_log_path_only_after_a_slash(
    no_local_worker, app_factory, settle, launcher, tmp_path, size: tuple[int, int]
) -> None:
    # A worker that exited at once: "(log: /tmp/f3play/d/resconv-worker-20261207-121408.
    # 619-26974.lo" then "g)" on the next line, a name no one could copy whole.
    from textual.geometry import Region

    launcher.exits_after = 3
    launcher.log_path = tmp_path / "logs" / "resconv-worker-20231114-222320.123-4242.log"
    launcher.log_path.parent.mkdir()
    launcher.log_path.write_text("resconv-tui: invalid configuration: no\n")
    app = app_factory()
    async with app.run_test(size=size, notifications=True) as pilot:
        await start_a_worker_that_exits(pilot, settle, launcher, "device", "cuda:3")
        assert "exited" in await drawn(pilot, "exited")  # its notice, laid out, then read
        seen = []
        for toast in app.screen.query("Toast"):
            shown = toast.render_lines(Region(0, 0, toast.size.width, 12))
            if any("exited" in strip.text for strip in shown):
                seen = [strip.text.strip(" ▌") for strip in shown]
    lines = [line for line in seen if line]
    start = next(i for i, line in enumerate(lines) if line.endswith("log:")) + 1
    path_lines = lines[start:]
    assert "".join(path_lines) == str(launcher.log_path), repr(seen)
    assert all(line.endswith("/") for line in path_lines[:-1]), seen


@pytest.mark.parametrize("size", [(60, 24), (80, 24), (120, 36)])
async def test_every_column_the_runs_table_shows_is_whole(
    seeded, app_factory, settle, size: tuple[int, int]
) -> None:
    # At 60 columns the narrow table was still wider than the screen: params showed as
    # "47," under "par". A column that cannot be whole is left out; 80 columns as before.
    app = app_factory()
    async with app.run_test(size=size) as pilot:
        await settle(pilot)
        shown = table(app)
        widths = [column.get_render_width(shown) for column in shown.columns.values()]
        keys = [str(key.value) for key in shown.columns]
        room = shown.size.width - shown.styles.scrollbar_size_vertical
        assert sum(widths) <= room, (keys, widths, room)
        assert {"id", "status", "name", "loss"} <= set(keys), keys
        if size[0] == 80:
            narrow = ["mark", "id", "status", "name", "progress", "rate", "eta", "loss", "params"]
            assert keys == narrow
        if size[0] == 120:
            assert not shown.narrow and len(keys) == 11
