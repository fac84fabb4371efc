"""A worker of the dashboard's machine killed without a clean stop (kill -9, the OOM
killer): the next poll marks its runs failed "worker lost" and says so, instead of
showing them running until some worker starts again."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from screen_host import screen_text

import core.queue.repo as repo_module
from core.processes import SILENT_FOR_S
from core.queue import NewRun, Repo, RunStatus
from core.queue.repo import WORKER_LOST
from core.sweep import expand_sweep_text
from resconv_tui.app import make_app
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
            f"{', '.join(map(str, local_stack_worker))} marked failed (worker lost); r or "
            "'resconv-tui retry --cause worker-lost' queues them again"
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
    deadline = time.monotonic() + 10
    while stat.exists() and stat.read_text().rsplit(")", 1)[1].split()[0] != "Z":
        assert time.monotonic() < deadline
        time.sleep(0.01)
    return process


async def test_real_processes_killed_and_alive(
    tmp_path: Path, settle, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = f"sqlite:///{tmp_path / 'runs.db'}"
    repo = Repo.open(url)
    real_time = time.time
    # Rows written a minute ago: both have been silent long enough to be judged by pid.
    monkeypatch.setattr(repo_module, "time", SimpleNamespace(time=lambda: real_time() - 60))
    two = expand_sweep_text("name: two\nmatrix:\n  layers: [1, 2]\n")
    killed, alive = repo.enqueue([NewRun.from_expanded(run) for run in two]).added_ids
    host = socket.gethostname()
    living = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    dead = zombie()
    for process in (dead, living):
        assert repo.claim(repo.register_worker(host, process.pid, "cpu")) is not None
    repo.close()
    monkeypatch.undo()
    try:
        app = make_app(url, launcher=WorkerLauncher(tmp_path), poll_interval_s=3600)
        async with app.run_test(size=SIZE) as pilot:
            await settle(pilot)
            assert any(f"worker pid {dead.pid} exited" in m for m in notifications(app))
            shown = screen_text(app)  # the first run is highlighted: its line under the table
            assert f" run {killed} · two · layers-1 · failed, worker lost" in shown.splitlines()
            assert "worker lost: worker lost" not in shown
    finally:
        living.kill()
        living.wait()
        dead.wait()
    repo = Repo.open(url)
    assert repo.get_run(killed).status == RunStatus.FAILED
    assert repo.get_run(alive).status == RunStatus.RUNNING
    repo.close()


async def test_a_run_whose_heartbeat_stopped_says_so_instead_of_a_frozen_eta(
    seeded, app_factory, settle
) -> None:
    # Another host's worker: no pid to check, only its silence (the seeded beat is 20 s
    # old at the tests' "now"; 100 s later it is past the 30 s after which workers
    # recover it).
    app = app_factory()
    frozen = app.ctx.clock
    app.ctx.clock = lambda: frozen() + 100
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        table = app.screen.query_one(RunTable)
        running = str(seeded["running"])
        assert str(table.get_cell(running, "status")) == "running?"
        assert str(table.get_cell(running, "eta")) == "silent 2m00s"
