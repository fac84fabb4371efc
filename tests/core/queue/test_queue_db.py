"""Opening databases: URLs, pragmas, schema versions and one-line errors."""

from __future__ import annotations

import io
import sqlite3
import subprocess
import sys
from pathlib import Path

import numpy
import pytest
from postgres_server import fresh_database
from queue_helpers import tiny_runs
from sqlalchemy import text

from core.queue import FinalFigures, QueueError, Repo
from core.queue.db import describe, normalize_url, open_engine, sqlite_path
from core.queue.models import SCHEMA_VERSION
from core.queue.rows import MetricPoint
from core.queue.samples import decode_samples, encode_samples


def _huge_header(shape: tuple[int, ...] = (3, 10**9, 1000, 1000)) -> bytes:
    """A .npy header claiming ``shape`` uint8 pixels (3 x 10**9 x 1000 x 1000)."""
    buffer = io.BytesIO()
    header = {"descr": "|u1", "fortran_order": False, "shape": shape}
    numpy.lib.format.write_array_header_1_0(buffer, header)
    return buffer.getvalue()


def _raw_header(text: str) -> bytes:
    """A version 1.0 .npy header of ``text`` as written, padded as numpy pads its own."""
    header = text.encode("latin1")
    header += b" " * (63 - (10 + len(header)) % 64) + b"\n"
    return b"\x93NUMPY\x01\x00" + len(header).to_bytes(2, "little") + header


def _npy(array: numpy.ndarray) -> bytes:
    """``array`` as .npy bytes whatever its dtype (encode_samples makes uint8)."""
    buffer = io.BytesIO()
    numpy.save(buffer, array, allow_pickle=False)
    return buffer.getvalue()


def test_bare_paths_mean_sqlite_and_urls_pass_through(tmp_path: Path) -> None:
    assert normalize_url("runs.db") == "sqlite:///runs.db"
    assert normalize_url("/x/q.db") == "sqlite:////x/q.db"
    assert normalize_url("postgresql+psycopg://u:pw@h/db") == "postgresql+psycopg://u:pw@h/db"
    assert sqlite_path("sqlite:///runs.db") == Path("runs.db")
    assert sqlite_path("sqlite://") is None
    assert "pw" not in describe("postgresql+psycopg://u:pw@h/db")


def test_first_use_creates_schema_with_wal_and_foreign_keys(db_path: Path) -> None:
    engine = open_engine(str(db_path))
    with engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
        assert conn.exec_driver_sql("PRAGMA busy_timeout").scalar() == 15000
        version = conn.execute(text("SELECT value FROM meta WHERE key='schema_version'"))
        assert version.scalar() == str(SCHEMA_VERSION)
    engine.dispose()
    Repo.open(str(db_path)).close()  # a second open finds the schema and keeps it


def test_in_memory_database_works_for_quick_use() -> None:
    repo = Repo.open("sqlite://")
    assert repo.enqueue(tiny_runs(2)).added == 2
    assert len(repo.list_runs()) == 2


def test_newer_schema_version_is_refused_clearly(db_path: Path) -> None:
    Repo.open(str(db_path)).close()
    with sqlite3.connect(db_path) as conn:
        conn.execute("UPDATE meta SET value = '99' WHERE key = 'schema_version'")
    with pytest.raises(QueueError, match="schema version 99.*upgrade resconv-tui"):
        Repo.open(str(db_path))


def test_some_other_database_is_not_taken_over(db_path: Path) -> None:
    with sqlite3.connect(db_path) as conn:
        conn.execute("CREATE TABLE photos (id INTEGER)")
    with pytest.raises(QueueError, match="not a resconv-tui database.*photos"):
        Repo.open(str(db_path))


def test_a_file_that_is_not_a_database(db_path: Path) -> None:
    db_path.write_text("name: not a database\n" * 200)
    with pytest.raises(QueueError, match="is not a SQLite database"):
        Repo.open(str(db_path))


def test_missing_file_with_create_false_says_so(db_path: Path) -> None:
    with pytest.raises(QueueError, match="no database at .*runs.db"):
        Repo.open(str(db_path), create=False)
    assert not db_path.exists()


def test_an_empty_database_is_no_database_where_the_command_makes_none(db_url: str) -> None:
    # On PostgreSQL, `status`, `ls` and `queue --dry-run` made the tables in an empty
    # database (a wrong --db), where SQLite said "no database at runs.db".
    from sqlalchemy import create_engine, inspect

    if db_url.startswith("sqlite"):
        Path(db_url.removeprefix("sqlite:///")).write_bytes(b"")  # `touch runs.db`
    with pytest.raises(QueueError, match=r"no resconv-tui database in .*queue runs first"):
        Repo.open(db_url, create=False)
    if db_url.startswith("sqlite"):  # left as it was: opening it wrote a 4096-byte header
        assert Path(db_url.removeprefix("sqlite:///")).stat().st_size == 0
    engine = create_engine(db_url)
    assert inspect(engine).get_table_names() == []
    engine.dispose()
    Repo.open(db_url).close()  # the queue (create=True) makes it
    Repo.open(db_url, create=False).close()


def test_a_sqlite_file_with_no_tables_yet_is_refused_as_an_empty_one(db_path: Path) -> None:
    # A new runs.db has a header and no tables for a moment while the first process to
    # open it makes them: `cancel` or `ls` started then (eight commands at once on a new
    # runs.db) said "no tables this role can see" and `--db sqlite:///...`, not as for
    # an empty file.
    with sqlite3.connect(db_path) as conn:
        conn.execute("PRAGMA journal_mode = WAL")  # writes the header, makes no table
    assert db_path.stat().st_size > 0
    with pytest.raises(QueueError) as refused:
        Repo.open(str(db_path), create=False)
    db_path.write_bytes(b"")
    with pytest.raises(QueueError) as empty:
        Repo.open(str(db_path), create=False)
    assert str(refused.value) == str(empty.value)
    assert str(refused.value).endswith(f"--db {db_path})")


def test_a_dry_run_and_ls_leave_an_empty_database_empty(
    db_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from sqlalchemy import create_engine, inspect

    from resconv_tui.cli import main

    if db_url.startswith("sqlite"):
        Path(db_url.removeprefix("sqlite:///")).write_bytes(b"")
    sweep = tmp_path / "s.yml"
    sweep.write_text("name: e\nlayers: 1\nmatrix:\n  act: [relu, tanh]\n")
    assert main(["queue", str(sweep), "--dry-run", "--db", db_url]) == 0
    assert "2 runs in e" in capsys.readouterr().out
    assert main(["ls", "--db", db_url]) == 2
    assert "no resconv-tui database in " in capsys.readouterr().err
    engine = create_engine(db_url)
    assert inspect(engine).get_table_names() == []
    engine.dispose()


def test_a_worker_refused_for_its_device_makes_no_tables(
    db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # On an empty PostgreSQL database the refused worker had made its tables first.
    from sqlalchemy import create_engine, inspect

    from resconv_tui.cli import main

    monkeypatch.chdir(tmp_path)
    assert main(["worker", "--db", db_url, "--device", "cuda:7"]) == 2
    if db_url.startswith("sqlite"):
        assert not Path(db_url.removeprefix("sqlite:///")).exists()
        return
    engine = create_engine(db_url)
    assert inspect(engine).get_table_names() == []
    engine.dispose()


def test_another_program_s_meta_table_is_not_taken_for_ours(db_url: str) -> None:
    # "database error: ...: column meta.value does not exist"
    from sqlalchemy import create_engine, text

    engine = create_engine(db_url)
    with engine.begin() as conn:
        conn.execute(text("CREATE TABLE meta (k TEXT, v TEXT)"))
    engine.dispose()
    with pytest.raises(QueueError, match=r"is not a resconv-tui database \(it has tables: meta\)"):
        Repo.open(db_url)


def test_another_program_s_meta_key_value_table_is_not_taken_for_ours(db_url: str) -> None:
    # A browser's History file: meta(key, value) beside its own tables, read as "has no
    # schema version in its meta table: it is damaged".
    from sqlalchemy import create_engine, text

    engine = create_engine(db_url)
    with engine.begin() as conn:
        conn.execute(text("CREATE TABLE meta (key TEXT, value TEXT)"))
        conn.execute(text("INSERT INTO meta VALUES ('version', '66')"))
        conn.execute(text("CREATE TABLE urls (id INTEGER)"))
    engine.dispose()
    with pytest.raises(
        QueueError, match=r"not a resconv-tui database \(it has tables: meta, urls\)"
    ):
        Repo.open(db_url)


def test_a_missing_version_row_is_damage_not_a_newer_version(db_url: str) -> None:
    # "has database schema version None ...: upgrade resconv-tui": no version is newer.
    from sqlalchemy import create_engine, text

    Repo.open(db_url).close()
    engine = create_engine(db_url)
    with engine.begin() as conn:
        conn.execute(text("DELETE FROM meta"))
    engine.dispose()
    with pytest.raises(QueueError, match="has no schema version in its meta table: it is damaged"):
        Repo.open(db_url)


def test_missing_folder(tmp_path: Path) -> None:
    with pytest.raises(QueueError, match="cannot open database"):
        Repo.open(str(tmp_path / "nope" / "runs.db"))


def test_locked_database_is_one_clear_error(db_path: Path) -> None:
    repo = Repo.open(str(db_path), busy_timeout_s=0.2)
    holder = sqlite3.connect(db_path, isolation_level=None)
    holder.execute("BEGIN EXCLUSIVE")  # another process mid-write, for longer than we wait
    try:
        with pytest.raises(QueueError, match="locked by another process"):
            repo.enqueue(tiny_runs(1))
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    assert repo.enqueue(tiny_runs(1)).added == 1


def test_the_queue_never_imports_torch() -> None:
    code = (
        "import sys, core.queue, core.queue.views, core.queue.samples, core.queue.db;"
        "assert 'torch' not in sys.modules, 'torch imported';"
        "assert 'textual' not in sys.modules, 'textual imported'"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


NEWER_WORKER_COLUMNS = ("stack", "largest_first", "max_runs")
NEWER_RUN_COLUMNS = ("paused_s",)


def as_an_older_version_made_it(url: str) -> None:
    """Drop the worker and run columns a resconv-tui before them did not make."""
    engine = open_engine(url)
    with engine.begin() as conn:
        for column in NEWER_WORKER_COLUMNS:
            conn.execute(text(f'ALTER TABLE "worker" DROP COLUMN "{column}"'))
        for column in NEWER_RUN_COLUMNS:
            conn.execute(text(f'ALTER TABLE "run" DROP COLUMN "{column}"'))
    engine.dispose()


def paused_and_finished(repo: Repo, worker: str) -> int:
    """A run claimed by ``worker``, its progress written after a 600 s stop of its
    worker, then finished with it: the run's id."""
    run = repo.claim(worker)
    assert run is not None and run.paused_s is None
    assert repo.add_metrics(run.id, [MetricPoint(1, 32, "train_loss", 0.5)], 32,
                            owner=worker, paused_s=600.0)  # fmt: skip
    assert repo.finish(run.id, worker, FinalFigures(train_seconds=120.0, paused_s=600.0))
    return run.id


def test_a_database_of_an_older_version_gains_the_new_columns_and_keeps_its_rows(
    db_url: str,
) -> None:
    repo = Repo.open(db_url)
    repo.enqueue(tiny_runs(1))
    old = repo.register_worker("h", 1, "cpu", stack=4)
    repo.close()
    as_an_older_version_made_it(db_url)
    repo = Repo.open(db_url)
    (worker,) = repo.list_workers()
    assert (worker.id, worker.stack, worker.largest_first, worker.max_runs) == (
        old,
        None,
        None,
        None,
    )
    new = repo.register_worker("h", 2, "cpu", stack=3, largest_first=True, max_runs=5)
    assert [(w.stack, w.largest_first, w.max_runs) for w in repo.list_workers() if w.id == new] == [
        (3, True, 5)
    ]
    assert len(repo.list_runs()) == 1
    # A run's paused seconds are recorded in the column added (None before any).
    assert repo.list_runs()[0].paused_s is None
    ran = paused_and_finished(repo, new)
    assert repo.get_run(ran).paused_s == 600.0
    repo.close()
    engine = open_engine(db_url)
    with engine.begin() as conn:  # an older resconv-tui names only the columns it knows
        conn.execute(
            text(
                "INSERT INTO worker (id, host, pid, device, state, started_at, last_seen_at, "
                "runs_done) VALUES ('older', 'h', 3, 'cpu', 'idle', 0, 0, 0)"
            )
        )
        version = conn.execute(text("SELECT value FROM meta WHERE key='schema_version'"))
        assert version.scalar() == str(SCHEMA_VERSION)  # older versions may still open it
    engine.dispose()


def test_a_database_missing_a_table_is_refused_when_opened(db_path: Path) -> None:
    # A worker claimed a run, then stopped on "no such table: metric", leaving it running.
    Repo.open(str(db_path)).close()
    with sqlite3.connect(db_path) as conn:
        conn.execute("DROP TABLE metric")
    with pytest.raises(QueueError, match=r"runs.db lacks the table metric: it is damaged"):
        Repo.open(str(db_path))


def run_2_damaged(db_path: Path, column: str, value: object, said: str) -> Repo:
    """Two runs queued, run 2's ``column`` then set to ``value`` by hand: the open repo,
    once listing the runs has named run 2's row damaged (``said`` in the message) and
    run 1 still reads."""
    repo = Repo.open(str(db_path))
    repo.enqueue(tiny_runs(2))
    with sqlite3.connect(db_path) as conn:
        conn.execute(f"UPDATE run SET {column} = ? WHERE id = 2", (value,))
    with pytest.raises(QueueError, match=r"^run 2's row is damaged \(") as caught:
        repo.list_runs()
    assert said in str(caught.value)
    assert repo.get_run(1).id == 1  # the others still read
    return repo


@pytest.mark.parametrize(
    ("column", "value", "said"),
    [
        ("status", "weird", "'weird' is not a valid RunStatus"),
        ("config_json", "{bad", "Expecting property name"),
        ("swept_json", "[1", "Expecting"),
        ("target_json", "nope", "Expecting value"),
    ],
)
def test_a_row_edited_by_hand_is_named_not_a_traceback(
    db_path: Path, column: str, value: str, said: str
) -> None:
    repo = run_2_damaged(db_path, column, value, said)
    # A stack worker's claim takes the cell's readable seeds, not a JSON traceback.
    worker = repo.register_worker("h", 1, "cpu")
    if column == "config_json":
        (claimed,) = repo.claim_stack(worker, False, 2, lambda config: True)
        assert claimed.id == 1
    if column == "status":  # `status` counts by status: it was a ValueError traceback
        with pytest.raises(QueueError, match="its status 'weird' is none this version knows"):
            repo.counts_by_status()
    repo.close()


@pytest.mark.parametrize(
    ("column", "value", "said"),
    [
        ("validation_loss", "abc", "its validation_loss is 'abc', not a number"),
        ("heartbeat_at", "soon", "its heartbeat_at is 'soon', not a number"),
        ("inputs_done", 1.5, "its inputs_done is 1.5, not a whole number"),
        ("peak_memory_bytes", b"\x00\x01", "its peak_memory_bytes is 2 bytes of binary data"),
        ("name", b"\xff", "its name is 1 bytes of binary data, not text"),
    ],
)
def test_a_value_of_the_wrong_kind_is_named_not_a_format_traceback(
    db_path: Path, column: str, value: object, said: str
) -> None:
    # SQLite keeps text in a FLOAT column: `ls` and `show` were "Unknown format code 'f'
    # for object of type 'str'", `results` and `compare` a TypeError out of math.isfinite.
    repo = run_2_damaged(db_path, column, value, said)
    repo.close()


def test_a_run_with_a_value_of_the_wrong_kind_is_named_by_every_verb(db_path: Path) -> None:
    # Read leniently, a cancel compared a text heartbeat (a TypeError) and `+` added to a
    # text priority; a damaged row is named wherever it is read, nothing done with it
    # (but by a claim, which fails it: test_a_claim_fails_a_damaged_run_and_takes_the_next).
    repo = Repo.open(str(db_path))
    repo.enqueue(tiny_runs(2))
    with sqlite3.connect(db_path) as conn:
        conn.execute("UPDATE run SET heartbeat_at = 'zz', priority = 'hi' WHERE id = 1")
    damaged = r"^run 1's row is damaged \(its priority is 'hi', not a whole number\)"
    for verb in (
        lambda: repo.request_cancel([1]),
        lambda: repo.change_priority([1], 1),
        lambda: repo.move_to_front([1]),
        lambda: repo.remove([1]),
    ):
        with pytest.raises(QueueError, match=damaged):
            verb()
    with sqlite3.connect(db_path) as conn:  # nothing was changed by any of them
        assert conn.execute("SELECT status, priority FROM run WHERE id = 1").fetchone() == (
            "queued",
            "hi",
        )
    repo.close()


def test_a_claim_fails_a_damaged_run_and_takes_the_next(db_path: Path) -> None:
    # The claim raised "damaged" and was rolled back: its worker stopped with the run
    # still queued, first in the queue (a text priority sorts above every number), and
    # the next worker claimed it and stopped too.
    repo = Repo.open(str(db_path))
    repo.enqueue(tiny_runs(2))
    worker = repo.register_worker("h", 1, "cpu")
    with sqlite3.connect(db_path) as conn:
        conn.execute("UPDATE run SET priority = 'hi' WHERE id = 1")
    claimed = repo.claim(worker)
    assert claimed is not None and claimed.id == 2
    with sqlite3.connect(db_path) as conn:
        status, error, holder = conn.execute(
            "SELECT status, error, worker_id FROM run WHERE id = 1"
        ).fetchone()
    assert (status, holder) == ("failed", worker)
    assert error == (
        "not trained: its row is damaged (its priority is 'hi', not a whole number); put "
        "the value back with an SQL client, then retry it"
    )
    (row,) = repo.list_workers()
    assert row.current_run_id == 2  # the run it trains, not the damaged one
    repo.close()


def test_a_text_peak_is_no_measure_to_packing(db_path: Path) -> None:
    repo = Repo.open(str(db_path))
    repo.enqueue(tiny_runs(1))
    worker = repo.register_worker("h", 1, "cpu")
    claimed = repo.claim(worker)
    assert claimed is not None
    repo.finish(claimed.id, worker, FinalFigures(validation_loss=0.5, peak_memory_bytes=1000))
    peaks = repo.measured_peaks(claimed.param_count, device_prefix="cpu")
    assert [peak for _, peak in peaks] == [1000]
    with sqlite3.connect(db_path) as conn:  # a worker's packing read it: a ValueError
        conn.execute("UPDATE run SET peak_memory_bytes = 'x' WHERE id = 1")
    assert repo.measured_peaks(claimed.param_count, device_prefix="cpu") == []
    repo.close()


def test_worker_and_metric_values_of_the_wrong_kind_are_named(db_path: Path) -> None:
    repo = Repo.open(str(db_path))
    repo.enqueue(tiny_runs(1))
    worker = repo.register_worker("h", 1, "cpu")
    run = repo.claim(worker)
    assert run is not None
    repo.add_metrics(run.id, [MetricPoint(20, 640, "train_loss", 0.5)], 640, owner=worker)
    with sqlite3.connect(db_path) as conn:
        conn.execute("UPDATE metric SET value = 'q'")
        conn.execute("UPDATE worker SET last_seen_at = 'y'")
    with pytest.raises(QueueError, match=r"^run 1's metric row 1 is damaged \(its value is 'q'"):
        repo.metrics_since(run.id)
    with pytest.raises(QueueError, match=rf"^worker {worker}'s row is damaged \(its last_seen"):
        repo.list_workers()
    repo.close()


@pytest.mark.parametrize(
    ("stored", "said"),
    [
        ("abc", "(str, not bytes)"),
        (b"\x00\x11\x22", "(not a .npy array)"),
        (encode_samples(numpy.zeros((3, 2, 4, 4), numpy.uint8))[:60], "(not a .npy array: "),
        (
            encode_samples(numpy.zeros((3, 2, 4, 4), numpy.uint8))[:-5],
            "(its header says 96 bytes of pixels, it holds 91)",
        ),
        # A header claiming petabytes: np.load tried to allocate them (a MemoryError).
        (_huge_header() + bytes(10), "says 3,000,000,000,000,000 bytes of pixels, it holds 10"),
        (_npy(numpy.zeros((2, 3), numpy.float32)), "an array of float32 shaped 2 x 3, not uint8"),
        # Past the header check, np.load's own refusals were tracebacks.
        (
            _npy(numpy.zeros((3, 1, 1, 1), numpy.uint8)).replace(b"\x01\x00", b"\x04\x00", 1),
            "(not a .npy array: format version 4)",
        ),
        (_huge_header((3, -1, -2, 2)) + bytes(12), "shaped 3 x -1 x -2 x 2, not uint8"),
        (_huge_header((3, 0, 28, 28)), "shaped 3 x 0 x 28 x 28, not uint8"),  # drew nothing
        # Larger than any run makes: `show --samples` drew a tall one's 300,036 lines.
        (
            _npy(numpy.zeros((3, 1, 200_000, 1), numpy.uint8)),
            "(images 200,000 x 1, over 256 a side (a run's are at most 64 x 64))",
        ),
        (_npy(numpy.zeros((3, 1, 1, 257), numpy.uint8)), "(images 1 x 257, over 256 a side"),
        (
            _npy(numpy.zeros((3, 65, 1, 1), numpy.uint8)),
            "(65 images, over 64: more than any run saves)",
        ),
        # numpy's header parser raised IndexError, TokenError, RecursionError on these.
        (
            _raw_header("{'descr': ('|u1',), 'fortran_order': False, 'shape': (3, 1, 2, 2), }")
            + bytes(12),
            "(not a .npy array: ",
        ),
        (
            _raw_header("{'descr': '|u1', 'fortran_order': False, 'shape': (3, 1, 2, 2), "),
            "(not a .npy array: ",
        ),  # fmt: skip
        (
            _raw_header(
                "{'descr': '|u1', 'fortran_order': False, 'shape': (3, "
                + "-" * 3000
                + "1, 2, 2), }"
            ),
            "(not a .npy array: ",
        ),  # fmt: skip
    ],
    ids=[
        "text",
        "not-npy",
        "cut-short",
        "pixels-cut",
        "huge-header",
        "wrong-array",
        "version-4",
        "negative-sizes",
        "no-images",
        "too-tall",
        "too-wide",
        "too-many",
        "descr-tuple",
        "unclosed",
        "deep",
    ],
)
def test_damaged_sample_images_are_named_not_a_numpy_traceback(stored: object, said: str) -> None:
    with pytest.raises(QueueError, match=r"^run 4's sample images are damaged ") as caught:
        decode_samples(stored, 4)  # type: ignore[arg-type]
    assert said in str(caught.value)


def test_the_largest_sample_grid_a_run_makes_is_within_the_bounds() -> None:
    # The bounds on a grid are for hand-made ones: a run's own must never meet them.
    from core.config import IMAGE_SIZES
    from core.train import SAMPLE_COUNT

    side = max(IMAGE_SIZES)
    grid = numpy.zeros((3, SAMPLE_COUNT, side, side), numpy.uint8)
    assert decode_samples(encode_samples(grid), 4).shape == grid.shape  # type: ignore[arg-type]


def test_a_role_that_does_not_own_the_tables_works_without_the_new_columns(
    pg_admin_url: str,
) -> None:
    # Boxes sharing a queue under a role with GRANT ALL but not ownership: adding the new
    # columns on open ("must be owner of table worker") refused even `status`.
    import secrets

    import psycopg
    from sqlalchemy.engine import make_url

    owner_url = fresh_database(pg_admin_url)
    repo = Repo.open(owner_url)
    repo.enqueue(tiny_runs(2))
    repo.close()
    as_an_older_version_made_it(owner_url)
    role = f"box_{secrets.token_hex(3)}"
    owner = make_url(owner_url)
    plain = owner.set(drivername="postgresql").render_as_string(hide_password=False)
    with psycopg.connect(plain, autocommit=True) as conn:
        conn.execute(f"CREATE ROLE {role} LOGIN")
        conn.execute(f"GRANT ALL ON ALL TABLES IN SCHEMA public TO {role}")
        conn.execute(f"GRANT ALL ON ALL SEQUENCES IN SCHEMA public TO {role}")
    box = Repo.open(owner.set(username=role).render_as_string(hide_password=False))
    worker = box.register_worker("box", 7, "cuda:0", stack=4, max_runs=2)
    # Its runs' paused seconds are not recorded (unknown), and the rest is: a claim, the
    # progress and the end.
    ran = paused_and_finished(box, worker)
    assert (box.get_run(ran).status, box.get_run(ran).paused_s) == ("succeeded", None)
    # Back to the queue, a run forgets only the columns the database has.
    failed = box.claim(worker)
    assert failed is not None and box.fail(failed.id, worker, "boom")
    box.retry([failed.id])
    assert box.get_run(failed.id).status == "queued"
    (row,) = box.list_workers()
    assert (row.id, row.stack, row.max_runs) == (worker, None, None)  # not recorded: unknown
    box.close()
    repo = Repo.open(owner_url)  # the owner adds them
    assert [w.stack for w in repo.list_workers()] == [None]
    assert repo.register_worker("h", 8, "cpu", stack=3) in {w.id for w in repo.list_workers()}
    assert {w.stack for w in repo.list_workers()} == {None, 3}
    repo.close()


@pytest.mark.parametrize("lock", ["IMMEDIATE", "EXCLUSIVE"])
def test_reading_needs_no_write_lock(
    db_path: Path, lock: str, capsys: pytest.CaptureFixture[str]
) -> None:
    # `status` waited its busy timeout and failed "locked by another process" while
    # another process held the write lock: opening began BEGIN IMMEDIATE to check the
    # schema. WAL lets readers read then (in WAL mode EXCLUSIVE too lets them).
    from resconv_tui.cli import main

    repo = Repo.open(str(db_path))
    repo.enqueue(tiny_runs(2))
    repo.close()
    holder = sqlite3.connect(db_path, isolation_level=None)
    holder.execute(f"BEGIN {lock}")
    holder.execute("UPDATE run SET priority = 5")  # mid-write, not yet committed
    try:
        reader = Repo.open(str(db_path), busy_timeout_s=1)
        assert [run.priority for run in reader.list_runs()] == [0, 0]
        with pytest.raises(QueueError, match="locked by another process"):
            reader.enqueue(tiny_runs(3))  # a write still waits for the lock
        reader.close()
        for command in (["status"], ["ls"]):
            assert main(["--db", str(db_path), *command]) == 0, capsys.readouterr().err
    finally:
        holder.execute("ROLLBACK")
        holder.close()


def test_opening_a_new_database_waits_while_another_makes_it(db_path: Path) -> None:
    # SQLite fails the switch to WAL at once, busy timeout or not, while another
    # connection writes the still-empty file: one of several workers started together
    # on a new runs.db failed "locked" while another made the schema.
    from sqlite_locks import write_lock_held

    with write_lock_held(db_path, release_after_s=0.5):
        repo = Repo.open(str(db_path), busy_timeout_s=10)
    assert repo.enqueue(tiny_runs(1)).added == 1
    repo.close()


def test_a_database_opened_by_many_at_once_is_made_once(db_url: str) -> None:
    # Opening first reads; only a database that needs its schema made takes the write
    # transaction (and on PostgreSQL the advisory lock), and checks again inside it.
    import threading

    barrier = threading.Barrier(6)
    errors: list[BaseException] = []
    repos: list[Repo] = []

    def open_it() -> None:
        barrier.wait()
        try:
            repos.append(Repo.open(db_url, busy_timeout_s=10))
        except BaseException as error:  # noqa: BLE001 - handed to the test
            errors.append(error)

    threads = [threading.Thread(target=open_it) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert not errors and len(repos) == 6
    with repos[0].engine.connect() as conn:
        versions = conn.execute(text("SELECT value FROM meta WHERE key = 'schema_version'"))
        assert versions.scalars().all() == [str(SCHEMA_VERSION)]
    assert repos[0].enqueue(tiny_runs(1)).added == 1
    for repo in repos:
        repo.close()


def test_opening_a_made_postgresql_database_takes_no_schema_lock(pg_admin_url: str) -> None:
    # The schema's advisory lock is for making it; a claim in progress holds the same
    # key, and a plain open (`status`) waited for it with no time limit.
    import threading

    from core.queue.db import SCHEMA_LOCK_KEY

    url = fresh_database(pg_admin_url)
    Repo.open(url).close()
    holder = open_engine(url)
    opened: list[Repo] = []
    with holder.connect() as conn, conn.begin():
        conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": SCHEMA_LOCK_KEY})
        thread = threading.Thread(target=lambda: opened.append(Repo.open(url)), daemon=True)
        thread.start()
        thread.join(10)
        waited = thread.is_alive()
    thread.join(30)  # the lock is free now: an old open that waited ends
    for repo in opened:
        repo.close()
    holder.dispose()
    assert not waited, "the open waited for the schema's advisory lock"
