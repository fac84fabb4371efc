"""A worker's repo waits for a database that is away or locked (core.queue.patience);
a command's fails at once."""

from __future__ import annotations

import re
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from queue_helpers import tiny_runs
from sqlalchemy import select, update
from sqlalchemy.exc import OperationalError

import core.queue.patience as patience_module
from core.queue import FinalFigures, MetricPoint, QueueError, Repo, RunFilter, RunStatus
from core.queue.repo import RUN, STALE_AFTER_S


class FakeClock:
    """time for core.queue.patience: each wait between two tries adds up at once."""

    def __init__(self) -> None:
        self.now, self.waits = 0.0, []

    def waited(self, seconds: float, stop: Callable[[], bool]) -> bool:
        self.waits.append(seconds)
        self.now += seconds
        return not stop()

    def monotonic(self) -> float:
        return self.now


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> FakeClock:
    fake = FakeClock()
    as_time = SimpleNamespace(time=time.time, monotonic=fake.monotonic, sleep=time.sleep)
    monkeypatch.setattr(patience_module, "time", as_time)
    monkeypatch.setattr(patience_module, "sleep_unless", fake.waited)
    return fake


def refusing(repo: Repo, monkeypatch: pytest.MonkeyPatch, error: Exception) -> list[int]:
    """Make the next N connects (N: the returned list's one item) fail with ``error``."""
    real_connect, refusals = repo.engine.connect, [0]

    def connect() -> Any:
        if refusals[0]:
            refusals[0] -= 1
            raise error
        return real_connect()

    monkeypatch.setattr(repo.engine, "connect", connect)
    return refusals


def test_a_stop_of_the_process_while_it_waits_is_not_counted_as_a_wait_too(
    repo: Repo, monkeypatch: pytest.MonkeyPatch, clock: FakeClock
) -> None:
    # The training clock leaves out both the waits for the database and the process's
    # stops (Ctrl-Z): a stop during a wait was left out twice, the run's training time
    # short by the stop (below zero for a long one) and its in/s too high.
    paused = [0.0]
    monkeypatch.setattr(patience_module, "PAUSES", SimpleNamespace(paused_s=lambda: paused[0]),
                        raising=False)  # fmt: skip
    stopped_in_wait = clock.waited

    def waited(seconds: float, stop: Callable[[], bool]) -> bool:
        if seconds == 2.0:  # the second wait: the process stood still throughout
            paused[0] += seconds
        return stopped_in_wait(seconds, stop)

    monkeypatch.setattr(patience_module, "sleep_unless", waited)
    if repo.engine.dialect.name == "sqlite":
        cause = sqlite3.OperationalError("database is locked")
    else:
        cause = Exception("Connection refused")
    refusals = refusing(repo, monkeypatch, OperationalError("connect", {}, cause))
    repo.reconnect_s, refusals[0] = 60.0, 2
    waited_before = patience_module.waited_s()
    assert repo.enqueue(tiny_runs(1)).added == 1
    assert clock.waits == [1.0, 2.0]
    assert patience_module.waited_s() - waited_before == 1.0  # 3 s, 2 of them a stop


def test_a_worker_s_repo_waits_for_a_database_away_or_locked(
    repo: Repo, monkeypatch: pytest.MonkeyPatch, clock: FakeClock
) -> None:
    # PostgreSQL stopped for 8 s: the worker exited at its next write (rc 2), leaving its
    # run "running" for nobody. A worker's repo tries again; a command's fails at once.
    if repo.engine.dialect.name == "sqlite":  # a file is there or not: only a lock passes
        cause = sqlite3.OperationalError("database is locked")
        went = "locked by another process (held 0 s so far): training waits for it"
        came = "no longer locked"
    else:
        cause, went = Exception("Connection refused"), "unreachable (Connection refused)"
        went, came = f"{went}: training waits", "reachable again"
    refusals, said = refusing(repo, monkeypatch, OperationalError("connect", {}, cause)), []
    refusals[0] = 1
    with pytest.raises(QueueError):
        repo.list_runs()  # reconnect_s 0: at once
    assert clock.waits == []
    repo.reconnect_s, repo.log = 60.0, said.append
    refusals[0] = 2
    waited_before = patience_module.waited_s()
    assert repo.enqueue(tiny_runs(1)).added == 1
    assert clock.waits == [1.0, 2.0]
    # This thread's waiting is counted, so that a training's clock can leave it out.
    assert patience_module.waited_s() - waited_before == 3.0
    # Said once when it went away and once when it came back, not at every try.
    assert said == [
        f"database {went}; trying again for up to 60 s",
        f"database {came} after 3 s: training goes on",
    ]
    refusals[0] = 100  # down for good: it gives up once the next wait would pass 60 s
    with pytest.raises(QueueError):
        repo.list_runs()
    assert sum(clock.waits[2:]) <= 60 and clock.waits[-1] == 15.0


def test_a_connection_cut_mid_statement_is_tried_again_whole(
    repo: Repo, monkeypatch: pytest.MonkeyPatch, clock: FakeClock
) -> None:
    # A PostgreSQL restart while a statement waited on a lock ("terminating connection
    # due to administrator command") stopped the worker; only the connect was retried.
    cut = OperationalError("UPDATE run", {}, Exception("server closed the connection"))
    cut.connection_invalidated = True
    repo.reconnect_s, said = 60.0, []
    repo.log = said.append
    refusing(repo, monkeypatch, cut)[0] = 1
    worker = repo.register_worker("h", 1, "cpu")
    assert [w.id for w in repo.list_workers()] == [worker]
    assert clock.waits == [1.0]
    assert said[0].startswith("database connection lost (server closed the connection)")


def cut_after_commit(
    repo: Repo, monkeypatch: pytest.MonkeyPatch, meanwhile: Callable[[], None] = lambda: None
) -> None:
    """The repo's next write commits, then its connection is cut before the answer comes
    (a worker's repo: it tries the verb again); ``meanwhile``: what another process does
    before the try again."""
    repo.reconnect_s = 60.0
    real_write, cuts = repo._write, [1]

    @contextmanager
    def write_then_cut() -> Iterator[Any]:
        with real_write() as conn:
            yield conn
        if cuts[0]:  # committed; the answer is lost
            cuts[0] -= 1
            meanwhile()
            cut = OperationalError("COMMIT", {}, Exception("server closed the connection"))
            cut.connection_invalidated = True
            raise QueueError("database: server closed the connection") from cut

    monkeypatch.setattr(repo, "_write", write_then_cut)


@pytest.mark.parametrize("stack", [1, 2])
def test_a_claim_whose_commit_went_through_unheard_is_not_claimed_twice(
    repo: Repo, monkeypatch: pytest.MonkeyPatch, clock: FakeClock, stack: int
) -> None:
    # The run the lost answer held stayed "running" under the worker, which claimed the
    # next one: the first ended "worker lost" (its heartbeat named only the second).
    repo.enqueue(tiny_runs(4))  # seeds of one config: a stack of 2 takes two
    worker = repo.register_worker("h", 1, "cpu")
    cut_after_commit(repo, monkeypatch)
    if stack == 1:
        run = repo.claim(worker)
        claimed = [] if run is None else [run.id]
    else:
        claimed = [r.id for r in repo.claim_stack(worker, False, stack, lambda config: True)]
    assert clock.waits == [1.0]  # it was tried again
    assert claimed == [1, 2][:stack]
    running = repo.list_runs(RunFilter(statuses=frozenset({RunStatus.RUNNING})))
    assert [r.id for r in running] == claimed
    # A first try claims as ever, though the worker trains a run: it does not, in use.
    later = repo.claim(worker)
    assert later is not None and later.id == stack + 1


@pytest.mark.parametrize("stack", [1, 2])
def test_a_run_claimed_unheard_and_damaged_meanwhile_is_failed_and_the_claim_goes_on(
    repo: Repo, monkeypatch: pytest.MonkeyPatch, clock: FakeClock, stack: int
) -> None:
    # Tried again, the claim read the runs its lost answer held: one edited by hand into
    # what no version writes meanwhile raised "damaged" there, and stopped the worker.
    repo.enqueue(tiny_runs(3))  # seeds of one config: a stack of 2 takes runs 1 and 2
    worker = repo.register_worker("h", 1, "cpu")

    def damage_run_1() -> None:  # as an SQL client's UPDATE stores it
        with repo.engine.begin() as conn:
            conn.execute(update(RUN).where(RUN.c.id == 1).values(config_json="[1]"))

    cut_after_commit(repo, monkeypatch, damage_run_1)
    if stack == 1:
        run = repo.claim(worker)
        claimed = [] if run is None else [run.id]
    else:
        claimed = [r.id for r in repo.claim_stack(worker, False, stack, lambda config: True)]
    assert clock.waits == [1.0]  # it was tried again
    assert claimed == [2]  # the next run (stack 1), or the stack's readable one
    with repo.engine.connect() as conn:
        status, error = conn.execute(select(RUN.c.status, RUN.c.error).where(RUN.c.id == 1)).one()
    assert status == "failed"
    assert error == (
        "not trained: its row is damaged (its config_json: not a mapping); put the value "
        "back with an SQL client, then retry it"
    )


@pytest.mark.parametrize(
    "verb", ["finish", "fail", "mark_cancelled", "requeue", "requeue-cancel", "put_back"]
)
def test_a_run_s_end_whose_commit_went_through_unheard_counts_as_recorded(
    repo: Repo, monkeypatch: pytest.MonkeyPatch, clock: FakeClock, verb: str
) -> None:
    # Tried again, the end found the run no longer running under its worker, which then
    # said "no longer this worker's run: not recorded" of a run it had recorded.
    repo.enqueue(tiny_runs(1))
    worker = repo.register_worker("h", 1, "cpu")
    run = repo.claim(worker)
    assert run is not None
    cut_after_commit(repo, monkeypatch)
    if verb == "finish":
        assert repo.finish(run.id, worker, FinalFigures(validation_loss=0.05)) is True
        expected = RunStatus.SUCCEEDED
    elif verb == "fail":
        assert repo.fail(run.id, worker, "boom") is True
        expected = RunStatus.FAILED
    elif verb == "mark_cancelled":
        assert repo.mark_cancelled(run.id, worker) is True
        expected = RunStatus.CANCELLED
    elif verb == "requeue":  # "it is no longer this worker's run", it said
        assert repo.requeue(run.id, worker) == RunStatus.QUEUED
        expected = RunStatus.QUEUED
    elif verb == "put_back":  # "(run N no longer this worker's)", it said; no attempt lost twice
        assert repo.put_back(run.id, worker) is True
        assert repo.get_run(run.id).attempts == 0
        expected = RunStatus.QUEUED
    else:  # stopped with a cancel asked for: it ends cancelled
        repo.request_cancel([run.id])
        assert repo.requeue(run.id, worker) == RunStatus.CANCELLED
        expected = RunStatus.CANCELLED
    assert clock.waits == [1.0]  # it was tried again
    assert repo.get_run(run.id).status == expected


def test_a_worker_registered_unheard_has_one_row(
    repo: Repo, monkeypatch: pytest.MonkeyPatch, clock: FakeClock
) -> None:
    # A second try inserted a second row under a new id: one that never beats.
    cut_after_commit(repo, monkeypatch)
    worker = repo.register_worker("h", 1, "cpu")
    assert clock.waits == [1.0]
    assert [w.id for w in repo.list_workers()] == [worker]


def test_a_metric_batch_whose_commit_went_through_unheard_is_not_written_twice(
    repo: Repo, monkeypatch: pytest.MonkeyPatch, clock: FakeClock
) -> None:
    # The connection cut while the batch's COMMIT was on the wire: it committed, the
    # worker heard an error and tried the batch again, whole.
    repo.enqueue(tiny_runs(1))
    worker = repo.register_worker("h", 1, "cpu")
    run = repo.claim(worker)
    assert run is not None
    first = [MetricPoint(20, 640, "train_loss", 0.5), MetricPoint(20, 640, "lr", 1e-3)]
    repo.add_metrics(run.id, first, 640, owner=worker)
    cut_after_commit(repo, monkeypatch)
    again = [MetricPoint(40, 1280, "train_loss", 0.4), MetricPoint(40, 1280, "lr", 9e-4)]
    repo.add_metrics(run.id, again, 1280, owner=worker)
    assert clock.waits == [1.0]  # it was tried again
    stored = [(m.step, m.name, m.value) for m in repo.metrics_since(run.id, 0)]
    assert stored == [(p.step, p.name, p.value) for p in first + again]
    assert repo.get_run(run.id).inputs_done == 1280
    # A first try writes what it is given, even the very points just written.
    repo.add_metrics(run.id, again, 1280, owner=worker)
    assert len(repo.metrics_since(run.id, 0)) == 6


def test_a_refusal_that_waiting_cannot_mend_is_not_tried_again(
    repo: Repo, monkeypatch: pytest.MonkeyPatch, clock: FakeClock
) -> None:
    repo.reconnect_s = 60.0
    if repo.engine.dialect.name == "sqlite":
        error = OperationalError("SELECT", {}, sqlite3.OperationalError("disk I/O error"))
    else:  # a server's constraint or syntax errors are not its connection's
        from sqlalchemy.exc import IntegrityError

        error = IntegrityError("INSERT", {}, Exception("duplicate key value"))
    refusing(repo, monkeypatch, error)[0] = 1
    with pytest.raises(QueueError):
        repo.list_runs()
    assert clock.waits == []


@pytest.fixture
def sqlite_file(tmp_path: Path) -> Iterator[Path]:
    path = tmp_path / "runs.db"
    Repo.open(str(path)).close()
    yield path


def test_a_worker_waits_out_another_process_s_sqlite_lock(sqlite_file: Path) -> None:
    # A sqlite3 shell (or a backup) holding the write lock for 45 s: the worker stopped
    # after the 15 s busy timeout, its run left "running" for nobody.
    repo = Repo.open(str(sqlite_file), busy_timeout_s=0.2)
    holder = sqlite3.connect(sqlite_file, isolation_level=None, check_same_thread=False)
    holder.execute("BEGIN IMMEDIATE")
    said: list[str] = []
    try:
        with pytest.raises(QueueError, match="locked by another process"):
            repo.register_worker("h", 1, "cpu")  # a command's: at once
        repo.reconnect_s, repo.log = 30.0, said.append
        threading.Timer(1.5, holder.rollback).start()
        worker = repo.register_worker("h", 1, "cpu")  # waits for the lock
        assert [w.id for w in repo.list_workers()] == [worker]
    finally:
        holder.close()
        repo.close()
    # Said as a lock, which it is: "reachable again" read as the database gone and back.
    assert re.fullmatch(
        r"database locked by another process \(held 0\.\d s so far\): training waits for "
        r"it; trying again for up to 30 s",
        said[0],
    ), said
    assert re.fullmatch(r"database no longer locked after \d+ s: training goes on", said[-1])
    assert len(said) == 2


def test_a_lock_waited_out_counts_as_a_wait_up_to_its_release(sqlite_file: Path) -> None:
    # The try that went through had itself waited in SQLite's busy timeout until the
    # lock's release: that wait was counted as training time (a worker locked out for
    # 24 s recorded 12.5 s of training for 3.4 s of steps, its in/s a quarter of its own).
    repo = Repo.open(str(sqlite_file), busy_timeout_s=2.0)
    holder = sqlite3.connect(sqlite_file, isolation_level=None, check_same_thread=False)
    holder.execute("BEGIN IMMEDIATE")
    repo.reconnect_s = 30.0
    try:
        # Refused at 2 s (the busy timeout), tried again at 3 s (the first wait), which
        # goes through when the lock is let go, at 4 s.
        release = threading.Timer(4.0, holder.rollback)
        waited_before, began = patience_module.waited_s(), time.monotonic()
        release.start()
        repo.register_worker("h", 1, "cpu")
        took = time.monotonic() - began
        waited = patience_module.waited_s() - waited_before
    finally:
        release.join()
        holder.close()
        repo.close()
    assert took >= 3.9 and waited >= took - 0.3, (took, waited)


@pytest.mark.parametrize("how", ["locked", "its table locked", "lock_timeout"])
def test_a_lock_waited_out_is_said_as_a_lock_and_holds_no_look_off(
    repo: Repo, monkeypatch: pytest.MonkeyPatch, clock: FakeClock, how: str
) -> None:
    # Another process's lock held past the busy timeout (SQLite), or past a lock_timeout
    # the URL sets (PostgreSQL: "canceling statement due to lock timeout", said as the
    # server unreachable), counted as an outage: "database reachable again" in the log,
    # and the worker's look for dead boxes' runs held off the stale limit after it.
    sqlite = repo.engine.dialect.name == "sqlite"
    if how == "lock_timeout" and sqlite or how != "lock_timeout" and not sqlite:
        pytest.skip(f"{how}: not a {repo.engine.dialect.name} refusal")
    cause: Exception
    if how == "lock_timeout":
        from psycopg.errors import LockNotAvailable

        cause = LockNotAvailable("canceling statement due to lock timeout")
    else:
        cause = sqlite3.OperationalError(
            "database is locked" if how == "locked" else "database table is locked"
        )
    said: list[str] = []
    repo.reconnect_s, repo.log = 60.0, said.append
    refusing(repo, monkeypatch, OperationalError("UPDATE", {}, cause))[0] = 2
    repo.register_worker("h", 1, "cpu")
    assert said == [
        "database locked by another process (held 0 s so far): training waits for it; "
        "trying again for up to 60 s",
        "database no longer locked after 3 s: training goes on",
    ]
    assert repo.outage.ended_within(STALE_AFTER_S) is False
    assert repo.outage.lock_ended_at == clock.now  # the others' silence timed from here


def test_an_outage_past_a_lock_wait_is_said_and_holds_the_look_off(
    repo: Repo, monkeypatch: pytest.MonkeyPatch, clock: FakeClock
) -> None:
    # One wait that meets a lock, then the server away (a PostgreSQL restart): an outage
    # all the same, said so, and the look waits after it.
    if repo.engine.dialect.name == "sqlite":
        pytest.skip("a SQLite file is only ever locked: nothing else passes")
    from psycopg.errors import LockNotAvailable

    errors = iter(
        [
            LockNotAvailable("canceling statement due to lock timeout"),
            Exception("Connection refused"),
        ]
    )
    real_connect = repo.engine.connect

    def connect() -> Any:
        cause = next(errors, None)
        if cause is None:
            return real_connect()
        raise OperationalError("connect", {}, cause)

    monkeypatch.setattr(repo.engine, "connect", connect)
    said: list[str] = []
    repo.reconnect_s, repo.log = 60.0, said.append
    repo.list_runs()
    assert said == [
        "database locked by another process (held 0 s so far): training waits for it; "
        "trying again for up to 60 s",
        "database unreachable (Connection refused): training waits; trying again for up to 60 s",
        "database reachable again after 3 s: training goes on",
    ]
    assert repo.outage.ended_within(STALE_AFTER_S) is True


def test_a_verb_inside_at_once_is_tried_once(
    repo: Repo, monkeypatch: pytest.MonkeyPatch, clock: FakeClock
) -> None:
    # A worker stopping on a database error gives its runs back without waiting again.
    refused = OperationalError("connect", {}, Exception("Connection refused"))
    refusing(repo, monkeypatch, refused)[0] = 5
    repo.reconnect_s = 60.0
    with patience_module.at_once(), pytest.raises(QueueError):
        repo.list_runs()
    assert clock.waits == []


def test_a_sqlite_file_removed_or_replaced_while_in_use_is_not_written_to(
    sqlite_file: Path,
) -> None:
    # runs.db removed while a worker trained: it went on writing into the removed file
    # (its results lost with it), and the dashboard went on showing the old queue.
    repo = Repo.open(str(sqlite_file))
    try:
        repo.enqueue(tiny_runs(1))
        for name in ("runs.db", "runs.db-wal", "runs.db-shm"):
            (sqlite_file.parent / name).unlink(missing_ok=True)
        with pytest.raises(QueueError, match=r"runs\.db was removed while in use"):
            repo.list_runs()
        Repo.open(str(sqlite_file)).close()  # a new queue at the same path
        with pytest.raises(QueueError, match="was replaced by another file while in use"):
            repo.enqueue(tiny_runs(1))
    finally:
        repo.close()
    assert Repo.open(str(sqlite_file)).list_runs() == []  # the new one, untouched


def test_a_worker_already_stopping_does_not_say_it_waits_for_its_database(
    repo: Repo, monkeypatch: pytest.MonkeyPatch, clock: FakeClock
) -> None:
    # A stopping worker's write refused by another process's lock (its last metric
    # flush, a heartbeat) said "database locked by another process: training waits;
    # trying again for up to 300 s", then gave up at once, and later "database reachable
    # again after 23 s: training goes on" while it stopped.
    passing = sqlite3.OperationalError("database is locked")  # a reason that passes
    if repo.engine.dialect.name != "sqlite":
        passing = Exception("Connection refused")  # type: ignore[assignment]
    refusing(repo, monkeypatch, OperationalError("connect", {}, passing))[0] = 1
    said: list[str] = []
    repo.reconnect_s, repo.log, repo.stop_waiting = 300.0, said.append, lambda: True
    with pytest.raises(QueueError):
        repo.list_runs()
    assert repo.list_runs() == []  # refused no more
    assert (said, clock.waits) == ([], [])


def test_a_worker_asked_to_stop_waits_no_more_for_its_database(
    repo: Repo, monkeypatch: pytest.MonkeyPatch
) -> None:
    # SIGTERM to a worker whose database was away: it said "trying again for up to
    # 300 s" and hung there until a second signal.
    passing = sqlite3.OperationalError("database is locked")  # a reason that passes
    if repo.engine.dialect.name != "sqlite":
        passing = Exception("Connection refused")  # type: ignore[assignment]
    refusing(repo, monkeypatch, OperationalError("connect", {}, passing))[0] = 100
    asked = threading.Event()
    repo.reconnect_s, repo.stop_waiting = 300.0, asked.is_set
    threading.Timer(0.5, asked.set).start()
    started = time.monotonic()
    with pytest.raises(QueueError):
        repo.list_runs()
    assert time.monotonic() - started < 3.0
