"""atomic_write: whole files or none, with the modes files normally get."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from core.files import NEW_FILE_MODE, atomic_write, is_temp_of


def test_a_new_file_gets_the_umask_s_mode_and_a_replaced_one_keeps_its_own(
    tmp_path: Path,
) -> None:
    # mkstemp's 0600 made saved sweep files and checkpoints private to their owner.
    mask = os.umask(0o022)
    os.umask(mask)
    new = tmp_path / "sweep.yml"
    atomic_write(new, lambda handle: handle.write(b"name: x\n"))
    assert new.stat().st_mode & 0o777 == NEW_FILE_MODE == 0o666 & ~mask
    private = tmp_path / "private.yml"
    private.write_bytes(b"old")
    private.chmod(0o600)
    atomic_write(private, lambda handle: handle.write(b"new"))
    assert private.read_bytes() == b"new" and private.stat().st_mode & 0o777 == 0o600


def test_a_failed_write_leaves_the_old_file_and_no_temporary_one(tmp_path: Path) -> None:
    target = tmp_path / "f.json"
    target.write_bytes(b"old")

    def broken(handle: object) -> None:
        raise RuntimeError("disk full")

    with pytest.raises(RuntimeError):
        atomic_write(target, broken)
    assert target.read_bytes() == b"old" and [p.name for p in tmp_path.iterdir()] == ["f.json"]


def test_the_bytes_reach_the_disk_before_the_rename_and_the_rename_after(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Renamed into place without a flush, a checkpoint could read empty after a power
    # cut (a kill cannot show it: the kernel still writes the page cache out).
    events: list[str] = []
    real_fsync, real_replace = os.fsync, os.replace

    def fsync(fd: int) -> None:
        events.append("folder" if os.path.isdir(f"/proc/self/fd/{fd}") else "file")
        real_fsync(fd)

    def replace(src: str, dst: object) -> None:
        events.append("rename")
        real_replace(src, dst)  # type: ignore[arg-type]

    monkeypatch.setattr(os, "fsync", fsync)
    monkeypatch.setattr(os, "replace", replace)
    atomic_write(tmp_path / "last.pt", lambda handle: handle.write(b"weights"))
    assert events == ["file", "rename", "folder"]
    assert (tmp_path / "last.pt").read_bytes() == b"weights"


def test_the_temporary_files_of_atomic_write_are_told_from_a_person_s(tmp_path: Path) -> None:
    # A save killed midway leaves its temporary file: the run's next attempt removes
    # those of last.pt and best.pt by name (core.run_folders), and no one else's.
    seen: list[str] = []

    def write(handle: object) -> None:
        seen.extend(p.name for p in tmp_path.iterdir())

    for _ in range(20):  # mkstemp's names are random: several of them
        atomic_write(tmp_path / "last.pt", write)
    temps = [name for name in seen if name != "last.pt"]
    assert len(temps) == 20 and all(is_temp_of(name, "last.pt") for name in temps), temps
    assert not any(is_temp_of(name, "best.pt") for name in temps)
    # Named as an older version named its temporary files (prefix and 8 characters): a
    # person's ".last.pt.20240101" was removed as one. Ours say whose, and which process's.
    assert all(f".last.pt.resconv-partial-{os.getpid()}." in name for name in temps), temps
    for own in ["last.pt", ".last.pt.bak", "last.pt.k2x_9qab", ".last.pt.k2x_9qab.x", ".last.pt.",
                ".last.pt.k2x_9qab", ".last.pt.20240101", ".last.pt.resconv-partial-.k2x_9qab",
                ".last.pt.resconv-partial-12.k2x_9qab.x"]:  # fmt: skip
        assert not is_temp_of(own, "last.pt"), own


@pytest.mark.parametrize(
    "name", ["s" * 235 + ".yaml", "実験" * 39 + "x.yaml"], ids=["ascii", "kanji"]
)
def test_a_long_file_name_that_fits_the_file_system_is_written_and_its_temp_told(
    tmp_path: Path, name: str
) -> None:
    # A sweep saved as a 240-byte name (the 255 a name may have, less 15): the temporary
    # name's marker and pid made it 274 bytes, so the save failed ("File name too long")
    # where an older version's 10 more bytes fitted.
    assert len(os.fsencode(name)) == 240
    seen: list[str] = []

    def write(handle: object) -> None:
        seen.extend(p.name for p in tmp_path.iterdir())

    atomic_write(tmp_path / name, write)
    assert [p.name for p in tmp_path.iterdir()] == [name]
    assert len(seen) == 1 and is_temp_of(seen[0], name), seen
    assert len(os.fsencode(seen[0])) <= 255
