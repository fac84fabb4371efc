"""Fixtures for the queue tests: a fresh SQLite queue file."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from core.queue import Repo


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "runs.db"


@pytest.fixture
def repo(db_path: Path) -> Iterator[Repo]:
    repo = Repo.open(str(db_path), busy_timeout_s=5)
    yield repo
    repo.close()
