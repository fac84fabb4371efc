"""A targets entry that matches no run is an error, as an exclude entry is: a typo would
drop the published figure from the results without a word."""

from __future__ import annotations

from pathlib import Path

import pytest

from core.errors import SweepError
from core.sweep import expand_sweep_file

SWEEP = "name: x\nmax_inputs: 512\nmatrix:\n  act: [gelu, relu]\ntargets:\n"
EXPERIMENTS = sorted((Path(__file__).parents[2] / "experiments").rglob("*.yml"))


@pytest.mark.parametrize(
    ("entry", "why"),
    [
        ("{act: tanh, validation_loss: 0.1}", "act: 'tanh' is not among the matrix's act values"),
        ("{activation: gelu, validation_loss: 0.1}", "'activation' is not a matrix key"),
    ],
)
def test_a_target_matching_no_run_names_file_entry_and_key(
    tmp_path: Path, entry: str, why: str
) -> None:
    path = tmp_path / "s.yml"
    path.write_text(SWEEP + f"- {{act: gelu, validation_loss: 0.05}}\n- {entry}\n")
    with pytest.raises(SweepError) as caught:
        expand_sweep_file(path)
    message = str(caught.value)
    assert message.startswith(f"{path}: targets entry 2 ") and "matches no run" in message
    assert why in message


@pytest.mark.parametrize("path", EXPERIMENTS, ids=lambda p: p.stem)
def test_every_published_target_of_the_logbook_files_matches_a_run(path: Path) -> None:
    runs = expand_sweep_file(path)  # raises if one does not
    assert runs


def test_a_target_matching_no_run_of_per_layer_pairs_is_said_too(tmp_path: Path) -> None:
    # List values (ks per layer) cannot be hashed: the why listed them once each anyway.
    path = tmp_path / "s.yml"
    path.write_text(
        "name: x\nlayers: 3\nmax_inputs: 512\nmatrix:\n  ks: [[3, 5], [3, 7]]\n"
        "targets:\n- {ks: [3, 9], validation_loss: 0.1}\n"
    )
    with pytest.raises(SweepError, match=r"ks: \[3, 9\] is not among the matrix's ks values"):
        expand_sweep_file(path)
