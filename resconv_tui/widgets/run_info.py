"""A run's facts as rich renderables: status, timings, figures, config. Pure."""

from __future__ import annotations

from collections.abc import Sequence
from time import localtime, strftime

from rich.table import Table
from rich.text import Text

from core.queue import RunRow, RunStatus
from core.queue.views import published
from core.sweep import value_text
from resconv_tui.memory_estimate import format_bytes
from resconv_tui.polling import format_duration, run_rate, status_word
from resconv_tui.widgets.folded_name import FoldedName

STATUS_STYLE = {
    RunStatus.QUEUED: "cyan",
    RunStatus.RUNNING: "bold yellow",
    RunStatus.SUCCEEDED: "bold green",
    RunStatus.FAILED: "bold red",
    RunStatus.CANCELLED: "magenta",
}


def format_time(seconds: float | None) -> str:
    return "—" if seconds is None else strftime("%Y-%m-%d %H:%M:%S", localtime(seconds))


def _grid() -> Table:
    table = Table.grid(padding=(0, 1))
    table.add_column(style="dim", no_wrap=True)
    table.add_column(overflow="fold")
    return table


def _number(value: float | None, fmt: str) -> str:
    return "—" if value is None else format(value, fmt)


def last_validation(run: RunRow, passes: Sequence[float]) -> float | None:
    """Its final validation loss, or while it trains the last of its ``passes`` so far
    (the compare screen's legend and ``compare --plot``'s)."""
    if run.validation_loss is not None:
        return run.validation_loss
    return passes[-1] if passes else None


def ended_how(status: RunStatus) -> str:
    """'failed', 'was cancelled': how a run without data ended, for a sentence."""
    return "was cancelled" if status == RunStatus.CANCELLED else str(status)


def title_text(run: RunRow) -> Text:
    """``Run 7  layers-3_seed-0  (t1-layers-32)  succeeded``, the status in its colour."""
    style = STATUS_STYLE.get(run.status, "")
    return Text.assemble(f"Run {run.id}  ", (run.name, "bold"), f"  ({run.experiment})  ",
                         (status_word(run), style))  # fmt: skip


def timings(run: RunRow, now: float) -> dict[str, str]:
    end = run.finished_at if run.finished_at is not None else now
    running = run.started_at is not None and run.status == RunStatus.RUNNING
    took = None if run.started_at is None else end - run.started_at
    rows = {
        "created": format_time(run.created_at),
        "started": format_time(run.started_at),
        "finished": format_time(run.finished_at),
        "elapsed" if running else "took": format_duration(took),
    }
    if run.started_at is not None and run.paused_s:
        # Wall time holds it; the pace, in/s and ETA leave it out (``active_seconds``).
        rows["paused"] = f"{format_duration(run.paused_s)} (its worker stopped: not counted)"
    if running and run.heartbeat_at is not None:
        rows["heartbeat"] = f"{format_duration(run.heartbeat_age(now))} ago"
    return rows


def progress(run: RunRow) -> str:
    if run.inputs_done > run.total_inputs:
        # Training stops after the batch that reaches max_inputs, and that batch is whole.
        return f"{run.inputs_done:,} inputs (max_inputs {run.total_inputs:,}, in whole batches)"
    return f"{run.inputs_done:,} / {run.total_inputs:,} inputs ({run.progress:.0%})"


def info_table(
    run: RunRow,
    now: float,
    stalled: bool = False,
    last_val: tuple[float, float] | None = None,
    eta: str | None = None,
    folders: Sequence[str] | None = None,
) -> Table:
    """Status, where it ran, timings and final figures. ``stalled``: its worker beats but
    has taken no training step for minutes (as the runs table says). ``last_val``: its
    newest validation point (loss, inputs), shown until the final figure is there.
    ``eta``: a running run's ETA row (``polling.eta_text``: the runs table's and ``ls``'s
    ETA, or why there is none); None: no such row. ``folders``: its checkpoint folders
    (``checkpoint_folders.run_checkpoint_folders``); None: the one its row names."""
    table = _grid()
    # "validating" at 100% as the runs table says it (it said "running" there).
    status = Text(status_word(run), style=STATUS_STYLE.get(run.status, ""))
    if stalled:
        status.append(" (stalled: no step for minutes)", style="bold")
    if run.cancel_requested and run.status == RunStatus.RUNNING:
        status.append(" (cancel requested)", style="magenta")
    table.add_row("status", status)
    table.add_row("experiment", FoldedName(run.experiment))
    table.add_row("priority", f"{run.priority}   attempts {run.attempts}")
    table.add_row("worker", FoldedName(run.worker_id or "—"))
    for key, value in timings(run, now).items():
        table.add_row(key, value)
    table.add_row("progress", progress(run))
    if eta is not None:
        table.add_row("ETA", eta)
    if run.status == RunStatus.RUNNING and run.validation_loss is None and last_val is not None:
        # It read "—" beside the chart's validation dots.
        loss, inputs = last_val
        table.add_row("val loss", f"{loss:.6f} at {inputs:,.0f} inputs (the last pass so far)")
    else:
        table.add_row("val loss", _number(run.validation_loss, ".6f"))
    if logbook := logbook_figures(run):
        table.add_row("logbook", logbook)
    table.add_row("params", f"{run.param_count:,}")
    # While it trains: the pace so far, as the runs table shows (then the final figure).
    table.add_row("inputs/s", _number(run_rate(run, now), ",.0f"))
    table.add_row("peak mem", format_bytes(run.peak_memory_bytes))
    table.add_row("path", FoldedName(run.path_used or "—"))
    table.add_row("checkpoint", FoldedName(checkpoint_text(run, folders)))
    return table


def checkpoint_text(run: RunRow, folders: Sequence[str] | None = None) -> str:
    """Its checkpoint folders (``folders``, else its row's), ``—`` where none is known.
    Those of a run whose latest attempt never started (queued again after it trained,
    put back or retried; or so and then cancelled while queued) are an earlier attempt's:
    said, as its figures and curves are gone, and no attempt has removed its weights
    (``core.run_folders.start_attempt``). A running run's are the folder it writes to
    (training again takes its folder back)."""
    shown = list(folders) if folders is not None else [run.checkpoint_path or ""]
    text = ", ".join(folder for folder in shown if folder)
    if not text:
        return "—"
    if run.started_at is None:  # the claim sets it; going back to the queue clears it
        return f"{text} (an earlier attempt's)"
    return text


def logbook_figures(run: RunRow) -> str | None:
    """The published figures of a run's cell, as the results table puts them beside ours
    (``views.with_targets``): ``0.164834 (Δ +0.269971) · 0.36 min``, the parameter count
    where it differs; None where its sweep gave none."""
    given = published(run.target)
    parts = []
    if (goal := given.get("validation_loss")) is not None:
        loss = run.validation_loss
        parts.append(f"{goal:.6g}" + ("" if loss is None else f" (Δ {loss - goal:+.6f})"))
    if (minutes := given.get("minutes")) is not None:
        parts.append(f"{minutes:.2f} min")
    if (params := given.get("params")) is not None and params != run.param_count:
        parts.append(f"{params:,.0f} params")
    return " · ".join(parts) or None


def info_made_of(
    run: RunRow,
    now: float,
    stalled: bool = False,
    last_val: tuple[float, float] | None = None,
    eta: str | None = None,
    folders: Sequence[str] | None = None,
) -> tuple[object, ...]:
    """What ``info_table`` with these arguments draws, as a value to compare (a rich Table
    has no equality): ``now`` only through the texts it reads from it, so an ended run
    gives the same value at every poll and a running one a new value when its elapsed
    time, heartbeat age, pace or ETA changes as shown."""
    return (
        run,
        stalled,
        last_val,
        eta,
        folders,
        tuple(timings(run, now).items()),
        _number(run_rate(run, now), ",.0f"),
    )


def config_table(run: RunRow) -> Table:
    """Every run parameter, two columns of key/value pairs."""
    items = list(run.config.to_dict().items())
    half = -(-len(items) // 2)
    table = Table.grid(padding=(0, 1))
    for _ in range(2):
        table.add_column(style="dim", no_wrap=True)
        table.add_column(no_wrap=True)
    for left, right in zip(items[:half], [*items[half:], ("", "")], strict=False):
        table.add_row(left[0], value_text(left[1]), right[0], value_text(right[1]))
    return table


def error_text(run: RunRow, retries_it: str, db: str = "") -> Text:
    """A failed run's error, its cause, and the retry that fits it: ``retries_it`` says
    how to retry this one (a key on the dashboard, a command in a shell), ``db`` is the
    ``--db`` a suggested command needs to act on the same database."""
    from core.queue.failures import RETRY_ADVICE, run_cause

    text = Text.assemble(("error", "bold"), "  ", run.error or "")
    if (cause := run_cause(run)) is not None:
        text.append(f"\n{cause}: ", style="bold")
        text.append(f"{RETRY_ADVICE[cause]}. ")
        text.append(f"{retries_it} retries it; resconv-tui retry --cause {cause.option}{db} "
                    "retries every run that failed so.", style="dim")  # fmt: skip
    return text
