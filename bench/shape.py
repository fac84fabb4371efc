"""The network shape options the benchmarks share (default: the logbook's 11-layer 28x28 run)."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from typing import Any

from core.config import RunConfig
from core.errors import ConfigError, ResconvError


def count(low: int = 1, high: int | None = None) -> Callable[[str], int]:
    """An argparse type: a whole number from ``low`` (to ``high``), else argparse's
    one-line usage error (``--stack 0`` was a traceback)."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
        if value < low or (high is not None and value > high):
            most = f" to {high}" if high is not None else " or more"
            raise argparse.ArgumentTypeError(f"{value} is not {low}{most}")
        return value

    return parse


def add_shape_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--layers", type=count(), default=11)
    parser.add_argument("--image-size", type=int, default=28, choices=(28, 32, 64))
    parser.add_argument("--channels", type=count(), default=32)
    parser.add_argument("--batch-size", type=count(), default=64)


def check_inputs(inputs: int, batch_size: int) -> None:
    """Refuse ``--inputs`` below one batch, as sweep files do: training draws whole
    batches, so it trained one whole batch without a word."""
    if inputs < batch_size:
        raise ConfigError(f"--inputs {inputs} is less than one batch ({batch_size})")


def one_line_errors(main: Callable[[], int], prog: str) -> int:
    """``main()``, with a bad value (a config the model refuses, missing data, a device
    this machine lacks, an --out that cannot be written) said in one line, exit 2."""
    try:
        return main()
    except ResconvError as exc:
        print(f"{prog}: {exc.title.lower()}: {exc}", file=sys.stderr)
    except (RuntimeError, OSError) as exc:  # torch.device("gpu"); no CUDA; --out /proc/x
        print(f"{prog}: {str(exc).strip().splitlines()[0]}", file=sys.stderr)
    return 2


def shape_config(args: argparse.Namespace, **more: Any) -> RunConfig:
    """A RunConfig with the shape options of ``args`` and ``more`` (e.g. precision)."""
    return RunConfig(
        layers=args.layers, image_size=args.image_size, channels=args.channels,
        batch_size=args.batch_size, **more,
    )  # fmt: skip
