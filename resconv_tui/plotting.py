"""Metric series over inputs seen, drawn with plotext: the dashboard's charts
(``widgets/loss_chart.py``) and the command line's (``show --plot``, ``compare --plot``).

Pure: no Textual. ``draw_series`` draws on any plotext figure (the widget's, or the
plotext module itself for a terminal); long series are thinned to what a terminal can
show before they reach plotext.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
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
    # The fewest decimals that write the step exactly (0.025: 3; 250: none).
    decimals = next(d for d in range(16) if abs(round(step, d) - step) <= step * 1e-6)
    ticks = [round(tick, decimals) for tick in ticks]  # 0.052, not 0.052000000000000005
    return ticks, [f"{tick:,.{decimals}f}" for tick in ticks]


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
    plt.xlabel("inputs")
    plotted = [s for s in series if s.xs]
    for one in plotted:
        xs, ys = _points(one, log_y)
        if xs:
            draw = plt.scatter if one.scatter else plt.plot
            draw(xs, ys, label=one.label or None, color=one.color, marker=one.marker)
    if log_y and plotted:
        plt.yscale("log")
    elif plotted:  # round values, each on its own row, none skipped
        ys = [y for one in plotted for y in one.ys]
        rows = height - 5  # less the title, frame and the x axis's two lines
        ticks, labels = nice_ticks(min(ys), max(ys), max(2, rows // 2 + 1))
        if ticks:
            plt.yticks(ticks, labels)
    if plotted:  # inputs at round values too (20.0, 1336.2, 2652.5 before)
        xs = [x for one in plotted for x in one.xs]
        ticks, labels = nice_ticks(min(xs), max(xs), max(2, (width - 10) // 12))
        if ticks:
            plt.xticks(ticks, labels)
    if not plotted:
        plt.title(f"{title}: {empty_note}")


def _points(series: Series, log_y: bool) -> tuple[list, list]:
    kept = list(zip(series.xs, series.ys, strict=True))
    if log_y:  # log of zero or less is undefined: those points are not drawn
        kept = [(x, y) for x, y in kept if y > 0]
    return thin([x for x, _ in kept], [y for _, y in kept])
