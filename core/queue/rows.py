"""Plain, frozen values that ``repo`` returns and accepts. No SQL here.

The TUI and CLI only ever see these, never a session or a table object, so a
row can be passed between threads and compared in tests.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from core.config import RunConfig
from core.errors import terminal_safe
from core.gpu import GpuSnapshot
from core.queue.status import RunStatus

TRAIN_LOSS = "train_loss"
VAL_LOSS = "val_loss"
# The priorities a run may be given (the command line, the form): far inside PostgreSQL's
# 32-bit INTEGER column, which refused 99999999999 with "integer out of range".
PRIORITY_LIMIT = 1_000_000


@dataclass(frozen=True)
class NewRun:
    """One run to queue: what ``enqueue`` needs and nothing the database assigns."""

    experiment: str
    name: str
    config_json: str
    config_hash: str
    seed: int
    param_count: int
    total_inputs: int
    swept: Mapping[str, Any] = field(default_factory=dict)
    target: Mapping[str, float] | None = None

    @classmethod
    def from_config(
        cls,
        config: RunConfig,
        *,
        experiment: str,
        name: str,
        param_count: int,
        swept: Mapping[str, Any] | None = None,
        target: Mapping[str, float] | None = None,
    ) -> NewRun:
        return cls(
            experiment=experiment,
            name=name,
            config_json=config.to_json(),
            config_hash=config.config_hash(),
            seed=config.seed,
            param_count=param_count,
            total_inputs=config.max_inputs,
            swept=dict(swept or {}),
            target=dict(target) if target else None,
        )

    @classmethod
    def from_expanded(cls, run: Any) -> NewRun:
        """From a ``core.sweep.ExpandedRun`` (duck-typed: no import of the sweep module)."""
        return cls.from_config(
            run.config,
            experiment=run.experiment,
            name=run.name,
            param_count=run.param_count,
            swept=run.swept,
            target=getattr(run, "target", None),
        )


@dataclass(frozen=True)
class EnqueueResult:
    added: int
    skipped: int
    added_ids: tuple[int, ...] = ()
    skipped_names: tuple[str, ...] = ()  # duplicates of a queued, running or succeeded run
    queued_again_ids: tuple[int, ...] = ()  # failed or cancelled runs of the same cells
    retargeted_ids: tuple[int, ...] = ()  # skipped runs given the sweep's changed target

    @property
    def queued_again(self) -> int:
        return len(self.queued_again_ids)

    def summary(self) -> str:
        """``added 2, queued again 1 (failed or cancelled before), skipped 3 (...)``."""
        again = (
            f", queued again {self.queued_again} (failed or cancelled before)"
            if self.queued_again
            else ""
        )
        targets = (
            f"; {len(self.retargeted_ids)} of them given the sweep file's new target"
            if self.retargeted_ids
            else ""
        )
        if not self.skipped:  # nothing to say why, nor how to queue it anyway (--force)
            return f"added {self.added}{again}, skipped 0{targets}"
        return (
            f"added {self.added}{again}, skipped {self.skipped} "
            f"(already queued, running or succeeded; --force to queue anyway){targets}"
        )


@dataclass(frozen=True)
class RunRow:
    """One run as stored (without the sample image bytes: see ``Repo.get_samples``)."""

    id: int
    experiment: str
    name: str
    status: RunStatus
    priority: int
    config_json: str
    config_hash: str
    seed: int
    swept: Mapping[str, Any]
    target: Mapping[str, float] | None
    param_count: int
    total_inputs: int
    inputs_done: int
    attempts: int
    created_at: float
    started_at: float | None
    finished_at: float | None
    worker_id: str | None
    heartbeat_at: float | None
    cancel_requested: bool
    error: str | None
    validation_loss: float | None
    train_seconds: float | None
    inputs_per_s: float | None
    peak_memory_bytes: int | None
    checkpoint_path: str | None
    path_used: str | None
    has_samples: bool
    # Seconds this attempt's worker stood still, stopped (``Run.paused_s``); None: none
    # recorded (no stop, an older worker, or a database whose role could not add it).
    paused_s: float | None = None

    @property
    def config(self) -> RunConfig:
        return RunConfig.from_json(self.config_json)

    def terminal_safe(self) -> RunRow:
        """This run with the text others wrote (its experiment, name, error, worker,
        checkpoint folder) as ``core.errors.terminal_safe`` writes it, for a view printed
        to a terminal. A database of an older version, one edited by hand, or an error
        text naming a file holds what a terminal acts on: an ESC sequence in a failed
        run's error cleared the screen ``status`` and ``show`` printed, and a carriage
        return in a name overwrote the start of its ``ls`` row. Ordinary text is left as
        it is, and a run with nothing to escape is returned itself: the dashboard's runs
        table converts every row at each poll and reuses a row's cells only while it is
        handed the same object (a copy each time would make 10,000 rows' cells again).
        Not for JSON or CSV, whose readers take the text as stored."""
        texts = (self.experiment, self.name, self.error, self.worker_id,
                 self.checkpoint_path, self.path_used)  # fmt: skip
        if all(_plain(text) for text in texts):
            return self
        return replace(
            self,
            experiment=terminal_safe(self.experiment),
            name=terminal_safe(self.name),
            error=_safe_or_none(self.error),
            worker_id=_safe_or_none(self.worker_id),
            checkpoint_path=_safe_or_none(self.checkpoint_path),
            path_used=_safe_or_none(self.path_used),
        )

    @property
    def trained_all(self) -> bool:
        """Running, with every input trained: its final validation, samples and checkpoints
        are what is left (no step either, before which a cancel would be read)."""
        return self.status == RunStatus.RUNNING and self.inputs_done >= self.total_inputs

    @property
    def progress(self) -> float:
        """Fraction of the run's inputs trained, 0..1 (1 for succeeded runs)."""
        if self.status == RunStatus.SUCCEEDED:
            return 1.0
        return min(1.0, self.inputs_done / self.total_inputs) if self.total_inputs else 0.0

    def heartbeat_age(self, now: float) -> float | None:
        return None if self.heartbeat_at is None else max(0.0, now - self.heartbeat_at)

    def active_seconds(self, until: float) -> float | None:
        """Seconds from its claim to ``until`` (its end, or its last beat or now while it
        runs) less the time its worker stood still, stopped (``paused_s``): the wall time
        its paces and ETAs divide by (a run that trained 2 minutes, was paused 10 and
        resumed read a sixth of its pace, and an ETA six times too long). None before its
        claim. The one place this is worked out: the dashboard, ``ls``, ``show`` and the
        queue's forecast all ask it."""
        if self.started_at is None:
            return None
        return max(0.0, until - self.started_at - (self.paused_s or 0.0))


@dataclass(frozen=True)
class RunFilter:
    """What ``list_runs`` returns; every field narrows the list, None means any."""

    statuses: frozenset[RunStatus] | None = None
    experiment: str | None = None
    experiments: tuple[str, ...] | None = None  # any of them (ls --experiment a --experiment b)
    ids: tuple[int, ...] | None = None
    order: str = "id"  # "id" (oldest first), "queue" (claim order), "recent" (newest first)
    limit: int | None = None


@dataclass(frozen=True)
class MetricPoint:
    """One value to record: ``add_metrics`` inserts a batch of them."""

    step: int
    inputs: int
    name: str
    value: float


@dataclass(frozen=True)
class MetricRow:
    id: int  # increasing: pass the last one seen to ``metrics_since``
    run_id: int
    step: int
    inputs: int
    name: str
    value: float


def _safe_or_none(text: str | None) -> str | None:
    return None if text is None else terminal_safe(text)


def _plain(text: str | None) -> bool:
    """Whether ``terminal_safe`` leaves ``text`` as it is, tested cheaply: what it escapes
    (control and format characters, line and paragraph separators) is all unprintable
    to ``str.isprintable``, which runs in C. Text it says is not (a joiner, a newline in an
    error) is given to ``terminal_safe`` to decide."""
    return text is None or text.isprintable() or terminal_safe(text) == text


@dataclass(frozen=True)
class DamagedWorker:
    """A worker row edited by hand into what no version writes (a text pid, a
    last_seen_at that is no number): left out of the workers a view reads
    (``Repo.workers_and_damaged``) and named by ``said`` (its row, field and value, and
    the repair). ``host``: its host where that column still holds text, else None (it may
    be any machine's); ``pid``: its pid where that column still holds a whole number, else
    None (for ``stop`` to say which process found by its command line the row names)."""

    id: str
    host: str | None
    said: str
    pid: int | None = None


@dataclass(frozen=True)
class DamagedRun:
    """A running run's row edited by hand (``Repo.running_and_damaged``), with what the
    slots' admission still reads of it: each None where that column is damaged too."""

    id: int
    worker_id: str | None
    started_at: float | None
    inputs_done: int | None
    said: str


@dataclass(frozen=True)
class WorkerRow:
    id: str
    host: str
    pid: int
    device: str
    state: str
    started_at: float
    last_seen_at: float
    current_run_id: int | None
    runs_done: int
    gpu: GpuSnapshot
    # How it claims; None: not recorded (a worker of an older resconv-tui).
    stack: int | None = None  # --stack K: up to K seeds of one cell at once
    largest_first: bool | None = None  # --order largest-first
    max_runs: int | None = None  # --max-runs N: it exits after N runs ended
    # Its seconds without a beat as a dashboard watched it (``polling.HeardBeats.watched``:
    # since its beat last changed, whatever this box's clock says), set on the rows of
    # each poll; None on a row read once (``ls``, ``status``, ``stop``), judged by ``age``.
    heard_quiet_s: float | None = None

    def age(self, now: float) -> float:
        return max(0.0, now - self.last_seen_at)

    def quiet_for(self, now: float) -> float:
        """Its seconds without a beat: as a dashboard watched it, else its age on this
        machine's clock (which a box whose clock is behind makes old)."""
        return self.age(now) if self.heard_quiet_s is None else self.heard_quiet_s

    def terminal_safe(self) -> WorkerRow:
        """This worker with the text it wrote of itself (host, device, state) as
        ``core.errors.terminal_safe`` writes it, for the workers panel: a host name with
        ESC in it (a database edited by hand) reached the terminal as it was. Its ``id``
        is kept as stored: it is the key runs name their worker by (``held_runs``), and
        the panel does not show it. Itself where nothing needs escaping."""
        if all(_plain(text) for text in (self.host, self.device, self.state)):
            return self
        return replace(
            self,
            host=terminal_safe(self.host),
            device=terminal_safe(self.device),
            state=terminal_safe(self.state),
        )


@dataclass(frozen=True)
class FinalFigures:
    """What a finished run leaves behind (all optional: a failed run may have some)."""

    validation_loss: float | None = None
    param_count: int | None = None
    train_seconds: float | None = None
    inputs_per_s: float | None = None
    peak_memory_bytes: int | None = None
    inputs_done: int | None = None
    checkpoint_path: str | None = None
    path_used: str | None = None
    samples: bytes | None = None
    paused_s: float | None = None  # its worker's stops during the attempt (``core.pauses``)
    # Its last metric points, refused as its worker was stopped (the final pass's, the
    # last progress): written with its end, in the same transaction.
    last_points: tuple[MetricPoint, ...] = ()
