"""``resconv-tui show ID`` and ``resconv-tui compare ID ID...``: the dashboard's run detail
and compare screens, for a shell or a script.

``show`` prints what the detail screen shows (status, timings, figures, why a failed run
failed and how to retry it, its config, its validation passes); ``--plot`` adds its loss
chart, ``--samples`` its sample reconstructions (truecolour half-blocks), ``--json`` and
``--curves`` give a script the same and every recorded point. ``compare`` prints the runs
side by side as the results table does (markdown, CSV or JSON): the config keys whose
values differ between them, and their figures; ``--plot`` overlays their loss curves.
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import os
import sys
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from resconv_tui.cli import add_db_option, db_option, open_repo
from resconv_tui.commands.manage import run_id

if TYPE_CHECKING:
    from core.queue import Repo, RunRow
    from core.queue.rows import MetricRow
    from resconv_tui.plotting import Series

# The chart's size on a terminal: as wide as it is (within reason), as tall as the
# dashboard's loss chart.
PLOT_HEIGHT = 20
PLOT_WIDTH = (40, 160)  # narrowest, widest
CURVE_HEADER = ("run", "metric", "step", "inputs", "value")


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    show = subparsers.add_parser(
        "show",
        help="one run in full: status, figures, error, config, validation passes (--json)",
        description="Show one run as the dashboard's run detail does: status, timings, "
        "figures, why it failed and how to retry it, its config and its validation passes.",
    )
    show.add_argument("id", type=run_id, metavar="ID", help="run id")
    output = show.add_mutually_exclusive_group()
    output.add_argument(
        "--json", action="store_true",
        help="the run, its config and every point recorded (train and validation loss, "
        "learning rate, inputs/s, memory) as one JSON object",
    )  # fmt: skip
    output.add_argument(
        "--curves", action="store_true",
        help=f"every recorded point as CSV ({','.join(CURVE_HEADER)})",
    )  # fmt: skip
    output.add_argument(
        "--follow", action="store_true",
        help="follow it as it waits, trains and ends (validation passes, progress, its end); "
        "exit status 0 if it succeeded, 1 if not",
    )  # fmt: skip
    show.add_argument("--plot", action="store_true", help="draw its loss curves in the terminal")
    show.add_argument(
        "--samples", action="store_true",
        help="draw its sample reconstructions (masked input, output, target; truecolour)",
    )  # fmt: skip
    add_db_option(show)
    show.set_defaults(handler=run_show)

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
        "--format", choices=("markdown", "csv", "json"), default="markdown", help="output format"
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


# ----- show ---------------------------------------------------------------------------


def run_show(args: argparse.Namespace) -> int:
    from core.queue.errors import UsageError
    from core.queue.rows import TRAIN_LOSS, VAL_LOSS

    drawn = [option for option in ("plot", "samples") if getattr(args, option)]
    if drawn and (args.json or args.curves or args.follow):
        other = "--follow" if args.follow else "--json or --curves"
        raise UsageError(f"--{drawn[0]} draws the run as it is: not with {other}")
    repo = open_repo(args, only_reads=True)
    run = repo.get_run(args.id)
    if args.samples and not run.has_samples:  # before reading a long curve for nothing
        raise UsageError(f"run {run.id} has no sample reconstructions: {no_samples_why(run)}")
    if args.curves:
        print(curves_csv(repo.metrics_since(run.id)), end="")
        return 0
    if args.follow:
        return follow_run(repo, run, db_option(args))
    now = time.time()
    trouble = run_trouble(repo, run, now)
    if args.json:
        print(show_json_text(show_json(repo, run, repo.metrics_since(run.id), now, trouble)))
        return 0
    # A person's view draws the losses alone: a run records speed, memory and its
    # learning rate at every step too, three rows in four of a long curve.
    metrics = repo.metrics_since(run.id, 0, [TRAIN_LOSS, VAL_LOSS])
    console = _console()
    print_plain(console, detail(run, metrics, trouble, now, db_option(args)))
    if args.plot:
        from core.queue.status import FINISHED
        from resconv_tui.plotting import NO_DATA_YET

        empty = "none recorded" if run.status in FINISHED else NO_DATA_YET
        print_chart(console, f"run {run.id}: {LOSS_TITLE}", run_series(metrics), empty)
    if args.samples:
        print_samples(console, repo.get_samples(run.id) or b"")
    return 0


def follow_run(repo: Repo, run: RunRow, db: str) -> int:
    """``--follow``: its title, then what becomes of it (``resconv_tui.follow``)."""
    from resconv_tui.follow import Terminal, follow
    from resconv_tui.widgets.run_info import title_text

    console = _console()
    print_plain(console, title_text(run))

    def write(text: str) -> None:
        sys.stdout.write(text)
        sys.stdout.flush()  # a pipe reader (tee, a log) sees each line as it comes

    return follow(repo, run.id, Terminal(write, live=console.is_terminal), db)


def no_samples_why(run: RunRow) -> str:
    """Why a run has no samples yet, or never will (they come with the final pass)."""
    from core.queue import RunStatus

    if run.status == RunStatus.CANCELLED:
        return "it was cancelled before its final validation pass"
    if run.status == RunStatus.FAILED:
        return "it failed before its final validation pass"
    if run.status == RunStatus.SUCCEEDED:  # a version before samples trained it
        return "none were saved when it ended"
    return "they are saved when it ends"


def run_trouble(repo: Repo, run: RunRow, now: float) -> tuple[bool, bool]:
    """Whether ``run`` is stalled (its worker beats, takes no step) and whether its
    worker's process here has exited, by ``ls``'s rules."""
    from resconv_tui.commands.ls import troubled_runs

    stalled, exited = troubled_runs(repo, [run], now)
    return run.id in stalled, run.id in exited


def detail(
    run: RunRow, metrics: Sequence[MetricRow], trouble: tuple[bool, bool], now: float, db: str
) -> Any:
    """The run detail screen's panels, one under the other, as rich renderables."""
    from rich.console import Group
    from rich.text import Text

    from core.queue.rows import VAL_LOSS
    from core.queue.status import FINISHED
    from resconv_tui.widgets.run_info import config_table, error_text, info_table, title_text

    stalled, exited = trouble
    passes = [row for row in metrics if row.name == VAL_LOSS]
    last_val = (passes[-1].value, float(passes[-1].inputs)) if passes else None
    parts: list[Any] = [title_text(run), ""]
    if run.error:
        parts += [error_text(run, f"resconv-tui retry {run.id}{db}", db), ""]
    if exited:  # as `ls` says: the screen would mark it lost itself, a shell does not
        parts += [exited_text(run, db), ""]
    parts += [info_table(run, now, stalled, last_val), "", Text("config", "bold")]
    parts += [config_table(run), ""]
    ended = run.status in FINISHED  # no "yet": none is to come
    parts += [validation_passes(passes, ended), train_summary(metrics, ended)]
    return Group(*parts)


def exited_text(run: RunRow, db: str) -> Any:
    """A running run whose worker's process here has exited: what happened, what to do."""
    from rich.text import Text

    from resconv_tui.commands.ls import EXITED_NOTE

    return Text.assemble(
        (EXITED_NOTE, "bold red"), f". resconv-tui retry {run.id}{db} queues it again."
    )


def validation_passes(passes: Sequence[MetricRow], ended: bool) -> Any:
    """``inputs  val loss`` per validation pass (after each epoch and at the end)."""
    from rich.table import Table
    from rich.text import Text

    if not passes:
        return Text(f"validation passes: none{'' if ended else ' yet'}", "dim")
    table = Table("inputs", "val loss", title="validation passes", title_justify="left",
                  box=None, padding=(0, 1), show_edge=False)  # fmt: skip
    table.columns[0].justify = table.columns[1].justify = "right"
    for row in passes:
        table.add_row(f"{row.inputs:,}", f"{row.value:.6f}")
    return table


def train_summary(metrics: Sequence[MetricRow], ended: bool) -> Any:
    """The train loss curve in one line: its first, lowest and last points."""
    from rich.text import Text

    from core.queue.rows import TRAIN_LOSS
    from core.queue.views import count_of

    points = [row for row in metrics if row.name == TRAIN_LOSS]
    if not points:
        return Text(f"train loss: none recorded{'' if ended else ' yet'}", "dim")
    first, last = points[0], points[-1]
    lowest = min(points, key=lambda row: row.value)
    return Text(
        f"train loss: {count_of(len(points), 'point')}; {first.value:.6f} at "
        f"{first.inputs:,} inputs, lowest {lowest.value:.6f} at {lowest.inputs:,}, "
        f"last {last.value:.6f} at {last.inputs:,} (--plot draws it, --curves gives every point)"
    )


def show_json(
    repo: Repo, run: RunRow, metrics: Sequence[MetricRow], now: float, trouble: tuple[bool, bool]
) -> dict[str, Any]:
    """``ls --json``'s object for the run, with its config, timings and points."""
    from resconv_tui.commands.ls import listed_json, run_ends

    out = listed_json(run, now, *trouble, run_ends(repo, [run], now))
    out |= {
        "config": run.config.to_dict(), "target": None if run.target is None else dict(run.target),
        "created_at": run.created_at, "started_at": run.started_at,
        "finished_at": run.finished_at, "path_used": run.path_used,
        "has_samples": run.has_samples, "metrics": points_by_name(metrics),
    }  # fmt: skip
    return out


def show_json_text(shown: dict[str, Any]) -> str:
    """``shown`` as indented JSON, but each metric's points on one line: indented, a run
    of 180,000 inputs wrote over 2,000 lines of single numbers."""
    metrics = shown.pop("metrics")
    head = json.dumps(shown, indent=1)
    series = [f"  {json.dumps(name)}: {json.dumps(points)}" for name, points in metrics.items()]
    body = "{\n" + ",\n".join(series) + "\n }" if series else "{}"
    return head[: -len("\n}")] + f',\n "metrics": {body}\n}}'


def points_by_name(metrics: Sequence[MetricRow]) -> dict[str, list[list[float]]]:
    """``{"train_loss": [[inputs, value], ...], ...}`` in the order recorded."""
    out: dict[str, list[list[float]]] = {}
    for row in metrics:
        out.setdefault(row.name, []).append([row.inputs, row.value])
    return out


def curves_csv(metrics: Sequence[MetricRow]) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(CURVE_HEADER)
    for row in metrics:
        writer.writerow((row.run_id, row.name, row.step, row.inputs, repr(row.value)))
    return out.getvalue()


# ----- compare ------------------------------------------------------------------------


def run_compare(args: argparse.Namespace) -> int:
    from core.queue.comparison import comparison_table
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
    if not table.swept:  # else the table alone leaves its reader looking for the difference
        print("their configs are the same (--all-config shows them)", file=sys.stderr)
    if args.plot:
        print_comparison_chart(runs, curves)
    return 0


def runs_in_order(repo: Repo, ids: Sequence[int]) -> list[RunRow]:
    """The runs of ``ids`` in that order; every id not in the database named at once."""
    from core.queue import RunFilter, UnknownRun
    from core.queue.db import describe
    from core.queue.views import ids_of

    found = {run.id: run for run in repo.list_runs(RunFilter(ids=tuple(ids)))}
    missing = [i for i in ids if i not in found]
    if missing:
        raise UnknownRun(f"no {ids_of('run', missing)} in {describe(repo.url)}")
    return [found[i] for i in ids]


def print_comparison_chart(runs: Sequence[RunRow], curves: dict[int, list[MetricRow]]) -> None:
    """The compare screen's chart: each run's train loss (line) and validation passes
    (dots) in its colour, and a legend naming the colours (``curves``: each run's loss
    rows)."""
    from rich.text import Text

    from core.queue.status import FINISHED
    from resconv_tui.plotting import NO_DATA_YET, PALETTE, colour, rich_colour

    shown = runs[: len(PALETTE)]
    series, legend = [], Text()
    for index, run in enumerate(shown):
        series += loss_series(curves[run.id], colour(index), colour(index))
        loss = last_validation(run, curves[run.id])
        legend.append("■ ", style=rich_colour(index))
        legend.append(f"#{run.id} {run.name}", style="bold")
        legend.append(f"  ({run.experiment}, {run.status})  val {loss}\n")
    settled = all(run.status in FINISHED for run in shown)  # else points may still come
    console = _console()
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


def last_validation(run: RunRow, metrics: Sequence[MetricRow]) -> str:
    """Its final validation loss, or while it trains its last pass so far (as the
    compare screen's legend has it)."""
    from core.queue.rows import VAL_LOSS

    passes = [row.value for row in metrics if row.name == VAL_LOSS]
    loss = run.validation_loss
    if loss is None and passes:
        loss = passes[-1]
    return "—" if loss is None else f"{loss:.6f}"


# ----- drawing on the terminal ----------------------------------------------------------

LOSS_TITLE = "train loss (lines) and validation loss (dots)"


def loss_series(
    metrics: Sequence[MetricRow],
    train_colour: tuple[int, int, int],
    val_colour: tuple[int, int, int],
    labels: tuple[str, str] = ("", ""),
) -> list[Series]:
    """A run's train loss as a line and its validation passes as dots, as the screens
    draw them (a run of under one epoch has one pass: a line would not show it)."""
    from core.queue.rows import TRAIN_LOSS, VAL_LOSS
    from resconv_tui.plotting import Series

    points = points_by_name(metrics)
    train, val = points.get(TRAIN_LOSS, []), points.get(VAL_LOSS, [])
    return [
        Series(labels[0], [x for x, _ in train], [y for _, y in train], train_colour),
        Series(labels[1], [x for x, _ in val], [y for _, y in val], val_colour, "●", True),
    ]


def run_series(metrics: Sequence[MetricRow]) -> list[Series]:
    """The detail screen's loss chart: train loss as a line, validation passes as dots."""
    from resconv_tui.plotting import PALETTE

    return loss_series(metrics, PALETTE[0], PALETTE[1], ("train", "validation"))


def print_chart(console: Any, title: str, series: Sequence[Series], empty_note: str) -> None:
    """``series`` drawn by plotext as wide as the terminal; plain characters when the
    output is no terminal (a file, a pipe)."""
    import plotext

    from resconv_tui.plotting import draw_series

    width = max(PLOT_WIDTH[0], min(PLOT_WIDTH[1], console.width))
    draw_series(plotext, title, series, width=width, height=PLOT_HEIGHT, empty_note=empty_note)
    # After draw_series: clearing the figure resets both. plotext's own theme paints a
    # white canvas with black text, a glaring box on a dark terminal: the terminal's
    # own colours instead (the dashboard's chart takes the app's theme).
    plotext.limitsize(False)  # its own guess of the terminal (80 columns in a pipe) aside
    plotext.plotsize(width, PLOT_HEIGHT)
    plotext.theme("clear")
    chart = plotext.build().rstrip("\n")
    if not console.is_terminal:  # as print_plain: no colours, no padding
        chart = "\n".join(line.rstrip() for line in plotext.uncolorize(chart).splitlines())
    print(chart)


def print_samples(console: Any, samples: bytes) -> None:
    """The sample reconstructions' three rows (masked input, output, target)."""
    from core.queue.samples import decode_samples
    from resconv_tui.widgets.sample_image import sample_rows

    console = image_console(console)
    console.print()
    console.print(sample_rows(decode_samples(samples), console.width))


def image_console(console: Any) -> Any:
    """``console``, or one that writes truecolour: an image is its colours. In a pipe
    (kept for ``less -R``, a file) rich writes none, and on a terminal it guesses from
    ``TERM`` alone (``xterm``: 8 colours) it quantizes the greys to black and white."""
    from rich.console import Console

    if console.is_terminal and console.color_system in ("truecolor", "256"):
        return console
    return Console(force_terminal=True, color_system="truecolor", width=console.width)


def print_plain(console: Any, renderable: Any) -> None:
    """``renderable`` on the console; in a pipe or a file without the spaces rich pads
    each table line with to its width."""
    if console.is_terminal:
        console.print(renderable)
        return
    with console.capture() as captured:
        console.print(renderable)
    print("\n".join(line.rstrip() for line in captured.get().splitlines()))


def _console() -> Any:
    """Rich's console on stdout: colours on a terminal, plain text in a pipe, as wide as
    the text will be read (``pipe_width``)."""
    from rich.console import Console

    console = Console(highlight=False)
    if not console.is_terminal:
        console = Console(highlight=False, width=pipe_width())
    return console


def pipe_width() -> int:
    """Columns for output that goes to a pipe or a file: ``$COLUMNS`` where set, else the
    terminal that stderr still writes to (``show 3 --samples | less -R`` is read there:
    100 columns of pictures wrapped on an 80-column one), else 100."""
    if os.environ.get("COLUMNS", "").isdigit():
        return int(os.environ["COLUMNS"])
    try:
        return os.get_terminal_size(2).columns  # stderr's file descriptor
    except (OSError, ValueError):  # no terminal at all: a script's log, cron
        return 100
