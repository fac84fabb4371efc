"""Line charts of metric series over inputs seen (textual-plotext), log scale optional.

The chart keeps its data and replots it on every render (``plotting.draw_series``,
which the command line's charts use too), so a resize or a log toggle needs no extra
bookkeeping.
"""

from __future__ import annotations

from rich.color import Color
from rich.style import Style
from rich.text import Text
from textual.reactive import reactive
from textual_plotext import PlotextPlot

from resconv_tui.plotting import NO_DATA_YET, Series, draw_series, legend_key, legend_of


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
        drawn = super().render()
        if isinstance(drawn, Text):
            self.colour_legend(drawn)
        return drawn

    def colour_legend(self, drawn: Text) -> None:
        """Each legend key below the plot (plotext writes the axis label in one colour)
        in its series' colour, as the curve it names."""
        for one in legend_of(self.series):
            key = legend_key(one)
            at = drawn.plain.rfind(key)
            if at >= 0:
                mark = len(key) - len(one.label) - 1
                drawn.stylize(Style(color=Color.from_rgb(*one.color)), at, at + mark)

    def draw(self) -> None:
        self._drawn = self._shown()
        draw_series(
            self.plt, self.chart_title, self.series, width=self.size.width,
            height=self.size.height, log_y=self.log_y, empty_note=self.empty_note,
        )  # fmt: skip
