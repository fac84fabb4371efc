"""Why a run failed, read from the error text the worker stored, and what retry fits.

The worker writes a short error with every failed run (``core.worker.failure_message``,
``core.train.non_finite``, ``Repo.fail_stale``'s ``worker lost``). Those texts name their
cause in words this module knows, so failed runs can be grouped by cause in the
dashboard and ``status``, and retried by cause (``resconv-tui retry --cause``), without
a schema change: databases written by earlier versions classify the same way.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from enum import StrEnum

from core.queue.repo import WORKER_LOST, Repo
from core.queue.rows import NewRun, RunFilter, RunRow
from core.queue.status import RunStatus
from core.queue.views import ids_of


class FailureCause(StrEnum):
    OUT_OF_MEMORY = "out of memory"
    DIVERGED = "loss NaN/inf"
    WORKER_LOST = "worker lost"
    ERROR = "error"

    @property
    def option(self) -> str:
        """The cause as a command-line word (``retry --cause worker-lost``)."""
        return CAUSE_OPTIONS[self]


CAUSE_OPTIONS = {
    FailureCause.OUT_OF_MEMORY: "oom",
    FailureCause.DIVERGED: "nan",
    FailureCause.WORKER_LOST: "worker-lost",
    FailureCause.ERROR: "error",
}

# What to do about each cause; the dashboard and `status` show it next to the error.
RETRY_ADVICE = {
    FailureCause.OUT_OF_MEMORY: "retry once the device has room for it (fewer runs beside it); "
    "a smaller batch_size is a new run (d duplicates a run in the dashboard)",
    FailureCause.DIVERGED: "the same config and seed most likely diverge again: a lower lr or "
    "another seed is a new run (d duplicates a run in the dashboard)",
    FailureCause.WORKER_LOST: "its worker crashed, was killed or lost the database: the run "
    "itself did not fail, so retry it",
    FailureCause.ERROR: "read the error; retry once its cause is fixed",
}

# Lower-case fragments of the texts each cause writes: ours ("out of memory at batch 64:
# ...", "loss became NaN at step 120", "validation loss is not finite (NaN/inf)") and
# PyTorch's own ("CUDA out of memory", the CPU allocator's "can't allocate memory").
_OUT_OF_MEMORY = ("out of memory", "can't allocate memory")
_DIVERGED = ("loss became nan", "loss became inf", "not finite")


def failure_cause(error: str | None) -> FailureCause:
    """The cause of a failed run's ``error`` text."""
    text = (error or "").lower()
    if text == WORKER_LOST:
        return FailureCause.WORKER_LOST
    if any(fragment in text for fragment in _OUT_OF_MEMORY):
        return FailureCause.OUT_OF_MEMORY
    if any(fragment in text for fragment in _DIVERGED):
        return FailureCause.DIVERGED
    return FailureCause.ERROR


def run_cause(run: RunRow) -> FailureCause | None:
    """Why ``run`` failed; None when it has not failed (a cancelled run may carry text too)."""
    return failure_cause(run.error) if run.status == RunStatus.FAILED else None


def cause_from_option(word: str) -> FailureCause:
    """``retry --cause WORD``: oom, nan, worker-lost or error."""
    for cause, option in CAUSE_OPTIONS.items():
        if option == word:
            return cause
    raise ValueError(f"'{word}' is not a failure cause: use {', '.join(CAUSE_OPTIONS.values())}")


def failure_counts(runs: Iterable[RunRow]) -> dict[FailureCause, int]:
    """Failed runs per cause, most common first, ties in FailureCause order (none: left out)."""
    counts = Counter(cause for run in runs if (cause := run_cause(run)) is not None)
    order = list(FailureCause)
    return dict(sorted(counts.items(), key=lambda item: (-item[1], order.index(item[0]))))


def failed_runs(repo: Repo, cause: FailureCause) -> list[RunRow]:
    """The failed runs of ``repo`` that failed with ``cause``, by id."""
    failed = repo.list_runs(RunFilter(statuses=frozenset({RunStatus.FAILED})))
    return [run for run in failed if run_cause(run) == cause]


def diverged_before(repo: Repo, runs: Iterable[NewRun]) -> list[int]:
    """The failed runs that ``runs`` would queue again (same experiment, config and seed)
    and that had diverged: read before queueing, which clears their error."""
    keys = {(run.experiment, run.config_hash) for run in runs}
    return [r.id for r in failed_runs(repo, FailureCause.DIVERGED)
            if (r.experiment, r.config_hash) in keys]  # fmt: skip


def diverged_warning(diverged: Iterable[int], queued_again: Iterable[int]) -> str | None:
    """What to say when queueing a sweep again put diverged runs back (``r`` would ask)."""
    again = sorted(set(diverged) & set(queued_again))
    if not again:
        return None
    runs = ids_of("run", again)
    return f"{runs} had diverged (loss NaN/inf): {RETRY_ADVICE[FailureCause.DIVERGED]}"
