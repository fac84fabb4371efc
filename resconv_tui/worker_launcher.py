"""Start and stop training workers as detached processes.

The TUI and workers share nothing but the database, so a worker started from the
dashboard runs in its own session (``start_new_session=True``): closing the TUI,
Ctrl-C in its terminal or a dropped SSH connection (SIGHUP to the session) never
reaches it. Stopping is a SIGTERM to the pid the worker recorded in its row; the
worker treats the first signal as "finish cleanly".
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Launched:
    """A worker process this dashboard started (it registers itself in the DB later)."""

    pid: int
    log_path: Path
    started_at: float


def worker_command(db_url: str, device: str = "auto") -> list[str]:
    """The argv of a worker; ``auto`` lets the worker pick CUDA or CPU (the TUI is torch-free)."""
    return [sys.executable, "-m", "resconv_tui", "worker", "--db", db_url, "--device", device]


def default_log_path(folder: Path | None = None) -> Path:
    stamp = time.strftime("%Y%m%d-%H%M%S")
    return (folder or Path.cwd()) / f"resconv-worker-{stamp}-{os.getpid()}.log"


class WorkerLauncher:
    """Starts workers detached and signals them; tests swap in a fake with the same methods."""

    def __init__(self, log_folder: Path | None = None) -> None:
        self.log_folder = log_folder

    def start(self, db_url: str, device: str = "auto") -> Launched:
        log_path = default_log_path(self.log_folder)
        with open(log_path, "ab") as log:
            process = subprocess.Popen(
                worker_command(db_url, device),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                close_fds=True,
            )
        return Launched(pid=process.pid, log_path=log_path, started_at=time.time())

    def stop(self, pid: int) -> bool:
        """SIGTERM ``pid``; False when no such process exists (already gone, or another host)."""
        try:
            os.kill(pid, signal.SIGTERM)
        except ProcessLookupError:
            return False
        except PermissionError:
            return False
        return True

    def alive(self, pid: int) -> bool:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            return True  # exists, owned by someone else
        return _not_zombie(pid)


def _not_zombie(pid: int) -> bool:
    # A child we started and never waited for stays a zombie after exiting: not alive.
    stat = Path(f"/proc/{pid}/stat")
    try:
        return stat.read_text().split(") ", 1)[1][0] != "Z"
    except (OSError, IndexError):
        return True
