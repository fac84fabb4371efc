"""What the dashboard reads from the queue each tick: pure functions over ``Repo``.

No Textual here, so every figure the dashboard shows (rates, ETAs, worker health,
filters) is unit-testable and the refresh benchmark times exactly this code.
``read_dashboard`` is the one call per tick; screens run it in a thread worker.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace

from core.errors import terminal_safe
from core.queue import MetricRow, Repo, RunFilter, RunRow, RunStatus, WorkerRow
from core.queue.failures import FailureCause, failure_counts, run_cause
from core.queue.repo import SETTLED, STALE_AFTER_S, SURELY_LOST_AFTER_S, Signature
from core.queue.rows import TRAIN_LOSS, VAL_LOSS, DamagedWorker
from core.queue.status import FINISHING
from resconv_tui.forecast import UpperBound, queue_ends, run_work

# A worker beats every few seconds; these leave room for a slow SQLite write lock.
ONLINE_WITHIN_S = 20.0
STALE_WITHIN_S = 120.0
# Lost workers stay listed this long so "it just died" is visible; a worker that stopped
# cleanly only a minute (starts and stops would pile up rows).
SHOW_GONE_FOR_S = 15 * 60.0
SHOW_STOPPED_FOR_S = 60.0
METRIC_NAMES = (TRAIN_LOSS, VAL_LOSS)
# A running run whose worker's process here has exited (kill -9) before it could say so.
EXITED_NOTE = "its worker's process has exited: worker lost (a worker or dashboard marks it)"
# A running run whose worker has not beaten for 30 s (another box's worker lost, or hung).
SILENT_NOTE = "no heartbeat from its worker (lost?)"
# A run at 100% for its final pass (``RunRow.trained_all``): not stuck.
VALIDATING = "validating: its final pass, samples and checkpoints"


@dataclass(frozen=True)
class RunsQuery:
    """The runs view's filters; None / empty means "any"."""

    status: RunStatus | None = None
    experiment: str | None = None
    text: str = ""


@dataclass(frozen=True)
class LatestLosses:
    """The newest train and validation loss of one run, with the last metric id read."""

    run_id: int
    last_id: int = 0
    train_loss: float | None = None
    val_loss: float | None = None
    inputs: int | None = None  # at the newest point
    val_inputs: int | None = None  # at the newest validation point


@dataclass(frozen=True)
class SettledRuns:
    """Runs that are not running (they change only when someone acts), as last read."""

    signature: Signature | None = None
    runs: tuple[RunRow, ...] = ()
    experiments: tuple[str, ...] = ()


@dataclass(frozen=True)
class Dashboard:
    """One tick's worth of state: everything the runs view draws."""

    now: float
    runs: tuple[RunRow, ...]
    workers: tuple[WorkerRow, ...]
    latest: LatestLosses | None = None
    experiments: tuple[str, ...] = field(default_factory=tuple)
    settled: SettledRuns = field(default_factory=SettledRuns)
    counts: dict[RunStatus, int] = field(default_factory=dict)  # runs per status
    queue_eta_s: float | None = None  # until the queue is empty, at the online workers' pace
    failures: dict[FailureCause, int] = field(default_factory=dict)  # failed runs per cause
    held: dict[str, list[int]] = field(default_factory=dict)  # worker id -> its running runs
    experiment_etas: dict[str, float] = field(default_factory=dict)  # until its runs have ended
    stalled: frozenset[int] = frozenset()  # running runs whose worker takes no steps
    run_ends: dict[int, float] = field(default_factory=dict)  # queue_forecast's, by run id
    # Queued runs no live worker will take (all stopping, or past their --max-runs): the
    # queue never empties, but the workers' runs still end (``workers_end_s``).
    untaken: int = 0
    workers_end_s: float | None = None
    # Worker rows edited by hand into what no version writes: left out of ``workers``,
    # named (``damaged_worker_said``).
    damaged_workers: tuple[DamagedWorker, ...] = ()
    # Running runs whose beat this dashboard has seen unchanged past the stale limit, and
    # for how long (``HeardBeats``): the runs table's "silent", the cancel key's judgement.
    # (``workers`` carry each one's silence as seen: ``WorkerRow.heard_quiet_s``.)
    silent: dict[int, float] = field(default_factory=dict)


def read_dashboard(
    repo: Repo,
    now: float,
    selected: int | None = None,
    latest: LatestLosses | None = None,
    settled: SettledRuns | None = None,
    heard: HeardBeats | None = None,
) -> Dashboard:
    """All runs, recent workers and the selected run's new metrics.

    Pass the previous tick's ``latest`` and ``settled`` to read incrementally:
    only new metric rows, and runs that are not running only when they changed.
    ``heard``: the dashboard's memory of beats, which times the running runs' silence
    (a fresh one, that has seen no beat yet, where none is given).
    """
    heard = heard or HeardBeats()
    runs, settled = read_runs(repo, settled or SettledRuns())
    running = (run.experiment for run in runs if run.status == RunStatus.RUNNING)
    experiments = tuple(dict.fromkeys((*settled.experiments, *running)))
    recent, damaged = watched_workers(repo, now, heard)
    workers = tuple(recent)
    losses = None
    if selected is not None:
        run = next((r for r in runs if r.id == selected), None)
        if latest is not None and run is not None and run.inputs_done < (latest.inputs or 0):
            latest = None  # queued again: its old metrics were deleted, start afresh
        losses = read_latest_losses(repo, selected, latest)
    # The summary line's figures, counted here (a thread) rather than while drawing.
    ends = queue_forecast(runs, workers, now)
    held = held_runs(runs, workers)
    untaken = untaken_runs(runs, ends, workers, now)
    return Dashboard(
        now, runs, workers, losses, experiments, settled, status_counts(runs),
        None if untaken else last_end(runs, ends), failure_counts(runs), held,
        experiment_etas(runs, ends),
        stalled_runs(workers, held), running_ends(runs, workers, ends),
        len(untaken), max(ends.values(), default=None) if ends else None, tuple(damaged),
        heard.silent(runs, now),
    )  # fmt: skip


def read_runs(repo: Repo, settled: SettledRuns) -> tuple[tuple[RunRow, ...], SettledRuns]:
    """Every run by id: running ones read fresh, the others re-read only when changed."""
    # Running first: a run that ends between the two reads is then in the re-read
    # settled set (which wins), so it is never missing for a tick.
    running = repo.list_runs(RunFilter(statuses=frozenset({RunStatus.RUNNING})))
    signature = repo.settled_signature()
    if signature != settled.signature:
        others = tuple(repo.list_runs(RunFilter(statuses=SETTLED)))
        settled = SettledRuns(signature, others, tuple(dict.fromkeys(r.experiment for r in others)))
    if not running:
        return settled.runs, settled
    by_id = {run.id: run for run in running}
    by_id.update((run.id, run) for run in settled.runs)
    return tuple(by_id[i] for i in sorted(by_id)), settled


def read_workers(repo: Repo, now: float) -> list[WorkerRow]:
    """Live workers, newest first, then those that stopped or vanished in the last few
    minutes (after the live ones: on a 24-line terminal the panel shows only the top).
    A row edited by hand into what no version writes is left out (``recent_workers``)."""
    return recent_workers(repo, now)[0]


def recent_workers(repo: Repo, now: float) -> tuple[list[WorkerRow], list[DamagedWorker]]:
    """``read_workers``, and the damaged worker rows it leaves out, for the view to name
    (``damaged_worker_said``): raised, one such row hid every other worker and run."""
    workers, damaged = repo.workers_and_damaged(include_gone=True)
    return recent_of(workers, now), damaged


def watched_workers(
    repo: Repo, now: float, heard: HeardBeats
) -> tuple[list[WorkerRow], list[DamagedWorker]]:
    """``recent_workers`` as the dashboard judges them: each row with its silence as
    ``heard`` has watched it (``HeardBeats.watched``), so a worker of a box whose clock
    is behind is not late. The runs and results screens' workers panels."""
    every, damaged = repo.workers_and_damaged(include_gone=True)
    return recent_of(heard.watched(every, now), now), damaged


def recent_of(workers: Sequence[WorkerRow], now: float) -> list[WorkerRow]:
    """Of ``workers``, those ``read_workers`` lists, in its order."""
    recent = [
        w
        for w in workers
        if worker_health(w, now) != "offline"
        or w.age(now) < (SHOW_STOPPED_FOR_S if w.state == "stopped" else SHOW_GONE_FOR_S)
    ]
    return sorted(recent, key=lambda w: worker_health(w, now) == "offline")  # stable


def damaged_worker_said(
    damaged: DamagedWorker, outcome: str = "the rest is shown without it"
) -> str:
    """One line naming a damaged worker row (its row, field and value, and the repair),
    then ``outcome``: what the view or command did without it; terminal-safe (its id is
    as it was stored)."""
    return terminal_safe(f"{damaged.said}; {outcome}")


def unread_workers_said(damaged: Sequence[DamagedWorker]) -> str:
    """Why no worker could be read, where the only worker rows are ``damaged`` (edited by
    hand): ``queue``'s hint and ``follow``'s queued note said "no worker is running" of a
    row whose worker may well be training."""
    if len(damaged) == 1:
        return "a worker row is damaged and could not be read, so a worker may be running"
    return (
        f"{len(damaged)} worker rows are damaged and could not be read, so workers may be running"
    )


def read_held_runs(repo: Repo, worker_ids: set[str]) -> list[RunRow]:
    """The runs these workers are training now (those in their final pass too), read
    afresh: what a stop of them interrupts (``w``, ``resconv-tui stop``)."""
    running = repo.list_runs(RunFilter(statuses=frozenset({RunStatus.RUNNING})))
    return [run for run in running if run.worker_id in worker_ids]


def read_latest_losses(repo: Repo, run_id: int, previous: LatestLosses | None) -> LatestLosses:
    """Fold the metric rows written since ``previous`` (incremental: id > last seen)."""
    if previous is None or previous.run_id != run_id:
        previous = LatestLosses(run_id)
    rows = repo.metrics_since(run_id, previous.last_id, names=METRIC_NAMES)
    return fold_losses(previous, rows)


def fold_losses(latest: LatestLosses, rows: Sequence[MetricRow]) -> LatestLosses:
    train, val, inputs, last_id = latest.train_loss, latest.val_loss, latest.inputs, latest.last_id
    val_inputs = latest.val_inputs
    for row in rows:
        last_id = max(last_id, row.id)
        inputs = row.inputs
        if row.name == TRAIN_LOSS:
            train = row.value
        elif row.name == VAL_LOSS:
            val, val_inputs = row.value, row.inputs
    return LatestLosses(latest.run_id, last_id, train, val, inputs, val_inputs)


# ----- derived figures ---------------------------------------------------------------


def worker_health(worker: WorkerRow, now: float) -> str:
    """online (beating), stale (late: maybe busy or hung) or offline (stopped, lost, silent).
    Late by ``WorkerRow.quiet_for``: as the dashboard watched it on the rows it polls
    (``HeardBeats.watched``), by age on the rows read once."""
    if worker.state in ("stopped", "lost"):
        return "offline"
    quiet = worker.quiet_for(now)
    if quiet <= ONLINE_WITHIN_S:
        return "online"
    return "stale" if quiet <= STALE_WITHIN_S else "offline"


def beating(worker: WorkerRow, now: float) -> bool:
    """Whether a worker counts in the forecast: not offline, and its last heartbeat within
    ``STALE_AFTER_S``, the silence at which its runs read "silent" (and another worker may
    recover them as lost). A paused worker's queue ETA counted down beside "silent: lost?".
    Late as ``worker_health`` judges it."""
    return worker_health(worker, now) != "offline" and worker.quiet_for(now) <= STALE_AFTER_S


def silent_for(run: RunRow, now: float) -> float | None:
    """How long a running run's heartbeat has been missing by its age on this machine's
    clock, once it counts as lost (``STALE_AFTER_S``; a worker recovers it soon): None
    while it beats. For the one-shot commands (``ls``, ``show``), which read once and
    cannot watch a beat change; a box whose clock is ahead of the training box's reads
    its live runs silent so. The dashboard and ``show --follow`` watch (``HeardBeats``)."""
    age = run.heartbeat_age(now) if run.status == RunStatus.RUNNING else None
    return age if age is not None and age > STALE_AFTER_S else None


class HeardBeats:
    """The dashboard's memory of each running run's beat (``heartbeat_at``, written by its
    worker's box's clock) and since when, on this process's monotonic clock, it has read
    the same one: a run is silent once its beat has not changed for ``STALE_AFTER_S``,
    whatever the two boxes' clocks say. By age on this box's clock, every live run of a
    box whose clock is 30 s or more behind read "silent" here, and ``c`` cancelled it
    unasked. The rule the workers judge each other by (``core.worker.BeatsSeen``), kept
    apart as the runs screen reads every running run and the run detail one run, both
    into this one memory (the app's, ``DashboardContext.heard``), so that a run's detail
    says what the table says.

    A beat not watched yet (the dashboard just started, a run just claimed) is timed from
    its first read: its run reads silent only once watched for the limit, unless its age
    by this clock is past ``SURELY_LOST_AFTER_S``, which no two boxes' clocks are apart
    (a run whose box died long before the dashboard started is said at once). No gap rule
    as the worker's: the workers run in their own sessions, so a dashboard stopped with
    Ctrl-Z, or a screen that did not poll meanwhile, stopped none of them, and a beat
    read unchanged across the gap was not written since."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self.clock = clock
        self.seen: dict[int, tuple[float, float]] = {}  # run id -> (beat, read so since)
        # worker id -> (last_seen_at, read so since, whether it was seen to change)
        self.workers: dict[str, tuple[float, float, bool]] = {}
        self.lock = threading.Lock()  # the runs screen's and the run detail's polls

    def silent(self, runs: Sequence[RunRow], now: float) -> dict[int, float]:
        """Of ``runs`` (as read at ``now``, this box's clock), the running ones silent, with
        the seconds each has been so as this dashboard knows it: its beat seen unchanged
        that long, a bound from below whatever the clocks (a dashboard started after the
        beat stopped has seen less); or its age by this clock, past ``SURELY_LOST_AFTER_S``.
        Remembers this read for the next; forgets the runs read as no longer running."""
        with self.lock:
            watched_at = self.clock()
            silent: dict[int, float] = {}
            for run in runs:
                if run.status != RunStatus.RUNNING or run.heartbeat_at is None:
                    self.seen.pop(run.id, None)
                    continue
                beat, since = self.seen.get(run.id, (None, watched_at))
                if beat != run.heartbeat_at:
                    since = watched_at
                    self.seen[run.id] = (run.heartbeat_at, since)
                quiet = watched_at - since
                age = run.heartbeat_age(now) or 0.0
                if age > SURELY_LOST_AFTER_S:
                    quiet = max(quiet, age)
                if quiet > STALE_AFTER_S:
                    silent[run.id] = quiet
            return silent

    def quiet_workers(self, workers: Sequence[WorkerRow], now: float) -> dict[str, float]:
        """Each of ``workers``' seconds without a beat as this dashboard knows it: since
        its beat (``last_seen_at``) last changed, as seen on this process's clock. Until
        it has seen one change, its age by this clock where that is longer: timed from
        its first read alone, a worker dead before the dashboard started would read
        "online" for 20 s; so, one whose box's clock is behind reads late only until its
        next beat (3 s). Once seen to change, its age only where past
        ``SURELY_LOST_AFTER_S``, as a run's: a change seen after reads paused (a covered
        screen) may be one beat written long ago. A run is judged otherwise (``silent``),
        as its silence makes ``c`` cancel it unasked; a worker's only colours the panel
        and leaves it out of the forecast. Remembers this read."""
        with self.lock:
            watched_at = self.clock()
            quiet: dict[str, float] = {}
            for w in workers:
                beat, since, changed = self.workers.get(w.id, (w.last_seen_at, watched_at, False))
                if beat != w.last_seen_at:
                    since, changed = watched_at, True
                self.workers[w.id] = (w.last_seen_at, since, changed)
                heard_for, age = watched_at - since, w.age(now)
                # As a run's (``silent``): an age past SURELY_LOST_AFTER_S is no clock
                # difference. A beat seen to change across a gap in the reads (a covered
                # screen, Ctrl-Z) was written long ago: its worker read "beat 0s ago".
                surely_lost = age > SURELY_LOST_AFTER_S
                quiet[w.id] = max(heard_for, age) if surely_lost or not changed else heard_for
            return quiet

    def watched(self, workers: Sequence[WorkerRow], now: float) -> list[WorkerRow]:
        """``workers``, each with its seconds without a beat as this dashboard knows it
        (``quiet_workers``), that its health and the forecast then go by. Remembers this
        read."""
        quiet = self.quiet_workers(workers, now)
        return [replace(w, heard_quiet_s=quiet[w.id]) for w in workers]


def live_workers_of(host: str, workers: Sequence[WorkerRow], now: float) -> list[WorkerRow]:
    """The workers of machine ``host`` that are online or only late (the ones a stop from
    this machine can signal: ``w`` in the dashboard, ``resconv-tui stop``)."""
    return [w for w in workers if w.host == host and worker_health(w, now) != "offline"]


def run_rate(run: RunRow, now: float) -> float | None:
    """The in/s column: the training steps' inputs per second (validation passes, loading
    and saving left out), the final figure when done and the rate so far while running;
    a row whose worker recorded no such rate (an older worker) shows its pace so far."""
    if run.inputs_per_s is not None:
        return run.inputs_per_s
    return pace_so_far(run, now)


def pace_so_far(run: RunRow, now: float) -> float | None:
    """A running run's inputs per second of wall time since its claim, its worker's stops
    left out (``RunRow.active_seconds``): inputs done over the time they were done at
    (the worker stamps the heartbeat as it records them)."""
    if run.status != RunStatus.RUNNING or not run.inputs_done:
        return None
    elapsed = run.active_seconds(run.heartbeat_at or now)
    return run.inputs_done / elapsed if elapsed else None


def wall_rate(run: RunRow, now: float) -> float | None:
    """Inputs per second of wall time from claim to end (to now while it runs), its
    worker's stops left out (``RunRow.active_seconds``): what the queue's forecast paces
    runs by. A finished run's inputs/s is its training steps' alone; its validation
    passes, data loading and saving took as long again for small runs (a walkthrough's
    ETA said 18 s for runs that took 3m40s)."""
    if run.status == RunStatus.SUCCEEDED and run.started_at and run.finished_at:
        took = run.active_seconds(run.finished_at)
        if took and run.inputs_done:
            return run.inputs_done / took
    if run.status == RunStatus.RUNNING:
        return pace_so_far(run, now)
    return run.inputs_per_s


def run_eta(run: RunRow, now: float) -> float | None:
    """Seconds left for a running run at its pace so far (wall time: its validation
    passes count); the dashboard and ``ls`` show the queue forecast's instead where there
    is one (``queue_forecast``), which also counts its end (last validation, saving)."""
    rate = pace_so_far(run, now)
    if run.status != RunStatus.RUNNING or not rate:
        return None
    return max(0.0, (run.total_inputs - run.inputs_done) / rate)


def running_ends(
    runs: Sequence[RunRow], workers: Sequence[WorkerRow], ends: dict[int, float] | None
) -> dict[int, float]:
    """``queue_forecast``'s ends for the ETA column: a stopping worker's running run is
    forecast as queued again and trained anew, an end that is not this attempt's; one in
    its final pass ends in this attempt (the pass is let finish)."""
    stopping = {w.id for w in workers if w.state == "stopping"}
    again = {
        r.id
        for r in runs
        if r.status == RunStatus.RUNNING and r.worker_id in stopping and not r.trained_all
    }
    return {run_id: end for run_id, end in (ends or {}).items() if run_id not in again}


def attempt_of(run: RunRow) -> tuple[int, float | None]:
    """Which attempt of ``run`` the rows are of: a retry, or a stopped worker's requeue,
    deletes the metric rows and a new claim starts another (its attempts and start)."""
    return run.attempts, run.started_at


def shown_eta(run: RunRow, now: float, ends: dict[int, float]) -> float | None:
    """A running run's ETA as the dashboard and ``ls`` show it: the queue forecast's end
    for it (``ends``), else its inputs left at its pace so far (``run_eta``). None (not
    known) for a run whose forecast is spent while it has more to do: in its final pass,
    whose pass, samples and checkpoints take a while (70 s on a CPU) that nothing
    finished had told, or before its first record (an 11-layer run paced by a 1-layer
    one read "0s" at 0% for the minute its first 20 steps took on a CPU)."""
    if run.status != RunStatus.RUNNING:
        return None
    eta = ends[run.id] if run.id in ends else run_eta(run, now)
    spent = eta is not None and eta < 0.5
    return None if spent and (run.trained_all or not run.inputs_done) else eta


def why_no_eta(
    run: RunRow,
    now: float,
    stalled: bool = False,
    exited: bool = False,
    ends: dict[int, float] | None = None,
    silent: Mapping[int, float] | None = None,
) -> str | None:
    """Why a running run shows no ETA, in ``ls``'s words (its note; the run detail's and
    ``show``'s ETA row): its worker's process here has ``exited``, its worker is silent
    (by the dashboard's watch where ``silent`` is given, ``Dashboard.silent``; else by
    its beat's age on this machine's clock, ``silent_for``),
    a cancel was asked for (finishing all the same once every input is trained), its
    worker beats but is ``stalled``, or it is in its final pass (with the forecast's
    ETA for the pass where ``ends`` has one, as the runs table's ETA column gives it).
    None: its ETA holds (``shown_eta``), or it is not running."""
    if run.status != RunStatus.RUNNING:
        return None
    if exited:
        return EXITED_NOTE
    quiet = silent_for(run, now) if silent is None else silent.get(run.id)
    if quiet is not None:  # the dashboard's "silent" ETA
        return f"silent {format_duration(quiet)}: {SILENT_NOTE}"
    if run.cancel_requested and run.trained_all:
        return f"cancel requested, but {FINISHING}"
    if run.cancel_requested:
        return "cancel requested: its worker stops it within a few seconds"
    if stalled:
        from core.recording import STALL_AFTER_S

        limit = f"{STALL_AFTER_S / 60:.0f} min"
        return f"stalled: no training step for {limit} or more (see its worker's log)"
    if run.trained_all:  # at 100% for its final pass: not stuck (the dashboard's status)
        return validating_said(shown_eta(run, now, ends) if ends is not None else None)
    return None


def _at_most(seconds: float) -> str:
    """An upper bound's figure, rounded up: 45s, 13m, 3h05m, 11h."""
    if math.ceil(seconds) < 60:  # 59.4 s rounds up to a minute: "1m", not "60s"
        return f"{math.ceil(seconds)}s"
    minutes = math.ceil(seconds / 60)
    if minutes < 60:
        return f"{minutes}m"
    if minutes < 600:
        return f"{minutes // 60}h{minutes % 60:02d}m"
    return f"{math.ceil(minutes / 60)}h"


def status_word(run: RunRow) -> str:
    """A run's status as the dashboard names it: ``validating`` for a running run whose
    inputs are all trained (``RunRow.trained_all``: its final pass, samples and
    checkpoints), else its stored status. The runs table and the run detail both say it,
    so they agree while the final pass takes its minute."""
    return "validating" if run.trained_all else str(run.status)


def validating_said(eta: float | None) -> str:
    """A run in its final pass, as ``ls`` and ``show --follow`` say it: with the forecast's
    ``eta`` for the pass where there is one."""
    return VALIDATING if eta is None else f"{VALIDATING}; ETA {format_duration(eta)}"


def eta_text(
    run: RunRow,
    now: float,
    stalled: bool,
    exited: bool,
    ends: dict[int, float],
    silent: Mapping[int, float] | None = None,
) -> str | None:
    """A running run's ETA as the run detail and ``show`` state it: ``shown_eta`` (the
    runs table's and ``ls``'s; "—" while unknown), or ``ls``'s words for why there is
    none (``why_no_eta``; ``silent`` as it takes it). None for a run that is not running."""
    if run.status != RunStatus.RUNNING:
        return None
    why = why_no_eta(run, now, stalled, exited, silent=silent)
    eta = shown_eta(run, now, ends)
    if why == VALIDATING and eta is not None:  # the row is the ETA's: the figure first
        return f"{format_duration(eta)} ({VALIDATING})"
    return why if why is not None else format_duration(eta)


def queue_forecast(
    runs: Sequence[RunRow], workers: Sequence[WorkerRow], now: float
) -> dict[int, float] | None:
    """Seconds until each running and queued run ends (``resconv_tui.forecast``), at the
    pace measured so far, by the workers that still beat (``beating``)."""

    def live(worker: WorkerRow) -> bool:
        return beating(worker, now)

    def since_claim(run: RunRow) -> float:
        return run.active_seconds(now) or 0.0

    return queue_ends(runs, workers, live, lambda run: wall_rate(run, now), since_claim)


def experiment_etas(runs: Sequence[RunRow], ends: dict[int, float] | None) -> dict[str, float]:
    """Seconds until each experiment with runs left (queued or running) has ended them,
    from ``queue_forecast``'s ``ends``."""
    left: dict[str, list[RunRow]] = {}
    for run in runs:
        if run.status in (RunStatus.QUEUED, RunStatus.RUNNING):
            left.setdefault(run.experiment, []).append(run)
    etas = {name: last_end(group, ends) for name, group in left.items()}
    return {name: eta for name, eta in etas.items() if eta is not None}


def last_end(runs: Sequence[RunRow], ends: dict[int, float] | None) -> float | None:
    """When the last of ``runs`` still to train ends; None when unknown, or when a queued
    one never starts (no live worker takes runs). Running runs of offline workers are
    not waited for: they end as "worker lost"."""
    if ends is None:
        return None
    last = None
    for run in runs:
        if run.status == RunStatus.QUEUED and run.id not in ends:
            return None
        if run.id in ends:
            last = max(last or 0.0, ends[run.id])
    return last


def untaken_runs(
    runs: Sequence[RunRow],
    ends: dict[int, float] | None,
    workers: Sequence[WorkerRow],
    now: float,
) -> list[int]:
    """Runs to train that the forecast gives no end: no live worker will take them. The
    queued ones, and those a stopping worker puts back (its running runs: a lost or
    silent worker's are left out, as the forecast leaves them: they end as "worker
    lost")."""
    if ends is None:
        return []
    stopping = {w.id for w in workers if w.state == "stopping" and beating(w, now)}
    return [
        run.id for run in runs if run.id not in ends and (
            run.status == RunStatus.QUEUED
            or run.status == RunStatus.RUNNING and run.worker_id in stopping
        )
    ]  # fmt: skip


def untaken_why(workers: Sequence[WorkerRow], now: float) -> str:
    """Why live workers leave queued runs: every one is stopping, or those that take runs
    stop after their ``--max-runs``. Live as the forecast counts them (``beating``)."""
    live = [w for w in workers if beating(w, now)]
    if any(w.state != "stopping" for w in live):
        return "beyond the workers' --max-runs"
    return "left: every live worker is stopping"


def claim_order(run: RunRow, largest_first: bool = False) -> tuple[int, int, int]:
    """How workers claim: highest priority, then oldest; ``largest_first`` (``worker
    --order largest-first``): highest priority, then the most work, then oldest."""
    return (-run.priority, -run_work(run) if largest_first else 0, run.id)


def claims_largest_first(workers: Sequence[WorkerRow], now: float) -> bool:
    """Whether the live workers that take runs all claim the most work first (a mix
    claims both ways: queue order is then the plain one)."""
    taking = [w for w in workers if worker_health(w, now) != "offline" and w.state != "stopping"]
    return bool(taking) and all(w.largest_first for w in taking)


def in_queue_order(runs: Sequence[RunRow], largest_first: bool = False) -> list[RunRow]:
    """What trains now, then what trains next (in claim order: ``largest_first`` as the
    workers claim, ``claims_largest_first``), then what has ended (in the order given):
    ``ls``, and the runs table's ``o``."""
    running = [r for r in runs if r.status == RunStatus.RUNNING]
    queued = sorted(
        (r for r in runs if r.status == RunStatus.QUEUED),
        key=lambda run: claim_order(run, largest_first),
    )
    ended = [r for r in runs if r.status not in (RunStatus.RUNNING, RunStatus.QUEUED)]
    return [*running, *queued, *ended]


def filter_runs(runs: Sequence[RunRow], query: RunsQuery) -> list[RunRow]:
    """Runs matching every filter; text matches id, name, experiment or status."""
    text = query.text.strip().lower()
    return [
        run
        for run in runs
        if (query.status is None or run.status == query.status)
        and (query.experiment is None or run.experiment == query.experiment)
        and (not text or text in _haystack(run))
    ]


def _haystack(run: RunRow) -> str:
    # A failed run is also found by its cause: its name ("out of memory"), the word
    # the summary line and `retry --cause` use ("oom"), or the word the dashboard's own
    # questions use ("diverged", as `r` asks before a NaN run is retried).
    cause = run_cause(run)
    cause_words = f" {cause} {cause.option}" if cause is not None else ""
    cause_words += " diverged" if cause is FailureCause.DIVERGED else ""
    # And as the table shows it (ESC as "\x1b"): typing what is on screen finds the run.
    safe = run.terminal_safe()  # the row itself where nothing is escaped
    shown = f" {safe.name} {safe.experiment}" if safe is not run else ""
    return f"{run.id} {run.name} {run.experiment} {run.status}{cause_words}{shown}".lower()


def held_runs(runs: Sequence[RunRow], workers: Sequence[WorkerRow]) -> dict[str, list[int]]:
    """Each worker's running runs by worker id: those carrying its id and the one its row
    names (a worker row names one run; ``worker --stack K`` trains K), unless that run is
    listed and no longer running (a dead worker's row keeps naming a run cancelled since)."""
    ended = {run.id for run in runs if run.status != RunStatus.RUNNING}
    held: dict[str, set[int]] = {w.id: set() for w in workers}
    for w in workers:
        if w.current_run_id is not None and w.current_run_id not in ended:
            held[w.id].add(w.current_run_id)
    for run in runs:
        if run.status == RunStatus.RUNNING and run.worker_id in held:
            held[run.worker_id].add(run.id)
    return {worker_id: sorted(ids) for worker_id, ids in held.items()}


def stalled_runs(workers: Sequence[WorkerRow], held: dict[str, list[int]]) -> frozenset[int]:
    """The runs of workers whose training has taken no step for ``STALL_AFTER_S`` (the
    worker's own heartbeat watches: ``core.recording``)."""
    return frozenset(i for w in workers if w.state == "stalled" for i in held.get(w.id, ()))


def status_counts(runs: Sequence[RunRow]) -> dict[RunStatus, int]:
    counts = dict.fromkeys(RunStatus, 0)
    for run in runs:
        counts[run.status] += 1
    return counts


def format_duration(seconds: float | None) -> str:
    """ETA as people read it: 45s, 12m05s, 3h05m (— when unknown); an upper bound
    (``forecast.UpperBound``: one size measured) marked and to the minute above it, as
    it is no closer: ≤45s, ≤13m, ≤3h05m, ≤11h (as wide as the others, for the runs
    table's ETA column)."""
    if seconds is None:
        return "—"
    if isinstance(seconds, UpperBound):
        return f"≤{_at_most(seconds)}"
    seconds = int(round(seconds))
    if seconds < 60:
        return f"{seconds}s"
    if seconds < 3600:
        return f"{seconds // 60}m{seconds % 60:02d}s"
    return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"
