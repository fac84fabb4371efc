"""Database URLs that cannot work are one line naming the URL, never a traceback."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from sqlalchemy import exc

from core.queue import QueueError, Repo, db
from resconv_tui.cli import main

WORKS = "sqlite:///PATH, or postgresql+psycopg://"


@pytest.mark.parametrize(
    ("url", "says"),
    [
        ("bogus://x", "does not work with 'bogus'"),
        ("mysql://u:secret@h/x", "does not work with 'mysql'"),
        ("postgresql+nosuch://u@h/x", "unknown driver 'nosuch'"),
        ("postgresql+asyncpg://u:secret@h/x", "its driver 'asyncpg' is not installed"),
        ("://u:secret@x", "cannot read database URL ://u:***@x"),
        # A path of bytes that are no text (s\xff.db from a shell): a 31-line traceback.
        (b"s\xff.db".decode("utf-8", "surrogateescape"), "cannot read database URL"),
    ],
)
def test_unusable_urls_are_one_queue_error(url: str, says: str) -> None:
    for use in (db.parse_url, db.describe, db.is_new_file, Repo.open):
        with pytest.raises(QueueError, match=r"^[^\n]*$") as caught:
            use(url)
        message = str(caught.value)
        assert says in message and WORKS in message and "secret" not in message


def test_good_urls_still_parse(tmp_path: Path) -> None:
    assert db.parse_url(str(tmp_path / "q.db")).get_backend_name() == "sqlite"
    assert db.parse_url("sqlite://").database is None
    assert db.parse_url("postgresql://u:pw@h/x").get_backend_name() == "postgresql"
    # The scheme many hosts hand out: "resconv-tui does not work with 'postgres'".
    assert db.parse_url("postgres://u:pw@h/x").get_backend_name() == "postgresql"
    assert db.describe("postgres+psycopg://u:pw@h/x") == "postgresql+psycopg://u:***@h/x"


@pytest.mark.parametrize("name", ["q?x.db", "a%20b.db", "100%41.db"])
def test_a_file_path_names_that_very_file(
    name: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # `--db 'q?x.db'` queued into a file `q` (SQLAlchemy read `?x.db` as the URL's options)
    # and `--db a%20b.db` into `a b.db`, exit 0 and not a word.
    monkeypatch.chdir(tmp_path)
    (tmp_path / "sweep.yml").write_text("name: s\nmax_inputs: 512\nmatrix:\n  ch: [4]\n")
    assert db.sqlite_path(name) == Path(name)
    assert main(["--db", name, "queue", "sweep.yml"]) == 0
    made = {p.name for p in tmp_path.iterdir()} - {f"{name}-wal", f"{name}-shm"}
    assert made == {name, "sweep.yml"}
    # A worker the dashboard starts gets the same file, by its absolute path.
    from resconv_tui.context import DashboardContext

    repo = Repo.open(name, create=False)
    assert len(repo.list_runs()) == 1
    url = DashboardContext(repo=repo, db_url=name).worker_db_url
    assert db.sqlite_path(url) == tmp_path / name


@pytest.mark.parametrize(
    ("query", "named"), [("?mode=ro", "('mode')"), ("?mode=ro&uri=true", "('mode', 'uri')")]
)
def test_a_sqlite_url_with_options_is_refused(
    query: str,
    named: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    # SQLite's driver ignored `?mode=ro` (a two-line warning) and `queue` wrote all the
    # same; with `&uri=true` it made a new file named `q.db?mode=ro`.
    monkeypatch.chdir(tmp_path)
    (tmp_path / "sweep.yml").write_text("name: s\nmax_inputs: 512\nmatrix:\n  ch: [4]\n")
    assert main(["queue", "sweep.yml", "--db", "q.db"]) == 0
    capsys.readouterr()
    url = f"sqlite:///{tmp_path / 'q.db'}{query}"
    assert main(["queue", "sweep.yml", "--force", "--db", url]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    alone = f"sqlite:///{tmp_path / 'q.db'}"
    assert err == [f"resconv-tui: database error: database URL {url}: a SQLite URL takes no "
                   f"options {named}; give the file alone: {alone}"]  # fmt: skip
    assert {p.name for p in tmp_path.glob("q.db*")} <= {"q.db", "q.db-wal", "q.db-shm"}
    assert len(Repo.open(str(tmp_path / "q.db")).list_runs()) == 1


@pytest.mark.parametrize("argv", [["ls"], ["queue", "sweep.yml"]])
def test_a_device_given_as_the_database_says_so(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    argv: list[str],
) -> None:
    # "cannot read or write database /dev/null (disk I/O error): ... the disk or its
    # file system failed" for queue; status and ls said "no resconv-tui database in" it.
    monkeypatch.chdir(tmp_path)
    (tmp_path / "sweep.yml").write_text("name: s\nmax_inputs: 512\nmatrix:\n  ch: [4]\n")
    assert main(["--db", os.devnull, *argv]) == 2
    assert capsys.readouterr().err.strip().splitlines() == [
        f"resconv-tui: database error: {os.devnull} is not a regular file (a character "
        "device): give a SQLite database file, e.g. runs.db"
    ]


def test_a_folder_given_as_the_database_says_so(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # "no permission to open it or to create files in its folder", run as root.
    assert main(["--db", str(tmp_path), "ls"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.endswith(f"{tmp_path} is a folder: give a database file in it, e.g. "
                        f"{tmp_path / 'runs.db'}")  # fmt: skip


@pytest.mark.parametrize(
    "argv",
    [
        ["--db", "bogus://x", "status"],
        ["--db", "bogus://x"],  # the dashboard
        ["queue", "sweep.yml", "--dry-run", "--db", "bogus://x"],
        ["--db", "mysql://u:secret@h/x", "status"],
        ["worker", "--db", "bogus://x"],
    ],
)
def test_cli_says_which_urls_work(
    argv: list[str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("RESCONV_DB", raising=False)
    (tmp_path / "sweep.yml").write_text("name: s\nmax_inputs: 512\nmatrix:\n  ch: [4]\n")
    assert main(argv) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("resconv-tui: database error: database URL")
    assert WORKS in lines[0] and "secret" not in lines[0]


def test_resconv_db_variable_is_checked_the_same(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("RESCONV_DB", "bogus://x")
    assert main(["status"]) == 2
    assert "database URL bogus://x" in capsys.readouterr().err


def test_a_database_in_memory_is_refused_where_people_name_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # `queue` took 21 runs into SQLite's in-memory database and lost them, exit 0.
    import core.worker

    monkeypatch.chdir(tmp_path)
    (tmp_path / "sweep.yml").write_text("name: s\nmax_inputs: 512\nmatrix:\n  ch: [4]\n")
    for argv in (["--db", "sqlite://", "queue", "sweep.yml"], ["--db", "sqlite:///", "ls"]):
        assert main(argv) == 2
        assert "names no file (SQLite would keep the runs in memory" in capsys.readouterr().err
    assert core.worker.main(["--db", "", "--until-empty"]) == 2
    assert "names no file" in capsys.readouterr().err
    # RESCONV_DB set but empty (`export RESCONV_DB=$DB`, DB unset) is as unset: runs.db.
    monkeypatch.setenv("RESCONV_DB", "")
    assert main(["queue", "sweep.yml"]) == 0
    assert (tmp_path / "runs.db").is_file()
    assert Repo.open(str(tmp_path / "runs.db")).list_runs()


def test_a_suggested_command_leaves_the_password_out_and_one_asked_for_says_how() -> None:
    # `queue` and `status` printed "resconv-tui worker --db postgresql+psycopg://u:secret@h/q";
    # the slots' supervisor printed u:***@, which failed as pasted.
    from argparse import Namespace

    from resconv_tui.cli import db_option

    assert db.hint_url("postgresql+psycopg://u:se:cr%40et@h:5432/q") == (
        "postgresql+psycopg://u@h:5432/q"
    )
    assert db.hint_url("/data/runs.db") == "/data/runs.db"
    # A '/' in a password (SQLAlchemy reads it so, and it connects), one in the query, and
    # a SQLite path that looks like an address: printed in clear, or rewritten to another.
    assert db.hint_url("postgresql+psycopg://bob:pa/ss@h/q") == "postgresql+psycopg://bob@h/q"
    with_query = "postgresql+psycopg://u@h/q?password=secret&sslmode=require"
    assert db.hint_url(with_query) == "postgresql+psycopg://u@h/q?sslmode=require"
    assert db.describe(with_query) == "postgresql+psycopg://u@h/q?password=***&sslmode=require"
    assert db.describe("postgresql+psycopg://bob:pa/ss@h/q") == "postgresql+psycopg://bob:***@h/q"
    assert db.hint_url("sqlite:///a://b:c@d.db") == "sqlite:///a://b:c@d.db"
    ssl = "postgresql+psycopg://u@h/q?sslpassword=topsecret"  # the client key's passphrase
    assert db.describe(ssl).endswith("?sslpassword=***") and "topsecret" not in db.hint_url(ssl)
    assert db.without_password("x://u@h?sslpassword=top&a=1") == "x://u@h?sslpassword=***&a=1"
    assert db.hint_url("postgresql+psycopg://u@h/q") == "postgresql+psycopg://u@h/q"
    given = Namespace(db="postgresql+psycopg://u:secret@h/q")
    assert db_option(given) == " --db postgresql+psycopg://u@h/q"
    # Without one, PostgreSQL's refusal says where a password goes.
    error = exc.OperationalError(
        "connect", {}, Exception("connection failed: fe_sendauth: no password supplied")
    )
    with pytest.raises(QueueError) as caught, db.translated("postgresql+psycopg://u@h/q"):
        raise error
    assert str(caught.value) == (
        "cannot connect to database postgresql+psycopg://u@h/q: it asks for a password: give "
        "it in the URL (USER:PASSWORD@HOST), or in PGPASSWORD or ~/.pgpass to keep it off "
        "command lines"
    )
