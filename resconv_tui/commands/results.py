"""``resconv-tui results``: the logbook table of succeeded runs (markdown, CSV or JSON)."""

from __future__ import annotations

import argparse
import re
import sys
from typing import Any

from resconv_tui.cli import add_db_option, open_repo, require_experiment


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    parser = subparsers.add_parser(
        "results",
        help="table of succeeded runs: swept parameters, validation loss, params, time",
        description="One row per succeeded run, sorted by validation loss. Column names "
        "may be abbreviated to a unique part ('valid', 'params'), or given as their "
        "--format json key ('target_diff'); 'delta' and 'std' name Δ target and ± std. "
        "-COL sorts descending; "
        "in --columns, giving only -COL entries hides those columns.",
    )
    parser.add_argument("--experiment", default=None, metavar="NAME", help="only this experiment")
    parser.add_argument(
        "--sort", nargs="+", default=None, metavar="COL", help="sort keys, first is primary"
    )
    parser.add_argument(
        "--columns",
        nargs="+",
        default=None,
        metavar="COL",
        help="columns to show (or -COL to hide)",
    )
    parser.add_argument(
        "--format", choices=("markdown", "csv", "json"), default="markdown", help="output format"
    )
    parser.add_argument(
        "--by-cell",
        action="store_true",
        help="one row per cell of the sweep: mean ± std of the validation loss over its "
        "seeds, and seeds done of queued",
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
    from core.queue.views import render, results_by_cell, results_table

    repo = open_repo(args)
    require_experiment(repo, args.experiment)
    succeeded = frozenset({RunStatus.SUCCEEDED})
    runs = repo.list_runs(RunFilter(statuses=succeeded, experiment=args.experiment))
    if not runs:
        print("no succeeded runs yet", file=sys.stderr)
        if args.format == "json":
            print("[]")
        return 0
    if args.by_cell:
        every = repo.list_runs(RunFilter(experiment=args.experiment))
        table = results_by_cell(runs, every, args.columns, args.sort)
    else:
        table = results_table(runs, args.columns, args.sort)
    print(render(table, args.format))
    return 0
