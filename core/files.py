"""Writing a file so that a crash never leaves half of it behind."""

from __future__ import annotations

import os
import re
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO


def _process_umask() -> int:
    mask = os.umask(0o022)  # reading it means setting it: once, at import, not per thread
    os.umask(mask)
    return mask


# The mode a plain open() gives a new file: mkstemp's 0600 made saved sweep files and
# checkpoints readable by their owner alone, unlike every other file the person makes.
NEW_FILE_MODE = 0o666 & ~_process_umask()


def atomic_write(path: Path, write: Callable[[BinaryIO], object]) -> None:
    """``write(handle)`` into a temporary file beside ``path``, then rename it to ``path``.

    Readers see the old file or the whole new one; on any error the temporary file goes.
    The file gets the mode ``path`` had, else a new file's (the umask's). Its bytes reach
    the disk before the rename, and the rename before this returns: a power cut (not
    only a killed process) leaves the old file or the new one, never an empty one.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        mode = path.stat().st_mode & 0o7777
    except OSError:
        mode = NEW_FILE_MODE
    fd, temp = tempfile.mkstemp(dir=path.parent, prefix=_temp_prefix(path.name))
    try:
        with os.fdopen(fd, "wb") as handle:
            write(handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(temp, mode)
        os.replace(temp, path)
    except BaseException:
        Path(temp).unlink(missing_ok=True)
        raise
    _sync_folder(path.parent)


# Marks a temporary file as ``atomic_write``'s: named ``.last.pt.`` and mkstemp's 8
# characters alone (as older versions named them), a person's ``.last.pt.20240101`` read
# as one, and a run's next attempt removed it.
TEMP_MARK = "resconv-partial"


# A file name's bytes (Linux's NAME_MAX), and the longest pid (Linux's pid_max, 2**22).
NAME_MAX_BYTES = 255
PID_DIGITS = 7
# What a temporary name adds to the name it is of: '.', '.resconv-partial-', the pid, '.'
# and mkstemp's 8 characters.
_TEMP_EXTRA_BYTES = 1 + len(f".{TEMP_MARK}-") + PID_DIGITS + 1 + 8


def _temp_prefix(name: str) -> str:
    """``.last.pt.resconv-partial-PID.``: whose file it is and which process writes it."""
    return f".{_temp_stem(name)}.{TEMP_MARK}-{os.getpid()}."


def _temp_stem(name: str) -> str:
    """``name`` cut to leave room for the rest of its temporary file's name: in full, a
    sweep saved under a 240-byte name (which fits) failed as "File name too long"."""
    while len(os.fsencode(name)) > NAME_MAX_BYTES - _TEMP_EXTRA_BYTES:
        name = name[:-1]  # whole characters: a 実 is not cut into bytes
    return name


def is_temp_of(file_name: str, name: str) -> bool:
    """Whether ``file_name`` is a temporary file ``atomic_write`` makes for ``name``
    (``.last.pt.resconv-partial-4242.k2x_9qab``), left behind by a process killed while
    it wrote: the marked prefix, a pid, and mkstemp's eight random lowercase letters,
    digits or ``_``, nothing else. An older version's (``.last.pt.k2x_9qab``) cannot be
    told from a person's file, so is not one."""
    pattern = re.escape(f".{_temp_stem(name)}.{TEMP_MARK}-") + r"[0-9]+\.[a-z0-9_]{8}"
    return re.fullmatch(pattern, file_name) is not None


def _sync_folder(folder: Path) -> None:
    """Make a rename in ``folder`` durable; best effort (some file systems cannot)."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


# How every SQLite 3 database file starts: told by it, a queue's database given where a
# sweep file is wanted is named for what it is, not as "not UTF-8 text".
SQLITE_HEADER = b"SQLite format 3\x00"


# The SQLite files this process has opened (``core.queue.db.open_engine`` adds them).
# Closing any descriptor of a file drops every POSIX lock the process holds on it, its
# SQLite connections' too: no other reader in this process may open one of them.
_DATABASE_FILES: set[Path] = set()


def note_database_file(path: Path) -> None:
    """Note ``path`` as a SQLite file this process opens (``held_database_file``)."""
    _DATABASE_FILES.add(path.absolute())


def held_database_file(path: Path) -> Path | None:
    """The SQLite database this process opened that ``path`` is, or is the -wal or -shm
    file of (through a link too, by its inode), else None. Reading such a file, then
    closing it, drops the process's SQLite locks (the dashboard's f3 given runs.db):
    a worker's writes then vanish from the file."""
    try:
        given = path.stat()
    except OSError:
        return None
    for database in _DATABASE_FILES:
        for name in (database.name, f"{database.name}-wal", f"{database.name}-shm"):
            try:
                found = database.with_name(name).stat()
            except OSError:
                continue
            if (found.st_dev, found.st_ino) == (given.st_dev, given.st_ino):
                return database
    return None
