"""``resconv-tui cancel|retry|rm|next ID...``: change runs (all or nothing).

One unknown id, or one run in a status the change does not apply to, changes
no run and exits with one line saying which.
"""

from __future__ import annotations

import argparse
from typing import Any

from resconv_tui.cli import add_db_option, open_repo


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    commands = (
        ("cancel", cancel, "cancel queued runs; stop running runs within seconds"),
        ("retry", retry, "queue failed or cancelled runs again"),
        ("rm", remove, "delete runs and their metrics (cancel running runs first)"),
        ("next", run_next, "train these queued runs next"),
    )
    parser = None
    for name, handler, text in commands:
        parser = subparsers.add_parser(
            name, help=text, description=text[0].upper() + text[1:] + "."
        )
        parser.add_argument("ids", nargs="+", type=run_id, metavar="ID", help="run id")
        add_db_option(parser)
        parser.set_defaults(handler=handler)
    assert parser is not None
    return parser


def run_id(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"'{text}' is not a run id (a whole number)") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"'{text}' is not a run id (ids start at 1)")
    return value


def cancel(args: argparse.Namespace) -> int:
    from core.queue import RunStatus

    for rid, status in open_repo(args).request_cancel(args.ids).items():
        if status == RunStatus.CANCELLED:
            print(f"run {rid}: cancelled")
        else:
            print(f"run {rid}: cancel requested (its worker stops it within a few seconds)")
    return 0


def retry(args: argparse.Namespace) -> int:
    open_repo(args).retry(args.ids)
    print("queued again: " + ", ".join(map(str, args.ids)))
    return 0


def remove(args: argparse.Namespace) -> int:
    removed = open_repo(args).remove(args.ids)
    print(f"removed {removed} run{'s' if removed != 1 else ''}")
    return 0


def run_next(args: argparse.Namespace) -> int:
    priority = open_repo(args).move_to_front(args.ids)
    print(f"priority {priority}: " + ", ".join(map(str, args.ids)) + " train next")
    return 0
