"""The bench scripts' CPU-testable pieces (their GPU runs are in bench/README.md)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import worker_speed  # noqa: E402
from core.queue import FinalFigures, Repo  # noqa: E402


def test_worker_speed_summarises_a_real_database(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    sys.path.insert(0, str(Path(__file__).parent / "core" / "queue"))
    from queue_helpers import tiny_runs

    url = f"sqlite:///{tmp_path / 'runs.db'}"
    repo = Repo.open(url)
    repo.enqueue(tiny_runs(2))
    worker = repo.register_worker("host", 1, "cuda:0")
    run = repo.claim(worker)
    assert run is not None
    figures = FinalFigures(validation_loss=0.1, inputs_per_s=1000.0, path_used="cuda-graph bf16")
    repo.finish(run.id, worker, figures)
    repo.close()
    assert worker_speed.main(["--db", url, "--runs"]) == 0
    out = capsys.readouterr().out
    assert "exp: 2 runs (1 succeeded, 1 queued)" in out
    assert "1 x cuda-graph bf16" in out and "0.100000" in out


def test_worker_speed_names_a_missing_database_in_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert worker_speed.main(["--db", str(tmp_path / "none.db")]) == 2
    assert "no database at" in capsys.readouterr().err
