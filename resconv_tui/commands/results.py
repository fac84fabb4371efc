"""``resconv-tui results``: the logbook table of succeeded runs (markdown, CSV or JSON)."""

from __future__ import annotations

import argparse
import re
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from resconv_tui.cli import add_db_option, add_experiment_option, open_repo, require_experiment

if TYPE_CHECKING:
    from core.queue.rows import RunRow
    from core.queue.views import Table


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    parser = subparsers.add_parser(
        "results",
        help="table of succeeded runs: swept parameters, validation loss, params, time",
        description="One row per succeeded run, sorted by validation loss. Column names "
        "may be abbreviated to a unique part ('valid', 'params'), or given as their header "
        "on the results screen ('val loss', 'minutes', 'in/s') or their --format json key "
        "('target_diff'); 'delta' and 'std' name Δ target and ± std. "
        "-COL sorts descending; "
        "in --columns, giving only -COL entries hides those columns.",
    )
    add_experiment_option(parser)
    # Given twice, an option adds to its list (argparse's "store" kept the last one).
    parser.add_argument(
        "--sort", nargs="+", action="extend", default=None, metavar="COL",
        help="sort keys, first is primary",
    )  # fmt: skip
    parser.add_argument(
        "--columns",
        nargs="+",
        action="extend",
        default=None,
        metavar="COL",
        help="columns to show (or -COL to hide)",
    )
    parser.add_argument(
        "--format",
        choices=("markdown", "csv", "json"),
        default="markdown",
        help="output format (default: markdown)",
    )
    parser.add_argument(
        "--by-cell",
        action="store_true",
        help="one row per cell of the sweep: mean ± std of the validation loss over its "
        "seeds, and its seeds done of its seeds in all",
    )
    add_db_option(parser)
    # "-params" must read as a value (descending sort), not as an unknown option. argparse
    # treats anything its negative-number pattern matches as a value; widen the pattern
    # for this parser only (its real options all start with "--", plus -h).
    parser._negative_number_matcher = re.compile(r"^-(?!-)(?!h$)")
    parser.set_defaults(handler=run)
    return parser


def run(args: argparse.Namespace) -> int:
    from core.queue import RunFilter, RunStatus
    from core.queue.views import Table, render

    repo = open_repo(args, only_reads=True)
    experiments = require_experiment(repo, args.experiment)
    succeeded = frozenset({RunStatus.SUCCEEDED})
    runs = repo.list_runs(RunFilter(statuses=succeeded, experiments=experiments))
    every = repo.list_runs(RunFilter(experiments=experiments)) if args.by_cell or not runs else []
    if runs:
        print(render(_table(args, runs, every), args.format))
        return 0
    # The queued runs make the table's columns: a misspelt --sort or --columns fails now,
    # not once a script's first run finishes, and a CSV gets a header (theirs: the
    # succeeded runs' may have fewer columns, e.g. one experiment's of two).
    shape = _table(args, every, every) if every else None
    print("no succeeded runs yet", file=sys.stderr)
    if args.format == "json":
        print("[]")
    elif args.format == "csv" and shape is not None:
        print(render(Table(shape.columns, ()), "csv"))
    return 0


def _table(args: argparse.Namespace, runs: Sequence[RunRow], every: Sequence[RunRow]) -> Table:
    from core.queue.views import results_by_cell, results_table

    if args.by_cell:
        return results_by_cell(runs, every, args.columns, args.sort)
    return results_table(runs, args.columns, args.sort)
