"""Claim exclusivity: many claimers, one database (SQLite file or PostgreSQL), each run once."""

from __future__ import annotations

import threading
from collections import Counter

from queue_helpers import tiny_runs

from core.queue import FinalFigures, Repo, RunStatus

RUNS = 40
CLAIMERS = 6


def test_concurrent_claimers_never_get_the_same_run(db_url: str) -> None:
    first = Repo.open(db_url)
    first.enqueue(tiny_runs(RUNS))
    first.close()
    got: list[int] = []
    lock = threading.Lock()
    start = threading.Barrier(CLAIMERS)

    def claimer(n: int) -> None:
        repo = Repo.open(db_url)  # own engine, as a separate worker would have
        worker = repo.register_worker("h", n, "cpu")
        start.wait()
        while (run := repo.claim(worker)) is not None:
            with lock:
                got.append(run.id)
            repo.finish(run.id, worker, FinalFigures(validation_loss=0.1))
        repo.close()

    threads = [threading.Thread(target=claimer, args=(n,)) for n in range(CLAIMERS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert Counter(got) == Counter(range(1, RUNS + 1))  # each exactly once
    repo = Repo.open(db_url)
    assert repo.counts_by_status()[RunStatus.SUCCEEDED] == RUNS
    assert sum(w.runs_done for w in repo.list_workers()) == RUNS
    repo.close()


def test_heartbeats_while_runs_end_never_deadlock(db_url: str) -> None:
    """The heartbeat thread and the worker's finish() touch the same run and worker rows."""
    repo = Repo.open(db_url)
    repo.enqueue(tiny_runs(RUNS))
    worker = repo.register_worker("h", 1, "cpu")
    current: list[int] = []
    done = threading.Event()
    errors: list[BaseException] = []

    def beating() -> None:
        beats = Repo.open(db_url)  # its own connection, as the Heartbeat thread has
        try:
            while not done.is_set():
                beats.heartbeat(worker, run_id=current[-1] if current else None)
        except BaseException as exc:
            errors.append(exc)
        finally:
            beats.close()

    thread = threading.Thread(target=beating)
    thread.start()
    try:
        while (run := repo.claim(worker)) is not None:
            current.append(run.id)
            repo.finish(run.id, worker, FinalFigures(validation_loss=0.1))
    finally:
        done.set()
        thread.join(timeout=60)
    assert errors == []
    assert repo.counts_by_status()[RunStatus.SUCCEEDED] == RUNS
    repo.close()
