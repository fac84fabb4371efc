"""Fixtures for the queue tests: a fresh queue on SQLite, and the same on PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from postgres_server import fresh_database

from core.queue import Repo

BACKENDS = ["sqlite", "postgresql"]


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "runs.db"


@pytest.fixture(params=BACKENDS)
def db_url(request: pytest.FixtureRequest, db_path: Path) -> str:
    """A new, empty database: a SQLite file, or a fresh PostgreSQL database."""
    if request.param == "sqlite":
        return f"sqlite:///{db_path}"
    return fresh_database(request.getfixturevalue("pg_admin_url"))


@pytest.fixture
def repo(db_url: str) -> Iterator[Repo]:
    repo = Repo.open(db_url, busy_timeout_s=5)
    yield repo
    repo.close()
