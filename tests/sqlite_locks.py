"""SQLite set-ups the queue's lock tests share: another process's write lock held on a
database file, and a database as the versions before the claim rules made it."""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

# The only columns a newer version has added to a table (the worker's claim rules, a
# run's paused seconds): a database without them is an older version's.
NEWER_WORKER_COLUMNS = ("stack", "largest_first", "max_runs")
NEWER_RUN_COLUMNS = ("paused_s",)


@contextmanager
def write_lock_held(db: Path, release_after_s: float | None = None) -> Iterator[None]:
    """Another connection's write lock (``BEGIN IMMEDIATE``) on the SQLite file ``db``
    for the block, as another process's would be; ``release_after_s``: let go that long
    after the block begins, from a timer thread (the block's end waits for it)."""
    holder = sqlite3.connect(db, isolation_level=None, check_same_thread=False)
    holder.execute("BEGIN IMMEDIATE")
    timer = None
    if release_after_s is not None:
        timer = threading.Timer(release_after_s, holder.rollback)
        timer.start()
    try:
        yield
    finally:
        if timer is not None:
            timer.join()
        holder.rollback()  # nothing to roll back once the timer has
        holder.close()


def drop_newer_columns(db: Path) -> None:
    """The worker and run tables of ``db`` as the versions before the claim rules and
    the paused seconds made them. A ``Repo.open`` after this adds the columns back: rows
    go in before it."""
    with sqlite3.connect(db) as conn:
        for column in NEWER_WORKER_COLUMNS:
            conn.execute(f'ALTER TABLE "worker" DROP COLUMN "{column}"')
        for column in NEWER_RUN_COLUMNS:
            conn.execute(f'ALTER TABLE "run" DROP COLUMN "{column}"')
