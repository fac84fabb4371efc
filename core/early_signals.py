"""Stop signals that come while a worker process starts, before its own handlers.

A worker (``resconv-tui worker``, ``python -m core.worker``, each slot of ``--slots K``)
spends its first seconds importing the database layer and torch before its handlers
are in place (``core.recording.StopFlags``, the ``core.slots`` supervisor's). A SIGINT,
SIGTERM or SIGHUP in those seconds took the default action: the process died (status
143 for SIGTERM, a traceback for Ctrl-C), which a process manager reads as a crash,
and a slot killed so could be taken for one the OOM killer took.

``count_early()``, the entry points' first act, counts them instead, and the handlers
installed later take the count over (``take_over``): the first stops the worker as a
signal sent later does (nothing is claimed before the handlers are in place, so
nothing is put back). A second exits at once with status 130, as a second signal does
later. The interpreter's own start (tens of milliseconds before any code of ours runs)
cannot be covered from Python: a slot process dying there of a stop signal (the one its
supervisor forwarded, or one sent to it alone: ``kill PID``, ``resconv-tui stop`` reaching
a slot just started) is read as stopped by the supervisor (``core.slots``), and not
started again.

Stdlib only: it must cost nothing before it is in place.
"""

from __future__ import annotations

import os
import signal
import threading
import time
from types import FrameType
from typing import Any

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
AT_ONCE_STATUS = 130  # a second signal, as core.worker.leave_now exits
# ``worker --slots K`` (core.slots) names itself to its slot processes here.
SUPERVISOR_ENV = "RESCONV_SLOT_SUPERVISOR"
# A slot's first stop signal that comes again within this long is the same stop: a
# process manager that signals every process of the service at once (systemd's
# KillMode=control-group, ``pkill -f worker``) reaches each slot itself and through
# its supervisor, which forwards it within its 0.1 s poll. Taken for "again: at once",
# one ``systemctl stop`` exited 130. "At once" from the supervisor is another signal
# (SIGINT), and a person's second SIGTERM (``stop --now``, the dashboard) comes later.
SAME_STOP_S = 2.0

# The stop signals counted so far (one: a second exits), each with when it came
# (time.monotonic): its handlers' "the same stop" is measured from then.
_counted: list[tuple[int, float]] = []


def in_slot() -> bool:
    """Whether this process is a slot of a ``worker --slots K`` supervisor."""
    return os.environ.get(SUPERVISOR_ENV, "").isdigit()


def same_stop(first: tuple[int, float] | None, signum: int, now: float) -> bool:
    """Whether stop signal ``signum``, come at ``now`` to a process that ``first`` stopped
    (signal, time), is that stop again rather than "again: at once": in a slot only, the
    same signal within ``SAME_STOP_S`` (from the process manager and from its supervisor)."""
    if first is None or not in_slot():
        return False
    return first[0] == signum and now - first[1] < SAME_STOP_S


def stop_signals() -> list[signal.Signals]:
    """The signals that stop a worker: SIGINT, SIGTERM, and SIGHUP (its terminal went
    away: an SSH connection dropped) unless it is ignored: under ``nohup`` the person
    asked to train on after logging out."""
    keep_ignoring = signal.getsignal(signal.SIGHUP) == signal.SIG_IGN
    return [sig for sig in STOP_SIGNALS if not (sig == signal.SIGHUP and keep_ignoring)]


def count_early() -> None:
    """Count stop signals from now until ``take_over``. Only the main thread may set
    handlers: called elsewhere (a test driving the command in a thread) it does nothing."""
    if threading.current_thread() is not threading.main_thread():
        return
    _counted.clear()
    _before.clear()
    for sig in stop_signals():
        _before[sig] = signal.getsignal(sig)
        signal.signal(sig, _count)


_before: dict[signal.Signals, Any] = {}  # each signal's handler before count_early's


def release() -> None:
    """The handlers from before ``count_early`` back, where no one has taken over: a
    worker that failed to start (a bad option, a folder it cannot write) leaves a caller
    in the same process (a test) its own Ctrl-C."""
    if threading.current_thread() is not threading.main_thread():
        return
    for sig, handler in _before.items():
        if signal.getsignal(sig) is _count:
            signal.signal(sig, handler)
    _before.clear()


def _count(signum: int, _frame: FrameType | None) -> None:
    now = time.monotonic()
    if same_stop(_counted[0] if _counted else None, signum, now):
        return
    _counted.append((signum, now))
    if len(_counted) > 1:  # "again: at once"; nothing is claimed yet, nothing to put back
        os._exit(AT_ONCE_STATUS)
    # Said now: starting may take a while (torch, a database that does not answer yet),
    # and a stop that shows nothing reads as ignored.
    name = signal.Signals(signum).name
    os.write(2, f"{name}: the worker stops as soon as it has started (again: at once)\n".encode())


def take_over() -> list[tuple[int, float]]:
    """The stop signals counted since ``count_early`` (none if it was not called), each
    with when it came (``time.monotonic``), which the caller, having installed its own
    handlers, now answers; none is counted here after this. A signal pending when the
    caller calls ``signal.signal`` is counted here (CPython runs pending handlers before
    it changes one) or runs the caller's handler: none is lost or counted twice."""
    taken = list(_counted)
    _counted.clear()
    return taken
