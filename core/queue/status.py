"""Run statuses and the changes between them.

    queued ──claim──▶ running ──▶ succeeded
      │  ▲             │ │ └────▶ failed ────┐
      │  └─ requeued ──┘ └──────▶ cancelled ─┤
      └──────────── cancel ──────▶ cancelled  │
      ▲──────────────── retry ───────────────┘

``running -> queued`` is the worker's answer to SIGINT/SIGTERM: the run was
interrupted through no fault of its own, so it goes back to the queue and
trains again from the start.
"""

from __future__ import annotations

from enum import StrEnum


class RunStatus(StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"


TRANSITIONS: dict[RunStatus, frozenset[RunStatus]] = {
    RunStatus.QUEUED: frozenset({RunStatus.RUNNING, RunStatus.CANCELLED}),
    RunStatus.RUNNING: frozenset(
        {RunStatus.SUCCEEDED, RunStatus.FAILED, RunStatus.CANCELLED, RunStatus.QUEUED}
    ),
    RunStatus.SUCCEEDED: frozenset(),
    RunStatus.FAILED: frozenset({RunStatus.QUEUED}),
    RunStatus.CANCELLED: frozenset({RunStatus.QUEUED}),
}

# A new run with the same config + seed is a duplicate of a run in one of these.
BLOCKS_DUPLICATES = frozenset({RunStatus.QUEUED, RunStatus.RUNNING, RunStatus.SUCCEEDED})
FINISHED = frozenset({RunStatus.SUCCEEDED, RunStatus.FAILED, RunStatus.CANCELLED})
RETRYABLE = frozenset({RunStatus.FAILED, RunStatus.CANCELLED})
CANCELLABLE = frozenset({RunStatus.QUEUED, RunStatus.RUNNING})


def can_transition(old: RunStatus, new: RunStatus) -> bool:
    """Whether a run in ``old`` may move to ``new``."""
    return new in TRANSITIONS[old]


def run_is(run_id: int, status: RunStatus) -> str:
    """``run 3 has succeeded``, ``run 4 is running``: a run's status in a sentence."""
    return f"run {run_id} {status_verb(status)} {status}"


def status_verb(status: RunStatus, many: bool = False) -> str:
    """The verb before ``status`` in a sentence: ``has`` (``have``) succeeded or failed,
    ``is`` (``are``) queued, running or cancelled."""
    if status in (RunStatus.SUCCEEDED, RunStatus.FAILED):
        return "have" if many else "has"
    return "are" if many else "is"


# A running run that has trained all its inputs takes no more steps, before which a
# cancel is read: the CLI's cancel and ls and the dashboard's c say so alike.
FINISHING = "it has trained all its inputs and is finishing: it will likely succeed"
FINISHING_ALL = "they have trained all their inputs and are finishing: they will likely succeed"
