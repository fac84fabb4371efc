"""Real worker processes on one SQLite file: exclusivity, kill -9, cancel, SIGTERM, NaN.

Tiny runs (2 layers, 4 channels) on synthetic IDX data in a temporary folder, so
each run costs about a second of CPU. ``OMP_NUM_THREADS=1`` keeps two workers
from fighting over two cores.
"""

from __future__ import annotations

import contextlib
import io
import os
import re
import shlex
import signal
import socket
import sqlite3
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from sqlite_locks import write_lock_held

from core.processes import process_alive
from core.queue import Repo, RunStatus
from resconv_tui.cli import main

pytestmark = pytest.mark.slow
S = RunStatus
REPO_ROOT = Path(__file__).resolve().parents[2]


# A worker finds a killed worker of this machine lost once that one has been silent
# SILENT_FOR_S (10 s), at its start or at a later recovery (every RECOVER_EVERY_S, 10 s):
# 10-20 s of waiting per test. This runs ``python -m core.worker``'s main() with both
# made 1 s (the rule itself is unchanged; core.processes keeps the 10 s default).
QUICK_RECOVERY = (
    "import sys, core.processes as p, core.worker as w; "
    "p.SILENT_FOR_S = w.SILENT_FOR_S = w.RECOVER_EVERY_S = 1.0; sys.exit(w.main())"
)


class Env:
    """A temporary working folder with data, a database and helpers to run commands."""

    def __init__(self, root: Path, data: Path, db_url: str | None = None) -> None:
        self.root = root
        self.db = db_url or f"sqlite:///{root / 'runs.db'}"
        self.vars = {
            **os.environ,
            "RESCONV_DATA": str(data),
            "RESCONV_CACHE": str(root / "cache"),
            "RESCONV_DB": self.db,
            "OMP_NUM_THREADS": "1",
            "PYTHONUNBUFFERED": "1",
            "PYTHONPATH": str(REPO_ROOT),
        }
        self.vars.pop("NO_COLOR", None)
        self.logs: list[Path] = []
        self.processes: list[subprocess.Popen[bytes]] = []  # stopped at teardown if still up
        self._repo: Repo | None = None

    def sweep(self, name: str, body: str) -> Path:
        path = self.root / f"{name}.yml"
        path.write_text(f"name: {name}\nlayers: 2\nchannels: 4\nbatch_size: 64\n{body}")
        return path

    def cli(self, *argv: str) -> str:
        """Run a resconv-tui command in this process (same code, no interpreter start)."""
        out = io.StringIO()
        with contextlib.redirect_stdout(out):
            code = main([*argv, "--db", self.db])
        assert code == 0, f"resconv-tui {' '.join(argv)} exited {code}"
        return out.getvalue()

    def worker(
        self,
        *argv: str,
        module: str = "core.worker",
        quick_recovery: bool = False,
        code: str | None = None,
    ) -> subprocess.Popen[bytes]:
        """``quick_recovery``: ``python -m core.worker`` as it is, but with
        ``QUICK_RECOVERY``'s waits (only for ``module="core.worker"``); ``code``: the
        worker's main() run by this code instead (it ends in ``sys.exit(w.main())``)."""
        log = self.root / f"worker-{len(self.logs)}.log"
        self.logs.append(log)
        command = ["-m", module] if module == "core.worker" else ["-m", module, "worker"]
        if quick_recovery:
            assert module == "core.worker"
            command = ["-c", QUICK_RECOVERY]
        if code is not None:
            command = ["-c", code]
        with open(log, "wb") as out:
            process = subprocess.Popen(
                [sys.executable, *command, "--device", "cpu", *argv],
                cwd=self.root, env=self.vars, stdout=out, stderr=subprocess.STDOUT,
            )  # fmt: skip
        self.processes.append(process)
        return process

    def repo(self) -> Repo:
        if self._repo is None:
            self._repo = Repo.open(self.db, create=False)
        return self._repo

    def output(self) -> str:
        return "\n".join(f"--- {log.name}\n{log.read_text()}" for log in self.logs)


@pytest.fixture
def env(tmp_path: Path, idx_writer: Callable[..., Path]) -> Iterator[Env]:
    data = idx_writer(tmp_path / "data", train=256, test=64)
    env = Env(tmp_path, data)
    yield env
    stop_leftovers(env)


def stop_leftovers(env: Env) -> None:
    """A test that failed before stopping its workers must not leave them training (slot
    processes live in their own process groups): the rest of the suite would crawl."""
    for process in env.processes:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            process.send_signal(signal.SIGTERM)  # the second: exit at once
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.wait(timeout=10)
            process.kill()
            process.wait()
    for pid in {w.pid for w in env.repo().list_workers(include_gone=True)}:
        with contextlib.suppress(OSError):  # only ours: a worker process of this test's db
            if env.db in Path(f"/proc/{pid}/cmdline").read_text().replace("\0", " "):
                os.kill(pid, signal.SIGKILL)


def wait_for(check: Callable[[], bool], timeout: float, what: str, env: Env) -> float:
    """Poll ``check`` every 10 ms; returns the seconds it took. ``timeout`` is room for a
    loaded machine (it returns as soon as ``check`` holds) unless the test asserts on
    the seconds it took."""
    start = time.monotonic()
    while not check():
        if time.monotonic() - start > timeout:
            raise AssertionError(f"timed out waiting for {what}\n{env.output()}")
        time.sleep(0.01)
    return time.monotonic() - start


def finish(process: subprocess.Popen[bytes], env: Env, timeout: float = 120) -> int:
    try:
        return process.wait(timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
        raise AssertionError(f"worker did not exit\n{env.output()}") from None


def status_of(env: Env, run_id: int) -> RunStatus:
    return env.repo().get_run(run_id).status


@pytest.fixture(params=["sqlite", "postgresql"])
def shared_env(
    request: pytest.FixtureRequest, tmp_path: Path, idx_writer: Callable[..., Path]
) -> Iterator[Env]:
    """Like ``env``, on a SQLite file or on a fresh PostgreSQL database (several boxes)."""
    from postgres_server import fresh_database

    url = None
    if request.param == "postgresql":
        url = fresh_database(request.getfixturevalue("pg_admin_url"))
    env = Env(tmp_path, idx_writer(tmp_path / "data", train=256, test=64), url)
    yield env
    stop_leftovers(env)


def test_two_workers_train_every_run_exactly_once(shared_env: Env) -> None:
    env = shared_env
    sweep = env.sweep("pair", "max_inputs: 64\nseeds: 10\n")
    assert env.cli("queue", str(sweep)).startswith("added 10, skipped 0")
    workers = [
        env.worker("--until-empty"),
        env.worker("--until-empty", module="resconv_tui"),
    ]
    assert [finish(w, env) for w in workers] == [0, 0], env.output()
    repo = env.repo()
    runs = repo.list_runs()
    assert [r.status for r in runs] == [S.SUCCEEDED] * 10, env.output()
    assert [r.attempts for r in runs] == [1] * 10  # claimed once each
    for run in runs:  # trained once each: one final validation row, finite loss
        names = Counter(m.name for m in repo.metrics_since(run.id))
        assert names["val_loss"] == 1 and run.validation_loss is not None
    done = {w.id: w.runs_done for w in repo.list_workers(include_gone=True)}
    assert sum(done.values()) == 10 and len(done) == 2
    assert env.cli("queue", str(sweep)).startswith("added 0, skipped 10")


def test_kill_9_mid_run_then_restart_marks_it_lost_and_retry_succeeds(env: Env) -> None:
    env.cli("queue", str(env.sweep("crash", "max_inputs: 1280\n")))
    worker = env.worker()
    wait_for(lambda: status_of(env, 1) == S.RUNNING, 60, "run 1 to start", env)
    worker.send_signal(signal.SIGKILL)
    worker.wait()
    assert "0 queued, 1 running" in env.cli("status")  # the database is still readable
    restarted = env.worker(quick_recovery=True)
    wait_for(lambda: status_of(env, 1) == S.FAILED, 60, "the restarted worker's recovery", env)
    assert env.repo().get_run(1).error == "worker lost"
    assert env.cli("retry", "1") == "queued again: 1\n"
    wait_for(lambda: status_of(env, 1) == S.SUCCEEDED, 60, "run 1 to succeed", env)
    assert env.repo().get_run(1).attempts == 2
    restarted.send_signal(signal.SIGTERM)
    assert finish(restarted, env) == 0


# python -m core.worker with a run lost once silent 4 s (STALE_AFTER_S: 30 s), beats every
# 0.5 s (HEARTBEAT_S: 3 s) and looks every 1 s (RECOVER_EVERY_S: 10 s). A dead worker of
# this machine is still found by its silence, not its pid (SILENT_FOR_S unchanged, and
# looked for only between runs): as a worker of another box would be.
QUICK_STALE = """\
import sys, core.worker as w
w.RECOVER_EVERY_S = 1.0
class Quick(w.Worker):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **{**kwargs, "stale_after_s": 4.0, "heartbeat_s": 0.5})
w.Worker = Quick
sys.exit(w.main())
"""


def test_a_training_worker_marks_a_killed_worker_s_run_lost_within_the_stale_limit(
    shared_env: Env,
) -> None:
    # Two boxes on one queue, one killed: its run stayed "running" until the other's
    # run ended (hours, beside a long GPU run), as only a worker between runs looked.
    env = shared_env
    env.cli("queue", str(env.sweep("long", "max_inputs: 10000000\nseeds: 2\n")))
    # Both started at once (their imports side by side, not one after the other): the
    # one that claimed run 1 is the one killed, the other trains run 2.
    workers = [env.worker(code=QUICK_STALE), env.worker(code=QUICK_STALE)]
    training_both = lambda: all(r.inputs_done > 0 for r in env.repo().list_runs())  # noqa: E731
    wait_for(training_both, 120, "both runs to train", env)
    holder = env.repo().get_run(1).worker_id
    holder_pid = next(w.pid for w in env.repo().list_workers() if w.id == holder)
    killed = next(i for i, w in enumerate(workers) if w.pid == holder_pid)
    dying, training = workers[killed], workers[1 - killed]
    dying.send_signal(signal.SIGKILL)
    dying.wait()
    # Its last beat read at the other's next look (every 1 s), then unchanged 4 s by that
    # worker's clock, found at the look after: 6 s, and slack for a busy box.
    took = wait_for(lambda: status_of(env, 1) == S.FAILED, 20, "run 1 to be marked lost", env)
    assert took < 15, env.output()
    lost, trained = env.repo().get_run(1), env.repo().get_run(2)
    assert lost.error == "worker lost", env.output()
    assert trained.status == S.RUNNING and trained.worker_id != lost.worker_id, env.output()
    # Named as the killed worker's, not read as the training worker's own run dead.
    said = f"run 1 of worker {socket.gethostname()} pid {dying.pid}: that worker lost"
    assert said in env.logs[1 - killed].read_text(), env.output()
    training.send_signal(signal.SIGTERM)
    assert finish(training, env, timeout=30) == 0, env.output()
    assert status_of(env, 2) == S.QUEUED  # its own run untouched: put back at the stop


def test_nan_fails_cancel_stops_and_sigterm_leaves_nothing_running(env: Env) -> None:
    """One worker: a diverging run fails and the worker goes on; cancel stops the next
    run within 5 s; SIGTERM during the third puts it back in the queue and exits."""
    body = "max_inputs: 10000000\nseeds: 2\n"
    env.cli("queue", str(env.sweep("long", body)))
    diverging = "max_inputs: 640\nlr: 1.0e+30\n"
    env.cli("queue", str(env.sweep("nan", diverging)), "--priority", "1")
    worker = env.worker()
    wait_for(lambda: status_of(env, 3) == S.FAILED, 60, "the diverging run to fail", env)
    error = env.repo().get_run(3).error
    assert error is not None and "NaN" in error and "step" in error, error
    wait_for(lambda: env.repo().get_run(1).inputs_done > 0, 60, "run 1 to train", env)
    assert "cancel requested" in env.cli("cancel", "1")
    took = wait_for(lambda: status_of(env, 1) == S.CANCELLED, 5, "run 1 to stop", env)
    assert took < 5
    wait_for(lambda: status_of(env, 2) == S.RUNNING, 30, "run 2 to start", env)
    worker.send_signal(signal.SIGTERM)
    assert finish(worker, env, timeout=30) == 0, env.output()
    repo = env.repo()
    assert repo.counts_by_status()[S.RUNNING] == 0
    run = repo.get_run(2)
    assert (run.status, run.worker_id) == (S.QUEUED, None)  # back in the queue
    assert [w.state for w in repo.list_workers(include_gone=True)] == ["stopped"]
    assert "SIGTERM: stopping after this step" in env.output()


# A worker whose run's last point waits 3 s before it is recorded: the moment after the
# run's last step, before its worker has written that it trained all its inputs (a
# file `last-step` says when it has come).
HELD_AFTER_LAST_STEP = """\
import pathlib, sys, time
import core.recording as r, core.worker as w
real = r.RunRecorder.on_train_loss
def held(self, p):
    if self.total_inputs is not None and p.inputs >= self.total_inputs:
        pathlib.Path("last-step").touch()
        time.sleep(3)
    real(self, p)
r.RunRecorder.on_train_loss = held
sys.exit(w.main())
"""


def test_stop_after_a_run_s_last_step_says_it_succeeded(env: Env) -> None:
    # `stop` read the run as training (its end not written yet), said "run 1 goes back
    # to the queue", and the run then succeeded: no step was left for the signal to stop
    # it before. It now waits for the worker to exit and says what the database says.
    env.cli("queue", str(env.sweep("last", "max_inputs: 128\n")))
    worker = env.worker(code=HELD_AFTER_LAST_STEP)
    wait_for((env.root / "last-step").exists, 60, "the run's last step", env)
    assert env.repo().get_run(1).status == S.RUNNING and not env.repo().get_run(1).trained_all
    said = env.cli("stop")
    assert finish(worker, env, timeout=30) == 0
    assert said == (
        f"asked worker pid {worker.pid} to stop after the current step; waiting up to 60 s "
        f"for it to exit\nworker pid {worker.pid} stopped; run 1 succeeded\n"
    ), env.output()
    assert status_of(env, 1) == S.SUCCEEDED


# A worker as a login shell starts it: SIGHUP at its default. Under `nohup` (a test run
# started so) children inherit SIGHUP ignored, and the worker rightly keeps ignoring it.
FROM_A_SHELL = (
    "import signal, sys; signal.signal(signal.SIGHUP, signal.SIG_DFL); "
    "import core.worker as w; sys.exit(w.main())"
)


def test_sighup_from_a_dropped_ssh_session_puts_the_run_back(env: Env) -> None:
    env.cli("queue", str(env.sweep("long", "max_inputs: 10000000\n")))
    worker = env.worker(code=FROM_A_SHELL)
    wait_for(lambda: env.repo().get_run(1).inputs_done > 0, 60, "run 1 to train", env)
    worker.send_signal(signal.SIGHUP)
    assert finish(worker, env, timeout=30) == 0, env.output()
    run = env.repo().get_run(1)
    assert (run.status, run.worker_id) == (S.QUEUED, None), env.output()
    assert "SIGHUP: stopping after this step" in env.output()


# python -m core.worker with a 1 s SQLite busy timeout (15 s as shipped): a lock held
# by another process refuses its writes within a second, so that a test of what a stop
# does meanwhile takes seconds. The give-back time (GIVE_BACK_S) is unchanged.
QUICK_BUSY_TIMEOUT = (
    "import sys, core.queue.db as d, core.worker as w; "
    "d.DEFAULT_BUSY_TIMEOUT_S = 1.0; sys.exit(w.main())"
)


def stopped_while_locked(env: Env) -> subprocess.Popen[bytes]:
    """A worker training run 1, its database then locked by another process (held by
    the caller's ``write_lock_held``), asked to stop (SIGTERM) once its writes wait."""
    worker = env.worker(code=QUICK_BUSY_TIMEOUT)
    wait_for(lambda: env.repo().get_run(1).inputs_done > 0, 60, "run 1 to train", env)
    return worker


def said_or_exited(worker: subprocess.Popen[bytes], env: Env, line: str) -> Callable[[], bool]:
    return lambda: line in env.output() or worker.poll() is not None


def test_a_stop_while_the_database_is_locked_gives_the_run_back_once_it_is_free(
    env: Env,
) -> None:
    # SIGTERM while another process held the SQLite write lock (a backup, an sqlite3
    # session): the worker gave its run one try, exited 2 "stopping on a database
    # error", and the run stayed "running" until found lost, to be retried by hand.
    env.cli("queue", str(env.sweep("long", "max_inputs: 10000000\n")))
    worker = stopped_while_locked(env)
    with write_lock_held(env.root / "runs.db"):
        waits = "database locked by another process (held "
        wait_for(said_or_exited(worker, env, waits), 30, "its writes to wait", env)
        worker.send_signal(signal.SIGTERM)
        trying = "the database is locked by another process: trying to give run 1 back"
        wait_for(said_or_exited(worker, env, trying), 30, "the give-back", env)
        assert f"{trying} for up to 30 s" in env.output(), env.output()
        time.sleep(3)  # the lock held on: it keeps trying (training does not resume)
        assert worker.poll() is None, env.output()
        inputs_done = env.repo().get_run(1).inputs_done
    assert finish(worker, env, timeout=30) == 0, env.output()
    run = env.repo().get_run(1)
    # Given back as any stop's run: the claim counted as an attempt, the progress gone.
    assert (run.status, run.worker_id, run.attempts) == (S.QUEUED, None, 1), env.output()
    assert inputs_done > 0 and run.inputs_done == 0
    assert [w.state for w in env.repo().list_workers(include_gone=True)] == ["stopped"]
    assert "stopped after 0 run(s); run 1 back in the queue" in env.output()
    assert "database error" not in env.output()


def test_a_second_stop_while_the_run_is_given_back_exits_at_once(env: Env) -> None:
    env.cli("queue", str(env.sweep("long", "max_inputs: 10000000\n")))
    worker = stopped_while_locked(env)
    with write_lock_held(env.root / "runs.db"):
        waits = "database locked by another process (held "
        wait_for(said_or_exited(worker, env, waits), 30, "its writes to wait", env)
        worker.send_signal(signal.SIGTERM)
        trying = "trying to give run 1 back for up to 30 s"
        wait_for(said_or_exited(worker, env, trying), 30, "the give-back", env)
        assert worker.poll() is None, env.output()
        worker.send_signal(signal.SIGTERM)
        start = time.monotonic()
        assert finish(worker, env, timeout=30) == 130, env.output()
        assert time.monotonic() - start < 5, env.output()
    # Locked all along: not given back; its worker's row still live, so it is found lost.
    assert status_of(env, 1) == S.RUNNING
    assert "second signal: exiting now" in env.output()


def importing_torch(process: subprocess.Popen[bytes]) -> bool:
    """Whether ``process`` has begun importing torch (its libraries are mapped), or has
    exited. A worker then has seconds of importing to go before its handlers are in."""
    try:
        return (
            process.poll() is not None
            or "libtorch" in Path(f"/proc/{process.pid}/maps").read_text()
        )
    except OSError:
        return False


@pytest.mark.parametrize("slots", ["1", "2"])
def test_a_stop_signal_while_the_worker_imports_torch_stops_it_cleanly(
    env: Env, slots: str
) -> None:
    # A process manager stopping a worker it just started: a SIGTERM in its first
    # seconds killed it (exit 143) before its handlers were in place. With --slots 2 the
    # supervisor imports torch itself (to pick the slot mode): it starts no slot then.
    env.cli("queue", str(env.sweep("long", "max_inputs: 10000000\n")))
    worker = env.worker("--slots", slots, module="resconv_tui")
    wait_for(lambda: importing_torch(worker), 60, "the worker to import torch", env)
    worker.send_signal(signal.SIGTERM)
    assert finish(worker, env, timeout=60) == 0, env.output()
    run = env.repo().get_run(1)
    assert (run.status, run.attempts) == (S.QUEUED, 0), env.output()  # never claimed
    assert {w.state for w in env.repo().list_workers(include_gone=True)} <= {"stopped"}
    if slots == "2":
        assert "stopped before the slots started" in env.output()
    else:
        assert "SIGTERM: stopping before its first run" in env.output()


@pytest.mark.parametrize("wait", ["--no-wait", "--wait=60"])
def test_stop_right_after_a_worker_starts_stops_it_before_it_registers(env: Env, wait: str) -> None:
    # `resconv-tui worker & ...; resconv-tui stop`: the worker had no row yet (it imports
    # for seconds, then waits for its database), so stop said "no live worker" and exited
    # 0, and the worker then claimed a run and trained. Here its row cannot be written
    # until stop has looked: another process holds the database's write lock.
    env.cli("queue", str(env.sweep("long", "max_inputs: 10000000\n")))
    # One of another database (its own folder, its default ./runs.db) is not stopped.
    other = env.root / "other"
    other.mkdir()
    stranger = subprocess.Popen(
        [sys.executable, "-m", "resconv_tui", "worker", "--device", "cpu"], cwd=other,
        env={**env.vars, "RESCONV_DB": ""}, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    env.processes.append(stranger)
    holder = sqlite3.connect(env.root / "runs.db", isolation_level=None, check_same_thread=False)
    holder.execute("BEGIN IMMEDIATE")
    let_go = threading.Timer(3.0, holder.rollback)
    try:
        worker = env.worker(module="resconv_tui")
        wait_for(lambda: importing_torch(worker), 60, "the worker to import torch", env)
        assert env.repo().list_workers(include_gone=True) == []
        let_go.start()  # while stop waits, where it does: the worker then registers
        said = env.cli("stop", wait)
    finally:
        if let_go.is_alive() or let_go.finished.is_set():
            let_go.join()
        holder.rollback()
        holder.close()
    asked = f"asked worker pid {worker.pid} to stop (starting: no row yet)"
    assert said.startswith(asked), env.output()
    if wait != "--no-wait":
        assert worker.poll() == 0, env.output()  # down when stop returned
        assert f"\nworker pid {worker.pid} stopped; it held no run when read\n" in said
    assert finish(worker, env, timeout=60) == 0, env.output()
    run = env.repo().get_run(1)
    assert (run.status, run.attempts) == (S.QUEUED, 0), env.output()  # never claimed
    assert {w.state for w in env.repo().list_workers(include_gone=True)} <= {"stopped"}
    assert stranger.poll() is None  # not signalled: another database's worker
    stranger.send_signal(signal.SIGTERM)
    stranger.wait(timeout=60)


def test_a_second_signal_while_the_worker_imports_torch_exits_at_once(env: Env) -> None:
    env.cli("queue", str(env.sweep("long", "max_inputs: 10000000\n")))
    worker = env.worker(module="resconv_tui")
    wait_for(lambda: importing_torch(worker), 60, "the worker to import torch", env)
    worker.send_signal(signal.SIGTERM)
    # Another signal: two SIGTERMs while its main thread is in a C call (importing
    # torch) reach its Python handler as one.
    worker.send_signal(signal.SIGINT)
    assert finish(worker, env, timeout=60) == 130, env.output()
    assert status_of(env, 1) == S.QUEUED


# Both ways of packing: a supervisor with slot processes (through the resconv-tui CLI, the
# default on CPU) and slot threads in one process (python -m core.worker, the default on CUDA).
SLOT_MODES = {
    "processes": (("--slot-mode", "processes"), "resconv_tui"),
    "threads": (("--slot-mode", "threads"), "core.worker"),
}


def slot_worker(env: Env, mode: str, *argv: str) -> subprocess.Popen[bytes]:
    options, module = SLOT_MODES[mode]
    return env.worker("--slots", "2", *options, *argv, module=module)


@pytest.mark.parametrize("mode", SLOT_MODES)
def test_two_slots_train_every_run_exactly_once(env: Env, mode: str) -> None:
    env.cli("queue", str(env.sweep("packed", "max_inputs: 512\nseeds: 4\n")))
    worker = slot_worker(env, mode, "--until-empty")
    assert finish(worker, env) == 0, env.output()
    repo = env.repo()
    runs = repo.list_runs()
    assert [(r.status, r.attempts) for r in runs] == [(S.SUCCEEDED, 1)] * 4, env.output()
    workers = repo.list_workers(include_gone=True)
    assert sorted(w.device for w in workers) == ["cpu slot 1/2", "cpu slot 2/2"]
    assert sum(w.runs_done for w in workers) == 4
    assert {w.state for w in workers} == {"stopped"}
    assert len({w.pid for w in workers}) == (1 if mode == "threads" else 2)
    assert "worker 1/2: " in env.output() and "worker 2/2: " in env.output()


@pytest.mark.parametrize("mode", SLOT_MODES)
def test_sigterm_puts_both_slots_runs_back_and_exits(env: Env, mode: str) -> None:
    env.cli("queue", str(env.sweep("packed", "max_inputs: 10000000\nseeds: 2\n")))
    worker = slot_worker(env, mode)
    training = lambda: all(r.inputs_done > 0 for r in env.repo().list_runs())  # noqa: E731
    wait_for(training, 120, "both runs to train", env)
    worker.send_signal(signal.SIGTERM)
    start = time.monotonic()
    assert finish(worker, env, timeout=30) == 0, env.output()
    assert time.monotonic() - start < 5, env.output()
    repo = env.repo()
    assert [(r.status, r.worker_id) for r in repo.list_runs()] == [(S.QUEUED, None)] * 2
    assert [w.state for w in repo.list_workers(include_gone=True)] == ["stopped"] * 2


def test_slots_stopped_with_their_whole_service_stop_cleanly(env: Env) -> None:
    # systemd's KillMode=control-group (`systemctl stop`) sends SIGTERM to every process
    # of the service: each slot gets it itself and again from its supervisor moments
    # later, which it took for "again: at once" ("exit statuses 130, 130", exit 130).
    env.cli("queue", str(env.sweep("packed", "max_inputs: 10000000\nseeds: 2\n")))
    worker = slot_worker(env, "processes")
    training = lambda: all(r.inputs_done > 0 for r in env.repo().list_runs())  # noqa: E731
    wait_for(training, 120, "both runs to train", env)
    for pid in [worker.pid, *(w.pid for w in env.repo().list_workers())]:
        os.kill(pid, signal.SIGTERM)
    assert finish(worker, env, timeout=60) == 0, env.output()
    assert "all slots stopped (0 run(s) ended; exit statuses 0, 0)" in env.output()
    assert "second signal" not in env.output()
    repo = env.repo()
    assert [(r.status, r.worker_id) for r in repo.list_runs()] == [(S.QUEUED, None)] * 2


def test_slots_stopped_while_they_start_stop_cleanly(env: Env) -> None:
    # The supervisor forwards a SIGTERM as soon as it has it; its slots, just started,
    # are then starting Python and importing, without their handlers: they died of it,
    # and `worker --slots 2` exited 143 ("exit statuses 143, 143") as if killed.
    env.cli("queue", str(env.sweep("long", "max_inputs: 10000000\n")))
    worker = slot_worker(env, "processes")
    wait_for(lambda: "2 slots started" in env.output(), 60, "the slots to start", env)
    worker.send_signal(signal.SIGTERM)
    assert finish(worker, env, timeout=60) == 0, env.output()
    assert "all slots stopped (0 run(s) ended; exit statuses 0, 0)" in env.output()
    assert "started again" not in env.output()
    run = env.repo().get_run(1)
    assert (run.status, run.worker_id) == (S.QUEUED, None), env.output()


def test_a_slot_stopped_on_its_own_while_it_starts_is_not_started_again(env: Env) -> None:
    # A slot signalled by itself (`kill PID`, any process manager reaching it alone) in
    # its first moments, before it counts stop signals (core.early_signals, from
    # core.worker's main() on, after Python's start and the imports): it died of the
    # SIGTERM's default action, and its supervisor, not asked to stop, took it for a
    # crash and started it again: the slot the person stopped trained on.
    env.cli("queue", str(env.sweep("long", "max_inputs: 10000000\nseeds: 2\n")))
    worker = slot_worker(env, "processes")
    wait_for(lambda: "2 slots started" in env.output(), 60, "the slots to start", env)
    started = re.search(r"\(pids (\d+), (\d+)\)", env.output())
    assert started is not None, env.output()
    os.kill(int(started[1]), signal.SIGTERM)  # slot 1, still starting Python
    # The other trains on (its run claimed takes seconds: the stopped one was reaped
    # within the supervisor's 0.1 s poll long before).
    training = lambda: any(r.inputs_done > 0 for r in env.repo().list_runs())  # noqa: E731
    wait_for(training, 120, "slot 2 to train", env)
    assert "started again" not in env.output()
    assert [w.device for w in env.repo().list_workers()] == ["cpu slot 2/2"], env.output()
    worker.send_signal(signal.SIGTERM)
    assert finish(worker, env, timeout=60) == 0, env.output()
    assert "all slots stopped (0 run(s) ended; exit statuses 0, 0)" in env.output()
    assert [r.status for r in env.repo().list_runs()] == [S.QUEUED] * 2, env.output()


@pytest.mark.parametrize("slot", [1, 2])
def test_a_slot_killed_by_signal_9_loses_its_run_at_once_and_is_started_again(
    env: Env, slot: int
) -> None:
    # As the kernel's OOM killer would: the supervisor, not the next worker start, records
    # it (whichever slot it is), and starts the slot again; the other trains on.
    env.cli("queue", str(env.sweep("packed", "max_inputs: 10000000\nseeds: 3\n")))
    worker = slot_worker(env, "processes", "--db", env.db)
    training = lambda: sum(r.inputs_done > 0 for r in env.repo().list_runs()) == 2  # noqa: E731
    wait_for(training, 120, "both slots to train", env)
    victim = next(w for w in env.repo().list_workers() if w.device == f"cpu slot {slot}/2")
    killed = victim.current_run_id
    assert killed is not None
    os.kill(victim.pid, signal.SIGKILL)
    took = wait_for(lambda: status_of(env, killed) == S.FAILED, 10, "the supervisor", env)
    assert took < 2, env.output()
    assert env.repo().get_run(killed).error == "worker lost"
    # Said just after the write that marked it (the log may lag the database by a moment).
    said = f"slot pid {victim.pid} exited with status 137: run {killed} marked failed"
    wait_for(lambda: said in env.output(), 30, "the supervisor to say so", env)
    retry = f"(resconv-tui retry --cause worker-lost --db {shlex.quote(env.db)} queues it again)"
    assert retry in env.output()  # the --db given: without it, it would act on ./runs.db
    # Started again: it takes the third run, beside the slot that trained on.
    wait_for(lambda: status_of(env, 3) == S.RUNNING, 60, "the restarted slot", env)
    assert f"slot {slot}/2 started again (pid " in env.output()
    other = next(r for r in env.repo().list_runs() if r.id not in (killed, 3))
    assert other.status == S.RUNNING
    worker.send_signal(signal.SIGTERM)
    # The slot's last process stopped cleanly: 0, as for a run that failed in a slot
    # (the lost run is in the database); the closing line says a slot was killed.
    assert finish(worker, env, timeout=30) == 0, env.output()
    assert f"started again after being killed: slot {slot} 1x)" in env.output()
    assert status_of(env, other.id) == S.QUEUED and status_of(env, 3) == S.QUEUED


def test_slots_stop_and_put_their_runs_back_when_their_supervisor_is_killed(env: Env) -> None:
    # Orphaned slots trained on with nothing left to stop or restart them (found when
    # the OOM killer took a supervisor): the kernel's parent-death signal stops them.
    env.cli("queue", str(env.sweep("packed", "max_inputs: 10000000\nseeds: 2\n")))
    worker = slot_worker(env, "processes")
    training = lambda: all(r.inputs_done > 0 for r in env.repo().list_runs())  # noqa: E731
    wait_for(training, 120, "both slots to train", env)
    slots = [w.pid for w in env.repo().list_workers()]
    assert len(slots) == 2 and worker.pid not in slots
    worker.kill()
    worker.wait()
    queued = lambda: [r.status for r in env.repo().list_runs()] == [S.QUEUED] * 2  # noqa: E731
    wait_for(queued, 60, "the orphaned slots to put their runs back", env)
    gone = lambda: not any(process_alive(pid) for pid in slots)  # noqa: E731
    wait_for(gone, 60, "the orphaned slots to exit", env)
    assert [w.state for w in env.repo().list_workers(include_gone=True)] == ["stopped"] * 2
    # The kernel sends it once per thread of the dying supervisor: still one clean stop.
    assert env.output().count("supervisor gone: stopping after this step") == 2
    assert "second signal" not in env.output()


def test_stop_waits_for_the_slots_supervisor_too(env: Env) -> None:
    # `stop` waited for the slot processes alone (the supervisor has no worker row) and
    # said "worker pids ... stopped" with the supervisor up for seconds more, recording
    # what each slot left ("all slots stopped" came later in its log).
    env.cli("queue", str(env.sweep("packed", "max_inputs: 10000000\nseeds: 2\n")))
    worker = slot_worker(env, "processes")
    # Both slots have their rows and runs: all `stop` needs (importing torch takes long
    # on a busy machine, hence the bound).
    claimed = lambda: [r.status for r in env.repo().list_runs()] == [S.RUNNING] * 2  # noqa: E731
    wait_for(claimed, 120, "both slots to claim a run", env)
    slots = sorted(w.pid for w in env.repo().list_workers())
    said = env.cli("stop", "--wait", "60")  # asserts exit status 0: all down
    assert worker.poll() == 0, env.output()  # gone when stop returns, not seconds later
    assert "all slots stopped" in env.output()
    assert f"worker pids {slots[0]}, {slots[1]} and their --slots supervisor pid " in said
    assert f"supervisor pid {worker.pid} stopped" in said


def test_a_slot_killed_after_a_stop_reached_it_is_not_started_again(env: Env) -> None:
    # `stop` signals the slots, not their supervisor. A slot that had not exited yet (a
    # final pass; here held still by SIGSTOP) and was then killed (kill -9 after `stop`
    # said "still running", the OOM killer) was started again by the supervisor, which
    # knew of no stop: it claimed run 3 and trained on.
    env.cli("queue", str(env.sweep("packed", "max_inputs: 10000000\nseeds: 3\n")))
    worker = slot_worker(env, "processes")
    training = lambda: sum(r.inputs_done > 0 for r in env.repo().list_runs()) == 2  # noqa: E731
    wait_for(training, 120, "both slots to train", env)
    victim = next(w for w in env.repo().list_workers() if w.device == "cpu slot 2/2")
    os.kill(victim.pid, signal.SIGSTOP)
    env.cli("stop", "--no-wait")
    os.kill(victim.pid, signal.SIGKILL)
    assert finish(worker, env, timeout=60) == 137, env.output()  # a slot killed: said so
    assert "slot 2/2 was stopping: not started again" in env.output()
    assert "slot 2/2 started again" not in env.output()
    statuses = [status_of(env, i) for i in (1, 2, 3)]
    lost = victim.current_run_id
    assert statuses.count(S.FAILED) == 1 and status_of(env, lost) == S.FAILED, env.output()
    assert status_of(env, 3) == S.QUEUED, env.output()


def test_stop_right_after_a_slot_is_started_again_stops_that_slot_too(env: Env) -> None:
    # A slot killed (kill -9, the OOM killer) is started again; for its first seconds
    # (Python, torch) it has no worker row, and stop, which finds workers by their rows,
    # left it alone: it claimed run 3 once stop had gone, while stop waited on its
    # supervisor to the end of --wait ("--slots supervisor ... still running", exit 1).
    env.cli("queue", str(env.sweep("packed", "max_inputs: 10000000\nseeds: 3\n")))
    worker = slot_worker(env, "processes")
    training = lambda: sum(r.inputs_done > 0 for r in env.repo().list_runs()) == 2  # noqa: E731
    wait_for(training, 120, "both slots to train", env)
    victim = next(w for w in env.repo().list_workers() if w.device == "cpu slot 1/2")
    os.kill(victim.pid, signal.SIGKILL)
    again = lambda: "slot 1/2 started again" in env.output()  # noqa: E731
    wait_for(again, 60, "the slot to be started again", env)
    restarted = re.search(r"slot 1/2 started again \(pid (\d+)", env.output())
    assert restarted is not None
    assert int(restarted[1]) not in {w.pid for w in env.repo().list_workers()}  # no row yet
    said = env.cli("stop", "--wait", "30")  # asserts exit status 0: every process down
    assert f"pids {restarted[1]}, " in said or f", {restarted[1]} " in said, said
    assert finish(worker, env, timeout=10) == 0, env.output()
    assert status_of(env, 3) == S.QUEUED, env.output()  # not claimed by the new slot
    assert env.output().count("started again (pid") == 1


def test_stack_trains_seeds_as_one_model_with_the_figures_of_separate_runs(env: Env) -> None:
    # 3 seeds of one cell and a run of another config: the seeds train as one stack,
    # the other alone; each seed's validation loss is what training it alone gives.
    env.cli("queue", str(env.sweep("cell", "max_inputs: 512\nseeds: 3\n")))
    env.cli("queue", str(env.sweep("other", "max_inputs: 512\nactivation: tanh\n")))
    # The same three seeds, one at a time, by the ordinary worker: on a queue of their own
    # (its own folder and database), trained beside the stack rather than after it.
    separate = Env(env.root / "separate", Path(env.vars["RESCONV_DATA"]))
    separate.root.mkdir()
    separate.cli("queue", str(separate.sweep("cell", "max_inputs: 512\nseeds: 3\n")))
    try:
        worker = env.worker("--until-empty", "--stack", "4")
        ordinary = separate.worker("--until-empty")
        assert finish(worker, env) == 0, env.output()
        assert finish(ordinary, separate) == 0, separate.output()
    finally:
        stop_leftovers(separate)
    assert "started as one stack of 3" in env.output()
    runs = env.repo().list_runs()
    assert [(r.status, r.attempts) for r in runs] == [(S.SUCCEEDED, 1)] * 4, env.output()
    stacked, alone = runs[:3], runs[3]
    assert [r.path_used for r in stacked] == ["cpu-eager fp32 stack x3"] * 3
    assert alone.path_used == "plain fp32"
    for run in stacked:
        assert (Path(run.checkpoint_path or "") / "best.pt").is_file()
        assert env.repo().get_samples(run.id) is not None
    again = separate.repo().list_runs()
    assert [(r.status, r.config_hash) for r in again] == [
        (S.SUCCEEDED, r.config_hash) for r in stacked
    ], separate.output()
    assert [r.validation_loss for r in again] == pytest.approx(
        [r.validation_loss for r in stacked], rel=1e-4
    )
