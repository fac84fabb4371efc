"""The home screen: every run, live, with the queue's keys.

Polling: one thread worker per tick reads the dashboard (``polling.read_dashboard``)
and posts ``DashboardRefreshed``; the handler draws and arms the next tick, so a
slow database delays refreshes instead of stacking them up. A poll that cannot read
leaves the last rows drawn, under a line saying since when the database has been
unreachable, why, and when those rows were read; the next poll that reads clears it
and says so. The key actions live in ``RunActions`` (``runs_actions.py``); this
module is reading and drawing.
"""

from __future__ import annotations

import re
import time
from contextlib import suppress
from dataclasses import dataclass, replace

from rich.cells import cell_len
from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.message import Message
from textual.reactive import reactive
from textual.screen import Screen
from textual.timer import Timer
from textual.widgets import DataTable, Header, Input, Static
from textual.worker import get_current_worker

from core.errors import ResconvError, terminal_safe
from core.queue import RunRow, RunStatus
from core.queue.db import describe
from core.queue.failures import run_cause
from core.queue.views import count_of, format_age
from resconv_tui.context import DashboardContext
from resconv_tui.forecast import UpperBound
from resconv_tui.lost_workers import LostWorkers, NotRecorded, exited_workers, record_lost
from resconv_tui.name_cuts import keep_ends
from resconv_tui.polling import (
    Dashboard,
    LatestLosses,
    RunsQuery,
    SettledRuns,
    claims_largest_first,
    damaged_worker_said,
    filter_runs,
    format_duration,
    in_queue_order,
    read_dashboard,
)
from resconv_tui.screens.runs_actions import RunActions
from resconv_tui.screens.seen import on_view
from resconv_tui.widgets.fit_footer import FitFooter
from resconv_tui.widgets.run_table import RunTable
from resconv_tui.widgets.steady_static import SteadyStatic
from resconv_tui.widgets.workers_panel import WorkersPanel

STATUS_CYCLE: tuple[RunStatus | None, ...] = (None, *RunStatus)
# After a failed write marking exited workers lost, try again only this much later: a
# write that meets a long lock waits the busy timeout, and the poll with it.
RECOVERY_RETRY_S = 30.0
# The counts a narrow summary keeps: runs still to train, and failures to look at.
PENDING = (RunStatus.QUEUED, RunStatus.RUNNING, RunStatus.FAILED)


class FilterInput(Input):
    """The runs filter: while typing in it the footer says how to leave it (its
    placeholder did, until the first character hid it)."""

    BINDINGS = [
        Binding("enter", "submit", "Keep filter", key_display="enter"),
        Binding("escape", "screen.escape", "Clear"),  # the marks first, as in the table
    ]


class RunsScreen(RunActions, Screen[None]):
    """Runs, filters, the highlighted run's latest losses and the workers panel."""

    HELP_SECTION = "Runs (home)"  # what ? shows first (screens.help.KEYS)
    # Textual focuses the first focusable widget as the screen is composed, before
    # on_mount runs and before the CSS hides the filter field, which comes first: a key
    # pressed in a busy machine's first seconds was typed into the hidden filter.
    AUTO_FOCUS = "#runs-table"

    BINDINGS = [
        Binding("n", "new_sweep", "New"),
        Binding("d", "duplicate", "Dup", show=False),
        Binding("c", "cancel", "Cancel"),
        Binding("r", "retry", "Retry"),
        Binding("plus", "priority(1)", "Pri+", key_display="+", show=False),
        Binding("minus", "priority(-1)", "Pri-", key_display="-", show=False),
        Binding("t", "run_next", "Next", show=False),
        Binding("x", "remove", "Remove", show=False),  # 80 columns: in help instead
        Binding("space", "mark", "Mark", show=False),
        Binding("C", "compare", "Compare"),
        Binding("w", "toggle_worker", "Worker"),
        Binding("R", "results", "Results"),
        Binding("slash", "search", "Find", key_display="/"),
        Binding("f", "cycle_status", "Status", show=False),
        Binding("F", "cycle_experiment", "Exp", show=False),
        Binding("o", "toggle_order", "Order", show=False),
        Binding("escape", "escape", "Clear", show=False),
    ]

    class DashboardRefreshed(Message):
        """A poll finished; ``dashboard`` is everything read in that tick."""

        def __init__(
            self,
            dashboard: Dashboard,
            lost: LostWorkers | None = None,
            not_recorded: NotRecorded | None = None,
            *,
            final: bool = True,
        ) -> None:
            super().__init__()
            self.dashboard = dashboard
            self.lost = lost  # workers of this machine found exited (and recorded) in it
            self.not_recorded = not_recorded  # found exited, but the write failed
            # False: drawn before the write that records exited workers (it may wait on
            # a lock); the poll's last message follows and arms the next poll.
            self.final = final

    class PollFailed(Message):
        """A poll raised an expected error (locked, missing or unreachable database)."""

        def __init__(self, error: str, at: float) -> None:
            super().__init__()
            self.error = error  # the QueueError's message
            self.at = at  # the poll's clock

    filters: reactive[RunsQuery] = reactive(RunsQuery, init=False)
    """The status / experiment / text filters; changing them redraws from the last poll."""
    marked: reactive[frozenset[int]] = reactive(frozenset, init=False)
    """Run ids marked with space (for compare and bulk actions)."""
    queue_order: reactive[bool] = reactive(False, init=False)
    """``o``: rows in the order runs train (running, then queued in claim order,
    priority then age, then ended), as ``ls``; else by id. A filter's escape leaves it."""

    def __init__(self, ctx: DashboardContext) -> None:
        super().__init__()
        self.ctx = ctx
        self.dashboard: Dashboard | None = None
        self._timer: Timer | None = None
        self._poll_inputs: tuple[int | None, LatestLosses | None, SettledRuns | None] = (
            None,
            None,
            None,
        )
        self._failing: FailingReads | None = None  # polls failing: since the first, and why
        self._recovery_retry_at = 0.0  # no write marking workers lost before (clock)
        self._not_recorded_said: set[int] = set()  # pids whose failed recording was said

    def compose(self) -> ComposeResult:
        yield Header()
        # Steady: drawn again at each poll, mostly with the text they show already.
        yield SteadyStatic(id="runs-summary", markup=False)
        yield Static(id="runs-unreachable", markup=False)
        yield FilterInput(placeholder="filter runs (enter: keep, esc: clear)", id="runs-search")
        yield RunTable(id="runs-table")
        yield SteadyStatic(id="runs-detail", markup=False)
        yield WorkersPanel(id="workers-panel")
        yield FitFooter()

    def on_mount(self) -> None:
        self.title = "resconv-tui"
        self.sub_title = terminal_safe(self.ctx.db_name)  # a path may hold ESC, as any text
        self.query_one(RunTable).focus()
        for note in self.ctx.notes:
            self.notify(note, severity="warning", timeout=10)
        self.ctx.notes.clear()
        self.refresh_now()

    # ----- polling --------------------------------------------------------------------

    def refresh_now(self) -> None:
        """Poll at once (after an action, or when the screen comes back)."""
        if self._timer is not None:
            self._timer.stop()
        dash = self.dashboard
        latest, settled = (dash.latest, dash.settled) if dash else (None, None)
        # Handed over by attribute, not as worker arguments: @work builds a description
        # from the arguments' reprs, and 10,000 runs take a third of a second to repr.
        self._poll_inputs = (self.query_one(RunTable).highlighted_id, latest, settled)
        self._poll()

    @work(thread=True, exclusive=True, group="poll")
    def _poll(self) -> None:
        worker = get_current_worker()
        selected, latest, settled = self._poll_inputs
        ctx = self.ctx
        now = ctx.clock()
        try:
            dashboard = read_dashboard(ctx.repo, now, selected, latest, settled, ctx.heard)
        except ResconvError as exc:
            if not worker.is_cancelled:
                self.post_message(self.PollFailed(str(exc), now))
            return
        lost = not_recorded = None
        # Workers of this machine whose process is gone: marking them lost is a write,
        # which a read-only database refuses and a long lock delays. Neither hides what
        # was read: the rows are drawn first, and a failed write is said, not raised.
        exited = exited_workers(dashboard.workers, ctx.hostname, ctx.launcher.worker_alive, now)
        if exited and now >= self._recovery_retry_at and not worker.is_cancelled:
            self.post_message(self.DashboardRefreshed(dashboard, final=False))
            try:
                lost = record_lost(ctx.repo, exited)
            except ResconvError as exc:
                not_recorded = NotRecorded(sorted({w.pid for w in exited}), str(exc))
            else:
                # Rare: read again, so the rows show it now (or the next poll does).
                with suppress(ResconvError):
                    dashboard = read_dashboard(
                        ctx.repo, now, selected, dashboard.latest, settled, ctx.heard
                    )
        if not worker.is_cancelled:
            self.post_message(self.DashboardRefreshed(dashboard, lost, not_recorded))

    def _arm(self) -> None:
        if self._timer is not None:
            self._timer.stop()
        self._timer = self.set_timer(self.ctx.poll_interval_s, self._tick)

    def _tick(self) -> None:
        # A covered screen stops polling; on_screen_resume polls again at once.
        if on_view(self):
            self.refresh_now()

    def on_screen_resume(self) -> None:
        if self.dashboard is not None:
            self.refresh_now()

    def on_runs_screen_dashboard_refreshed(self, message: DashboardRefreshed) -> None:
        self.dashboard = message.dashboard
        if self._failing is not None:
            gone = format_age(message.dashboard.now - self._failing.since)
            trouble, self._failing = self._failing.trouble, None
            back = "reachable" if trouble == "unreachable" else "readable"
            self.notify(f"database {back} again ({trouble} for {gone})", timeout=5)
            self._draw_failing()
        # A marked run removed elsewhere (the command line, another dashboard) is no
        # longer marked: counted as hidden by filters, it made x refuse the other marks.
        existing = self.marked & {run.id for run in message.dashboard.runs}
        if existing != self.marked:
            self.set_reactive(RunsScreen.marked, existing)  # drawn just below
        if message.lost is not None:
            # Its retry command, pasted into a shell, must act on this database.
            lost = message.lost.message(self.ctx.db_hint)
            self.notify(lost, severity="warning", timeout=15)
        if (failed := message.not_recorded) is not None:
            self._recovery_retry_at = message.dashboard.now + RECOVERY_RETRY_S
            if not set(failed.pids) <= self._not_recorded_said:  # once, not every poll
                self._not_recorded_said.update(failed.pids)
                self.notify(failed.message(), severity="warning", timeout=20)
        self._draw()
        if not message.final:
            return
        self.after_refresh()
        self._arm()

    def on_runs_screen_poll_failed(self, message: PollFailed) -> None:
        # The last rows read stay on screen, but they are not live: say so above the
        # table, with since when and why, until a poll reads the database again.
        since = self._failing.since if self._failing else message.at
        self._failing = FailingReads(since, message.at, self._reason(message.error))
        self._draw_failing()
        self._arm()

    def _reason(self, error: str) -> str:
        """``error`` with the database's name after the reason: a PostgreSQL URL is long
        enough to fill an 80-column line before the reason is reached."""
        try:
            where = describe(self.ctx.db_url)
        except ResconvError:
            return error
        prefix = f"database {where}: "
        return f"{error[len(prefix) :]} ({where})" if error.startswith(prefix) else error

    def _draw_failing(self) -> None:
        banner = self.query_one("#runs-unreachable", Static)
        panel = self.query_one(WorkersPanel)
        state = self._failing
        banner.set_class(state is not None, "-shown")
        if state is None:
            banner.update("")
            panel.border_title = "workers"
            return
        dash = self.dashboard
        head = f"database {state.trouble} since {clock_time(state.since)}"
        head += f" ({format_age(state.at - state.since)})"
        # The rows and the workers' "beat 2 s ago" are as of the last read, not now.
        head += (
            f": showing what was read at {clock_time(dash.now)}" if dash else ": nothing read yet"
        )
        banner.update(Text.assemble((head, "bold"), "\n", terminal_safe(state.reason)))
        if dash is not None:
            panel.border_title = f"workers as of {clock_time(dash.now)}"

    # ----- drawing --------------------------------------------------------------------

    def watch_filters(self) -> None:
        self._draw()

    def watch_marked(self) -> None:
        self._draw()

    def watch_queue_order(self) -> None:
        self._draw()

    def visible_runs(self) -> list[RunRow]:
        if self.dashboard is None:
            return []
        dash = self.dashboard
        shown = filter_runs(dash.runs, self.filters)
        if not self.queue_order:
            return shown
        return in_queue_order(shown, claims_largest_first(dash.workers, dash.now))

    def _draw(self) -> None:
        dash = self.dashboard
        if dash is None:
            return
        table = self.query_one(RunTable)
        visible = self.visible_runs()
        table.show_runs(
            visible, dash.now, set(self.marked), dash.stalled, dash.run_ends, dash.silent
        )
        panel = self.query_one(WorkersPanel)
        starting = self._starting_worker(dash)
        damaged = [damaged_worker_said(row) for row in dash.damaged_workers]
        panel.show(dash.workers, dash.now, dash.held, starting=starting, damaged=damaged)
        self.query_one("#runs-summary", Static).update(self._summary(dash, visible))
        self._draw_detail()

    def _starting_worker(self, dash: Dashboard) -> int | None:
        """The pid of the worker ``w`` started while it has no row yet (and lives, within
        the time its start is watched). Its row, or its slots' (``--slots K`` as processes
        register their own pids), is one of this machine's made since it started."""
        if self.ctx.starting is None:
            return None
        pid, started_at = self.ctx.starting
        here = self.ctx.hostname
        came = any(w.pid == pid or w.host == here and w.started_at >= started_at
                   for w in dash.workers)  # fmt: skip
        if came or not self.ctx.launcher.alive(pid):
            self.ctx.starting = None
            return None
        return pid if dash.now - started_at < self.ctx.launch_watch_s else None

    def _summary(self, dash: Dashboard, visible: list[RunRow]) -> str:
        """The line above the table; ``visible``: the runs the table shows."""
        counts = [(status, f"{n} {status}") for status, n in dash.counts.items() if n]
        plain = [said for _, said in counts]
        detailed = list(plain)
        if dash.failures:  # "2 failed (1 oom, 1 worker-lost)": the words `retry --cause` takes
            failed = f"{dash.counts[RunStatus.FAILED]} {RunStatus.FAILED}"
            causes = ", ".join(f"{n} {cause.option}" for cause, n in dash.failures.items())
            detailed[plain.index(failed)] += f" ({causes})"
        if dash.stalled:  # "1 running (1 stalled)": beating, but no training step for minutes
            running = f"{dash.counts[RunStatus.RUNNING]} {RunStatus.RUNNING}"
            detailed[plain.index(running)] += f" ({len(dash.stalled)} stalled)"
        pending = [said for status, said in counts if status in PENDING]
        # The same with the failures' causes: "9 failed (9 nan)" says `retry --cause nan`.
        pending_why = [why for (status, _), why in zip(counts, detailed, strict=True)
                       if status in PENDING]  # fmt: skip
        marked = []
        if self.marked:  # marks a filter hides are said: no action touches them
            on_screen = {run.id for run in visible}
            hidden = len(self.marked - on_screen)
            marked.append(f"{len(self.marked)} marked" + (f" ({hidden} hidden)" if hidden else ""))
        total = count_of(len(dash.runs), "run")
        if len(visible) < len(dash.runs):  # a filter: how many of them the table shows
            total += f" ({len(visible)} shown)"
        room = self.query_one("#runs-summary", Static).content_region.width

        # Nothing queued or running: no ETA part, as `status` prints no ETA line then.
        # "ETA —" said "unknown" both there and where every worker is silent.
        left = dash.counts.get(RunStatus.QUEUED) or dash.counts.get(RunStatus.RUNNING)

        def head(said: list[str], coarse: bool = False) -> str:
            eta = f" │ ETA {self._queue_eta(dash, coarse)}" if left else ""
            return "·".join([total, *said, *marked]) + eta

        def tail(*, with_eta: bool = True, coarse: bool = False) -> str:
            filters = self._filters_said(dash, with_eta=with_eta, coarse=coarse)
            return f" │ {filters}" if filters else ""

        def kept(said: list[str]) -> list[str | None]:
            """``said`` (counts with the failures' causes), and the room made for the causes
            before they go: the ETAs in minutes, order=queue unsaid (the rows show it), a
            long experiment name cut in its middle, then the experiment's own ETA unsaid."""
            coarse = head(said, True)
            cuts = [self._name_cut(dash, coarse, room, with_eta=eta, with_order=False)
                    for eta in (True, False)]  # fmt: skip
            return [head(said) + tail(), coarse + tail(coarse=True), *cuts]

        # The first that fits, rather than a second line that takes a row from the table:
        # on an 80-column terminal the same closer together, then as ``kept`` makes room
        # for the failures' causes (they say which retry fits). Then the causes go, then
        # the settled counts (the causes of the runs still to train or fail are made room
        # for again), then those counts, and the experiment's own ETA (the filters stay
        # named). The marks stay in every form: a filter that hides a marked run must
        # still say it is marked.
        wide = tail().replace(" │ ", "  │  ", 1)
        queue_eta = f"  │  queue ETA {self._queue_eta(dash, False)}" if left else ""
        forms = [
            " · ".join([total, *detailed, *marked]) + f"{queue_eta}{wide}",
            *kept(detailed),
            head(plain) + tail(),
            *kept(pending_why),
            head(pending) + tail(),
            head([]) + tail(),
            # Two filters and the order at 80 columns wrapped even the total alone: the
            # experiment's own ETA goes, then its name is cut (the filters stay named).
            head([]) + tail(with_eta=False),
            self._name_cut(dash, head([]), room, with_eta=False),
        ]
        # Cells, not characters: an experiment may be named 実験.
        fits = (line for line in forms if line and (not room or cell_len(line) <= room))
        return next(fits, None) or _cut(head([]) + tail(with_eta=False), room)

    def _queue_eta(self, dash: Dashboard, coarse: bool) -> str:
        """When the queue will be empty (in minutes where ``coarse``); where it never
        will, what ends."""
        eta = _duration(dash.queue_eta_s, coarse)
        if dash.queue_eta_s is None and dash.untaken:  # it never empties: say what ends
            done = dash.workers_end_s
            ends = f", workers done in {_duration(done, coarse)}" if done is not None else ""
            eta += f" ({dash.untaken} left queued{ends})"
        return eta

    def _name_cut(
        self, dash: Dashboard, head: str, room: int, *, with_eta: bool, with_order: bool = True
    ) -> str | None:
        """``head`` and the filters, the experiment's name cut in its middle to fit
        ``room`` where it must (its ETA in minutes, ``with_eta``; order=queue said,
        ``with_order``); None where that would leave it under ``MIDDLE_CUT_MIN`` cells.
        A line cut at its end, two quick checks of one file read "exp=t4-batchnorm-
        position-inpu…" alike (their ends, -inputs-256 and -inputs-1000, cut off), and
        the filters after it went unsaid."""
        # As said (terminal-safe): its cells are what must fit.
        experiment = (
            None if self.filters.experiment is None else terminal_safe(self.filters.experiment)
        )
        said = self._filters_said(dash, with_eta=with_eta, coarse=True, with_order=with_order)
        line = f"{head} │ {said}" if said else head
        over = cell_len(line) - room
        if over <= 0 or not room:
            return line  # it fits (order=queue left unsaid, say): nothing to cut
        if experiment is None or cell_len(experiment) - over < MIDDLE_CUT_MIN:
            return None
        short = keep_ends(experiment, cell_len(experiment) - over)
        said = self._filters_said(
            dash, with_eta=with_eta, experiment=short, coarse=True, with_order=with_order
        )
        return f"{head} │ {said}"

    def _filters_said(
        self,
        dash: Dashboard,
        *,
        with_eta: bool,
        experiment: str | None = None,
        coarse: bool = False,
        with_order: bool = True,
    ) -> str:
        """Only the filters in force (the line must fit a modest terminal); ``with_eta``:
        the filtered experiment's ETA beside its name (in minutes where ``coarse``);
        ``experiment``: its name as said (cut to fit), instead of the filter's;
        ``with_order``: order=queue said where the table is in the queue's order."""
        q = self.filters
        eta = self._experiment_eta(dash, q.experiment, coarse) if q.experiment and with_eta else ""
        # The filter holds the stored name (it matches the runs' own); the line says it
        # terminal-safe, as the table does, and so the text typed (pasted ESC and all).
        named = experiment or terminal_safe(q.experiment or "")
        shown = [
            *([f"status={q.status}"] if q.status else []),
            *([f"exp={named}{eta}"] if q.experiment else []),
            *([f'text="{terminal_safe(q.text)}"'] if q.text else []),
            *(["order=queue"] if self.queue_order and with_order else []),
        ]
        return " ".join(shown)

    @staticmethod
    def _experiment_eta(dash: Dashboard, experiment: str, coarse: bool = False) -> str:
        """' (ETA 1m10s)': when the filtered experiment's runs will all have ended (in
        minutes where ``coarse``); ' (done)' where none is left to train (at 80 columns the
        queue's ETA beside it reads "ETA", and was read as the experiment's)."""
        eta = dash.experiment_etas.get(experiment)
        if eta is not None:
            return f" (ETA {_duration(eta, coarse)})"
        left = (RunStatus.QUEUED, RunStatus.RUNNING)
        if not any(r.experiment == experiment and r.status in left for r in dash.runs):
            return " (done)"
        return ""

    def _draw_detail(self) -> None:
        run = self.highlighted_run()
        detail = self.query_one("#runs-detail", Static)
        if run is None:
            if self.dashboard is None:
                detail.update("")
            elif self.dashboard.runs:  # there are runs, but the filters show none
                detail.update("no runs match the filters — escape shows every run")
            else:
                detail.update("no runs yet — press n to queue a sweep")
            return
        # Terminal-safe: a failed run's error naming a file with ESC [2J in it, or a name
        # edited by hand, reached the terminal as it was.
        text = _detail_text(run.terminal_safe(), self.dashboard.latest if self.dashboard else None)
        detail.update(_fitted(text, detail.content_region.width))

    @on(DataTable.RowHighlighted, "#runs-table")
    def _highlighted(self) -> None:
        self._draw_detail()

    @on(DataTable.RowSelected, "#runs-table")
    def _selected(self) -> None:
        self.action_details()

    def highlighted_run(self) -> RunRow | None:
        run_id = self.query_one(RunTable).highlighted_id
        if run_id is None or self.dashboard is None:
            return None
        return next((r for r in self.dashboard.runs if r.id == run_id), None)

    # ----- filters --------------------------------------------------------------------

    def action_search(self) -> None:
        search = self.query_one("#runs-search", Input)
        search.add_class("-shown")
        search.focus()

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        """While the filter field has focus, ``/``, ``+`` and ``-`` are typed into it:
        their bindings are not shown (the footer offered "/ Find" there, which typed a
        slash). Textual hides the other printable keys by itself, but not these three,
        whose key names ("slash", "plus", "minus") it does not read as characters."""
        typing = self.focused is not None and self.focused.id == "runs-search"
        return not (typing and action in ("search", "priority"))

    @on(Input.Changed, "#runs-search")
    def _search_changed(self, event: Input.Changed) -> None:
        self.filters = replace(self.filters, text=event.value)

    @on(Input.Submitted, "#runs-search")
    def _search_done(self) -> None:
        self.query_one(RunTable).focus()

    def action_clear_marks(self) -> None:
        """escape, or the palette's Clear marks: says how many (or that there were none)."""
        count, self.marked = len(self.marked), frozenset()
        self.notify(f"{count_of(count, 'mark')} cleared" if count else "no run was marked")

    def action_escape(self) -> None:
        """escape: the marks first (they steer every action), then the filters."""
        if self.marked:
            self.action_clear_marks()
        else:
            self.action_clear_filters()

    def action_clear_filters(self) -> None:
        search = self.query_one("#runs-search", Input)
        search.value = ""
        search.remove_class("-shown")
        self.filters = RunsQuery()
        self.query_one(RunTable).focus()

    def action_toggle_order(self) -> None:
        self.queue_order = not self.queue_order

    def action_cycle_status(self) -> None:
        i = STATUS_CYCLE.index(self.filters.status)
        self.set_status_filter(STATUS_CYCLE[(i + 1) % len(STATUS_CYCLE)])

    def set_status_filter(self, status: RunStatus | None) -> None:
        self.filters = replace(self.filters, status=status)

    def action_cycle_experiment(self) -> None:
        names = (None, *(self.dashboard.experiments if self.dashboard else ()))
        i = names.index(self.filters.experiment) if self.filters.experiment in names else 0
        self.set_experiment_filter(names[(i + 1) % len(names)])

    def set_experiment_filter(self, experiment: str | None) -> None:
        self.filters = replace(self.filters, experiment=experiment)


@dataclass(frozen=True)
class FailingReads:
    """Polls have failed since ``since`` (the clock's); the last at ``at``, for ``reason``."""

    since: float
    at: float
    reason: str

    @property
    def trouble(self) -> str:
        """What the banner calls it: a server out of reach, a file locked, or any other
        read that failed (a damaged row, a file removed or replaced, a disk error)."""
        low = self.reason.lower()
        if "locked" in low:
            return "locked"
        reach = ("unreachable", "no answer", "connect", "timeout", "timed out", "server")
        return "unreachable" if any(word in low for word in reach) else "not readable"


def clock_time(at: float) -> str:
    """23:40:05: a time of the clock, local."""
    return time.strftime("%H:%M:%S", time.localtime(at))


# The line under the table, shorter step by step where it would be cut (80 columns cut
# it inside "val loss"): the words first, then where the losses were read.
SHORTER = (("train loss ", "train "), ("val loss ", "val "), ("priority ", "pri "),
           (" inputs", ""))  # fmt: skip


# The fewest cells an experiment's name is cut to in the summary line: shorter, its start
# and end tell little, and the line's end is cut instead.
MIDDLE_CUT_MIN = 12


def _duration(seconds: float | None, coarse: bool) -> str:
    """``format_duration``, to the nearest minute where ``coarse`` (3m02s: 3m); a line
    too narrow for the causes of failures said them in the seconds' place."""
    if not coarse or seconds is None or seconds < 60 or isinstance(seconds, UpperBound):
        return format_duration(seconds)  # an upper bound is written to the minute already
    return format_duration(round(seconds / 60) * 60).removesuffix("00s")


def _cut(text: str, room: int) -> str:
    """``text`` cut to ``room`` cells with an ellipsis, rather than wrapped onto a second
    line that takes a row from the table."""
    cut = Text(text)
    cut.truncate(room, overflow="ellipsis")
    return cut.plain


def _fitted(text: str, room: int) -> str:
    for long, short in SHORTER:
        if not room or cell_len(text) <= room:
            return text
        text = text.replace(long, short)
    if room and cell_len(text) > room:
        text = re.sub(r" @ [\d,]+", "", text, count=1)  # the train's or the val's
    if room and cell_len(text) > room:  # a long name or error: cut, and say so
        text = _cut(text, room)
    return text


def _detail_text(run: RunRow, latest: LatestLosses | None) -> str:
    # The priority here too: an 80-column table leaves its column out, and + or t
    # would change nothing to be seen.
    priority = f" · priority {run.priority}" if run.priority else ""
    head = f"run {run.id} · {run.experiment} · {run.name}{priority}"
    if run.error and (cause := run_cause(run)) is not None:
        if run.error == cause:  # "worker lost" is both the cause and the whole message
            return f"{head} · failed, {cause}"
        return f"{head} · failed, {cause}: {run.error}"
    if run.error:
        return f"{head} · {run.status}: {run.error}"
    # Queued (again, after a retry: its old metrics are gone): no losses to show yet.
    stale = run.status == RunStatus.QUEUED
    if stale or latest is None or latest.run_id != run.id or latest.last_id == 0:
        return f"{head} · {run.status}"
    train = "—" if latest.train_loss is None else f"{latest.train_loss:.5f}"
    if latest.val_loss is None:
        return f"{head} · train loss {train} @ {latest.inputs or 0:,} inputs · val loss —"
    # Where the validation loss was measured: the newest train point is later (it read
    # "val loss 0.11305 @ 81,888 inputs" for a pass made at 60,000).
    val = f"{latest.val_loss:.5f} @ {latest.val_inputs or 0:,} inputs"
    return f"{head} · train loss {train} · val loss {val}"
