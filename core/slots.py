"""``worker --slots K``: K worker processes ("slots") training at once on one device.

Processes rather than threads or CUDA streams in one process: each slot is a plain
worker (``python -m core.worker --slot I/K``) with its own worker row, heartbeat,
signal flags and failure handling, so a crash or an out-of-memory error in one run
touches no other, and everything the single worker guarantees holds per slot.

The supervisor here only starts the slots, forwards signals and waits:

* Slots run in their own process group, so a Ctrl-C in the terminal reaches the
  supervisor alone and each slot gets exactly one forwarded signal per signal sent.
* First SIGINT/SIGTERM/SIGHUP (SIGHUP stays ignored under ``nohup``): each slot gets
  SIGTERM (finishes its step, puts its run back, exits 0). Second: each gets SIGINT
  (puts its run back within 2 s and exits 130; another signal than the first, since
  two SIGTERMs that reach a slot before its Python handler runs are handled as one);
  any slot still alive ``KILL_AFTER_S`` later gets SIGKILL. A slot that gets the first
  SIGTERM twice, itself and from here (systemd signals every process of the service),
  takes it as one stop (``core.early_signals.SAME_STOP_S``).
* A stop signal in the supervisor's first moments, before its handlers (imports, the
  database, torch), is counted (``core.early_signals``): no slot is started, and it
  exits 0 (a second one: 130 at once). A slot's own first moments are covered the same
  way, but for Python's start and its module imports: a slot that dies there of the
  SIGTERM forwarded to it, or sent to it alone (``kill PID``), or at its very end, once
  Python has restored the default handlers, has claimed nothing, and counts as stopped
  cleanly (status 0), not killed.
* A slot that exits while others go on (killed by the kernel's OOM killer, ``kill -9``)
  cannot say so itself: the supervisor marks its runs failed "worker lost" at once (it
  knows the pid), so they do not sit ``running`` until a worker next starts. Slots that
  exit cleanly have already put their runs back, so this touches nothing of theirs.
  A slot killed by a signal while no stop was asked for is started again (at most
  ``RESTARTS`` times per slot), so ``--slots K`` keeps K slots training; not one that
  died of a stop signal (SIGTERM, SIGINT, SIGHUP) sent to it alone: that slot was asked
  to stop, as one with its handlers in place stops (and stays down). Nor one killed
  while its row said ``stopping`` (``resconv-tui stop`` signals the slots, not the
  supervisor: a kill -9 or the OOM killer in its final pass after that): started again,
  it claimed a run, the stop undone.
* A slot whose supervisor dies (``kill -9``, the OOM killer) gets the kernel's
  parent-death signal (Linux; ``core.processes.stop_with_parent``, which each slot
  asks for itself): it finishes its step, puts its run back and exits, rather than
  training on with no supervisor to stop or restart it.
* It exits when every slot has exited (with ``--until-empty`` each slot leaves when
  the queue is empty), with the first non-zero status of a slot's last process, else
  0: a slot killed and started again that then stopped cleanly counts as 0 (its lost
  run is recorded), and the closing line names the slots started again.
* Ctrl-Z (SIGTSTP) stops the slots with the supervisor (SIGSTOP to each), and ``fg``
  or ``bg`` (SIGCONT) continues them: in their own process groups they did not get the
  terminal's SIGTSTP, and trained on, the GPU busy, while the job read as stopped.
* ``--max-runs N`` is per slot, and a slot started again only has what is left of it:
  the runs its earlier processes ended (their worker rows' count) and the runs they
  left running (lost with them) are taken off. A slot with none left stays down.

The handlers only count signals; the wait loop does the forwarding.
"""

from __future__ import annotations

import argparse
import os
import shlex
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from types import FrameType

from core.early_signals import STOP_SIGNALS, stop_signals, take_over
from core.gpu import free_for_new_runs
from core.packing import Admission, Slot, threads_per_slot
from core.processes import SUPERVISOR_ENV
from core.queue import Repo
from core.queue.db import hint_url, holds_password
from core.queue.views import ids_of
from core.worker import say
from core.worker_options import ClaimRules

KILL_AFTER_S = 5.0
RESTARTS = 3  # per slot: a slot killed again and again (say, by the OOM killer) stays down
POLL_S = 0.1
SECOND = signal.SIGINT  # what a slot gets for the second signal (the first: SIGTERM)
RETRY_LOST = "resconv-tui retry --cause worker-lost"


def supervise(args: argparse.Namespace, db_url: str, slots: int) -> int:
    """Run ``slots`` slot workers with the worker options in ``args`` until all exit."""
    # Open once here: a wrong --db is reported once, and K slots do not race to
    # create the schema of a new database.
    Repo.open(db_url).close()
    if holds_password(db_url):  # off the slots' command lines: they read it from here
        os.environ["RESCONV_DB"] = db_url
    commands = [slot_command(args, db_url, Slot(i, slots)) for i in range(1, slots + 1)]
    on_exit = lambda pid, since: recover_slot(db_url, pid, since)  # noqa: E731
    retry = retry_lost_command(getattr(args, "db", None))
    return Supervisor(commands, on_exit=on_exit, max_runs=args.max_runs, retry=retry).run()


def retry_lost_command(db_given: str | None) -> str:
    """The command that queues lost runs again, with the ``--db`` as given (quoted for a
    shell): copied without it, it would act on ./runs.db. A password is left out (it goes
    to the terminal and the worker's log: ``core.queue.db.hint_url``)."""
    if not db_given:
        return RETRY_LOST
    return f"{RETRY_LOST} --db {shlex.quote(hint_url(db_given))}"


@dataclass(frozen=True)
class SlotExit:
    """What an exited slot process left in the database."""

    lost: list[int]  # runs it left running, now marked failed "worker lost"
    runs_ended: int  # runs it ended itself (its worker row's count)
    # Its row said "stopping" when it died: a stop had reached it (`stop`, the dashboard's
    # `w`, a signal to it alone), and a kill -9 or the OOM killer then ended its last pass.
    asked_to_stop: bool = False

    @property
    def runs(self) -> int:
        """Runs of its ``--max-runs`` it used up, the lost ones included."""
        return self.runs_ended + len(self.lost)


def recover_slot(db_url: str, pid: int, since: float) -> SlotExit:
    """Runs still ``running`` under an exited slot process (started at ``since``), marked
    failed "worker lost", and how many runs it ended. Its row may already say "lost" (a
    dashboard or another slot got there first), and an older row may have had its pid."""
    repo = Repo.open(db_url)
    try:
        host = socket.gethostname()
        rows = [
            w for w in repo.list_workers(include_gone=True, skip_damaged=True)
            if w.host == host and w.pid == pid and w.started_at >= since - 1.0
        ]  # fmt: skip
        dead = [w.id for w in rows]
        # Read before the recovery below, which makes its row "lost".
        asked = any(w.state == "stopping" for w in rows)
        lost = repo.recover_stale(stale_after_s=None, dead_worker_ids=dead) if dead else []
        return SlotExit(lost, sum(w.runs_done for w in rows), asked)
    finally:
        repo.close()


def slot_command(args: argparse.Namespace, db_url: str, slot: Slot) -> list[str]:
    # A command line is for every user of the box to read (ps), for the slot's whole life:
    # a URL holding a password goes as RESCONV_DB in its environment (supervise sets it).
    db = [] if holds_password(db_url) else ["--db", db_url]
    command = [sys.executable, "-m", "core.worker", *db, "--device", args.device]
    command += ["--slot", f"{slot.index}/{slot.count}"]
    if args.until_empty:
        command.append("--until-empty")
    if args.max_runs is not None:
        command += ["--max-runs", str(args.max_runs)]
    if args.data_dir:
        command += ["--data-dir", args.data_dir]
    if args.checkpoints:
        command += ["--checkpoints", args.checkpoints]
    return command + ClaimRules.from_args(args).options()


class Supervisor:
    def __init__(
        self,
        commands: Sequence[list[str]],
        kill_after_s: float = KILL_AFTER_S,
        on_exit: Callable[[int, float], SlotExit] | None = None,
        max_runs: int | None = None,
        retry: str = RETRY_LOST,
    ) -> None:
        self.commands, self.kill_after_s = commands, kill_after_s
        self.retry = retry  # the command that queues a lost slot's runs again
        # A slot process's pid and start time -> what it left (its lost runs recorded).
        self.on_exit = on_exit
        self.max_runs = max_runs  # per slot, as each slot's command says
        self.runs_used = [0] * len(commands)  # per slot, by its processes that exited
        self.children: list[subprocess.Popen[bytes]] = []  # the current process of each slot
        self.started: list[float] = []  # when each was started (time.time())
        self.reaped = [False] * len(commands)  # the current process's exit was handled
        self.restarts = [0] * len(commands)
        self.statuses = [0] * len(commands)  # each slot's last process's exit status
        self.runs_ended = 0  # by all slot processes, as their worker rows count them
        self.signals = self.forwarded = 0
        self.kill_at: float | None = None
        self.suspend_asked = False  # a Ctrl-Z (SIGTSTP) not acted on yet

    def handle(self, _signum: int, _frame: FrameType | None) -> None:
        self.signals += 1

    def ask_suspend(self, _signum: int, _frame: FrameType | None) -> None:
        self.suspend_asked = True

    def run(self) -> int:
        # SIGHUP stays ignored under nohup, as in a worker: the person asked the slots
        # to train on after logging out, and forwarding it as SIGTERM stopped them all.
        for sig in stop_signals():
            signal.signal(sig, self.handle)
        # Stop signals that came while this process started (core.early_signals counted
        # them): no slot is started only to be stopped.
        self.signals += len(take_over())
        if self.signals:
            say("stopped before the slots started")
            return 0
        self.children = [self.start(command) for command in self.commands]
        self.started = [time.time()] * len(self.children)
        pids = ", ".join(str(c.pid) for c in self.children)
        say(f"{len(self.children)} slots started as processes (pids {pids}); Ctrl-C stops them")
        before = signal.signal(signal.SIGTSTP, self.ask_suspend)
        try:
            while self.running():
                self.forward()
                self.suspend_if_asked()
                self.reap(restart=True)
                time.sleep(POLL_S)
        finally:
            signal.signal(signal.SIGTSTP, before)
        self.reap(restart=False)  # all have exited: none is started again now
        # A slot killed and started again that then ended cleanly ends with 0: its lost
        # run is recorded (worker lost), and a clean stop must read as one (exit 0).
        codes = self.statuses
        again = [f"slot {i + 1} {count}x" for i, count in enumerate(self.restarts) if count]
        restarted = f"; started again after being killed: {', '.join(again)}" if again else ""
        # Worded as the thread slots' closing line, with what only processes have after it.
        statuses = f"exit statuses {', '.join(map(str, codes))}{restarted}"
        say(f"all slots stopped ({self.runs_ended} run(s) ended; {statuses})")
        return next((code for code in codes if code != 0), 0)

    def running(self) -> bool:
        """Whether a slot still runs. Polls every child (``any()`` would stop at the first
        live one and never see a later slot exit)."""
        states = [child.poll() for child in self.children]
        return None in states

    def forward(self) -> None:
        while self.forwarded < self.signals:
            self.forwarded += 1
            if self.forwarded == 1:
                say("stopping the slots after their current step (again: at once)")
                self.send(signal.SIGTERM)
                continue
            if self.kill_at is None:
                self.kill_at = time.monotonic() + self.kill_after_s
            # Not SIGTERM again: two of one signal that reach a slot before its Python
            # handler runs (its main thread in a long C call: a training step, an import)
            # run that handler once, and "at once" was lost. Another one is counted.
            self.send(SECOND)
        if self.kill_at is not None and time.monotonic() > self.kill_at:
            self.send(signal.SIGKILL)

    def suspend_if_asked(self) -> None:
        """After a Ctrl-Z: stop the slots, then this process as the terminal asked; once
        continued (``fg``, ``bg``: SIGCONT), continue them. A supervisor that the kernel
        does not stop (an orphaned process group drops SIGTSTP) continues them at once."""
        if not self.suspend_asked:
            return
        self.suspend_asked = False
        self.send(signal.SIGSTOP)
        signal.signal(signal.SIGTSTP, signal.SIG_DFL)
        os.kill(os.getpid(), signal.SIGTSTP)  # stopped here, before kill returns
        signal.signal(signal.SIGTSTP, self.ask_suspend)
        self.send(signal.SIGCONT)

    def reap(self, restart: bool) -> None:
        """Say which slot exited on its own, record the runs it left running lost, and
        (``restart``) start a slot that was killed again."""
        for index, child in enumerate(self.children):
            if child.returncode is None or self.reaped[index]:
                continue
            self.reaped[index] = True
            self.statuses[index] = exit_status(child.returncode)
            if child.returncode == -signal.SIGTERM:
                # Asked to stop, and the SIGTERM (forwarded from here, or sent to this slot
                # alone: kill PID) took the default action: it came before the slot had
                # its handlers (starting Python, importing), or after it had finished
                # (Python's exit restores the defaults). A slot claims nothing before it
                # has them: a clean stop, not a kill.
                self.statuses[index] = 0
            left = self.record_lost(child, self.started[index])
            self.runs_used[index] += left.runs
            # Dead of a stop signal's default action: asked to stop, not crashed. Started
            # again, the slot a person stopped on its own (kill PID) trained on.
            asked = -child.returncode in STOP_SIGNALS
            killed = child.returncode < 0 and not asked
            if not (restart and killed and not self.signals):
                continue
            if left.asked_to_stop:
                # Killed after a stop reached it (`stop` signals the slots, not this
                # process: kill -9 of one still in its final pass, the OOM killer): it
                # was started again and claimed a run, the stop of it undone.
                say(f"slot {index + 1}/{len(self.children)} was stopping: not started again")
            elif self.restarts[index] < RESTARTS:
                self.start_again(index)

    def start_again(self, index: int) -> None:
        slot = f"{index + 1}/{len(self.children)}"
        command, runs_left = list(self.commands[index]), ""
        if self.max_runs is not None:
            left = self.max_runs - self.runs_used[index]
            if left <= 0:
                say(f"slot {slot} has used its --max-runs {self.max_runs}: not started again")
                return
            command[command.index("--max-runs") + 1] = str(left)  # as slot_command put it
            runs_left = f", --max-runs {left}"
        self.restarts[index] += 1
        self.reaped[index] = False
        child = self.children[index] = self.start(command)
        self.started[index] = time.time()
        count = self.restarts[index]
        say(
            f"slot {slot} started again (pid {child.pid}, restart {count} of {RESTARTS}{runs_left})"
        )

    @staticmethod
    def start(command: list[str]) -> subprocess.Popen[bytes]:
        """A slot process in its own process group; it asks to be stopped when this one
        dies (``core.worker`` with ``--slot``, reading our pid from the environment: a
        ``preexec_fn`` would run between fork and exec, unsafe once torch has threads)."""
        env = {**os.environ, SUPERVISOR_ENV: str(os.getpid())}
        return subprocess.Popen(command, process_group=0, env=env)

    def record_lost(self, child: subprocess.Popen[bytes], started: float) -> SlotExit:
        """Record the runs ``child`` left running lost; what it left (none where unread)."""
        unread = SlotExit(lost=[], runs_ended=0)
        if self.on_exit is None:
            return unread
        try:
            left = self.on_exit(child.pid, started)
        except Exception as exc:  # e.g. a locked database: the next worker start recovers
            say(f"slot pid {child.pid} exited; its runs could not be checked ({exc})")
            return unread
        self.runs_ended += left.runs_ended
        if left.lost:
            them = "them" if len(left.lost) > 1 else "it"
            say(f"slot pid {child.pid} exited with status {exit_status(child.returncode)}: "
                f"{ids_of('run', left.lost)} marked failed, worker lost "
                f"({self.retry} queues {them} again)")  # fmt: skip
        return left

    def send(self, sig: signal.Signals) -> None:
        for child in self.children:
            if child.poll() is None:
                child.send_signal(sig)


def exit_status(returncode: int) -> int:
    """A child killed by signal N reads -N from Popen; a shell would say 128 + N."""
    return 128 - returncode if returncode < 0 else returncode


def prepare_slot(slot: Slot, device: str, repo: Repo) -> tuple[str, Admission | None]:
    """In a slot process: its worker row's device text, and its admission (CUDA only)."""
    import torch

    if device.startswith("cuda"):
        return slot.label(device), Admission(repo, lambda: free_for_new_runs(device))
    # No admission on CPU: memory is the host's; the slots share the cores instead.
    torch.set_num_threads(threads_per_slot(_cores(), slot.count))
    return slot.label(device), None


def _cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1
