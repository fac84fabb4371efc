"""Engine, SQLite pragmas, schema creation and one-line database errors.

A bare path (``runs.db``, ``/data/q.db``) means SQLite; anything with ``://`` is
an SQLAlchemy URL (``postgresql+psycopg://...``).

SQLite transactions are begun by hand (pysqlite's own BEGIN handling is
disabled) so that writers can say ``BEGIN IMMEDIATE``: they take the write lock
up front and wait for it under ``busy_timeout``, instead of upgrading a read
lock mid-transaction, which fails at once with "database is locked".
"""

from __future__ import annotations

import os
import re
import shlex
import sqlite3
import stat
import time
from collections.abc import Iterator
from contextlib import contextmanager
from functools import lru_cache
from pathlib import Path
from typing import Any

from sqlalchemy import (
    Column,
    Connection,
    Engine,
    Table,
    create_engine,
    event,
    exc,
    inspect,
    select,
    text,
)
from sqlalchemy.engine import URL, make_url
from sqlalchemy.pool import StaticPool

from core.files import note_database_file
from core.queue.errors import NoDatabase, QueueError
from core.queue.models import SCHEMA_VERSION, TABLES, Meta

DEFAULT_BUSY_TIMEOUT_S = 15.0
# A command that only reads (status, ls, results) adds a newer version's columns only if
# the write lock comes within this: else it reads without them at once, rather than wait
# the busy timeout for a worker or a backup that holds it. Writers add them anyway.
READER_UPGRADE_WAIT_S = 0.5
# The advice ending "locked" (``_message``): `stop`, whose signals went, leaves it out.
TRY_AGAIN_WHEN_FREE = "; try again when it is free"
IMMEDIATE = "resconv_immediate"  # execution option: begin a write transaction
INSUFFICIENT_PRIVILEGE = "42501"  # PostgreSQL's SQLSTATE: e.g. ALTER TABLE by a non-owner
SCHEMA_LOCK_KEY = 0x7265_7363  # PostgreSQL advisory lock held while the schema is checked
BACKENDS = ("sqlite", "postgresql")  # the databases the schema and the queue are tested on
# libpq connection parameters for PostgreSQL (psycopg), so that a server or network that
# stops answering (packets dropped, no reset) is an error within tens of seconds, not a
# hang for the kernel's TCP timeout (about 15 minutes; psycopg's own connect default is
# 130 s). connect_timeout: seconds per address to connect and log in; keepalives: an idle
# connection waiting for an answer probes the server after 15 s, every 5 s, and gives up
# after 3 unanswered probes; tcp_user_timeout (ms; Linux, libpq >= 12): data sent and not
# acknowledged for 30 s ends the connection. None of this cuts a slow query short: the
# server's kernel answers the probes and acknowledges the data meanwhile. A parameter
# the URL's query string gives (``?connect_timeout=3``), or its PG* environment variable
# (PGCONNECT_TIMEOUT), wins over ours; one this libpq does not know is left out.
PG_CONNECT_ARGS: dict[str, str] = {
    "connect_timeout": "10",
    "keepalives": "1",
    "keepalives_idle": "15",
    "keepalives_interval": "5",
    "keepalives_count": "3",
    "tcp_user_timeout": "30000",
}
URLS_THAT_WORK = (
    "a SQLite file path (runs.db), sqlite:///PATH, or postgresql+psycopg://USER@HOST/DATABASE"
)


def normalize_url(url_or_path: str) -> str:
    """``runs.db`` -> ``sqlite:///runs.db``; ``postgres://`` (as Heroku and many hosts
    write it) -> ``postgresql://``, SQLAlchemy's name; other URLs pass through unchanged."""
    if url_or_path.startswith(("postgres://", "postgres+")):
        return "postgresql" + url_or_path.removeprefix("postgres")
    if "://" in url_or_path:
        return url_or_path
    return sqlite_url(url_or_path)


def sqlite_url(path: str | Path) -> str:
    """The SQLite URL of the file ``path``, with what SQLAlchemy's URL would read as other
    than the path escaped: ``?`` starts its options and ``%XX`` is decoded, so ``--db
    'q?x.db'`` queued into a file ``q``, and ``--db a%20b.db`` into ``a b.db``."""
    return "sqlite:///" + str(path).replace("%", "%25").replace("?", "%3F")


@lru_cache(maxsize=32)
def parse_url(url_or_path: str) -> URL:
    """``url_or_path`` parsed, or a one-line QueueError that names it and the URLs that work.

    Every use of a database URL starts here (sqlite_path, describe, open_engine),
    so a typo'd scheme (``bogus://``), a database we do not support (``mysql://``)
    or a driver that is not installed is refused before SQLAlchemy's own
    NoSuchModuleError or the driver's ModuleNotFoundError can surface as a
    traceback. Cached: the dashboard names its database on every refresh.
    """
    url = normalize_url(url_or_path)
    try:
        url.encode("utf-8")  # a path of bytes no text names (s\xff.db): a traceback later
        parsed = make_url(url)
    except (exc.ArgumentError, ValueError):  # UnicodeEncodeError is a ValueError
        raise QueueError(
            f"cannot read database URL {without_password(url)}: use {URLS_THAT_WORK}"
        ) from None
    shown = shown_url(parsed)
    backend = parsed.get_backend_name()
    if backend not in BACKENDS:
        raise QueueError(
            f"database URL {shown}: resconv-tui does not work with {backend!r}; "
            f"use {URLS_THAT_WORK}"
        )
    if backend == "sqlite" and parsed.query:
        # pysqlite ignores them (with a warning on stderr) unless `uri=true`, which then
        # reads the path as a file: URI: `?mode=ro` queued all the same, and `?mode=ro&
        # uri=true` made a new file of another name. The queue sets its own pragmas.
        options = ", ".join(repr(key) for key in parsed.query)
        raise QueueError(
            f"database URL {shown}: a SQLite URL takes no options ({options}); give the "
            f"file alone: {shown_url(parsed.set(query={}))}"
        )
    try:
        # Loads the dialect and imports its driver: what create_engine would do later.
        parsed.get_dialect().import_dbapi()
    except exc.NoSuchModuleError:
        raise QueueError(
            f"database URL {shown}: unknown driver {parsed.get_driver_name()!r}; "
            f"use {URLS_THAT_WORK}"
        ) from None
    except ImportError as error:
        raise QueueError(
            f"database URL {shown}: its driver {error.name or str(error)!r} is not installed; "
            f"use {URLS_THAT_WORK} (PostgreSQL needs .venv/bin/pip install -e '.[postgres]')"
        ) from None
    return parsed


def stored_url(url_or_path: str) -> str:
    """``url_or_path`` if it names a database that outlives the command; a QueueError for
    SQLite's in-memory one (``--db ""``, ``sqlite://``), which would take the runs and
    lose them when the command exits. For what people type; tests may use memory."""
    parsed = parse_url(url_or_path)
    if parsed.get_backend_name() == "sqlite" and parsed.database in (None, "", ":memory:"):
        shown = shown_url(parsed)
        raise QueueError(
            f"database URL {shown!r} names no file (SQLite would keep the runs in memory "
            f"and lose them): use {URLS_THAT_WORK}"
        )
    return url_or_path


def without_password(url: str) -> str:
    """``scheme://user:secret@host`` -> ``scheme://user:***@host`` (and ``?password=***``)
    for a URL make_url rejects."""
    url = re.sub(r"(://[^@]*?:)[^@]*@", r"\1***@", url)
    return re.sub(r"([?&][a-z_]*password=)[^&]*", r"\1***", url, flags=re.IGNORECASE)


def shown_url(parsed: URL, hidden: str | None = "***") -> str:
    """``parsed`` as messages show it: its password, in the address or the query
    (``?password=``), as ``hidden``, or left out where ``hidden`` is None."""
    secret = [key for key in parsed.query if key.lower().endswith("password")]  # sslpassword
    query = {key: value for key, value in parsed.query.items() if key not in secret}
    if hidden is not None:
        query.update({key: hidden for key in secret})
    without = parsed.set(query=query)
    if hidden is None:  # set() takes None for "unchanged"
        return without._replace(password=None).render_as_string(hide_password=False)
    shown = without.render_as_string(hide_password=True)
    for key in secret:  # as the address shows it
        shown = shown.replace(f"{key}=%2A%2A%2A", f"{key}=***")
    return shown


def hint_url(url_or_path: str) -> str:
    """``--db`` for a command a message suggests: as given, but without a password
    (``scheme://user@host``), which a terminal, a log or a screenshot must not show;
    PostgreSQL's PGPASSWORD or ~/.pgpass gives it to the command (a *** in its place
    made a command that failed as pasted). A SQLite path is as given, whatever it holds."""
    try:
        parsed = parse_url(url_or_path)
    except QueueError:
        return without_password(url_or_path)
    if parsed.get_backend_name() == "sqlite":
        return url_or_path
    return shown_url(parsed, hidden=None)


def holds_password(url_or_path: str) -> bool:
    """Whether ``url_or_path`` holds a password (``user:secret@``, ``?password=``), which
    ``hint_url`` leaves out: such a URL goes to a worker process it starts in its
    environment (``RESCONV_DB``), not on its command line, which ``ps`` shows every user."""
    return hint_url(url_or_path) != url_or_path


def hint_option(url_or_path: str) -> str:
    """`` --db X`` for a command a message suggests (``hint_url``, quoted for a shell):
    without it, a command pasted into a shell acts on ./runs.db, not this database."""
    return f" --db {shlex.quote(hint_url(url_or_path))}"


def sqlite_path(url: str) -> Path | None:
    """The file behind a SQLite URL (None for other databases and ``:memory:``)."""
    parsed = parse_url(url)
    if parsed.get_backend_name() != "sqlite" or parsed.database in (None, "", ":memory:"):
        return None
    return Path(parsed.database)


def is_new_file(url: str) -> bool:
    """Whether opening ``url`` would create a new SQLite file (say so: a typo'd ``--db``)."""
    path = sqlite_path(url)
    return path is not None and _no_file_yet(path)


def _no_file_yet(path: Path) -> bool:
    """Whether ``path`` holds no SQLite database yet: missing, or empty (`touch runs.db`)."""
    if not _exists(path):
        return True
    try:
        return path.stat().st_size == 0
    except OSError:
        return False


def _exists(path: Path) -> bool:
    """``path.exists()``, but a folder it cannot look into (Python 3.11 raises) is the
    open's to report, with its reason: not an error here."""
    try:
        return path.exists()
    except OSError:
        return True


def describe(url: str) -> str:
    """How messages name a database: the file for SQLite, the URL without password else."""
    path = sqlite_path(url)
    if path is not None:
        return str(path)
    return shown_url(parse_url(url))


def open_engine(
    url: str,
    *,
    create: bool = True,
    busy_timeout_s: float = DEFAULT_BUSY_TIMEOUT_S,
    upgrade_wait_s: float | None = None,
    upgrade_or_fail: bool = False,
) -> Engine:
    """An engine with the schema checked (and created when ``create``).

    ``create=False`` refuses to make a new SQLite file: ``status`` on a typo'd
    path should say "no database", not show an empty queue.
    ``upgrade_wait_s``: how long adding a newer version's columns to a SQLite file waits
    for another process's write lock before reading without them (None: the busy
    timeout). A command that only reads passes a short one (``READER_UPGRADE_WAIT_S``).
    ``upgrade_or_fail``: a lock that keeps the columns from being added fails the open
    ("locked", after the wait) instead: for a command that writes next, whose own write
    would wait the busy timeout for the same lock again.
    """
    url = normalize_url(url)
    path = sqlite_path(url)
    if path is not None:
        _refuse_other_files(path)
    if path is not None and not create and _no_file_yet(path):
        # An empty file (`touch runs.db`) too: opening it would make it a database.
        said = "no database at" if not _exists(path) else "no resconv-tui database in"
        raise _no_database_file(path, said)
    engine = _make_engine(url, busy_timeout_s)
    try:
        with translated(url, busy_timeout_s):
            _ensure_schema(engine, url, upgrade_wait_s, create, upgrade_or_fail)
    except QueueError:
        engine.dispose()
        raise
    if path is not None:
        note_database_file(path)  # no other reader in this process opens it (sweep files)
    return engine


# A database file holds at least its first page, and a page is 512 bytes or more.
SMALLEST_DATABASE = 512


def _refuse_other_files(path: Path) -> None:
    """Refuse a ``path`` that is there but too short to hold a SQLite database.

    SQLite reads a file shorter than its 100-byte header as an empty database: `queue`
    wrote its tables over a 1-byte file, and the person's file was lost (a longer file
    without SQLite's header SQLite refuses itself, "file is not a database"). By its
    size alone: reading the header opened the file, and closing any descriptor of it
    drops every POSIX lock this process holds on it, its SQLite connections' too (a
    worker's runs then vanished under the test that read them). A device (``--db
    /dev/null``) said "disk I/O error: ... the disk or its file system failed". An
    empty file is made a database as a new one is (``_no_file_yet``); a folder, a
    missing file and one it may not read are the open's to explain (``_why_not``).
    """
    try:
        status = path.stat()
    except OSError:
        return
    if stat.S_ISDIR(status.st_mode):
        return
    if not stat.S_ISREG(status.st_mode):
        raise QueueError(
            f"{path} is not a regular file ({_file_kind(status.st_mode)}): give a SQLite "
            f"database file, e.g. runs.db"
        )
    if 0 < status.st_size < SMALLEST_DATABASE:
        raise QueueError(_not_sqlite(str(path)))


def _file_kind(mode: int) -> str:
    """What a file that is neither a regular file nor a folder is, in words."""
    kinds = ((stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device"),
             (stat.S_ISFIFO, "a named pipe"), (stat.S_ISSOCK, "a socket"))  # fmt: skip
    return next((said for test, said in kinds if test(mode)), "a special file")


def _not_sqlite(where: str) -> str:
    """SQLite's "file is not a database", or ours found first, as one message."""
    return f"{where} is not a SQLite database (wrong file, or corrupt)"


def _make_engine(url: str, busy_timeout_s: float) -> Engine:
    parsed = parse_url(url)
    if parsed.get_backend_name() != "sqlite":
        return create_engine(url, pool_pre_ping=True, connect_args=pg_connect_args(parsed))
    kwargs: dict[str, Any] = {}
    if parsed.database in (None, "", ":memory:"):
        # One shared connection, or every connection would see its own empty database.
        kwargs = {"poolclass": StaticPool, "connect_args": {"check_same_thread": False}}
    engine = create_engine(url, **kwargs)
    _install_sqlite_hooks(engine, busy_timeout_s)
    return engine


def pg_connect_args(parsed: URL) -> dict[str, str]:
    """``PG_CONNECT_ARGS`` less those the URL or the environment sets, for psycopg's URLs
    (other drivers take other arguments: nothing for them)."""
    if parsed.get_dialect().driver != "psycopg":
        return {}
    known = _libpq_parameters()
    return {
        key: value
        for key, value in PG_CONNECT_ARGS.items()
        if key in known and key not in parsed.query and not os.environ.get(known[key] or "")
    }


@lru_cache(maxsize=1)
def _libpq_parameters() -> dict[str, str | None]:
    """The connection parameters the installed libpq knows, each with its environment
    variable (None where it has none)."""
    from psycopg import pq

    return {
        d.keyword.decode(): d.envvar.decode() if d.envvar else None
        for d in pq.Conninfo.get_defaults()
    }


def _install_sqlite_hooks(engine: Engine, busy_timeout_s: float) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: sqlite3.Connection, _record: Any) -> None:
        dbapi_conn.isolation_level = None  # we emit BEGIN ourselves (see module doc)
        cursor = dbapi_conn.cursor()
        cursor.execute(f"PRAGMA busy_timeout = {int(busy_timeout_s * 1000)}")
        _set_wal(cursor, busy_timeout_s)
        cursor.execute("PRAGMA synchronous = NORMAL")  # WAL + NORMAL: durable at checkpoints
        cursor.execute("PRAGMA foreign_keys = ON")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        immediate = conn.get_execution_options().get(IMMEDIATE, False)
        conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")


def _set_wal(cursor: sqlite3.Cursor, wait_s: float) -> None:
    """Put the database in WAL mode, waiting up to ``wait_s`` for another connection.

    SQLite does not call the busy handler here while another connection writes a file
    still in rollback mode: on a new database (an empty file stores no journal mode
    until its first write) one of several processes opening it at once failed at once
    with "database is locked" while another made the schema (7 in 300 tries of six
    threads). So this waits as ``busy_timeout`` would.
    """
    deadline = time.monotonic() + wait_s
    pause_s = 0.001
    while True:
        try:
            cursor.execute("PRAGMA journal_mode = WAL")
            return
        except sqlite3.OperationalError as error:
            if "locked" not in str(error) or time.monotonic() >= deadline:
                raise
        time.sleep(pause_s)
        pause_s = min(pause_s * 2, 0.05)


def _ensure_schema(
    engine: Engine,
    url: str,
    upgrade_wait_s: float | None = None,
    create: bool = True,
    upgrade_or_fail: bool = False,
) -> None:
    """Check the schema, and create it or add missing columns where needed.

    The check is a plain read, so a read-only command (``status``, ``ls``) works while
    another process holds SQLite's write lock (WAL lets readers read). Only when
    something must be made is the write transaction taken (``BEGIN IMMEDIATE``; on
    PostgreSQL also an advisory lock, so two workers starting on a fresh database do
    not both CREATE TABLE), and the check made again inside it: another process may
    have made it meanwhile.
    """
    with engine.connect() as conn, conn.begin():
        work = _schema_work(conn, url)
    if not work:
        return
    if work == "create" and not create:
        # An empty PostgreSQL database: `status`, `ls` and a dry run made the tables in
        # it, where a wrong --db should say there are none. (A role that may not use the
        # schema sees no tables either.)
        raise _no_tables(url)
    try:
        _make_schema(engine, url, upgrade_wait_s if work == "columns" else None)
    except exc.OperationalError as error:
        # An older version's database in a SQLite file this process may not write (a
        # finished sweep kept read-only, another user's runs.db): `status`, `ls` and
        # `results` said "cannot write to database" where a newer one read fine. It is
        # read as it is, the columns it lacks read as unknown (``present_columns``), as
        # for a PostgreSQL role that does not own the tables; a write says why it fails.
        # The same while another process holds the write lock past the busy timeout (an
        # older worker, a backup), or past ``upgrade_wait_s`` for a command that only
        # reads (it waited the whole 15 s first): the next open adds them.
        refused = str(error.orig).lower()
        if work != "columns" or not ("readonly database" in refused or "locked" in refused):
            raise
        if "locked" in refused and upgrade_or_fail:
            # A command that writes (cancel, queue) waited the whole busy timeout here,
            # then its own write waited it again for the same lock: 30 s, then "waited
            # 15 s". It says so now, at the first timeout; its SQL may name the columns.
            raise


def _no_tables(url: str) -> NoDatabase:
    """The refusal of a command that makes no database, for one with no tables yet.

    A SQLite file is said as an empty one is (``open_engine``): a new runs.db has a
    header and no tables for a moment while the first process makes them (the switch to
    WAL writes the header first), and a command started then said "no tables this role
    can see", PostgreSQL's words, and ``--db sqlite:///runs.db`` for ``--db runs.db``."""
    path = sqlite_path(url)
    if path is not None:
        return _no_database_file(path, "no resconv-tui database in")
    return NoDatabase(
        f"no resconv-tui database in {describe(url)} (no tables this role can see; "
        f"{_queue_first(shlex.quote(hint_url(url)))})"
    )


def _no_database_file(path: Path, said: str) -> NoDatabase:
    """``said`` (no database at, or in) the SQLite file ``path``, and how to make one;
    in a folder that does not exist (or is a file), that instead: "queue runs first" with
    the same --db failed in turn ("the folder runz does not exist"), a typo being likelier."""
    trouble = folder_trouble(path)
    if trouble is not None:
        return NoDatabase(f"{said} {path}: {trouble} (a typo in --db or RESCONV_DB?)")
    return NoDatabase(f"{said} {path} ({_queue_first(shlex.quote(str(path)))})")


def folder_trouble(path: Path) -> str | None:
    """Why ``path``'s folder cannot hold it: not there, or a file (``--db notes.txt/runs.db``
    read as a folder that did not exist, or asked for a queue that then failed); None
    where it is a folder, or cannot be told (a folder this user may not look into is the
    open's to report)."""
    folder = path.absolute().parent
    try:
        if folder.is_dir():
            return None
        if folder.exists():
            return f"{folder} is a file, not a folder"
        return f"the folder {folder} does not exist"
    except OSError:
        return None


def _queue_first(db_option: str) -> str:
    """What a refusal for want of a database suggests: the command that makes one."""
    return f"queue runs first: resconv-tui queue FILE.yml --db {db_option}"


def _make_schema(engine: Engine, url: str, wait_s: float | None = None) -> None:
    """Create the schema or add the missing columns, in one write transaction; on SQLite
    waiting ``wait_s`` for the write lock (None: the connection's busy timeout)."""
    with engine.connect() as conn:
        shorter = wait_s is not None and conn.dialect.name == "sqlite"
        # On the driver's connection: through ``conn`` the PRAGMA would begin SQLAlchemy's
        # transaction before the BEGIN IMMEDIATE below. For this transaction only: the
        # connection goes back to the pool, its later writes to wait as usual.
        raw: Any = conn.connection.driver_connection
        if shorter:
            usual = raw.execute("PRAGMA busy_timeout").fetchone()[0]
            raw.execute(f"PRAGMA busy_timeout = {int((wait_s or 0) * 1000)}")
        try:
            conn.execution_options(**{IMMEDIATE: True})
            with conn.begin():
                if conn.dialect.name == "postgresql":
                    conn.execute(
                        text("SELECT pg_advisory_xact_lock(:key)"), {"key": SCHEMA_LOCK_KEY}
                    )
                if _schema_work(conn, url) == "create":
                    _create_schema(conn)
                else:
                    add_missing_columns(conn)
        finally:
            if shorter:
                raw.execute(f"PRAGMA busy_timeout = {int(usual)}")


def _schema_work(conn: Connection, url: str) -> str | None:
    """What the database needs: "create" (no tables yet), "columns" (a newer version's
    columns to add), or None (ready). A QueueError where it is not ours, has a version
    this one does not know, or lacks tables."""
    names = set(inspect(conn).get_table_names())
    # Another program's "meta" table is not ours: "column meta.value does not exist".
    ours = "meta" in names and {"key", "value"} <= {
        column["name"] for column in inspect(conn).get_columns("meta")
    }
    if not ours:
        if names:
            raise _not_ours(url, names)
        return "create"
    _check_version(conn, url, names)
    if missing := [t.name for t in TABLES if t.name not in names]:
        # Dropped by hand, or a copy cut short: a worker claimed a run, then
        # stopped on "no such table", leaving the run "running".
        raise QueueError(
            f"{describe(url)} lacks the table{'s' * (len(missing) > 1)} "
            f"{', '.join(missing)}: it is damaged; use a backup or another --db"
        )
    return "columns" if _missing_columns(conn) else None


def _create_schema(conn: Connection) -> None:
    for table in TABLES:
        table.create(conn)
    conn.execute(Meta.__table__.insert().values(key="schema_version", value=str(SCHEMA_VERSION)))  # type: ignore[attr-defined]


def add_missing_columns(conn: Connection) -> None:
    """Add the columns this version's tables have and the database's lack (made by an
    older resconv-tui). Each is nullable with no default: rows already there read NULL,
    "not known", and an older resconv-tui, which never names them, works on as before.

    On PostgreSQL only a table's owner may add a column: a box sharing the queue under
    another role leaves them out (in a savepoint, so the rest goes on), and works
    without them (``present_columns``) until the owner opens the database once."""
    for table, column in _missing_columns(conn):
        # A column rows would need a value in is a change older code cannot live
        # with: that takes a SCHEMA_VERSION and a migration, not this.
        assert column.nullable and column.server_default is None, column
        kind = column.type.compile(dialect=conn.dialect)
        add = f'ALTER TABLE "{table.name}" ADD COLUMN "{column.name}" {kind}'
        if conn.dialect.name != "postgresql":
            conn.execute(text(add))
            continue
        try:
            with conn.begin_nested():
                conn.execute(text(add))
        except exc.ProgrammingError as error:
            if getattr(error.orig, "sqlstate", None) != INSUFFICIENT_PRIVILEGE:
                raise


def _missing_columns(conn: Connection) -> list[tuple[Table, Column[Any]]]:
    """(table, column) for each column of this version's tables the database lacks."""
    inspector = inspect(conn)
    missing: list[tuple[Table, Column[Any]]] = []
    for table in TABLES:
        present = {column["name"] for column in inspector.get_columns(table.name)}
        missing += [(table, column) for column in table.columns if column.name not in present]
    return missing


def present_columns(engine: Engine, table_name: str) -> frozenset[str]:
    """The columns the database's table has (fewer than the model's where a role that
    does not own it opened a database made by an older version)."""
    with engine.connect() as conn:
        return frozenset(column["name"] for column in inspect(conn).get_columns(table_name))


def _not_ours(url: str, names: set[str]) -> QueueError:
    return QueueError(
        f"{describe(url)} is not a resconv-tui database (it has tables: {', '.join(sorted(names))})"
    )


def _check_version(conn: Connection, url: str, names: set[str]) -> None:
    meta = Meta.__table__  # type: ignore[attr-defined]
    raw = conn.execute(select(meta.c.value).where(meta.c.key == "schema_version")).scalar()
    try:
        version = int(raw) if raw is not None else None
    except ValueError:
        version = None
    if raw is None and not names & {table.name for table in TABLES if table.name != "meta"}:
        # Another program's meta(key, value) (a browser's History file has one): not ours.
        raise _not_ours(url, names)
    if raw is None:  # a row deleted by hand, a copy cut short: no newer version says so
        raise QueueError(
            f"{describe(url)} has no schema version in its meta table: it is damaged; use a "
            "backup or another --db"
        )
    if version is None or version > SCHEMA_VERSION or version < 1:
        raise QueueError(
            f"{describe(url)} has database schema version {raw!s}, but this resconv-tui "
            f"knows only versions 1..{SCHEMA_VERSION}: upgrade resconv-tui or use another --db"
        )


@contextmanager
def translated(url: str, busy_timeout_s: float = DEFAULT_BUSY_TIMEOUT_S) -> Iterator[None]:
    """Turn driver errors into one-line QueueErrors that name the database."""
    try:
        yield
    except exc.DBAPIError as error:
        raise QueueError(_message(url, error, busy_timeout_s)) from error


def _message(url: str, error: exc.DBAPIError, busy_timeout_s: float) -> str:
    where = describe(url)
    text = str(error.orig).strip().splitlines()[0] if error.orig is not None else str(error)
    low = text.lower()
    if "file is not a database" in low:
        return _not_sqlite(where)
    if "locked" in low or "busy" in low or "lock timeout" in low:  # the last: PostgreSQL
        return (
            f"database {where} is locked by another process "
            f"(waited {busy_timeout_s:g} s){TRY_AGAIN_WHEN_FREE}"
        )
    if "timeout expired" in low or "timed out" in low:  # PostgreSQL: PG_CONNECT_ARGS at work
        return (
            f"no answer from database {where} ({text}): the server is down or busy, "
            f"or the network drops its packets"
        )
    if "no password supplied" in low:  # PostgreSQL asked for one, and the URL had none
        return (
            f"cannot connect to database {where}: it asks for a password: give it in the URL "
            "(USER:PASSWORD@HOST), or in PGPASSWORD or ~/.pgpass to keep it off command lines"
        )
    if "unable to open database file" in low:
        return f"cannot open database {where}: {_why_cannot_open(sqlite_path(url))}"
    if "disk i/o" in low or "readonly database" in low:
        # SQLite could not read or write the file: not damage, which says "malformed".
        verb = "write to" if "readonly" in low else "read or write"
        return f"cannot {verb} database {where} ({text}): {_why_no_write(sqlite_path(url))}"
    if "malformed" in low:
        return f"database {where} is damaged: {text}"
    return f"database {where}: {text}"


def _why_no_write(path: Path | None) -> str:
    """What SQLite's "disk I/O error" or "attempt to write a readonly database" means for
    ``path``: the file or its -wal/-shm made read-only or immutable (``chattr +i``), a
    read-only mount, or, where none of these is found, the disk or file system."""
    unknown = (
        "no read-only file or mount found here: the disk or its file system failed, "
        "or the files were made read-only and writable again meanwhile (dmesg may say)"
    )
    if path is None:
        return unknown
    try:
        folder = path.absolute().parent
        if _read_only_mount(folder):
            return (
                f"the file system holding {folder} is mounted read-only; copy {path.name} "
                f"to a writable folder and use --db there"
            )
        files = [path, path.with_name(f"{path.name}-wal"), path.with_name(f"{path.name}-shm")]
        if stuck := [f.name for f in files if _exists(f) and not _writable(f)]:
            return (
                f"{', '.join(stuck)} {'is' if len(stuck) == 1 else 'are'} not writable "
                f"(read-only mode, or immutable: lsattr shows 'i'); SQLite writes "
                f"{path.name} and its -wal and -shm files; make them writable"
            )
        if not _folder_writable(folder) and not all(_exists(f) for f in files):
            return _why_not(path)
        # A full disk reads as this too: SQLite could not grow -shm, even to read. Its
        # files are beside the file a link names: that file system is the one.
        beside = path.resolve().parent
        if (free := _free_bytes(beside)) < LOW_SPACE_BYTES:
            return (
                f"the file system holding {beside} is full ({free:,} bytes free); SQLite "
                f"needs room beside {path.name} for its -wal and -shm files, even to read: "
                "free some space"
            )
    except OSError as error:
        return f"cannot look at its files ({error.strerror or error})"
    return unknown


LOW_SPACE_BYTES = 1 << 20  # under this, a disk I/O error is most likely the full disk's


def _free_bytes(folder: Path) -> int:
    """Bytes this user may still write on the file system holding ``folder``."""
    stats = os.statvfs(folder)
    blocks = stats.f_bfree if os.geteuid() == 0 else stats.f_bavail  # root has the reserve
    return blocks * stats.f_frsize


def _writable(path: Path) -> bool:
    """Whether ``path`` may be written: for root too, os.access says no to an immutable
    file (``chattr +i``) and to one on a read-only mount, though not to mode bits."""
    return os.access(path, os.W_OK)


def _why_cannot_open(path: Path | None) -> str:
    """What SQLite's bare "unable to open database file" means for ``path``.

    The usual surprise is a database in a read-only folder (a read-only mount, a
    shared results folder): the file is there and readable, but SQLite in WAL
    mode must create runs.db-wal and runs.db-shm beside it even to read.
    """
    if path is None:
        return "missing folder or no permission"
    try:  # Python 3.11's is_dir() raises PermissionError under a folder it cannot enter
        return _why_not(path)
    except OSError as error:
        return f"no permission to look into its folder ({error.strerror or error})"


def _why_not(path: Path) -> str:
    if path.is_dir():
        return f"{path} is a folder: give a database file in it, e.g. {path / 'runs.db'}"
    if (trouble := folder_trouble(path)) is not None:
        return trouble
    folder = path.absolute().parent
    if path.exists() and not os.access(path, os.R_OK):
        return f"no permission to read {path}"
    if not _folder_writable(folder) and not path.exists():
        return f"the folder {folder} is read-only, so {path.name} cannot be created there"
    if not _folder_writable(folder):
        return (
            f"the folder {folder} is read-only, and SQLite needs to write its journal and "
            f"lock files ({path.name}-wal, {path.name}-shm) beside {path.name}, even to read it; "
            f"copy {path.name} to a writable folder and use --db there"
        )
    return "no permission to open it or to create files in its folder"


def _folder_writable(folder: Path) -> bool:
    """Whether files can be created in ``folder``: its mode, and whether its mount is read-only.

    The mount's read-only flag is asked directly, not only through os.access:
    for root, os.access ignores the mode bits, so the flag is what root can trust.
    """
    return not _read_only_mount(folder) and os.access(folder, os.W_OK | os.X_OK)


def _read_only_mount(folder: Path) -> bool:
    try:
        return bool(os.statvfs(folder).f_flag & os.ST_RDONLY)
    except OSError:
        return False
