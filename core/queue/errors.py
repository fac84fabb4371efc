"""Errors of the run queue: one clear line for the CLI, a title for the TUI."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from core.errors import ResconvError

if TYPE_CHECKING:
    from core.queue.status import RunStatus


class QueueError(ResconvError):
    """The database cannot be opened, read or written (missing, locked, corrupt, too new)."""

    title = "Database error"


class DamagedRow(QueueError):
    """A row holding what no version writes (a value of the wrong kind, which SQLite
    takes in any column; JSON that does not read): edited by hand. ``problem``: what is
    wrong with it, as "its seed is 'abc', not a whole number"."""

    def __init__(self, message: str, problem: str) -> None:
        super().__init__(message)
        self.problem = problem


class NoDatabase(QueueError):
    """No resconv-tui database there yet (a missing SQLite file, an empty one, an empty
    PostgreSQL database) where the command will not make one (status, ls, a dry run)."""


class UnknownRun(QueueError):
    """A run id that is not in the database."""

    title = "Unknown run"


class InvalidTransition(QueueError):
    """A status change the run's current status does not allow (e.g. retry a running run).
    ``wrong``: each refused run's id and status, ``why``: the rule, so a notice can say
    them its own way (the dashboard's, a few ids of each status)."""

    title = "Not allowed"

    def __init__(
        self, message: str, wrong: Sequence[tuple[int, RunStatus]] = (), why: str = ""
    ) -> None:
        super().__init__(message)
        self.wrong = tuple(wrong)
        self.why = why


class UsageError(ResconvError):
    """A wrong argument to a view (an unknown column name, a bad sort key)."""

    title = "Invalid argument"
