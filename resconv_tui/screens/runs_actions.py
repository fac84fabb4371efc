"""The runs screen's key actions: queue changes, screens to open, workers.

Every database write runs in a thread worker (``_write``) and posts
``ActionFinished``; the handler notifies and polls at once, so the table shows the
change without waiting for the next tick. Actions apply to the marked runs on
screen when any are, else to the highlighted run: a run the filter hides is never
cancelled or removed unseen. Marked runs a key cannot act on (a succeeded run to cancel,
retry, move or run next) are named in a warning and left as they are; the others are
changed, all or none. Cancel, retry, run next and remove clear the marks
(escape clears them too); priority keeps them, to press +/- again. Remove asks
first unless it removes one queued run: marked runs or a finished run go with their
metrics and results.
"""

from __future__ import annotations

import importlib
import signal
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from typing import TYPE_CHECKING, Any

from textual import work
from textual.app import SystemCommand
from textual.message import Message

from core.errors import ResconvError, terminal_safe
from core.queue import RunFilter, RunRow, RunStatus, WorkerRow
from core.queue.errors import InvalidTransition
from core.queue.failures import RETRY_ADVICE, FailureCause, run_cause
from core.queue.status import CANCELLABLE, FINISHING, FINISHING_ALL, RETRYABLE, status_verb
from core.queue.views import (
    back_to_queue_said,
    cancelling_said,
    final_pass_said,
    ids_listed,
    ids_of,
)
from resconv_tui.checkpoint_folders import folders_left, found_here, run_checkpoint_folders
from resconv_tui.lost_workers import gone_worker_ids
from resconv_tui.notice_text import notice_width, path_lines, slash_lines
from resconv_tui.polling import live_workers_of, read_held_runs
from resconv_tui.screens.confirm import ConfirmScreen
from resconv_tui.widgets.run_table import RunTable
from resconv_tui.worker_launcher import (
    Launched,
    WorkerNotStarted,
    WorkerOptions,
    last_log_line,
)

if TYPE_CHECKING:
    from resconv_tui.context import DashboardContext
    from resconv_tui.polling import Dashboard


class RunActions:
    """Mixed into ``RunsScreen`` (a ``Screen``); kept apart to keep both files short."""

    if TYPE_CHECKING:
        ctx: DashboardContext
        dashboard: Dashboard | None
        marked: frozenset[int]
        app: Any

        def highlighted_run(self) -> RunRow | None: ...

        query_one: Any  # Screen's

        def visible_runs(self) -> list[RunRow]: ...
        def refresh_now(self) -> None: ...
        def post_message(self, message: Message) -> bool: ...
        def notify(self, message: str, *, severity: Any = ..., **kwargs: Any) -> None: ...

    class ActionFinished(Message):
        """A queue change finished (or failed); ``text`` is what to tell the person."""

        def __init__(
            self, text: str, severity: str = "information", marks: frozenset[int] = frozenset()
        ) -> None:
            super().__init__()
            self.text = text
            self.severity = severity
            self.marks = marks  # marks taken off for a write that changed nothing: back

    _remove_when_stopped: frozenset[int] = frozenset()
    # A stop of the workers under way: its runs being read (in a thread), or its question
    # standing. A second `w` meanwhile is the same press: it read and asked (or signalled)
    # twice, and two yeses sent two SIGTERMs, the second "exit at once".
    _stop_under_way: bool = False

    # ----- which runs ------------------------------------------------------------------

    def targets(self) -> list[RunRow]:
        """The marked runs on screen, else the highlighted run. None while every mark is
        hidden by the filters: the person meant the marked runs, not the highlighted one."""
        if marked := [run for run in self.visible_runs() if run.id in self.marked]:
            return marked
        if self.marked:
            count = len(self.marked)
            hidden = f"{count} marked run{'s are' if count > 1 else ' is'} hidden by the filters"
            self.notify(f"{hidden}: nothing done (escape clears the marks)", severity="warning")
            return []
        run = self.highlighted_run()
        return [run] if run is not None else []

    def _ids(self, runs: list[RunRow]) -> list[int]:
        return [run.id for run in runs]

    # ----- writes ----------------------------------------------------------------------

    def _write(self, verb: Callable[[], str], done_with: Iterable[int] = ()) -> None:
        """Run ``verb`` in a thread; the runs ``done_with`` are unmarked as it starts (the
        next key acts on the highlighted run again), and marked again if it is refused
        (a whole batch refused changes nothing: `r` on a succeeded and a cancelled run
        had dropped both marks, to be made again)."""
        taken = self.marked & frozenset(done_with)
        self.marked = self.marked - taken
        self._write_in_thread(verb, taken)

    @work(thread=True, group="action")
    def _write_in_thread(self, verb: Callable[[], str], taken: frozenset[int]) -> None:
        try:
            message = self.ActionFinished(verb())
        except ResconvError as exc:
            message = self.ActionFinished(f"{exc.title}: {_refusal(exc)}", "error", taken)
        self.post_message(message)

    def on_run_actions_action_finished(self, message: ActionFinished) -> None:
        if message.text:  # empty: the verb's news comes from another (a cancel's)
            self.notify(message.text, severity=message.severity)  # type: ignore[arg-type]
        if message.marks:
            self.marked = self.marked | message.marks
        self.refresh_now()

    def _confirm_running(
        self, runs: list[RunRow], what: str, then: Callable[[], None], left: str = ""
    ) -> None:
        """Ask before ``what`` stops training runs among ``runs``; ``left``: why it leaves
        other marked runs alone, said first in the question, else as a warning."""
        # A run whose worker went silent trains no more ("running?"): no training to lose,
        # and it is cancelled at once (it asked "Run 18 is training. Cancel it?"). Silent
        # as the runs table shows it: its beat seen unchanged (``Dashboard.silent``), not
        # its age by this box's clock, which a box whose clock is behind makes old.
        silent = self.dashboard.silent if self.dashboard is not None else {}
        running = [
            run.id for run in runs if run.status == RunStatus.RUNNING and run.id not in silent
        ]
        if not running:
            if left:
                self.notify(left, severity="warning")
            then()
            return
        # A run past its last step is in its final pass: "is training" asked to stop what
        # the answer then said would likely succeed anyway.
        finishing = [run.id for run in runs if run.id in running and run.trained_all]
        training = [i for i in running if i not in finishing]
        said = []
        if training:
            are = "is" if len(training) == 1 else "are"
            said.append(f"{_some('Run', training)} {are} training.")
        if finishing:
            finishes = FINISHING if len(finishing) == 1 else FINISHING_ALL
            said.append(f"{_some('Run', finishing)}: {finishes}.")
        # The question is of every run the key acts on: "Cancel it?" of one training run
        # cancelled the two queued runs marked beside it too, unasked. Runs left alone
        # named first: "Cancel them?" would read as all of them.
        if len(runs) > len(running) or left:
            acted_on = _some("run", [run.id for run in runs])
        else:
            acted_on = "it" if len(running) == 1 else "them"
        question = f"{' '.join(said)} {what} {acted_on}?"
        if left:
            question = f"{left[:1].upper()}{left[1:]}. {question}"
        self.app.push_screen(ConfirmScreen(question), lambda yes: then() if yes else None)

    def action_cancel(self) -> None:
        """Cancel the queued and running runs of those marked; the others (a succeeded
        run marked for compare) are named and left as they are, as ``t`` and ``+`` do. A
        yes named them too, then failed whole: nothing was cancelled."""
        runs = self.targets()
        cancellable = [run for run in runs if run.status in CANCELLABLE]
        others = [run for run in runs if run.status not in CANCELLABLE]
        left = _cannot_cancel(others) if others else ""
        if others and not cancellable:  # marks kept: nothing was done with them
            self.notify(f"{left}; nothing changed", severity="warning")
        elif cancellable:
            ids = self._ids(cancellable)

            def cancel() -> None:
                # Every mark goes: the runs left alone were said, as t drops its others'.
                self._cancel(ids, unmark=self._ids(runs))

            self._confirm_running(cancellable, "Cancel", cancel, left)

    def _cancel(self, ids: list[int], unmark: Iterable[int] | None = None) -> None:
        """Cancel ``ids``, all or none (but a run that ended or was deleted while the cancel
        watched a beat: said and left as it is); ``unmark``: the marks to take off (``ids``')."""
        from core.queue.views import ended_said

        def say_watching(said: str) -> None:
            # Said now: the wait is seconds long, and c looked as if it had done nothing.
            self.app.call_from_thread(self.notify, said)

        def verb() -> str:
            # As the CLI's cancel words it: "asked the worker to stop: run 6" read as
            # stopping the worker, and said nothing of a run past its last step.
            # A run of a worker of this machine whose process is gone is cancelled at once,
            # as the CLI's cancel does: nobody is left to stop it, and its beat, old by
            # this clock, was watched 7 s first (``Repo.request_cancel``).
            result = self.ctx.repo.request_cancel(
                ids, dead_worker_ids=self._gone_workers(), confirming=say_watching
            )
            asked = [i for i, s in result.items() if s == RunStatus.RUNNING]
            done = [i for i, s in result.items() if s == RunStatus.CANCELLED]
            # Ended, or deleted (None), while the cancel watched a silent-looking beat
            # (SILENCE_CONFIRM_S).
            ended = {i: s for i, s in result.items() if i not in asked and i not in done}
            finishing = {
                run.id
                for run in self.ctx.repo.list_runs(RunFilter(ids=tuple(asked)))
                if run.trained_all
            } if asked else set()  # fmt: skip
            stopping = [i for i in asked if i not in finishing]
            said = [_say(("cancelled", done))] if done else []
            if stopping:
                them = "its worker stops it" if len(stopping) == 1 else "their workers stop them"
                said.append(f"cancel requested: {_some('run', stopping)} "
                            f"({them} within a few seconds)")  # fmt: skip
            if finishing:
                gone = [i for i in asked if i in finishing]
                finishes = FINISHING if len(gone) == 1 else FINISHING_ALL
                said.append(f"{_some('run', gone)}: cancel requested, but {finishes}")
            if ended:  # as stop says it
                said.extend(f"{phrase}: not cancelled" for phrase in ended_said(ended))
            return "; ".join(said) or "nothing to do"

        self._write(verb, ids if unmark is None else unmark)

    def _gone_workers(self) -> list[str]:
        """The ids of this machine's workers whose process is gone (``gone_worker_ids``),
        read afresh: in the action's thread, as its write."""
        ctx = self.ctx
        workers = ctx.repo.workers_and_damaged()[0]  # a damaged row is named by the poll
        return gone_worker_ids(workers, ctx.hostname, ctx.launcher.worker_alive, ctx.clock())

    def action_retry(self) -> None:
        self._retry(self.targets())

    def retry_failed(self, cause: FailureCause) -> None:
        """Retry every failed run that failed with ``cause`` (a palette command)."""
        runs = self.dashboard.runs if self.dashboard else ()
        self._retry([run for run in runs if run_cause(run) == cause])

    def _retry(self, runs: list[RunRow]) -> None:
        """Queue the failed and cancelled ``runs`` again; asks first for runs that
        diverged (they would again). The others are named and left as they are, as c, t
        and + do: a succeeded run marked beside them failed the whole retry."""
        retryable = [run for run in runs if run.status in RETRYABLE]
        if others := [run for run in runs if run.status not in RETRYABLE]:
            said = f"{_statuses_of(others)}: only failed or cancelled runs can be retried"
            if not retryable:  # marks kept: nothing was done with them
                self.notify(f"{said}; nothing changed", severity="warning")
                return
            self.notify(said, severity="warning")
        ids = self._ids(retryable)
        if not ids:
            return

        def verb() -> str:
            self.ctx.repo.retry(ids)
            return _say(("queued again", ids))

        unmark = self._ids(runs)  # every mark: the runs left alone were said
        diverged = [r.id for r in retryable if run_cause(r) == FailureCause.DIVERGED]
        if not diverged:
            self._write(verb, unmark)
            return
        advice = RETRY_ADVICE[FailureCause.DIVERGED]
        question = f"Run {_cut(diverged)} failed with {FailureCause.DIVERGED}: {advice}. Retry?"
        self.app.push_screen(
            ConfirmScreen(question, "Retry"),
            lambda yes: self._write(verb, unmark) if yes else None,
        )

    def action_priority(self, step: int) -> None:
        """Runs that may yet train: a queued one, or a failed or cancelled one (its retry
        keeps the priority); a succeeded run trains no more, so it is left as it is."""
        runs = self.targets()
        done = [run.id for run in runs if run.status == RunStatus.SUCCEEDED]
        if done:
            said = f"{_some('run', done)} succeeded and will not train again"
            left = (
                "its priority is left as it is"
                if len(done) == 1
                else "their priorities are left as they are"
            )
            self.notify(f"{said}: {left}", severity="warning")
        runs = [run for run in runs if run.status != RunStatus.SUCCEEDED]

        def verb() -> str:
            self.ctx.repo.change_priority(self._ids(runs), step)
            change = f"priority {'raised' if step > 0 else 'lowered'} by {abs(step)}"
            return _say((change, self._ids(runs)))

        if runs:
            self._write(verb)

    def action_run_next(self) -> None:
        """Queued runs only: a finished or failed run is not waiting for a worker."""
        runs = self.targets()
        others = [run for run in runs if run.status != RunStatus.QUEUED]
        if others:
            said = _statuses_of(others)  # a few ids of each status, as c and r say them
            retry = any(run.status in (RunStatus.FAILED, RunStatus.CANCELLED) for run in others)
            self.notify(f"{said}: only queued runs wait for a worker"
                        + (" (r queues a failed or cancelled run again)" if retry else ""),
                        severity="warning")  # fmt: skip
        if ids := [run.id for run in runs if run.status == RunStatus.QUEUED]:

            def verb() -> str:
                return _say((_next_priorities(self.ctx.repo.move_to_front(ids)), ids))

            self._write(verb, self._ids(runs))

    def action_remove(self) -> None:
        """One queued run goes at once; anything more (ten runs marked for compare, a
        finished run with its results) is named in one question first, a training run
        included (it is cancelled, then removed once its worker stops)."""
        runs = self.targets()
        if not runs:
            return
        if len(runs) == 1 and runs[0].status == RunStatus.QUEUED:
            self._remove(runs, unasked=True)
            return
        ask = ConfirmScreen(_remove_question(runs, self.ctx.db_url), "Remove")
        self.app.push_screen(ask, lambda yes: self._remove(runs) if yes else None)

    def _remove(self, runs: list[RunRow], unasked: bool = False) -> None:
        self._write(self._removal(self._ids(runs), cancel=True, unasked=unasked), self._ids(runs))

    def _removal(self, ids: list[int], cancel: bool, unasked: bool = False) -> Callable[[], str]:
        """The verb that removes ``ids`` as they are when it runs, read there, not when x
        was pressed nor at the last poll (a poll in flight may predate a claim): a run a
        worker claimed since is left to its worker, to be removed once it stops
        (``cancel``: asked to stop first), and one removed elsewhere is said. Either had
        failed the whole batch ("...; nothing changed"). ``unasked``: removed with no
        question (one queued run), which said what stays on disk: said after."""

        def verb() -> str:
            now = {run.id: run for run in self.ctx.repo.list_runs(RunFilter(ids=tuple(ids)))}
            gone = [i for i in ids if i not in now]
            running = [i for i in ids if i in now and now[i].status == RunStatus.RUNNING]
            idle = [i for i in ids if i in now and i not in running]
            if running:  # removed by after_refresh once their workers stop
                self.app.call_from_thread(self._remove_once_stopped, running, cancel)
            removed = idle if idle and self.ctx.repo.remove(idle) else []
            said = _say(("removed", removed), ("already removed", gone))
            # As `rm` says it: a queued run removed at once that trained before (put
            # back, retried) left its folder too, and nothing said so.
            left = self._folders_left([now[i] for i in removed]) if unasked else []
            return "\n".join([said, *left]) if removed or gone else ""

        return verb

    def _folders_left(self, removed: list[RunRow]) -> list[str]:
        """What ``rm`` says of the removed runs' checkpoint folders, each folder on lines
        of its own broken only after a '/': a notice wraps a long word anywhere, and at 80
        columns it broke a folder's name in two (not to be copied whole)."""
        width = notice_width(self.app.size.width)
        lines = []
        for what, folders in folders_left(removed, self.ctx.db_url):
            shown = [slash_lines(terminal_safe(folder), width) for folder in folders]
            lines.append("\n".join([terminal_safe(what) + (":" if shown else ""), *shown]))
        return lines

    def _remove_once_stopped(self, running: list[int], cancel: bool) -> None:
        self._remove_when_stopped = self._remove_when_stopped | set(running)
        if cancel:
            self._cancel(running)

    def after_refresh(self) -> None:
        """Finish removals that waited for a running run to stop."""
        if not self._remove_when_stopped or self.dashboard is None:
            return
        status = {run.id: run.status for run in self.dashboard.runs}
        waiting = {i for i in self._remove_when_stopped if i in status}
        ready = [i for i in sorted(waiting) if status[i] != RunStatus.RUNNING]
        self._remove_when_stopped = frozenset(waiting - set(ready))
        if ready:  # as this poll read them: the removal reads them again
            self._write(self._removal(ready, cancel=False))

    def action_mark(self) -> None:
        """Mark or unmark the highlighted run, then go to the next (space, space, ...)."""
        run = self.highlighted_run()
        if run is not None:
            self.marked = self.marked ^ {run.id}
            self.query_one(RunTable).action_cursor_down()

    # ----- other screens ---------------------------------------------------------------

    def action_details(self) -> None:
        run = self.highlighted_run()
        if run is not None and (screen := self._screen("run_detail", "RunDetailScreen")):
            # The runs not running as this screen last read them: the detail's forecast
            # re-reads them only if they changed since.
            settled = self.dashboard.settled if self.dashboard is not None else None
            self.app.push_screen(
                screen(
                    self.ctx.db_url,
                    run.id,
                    settled=settled,
                    heard=self.ctx.heard,
                    db_hint=self.ctx.db_hint,
                )
            )

    def action_new_sweep(self) -> None:
        if screen := self._screen("new_sweep", "NewSweepScreen"):
            self.app.push_screen(screen(self.ctx.db_url), self._back)

    def action_duplicate(self) -> None:
        run = self.highlighted_run()
        if run is not None and (screen := self._screen("new_sweep", "NewSweepScreen")):
            self.app.push_screen(screen(self.ctx.db_url, base_run=run), self._back)

    def action_compare(self) -> None:
        if not self.marked:
            self.notify("mark runs with space first, then press C", severity="warning")
            return
        ids = sorted(run.id for run in self.targets() if run.id in self.marked)  # on screen
        if len(ids) == 1:  # as `resconv-tui compare`: one run's curves are its detail's
            hidden = len(self.marked) - 1
            also = f" on screen ({hidden} more marked, hidden by the filters)" if hidden else ""
            self.notify(
                f"compare needs two runs or more{also}: mark another with space "
                f"(enter on run {ids[0]} shows it alone)",
                severity="warning",
            )
            return
        if ids and (screen := self._screen("compare", "CompareScreen")):
            self.app.push_screen(screen(self.ctx.db_url, ids))

    def _back(self, _result: object = None) -> None:
        self.refresh_now()

    def _screen(self, module: str, name: str) -> Any:
        """A screen imported on first use; None, with a notice, if it cannot be loaded."""
        try:
            return getattr(importlib.import_module(f"resconv_tui.screens.{module}"), name)
        except (ImportError, AttributeError) as exc:
            self.notify(f"{name} is not available: {exc}", severity="error")
            return None

    def action_results(self) -> None:
        from resconv_tui.screens.results import ResultsScreen

        self.app.push_screen(ResultsScreen(self.ctx))

    # ----- workers ---------------------------------------------------------------------

    def local_workers(self) -> list[WorkerRow]:
        """Live workers on this machine, newest first (the ones ``w`` can signal)."""
        if self.dashboard is None:
            return []
        dash = self.dashboard
        return live_workers_of(self.ctx.hostname, dash.workers, dash.now)

    def action_toggle_worker(self) -> None:
        local = self.local_workers()
        live = {w.pid for w in local}
        self.ctx.stopping_pids &= live  # forget the ones gone (their pids may come back)
        if self._stop_under_way:  # pressed again before its question came: one stop
            return
        # Asked already: by this dashboard (its rows say so within a heartbeat), or by
        # anyone (the worker's row says "stopping").
        asked = self.ctx.stopping_pids | {w.pid for w in local if w.state == "stopping"}
        not_asked = [w for w in local if w.pid not in asked]
        if not_asked:
            self.stop_workers(not_asked)
        elif local:
            self.stop_at_once(sorted(live))
        else:
            self.start_worker()

    def stop_at_once(self, pids: list[int]) -> None:
        """Workers still finishing after a stop: a confirmed second SIGTERM (exit now)."""
        pids = [pid for pid in pids if self.ctx.launcher.alive(pid)]
        if not pids:  # gone since the last poll: the next one shows it
            self.notify("the workers asked to stop have stopped")
            self.refresh_now()
            return

        def again() -> None:
            # The question may have stood while they finished their step and left.
            still = [pid for pid in pids if self.ctx.launcher.alive(pid)]
            if not still:
                self.notify(f"worker {ids_of('pid', pids)} had stopped already")
                self.refresh_now()
                return
            for pid in still:
                self.ctx.launcher.stop(pid)
            self.notify(f"worker {ids_of('pid', still)}: exiting now, runs back in the queue")

        many = len(pids) > 1
        question = (
            f"Worker {ids_of('pid', pids)} {'were' if many else 'was'} asked to stop and "
            f"{'are' if many else 'is'} finishing the current step. Stop at once? "
            "Runs go back to the queue."
        )
        self.app.push_screen(ConfirmScreen(question, "Stop now"),
                             lambda yes: again() if yes else None)  # fmt: skip

    def start_worker(self) -> None:
        """Ask how the worker should train (prefilled with the last choice), then start it."""
        from resconv_tui.screens.start_worker import StartWorkerScreen

        def chosen(options: WorkerOptions | None) -> None:
            if options is not None:
                self.launch_worker(options)

        self.app.push_screen(StartWorkerScreen(self.ctx.worker_options), chosen)

    def launch_worker(self, options: WorkerOptions) -> None:
        previous = self.ctx.worker_options
        self.remember(options)
        try:
            launched = self.ctx.launcher.start(self.ctx.worker_db_url, options)
        except WorkerNotStarted as exc:  # the choice was not at fault: kept
            self.notify(f"{exc.title}: {exc}", severity="error", timeout=15)
            return
        self.ctx.starting = (launched.pid, self.ctx.clock())
        command = " ".join(options.argv())
        # The log's path on lines of its own, broken only after a '/': a notice wraps a
        # long word anywhere, and at 80 columns it broke the log's name in two.
        log = path_lines(launched.log_path, notice_width(self.app.size.width))
        self.notify(f"worker started (pid {launched.pid}, {command}); log:\n{log}")
        self.watch_launched(launched, self.ctx.launch_watch_s, previous)
        self.refresh_now()

    def remember(self, options: WorkerOptions) -> None:
        """What the next ``w`` offers, in this session and (with a preferences file) later."""
        self.ctx.worker_options = options
        if self.ctx.preferences is not None:
            from resconv_tui.preferences import save_worker_options

            if problem := save_worker_options(self.ctx.preferences, options):
                self.notify(problem, severity="warning")

    def watch_launched(self, launched: Launched, left_s: float, previous: WorkerOptions) -> None:
        """A worker that exits at once (a device it cannot use, a bad database) says why,
        and the dialog goes back to offering the ``previous`` choice."""
        if self.ctx.last_stop_at >= launched.started_at:
            return  # stopped from here since (it, or the slots it started): no failure
        if not self.ctx.launcher.alive(launched.pid):
            code = self.ctx.launcher.exit_code(launched.pid)
            if code is not None and code < 0:
                # Killed (kill -9, the OOM killer): its log's last line is only what it
                # was doing ("run 17: started"), and the choice was not at fault.
                killed = f"worker pid {launched.pid} was killed ({signal_name(-code)})"
                self.notify(
                    f"{killed}; {self._log_named(launched)}", severity="warning", timeout=15
                )
                return
            reason = last_log_line(launched.log_path) or "no output"
            if code == 0:
                # Stopped cleanly: `resconv-tui stop` from a shell, or --until-empty with
                # nothing queued. The choice worked: keep offering it.
                self.notify(f"worker pid {launched.pid} stopped: {reason}", timeout=10)
                return
            self.notify(f"worker pid {launched.pid} exited: {reason}; {self._log_named(launched)}",
                        severity="error", timeout=15)  # fmt: skip
            self.remember(previous)
        elif left_s > 0:
            poll = self.ctx.launch_poll_s
            self.app.set_timer(poll, lambda: self.watch_launched(launched, left_s - poll, previous))

    def _log_named(self, launched: Launched) -> str:
        """``log:`` and the worker's log path on lines broken only after a '/', as the
        start notice names it: wrapped anywhere, its name broke at ``.lo`` / ``g``."""
        return f"log:\n{path_lines(launched.log_path, notice_width(self.app.size.width))}"

    def stop_workers(self, workers: list[WorkerRow], named: list[int] | None = None) -> None:
        """SIGTERM every live worker process here: all slots of a ``--slots K`` worker.

        Slot processes each have a row (and thread slots share one pid), so the pids
        are collected; asks first when a run would be interrupted. Their runs are read
        afresh (in a thread), not taken from the last poll: pressed right after a
        ``cancel`` in another shell, the question named the run the worker had ended.
        ``named``: the runs a question named, read again at its yes.
        """
        self._stop_under_way = True  # until signalled, or the question is answered no
        self._read_held_then_stop(workers, named)

    @work(thread=True, group="action")
    def _read_held_then_stop(self, workers: list[WorkerRow], named: list[int] | None) -> None:
        try:
            held = read_held_runs(self.ctx.repo, {w.id for w in workers})
        except ResconvError as exc:  # locked, unreachable, a damaged row: said, not guessed
            self.app.call_from_thread(self._stop_unread, workers, str(exc), named)
            return
        runs = {run.id: run for run in held}
        self.app.call_from_thread(self._ask_then_stop, workers, runs, named)

    def _ask_then_stop(
        self, workers: list[WorkerRow], runs: dict[int, RunRow], named: list[int] | None
    ) -> None:
        """Stop ``workers`` training ``runs`` (as read just now), asking first if any would
        lose progress; at the yes (``named`` given), only a run not named asks again."""
        training = sorted(runs)
        if named is not None:
            # The question may have stood while a run ended and its slot claimed the next:
            # that run's progress would be lost unasked. Ask again, naming it.
            unasked = [i for i in training if i not in named and not runs[i].trained_all]
            if not unasked:
                self._signal_workers(workers)
                return
        elif not training:
            self._signal_workers(workers)
            return
        question = (
            f"{_workers_are(workers)} training {ids_of('run', training)}"
            f"{_progress_of(runs)}. Stop? {_what_a_stop_does(runs)}"
        )
        self.app.push_screen(
            ConfirmScreen(question, "Stop"),
            lambda yes: self.stop_workers(workers, training) if yes else self._stop_dropped(),
        )

    def _stop_unread(self, workers: list[WorkerRow], why: str, named: list[int] | None) -> None:
        """Their runs could not be read: a yes given already stands (asking again would
        only fail again); else the question says what is not known, not the last poll's."""
        if named is not None:
            self._signal_workers(workers)
            return
        question = (
            f"{_workers_are(workers)} training runs that could not be read now ({why}). "
            "Stop? Runs they train go back to the queue, and train again from the start."
        )
        self.app.push_screen(
            ConfirmScreen(question, "Stop"),
            lambda yes: self._signal_workers(workers) if yes else self._stop_dropped(),
        )

    def _stop_dropped(self) -> None:
        """A stop question answered no: ``w`` asks afresh."""
        self._stop_under_way = False

    def _signal_workers(self, workers: list[WorkerRow]) -> None:
        self._stop_under_way = False
        pids = sorted({w.pid for w in workers})
        gone = [pid for pid in pids if not self.ctx.launcher.stop(pid)]
        asked = [pid for pid in pids if pid not in gone]
        self.ctx.stopping_pids.update(asked)
        self.ctx.last_stop_at = time.time()
        said = [f"asked worker {ids_of('pid', asked)} to stop"] if asked else []
        said += [f"no process {ids_listed(gone)}"] if gone else []
        self.notify("; ".join(said), severity="warning" if gone else "information")

    # ----- command palette -------------------------------------------------------------

    def palette_commands(self) -> Iterator[SystemCommand]:
        for title, help_text, action, *args in PALETTE:
            yield SystemCommand(title, help_text, _bind(self, action, *args))
        for status in (None, *RunStatus):
            name = status or "any status"
            yield SystemCommand(f"Filter: {name}", "Show only runs with this status",
                                _bind(self, "set_status_filter", status))  # fmt: skip
        for cause, count in self.dashboard.failures.items() if self.dashboard else ():
            yield SystemCommand(f"Retry failed runs: {cause} ({count})", RETRY_ADVICE[cause],
                                _bind(self, "retry_failed", cause))  # fmt: skip
        for exp in self.dashboard.experiments if self.dashboard else ():
            # Named terminal-safe; the filter it sets holds the stored name, which the
            # runs' own experiment is matched against.
            yield SystemCommand(f"Filter experiment: {terminal_safe(exp)}",
                                "Show only this experiment",
                                _bind(self, "set_experiment_filter", exp))  # fmt: skip


def _workers_are(workers: list[WorkerRow]) -> str:
    """The subject of a stop question: one worker process, or all of them here."""
    pids = sorted({w.pid for w in workers})
    if len(pids) == 1:
        return f"Worker pid {pids[0]} is"
    return f"The {len(pids)} worker processes here ({ids_of('pid', pids)}) are"


def _progress_of(runs: dict[int, RunRow]) -> str:
    """`` (46%, 12% done)``: how far the runs have come (what a stop loses), by id."""
    return f" ({', '.join(f'{runs[i].progress:.0%}' for i in sorted(runs))} done)"


def _what_a_stop_does(runs: dict[int, RunRow]) -> str:
    """Runs go back to the queue and train anew, but one that has trained all its
    inputs: its final pass is let finish (minutes on a CPU), and it likely succeeds."""
    finishing = [i for i in sorted(runs) if runs[i].trained_all]
    # A cancel asked for and not read yet (a stalled worker): the stop ends it cancelled.
    cancelling = [i for i in sorted(runs) if runs[i].cancel_requested and i not in finishing]
    if not finishing and not cancelling:
        return (
            "Runs go back to the queue, and train again from the start: their progress "
            "so far is lost."
        )
    said = []
    if back := [i for i in sorted(runs) if i not in finishing and i not in cancelling]:
        again = "trains" if len(back) == 1 else "train"
        said.append(f"{back_to_queue_said(back)} and {again} again from the start.")
    if cancelling:
        said.append(f"{cancelling_said(cancelling)}.")
    if finishing:
        succeed = "succeeds" if len(finishing) == 1 else "succeed"
        said.append(f"{final_pass_said(finishing)}, and most likely {succeed}.")
    return " ".join(sentence[:1].upper() + sentence[1:] for sentence in said)


PALETTE: tuple[tuple[Any, ...], ...] = (  # title, help, method, its arguments
    ("Run details", "Open the highlighted run (enter)", "action_details"),
    ("New sweep", "Queue runs with the sweep form (n)", "action_new_sweep"),
    ("Duplicate run", "Edit the highlighted run's config as a new sweep (d)", "action_duplicate"),
    ("Cancel run", "Cancel the marked or highlighted runs (c)", "action_cancel"),
    ("Retry run", "Queue failed or cancelled runs again (r)", "action_retry"),
    ("Priority up", "Raise the priority (+)", "action_priority", 1),
    ("Priority down", "Lower the priority (-)", "action_priority", -1),
    ("Run next", "Move to the front of the queue (t)", "action_run_next"),
    ("Remove run", "Delete runs and their metrics (x)", "action_remove"),
    ("Mark run", "Mark or unmark the highlighted run (space)", "action_mark"),
    ("Clear marks", "Unmark every run (escape)", "action_clear_marks"),
    ("Compare marked runs", "Overlay the marked runs' loss curves (C)", "action_compare"),
    ("Start or stop worker", "Start a worker here (device, slots, stack, order), or stop "
     "this machine's workers (w)",
     "action_toggle_worker"),
    ("Results", "The results table of finished runs (R)", "action_results"),
    ("Filter runs by text", "Type to filter (/)", "action_search"),
    ("Clear filters", "Show every run (escape)", "action_clear_filters"),
    ("Queue order", "Rows in the order runs train, or by id again (o)", "action_toggle_order"),
)  # fmt: skip


def _bind(target: Any, method: str, *args: Any) -> Callable[[], Any]:
    return lambda: getattr(target, method)(*args)


FEW = 5  # ids a question or notice names before "and N more"


def _cut(numbers: list[int]) -> str:
    """``4, 7, 8``; past ``FEW + 1``: ``4, 7, 8, 9, 10 and 295 more``. A cancel of 300
    marked runs named all 300 in its question, and the dialog grew past the screen's
    foot with its buttons."""
    return ids_listed(numbers, FEW)


def _some(noun: str, numbers: list[int]) -> str:
    """``ids_of`` cut to a few: ``runs 4, 7, 8, 9, 10 and 295 more``."""
    return ids_of(noun, numbers, FEW)


def _remove_question(runs: list[RunRow], db_url: str) -> str:
    """What ``x`` would delete: how many runs of which status, and which are training."""
    if len(runs) == 1:
        what = f"run {runs[0].id} ({runs[0].status}) and its"
    else:
        counts = Counter(run.status for run in runs)
        statuses = ", ".join(f"{counts[status]} {status}" for status in RunStatus if counts[status])
        what = f"{len(runs)} runs ({statuses}) and their"
    question = f"Remove {what} metrics and results? This cannot be undone."
    # Weights are the one thing not deleted: they may be on another box (PostgreSQL), and
    # a failed or cancelled run may have a folder it did not record. Say so rather than
    # let it be assumed: every run that started counts, its folders as found on disk. As
    # `rm` counts them: a run queued again (put back, retried) has trained before.
    started = [run for run in runs if run.started_at is not None or run.attempts > 0]
    if len(started) == 1:
        question += " " + _one_runs_folders(started[0], db_url)
    elif started:
        question += f" The checkpoint folders of the {len(started)} that started stay on disk."
    if running := [run.id for run in runs if run.status == RunStatus.RUNNING]:
        training = f"{_some('Run', running)} {'are' if len(running) > 1 else 'is'} training"
        question = f"{training}: cancelled first, removed once stopped. {question}"
    return question


def _one_runs_folders(run: RunRow, db_url: str) -> str:
    """What the remove question says of one run's checkpoint folders, as looked for on
    disk (``rm``'s rule): the row's folder may be another box's or deleted since, and a
    run lost with its worker names none, though its folder is here."""
    folders = run_checkpoint_folders(run, db_url)  # a few stat calls, for one run
    here = [folder for folder in folders if found_here(folder, run)]
    elsewhere = [folder for folder in folders if not found_here(folder, run)]
    said = []
    if here:
        many = len(here) > 1
        said.append(f"The checkpoint folder{'s' * many} {', '.join(here)} "
                    f"{'stay' if many else 'stays'} on disk.")  # fmt: skip
    if elsewhere:
        many = len(elsewhere) > 1
        said.append(f"The checkpoint folder{'s' * many} {', '.join(elsewhere)} "
                    f"{'are' if many else 'is'} not found on this host.")  # fmt: skip
    return " ".join(said) or f"Run {run.id}'s checkpoint folder, if made, stays on disk."


def _cannot_cancel(runs: list[RunRow]) -> str:
    """``run 1 has succeeded, runs 5, 6 are cancelled: only queued or running runs can be
    cancelled``: the runs ``c`` leaves alone."""
    return f"{_statuses_of(runs)}: only queued or running runs can be cancelled"


def _refusal(exc: ResconvError) -> str:
    """A write's refusal as a notice: a batch refused for runs changed since the last
    poll says a few ids of each status, as the other notices do, where the queue's
    message (the CLI's) names each run: "run 9 is cancelled, run 10 is cancelled, ..."."""
    if isinstance(exc, InvalidTransition) and exc.wrong:
        return f"{_statuses_said(exc.wrong)}: {exc.why}; nothing changed"
    return str(exc)


def _statuses_of(runs: list[RunRow]) -> str:
    """``run 1 has succeeded, runs 5, 6 are cancelled``: by status, a few ids of each."""
    return _statuses_said([(run.id, run.status) for run in runs])


def _statuses_said(runs: Iterable[tuple[int, RunStatus]]) -> str:
    """``_statuses_of`` of (id, status) pairs."""
    by_status: dict[RunStatus, list[int]] = {}
    for run_id, status in runs:
        by_status.setdefault(status, []).append(run_id)
    said = []
    for status, ids in by_status.items():
        said.append(f"{_some('run', ids)} {status_verb(status, len(ids) > 1)} {status}")
    return ", ".join(said)


def _next_priorities(priorities: list[int]) -> str:
    """``next (priority 3)``, or ``next (priorities 3..1)`` for runs moved in table order."""
    if len(priorities) == 1:
        return f"next (priority {priorities[0]})"
    return f"next (priorities {priorities[0]}..{priorities[-1]})"


def _say(*parts: tuple[str, list[int]]) -> str:
    said = [f"{what}: {_some('run', ids)}" for what, ids in parts if ids]
    return "; ".join(said) or "nothing to do"


def signal_name(number: int) -> str:
    """``SIGKILL`` for 9; the number where no signal has it."""
    try:
        return signal.Signals(number).name
    except ValueError:
        return f"signal {number}"
