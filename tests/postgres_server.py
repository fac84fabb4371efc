"""A throwaway PostgreSQL server for the queue tests (a plain module: conftest uses it).

The tests that take ``repo`` run once on SQLite and once on PostgreSQL. The server
is the one named by ``RESCONV_TEST_PG_URL`` (a database URL the tests may create
databases with), else one started here from the PostgreSQL binaries on this machine
(``initdb`` + ``pg_ctl``, a Unix socket in a temporary folder, trust auth, as the
``postgres`` user when run as root, since initdb refuses root). Without either the
PostgreSQL cases are skipped, saying why.
"""

from __future__ import annotations

import itertools
import os
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy.engine import make_url

URL_ENV = "RESCONV_TEST_PG_URL"
_COUNTER = itertools.count(1)


def server_binaries() -> Path | None:
    found = shutil.which("initdb")
    if found:
        return Path(found).resolve().parent
    versions = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"), reverse=True)
    return versions[0].parent if versions else None


@contextmanager
def running_server() -> Iterator[str]:
    """Yield an admin URL (``postgresql+psycopg://...``) of a server for the test session."""
    url = os.environ.get(URL_ENV)
    if url:
        yield url
        return
    binaries = server_binaries()
    if binaries is None:
        raise RuntimeError("no PostgreSQL server binaries (initdb) on this machine")
    as_user: list[str] = []
    root = Path(tempfile.mkdtemp(prefix="resconv-pg-"))
    if os.geteuid() == 0:  # initdb refuses root: run the server as 'postgres'
        as_user = ["runuser", "-u", "postgres", "--"]
        shutil.chown(root, "postgres")
    root.chmod(0o755)
    data, port = root / "data", _free_port()
    try:
        _run([*as_user, str(binaries / "initdb"), "-D", str(data), "-U", "postgres",
              "--auth=trust", "-E", "UTF8", "--no-sync"])  # fmt: skip
        options = f"-p {port} -k {root} -c listen_addresses='' -c fsync=off"
        _run([*as_user, str(binaries / "pg_ctl"), "-D", str(data), "-l", str(root / "log"),
              "-o", options, "-w", "start"])  # fmt: skip
        try:
            yield f"postgresql+psycopg://postgres@/postgres?host={root}&port={port}"
        finally:
            _run([*as_user, str(binaries / "pg_ctl"), "-D", str(data), "-m", "immediate", "stop"])
    finally:
        shutil.rmtree(root, ignore_errors=True)


def fresh_database(admin_url: str) -> str:
    """Create an empty database on the server and return its URL."""
    import psycopg

    url = make_url(admin_url)
    name = f"resconv_test_{os.getpid()}_{next(_COUNTER)}"
    host, port = url.query.get("host"), url.query.get("port")
    dsn = {"host": host or url.host, "port": port or url.port, "user": url.username}
    with psycopg.connect(dbname=url.database, autocommit=True, **dsn) as conn:  # type: ignore[arg-type]
        conn.execute(f'CREATE DATABASE "{name}"')
    return url.set(database=name).render_as_string(hide_password=False)


def _run(command: list[str]) -> None:
    done = subprocess.run(command, capture_output=True, text=True, timeout=60)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(command[:6])}...: {done.stderr.strip()[-500:]}")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])
