"""Workers of the dashboard's own machine whose process is gone while their row says live.

A worker killed with SIGKILL (``kill -9``, the kernel's OOM killer) cannot write that it
stopped: its row would look online until its heartbeat aged, and its run would stay
``running`` until some worker next started and recovered it. A dashboard on the same
machine knows better within seconds: the pid is gone and the row has been silent for
``SILENT_FOR_S`` (``core.processes``, the rule the workers apply). So each poll it marks
such runs failed "worker lost" (``r`` or ``retry --cause worker-lost`` queues them
again) and the workers lost. Workers of other hosts are left to their heartbeats: a pid
says nothing across machines.

A worker that exits cleanly writes ``stopped`` (and puts its run back) before it exits,
so a row read a tick earlier can never make a clean stop look lost: only rows still live
and runs still running are touched.
"""

from __future__ import annotations

import socket
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from core.processes import exited_here, gone_here, worker_alive
from core.queue import Repo, WorkerRow
from core.queue.repo import LIVE_WORKER_STATES
from core.queue.views import ids_of


@dataclass(frozen=True)
class LostWorkers:
    """What one poll found and recorded: the exited workers' pids and their runs."""

    pids: list[int]
    run_ids: list[int]

    def message(self, db: str = "") -> str:
        """What the dashboard says; ``db``: the `` --db X`` its suggested command needs."""
        who = f"worker {ids_of('pid', self.pids)}"
        if not self.run_ids:
            return f"{who} exited without stopping cleanly (marked lost)"
        them = "them" if len(self.run_ids) > 1 else "it"
        runs = ids_of("run", self.run_ids)
        # "r or ..." read as if r retried them wherever the cursor was: r retries the
        # highlighted run (or the marked ones), and said "run 1 has succeeded" instead.
        return (
            f"{who} exited without stopping cleanly: {runs} marked failed (worker lost); "
            f"r on {them}, or 'resconv-tui retry --cause worker-lost{db}', queues {them} again"
        )


def exited_workers(
    workers: Sequence[WorkerRow], host: str, alive: Callable[[int, float], bool], now: float
) -> list[WorkerRow]:
    """The ``workers`` of ``host`` whose row says live but whose process is gone, by the
    workers' own rule (``core.processes.exited_here``: silent ``SILENT_FOR_S`` too, since
    a container or box that shares the host's name but not its pids keeps beating)."""
    return [
        w
        for w in workers
        if w.state in LIVE_WORKER_STATES
        and exited_here(
            w.host, w.pid, w.age(now), registered_at=w.started_at, here=host, alive=alive
        )
    ]


def gone_worker_ids(
    workers: Sequence[WorkerRow], host: str, alive: Callable[[int, float], bool], now: float
) -> list[str]:
    """The ids of ``workers`` of ``host`` whose process is not running, however briefly
    silent (``core.processes.gone_here``): a cancel (``Repo.request_cancel``'s
    ``dead_worker_ids``; ``cancel`` and the dashboard's ``c``) ends their runs at once,
    nobody being left to stop them. Unlike marking a worker lost, no silence is waited
    for: were the pid another container's live worker, it reads "cancelled" and stops."""
    return [
        w.id
        for w in workers
        if gone_here(
            w.host, w.pid, registered_at=w.started_at, silent_s=w.age(now), here=host, alive=alive
        )
    ]


def exited_here_now(workers: Sequence[WorkerRow], now: float) -> set[str]:
    """The ids of ``workers`` of this machine whose process has exited (``status`` and
    ``ls``, which only read and say so)."""
    return {w.id for w in exited_workers(workers, socket.gethostname(), worker_alive, now)}


def recover_exited_workers(
    repo: Repo,
    workers: Sequence[WorkerRow],
    host: str,
    alive: Callable[[int, float], bool],
    now: float,
) -> LostWorkers | None:
    """Mark the live-looking ``workers`` of ``host`` whose pid is gone lost, with their runs."""
    exited = exited_workers(workers, host, alive, now)
    return record_lost(repo, exited) if exited else None


def record_lost(repo: Repo, exited: Sequence[WorkerRow]) -> LostWorkers:
    """Mark the ``exited`` workers lost and their runs failed "worker lost" (a write: a
    QueueError where the database is read-only or stays locked)."""
    run_ids = repo.recover_stale(stale_after_s=None, dead_worker_ids=[w.id for w in exited])
    return LostWorkers(sorted({w.pid for w in exited}), sorted(run_ids))


@dataclass(frozen=True)
class NotRecorded:
    """Exited workers this dashboard could not mark lost: the write failed (``error``)."""

    pids: list[int]
    error: str

    def message(self) -> str:
        who = f"worker {ids_of('pid', self.pids)}"
        low = self.error.lower()
        if "readonly" in low or "read-only" in low:
            why = "the database is read-only here"
        else:
            why = f"writing failed ({self.error})"
        their = "their" if len(self.pids) > 1 else "its"
        return (
            f"{who} exited without stopping cleanly, but {why}, so {their} runs cannot be "
            "marked failed (worker lost): a worker, or a dashboard that can write, will"
        )
