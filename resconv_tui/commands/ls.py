"""``resconv-tui ls``: the runs, one line each, as the dashboard's table lists them.

For shells and scripts on a GPU box without the dashboard: ``ls --status failed``,
``ls --experiment t1-layers-32``, ``ls --json | jq``.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from typing import TYPE_CHECKING, Any

from resconv_tui.cli import add_db_option, add_experiment_option, open_repo, require_experiment
from resconv_tui.terminal_output import terminal_columns, wrap_cells

if TYPE_CHECKING:
    from core.queue import Repo, RunRow
    from resconv_tui.polling import HeardBeats

STATUS_WORDS = ("queued", "running", "succeeded", "failed", "cancelled")
HEADER = ("id", "status", "run", "pri", "progress", "val loss", "params", "note")
NOTE_ROOM = 20  # the least a note wraps within beside its row; less, and it goes under it
RUN = HEADER.index("run")
LEAST_RUN_WIDTH = 20  # the run column is cut narrower only with every column below gone
LEAST_CUT_RUN_WIDTH = 12  # ...and never narrower: at 40 columns it has 12 to 16
LEAST_EXPERIMENT_WIDTH = 6  # of a run's experiment, where a note would take the room
# What a narrow terminal leaves out, first to last, before the run column goes below
# LEAST_RUN_WIDTH: the priority (the list's order says it), the parameter count, then
# the progress (the status says whether it trains). Below about 67 columns every row ran
# past the edge and wrapped; id, status, run and val loss fit 40.
DROPPED_FIRST = ("pri", "params", "progress")
RIGHT = frozenset({"id", "pri", "progress", "val loss", "params"})  # numbers: to the right


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    parser = subparsers.add_parser(
        "ls",
        help="list runs: status, progress, validation loss, parameters (--json for scripts)",
        description="List runs: the running ones (by id), then the queued ones in claim "
        "order (what trains next first), then the ended ones (by id). Filters narrow the "
        "list.",
    )
    parser.add_argument(
        "--status", nargs="+", action="extend", choices=STATUS_WORDS, default=None,
        metavar="STATUS",
        help=f"only runs in these statuses ({', '.join(STATUS_WORDS)})",
    )  # fmt: skip
    add_experiment_option(parser)
    parser.add_argument("--json", action="store_true", help="one JSON object per run, in a list")
    add_db_option(parser)
    parser.set_defaults(handler=run)
    return parser


def run(args: argparse.Namespace) -> int:
    from core.queue import RunFilter, RunStatus
    from resconv_tui.polling import (
        claims_largest_first,
        damaged_worker_said,
        in_queue_order,
        recent_workers,
    )

    repo = open_repo(args, only_reads=True)
    experiments = require_experiment(repo, args.experiment)
    statuses = frozenset(RunStatus(s) for s in args.status) if args.status else None
    runs = repo.list_runs(RunFilter(statuses=statuses, experiments=experiments))
    now = time.time()
    # A worker row edited by hand is left out of what is read of the workers and named
    # last: raised, ls listed no run at all until the row was mended with an SQL client.
    workers, _ = repo.workers_and_damaged()
    ordered = in_queue_order(runs, claims_largest_first(workers, now))
    stalled, exited = troubled_runs(repo, runs, now)
    ends = run_ends(repo, runs, now)
    if args.json:
        listed = [listed_json(r, now, r.id in stalled, r.id in exited, ends) for r in ordered]
        print(json.dumps(listed, indent=1))
    elif ordered:
        ordered = [r.terminal_safe() for r in ordered]  # cut and aligned as printed
        lines = [run_line(r, now, r.id in stalled, r.id in exited, ends) for r in ordered]
        columns = terminal_columns()
        header, lines = fit_columns(lines, columns)
        print(table(fit_runs(ordered, lines, columns, header), columns, header))
    else:
        print("no runs" + (" match" if statuses or args.experiment else " yet"))
    for row in recent_workers(repo, now)[1]:  # on stderr: ls --json stays JSON
        print(f"resconv-tui: {damaged_worker_said(row)}", file=sys.stderr)
    return 0


def troubled_runs(
    repo: Repo, runs: list[RunRow], now: float
) -> tuple[frozenset[int], frozenset[int]]:
    """Running runs whose worker beats but has taken no training step for minutes, and
    those whose worker's process on this machine has exited (kill -9: not recorded yet)."""
    from core.queue import RunStatus
    from resconv_tui.lost_workers import exited_here_now
    from resconv_tui.polling import held_runs, stalled_runs

    if not any(r.status == RunStatus.RUNNING for r in runs):
        return frozenset(), frozenset()
    workers, _ = repo.workers_and_damaged()  # a damaged one: named by ls, not raised
    gone = exited_here_now(workers, now)
    exited = frozenset(r.id for r in runs if r.status == RunStatus.RUNNING and r.worker_id in gone)
    return stalled_runs(workers, held_runs(runs, workers)), exited


def run_trouble(repo: Repo, run: RunRow, now: float) -> tuple[bool, bool]:
    """``troubled_runs`` for one run: whether it is stalled, and whether its worker's
    process here has exited (``show`` and ``show --follow``)."""
    stalled, exited = troubled_runs(repo, [run], now)
    return run.id in stalled, run.id in exited


def run_ends(
    repo: Repo, runs: list[RunRow], now: float, heard: HeardBeats | None = None
) -> dict[int, float]:
    """The queue forecast's seconds until each run ends, as the dashboard's ETA column
    has them (from every run of the database, whatever ``ls`` lists). The workers that
    count are judged by age here (``ls`` reads once), by ``heard``'s watch of their
    beats where the caller reads again and again (``show --follow``)."""
    from core.queue import RunStatus
    from resconv_tui.polling import queue_forecast, read_workers, running_ends, watched_workers

    if not any(r.status == RunStatus.RUNNING for r in runs):
        return {}
    every = repo.list_runs()
    workers = read_workers(repo, now) if heard is None else watched_workers(repo, now, heard)[0]
    return running_ends(every, workers, queue_forecast(every, workers, now))


def run_line(
    run: RunRow,
    now: float,
    stalled: bool = False,
    exited: bool = False,
    ends: dict[int, float] | None = None,
) -> tuple[str, ...]:
    from core.queue.failures import run_cause
    from resconv_tui.polling import format_duration, shown_eta, why_no_eta

    loss = "" if run.validation_loss is None else f"{run.validation_loss:.6f}"
    note = ""
    if (cause := run_cause(run)) is not None:
        first_line = (run.error or "").splitlines()[:1]
        error = first_line[0] if first_line else ""
        error = error if len(error) <= 60 else f"{error[:59]}…"  # cut, and said to be
        note = f"{cause.option}: {error}" if error else cause.option
    elif (why := why_no_eta(run, now, stalled, exited, ends or {})) is not None:
        note = why
    elif (eta := shown_eta(run, now, ends or {})) is not None:
        note = f"ETA {format_duration(eta)}"
    return (
        str(run.id), run.status.value, f"{run.experiment}/{run.name}", str(run.priority),
        f"{run.progress:.0%}", loss, f"{run.param_count:,}", note,
    )  # fmt: skip


def fit_columns(
    lines: list[tuple[str, ...]], columns: int | None
) -> tuple[tuple[str, ...], list[tuple[str, ...]]]:
    """The header and ``lines`` without the columns (``DROPPED_FIRST``) a terminal of
    ``columns`` cells has no room for beside a run column of LEAST_RUN_WIDTH; then "val
    loss" where no row has one and no room is left for a run column of even
    LEAST_CUT_RUN_WIDTH (at 30 columns a queue not yet trained printed a header of 37
    cells for an empty column). A pipe (``columns`` None) keeps them all."""
    header: tuple[str, ...] = HEADER
    if columns is None or not lines:
        return header, lines
    for name in DROPPED_FIRST:
        if _fixed_width(header, lines) + LEAST_RUN_WIDTH <= columns:
            break
        header, lines = _without(name, header, lines)
    loss = header.index("val loss")
    unsaid = not any(line[loss] for line in lines)
    if unsaid and _fixed_width(header, lines) + LEAST_CUT_RUN_WIDTH > columns:
        header, lines = _without("val loss", header, lines)
    return header, lines


def _without(
    name: str, header: tuple[str, ...], lines: list[tuple[str, ...]]
) -> tuple[tuple[str, ...], list[tuple[str, ...]]]:
    at = header.index(name)
    return (*header[:at], *header[at + 1 :]), [(*line[:at], *line[at + 1 :]) for line in lines]


def _fixed_width(header: tuple[str, ...], lines: list[tuple[str, ...]]) -> int:
    """The cells a row takes but its run and its note (each column's gap included)."""
    widths = column_widths([header, *lines])
    return sum(widths) - widths[RUN] + 2 * len(widths)


def fit_runs(
    runs: list[RunRow],
    lines: list[tuple[str, ...]],
    columns: int | None,
    header: tuple[str, ...] = HEADER,
) -> list[tuple[str, ...]]:
    """``lines`` (of ``runs``, in order; columns ``header``) with the run column cut so
    that each row fits a terminal of ``columns`` cells: the experiment first, then the
    names as the dashboard's narrow runs table cuts them (rows told apart). A pipe
    (``columns`` None) keeps them whole, for grep. At 80 columns a long experiment name
    wrapped every row in two."""
    from core.queue.views import cell_len

    if columns is None or not lines:
        return lines
    widths = column_widths([header, *lines])
    notes = [cell_len(line[-1]) for line in lines if line[-1]]
    beside = min(max(notes), NOTE_ROOM) if notes else 0  # room kept for the notes
    fixed = _fixed_width(header, lines)
    longest_name = max(cell_len(run.name) for run in runs)
    longest_experiment = max(cell_len(run.experiment) for run in runs)
    least = min(longest_experiment, LEAST_EXPERIMENT_WIDTH) + 1 + longest_name  # names whole
    # The names whole before the notes' room: a note goes under its row rather than a cut
    # name read as another run's.
    room = columns - fixed - (beside if columns - fixed - beside >= least else 0)
    # Only where fit_columns left nothing more to drop is the run column narrower.
    room = max(min(LEAST_RUN_WIDTH, columns - fixed), LEAST_CUT_RUN_WIDTH, room)
    if widths[RUN] <= room:
        return lines
    fitted = _cut_run_column(runs, lines, room)
    # Narrower than LEAST_RUN_WIDTH only as long as the rows are told apart as well: at 40
    # columns two runs of act-gelu, lr 0.001 and 0.0001, both read "t4…/act-gelu…". A
    # row past the terminal's edge is better than two rows read as one run.
    apart = _told_apart(_cut_run_column(runs, lines, max(room, LEAST_RUN_WIDTH)))
    while room < LEAST_RUN_WIDTH and _told_apart(fitted) < apart:
        room += 1
        fitted = _cut_run_column(runs, lines, room)
    return fitted


def _told_apart(lines: list[tuple[str, ...]]) -> int:
    """How many rows the run column tells apart."""
    return len({line[RUN] for line in lines})


def _cut_run_column(
    runs: list[RunRow], lines: list[tuple[str, ...]], room: int
) -> list[tuple[str, ...]]:
    """``lines`` with the run column cut to ``room`` cells (``fit_runs``)."""
    from core.queue.views import cell_len
    from resconv_tui.name_cuts import cut_names, name_parts

    longest_name = max(cell_len(run.name) for run in runs)
    longest_experiment = max(cell_len(run.experiment) for run in runs)
    # The experiment is cut before the names, down to 3 cells ("a…"; a wide "実…").
    least_experiment = min(longest_experiment, max(room - 1 - longest_name, 3))
    names = {run.id: run.name for run in runs}
    parts = {run.id: name_parts(run.name, run.swept) for run in runs}
    # Counted as the rows are padded (``table``), not by rich's count, which joins any two
    # characters a zero-width joiner stands between.
    cut = cut_names(parts, names, room - 1 - least_experiment, cell_len)
    # The experiment then takes the room the names as cut leave: a cut name is often
    # narrower than its room ("act-gelu…seed-0" in 22 cells), and at 50 columns the
    # experiment read "fa…" beside 7 empty cells.
    widest_name = max(cell_len(cut.get(run.id, run.name)) for run in runs)
    experiment_width = min(longest_experiment, room - 1 - widest_name)
    # The experiments told apart as the names are ("…halves-first", "…alves-second").
    experiments = dict(enumerate(sorted({run.experiment for run in runs})))
    cut_experiments = cut_names({i: (e,) for i, e in experiments.items()}, experiments,
                                experiment_width, cell_len)  # fmt: skip
    shown_experiment = {e: cut_experiments.get(i, e) for i, e in experiments.items()}
    fitted = []
    for run, line in zip(runs, lines, strict=True):
        shown = f"{shown_experiment[run.experiment]}/{cut.get(run.id, run.name)}"
        fitted.append((*line[:RUN], shown, *line[RUN + 1 :]))
    return fitted


def column_widths(rows: list[tuple[str, ...]]) -> list[int]:
    """The widest cell of each column but the note, in terminal cells."""
    from core.queue.views import cell_len

    return [max(cell_len(row[i]) for row in rows) for i in range(len(rows[0]) - 1)]


def table(
    lines: list[tuple[str, ...]], columns: int | None = None, header: tuple[str, ...] = HEADER
) -> str:
    """Aligned columns, numbers to the right, the note last and free. ``columns``: a
    terminal's width, which a long note wraps within, between words, under its own column
    (or, with little room left, under its row): at 80 columns "validating: its final
    pass, samples and checkpoints; ETA 52s" ran past the edge and broke mid-word."""
    from core.queue.views import cell_len, pad

    noted = any(line[-1] for line in lines)  # else no "note" header, alone under the header
    rows = [header if noted else (*header[:-1], ""), *lines]
    widths = column_widths(rows)
    right = {i for i, name in enumerate(header) if name in RIGHT}

    def line(row: tuple[str, ...]) -> str:
        cells = [pad(c, w, i in right) for i, (c, w) in enumerate(zip(row, widths, strict=False))]
        head, note = "  ".join(cells) + "  ", row[-1]
        if columns is None or not note or cell_len(head + note) <= columns:
            return (head + note).rstrip()
        if columns - cell_len(head) >= NOTE_ROOM:
            return "\n".join(wrap_cells(note, columns, head, " " * cell_len(head)))
        return "\n".join([head.rstrip(), *wrap_cells(note, columns, "    ", "    ")])

    return "\n".join(line(row) for row in rows)


def listed_json(
    run: RunRow, now: float, stalled: bool, exited: bool, ends: dict[int, float]
) -> dict[str, Any]:
    """``ls --json``'s object for ``run`` (``show --json`` starts from it too): its
    ``run_json`` and the text's ETA, for a running run whose worker still trains it."""
    from resconv_tui.forecast import UpperBound
    from resconv_tui.polling import shown_eta, silent_for

    entry = run_json(run, stalled, exited)
    # As the text: none where its worker is not training it on, nor for a run a cancel
    # stops within seconds (one that trained all its inputs finishes: its ETA holds).
    stopping = run.cancel_requested and not run.trained_all
    quiet = stalled or exited or stopping or silent_for(run, now) is not None
    eta = None if quiet else shown_eta(run, now, ends)
    entry["eta_seconds"] = None if eta is None else round(eta, 1)
    # The text's "≤": the most it can take, while one model size is measured.
    entry["eta_upper_bound"] = isinstance(eta, UpperBound)
    return entry


def run_json(run: RunRow, stalled: bool = False, exited: bool = False) -> dict[str, Any]:
    from core.queue.failures import run_cause
    from core.queue.views import swept_as_config

    cause = run_cause(run)
    return {
        "id": run.id, "experiment": run.experiment, "name": run.name,
        "status": run.status.value, "priority": run.priority, "seed": run.seed,
        "swept": dict(run.swept), "param_count": run.param_count,
        "inputs_done": run.inputs_done, "total_inputs": run.total_inputs,
        "validation_loss": run.validation_loss, "train_seconds": run.train_seconds,
        "inputs_per_s": run.inputs_per_s, "peak_memory_bytes": run.peak_memory_bytes,
        "error": run.error, "cause": None if cause is None else cause.option,
        "worker_id": run.worker_id, "attempts": run.attempts, "stalled": stalled,
        "worker_exited": exited, "checkpoint_path": run.checkpoint_path,
        "cancel_requested": run.cancel_requested,
        # Added after `swept` (the file's spelling), which scripts read as it was.
        "swept_as_config": swept_as_config(run.swept),
    }  # fmt: skip
