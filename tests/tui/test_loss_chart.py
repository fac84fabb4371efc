"""The loss chart's y axis: round values, each on a row of its own, none skipped."""

from __future__ import annotations

import math
import re

import pytest
from screen_host import drawn
from textual.app import App, ComposeResult

from resconv_tui.plotting import MAX_GAP, Series, even_y_axis, log_ticks, nice_ticks
from resconv_tui.widgets.loss_chart import LossChart


@pytest.mark.parametrize(
    ("low", "high", "most", "labels"),
    [
        (52.1, 1703.8, 4, ["500", "1,000", "1,500"]),
        (0, 1000, 5, ["0", "250", "500", "750", "1,000"]),
        (0.02, 0.12, 5, ["0.025", "0.050", "0.075", "0.100"]),
        (0.05, 0.052, 6, ["0.0500", "0.0505", "0.0510", "0.0515", "0.0520"]),
        (-3, 7, 6, ["-2", "0", "2", "4", "6"]),
        (5, 5, 4, ["5.000"]),  # one value (a first point): that value alone
        (548.23, 548.23, 4, ["548.2"]),
        (2473.4, 2473.4, 4, ["2,473"]),
        (0.05234, 0.05234, 4, ["0.05234"]),
        (0, 0, 4, ["0.000"]),
    ],
)
def test_nice_ticks_are_round_evenly_spaced_and_few_enough(
    low: float, high: float, most: int, labels: list[str]
) -> None:
    ticks, said = nice_ticks(low, high, most)
    assert said == labels and len(ticks) <= most
    assert all(low <= tick <= high for tick in ticks)


class OneChart(App[None]):
    """The run detail's inputs/s chart, on its own, showing ``series``."""

    CSS = "LossChart { height: 11; width: 60; }"

    def __init__(self, series: Series) -> None:
        super().__init__()
        self.series = series

    def compose(self) -> ComposeResult:
        chart = LossChart("inputs/s")
        chart.series = [self.series]
        yield chart


async def test_the_y_axis_labels_are_evenly_spaced_values() -> None:
    # plotext labelled 1703.8, 1428.5, 1153.3, 602.7, 327.4, 52.1: 878 was skipped.
    xs = list(range(0, 12224, 640))
    app = OneChart(Series("s", xs, [52.1 + 1651.7 * i / (len(xs) - 1) for i in range(len(xs))]))
    async with app.run_test(size=(80, 24)) as pilot:
        shown = await drawn(pilot, "┤")  # the chart, drawn once it is laid out
    labels = re.findall(r"^ *([\d,.]+)┤", shown, re.MULTILINE)
    values = [float(label.replace(",", "")) for label in labels]
    assert values == [1500.0, 1000.0, 500.0]
    # And the inputs: 0, 3040, 6080 ... 12160 before, now round thousands.
    x_axis = shown.splitlines()[shown.splitlines().index(next(
        line for line in shown.splitlines() if "└" in line)) + 1]  # fmt: skip
    assert x_axis.split() == ["0", "5,000", "10,000"]


class TallChart(App[None]):
    """A loss chart ``height`` rows high, as compare and run detail draw one."""

    def __init__(self, series: list[Series], height: int) -> None:
        super().__init__()
        self.series, self.height = series, height

    def compose(self) -> ComposeResult:
        chart = LossChart("loss")
        chart.styles.height, chart.styles.width = self.height, 70
        chart.series = self.series
        yield chart


@pytest.mark.parametrize("height", [15, 20, 24, 30, 33])
async def test_the_y_axis_labels_are_the_same_number_of_rows_apart(height: int) -> None:
    # Two loss curves: labels 0.16 .. 0.06 fell 1, 2, 1, 2, 1 rows apart at 15 rows high,
    # 2, 3, 2, 2, 3 at 20 (plotext puts each on its nearest row of the data's range).
    xs = list(range(0, 180_000, 6400))
    shapes = (("a", 0.05, 0.12, 0.9), ("b", 0.047, 0.1, 0.88))
    curves = [Series(name, xs, [floor + top * fall**i for i in range(len(xs))])
              for name, floor, top, fall in shapes]  # fmt: skip
    async with TallChart(curves, height).run_test(size=(80, 40)) as pilot:
        lines = (await drawn(pilot, "┤")).splitlines()
    rows = [i for i, line in enumerate(lines) if re.match(r"^ *[\d,.]+┤", line)]
    values = [float(lines[i].split("┤")[0].replace(",", "")) for i in rows]
    gaps = {b - a for a, b in zip(rows, rows[1:], strict=False)}
    steps = {round(a - b, 9) for a, b in zip(values, values[1:], strict=False)}
    assert len(rows) >= 3 and len(gaps) == 1 and len(steps) == 1, (rows, values)
    assert 2 <= gaps.pop() <= MAX_GAP


def test_even_y_labels_give_way_where_they_would_leave_much_of_the_chart_empty() -> None:
    # 6 rows for 0.047..0.17: 3 round labels 2 rows apart need 0.033..0.183 or more, a
    # fifth of the chart empty; the curves keep their height, plotext places the labels.
    assert even_y_axis(0.047, 0.17, 6) is None
    ticks, labels, (bottom, top) = even_y_axis(0.047, 0.17, 10) or ([], [], (0, 0))
    assert labels == ["0.05", "0.10", "0.15"] and bottom <= 0.047 and top >= 0.17
    assert (0.17 - 0.047) / (top - bottom) >= 0.8


async def test_a_chart_s_first_point_is_labelled_with_its_value_alone() -> None:
    # plotext spread labels around the one value and skipped a row: 548.2, 487.3, 426.4,
    # 304.6 (no 365.5).
    app = OneChart(Series("s", [640], [548.23]))
    async with app.run_test(size=(80, 24)) as pilot:
        shown = await drawn(pilot, "┤")
    assert re.findall(r"^ *([\d,.]+)┤", shown, re.MULTILINE) == ["548.2"]
    # Its inputs are a count, written as one (as the x axis writes 1,000 and 2,000 of
    # longer curves): the four figures of a loss made it "640.0" under a short run's point.
    assert re.findall(r"^ +([\d,.]+)\s*\n\s*inputs", shown, re.MULTILINE) == ["640"]


async def test_a_chart_is_drawn_again_only_when_what_it_shows_changes() -> None:
    # Compare and run detail set their series at every poll, mostly with nothing new,
    # and each redrawn chart went out over SSH again (kilobytes a poll).
    app = OneChart(Series("s", [640], [548.23]))
    async with app.run_test(size=(80, 24)) as pilot:
        chart = app.query_one(LossChart)
        draws = []
        real_draw = chart.draw
        chart.draw = lambda: (draws.append(1), real_draw())  # type: ignore[method-assign]
        points = chart.series[0]
        chart.set_series([Series("s", list(points.xs), list(points.ys))])  # the same
        await pilot.pause()
        assert draws == []
        points.add(1280, 600.0)  # shared lists grow in place, as the screens' do
        chart.set_series([points])
        await pilot.pause()
        assert len(draws) == 1
        chart.chart_title = "memory"  # set before set_series, as compare's `m` does
        chart.set_series([points])
        await pilot.pause()
        assert len(draws) == 2


@pytest.mark.parametrize("height", [11, 15, 20, 24, 33])
@pytest.mark.parametrize(("floor", "top"), [(0.25, 0.26), (0.01, 2.3), (0.04, 0.02)])
async def test_log_scale_y_labels_are_round_values_on_the_rows_of_their_logs(
    height: int, floor: float, top: float
) -> None:
    # `l` on a loss chart: plotext labelled 0.511, 0.428, 0.358, 0.300, 0.251 (equal
    # ratios of the data's range, not round) 2, 2, 2, 3, 2, 2 rows apart.
    xs = list(range(0, 180_000, 6400))
    curves = [Series(name, xs, [floor + top * fall**i for i in range(len(xs))])
              for name, fall in (("a", 0.9), ("b", 0.85))]  # fmt: skip
    app = TallChart(curves, height)
    async with app.run_test(size=(80, 40)) as pilot:
        app.query_one(LossChart).log_y = True
        lines = (await drawn(pilot, "loss (log)")).splitlines()  # drawn again, log scale
    rows = [i for i, line in enumerate(lines) if re.match(r"^ *[\d,.]+┤", line)]
    values = [float(lines[i].split("┤")[0].replace(",", "")) for i in rows]
    assert len(values) >= 2 and all(float(f"{v:.2g}") == v for v in values), values
    assert all(b - a >= 2 for a, b in zip(rows, rows[1:], strict=False)), (rows, values)
    # Each where its log says: rows in proportion to log10 between the outer two (each
    # of those off by half a row at most, so one row either way).
    logs = [math.log10(v) for v in values]
    per_decade = (rows[-1] - rows[0]) / (logs[-1] - logs[0])
    assert all(abs(rows[0] + (x - logs[0]) * per_decade - r) <= 1 for x, r in zip(
        logs, rows, strict=True)), (rows, values)  # fmt: skip
    if height >= 15:  # and at least three on a chart of 10 rows or more
        assert len(values) >= 3, values


@pytest.mark.parametrize(("low", "high"), [(1e-300, 1e300), (5e-324, 1.0), (1e-10, 1e300)])
def test_log_ticks_over_more_decades_than_a_float_s_ratio_holds(low: float, high: float) -> None:
    # high / low overflowed to inf and log_ticks raised OverflowError (the chart crashed).
    ticks, labels = log_ticks(low, high, 19)
    logs = [math.log10(tick) for tick in ticks]
    assert len(ticks) >= 3 and len(labels) == len(ticks), labels
    assert all(low <= tick <= high for tick in ticks), ticks
    assert all(b > a for a, b in zip(logs, logs[1:], strict=False)), ticks


@pytest.mark.parametrize(
    ("low", "high"), [(0.1, 1e12), (1e-10, 1e300), (2e7, 9e7), (1.01e7, 1.19e7), (1.01e-7, 1.19e-7)]
)
def test_log_labels_of_large_values_stay_a_few_characters_wide(low: float, high: float) -> None:
    # A diverging loss: 1e12 was labelled '1,000,000,000,000', 1e300 with 300 digits.
    ticks, labels = log_ticks(low, high, 19)
    assert len(ticks) >= 2 and all(len(label) <= 9 for label in labels), labels
    assert all(float(label.replace(",", "")) == tick for tick, label in zip(
        ticks, labels, strict=True)), labels  # fmt: skip


@pytest.mark.parametrize("log_y", [False, True])
@pytest.mark.parametrize(
    ("ys", "title"),
    [
        ([0.5, math.nan, 0.3, math.inf], "loss{}: 2 inf/NaN points left out"),
        ([math.inf], "loss{}: 1 inf/NaN point left out, none to draw"),
        ([0.5, 0.4, 0.3, 0.2], "loss{}"),  # nothing left out, nothing said
    ],
)
def test_inf_and_nan_are_left_out_of_the_plot_and_said(
    log_y: bool, ys: list[float], title: str
) -> None:
    # plotext raised on inf (OverflowError on the linear scale, ValueError on the log
    # scale): `show --plot` of such a run ended in a traceback, the dashboard's chart too.
    import plotext

    from resconv_tui.plotting import draw_series

    series = [Series("train", [640.0 * (i + 1) for i in range(len(ys))], ys)]
    draw_series(plotext, "loss", series, width=80, height=20, log_y=log_y)
    drawn = plotext.build()
    assert re.sub(r"\x1b\[[0-9;]*m", "", drawn).splitlines()[0].strip() == title.format(
        " (log)" if log_y else ""
    )


def test_a_log_chart_of_no_point_above_zero_says_so_not_no_data() -> None:
    # Its points were kept aside as inf is: "no data yet" would promise points to come.
    import plotext

    from resconv_tui.plotting import draw_series

    draw_series(plotext, "MiB", [Series("", [1.0, 2.0], [0.0, 0.0])], width=80, height=20,
                log_y=True)  # fmt: skip
    first = re.sub(r"\x1b\[[0-9;]*m", "", plotext.build()).splitlines()[0].strip()
    assert first == "MiB (log): no point above zero to draw"


@pytest.mark.parametrize("width", [30, 34, 60])
def test_the_legend_below_a_narrow_chart_is_shortened_not_left_out(width: int) -> None:
    # plotext leaves out an x label wider than the room beside the y labels: the run
    # detail's loss chart at 64 columns (34 cells) lost its legend and "inputs" alike.
    import plotext

    from resconv_tui.plotting import draw_series

    series = [
        Series("train", [0.0, 320.0, 640.0], [0.4, 0.3, 0.2], (255, 0, 0), "braille"),
        Series("validation", [640.0], [0.25], (0, 255, 0), "●", True),
    ]
    draw_series(plotext, "loss", series, width=width, height=18)
    plotext.plot_size(width, 18)
    last = re.sub(r"\x1b\[[0-9;]*m", "", plotext.build()).splitlines()[-1]
    assert "train" in last and "● val" in last, last
