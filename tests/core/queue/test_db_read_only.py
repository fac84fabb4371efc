"""A SQLite database that cannot be opened says why: missing folder, read-only folder."""

from __future__ import annotations

import contextlib
import os
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
from queue_helpers import tiny_runs
from sqlalchemy import exc
from sqlite_locks import NEWER_WORKER_COLUMNS, drop_newer_columns, write_lock_held

from core.queue import QueueError, Repo
from core.queue import db as db_module


def cannot_open(path: Path) -> str:
    """The message for SQLite's bare "unable to open database file" on ``path``."""
    error = exc.OperationalError(
        "PRAGMA", {}, sqlite3.OperationalError("unable to open database file")
    )
    with pytest.raises(QueueError) as caught, db_module.translated(f"sqlite:///{path}"):
        raise error
    return str(caught.value)


def test_missing_folder_is_named(tmp_path: Path) -> None:
    with pytest.raises(QueueError, match=f"the folder {tmp_path / 'nope'} does not exist"):
        Repo.open(str(tmp_path / "nope" / "runs.db"))


def test_read_only_folder_says_sqlite_writes_beside_the_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # As root os.access says yes to any folder, so the folder check is stood in for here.
    (tmp_path / "runs.db").write_bytes(b"")
    monkeypatch.setattr(db_module, "_folder_writable", lambda folder: folder != tmp_path)
    message = cannot_open(tmp_path / "runs.db")
    assert message.startswith(f"cannot open database {tmp_path / 'runs.db'}: ")
    assert f"the folder {tmp_path} is read-only" in message
    assert "runs.db-wal" in message and "copy runs.db to a writable folder" in message
    assert "cannot be created" in cannot_open(tmp_path / "new.db")


def test_writable_folder_keeps_the_general_reason(tmp_path: Path) -> None:
    (tmp_path / "runs.db").write_bytes(b"")
    assert "no permission to open it" in cannot_open(tmp_path / "runs.db")


@pytest.mark.skipif(os.geteuid() == 0, reason="root may write in a chmod 555 folder")
def test_real_read_only_folder(tmp_path: Path) -> None:
    folder = tmp_path / "shared"
    folder.mkdir()
    repo = Repo.open(str(folder / "runs.db"))
    repo.enqueue(tiny_runs(1))
    repo.close()  # the last close removes runs.db-wal and -shm
    folder.chmod(0o555)
    try:
        with pytest.raises(QueueError, match=f"the folder {folder} is read-only"):
            Repo.open(str(folder / "runs.db"), create=False)
    finally:
        folder.chmod(0o755)


def test_a_folder_it_cannot_look_into_is_said_not_raised(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Python 3.11: is_dir() under a folder without search permission raises.
    def no_entry(self: Path) -> bool:
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(Path, "is_dir", no_entry)
    assert "no permission to look into its folder (Permission denied)" in cannot_open(
        tmp_path / "locked" / "runs.db"
    )


def test_status_under_a_folder_it_cannot_look_into_is_one_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # Python 3.11: exists() (is_new_file, a read-only command's "no database" check)
    # raises PermissionError there; the open that follows says why, in one line.
    from resconv_tui.cli import main

    real_stat = Path.stat
    locked = tmp_path / "locked"

    def stat(self: Path, *args: object, **kwargs: object) -> os.stat_result:
        if locked in (self, *self.parents) and self != locked:
            raise PermissionError(13, "Permission denied", str(self))
        return real_stat(self, *args, **kwargs)  # type: ignore[arg-type]

    locked.mkdir()
    monkeypatch.setattr(Path, "stat", stat)
    for command in (["status"], ["ls"]):
        # (As root SQLite itself gets in, so the command may well succeed: it must not
        # raise PermissionError from the check before the open.)
        assert main(["--db", str(locked / "runs.db"), *command]) in (0, 2)
        assert "Traceback" not in capsys.readouterr().err


def sqlite_says(path: Path, text: str) -> str:
    """The message for SQLite's error ``text`` on ``path``."""
    error = exc.OperationalError("INSERT", {}, sqlite3.OperationalError(text))
    with pytest.raises(QueueError) as caught, db_module.translated(f"sqlite:///{path}"):
        raise error
    return str(caught.value)


def test_a_disk_io_error_on_a_read_only_file_is_not_called_damage(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A worker's heartbeat after `chattr +i runs.db-wal` said "runs.db is damaged":
    # people restore a backup of a healthy file. (As root only os.access knows an
    # immutable file; it is stood in for here, and tried for real below.)
    db = tmp_path / "runs.db"
    for name in ("runs.db", "runs.db-wal", "runs.db-shm"):
        (tmp_path / name).write_bytes(b"")
    monkeypatch.setattr(db_module, "_writable", lambda path: path.name != "runs.db-wal")
    message = sqlite_says(db, "disk I/O error")
    assert "damaged" not in message
    assert message.startswith(f"cannot read or write database {db} (disk I/O error): ")
    assert "runs.db-wal is not writable" in message and "immutable" in message
    monkeypatch.setattr(db_module, "_writable", lambda path: False)
    assert "runs.db, runs.db-wal, runs.db-shm are not writable" in sqlite_says(db, "disk I/O error")
    message = sqlite_says(db, "attempt to write a readonly database")
    assert message.startswith(f"cannot write to database {db} (attempt to write a readonly ")


def test_a_disk_io_error_on_a_read_only_mount_says_so(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "runs.db").write_bytes(b"")
    monkeypatch.setattr(db_module, "_read_only_mount", lambda folder: folder == tmp_path)
    message = sqlite_says(tmp_path / "runs.db", "disk I/O error")
    assert f"the file system holding {tmp_path} is mounted read-only" in message
    assert "damaged" not in message


def test_a_disk_io_error_with_no_cause_found_is_still_not_damage(tmp_path: Path) -> None:
    (tmp_path / "runs.db").write_bytes(b"")
    message = sqlite_says(tmp_path / "runs.db", "disk I/O error")
    assert message.startswith("cannot read or write database ") and "damaged" not in message
    assert "no read-only file or mount found here" in message
    # Only a malformed file is damaged.
    damaged = sqlite_says(tmp_path / "runs.db", "database disk image is malformed")
    assert (
        damaged == f"database {tmp_path / 'runs.db'} is damaged: database disk image is malformed"
    )


def test_a_disk_io_error_on_a_full_disk_says_so(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A full disk blamed the hardware: "the disk or its file system failed ... (dmesg may
    # say)", for ls and status too, where freeing space was the fix.
    (tmp_path / "runs.db").write_bytes(b"")
    monkeypatch.setattr(db_module, "_free_bytes", lambda folder: 4096)
    message = sqlite_says(tmp_path / "runs.db", "disk I/O error")
    assert message.endswith(
        f"(disk I/O error): the file system holding {tmp_path} is full (4,096 bytes free); "
        "SQLite needs room beside runs.db for its -wal and -shm files, even to read: free "
        "some space"
    )


def test_ls_on_a_really_full_disk_says_it_is_full(tmp_path: Path) -> None:
    # The tester's case: a 600 KiB tmpfs holding the database, filled up with dd.
    folder = tmp_path / "small"
    folder.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=600k", "tmpfs", str(folder)],
                             capture_output=True)  # fmt: skip
    if mounted.returncode != 0:
        pytest.skip("mounting a tmpfs needs root (and a system that allows it)")
    try:
        repo = Repo.open(str(folder / "f.db"))
        repo.enqueue(tiny_runs(2))
        repo.close()
        for name in ("f.db-wal", "f.db-shm"):
            (folder / name).unlink(missing_ok=True)
        with contextlib.suppress(OSError), open(folder / "fill", "wb") as fill:
            while True:
                fill.write(b"\0" * 4096)
                fill.flush()
        ls = subprocess.run(
            [sys.executable, "-m", "resconv_tui", "--db", str(folder / "f.db"), "ls"],
            capture_output=True, text=True, timeout=60,
        )  # fmt: skip
        assert ls.returncode == 2 and "Traceback" not in ls.stderr
        assert f"the file system holding {folder} is full" in ls.stderr, ls.stderr
        # Through a link elsewhere: SQLite's files are beside the file it names.
        (tmp_path / "link").mkdir()
        (tmp_path / "link" / "runs.db").symlink_to(folder / "f.db")
        ls = subprocess.run(
            [sys.executable, "-m", "resconv_tui", "--db", str(tmp_path / "link" / "runs.db"), "ls"],
            capture_output=True, text=True, timeout=60,
        )  # fmt: skip
        assert f"the file system holding {folder} is full" in ls.stderr, ls.stderr
    finally:
        subprocess.run(["umount", "-l", str(folder)], check=False)


def test_a_wal_file_made_immutable_while_open_is_named(tmp_path: Path) -> None:
    # The tester's case for real: `chattr +i` (root, and a file system that has it)
    # on runs.db-wal while a process writes. (Not -shm: SQLite maps it, and a write
    # to an immutable mapping kills the process with SIGBUS.)
    db = tmp_path / "runs.db"
    repo = Repo.open(str(db))
    try:
        repo.enqueue(tiny_runs(1))
        wal = tmp_path / "runs.db-wal"
        if subprocess.run(["chattr", "+i", str(wal)], capture_output=True).returncode != 0:
            pytest.skip("chattr +i is not allowed here (root and ext4/xfs/btrfs needed)")
        try:
            with pytest.raises(QueueError) as caught:
                repo.enqueue(tiny_runs(2))
        finally:
            subprocess.run(["chattr", "-i", str(wal)], check=True)
    finally:
        repo.close()
    message = str(caught.value)
    assert "damaged" not in message
    assert message.startswith(f"cannot read or write database {db} (disk I/O error)")
    assert "runs.db-wal is not writable" in message


def test_an_older_versions_database_that_cannot_be_written_is_still_read(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # A finished sweep's runs.db made before the worker table's claim columns, kept where
    # this user may not write (read-only file, another user's): `status`, `ls` and
    # `results` said "cannot write to database", since opening it added the columns,
    # where the same file made by this version read fine. SQLite's own refusal is stood
    # in for by `PRAGMA query_only` (root writes a chmod 444 file).
    from sqlalchemy import event

    from resconv_tui.cli import main

    db = tmp_path / "runs.db"
    repo = Repo.open(str(db))
    repo.enqueue(tiny_runs(2))
    repo.register_worker("h", 1, "cpu")
    repo.close()
    with sqlite3.connect(db) as conn:  # as an older version made it
        for column in ("stack", "largest_first", "max_runs"):
            conn.execute(f'ALTER TABLE "worker" DROP COLUMN "{column}"')
    install = db_module._install_sqlite_hooks

    def read_only(engine: object, busy_timeout_s: float) -> None:
        install(engine, busy_timeout_s)  # type: ignore[arg-type]

        @event.listens_for(engine, "connect")
        def _query_only(dbapi_conn: sqlite3.Connection, _record: object) -> None:
            dbapi_conn.execute("PRAGMA query_only = ON")

    monkeypatch.setattr(db_module, "_install_sqlite_hooks", read_only)
    for command in (["status"], ["ls"], ["results"]):
        assert main(["--db", str(db), *command]) == 0, capsys.readouterr().err
    assert "queued" in capsys.readouterr().out
    reader = Repo.open(str(db))
    assert [(w.host, w.stack) for w in reader.list_workers()] == [("h", None)]  # unknown
    with pytest.raises(QueueError, match="cannot write to database"):
        reader.enqueue(tiny_runs(3))  # a write still says why it cannot
    reader.close()
    monkeypatch.undo()
    Repo.open(str(db)).close()  # writable again: the columns are added
    assert set(NEWER_WORKER_COLUMNS) <= worker_columns(db)


def test_an_older_versions_database_is_read_while_another_process_holds_its_write_lock(
    tmp_path: Path,
) -> None:
    # `status` on a runs.db made before the worker's claim columns, while an older worker
    # or a backup held the write lock: it waited the busy timeout, then failed "locked",
    # where a database made by this version answered at once.
    db = tmp_path / "runs.db"
    older_worker_table(db)
    holder = sqlite3.connect(db, isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")
    try:
        reader = Repo.open(str(db), busy_timeout_s=0.2)
        assert len(reader.list_runs()) == 2
        assert {c.name for c in reader.worker_columns}.isdisjoint({"stack", "max_runs"})
        reader.close()
    finally:
        holder.rollback()
        holder.close()
    Repo.open(str(db)).close()  # the lock gone: the columns are added
    assert set(NEWER_WORKER_COLUMNS) <= worker_columns(db)


def test_status_on_an_older_versions_database_does_not_wait_out_another_writers_lock(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # It read without the new columns, but only after waiting the whole busy timeout
    # (15 s) to add them. A command that only reads tries briefly; a writer still waits.
    from resconv_tui.cli import main

    db = tmp_path / "runs.db"
    repo = Repo.open(str(db))
    repo.enqueue(tiny_runs(2))
    repo.close()
    with sqlite3.connect(db) as conn:  # as an older version made it
        conn.execute('ALTER TABLE "worker" DROP COLUMN "max_runs"')
    holder = sqlite3.connect(db, isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")
    try:
        for command in (["status"], ["ls"], ["results"], ["show", "1"], ["compare", "1", "2"]):
            start = time.monotonic()
            assert main(["--db", str(db), *command]) == 0, capsys.readouterr().err
            assert time.monotonic() - start < db_module.DEFAULT_BUSY_TIMEOUT_S / 2
        reader = Repo.open(str(db), upgrade_wait_s=0.1)
        with reader.engine.connect() as conn:  # its connection's later writes wait as usual
            assert conn.exec_driver_sql("PRAGMA busy_timeout").scalar_one() == 15000
        reader.close()
        start = time.monotonic()
        Repo.open(str(db), busy_timeout_s=1.0).close()  # a writer (queue, worker) waits
        assert time.monotonic() - start >= 0.9
    finally:
        holder.rollback()
        holder.close()
    assert "2 queued" in capsys.readouterr().out
    Repo.open(str(db)).close()
    assert "max_runs" in worker_columns(db)  # the lock gone: added


def test_a_writer_locked_out_of_the_upgrade_fails_at_once_not_after_a_second_wait(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # `cancel 1` on an older version's runs.db while another process held the write lock
    # took 30 s: the upgrade waited the busy timeout (15 s) and let it pass, then the
    # cancel's own write waited 15 s more for the same lock, and said "waited 15 s".
    from resconv_tui.cli import main

    db = older_database(tmp_path, monkeypatch, busy_timeout_s=1.0)
    with write_lock_held(db):
        for command in (["cancel", "1"], ["retry", "1"], ["priority", "5", "1"]):
            start = time.monotonic()
            assert main(["--db", str(db), *command]) == 2
            waited = time.monotonic() - start
            assert 0.9 <= waited < 1.6, (command, waited)  # one busy timeout, not two
            err = capsys.readouterr().err
            assert f"database {db} is locked by another process (waited 1 s)" in err, err
            assert "Traceback" not in err
    with sqlite3.connect(db) as conn:  # nothing written, the columns not yet added
        assert conn.execute("SELECT status FROM run WHERE id = 1").fetchone() == ("queued",)
    assert "max_runs" not in worker_columns(db)


def test_a_writer_on_an_older_database_whose_lock_frees_in_time_upgrades_and_writes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # A shorter upgrade wait for writers skipped the upgrade while another process held
    # the lock for a moment, then went on without the columns.
    from resconv_tui.cli import main

    db = older_database(tmp_path, monkeypatch, busy_timeout_s=5.0)
    with write_lock_held(db, release_after_s=0.8):
        start = time.monotonic()
        assert main(["--db", str(db), "cancel", "1"]) == 0, capsys.readouterr().err
        assert 0.7 <= time.monotonic() - start < 4.0  # it waited for the lock, and got it
    with sqlite3.connect(db) as conn:
        assert conn.execute("SELECT status FROM run WHERE id = 1").fetchone() == ("cancelled",)
    assert "max_runs" in worker_columns(db)


def worker_columns(db: Path) -> set[str]:
    """The names of the columns of ``db``'s worker table."""
    with sqlite3.connect(db) as conn:
        return {row[1] for row in conn.execute("PRAGMA table_info(worker)")}


def older_database(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, busy_timeout_s: float) -> Path:
    """``tmp_path``/runs.db as ``older_worker_table`` makes it, the busy timeout of
    every Repo opened after this ``busy_timeout_s`` (the tests time one wait of it)."""
    monkeypatch.setattr(db_module, "DEFAULT_BUSY_TIMEOUT_S", busy_timeout_s)
    db = tmp_path / "runs.db"
    older_worker_table(db)
    return db


def older_worker_table(db: Path, runs: int = 2) -> None:
    """A runs.db at ``db`` holding ``runs`` queued runs, its worker table as the versions
    before the claim rules made it (the only columns a newer version has added)."""
    repo = Repo.open(str(db))
    repo.enqueue(tiny_runs(runs))
    repo.close()
    drop_newer_columns(db)


def test_a_dry_run_on_an_older_database_reads_while_another_process_writes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # `queue --dry-run` writes nothing, yet it was opened as a writer: locked out of
    # adding the worker's columns, it failed "locked" where it had read without them.
    from resconv_tui.cli import main

    db = older_database(tmp_path, monkeypatch, busy_timeout_s=2.0)
    sweep = tmp_path / "sweep.yml"
    sweep.write_text("name: s\nmax_inputs: 512\nmatrix:\n  ch: [4]\n")
    with write_lock_held(db):
        start = time.monotonic()
        assert main(["--db", str(db), "queue", str(sweep), "--dry-run"]) == 0
        assert time.monotonic() - start < 1.5  # a reader's short try, not the busy timeout
    out = capsys.readouterr().out
    assert "queueing would add 1, queue again 0, skip 0" in out, out


def test_stop_on_an_older_database_signals_while_another_process_writes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # `stop` was opened as a writer: locked out of adding the worker's columns, it failed
    # "locked" and signalled no worker, where it had read without them and stopped them.
    # Its one write, the rows' "stopping", then waits on the same lock: said, not fatal.
    import signal
    import socket

    from resconv_tui.cli import main

    monkeypatch.setattr(db_module, "DEFAULT_BUSY_TIMEOUT_S", 1.0)
    db = tmp_path / "runs.db"
    worker = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    repo = Repo.open(str(db))
    worker_id = repo.register_worker(socket.gethostname(), worker.pid, "cpu")
    repo.close()
    # Older only now: opened after older_worker_table, to register, it was a newer one
    # again, and stop opened as a writer passed this test too.
    drop_newer_columns(db)
    try:
        with write_lock_held(db):
            assert main(["--db", str(db), "stop", "--no-wait"]) == 0
            assert worker.wait(5) == -signal.SIGTERM
    finally:
        worker.kill()
        worker.wait()
    out, err = capsys.readouterr()
    said = "it held no run when read"
    assert out == f"asked worker pid {worker.pid} to stop after the current step; {said}\n"
    assert f"database {db} is locked by another process (waited 1 s)" in err, err
    assert "its row says so at its next heartbeat" in err and "Traceback" not in err
    repo = Repo.open(str(db))
    assert [w.state for w in repo.list_workers()] == ["idle"]  # nothing half-written
    assert repo.list_workers()[0].id == worker_id
    repo.close()


def test_stop_locked_out_of_its_rows_names_the_workers_they_are_left_of(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # Locked out of the rows' "stopping", stop said "worker pids 11, 12, 13 asked all the
    # same: its row says so at its next heartbeat": one row for two workers, and the one
    # --now told to exit at once (its row said "stopping" already) named among them,
    # after the lock's own "try again when it is free", which does just that.
    import signal
    import socket

    from resconv_tui.cli import main

    monkeypatch.setattr(db_module, "DEFAULT_BUSY_TIMEOUT_S", 1.0)
    db = tmp_path / "runs.db"
    sleepers = [
        subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"]) for _ in range(3)
    ]
    try:
        repo = Repo.open(str(db))
        ids = [repo.register_worker(socket.gethostname(), p.pid, "cpu") for p in sleepers]
        repo.mark_worker_stopping(ids[2])  # asked before: --now tells it to exit at once
        repo.close()
        with write_lock_held(db):
            assert main(["--db", str(db), "stop", "--now", "--no-wait"]) == 0
            assert [p.wait(5) for p in sleepers] == [-signal.SIGTERM] * 3
    finally:
        for sleeper in sleepers:
            sleeper.kill()
            sleeper.wait()
    err = capsys.readouterr().err
    fresh = sorted(p.pid for p in sleepers[:2])
    said = (
        f"worker pids {fresh[0]}, {fresh[1]} asked all the same: their rows say so at their "
        "next heartbeats (a second stop before then tells them to exit at once)"
    )
    assert said in err, err
    assert str(sleepers[2].pid) not in err, err
    assert "try again" not in err, err  # it would tell them to exit at once
