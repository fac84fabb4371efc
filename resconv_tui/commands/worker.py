"""``resconv-tui worker``: train queued runs one at a time (see ``core.worker``).

The training stack is imported in ``run``: building the CLI parser stays fast.
"""

from __future__ import annotations

import argparse
from typing import Any

from resconv_tui.cli import add_db_option, db_url


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    parser = subparsers.add_parser(
        "worker",
        help="train queued runs on one device (one at a time, or --slots K at once)",
        description="Claim the highest-priority, oldest queued run, train it, record "
        "metrics and results, repeat. The first SIGINT/SIGTERM stops the current run "
        "at its next step, puts it back in the queue and exits; a second exits at once.",
    )
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
        "--data-dir", default=None, metavar="DIR", help="dataset folder (else $RESCONV_DATA)"
    )
    parser.add_argument(
        "--checkpoints",
        default=None,
        metavar="DIR",
        help="checkpoint folder (default: checkpoints/ next to the SQLite file)",
    )
    parser.add_argument(
        "--slots", type=int, default=1, metavar="K",
        help="train up to K runs at once on the device, one worker process each "
        "(default 1; on CUDA a run starts only if its memory fits; --max-runs is per slot)",
    )  # fmt: skip
    add_db_option(parser)
    parser.set_defaults(handler=run)
    return parser


def run(args: argparse.Namespace) -> int:
    from core.worker import worker_from_args

    return worker_from_args(args, db_url(args))
