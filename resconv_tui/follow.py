"""``resconv-tui show ID --follow``: a run followed as it waits, trains and ends, line by
line (``tail -f`` for a run), then an exit status that says how it ended.

For a person over SSH without the dashboard and for scripts (``show 7 --follow &&
resconv-tui results``): what changed is printed as it comes: queued, claimed by a
worker, each validation pass, a retry elsewhere (its curve starts afresh), its end
with the figures or the error and the retry that fits. Progress (inputs, train loss,
in/s, ETA) is one line rewritten in place on a terminal, and a line every
``PIPE_PROGRESS_S`` in a pipe or a file. Exit status: 0 succeeded, 1 failed, cancelled
or removed; Ctrl-C stops following (the run trains on, or stays queued) with 130.

Reads only: a worker whose process here has exited is said once, not recorded lost
(the next worker or an open dashboard records it, and the run then ends failed).

A running run reads silent as on the dashboard (``polling.HeardBeats``): once its beat
has read the same for ``STALE_AFTER_S`` by this process's monotonic clock, as it reads
again and again; at once only where its age by this machine's clock is past
``SURELY_LOST_AFTER_S``. Each worker stamps its beats with its own box's clock, so by age
alone every live run of a box whose clock is 30 s or more behind read silent here.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

from core.errors import terminal_safe
from core.queue import QueueError, Repo, RunRow, RunStatus, UnknownRun
from core.queue.patience import LOCKED, RECONNECT_S, passing_reason
from core.queue.rows import TRAIN_LOSS, VAL_LOSS
from core.queue.status import FINISHED

if TYPE_CHECKING:
    from resconv_tui.polling import HeardBeats

POLL_S = 2.0  # between reads of the run and its new points
PIPE_PROGRESS_S = 30.0  # a progress line this often in a pipe (on a terminal: each poll)
NOT_FOLLOWED = 130  # Ctrl-C: as the shell says of a command interrupted


def _new_heard() -> HeardBeats:
    """A fresh memory of beats on time's monotonic clock, looked up now (tests replace the
    module's ``time``); imported here: ``show`` without ``--follow`` needs none."""
    from resconv_tui.polling import HeardBeats

    return HeardBeats(clock=time.monotonic)


@dataclass
class Follower:
    """What has been said of one run so far, and what to say after each read."""

    repo: Repo
    run_id: int
    db: str = ""  # the --db option, for the commands it suggests
    attempt: tuple[int, float | None] | None = None
    last_metric_id: int = 0
    said: set[str] = field(default_factory=set)  # notes said once per attempt
    queued_said: str = ""  # the queued note said last: said again only once it changes
    last_loss: float | None = None  # the newest train loss point of this attempt
    last_pass: tuple[int, float] | None = None  # (inputs, val loss) of its newest pass
    # Its beat as read and since when (``polling.HeardBeats``): silent once seen unchanged.
    heard: HeardBeats = field(default_factory=_new_heard)

    def saved(self) -> Follower:
        """A copy of what has been said so far (``restore`` undoes a read cut short)."""
        return replace(self, said=set(self.said))

    def restore(self, saved: Follower) -> None:
        self.__dict__.update(saved.__dict__)

    def read(self, now: float) -> tuple[RunRow | None, list[str]]:
        """The run as it is now (None once removed) and the lines that say what changed
        since the last read, in order."""
        try:
            run = self.repo.get_run(self.run_id)
        except UnknownRun:
            return None, [f"run {self.run_id} was removed from the database"]
        from resconv_tui.polling import attempt_of

        lines: list[str] = []
        attempt = attempt_of(run)
        if self.attempt is not None and self.attempt[1] is not None and attempt != self.attempt:
            # A stopped worker put back the attempt that had started: its points went with
            # it, and the next attempt's ids may start below the last seen.
            lines.append("put back in the queue: its curve starts afresh when it trains again")
            self.last_metric_id, self.last_loss, self.last_pass = 0, None, None
            self.said.clear()
            self.queued_said = ""
        self.attempt = attempt
        lines += self._status_notes(run, now)
        for row in self.repo.metrics_since(run.id, self.last_metric_id, [TRAIN_LOSS, VAL_LOSS]):
            self.last_metric_id = row.id
            if row.name == TRAIN_LOSS:
                self.last_loss = row.value
            else:
                lines += self._pass_line(row.inputs, row.value)
        return run, lines

    def _pass_line(self, inputs: int, loss: float) -> list[str]:
        """A validation pass's line. The final pass after a last epoch's pass at the same
        inputs (the logbook's trainer ran both) repeats its loss with fixed masks: said
        once; with seed-faithful masks it differs, and is said as the final pass."""
        before, self.last_pass = self.last_pass, (inputs, loss)
        if before is None or before[0] != inputs:
            return [f"validation pass at {inputs:,} inputs: val loss {loss:.6f}"]
        if before[1] == loss:
            return []
        return [f"final pass at {inputs:,} inputs: val loss {loss:.6f}"]

    def _status_notes(self, run: RunRow, now: float) -> list[str]:
        """Said once each: claimed, its worker gone quiet or gone; queued, and again each
        time a worker starts or the last one stops while it waits."""
        notes = []
        if run.status == RunStatus.QUEUED:
            notes.append(self._queued_change(now))
        elif run.status == RunStatus.RUNNING:
            notes.append(self._once("running", lambda: f"running on worker {run.worker_id}"))
            from resconv_tui.commands.ls import run_trouble
            from resconv_tui.polling import EXITED_NOTE

            stalled, exited = run_trouble(self.repo, run, now)
            if exited:
                notes.append(self._once("exited", lambda: f"{EXITED_NOTE}; still following"))
            elif stalled:
                notes.append(self._once("stalled", lambda: "stalled: no training step for minutes"))
        return [note for note in notes if note]

    def _once(self, key: str, note: Callable[[], str]) -> str:
        """``note()`` the first time ``key`` is asked for this attempt, then "" (made only
        then: a note may read the database)."""
        if key in self.said:
            return ""
        self.said.add(key)
        return note()

    def _queued_change(self, now: float) -> str:
        """The queued note where it differs from the one said last, else "": "no worker is
        running" left as the last line once a worker had started read as if one had still
        to be started, and a second worker on a CPU slows both."""
        note = self._queued_note(now)
        if note == self.queued_said:
            return ""
        self.queued_said = note
        return note

    def _queued_note(self, now: float) -> str:
        from resconv_tui.polling import unread_workers_said, worker_health

        workers, damaged = self.repo.workers_and_damaged()
        # Judged as the dashboard judges them (by their beats changing): a worker of a box
        # whose clock is 2 minutes behind read as "no worker is running" while it trained.
        watched = self.heard.watched(workers, now)
        live = [w for w in watched if worker_health(w, now) != "offline"]
        start = f"start one: resconv-tui worker{self.db}"
        if live:
            return "queued: waits for a worker"
        if damaged:  # said "no worker is running" of a row whose worker may be training
            said = unread_workers_said(damaged)
            rows = "it" if len(damaged) == 1 else "them"
            return f"queued; {said} (resconv-tui status names {rows}; if none is, {start})"
        return f"queued; no worker is running ({start})"

    def progress(self, run: RunRow, now: float) -> str:
        """``12,800 / 64,000 inputs (20%)  train loss 0.083112  2,950 in/s  ETA 1m12s``."""
        from resconv_tui.commands.ls import run_ends
        from resconv_tui.polling import (
            SILENT_NOTE,
            format_duration,
            run_rate,
            shown_eta,
            validating_said,
        )

        parts = [f"{run.inputs_done:,} / {run.total_inputs:,} inputs ({run.progress:.0%})"]
        if self.last_loss is not None:
            parts.append(f"train loss {self.last_loss:.6f}")
        if (rate := run_rate(run, now)) is not None:
            parts.append(f"{rate:,.0f} in/s")
        if (silent := self.heard.silent([run], now).get(run.id)) is not None:
            # As ls and the runs table: nothing trains that an ETA could count down (the
            # forecast leaves its worker out; its pace so far froze at the last beat).
            parts.append(f"silent {format_duration(silent)}: {SILENT_NOTE}")
            return "  ".join(parts)
        eta = shown_eta(run, now, run_ends(self.repo, [run], now, self.heard))
        if run.trained_all:  # as ls says it; its ETA once a finished run has told the pass's
            parts.append(validating_said(eta))
        elif eta is not None:
            parts.append(f"ETA {format_duration(eta)}")
        return "  ".join(parts)


def ending(run: RunRow, db: str) -> list[str]:
    """How ``run`` ended, for the last lines: its figures, or why and the retry."""
    from resconv_tui.polling import format_duration, run_rate

    if run.status == RunStatus.SUCCEEDED:
        loss = "—" if run.validation_loss is None else f"{run.validation_loss:.6f}"
        rate = run_rate(run, run.finished_at or 0.0)
        # The time is the whole fit's (validation passes too: 95 s of 3m27s for a big
        # model's last pass on a CPU); the rate its training steps' alone. "after 3m27s
        # of training at 27 in/s" made 5,600 inputs of a 3,008-input run.
        pace = "" if rate is None else f", training steps at {rate:,.0f} in/s"
        took = format_duration(run.train_seconds)
        return [f"succeeded: val loss {loss} in {took} (validation included){pace}"]
    if run.status == RunStatus.CANCELLED:
        return [f"cancelled (resconv-tui retry {run.id}{db} queues it again)"]
    from resconv_tui.widgets.run_info import error_text

    safe = run.terminal_safe()  # its carriage returns escaped, not dropped by rich
    return ["failed", *str(error_text(safe, f"resconv-tui retry {run.id}{db}", db)).splitlines()]


@dataclass
class Terminal:
    """Where the lines go: ``say`` a line that stays, ``show`` the progress line (on a
    terminal rewritten in place; in a pipe printed every ``PIPE_PROGRESS_S``)."""

    write: Callable[[str], Any]
    live: bool  # a terminal
    shown: str = ""  # the progress line on screen (a terminal)
    printed_at: float | None = None  # when a pipe last got a progress line

    def say(self, line: str) -> None:
        self._clear()
        self.write(terminal_safe(line) + "\n")  # a worker's name, an error text

    def show(self, line: str, now: float) -> None:
        line = terminal_safe(line)
        if self.live:
            if line != self.shown:
                self.write("\r\x1b[2K" + line)
                self.shown = line
        elif self.printed_at is None or now - self.printed_at >= PIPE_PROGRESS_S:
            self.write(line + "\n")
            self.printed_at = now

    def _clear(self) -> None:
        if self.shown:
            self.write("\r\x1b[2K")
            self.shown = ""


def follow(
    repo: Repo,
    run_id: int,
    terminal: Terminal,
    db: str = "",
    sleep: Callable[[float], Any] | None = None,
    clock: Callable[[], float] | None = None,
) -> int:
    """Say what becomes of run ``run_id`` until it ends: 0 if it succeeded, 1 if it
    failed, was cancelled or was removed, ``NOT_FOLLOWED`` on Ctrl-C. ``sleep`` and
    ``clock``: time's, looked up at the call (tests replace the module's ``time``), as
    is the monotonic clock that times the run's silence (``Follower.heard``)."""
    sleep, clock = sleep or time.sleep, clock or time.time
    follower = Follower(repo, run_id, db)
    away: float | None = None  # since when the database has not answered
    locked = False  # and that for another process's lock only: no outage, said so
    status: RunStatus | None = None  # as last read: what Ctrl-C leaves it doing
    try:
        while True:
            now = clock()
            before = follower.saved()
            try:
                run, lines = follower.read(now)
                running = run is not None and run.status == RunStatus.RUNNING
                progress = follower.progress(run, now) if run is not None and running else ""
            except QueueError as error:
                # A server restarting or a long SQLite lock, which the worker rides out:
                # `show 7 --follow && resconv-tui results` ended with exit status 2. The
                # read cut short is undone: its lines come with the next one.
                follower.restore(before)
                reason = passing_reason(error, repo.engine.dialect.name)
                if reason is None or (away is not None and now - away > RECONNECT_S):
                    raise
                if away is None:
                    away, locked = now, reason == LOCKED
                    terminal.say(f"database {reason}: following on once it answers "
                                 f"(for up to {RECONNECT_S:g} s)")  # fmt: skip
                else:  # a lock's wait that then met the server away is an outage
                    locked = locked and reason == LOCKED
                sleep(POLL_S)
                continue
            if away is not None:
                back = "no longer locked" if locked else "reachable again"
                terminal.say(f"database {back} after {now - away:.0f} s")
                away = None
            for line in lines:
                terminal.say(line)
            if run is None:
                return 1
            status = run.status
            if run.status in FINISHED:
                for line in ending(run, db):
                    terminal.say(line)
                return 0 if run.status == RunStatus.SUCCEEDED else 1
            if running:
                terminal.show(progress, now)
            sleep(POLL_S)
    except KeyboardInterrupt:
        terminal.say(f"stopped following run {run_id} ({left_doing(status)})")
        return NOT_FOLLOWED


def left_doing(status: RunStatus | None) -> str:
    """What a run followed until Ctrl-C goes on doing: "it goes on" said of a queued
    run with no worker running read as if it trained."""
    return "it stays queued" if status == RunStatus.QUEUED else "it goes on"
