"""``resconv-tui worker``: train queued runs one at a time (see ``core.worker``).

The training stack is imported in ``run``: building the CLI parser stays fast.
"""

from __future__ import annotations

import argparse
from typing import Any

from core.early_signals import count_early, release
from core.worker_options import add_worker_arguments
from resconv_tui.cli import add_db_option, db_url


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    parser = subparsers.add_parser(
        "worker",
        help="train queued runs on one device (one at a time, or --slots K at once)",
        description="Claim the highest-priority, oldest queued run, train it, record "
        "metrics and results, repeat. The first SIGINT/SIGTERM stops the current run "
        "at its next step, puts it back in the queue and exits (status 0); a second exits "
        "at once (status 130).",
    )
    add_worker_arguments(parser)
    add_db_option(parser)
    parser.set_defaults(handler=run)
    return parser


def run(args: argparse.Namespace) -> int:
    # First: a stop signal while the worker imports the database layer and torch (its
    # first seconds) stops it as one sent later does, instead of killing it.
    count_early()
    try:
        from core.worker import worker_from_args

        return worker_from_args(args, db_url(args))
    finally:
        release()  # where it never took over: it failed to start
