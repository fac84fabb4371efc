"""``resconv-tui train FILE.yml --run N``: train one expanded run in the foreground.

For quick checks without a queue or a worker. torch and the training stack are
imported inside ``run`` so that building the CLI parser stays fast and torch-free.
"""

from __future__ import annotations

import argparse
import math
from pathlib import Path
from typing import TYPE_CHECKING, Any

from core.errors import ConfigError, shown
from core.whole_text import plain_whole
from core.worker_options import folder_text

if TYPE_CHECKING:
    from core.sweep import ExpandedRun


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    parser = subparsers.add_parser(
        "train",
        help="train one run of a sweep file in the foreground (no queue)",
        description="Expand FILE.yml and train run N directly, with a progress bar.",
    )
    parser.add_argument("file", metavar="FILE.yml", help="sweep file")
    parser.add_argument(
        "--run", type=run_number, required=True, metavar="N", help="1-based run number"
    )
    parser.add_argument("--device", default="auto", help="auto (default), cpu, cuda, cuda:0 ...")
    parser.add_argument(
        "--data-dir",
        default=None,
        type=folder_text,
        metavar="DIR",
        help="folder with the dataset files",
    )
    parser.add_argument(
        "--checkpoints",
        default=None,
        type=folder_text,
        metavar="DIR",
        help="write last.pt/best.pt/config.json here (replacing those of an earlier run; "
        "refused while another train writes there); without it, no checkpoint is written",
    )
    parser.set_defaults(handler=run)
    return parser


def run_number(text: str) -> int:
    """--run: a whole number from 1 in ASCII digits, as every whole-number option takes;
    which runs there are, ``pick_run`` says."""
    try:
        number = plain_whole(text)
    except ValueError:
        number = 0
    if number < 1:  # runs are numbered from 1, as queue --dry-run lists them
        raise argparse.ArgumentTypeError(
            f"{shown(text)} is not a run number (a whole number from 1)"
        )
    return number


def pick_run(path: str, number: int) -> ExpandedRun:
    """Run ``number`` (1-based) of the sweep file, or a ConfigError saying how many there are."""
    from core.sweep import expand_sweep_file

    runs = expand_sweep_file(path)
    for expanded in runs:
        if expanded.index == number:
            return expanded
    plural = "run" if len(runs) == 1 else "runs"
    numbered = f", numbered 1 to {len(runs)}" if len(runs) > 1 else " (--run 1)"
    raise ConfigError(
        f"run {number} does not exist: {path} expands to {len(runs)} {plural}{numbered}"
    )


def resolve_device(name: str) -> Any:
    """``auto`` -> the first CUDA device if there is one, else the CPU; refuses devices
    this machine lacks or the training cannot use (mps, meta) in one line, as the
    worker does."""
    import torch

    from core.device_choice import resolve_device as checked

    return torch.device(checked(name))


def run(args: argparse.Namespace) -> int:
    """Train the chosen run and print its final figures; 0 on success."""
    if not args.checkpoints:
        return _train(args)
    from core.worker import missing_folders, remove_made

    # The writable check makes the folder before the data loads: one refused then (no
    # dataset, Ctrl-C) left it empty. Removed while still empty; a trained one holds files.
    made = missing_folders(Path(args.checkpoints))
    try:
        return _train(args)
    finally:
        remove_made(made)


def _train(args: argparse.Namespace) -> int:
    from resconv_tui.terminal_output import stdout_console

    console = stdout_console()  # in a pipe as wide as show's text, not rich's 80 columns
    expanded = pick_run(args.file, args.run)
    device = resolve_device(args.device)
    if not args.checkpoints:
        return _fit(args, console, expanded, device)
    from core.run_folders import OWNER_FILE, held_for_train
    from core.worker import check_checkpoint_root

    # Before the data loads and the run trains, not when the first checkpoint is written.
    check_checkpoint_root(Path(args.checkpoints))
    if (Path(args.checkpoints) / OWNER_FILE).exists():  # a worker's folder: not ours
        raise ConfigError(
            f"checkpoint folder {args.checkpoints} holds a queued run's checkpoints "
            f"({OWNER_FILE}): give another folder"
        )
    with held_for_train(Path(args.checkpoints)):
        return _fit(args, console, expanded, device)


def _fit(args: argparse.Namespace, console: Any, expanded: ExpandedRun, device: Any) -> int:
    """Load the run's data, train it with a progress bar, print its final figures."""
    from rich.markup import escape

    # Names and folders as written: `[/]` in one is no markup.
    console.print(
        f"run {expanded.index}: [bold]{escape(expanded.name)}[/] ({escape(expanded.experiment)})"
    )

    from core.data import load_datasets
    from core.train import fit

    config = expanded.config
    with console.status("loading data ..."):
        data = load_datasets(config.dataset, config.image_size, device, data_dir=args.data_dir)
    console.print(f"data: {data.source}, device: {device}", markup=False)
    with _ProgressBar(console, config.max_inputs) as bar:
        result = fit(config, data, device, bar.callbacks(), checkpoint_dir=args.checkpoints)
    _print_result(console, result, config.max_inputs)
    return 0 if math.isfinite(result.validation_loss) else 1


class _ProgressBar:
    """A rich progress bar fed by fit()'s callbacks: inputs done/total, loss, inputs/s.

    The total is max_inputs, as ``ls``, ``show`` and ``show --follow`` count the run, not
    the inputs its whole batches come to (6,016 of max_inputs 6,000 at batch size 64):
    the bar read "/6,016 inputs" where they read 6,000 for the same config. Its last
    batch goes past it (6,016/6,000, as ``show --follow`` says), and the result says why.
    """

    def __init__(self, console: Any, max_inputs: int) -> None:
        from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

        self.total = max_inputs
        self.progress = Progress(
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            TextColumn("{task.completed:,}/{task.total:,} inputs"),
            TextColumn("loss {task.fields[loss]}"),
            TextColumn("{task.fields[speed]} inputs/s"),
            TimeElapsedColumn(),
            console=console,
            # Piped or logged: the validation lines and the result, no bar drawn once at
            # the end into the file.
            disable=not console.is_terminal,
        )
        self.task = self.progress.add_task("training", total=self.total, loss="-", speed="-")

    def __enter__(self) -> _ProgressBar:
        self.progress.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.progress.stop()

    def callbacks(self) -> Any:
        from core.train import FitCallbacks

        return FitCallbacks(on_train_loss=self._on_train, on_validation=self._on_validation)

    def _on_train(self, point: Any) -> None:
        # Every input trained: the last validation pass comes next (the whole test split,
        # minutes for a big model on a CPU), and the bar stood at 640/640 saying
        # "training", its time cut off at 60 columns, as if the train had hung.
        done = point.inputs >= self.total
        self.progress.update(
            self.task,
            description="validating" if done else "training",
            completed=point.inputs,
            loss=f"{point.loss:.4f}",
            speed=f"{point.inputs_per_s:,.0f}",
        )

    def _on_validation(self, point: Any) -> None:
        self.progress.console.print(
            f"validation pass {point.epoch}: L1 {point.loss:.6f} after {point.inputs:,} inputs"
        )


def _print_result(console: Any, result: Any, max_inputs: int) -> None:
    minutes = result.wall_seconds / 60
    # The bar's time and rate were the steps' (its rate the last few steps'); the wall
    # time holds the validation passes and checkpoints too: say which is which.
    steps_s = result.inputs_seen / result.inputs_per_s if result.inputs_per_s else None
    of_which = f", {steps_s:.1f} s of it training steps" if steps_s is not None else ""
    lines = [
        f"validation loss: [bold]{result.validation_loss:.6f}[/] (last pass)",
        f"params:          {result.param_count:,}",
        f"wall time:       {result.wall_seconds:.1f} s ({minutes:.2f} min){of_which}",
        f"inputs/s:        {result.inputs_per_s:,.0f} over the training steps "
        f"({_inputs_seen(result.inputs_seen, max_inputs)}, {result.steps:,} steps, "
        f"{result.path_used})",
    ]
    if result.checkpoint_path:
        lines.append(f"checkpoints:     {Path(result.checkpoint_path)}")
    for line in lines:
        console.print(line, markup=line is lines[0])  # folders as written: no markup


def _inputs_seen(seen: int, max_inputs: int) -> str:
    """The inputs trained, with why they pass max_inputs (as the run detail says it)."""
    if seen > max_inputs:
        # Training stops after the batch that reaches max_inputs, and that batch is whole.
        return f"{seen:,} inputs: max_inputs {max_inputs:,} in whole batches"
    return f"{seen:,} inputs"
