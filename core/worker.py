"""The worker: claim a queued run, train it, record everything, repeat.

The one place that joins the queue and training. Deliberately boring:

* At start it registers itself and marks stale ``running`` runs failed "worker
  lost": their heartbeat is older than ``SURELY_LOST_AFTER_S`` (10 minutes, past any
  two boxes' clocks apart), or their worker was a process on this host that no longer
  exists and has been silent for ``core.processes.SILENT_FOR_S`` (so a restart after
  ``kill -9`` recovers within seconds instead of after 30 s). It looks again every
  ``RECOVER_EVERY_S``, between runs, while idle and while training, judging another
  box's runs (and idle workers) by their beats staying unchanged for ``stale_after_s``
  on its own clock, not by their age: the boxes' clocks may differ
  (``Worker.recover_silent``). An ``--until-empty`` worker at "queue empty" watches the
  others' runs it has not judged yet until it has (``watch_others_before_leaving``).
* It claims the highest-priority, oldest queued run and calls ``core.train.fit``
  with callbacks (``core.recording.RunRecorder``) that buffer metric rows and
  write them in batches (every ``FLUSH_S`` or ``FLUSH_ROWS``), read the cancel
  flag at most every ``CANCEL_CHECK_S`` and check the signal flag at every step.
* A heartbeat thread refreshes the worker row (with GPU stats) and the run's
  heartbeat every ``HEARTBEAT_S``. A thread rather than the training callback
  because fit() can be silent for long stretches (a validation pass over 10,000
  images on a CPU, the first CUDA kernels compiling); the heartbeat says the
  process is alive, not that a step finished. torch releases the GIL while it
  computes, so the thread keeps time.
* A run that raises ends ``failed`` with a short message and the worker goes on.
* Signals only set flags. The first SIGINT/SIGTERM/SIGHUP stops the current run before
  its next step, puts it back to ``queued`` (it trains again from the start on the
  next claim: the interruption was not the run's fault) and exits with status 0.
  Asked while its database is locked or away, it tries to give the run back for up to
  ``GIVE_BACK_S`` (``Worker.stopped_in_outage``); refused all that time, it exits 2,
  the run left to be found lost. A run trained to the end whose "succeeded" write was
  refused is written as finished instead, within the same time, and given back only
  if that write is still refused; so is one whose last metric points (its final pass's,
  its last progress) were refused as the stop came: they are written with its end. A
  run that failed (loss NaN, an error in training) whose "failed" write was refused is
  written failed the same way, rather than queued to train and fail again.
  A second signal puts the run back to ``queued`` as best it can within 2 s and
  exits at once with status 130 (``os._exit``: no cleanup that could hang), also while
  the main thread waits in a driver call (``StopFlags.watch_arrivals``).
  The same from the worker's first moments: signals that come while it imports the
  database layer and torch, before its handlers are in place, are counted
  (``core.early_signals``, installed first by ``main`` and the ``worker`` command) and
  answered once they are: the first stops it before it claims anything (exit 0), a
  second exits at once (130).
* Idle polling backs off from 0.1 s to ``POLL_MAX_S``.
* As one of several slots sharing a device (``--slot I/K``, started by
  ``core.slots``), an ``Admission`` may refuse a claimed run: it goes back to the
  queue without counting as an attempt, and the worker waits (backing off from
  ``ADMIT_WAIT_MIN_S`` to ``ADMIT_WAIT_MAX_S``) before it claims again.
"""

from __future__ import annotations

import argparse
import atexit
import contextlib
import errno
import gc
import math
import os
import shlex
import socket
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any, Generic, NamedTuple, NoReturn, TypeVar

from core.device_choice import auto_device, resolve_device
from core.early_signals import count_early, release
from core.errors import (
    ArgumentParser,
    CheckpointsNotWritable,
    ConfigError,
    DiskFull,
    NoDataHere,
    ResconvError,
    escape_unwritable_output,
    first_line,
    terminal_safe,
)
from core.fit_trainer import FitTrainer, StackResults
from core.gpu import GpuMonitor
from core.packing import Admission, Slot, parse_slot
from core.processes import (
    SILENT_FOR_S,
    SUPERVISOR_ENV,
    exited_here,
    gone_here,
    registered_by,
    stop_with_parent,
    worker_alive,
)
from core.queue import (
    FinalFigures,
    MetricPoint,
    QueueError,
    Repo,
    RunFilter,
    RunRow,
    RunStatus,
)
from core.queue.db import describe, is_new_file, sqlite_path, stored_url
from core.queue.patience import RECONNECT_S, at_once, passing_reason, sleep_unless
from core.queue.repo import (
    LIVE_WORKER_STATES,
    STALE_AFTER_S,
    SURELY_LOST_AFTER_S,
    LostRun,
    same_beat,
)
from core.queue.samples import encode_samples
from core.queue.views import ids_of
from core.recording import (
    HEARTBEAT_S,
    SPEAKER,
    STALL_AFTER_S,
    Heartbeat,
    RunRecorder,
    StopFlags,
    say,
)
from core.run_folders import (
    claim_run_folder,
    default_root,
    experiment_folder,
    refuse_unwritable,
    run_owner,
    start_attempt,
)
from core.whole_text import misread_number_refusal
from core.worker_options import (
    NO_RULES,
    ClaimRules,
    add_worker_arguments,
    count_problem,
    slot_mode,
)

if TYPE_CHECKING:  # torch-using modules are imported when the worker starts training
    from core.config import RunConfig
    from core.train import FitCallbacks, FitResult

K = TypeVar("K")  # what a BeatsSeen tells beats apart by: a run id, a worker id

POLL_MIN_S, POLL_MAX_S = 0.1, 3.0
# Between runs and while idle (a dead worker of this machine's runs within ~20 s), and
# while training (Worker.recover_while_training: another box's within ~50 s).
RECOVER_EVERY_S = 10.0
# This machine's clock this far from the database server's: said at start (a third of
# the heartbeat's limit, far above what NTP leaves: milliseconds).
CLOCK_WARN_S = 10.0
EMERGENCY_REQUEUE_S = 2.0
# --until-empty, queue empty: how often it reads the other workers' runs' beats while it
# waits to see whether they still beat (Worker.watch_others_before_leaving).
LEAVING_LOOK_S = 0.5
# Asked to stop while its database is locked or away (a backup, an SQL shell, another
# process's long write, a server restarting): this long trying to give its runs back, as
# a stop means, rather than leave them to be found lost. Within `stop`'s 60 s wait.
GIVE_BACK_S = 30.0
MAX_ERROR_CHARS = 300
ADMIT_WAIT_MIN_S, ADMIT_WAIT_MAX_S = 1.0, 8.0  # a run that does not fit yet
DISK_FULL = frozenset({errno.ENOSPC, errno.EDQUOT})  # no room for checkpoints: stop, fail none
# A checkpoint folder this user may not write: every run of its experiment would fail in
# turn, as on a full disk. Only for a path under the checkpoint root (the run's own).
NOT_WRITABLE = frozenset({errno.EACCES, errno.EPERM, errno.EROFS})

# trainer(run, callbacks, checkpoint_dir) -> FitResult; tests pass a fake one. A trainer
# that can also train a stack (--stack K) has a method
# train_stack(runs, callbacks, checkpoint_dirs) -> [FitResult | TrainingError, ...].
Trainer = Callable[[RunRow, "FitCallbacks", Path], "FitResult"]


# ----- the loop -----------------------------------------------------------------------


class Worker:
    def __init__(
        self,
        repo: Repo,
        device: str,
        trainer: Trainer,
        checkpoint_root: Path,
        flags: StopFlags,
        stale_after_s: float = STALE_AFTER_S,
        heartbeat_s: float = HEARTBEAT_S,
        poll_max_s: float = POLL_MAX_S,
        label: str | None = None,
        admission: Admission | None = None,
        rules: ClaimRules = NO_RULES,
        stall_after_s: float = STALL_AFTER_S,
        max_runs: int | None = None,
    ) -> None:
        self.repo, self.device, self.trainer = repo, device, trainer
        # Asked to stop while its database is away: training stops, not waits up to 5
        # minutes; the worker then tries GIVE_BACK_S to give its runs back (stopped_in_outage).
        repo.stop_waiting = lambda: flags.stop
        self.rules = rules
        # Absolute: each run stores its folder, read later from other working folders.
        self.checkpoint_root, self.flags = Path(checkpoint_root).absolute(), flags
        self.stale_after_s, self.poll_max_s = stale_after_s, poll_max_s
        self.admission, self.admit_wait = admission, ADMIT_WAIT_MIN_S
        self.max_runs = max_runs  # it exits after this many runs ended (None: no limit)
        # A second signal while it registers (its write waiting for another process's
        # lock) exits at once too: it had no effect. Nothing is claimed yet.
        flags.on_second = lambda: leave_now([])
        self.id = repo.register_worker(
            socket.gethostname(), os.getpid(), label or device,
            stack=rules.stack, largest_first=rules.largest_first, max_runs=max_runs,
        )  # fmt: skip
        self.heartbeat = Heartbeat(
            repo, self.id, GpuMonitor(device), heartbeat_s, stopping=lambda: flags.stop,
            stall_after_s=stall_after_s, after_beat=self.recover_while_training,
        )  # fmt: skip
        self.looked_at = time.monotonic()  # recover_while_training's last look
        # The looks' memory (recover_silent): each other running run's last beat as read,
        # and each idle worker's, and since when (this process's monotonic clock) it has
        # read that same beat.
        self.run_beats: BeatsSeen[int] = BeatsSeen()
        self.worker_beats: BeatsSeen[str] = BeatsSeen()
        # Whether ``recover`` has judged the others by heartbeat age past
        # SURELY_LOST_AFTER_S: once, at start (or its first look past a database outage).
        self.judged_by_age = False
        self.current: list[int] = []  # claimed runs not ended yet: a second signal puts them back
        self.folders: dict[int, Path] = {}  # the checkpoint folders of the runs training
        # Those runs whose attempt has started (``start_attempt``): their folders hold no
        # earlier attempt's weights any more.
        self.started: set[int] = set()
        # Runs ended (trained to the end, or failed) whose "succeeded" or "failed" write
        # has not gone through yet. A stop while the database refuses that write records
        # their end (give_back_quietly) rather than queue them to train (and fail) again.
        self.finishing: dict[int, Ending] = {}
        self.runs_done = 0
        flags.on_second = self.exit_now

    def loop(self, until_empty: bool = False) -> int:
        """Train runs until told to stop (or ``max_runs`` ended); returns how many runs
        this worker ended."""
        max_runs = self.max_runs
        say(f"{self.id} on {self.device}, database {describe(self.repo.url)}")
        self.recover()
        self.heartbeat.start()
        delay, last_recover = POLL_MIN_S, time.monotonic()
        database_error = False
        try:
            while not self.flags.stop and (max_runs is None or self.runs_done < max_runs):
                # Between runs too, not only while idle: on a queue shared by busy GPU
                # boxes, a dead box's run would otherwise stay "running" for good.
                if time.monotonic() - last_recover > RECOVER_EVERY_S:
                    self.recover()
                    last_recover = time.monotonic()
                claimed = self.claim(max_runs)
                # Its own from here: a second signal puts them back, even while they go
                # back below (their put_back waiting on the write lock).
                self.current = [r.id for r in claimed]
                if claimed and self.flags.stop:
                    # Asked to stop while its claim waited for the write lock (`stop` as it
                    # claimed, several workers on one queue): the runs go back untouched,
                    # no attempt counted, rather than start only to be interrupted.
                    say(f"{self._put_back(claimed)}, not started")
                    break
                if claimed:
                    run, *partners = claimed
                    if self.admitted(run, partners):
                        if partners:
                            self.train_stack([run, *partners])
                        else:
                            self.train(run)
                    delay = POLL_MIN_S
                    continue
                if until_empty:
                    self.recover_before_leaving()
                    self.watch_others_before_leaving()
                    say("queue empty")
                    break
                self.sleep(delay)
                delay = min(delay * 2, self.poll_max_s)
        except QueueError as error:
            # The database refused a write (unreachable, full, locked too long): this
            # worker stops, and the command says why. Its runs go back to the queue if
            # the database still takes that, rather than sit "running" for nobody until
            # some worker's next start finds them lost.
            database_error = True
            self.heartbeat.stop()
            reason = passing_reason(error, self.repo.engine.dialect.name)
            if self.flags.stop and reason is not None:
                # Asked to stop while the database was locked or away: a polite stop,
                # given GIVE_BACK_S for its runs to go back, not a database error.
                if self.stopped_in_outage(reason):
                    return self.runs_done
                raise
            gave = self.give_back_quietly()
            runs = gave.said("")
            if gave.refused:
                runs += f"; {ids_of('run', gave.refused)} not given back: found lost later"
            say(f"stopping on a database error after {self.runs_done} run(s){runs}")
            raise
        except Exception as exc:  # a bug outside any run's training: stop, and say so
            # on its runs rather than leave them "running" under a stopped worker (to
            # be found lost only by some worker's next start).
            for run_id in list(self.current):
                _quietly(self.repo.fail, run_id, self.id, f"worker error: {failure_message(exc)}")
            raise
        finally:
            if not database_error:
                self.heartbeat.stop()
                self.repo.update_worker(self.id, state="stopped")
                say(f"stopped after {self.runs_done} run(s)")
        return self.runs_done

    def admitted(self, run: RunRow, partners: Sequence[RunRow] = ()) -> bool:
        """Whether this slot may train ``run`` (and its stack) now; if not, they are back
        in the queue."""
        if self.admission is None:
            return True
        try:
            decision = self.admission.check(run, copies=1 + len(partners))
        except QueueError:
            raise
        except Exception as exc:  # e.g. the driver cannot report free memory: train as alone
            say(f"run {run.id}: admission check failed ({first_line(exc)}): training it")
            return True
        if decision.train:
            self.admit_wait = ADMIT_WAIT_MIN_S
            say(f"run {run.id}: admitted, {decision.reason}")
            return True
        for claimed in (run, *partners):
            self.repo.put_back(claimed.id, self.id)
        self.current = []
        say(f"run {run.id}: put back, {decision.reason}; next claim in {self.admit_wait:.0f} s")
        self.sleep(self.admit_wait)
        self.admit_wait = min(self.admit_wait * 2, ADMIT_WAIT_MAX_S)
        return False

    def sleep(self, seconds: float) -> None:
        """Idle wait in short slices so that a signal ends it promptly."""
        sleep_unless(seconds, lambda: self.flags.stop, IDLE_SLICE_S)

    def recover(self) -> None:
        """At start, between runs and while idle: the runs of this machine's dead workers
        are marked lost, and those of silent ones, by each beat staying unchanged for
        the stale limit on this process's own clock (``recover_silent``), as a training
        worker's look: each box writes its beats with its own clock, and by age a worker
        on a box 30 s or more ahead marked another box's live runs lost, revived by their
        next beat (logs and the dashboard flickering, and a retry meanwhile could have
        two workers train one run). The first look (at start, or its first past a
        database outage) has no earlier read to compare with: it marks lost by age only
        those silent past ``SURELY_LOST_AFTER_S`` (a power cut's leftovers, at once);
        a younger silent one is found by the next looks, within the limit and a look."""
        now = time.time()
        dead = [
            w.id
            for w in self.repo.list_workers(skip_damaged=True)
            if w.id != self.id
            and exited_here(w.host, w.pid, w.age(now), registered_at=w.started_at)
        ]
        # Back from a database outage, other workers are as silent as this one was, and
        # may not be back yet (a 20 s PostgreSQL restart had the first worker back mark
        # the others lost): judge their silence only once they have had time to beat.
        # Past another process's lock the look goes on, its silence timed afresh from the
        # wait's end (``silent_runs``): the database was there all along.
        back_from_outage = self.repo.outage.ended_within(self.stale_after_s)
        lost: list[LostRun] = []
        if not self.judged_by_age and not back_from_outage:
            lost = self.repo.recover_stale_runs(
                max(self.stale_after_s, SURELY_LOST_AFTER_S), dead,
                caller=self.id, caller_runs=self.current,
            )  # fmt: skip
            self.judged_by_age = True
        elif dead:
            lost = self.repo.recover_stale_runs(
                None, dead, caller=self.id, caller_runs=self.current
            )
        if not back_from_outage:
            # The first look's read is the memory the next looks time silence from.
            lost += self.recover_silent(self.current)
        for run in lost:
            say(self.lost_line(run))

    def recover_silent(self, mine: Sequence[int]) -> list[LostRun]:
        """Marks lost the other workers' runs whose beat has not changed for the stale
        limit by this process's clock (``silent_runs``), and the idle workers silent so
        (a dead box's worker that held no run): a read of each, and a write only when it
        finds one. ``mine``: the runs this worker holds, alive. Returns the runs."""
        lost: list[LostRun] = []
        beats = self.repo.running_beats(caller=self.id, caller_runs=mine)
        if silent := self.silent_runs(beats):
            lost = self.repo.recover_stale_runs(caller=self.id, caller_runs=mine, beats_seen=silent)
        if silent_idle := self.silent_workers(self.repo.idle_beats(caller=self.id)):
            self.repo.recover_silent_workers(silent_idle)
        return lost

    def recover_while_training(self) -> None:
        """On the heartbeat thread, every ``RECOVER_EVERY_S`` while this worker trains:
        a run of another worker silent past the stale limit (its box dead) is marked
        lost now, not when this worker's run ends (hours, beside a long GPU run). Silent
        by this worker's own clock: its beat (written by its box's clock, maybe far from
        this one's) unchanged that long (``silent_runs``); so a run is found within the
        limit and two looks of its last beat, none in the first limit after a start. One
        read, and the write only when it finds one. Best effort: one try, no waiting
        for a database locked or away (the next look tries again), and nothing about
        it reaches the training. Between runs and while idle the loop's ``recover``
        looks (with the dead processes of this machine too)."""
        if not self.heartbeat.run_ids or time.monotonic() - self.looked_at < RECOVER_EVERY_S:
            return
        self.looked_at = time.monotonic()
        # Back from an outage, the others have not had time to beat yet (``recover``).
        if self.repo.outage.ended_within(self.stale_after_s):
            return
        mine = [*self.current, *self.heartbeat.run_ids]  # claimed, and those it beats for
        try:
            with at_once():
                lost = self.recover_silent(mine)
        except QueueError:
            return  # its heartbeat, refused alike, says what the database does
        for run in lost:
            say(self.lost_line(run))

    def lost_line(self, run: LostRun) -> str:
        """What this worker says of a run it marked lost: whose it was. "run 7: worker
        lost" in a worker's log read as its own run dead, where it was another box's."""
        again = "marked failed; 'retry' queues it again"
        if run.worker_id == self.id:  # claimed by a commit whose answer never came back
            return f"run {run.id}: claimed under this worker but never trained here ({again})"
        if run.host is not None:
            whose = f"worker {run.host} pid {run.pid}"
        else:  # that worker's row is gone (removed by hand)
            whose = f"worker {run.worker_id}" if run.worker_id else "no worker"
        return f"run {run.id} of {whose}: that worker lost ({again})"

    def silent_runs(self, beats: dict[int, float]) -> dict[int, float]:
        """Of ``beats`` (run id -> last beat, as read now), those read at the same beat for
        longer than the stale limit by this process's monotonic clock: their worker has
        not beaten since, whatever its clock says. Remembers this read for the next."""
        held_until = self.repo.outage.lock_ended_at
        return self.run_beats.silent(beats, self.stale_after_s, self.look_gap_s(), held_until)

    def silent_workers(self, beats: dict[str, float]) -> dict[str, float]:
        """``silent_runs`` for the idle workers' beats (worker id -> last_seen_at)."""
        held_until = self.repo.outage.lock_ended_at
        return self.worker_beats.silent(beats, self.stale_after_s, self.look_gap_s(), held_until)

    def look_gap_s(self) -> float:
        """Far past a look's usual gap (one RECOVER_EVERY_S after a beat), this process
        was not looking: stopped (Ctrl-Z of a `worker --slots K` group, docker pause).
        The gap (23 s) stays under the stale limit less a beat (27 s)."""
        return 2 * RECOVER_EVERY_S + self.heartbeat.interval

    def recover_before_leaving(self) -> None:
        """``--until-empty``, queue empty: a run of a worker of this machine that died
        moments ago still reads "running" until that worker has been silent
        ``SILENT_FOR_S``. Wait that long and record it lost, rather than leave it
        "running" beside "queue empty" (a worker started right after a reboot did). One
        silent that long already, since the last ``recover`` (at the start of a run
        shorter than ``RECOVER_EVERY_S``), is recorded lost now, with no wait."""
        now = time.time()
        running = self.repo.list_runs(
            RunFilter(statuses=frozenset({RunStatus.RUNNING})), skip_damaged=True
        )
        holders = {run.worker_id for run in running} - {self.id}
        gone = [
            w.age(now)
            for w in self.repo.list_workers(skip_damaged=True)
            if w.id in holders
            and gone_here(w.host, w.pid, registered_at=w.started_at, silent_s=w.age(now))
        ]
        if not gone:
            return
        if (youngest := min(gone)) < SILENT_FOR_S:
            self.sleep(SILENT_FOR_S - youngest + 0.5)
        self.recover()

    def watch_others_before_leaving(self) -> None:
        """``--until-empty``, queue empty: another worker's run whose beat this worker has
        neither seen change (alive) nor seen unchanged for the stale limit (lost) is
        watched until one or the other, and marked lost if so: a live one beats within
        ``HEARTBEAT_S``, a dead one is judged within the limit of this worker's first
        read of it (said, with how long at most). A worker that lived under ~40 s left a
        dead box's young run "running" for the next long-lived worker to find: its first
        look judges by age only past ``SURELY_LOST_AFTER_S``. A stop ends the wait, as
        does a bound past the limit (the database slow to answer, this process paused):
        the runs not judged are named, left to the next worker."""
        earlier = self.run_beats.last_read()  # the last look's reads: a change since says alive
        baseline: dict[int, float] | None = None
        bound_s = self.stale_after_s + 2 * LEAVING_LOOK_S
        bound = time.monotonic() + bound_s
        told = False
        while True:
            beats = self.repo.running_beats(caller=self.id, caller_runs=self.current)
            lost: list[LostRun] = []
            if silent := self.silent_runs(beats):
                lost = self.repo.recover_stale_runs(
                    caller=self.id, caller_runs=self.current, beats_seen=silent
                )
            for run in lost:
                say(self.lost_line(run))
            if baseline is None:  # the runs to judge: those running now (not those claimed later)
                baseline = {run_id: earlier.get(run_id, beat) for run_id, beat in beats.items()}
            judged = {run.id for run in lost}
            unsure = sorted(
                run_id for run_id, beat in beats.items()
                if run_id in baseline and run_id not in judged
                and same_beat(baseline[run_id], beat)
            )  # fmt: skip
            if not unsure:
                return
            if self.flags.stop or time.monotonic() > bound:
                why = "stopped" if self.flags.stop else f"not within {math.ceil(bound_s)} s"
                say(f"{self.runs_named(unsure)} not judged ({why}): left running, for the "
                    "next worker to judge")  # fmt: skip
                return
            if not told:
                told = True
                say(self.waiting_line(unsure))
            self.sleep(LEAVING_LOOK_S)

    def waiting_line(self, unsure: Sequence[int]) -> str:
        """What ``watch_others_before_leaving`` says as it starts to wait for ``unsure``:
        at most how long (the rest of the limit of the one watched least long), and why."""
        wait_s = max(self.stale_after_s - self.run_beats.unchanged_for(i) for i in unsure)
        verb = "beats" if len(unsure) == 1 else "beat"
        return (
            f"waiting up to {math.ceil(max(wait_s, 0))} s to see whether "
            f"{self.runs_named(unsure)} still {verb}: a run of another worker is judged lost "
            f"once its heartbeat has not changed for {self.stale_after_s:g} s (Ctrl-C leaves "
            "it to the next worker)"
        )

    def runs_named(self, run_ids: Sequence[int]) -> str:
        """``run_ids`` (other workers' running runs) as said, each with its worker's host
        and pid where its rows read: "run 7 (worker box-b pid 4121)"."""
        running = self.repo.list_runs(
            RunFilter(statuses=frozenset({RunStatus.RUNNING})), skip_damaged=True
        )
        holder = {run.id: run.worker_id for run in running}
        workers = {w.id: w for w in self.repo.list_workers(skip_damaged=True)}
        named = []
        for run_id in run_ids:
            worker = workers.get(holder.get(run_id) or "")
            whose = f" (worker {worker.host} pid {worker.pid})" if worker is not None else ""
            named.append(f"run {run_id}{whose}")
        return ", ".join(named)

    def claim(self, max_runs: int | None = None) -> list[RunRow]:
        """The next queued run ([] when there is none) and, with ``--stack K``, up to K-1
        more that differ from it only in their seed, to train with it as one model
        (``core.stack``); no more than ``--max-runs`` allows. One transaction claims them
        all, so another slot cannot take a seed in between. Admission (with slots) then
        checks the whole stack."""
        most = self.rules.stack
        if max_runs is not None:
            most = min(most, max_runs - self.runs_done)
        if most < 2 or getattr(self.trainer, "train_stack", None) is None:
            run = self.repo.claim(self.id, self.rules.largest_first)
            return [] if run is None else [run]
        from core.stack import stack_problem

        def stackable(config: RunConfig) -> bool:  # e.g. PReLU trains alone
            return stack_problem([config]) is None

        return self.repo.claim_stack(self.id, self.rules.largest_first, most, stackable)

    def train(self, run: RunRow) -> None:
        say(f"run {run.id} {run.experiment}/{run.name}: started")
        self._train_runs([run], lambda cbs, dirs: [self.trainer(run, cbs[0], dirs[0])])

    def train_stack(self, runs: list[RunRow]) -> None:
        """Train ``runs`` (seeds of one config) as one stack; each ends on its own."""
        names = ", ".join(f"{run.id} {run.experiment}/{run.name}" for run in runs)
        say(f"runs {names}: started as one stack of {len(runs)}")
        train_stack: Callable[..., StackResults] = self.trainer.train_stack  # type: ignore[attr-defined]
        self._train_runs(runs, lambda cbs, dirs: train_stack(runs, cbs, dirs))

    def _train_runs(
        self, runs: list[RunRow], train: Callable[[list[FitCallbacks], list[Path]], StackResults]
    ) -> None:
        """Record ``runs`` while ``train`` trains them, then end each on its own: a result
        ends it, an error returned for it fails it, an error raised fails them all. A run
        of a stack that ends before the others (cancelled, diverged) is recorded then."""
        self.heartbeat.watch(tuple(run.id for run in runs))
        recorders = [
            RunRecorder(
                self.repo,
                run.id,
                self.flags,
                on_step=partial(self.heartbeat.stepped, run.id),
                on_alive=partial(self.heartbeat.alive, run.id),
                total_inputs=run.total_inputs,
                worker_id=self.id,
            )  # fmt: skip
            for run in runs
        ]
        ended: set[int] = set()
        self.flags.training.update((run.id, r) for run, r in zip(runs, recorders, strict=True))

        def end_early(run: RunRow, recorder: RunRecorder, result: FitResult | Exception) -> None:
            recorder.flush()
            self.end_with(run, result, recorder)
            ended.add(run.id)

        callbacks = [r.callbacks() for r in recorders]
        for run, recorder, cbs in zip(runs, recorders, callbacks, strict=True):
            cbs.on_early_end = partial(end_early, run, recorder)
            cbs.on_start = partial(self.start_attempts, runs)
        try:
            folders = [self.checkpoint_dir(r) for r in runs]
            self.folders.update((run.id, folder) for run, folder in zip(runs, folders, strict=True))
            results = train(callbacks, folders)
            for run, recorder in zip(runs, recorders, strict=True):
                if run.id not in ended:
                    recorder.flush()
        except QueueError:
            raise  # the database itself is gone: nothing sensible to record; stop
        except NoDataHere as exc:  # this machine's data, not the run: every run would fail
            self.stop_for_data(runs, exc)
        except Exception as exc:  # any per-run problem (a stack's: every run's): record, go on
            if isinstance(exc, OSError) and self.checkpoints_blocked(exc):  # not the run's
                self.stop_for_checkpoints([r for r in runs if r.id not in ended], exc)
            for run, recorder in zip(runs, recorders, strict=True):
                if run.id not in ended:
                    _flush_quietly(recorder)
                    self.end_failed(
                        run, failure_message(exc), getattr(exc, "inputs_done", None),
                        recorder.last_points(),
                    )  # fmt: skip
            return
        finally:
            self.heartbeat.watch(())
            for run in runs:
                self.flags.training.pop(run.id, None)
        for run, result, recorder in zip(runs, results, recorders, strict=True):
            if run.id not in ended:
                self.end_with(run, result, recorder)

    def end_with(self, run: RunRow, result: FitResult | Exception, recorder: RunRecorder) -> None:
        if isinstance(result, Exception):  # this run of a stack alone diverged
            self.end_failed(
                run, failure_message(result), getattr(result, "inputs_done", None),
                recorder.last_points(),
            )  # fmt: skip
        else:
            self.end(run, result, recorder)

    def stop_for_data(self, runs: list[RunRow], error: NoDataHere) -> NoReturn:
        """No dataset anywhere this machine looks: failing this run, then the next and
        the next, would fail the whole queue within seconds. Put the runs back (no
        attempt counted) and stop this worker with the reason and the fix."""
        back = self._put_back(runs)
        first = str(error).splitlines()[0].removesuffix("; looked in:")
        say(f"{first}: {back}, none failed; stopping")
        raise error  # the command prints it whole (where it looked, the fix) and exits 2

    def _put_back(self, runs: list[RunRow]) -> str:
        """Put ``runs`` back in the queue (no attempt counted) before the worker stops, for
        its machine's fault or asked to as it claimed them; what it did, as said: "runs
        3, 4 back in the queue". A run no longer this worker's (recovered as lost, removed
        meanwhile) stays as it is, and is said so: it was said back in the queue too."""
        back: list[int] = []
        gone: list[int] = []
        for run in runs:
            (back if self.repo.put_back(run.id, self.id) else gone).append(run.id)
            self._let_go(run)
        said = f"{ids_of('run', back)} back in the queue" if back else "no run back in the queue"
        if gone:
            said += f" ({ids_of('run', gone)} no longer this worker's)"
        return said

    def checkpoints_blocked(self, error: OSError) -> bool:
        """Whether ``error`` is the checkpoint folder's, not the run's: a full disk, or a
        path under the checkpoint root this user may not write."""
        if error.errno in DISK_FULL:
            return True
        if error.errno not in NOT_WRITABLE or not error.filename:
            return False
        # Both as the kernel resolves them: '..' after a link, a root written with '..'.
        path = Path(os.path.realpath(os.fsdecode(error.filename)))
        return path.is_relative_to(os.path.realpath(self.checkpoint_root))

    def stop_for_checkpoints(self, runs: list[RunRow], error: OSError) -> NoReturn:
        """No room left for checkpoints, or a folder for them this user may not write:
        every queued run would fail in turn (the whole queue within seconds, each "error:
        No space left on device", or "PermissionError" under another user's experiment
        folder). As a missing dataset: the runs go back to the queue (no attempt counted)
        and the worker stops."""
        folders = sorted({str(self.folders.get(run.id, self.checkpoint_root)) for run in runs})
        back = self._put_back(runs)
        where = os.fsdecode(error.filename) if error.filename else ", ".join(folders)
        why = f"{error.strerror or first_line(error)}: {where}"
        say(f"{why}: {back}, none failed; stopping")
        full = error.errno in DISK_FULL
        other = "another --checkpoints folder"
        if full:
            fix = f"free some space (or pick {other})"
        elif error.errno == errno.EROFS:
            fix = f"its file system is mounted read-only: pick {other}"
        else:  # the folder it could not write in: the one holding the path named
            folder = os.path.dirname(os.fsdecode(error.filename)) if error.filename else where
            fix = f"make {folder} writable for this user (or pick {other})"
        blocked = DiskFull if full else CheckpointsNotWritable
        raise blocked(
            f"{why} (checkpoints under {self.checkpoint_root}): {back}, "
            f"none failed; {fix}, then start the worker again"
        ) from None

    def end(self, run: RunRow, result: FitResult, recorder: RunRecorder) -> None:
        figures = final_figures(result, recorder.last_points(), recorder.paused_s())
        if recorder.stopped_by_signal:  # queued again, or cancelled if someone asked
            status = self.repo.requeue(run.id, self.id, figures)
            if status == RunStatus.CANCELLED:
                self.ended(run.id, True, "cancelled (asked for before the worker was stopped)")
            elif status == RunStatus.QUEUED:
                say(f"run {run.id}: interrupted, queued again")
            else:
                say(f"run {run.id}: interrupted; it is no longer this worker's run")
        elif result.stopped:  # cancelled, or no longer its run (another worker has it)
            recorded = self.repo.mark_cancelled(run.id, self.id, figures)
            self.ended(run.id, recorded, "cancelled" if recorded else "stopped")
        elif figures.validation_loss is None:
            self.end_failed(
                run, "validation loss is not finite (NaN/inf)", last_points=figures.last_points
            )
        else:
            loss, minutes = result.validation_loss, result.wall_seconds / 60
            what = f"succeeded, validation loss {loss:.6g} in {minutes:.2f} min"
            # Left here if this write raises: a stop then tries it again before it would
            # queue the run, whose whole training would otherwise be done again.
            self.finishing[run.id] = Ending(figures, what)
            recorded = self.repo.finish(run.id, self.id, figures)
            del self.finishing[run.id]
            self.ended(run.id, recorded, what)
        self._let_go(run)

    def end_failed(
        self,
        run: RunRow,
        message: str,
        inputs_done: int | None = None,
        last_points: tuple[MetricPoint, ...] = (),
    ) -> None:
        # Its folder too (config.json, checkpoints so far): rm and the detail name it. And
        # how far it trained, where the error knows (a diverged run before its first point).
        # ``last_points``: its points refused as the worker was stopped, written with its
        # end as a success's are (dropped, its curve lost its last stretch).
        self.start_quietly(run)  # failed before its training started: a counted attempt
        folder = self.folders.get(run.id)
        path = str(folder) if folder else None
        figures = FinalFigures(
            checkpoint_path=path, inputs_done=inputs_done, last_points=last_points
        )
        what = f"failed: {message}"
        # Left here if this write raises, as a success's is: a stop then tries it again
        # before it would queue the run, which would only train and fail again.
        self.finishing[run.id] = Ending(figures, what, failure=message)
        recorded = self.repo.fail(run.id, self.id, message, figures)
        del self.finishing[run.id]
        self.ended(run.id, recorded, what)
        self._let_go(run)

    def _let_go(self, run: RunRow) -> None:
        if run.id in self.current:
            self.current.remove(run.id)
        self.folders.pop(run.id, None)
        self.started.discard(run.id)

    def ended(self, run_id: int, recorded: bool, what: str) -> None:
        self.runs_done += 1
        if recorded:
            say(f"run {run_id}: {what}")
        else:  # recovered as lost or removed meanwhile: its row is someone else's now
            say(f"run {run_id}: {what}, but it is no longer this worker's run: not recorded")

    def checkpoint_dir(self, run: RunRow) -> Path:
        """``run-ID`` in its experiment's folder, or ``run-ID-2`` where another database's
        run (or a removed run) left its checkpoints there (``claim_run_folder``)."""
        owner = run_owner(run.id, run.experiment, run.config_hash, run.created_at)
        folder = self.checkpoint_root / experiment_folder(run.experiment)
        return claim_run_folder(folder, run.id, owner, self.about(run))

    def about(self, run: RunRow) -> dict[str, Any]:
        """What a run's ``run.json`` says for people besides its owner: its database, by
        the whole path (two runs.db of two folders read alike as "runs.db"), and its
        attempt: a run retried with another --checkpoints has a folder of each attempt,
        which `show` tells apart by it."""
        path = sqlite_path(self.repo.url)
        database = str(path.resolve()) if path is not None else describe(self.repo.url)
        return {"database": database, "attempt": run.attempts}

    def start_attempts(self, runs: list[RunRow]) -> None:
        """``start_attempt`` for every run trained together (a stack, or a run alone), each
        folder tried for a new file first: one refusing it (made read-only) stops the
        worker with every run put back, and none of them may have lost its earlier
        attempt's weights (the stack's runs started before it did)."""
        starting = [run for run in runs if run.id in self.folders and run.id not in self.started]
        for run in starting:
            refuse_unwritable(self.folders[run.id])
        for run in starting:
            self.start_attempt(run)

    def start_attempt(self, run: RunRow) -> None:
        """The run's training starts (its data found, before its model is built): its
        folder taken back loses the earlier attempt's weights now, not at the claim,
        which is put back as never made where this machine has no data or cannot write
        checkpoints (``stop_for_data``, ``stop_for_checkpoints``)."""
        folder = self.folders.get(run.id)
        if folder is None or run.id in self.started:
            return
        owner = run_owner(run.id, run.experiment, run.config_hash, run.created_at)
        start_attempt(folder, {**owner, **self.about(run)})
        self.started.add(run.id)

    def start_quietly(self, run: RunRow) -> None:
        """``start_attempt`` for a run that failed before its training started (say, a
        trainer's dataset upload out of memory): its failed row names the folder as this
        attempt's. A folder refusing it is said, not raised: the failure goes on to be
        recorded."""
        try:
            self.start_attempt(run)
        except OSError as error:
            say(f"run {run.id}: the earlier attempt's checkpoints stay: {first_line(error)}")

    def exit_now(self) -> None:
        """Second signal: requeue the current run if that is quick, then leave at once."""
        leave_now([self])

    def stopped_in_outage(self, reason: str) -> bool:
        """Asked to stop (a first signal) while the database refuses it for ``reason``,
        which passes (another process's lock, a server away): training has stopped; the
        runs go back to the queue if the database takes them within ``GIVE_BACK_S``.
        Whether they did (the worker then stops as asked); if not, it has said so and
        stops on the database error, the runs left "running" to be found lost. A second
        signal still exits at once: the tries run in a thread of their own, so that this
        thread (the main one, whose signal handlers run only between its bytecodes) is
        not held in a driver call for a whole busy timeout."""
        runs = list(self.current)
        others = [run_id for run_id in runs if run_id not in self.finishing]
        tasks = [
            f"to record {ids_of('run', ids)} as {end}"
            for end, ids in ends_of([r for r in runs if r in self.finishing], self.failing())
        ]
        tasks += [f"to give {ids_of('run', others)} back"] if others else []
        if runs:
            say(
                f"asked to stop; the database is {reason}: trying "
                f"{' and '.join(tasks)} for up to {GIVE_BACK_S:g} s"
            )
        self.repo.outage.then = "giving the runs back"
        outcome: list[GivenBack] = []
        deadline = time.monotonic() + GIVE_BACK_S if runs else None
        tries = threading.Thread(
            target=lambda: outcome.append(self.give_back_quietly(deadline)), daemon=True
        )
        tries.start()
        while tries.is_alive():
            tries.join(IDLE_SLICE_S)
        gave = outcome[0] if outcome else GivenBack(refused=runs)
        said = gave.said(f" within {GIVE_BACK_S:g} s")
        refused = gave.refused
        if refused:
            said += (
                f"; {ids_of('run', refused)} not given back within {GIVE_BACK_S:g} s: "
                "found lost later"
            )
            say(f"stopping on a database error after {self.runs_done} run(s){said}")
            return False
        say(f"stopped after {self.runs_done} run(s){said}")
        return True

    def give_back_quietly(self, deadline: float | None = None) -> GivenBack:
        """Put the current runs back in the queue and mark this worker stopped; never
        raises. A run trained to the end whose "succeeded" write was refused
        (``finishing``) is written finished first, and goes back only if that is refused
        again. Returns what went where (``GivenBack``). Each verb is tried once, or
        (``deadline``, a ``time.monotonic()``) again while the database refuses it for a
        reason that passes, until then."""
        gave = GivenBack(failing=self.failing())
        back, refused = gave.back, gave.refused
        with contextlib.ExitStack() as patience:
            if deadline is None:  # on a database error it was patient already: no second wait
                patience.enter_context(at_once())
            else:  # asked to stop while it was away: wait for it, but only till deadline
                self.repo.stop_waiting = lambda: self.flags.signals > 1

            def by_deadline() -> None:  # the verb's patience: what is left of the time
                if deadline is not None:
                    self.repo.reconnect_s = max(0.0, deadline - time.monotonic())

            def past_deadline() -> bool:
                # The database refused a write all this time: no try begun past the
                # deadline (each waits a busy timeout, 15 s, on SQLite), or a stack of 4
                # kept a stopping worker 76 s, past `stop`'s 60 s wait. A refused
                # "succeeded" write counts: its requeue would be such a try.
                refusals = refused or gave.unfinished
                return bool(refusals) and deadline is not None and time.monotonic() >= deadline

            for run_id in list(self.current):
                if run_id in self.finishing and not past_deadline():
                    if self.finished_now(run_id, by_deadline):
                        gave.finished.append(run_id)
                        continue
                    gave.unfinished.append(run_id)
                if past_deadline():
                    refused.append(run_id)
                    continue
                try:
                    by_deadline()
                    # Its folder kept on the row: what it wrote so far stays findable.
                    folder = self.folders.get(run_id)
                    figures = FinalFigures(checkpoint_path=str(folder)) if folder else None
                    if self.repo.requeue(run_id, self.id, figures) == RunStatus.QUEUED:
                        back.append(run_id)
                except Exception:
                    refused.append(run_id)
            # A run the database would not take back stays "running" under this worker:
            # its row then stays live too, so that, once this process has exited, the
            # dashboard on this machine, or any worker's recovery, finds it lost. Marked
            # "stopped", it would stay "running" for nobody, found by no one.
            if not refused:
                by_deadline()
                _quietly(self.repo.update_worker, self.id, state="stopped")
        return gave

    def finished_now(self, run_id: int, by_deadline: Callable[[], None]) -> bool:
        """Write ``run_id``'s end (``finishing``): succeeded, or failed; whether the
        database took the write (a run no longer this worker's is said so, and counts
        as done with: there is nothing to give back)."""
        ending = self.finishing[run_id]
        try:
            by_deadline()
            if ending.failure is None:
                recorded = self.repo.finish(run_id, self.id, ending.figures)
            else:
                recorded = self.repo.fail(run_id, self.id, ending.failure, ending.figures)
        except Exception:  # refused still: the caller gives the run back instead
            return False
        del self.finishing[run_id]
        if run_id in self.current:
            self.current.remove(run_id)
        self.ended(run_id, recorded, ending.what)
        return True

    def failing(self) -> list[int]:
        """The runs of ``finishing`` whose end is a failure."""
        return [run_id for run_id, ending in self.finishing.items() if ending.failure is not None]


class BeatsSeen(Generic[K]):
    """Beats read look after look (a run's heartbeat_at, a worker's last_seen_at, each as
    its box's clock wrote it), and since when by this process's monotonic clock each has
    read the same one: silence timed by this clock, whatever the other box's says. The
    loop and the heartbeat thread share it (both look at a run's edges), one read at a
    time: a read stored over another's only times a silence later, never earlier."""

    def __init__(self) -> None:
        self.seen: dict[K, tuple[float, float]] = {}  # key -> (beat, read so since)
        self.read_at = -math.inf  # the last read (monotonic)
        # Both threads resume at once past a stop: without it the second read took the
        # memory of before the stop after the first had stored its time (no gap left to
        # see), and a sibling slot's live run, not beaten yet, read as silent 40 s.
        self.lock = threading.Lock()

    def silent(
        self, beats: dict[K, float], limit_s: float, gap_s: float, held_until: float = -math.inf
    ) -> dict[K, float]:
        """Of ``beats`` (as read now), those read at the same beat for longer than
        ``limit_s``. Remembers this read for the next. After a gap past ``gap_s`` since
        the last read, silence is timed from now: this process was not looking (stopped,
        its monotonic clock running on), and a beat unchanged across that gap says
        nothing, as the others were maybe stopped alike and have not beaten since they
        resumed: the first look after a 40 s Ctrl-Z marked the other slots' live runs lost
        and their next beats revived them. So too where the last read came before
        ``held_until`` (monotonic): the end of a wait for another process's lock on the
        database, which held the others' beats up as it held this worker's writes."""
        with self.lock:
            now = time.monotonic()
            seen = self.seen
            if now - self.read_at > gap_s or self.read_at < held_until:
                seen = {key: (beat, now) for key, (beat, _) in seen.items()}
            self.read_at = now
            self.seen = {
                key: seen[key] if key in seen and same_beat(seen[key][0], beat) else (beat, now)
                for key, beat in beats.items()
            }
            return {key: beat for key, (beat, since) in self.seen.items() if now - since > limit_s}

    def last_read(self) -> dict[K, float]:
        """Each beat as the last read found it."""
        with self.lock:
            return {key: beat for key, (beat, _) in self.seen.items()}

    def unchanged_for(self, key: K) -> float:
        """How long (seconds, this process's clock) ``key``'s beat has read the same, as
        of now; 0 for one never read."""
        with self.lock:
            if key not in self.seen:
                return 0.0
            return max(0.0, time.monotonic() - self.seen[key][1])


class Ending(NamedTuple):
    """A run's end not written yet (``Worker.finishing``)."""

    figures: FinalFigures
    what: str  # as said once written: "succeeded, validation loss 0.25 in 1.2 min"
    failure: str | None = None  # the message of a failed end; None: it succeeded


def ends_of(runs: list[int], failing: list[int]) -> list[tuple[str, list[int]]]:
    """``runs`` by the end to be recorded, as said: ("finished", [...]), ("failed", [...]);
    none empty."""
    finished = [run_id for run_id in runs if run_id not in failing]
    failed = [run_id for run_id in runs if run_id in failing]
    return [(end, ids) for end, ids in (("finished", finished), ("failed", failed)) if ids]


@dataclass
class GivenBack:
    """What ``Worker.give_back_quietly`` did with the worker's runs."""

    finished: list[int] = field(default_factory=list)  # ended: its end now recorded
    unfinished: list[int] = field(default_factory=list)  # ended, that write refused
    failing: list[int] = field(default_factory=list)  # of those, the ones whose end is failed
    back: list[int] = field(default_factory=list)  # back in the queue
    refused: list[int] = field(default_factory=list)  # the database took neither: still running

    def said(self, within: str) -> str:
        """What happened to the runs, as said after "stopped after N run(s)" (not the
        refused ones: each caller says what becomes of them); ``within``: how long the
        finishing writes were tried, as " within 30 s" (or "")."""
        said = "".join(
            f"; {ids_of('run', ids)} recorded as {end}"
            for end, ids in ends_of(self.finished, self.failing)
        )
        unrecorded = [run_id for run_id in self.back if run_id in self.unfinished]
        for end, ids in ends_of(unrecorded, self.failing):
            said += f"; {ids_of('run', ids)} not recorded as {end}{within}: back in the queue"
        if plain := [run_id for run_id in self.back if run_id not in self.unfinished]:
            said += f"; {ids_of('run', plain)} back in the queue"
        return said


IDLE_SLICE_S = 0.1  # an idle wait is slept in slices this long: a signal ends it promptly


def worker_repo(db_url: str) -> Repo:
    """The queue as a worker opens it: patient (``core.queue.patience``). A shared
    queue's server restarting, a network blip, or another process holding a SQLite
    file's lock for a while (a backup, an SQL shell) must not end every worker, nor
    throw away the training in progress."""
    repo = Repo.open(db_url)
    repo.reconnect_s, repo.log = RECONNECT_S, say
    return repo


def leave_now(workers: Sequence[Worker]) -> None:
    """Second signal: every worker gives its run back, within ``EMERGENCY_REQUEUE_S`` in
    all, then the process exits at once with status 130 (``os._exit``: no cleanup that
    could hang). Threads with one deadline: the main thread may hold the write lock, and
    a locked database must not turn "at once" into one timeout per slot."""
    say("second signal: exiting now")
    threads = [threading.Thread(target=w.give_back_quietly, daemon=True) for w in workers]
    for thread in threads:
        thread.start()
    deadline = time.monotonic() + EMERGENCY_REQUEUE_S
    for thread in threads:
        thread.join(max(0.0, deadline - time.monotonic()))
    os._exit(130)


# ----- pieces -------------------------------------------------------------------------


def failure_message(exc: BaseException) -> str:
    """The short text stored with a failed run."""
    if isinstance(exc, ResconvError):  # NonFiniteLoss, OutOfMemory, ConfigError, DataError
        text = str(exc)
    elif type(exc).__name__ == "OutOfMemoryError":  # torch.cuda.OutOfMemoryError outside fit()
        text = "out of memory: " + first_line(exc)
    else:
        text = f"{type(exc).__name__}: {first_line(exc)}"
    return text if len(text) <= MAX_ERROR_CHARS else text[: MAX_ERROR_CHARS - 1] + "…"


def final_figures(
    result: FitResult, last_points: tuple[MetricPoint, ...] = (), paused_s: float | None = None
) -> FinalFigures:
    """``result``'s figures, and ``last_points``: its metric points not written yet, to
    be written with its end; ``paused_s``: the seconds its worker stood still, stopped,
    since its claim (``RunRecorder.paused_s``)."""
    loss = result.validation_loss
    return FinalFigures(
        validation_loss=loss if loss is not None and math.isfinite(loss) else None,
        param_count=result.param_count or None,
        train_seconds=result.wall_seconds,
        inputs_per_s=result.inputs_per_s,
        # 0: not measured (runs sharing one process count each other's tensors)
        peak_memory_bytes=result.peak_memory_bytes or None,
        inputs_done=result.inputs_seen,
        checkpoint_path=result.checkpoint_path,
        path_used=result.path_used,
        samples=encode_samples(_to_numpy(result.samples)),
        paused_s=paused_s,
        last_points=last_points,
    )


def _to_numpy(samples: Any) -> Any:
    if samples is not None and hasattr(samples, "detach"):  # a torch tensor
        return samples.detach().cpu().numpy()
    return samples


def _flush_quietly(recorder: RunRecorder) -> None:
    _quietly(recorder.flush)  # keep the curve up to the failure; never mask the real error


def _quietly(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> None:
    with contextlib.suppress(Exception):
        fn(*args, **kwargs)


# ----- folders -----------------------------------------------------------------------


def default_checkpoint_root(db_url: str) -> Path:
    """Next to a SQLite database file (runs.db -> checkpoints/), else ./checkpoints."""
    return default_root(sqlite_path(db_url))


def checkpoint_root_of(given: str | os.PathLike[str] | None, db_url: str) -> Path:
    """The checkpoint folder a worker uses: ``given`` (--checkpoints, as given: messages
    name it so), else the default."""
    return Path(given) if given else default_checkpoint_root(db_url)


def check_folders(checkpoint_root: Path, data_dir: str | None) -> None:
    """Refuse, before anything is claimed, the folders that would fail every run in turn:
    the checkpoint folder, and a --data-dir (never skipped once named) without the data."""
    if data_dir:
        from core.data import check_data_dir

        check_data_dir(data_dir)
    check_checkpoint_root(checkpoint_root)


def check_checkpoint_root(root: Path) -> None:
    """A ConfigError naming ``root`` and why, if checkpoints cannot be written there.

    Called before anything is claimed: found at the end of the first run instead,
    a bad folder failed every queued run in turn. The folder is created (training
    would create it anyway) and a probe file written in it and removed: trying is
    the one check that holds for root, read-only mounts and /proc alike.
    """
    try:
        _make_and_try(root, last_try=False)
    except FileNotFoundError:
        # Made, then gone before the probe: another worker sharing the root, which claimed
        # nothing, removed it (still empty) as it exited (``remove_made``). Made again.
        _make_and_try(root, last_try=True)


def _make_and_try(root: Path, last_try: bool) -> None:
    """``check_checkpoint_root``'s work, once: unless ``last_try``, FileNotFoundError
    where ``root``, made, was gone before the probe file could be made in it."""
    hint = "(--checkpoints DIR picks another folder)"
    try:  # Python 3.11's exists() raises PermissionError under a folder it cannot enter
        if root.exists() and not root.is_dir():
            raise ConfigError(f"checkpoint folder {root} is a file, not a folder {hint}")
        for folder in root.parents:
            if folder.exists() and not folder.is_dir():
                raise ConfigError(
                    f"checkpoint folder {root} cannot be created: {folder} is a file, "
                    f"not a folder {hint}"
                )
        root.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise ConfigError(
            f"checkpoint folder {root} cannot be created ({error.strerror or error}) {hint}"
        ) from None
    try:
        with tempfile.TemporaryFile(dir=root):
            pass
    except FileNotFoundError:
        if not last_try:
            raise
        raise ConfigError(f"checkpoint folder {root} was removed as it was made {hint}") from None
    except OSError as error:
        raise ConfigError(
            f"checkpoint folder {root} is not writable ({error.strerror or error}) {hint}"
        ) from None


def run_worker(
    db_url: str,
    device: str = "auto",
    until_empty: bool = False,
    max_runs: int | None = None,
    data_dir: str | None = None,
    checkpoint_root: str | Path | None = None,
    *,
    trainer: Trainer | None = None,
    install_signals: bool = True,
    stale_after_s: float = STALE_AFTER_S,
    heartbeat_s: float = HEARTBEAT_S,
    slot: Slot | None = None,
    rules: ClaimRules = NO_RULES,
    options_checked: bool = False,
) -> int:
    """Open the queue, register, and train runs until stopped; returns the runs ended.

    ``slot``: this process is one of several sharing the device (see ``core.slots``).
    ``rules``: what to claim (``--order``, ``--stack``).
    ``options_checked``: ``worker_from_args`` has checked the folders and resolved
    ``device`` (but ``auto``, chosen here with the database open): not again.
    """
    repo = worker_repo(db_url)  # first: a wrong --db is reported without importing torch
    # Absolute: the path is stored with each run, and read from other working folders.
    root = checkpoint_root_of(checkpoint_root, db_url).absolute()
    try:
        resolved = device
        if trainer is None and device == "auto":
            resolved = auto_device(repo)
        elif trainer is None and not options_checked:
            resolved = resolve_device(device)
        if not options_checked:
            check_folders(root, data_dir if trainer is None else None)
    except ResconvError:
        repo.close()
        raise
    if resolved == "cpu" and slot is None and trainer is None:
        with contextlib.suppress(ResconvError):  # a warning must not stop the worker
            warn_of_cpu_neighbours(repo)
    if slot is None or slot.index == 1:  # one machine's clock: said once
        with contextlib.suppress(ResconvError):
            warn_of_clock_offset(repo)
    if slot is not None:  # named first: a stop signal that came early is said now
        SPEAKER[0] = f"worker {slot.index}/{slot.count}"
    flags = StopFlags()
    if install_signals:
        flags.install()
    try:
        label, admission = None, None
        if slot is not None:
            from core.slots import prepare_slot

            label, admission = prepare_slot(slot, resolved, repo)
        worker = Worker(
            repo, resolved, trainer or FitTrainer(resolved, data_dir), root, flags,
            stale_after_s=stale_after_s, heartbeat_s=heartbeat_s, label=label,
            admission=admission, rules=rules, max_runs=max_runs,
        )  # fmt: skip
        return worker.loop(until_empty)
    finally:
        flags.release()
        repo.close()


def warn_of_clock_offset(repo: Repo) -> None:
    """Say so when this machine's clock is far from the database server's: ``ls``,
    ``status`` and ``show`` age each worker's heartbeats by their own clocks, and read a
    run silent at 30 s; workers, the dashboard and ``show --follow`` judge by the beats
    changing, but a starting worker's first look by age past ``SURELY_LOST_AFTER_S``
    (``Worker.recover``)."""
    offset = repo.clock_offset()
    if offset is None or abs(offset) < CLOCK_WARN_S:
        return
    how = "behind" if offset > 0 else "ahead of"
    say(
        f"warning: this machine's clock is {abs(offset):.0f} s {how} the database server's; "
        f"on machines whose clocks are {STALE_AFTER_S:.0f} s apart, each reads the other's "
        f"live runs as silent ({SURELY_LOST_AFTER_S / 60:.0f} minutes apart, a worker starting "
        "marks them lost): keep the clocks in step (NTP: timedatectl set-ntp true)"
    )


def warn_of_cpu_neighbours(repo: Repo) -> None:
    """Say so when another worker of this database already trains on this machine's CPU:
    each takes every core, and two such workers ran each run about ten times slower
    than one did (``--slots 2`` splits the cores between its slots instead)."""
    here, now = socket.gethostname(), time.time()
    pids = sorted({
        w.pid for w in repo.list_workers(skip_damaged=True)
        if w.host == here and w.device.startswith("cpu") and w.pid != os.getpid()
        and w.state in LIVE_WORKER_STATES
        and worker_alive(w.pid, registered_by(w.started_at, w.age(now)))
    })  # fmt: skip
    if pids:
        say(f"warning: another worker trains on this machine's CPU ({ids_of('pid', pids)}): both "
            "take every core and each runs far slower; stop one and start one worker with "
            "--slots 2, which splits the cores")  # fmt: skip


# ----- python -m core.worker ----------------------------------------------------------


def leave_garbage_at_exit() -> None:
    """At exit, skip the interpreter's last garbage collection (``gc.freeze``): after a
    run it walked every object torch and the training had made, about a second of each
    stopped worker's exit here (Ctrl-C, systemd, the dashboard's stop, each slot) with
    its runs long put back. The process's memory goes with it; its database is closed
    before, and handlers registered later (torch's, weakref finalizers) still run."""
    atexit.unregister(gc.freeze)  # once, however many times a process asks
    atexit.register(gc.freeze)


def refuse_before_making(args: argparse.Namespace, db_url: str) -> str | None:
    """A new database (a SQLite file, a PostgreSQL database's tables) is made only once
    the options are known good: a worker refused for its --device, --data-dir or
    --checkpoints left runs.db (and checkpoints/) behind, after saying "database runs.db
    is new". --device as ``checked_options`` gives it (None: nothing checked)."""
    path = sqlite_path(db_url)
    if path is not None and not path.parent.is_dir():
        return None  # Repo.open says what is wrong with a missing folder, making nothing
    return checked_options(args, checkpoint_root_of(args.checkpoints, db_url))


def missing_folders(root: Path) -> list[Path]:
    """``root`` (absolute: as the worker will name it; '..' after a link is the kernel's:
    the link's target's parent) and its parents that do not exist yet, leaf first: the
    ones checking it makes (``remove_made``)."""
    root = root.absolute()
    return [f for f in (root, *root.parents) if not os.path.lexists(f)]


def checked_options(args: argparse.Namespace, checkpoint_root: Path) -> str:
    """--device resolved (``auto`` stays: chosen with the database open), --data-dir and
    ``checkpoint_root`` checked: a ConfigError naming the first that is wrong."""
    device = args.device if args.device == "auto" else resolve_device(args.device)
    check_folders(checkpoint_root, args.data_dir)
    return device


def remove_made(folders: list[Path]) -> None:
    """Remove the folders ``missing_folders`` named that are still empty, leaf first (one
    that holds a checkpoint stays)."""
    for folder in folders:
        with contextlib.suppress(OSError):
            folder.rmdir()


def worker_from_args(args: argparse.Namespace, db_url: str) -> int:
    leave_garbage_at_exit()
    slots = getattr(args, "slots", 1)
    rules = ClaimRules.from_args(args)
    for option, value in (("--max-runs", args.max_runs), ("--stack", rules.stack),
                          ("--slots", slots)):  # fmt: skip
        if problem := count_problem(value, option):  # the parser refuses them: args made in code
            raise ConfigError(f"{option}: {problem}")
    # The checkpoint folders that checking it makes: removed at exit while still empty.
    # A worker refused for its --db, or one that claimed nothing (--until-empty on an
    # empty queue, a stop), left an empty checkpoints/ behind.
    made = missing_folders(checkpoint_root_of(args.checkpoints, db_url))
    try:
        return _worker_from_args(args, db_url, slots, rules)
    finally:
        remove_made(made)


def _worker_from_args(args: argparse.Namespace, db_url: str, slots: int, rules: ClaimRules) -> int:
    # Checked here once, before any slot starts (run_worker, told so, does not check
    # them again; a --slots process, started as a worker of its own, checks them in its
    # own start-up, here). A new database is made once the
    # options are known good (refuse_before_making); a --db in a missing folder says so
    # first, with no folder made for its checkpoints.
    new = is_new_file(db_url)
    checked = new or sqlite_path(db_url) is None  # options checked before the database
    device = refuse_before_making(args, db_url) if checked else None
    Repo.open(db_url).close()
    if new and not getattr(args, "slot", None):
        # Created empty now: the worker would wait for runs that go to another file.
        named = describe(db_url)
        say(f"database {named} is new: nothing queued yet (is --db right? queue runs "
            f"with: resconv-tui queue FILE.yml --db {shlex.quote(named)})")  # fmt: skip
    if device is None:  # an existing database's worker: before any folder is made or slot starts
        device = checked_options(args, checkpoint_root_of(args.checkpoints, db_url))
    if slots > 1:
        requested = getattr(args, "slot_mode", "auto")
        if args.device == "auto":  # chosen once here: every slot trains on the same device
            repo = Repo.open(db_url)
            try:
                args.device = auto_device(repo)
            finally:
                repo.close()
        device = resolve_device(args.device) if requested == "auto" else args.device
        mode = slot_mode(requested, device)
        if mode == "threads":
            from core.stream_slots import run_stream_slots

            return run_stream_slots(
                db_url, slots, args.device, args.until_empty, args.max_runs, args.data_dir,
                args.checkpoints, rules=rules,
            )  # fmt: skip
        from core.slots import supervise

        return supervise(args, db_url, slots)
    slot = parse_slot(args.slot) if getattr(args, "slot", None) else None
    run_worker(
        db_url, device, args.until_empty, args.max_runs, args.data_dir, args.checkpoints,
        slot=slot, rules=rules, options_checked=True,
    )  # fmt: skip
    return 0


def main(argv: list[str] | None = None) -> int:
    # First, before the database and torch: a stop signal while the worker starts stops
    # it as one sent later does. This module's imports (about a second) come earlier: a
    # slot process dying there of its supervisor's SIGTERM is read as stopped (core.slots).
    count_early()
    escape_unwritable_output()  # a slot's lines name experiments
    parser = ArgumentParser(  # its refusals terminal-safe
        prog="python -m core.worker", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--db", default=None, help="database URL or SQLite path")
    add_worker_arguments(parser)
    parser.add_argument(
        "--slot", default=None, metavar="I/K",
        help="run as slot I of K sharing the device (set by 'worker --slots K')",
    )  # fmt: skip
    given = sys.argv[1:] if argv is None else argv
    if refusal := misread_number_refusal(parser, given):  # `--max-runs -1e3`
        parser.error(refusal)
    args = parser.parse_args(argv)
    if args.slot and (supervisor := os.environ.get(SUPERVISOR_ENV, "")).isdigit():
        stop_with_parent(int(supervisor))  # before any run is claimed
    # --db "" is kept, to be refused (SQLite would take it for a database in memory);
    # an empty RESCONV_DB is as unset.
    if args.db is not None:
        db_url = args.db
    else:
        db_url = os.environ.get("RESCONV_DB", "").strip() or "sqlite:///runs.db"
    try:
        return worker_from_args(args, stored_url(db_url))
    except ResconvError as exc:
        print(terminal_safe(f"worker: {exc.title.lower()}: {exc}"), file=sys.stderr)
        return 2
    finally:
        release()  # where it never took over: it failed to start


if __name__ == "__main__":
    sys.exit(main())
