"""``resconv-tui show ID``: one run as the dashboard's run detail shows it, for a shell
or a script.

It prints the status, timings, figures, why a failed run failed and how to retry it,
its config and its validation passes; ``--plot`` adds its loss chart, ``--samples`` its
sample reconstructions (truecolour half-blocks), ``--json`` and ``--curves`` give a
script the same and every recorded point, ``--follow`` follows it to its end
(``resconv_tui.follow``).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from core.errors import ResconvError
from resconv_tui.cli import add_db_option, db_option, open_repo
from resconv_tui.commands.manage import run_id
from resconv_tui.terminal_output import (
    CURVE_HEADER,
    LOSS_TITLE,
    curves_csv,
    points_by_name,
    print_chart,
    print_plain,
    print_samples,
    run_series,
    stdout_console,
)

if TYPE_CHECKING:
    from core.queue import Repo, RunRow
    from core.queue.rows import MetricRow


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    show = subparsers.add_parser(
        "show",
        help="one run in full: status, figures, error, config, validation passes (--json)",
        description="Show one run as the dashboard's run detail does: status, timings, "
        "figures, why it failed and how to retry it, its config and its validation passes.",
    )
    show.add_argument("id", type=run_id, metavar="ID", help="run id")
    output = show.add_mutually_exclusive_group()
    output.add_argument(
        "--json", action="store_true",
        help="the run, its config and every point recorded (train and validation loss, "
        "learning rate, inputs/s, memory) as one JSON object",
    )  # fmt: skip
    output.add_argument(
        "--curves", action="store_true",
        help=f"every recorded point as CSV ({','.join(CURVE_HEADER)})",
    )  # fmt: skip
    output.add_argument(
        "--follow", action="store_true",
        help="follow it as it waits, trains and ends (validation passes, progress, its end); "
        "exit status 0 if it succeeded, 1 if it failed, was cancelled or removed, 130 on "
        "Ctrl-C (the run goes on)",
    )  # fmt: skip
    show.add_argument("--plot", action="store_true", help="draw its loss curves in the terminal")
    show.add_argument(
        "--samples", action="store_true",
        help="draw its sample reconstructions (masked input, output, target; truecolour)",
    )  # fmt: skip
    add_db_option(show)
    show.set_defaults(handler=run_show)
    return show


def run_show(args: argparse.Namespace) -> int:
    from core.queue.errors import UsageError
    from core.queue.rows import TRAIN_LOSS, VAL_LOSS

    drawn = [option for option in ("plot", "samples") if getattr(args, option)]
    if drawn and (args.json or args.curves or args.follow):
        other = "--follow" if args.follow else "--json or --curves"
        raise UsageError(f"--{drawn[0]} draws the run as it is: not with {other}")
    repo = open_repo(args, only_reads=True)
    run = repo.get_run(args.id)
    if args.samples and not run.has_samples:  # before reading a long curve for nothing
        raise NothingToShow(f"run {run.id} has no sample reconstructions: {no_samples_why(run)}")
    if args.curves:
        print(curves_csv(repo.metrics_since(run.id)), end="")
        return 0
    if args.follow:
        return follow_run(repo, run, db_option(args))
    from resconv_tui.commands.ls import run_ends, run_trouble

    now = time.time()
    trouble = run_trouble(repo, run, now)
    if args.json:
        print(show_json_text(show_json(repo, run, repo.metrics_since(run.id), now, trouble)))
        return 0
    # A person's view draws the losses alone: a run records speed, memory and its
    # learning rate at every step too, three rows in four of a long curve.
    metrics = repo.metrics_since(run.id, 0, [TRAIN_LOSS, VAL_LOSS])
    from resconv_tui.checkpoint_folders import shown_folders

    folders = shown_folders(run, repo.url)  # by its name as stored, before it is escaped
    run = run.terminal_safe()  # rich drops a carriage return, but writes ESC as it is
    console = stdout_console()
    ends = run_ends(repo, [run], now)  # ls's forecast: the same ETA
    print_plain(console, detail(run, metrics, trouble, now, db_option(args), ends, folders))
    if args.plot:
        from core.queue.status import FINISHED
        from resconv_tui.plotting import NO_DATA_YET

        empty = "none recorded" if run.status in FINISHED else NO_DATA_YET
        print_chart(console, f"run {run.id}: {LOSS_TITLE}", run_series(metrics), empty)
    if args.samples:
        print_samples(console, repo.get_samples(run.id) or b"", run.id)
    return 0


def follow_run(repo: Repo, run: RunRow, db: str) -> int:
    """``--follow``: its title, then what becomes of it (``resconv_tui.follow``)."""
    from resconv_tui.follow import Terminal, follow
    from resconv_tui.widgets.run_info import title_text

    console = stdout_console()
    print_plain(console, title_text(run.terminal_safe()))

    def write(text: str) -> None:
        sys.stdout.write(text)
        sys.stdout.flush()  # a pipe reader (tee, a log) sees each line as it comes

    return follow(repo, run.id, Terminal(write, live=console.is_terminal), db)


class NothingToShow(ResconvError):
    """What was asked to be shown is not there (yet): no wrong argument ("invalid
    argument: run 11 has no sample reconstructions" read as one)."""

    title = "Nothing to show"


def no_samples_why(run: RunRow) -> str:
    """Why a run has no samples yet, or never will (they come with the final pass)."""
    from core.queue import RunStatus
    from resconv_tui.widgets.run_info import ended_how

    if run.status in (RunStatus.FAILED, RunStatus.CANCELLED):
        return f"it {ended_how(run.status)} before its final validation pass"
    if run.status == RunStatus.SUCCEEDED:  # a version before samples trained it
        return "none were saved when it ended"
    return "they are saved when it ends"


def detail(
    run: RunRow,
    metrics: Sequence[MetricRow],
    trouble: tuple[bool, bool],
    now: float,
    db: str,
    ends: dict[int, float] | None = None,
    folders: Sequence[str] | None = None,
) -> Any:
    """The run detail screen's panels, one under the other, as rich renderables.
    ``ends``: the queue forecast's (``ls.run_ends``), for a running run's ETA.
    ``folders``: its checkpoint folders found (None: the one its row names)."""
    from rich.console import Group
    from rich.text import Text

    from core.queue.rows import VAL_LOSS
    from core.queue.status import FINISHED
    from resconv_tui.polling import eta_text
    from resconv_tui.widgets.run_info import config_table, error_text, info_table, title_text

    stalled, exited = trouble
    passes = [row for row in metrics if row.name == VAL_LOSS]
    last_val = (passes[-1].value, float(passes[-1].inputs)) if passes else None
    parts: list[Any] = [title_text(run), ""]
    if run.error:
        parts += [error_text(run, f"resconv-tui retry {run.id}{db}", db), ""]
    if exited:  # as `ls` says: the screen would mark it lost itself, a shell does not
        parts += [exited_text(run, db), ""]
    # The red line above says why there is none; the ETA row said it again word for word.
    eta = "— (its worker exited)" if exited else eta_text(run, now, stalled, exited, ends or {})
    parts += [info_table(run, now, stalled, last_val, eta, folders), "", Text("config", "bold")]
    parts += [config_table(run), ""]
    ended = run.status in FINISHED  # no "yet": none is to come
    parts += [validation_passes(passes, ended), train_summary(metrics, ended)]
    return Group(*parts)


def exited_text(run: RunRow, db: str) -> Any:
    """A running run whose worker's process here has exited: what happened, what to do."""
    from rich.text import Text

    from resconv_tui.polling import EXITED_NOTE

    return Text.assemble(
        (EXITED_NOTE, "bold red"), f". resconv-tui retry {run.id}{db} queues it again."
    )


def validation_passes(passes: Sequence[MetricRow], ended: bool) -> Any:
    """``inputs  val loss`` per validation pass (after each epoch and at the end)."""
    from rich.table import Table
    from rich.text import Text

    if not passes:
        return Text(f"validation passes: none{'' if ended else ' yet'}", "dim")
    table = Table("inputs", "val loss", title="validation passes", title_justify="left",
                  box=None, padding=(0, 1), show_edge=False)  # fmt: skip
    table.columns[0].justify = table.columns[1].justify = "right"
    for row in passes:
        table.add_row(f"{row.inputs:,}", f"{row.value:.6f}")
    return table


def train_summary(metrics: Sequence[MetricRow], ended: bool) -> Any:
    """The train loss curve in one line: its first, lowest and last points."""
    from rich.text import Text

    from core.queue.rows import TRAIN_LOSS
    from core.queue.views import count_of

    points = [row for row in metrics if row.name == TRAIN_LOSS]
    if not points:
        return Text(f"train loss: none recorded{'' if ended else ' yet'}", "dim")
    first, last = points[0], points[-1]
    lowest = min(points, key=lambda row: row.value)
    return Text(
        f"train loss: {count_of(len(points), 'point')}; {first.value:.6f} at "
        f"{first.inputs:,} inputs, lowest {lowest.value:.6f} at {lowest.inputs:,}, "
        f"last {last.value:.6f} at {last.inputs:,} (--plot draws it, --curves gives every point)"
    )


def show_json(
    repo: Repo, run: RunRow, metrics: Sequence[MetricRow], now: float, trouble: tuple[bool, bool]
) -> dict[str, Any]:
    """``ls --json``'s object for the run, with its config, timings and points, and its
    checkpoint folders as ``show``'s text names them (``checkpoint_path`` is the row's
    alone: none for a run lost with its worker, though its folder is on disk)."""
    from resconv_tui.checkpoint_folders import run_checkpoint_folders
    from resconv_tui.commands.ls import listed_json, run_ends

    out = listed_json(run, now, *trouble, run_ends(repo, [run], now))
    out |= {
        "config": run.config.to_dict(), "target": None if run.target is None else dict(run.target),
        "created_at": run.created_at, "started_at": run.started_at,
        "finished_at": run.finished_at, "paused_s": run.paused_s, "path_used": run.path_used,
        "has_samples": run.has_samples, "metrics": points_by_name(metrics),
        "checkpoint_folders": list(run_checkpoint_folders(run, repo.url)),
    }  # fmt: skip
    return out


def show_json_text(shown: dict[str, Any]) -> str:
    """``shown`` as indented JSON, but each metric's points on one line: indented, a run
    of 180,000 inputs wrote over 2,000 lines of single numbers."""
    metrics = shown.pop("metrics")
    head = json.dumps(shown, indent=1)
    series = [f"  {json.dumps(name)}: {json.dumps(points)}" for name, points in metrics.items()]
    body = "{\n" + ",\n".join(series) + "\n }" if series else "{}"
    return head[: -len("\n}")] + f',\n "metrics": {body}\n}}'
