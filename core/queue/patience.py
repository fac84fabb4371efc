"""A worker's patience with its database.

A verb the database refused for a reason that passes (a PostgreSQL restart or failover,
a network blip, a connection cut mid-statement, another process holding SQLite's write
lock longer than its busy timeout) is tried again, whole, for up to ``Repo.reconnect_s``,
waiting 1, 2, 4 ... 15 s; training waits meanwhile, and its clock leaves the wait out
(``waited_s``). Workers set that; a command's and the dashboard's verbs fail at once
(``reconnect_s`` 0), as a person is there to try again.

A verb is one transaction: what the refused try did was rolled back, so trying it again
is safe, with one exception no client can rule out: a connection cut while its COMMIT
was on the wire may have committed. A verb can tell it is tried again (``tried_again``)
and then looks for what such a try left: a metric batch for itself as the run's last
rows, a claim for the runs the worker trains (it claims only when it trains none), a
run's end for the run ended so under its worker, a new worker for its row. Other verbs
are the same done twice (a heartbeat, a progress update).

Every thread of a worker (training, heartbeat, packed slots) waits on its own, but the
log says once that the database went away, and once that it is back (``Outage``). A
lock held past the busy timeout is no outage: the database is there, another process
(a long transaction, a ``sqlite3`` shell left in BEGIN) holds its write lock, and the
log says so; the worker's look for other boxes' silent runs, held off for the stale
limit after an outage, only times their silence afresh after a lock wait
(``Outage.lock_ended_at``).
"""

from __future__ import annotations

import functools
import math
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, TypeVar

from sqlalchemy.exc import DBAPIError, OperationalError

from core.pauses import PAUSES
from core.queue.errors import QueueError

if TYPE_CHECKING:
    from core.queue.repo import Repo

RECONNECT_S = 300.0  # how long a worker (or `show --follow`) waits for a database away or locked
FIRST_WAIT_S = 1.0  # then doubling, at most MAX_WAIT_S
MAX_WAIT_S = 15.0
WAIT_SLICE_S = 0.2  # a wait is slept in slices, so that a stop asked for ends it
LOCKED = "locked by another process"  # the passing reason of a lock held past the wait
# PostgreSQL's SQLSTATE for a lock not granted within lock_timeout (a URL's
# options=-c lock_timeout=...), or one NOWAIT refused: the server answered.
PG_LOCK_NOT_AVAILABLE = "55P03"

Verb = TypeVar("Verb", bound=Callable[..., Any])

# .trying: a verb of this thread is being tried (patiently or once); .again: not for the
# first time (an earlier try was refused).
_thread = threading.local()


def passing_reason(error: QueueError, dialect: str) -> str | None:
    """Why the database refused in a way that may pass (None: it will not pass by
    waiting: a damaged file, a full disk, a missing table, a bug)."""
    cause = error.__cause__
    if not isinstance(cause, DBAPIError):
        return None
    text = str(cause.orig if cause.orig is not None else cause).strip()
    first = text.splitlines()[0] if text else type(cause).__name__
    if cause.connection_invalidated:  # cut mid-statement: a restart, a failover, a reset
        return f"connection lost ({first})"
    if not isinstance(cause, OperationalError):
        return None
    if dialect == "sqlite":  # a file: only another process's lock passes
        low = first.lower()  # "database is locked", "database table is locked"
        return LOCKED if "locked" in low or "busy" in low else None
    if _sqlstate(cause.orig) == PG_LOCK_NOT_AVAILABLE:
        return LOCKED
    # A server's other OperationalErrors are its connection's (refused, timed out,
    # closed), once a worker has opened the database: a wrong password or name fails at
    # its start.
    return f"unreachable ({first})"


def _sqlstate(error: BaseException | None) -> str | None:
    """A PostgreSQL driver error's SQLSTATE (psycopg's ``sqlstate``, psycopg2's
    ``pgcode``); None for others."""
    code = getattr(error, "sqlstate", None) or getattr(error, "pgcode", None)
    return code if isinstance(code, str) else None


class Outage:
    """Says when the database went away and when it came back, once each, however many
    threads were waiting for it; a wait for another process's lock as that, not as the
    database away (``LOCKED``)."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.since: float | None = None  # when the first refused try of this wait began
        self.away = False  # this wait saw the database away, not only locked
        self.ended_at = -math.inf  # when the last outage (away) ended (time.monotonic)
        # When the last wait that only met a lock ended: the others' beats waited on it
        # as this worker's writes did, so their silence is timed afresh from then.
        self.lock_ended_at = -math.inf
        # What goes on once it is back, as said then: a worker asked to stop meanwhile
        # only gives its runs back ("training goes on" read as if it had not heard).
        self.then = "training goes on"

    def ended_within(self, seconds: float) -> bool:
        """Whether the database is away or locked now, or came back from away less than
        ``seconds`` ago: other workers were away from it as long, and are silent for no
        fault of theirs yet. A lock that has passed does not count: the database was
        there all along, and holding the look off that long left a dead box's run
        "running" the stale limit longer (``lock_ended_at`` times the silence afresh)."""
        return self.since is not None or time.monotonic() - self.ended_at < seconds

    def began(
        self, reason: str, limit_s: float, say: Callable[[str], None] | None, tried_at: float
    ) -> None:
        """A try begun at ``tried_at`` (monotonic) was refused for ``reason``."""
        locked = reason == LOCKED
        with self.lock:
            first = self.since is None
            if first:
                self.since, self.away = tried_at, not locked
            elif locked or self.away:
                return  # said already
            else:  # a lock's wait, and now the database away too: that is said
                self.away = True
        if say is None:
            return
        if locked:
            held = round(time.monotonic() - tried_at, 1)  # the busy timeout, or lock_timeout
            say(
                f"database {LOCKED} (held {held:g} s so far): training waits for it; "
                f"trying again for up to {limit_s:g} s"
            )
        else:
            say(f"database {reason}: training waits; trying again for up to {limit_s:g} s")

    def ended(self, say: Callable[[str], None] | None) -> None:
        if self.since is None:  # the usual case: no lock taken
            return
        with self.lock:
            if self.since is None:
                return
            now = time.monotonic()
            lasted, self.since, away = now - self.since, None, self.away
            if away:
                self.ended_at = now
            else:
                self.lock_ended_at = now
        if say is not None:
            back = "reachable again" if away else "no longer locked"
            say(f"database {back} after {lasted:.0f} s: {self.then}")


def patient(verb: Verb) -> Verb:
    """Try ``verb`` again while the database refuses it for a passing reason, for up to
    its repo's ``reconnect_s``; once only inside another verb or ``at_once``."""

    @functools.wraps(verb)
    def patiently(repo: Repo, *args: Any, **kwargs: Any) -> Any:
        if repo.reconnect_s <= 0 or getattr(_thread, "trying", False):
            return verb(repo, *args, **kwargs)
        deadline = time.monotonic() + repo.reconnect_s
        wait = FIRST_WAIT_S
        refused_at: float | None = None  # when the first refused try began
        paused_at = 0.0  # the process's stops by then (``core.pauses``): not a wait too
        _thread.trying = True
        try:
            while True:
                tried_at = time.monotonic()
                _thread.again = refused_at is not None
                try:
                    result = verb(repo, *args, **kwargs)
                except QueueError as error:
                    reason = passing_reason(error, repo.engine.dialect.name)
                    if reason is None or time.monotonic() + wait > deadline:
                        raise
                    if repo.stop_waiting():
                        # Asked to stop already: no wait, nor "training waits; trying again
                        # for up to 300 s" (then "reachable again: training goes on") in
                        # the log of a worker that is stopping.
                        raise
                    if refused_at is None:
                        refused_at, paused_at = tried_at, PAUSES.paused_s()
                    repo.outage.began(reason, repo.reconnect_s, repo.log, tried_at)
                    if not sleep_unless(wait, repo.stop_waiting):
                        raise  # asked to stop meanwhile: no more waiting for the database
                    wait = min(wait * 2, MAX_WAIT_S)
                    continue
                repo.outage.ended(repo.log)
                if refused_at is not None:
                    # The refused tries, the waits between them, and the try that went
                    # through: against another process's SQLite lock it waited in the busy
                    # timeout until the lock was let go (counted as training, a run locked
                    # out for 24 s recorded 9 s more training than it did). A stop of the
                    # process meanwhile (Ctrl-Z) is a stop, counted by the training clock
                    # as one: counted as a wait too, it was left out twice.
                    stopped = PAUSES.paused_s() - paused_at
                    waited = time.monotonic() - refused_at - stopped
                    _thread.waited_s = waited_s() + max(0.0, waited)
                return result
        finally:
            _thread.trying = _thread.again = False

    return patiently  # type: ignore[return-value]


def tried_again() -> bool:
    """Whether this thread's verb is being tried again after a refused try, which may
    have committed all the same (a connection cut while its COMMIT was on the wire)."""
    return bool(getattr(_thread, "again", False))


def waited_s() -> float:
    """Seconds this thread has waited for its database so far (refused tries, the waits
    between them and the try that then went through): a training's clock leaves
    them out, so a run's inputs per second is its steps', outage or not."""
    return float(getattr(_thread, "waited_s", 0.0))


def sleep_unless(seconds: float, stop: Callable[[], bool], slice_s: float = WAIT_SLICE_S) -> bool:
    """Sleep ``seconds``, in slices of ``slice_s``, unless ``stop()`` comes true first;
    whether it slept them all (a worker's idle waits use it too)."""
    end = time.monotonic() + seconds
    while (left := end - time.monotonic()) > 0:
        if stop():
            return False
        time.sleep(min(slice_s, left))
    return not stop()


@contextmanager
def at_once() -> Iterator[None]:
    """This thread's verbs are tried once: a worker that already gave up on its database
    says what it can on its way out, without waiting as long again."""
    before = getattr(_thread, "trying", False)
    _thread.trying = True
    try:
        yield
    finally:
        _thread.trying = before
