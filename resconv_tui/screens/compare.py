"""Several runs' loss curves overlaid, one colour each, with a legend below.

The legend (not plotext's in-plot one, which would hide curves) names each run
with its colour, last validation loss and the config values that differ between the
runs where its name does not show them (``resconv-tui compare``'s table shows them
all); the title names the keys that differ, on as many lines as they take (seven runs
apart in six keys fill more than 80 columns). Metrics are read incrementally per
run, like the run detail screen; once every run has ended they are read every few
seconds: a run retried elsewhere starts its curve afresh, a removed one loses it.

Keys: ``m`` both losses / train only / validation only, ``l`` log/linear axis,
``r`` poll now, ``escape`` back.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator

from rich.text import Text
from textual import work
from textual.app import ComposeResult, SystemCommand
from textual.binding import Binding
from textual.message import Message
from textual.reactive import reactive
from textual.widgets import Header, Static

from core.errors import ResconvError
from core.queue import RunRow
from core.queue.comparison import differing_keys, unnamed_differences
from core.queue.rows import TRAIN_LOSS, VAL_LOSS, MetricRow, RunFilter
from core.queue.status import FINISHED
from core.queue.views import count_of
from resconv_tui.plotting import NO_DATA_YET, PALETTE, Series, colour, rich_colour
from resconv_tui.polling import attempt_of
from resconv_tui.screens.chart_screen import ChartScreen
from resconv_tui.widgets.fit_footer import FitFooter
from resconv_tui.widgets.loss_chart import LossChart
from resconv_tui.widgets.run_info import last_validation

BOTH = "both"
METRIC_TITLES = {
    BOTH: "train loss (lines) and validation loss (dots)",
    TRAIN_LOSS: "train loss",
    VAL_LOSS: "validation loss",
}
NEXT_METRIC = {BOTH: TRAIN_LOSS, TRAIN_LOSS: VAL_LOSS, VAL_LOSS: BOTH}


class CompareScreen(ChartScreen):
    """The runs ``run_ids`` side by side: curves, colours and final losses."""

    DEFAULT_CSS = """
    CompareScreen #compare-title { height: auto; max-height: 4; padding: 0 1; background: $boost; }
    CompareScreen #compare-chart { height: 1fr; }
    CompareScreen #compare-legend { height: auto; max-height: 12; padding: 0 1; }
    """
    BINDINGS = [
        Binding("m", "toggle_metric", "Train/val"),
        Binding("l", "toggle_log", "Log scale"),
        Binding("r", "poll_now", "Refresh"),
        Binding("escape", "back", "Back"),
    ]
    POLL_S = 2.0

    metric: reactive[str] = reactive(BOTH)
    """Which losses the chart overlays: ``both``, ``train_loss`` or ``val_loss``."""

    class Polled(Message):
        """The runs as they are now and their metric rows after the last seen ids."""

        def __init__(self, runs: list[RunRow], metrics: list[MetricRow]) -> None:
            super().__init__()
            self.runs = runs
            self.metrics = metrics

    LOSS_CHART = "compare-chart"

    def __init__(self, db_url: str, run_ids: list[int]) -> None:
        super().__init__(db_url)
        given = list(dict.fromkeys(run_ids))
        # A ninth run would take the first's colour, and the legend has 12 lines: two
        # curves no one could tell apart. The runs screen's marks and a results cell's
        # seeds both come here.
        self.run_ids = given[: len(PALETTE)]
        self.left_out = len(given) - len(self.run_ids)
        self.runs: dict[int, RunRow] = {}
        self.attempts: dict[int, tuple[int, float | None]] = {}  # the ones the curves show
        self.legend_shown: Text | None = None  # drawn again only when it changes
        self.title_shown = ""
        self.last_ids: dict[int, int] = defaultdict(int)
        self.points: dict[tuple[int, str], Series] = defaultdict(lambda: Series(""))

    def compose(self) -> ComposeResult:
        yield Header()
        yield Static(
            f"Compare {count_of(len(self.run_ids), 'run')}", id="compare-title", markup=False
        )
        yield LossChart(METRIC_TITLES[BOTH], id="compare-chart")
        yield Static("loading…", id="compare-legend")
        yield FitFooter()

    def on_mount(self) -> None:
        self.title = "Compare"
        if self.left_out:
            self.notify(
                f"comparing the first {len(self.run_ids)} of {len(self.run_ids) + self.left_out}"
                f" runs: {len(PALETTE)} colours tell curves apart",
                severity="warning",
            )
        self.poll()

    # ----- polling -------------------------------------------------------------------

    @work(thread=True, exclusive=True, group="compare-poll")
    def poll(self) -> None:
        names = [TRAIN_LOSS, VAL_LOSS]
        try:
            repo = self.repo()
            runs = repo.list_runs(RunFilter(ids=tuple(self.run_ids)))
            metrics = [
                row
                for run in runs
                for row in repo.metrics_since(run.id, self.last_ids[run.id], names)
            ]
        except ResconvError as exc:
            self.post_message(self.PollFailed(exc))
            return
        self.post_message(self.Polled(runs, metrics))

    def on_compare_screen_polled(self, message: Polled) -> None:
        self.runs = {run.id: run for run in message.runs}
        if self._timer is not None:
            self._timer.stop()
        # A run removed since loses its curve; one retried since (its rows deleted, its
        # new ids possibly below the last seen) starts afresh, read again at once.
        gone = [i for i in self.attempts if self.runs.get(i) is None
                or attempt_of(self.runs[i]) != self.attempts[i]]  # fmt: skip
        for run_id in gone:
            self.forget(run_id)
        if any(run_id in self.runs for run_id in gone):
            self.poll()
            return
        self.attempts = {run.id: attempt_of(run) for run in message.runs}
        for row in message.metrics:
            if row.id > self.last_ids[row.run_id]:  # an `r` poll may overlap a timed one
                self.last_ids[row.run_id] = row.id
                self.points[(row.run_id, row.name)].add(row.inputs, row.value)
        settled = all(run.status in FINISHED for run in message.runs)
        # "no data yet" promised data to come: not once every run has ended
        self.query_one(LossChart).empty_note = "none recorded" if settled else NO_DATA_YET
        self.redraw()
        self._timer = self.set_timer(self.SETTLED_POLL_S if settled else self.POLL_S, self.poll)

    def forget(self, run_id: int) -> None:
        """Drop what was read of ``run_id``'s attempt: its points, its last row id."""
        self.attempts.pop(run_id, None)
        self.last_ids.pop(run_id, None)
        for name in (TRAIN_LOSS, VAL_LOSS):
            self.points.pop((run_id, name), None)

    def on_chart_screen_poll_failed(self, message: ChartScreen.PollFailed) -> None:
        self.legend_shown = None  # the legend comes back at the next poll that works
        self.query_one("#compare-legend", Static).update(Text(str(message.error), style="red"))

    # ----- drawing -------------------------------------------------------------------

    def series(self) -> list[Series]:
        """Each run's chosen losses in its colour (run_ids order = colour order)."""
        names = [TRAIN_LOSS, VAL_LOSS] if self.metric == BOTH else [self.metric]
        out = []
        for index, run_id in enumerate(self.run_ids):
            for name in names:
                found = self.points.get((run_id, name), Series(""))
                dots = name == VAL_LOSS
                marker = "●" if dots else "braille"
                out.append(Series("", found.xs, found.ys, colour(index), marker, scatter=dots))
        return out

    def legend(self, keys: list[str]) -> Text:
        """Each run's colour, name, status, last validation loss and its values of
        ``keys`` (those that differ between the runs) that its name does not show."""
        text = Text()
        for index, run_id in enumerate(self.run_ids):
            run = self.runs.get(run_id)
            text.append("■ ", style=rich_colour(index))
            if run is None:
                text.append(f"#{run_id}  not in the database\n", style="dim")
                continue
            found = self.points.get((run_id, VAL_LOSS))
            loss = last_validation(run, found.ys if found else [])
            shown = "—" if loss is None else f"{loss:.6f}"
            safe = run.terminal_safe()  # a name with ESC in it (edited by hand) as escapes
            text.append(f"#{run_id} {safe.name}", style="bold")
            text.append(f"  ({safe.experiment}, {run.status})  val {shown}")
            unnamed = unnamed_differences(run, keys)
            text.append(f"  {unnamed}\n" if unnamed else "\n", style="dim")
        text.rstrip()
        return text

    def title_text(self, runs: list[RunRow], keys: list[str]) -> str:
        """``Compare 3 runs``, and the config keys that differ between ``runs``."""
        title = f"Compare {count_of(len(self.run_ids), 'run')}"
        if len(runs) < 2:
            return title
        return f"{title}: they differ in {', '.join(keys)}" if keys else f"{title}: same config"

    def redraw(self) -> None:
        chart = self.query_one("#compare-chart", LossChart)
        chart.chart_title = METRIC_TITLES[self.metric]
        chart.set_series(self.series())
        runs = [self.runs[i] for i in self.run_ids if i in self.runs]
        keys = differing_keys(runs)
        title = self.title_text(runs, keys)
        if title != self.title_shown:
            self.title_shown = title
            self.query_one("#compare-title", Static).update(title)
        legend = self.legend(keys)
        if legend != self.legend_shown:
            self.legend_shown = legend
            self.query_one("#compare-legend", Static).update(legend)

    def watch_metric(self) -> None:
        if self.is_mounted:
            self.redraw()

    def action_toggle_metric(self) -> None:
        self.metric = NEXT_METRIC[self.metric]

    def palette_commands(self) -> Iterator[SystemCommand]:
        yield from super().palette_commands()
        yield SystemCommand(
            "Cycle compared losses", "Both / train / validation (m)", self.action_toggle_metric
        )
        yield SystemCommand("Refresh comparison", "Read new metrics now (r)", self.action_poll_now)
