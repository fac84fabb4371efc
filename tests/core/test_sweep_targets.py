"""A targets entry that matches no run is an error, as an exclude entry is: a typo would
drop the published figure from the results without a word."""

from __future__ import annotations

from pathlib import Path

import pytest

from core.errors import SweepError
from core.sweep import expand_sweep_file, expand_sweep_text

SWEEP = "name: x\nmax_inputs: 512\nmatrix:\n  act: [gelu, relu]\ntargets:\n"
EXPERIMENTS = sorted((Path(__file__).parents[2] / "experiments").rglob("*.yml"))


@pytest.mark.parametrize(
    ("entry", "why"),
    [
        ("{act: tanh, validation_loss: 0.1}", "act: tanh is not among the matrix's act values"),
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


PARAMS_WHY = "a parameter count, a whole number from 1 to 2,147,483,647"


@pytest.mark.parametrize(
    ("entry", "why"),
    [
        ('{act: gelu, validation_loss: "0.2O"}', "key 'validation_loss': a number, 0 or more"),
        ("{act: gelu, validation_loss: .nan}", "key 'validation_loss': a number, 0 or more"),
        ("{act: gelu, validation_loss: true}", "key 'validation_loss': a number, 0 or more"),
        ("{act: gelu, minutes: x}", "key 'minutes': a number, 0 or more (minutes)"),
        ("{act: gelu, minutes: -5}", "key 'minutes': a number, 0 or more (minutes)"),
        ("{act: gelu, params: 1.5}", f"key 'params': {PARAMS_WHY}"),
        ("{act: gelu, params: true}", f"key 'params': {PARAMS_WHY}"),
        # More than any model may have: show printed it rounded through a float.
        ("{act: gelu, params: 99999999999999999999}", f"key 'params': {PARAMS_WHY}"),
        ("{act: gelu, validation_los: 0.2}", "(did you mean 'validation_loss'?)"),
    ],
)
def test_a_target_that_is_no_figure_is_refused(tmp_path: Path, entry: str, why: str) -> None:
    # "0.2O" was queued, then results and the dashboard's R crashed subtracting it.
    path = tmp_path / "s.yml"
    path.write_text(SWEEP + f"- {entry}\n")
    with pytest.raises(SweepError) as caught:
        expand_sweep_file(path)
    assert str(caught.value).startswith(f"{path}: targets entry 1: ")
    assert why in str(caught.value)


def test_two_targets_for_one_cell_are_refused(tmp_path: Path) -> None:
    # The first was used and the second dropped without a word.
    path = tmp_path / "s.yml"
    path.write_text(
        SWEEP + "- {act: gelu, validation_loss: 0.05}\n- {act: relu, validation_loss: 0.06}\n"
        "- {act: gelu, validation_loss: 0.07}\n"
    )
    with pytest.raises(SweepError) as caught:
        expand_sweep_file(path)
    assert str(caught.value) == (
        f"{path}: run 'act-gelu': targets entries 1 and 3 match it (give one per cell)"
    )


def test_a_parameter_count_written_as_an_exponent_is_a_count() -> None:
    # As `max_inputs: 1.8e5` is 180000: "a whole number ... (got 77.0)" refused it.
    (run,) = expand_sweep_text(
        "name: x\nlayers: 1\nch: 4\ntargets:\n- {params: 7.7e1, validation_loss: 0.1}\n"
    )
    assert run.target == {"params": 77, "validation_loss": 0.1}
    assert isinstance(run.target["params"], int)


def test_two_targets_for_the_one_run_of_a_file_sweeping_nothing_say_so() -> None:
    # It said "targets entries 1 and 2 match it", with no run named before "it".
    with pytest.raises(SweepError) as caught:
        expand_sweep_text(
            "name: x\nlayers: 1\ntargets:\n- {validation_loss: 0.1}\n- {params: 77}\n",
            source="s.yml",
        )
    assert str(caught.value) == (
        "s.yml: targets entries 1 and 2 match its one run (give one per cell)"
    )


def test_a_target_of_null_is_no_published_figure(tmp_path: Path) -> None:
    path = tmp_path / "s.yml"
    path.write_text(SWEEP + "- {act: gelu, validation_loss: null, minutes: 1.5}\n")
    gelu = expand_sweep_file(path)[0]
    assert gelu.target == {"validation_loss": None, "minutes": 1.5}


def test_a_target_for_an_excluded_run_names_the_exclude_entry(tmp_path: Path) -> None:
    # T1 trimmed with exclude: the error said "l: 15 is not among the matrix's l values
    # [1, 2, 3]", though the matrix listed 15; the exclude entry had dropped its run.
    path = tmp_path / "s.yml"
    path.write_text(
        "name: x\nmax_inputs: 512\nmatrix:\n  l: [1, 2, 15]\nexclude:\n- {l: 2}\n- {l: 15}\n"
        "targets:\n- {l: 1, validation_loss: 0.16}\n- {l: 15, validation_loss: 0.05}\n"
    )
    with pytest.raises(SweepError) as caught:
        expand_sweep_file(path)
    message = str(caught.value)
    assert message.startswith(f"{path}: targets entry 2 {{l: 15, validation_loss: 0.05}}")
    assert "matches no run: exclude entry 2 {l: 15} drops its run" in message
    assert "matrix's" not in message
