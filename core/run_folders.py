"""Which folder a queued run's checkpoints go to, without taking another run's.

Kept apart from ``core.checkpoint`` (which needs torch): the worker picks the folder
before it imports anything that trains.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import itertools
import json
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from core.errors import ConfigError
from core.files import atomic_write, is_temp_of

OWNER_FILE = "run.json"  # which queued run a worker's folder belongs to
LAST_FILE = "last.pt"  # an attempt's checkpoints (core.checkpoint writes them)
BEST_FILE = "best.pt"
TRAIN_LOCK = ".resconv-train.lock"  # held by the `train --checkpoints` writing the folder
FOLDER_BYTES = 200  # a file name may have 255 bytes; 100 characters of 実験 are 300


def experiment_folder(experiment: str) -> str:
    """A file name made from an experiment's name (its checkpoints' folder, the results
    exports): letters, digits and ``-_.`` kept, the rest ``_``; no leading dots (``..``
    would leave the checkpoint folder); a name too long in UTF-8 cut, with a hash of the
    whole name to keep it apart from others."""
    safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in experiment).lstrip(".")
    if len(safe.encode()) > FOLDER_BYTES:
        digest = hashlib.sha256(experiment.encode()).hexdigest()[:8]
        while len(safe.encode()) > FOLDER_BYTES - 9:
            safe = safe[:-1]
        safe = f"{safe}-{digest}"
    return safe or "runs"


def default_root(database_file: Path | None) -> Path:
    """The checkpoint root of a worker without ``--checkpoints``: next to a SQLite
    database file (runs.db -> checkpoints/), else (a server's database) ./checkpoints."""
    return (database_file.parent if database_file is not None else Path.cwd()) / "checkpoints"


def run_owner(run_id: int, experiment: str, config_hash: str, queued_at: float) -> dict[str, Any]:
    """What a run's ``run.json`` says of it: the same run again (put back, retried) has
    the same owner, another database's run of the same id another one."""
    return {"run": run_id, "experiment": experiment, "config_hash": config_hash,
            "queued_at": queued_at}  # fmt: skip


def claim_run_folder(
    parent: Path, run_id: int, owner: dict[str, Any], about: dict[str, Any] | None = None
) -> Path:
    """The folder a queued run's checkpoints go to: ``parent/run-ID``, unless that folder
    holds another run's files, then ``run-ID-2``, ``-3``, ...

    Run ids are only unique within one database: two databases in one folder share the
    default checkpoint folder (both have a run 1), as does a database deleted and made
    again, while the old runs' checkpoints stay. ``owner`` (the
    run's id, experiment, config hash and when it was queued) is written to ``run.json``:
    the same run again (a retry) takes its folder back, any other run finds another one.
    A folder taken back is left as it is: the earlier attempt's weights (and its
    ``run.json``) go only once this attempt starts (``start_attempt``), since a claim
    put back as never made (no dataset on this machine) must not have lost them.
    A folder with files but no ``run.json`` (written before it existed) is someone's.
    ``about`` goes into ``run.json`` for people (which database, which attempt: see
    ``folder_attempt``), not compared: a database moved to another path keeps its
    runs' folders.
    """
    for number in itertools.count(1):
        folder = parent / (f"run-{run_id}" if number == 1 else f"run-{run_id}-{number}")
        try:
            folder.mkdir(parents=True, exist_ok=True)
            if _take(folder, {**owner, **(about or {})}) or _owned_by(folder, owner):
                return folder
        except (FileExistsError, NotADirectoryError):  # a file by that name
            continue
        except PermissionError:
            # A folder by that name this user may not look into is another user's run's
            # (two databases share the default folder): the next name. One it could not
            # make means the experiment's folder is not writable: the worker stops.
            if not os.path.lexists(folder):
                raise
            continue
    raise AssertionError("unreachable")  # itertools.count never ends


def _take(folder: Path, owner: dict[str, Any]) -> bool:
    """Write ``owner`` as the folder's ``run.json`` unless the folder is someone's: it
    has a ``run.json``, or files from before ``run.json`` existed. The file is created
    exclusively: of two workers racing, one takes the folder (making the folder alone
    would let the slower one find it empty and take it too)."""
    if any(folder.iterdir()):
        return False
    try:
        fd = os.open(folder / OWNER_FILE, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    except FileExistsError:
        return False
    try:
        with os.fdopen(fd, "w") as handle:
            json.dump(owner, handle)
    except BaseException:  # e.g. a full disk: an empty run.json made the folder nobody's
        (folder / OWNER_FILE).unlink(missing_ok=True)
        raise
    return True


def start_attempt(folder: Path, owner: dict[str, Any]) -> None:
    """An attempt of the run starts in its folder (its data found, its model not built
    yet): ``owner`` is written as its ``run.json`` (what it says for people, which
    attempt, is this attempt's now), then the earlier attempt's ``last.pt`` and
    ``best.pt`` are removed (its ``config.json`` is the same run's, written again by
    this attempt). The row, ``show`` and the run detail name the folder as this
    attempt's, so an attempt that fails or is stopped before its first validation pass
    must leave none there. ``run.json`` first: a folder that refuses writes (read-only,
    a full disk) refuses it before any weights are gone, and the worker, stopping for
    its checkpoint folder, puts the run back with its earlier attempt's files whole."""
    atomic_write(folder / OWNER_FILE, lambda handle: handle.write(json.dumps(owner).encode()))
    clear_checkpoints(folder)


def refuse_unwritable(folder: Path) -> None:
    """Raises the OSError a new file in ``folder`` meets (a folder made read-only, the
    file named), if any; the file, unnamed where the kernel can, goes at once."""
    with tempfile.TemporaryFile(dir=folder):
        pass


def clear_checkpoints(folder: Path) -> None:
    """Remove ``last.pt`` and ``best.pt`` from ``folder``, and the temporary files of
    their saves (``.last.pt.resconv-partial-4242.k2x_9qab``, ``core.files``) that a
    process killed mid-save left, each up to the model's size, which nothing else
    removes. Nothing else: a person's own files there stay."""
    names = (LAST_FILE, BEST_FILE)
    for entry in folder.iterdir():
        if any(is_temp_of(entry.name, name) for name in names):
            entry.unlink(missing_ok=True)
    for name in names:
        (folder / name).unlink(missing_ok=True)


def folder_attempt(folder: str | os.PathLike[str]) -> int | None:
    """The attempt whose files a run's folder holds, as its ``run.json`` says (a worker
    writes the run's attempt there as it claims it); None where it does not say (a
    folder of an older version, a ``run.json`` unreadable)."""
    try:
        attempt = json.loads((Path(folder) / OWNER_FILE).read_text()).get("attempt")
    except (OSError, ValueError, AttributeError):
        return None
    return attempt if isinstance(attempt, int) and not isinstance(attempt, bool) else None


def _owned_by(folder: Path, owner: dict[str, Any]) -> bool:
    found = _owner_written(folder)
    return found is not None and all(found.get(k) == v for k, v in owner.items())


def _owner_written(folder: Path) -> dict[str, Any] | None:
    """The owner ``folder``'s ``run.json`` names; None where it names none (missing,
    unreadable, damaged)."""
    try:
        found = json.loads((folder / OWNER_FILE).read_text())
    except (OSError, ValueError):
        return None
    return found if isinstance(found, dict) else None


def names_another(folder: str | os.PathLike[str], owner: dict[str, Any]) -> bool:
    """Whether ``folder``'s ``run.json`` names another run than ``owner``: the same path
    on this box is another database's run of that id (a shared queue's row names another
    box's folder). A folder without one (an older version's), or whose one is unreadable
    or damaged, says nothing of whose it is: read as naming another, a person's own
    folder was "not found on this host"."""
    found = _owner_written(Path(folder))
    return found is not None and any(found.get(k) != v for k, v in owner.items())


def folders_owned(parent: Path, run_id: int, owner: dict[str, Any]) -> list[Path]:
    """The folders in ``parent`` that ``claim_run_folder`` gave this run (``run-ID``,
    ``run-ID-2``, ...; its ``run.json`` names ``owner``): where its checkpoints are,
    though the run's row no longer says (an older version cleared it on a put-back or a
    retry; a worker lost never wrote it). The names are read up to the first one that is
    not there, as ``claim_run_folder`` takes the first free one."""
    found: list[Path] = []
    for number in itertools.count(1):
        folder = parent / (f"run-{run_id}" if number == 1 else f"run-{run_id}-{number}")
        if not os.path.lexists(folder):
            return found
        if _owned_by(folder, owner):
            found.append(folder)
    raise AssertionError("unreachable")  # itertools.count never ends


@contextlib.contextmanager
def held_for_train(folder: Path) -> Iterator[None]:
    """``folder`` held by this ``train --checkpoints`` while it trains: a second one into
    it is refused, naming the first's pid, where each removed the other's ``last.pt``
    and ``best.pt`` and wrote over them. A lock (``flock``) on ``TRAIN_LOCK``, which the
    kernel lets go of when the process ends however it ends (a killed train leaves no
    folder held); the file goes when the train ends."""
    path = folder / TRAIN_LOCK
    fd = _locked(path)
    try:
        os.ftruncate(fd, 0)
        os.write(fd, str(os.getpid()).encode())
        yield
    finally:
        path.unlink(missing_ok=True)  # before the lock goes: a train after it makes its own
        os.close(fd)


def _locked(path: Path) -> int:
    """A writable descriptor of ``path`` (made if missing) locked for this process, or
    the ConfigError naming the process that holds it."""
    while True:
        fd, writable = _lock_file_opened(path)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.read(fd, 32).decode(errors="replace").strip() or "?"
            os.close(fd)
            raise ConfigError(
                f"checkpoint folder {path.parent} is in use by another train (pid {holder}): "
                "wait for it to end or give another folder"
            ) from None
        with contextlib.suppress(OSError):
            if os.fstat(fd).st_ino == os.lstat(path).st_ino:
                if writable:
                    return fd
                _remove_left_lock(path)  # held by none: this process holds its lock
        os.close(fd)  # the file its holder removed as it ended, not the one there now


def _lock_file_opened(path: Path) -> tuple[int, bool]:
    """A descriptor of ``path`` and whether it can be written: read-only where the file
    is another user's, left by a train killed before it could remove it (SIGTERM,
    SIGKILL): enough to see whether that train still holds it. Opening it
    writable only, a second user's train into a shared folder ended in a traceback.
    Never through a link (O_NOFOLLOW): one planted there had the train empty the file
    it points to and write its pid in it."""
    try:
        return os.open(path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, 0o644), True
    except PermissionError:
        pass
    except OSError as error:
        raise _lock_file_error(path, error) from None
    try:
        return os.open(path, os.O_RDONLY | os.O_NOFOLLOW), False
    except OSError as error:
        raise _lock_file_error(path, error) from None


def _remove_left_lock(path: Path) -> None:
    """Remove ``path``, another user's lock file no train holds, for this train to make
    its own; a ConfigError naming it where it cannot be (a sticky folder such as /tmp)."""
    try:
        path.unlink(missing_ok=True)
    except OSError as error:
        raise ConfigError(
            f"checkpoint folder {path.parent}: {path.name}, left by another user's train "
            f"that has ended, cannot be removed ({error.strerror}): remove it or give "
            "another folder"
        ) from None


def _lock_file_error(path: Path, error: OSError) -> ConfigError:
    return ConfigError(
        f"checkpoint folder {path.parent}: its lock file {path.name} cannot be opened "
        f"({error.strerror}): give another folder"
    )
