"""Where a run's checkpoints are on disk, for ``rm``, ``show`` and the run detail.

The row's ``checkpoint_path`` names the folder of the run's last attempt that recorded
one; a run whose worker was lost never recorded it, and older versions cleared it when a
run was put back or retried. The folder is still the run's: its ``run.json`` names the
run (``core.run_folders``), so it is found by the same rule a worker picks it by, under
the checkpoint root a worker of this database uses without ``--checkpoints`` and under
the root of the folder the row names.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from core.queue import RunRow


def run_checkpoint_folders(run: RunRow, db_url: str) -> tuple[str, ...]:
    """The folders holding ``run``'s checkpoints: the one its row names first, then the
    others found on disk, each once, as absolute paths."""
    from core.queue.db import sqlite_path
    from core.run_folders import default_root, experiment_folder, folders_owned, run_owner

    roots = [default_root(sqlite_path(db_url))]
    named = [run.checkpoint_path] if run.checkpoint_path else []
    if named:  # run-ID sits in the experiment's folder, under the worker's root
        roots.append(Path(named[0]).parent.parent)
    owner = run_owner(run.id, run.experiment, run.config_hash, run.created_at)
    found = [
        str(folder)
        for root in dict.fromkeys(Path(os.path.abspath(root)) for root in roots)
        for folder in folders_owned(root / experiment_folder(run.experiment), run.id, owner)
    ]
    # Once each, as the kernel resolves them (a worker's root given as "a/../ck").
    each: dict[str, str] = {}
    for folder in [*named, *found]:
        each.setdefault(os.path.realpath(folder), folder)
    return tuple(each.values())


def shown_folders(run: RunRow, db_url: str) -> tuple[str, ...]:
    """``run_checkpoint_folders`` as ``core.errors.terminal_safe`` writes each, for a
    view on a terminal (``show``, the run detail): a path is anyone's text."""
    from core.errors import terminal_safe

    return tuple(terminal_safe(folder) for folder in run_checkpoint_folders(run, db_url))
