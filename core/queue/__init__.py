"""The run queue: a database shared by the TUI, the CLI and the workers.

Torch-free on purpose (the TUI and ``queue --dry-run`` must start fast). Use
``Repo.open(url)`` and its verbs; nothing else should run SQL.
"""

from core.queue.errors import InvalidTransition, QueueError, UnknownRun
from core.queue.repo import Repo
from core.queue.rows import (
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
from core.queue.status import RunStatus

__all__ = [
    "EnqueueResult",
    "FinalFigures",
    "GpuSnapshot",
    "InvalidTransition",
    "MetricPoint",
    "MetricRow",
    "NewRun",
    "QueueError",
    "Repo",
    "RunFilter",
    "RunRow",
    "RunStatus",
    "UnknownRun",
    "WorkerRow",
]
