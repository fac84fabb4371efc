"""The run queue's verbs: the only module that runs SQL.

Every verb is one short transaction and returns frozen values from ``rows``.
Writes begin with ``BEGIN IMMEDIATE`` on SQLite (see ``db``); ``claim`` also
says ``FOR UPDATE SKIP LOCKED``, which PostgreSQL honours and SQLite ignores
(there the write lock already makes select-then-update atomic). On PostgreSQL
claims also take one advisory lock in turn, so that a stack's claim (a run, then
its seeds) is as whole there as under SQLite's write lock.

Changes that a person asks for (cancel, retry, rm, priority) are all or
nothing: one unknown id or one run in the wrong status changes no run.
"""

from __future__ import annotations

import json
import math
import secrets
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from functools import cached_property
from pathlib import Path
from time import monotonic, sleep  # not time.*: tests put a fake clock in for ``time``
from typing import Any, Literal, NamedTuple, TypeVar

from sqlalchemy import (
    BigInteger,
    Connection,
    Engine,
    Float,
    Integer,
    Row,
    RowMapping,
    Select,
    and_,
    case,
    cast,
    delete,
    exists,
    false,
    func,
    insert,
    inspect,
    not_,
    or_,
    select,
    text,
    type_coerce,
    update,
)

from core.config import RunConfig
from core.errors import ConfigError, cut, first_line
from core.queue import db
from core.queue.errors import DamagedRow, InvalidTransition, QueueError, UnknownRun
from core.queue.models import Metric, Run, Worker
from core.queue.patience import Outage, patient, tried_again
from core.queue.rows import (
    PRIORITY_LIMIT,
    DamagedRun,
    DamagedWorker,
    EnqueueResult,
    FinalFigures,
    GpuSnapshot,
    MetricPoint,
    MetricRow,
    NewRun,
    RunFilter,
    RunRow,
    WorkerRow,
)
from core.queue.status import (
    BLOCKS_DUPLICATES,
    CANCELLABLE,
    RETRYABLE,
    RunStatus,
    run_is,
)
from core.queue.views import ids_listed, some_listed, watching_said

RUN = Run.__table__  # type: ignore[attr-defined]
METRIC = Metric.__table__  # type: ignore[attr-defined]
WORKER = Worker.__table__  # type: ignore[attr-defined]
RUN_COLUMNS = [c for c in RUN.c if c.name != "samples"]  # lists never carry images


def _peak_memory_as_read() -> Any:
    """A run's peak memory, none where its worker trained on a CPU. Versions before
    MemoryMeter recorded the process's peak there (``ru_maxrss``, which only grows: 46.9
    MiB for a first run, 4.2 MiB for the same model next), and a database they trained in
    keeps it; that figure is not the run's own (``measured_peaks`` reads the column
    itself, per device)."""
    on_a_cpu = exists().where(WORKER.c.id == RUN.c.worker_id, WORKER.c.device.startswith("cpu"))
    return case((on_a_cpu, None), else_=RUN.c.peak_memory_bytes).label("peak_memory_bytes")


# What a run's row reads as: its columns, but images, and the peak memory as above.
RUN_READ_COLUMNS = [
    _peak_memory_as_read() if c.name == "peak_memory_bytes" else c for c in RUN_COLUMNS
]
STACK_SCAN = 1000  # queued rows claim_like compares at most
_Row = TypeVar("_Row")  # a row as read: RunRow, WorkerRow
T = TypeVar("T")
CLAIM_LOCK_KEY = 0x7265_7363  # PostgreSQL advisory lock that claims take in turn ("resc")
STALE_AFTER_S = 30.0  # a running run without a heartbeat for this long is lost
# Silent this long by a beat's age on this box's clock, a run (or idle worker) is lost
# whatever the boxes' clocks: far past any two boxes' clocks apart (a worker warns at
# 10 s apart, core.worker.CLOCK_WARN_S). Judged so only where no earlier read of the beat
# is there to compare with: a worker's first look (at start), so a power cut's leftovers
# are recovered at once while a live run of a box whose clock is behind this one's is not
# (by the 30 s limit, a box 30 s ahead marked the others' live runs lost at each start),
# and a dashboard, which has watched no beat at its start (``resconv_tui.polling.
# HeardBeats``). Younger silence is judged by the beats changing, as at every later look.
SURELY_LOST_AFTER_S = 600.0
# A live worker beats every 3 s (core.recording.HEARTBEAT_S), with its own box's clock:
# a beat that reads older than STALE_AFTER_S here may be a live one from a box whose
# clock is behind. ``request_cancel`` cancels such a run at once only once its beat has
# not changed for two beats and a second on this process's own clock, read this often.
SILENCE_CONFIRM_S = 7.0
SILENCE_POLL_S = 0.25
CANCEL_REFUSED = "only queued or running runs can be cancelled"
WORKER_LOST = "worker lost"
LIVE_WORKER_STATES = ("idle", "running", "stopping", "stalled")  # stalled: see core.recording
GONE_WORKER_STATES = ("stopped", "lost")
# Every state a version writes; a row of another (edited by hand) is damaged, named.
WORKER_STATES = (*LIVE_WORKER_STATES, *GONE_WORKER_STATES)
SETTLED = frozenset(RunStatus) - {RunStatus.RUNNING}  # runs that change only when someone acts
Signature = tuple[object, ...]

# What a run forgets when it goes back to the queue (retry, requeue). Not its
# checkpoint_path: the folder stays on disk with the earlier attempt's files, and it is
# still the run's (its run.json names it: training again takes it back, see
# core.run_folders), so `rm` and the detail can name it. Its paused_s too (written only
# where the database has it: ``Repo._present``): kept, a queued run showed the last
# attempt's stops, and an older version's worker, whose claim does not reset it, had its
# next attempt's pace and ETA worked out less them.
_FRESH: dict[str, Any] = dict(
    status=RunStatus.QUEUED.value, worker_id=None, started_at=None, finished_at=None,
    heartbeat_at=None, cancel_requested=False, error=None, inputs_done=0,
    validation_loss=None, train_seconds=None, inputs_per_s=None, peak_memory_bytes=None,
    path_used=None, samples=None, paused_s=None,
)  # fmt: skip


# The runs a refusal names before "and N more": `cancel $(seq 1 40000)` said "no run with
# id 4, 5, 6, ..." in one line of 270 KB, and runs of the wrong status each by name.
REFUSED_NAMED = 10


class SameRun(NamedTuple):
    """A stored run that is the same run as one being queued (``Repo._same_runs``)."""

    status: RunStatus
    id: int
    target: str | None  # its target_json


class LostRun(NamedTuple):
    """A run ``recover_stale_runs`` marked lost, and whose it was: its worker's id, host
    and pid (None where the run names no worker, or that worker's row is gone)."""

    id: int
    worker_id: str | None
    host: str | None
    pid: int | None


class Repo:
    """The queue in one database. Thread-safe: every verb takes its own connection."""

    def __init__(self, engine: Engine, url: str, busy_timeout_s: float) -> None:
        self.engine = engine
        self.url = url
        self.busy_timeout_s = busy_timeout_s
        # How long a verb keeps trying a database that refuses it for a reason that
        # passes (``core.queue.patience``: a PostgreSQL restart, a network blip, another
        # process's lock); 0 fails at once, as a command should. Workers set it, ``log``
        # (their log: when the database went away and came back, runs revived) and
        # ``stop_waiting`` (asked to stop: the verb waiting gives up at once).
        self.reconnect_s = 0.0
        self.log: Callable[[str], None] | None = None
        self.stop_waiting: Callable[[], bool] = lambda: False
        self.outage = Outage()
        # The damaged worker rows already said in ``log`` (``list_workers(skip_damaged)``):
        # read every RECOVER_EVERY_S, one would fill a worker's log.
        self.damaged_said: set[str] = set()
        # The SQLite file as opened: one removed or replaced meanwhile must not take the
        # writes of a worker or show a dashboard the rows it had (``_check_same_file``).
        self.path = db.sqlite_path(url)
        self.file_id = _file_id(self.path) if self.path is not None else None
        self.run_columns_read: frozenset[str] | None = None  # ``_run_columns``, once read

    @classmethod
    def open(
        cls,
        url: str,
        *,
        create: bool = True,
        busy_timeout_s: float | None = None,
        upgrade_wait_s: float | None = None,
        upgrade_or_fail: bool = False,
    ) -> Repo:
        """Open (and on first use create) the database at ``url`` or a SQLite path.

        ``busy_timeout_s``: how long a write waits for another writer (default
        ``db.DEFAULT_BUSY_TIMEOUT_S``) before it fails with "locked".
        ``upgrade_wait_s``: how long opening waits for the write lock to add a newer
        version's columns before it reads without them (``db.open_engine``).
        ``upgrade_or_fail``: fail "locked" where that wait runs out (a command that writes).
        """
        timeout = db.DEFAULT_BUSY_TIMEOUT_S if busy_timeout_s is None else busy_timeout_s
        engine = db.open_engine(
            url,
            create=create,
            busy_timeout_s=timeout,
            upgrade_wait_s=upgrade_wait_s,
            upgrade_or_fail=upgrade_or_fail,
        )
        return cls(engine, db.normalize_url(url), timeout)

    @cached_property
    def worker_columns(self) -> tuple[Any, ...]:
        """The worker table's columns the database has: a newer version's (its claim
        rules) may be absent where a role that does not own the tables opened it. Read
        when first needed, not at every open: most commands never touch a worker row."""
        with db.translated(self.url, self.busy_timeout_s):
            present = db.present_columns(self.engine, WORKER.name)
        return tuple(c for c in WORKER.c if c.name in present)

    def _run_columns(self, conn: Connection) -> frozenset[str]:
        """The run table's columns the database has: a newer version's (``paused_s``) may
        be absent where a role that does not own the tables opened it, or a command that
        only reads found the database locked (``db.READER_UPGRADE_WAIT_S``). Read once,
        on the verb's own connection (in its transaction: no second connection while it
        holds a SQLite write lock)."""
        if self.run_columns_read is None:
            found = inspect(conn).get_columns(RUN.name)
            self.run_columns_read = frozenset(column["name"] for column in found)
        return self.run_columns_read

    def _present(self, conn: Connection, values: dict[str, Any]) -> dict[str, Any]:
        """``values`` (a run row's columns) but those the database lacks: not written."""
        present = self._run_columns(conn)
        return {key: value for key, value in values.items() if key in present}

    def close(self) -> None:
        self.engine.dispose()

    @contextmanager
    def _read(self) -> Iterator[Connection]:
        with (
            db.translated(self.url, self.busy_timeout_s),
            self._connect() as conn,
            conn.begin(),
        ):
            yield conn

    @contextmanager
    def _write(self) -> Iterator[Connection]:
        with db.translated(self.url, self.busy_timeout_s), self._connect() as conn:
            conn.execution_options(**{db.IMMEDIATE: True})
            with conn.begin():
                yield conn

    def _connect(self) -> Connection:
        # PostgreSQL's engine tests a pooled connection as it hands it out (pool_pre_ping):
        # a server that restarted since shows here, and is retried (``patient``).
        if self.file_id is not None:
            self._check_same_file()
        return self.engine.connect()

    def _check_same_file(self) -> None:
        """Refuse to go on with a SQLite file removed or replaced since it was opened.

        A pooled connection keeps the file it opened: a worker went on writing into a
        removed runs.db (its results lost with it), and the dashboard went on showing its
        rows, while a new runs.db beside them was queued and never trained."""
        now = _file_id(self.path) if self.path is not None else None
        if now == self.file_id:
            return
        what = "removed" if now is None else "replaced by another file"
        raise QueueError(
            f"database {self.path} was {what} while in use: nothing more is read from or "
            "written to the old one; start the command again to use what is there now"
        )

    # ----- queueing ------------------------------------------------------------------

    @patient
    def enqueue(
        self, runs: Sequence[NewRun], priority: int = 0, force: bool = False
    ) -> EnqueueResult:
        """Queue ``runs`` in one transaction.

        A run is the same run as one of its experiment with the same config hash (config
        + seed). Unless ``force``, such a run is skipped while that one is queued,
        running or succeeded (extending a sweep queues only its new cells), and a failed
        or cancelled one is queued again in place, as ``retry`` would, rather than
        doubled. Another experiment's runs never count: each sweep's table comes out
        whole (the logbook's tables share cells, e.g. T5's gelu row is T7's ks-3).
        Duplicates inside ``runs`` are skipped even with ``force``.
        """
        now = time.time()
        added: list[int] = []
        again: list[int] = []
        skipped: list[str] = []
        retargeted: list[int] = []
        with self._write() as conn:
            existing = {} if force else self._same_runs(conn, runs)
            for run, (fate, same_id, _) in zip(runs, _fates(runs, existing), strict=True):
                if fate == "again" and self._queue_again(conn, same_id, run, priority):
                    again.append(same_id)
                elif fate != "new":  # a skip, or retried and claimed meanwhile (PostgreSQL)
                    skipped.append(run.name)
                    stored = existing[(run.experiment, run.config_hash)] if same_id else None
                    if stored and self._retarget(conn, same_id, stored.target, run):
                        retargeted.append(same_id)
                else:
                    added.append(self._insert_run(conn, run, priority, now))
        return EnqueueResult(
            len(added), len(skipped), tuple(added), tuple(skipped), tuple(again),
            tuple(retargeted),
        )  # fmt: skip

    @staticmethod
    def _retarget(conn: Connection, run_id: int, stored: str | None, run: NewRun) -> bool:
        """A published figure added to (or changed in) the sweep file reaches the runs it
        names that are already queued or done (``stored``: their target as read), without
        training them again."""
        if not run.target or not _target_changes(stored, run):
            return False
        query = update(RUN).where(RUN.c.id == run_id)
        return bool(conn.execute(query.values(target_json=json.dumps(dict(run.target)))).rowcount)

    @patient
    def plan_enqueue(self, runs: Sequence[NewRun]) -> list[str]:
        """What ``enqueue`` would do with each of ``runs`` now, without writing (``queue
        --dry-run``): ``new``, ``again #5 failed`` or ``skip #3 succeeded`` (``, new target``
        when queueing gives that run the sweep file's changed target)."""
        with self._read() as conn:
            existing = self._same_runs(conn, runs)
        plans = []
        for run, (fate, same_id, status) in zip(runs, _fates(runs, existing), strict=True):
            if fate == "new":
                plans.append(fate)
            elif not same_id:
                plans.append("skip (twice)")
            else:
                stored = existing[(run.experiment, run.config_hash)].target
                new_target = fate == "skip" and _target_changes(stored, run)
                plans.append(f"{fate} #{same_id} {status}" + (", new target" if new_target else ""))
        return plans

    def _same_runs(
        self, conn: Connection, runs: Sequence[NewRun]
    ) -> dict[tuple[str, str], SameRun]:
        """(experiment, config hash) -> the stored run that is the same run: one that
        blocks a duplicate if any, else the newest failed or cancelled one."""
        hashes = {r.config_hash for r in runs}
        if not hashes:
            return {}
        query = (
            select(RUN.c.id, RUN.c.experiment, RUN.c.config_hash, RUN.c.status, RUN.c.target_json)
            .where(RUN.c.config_hash.in_(hashes))
            .order_by(RUN.c.id)
        )
        same: dict[tuple[str, str], SameRun] = {}
        for row in conn.execute(query):
            key, status = (row.experiment, row.config_hash), RunStatus(row.status)
            current = same.get(key)
            if current is None or current.status not in BLOCKS_DUPLICATES:
                same[key] = SameRun(status, row.id, row.target_json)
        return same

    def _queue_again(self, conn: Connection, run_id: int, run: NewRun, priority: int) -> bool:
        """A failed or cancelled run back to queued, as ``retry`` does; its names, swept
        values and targets from the sweep queued now (its config is the same). False if
        it is no longer failed or cancelled (someone retried it since it was read)."""
        target = json.dumps(dict(run.target)) if run.target else None
        values = dict(priority=priority, name=run.name, swept_json=json.dumps(dict(run.swept)),
                      target_json=target)  # fmt: skip
        retryable = [s.value for s in RETRYABLE]
        still = update(RUN).where(RUN.c.id == run_id, RUN.c.status.in_(retryable))
        if conn.execute(still.values(**self._present(conn, {**_FRESH, **values}))).rowcount == 0:
            return False
        conn.execute(delete(METRIC).where(METRIC.c.run_id == run_id))
        return True

    @staticmethod
    def _insert_run(conn: Connection, run: NewRun, priority: int, now: float) -> int:
        values = dict(
            experiment=run.experiment, name=run.name, status=RunStatus.QUEUED.value,
            priority=priority, config_json=run.config_json, config_hash=run.config_hash,
            seed=run.seed, swept_json=json.dumps(dict(run.swept)),
            target_json=json.dumps(dict(run.target)) if run.target else None,
            param_count=run.param_count, total_inputs=run.total_inputs, inputs_done=0,
            attempts=0, created_at=now, cancel_requested=False,
        )  # fmt: skip
        key = conn.execute(insert(RUN).values(**values)).inserted_primary_key
        assert key is not None
        return int(key[0])

    # ----- the worker's verbs --------------------------------------------------------

    @patient
    def claim(self, worker_id: str, largest_first: bool = False) -> RunRow | None:
        """Atomically take the highest-priority, oldest queued run (None: queue empty).

        ``largest_first``: among the highest priority, the run with the most work
        (parameters x inputs) first, then the oldest. Packed slots finish a mixed
        sweep sooner that way: the long runs start at once and short ones fill in
        at the end, instead of one long run training alone at the end.
        """
        with self._write() as conn:
            if tried_again() and (earlier := self._claimed_unheard(conn, worker_id)):
                return earlier[0]
            return self._claim_one(conn, worker_id, largest_first)

    @patient
    def claim_stack(
        self,
        worker_id: str,
        largest_first: bool,
        most: int,
        stackable: Callable[[RunConfig], bool],
    ) -> list[RunRow]:
        """``claim``, then, if ``stackable(run.config)``, up to ``most - 1`` of its seeds
        (``claim_like``), in one transaction: [] when the queue is empty, else the claimed
        run first. One transaction, under the claims' lock, so that another slot of a
        ``--slots K --stack K`` worker cannot take a seed between the two, splitting a
        cell into a short stack and a run alone."""
        with self._write() as conn:
            if tried_again() and (earlier := self._claimed_unheard(conn, worker_id)):
                return earlier
            run = self._claim_one(conn, worker_id, largest_first)
            if run is None:
                return []
            if most < 2 or not _stackable(run, stackable):
                return [run]
            return [run, *self._claim_like(conn, worker_id, run, most - 1)]

    def _claimed_unheard(self, conn: Connection, worker_id: str) -> list[RunRow]:
        """The runs ``worker_id`` trains, as its claim is tried again: a worker claims only
        when it trains none, so these are what the refused try claimed, its COMMIT gone
        through unheard (a connection cut while it was on the wire). Claimed again, they
        would have ended "worker lost" beside the next run. The stack's first run first.
        One whose row was damaged meanwhile is failed, naming the field, as a claim fails
        one (``_claimed_readable``): raised, it stopped the worker."""
        query = (
            select(RUN.c.id)
            .where(RUN.c.worker_id == worker_id, RUN.c.status == RunStatus.RUNNING.value)
            .order_by(RUN.c.priority.desc(), RUN.c.id)
        )
        ids = conn.execute(query).scalars().all()
        runs = (self._claimed_readable(conn, run_id) for run_id in ids)
        return [run for run in runs if run is not None]

    def _claim_one(self, conn: Connection, worker_id: str, largest_first: bool) -> RunRow | None:
        # Claims one at a time, as SQLite's write lock makes them: a stack's seeds are
        # claimed after its first run, in the same transaction, and a rival's claim would
        # otherwise skip the locked first run and take a seed meanwhile.
        self._one_at_a_time(conn)
        now = time.time()
        order = [RUN.c.priority.desc(), RUN.c.id]
        if largest_first:
            # As a float: PostgreSQL's INTEGER product overflows (200,000 x 180,000 > 2**31).
            work = cast(RUN.c.param_count, Float) * RUN.c.total_inputs
            order.insert(1, work.desc())
        query = (
            select(RUN.c.id)
            .where(RUN.c.status == RunStatus.QUEUED.value)
            .order_by(*order)
            .limit(1)
            .with_for_update(skip_locked=True)
        )
        while (run_id := conn.execute(query).scalar()) is not None:
            taken = conn.execute(
                update(RUN)
                .where(RUN.c.id == run_id, RUN.c.status == RunStatus.QUEUED.value)
                .values(
                    status=RunStatus.RUNNING.value,
                    worker_id=worker_id,
                    started_at=now,
                    heartbeat_at=now,
                    attempts=RUN.c.attempts + 1,
                    inputs_done=0,
                    inputs_per_s=None,
                    **self._present(conn, {"paused_s": None}),
                )  # fmt: skip
            ).rowcount
            if taken != 1:  # compare-and-set lost (cannot happen under the write lock)
                return None
            run = self._claimed_readable(conn, run_id)
            if run is None:  # damaged: failed, and the next queued run is taken instead
                continue
            conn.execute(
                update(WORKER)
                .where(WORKER.c.id == worker_id)
                .values(state="running", current_run_id=run_id, last_seen_at=now)
            )
            return run
        return None

    def _claimed_readable(self, conn: Connection, run_id: int) -> RunRow | None:
        """The run just claimed, or None where its row is damaged (edited by hand into
        what no version writes): that run ends failed with what is wrong with it, in the
        claim's transaction. Raised, the claim was rolled back and its worker stopped,
        the run still queued: the next worker claimed it and stopped too, and one bad
        row stopped every worker of the queue in turn."""
        try:
            return self._get(conn, run_id)
        except DamagedRow as damage:
            error = (
                f"not trained: its row is damaged ({damage.problem}); put the value back "
                "with an SQL client, then retry it"
            )
            failed = _ended_values(RunStatus.FAILED, error, None)
            conn.execute(update(RUN).where(RUN.c.id == run_id).values(**failed))
            if self.log is not None:
                self.log(f"run {run_id}: {error}")
            return None

    @patient
    def claim_like(self, worker_id: str, like: RunRow, limit: int) -> list[RunRow]:
        """Also take up to ``limit`` queued runs that differ from ``like`` only in their
        seed, highest priority then oldest first: a stack (``core.stack``) with it.

        They count as started with ``like`` (its ``started_at``); the worker row keeps
        ``like`` as its current run. At most ``STACK_SCAN`` queued rows with ``like``'s
        parameter count and inputs are compared, without locking them: only the chosen
        ones are locked (skipping any another worker holds), so a claim racing this one
        never finds the queue empty because of rows this one merely looked at.
        """
        if limit < 1:
            return []
        with self._write() as conn:
            return self._claim_like(conn, worker_id, like, limit)

    def _claim_like(
        self, conn: Connection, worker_id: str, like: RunRow, limit: int
    ) -> list[RunRow]:
        key = like.config.replace(seed=0)
        candidates = (
            select(RUN.c.id, RUN.c.config_json)
            .where(
                RUN.c.status == RunStatus.QUEUED.value,
                RUN.c.param_count == like.param_count,
                RUN.c.total_inputs == like.total_inputs,
            )
            .order_by(RUN.c.priority.desc(), RUN.c.id)
            .limit(STACK_SCAN)
        )
        chosen = [row.id for row in conn.execute(candidates) if _seed_of(row.config_json, key)][
            :limit
        ]
        if not chosen:
            return []
        lockable = (
            select(RUN.c.id)
            .where(RUN.c.id.in_(chosen), RUN.c.status == RunStatus.QUEUED.value)
            .order_by(RUN.c.id)
            .with_for_update(skip_locked=True)
        )
        ids = list(conn.execute(lockable).scalars())
        if not ids:
            return []
        conn.execute(
            update(RUN)
            .where(RUN.c.id.in_(ids), RUN.c.status == RunStatus.QUEUED.value)
            .values(
                status=RunStatus.RUNNING.value,
                worker_id=worker_id,
                started_at=like.started_at,
                heartbeat_at=time.time(),
                attempts=RUN.c.attempts + 1,
                inputs_done=0,
                inputs_per_s=None,
                **self._present(conn, {"paused_s": None}),
            )  # fmt: skip
        )
        claimed = (self._claimed_readable(conn, run_id) for run_id in sorted(ids, key=chosen.index))
        return [
            run
            for run in claimed
            if run is not None and run.status == RunStatus.RUNNING and run.worker_id == worker_id
        ]

    @patient
    def heartbeat(
        self,
        worker_id: str,
        *,
        run_id: int | None = None,
        inputs_done: int | None = None,
        gpu: GpuSnapshot | None = None,
        more_run_ids: Sequence[int] = (),
        stopping: bool = False,
    ) -> list[int]:
        """The worker is alive (and its run, if any): refresh both timestamps and GPU stats.

        ``more_run_ids``: the other runs of its stack (``--stack``), kept fresh too.
        ``stopping``: asked to stop, its row says so (every beat: a row revived from
        "lost" by another of its writes said "running", and a second `stop` then read as
        the first exited it at once). Returns the runs it revived (``_revive``).
        """
        now = time.time()
        with self._write() as conn:
            # The run rows first, then the worker row, as every write that touches both:
            # on PostgreSQL (row locks) the other order deadlocked against finish().
            ids = sorted({*more_run_ids, *([run_id] if run_id is not None else [])})
            revived = self._revive(conn, worker_id, ids)
            if more_run_ids:  # a stack: one statement, its rows locked in id order
                conn.execute(
                    update(RUN)
                    .where(
                        RUN.c.id.in_(ids),
                        RUN.c.worker_id == worker_id,
                        RUN.c.status == RunStatus.RUNNING.value,
                    )
                    .values(heartbeat_at=now)
                )
            if run_id is not None:
                run_values: dict[str, Any] = {"heartbeat_at": now}
                if inputs_done is not None:
                    run_values["inputs_done"] = inputs_done
                conn.execute(self._own_running(run_id, worker_id).values(**run_values))
            values: dict[str, Any] = {"last_seen_at": now}
            if gpu is not None:
                values.update(_gpu_values(gpu))
            if stopping:
                values["state"] = "stopping"
            # Not over "stopped", which only the worker itself writes, last: a beat that
            # waited on the write lock meanwhile (past Heartbeat.stop()'s join, or beside
            # a second signal's give_back_quietly) made it "stopping" for a process gone.
            # ("lost" is another's guess: a beat says the worker lives; revived below.)
            mine = update(WORKER).where(WORKER.c.id == worker_id, WORKER.c.state != "stopped")
            conn.execute(mine.values(**values))
            # Marked lost while it lived on (silent past STALE_AFTER_S): it beats, so it is
            # not. "running" only with a run still its own: one retried and taken by another
            # worker meanwhile left its row "running" that run for good.
            own = (
                run_id is not None
                and conn.execute(select(RUN.c.id).where(_running_under(run_id, worker_id))).first()
            )
            back = {"state": "running", "current_run_id": run_id} if own else {"state": "idle"}
            alive = update(WORKER).where(WORKER.c.id == worker_id, WORKER.c.state == "lost")
            conn.execute(alive.values(**back))
        return revived

    @patient
    def add_metrics(
        self,
        run_id: int,
        points: Sequence[MetricPoint],
        inputs_done: int | None = None,
        *,
        owner: str | None = None,
        inputs_per_s: float | None = None,
        paused_s: float | None = None,
    ) -> bool:
        """Insert a batch of metric rows (one statement) and update the run's progress.

        ``inputs_done`` also stamps the run's heartbeat: its pace so far (inputs done
        over the time since its claim) then divides by the time they were done, not by
        an older heartbeat's (the in/s of a new run read 8,791 for about 1,000).
        ``inputs_per_s``: its training steps' rate so far, the in/s the dashboard shows
        (its final figure replaces it). ``paused_s``: the seconds its worker stood still
        so far this attempt, stopped (``core.pauses``), which its pace leaves out.

        ``owner`` (the worker's recorder): write nothing unless the run is ``running``
        under that worker, so a late flush (a slot thread finishing its step after a
        second signal requeued its run), or a worker that was paused past the heartbeat's
        limit while its run was recovered, retried and claimed by another, cannot mix
        into that other attempt (it did: one run's curve, progress and ETA from two).
        Returns False where it wrote nothing for that reason: the run is no longer
        ``owner``'s (its checkpoints must not go into the folder that other attempt uses).

        Tried again after a connection cut while its COMMIT was on the wire, the batch
        may be there already: it is not written twice (its points would show twice in
        ``show --curves`` and weigh twice in any mean of them).
        """
        # A diverged run's NaN or inf is not a point on a curve (and SQLite stores NaN as
        # NULL, which the NOT NULL column refused: the error stopped the worker and left
        # the run "running"). The run ends failed, and says why, by its worker's check.
        points = [p for p in points if math.isfinite(p.value)]
        if not points and inputs_done is None:
            return True
        with self._write() as conn:
            if owner is not None:
                self._revive(conn, owner, [run_id])
                # Locked (PostgreSQL): a requeue must not come between this and the writes.
                query = select(RUN.c.id).where(_running_under(run_id, owner)).with_for_update()
                if conn.execute(query).first() is None:
                    return False
            if points and not (tried_again() and _written_already(conn, run_id, points)):
                _insert_points(conn, run_id, points)
            if inputs_done is not None:
                progress: dict[str, Any] = {"inputs_done": inputs_done}
                if inputs_per_s is not None:
                    progress["inputs_per_s"] = inputs_per_s
                if paused_s is not None:
                    progress.update(self._present(conn, {"paused_s": paused_s}))
                conn.execute(update(RUN).where(RUN.c.id == run_id).values(**progress))
                running = (RUN.c.id == run_id) & (RUN.c.status == RunStatus.RUNNING.value)
                conn.execute(update(RUN).where(running).values(heartbeat_at=time.time()))
        return True

    @patient
    def is_running_for(self, run_id: int, worker_id: str) -> bool:
        """Whether ``run_id`` is running under ``worker_id`` (its checkpoint folder its own)."""
        with self._read() as conn:
            return (
                conn.execute(select(RUN.c.id).where(_its_own(run_id, worker_id))).first()
                is not None
            )

    @patient
    def is_cancel_requested(self, run_id: int, owner: str | None = None) -> bool:
        """Whether the run's training should stop: a cancel asked for, or (for its worker,
        ``owner``) the run is no longer its own."""
        # A run someone removed or ended meanwhile is as good as cancelled; so is one
        # another worker trains now (recovered as lost while its worker was paused, then
        # retried and claimed): the paused worker, resumed, trained beside it. One
        # recovered as lost but not retried is still its worker's (its next write
        # revives it).
        running = and_(RUN.c.id == run_id, RUN.c.status == RunStatus.RUNNING.value)
        still = running if owner is None else _its_own(run_id, owner)
        with self._read() as conn:
            row = conn.execute(select(RUN.c.cancel_requested).where(still)).first()
        return row is None or bool(row.cancel_requested)

    @patient
    def finish(self, run_id: int, worker_id: str, figures: FinalFigures) -> bool:
        """running -> succeeded with the final figures; False if the run is no longer ours."""
        return self._end(run_id, worker_id, RunStatus.SUCCEEDED, None, figures)

    @patient
    def fail(
        self, run_id: int, worker_id: str, error: str, figures: FinalFigures | None = None
    ) -> bool:
        """running -> failed with a short message."""
        return self._end(run_id, worker_id, RunStatus.FAILED, error, figures)

    @patient
    def mark_cancelled(
        self, run_id: int, worker_id: str, figures: FinalFigures | None = None
    ) -> bool:
        """running -> cancelled: the worker stopped the run because cancel was requested."""
        return self._end(run_id, worker_id, RunStatus.CANCELLED, None, figures)

    @patient
    def requeue(
        self, run_id: int, worker_id: str, figures: FinalFigures | None = None
    ) -> RunStatus | None:
        """running -> queued (the worker was told to stop); the partial metrics go.
        A run with a cancel asked for ends cancelled instead (with ``figures``): stopped
        before its worker read the request, it was queued again and trained, the cancel
        forgotten. One transaction, so a cancel cannot land between the two. Returns the
        run's new status; None if it is no longer this worker's run."""
        with self._write() as conn:
            if tried_again() and _left_so(conn, run_id, RunStatus.CANCELLED, worker_id):
                return RunStatus.CANCELLED  # the refused try's went through
            if tried_again() and _left_so(conn, run_id, RunStatus.QUEUED, None):
                # Queued again keeps no trace of who did it: the refused try, surely (a
                # retry by hand needs the run failed first, within these seconds).
                return RunStatus.QUEUED
            self._revive(conn, worker_id, [run_id])  # then queued again, not left "lost"
            asked = self._own_running(run_id, worker_id).where(RUN.c.cancel_requested)
            cancelled = self._present(conn, _ended_values(RunStatus.CANCELLED, None, figures))
            if conn.execute(asked.values(**cancelled)).rowcount:
                if figures is not None:
                    self._last_points(conn, run_id, figures.last_points)
                self._worker_idle(conn, worker_id, finished=True)
                return RunStatus.CANCELLED
            fresh = {**_FRESH, **_folder_of(figures)}  # this attempt's folder, if it had one
            return RunStatus.QUEUED if self._to_queue(conn, run_id, worker_id, fresh) else None

    @patient
    def put_back(self, run_id: int, worker_id: str) -> bool:
        """running -> queued before training began (the device had no room for it yet).

        Like ``requeue``, but the claim is not counted as an attempt: the run keeps its
        place (priority, id) and looks as if it had never been claimed.
        """
        # A cancel requested meanwhile survives: the next claim stops the run at once.
        values = {**_FRESH, "attempts": RUN.c.attempts - 1}
        values["cancel_requested"] = RUN.c.cancel_requested
        return self._back_to_queue(run_id, worker_id, values)

    def _back_to_queue(self, run_id: int, worker_id: str, values: dict[str, Any]) -> bool:
        with self._write() as conn:
            if tried_again() and _left_so(conn, run_id, RunStatus.QUEUED, None):
                # The refused try's went through (as in ``requeue``): not "no longer this
                # worker's", and its attempt not given back twice.
                return True
            self._revive(conn, worker_id, [run_id])
            return self._to_queue(conn, run_id, worker_id, values)

    def _to_queue(
        self, conn: Connection, run_id: int, worker_id: str, values: dict[str, Any]
    ) -> bool:
        values = self._present(conn, values)
        moved = conn.execute(self._own_running(run_id, worker_id).values(**values)).rowcount
        if moved:
            conn.execute(delete(METRIC).where(METRIC.c.run_id == run_id))
            self._worker_idle(conn, worker_id, finished=False)
        return bool(moved)

    def _end(
        self,
        run_id: int,
        worker_id: str,
        status: RunStatus,
        error: str | None,
        figures: FinalFigures | None,
    ) -> bool:
        with self._write() as conn:
            values = self._present(conn, _ended_values(status, error, figures))
            if tried_again() and _left_so(conn, run_id, status, worker_id):
                return True  # the refused try's end went through: "not recorded" it was
            ended = self._own_update_reviving(conn, run_id, worker_id, values)
            if ended and figures is not None:
                self._last_points(conn, run_id, figures.last_points)
            self._worker_idle(conn, worker_id, finished=bool(ended))
            return bool(ended)

    @staticmethod
    def _last_points(conn: Connection, run_id: int, points: Sequence[MetricPoint]) -> None:
        """Write an ending run's last metric points, refused as its worker was stopped
        (``FinalFigures.last_points``), as ``add_metrics`` would have: a refused try of
        theirs may have committed unheard (a connection cut while its COMMIT was on the
        wire): not twice then."""
        finite = [p for p in points if math.isfinite(p.value)]
        if finite and not _written_already(conn, run_id, finite):
            _insert_points(conn, run_id, finite)

    def _revive(self, conn: Connection, worker_id: str, run_ids: Sequence[int]) -> list[int]:
        """Those of ``run_ids`` recovered as lost while ``worker_id`` lived on (silent
        past STALE_AFTER_S: its database away for a while, its process paused) running
        again: a write of its worker proves it alive, and the training goes on, not
        thrown away. Not a run retried meanwhile (retry clears its worker: another
        attempt's now) nor one removed. Returns the runs revived."""
        if not run_ids:
            return []
        lost = or_(*(_lost_under(run_id, worker_id) for run_id in run_ids))
        # Locked as read (PostgreSQL; SQLite's write lock already holds them): a retry or
        # a finish committed between this and the update would be undone by it.
        query = select(RUN.c.id).where(lost).order_by(RUN.c.id).with_for_update()
        revived = list(conn.execute(query).scalars())
        if revived:
            again = dict(status=RunStatus.RUNNING.value, error=None, finished_at=None)
            conn.execute(update(RUN).where(RUN.c.id.in_(revived), lost).values(**again))
            # Its row, marked lost with them, is its heartbeat's to put right: the worker
            # row after the run rows, as every write takes them (PostgreSQL's row locks).
            if self.log is not None:  # whichever of its writes came first says so
                runs = f"run{'s' * (len(revived) > 1)} {', '.join(map(str, revived))}"
                self.log(
                    f"{runs}: marked lost while this worker was silent (its database away, "
                    "or the process paused); running again"
                )
        return revived

    def _own_update_reviving(
        self, conn: Connection, run_id: int, worker_id: str, values: dict[str, Any]
    ) -> int:
        """Write ``values`` to ``run_id`` while running under ``worker_id``, revived first
        if it was marked lost meanwhile (its figures, not "worker lost"). Returns the rows
        written (0: no longer its run)."""
        self._revive(conn, worker_id, [run_id])
        written = conn.execute(self._own_running(run_id, worker_id).values(**values)).rowcount
        # PostgreSQL: a recover_stale holding the row when _revive read it "running" made
        # the update wait, then find it "worker lost": the worker, paused not dead, was
        # told "not recorded" and its result lost, where SQLite's write lock had it
        # revived. Read again (a new statement sees that commit) and revive it now.
        if not written and self._revive(conn, worker_id, [run_id]):
            written = conn.execute(self._own_running(run_id, worker_id).values(**values)).rowcount
        return written

    @staticmethod
    def _own_running(run_id: int, worker_id: str) -> Any:
        return update(RUN).where(_running_under(run_id, worker_id))

    @staticmethod
    def _worker_idle(conn: Connection, worker_id: str, finished: bool) -> None:
        """A run of the worker ended: it is idle, unless it still trains others (a run
        of a stack ended before the rest): then its current run is the oldest of those."""
        still_training = conn.execute(
            select(RUN.c.id)
            .where(RUN.c.worker_id == worker_id, RUN.c.status == RunStatus.RUNNING.value)
            .order_by(RUN.c.id)
            .limit(1)
        ).scalar()
        values: dict[str, Any] = {"current_run_id": still_training}
        if still_training is None:
            # A worker already stopping stays so: its run ended, but it takes no other.
            values["state"] = case((WORKER.c.state == "stopping", "stopping"), else_="idle")
        if finished:
            values["runs_done"] = WORKER.c.runs_done + 1
        conn.execute(update(WORKER).where(WORKER.c.id == worker_id).values(**values))

    def recover_stale(
        self,
        stale_after_s: float | None = STALE_AFTER_S,
        dead_worker_ids: Iterable[str] = (),
        now: float | None = None,
        *,
        caller: str | None = None,
        caller_runs: Sequence[int] = (),
        beats_seen: Mapping[int, float] | None = None,
    ) -> list[int]:
        """The ids of the runs ``recover_stale_runs`` (same arguments) marks lost."""
        lost = self.recover_stale_runs(
            stale_after_s, dead_worker_ids, now,
            caller=caller, caller_runs=caller_runs, beats_seen=beats_seen,
        )  # fmt: skip
        return [run.id for run in lost]

    @patient
    def recover_stale_runs(
        self,
        stale_after_s: float | None = STALE_AFTER_S,
        dead_worker_ids: Iterable[str] = (),
        now: float | None = None,
        *,
        caller: str | None = None,
        caller_runs: Sequence[int] = (),
        beats_seen: Mapping[int, float] | None = None,
    ) -> list[LostRun]:
        """Mark running runs whose heartbeat is stale (or whose worker is known dead) as
        failed "worker lost", and their workers as lost. Returns those runs, each with
        its worker's host and pid: a worker saying so names whose run it was.

        ``beats_seen`` (run id -> its last beat as ``running_beats`` read it), instead of
        the age rule: those runs still at that beat (a beat since wins), and their workers
        not heard from since. A training worker's look, judged by its own clock: each box
        writes its beats with its own, and ages across boxes whose clocks differ by the
        limit had every look mark the other's live runs lost and its next beat revive them.

        ``stale_after_s=None``: only the dead workers' (the dashboard knows that a
        process of its own host is gone; heartbeat ages it leaves to the workers).
        ``caller``: the worker asking, alive whatever its row's age says (back from a
        database outage, it marked itself lost, and its next beat made it "running" a
        run another worker had taken meanwhile), as are the runs it trains
        (``caller_runs``); another run under it (claimed by a commit whose answer a cut
        connection lost) is judged by its age.
        """
        now = time.time() if now is None else now
        running = RUN.c.status == RunStatus.RUNNING.value
        # Locked as read (PostgreSQL; SQLite's write lock already holds them), in id order
        # as a beat takes them: a finish its silent worker committed between this and the
        # update was overwritten "worker lost", the worker told it was recorded. A row
        # another transaction holds is left for the next look: a beat or finish in flight
        # (alive), or a dead box's, cut inside its beat, whose locks the server keeps
        # until it gives up on the connection (hours): waiting on it held a worker's
        # heartbeat thread (its own runs unbeaten) or its loop that long.
        with self._write() as conn:
            if beats_seen is None:
                lost_run, lost_worker = _lost(
                    stale_after_s, list(dead_worker_ids), now, caller, caller_runs
                )
                query = select(RUN.c.id, RUN.c.worker_id, _last_beat().label("beat"))
                query = query.where(running, lost_run).order_by(RUN.c.id)
                found = list(conn.execute(query.with_for_update(skip_locked=True)))
                lost_workers = [lost_worker]
            else:
                found = _still_at(conn, beats_seen, caller, caller_runs)
                silent = _silent_since(conn, found, caller)
                lost_workers = [WORKER.c.id.in_(some) for some in _in_statements(silent)]
            ids = [row.id for row in found]
            lost = _whose(conn, found)
            # It ended when last heard from, not when found silent (maybe hours later, at
            # the next worker start): its "took" is the time it trained.
            last_heard = func.coalesce(RUN.c.heartbeat_at, RUN.c.started_at, now)
            for some in _in_statements(ids):
                conn.execute(
                    update(RUN)
                    .where(RUN.c.id.in_(some), running)
                    .values(
                        status=RunStatus.FAILED.value, error=WORKER_LOST, finished_at=last_heard
                    )
                )
            live = WORKER.c.state.in_(LIVE_WORKER_STATES)
            for workers in lost_workers:
                held = select(WORKER.c.id).where(live, workers).with_for_update(skip_locked=True)
                conn.execute(
                    update(WORKER)
                    .where(WORKER.c.id.in_(held.scalar_subquery()))
                    .values(state="lost", current_run_id=None)
                )
        return lost

    @patient
    def running_beats(self, *, caller: str, caller_runs: Sequence[int]) -> dict[int, float]:
        """The running runs but ``caller``'s own (``caller_runs``), each with its last beat
        as its worker wrote it (heartbeat_at, else started_at): a value to compare with a
        later read's, never with this box's clock (``recover_stale``'s ``beats_seen``).
        One read (``ix_run_claim`` leads with the status), so that a worker can look
        while it trains and take the write lock only when one has stopped beating."""
        running = RUN.c.status == RunStatus.RUNNING.value
        query = select(RUN.c.id, _last_beat().label("beat"))
        query = query.where(running, not_(_training(caller, caller_runs)))
        with self._read() as conn:
            return {row.id: row.beat for row in conn.execute(query)}

    @patient
    def idle_beats(self, *, caller: str) -> dict[str, float]:
        """The live workers but ``caller`` that hold no running run, each with its last
        beat (last_seen_at) as it wrote it: a value to compare with a later read's, as
        ``running_beats`` (``recover_silent_workers``). A damaged one is left out."""
        query = select(WORKER.c.id, WORKER.c.last_seen_at)
        query = query.where(_idle_and_live(), WORKER.c.id != caller)
        with self._read() as conn:
            return {w.id: w.last_seen_at for w in conn.execute(query) if _a_beat(w.last_seen_at)}

    @patient
    def recover_silent_workers(self, workers_seen: Mapping[str, float]) -> list[str]:
        """Mark lost the workers of ``workers_seen`` (worker id -> its last beat as
        ``idle_beats`` read it) still at that beat, live and holding no running run (a
        beat or a claim since wins). A worker holding a run is its run's look's
        (``recover_stale_runs``). Returns their ids."""
        silent: list[str] = []
        with self._write() as conn:
            for some in _in_statements(sorted(workers_seen)):
                # Locked as read (PostgreSQL): a beat cannot come between this and the update.
                query = select(WORKER.c.id, WORKER.c.last_seen_at)
                query = query.where(WORKER.c.id.in_(some), _idle_and_live())
                rows = conn.execute(query.with_for_update(skip_locked=True))
                silent += [w.id for w in rows if w.last_seen_at == workers_seen[w.id]]
            for some in _in_statements(silent):
                conn.execute(
                    update(WORKER)
                    .where(WORKER.c.id.in_(some), _idle_and_live())
                    .values(state="lost", current_run_id=None)
                )
        return silent

    # ----- a person's changes (CLI, TUI) ---------------------------------------------

    def request_cancel(
        self,
        ids: Sequence[int],
        stale_after_s: float = STALE_AFTER_S,
        dead_worker_ids: Iterable[str] = (),
        *,
        confirming: Callable[[str], None] | None = None,
    ) -> dict[int, RunStatus | None]:
        """Cancel queued runs now; ask the workers of running runs to stop them.

        A running run whose worker is known dead (``dead_worker_ids``: a process of this
        host that is gone) is cancelled at once: nobody is left to acknowledge. So is one
        whose beat reads older than ``stale_after_s`` by this box's clock, once that beat
        has not changed for ``SILENCE_CONFIRM_S`` on this process's own clock: its worker
        writes it with its own box's clock, which may be behind this one's. (A live run
        cancelled at once was dropped by its worker, its end refused: a run in its final
        pass lost its success, a training one its last figures.) A beat that changes
        meanwhile ends the wait: its worker is asked, as any live run's. ``confirming``
        is told why it waits, before the wait (``watching_said``: the runs watched, each
        beat's age by this clock).
        One write after the wait; ``ids`` not all queued or running at the first read are
        refused, all of them. Returns each run's status after the call: RUNNING asked,
        CANCELLED, or how a run ended meanwhile (SUCCEEDED, FAILED: left as it is); None
        for one deleted meanwhile (``rm`` of a queued run during the wait).
        """
        dead = frozenset(dead_worker_ids)
        looks_silent = self._looks_silent(ids, stale_after_s, dead)
        if looks_silent and confirming is not None:
            now = time.time()
            ages = {run_id: now - beat for run_id, beat in looks_silent.items()}
            confirming(watching_said(ages, SILENCE_CONFIRM_S))
        silent = self._still_silent(looks_silent, SILENCE_CONFIRM_S)
        return self._cancel(ids, dead, silent)

    @patient
    def _looks_silent(
        self, ids: Sequence[int], stale_after_s: float, dead: frozenset[str]
    ) -> dict[int, float]:
        """The running runs of ``ids`` whose beat reads older than ``stale_after_s`` by this
        box's clock, their worker not known dead, each with its beat as read. Refuses
        ``ids`` as the cancel would, before any wait."""
        now = time.time()
        with self._read() as conn:
            runs = self._require(conn, ids, CANCELLABLE, CANCEL_REFUSED)
        return {
            run.id: _beat_of(run)
            for run in runs
            if run.status == RunStatus.RUNNING
            and run.worker_id not in dead
            and _beat_of(run) < now - stale_after_s
        }

    def _still_silent(self, beats_seen: Mapping[int, float], wait_s: float) -> dict[int, float]:
        """Those of ``beats_seen`` (run id -> its beat as read) still running at that beat
        after ``wait_s`` on this process's monotonic clock, which no box's clock moves:
        returns as soon as none is."""
        silent = dict(beats_seen)
        deadline = monotonic() + wait_s
        while silent and (left := deadline - monotonic()) > 0:
            sleep(min(SILENCE_POLL_S, left))
            beats = self._running_beats_of(sorted(silent))
            silent = {run_id: beat for run_id, beat in silent.items() if beats.get(run_id) == beat}
        return silent

    @patient
    def _running_beats_of(self, ids: Sequence[int]) -> dict[int, float]:
        """The running runs of ``ids``, each with its last beat as its worker wrote it."""
        running = RUN.c.status == RunStatus.RUNNING.value
        with self._read() as conn:
            return {
                row.id: row.beat
                for some in _in_statements(ids)
                for row in conn.execute(
                    select(RUN.c.id, _last_beat().label("beat")).where(running, RUN.c.id.in_(some))
                )
            }

    @patient
    def _cancel(
        self, ids: Sequence[int], dead: frozenset[str], silent: Mapping[int, float]
    ) -> dict[int, RunStatus | None]:
        """``request_cancel``'s write: ``silent``, the running runs found silent at these
        beats (run id -> beat), cancelled at once only while still at them. ``ids`` were
        all cancellable at ``_looks_silent``'s read: one that has ended since (succeeded,
        failed, lost) is left as it is and returned with its status, one deleted since
        with None, the others cancelled."""
        now = time.time()
        with self._write() as conn:
            # Locked before they are read (PostgreSQL; SQLite's write lock already holds
            # them): a finish committed between the read and the update was overwritten.
            # Not waited for past the busy timeout: the run of a box cut off inside its
            # beat, the very one to cancel, stays locked for hours, and cancel hung as long.
            self._lock_timeout(conn)
            for some in _in_statements(sorted(set(ids))):
                lock = select(RUN.c.id).where(RUN.c.id.in_(some)).order_by(RUN.c.id)
                conn.execute(lock.with_for_update())
            # Not refused for a run ended or deleted since the first read: with the watch
            # between the two (up to SILENCE_CONFIRM_S), a run of `cancel 3 4 5` finishing
            # meanwhile, or a queued one removed (`rm`), refused the whole cancel, the
            # others left to train.
            runs = {run.id: run for run in self._select_runs(conn, RunFilter(ids=tuple(ids)))}
            result: dict[int, RunStatus | None] = {}
            for run_id in dict.fromkeys(ids):
                run = runs.get(run_id)
                if run is None:
                    result[run_id] = None
                    continue
                if run.status not in CANCELLABLE:
                    result[run.id] = run.status
                    continue
                gone = run.worker_id in dead or silent.get(run.id) == _beat_of(run)
                if run.status == RunStatus.QUEUED or gone:
                    values = dict(status=RunStatus.CANCELLED.value, finished_at=now)
                    result[run.id] = RunStatus.CANCELLED
                else:
                    values = dict(cancel_requested=True)
                    result[run.id] = RunStatus.RUNNING
                conn.execute(update(RUN).where(RUN.c.id == run.id).values(**values))
            return result

    @patient
    def retry(self, ids: Sequence[int]) -> None:
        """failed/cancelled -> queued, as if new (metrics and figures are dropped; its
        checkpoint folder stays named: training again takes it back)."""
        with self._write() as conn:
            self._require(conn, ids, RETRYABLE, "only failed or cancelled runs can be retried")
            retryable = [s.value for s in RETRYABLE]  # still: a concurrent retry + claim
            conn.execute(
                update(RUN)
                .where(RUN.c.id.in_(ids), RUN.c.status.in_(retryable))
                .values(**self._present(conn, _FRESH))
            )
            conn.execute(delete(METRIC).where(METRIC.c.run_id.in_(ids)))

    @patient
    def remove(self, ids: Sequence[int]) -> int:
        """Delete runs and their metrics; running runs must be cancelled first."""
        with self._write() as conn:
            self._require(conn, ids, SETTLED, _remove_refused)
            conn.execute(delete(METRIC).where(METRIC.c.run_id.in_(ids)))
            return int(conn.execute(delete(RUN).where(RUN.c.id.in_(ids))).rowcount)

    @patient
    def set_priority(self, ids: Sequence[int], priority: int) -> None:
        """Higher priority trains sooner (ties: oldest first)."""
        with self._write() as conn:
            self._require(conn, ids, frozenset(RunStatus), "")
            conn.execute(update(RUN).where(RUN.c.id.in_(ids)).values(priority=priority))

    @patient
    def change_priority(self, ids: Sequence[int], step: int) -> None:
        """Add ``step`` to each run's stored priority, in the database: two quick presses
        of ``+`` before the dashboard's next poll add 2, not 1."""
        with self._write() as conn:
            runs = self._require(conn, ids, frozenset(RunStatus), "")
            _within_priority_limit([(run.id, run.priority, run.priority + step) for run in runs])
            update_priority = update(RUN).where(RUN.c.id.in_(ids))
            conn.execute(update_priority.values(priority=RUN.c.priority + step))

    def _one_at_a_time(self, conn: Connection) -> None:
        """On PostgreSQL, wait for the claims' lock until this transaction ends (SQLite's
        write lock already serialises writers). Waited for as long as SQLite waits for its
        lock: a box that lost its network while holding it must not hold every other
        box's claims for hours."""
        if conn.dialect.name == "postgresql":
            self._lock_timeout(conn)
            conn.execute(select(func.pg_advisory_xact_lock(CLAIM_LOCK_KEY)))

    def _lock_timeout(self, conn: Connection) -> None:
        """On PostgreSQL, this transaction waits for a lock only as long as SQLite waits
        for its write lock, then is refused ("locked by another process"): a box cut off
        its network inside a write keeps its locks until the server gives up on the
        connection (hours)."""
        if conn.dialect.name == "postgresql":
            timeout_ms = max(1, round(self.busy_timeout_s * 1000))
            conn.execute(text(f"SET LOCAL lock_timeout = {timeout_ms}"))

    @patient
    def move_to_front(self, ids: Sequence[int]) -> list[int]:
        """Make ``ids`` the next runs claimed, in the order given (``next 9 7`` trains 9,
        then 7): each gets a priority above every queued run's, the first the highest.
        Returns the priorities, in the order of ``ids``."""
        ids = list(dict.fromkeys(ids))
        with self._write() as conn:
            # Two at once would read the same top priority and give runs equal ones.
            self._one_at_a_time(conn)
            runs = self._require(conn, ids, frozenset(RunStatus), "")
            top = conn.execute(
                select(func.max(RUN.c.priority)).where(RUN.c.status == RunStatus.QUEUED.value)
            ).scalar()
            priorities = [(top or 0) + len(ids) - place for place in range(len(ids))]
            if any(abs(priority) > PRIORITY_LIMIT for priority in priorities):
                # At the limit already: runs that head the queue in this order are next.
                heading = conn.execute(
                    select(RUN.c.id, RUN.c.priority)
                    .where(RUN.c.status == RunStatus.QUEUED.value)
                    .order_by(RUN.c.priority.desc(), RUN.c.id)
                    .limit(len(ids))
                ).all()
                if [row.id for row in heading] == ids:
                    return [row.priority for row in heading]
            changes = [
                (run.id, run.priority, new) for run, new in zip(runs, priorities, strict=True)
            ]
            _within_priority_limit(changes, "lower the highest queued priority first")
            for run_id, priority in zip(ids, priorities, strict=True):
                conn.execute(update(RUN).where(RUN.c.id == run_id).values(priority=priority))
            return priorities

    def _require(
        self,
        conn: Connection,
        ids: Sequence[int],
        allowed: frozenset[RunStatus],
        why: str | Callable[[list[RunRow]], str],
    ) -> list[RunRow]:
        runs = {run.id: run for run in self._select_runs(conn, RunFilter(ids=tuple(ids)))}
        missing = [i for i in dict.fromkeys(ids) if i not in runs]
        if missing:
            # As the wrong-status refusal below says: the ids that exist were left alone.
            listed = ids_listed(missing, REFUSED_NAMED)
            raise UnknownRun(f"no run with id {listed} in {self._where()}; nothing changed")
        # Once each: `rm 12 12` said "run 12 is running, run 12 is running".
        wrong = [runs[i] for i in dict.fromkeys(ids) if runs[i].status not in allowed]
        if wrong:
            listed = some_listed([run_is(r.id, r.status) for r in wrong], REFUSED_NAMED)
            said = why if isinstance(why, str) else why(wrong)
            statuses = [(run.id, run.status) for run in wrong]
            raise InvalidTransition(f"{listed}: {said}; nothing changed", statuses, said)
        return [runs[i] for i in dict.fromkeys(ids)]

    # ----- reading -------------------------------------------------------------------

    @patient
    def get_run(self, run_id: int) -> RunRow:
        with self._read() as conn:
            run = self._get(conn, run_id)
        if run is None:
            raise UnknownRun(f"no run with id {run_id} in {self._where()}")
        return run

    @patient
    def get_samples(self, run_id: int) -> bytes | None:
        """The sample reconstruction grid (``.npy`` bytes, uint8 (3, n, H, W)) or None."""
        with self._read() as conn:
            return conn.execute(select(RUN.c.samples).where(RUN.c.id == run_id)).scalar()

    @patient
    def list_runs(
        self, filters: RunFilter | None = None, *, skip_damaged: bool = False
    ) -> list[RunRow]:
        """The runs ``filters`` selects. ``skip_damaged``, a worker's own reads (admission,
        its look before leaving an empty queue): a damaged row (another worker's run,
        edited by hand) is left out, said once, as ``list_workers`` does; raised, it
        stopped the worker on a "database error"."""
        if not skip_damaged:
            with self._read() as conn:
                return self._select_runs(conn, filters or RunFilter())
        with self._read() as conn:
            rows = conn.execute(self._runs_query(conn, filters or RunFilter())).mappings().all()
        readable = (self._readable(row, _run_row) for row in rows)
        return [run for run in readable if run is not None]

    @patient
    def counts_by_status(self, experiment: str | None = None) -> dict[RunStatus, int]:
        query = select(RUN.c.status, func.count()).group_by(RUN.c.status)
        if experiment is not None:
            query = query.where(RUN.c.experiment == experiment)
        with self._read() as conn:
            counted = [(s, int(n)) for s, n in conn.execute(query)]
        known = {status.value for status in RunStatus}
        if unknown := sorted(str(s) for s, _ in counted if s not in known):
            # As a run's row read alone says it (ls, show): `status` was a traceback.
            raise QueueError(
                f"a run's row is damaged (its status {unknown[0]!r} is none this version "
                f"knows): put its value back, or delete the row with an SQL client"
            )
        found = {RunStatus(s): n for s, n in counted}
        return {status: found.get(status, 0) for status in RunStatus}

    @patient
    def settled_signature(self) -> Signature:
        """Changes when a run that is not running is added, removed, changes status or priority.

        The dashboard polls every second: it re-reads running runs each tick but the
        (possibly 10,000) others only when this one-row fingerprint changes. Sums
        weighted by id catch what plain sums miss (priority +1 on one run and -1 on
        another; one run leaving a status as another enters). Every column used is in
        the claim index (status, priority, id), so SQLite never reads the table.
        """
        weighted = [
            func.coalesce(func.sum(case((RUN.c.status == status.value, RUN.c.id), else_=0)), 0)
            for status in sorted(SETTLED)
        ]
        # 64-bit: PostgreSQL multiplies two INTEGERs as 32-bit ones, and run 2,148 at
        # priority 1,000,000 (the limit) was "integer out of range" at every poll.
        weighted_priority = func.sum(cast(RUN.c.priority, BigInteger) * RUN.c.id)
        query = select(func.count(), func.coalesce(weighted_priority, 0), *weighted).where(
            RUN.c.status.in_([s.value for s in SETTLED])
        )
        with self._read() as conn:
            return tuple(conn.execute(query).one())

    @patient
    def experiments(self) -> list[tuple[str, int]]:
        """(experiment, number of runs), oldest experiment first."""
        query = (
            select(RUN.c.experiment, func.count())
            .group_by(RUN.c.experiment)
            .order_by(func.min(RUN.c.id))
        )
        with self._read() as conn:
            return [(name, int(n)) for name, n in conn.execute(query)]

    @patient
    def metrics_since(
        self,
        run_id: int,
        after_id: int = 0,
        names: Sequence[str] | None = None,
        limit: int | None = None,
    ) -> list[MetricRow]:
        """Metric rows of ``run_id`` with id > ``after_id``, oldest first (incremental)."""
        query = select(METRIC).where(METRIC.c.run_id == run_id, METRIC.c.id > after_id)
        if names is not None:
            query = query.where(METRIC.c.name.in_(list(names)))
        query = query.order_by(METRIC.c.id).limit(limit)
        with self._read() as conn:
            return [_metric_row(row._mapping) for row in conn.execute(query)]

    @patient
    def clock_offset(self) -> float | None:
        """The database server's clock less this machine's, in seconds (None on SQLite,
        whose file is read and written by one machine's clock). Heartbeats are stamped
        by each worker's clock and aged by another's: two boxes' clocks apart by the
        heartbeat's limit read each other's live runs as lost."""
        if self.engine.dialect.name != "postgresql":
            return None
        with self._read() as conn:
            before = time.time()
            server = conn.execute(text("SELECT extract(epoch FROM clock_timestamp())")).scalar_one()
            after = time.time()
        return float(server) - (before + after) / 2

    @patient
    def measured_peaks(
        self, param_count: int, device_prefix: str = "cuda", limit: int = 200
    ) -> list[tuple[str, int]]:
        """(config_json, peak_memory_bytes) of succeeded runs with ``param_count``
        parameters trained by a worker whose device starts with ``device_prefix``,
        newest first. The packing worker looks for its run's config among them."""
        query = (
            select(RUN.c.config_json, RUN.c.peak_memory_bytes)
            .join(WORKER, WORKER.c.id == RUN.c.worker_id)
            .where(
                RUN.c.status == RunStatus.SUCCEEDED.value,
                RUN.c.param_count == param_count,
                RUN.c.peak_memory_bytes > 0,
                WORKER.c.device.startswith(device_prefix),
            )
            .order_by(RUN.c.finished_at.desc())
            .limit(limit)
        )
        with self._read() as conn:
            # A peak edited by hand into text passes "> 0" in SQLite: no measure, skipped.
            rows = conn.execute(query).all()
        return [(str(text), peak) for text, peak in rows if type(peak) is int]

    # ----- workers -------------------------------------------------------------------

    def register_worker(
        self,
        host: str,
        pid: int,
        device: str,
        *,
        stack: int = 1,
        largest_first: bool = False,
        max_runs: int | None = None,
    ) -> str:
        """Add a worker row (state idle) and return its id. ``stack``, ``largest_first``
        and ``max_runs``: how it claims, recorded for the queue's forecast."""
        worker_id = f"{host}-{pid}-{secrets.token_hex(2)}"  # one id for every try
        self._add_worker(worker_id, host, pid, device, stack, largest_first, max_runs)
        return worker_id

    @patient
    def _add_worker(
        self,
        worker_id: str,
        host: str,
        pid: int,
        device: str,
        stack: int,
        largest_first: bool,
        max_runs: int | None,
    ) -> None:
        now = time.time()
        values = dict(
            id=worker_id, host=host, pid=pid, device=device, state="idle",
            started_at=now, last_seen_at=now, runs_done=0,
            stack=stack, largest_first=largest_first, max_runs=max_runs,
        )  # fmt: skip
        present = {column.name for column in self.worker_columns}
        values = {key: value for key, value in values.items() if key in present}
        with self._write() as conn:
            # Tried again: a refused try whose insert went through left the row (another
            # would never beat, and this one would clash with it).
            there = select(WORKER.c.id).where(WORKER.c.id == worker_id)
            if not (tried_again() and conn.execute(there).first() is not None):
                conn.execute(insert(WORKER).values(**values))

    @patient
    def update_worker(self, worker_id: str, *, state: str | None = None) -> None:
        values: dict[str, Any] = {"last_seen_at": time.time()}
        if state is not None:
            values["state"] = state
            if state in ("stopped", "lost"):
                values["current_run_id"] = None
        with self._write() as conn:
            conn.execute(update(WORKER).where(WORKER.c.id == worker_id).values(**values))

    @patient
    def mark_worker_stopping(self, worker_id: str) -> bool:
        """Asked to stop (``stop``): its row says so at once, unless it says the worker
        stopped already. An idle worker exits within milliseconds of the signal: written
        over, its "stopped" said "stopping" for a process gone, until marked lost.
        Whether it changed."""
        live = [state for state in LIVE_WORKER_STATES if state != "stopping"]
        with self._write() as conn:
            query = update(WORKER).where(WORKER.c.id == worker_id, WORKER.c.state.in_(live))
            return bool(conn.execute(query.values(state="stopping")).rowcount)

    @patient
    def mark_worker_stalled(self, worker_id: str, stalled: bool) -> bool:
        """Its training takes no steps (``core.recording``): "running" -> "stalled", and
        back. Only from those states: "stopping" and "idle" say more. Whether it changed."""
        old, new = ("running", "stalled") if stalled else ("stalled", "running")
        with self._write() as conn:
            query = update(WORKER).where(WORKER.c.id == worker_id, WORKER.c.state == old)
            return bool(conn.execute(query.values(state=new)).rowcount)

    @patient
    def list_workers(
        self, include_gone: bool = False, *, skip_damaged: bool = False
    ) -> list[WorkerRow]:
        """Workers, newest first; ``include_gone`` adds stopped and lost ones.

        ``skip_damaged``, a worker's own reads (its stale-run recovery, device choice,
        admission): a row edited by hand into what no version writes is left out and
        said once in ``log``, naming its field. Raised, it stopped the worker (rc 2) at
        its start, and every other worker of the queue at its next recovery."""
        if not skip_damaged:
            return [_worker_row(row) for row in self._worker_mappings(include_gone)]
        workers, damaged = self._workers_read(include_gone)
        for row in damaged:
            self.say_left_out(row.said)
        return workers

    @patient
    def workers_and_damaged(
        self, include_gone: bool = False
    ) -> tuple[list[WorkerRow], list[DamagedWorker]]:
        """The workers ``list_workers`` reads, and apart from them the rows edited by hand
        into what no version writes, each named: for a view (``status``, ``ls``, ``stop``,
        the dashboard) to show the others and say the damaged one. Raised, one such row
        left the person nothing else to see until they mended it with an SQL client."""
        return self._workers_read(include_gone)

    def _workers_read(self, include_gone: bool) -> tuple[list[WorkerRow], list[DamagedWorker]]:
        """The readable worker rows, and the damaged ones named (``DamagedWorker``)."""
        workers: list[WorkerRow] = []
        damaged: list[DamagedWorker] = []
        for row in self._worker_mappings(include_gone):
            try:
                workers.append(_worker_row(row))
            except DamagedRow as damage:
                host = row.get("host")
                shown_host = host if isinstance(host, str) else None
                pid = row.get("pid")
                whole_pid = pid if type(pid) is int else None  # a bool or text is no pid
                damaged.append(
                    DamagedWorker(str(row.get("id")), shown_host, str(damage), whole_pid)
                )
        return workers, damaged

    def _worker_mappings(self, include_gone: bool) -> Sequence[RowMapping]:
        # largest_first as stored: read as a boolean, any text (edited by hand) became
        # True or False, and the row could not be named damaged (``_worker_row``).
        columns = [
            type_coerce(c, Integer).label(c.name) if c.name == "largest_first" else c
            for c in self.worker_columns
        ]
        query = select(*columns).order_by(WORKER.c.started_at.desc())
        if not include_gone:
            # Not "in the live states": a row of a state no version writes is read too,
            # and named damaged, where it was left out as if its worker had stopped
            # (`stop` said "no live worker" and left it training).
            query = query.where(WORKER.c.state.not_in(GONE_WORKER_STATES))
        with self._read() as conn:
            return conn.execute(query).mappings().all()

    @patient
    def running_and_damaged(self) -> tuple[list[RunRow], list[DamagedRun]]:
        """The running runs, and apart from them the rows edited by hand, each with what
        can still be read of it: for the slots' admission, which must count a damaged
        run's memory (left out, a slot could fill the GPU it is about to take)."""
        with self._read() as conn:
            running = RunFilter(statuses=frozenset({RunStatus.RUNNING}))
            rows = conn.execute(self._runs_query(conn, running)).mappings().all()
        runs: list[RunRow] = []
        damaged: list[DamagedRun] = []
        for row in rows:
            try:
                runs.append(_run_row(row))
            except DamagedRow as damage:
                damaged.append(_damaged_run(row, str(damage)))
        return runs, damaged

    def _readable(self, row: RowMapping, read: Callable[[RowMapping], _Row]) -> _Row | None:
        """``row`` read, or None where it is damaged: said once in ``log``."""
        try:
            return read(row)
        except DamagedRow as damage:
            self.say_left_out(str(damage))
            return None

    def say_left_out(self, damage: str) -> None:
        """A damaged row a worker's own read leaves out, said once in ``log``."""
        said = f"{damage}; this worker goes on without it"
        if self.log is not None and said not in self.damaged_said:
            self.damaged_said.add(said)
            self.log(said)

    # ----- helpers -------------------------------------------------------------------

    def _get(self, conn: Connection, run_id: int) -> RunRow | None:
        runs = self._select_runs(conn, RunFilter(ids=(run_id,)))
        return runs[0] if runs else None

    def _select_runs(self, conn: Connection, f: RunFilter) -> list[RunRow]:
        """The runs ``f`` selects. A row with a value of the wrong kind is a damaged row
        wherever it is read (``_run_row``), as one with an unknown status or a config
        that is no JSON: a claim fails it, saying what is wrong (``_claimed_readable``),
        a worker's own reads leave it out (``list_runs(skip_damaged)``), and nothing acts
        on its values (read leniently, a cancel compared its text heartbeat: a TypeError)."""
        return [_run_row(row) for row in conn.execute(self._runs_query(conn, f)).mappings()]

    def _runs_query(self, conn: Connection, f: RunFilter) -> Select[Any]:
        """The query for the runs ``f`` selects, of the columns the database has."""
        present = self._run_columns(conn)
        return _runs_query(f, [c for c in RUN_READ_COLUMNS if c.name in present])

    def _where(self) -> str:
        return db.describe(self.url)


def _runs_query(f: RunFilter, columns: Sequence[Any]) -> Select[Any]:
    """The query for the runs ``f`` selects (of ``columns``), in its order."""
    query = select(*columns, RUN.c.samples.is_not(None).label("has_samples"))
    if f.statuses is not None:
        query = query.where(RUN.c.status.in_([s.value for s in f.statuses]))
    if f.experiment is not None:
        query = query.where(RUN.c.experiment == f.experiment)
    if f.experiments is not None:
        query = query.where(RUN.c.experiment.in_(list(f.experiments)))
    if f.ids is not None:
        query = query.where(RUN.c.id.in_(list(f.ids)))
    order = {
        "id": (RUN.c.id,),
        "queue": (RUN.c.priority.desc(), RUN.c.id),
        "recent": (RUN.c.id.desc(),),
    }[f.order]
    return query.order_by(*order).limit(f.limit)


def _remove_refused(running: list[RunRow]) -> str:
    """Why ``remove`` leaves ``running`` runs: "cancel it first" where a cancel was
    already asked for read as if it had not been."""
    if all(run.cancel_requested for run in running):
        if len(running) > 1:
            return "their cancels are asked for: remove them once they have stopped"
        return "its cancel is asked for: remove it once it has stopped"
    return "cancel it first"


def _target_changes(stored: str | None, run: NewRun) -> bool:
    """Whether queueing ``run`` gives the stored run it skips (whose target is ``stored``)
    the sweep file's new target."""
    if not run.target:
        return False  # a target taken out of the file stays: the figure was published
    # The same figures, however the file orders or writes them, are no change.
    return stored is None or json.loads(stored) != dict(run.target)


def _fates(
    runs: Sequence[NewRun], existing: dict[tuple[str, str], SameRun]
) -> list[tuple[str, int, str]]:
    """What queueing does with each run: ("new" | "again" | "skip", the stored run's id
    or 0, its status or ""). A run twice in ``runs`` is skipped the second time."""
    fates: list[tuple[str, int, str]] = []
    seen: set[tuple[str, str]] = set()
    for run in runs:
        key = (run.experiment, run.config_hash)
        same = existing.get(key)
        status, same_id = (same.status, same.id) if same else (None, 0)
        if key in seen:
            fates.append(("skip", 0, ""))
        elif status in BLOCKS_DUPLICATES:
            fates.append(("skip", same_id, str(status)))
        elif status in RETRYABLE:
            fates.append(("again", same_id, str(status)))
        else:
            fates.append(("new", 0, ""))
        seen.add(key)
    return fates


class _Kind(NamedTuple):
    """A column's Python kind. SQLite holds any value in any column: a row edited by hand
    ('abc' in validation_loss) reached a format() as text, a traceback in ls, show,
    results and the dashboard. PostgreSQL's typed columns hold none of them but a NaN
    in a time (``time``)."""

    column: str
    types: frozenset[type]  # exact types (a bool is no whole number), NoneType if optional
    said: str
    # "time": a time (time.time() as a worker or the queue wrote it): NaN is wrong too.
    # SQLite stores a NaN as NULL, so only PostgreSQL's double precision holds one, edited
    # in by hand ('NaN'): read as a time, it was a beat "0 s ago" for good, where SQLite's
    # 'NaN' (text) was a damaged row. "seconds": a length of time, finite and not below
    # zero (paused_s: inf ended `show` in an OverflowError, -100 added 100 s to a pace).
    measure: Literal["", "time", "seconds"] = ""


def _kinds(
    whole: str = "",
    whole_or_none: str = "",
    number: str = "",
    number_or_none: str = "",
    text: str = "",
    text_or_none: str = "",
    time: str = "",
    time_or_none: str = "",
    seconds_or_none: str = "",
) -> tuple[_Kind, ...]:
    """Each column (names split on spaces) with the Python kind its values must be."""
    groups: list[tuple[str, set[type], str, Literal["", "time", "seconds"]]] = [
        # In this order a row's first bad field is named (a time is a number).
        (whole, {int}, "a whole number", ""),
        (whole_or_none, {int, type(None)}, "a whole number", ""),
        (time, {int, float}, "a number", "time"),
        (number, {int, float}, "a number", ""),
        (time_or_none, {int, float, type(None)}, "a number", "time"),
        (number_or_none, {int, float, type(None)}, "a number", ""),
        (seconds_or_none, {int, float, type(None)}, "a number", "seconds"),
        (text, {str}, "text", ""),
        (text_or_none, {str, type(None)}, "text", ""),
    ]
    return tuple(
        _Kind(column, frozenset(types), said, measure)
        for names, types, said, measure in groups
        for column in names.split()
    )


_RUN_KINDS = _kinds(
    whole="priority seed param_count total_inputs inputs_done attempts",
    whole_or_none="peak_memory_bytes",
    number_or_none="validation_loss train_seconds inputs_per_s",
    seconds_or_none="paused_s",
    text="experiment name config_json config_hash",
    text_or_none="worker_id error checkpoint_path path_used",
    time="created_at",
    time_or_none="started_at finished_at heartbeat_at",
)
_WORKER_KINDS = _kinds(
    whole="pid runs_done",
    whole_or_none="current_run_id stack max_runs gpu_memory_used gpu_memory_total",
    number_or_none="gpu_util gpu_temperature",
    time="started_at last_seen_at",
    text="id host device state",
    text_or_none="gpu_name",
)
# A damaged worker row names this many of its bad fields in full, the others by column:
# its line (stop's stderr, the workers panel's warning) stays one line.
NAMED_IN_FULL = 3
_METRIC_KINDS = _kinds(whole="step inputs", number="value", text="name")


def _wrong_kind(m: dict[str, Any], kinds: tuple[_Kind, ...]) -> str | None:
    """What is wrong with the first value of ``m`` not of its column's kind, or None."""
    wrong = _wrong_kinds(m, kinds)
    return wrong[0][1] if wrong else None


def _wrong_kinds(m: dict[str, Any], kinds: tuple[_Kind, ...]) -> list[tuple[str, str]]:
    """Each column of ``m`` whose value is not of its kind, with what is wrong with it.
    A column an older version's database lacks is not in ``m``: nothing wrong."""
    wrong = (
        (kind.column, _not_of_kind(m[kind.column], kind)) for kind in kinds if kind.column in m
    )
    return [
        (column, f"its {column} is {_shown_value(m[column])}, not {said}")
        for column, said in wrong
        if said is not None
    ]


def _not_of_kind(value: object, kind: _Kind) -> str | None:
    """What ``value`` is not, where it is not of ``kind`` (None: it is): its exact type;
    for a time no NaN, and a date a clock can show (``_a_time``); for seconds a finite
    number, not below zero."""
    if type(value) not in kind.types:
        return kind.said
    if not kind.measure or not isinstance(value, float | int):
        return None
    if kind.measure == "seconds":
        return None if math.isfinite(value) and value >= 0 else "a number of seconds"
    if math.isnan(value):
        return kind.said  # "not a number", as SQLite's text 'NaN' reads
    return None if _a_time(value) else "a time"


# The times a date is shown for (``time.localtime``): the years 1 to 9999. Past them (inf,
# 9e999 on SQLite, 'Infinity' on PostgreSQL, 1e20, edited by hand) `show` ended in
# "OverflowError: timestamp out of range", and a beat of inf read "0 s ago" for good.
FIRST_TIME, LAST_TIME = -62135596800.0, 253402300799.0


def _a_time(value: object) -> bool:
    """Whether ``value`` is a time (time.time() as a worker or the queue wrote it): a
    number, not NaN, of a date between the years 1 and 9999."""
    if isinstance(value, bool) or not isinstance(value, float | int):
        return False
    return FIRST_TIME <= value <= LAST_TIME  # False for NaN too


def _shown_value(value: Any) -> str:
    if isinstance(value, bytes):
        return f"{len(value)} bytes of binary data"
    return repr(value)[:60]


def _damaged_row(what: str, problem: str) -> DamagedRow:
    return DamagedRow(
        f"{what} is damaged ({problem}): put its value back, or delete the row with an SQL client",
        problem,
    )


def _run_row(mapping: RowMapping) -> RunRow:
    m = dict(mapping)
    wrong = _wrong_kind(m, _RUN_KINDS)
    if wrong is not None:
        raise _damaged_row(f"run {m.get('id')}'s row", wrong)
    column = "status"  # the one being read, named where it is damaged
    try:
        m["status"] = RunStatus(m["status"])
        column = "swept_json"
        swept = json.loads(m.pop("swept_json") or "{}")
        if not isinstance(swept, dict):  # `null` or a list: read as a mapping everywhere
            raise ValueError("not a mapping")
        column = "target_json"
        target_json = m.pop("target_json")
        target = json.loads(target_json) if target_json else None
        if target is not None and not isinstance(target, dict):
            raise ValueError("not a mapping")
        column = "config_json"
        if not isinstance(json.loads(m["config_json"]), dict):  # read again by .config
            raise ValueError("not a mapping")
    except (ValueError, TypeError) as exc:  # a row edited by hand, or written by hand
        problem = f"its {column}: {first_line(exc)[:120]}"
        raise _damaged_row(f"run {m.get('id')}'s row", problem) from None
    m["cancel_requested"] = bool(m["cancel_requested"])
    m["has_samples"] = bool(m["has_samples"])
    return RunRow(swept=swept, target=target, **m)


def _insert_points(conn: Connection, run_id: int, points: Sequence[MetricPoint]) -> None:
    rows = [
        dict(run_id=run_id, step=p.step, inputs=p.inputs, name=p.name, value=p.value)
        for p in points
    ]
    if rows:
        conn.execute(insert(METRIC), rows)


def _written_already(conn: Connection, run_id: int, points: Sequence[MetricPoint]) -> bool:
    """Whether the run's last metric rows are ``points``, in order: the batch of a try
    that committed although its connection was cut before it heard so."""
    last = (
        select(METRIC.c.step, METRIC.c.inputs, METRIC.c.name, METRIC.c.value)
        .where(METRIC.c.run_id == run_id)
        .order_by(METRIC.c.id.desc())
        .limit(len(points))
    )
    stored = [tuple(row) for row in reversed(conn.execute(last).all())]
    return stored == [(p.step, p.inputs, p.name, p.value) for p in points]


def _left_so(conn: Connection, run_id: int, status: RunStatus, worker_id: str | None) -> bool:
    """Whether ``run_id`` is ``status`` under ``worker_id`` (None: under no worker, as a
    requeue leaves it): what a try left that committed although its connection was cut
    before it heard so."""
    worker = RUN.c.worker_id.is_(None) if worker_id is None else RUN.c.worker_id == worker_id
    query = select(RUN.c.id).where(RUN.c.id == run_id, RUN.c.status == status.value, worker)
    return conn.execute(query).first() is not None


def _lost(
    stale_after_s: float | None,
    dead: list[str],
    now: float,
    caller: str | None,
    caller_runs: Sequence[int],
) -> tuple[Any, Any]:
    """The running runs and the live workers that ``recover_stale`` marks lost, as two
    conditions (runs, workers): see there."""
    lost_run, lost_worker = RUN.c.worker_id.in_(dead), WORKER.c.id.in_(dead)
    if stale_after_s is not None:
        cutoff = now - stale_after_s
        lost_run = or_(_last_beat() < cutoff, lost_run)
        lost_worker = or_(WORKER.c.last_seen_at < cutoff, lost_worker)
    if caller is not None:
        lost_run = and_(lost_run, not_(_training(caller, caller_runs)))
        lost_worker = and_(lost_worker, WORKER.c.id != caller)
    return lost_run, lost_worker


def _last_beat() -> Any:
    """A run's last beat as its worker wrote it: started_at until its first heartbeat."""
    return func.coalesce(RUN.c.heartbeat_at, RUN.c.started_at, 0.0)


def _beat_of(run: RunRow) -> float:
    """``_last_beat`` of a run as read, so that the two compare."""
    if run.heartbeat_at is not None:
        return run.heartbeat_at
    return run.started_at if run.started_at is not None else 0.0


def _training(caller: str, caller_runs: Sequence[int]) -> Any:
    """The runs ``caller`` trains: alive whatever their beats say."""
    return and_(RUN.c.worker_id == caller, RUN.c.id.in_(list(caller_runs)))


# Ids bound into one IN list at most: SQLite before 3.32 takes 999 bound values in a
# statement, and a condition per row nests one level per row (its limit: 1000 deep).
IN_LIST_MAX = 500


def _in_statements(ids: Sequence[T]) -> list[Sequence[T]]:
    """``ids`` cut into lists short enough for one statement's IN each (``IN_LIST_MAX``)."""
    return [ids[at : at + IN_LIST_MAX] for at in range(0, len(ids), IN_LIST_MAX)]


def _still_at(
    conn: Connection,
    beats_seen: Mapping[int, float],
    caller: str | None,
    caller_runs: Sequence[int],
) -> list[Row[Any]]:
    """The running runs of ``beats_seen`` whose last beat is still the one seen
    (``recover_stale``), locked as read (PostgreSQL; a row another transaction holds is
    left out): (id, worker_id, beat). Read by id, a few hundred a statement, and compared
    here: one condition per run made the statement too large for SQLite (a power cut of a
    busy queue: over a thousand silent runs, and every look refused)."""
    running = RUN.c.status == RunStatus.RUNNING.value
    mine = false() if caller is None else _training(caller, caller_runs)
    found: list[Row[Any]] = []
    for some in _in_statements(sorted(beats_seen)):
        query = select(RUN.c.id, RUN.c.worker_id, _last_beat().label("beat"))
        query = query.where(running, RUN.c.id.in_(some), not_(mine)).order_by(RUN.c.id)
        rows = conn.execute(query.with_for_update(skip_locked=True))
        found += [row for row in rows if same_beat(row.beat, beats_seen[row.id])]
    return found


def _idle_and_live() -> Any:
    """A worker row that says its worker lives and that holds no running run."""
    holds_a_run = exists().where(
        RUN.c.worker_id == WORKER.c.id, RUN.c.status == RunStatus.RUNNING.value
    )
    return and_(WORKER.c.state.in_(LIVE_WORKER_STATES), not_(holds_a_run))


def _a_beat(value: object) -> bool:
    """Whether a beat read (last_seen_at, heartbeat_at) is a time: a hand-edited one may
    be text (SQLite keeps it), NaN (PostgreSQL's double precision holds it) or infinite,
    which says nothing of when its worker was heard either."""
    return _a_time(value)


def same_beat(seen: object, read: object) -> bool:
    """Whether a beat ``read`` now is the one ``seen`` before: the same value, NaN too.
    In Python NaN is unequal to itself (SQL holds it equal): a run whose heartbeat_at
    was edited to 'NaN' on PostgreSQL never read as unchanged, and no look marked it
    lost, where SQLite's text 'NaN' was, as any beat read unchanged."""
    if seen == read:
        return True
    if not (isinstance(seen, float) and isinstance(read, float)):
        return False
    return math.isnan(seen) and math.isnan(read)


def _whose(conn: Connection, found: Sequence[Row[Any]]) -> list[LostRun]:
    """The runs ``found`` (id, worker_id, beat), each with its worker's host and pid."""
    worker_ids = sorted({row.worker_id for row in found if row.worker_id is not None})
    hosts: dict[str, tuple[str, int]] = {}
    for some in _in_statements(worker_ids):
        query = select(WORKER.c.id, WORKER.c.host, WORKER.c.pid).where(WORKER.c.id.in_(some))
        hosts.update({w.id: (w.host, w.pid) for w in conn.execute(query)})
    return [
        LostRun(row.id, row.worker_id, *hosts.get(row.worker_id, (None, None))) for row in found
    ]


def _silent_since(conn: Connection, found: Sequence[Row[Any]], caller: str | None) -> list[str]:
    """The workers of the runs ``found`` (id, worker_id, beat) not heard from since
    those beats: judged by the values their own clock wrote (a beat writes its worker's
    last_seen_at and its runs' heartbeat_at alike), not by this box's clock."""
    last_beat: dict[str, float] = {}
    for row in found:
        # A damaged beat (text edited in by hand, which SQLite keeps, or NaN, which
        # PostgreSQL does) says nothing of when its worker was heard: compared in Python
        # text was a TypeError that ended the looking worker's heartbeat thread, NaN
        # never silent. Its worker is judged by its other runs' beats.
        if not _a_beat(row.beat):
            continue
        if row.worker_id is not None and row.worker_id != caller:
            last_beat[row.worker_id] = max(row.beat, last_beat.get(row.worker_id, row.beat))
    silent: list[str] = []
    for some in _in_statements(sorted(last_beat)):
        # Locked as read (PostgreSQL): a beat cannot come between this read and the update.
        query = select(WORKER.c.id, WORKER.c.last_seen_at).where(WORKER.c.id.in_(some))
        for w in conn.execute(query.with_for_update(skip_locked=True)):
            # A damaged last_seen_at (text or NaN, edited by hand) is not silent, as SQL
            # had it.
            if _a_beat(w.last_seen_at) and w.last_seen_at <= last_beat[w.id]:
                silent.append(w.id)
    return silent


def _running_under(run_id: int, worker_id: str) -> Any:
    """The run row while it is running under ``worker_id``: its worker's writes hold only
    then (a run recovered, retried and claimed by another is that other's)."""
    return and_(
        RUN.c.id == run_id,
        RUN.c.worker_id == worker_id,
        RUN.c.status == RunStatus.RUNNING.value,
    )


def _its_own(run_id: int, worker_id: str) -> Any:
    """The run row while its worker's: running under it, or recovered as lost from it and
    not retried since (``Repo._revive``)."""
    return or_(_running_under(run_id, worker_id), _lost_under(run_id, worker_id))


def _file_id(path: Path) -> tuple[int, int] | None:
    """Which file ``path`` is now (device, inode); None when there is none."""
    try:
        stat = path.stat()
    except OSError:
        return None
    return (stat.st_dev, stat.st_ino)


def _lost_under(run_id: int, worker_id: str) -> Any:
    """The run row while it is failed "worker lost" under ``worker_id`` and not retried
    since: found silent, but maybe alive (``Repo._revive``)."""
    return and_(
        RUN.c.id == run_id,
        RUN.c.worker_id == worker_id,
        RUN.c.status == RunStatus.FAILED.value,
        RUN.c.error == WORKER_LOST,
    )


def _stackable(run: RunRow, stackable: Callable[[RunConfig], bool]) -> bool:
    """Whether ``run`` may take partners. A config edited by hand into valid JSON that is
    no run config is claimed alone, so its worker fails that run with the config's error
    as any worker does (raised here, it rolled the claim back and stopped the worker,
    leaving the run queued for the next worker to stop on)."""
    try:
        return stackable(run.config)
    except ConfigError:
        return False


def _seed_of(config_json: str, key: RunConfig) -> bool:
    """Whether ``config_json`` is ``key`` but for the seed (seed 0). A row edited by hand
    that cannot be read is no run's seed: claimed on its own, it is named (``_run_row``),
    where a stack worker stopped on a JSON traceback."""
    try:
        return RunConfig.from_json(config_json).replace(seed=0) == key
    except (ValueError, TypeError, ConfigError):
        return False


def _metric_row(mapping: RowMapping) -> MetricRow:
    m = dict(mapping)
    wrong = _wrong_kind(m, _METRIC_KINDS)
    if wrong is not None:
        raise _damaged_row(f"run {m.get('run_id')}'s metric row {m.get('id')}", wrong)
    return MetricRow(**m)


def _damaged_run(m: RowMapping, said: str) -> DamagedRun:
    """What admission reads of a damaged running run: each column of its kind, or None."""

    def of_kind(column: str, *types: type) -> Any:
        value = m.get(column)
        return value if type(value) in types else None

    return DamagedRun(
        id=m["id"],  # INTEGER PRIMARY KEY: SQLite holds only whole numbers there
        worker_id=of_kind("worker_id", str),
        started_at=of_kind("started_at", int, float),
        inputs_done=of_kind("inputs_done", int),
        said=said,
    )


def _worker_row(mapping: RowMapping) -> WorkerRow:
    m = dict(mapping)
    wrong = _worker_faults(m)
    if wrong:
        # Its id cut as any value said: an id edited into 10 KB filled the terminal.
        raise _damaged_row(f"worker {cut(str(m.get('id')))}'s row", _faults_said(wrong))
    flag = m.get("largest_first")
    if flag is not None:
        m["largest_first"] = bool(flag)
    gpu = GpuSnapshot(
        name=m.pop("gpu_name"),
        util_percent=m.pop("gpu_util"),
        memory_used=m.pop("gpu_memory_used"),
        memory_total=m.pop("gpu_memory_total"),
        temperature_c=m.pop("gpu_temperature"),
    )
    return WorkerRow(gpu=gpu, **m)


def _worker_faults(m: dict[str, Any]) -> list[tuple[str, str]]:
    """Each bad field of worker row ``m``, in the table's order, with what is wrong with
    it: all of them, where the first alone was named, and once mended the next."""
    wrong = dict(_wrong_kinds(m, _WORKER_KINDS))
    state = m["state"]
    if "state" not in wrong and state not in WORKER_STATES:
        wrong["state"] = (
            f"its state is {_shown_value(state)}, not one of {', '.join(WORKER_STATES)}"
        )
    flag = m.get("largest_first")  # as stored: SQLite's 1/0, PostgreSQL's bool, or none
    if not (flag is None or (type(flag) in (bool, int) and flag in (0, 1))):
        wrong["largest_first"] = f"its largest_first is {_shown_value(flag)}, not true or false"
    return [(column, wrong[column]) for column in m if column in wrong]


def _faults_said(wrong: list[tuple[str, str]]) -> str:
    """``wrong`` (each bad column, with what is wrong with it) on one line: the first
    ``NAMED_IN_FULL`` in full, the rest by their columns."""
    said = [problem for _, problem in wrong[:NAMED_IN_FULL]]
    if rest := [column for column, _ in wrong[NAMED_IN_FULL:]]:
        said.append(f"and {len(rest)} more: {', '.join(rest)}")
    return "; ".join(said)


def _gpu_values(gpu: GpuSnapshot) -> dict[str, Any]:
    return dict(
        gpu_name=gpu.name, gpu_util=gpu.util_percent, gpu_memory_used=gpu.memory_used,
        gpu_memory_total=gpu.memory_total, gpu_temperature=gpu.temperature_c,
    )  # fmt: skip


def _ended_values(
    status: RunStatus, error: str | None, figures: FinalFigures | None
) -> dict[str, Any]:
    """The columns a run's end writes: its status, error, end time and final figures."""
    values = _figure_values(figures) if figures else {}
    values.update(status=status.value, error=error, finished_at=time.time())
    if status == RunStatus.SUCCEEDED:  # a cancel that came after its last step: moot
        values["cancel_requested"] = False
    return values


def _folder_of(figures: FinalFigures | None) -> dict[str, Any]:
    """The checkpoint folder ``figures`` name, as columns; none: the row's stays."""
    if figures is None or figures.checkpoint_path is None:
        return {}
    return {"checkpoint_path": figures.checkpoint_path}


def _figure_values(figures: FinalFigures) -> dict[str, Any]:
    values = {
        "validation_loss": figures.validation_loss,
        "train_seconds": figures.train_seconds,
        "inputs_per_s": figures.inputs_per_s,
        "peak_memory_bytes": figures.peak_memory_bytes,
        "checkpoint_path": figures.checkpoint_path,
        "path_used": figures.path_used,
        "samples": figures.samples,
        "paused_s": figures.paused_s,
        "param_count": figures.param_count,
        "inputs_done": figures.inputs_done,
    }
    # None means "not measured": keep what the row already has (e.g. the queued count).
    return {key: value for key, value in values.items() if value is not None}


def _within_priority_limit(changes: Sequence[tuple[int, int, int]], hint: str = "") -> None:
    """Refuse (nothing written) a change (run id, priority, new priority) that takes a
    run's priority past the limit the command line and the form keep to, or further past
    it: ``+`` or ``next`` repeated must not go on forever, and a run already past it (an
    older version's ``+``) can still be brought back."""
    past = [(run_id, new) for run_id, old, new in changes
            if abs(new) > PRIORITY_LIMIT and abs(new) > abs(old)]  # fmt: skip
    if past:
        said = ", ".join(f"run {run_id} to {priority:,}" for run_id, priority in past)
        raise InvalidTransition(
            f"that would take {said}, past the priority limit (-{PRIORITY_LIMIT:,} to "
            f"{PRIORITY_LIMIT:,}); nothing changed{f' ({hint})' if hint else ''}"
        )
