"""Recording one run into the queue while it trains, and the worker's signal flags.

``RunRecorder`` gives fit() its callbacks: metric rows are buffered and written in
batches (every ``FLUSH_S`` or ``FLUSH_ROWS``), the cancel flag is read at most every
``CANCEL_CHECK_S`` and the signal flag at every step. ``Heartbeat`` is a thread that
keeps the worker row (with GPU stats) and the run's heartbeat fresh every
``HEARTBEAT_S``, because fit() can be silent for long stretches (a validation pass
over 10,000 images on a CPU, the first CUDA kernels compiling).

Since the heartbeat beats whatever the training does, it also watches for a training
that hangs (a CUDA call that never returns, a lock, a dead file system): no step for
``STALL_AFTER_S`` and it says so in the log with the training thread's stack, and
marks the worker row "stalled" (the dashboard and ``status`` show it) until steps
come again. It cannot end the hung call: that takes ``kill -9``.
"""

from __future__ import annotations

import os
import signal
import socket
import sys
import threading
import time
import traceback
from collections import deque
from collections.abc import Callable
from types import FrameType
from typing import TYPE_CHECKING

from core.early_signals import in_slot, same_stop, stop_signals, take_over
from core.gpu import GpuMonitor
from core.pauses import PAUSES
from core.processes import PARENT_GONE
from core.queue import MetricPoint, QueueError, Repo
from core.queue.db import DEFAULT_BUSY_TIMEOUT_S
from core.queue.patience import passing_reason, waited_s
from core.queue.rows import TRAIN_LOSS, VAL_LOSS
from core.queue.views import format_age, ids_of

if TYPE_CHECKING:  # torch-using modules are imported when the worker starts training
    from core.train import FitCallbacks, TrainPoint, ValidationPoint

HEARTBEAT_S = 3.0
FLUSH_S = 1.0
FLUSH_ROWS = 500
CANCEL_CHECK_S = 1.0
LOG_EVERY = 20  # steps per TrainPoint
LOG_EVERY_S = 10.0  # or seconds of training, where 20 steps take longer (a CPU)
# No training step for this long: the run is stalled. Far above anything a healthy run
# spends between steps on a GPU: a validation pass or a first compile takes about a
# minute. A big model on a CPU takes seconds a step, and its validation pass (10,000
# images, forward only) about 50 steps' time: the limit grows to STALL_STEPS steps.
STALL_AFTER_S = 600.0
STALL_STEPS = 200
# A step's time is the median of the last STEP_TIMES gaps between steps, so one gap that
# held a validation pass does not stretch the limit. Each run's recorder is timed on its
# own: a stack asks every run's recorder before each step, one after the other.
STEP_TIMES = 15
# A running run's in/s (and the ETAs paced by it) is its steps' rate over about its last
# RECENT_RATE_S of training: the rate since its start kept a slow stretch for good (a
# run that trained at 213 inputs/s read 79 after the CPU had been busy for a while, and
# its ETA was 2.7 times too long). Its final figure, once it ends, is its whole run's.
RECENT_RATE_S = 30.0

# The first stop signal's handler has not run this long after it came: said so.
UNTAKEN_AFTER_S = 1.0

SPEAKER = ["worker"]  # "worker 2/4" in a slot process: the slots share one terminal
_THREAD_SPEAKER = threading.local()  # the same for slot threads sharing one process


def set_thread_speaker(name: str) -> None:
    """Name the messages of this thread (a slot thread of ``core.stream_slots``)."""
    _THREAD_SPEAKER.name = name


def say(message: str) -> None:
    speaker = getattr(_THREAD_SPEAKER, "name", SPEAKER[0])
    # One write per line: print() writes the text and the newline separately, and slot
    # threads printing at the same moment would run their lines together.
    try:
        sys.stdout.write(f"{time.strftime('%H:%M:%S')} {speaker}: {message}\n")
        sys.stdout.flush()
    except OSError:
        pass  # the terminal is gone (SSH dropped: EIO): the database still records everything


# ----- signals ------------------------------------------------------------------------


class StopFlags:
    """Set by signal handlers, read by the loop. Handlers do nothing else (but the 2nd)."""

    def __init__(self) -> None:
        self.signals = 0
        self.on_second: Callable[[], None] = lambda: None
        self.first: tuple[int, float] | None = None  # the first signal, and when
        # The runs training now (their recorders; the worker adds and removes them), so
        # that the first signal says which of them end their final pass first.
        self.training: dict[int, RunRecorder] = {}
        # Held while a second signal is acted on; reentrant: a third one, whose handler
        # runs in the main thread while that thread acts on the second, acts again.
        self.leaving = threading.RLock()
        self.wakeup: tuple[socket.socket, socket.socket] | None = None  # (watch_arrivals)
        self.wakeup_before = -1

    @property
    def stop(self) -> bool:
        return self.signals > 0

    def handle(self, signum: int, _frame: FrameType | None) -> None:
        self.note(signum, time.monotonic())

    def note(self, signum: int, now: float, early: bool = False) -> None:
        """Stop signal ``signum``, come at ``now`` (``time.monotonic``); ``early``: while
        the worker started (``core.early_signals``), before it had claimed anything."""
        name = signal.Signals(signum).name
        if self.signals == 1 and same_stop(self.first, signum, now):
            # A slot signalled with its whole service (systemd): its supervisor's
            # forwarded copy is not "again: at once" (core.early_signals).
            say(f"{name} again (from the supervisor too): the same stop")
            return
        self.signals += 1
        if self.signals == 1:
            self.first = (signum, now)
            # A slot's "again" goes to its supervisor, whose own line says so ("again: at
            # once"): K slots each saying "send it again" to a person who pressed Ctrl-C
            # once misled. Nor is the signal theirs: after a Ctrl-C, "SIGTERM: stopping"
            # from each slot read as if something else had stopped them.
            # Early, no step exists yet: "stopping after this step" after "stops as soon
            # as it has started" claimed one.
            when = "before its first run" if early else f"after this step{self.finishing_note()}"
            if in_slot():
                say(f"asked to stop ({name}): stopping {when}")
                return
            say(f"{name}: stopping {when} (send it again to exit at once)")
        else:
            self.second()

    def second(self) -> None:
        """Exit at once (``on_second``). The main thread's handler and the arrivals watch
        may both see the second signal: the later one waits here while the first gives
        the runs back, until its ``os._exit`` ends them both. Returned, the main thread
        went on to its own way out meanwhile (a stop in an outage: "stopping on a
        database error", status 2) and could exit first."""
        with self.leaving:
            # Seen by the watch first, the main thread's handler has not counted it yet:
            # nothing more is claimed or trained meanwhile.
            self.signals = max(self.signals, 2)
            self.on_second()

    def finishing_note(self) -> str:
        """The runs in their final pass, which is let finish (``core.train``): on a CPU
        it ran on for 87 s after "stopping after this step", and the run succeeded."""
        try:  # in a signal handler, while slot threads may add or remove their runs
            finishing = sorted(r.run_id for r in list(self.training.values()) if r.trained_all())
        except RuntimeError:
            return ""
        if not finishing:
            return ""
        its = "its" if len(finishing) == 1 else "their"
        return f"; {ids_of('run', finishing)} trained all {its} inputs: {its} final pass first"

    def install(self) -> None:
        # SIGHUP: the terminal of a worker started from a shell went away (SSH dropped).
        # Stopping cleanly puts its run back in the queue; dying would leave it "lost".
        # Under nohup (SIGHUP ignored) the person asked to train on: it stays ignored.
        for sig in stop_signals():
            signal.signal(sig, self.handle)
        signal.signal(PARENT_GONE, self.parent_gone)
        # A signal that came while the process started (counted by core.early_signals,
        # before these handlers) stops the worker as one sent now does; "the same stop"
        # counts from when it came, not from now (a person's second is not swallowed).
        for signum, when in take_over():
            self.note(signum, when, early=True)
        self.watch_arrivals(self.first)

    def watch_arrivals(self, first: tuple[int, float] | None) -> None:
        """A second stop signal exits at once even while the main thread waits in a
        driver call: Python runs a handler only once that thread is back in Python code,
        up to SQLite's busy timeout (15 s) later, and two signals of one kind that come
        before then run it once: Ctrl-C twice (or ``stop``, then ``stop --now``) while the
        worker waited for another process's write lock was one polite stop, said 15 s
        later. The C-level handler writes each signal's number to the wakeup socket as it
        comes; a thread reads them there and acts on a second (``first``: the first stop
        signal, counted already, as it came while the worker started). The first is left
        to the handler: a stop waits for the training's next step anyway."""
        reader, writer = socket.socketpair()
        writer.setblocking(False)
        self.wakeup_before = signal.set_wakeup_fd(writer.fileno(), warn_on_full_buffer=False)
        self.wakeup = (reader, writer)  # open until release()
        stops = {int(sig) for sig in stop_signals()}
        threading.Thread(
            target=self.watch, args=(reader, stops, first), name="signals", daemon=True
        ).start()

    def release(self) -> None:
        """Stop watching arrivals (the worker is done): the wakeup socket as it was
        before ``install``, the watching thread ended. A process that goes on (a test, a
        caller of ``run_worker``) must not exit on a signal meant for someone else."""
        if self.wakeup is None:
            return
        signal.set_wakeup_fd(self.wakeup_before)
        for end in self.wakeup:
            end.close()
        self.wakeup = None

    def watch(
        self, reader: socket.socket, stops: set[int], first: tuple[int, float] | None
    ) -> None:
        """The watching thread: each stop signal as it comes; the second (not the same
        stop, in a slot) exits at once."""
        while arrived := _received(reader):
            for signum in arrived:
                now = time.monotonic()
                if signum not in stops or same_stop(first, signum, now):
                    continue
                if first is None:
                    first = (signum, now)
                    threading.Timer(UNTAKEN_AFTER_S, self.say_untaken, args=(signum,)).start()
                else:
                    self.second()

    def say_untaken(self, signum: int) -> None:
        """Said where the first stop signal's handler has not run ``UNTAKEN_AFTER_S`` after
        it came: the main thread is in a call (a write waiting for another process's lock,
        up to the busy timeout). Nothing was said for those seconds, and a person took the
        worker for one that ignored Ctrl-C."""
        if self.signals == 0:
            name = signal.Signals(signum).name
            # As note() says it: a slot's signal is its supervisor's forwarded stop (after
            # a Ctrl-C, "SIGTERM: ..." from each slot read as if something else stopped
            # it), and its "again" goes to the supervisor.
            asked, again = f"{name}:", "; send it again to exit at once"
            if in_slot():
                asked, again = f"asked to stop ({name}):", ""
            say(f"{asked} the worker stops once its current call returns (a write waits up "
                f"to {DEFAULT_BUSY_TIMEOUT_S:g} s for another process's database lock)"
                f"{again}")  # fmt: skip

    def parent_gone(self, _signum: int, _frame: FrameType | None) -> None:
        """A slot's supervisor died: stop after this step, however many times it says so."""
        if self.signals == 0:
            self.signals = 1
            say("supervisor gone: stopping after this step")


def _received(reader: socket.socket) -> bytes:
    """The signal numbers come since the last read (b"": watching has ended)."""
    try:
        return reader.recv(64)
    except OSError:  # closed by release() meanwhile
        return b""


# ----- recording one run --------------------------------------------------------------


class RunRecorder:
    """fit() callbacks backed by the queue: batched metric rows, cached cancel flag."""

    def __init__(
        self,
        repo: Repo,
        run_id: int,
        flags: StopFlags,
        clock: Callable[[], float] = time.monotonic,
        on_step: Callable[[], None] = lambda: None,
        on_alive: Callable[[], None] = lambda: None,
        total_inputs: int | None = None,
        worker_id: str | None = None,
    ) -> None:
        self.repo, self.run_id, self.flags, self.clock = repo, run_id, flags, clock
        self.worker_id = worker_id  # its writes and cancel checks hold while the run is its
        # Its last steps' point is written at once: the final validation pass, samples and
        # checkpoints follow, and the run read 85% with an ETA held at 12 s meanwhile.
        self.total_inputs = total_inputs
        self.on_step = on_step  # the heartbeat's stall watch: a step is being taken
        self.on_alive = on_alive  # and a validation batch: alive, but no step to time
        self.buffer: list[MetricPoint] = []
        self.inputs_done: int | None = None
        self.train_seconds = 0.0  # the training steps' time so far, summed from the points
        self.trained = 0  # inputs at the last TrainPoint (a validation point's do not count)
        # (train_seconds, trained) at the points of about the last RECENT_RATE_S.
        self.recent: deque[tuple[float, int]] = deque([(0.0, 0)])
        self.last_flush = self.last_cancel_check = clock()
        # Its worker's stops from here on are this attempt's (``paused_s``).
        PAUSES.start()
        self.paused_before = PAUSES.paused_s()
        self.cancelled = False
        self.stopped_by_signal = False
        # Whether the run was still this worker's at its last metric write: False once
        # that write found another attempt's (recovered as lost while this worker was
        # paused, retried, claimed by another), None when the write did not answer (the
        # database away). A checkpoint is written unless False (``may_checkpoint``).
        self.its_own: bool | None = True
        # Why a flush was refused as its worker was being stopped (None: all written): its
        # points stay in ``buffer``, for the run's end to write (``last_points``).
        self.refused: str | None = None

    def callbacks(self) -> FitCallbacks:
        from core.train import FitCallbacks

        return FitCallbacks(
            on_train_loss=self.on_train_loss,
            on_validation=self.on_validation,
            should_stop=self.should_stop,
            between_batches=self.between_batches,
            log_every=LOG_EVERY,
            log_every_s=LOG_EVERY_S,
            may_save_on_stop=self.still_its_run,
            may_checkpoint=self.may_checkpoint,
            waited_s=waited_s,
        )

    def trained_all(self) -> bool:
        """Every input trained: its final pass, samples and checkpoints are left."""
        return self.total_inputs is not None and self.trained >= self.total_inputs

    def still_its_run(self) -> bool:
        """Whether the run is still this worker's (another may have claimed it since)."""
        return self.worker_id is None or self.repo.is_running_for(self.run_id, self.worker_id)

    def may_checkpoint(self) -> bool:
        """Whether a validation pass's checkpoints may be written, as the pass's own point
        write found (no query of its own): not into a folder another attempt of the run
        uses now. Unknown (the database away) writes them: an outage must not cost the
        run its checkpoints."""
        return self.its_own is not False

    def on_train_loss(self, p: TrainPoint) -> None:
        for name, value in (
            (TRAIN_LOSS, p.loss),
            ("lr", p.lr),
            ("inputs_per_s", p.inputs_per_s),
            ("memory_bytes", p.memory_bytes),  # None on a CPU: no point, rather than 0
        ):
            if value is not None:
                self.buffer.append(MetricPoint(p.step, p.inputs, name, float(value)))
        if p.inputs_per_s > 0:  # each point's rate covers the inputs since the one before
            self.train_seconds += (p.inputs - self.trained) / p.inputs_per_s
        total = self.total_inputs
        last = total is not None and self.trained < total <= p.inputs
        self.trained = self.inputs_done = p.inputs
        self.recent.append((self.train_seconds, self.trained))
        # Keep one point at or before the window's start, so the window is whole.
        while len(self.recent) > 2 and self.recent[1][0] <= self.train_seconds - RECENT_RATE_S:
            self.recent.popleft()
        if last or len(self.buffer) >= FLUSH_ROWS:
            self.flush()

    def on_validation(self, p: ValidationPoint) -> None:
        self.buffer.append(MetricPoint(p.step, p.inputs, VAL_LOSS, float(p.loss)))
        self.inputs_done = p.inputs
        self.flush()  # rare and what people wait for: show it now

    def paused_s(self) -> float:
        """Seconds its worker's process stood still, stopped, since the run was claimed
        (``core.pauses``): the wall time since its claim holds them, its pace must not."""
        return PAUSES.paused_s() - self.paused_before

    def recent_rate(self) -> float | None:
        """The training steps' inputs per second over about the last RECENT_RATE_S of
        training time (all of it, while there is less)."""
        (then_s, then_inputs), (now_s, now_inputs) = self.recent[0], self.recent[-1]
        return (now_inputs - then_inputs) / (now_s - then_s) if now_s > then_s else None

    def should_stop(self) -> bool:
        """Called before every step: must cost next to nothing most of the time."""
        self.on_step()
        return self.stop_asked()

    def between_batches(self) -> bool:
        """Called before each batch of a validation pass between epochs: the run is
        alive, but a batch, forward only, is no step (the stall limit grows with the
        steps' time: timed as steps, a pass's batches shrank it)."""
        self.on_alive()
        return self.stop_asked()

    def stop_asked(self) -> bool:
        if self.flags.stop:
            self.stopped_by_signal = True
            return True
        now = self.clock()
        if now - self.last_flush >= FLUSH_S:
            self.flush()
        if now - self.last_cancel_check >= CANCEL_CHECK_S:
            self.last_cancel_check = now
            self.cancelled = self.repo.is_cancel_requested(self.run_id, self.worker_id)
        return self.cancelled

    def flush(self) -> None:
        self.last_flush = self.clock()
        if self.buffer or self.inputs_done is not None:
            rate = self.recent_rate()
            self.its_own = None  # until the write answers
            try:
                self.its_own = self.repo.add_metrics(
                    self.run_id,
                    self.buffer,
                    self.inputs_done,
                    owner=self.worker_id,
                    inputs_per_s=rate,
                    paused_s=self.paused_s(),
                )
            except QueueError as error:
                if not self.kept_for_its_end(error):
                    raise
                return
            self.buffer, self.refused = [], None

    def kept_for_its_end(self, error: QueueError) -> bool:
        """Whether the flush ``error`` refused keeps its points for the run's end: refused
        as the worker is being stopped, for a reason that passes (another process's lock,
        a server away). Raised, it ended a run in its final pass (the one a stop lets
        finish) or one already trained, whose point it was: the worker then gave the run
        back, to train again from scratch. The training goes on to its end instead, and
        the worker writes the points with it (``last_points``), or gives the run back
        only if that write is refused too."""
        reason = passing_reason(error, self.repo.engine.dialect.name)
        if reason is None or not self.flags.stop:
            return False
        if self.refused is None:
            say(f"run {self.run_id}: metric points not written (database {reason}): "
                "to be written with the run's end")  # fmt: skip
        self.refused = reason
        return True

    def last_points(self) -> tuple[MetricPoint, ...]:
        """The points not written yet (refused as the worker was being stopped)."""
        return tuple(self.buffer)


def running_clock() -> float:
    """The monotonic clock less this process's stops (``core.pauses``; none are counted
    until its watch has started, as a run's recorder starts it: a stall is judged only
    while runs train)."""
    return PAUSES.running_s()


class Heartbeat(threading.Thread):
    """Keeps the worker row (with GPU stats) and the current runs' heartbeats fresh."""

    def __init__(
        self,
        repo: Repo,
        worker_id: str,
        gpu: GpuMonitor,
        interval: float,
        stopping: Callable[[], bool] = lambda: False,
        stall_after_s: float = STALL_AFTER_S,
        clock: Callable[[], float] | None = None,
        after_beat: Callable[[], None] = lambda: None,
    ) -> None:
        super().__init__(name="heartbeat", daemon=True)
        self.repo, self.worker_id, self.gpu, self.interval = repo, worker_id, gpu, interval
        self.run_ids: tuple[int, ...] = ()  # set by the main thread (watch): its run or stack
        # The stall watch: when the training thread last took a step (or started its runs).
        # Its clock stands still while the process is stopped: resumed after a stop of 10
        # minutes (Ctrl-Z), this thread, first to run, found no step for 10 minutes, and
        # logged a stack and marked the worker stalled for a hang that never was.
        self.stall_after_s, self.clock = stall_after_s, clock or running_clock
        self.stepped_at = self.clock()
        self.step_times: deque[float] = deque(maxlen=STEP_TIMES)  # the limit grows with them
        # Each recorder's last step (the first one's gap is model build and data loading).
        self.last_step: dict[int, float] = {}
        self.training_thread: int | None = None
        # What this thread last wrote to the row, changed only once written: a failed
        # write is tried again at the next beat. The lock keeps a run's start or end
        # (watch) from interleaving with a stall being judged and written.
        self.stalled = False
        self.stall_lock = threading.Lock()
        # Asked to stop (the first signal): the row says "stopping" from the next beat, so
        # dashboards do not signal again (a second signal means "exit at once").
        self.stopping = stopping
        self.done = threading.Event()
        self.failures = 0
        # The worker's look for other workers' lost runs while it trains (the training
        # thread is busy for hours beside a long GPU run): on this thread, not slowing it.
        self.after_beat = after_beat

    def run(self) -> None:
        looks_failed = 0
        while not self.done.wait(self.interval):
            self.beat()
            try:
                self.after_beat()
            except Exception as error:  # any error: it must not end the beats
                # The look for other workers' lost runs is best effort; had its error
                # ended this thread, this worker's own runs would go unbeaten and be
                # marked lost by the others 30 s later.
                looks_failed += 1
                if looks_failed == 1:
                    say(f"look for other workers' lost runs failed (it goes on): {error!r}")

    def watch(self, run_ids: tuple[int, ...]) -> None:
        """Called by the training thread as its runs start (``run_ids``) and end (())."""
        with self.stall_lock:
            self.stepped_at = self.clock()
            self.step_times.clear()
            self.last_step = {}
            self.training_thread = threading.get_ident()
            # The row's state follows the claim (running) or the run's end (idle) now.
            self.stalled = False
            self.run_ids = run_ids

    def stepped(self, run_id: int = 0) -> None:
        """Called by the training thread before every step of ``run_id``: a clock read, a
        few stores."""
        now = self.clock()
        self.stepped_at = now
        last = self.last_step.get(run_id)
        if last is not None:
            self.step_times.append(now - last)
        self.last_step[run_id] = now

    def alive(self, run_id: int = 0) -> None:
        """Called by the training thread before each batch of a validation pass: no
        stall, but no step either; the gap from its last step, or to its next, spans
        the pass and is timed as none."""
        self.stepped_at = self.clock()
        self.last_step.pop(run_id, None)

    def stall_limit(self) -> float:
        try:
            times = sorted(self.step_times)  # the training thread appends meanwhile
        except RuntimeError:
            times = []
        step_s = times[len(times) // 2] if times else 0.0
        return max(self.stall_after_s, STALL_STEPS * step_s)

    def beat(self) -> None:
        gpu = self.gpu.sample()
        try:
            run_ids = self.run_ids  # one read: the main thread may replace it meanwhile
            first, more = (run_ids[0], run_ids[1:]) if run_ids else (None, ())
            self.repo.heartbeat(self.worker_id, run_id=first, more_run_ids=more, gpu=gpu,
                                stopping=self.stopping())  # fmt: skip
            with self.stall_lock:
                self.watch_for_stall(self.run_ids)
            self.failures = 0
        except QueueError as exc:  # a locked database now and then must not kill the worker
            self.failures += 1
            if self.failures == 1:
                say(f"heartbeat not written: {exc}")

    def watch_for_stall(self, run_ids: tuple[int, ...]) -> None:
        """Say once when the runs stop taking steps, and again when they take one.

        The row goes "running" -> "stalled" and back only from those states: a worker
        asked to stop keeps saying "stopping" (stop then knows a second signal means
        "at once"), and a run that ended meanwhile leaves its row "idle"."""
        still_for = self.clock() - self.stepped_at
        stalled = bool(run_ids) and still_for > self.stall_limit()
        if stalled == self.stalled:
            return
        self.repo.mark_worker_stalled(self.worker_id, stalled)  # may raise: tried again
        self.stalled = stalled
        runs = ids_of("run", run_ids)
        if stalled:
            say(f"{runs}: no training step for {format_age(still_for)}: stalled. "
                "The training thread is at:\n" + self.training_stack()
                + f"A hung call cannot be interrupted: 'kill -9 {os.getpid()}' ends this "
                "worker process and every run it trains (marked failed: worker lost)")  # fmt: skip
        else:
            say(f"{runs}: training again")

    def training_stack(self) -> str:
        frame = sys._current_frames().get(self.training_thread or -1)
        return "".join(traceback.format_stack(frame)) if frame is not None else "(unknown)\n"

    def stop(self) -> None:
        self.done.set()
        self.join(timeout=5)
