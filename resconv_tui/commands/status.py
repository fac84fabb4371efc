"""``resconv-tui status``: runs by status, running runs' progress, workers' heartbeats.

The queue is imported inside functions: building the CLI parser must not pay
for SQLAlchemy.
"""

from __future__ import annotations

import argparse
import sys
import time
from typing import TYPE_CHECKING, Any

from core.errors import cut, terminal_safe
from resconv_tui.cli import add_db_option, db_option, open_repo
from resconv_tui.terminal_output import print_item

if TYPE_CHECKING:
    from core.queue import RunRow, WorkerRow

RECENT_FAILURES = 5
# NVML names a GPU in tens of characters (96 at most): one edited by hand into pages of
# text is cut, where it filled the worker's line and the screen.
GPU_NAME_SHOWN = 48


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    parser = subparsers.add_parser(
        "status",
        help="runs by status, progress of running runs, workers and their heartbeats",
        description="Show how many runs are queued, running, succeeded, failed and "
        "cancelled, what is training now, and which workers are alive.",
    )
    add_db_option(parser)
    parser.set_defaults(handler=run)
    return parser


def run(args: argparse.Namespace) -> int:
    from core.queue import RunFilter, RunStatus
    from core.queue.db import describe
    from resconv_tui.lost_workers import exited_here_now
    from resconv_tui.polling import damaged_worker_said, held_runs, recent_workers, stalled_runs

    repo = open_repo(args, only_reads=True)
    now = time.time()
    counts = repo.counts_by_status()
    print(terminal_safe(f"database {describe(repo.url)}"))  # a path with ESC in it
    print_item("runs: " + ", ".join(f"{counts[s]} {s.value}" for s in RunStatus), "", "  ")
    running = repo.list_runs(RunFilter(statuses=frozenset({RunStatus.RUNNING})))
    # A worker row edited by hand is named below, the others shown: raised, status
    # showed nothing past the counts until the row was mended with an SQL client.
    workers = repo.workers_and_damaged()[0]
    recent, damaged = recent_workers(repo, now)  # the live rows too
    # Workers of this machine killed without a clean stop (kill -9): said, not recorded
    # (status only reads; an open dashboard or the next worker start records it).
    exited = exited_here_now(workers, now)
    if counts[RunStatus.QUEUED] or running:  # the exited ones train nothing any more
        eta = eta_line(repo.list_runs(), [w for w in workers if w.id not in exited], now)
        print_item(eta, first="", then="  ")
    held = held_runs(running, workers)  # a stacked worker's row names one of its runs
    stalled = stalled_runs(workers, held)
    if running:
        print("running:")
        for run_row in running:
            exited_here = run_row.worker_id in exited
            print_item(running_line(run_row, now, exited_here, run_row.id in stalled))
    failed = repo.list_runs(RunFilter(statuses=frozenset({RunStatus.FAILED}), order="recent"))
    db = db_option(args)
    if failed:
        print_failures(failed, db)
    # Then, as the dashboard's panel, those that stopped or were lost in the last minutes:
    # after a kill -9 the panel said "lost" where status named no worker at all.
    live = {w.id for w in workers}
    gone = [w for w in recent if w.id not in live]
    start = f"start one: resconv-tui worker{db}"
    if workers:
        print("workers:")
    else:
        print(f"workers: none live ({start}); lately:" if gone else f"workers: none ({start})")
    for worker in workers:
        print_item(worker_line(worker, now, held[worker.id], worker.id in exited))
    for worker in gone:  # they hold no run: a lost one's ended "worker lost"
        print_item(worker_line(worker, now, []))
    for row in damaged:
        print(f"resconv-tui: {damaged_worker_said(row)}", file=sys.stderr)
    return 0


def eta_line(runs: list[RunRow], workers: list[WorkerRow], now: float) -> str:
    """``queue ETA 3m02s (t1-layers-32 3m02s, act-demo 41s)``: the dashboard's forecast."""
    from core.queue.views import count_of
    from resconv_tui.polling import (
        beating,
        experiment_etas,
        format_duration,
        last_end,
        queue_forecast,
        untaken_runs,
        untaken_why,
        worker_health,
    )

    if all(worker_health(w, now) == "offline" for w in workers):
        return "queue ETA: — (no live worker)"
    if not any(beating(w, now) for w in workers):
        return "queue ETA: — (the workers are silent: lost?)"
    ends = queue_forecast(runs, workers, now)
    untaken = untaken_runs(runs, ends, workers, now)
    eta = None if untaken else last_end(runs, ends)
    if eta is None:
        if ends is None:
            why = "no run measured yet"
        elif untaken:
            why = f"{count_of(len(untaken), 'queued run')} {untaken_why(workers, now)}"
            if ends:  # what the workers do take still ends
                why += f"; the workers' runs end in {format_duration(max(ends.values()))}"
        else:
            why = "the running runs' workers are silent"
        return f"queue ETA: — ({why})"
    each = ", ".join(
        f"{name} {format_duration(s)}" for name, s in experiment_etas(runs, ends).items()
    )
    return f"queue ETA: {format_duration(eta)} ({each})"


def print_failures(failed: list[RunRow], db: str = "") -> None:
    """Failed runs by cause, each cause with its retry (``db``: its `` --db X``), then the
    most recent failures."""
    from core.queue.failures import RETRY_ADVICE, failure_cause, failure_counts

    print("failed, by cause:")
    for cause, count in failure_counts(failed).items():
        print_item(f"{count} {cause}: {RETRY_ADVICE[cause]} "
                   f"(resconv-tui retry --cause {cause.option}{db})")  # fmt: skip
    print("recently failed:")
    for run_row in failed[:RECENT_FAILURES]:
        cause = failure_cause(run_row.error)  # every row here failed
        error = run_row.error or "(no error text)"
        print_item(f"#{run_row.id} {run_row.experiment}/{run_row.name} [{cause}]: {error}")


EXITED = " (its process has exited: lost; a worker or an open dashboard marks its runs failed)"


def running_line(
    run: RunRow, now: float, worker_exited: bool = False, stalled: bool = False
) -> str:
    from core.queue.repo import STALE_AFTER_S
    from core.queue.views import format_age
    from core.recording import STALL_AFTER_S

    age = run.heartbeat_age(now)
    lost = " (no heartbeat: worker lost?)" if age is not None and age > STALE_AFTER_S else ""
    if stalled and not lost:  # its worker beats, but the training itself hangs
        lost = (f" (stalled: no training step for {STALL_AFTER_S / 60:.0f} min or more; "
                "the worker's log shows where it hangs)")  # fmt: skip
    lost = " (its worker's process has exited: worker lost)" if worker_exited else lost
    if run.cancel_requested and not worker_exited:
        lost += " (cancel requested)"
    return (
        f"#{run.id} {run.experiment}/{run.name}  {run.progress:.0%} "
        f"({run.inputs_done:,} of {run.total_inputs:,} inputs)  worker {run.worker_id}  "
        f"heartbeat {format_age(age)} ago{lost}"
    )


def worker_line(worker: WorkerRow, now: float, runs: list[int], exited: bool = False) -> str:
    from core.queue.repo import STALE_AFTER_S
    from core.queue.views import claim_rules, format_age, format_bytes

    age = worker.age(now)
    doing = f"run{'s' if len(runs) > 1 else ''} {', '.join(f'#{i}' for i in runs)}"
    doing = doing if runs else worker.state
    # Said beside its runs too: a worker stopping after its run's final pass read as
    # training on (the dashboard's workers panel says so).
    doing += f" {worker.state}" if runs and worker.state in ("stalled", "stopping") else ""
    gone = worker.state in ("stopped", "lost")  # said by its state already
    lost = " (silent: lost?)" if age > STALE_AFTER_S and not gone else ""
    lost = EXITED if exited else lost
    gpu = worker.gpu
    stats = "no GPU stats"
    if gpu.util_percent is not None:
        # Each figure may be NULL (a row edited by hand): "—", where its format() of
        # None stopped status with a traceback.
        name = cut(gpu.name or "GPU", GPU_NAME_SHOWN)
        degrees = "—" if gpu.temperature_c is None else f"{gpu.temperature_c:.0f}"
        stats = (
            f"{name} {gpu.util_percent:.0f}% "
            f"{format_bytes(gpu.memory_used)} / {format_bytes(gpu.memory_total)} {degrees}°C"
        )
    rules = f" ({rules})" if (rules := claim_rules(worker)) else ""
    return (
        f"{worker.id}  {worker.device}{rules}  {doing}  {worker.runs_done} done  "
        f"last seen {format_age(age)} ago{lost}  {stats}"
    )
