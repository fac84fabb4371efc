"""``resconv-tui queue FILE.yml``: expand a sweep file and queue its runs (all or nothing)."""

from __future__ import annotations

import argparse
import re
from typing import TYPE_CHECKING, Any

from resconv_tui.cli import add_db_option, db_option, open_repo, workers_and_damaged_named
from resconv_tui.commands.manage import priority_value

if TYPE_CHECKING:
    from core.queue.rows import DamagedWorker
    from core.sweep import ExpandedRun


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    parser = subparsers.add_parser(
        "queue",
        help="expand a sweep file and queue its runs",
        description="Expand FILE.yml and queue every run in one transaction. A run whose "
        "config and seed are already queued, running or succeeded in the same experiment "
        "is skipped, so extending a sweep queues only the new cells; one that failed or "
        "was cancelled is queued again in place.",
    )
    parser.add_argument("file", metavar="FILE.yml", help="sweep file")
    parser.add_argument(
        "--dry-run", action="store_true", help="list the runs and their parameter counts only"
    )
    parser.add_argument(
        "--priority",
        type=priority_value,
        default=0,
        metavar="N",
        help="higher trains sooner (default 0)",
    )
    parser.add_argument(
        "--force", action="store_true", help="queue duplicates of existing runs too"
    )
    parser.add_argument(
        "--max-inputs",
        type=inputs_count,
        default=None,
        metavar="N",
        help="a quick check: every run trains N inputs, in experiment NAME-inputs-N, "
        "without the file's targets (they are its full runs' figures)",
    )
    add_db_option(parser)
    parser.set_defaults(handler=run)
    return parser


def inputs_count(text: str) -> int:
    """--max-inputs: a whole number of inputs, 1 to MAX_INPUTS (the sweep checks the batch)."""
    from core.config import MAX_INPUTS, whole_from_text
    from core.errors import shown
    from core.whole_text import plain_number

    # ASCII digits, as every whole-number option takes (int() reads "1_0" and "２").
    value = whole_from_text(text) if plain_number(text) else None
    if value is None or not 1 <= value <= MAX_INPUTS:
        raise argparse.ArgumentTypeError(
            f"{shown(text)} is not a number of inputs (a whole number from 1 to {MAX_INPUTS:,})"
        )
    return value


def run(args: argparse.Namespace) -> int:
    from core.errors import SweepError
    from core.queue.errors import UsageError
    from core.sweep import expand_sweep_file, trained_alike_note

    try:
        runs = expand_sweep_file(args.file, args.max_inputs)
    except SweepError as exc:
        batch = re.search(r"must be at least batch_size (\d+)", str(exc))
        if args.max_inputs is None or batch is None:
            raise
        raise UsageError(  # the option's mistake, not the file's
            f"--max-inputs {args.max_inputs}: below this sweep's batch size {batch[1]} "
            "(training draws whole batches)"
        ) from None
    if args.max_inputs is not None:
        had_targets = any(run.target for run in expand_sweep_file(args.file))
        dropped = "; the file's targets are left out" if had_targets else ""
        print(f"quick check: every run trains {args.max_inputs:,} inputs, in experiment "
              f"{runs[0].experiment}{dropped}")  # fmt: skip
    alike = trained_alike_note(runs)
    if args.dry_run:
        plan, apart = dry_run_plan(args, runs)
        print(dry_run_listing(runs, plan))
        for note in (alike, apart):
            if note:
                print(f"note: {note}")
        return 0
    from core.queue import NewRun
    from core.queue.comparison import settings_apart_in
    from core.queue.failures import diverged_before, diverged_warning

    repo = open_repo(args, create=True)
    new_runs = [NewRun.from_expanded(r) for r in runs]
    diverged = [] if args.force else diverged_before(repo, new_runs)
    apart = settings_apart_in(repo, new_runs)
    result = repo.enqueue(new_runs, args.priority, args.force)
    print(result.summary())
    if warning := diverged_warning(diverged, result.queued_again_ids):
        print(f"note: {warning}")
    if alike:
        print(f"note: {alike}")
    if apart and (result.added or result.queued_again):
        print(f"note: {apart}")
    if result.added or result.queued_again:
        workers, damaged = workers_and_damaged_named(repo)
        if not workers:
            print(no_worker_hint(damaged, db_option(args)))
    return 0


def no_worker_hint(damaged: list[DamagedWorker], db: str) -> str:
    """The hint after queueing where no worker row could be read: none running, or only
    damaged rows (named above, on stderr), whose worker may be training."""
    start = f"start one with `resconv-tui worker{db}`"
    if not damaged:
        return f"no worker is running: {start}"
    from resconv_tui.polling import unread_workers_said

    return f"no worker could be read: {unread_workers_said(damaged)}; if none is, {start}"


def dry_run_plan(
    args: argparse.Namespace, runs: list[ExpandedRun]
) -> tuple[list[str] | None, str | None]:
    """What queueing would do with each run, against the database if there is one (a
    dry run never creates it), and the note on an experiment that holds other settings;
    None without a database. With --force every run is new."""
    from core.queue import NewRun
    from core.queue.comparison import settings_apart_in
    from core.queue.errors import NoDatabase

    try:
        # It writes nothing: an older version's database is read as it is while another
        # process holds the write lock, as `status` reads it (as a writer it failed
        # "locked" once the upgrade's wait ran out).
        repo = open_repo(args, only_reads=True)
    except NoDatabase:  # a missing or empty SQLite file, an empty PostgreSQL database
        return None, None
    try:
        new_runs = [NewRun.from_expanded(r) for r in runs]
        apart = settings_apart_in(repo, new_runs, queued=False)
        plan = ["new"] * len(runs) if args.force else repo.plan_enqueue(new_runs)
        return plan, apart if any(not fate.startswith("skip") for fate in plan) else None
    finally:
        repo.close()


def dry_run_listing(runs: list[ExpandedRun], plan: list[str] | None = None) -> str:
    """One line per run (index, name, swept values, parameters, estimated training memory
    on a GPU, as the form previews it, and with ``plan`` what queueing would do), then a
    total line."""
    from core.queue.views import cell_len, pad
    from resconv_tui.memory_estimate import estimate_bytes, format_bytes

    memory = [estimate_bytes(r.config, r.param_count) for r in runs]
    fates = plan or [""] * len(runs)
    rows = [
        (str(r.index), r.name, " ".join(f"{k}={_value(v)}" for k, v in r.swept.items()),
         f"{r.param_count:,}", format_bytes(m), fate)
        for r, m, fate in zip(runs, memory, fates, strict=True)
    ]  # fmt: skip
    header = ("#", "name", "swept", "params", "est. memory", "queue" if plan else "")
    widths = [max(cell_len(row[i]) for row in [header, *rows]) for i in range(len(header))]

    def line(row: tuple[str, ...]) -> str:
        left = [pad(row[0], widths[0], True), pad(row[1], widths[1]), pad(row[2], widths[2])]
        right = [pad(row[3], widths[3], True), pad(row[4], widths[4], True)]
        return "  ".join([*left, *right, row[5]]).rstrip()

    total = sum(r.param_count for r in runs)
    experiments = sorted({r.experiment for r in runs})
    plural = "run" if len(runs) == 1 else "runs"
    summary = f"{len(runs)} {plural} in {', '.join(experiments)}: {total:,} parameters in total" + (
        f", largest model {max(r.param_count for r in runs):,}, "
        f"most memory {format_bytes(max(memory))}"
        if runs
        else ""
    )
    lines = [line(header), *(line(row) for row in rows), summary]
    if plan:
        kinds = [fate.split()[0] for fate in plan]
        lines.append(f"queueing would add {kinds.count('new')}, queue again "
                     f"{kinds.count('again')}, skip {kinds.count('skip')}")  # fmt: skip
    return "\n".join(lines)


def _value(value: Any) -> str:
    """A swept value as the run's name writes it (``lr=1e6`` beside ``lr-1e6``, where
    ``str`` wrote lr=1000000.0), lists in brackets."""
    from core.sweep import value_text

    if isinstance(value, list | tuple):
        return "[" + ",".join(map(_value, value)) + "]"  # no spaces: a narrow column
    return value_text(value)
