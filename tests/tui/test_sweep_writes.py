"""The lines the shell gets for the form's writes a quit waited for, and its notice."""

from __future__ import annotations

from core.queue.rows import EnqueueResult
from resconv_tui.sweep_writes import ExitNote, queued_note, still_writing_said


def test_a_queued_sweeps_line_counts_its_runs_as_the_forms_notice_does() -> None:
    # Twelve new runs and one queued again, two skipped: the ids the runs have now.
    result = EnqueueResult(12, 2, tuple(range(5, 17)), ("a", "b"), (3,))
    assert queued_note("x", result) == ExitNote(
        "queued sweep 'x': 13 runs (runs 3, 5, 6, 7, 8 and 8 more), 1 failed or cancelled "
        "before; 2 already queued or done: skipped"
    )
    assert queued_note("x", EnqueueResult(0, 3)) == ExitNote(
        "sweep 'x': nothing new to queue: 3 runs already queued or done"
    )


def test_the_quit_notice_names_each_sweep_still_written_once() -> None:
    assert still_writing_said(["a", "b", "a"]) == (
        "still queueing sweeps 'a', 'b': waiting for the database; the dashboard quits once "
        "the runs are written or the write fails"
    )
