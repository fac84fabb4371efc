"""Line charts of metric series over inputs seen (textual-plotext), log scale optional.

The chart keeps its data and replots it on every render, so a resize or a log
toggle needs no extra bookkeeping; long series are thinned to what a terminal
can show before they reach plotext.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

from textual.reactive import reactive
from textual_plotext import PlotextPlot

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


class LossChart(PlotextPlot):
    """Series over inputs seen; ``log_y`` switches the y axis to a log scale."""

    log_y: reactive[bool] = reactive(False)
    """Log-scale y axis (losses span decades early in training)."""

    def __init__(self, title: str, *, id: str | None = None, classes: str | None = None) -> None:
        super().__init__(id=id, classes=classes)
        self.chart_title = title
        self.series: list[Series] = []
        self.empty_note = NO_DATA_YET  # the title's suffix while nothing is plotted
        self._drawn: tuple[object, ...] | None = None  # _shown() at the last draw

    def set_series(self, series: list[Series]) -> None:
        """Plot ``series``; the chart is drawn again only if they differ from what it
        shows (polls come every second or two, mostly with nothing new, and a redrawn
        chart is kilobytes of terminal output over SSH)."""
        self.series = series
        if self._shown() != self._drawn:
            self.refresh()

    def _shown(self) -> tuple[object, ...]:
        """What a drawing depends on (but the size and the log scale, which refresh it
        themselves). Series only grow (or are made afresh), and may share their lists
        with their owner: each is told by its length and last point, not by the list."""
        return (
            self.chart_title,
            self.empty_note,
            *(
                (s.label, s.color, s.marker, s.scatter, len(s.xs), s.xs[-1:], s.ys[-1:])
                for s in self.series
            ),
        )

    def watch_log_y(self) -> None:
        self.refresh()

    def render(self):  # type: ignore[no-untyped-def]
        self.draw()
        return super().render()

    def draw(self) -> None:
        self._drawn = self._shown()
        plt = self.plt
        plt.clear_figure()
        scale = " (log)" if self.log_y else ""
        plt.title(self.chart_title + scale)
        plt.xlabel("inputs")
        plotted = [s for s in self.series if s.xs]
        for series in plotted:
            xs, ys = self._points(series)
            if xs:
                draw = plt.scatter if series.scatter else plt.plot
                draw(xs, ys, label=series.label or None, color=series.color, marker=series.marker)
        if self.log_y and plotted:
            plt.yscale("log")
        elif plotted:  # round values, each on its own row, none skipped
            ys = [y for series in plotted for y in series.ys]
            rows = self.size.height - 5  # less the title, frame and the x axis's two lines
            ticks, labels = nice_ticks(min(ys), max(ys), max(2, rows // 2 + 1))
            if ticks:
                plt.yticks(ticks, labels)
        if plotted:  # inputs at round values too (20.0, 1336.2, 2652.5 before)
            xs = [x for series in plotted for x in series.xs]
            ticks, labels = nice_ticks(min(xs), max(xs), max(2, (self.size.width - 10) // 12))
            if ticks:
                plt.xticks(ticks, labels)
        if not plotted:
            plt.title(f"{self.chart_title}: {self.empty_note}")

    def _points(self, series: Series) -> tuple[list, list]:
        kept = list(zip(series.xs, series.ys, strict=True))
        if self.log_y:  # log of zero or less is undefined: those points are not drawn
            kept = [(x, y) for x, y in kept if y > 0]
        return thin([x for x, _ in kept], [y for _, y in kept])
