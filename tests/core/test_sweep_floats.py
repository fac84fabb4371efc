"""Sweep YAML reads YAML 1.2 floats: `lr: [1e-3, 5e-4]` sweeps numbers, not text.

PyYAML follows YAML 1.1, where a float needs a dot (`1.0e-3`): `1e-3` was the string
"1e-3", so run names read `lr-1e-3` and results sorted the lr column as text.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest
import yaml

from core.queue.rows import RunRow
from core.queue.status import RunStatus
from core.queue.views import render, results_table
from core.sweep import SweepError, expand_sweep, expand_sweep_text
from core.sweep_yaml import load_yaml
from resconv_tui.sweep_file_io import load_sweep

EXPERIMENTS = Path(__file__).resolve().parents[2] / "experiments"
REPRO = """\
name: lrs
layers: 1
channels: 4
max_inputs: 128
matrix:
  lr: [1e-3, 0.002, 5e-4, 0.0001]
"""
BASE = RunRow(
    id=0, experiment="lrs", name="", status=RunStatus.SUCCEEDED, priority=0, config_json="{}",
    config_hash="", seed=0, swept={}, target=None, param_count=77, total_inputs=128,
    inputs_done=128, attempts=1, created_at=0, started_at=0, finished_at=0, worker_id=None,
    heartbeat_at=0, cancel_requested=False, error=None, validation_loss=0.1, train_seconds=6.0,
    inputs_per_s=2000.0, peak_memory_bytes=2**20, checkpoint_path=None, path_used=None,
    has_samples=False,
)  # fmt: skip


def test_swept_learning_rates_are_floats_and_names_read_as_numbers() -> None:
    runs = expand_sweep_text(REPRO)
    assert [run.swept["lr"] for run in runs] == [0.001, 0.002, 0.0005, 0.0001]
    assert all(type(run.swept["lr"]) is float for run in runs)
    assert [run.name for run in runs] == ["lr-0.001", "lr-0.002", "lr-0.0005", "lr-0.0001"]
    assert [run.config.lr for run in runs] == [0.001, 0.002, 0.0005, 0.0001]


def test_results_sort_the_swept_learning_rates_as_numbers() -> None:
    expanded = expand_sweep_text(REPRO)
    rows = [
        replace(BASE, id=run.index, name=run.name, swept=run.swept, config_hash=run.config_hash)
        for run in expanded
    ]
    table = results_table(rows, sort=["lr"])
    assert table.column("lr") == [0.0001, 0.0005, 0.001, 0.002]
    assert results_table(rows, sort=["-lr"]).column("lr") == [0.002, 0.001, 0.0005, 0.0001]
    # A numeric column is right-aligned in the logbook table: `run` and `lr` both `---:`.
    separator = render(table, "markdown").splitlines()[1]
    assert separator.split("|")[1:3] == ["----:", "-------:"]


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("1e-3", 0.001),
        ("5E-4", 0.0005),
        ("1e8", 1e8),
        ("+1.5e+3", 1500.0),
        ("-2e-2", -0.02),
        ("1.0e3", 1000.0),  # YAML 1.1 also wants the exponent's sign
        ("1.0e-3", 0.001),  # YAML 1.1 floats as before
        ("0.0003", 0.0003),
        (".5", 0.5),
    ],
)
def test_yaml_1_2_floats_are_numbers(text: str, value: float) -> None:
    loaded = load_yaml(f"x: {text}")["x"]
    assert type(loaded) is float
    assert loaded == value


@pytest.mark.parametrize(
    ("text", "value"),
    [("1e", "1e"), ("e3", "e3"), ("12e-", "12e-"), ("gelu", "gelu"), ("3", 3), ("1_000", 1000)],
)
def test_other_scalars_resolve_as_before(text: str, value: object) -> None:
    loaded = load_yaml(f"x: {text}")["x"]
    assert loaded == value
    assert type(loaded) is type(value)


def test_the_loader_stays_safe_and_leaves_pyyaml_alone() -> None:
    with pytest.raises(yaml.YAMLError):
        load_yaml('x: !!python/object/apply:os.system ["echo unsafe"]')
    assert yaml.safe_load("x: 1e-3") == {"x": "1e-3"}  # only sweep files read 1.2 floats


def test_small_and_large_floats_keep_pythons_float_text_in_names() -> None:
    """Names write a float as Python does (``RWF-1.0`` in the logbook's T3), so the
    logbook's names stay as they were; exponents where Python uses them, and for whole
    numbers from 1e6 on (``lr: [1e8]`` was named lr-100000000.0)."""
    values = "[1e-5, 2.0, 999999.0, 1e8, 1.5e6, 1234567.0, 1e20, 2.5e+20]"
    text = f"name: n\nlayers: 1\nchannels: 4\nmax_inputs: 128\nmatrix:\n  lr: {values}\n"
    assert [run.name for run in expand_sweep_text(text)] == [
        "lr-1e-05", "lr-2.0", "lr-999999.0", "lr-1e8", "lr-1.5e6", "lr-1.234567e6", "lr-1e20",
        "lr-2.5e20",
    ]  # fmt: skip


@pytest.mark.parametrize("path", sorted(EXPERIMENTS.glob("**/*.yml")), ids=lambda p: p.name)
def test_experiment_files_keep_their_names_and_hashes(path: Path) -> None:
    """The logbook's files read the same with YAML 1.1 (PyYAML's safe_load) as now."""
    text = path.read_text(encoding="utf-8")
    before = [(r.name, r.config_hash, r.swept) for r in expand_sweep(yaml.safe_load(text))]
    after = [(r.name, r.config_hash, r.swept) for r in expand_sweep_text(text)]
    assert after == before


def test_the_new_sweep_form_loads_the_same_numbers(tmp_path: Path) -> None:
    path = tmp_path / "lrs.yml"
    path.write_text(REPRO, encoding="utf-8")
    assert load_sweep(path).texts["lr"] == "0.001,0.002,0.0005,0.0001"


def test_whole_numbers_in_exponent_form_are_counts() -> None:
    # `max_inputs: 2e3` was refused: "expected an integer, got 2000.0".
    runs = expand_sweep_text("name: x\nmax_inputs: 1.8e5\nmatrix:\n  bs: [32, 6.4e1]\n")
    assert [run.config.max_inputs for run in runs] == [180_000, 180_000]
    assert [run.config.batch_size for run in runs] == [32, 64]
    assert [run.name for run in runs] == ["bs-32", "bs-64"]  # not bs-64.0
    assert all(type(run.swept["bs"]) is int for run in runs)
    # Every key that counts: per-layer values, their ks1/ks2 halves, seeds.
    text = (
        "name: x\nseeds: [1e0, 2]\nmatrix:\n  ch: [1.6e1, [4, 8.0]]\n  ks1: [3.0e0]\n  ks2: [5]\n"
    )
    runs = expand_sweep_text(text)
    assert runs[0].name == "ch-16_ks1-3_ks2-5_seed-1" and runs[2].config.channels == (4, 8)
    assert [run.config.seed for run in runs] == [1, 2, 1, 2]
    with pytest.raises(SweepError, match=r"key 'layers': expected an integer, got 2\.5"):
        expand_sweep_text("name: x\nlayers: 2.5\n")
