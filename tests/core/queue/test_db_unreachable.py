"""A PostgreSQL server that stops answering (packets dropped, no reset) is an error
within seconds, not a hang: libpq's connect timeout, TCP keepalives and TCP user
timeout are set on every connection, and a URL's own values win."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable, Iterator

import pytest
from sqlalchemy import text

from core.queue import QueueError, Repo, db

pytest.importorskip("psycopg")

GUARD_S = 20.0  # the test fails (instead of hanging) when the open takes longer


@pytest.fixture
def silent_port() -> Iterator[int]:
    """A local port that accepts TCP connections and never sends a byte: a server whose
    answers are lost. Its connections are closed at the end, which frees a client still
    waiting on one (the old code's hang) so that the test session can end."""
    server = socket.create_server(("127.0.0.1", 0))
    server.settimeout(0.2)
    accepted: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        while not stop.is_set():
            try:
                accepted.append(server.accept()[0])
            except TimeoutError:
                continue
            except OSError:
                return

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    try:
        yield server.getsockname()[1]
    finally:
        stop.set()
        thread.join(2)
        server.close()
        for conn in accepted:
            conn.close()


def outcome_within(seconds: float, action: Callable[[], object]) -> tuple[BaseException, float]:
    """The exception ``action`` raises and how long it took; a test failure if it has
    not ended after ``seconds`` (run in a daemon thread, so a hang cannot block CI)."""
    result: list[BaseException | None] = []

    def run() -> None:
        try:
            action()
        except BaseException as error:  # noqa: BLE001 - handed to the test
            result.append(error)
        else:
            result.append(None)

    start = time.monotonic()
    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(seconds)
    took = time.monotonic() - start
    if thread.is_alive():
        pytest.fail(f"still waiting after {seconds:g} s for a server that never answers")
    error = result[0]
    assert error is not None, "opened a database on a server that never answers"
    return error, took


def test_a_silent_server_is_a_queue_error_naming_the_database(silent_port: int) -> None:
    # The URL's connect_timeout=2 wins over ours (10 s), so this takes about 2 s.
    url = f"postgresql+psycopg://u@127.0.0.1:{silent_port}/db?connect_timeout=2"
    error, took = outcome_within(GUARD_S, lambda: Repo.open(url))
    assert isinstance(error, QueueError), repr(error)
    message = str(error)
    assert f"127.0.0.1:{silent_port}/db" in message and "\n" not in message
    assert "no answer" in message, message
    assert took < 8, f"took {took:.1f} s: the URL's connect_timeout=2 was not used"


def test_our_connect_timeout_applies_without_one_in_the_url(
    silent_port: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Ours, made short here so the test is quick; the real default is 10 s.
    monkeypatch.setitem(db.PG_CONNECT_ARGS, "connect_timeout", "2")
    monkeypatch.delenv("PGCONNECT_TIMEOUT", raising=False)
    url = f"postgresql+psycopg://u@127.0.0.1:{silent_port}/db"
    error, took = outcome_within(GUARD_S, lambda: Repo.open(url))
    assert isinstance(error, QueueError), repr(error)
    assert took < 8, f"took {took:.1f} s"


def test_status_on_a_silent_server_fails_in_one_line(
    silent_port: int, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # The tester's case as it was, with our connect timeout made short as above (the real
    # default, 10 s, is checked below): the command gives up after one try, not more.
    from resconv_tui.cli import main

    monkeypatch.setitem(db.PG_CONNECT_ARGS, "connect_timeout", "2")
    monkeypatch.delenv("PGCONNECT_TIMEOUT", raising=False)
    url = f"postgresql+psycopg://u@127.0.0.1:{silent_port}/db"
    codes: list[int] = []

    def status() -> None:
        codes.append(main(["--db", url, "status"]))
        raise RuntimeError("returned")  # outcome_within wants an exception

    error, took = outcome_within(GUARD_S, status)
    assert codes == [2], repr(error)
    assert took < 4, f"took {took:.1f} s: more than one 2 s try"
    err = capsys.readouterr().err
    assert f"127.0.0.1:{silent_port}/db" in err and "no answer" in err, err
    assert "Traceback" not in err


def test_the_url_and_the_environment_win_over_our_parameters(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("PGCONNECT_TIMEOUT", raising=False)
    ours = db.pg_connect_args(db.parse_url("postgresql+psycopg://u@h/d"))
    assert ours["connect_timeout"] == "10" and ours["keepalives"] == "1"
    assert {"keepalives_idle", "keepalives_interval", "keepalives_count"} <= set(ours)
    url = "postgresql+psycopg://u@h/d?connect_timeout=3&keepalives_idle=60"
    args = db.pg_connect_args(db.parse_url(url))
    assert "connect_timeout" not in args and "keepalives_idle" not in args
    assert args["keepalives_count"] == "3"
    monkeypatch.setenv("PGCONNECT_TIMEOUT", "4")
    assert "connect_timeout" not in db.pg_connect_args(db.parse_url("postgresql://u@h/d"))


def test_the_installed_libpq_takes_every_parameter(pg_admin_url: str) -> None:
    # A real connection: a keyword libpq does not know would fail it ("invalid
    # connection option"); each one set shows in the connection's parameters.
    from postgres_server import fresh_database

    repo = Repo.open(fresh_database(pg_admin_url))
    try:
        with repo.engine.connect() as conn:
            conn.execute(text("SELECT 1"))
            dbapi = conn.connection.dbapi_connection
            assert dbapi is not None
            parameters = dbapi.info.get_parameters()  # type: ignore[attr-defined]
    finally:
        repo.close()
    for key, value in db.PG_CONNECT_ARGS.items():
        if key == "tcp_user_timeout" and key not in db._libpq_parameters():
            continue  # libpq < 12: left out
        assert parameters.get(key) == value, (key, parameters)
