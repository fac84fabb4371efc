"""Runs drawn on a terminal, or written for a pipe, by the command line (``show``,
``compare``): rich's console as wide as the text will be read, loss charts with the
dashboard's own drawing (``plotting.draw_series``), sample pictures, and the points of
a curve as CSV.

Only the standard library at import: building the CLI parser reads ``CURVE_HEADER``.
"""

from __future__ import annotations

import csv
import functools
import io
import os
import re
import shutil
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from core.errors import terminal_safe

if TYPE_CHECKING:
    from core.queue.rows import MetricRow
    from resconv_tui.plotting import Series

# The chart's size on a terminal: as wide as it is (within reason), as tall as the
# dashboard's loss chart.
PLOT_HEIGHT = 20
PLOT_WIDTH = (40, 160)  # narrowest, widest
CURVE_HEADER = ("run", "metric", "step", "inputs", "value")


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


LOSS_TITLE = "train loss (lines) and validation loss (dots)"


def loss_series(
    metrics: Sequence[MetricRow],
    train_colour: tuple[int, int, int],
    val_colour: tuple[int, int, int],
    labels: tuple[str, str] = ("", ""),
    marker: str | None = None,
) -> list[Series]:
    """A run's train loss as a line and its validation passes as dots, as the screens
    draw them (a run of under one epoch has one pass: a line would not show it).
    ``marker``: one character that draws both, where colours cannot tell runs apart."""
    from core.queue.rows import TRAIN_LOSS, VAL_LOSS
    from resconv_tui.plotting import Series

    points = points_by_name(metrics)
    train, val = points.get(TRAIN_LOSS, []), points.get(VAL_LOSS, [])
    return [
        Series(labels[0], [x for x, _ in train], [y for _, y in train], train_colour,
               marker or "braille"),
        Series(labels[1], [x for x, _ in val], [y for _, y in val], val_colour,
               marker or "●", True),
    ]  # fmt: skip


def run_series(metrics: Sequence[MetricRow]) -> list[Series]:
    """The detail screen's loss chart: train loss as a line, validation passes as dots."""
    from resconv_tui.plotting import PALETTE

    return loss_series(metrics, PALETTE[0], PALETTE[1], ("train", "validation"))


def print_chart(console: Any, title: str, series: Sequence[Series], empty_note: str) -> None:
    """``series`` drawn by plotext as wide as the terminal; plain characters when the
    output is no terminal (a file, a pipe)."""
    if not any(each.xs for each in series):  # an empty frame, 20 lines, said no more
        print(f"{title}: {empty_note}")
        return
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


def print_samples(console: Any, samples: bytes, run_id: int) -> None:
    """The sample reconstructions' three rows (masked input, output, target)."""
    from core.queue.samples import decode_samples
    from resconv_tui.widgets.sample_image import sample_rows

    grid = decode_samples(samples, run_id)
    console = image_console(console)
    console.print()
    console.print(sample_rows(grid, console.width))


def image_console(console: Any) -> Any:
    """``console``, or one that writes truecolour: an image is its colours. In a pipe
    (kept for ``less -R``, a file) rich writes none, and on a terminal it guesses from
    ``TERM`` alone (``xterm``: 8 colours) it quantizes the greys to black and white."""
    if console.is_terminal and console.color_system in ("truecolor", "256"):
        return console
    return new_console(force_terminal=True, color_system="truecolor", width=console.width)


def print_plain(console: Any, renderable: Any) -> None:
    """``renderable`` on the console; in a pipe or a file without the spaces rich pads
    each table line with to its width."""
    if console.is_terminal:
        console.print(renderable)
        return
    with console.capture() as captured:
        console.print(renderable)
    print("\n".join(line.rstrip() for line in captured.get().splitlines()))


def stdout_console() -> Any:
    """Rich's console on stdout: colours on a terminal, plain text in a pipe, as wide as
    the text will be read (``pipe_width``)."""
    console = new_console(highlight=False)
    if not console.is_terminal:
        console = new_console(highlight=False, width=pipe_width())
    return console


@functools.cache
def _console_class() -> Any:
    from rich.console import Console

    class PipedConsole(Console):
        """Rich's console, but a reader that leaves (``compare 1 2 --plot | head``) is a
        BrokenPipeError for ``cli.main`` (exit status 0, as for plain prints), where rich
        exits with status 1 and ``set -o pipefail`` scripts failed."""

        def on_broken_pipe(self) -> None:
            self.quiet = True
            raise BrokenPipeError

    return PipedConsole


def new_console(**options: Any) -> Any:
    """A rich Console (``PipedConsole``) with ``options``."""
    return _console_class()(**options)


def pipe_width() -> int:
    """Columns for output that goes to a pipe or a file: ``$COLUMNS`` where set, else the
    terminal that stderr still writes to (``show 3 --samples | less -R`` is read there:
    100 columns of pictures wrapped on an 80-column one), else 100. A width of 0 is no
    width (``COLUMNS=0``, a terminal whose size was never set: a container's, a serial
    console's): rich printed nothing at all in 0 columns."""
    if (given := os.environ.get("COLUMNS", "")).isdigit() and int(given) > 0:
        return int(given)
    try:
        columns = os.get_terminal_size(2).columns  # stderr's file descriptor
    except (OSError, ValueError):  # no terminal at all: a script's log, cron
        columns = 0
    return columns or 100


def terminal_columns() -> int | None:
    """The width of the terminal stdout writes to; None for a pipe or a file."""
    if not sys.stdout.isatty():
        return None
    return shutil.get_terminal_size().columns


def wrap_cells(text: str, width: int, first: str = "", then: str = "") -> list[str]:
    """``text`` in lines of at most ``width`` terminal cells (a wide character, 実験, takes
    two: textwrap counts it as one), broken between words only (a word wider than the
    line stays whole, on a line of its own), each space kept as written within a line;
    ``first`` begins the first line, ``then`` every other."""
    from core.queue.views import cell_len

    # A line break or tab in the text (an error's traceback line) is a space here: kept,
    # it broke the line without the indent, and a tab took 1 cell counted, up to 8 shown.
    text = re.sub(r"[^\S ]", " ", text)
    lines: list[str] = []
    line, space, words = first, "", 0
    for token in re.findall(r"\S+|\s+", text):
        if token.isspace():
            space = token
            continue
        if words and cell_len(line + space + token) > width:
            lines.append(line)
            line, space, words = then, "", 0
        line += (space if words else "") + token
        space, words = "", words + 1
    return [*lines, line]


def print_item(text: str, first: str = "  ", then: str = "      ") -> None:
    """One line of a list (``status``'s runs and workers): on a terminal, wrapped between
    words with ``then`` before each line after the first (one past 80 columns broke
    mid-word at the edge: "worker vm-9735-842" / "8"); whole in a pipe or a file, where
    grep reads it line by line. Its text terminal-safe (``core.errors.terminal_safe``): it
    names experiments, runs, workers and errors others wrote."""
    text = terminal_safe(text)
    columns = terminal_columns()
    if columns is None:
        print(first + text)
        return
    print("\n".join(wrap_cells(text, columns, first, then)))
