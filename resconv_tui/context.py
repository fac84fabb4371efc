"""What every dashboard screen needs: the queue, a clock and a way to start workers.

Passed explicitly (not read from ``self.app``) so screens can be tested alone and
tests can freeze the clock or swap the worker launcher for a fake.
"""

from __future__ import annotations

import socket
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from core.queue import Repo
from core.queue import views as v
from core.queue.db import describe, hint_option, normalize_url, sqlite_path, sqlite_url
from resconv_tui.polling import HeardBeats
from resconv_tui.worker_launcher import DEFAULT_WORKER, WorkerLauncher, WorkerOptions


@dataclass(frozen=True)
class ResultsChoices:
    """How the results screen (R) shows the runs: kept here, as each R opens a new screen,
    so leaving it and coming back shows the same view for the dashboard's session."""

    sort_column: str = v.LOSS  # validation loss, as in the logbook
    descending: bool = False
    hidden: frozenset[str] = frozenset({v.RATE, v.MEMORY})
    experiment: str | None = None  # None: all
    by_cell: bool = False  # one row per sweep cell (g)


@dataclass
class DashboardContext:
    repo: Repo
    db_url: str
    clock: Callable[[], float] = time.time
    launcher: WorkerLauncher = field(default_factory=WorkerLauncher)
    poll_interval_s: float = 1.0
    export_dir: Path = field(default_factory=Path.cwd)
    hostname: str = field(default_factory=socket.gethostname)  # whose workers `w` may signal
    worker_options: WorkerOptions = DEFAULT_WORKER  # the start dialog's last choice
    # A started worker is watched this long (torch's import and CUDA's start come before
    # its checks): if it exits meanwhile, its log's last line says why.
    launch_watch_s: float = 30.0
    launch_poll_s: float = 1.0
    stopping_pids: set[int] = field(default_factory=set)  # local workers `w` already signalled
    last_stop_at: float = 0.0  # when `w` last stopped workers (time.time())
    # The worker `w` last started: (pid, time.time()) until its row is there (it imports
    # torch first: about 10 s on a CPU box, the panel said "no workers" meanwhile).
    starting: tuple[int, float] | None = None
    preferences: Path | None = None  # where worker_options persist (None: this session only)
    notes: list[str] = field(default_factory=list)  # said once the dashboard shows
    results: ResultsChoices = ResultsChoices()  # the results screen's last view
    # The running runs' beats as the dashboard's polls read them (the runs screen's and
    # the run detail's): their silence timed by this process's own clock, not by a beat's
    # age, as each box writes its beats with its own clock (``polling.HeardBeats``).
    heard: HeardBeats = field(default_factory=HeardBeats)
    # The `` --db X`` of the dashboard's command line (``cli.db_option``: empty where
    # --db was not given), for the commands it suggests; None where no command line
    # started it (tests): this database's own (``db_hint``).
    db_option: str | None = None

    @property
    def db_name(self) -> str:
        """Short name for titles: the SQLite file's name, or the URL without password."""
        path = sqlite_path(self.db_url)
        return path.name if path is not None else describe(self.db_url)

    @property
    def db_hint(self) -> str:
        """`` --db X`` for a command the dashboard suggests, as `show` writes it: none
        where the dashboard was started without --db, as its shell's ./runs.db (or
        $RESCONV_DB) is this database ("--db sqlite:///runs.db" said what it need not)."""
        return hint_option(self.db_url) if self.db_option is None else self.db_option

    @property
    def worker_db_url(self) -> str:
        """The URL a worker started from here should use (absolute: it may chdir)."""
        path = sqlite_path(self.db_url)
        if path is None:
            return normalize_url(self.db_url)
        return sqlite_url(path.resolve())
