"""Failed runs grouped by cause, read from the error texts workers store."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from core.queue import NewRun, Repo, RunRow, RunStatus
from core.queue.failures import (
    RETRY_ADVICE,
    FailureCause,
    cause_from_option,
    failure_cause,
    failure_counts,
)
from core.sweep import expand_sweep_text

C = FailureCause


@pytest.mark.parametrize(
    ("error", "cause"),
    [
        ("out of memory at batch 64: try a smaller batch_size", C.OUT_OF_MEMORY),
        ("out of memory for a stack of 4 runs", C.OUT_OF_MEMORY),
        # PyTorch's own texts, stored when the error escaped fit() (core.worker.failure_message)
        ("out of memory: CUDA out of memory. Tried to allocate 2.00 GiB", C.OUT_OF_MEMORY),
        ("RuntimeError: [enforce fail at alloc_cpu.cpp:117] DefaultCPUAllocator: "
         "can't allocate memory: you tried to allocate 4294967296 bytes", C.OUT_OF_MEMORY),
        ("loss became NaN at step 120", C.DIVERGED),
        ("loss became inf at step 3", C.DIVERGED),
        ("validation loss is not finite (NaN/inf)", C.DIVERGED),
        ("worker lost", C.WORKER_LOST),
        ("dataset not found in /data: expected train-images-idx3-ubyte.gz", C.ERROR),
        ("lr: must be a finite number (got nan)", C.ERROR),
        ("ValueError: something else", C.ERROR),
        (None, C.ERROR),
    ],
)  # fmt: skip
def test_each_stored_error_has_one_cause(error: str | None, cause: FailureCause) -> None:
    assert failure_cause(error) == cause
    assert RETRY_ADVICE[cause]


def test_counts_group_failed_runs_most_common_first(seeded_row: RunRow) -> None:
    def run(status: RunStatus, error: str | None) -> RunRow:
        return dataclasses.replace(seeded_row, status=status, error=error)

    runs = [
        run(RunStatus.FAILED, "worker lost"),
        run(RunStatus.FAILED, "out of memory at batch 64: x"),
        run(RunStatus.FAILED, "out of memory for a stack of 2 runs"),
        run(RunStatus.CANCELLED, "out of memory"),  # not failed: not counted
        run(RunStatus.SUCCEEDED, None),
    ]
    counts = failure_counts(runs)
    assert counts == {C.OUT_OF_MEMORY: 2, C.WORKER_LOST: 1}
    assert list(counts) == [C.OUT_OF_MEMORY, C.WORKER_LOST]
    assert failure_counts([]) == {}


def test_causes_as_command_line_words() -> None:
    assert [cause_from_option(c.option) for c in C] == list(C)
    assert [c.option for c in C] == ["oom", "nan", "worker-lost", "error"]
    with pytest.raises(ValueError, match="'lost' is not a failure cause: use oom, nan, "):
        cause_from_option("lost")


@pytest.fixture
def seeded_row(tmp_path: Path) -> RunRow:
    """One real queued row (its status and error are replaced in the tests)."""
    repo = Repo.open(f"sqlite:///{tmp_path / 'runs.db'}")
    repo.enqueue([NewRun.from_expanded(r) for r in expand_sweep_text("name: e\nlayers: 1\n")])
    row = repo.list_runs()[0]
    repo.close()
    return row
