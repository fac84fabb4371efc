"""The network shape options the benchmarks share (default: the logbook's 11-layer 28x28 run)."""

from __future__ import annotations

import argparse
from typing import Any

from core.config import RunConfig


def add_shape_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--layers", type=int, default=11)
    parser.add_argument("--image-size", type=int, default=28, choices=(28, 32, 64))
    parser.add_argument("--channels", type=int, default=32)
    parser.add_argument("--batch-size", type=int, default=64)


def shape_config(args: argparse.Namespace, **more: Any) -> RunConfig:
    """A RunConfig with the shape options of ``args`` and ``more`` (e.g. precision)."""
    return RunConfig(
        layers=args.layers, image_size=args.image_size, channels=args.channels,
        batch_size=args.batch_size, **more,
    )  # fmt: skip
