"""The worker's command-line options, shared by ``resconv-tui worker`` and
``python -m core.worker``. Standard library only: building the CLI parser must not
pay for SQLAlchemy or torch.
"""

from __future__ import annotations

import argparse


def add_worker_arguments(parser: argparse.ArgumentParser) -> None:
    """The worker's options, shared by ``resconv-tui worker`` and ``python -m core.worker``."""
    parser.add_argument(
        "--device", default="auto", help="auto (default: first CUDA GPU, else CPU), cpu, cuda:N"
    )
    parser.add_argument(
        "--until-empty", action="store_true", help="exit when no queued run is left"
    )
    parser.add_argument(
        "--max-runs", type=int, default=None, metavar="N", help="exit after N runs ended"
    )
    parser.add_argument(
        "--data-dir",
        default=None,
        metavar="DIR",
        help="dataset folder (default: $RESCONV_DATA, caches)",
    )
    parser.add_argument(
        "--checkpoints", default=None, metavar="DIR",
        help="checkpoint folder (default: checkpoints/ next to the SQLite file)",
    )  # fmt: skip
    add_slots_argument(parser)


def add_slots_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--slots", type=int, default=1, metavar="K",
        help="train up to K runs at once on the device, one worker process each "
        "(default 1; on CUDA a run starts only if its memory fits; --max-runs is per slot)",
    )  # fmt: skip
