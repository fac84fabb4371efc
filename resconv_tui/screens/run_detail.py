"""One run in full: live loss curves, speed and memory, status, config, samples.

Polling: a thread worker reads the run and only the metric rows after the last id
seen, then posts ``Polled``; the handler merges them, redraws the charts (only when
something new came, so at most once per poll) and arms the next poll. Once the run has
ended it is read every few seconds: a retry from the command line or another dashboard
queues it again, and the charts start afresh with the new attempt.

Keys: ``l`` log/linear loss axis, ``r`` poll now, ``escape`` back.
"""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Callable, Iterator
from dataclasses import replace

from rich.text import Text
from textual import work
from textual.app import ComposeResult, SystemCommand
from textual.binding import Binding
from textual.containers import Horizontal, VerticalScroll
from textual.message import Message
from textual.visual import VisualType
from textual.widgets import Header, Static

from core.errors import ResconvError
from core.queue import RunRow, RunStatus, UnknownRun
from core.queue.db import hint_option
from core.queue.rows import TRAIN_LOSS, VAL_LOSS, MetricRow
from core.queue.samples import decode_samples
from core.queue.status import FINISHED
from resconv_tui.checkpoint_folders import shown_folders
from resconv_tui.lost_workers import exited_here_now
from resconv_tui.plotting import NO_DATA_YET, PALETTE, Series
from resconv_tui.polling import (
    HeardBeats,
    SettledRuns,
    attempt_of,
    eta_text,
    held_runs,
    queue_forecast,
    read_runs,
    running_ends,
    stalled_runs,
    status_word,
    watched_workers,
)
from resconv_tui.screens.chart_screen import ChartScreen
from resconv_tui.widgets.fit_footer import FitFooter
from resconv_tui.widgets.loss_chart import LossChart
from resconv_tui.widgets.run_info import (
    config_table,
    ended_how,
    error_text,
    info_made_of,
    info_table,
    title_text,
)
from resconv_tui.widgets.sample_image import NO_SAMPLES_YET, SampleImage

SPEED, MEMORY = "inputs_per_s", "memory_bytes"
RETRY_HERE = "r on the runs screen"  # what retries the run shown, in its error panel


class RunDetailScreen(ChartScreen):
    """Everything about one run, updating while it trains."""

    DEFAULT_CSS = """
    RunDetailScreen #detail-body { height: 1fr; }
    RunDetailScreen #detail-title { height: auto; padding: 0 1; background: $boost; }
    RunDetailScreen #detail-top { height: auto; }
    RunDetailScreen #chart-loss { width: 1fr; height: 18; }
    RunDetailScreen #detail-info { width: 45%; max-width: 72; height: auto; padding: 0 1; }
    RunDetailScreen #detail-mid { height: 11; }
    RunDetailScreen #detail-error {
        display: none; height: auto; color: $error; border: round $error; padding: 0 1;
    }
    RunDetailScreen #detail-error.-shown { display: block; }
    RunDetailScreen .section { height: auto; padding: 0 1; margin-top: 1; }
    RunDetailScreen SampleImage { padding: 0 1; }
    """
    BINDINGS = [
        Binding("l", "toggle_log", "Log scale"),
        Binding("r", "poll_now", "Refresh"),
        Binding("escape", "back", "Back"),
    ]

    class Polled(Message):
        """A poll finished: the run, the metric rows after the last seen id, samples, and
        what its ETA row says (as the runs table and ``ls`` say it), all read at ``now``."""

        def __init__(
            self,
            run: RunRow,
            metrics: list[MetricRow],
            samples: bytes | None,
            stalled: bool,
            exited: bool,
            ends: dict[int, float],
            now: float,
            settled: SettledRuns,
            folders: tuple[str, ...] = (),
            silent: dict[int, float] | None = None,
        ) -> None:
            super().__init__()
            self.run = run
            self.metrics = metrics
            self.samples = samples
            self.stalled = stalled  # its worker beats but has taken no step for minutes
            self.exited = exited  # its worker's process here has exited (not recorded yet)
            self.ends = ends  # the queue forecast's, by run id (the runs table's)
            self.now = now
            self.settled = settled  # the runs not running, as read for the forecast
            self.folders = folders  # its checkpoint folders, found on disk too
            # The run, if its beat was seen unchanged past the stale limit: for how long
            # (``polling.HeardBeats``, the runs table's judgement).
            self.silent = silent or {}

    LOSS_CHART = "chart-loss"

    def __init__(
        self,
        db_url: str,
        run_id: int,
        settled: SettledRuns | None = None,
        heard: HeardBeats | None = None,
        db_hint: str | None = None,
    ) -> None:
        super().__init__(db_url)
        # The `` --db X`` its suggested retry carries (``DashboardContext.db_hint``);
        # None: this database's own.
        self.db_hint = hint_option(db_url) if db_hint is None else db_hint
        self.run_id = run_id
        # The dashboard's memory of beats (``DashboardContext.heard``), so that the run's
        # ETA row says "silent" as the runs table does; its own where none is handed over.
        self.heard = heard or HeardBeats()
        self.run: RunRow | None = None
        self.last_metric_id = 0
        self.points: dict[str, Series] = defaultdict(lambda: Series(""))
        self.samples_loaded = False
        self.attempt: tuple[int, float | None] | None = None  # the one the charts show
        # Static id -> what its content was made of when last drawn (see ``show_static``).
        self.drawn_from: dict[str, object] = {}
        # The runs that are not running, as the forecast last read them: re-read only
        # when they change (``polling.read_runs``, as the runs screen reads them). The
        # runs screen hands over its own: read afresh, 10,000 of them kept a running
        # run's detail blank for half a second at every enter.
        self.settled = settled or SettledRuns()

    def compose(self) -> ComposeResult:
        yield Header()
        yield Static(f"Run {self.run_id}", id="detail-title")
        with VerticalScroll(id="detail-body"):
            # First: why a failed run failed, and what to do, is what its reader came for.
            yield Static("", id="detail-error")
            with Horizontal(id="detail-top"):
                yield LossChart("loss", id="chart-loss")
                yield Static("loading…", id="detail-info")
            with Horizontal(id="detail-mid"):
                yield LossChart("inputs/s", id="chart-speed")
                yield LossChart("memory (MiB)", id="chart-memory")
            yield Static("[b]sample reconstructions[/]", classes="section")
            yield SampleImage()
            yield Static("[b]config[/]", classes="section")
            yield Static("", id="detail-config", classes="section")
        yield FitFooter()

    def on_mount(self) -> None:
        self.title = f"Run {self.run_id}"
        self.poll()

    # ----- polling -------------------------------------------------------------------

    @work(thread=True, exclusive=True, group="detail-poll")
    def poll(self) -> None:
        settled, exited = self.settled, False
        ends: dict[int, float] = {}
        try:
            repo = self.repo()
            now = time.time()
            run = repo.get_run(self.run_id)
            silent = self.heard.silent([run], now)
            metrics = repo.metrics_since(self.run_id, self.last_metric_id)
            want_samples = run.has_samples and not self.samples_loaded
            samples = repo.get_samples(self.run_id) if want_samples else None
            # As the runs table says (the same rule): a hung training beats, takes no step.
            # A damaged worker row is left out (the runs screen names it): raised, it
            # kept every run's detail from showing.
            workers = repo.workers_and_damaged()[0]
            stalled = run.id in stalled_runs(workers, held_runs([run], workers))
            folders = shown_folders(run, self.db_url)  # a few stat calls: a put-back run's
            if run.status == RunStatus.RUNNING:
                # Its ETA as the runs table and `ls` give it: the same forecast of every
                # run, and `ls`'s exceptions (a worker of this machine whose process has
                # exited is said, as `ls` says it; the runs screen records it lost).
                exited = run.worker_id in exited_here_now(workers, now)
                runs, settled = read_runs(repo, settled)
                recent = watched_workers(repo, now, self.heard)[0]  # as the runs screen's
                ends = running_ends(runs, recent, queue_forecast(runs, recent, now))
        except ResconvError as exc:
            self.post_message(self.PollFailed(exc))
            return
        polled = self.Polled(
            run, metrics, samples, stalled, exited, ends, now, settled, folders, silent
        )
        self.post_message(polled)

    def on_run_detail_screen_polled(self, message: Polled) -> None:
        self.run, self.settled = message.run, message.settled
        if self._timer is not None:
            self._timer.stop()
        if self.attempt not in (None, attempt_of(message.run)):
            # Retried (or put back) since: the rows read belong to no attempt shown, and
            # ids may start again below the last one seen. Afresh, read again at once.
            self.start_afresh()
            self.show_run(message)
            self.poll()
            return
        self.attempt = attempt_of(message.run)
        # An `r` poll may overlap a timed one: rows already merged are skipped.
        fresh = [row for row in message.metrics if row.id > self.last_metric_id]
        if fresh:
            self.last_metric_id = fresh[-1].id
            self.add_points(fresh)
            self.draw_charts()
        self.show_run(message)  # after the points: its last val loss
        if message.samples is not None:
            self.samples_loaded = True
            try:
                self.query_one(SampleImage).grid = decode_samples(message.samples, self.run_id)
            except ResconvError as exc:  # damaged by hand: the rest of the run still shows
                self.query_one(SampleImage).empty_note = str(exc)
        elif message.run.status in (RunStatus.FAILED, RunStatus.CANCELLED):  # none to come
            how = ended_how(message.run.status)
            image = self.query_one(SampleImage)
            image.empty_note = (
                f"no sample reconstructions: the run {how} before its final validation pass"
            )
            for chart in self.query(LossChart):  # "no data yet" promised data to come
                if chart.empty_note == NO_DATA_YET:
                    chart.empty_note = f"none recorded, the run {how}"
                    chart.refresh()
        ended = message.run.status in FINISHED
        self._timer = self.set_timer(self.SETTLED_POLL_S if ended else self.POLL_S, self.poll)

    def start_afresh(self) -> None:
        """Forget the attempt shown: its points, samples and notes."""
        self.attempt, self.last_metric_id, self.samples_loaded = None, 0, False
        self.points.clear()
        image = self.query_one(SampleImage)
        image.grid = None
        image.empty_note = NO_SAMPLES_YET
        for chart in self.query(LossChart):
            chart.empty_note = NO_DATA_YET
        self.draw_charts()

    def on_chart_screen_poll_failed(self, message: ChartScreen.PollFailed) -> None:
        said = str(message.error)
        self.show_static("detail-info", ("poll failed", said), lambda: Text(said, style="red"))
        if isinstance(message.error, UnknownRun):  # removed: its last status no longer holds
            title = Text(f"Run {self.run_id}  not in the database", style="red")
            self.show_static("detail-title", ("not in the database",), lambda: title)

    # ----- drawing -------------------------------------------------------------------

    def add_points(self, metrics: list[MetricRow]) -> None:
        for row in metrics:
            value = row.value / 2**20 if row.name == MEMORY else row.value
            self.points[row.name].add(row.inputs, value)

    def series(self, name: str, label: str, index: int) -> Series:
        found = self.points.get(name, Series(label))
        return Series(label, found.xs, found.ys, PALETTE[index])

    def draw_charts(self) -> None:
        # Validation as dots, as compare draws it: a run of under one epoch has a single
        # validation point, which a line draws as one braille dot on the train curve's end.
        validation = replace(self.series(VAL_LOSS, "validation", 1), marker="●", scatter=True)
        losses = [self.series(TRAIN_LOSS, "train", 0), validation]
        self.query_one("#chart-loss", LossChart).set_series(losses)
        self.query_one("#chart-speed", LossChart).set_series([self.series(SPEED, "inputs/s", 2)])
        memory = self.series(MEMORY, "MiB", 5)
        chart = self.query_one("#chart-memory", LossChart)
        # The CPU path measures no device memory: no points beside the train loss's (an
        # older worker wrote zeros). Say so instead of "no data yet" or a flat line.
        train = self.points.get(TRAIN_LOSS)
        trained = train is not None and bool(train.xs)
        unmeasured = not any(memory.ys) and (trained or bool(memory.ys))
        # (Nor its peak: the CPU process's memory is not the run's alone.) The chart
        # goes, and the speed chart takes the row: half of it stood empty, saying so.
        chart.display = not unmeasured
        chart.set_series([] if unmeasured else [memory])

    def show_run(self, polled: Polled) -> None:
        # Shown terminal-safe (its name, experiment, error, worker, folders): a failed
        # run's error naming a file with ESC [2J in it cleared the screen it was drawn on.
        run, stalled, now = polled.run.terminal_safe(), polled.stalled, polled.now
        val = self.points.get(VAL_LOSS)
        last_val = (val.ys[-1], val.xs[-1]) if val is not None and val.xs else None
        eta = eta_text(run, now, stalled, polled.exited, polled.ends, polled.silent)
        # status_word: "validating" once every input is trained, a change of its own.
        title = (run.id, run.name, run.experiment, status_word(run))
        self.show_static("detail-title", title, lambda: title_text(run))
        folders = polled.folders
        info = info_made_of(run, now, stalled, last_val, eta, folders)
        self.show_static(
            "detail-info", info, lambda: info_table(run, now, stalled, last_val, eta, folders)
        )
        self.show_static("detail-config", run.config_json, lambda: config_table(run))
        self.show_static(
            "detail-error",
            run.error,
            lambda: error_text(run, RETRY_HERE, self.db_hint) if run.error else "",
        )
        self.query_one("#detail-error", Static).set_class(bool(run.error), "-shown")

    def show_static(
        self, static_id: str, made_of: object, content: Callable[[], VisualType]
    ) -> None:
        """Update the Static ``static_id`` with ``content()`` only when ``made_of`` (what
        that content is made from) differs from what it was last drawn from: an update
        sends the whole panel to the terminal again, and an ended run is read every few
        seconds with nothing new (about 6 KB a poll at 160x45 for title, info and config)."""
        if static_id in self.drawn_from and self.drawn_from[static_id] == made_of:
            return
        self.drawn_from[static_id] = made_of
        self.query_one(f"#{static_id}", Static).update(content())

    def palette_commands(self) -> Iterator[SystemCommand]:
        yield from super().palette_commands()
        yield SystemCommand("Refresh run", "Read new metrics now (r)", self.action_poll_now)
