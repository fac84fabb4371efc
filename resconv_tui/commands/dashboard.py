"""``resconv-tui`` with no subcommand: open the dashboard."""

from __future__ import annotations

import argparse


def run(args: argparse.Namespace) -> int:
    from resconv_tui.app import make_app
    from resconv_tui.cli import db_url
    from resconv_tui.preferences import preferences_path

    app = make_app(db_url(args), preferences=preferences_path())
    app.run()
    # Textual prints a crash's traceback and sets 1: a script or a shell must see it too.
    return app.return_code or 0
