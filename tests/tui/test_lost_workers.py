"""A worker of the dashboard's machine killed without a clean stop (kill -9, the OOM
killer): the next poll marks its runs failed "worker lost" and says so, instead of
showing them running until some worker starts again."""

from __future__ import annotations

import socket
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from reused_pids import started_with_pid
from screen_host import drawn

from core.processes import SILENT_FOR_S
from core.queue import NewRun, Repo, RunStatus
from core.queue.errors import QueueError
from core.queue.repo import WORKER_LOST
from core.sweep import expand_sweep_text
from resconv_tui.app import make_app
from resconv_tui.polling import HeardBeats
from resconv_tui.widgets.run_table import RunTable
from resconv_tui.worker_launcher import WorkerLauncher

SIZE = (120, 36)


def notifications(app: Any) -> list[str]:
    return [n.message for n in app._notifications]


async def test_a_local_worker_gone_without_a_clean_stop_loses_its_runs_at_the_next_poll(
    local_stack_worker, seeded, app_factory, settle, launcher, db_url
) -> None:
    launcher.exited.add(3003)  # the stacked worker training three runs was killed...
    app = app_factory()
    frozen = app.ctx.clock
    app.ctx.clock = lambda: frozen() + SILENT_FOR_S  # ...and has been silent since
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        message = (
            f"worker pid 3003 exited without stopping cleanly: runs "
            f"{', '.join(map(str, local_stack_worker))} marked failed (worker lost); r on "
            f"them, or 'resconv-tui retry --cause worker-lost --db {db_url}', queues them again"
        )
        assert message in notifications(app)
    repo = Repo.open(db_url)
    for run_id in local_stack_worker:
        run = repo.get_run(run_id)
        assert (run.status, run.error) == (RunStatus.FAILED, WORKER_LOST)
    # The other host's worker is judged by its heartbeat, not by a pid of this machine.
    assert repo.get_run(seeded["running"]).status == RunStatus.RUNNING
    states = {w.pid: w.state for w in repo.list_workers(include_gone=True)}
    repo.close()
    assert states[3003] == "lost" and states[1111] == "running"


@pytest.mark.parametrize(
    ("exited", "silent_s"),
    [
        (set(), SILENT_FOR_S),  # quiet a while, but its processes run
        # A container sharing this host's name (docker --network host): its pids are
        # not ours, but it beats. Only silence on top of a missing pid means "exited".
        ({3001, 3002}, SILENT_FOR_S - 1),
    ],
    ids=["processes-alive", "pids-not-ours-but-beating"],
)
async def test_live_local_workers_are_left_alone(
    exited, silent_s, local_slot_workers, app_factory, settle, launcher, db_url
) -> None:
    launcher.exited.update(exited)
    app = app_factory()
    frozen = app.ctx.clock
    app.ctx.clock = lambda: frozen() + silent_s
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        assert not any("exited" in m for m in notifications(app))
    repo = Repo.open(db_url)
    assert repo.get_run(local_slot_workers[0]).status == RunStatus.RUNNING
    repo.close()


def zombie() -> subprocess.Popen[bytes]:
    """A child killed with SIGKILL and not yet reaped, as a worker the dashboard started
    looks once it is killed (the dashboard is its parent)."""
    process = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    process.kill()
    stat = Path(f"/proc/{process.pid}/stat")
    deadline = time.monotonic() + 30  # a polled wait: as long as a loaded machine needs
    while stat.exists() and stat.read_text().rsplit(")", 1)[1].split()[0] != "Z":
        assert time.monotonic() < deadline
        time.sleep(0.01)
    return process


async def test_real_processes_killed_and_alive(tmp_path: Path, settle) -> None:
    url = f"sqlite:///{tmp_path / 'runs.db'}"
    repo = Repo.open(url)
    two = expand_sweep_text("name: two\nmatrix:\n  layers: [1, 2]\n")
    killed, alive = repo.enqueue([NewRun.from_expanded(run) for run in two]).added_ids
    host = socket.gethostname()
    living = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    dead = zombie()
    for process in (dead, living):
        assert repo.claim(repo.register_worker(host, process.pid, "cpu")) is not None
    repo.close()
    # Last seen a minute ago: both have been silent long enough to be judged by pid.
    # Registered after their processes started, as a worker is (a row older than its
    # process is that of another process, which had the pid before).
    with sqlite3.connect(tmp_path / "runs.db") as conn:
        conn.execute("UPDATE worker SET last_seen_at = last_seen_at - 60")
    conn.close()
    try:
        app = make_app(url, launcher=WorkerLauncher(tmp_path), poll_interval_s=3600)
        async with app.run_test(size=SIZE) as pilot:
            await settle(pilot)
            assert any(f"worker pid {dead.pid} exited" in m for m in notifications(app))
            line = f" run {killed} · two · layers-1 · failed, worker lost"
            shown = await drawn(pilot, line)  # the first run is highlighted: its line under it
            assert line in shown.splitlines()
            assert "worker lost: worker lost" not in shown
    finally:
        living.kill()
        living.wait()
        dead.wait()
    repo = Repo.open(url)
    assert repo.get_run(killed).status == RunStatus.FAILED
    assert repo.get_run(alive).status == RunStatus.RUNNING
    repo.close()


async def test_a_killed_worker_whose_pid_went_to_another_process_is_lost(
    tmp_path: Path, settle
) -> None:
    # Killed with -9, its pid given to a process started since: the poll read that
    # stranger as the worker alive and showed its run running, until some worker's 30 s
    # stale check; with no worker up, for good.
    url = f"sqlite:///{tmp_path / 'runs.db'}"
    repo = Repo.open(url)
    one = expand_sweep_text("name: one\nlayers: 1\n")
    (run_id,) = repo.enqueue([NewRun.from_expanded(run) for run in one]).added_ids
    killed = subprocess.Popen(["sleep", "30"])
    assert repo.claim(repo.register_worker(socket.gethostname(), killed.pid, "cpu")) is not None
    repo.close()
    killed.kill()
    killed.wait()
    if (stranger := started_with_pid(killed.pid)) is None:
        pytest.skip("cannot give a freed pid to a new process here (ns_last_pid takes root)")
    try:
        with sqlite3.connect(tmp_path / "runs.db") as conn:  # registered, last seen, 1 min ago
            conn.execute(
                "UPDATE worker SET started_at = started_at - 60, last_seen_at = last_seen_at - 60"
            )
        conn.close()
        app = make_app(url, launcher=WorkerLauncher(tmp_path), poll_interval_s=3600)
        async with app.run_test(size=SIZE) as pilot:
            await settle(pilot)
            assert any(f"worker pid {killed.pid} exited" in m for m in notifications(app))
        assert stranger.poll() is None  # only its row is marked: the stranger runs on
    finally:
        stranger.kill()
        stranger.wait()
    repo = Repo.open(url)
    assert repo.get_run(run_id).status == RunStatus.FAILED
    repo.close()


async def test_a_run_whose_heartbeat_stopped_says_so_instead_of_a_frozen_eta(
    seeded, app_factory, settle
) -> None:
    # Another host's worker: no pid to check, only its silence. Its beat (20 s old at the
    # tests' "now"; 120 s, 100 s later) is timed by the dashboard's own clock once seen:
    # unchanged for the 30 s after which workers recover it, it reads silent that long.
    app = app_factory()
    frozen = app.ctx.clock
    app.ctx.clock = lambda: frozen() + 100
    watched = [0.0]
    app.ctx.heard = HeardBeats(clock=lambda: watched[0])
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        table = app.screen.query_one(RunTable)
        running = str(seeded["running"])
        # Its age by this clock may be another box's clock behind: not silent unwatched.
        assert str(table.get_cell(running, "status")) == "running"
        watched[0] += 31
        app.screen.refresh_now()
        await settle(pilot)
        assert str(table.get_cell(running, "status")) == "running?"
        assert str(table.get_cell(running, "eta")) == "silent 31s"


async def test_a_database_this_dashboard_cannot_write_still_shows_its_rows(
    local_stack_worker, seeded, app_factory, settle, launcher, db_url, monkeypatch
) -> None:
    """A read-only database (or one a write waits on too long): marking an exited worker
    lost fails, and the dashboard still shows what it read, says why once, and tries
    again a while later. It showed an empty table and the write's error instead."""
    launcher.exited.add(3003)
    app = app_factory()
    now = [app.ctx.clock() + SILENT_FOR_S]
    app.ctx.clock = lambda: now[0]
    writes: list[list[str]] = []

    def read_only(*, stale_after_s: float | None, dead_worker_ids: list[str]) -> list[int]:
        writes.append(dead_worker_ids)
        raise QueueError("database runs.db: attempt to write a readonly database")

    monkeypatch.setattr(app.ctx.repo, "recover_stale", read_only)
    async with app.run_test(size=SIZE, notifications=True) as pilot:
        await settle(pilot)
        for _ in range(2):  # later polls neither hide the rows nor say it again
            app.screen.refresh_now()
            await settle(pilot)
        table = app.screen.query_one(RunTable)
        assert table.row_count == len(seeded["ids"]) + len(local_stack_worker)
        shown = await drawn(pilot, "pid 3003")  # the poll's workers, before what is not
        assert "pid 3003" in shown
        assert "no workers" not in shown and "Database error" not in shown
        said = (
            "worker pid 3003 exited without stopping cleanly, but the database is read-only "
            "here, so its runs cannot be marked failed (worker lost): a worker, or a "
            "dashboard that can write, will"
        )
        assert notifications(app).count(said) == 1
        assert len(writes) == 1  # tried again only RECOVERY_RETRY_S later
        monkeypatch.undo()  # writable again
        now[0] += 30
        app.screen.refresh_now()
        await settle(pilot)
        assert any(m.startswith("worker pid 3003 exited") and "marked failed" in m
                   for m in notifications(app))  # fmt: skip
    repo = Repo.open(db_url)
    assert all(repo.get_run(i).status == RunStatus.FAILED for i in local_stack_worker)
    repo.close()


async def test_the_rows_are_drawn_while_a_write_waits_on_a_lock(
    local_stack_worker, seeded, app_factory, settle, launcher, monkeypatch
) -> None:
    """Marking an exited worker lost waits for the write lock (up to the busy timeout):
    the rows read before it are drawn meanwhile, not after."""
    launcher.exited.add(3003)
    app = app_factory()
    frozen = app.ctx.clock
    app.ctx.clock = lambda: frozen() + SILENT_FOR_S
    lock = threading.Event()
    recover_stale = app.ctx.repo.recover_stale

    def waits(*, stale_after_s: float | None, dead_worker_ids: list[str]) -> list[int]:
        assert lock.wait(60)  # set as soon as the test has seen the rows
        return recover_stale(stale_after_s=stale_after_s, dead_worker_ids=dead_worker_ids)

    monkeypatch.setattr(app.ctx.repo, "recover_stale", waits)
    async with app.run_test(size=SIZE) as pilot:
        table = app.screen.query_one(RunTable)
        try:
            for _ in range(400):  # 20 s: the first poll, on a loaded machine
                if table.row_count:
                    break
                await pilot.pause(0.05)
            assert table.row_count == len(seeded["ids"]) + len(local_stack_worker)
            assert str(table.get_cell(str(local_stack_worker[0]), "status")) == "running"
        finally:
            lock.set()
        await settle(pilot)
        assert str(table.get_cell(str(local_stack_worker[0]), "status")) == "failed"
