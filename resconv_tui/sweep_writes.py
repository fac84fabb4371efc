"""The new-sweep form's ctrl+s writes as the app follows them, and what the shell is told.

A write runs in a thread and may wait on the database (another process's SQLite write
lock, up to the busy timeout). Quitting then closed the screen at once, and the process
waited for the thread with nothing shown, and what became of the write went unsaid.
The form tells the app when a write starts and ends (``WriteStarted``, ``WriteEnded``:
messages, so a form hosted by a bare test app tells no one); the app quits once none is
under way, and hands each one that ended meanwhile to the dashboard command as an
``ExitNote``, which it prints after ``app.run()``.
"""

from __future__ import annotations

from dataclasses import dataclass

from textual.message import Message

from core.errors import ResconvError
from core.queue.rows import EnqueueResult
from core.queue.views import count_of, ids_of

SHOWN_IDS = 5  # the note names this many run ids, then "and N more"


@dataclass(frozen=True)
class ExitNote:
    """One line for the shell once the dashboard has quit."""

    text: str
    failed: bool = False  # on stderr, and the dashboard exits with status 2


class WriteStarted(Message):
    """ctrl+s began writing the runs of the sweep ``experiment``."""

    def __init__(self, experiment: str) -> None:
        super().__init__()
        self.experiment = experiment


class WriteEnded(Message):
    """That write ended: ``note`` says how, as the shell would read it."""

    def __init__(self, experiment: str, note: ExitNote) -> None:
        super().__init__()
        self.experiment = experiment
        self.note = note


def queued_note(experiment: str, result: EnqueueResult) -> ExitNote:
    """``queued sweep 'x': 12 runs (runs 5, 6, 7, 8, 9 and 7 more)``, with the runs
    queued again and those skipped as the form's own notice counts them."""
    ids = [*result.added_ids, *result.queued_again_ids]
    if not ids:
        there = count_of(result.skipped, "run")
        return ExitNote(f"sweep '{experiment}': nothing new to queue: {there} already "
                        "queued or done")  # fmt: skip
    again = f", {result.queued_again} failed or cancelled before" if result.queued_again else ""
    skipped = f"; {result.skipped} already queued or done: skipped" if result.skipped else ""
    runs = f"{count_of(len(ids), 'run')} ({ids_of('run', sorted(ids), SHOWN_IDS)})"
    return ExitNote(f"queued sweep '{experiment}': {runs}{again}{skipped}")


def failed_note(experiment: str, exc: ResconvError) -> ExitNote:
    """``sweep 'x' not queued: <the write's error>``: nothing of it was written."""
    return ExitNote(f"sweep '{experiment}' not queued: {exc}", failed=True)


def still_writing_said(experiments: list[str]) -> str:
    """The notice quitting shows while writes are under way: what it waits for."""
    names = ", ".join(f"'{name}'" for name in dict.fromkeys(experiments))
    sweeps = "sweeps" if len(set(experiments)) > 1 else "sweep"
    return (f"still queueing {sweeps} {names}: waiting for the database; the dashboard "
            "quits once the runs are written or the write fails")  # fmt: skip
