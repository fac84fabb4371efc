"""Metric series over inputs seen, drawn with plotext: the dashboard's charts
(``widgets/loss_chart.py``) and the command line's (``show --plot``, ``compare --plot``).

Pure: no Textual. ``draw_series`` draws on any plotext figure (the widget's, or the
plotext module itself for a terminal); long series are thinned to what a terminal can
show before they reach plotext.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

NO_DATA_YET = "no data yet"  # a chart's note while its points may still come
MAX_POINTS = 600  # a 200-column chart shows at most ~400 braille dots across
# Distinct on dark and light themes; index i is run i's colour in compare views.
PALETTE: tuple[tuple[int, int, int], ...] = (
    (66, 165, 245),
    (255, 167, 38),
    (102, 187, 106),
    (239, 83, 80),
    (171, 71, 188),
    (38, 198, 218),
    (255, 238, 88),
    (141, 110, 99),
)


def colour(index: int) -> tuple[int, int, int]:
    return PALETTE[index % len(PALETTE)]


def rich_colour(index: int) -> str:
    r, g, b = colour(index)
    return f"rgb({r},{g},{b})"


@dataclass
class Series:
    """One line: x = inputs seen, y = the metric."""

    label: str
    xs: list[float] = field(default_factory=list)
    ys: list[float] = field(default_factory=list)
    color: tuple[int, int, int] = PALETTE[0]
    marker: str = "braille"
    scatter: bool = False  # sparse series (validation: once an epoch) read better as dots

    def add(self, x: float, y: float) -> None:
        self.xs.append(x)
        self.ys.append(y)


def thin(xs: Sequence[float], ys: Sequence[float], limit: int = MAX_POINTS) -> tuple[list, list]:
    """Every k-th point (always keeping the last) so at most ``limit`` remain."""
    if len(xs) <= limit:
        return list(xs), list(ys)
    step = -(-len(xs) // limit)
    keep = list(range(0, len(xs), step))
    if keep[-1] != len(xs) - 1:
        keep.append(len(xs) - 1)
    return [xs[i] for i in keep], [ys[i] for i in keep]


def nice_ticks(low: float, high: float, most: int) -> tuple[list[float], list[str]]:
    """As many round values (steps of 1, 2, 2.5 or 5 times a power of ten) from ``low`` to
    ``high`` as fit in ``most``, and their labels with the decimals the step needs. Left to
    itself, plotext labels its rows and can skip one: 1428.5, 1153.3, 602.7 (no 878).
    One value (a chart's first point): that value alone, to four figures (plotext spread
    rows of 548.2, 487.3, 426.4, 304.6 around it, skipping 365.5)."""
    if high == low and math.isfinite(low):
        magnitude = math.floor(math.log10(abs(low))) if low else 0
        return [low], [f"{low:,.{max(0, 3 - magnitude)}f}"]
    if not high > low or most < 2:
        return [], []
    power = 10.0 ** math.floor(math.log10((high - low) / most))
    for step in (m * power * 10**k for k in (0, 1, 2) for m in (1, 2, 2.5, 5)):
        ticks = [n * step for n in range(math.ceil(low / step - 1e-9),
                                         math.floor(high / step + 1e-9) + 1)]  # fmt: skip
        if len(ticks) <= most:
            break
    return _labelled(ticks, step)


def _labelled(ticks: list[float], step: float) -> tuple[list[float], list[str]]:
    """``ticks`` one ``step`` apart, rounded and labelled with the decimals it needs."""
    # The fewest decimals that write the step exactly (0.025: 3; 250: none).
    decimals = next(d for d in range(16) if abs(round(step, d) - step) <= step * 1e-6)
    ticks = [round(tick, decimals) for tick in ticks]  # 0.052, not 0.052000000000000005
    return ticks, [f"{tick:,.{decimals}f}" for tick in ticks]


MAX_GAP = 6  # rows between y labels at most (2 at least), so that they stay several
MIN_FILL = 0.8  # the least of a chart's height the data keeps, for labels evenly spaced


def even_y_axis(
    low: float, high: float, rows: int
) -> tuple[list[float], list[str], tuple[float, float]] | None:
    """Round y ticks the same number of rows apart, and the y limits that put them there,
    for a plot ``rows`` rows high showing ``low`` to ``high``. plotext puts a tick on the
    row nearest its value: between the data's own limits, ticks one step apart fell 1, 2,
    1, 2 rows apart (or 2, 3, 2, 2, 3). Limits that make a step a whole number of rows put
    every tick on its row exactly, but leave rows empty above or below the data: the
    closest such limits are taken where the data still fills ``MIN_FILL`` of the height,
    else None (the data's own limits: the curves drawn as tall as they go matter more)."""
    if not (high > low and math.isfinite(high - low)) or rows < 3:
        return None
    best: tuple[float, float, float, float] | None = None  # bottom, top, first tick, step
    power = 10.0 ** math.floor(math.log10(high - low))
    for step in (m * power * 10.0**k for k in (-2, -1, 0) for m in (1, 2, 2.5, 5)):
        first = math.ceil(low / step - 1e-9) * step  # the lowest tick at or above low
        for gap in range(2, MAX_GAP + 1):
            # The first tick, or a row of the step below it, on the bottom row: the
            # highest such row that leaves ``low`` inside.
            bottom = first - math.ceil((first - low) * gap / step - 1e-9) * step / gap
            top = bottom + (rows - 1) * step / gap
            labels = (rows - 1) // gap + 1  # about as many as the chart holds at this gap
            if top < high - step * 1e-9 or labels < min(3, (rows + 1) // 2):
                continue  # the data does not fit, or too few labels (two on a tall chart)
            if best is None or top - bottom < best[1] - best[0]:
                best = (bottom, top, first, step)
    if best is None or (high - low) / (best[1] - best[0]) < MIN_FILL:
        return None
    bottom, top, first, step = best
    return (*_ticks_within(bottom, top, first, step), (bottom, top))


def _ticks_within(
    bottom: float, top: float, first: float, step: float
) -> tuple[list[float], list[str]]:
    """Every tick ``first + k * step`` from ``bottom`` to ``top``, labelled."""
    below = math.floor((first - bottom) / step + 1e-9)
    above = math.floor((top - first) / step + 1e-9)
    return _labelled([first + k * step for k in range(-below, above + 1)], step)


def log_ticks(low: float, high: float, rows: int) -> tuple[list[float], list[str]]:
    """Round y ticks for a log-scale plot ``rows`` rows high showing ``low`` to ``high``
    (both above 0), at least two rows apart where they fall. Left to itself, plotext
    labelled equal ratios of the data's range (0.511, 0.428, 0.358, 0.300, 0.251), 2, 2,
    2, 3, 2, 2 rows apart. On a log axis round values cannot all fall the same number of
    rows apart (1, 2, 5 do not), so each is put on the row its log says, as plotext
    places it, and the most that stay two rows apart are taken (one row on a chart too
    short for two): whole decades, 1-3, 1-2-5, or one round step (0.3, 0.4, 0.5)."""
    if high == low:
        return nice_ticks(low, high, 1)
    if not (0 < low < high and math.isfinite(high)) or rows < 3:
        return [], []
    span = math.log10(high) - math.log10(low)

    def row(value: float) -> int:  # plotext's row for a value (_utility.get_matrix_data)
        # A difference of logs, not the log of value / low: that ratio overflows to inf
        # over a range wider than 308 decades (1e-300 .. 1e300, or a subnormal low).
        above = math.log10(value) - math.log10(low)
        return math.floor(round(0.5 + (rows - 1) * above / span, 8))

    def rank(ticks: list[float]) -> tuple[bool, int, int]:
        """Two labels or more first, then two rows apart (one on a short chart, where
        none are), then the most labels; labels on one row (-1) are never taken."""
        places = [row(tick) for tick in ticks]
        gap = min((b - a for a, b in zip(places, places[1:], strict=False)), default=2)
        return len(ticks) >= 2, min(gap, 2) if gap > 0 else -1, len(ticks)

    best = max(_log_candidates(low, high), key=rank)
    labels = _log_labels(best)
    if rank(best)[1] < 0 or len(set(labels)) < len(labels):  # plotext's own, as before
        return [], []
    return best, labels


def _log_candidates(low: float, high: float) -> list[list[float]]:
    """Sets of round values from ``low`` to ``high``, sparse to dense: every few decades,
    each decade, 1-3 (0.1, 0.3, 1), 1-2-5, then steps of 5, 2 or 1 times a power of ten
    (0.3, 0.4, 0.5 for a range within a decade). One step throughout: each digit below
    0.1 and tenths above it labelled 0.05 .. 0.1 of 0.047 .. 0.17, the rest left bare."""
    first, last = math.floor(math.log10(low)), math.floor(math.log10(high))

    def inside(values: Iterable[float]) -> list[float]:
        # Rounded to 12 figures: 3 * 0.1 is 0.30000000000000004, labelled and placed 0.3.
        kept = (round(v, 12 - math.floor(math.log10(v))) for v in values if v > 0)
        return sorted({v for v in kept if low * (1 - 1e-9) <= v <= high * (1 + 1e-9)})

    # Every 100 to 2 decades: a chart of a few rows over a range of tens of decades (or
    # hundreds, a subnormal loss) still gets labels two rows apart, not plotext's own.
    every = (100, 50, 20, 10, 5, 4, 3, 2)
    sets = [inside(10.0**e for e in range(first, last + 1) if e % k == 0) for k in every]
    for mantissas in ((1,), (1, 3), (1, 2, 5)):
        sets.append(inside(m * 10.0**e for e in range(first, last + 1) for m in mantissas))
    for e in range(last, math.floor(math.log10(high - low)) - 2, -1):
        for m in (5, 2, 1):
            step = m * 10.0**e
            count = range(math.ceil(low / step - 1e-9), math.floor(high / step + 1e-9) + 1)
            sets.append(inside(n * step for n in count) if len(count) < 100 else [])
    return sets


def _log_labels(ticks: list[float]) -> list[str]:
    """Each tick with the decimals it needs (0.05, 0.1, 1); ticks within one decade with
    as many as the one that needs most (0.046, 0.048, 0.050); more than six (a value
    under a millionth), or ten million or more, in powers of ten, 3e-07, 1e+12, as a
    label needs a few characters."""
    need = [next((d for d in range(7) if abs(round(t, d) - t) <= t * 1e-9), 7) for t in ticks]
    if ticks and math.floor(math.log10(ticks[0])) == math.floor(math.log10(ticks[-1])):
        need = [max(need)] * len(ticks)
    # Ten million or more in powers of ten too (1e+12): written out, a diverging loss's
    # label took 17 characters of the chart's width, 1e300 hundreds with float noise.
    return [
        f"{t:,.{d}f}" if d < 7 and t < 1e7 else f"{t:.6g}" for t, d in zip(ticks, need, strict=True)
    ]


def draw_series(
    plt: Any,
    title: str,
    series: Sequence[Series],
    *,
    width: int,
    height: int,
    log_y: bool = False,
    empty_note: str = NO_DATA_YET,
) -> None:
    """Draw ``series`` on the plotext figure ``plt`` (cleared first), its axes labelled at
    round values for a chart ``width`` x ``height`` cells; ``empty_note`` joins the title
    when no series has a point."""
    plt.clear_figure()
    scale = " (log)" if log_y else ""
    plt.title(title + scale)
    # inf or NaN (a diverged run's, in a database of an older version, which stored them)
    # is no point on a curve: plotext raised on it, on either scale. Left out, and said.
    kept = [_kept(one, log_y) for one in series]
    left_out = sum(not math.isfinite(y) for one in series for y in one.ys)
    note = f"{left_out} inf/NaN point{'s' if left_out != 1 else ''} left out" if left_out else ""
    plotted = [(one, xs, ys) for one, (xs, ys) in zip(series, kept, strict=True) if xs]
    for one, xs, ys in plotted:
        thinned_xs, thinned_ys = thin(xs, ys)
        draw = plt.scatter if one.scatter else plt.plot
        # No label: plotext writes its legend over the plot's top left rows, where a
        # falling curve starts (a run of 640 inputs: its one point beside "train").
        draw(thinned_xs, thinned_ys, color=one.color, marker=one.marker)
    rows = height - 5  # the plot's rows: less the title, frame and the x axis's two lines
    y_labels: list[str] = []
    all_ys = [y for _, _, ys in plotted for y in ys]
    if log_y and plotted:
        plt.yscale("log")  # plotext takes the ticks as values and places them by their log
        if (log := log_ticks(min(all_ys), max(all_ys), rows))[0]:
            plt.yticks(*log)
            y_labels = list(log[1])
    elif plotted:  # round values, each on its own row, none skipped, evenly spaced
        if even := even_y_axis(min(all_ys), max(all_ys), rows):
            ticks, labels, limits = even
            plt.ylim(*limits)
        else:
            ticks, labels = nice_ticks(min(all_ys), max(all_ys), max(2, rows // 2 + 1))
        if ticks:
            plt.yticks(ticks, labels)
            y_labels = list(labels)
    if plotted:  # inputs at round values too (20.0, 1336.2, 2652.5 before)
        all_xs = [x for _, xs, _ in plotted for x in xs]
        ticks, labels = nice_ticks(min(all_xs), max(all_xs), max(2, (width - 10) // 12))
        if len(ticks) == 1 and float(ticks[0]).is_integer():  # a count of inputs: 640, not 640.0
            labels = [f"{int(ticks[0]):,}"]
        if ticks:
            plt.xticks(ticks, labels)
        if note:
            plt.title(f"{title}{scale}: {note}")
    elif note:  # points, but none that can be drawn
        plt.title(f"{title}{scale}: {note}, none to draw")
    elif any(one.xs for one in series):  # a log scale, every point zero or below: not "no data"
        plt.title(f"{title}{scale}: no point above zero to draw")
    else:
        plt.title(f"{title}: {empty_note}")
    # Once the y labels are known: the label goes where they leave room (see below_fits).
    y_width = max((len(label) for label in y_labels), default=0)
    plt.xlabel(axis_label(series, width, y_width))


def axis_label(series: Sequence[Series], width: int = 0, y_width: int = 0) -> str:
    """The x axis's label, and below the plot, where no curve goes, the legend: each
    labelled series' mark (a line, or dots) and label. A chart of one labelled series
    has none: its label is its title (inputs/s, MiB). On a chart ``width`` cells wide
    (0: any) whose y labels take ``y_width``, the widest form that fits: plotext leaves
    out a label that does not, and the run detail at 64 columns lost its legend."""
    keys = [legend_key(one) for one in legend_of(series)]
    if not keys:
        return "inputs"
    forms = [f"inputs   {'   '.join(keys)}", "   ".join(keys), " ".join(keys)]
    return next((f for f in forms if not width or below_fits(f, width, y_width)), "inputs")


def below_fits(label: str, width: int, y_width: int) -> bool:
    """Whether plotext draws ``label`` below a plot ``width`` cells wide: centred on the
    canvas (right of the y labels and axis, left of the right axis), whole or not at all."""
    canvas_start = y_width + 1
    centre = canvas_start + (width - 2 - y_width) // 2
    start = centre - len(label) // 2
    return start >= 0 and start + len(label) <= width


def legend_of(series: Sequence[Series]) -> list[Series]:
    """The series the legend names: the labelled ones, where there are two or more."""
    labelled = [one for one in series if one.label]
    return labelled if len(labelled) >= 2 else []


def legend_key(series: Series) -> str:
    """``── train``, ``● validation``: how the series is drawn, and its label."""
    return f"{'●' if series.scatter else '──'} {series.label}"


def _kept(series: Series, log_y: bool) -> tuple[list[float], list[float]]:
    """The points of ``series`` that can be drawn: finite, and above zero on a log scale
    (whose log is undefined: not drawn, as before, and said only where inf or NaN)."""
    kept = [
        (x, y) for x, y in zip(series.xs, series.ys, strict=True)
        if math.isfinite(x) and math.isfinite(y) and (y > 0 or not log_y)
    ]  # fmt: skip
    return [x for x, _ in kept], [y for _, y in kept]
