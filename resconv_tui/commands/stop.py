"""``resconv-tui stop``: stop this machine's workers, as the dashboard's ``w`` does.

Every live worker process of this machine gets one SIGTERM: it finishes its current
step, puts its run back in the queue and exits (all slots of ``--slots K``; thread
slots share one pid). A worker already asked (its row says ``stopping``) is left alone,
since a second signal means "exit at once": ``--now`` sends it on purpose.
"""

from __future__ import annotations

import argparse
import socket
import time
from typing import Any

from resconv_tui.cli import add_db_option, open_repo


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    parser = subparsers.add_parser(
        "stop",
        help="stop this machine's workers after their current step (runs go back to the queue)",
        description="Send each live worker process of this machine one SIGTERM: it "
        "finishes its step, puts its run back in the queue and exits.",
    )
    parser.add_argument(
        "--now", action="store_true",
        help="also signal workers already stopping: they put their runs back and exit at once",
    )  # fmt: skip
    add_db_option(parser)
    parser.set_defaults(handler=run)
    return parser


def run(args: argparse.Namespace) -> int:
    from resconv_tui.polling import worker_health
    from resconv_tui.worker_launcher import WorkerLauncher

    repo = open_repo(args)
    now, host = time.time(), socket.gethostname()
    here = [w for w in repo.list_workers() if w.host == host]
    live = [w for w in here if worker_health(w, now) != "offline"]
    launcher = WorkerLauncher()
    live = [w for w in live if launcher.alive(w.pid)]
    asked_before = {w.pid for w in live if w.state == "stopping"}
    pids = sorted({w.pid for w in live} - (set() if args.now else asked_before))
    if not pids:
        if asked_before:
            listed = ", ".join(map(str, sorted(asked_before)))
            print(f"worker pid {listed} already stopping (--now: stop at once)")
        else:
            print(f"no live worker on {host}")
        return 0
    signalled = [pid for pid in pids if launcher.stop(pid)]
    how = "exit at once" if args.now else "stop after the current step"
    print(f"asked worker pid {', '.join(map(str, signalled))} to {how}; runs go back to the queue")
    return 0
