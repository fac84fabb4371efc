"""``resconv-tui`` with no subcommand: open the dashboard."""

from __future__ import annotations

import argparse


def run(args: argparse.Namespace) -> int:
    from resconv_tui.app import make_app
    from resconv_tui.cli import db_url

    make_app(db_url(args)).run()
    return 0
