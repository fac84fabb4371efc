"""``resconv-tui cancel|retry|rm|next ID...``, ``priority N ID...``: change runs (all or
nothing).

One unknown id, or one run in a status the change does not apply to, changes
no run and exits with one line saying which. ``next`` alone moves the queued runs
it is given and names the others (only when none is queued is it an error).
"""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING, Any

from core.errors import shown
from core.whole_text import plain_whole
from resconv_tui.cli import add_db_option, db_option, open_repo, readable_workers

if TYPE_CHECKING:
    from core.queue import Repo, RunRow


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    commands = (
        ("cancel", cancel, "cancel queued runs; stop running runs within seconds"),
        ("retry", retry, "queue failed or cancelled runs again"),
        ("rm", remove, "delete runs and their metrics (cancel running runs first)"),
        ("next", run_next, "train these queued runs next, in the order given"),
        ("priority", set_priority, "set the runs' priority (higher trains sooner; default 0)"),
    )
    parser = None
    for name, handler, text in commands:
        parser = subparsers.add_parser(
            name, help=text, description=text[0].upper() + text[1:] + "."
        )
        if name == "retry":
            add_retry_arguments(parser)
        elif name == "priority":
            parser.add_argument(
                "priority", type=priority_value, metavar="N", help="the priority, e.g. 5 or -1"
            )
            parser.add_argument("ids", nargs="+", type=run_id, metavar="ID", help="run id")
        else:
            parser.add_argument("ids", nargs="+", type=run_id, metavar="ID", help="run id")
        add_db_option(parser)
        parser.set_defaults(handler=handler)
    assert parser is not None
    return parser


# core.queue.failures.CAUSE_OPTIONS, spelled out: building the parser must not import the
# queue (SQLAlchemy); a test keeps the two equal.
CAUSE_WORDS = ("oom", "nan", "worker-lost", "error")


def add_retry_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("ids", nargs="*", type=run_id, metavar="ID", help="run id")
    parser.add_argument(
        "--cause", choices=CAUSE_WORDS, action="append", default=None,
        help="retry every run that failed this way (given twice: either way), besides any "
        "ids given (see "
        "'resconv-tui status'): "
        "oom (out of memory), nan (loss NaN/inf), worker-lost (its worker crashed or was "
        "killed), error (anything else)",
    )  # fmt: skip


# PostgreSQL's INTEGER id column (SQLite would need two billion runs to get there): a
# larger id names no run, and was a database error or an OverflowError traceback.
MAX_RUN_ID = 2**31 - 1


def run_id(text: str) -> int:
    try:
        value = plain_whole(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{shown(text)} is not a run id (a whole number)"
        ) from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{shown(text)} is not a run id (ids start at 1)")
    if value > MAX_RUN_ID:
        raise argparse.ArgumentTypeError(
            f"{shown(text)} is not a run id (ids are 1 to {MAX_RUN_ID:,})"
        )
    return value


def priority_value(text: str) -> int:
    """A priority from the command line: a whole number within +-PRIORITY_LIMIT."""
    from core.queue.rows import PRIORITY_LIMIT

    try:
        value = plain_whole(text)
    except ValueError:
        value = None
    if value is None or abs(value) > PRIORITY_LIMIT:
        raise argparse.ArgumentTypeError(
            f"{shown(text)} is not a priority (a whole number from -{PRIORITY_LIMIT:,} "
            f"to {PRIORITY_LIMIT:,}, e.g. 5 or -1)"
        )
    return value


def cancel(args: argparse.Namespace) -> int:
    import socket
    import time

    from core.processes import worker_alive
    from core.queue import RunFilter, RunStatus
    from core.queue.status import FINISHING
    from core.queue.views import ended_said
    from resconv_tui.lost_workers import gone_worker_ids

    repo = open_repo(args)
    # A worker of this machine killed with -9 never reads the request: cancel its run now.
    workers = readable_workers(repo)
    dead = gone_worker_ids(workers, socket.gethostname(), worker_alive, time.time())
    statuses = repo.request_cancel(args.ids, dead_worker_ids=dead, confirming=_say_watching)
    runs = {run.id: run for run in repo.list_runs(RunFilter(ids=tuple(statuses)))}
    ended = False
    for rid, status in statuses.items():
        if status == RunStatus.CANCELLED:
            print(f"run {rid}: cancelled")
        elif status != RunStatus.RUNNING:  # ended or deleted while cancel watched a beat
            print(f"{ended_said({rid: status})[0]}: not cancelled")  # as stop says it
            ended = True
        elif rid in runs and runs[rid].trained_all:  # no step left to stop it before
            print(f"run {rid}: cancel requested, but {FINISHING}")
        else:
            print(f"run {rid}: cancel requested (its worker stops it within a few seconds)")
    # 1: not all cancelled. `cancel 7 && rm 7` must not remove a run that succeeded; nor
    # `cancel 3 4 && next-step` go on as if run 4, deleted meanwhile, had been cancelled.
    return 1 if ended else 0


def _say_watching(said: str) -> None:
    """Why cancel pauses: a run whose beat reads old here, watched for a beat before it is
    cancelled at once (its worker's box may write beats with a clock behind this one's)."""
    print(f"resconv-tui: {said}", file=sys.stderr)


def retry(args: argparse.Namespace) -> int:
    from core.errors import UsageError

    if not args.ids and args.cause is None:  # before opening the database: a usage mistake
        raise UsageError("retry needs run ids, or --cause oom|nan|worker-lost|error")
    repo = open_repo(args)
    ids = list(dict.fromkeys(args.ids))  # once each: `retry 2 2` said "queued again: 2, 2"
    # With ids alone, only their workers' lost runs are recorded: `retry 3` of a run that
    # succeeded marked another run lost, then said "nothing changed".
    exiting = _record_exited_workers(repo, None if args.cause is not None else ids)
    if exiting and ids:
        from core.queue import InvalidTransition, RunFilter, RunStatus

        for run in repo.list_runs(
            RunFilter(ids=tuple(ids), statuses=frozenset({RunStatus.RUNNING}))
        ):
            if run.worker_id in exiting:  # killed a moment ago: "run 1 is running" misled
                wait = max(1, round(exiting[run.worker_id]))
                raise InvalidTransition(  # "not allowed": the ids were right, the time not yet
                    f"run {run.id}'s worker has exited; the run is recorded lost once its worker "
                    f"has been silent 10 s: retry in {wait} s"
                )
    if args.cause is not None:
        from core.queue.failures import cause_from_option, failed_runs

        causes = [cause_from_option(option) for option in dict.fromkeys(args.cause)]
        for cause in causes:  # each cause's runs (it kept the last --cause only)
            ids += [r.id for r in failed_runs(repo, cause) if r.id not in ids]
        if not ids:
            said = " or ".join(
                cause.option if cause.option == str(cause) else f"{cause.option} ({cause})"
                for cause in causes
            )
            print(f"nothing to retry: no run failed with cause {said}")
            return 0
    from core.queue.failures import FailureCause, diverged_warning, failed_runs

    diverged = [run.id for run in failed_runs(repo, FailureCause.DIVERGED)]
    repo.retry(ids)
    print("queued again: " + ", ".join(map(str, ids)))
    if warning := diverged_warning(diverged, ids):  # the dashboard's r asks first
        print(f"note: {warning}")
    return 0


def _record_exited_workers(repo: Repo, runs_of: list[int] | None = None) -> dict[str, float]:
    """Runs of a worker of this machine killed with -9 are lost, as ``ls`` and ``status``
    say, but recorded so only by the next worker or dashboard: until then ``retry``
    refused them as running. Recorded now, by the dashboard's rule (its process is gone
    and it has been silent 10 s)."""
    import socket
    import time

    from core.processes import SILENT_FOR_S, gone_here, worker_alive
    from resconv_tui.lost_workers import recover_exited_workers

    now, here, workers = time.time(), socket.gethostname(), readable_workers(repo)
    if runs_of is not None:  # only the workers that hold these runs
        from core.queue import RunFilter

        holders = {run.worker_id for run in repo.list_runs(RunFilter(ids=tuple(runs_of)))}
        workers = [w for w in workers if w.id in holders]
    lost = recover_exited_workers(repo, workers, here, worker_alive, now)
    if lost is not None and lost.run_ids:
        from core.queue.views import ids_of

        print(f"{ids_of('run', lost.run_ids)}: worker lost (its worker's process has exited)")
    return {  # exited, not silent long enough yet: their runs read "running" a while
        w.id: SILENT_FOR_S - w.age(now)
        for w in workers
        if w.age(now) < SILENT_FOR_S
        and gone_here(w.host, w.pid, registered_at=w.started_at, silent_s=w.age(now), here=here)
    }


def remove(args: argparse.Namespace) -> int:
    from core.queue import RunFilter
    from core.queue.views import count_of
    from resconv_tui.checkpoint_folders import left_on_disk

    repo = open_repo(args)
    runs = repo.list_runs(RunFilter(ids=tuple(args.ids)))
    removed = repo.remove(args.ids)
    print(f"removed {count_of(removed, 'run')}")
    for line in left_on_disk(runs, repo.url):  # as the dashboard's x says it
        print(line)
    return 0


def run_next(args: argparse.Namespace) -> int:
    """Queued runs only, as the dashboard's ``t``: a finished, failed or running run is
    not waiting for a worker, so a priority would change nothing and "train next" would
    mislead. Others are named; none queued is an error (exit 2), nothing changed."""
    from core.queue import RunStatus
    from core.queue.errors import InvalidTransition

    repo = open_repo(args)
    ids, found = _named_runs(repo, args.ids)
    others = [found[i] for i in ids if i in found and found[i].status != RunStatus.QUEUED]
    # Unknown ids stay in: move_to_front refuses them in one line and changes nothing.
    waiting = [i for i in ids if i not in found or found[i].status == RunStatus.QUEUED]
    if not waiting:
        raise InvalidTransition(f"{_not_waiting(others, args)}; nothing changed")
    print(_next_said(waiting, repo.move_to_front(waiting)))
    if others:
        print(f"resconv-tui: left as they are: {_not_waiting(others, args)}", file=sys.stderr)
    return 0


def _next_said(ids: list[int], priorities: list[int]) -> str:
    """``run 9 trains next (priority 3)``, or for several ``runs 9, 7 train next, in that
    order (priorities 3, 2)`` (it read ``priority 3: 9 train next``)."""
    from core.queue.views import ids_of

    if len(ids) == 1:
        return f"{ids_of('run', ids)} trains next (priority {priorities[0]})"
    said = ", ".join(map(str, priorities))
    return f"{ids_of('run', ids)} train next, in that order (priorities {said})"


def _named_runs(repo: Repo, given: list[int]) -> tuple[list[int], dict[int, RunRow]]:
    """The ids given, each once in their order, and the runs of those that exist (an
    unknown id is left for the write to refuse, in one line, changing nothing)."""
    from core.queue import RunFilter

    ids = list(dict.fromkeys(given))
    return ids, {run.id: run for run in repo.list_runs(RunFilter(ids=tuple(ids)))}


def _not_waiting(runs: list[RunRow], args: argparse.Namespace) -> str:
    """``run 11 has failed: only queued runs wait for a worker (resconv-tui retry 11 ...)``."""
    from core.queue import RunStatus
    from core.queue.status import run_is

    said = ", ".join(run_is(run.id, run.status) for run in runs)
    again = [run.id for run in runs if run.status in (RunStatus.FAILED, RunStatus.CANCELLED)]
    if not again:
        return f"{said}: only queued runs wait for a worker"
    command = f"resconv-tui retry {' '.join(map(str, again))}{db_option(args)}"
    them = "it" if len(again) == 1 else "them"
    return f"{said}: only queued runs wait for a worker ({command} queues {them} again)"


def set_priority(args: argparse.Namespace) -> int:
    """Runs that may yet train (queued, running, failed or cancelled: a retry keeps the
    priority); a succeeded run is named and left as it is, and with only such runs it is
    an error (exit 2), nothing changed."""
    from core.queue import RunStatus
    from core.queue.errors import InvalidTransition
    from core.queue.views import ids_of

    repo = open_repo(args)
    ids, found = _named_runs(repo, args.ids)
    done = [i for i in ids if i in found and found[i].status == RunStatus.SUCCEEDED]
    said = f"{ids_of('run', done)} succeeded and will not train again"
    # Unknown ids stay in: set_priority refuses them in one line and changes nothing.
    if not (rest := [i for i in ids if i not in done]):
        raise InvalidTransition(f"{said}; nothing changed")
    repo.set_priority(rest, args.priority)
    print(f"{ids_of('run', rest)}: priority {args.priority}")
    if done:
        print(f"resconv-tui: left as they are: {said}", file=sys.stderr)
    return 0
