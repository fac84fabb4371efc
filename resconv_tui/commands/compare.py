"""``resconv-tui compare ID ID...``: runs side by side as the dashboard's compare screen
and results table show them, for a shell or a script.

It prints the config keys whose values differ between the runs and their figures
(markdown, CSV or JSON, ``core.queue.comparison``); ``--plot`` overlays their loss
curves, ``--curves`` gives their points as CSV.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from resconv_tui.cli import add_db_option, open_repo
from resconv_tui.commands.manage import run_id
from resconv_tui.terminal_output import (
    CURVE_HEADER,
    LOSS_TITLE,
    curves_csv,
    loss_series,
    print_chart,
    print_plain,
    stdout_console,
)

if TYPE_CHECKING:
    from core.queue import Repo, RunRow
    from core.queue.rows import MetricRow


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    compare = subparsers.add_parser(
        "compare",
        help="runs side by side: the config keys that differ, validation loss, params, time",
        description="Compare runs (any status, any experiments) in the order given: the "
        "config keys whose values differ between them, then their figures.",
    )
    compare.add_argument("ids", nargs="+", type=run_id, metavar="ID", help="run id (two or more)")
    compare.add_argument(
        "--all-config", action="store_true",
        help="every config key, not only those that differ",
    )  # fmt: skip
    output = compare.add_mutually_exclusive_group()
    output.add_argument(
        "--format",
        choices=("markdown", "csv", "json"),
        default="markdown",
        help="output format (default: markdown)",
    )
    output.add_argument(
        "--curves", action="store_true",
        help=f"their train and validation loss points as CSV ({','.join(CURVE_HEADER)})",
    )  # fmt: skip
    compare.add_argument(
        "--plot", action="store_true",
        help="overlay their loss curves in the terminal (train lines, validation dots)",
    )  # fmt: skip
    add_db_option(compare)
    compare.set_defaults(handler=run_compare)
    return compare


def run_compare(args: argparse.Namespace) -> int:
    from core.queue.comparison import comparison_table, differing_keys
    from core.queue.errors import UsageError
    from core.queue.rows import TRAIN_LOSS, VAL_LOSS
    from core.queue.views import render

    ids = list(dict.fromkeys(args.ids))
    if len(ids) < 2:
        twice = f"run {ids[0]} was given {len(args.ids)} times; " if len(args.ids) > 1 else ""
        raise UsageError(
            f"compare needs two runs or more ({twice}resconv-tui show {ids[0]} shows one)"
        )
    if args.plot and (args.curves or args.format != "markdown"):  # before the database's errors
        raise UsageError("--plot draws for a person: not with --curves or --format csv/json")
    repo = open_repo(args, only_reads=True)
    runs = runs_in_order(repo, ids)
    curves = {run.id: repo.metrics_since(run.id, 0, [TRAIN_LOSS, VAL_LOSS]) for run in runs}
    if args.curves:
        print(curves_csv([row for rows in curves.values() for row in rows]), end="")
        return 0
    table = comparison_table(runs, args.all_config)
    print(render(table, args.format))
    if not differing_keys(runs):  # else the table leaves its reader looking for a difference
        shows = "" if args.all_config else " (--all-config shows them)"
        print(f"their configs are the same{shows}", file=sys.stderr)
    if args.plot:
        print_comparison_chart(runs, curves)
    return 0


def runs_in_order(repo: Repo, ids: Sequence[int]) -> list[RunRow]:
    """The runs of ``ids`` in that order; every id not in the database named at once."""
    from core.queue import RunFilter, UnknownRun
    from core.queue.db import describe
    from core.queue.repo import REFUSED_NAMED
    from core.queue.views import ids_of

    found = {run.id: run for run in repo.list_runs(RunFilter(ids=tuple(ids)))}
    missing = [i for i in ids if i not in found]
    if missing:
        raise UnknownRun(f"no {ids_of('run', missing, REFUSED_NAMED)} in {describe(repo.url)}")
    return [found[i] for i in ids]


def print_comparison_chart(runs: Sequence[RunRow], curves: dict[int, list[MetricRow]]) -> None:
    """The compare screen's chart: each run's train loss (line) and validation passes
    (dots) in its colour, and a legend naming the colours (``curves``: each run's loss
    rows)."""
    from rich.text import Text

    from core.queue.rows import VAL_LOSS
    from core.queue.status import FINISHED
    from resconv_tui.plotting import NO_DATA_YET, PALETTE, colour, rich_colour
    from resconv_tui.widgets.run_info import last_validation

    shown = runs[: len(PALETTE)]
    console = stdout_console()
    # In a pipe or a file the colours are gone: each run is drawn with its number.
    numbered = not console.is_terminal
    series, legend = [], Text()
    for index, run in enumerate(shown):
        marker = str(index + 1) if numbered else None
        series += loss_series(curves[run.id], colour(index), colour(index), marker=marker)
        passes = [row.value for row in curves[run.id] if row.name == VAL_LOSS]
        final = last_validation(run, passes)
        loss = "—" if final is None else f"{final:.6f}"
        legend.append(f"{marker} " if marker else "■ ", style=rich_colour(index))
        legend.append(f"#{run.id} {run.name}", style="bold")
        legend.append(f"  ({run.experiment}, {run.status})  val {loss}\n")
    settled = all(run.status in FINISHED for run in shown)  # else points may still come
    console.print()
    print_chart(console, LOSS_TITLE, series, "none recorded" if settled else NO_DATA_YET)
    legend.rstrip()
    print_plain(console, legend)
    if len(runs) > len(shown):
        print(
            f"the chart draws the first {len(shown)} of {len(runs)} runs: "
            f"{len(PALETTE)} colours tell curves apart",
            file=sys.stderr,
        )
