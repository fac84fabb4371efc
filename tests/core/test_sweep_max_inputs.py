"""max_inputs below batch_size is refused when a sweep expands, naming file, run and values."""

from __future__ import annotations

from pathlib import Path

import pytest

from core.config import RunConfig
from core.errors import SweepError
from core.sweep import expand_sweep_file, expand_sweep_text


def test_fixed_values_are_refused_with_file_run_and_both_values(tmp_path: Path) -> None:
    path = tmp_path / "small.yml"
    path.write_text("name: x\nmax_inputs: 10\nbatch_size: 64\nmatrix:\n  ch: [4, 8]\n")
    with pytest.raises(SweepError) as caught:
        expand_sweep_file(path)
    assert str(caught.value) == (
        f"{path}: run 'ch-4': key 'max_inputs': must be at least batch_size 64, "
        "training draws whole batches (got 10)"
    )


def test_a_swept_batch_size_names_the_cell_that_is_too_big() -> None:
    text = "name: x\nmax_inputs: 100\nmatrix:\n  bs: [32, 100, 128]\n"
    with pytest.raises(SweepError, match=r"^s.yml: run 'bs-128': .*batch_size 128.*\(got 100\)$"):
        expand_sweep_text(text, source="s.yml")


def test_an_include_entry_is_checked_too() -> None:
    text = "name: x\nmax_inputs: 64\nmatrix:\n  l: [2]\ninclude:\n  - {l: 3, bs: 65}\n"
    with pytest.raises(SweepError, match=r"run 'l-3_bs-65': .*batch_size 65, .*\(got 64\)"):
        expand_sweep_text(text)


def test_equal_values_are_fine_and_stored_configs_still_load() -> None:
    assert len(expand_sweep_text("name: x\nmax_inputs: 64\nbatch_size: 64\n")) == 1
    # A run queued before this check must still be read back from the database.
    stored = RunConfig(max_inputs=10, batch_size=64).to_json()
    assert RunConfig.from_json(stored).max_inputs == 10
