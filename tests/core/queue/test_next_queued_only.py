"""``resconv-tui next`` moves queued runs only and names the others."""

from __future__ import annotations

from pathlib import Path

import pytest
from queue_helpers import tiny_runs

from core.queue import FinalFigures, Repo, RunStatus
from resconv_tui.cli import main


@pytest.fixture
def repo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Repo:
    """Run 1 failed, 2 cancelled, 3 succeeded, 4 running; 5 and 6 queued."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("RESCONV_DB", raising=False)
    repo = Repo.open("runs.db")
    repo.enqueue(tiny_runs(6))
    worker = repo.register_worker("h", 1, "cpu")
    claimed = [repo.claim(worker) for _ in range(4)]  # oldest first: 1, 2, 3, 4
    assert [run.id for run in claimed if run is not None] == [1, 2, 3, 4]
    repo.fail(1, worker, "boom")
    repo.mark_cancelled(2, worker)
    repo.finish(3, worker, FinalFigures(train_seconds=1.0))
    S = RunStatus
    assert [run.status for run in repo.list_runs()] == [
        S.FAILED, S.CANCELLED, S.SUCCEEDED, S.RUNNING, S.QUEUED, S.QUEUED
    ]  # fmt: skip
    return repo


def priorities(repo: Repo) -> list[int]:
    return [run.priority for run in repo.list_runs()]


def test_a_failed_run_is_refused_with_the_retry_command(
    repo: Repo, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["next", "1"]) == 2
    out, err = capsys.readouterr()
    assert out == ""
    assert err == (
        "resconv-tui: not allowed: run 1 has failed: only queued runs wait for a worker "
        "(resconv-tui retry 1 queues it again); nothing changed\n"
    )
    assert priorities(repo) == [0] * 6


def test_none_queued_names_each_run(repo: Repo, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--db", "runs.db", "next", "2", "3", "4", "1"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1
    assert "run 2 is cancelled, run 3 has succeeded, run 4 is running, run 1 has failed" in err[0]
    assert "(resconv-tui retry 2 1 --db runs.db queues them again)" in err[0]
    assert priorities(repo) == [0] * 6


def test_queued_runs_move_and_the_others_are_named(
    repo: Repo, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["next", "3", "6"]) == 0
    out, err = capsys.readouterr()
    assert out == "run 6 trains next (priority 1)\n"
    assert err == (
        "resconv-tui: left as they are: run 3 has succeeded: only queued runs wait for a worker\n"
    )
    assert priorities(repo) == [0, 0, 0, 0, 0, 1]


def test_an_unknown_id_still_changes_nothing(
    repo: Repo, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["next", "5", "1", "99"]) == 2
    assert "no run with id 99" in capsys.readouterr().err
    assert priorities(repo) == [0] * 6


def test_several_runs_train_next_in_the_order_given(
    repo: Repo, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["next", "6", "5"]) == 0
    assert capsys.readouterr().out == "runs 6, 5 train next, in that order (priorities 2, 1)\n"
    assert priorities(repo) == [0, 0, 0, 0, 1, 2]
    worker = repo.register_worker("h", 2, "cpu")
    assert [run.id for run in (repo.claim(worker), repo.claim(worker)) if run] == [6, 5]
