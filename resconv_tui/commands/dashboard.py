"""``resconv-tui`` with no subcommand: open the dashboard."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from resconv_tui.sweep_writes import ExitNote


def run(args: argparse.Namespace) -> int:
    from resconv_tui.app import make_app
    from resconv_tui.cli import db_option, db_url
    from resconv_tui.preferences import preferences_path

    url = db_url(args)
    app = make_app(url, preferences=preferences_path(), db_option=db_option(args))
    app.run()
    if app.return_code:
        # Textual prints a crash's traceback and sets 1: a script or a shell must see it.
        return app.return_code
    failed = said_on_exit(app.return_value or ())
    if note := still_training(url, db=db_option(args)):
        print(note)
    return 2 if failed else 0


def said_on_exit(notes: Iterable[ExitNote]) -> bool:
    """Print what became of the form's writes the quit waited for (a failed one on
    stderr); whether one failed (the exit status is then 2, as a command's error's)."""
    from core.errors import terminal_safe

    failed = False
    for note in notes:
        print(terminal_safe(note.text), file=sys.stderr if note.failed else sys.stdout)
        failed = failed or note.failed
    return failed


def still_training(url: str, here: str | None = None, db: str = "") -> str | None:
    """After quitting: the workers of this machine that go on training (quitting leaves
    them be, as the README says, but the screen that showed them is gone), and how to
    stop them. None when there are none, or the database cannot tell now. A worker
    already stopping (``w`` pressed before quitting) trains on no more than its step;
    an idle one is said to wait for runs."""
    import socket
    import time

    from core.errors import ResconvError
    from core.processes import registered_by, worker_alive
    from core.queue import Repo
    from core.queue.db import READER_UPGRADE_WAIT_S
    from core.queue.views import ids_of
    from resconv_tui.polling import live_workers_of

    host = here or socket.gethostname()
    try:
        # It only reads: an older version's database is read as it is at once while
        # another process holds its write lock, not after the busy timeout (15 s).
        repo = Repo.open(url, create=False, upgrade_wait_s=READER_UPGRADE_WAIT_S)
        try:
            # A worker row edited by hand is left out (the dashboard named it): raised,
            # it kept this note from naming any worker that trains on.
            workers = repo.workers_and_damaged()[0]
        finally:
            repo.close()
    except ResconvError:  # its error was on screen already, if it matters
        return None
    # The ones `resconv-tui stop` would signal (its rule: live rows of this machine
    # whose process runs), but for those it already asked.
    now = time.time()
    live = [
        w
        for w in live_workers_of(host, workers, now)
        if w.state != "stopping" and worker_alive(w.pid, registered_by(w.started_at, w.age(now)))
    ]
    if not live:
        return None
    # Each pid once: thread slots share one (`stop` signals it once). One training in any
    # slot trains; an idle one waits for runs ("train on" of it was wrong).
    training = sorted({w.pid for w in live if w.state != "idle"})
    waiting = sorted({w.pid for w in live} - set(training))
    if not waiting:
        what = f"train on ({ids_of('pid', training)})"
    elif not training:
        what = f"stay running, waiting for runs ({ids_of('pid', waiting)})"
    else:
        both = f"{ids_of('pid', training)} training, {ids_of('pid', waiting)} waiting for runs"
        what = f"go on ({both})"
    return f"workers of this machine {what}: resconv-tui stop{db} stops them"
