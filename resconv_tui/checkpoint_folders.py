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
from collections.abc import Sequence
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
    named = [_row_folder(run.checkpoint_path, sqlite_path(db_url))] if run.checkpoint_path else []
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


def _row_folder(stored: str, database_file: Path | None) -> str:
    """The folder a row names, absolute. A CLI worker before checkpoint paths were stored
    absolute wrote it relative to its working folder, most often the database's (``--db
    runs.db``): read against this one's, it was named "not found on this host" beside
    the same folder found by its ``run.json``. Against the database's folder where it is
    there, else this working folder's (a server's database)."""
    if os.path.isabs(stored):
        return stored
    if database_file is not None and os.path.isdir(beside := database_file.parent / stored):
        return os.path.abspath(beside)
    return os.path.abspath(stored)


NOT_HERE = "not found on this host"


def found_here(folder: str, run: RunRow) -> bool:
    """Whether ``run``'s folder ``folder`` (its row's) is on this machine. A shared queue
    (PostgreSQL) holds the absolute folders of every box's workers: on another box, or
    deleted since, it is not here, and naming it as if it were sends a person looking in
    vain. Nor is it where that path here holds another run's (its ``run.json`` says:
    another database's run of the same id, made by a worker of this box)."""
    from core.run_folders import names_another, run_owner

    owner = run_owner(run.id, run.experiment, run.config_hash, run.created_at)
    return os.path.isdir(folder) and not names_another(folder, owner)


def shown_folders(run: RunRow, db_url: str) -> tuple[str, ...]:
    """``run_checkpoint_folders`` as ``core.errors.terminal_safe`` writes each, for a
    view on a terminal (``show``, the run detail): a path is anyone's text. One not on
    this host says so; of several (attempts under other ``--checkpoints``), each says
    which attempt's files it holds, where its ``run.json`` says."""
    from core.errors import terminal_safe

    folders = run_checkpoint_folders(run, db_url)
    return tuple(
        terminal_safe(folder) + _folder_note(folder, run, several=len(folders) > 1)
        for folder in folders
    )


def _folder_note(folder: str, run: RunRow, several: bool) -> str:
    """`` (not found on this host)``, `` (attempt 2)`` of one of several, or nothing."""
    from core.run_folders import folder_attempt

    if not found_here(folder, run):
        return f" ({NOT_HERE})"
    attempt = folder_attempt(folder) if several else None
    return f" (attempt {attempt})" if attempt is not None else ""


def left_on_disk(runs: Sequence[RunRow], db_url: str) -> list[str]:
    """What removing ``runs`` leaves of their checkpoints, as ``rm`` prints it: one line
    of each kind (``folders_left``), its folders after a colon."""
    return [f"{what}: {', '.join(folders)}" if folders else what
            for what, folders in folders_left(runs, db_url)]  # fmt: skip


def folders_left(runs: Sequence[RunRow], db_url: str) -> list[tuple[str, list[str]]]:
    """What removing ``runs`` leaves of their checkpoints: what is said, and the folders
    it is said of (none for runs whose folders are not known). ``rm`` prints them, the
    dashboard's ``x`` says them after what it removed. The files are the person's to
    delete: named as found on disk too (runs lost with their worker, or put back or
    retried by an older version, have none on their row); one its row names that is not
    on this host (another box's, on a shared queue) is said so. Every run that started may
    have one where it was not looked for (another --checkpoints, another box); one
    queued again has trained before: ``attempts``."""
    from core.queue.views import ids_of

    found = {run.id: run_checkpoint_folders(run, db_url) for run in runs}
    started = [run for run in runs if run.started_at is not None or run.attempts > 0]
    unnamed = [run.id for run in started if not found[run.id]]
    here = sorted({f for run in runs for f in found[run.id] if found_here(f, run)})
    elsewhere = sorted({f for run in runs for f in found[run.id] if not found_here(f, run)})
    said: list[tuple[str, list[str]]] = []
    if here:
        said.append(("checkpoint folders stay on disk", here))
    if elsewhere:
        said.append((f"checkpoint folders {NOT_HERE} (another machine's?)", elsewhere))
    if unnamed:
        said.append(
            (f"the checkpoint folders of {ids_of('run', unnamed)}, if made, stay on disk", [])
        )
    return said
