"""The form's text -> sweep parsing, its preview and sweep files in and out (no Textual)."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest
import yaml

from core.config import ACTIVATIONS, RunConfig
from core.errors import SweepError
from core.params import count_params
from core.sweep import expand_sweep, expand_sweep_file
from resconv_tui.field_values import SPECS
from resconv_tui.memory_estimate import estimate_bytes, format_bytes
from resconv_tui.sweep_file_io import LoadedSweep, load_sweep, save_sweep
from resconv_tui.sweep_form import (
    MAX_RUNS,
    FieldError,
    Preview,
    build_mapping,
    default_texts,
    fitting_extra,
    parse_all,
    parse_field,
    preview,
    saved_mapping,
    split_items,
)

EXPERIMENTS = sorted(Path(__file__).parents[2].joinpath("experiments").glob("*.yml"))
EXAMPLES = sorted(Path(__file__).parents[2].joinpath("experiments", "examples").glob("*.yml"))


def texts(**changes: str) -> dict[str, str]:
    return {**default_texts(), **changes}


def test_split_keeps_brackets_together() -> None:
    assert split_items("3, [3,9] ,5") == ["3", "[3,9]", "5"]


@pytest.mark.parametrize(
    ("key", "text", "expected"),
    [
        ("layers", "11", [11]),
        ("layers", "1,2, 3", [1, 2, 3]),
        ("layers", "3..11:2", [3, 5, 7, 9, 11]),
        ("layers", "1..4", [1, 2, 3, 4]),
        ("layers", "11..3:4", [11, 7, 3]),
        ("activation", "GELU,relu,Mish", ["gelu", "relu", "mish"]),
        ("lr", "1e-4,3e-4", [1e-4, 3e-4]),
        ("bn_encoder", "0,2,none", [0, 2, None]),
        ("residual_weight", "", [None]),
        ("kernel_size", "3,[3,9]", [3, [3, 9]]),
        ("padding", "same,1", ["same", 1]),
        ("ks", "3,5", [3, 5]),  # the logbook's alias names the same field
        ("act", "relu", ["relu"]),
        # A whole number in exponent form, as a sweep file may write it.
        ("max_inputs", "1.8e5,2.048e3", [180_000, 2048]),
        ("channels", "[1.6e1,32]", [[16, 32]]),
    ],
)
def test_parse_field(key: str, text: str, expected: list) -> None:
    assert parse_field(key, text) == expected


@pytest.mark.parametrize(
    ("key", "text", "reason"),
    [
        ("layers", "3..11:0", "step must be >= 1"),
        ("layers", "3..", "bad range"),
        ("layers", "..5", "bad range"),
        ("layers", "a..b", "bad range"),
        ("layers", "1..5000", "at most"),
        ("lr", "1..3", "ranges need integers"),
        ("activation", "relu..gelu", "ranges need integers"),
        ("activation", "sigmoidish", "unknown activation"),
        ("layers", "3,,5", "empty item"),
        ("layers", "", "empty"),
        ("layers", "three", "not an integer"),
        ("layers", "2.5", "not an integer"),
        ("max_inputs", "inf", "not an integer"),
        ("layers", "[3,5]", "brackets are only for per-layer keys"),
        ("kernel_size", "[3,5", "unbalanced"),
        # Balanced, with text after: "unbalanced brackets in '[3,5]x'" (user walk).
        ("kernel_size", "[3,5]x", "text outside the brackets in '[3,5]x'"),
        ("kernel_size", "x[3,5]", "text outside the brackets in 'x[3,5]'"),
        ("layers", "3,5,3", "listed twice"),
        ("lr", "fast", "not a number"),
    ],
)
def test_parse_field_errors(key: str, text: str, reason: str) -> None:
    with pytest.raises(FieldError) as info:
        parse_field(key, text)
    assert reason in info.value.reason


@pytest.mark.parametrize(
    ("key", "text", "reason"),
    [
        # The text typed, as a sweep file would write it: "'three' is not an integer"
        # wore Python's quotes; text that reads as a number keeps YAML's ('2.5').
        ("layers", "three", "three is not an integer"),
        ("layers", "2.5", "'2.5' is not an integer"),
        ("lr", "fast", "fast is not a number"),
        ("activation", "sigmoidish", "unknown activation sigmoidish; known: "),
        ("layers", "a..b", "bad range a..b: write start..end or start..end:step"),
        ("layers", "3..11:0", "bad range 3..11:0: the step must be >= 1"),
        ("lr", "1..3", "ranges need integers, lr has none ('1..3')"),
        ("layers", "[3,5]", "brackets are only for per-layer keys ('[3,5]')"),
        ("layers", "3,,5", "empty item in '3,,5'"),
        ("layers", "x\x1b[2J", '"x\\x1b[2J" is not an integer'),
    ],
)  # fmt: skip
def test_field_errors_write_the_text_as_a_sweep_file_would(
    key: str, text: str, reason: str
) -> None:
    with pytest.raises(FieldError) as info:
        parse_field(key, text)
    assert info.value.reason.startswith(reason), info.value.reason


def test_defaults_parse_back_to_the_default_config() -> None:
    values, errors = parse_all(default_texts())
    assert not errors
    runs = expand_sweep(build_mapping("d", values))
    assert len(runs) == 1 and runs[0].config == RunConfig()


def test_base_config_overrides_defaults() -> None:
    base = RunConfig(layers=5, kernel_size=(3, 9), activation="relu").to_dict()
    got = default_texts(base)
    assert (got["layers"], got["kernel_size"], got["activation"]) == ("5", "[3,9]", "relu")
    assert got["residual_weight"] == "1.0"  # a float: "1" reads back as the int 1


def test_preview_counts_names_and_params() -> None:
    result = preview("demo", texts(layers="1..3", activation="gelu,relu"))
    assert result.ok and result.total == 6
    assert [r.name for r in result.runs[:2]] == ["l-1_act-gelu", "l-1_act-relu"]
    assert [r.param_count for r in result.runs] == [count_params(r.config) for r in result.runs]
    # At one layer the activation builds nothing: the preview says so, as `queue` does.
    assert result.notes == (
        "activation changes nothing in these runs: l-1_act-gelu and l-1_act-relu build the "
        "same model and train it alike, to the same losses",
    )
    assert preview("demo", texts(layers="2..3", activation="gelu,relu")).notes == ()


def test_preview_names_a_whole_number_float_as_queue_does() -> None:
    # `lr 1e6` was previewed (and queued) as lr-1000000.0.
    result = preview("demo", texts(lr="1e6,3e-4"))
    assert [r.name for r in result.runs] == ["lr-1e6", "lr-0.0003"]


def test_preview_blames_the_field() -> None:
    result = preview("demo", texts(kernel_size="3,4"))
    assert not result.ok
    assert result.errors == {"kernel_size": "padding 'same' needs odd kernel sizes (got 4)"}


def test_preview_marks_every_field_the_model_refuses_at_once() -> None:
    # Both wrong on their own: the form named one, then the other after it was fixed.
    result = preview("demo", texts(activation="foo", kernel_size="4"))
    assert set(result.errors) == {"activation", "kernel_size"}
    assert result.errors["kernel_size"] == "padding 'same' needs odd kernel sizes (got 4)"
    assert "unknown activation" in result.errors["activation"]


def test_preview_collects_every_bad_field_and_the_name() -> None:
    result = preview(" ", texts(layers="x", lr="-"))
    assert set(result.errors) == {"name", "layers", "lr"}


def test_preview_lists_errors_in_the_order_the_fields_are_shown() -> None:
    # Fields that do not parse came after those the model refuses, and a loaded file's
    # matrix keys first: kernel_size was listed before layers, the name last.
    fields = texts(layers="x", channels="x", kernel_size="4")
    fields = {key: fields[key] for key in ("kernel_size", *fields)}  # the file's order
    assert list(preview(" ", fields).errors) == ["name", "layers", "channels", "kernel_size"]
    fields = texts(layers="0", kernel_size="4", activation="foo")
    fields = {key: fields[key] for key in ("activation", "kernel_size", *fields)}
    assert list(preview("demo", fields).errors) == ["layers", "kernel_size", "activation"]


def test_a_bad_field_counts_its_items_in_the_runs_to_come() -> None:
    # "1 run, not valid yet" beside an lr field of two values, one mistyped.
    result = preview("demo", texts(layers="1..3", lr="1e-3,3e-4x"))
    assert not result.ok and set(result.errors) == {"lr"} and result.total == 6


@pytest.mark.parametrize("layers", ["1..3:0", "1..x", "2,1..3:0"])
def test_an_invalid_range_claims_no_run_count_and_says_what_is_wrong(layers: str) -> None:
    # "1 run, not valid yet" above "layers: bad range 1..3:0: the step must be >= 1".
    from resconv_tui.widgets.sweep_preview import summary

    result = preview("demo", texts(layers=layers, lr="1e-3,3e-4"))
    assert not result.ok and result.total is None and set(result.errors) == {"layers"}
    lines = str(summary(result)).splitlines()
    assert lines[0] == "Not valid yet:"
    assert lines[1].startswith("  layers: ") and "range" in lines[1]


@pytest.mark.parametrize("layers", ["1.." + "9" * 20, "9" * 20 + "..1", "0.." + "9" * 400 + ":3"])
def test_a_range_of_more_values_than_len_can_count_is_refused(layers: str) -> None:
    # len() of a range past 2**63 values raised OverflowError, a traceback out of the
    # preview (the dashboard's form closed) where "1..5000" said "at most 1000".
    result = preview("demo", texts(layers=layers))
    assert not result.ok and result.total is None and set(result.errors) == {"layers"}
    reason = result.errors["layers"]
    assert reason.endswith("values; at most 1000") and len(reason) < 160, reason  # cut


@pytest.mark.parametrize(
    "field, text",
    [("layers", "9" * 5000), ("lr", "x" * 5000), ("activation", "y" * 5000),
     ("layers", "[" + "1" * 5000), ("layers", "1..x" + "9" * 5000)],
    ids=["digits", "not a number", "no such name", "bracket", "range"],
)  # fmt: skip
def test_a_long_value_is_cut_in_its_field_s_reason(field: str, text: str) -> None:
    # A 5,000-digit number typed into a field made a 5,020-character reason.
    result = preview("demo", texts(**{field: text}))
    assert not result.ok and set(result.errors) == {field}
    reason = result.errors[field]
    assert text[:200] not in reason and len(reason) < 400, reason  # the value cut


def test_preview_refuses_huge_sweeps() -> None:
    result = preview("big", texts(layers="1..100", channels="1..100"))
    assert result.total == 10_000 > MAX_RUNS and "_sweep" in result.errors
    # Counted as the preview's head counts them ("10,000 runs, not valid yet"): the
    # reason under it said "10000 runs; at most 2000 from the form".
    assert result.errors["_sweep"] == "10,000 runs; at most 2,000 from the form"


@pytest.mark.parametrize("path", EXPERIMENTS, ids=lambda p: p.stem)
def test_logbook_files_load_to_the_same_runs(path: Path) -> None:
    loaded = load_sweep(path)
    result = preview(loaded.name, loaded.texts, loaded.key_names, loaded.extra,
                     included=loaded.included)  # fmt: skip
    reference = expand_sweep_file(path)
    assert result.ok
    assert sorted(r.config_hash for r in result.runs) == sorted(r.config_hash for r in reference)
    if not _unkept(loaded.notes):  # no pairs converted: the same names, order and targets
        same = [(r.name, r.config_hash, r.target) for r in reference]
        assert [(r.name, r.config_hash, r.target) for r in result.runs] == same


def _unkept(notes: list[str]) -> list[str]:
    """The notes but those saying a file's include or exclude is kept (nothing lost)."""
    return [note for note in notes if not note.startswith(("'include' (", "'exclude' ("))
            or " kept: " not in note]  # fmt: skip


@pytest.mark.parametrize("path", [*EXPERIMENTS, *EXAMPLES], ids=lambda p: p.stem)
def test_a_logbook_file_loaded_unchanged_queues_and_saves_as_queue_does(
    tmp_path: Path, path: Path
) -> None:
    # T6's ch1 x ch2 and T8's ks1 x ks2 became kernel_size (channels) pairs: the form
    # queued ks-3,5 where queue FILE queues ks1-3_ks2-5, without the file's targets, and
    # said "run names change". T2's include (21 and 30 layers at batch size 32) was not
    # loaded: the form trained them at 64, and saved the file without it.
    loaded = load_sweep(path)
    published = dict(loaded.texts) if "targets" in loaded.extra else None  # as f3 keeps it
    shown = preview(loaded.name, loaded.texts, loaded.key_names, loaded.extra, None,
                    published, loaded.name, loaded.excluded, loaded.swept,
                    loaded.included)  # fmt: skip
    expected = [(r.name, r.config_hash, r.target) for r in expand_sweep_file(path)]
    assert shown.ok, shown.errors
    assert [(r.name, r.config_hash, r.target) for r in shown.runs] == expected  # ctrl+s's
    assert _unkept([*loaded.notes, *shown.notes]) == [] and loaded.lost == []
    # f2, as the screen saves: the file it writes queues the same runs again.
    values, _ = parse_all(loaded.texts)
    extra, _ = fitting_extra(loaded.extra, values, published)
    mapping = saved_mapping(loaded.name, values, loaded.key_names, extra, shown,
                            loaded.excluded, loaded.swept, loaded.included)  # fmt: skip
    saved = save_sweep(tmp_path / "saved.yml", mapping)
    assert [(r.name, r.config_hash, r.target) for r in expand_sweep_file(saved)] == expected


@pytest.mark.parametrize(
    "include",
    ["[{batch_size: 32}]",  # every cell changed, though it names no swept key
     "[{l: 2, batch_size: 32}]",
     "[{l: 3, batch_size: 32}]",  # a cell of its own
     "[{l: 3}, {l: 2, act: relu}]"],
)  # fmt: skip
def test_a_loaded_include_makes_queues_runs_targets_and_all(tmp_path: Path, include: str) -> None:
    # The include was not loaded: the cells it changes trained as the matrix makes them,
    # and their targets were left out.
    path = tmp_path / "s.yml"
    path.write_text(
        f"name: s\nmax_inputs: 256\nmatrix:\n  l: [1, 2]\ninclude: {include}\ntargets:\n"
        "- {l: 1, validation_loss: 0.2}\n- {l: 2, validation_loss: 0.1}\n"
    )
    loaded = load_sweep(path)
    assert loaded.extra["targets"] == yaml.safe_load(path.read_text())["targets"]
    shown = preview(loaded.name, loaded.texts, loaded.key_names, loaded.extra,
                    published_for=dict(loaded.texts), included=loaded.included)  # fmt: skip
    expected = [(r.name, r.config_hash, r.target) for r in expand_sweep_file(path)]
    assert [(r.name, r.config_hash, r.target) for r in shown.runs] == expected


@pytest.mark.parametrize(
    "text",
    ["include: [{l: 3}]\ntargets: [{l: 3, validation_loss: 0.1}]",  # a cell of its own
     "include: [{l: 2, bs: 32}]\ntargets: [{l: 2, bs: 32, validation_loss: 0.1}]"],
)  # fmt: skip
def test_a_target_for_what_only_a_loaded_include_makes_is_kept(tmp_path: Path, text: str) -> None:
    # The form checked targets against its fields alone: a cell only the include makes,
    # or a key it sets, was none of theirs, and the target was left out ("targets: 0 of
    # 1 entries kept") where queue FILE attaches it.
    path = tmp_path / "s.yml"
    path.write_text(f"name: s\nmax_inputs: 256\nmatrix:\n  l: [1, 2]\n{text}\n")
    loaded = load_sweep(path)
    published = dict(loaded.texts)
    shown = preview(loaded.name, loaded.texts, loaded.key_names, loaded.extra,
                    published_for=published, included=loaded.included)  # fmt: skip
    expected = [(r.name, r.config_hash, r.target) for r in expand_sweep_file(path)]
    assert [(r.name, r.config_hash, r.target) for r in shown.runs] == expected
    assert shown.notes == ()
    values, _ = parse_all(loaded.texts)
    extra, _ = fitting_extra(loaded.extra, values, published)
    mapping = saved_mapping(loaded.name, values, loaded.key_names, extra, shown, None,
                            loaded.swept, loaded.included)  # fmt: skip
    assert mapping["targets"] == loaded.extra["targets"]
    # Layers 1 alone: the entry for l 2 changes no run (left out), nor has its target one.
    texts = {**loaded.texts, "layers": "1"}
    shown = preview(loaded.name, texts, loaded.key_names, loaded.extra,
                    published_for=published, included=loaded.included)  # fmt: skip
    kept = [run.target for run in shown.runs if run.target]
    assert kept == ([{"validation_loss": 0.1}] if "l: 3}" in text else [])
    assert ("targets: 0 of 1 entries kept; the others are for runs the form does not make"
            in shown.notes) == (not kept)  # fmt: skip


@pytest.mark.parametrize(
    "include",
    ["[{l: 1, bs: 16}, {l: 2, batch_size: 32}]",
     "[{l: 1, ks1: 3, ks2: 5}, {l: 2, ks: 5}]",
     "[{l: 1, ks1: 3, ks2: 5}]"],  # the form wrote kernel_size beside the halves
)  # fmt: skip
def test_a_key_a_loaded_include_spells_two_ways_is_taken_as_queue_takes_it(
    tmp_path: Path, include: str
) -> None:
    # The file leaves the key to its default; the form wrote its field under one of the
    # entries' names (or its own), so the other entry set it twice: "'bs' and
    # 'batch_size' both set 'batch_size'", where queue FILE takes the file.
    path = tmp_path / "s.yml"
    path.write_text(f"name: s\nmax_inputs: 256\nmatrix:\n  l: [1, 2]\ninclude: {include}\n")
    loaded = load_sweep(path)
    names, shown = form_runs(path)
    expected = [(r.name, r.config_hash) for r in expand_sweep_file(path)]
    assert [(r.name, r.config_hash) for r in shown.runs] == expected, shown.errors
    mapping = loaded_mapping(loaded, shown)
    saved = save_sweep(tmp_path / "again.yml", mapping)
    assert [(r.name, r.config_hash) for r in expand_sweep_file(saved)] == expected
    # Another lr: the same cells, the key still as the entries set it.
    names, shown = form_runs(path, lr="1e-3")
    assert names == [name for name, _ in expected]


def test_targets_left_out_with_an_include_not_loaded_name_cells_as_the_file_writes_them(
    tmp_path: Path,
) -> None:
    # "targets of l=1 bnp-e=False ...": a capital the file does not hold.
    path = tmp_path / "s.yml"
    path.write_text(
        "name: s\nmatrix:\n  l: [1, 2]\n  bnp-e: [false, 1]\ninclude: [{l: 3}, {l: 3}]\n"
        "targets:\n- {l: 1, bnp-e: false, validation_loss: 0.2}\n"
        "- {l: 2, bnp-e: 1, validation_loss: 0.1}\n"
    )
    loaded = load_sweep(path)
    cells = "l=1 bnp-e=false, l=2 bnp-e=1"
    assert f"targets of {cells} left out: the file's 'include' changes those runs" in loaded.notes
    assert f"the targets of {cells}" in loaded.lost


def test_an_include_queue_refuses_is_not_loaded_and_said_so(tmp_path: Path) -> None:
    path = tmp_path / "s.yml"
    path.write_text("name: s\nmatrix:\n  l: [1, 2]\ninclude: [{l: 3}, {l: 3}]\n")
    loaded = load_sweep(path)
    assert loaded.included is None and loaded.lost == ["its 'include' (2 entries)"]
    assert loaded.notes == ["'include' (2 entries) not loaded: include entries 1 and 2 are "
                            "the same ({l: 3}): they would queue one run twice"]  # fmt: skip


@pytest.mark.parametrize(
    "text",
    [
        "matrix:\n  act: [gelu]\n  l: [1, 2]\n",  # named l-1: the one-value key dropped
        "seeds: 1\nmatrix:\n  l: [1, 2]\n",  # named l-1, not l-1_seed-0
        "matrix:\n  act: [gelu]\n  l: [1, 2]\ntargets: [{act: gelu, l: 1, validation_loss: 0.1}]\n",
        # A one-value ks1/ks2 pair became a fixed kernel_size [3,5]: named l-1, targets
        # dropped, and a note that names change.
        "matrix:\n  ks1: [3]\n  ks2: [5]\n  l: [1, 2]\n"
        "targets: [{ks1: 3, ks2: 5, l: 1, validation_loss: 0.1}]\n",
        "ks1: 3\nmatrix:\n  l: [1, 2]\n  ks2: [5]\n",
    ],
)
def test_a_loaded_files_one_value_sweeps_name_runs_as_queue_does(tmp_path: Path, text: str) -> None:
    path = tmp_path / "s.yml"
    path.write_text(f"name: s\nmax_inputs: 256\n{text}")
    loaded = load_sweep(path)
    assert loaded.notes == [] and loaded.lost == []
    published = dict(loaded.texts)
    result = preview(loaded.name, loaded.texts, loaded.key_names, loaded.extra,
                     published_for=published, swept=loaded.swept)  # fmt: skip
    expected = [(r.name, r.config_hash, r.target) for r in expand_sweep_file(path)]
    assert result.ok, result.errors  # the third: "'act' is not a matrix key"
    assert [(r.name, r.config_hash, r.target) for r in result.runs] == expected
    values, _ = parse_all(loaded.texts)  # saved, the file names them so too
    mapping = saved_mapping(loaded.name, values, loaded.key_names, loaded.extra, result, None,
                            loaded.swept)  # fmt: skip
    assert [(r.name, r.config_hash, r.target) for r in expand_sweep(mapping)] == expected


@pytest.mark.parametrize(
    "matrix",
    ["  ks1: [3]\n  ks2: [5]\n  l: [1, 2]\n",
     # Halves apart, or ks2 first: were kernel_size pairs, their names changed, with a note.
     "  ks2: [5]\n  l: [1, 2]\n  ks1: [3]\n"],
)  # fmt: skip
def test_a_loaded_pairs_halves_are_two_fields_edited_as_the_file_writes_them(
    tmp_path: Path, matrix: str
) -> None:
    path = tmp_path / "s.yml"
    path.write_text(f"name: s\nmax_inputs: 256\nmatrix:\n{matrix}")
    loaded = load_sweep(path)
    assert (loaded.texts["ks1"], loaded.texts["ks2"]) == ("3", "5") and loaded.notes == []
    assert "kernel_size" not in loaded.texts  # the halves stand for it
    order = [key for key in loaded.swept if key != "layers"]  # the file's: ks1 first or not
    for ks1, ks2, cells in [("5", "7", [(5, 7)]), ("3,5", "5", [(3, 5), (5, 5)]),
                            ("3", "3..7:2", [(3, 3), (3, 5), (3, 7)])]:  # fmt: skip
        values, _ = parse_all({**loaded.texts, "ks1": ks1, "ks2": ks2})
        mapping = build_mapping(loaded.name, values, loaded.key_names, swept=loaded.swept)
        runs = expand_sweep(mapping)
        assert {tuple(run.config.kernel_size) for run in runs} == set(cells)
        for run in runs:  # named by the file's keys, in its order: ks1-3_ks2-5_l-1
            written = {"ks1": run.config.kernel_size[0], "ks2": run.config.kernel_size[1]}
            assert list(run.swept) == [k if k != "layers" else "l" for k in loaded.swept]
            assert {k: run.swept[k] for k in order} == {k: written[k] for k in order}


@pytest.mark.parametrize(
    ("edit", "errors"),
    [({"ks1": "0"}, {"ks1": "must be 1 to 127 (got 0)"}),
     ({"ks2": "3,200"}, {"ks2": "must be 1 to 127 (got 200)"}),
     ({"ks2": "x"}, {"ks2": "x is not an integer"}),
     ({"padding": "0", "layers": "12", "ks2": "5"},  # the sweep's refusal: at the first half
      {"ks1": "the feature map shrinks to nothing at 28x28 (got [3, 5])"})],
)  # fmt: skip
def test_a_bad_half_is_marked_at_its_own_field(
    tmp_path: Path, edit: dict[str, str], errors: dict[str, str]
) -> None:
    # The sweep names the pair's field (kernel_size, hidden while its halves are shown)
    # and both halves: "key 'kernel_size': must be 1 to 127 (got [0, 3])".
    path = tmp_path / "s.yml"
    path.write_text("name: s\nmatrix:\n  ks1: [3, 5]\n  ks2: [3]\n")
    loaded = load_sweep(path)
    shown = preview(loaded.name, {**loaded.texts, **edit}, loaded.key_names, swept=loaded.swept)
    assert dict(shown.errors) == errors


def test_saved_file_reads_back_to_the_same_runs(tmp_path: Path) -> None:
    values, _ = parse_all(texts(layers="1,3", kernel_size="3,[3,9]", seed="0..1"))
    mapping = build_mapping("round-trip", values)
    path = save_sweep(tmp_path / "sub" / "s.yml", mapping)
    expected = [(r.name, r.config_hash) for r in expand_sweep(mapping)]
    assert [(r.name, r.config_hash) for r in expand_sweep_file(path)] == expected
    assert len(expected) == 8


@pytest.mark.parametrize("chain", [1, 2])
def test_saving_over_a_link_writes_through_it_and_keeps_the_link(
    tmp_path: Path, chain: int
) -> None:
    # f2 to my.yml, a link to a shared sweep, made my.yml a file of its own: the shared
    # file kept its old runs. Written through, as editors do; the link (and a link to the
    # link) stays, the temporary file beside the target, none left over.
    shared = tmp_path / "shared" / "sweep.yml"
    shared.parent.mkdir()
    shared.write_text("name: old\nmatrix:\n  l: [1]\n")
    shared.chmod(0o640)
    mine = tmp_path / "mine"
    mine.mkdir()
    link = mine / "link-0.yml"
    link.symlink_to(shared)
    for step in range(1, chain):
        (mine / f"link-{step}.yml").symlink_to(mine / f"link-{step - 1}.yml")
        link = mine / f"link-{step}.yml"
    mapping = build_mapping("new", parse_all(texts(layers="1,3"))[0])
    assert save_sweep(link, mapping) == link
    assert link.is_symlink() and link.resolve() == shared
    assert [r.name for r in expand_sweep_file(shared)] == [r.name for r in expand_sweep(mapping)]
    assert shared.stat().st_mode & 0o777 == 0o640
    assert sorted(p.name for p in shared.parent.iterdir()) == ["sweep.yml"]
    # A link to a file not there yet: the file is made where it points.
    dangling = mine / "dangling.yml"
    dangling.symlink_to(tmp_path / "shared" / "later.yml")
    save_sweep(dangling, mapping)
    assert dangling.is_symlink() and (tmp_path / "shared" / "later.yml").is_file()


@pytest.mark.parametrize("whose", ["the queue's", "another"])
def test_saving_over_a_database_is_refused_and_leaves_it_whole(tmp_path: Path, whose: str) -> None:
    # f2 to runs.db (a slip of the path, behind a "Replace it?" that reads like any
    # file's) replaced the queue's database with the sweep.
    import sqlite3

    from core.queue import Repo

    path = tmp_path / "runs.db"
    if whose == "the queue's":
        repo = Repo.open(str(path))  # open in this process, as the dashboard holds it
    else:
        made = sqlite3.connect(path)
        made.execute("CREATE TABLE notes (x)")
        made.commit()
        made.close()
    before = path.read_bytes() if whose == "another" else None
    values, _ = parse_all(texts(layers="1"))
    said = "the queue's database" if whose == "the queue's" else "a SQLite database"
    with pytest.raises(SweepError, match=f"runs.db: {said}"):
        save_sweep(path, build_mapping("oops", values))
    if whose == "the queue's":
        assert repo.list_runs() == []  # still the queue's, still readable
        repo.close()
    else:
        assert path.read_bytes() == before


def test_a_one_run_sweep_file_is_written_one_key_a_line(tmp_path: Path) -> None:
    # A form of plain values (no matrix) was saved as one flow mapping:
    # `{name: one, layers: 3, channels: 4, ...}` over three lines.
    values, _ = parse_all(texts(layers="3", channels="4"))
    path = save_sweep(tmp_path / "one.yml", build_mapping("one", values))
    lines = path.read_text().splitlines()
    assert lines[1:4] == ["name: one", "layers: 3", "channels: 4"]
    assert [r.name for r in expand_sweep_file(path)] == [r.name for r in expand_sweep(
        build_mapping("one", values))]  # fmt: skip
    swept, _ = parse_all(texts(layers="1,3", kernel_size="[3,9]"))
    text = save_sweep(tmp_path / "two.yml", build_mapping("two", swept)).read_text()
    assert "  l: [1, 3]" in text.splitlines() and "kernel_size: [3, 9]" in text


def test_a_saved_sweep_file_keeps_its_text_as_written(tmp_path: Path) -> None:
    # f2 over a loaded logbook table wrote T8's "(seed-spec §2.4)" as "\xA72.4" in a
    # double-quoted string broken with backslashes: the file read the same, but not as
    # the person who opens it in an editor wrote it, or as experiments/ holds it.
    loaded = load_sweep(Path(__file__).parents[2] / "experiments" / "t8-kernel-sizes.yml")
    values, _ = parse_all(loaded.texts)
    extra = {"description": loaded.extra["description"]}
    mapping = build_mapping("ré-t8 §2.4", values, loaded.key_names, extra, loaded.swept)
    text = save_sweep(tmp_path / "t8.yml", mapping).read_text(encoding="utf-8")
    assert "name: ré-t8 §2.4" in text.splitlines()
    assert "§2.4), V2" in text and "\\x" not in text
    assert load_sweep(tmp_path / "t8.yml").extra["description"] == extra["description"]


def test_seeds_load_into_the_seed_field(tmp_path: Path) -> None:
    path = tmp_path / "s.yml"
    path.write_text("name: s\nmatrix:\n  l: [1, 2]\nseeds: 2\nexclude: [{l: 2}]\n")
    loaded = load_sweep(path)
    assert loaded.texts["seed"] == "0,1" and loaded.texts["layers"] == "1,2"
    assert loaded.notes == ["'exclude' (1 entry) kept: the runs it drops are left out"]


@pytest.mark.parametrize(
    ("text", "note"),
    [
        # `queue` refuses these; f3 raised a TypeError, an OverflowError or ate gigabytes.
        ("matrix: {ks1: 3, ks2: [3, 5]}", "'ks1: 3' under 'matrix' is no list: loaded as one"),
        # Each value as the file writes it (null, true, abc), not as Python's repr.
        ("matrix: {ch1: ~, ch2: [4]}", "'ch1: null' under 'matrix' is no list"),
        ("matrix: {ks1: abc, ks2: [3]}", "'ks1: abc' under 'matrix' is no list"),
        ("matrix: {ch1: true, ch2: [4]}", "'ch1: true' under 'matrix' is no list"),
        ("matrix: {ks1: [3, 5]}", "'ks1' needs its partner 'ks2': give it"),
        ("seeds: 0", "'seeds: 0' is no count of 1 or more and no list: not loaded"),
        ("seeds: []", "'seeds: []' is no count of 1 or more and no list: not loaded"),
        ("seeds: false", "'seeds: false' is no count of 1 or more and no list: not loaded"),
        ("seeds: abc", "'seeds: abc' is no count of 1 or more and no list: not loaded"),
        # A name that is no text became the name "{'a': 1}"; a matrix list went unsaid.
        ("name: {a: 1}", "'name: {a: 1}' is no text: not loaded"),
        ("name: true", "'name: true' is no text: not loaded"),
        ("matrix: [1, 2]", "'matrix: [1, 2]' is no mapping of keys to lists: not loaded"),
        ("matrix: [a, b]", "'matrix: [a, b]' is no mapping of keys to lists: not loaded"),
        ("matrix: off", "'matrix: false' is no mapping of keys to lists: not loaded"),
        ("seed: 7\nseeds: 3", "'seed' beside 'seeds' (queue takes one or the other)"),
        # An unknown key is shown escaped, as queue names it: a raw ESC cleared the screen.
        ('"\\e[2J": 1', "unknown or malformed key '\\x1b[2J': not loaded"),
        ("seeds: 9223372036854775808", "makes more runs than a sweep may (at most 10,000)"),
        ("seeds: 100000000", "'seeds' (100,000,000 of them) makes more runs than a sweep may"),
        # A list of 99,000 seeds took the form's repeat check 69 s on the UI thread.
        (f"seeds: [{', '.join(map(str, range(20_000)))}]", "'seeds' (20,000 of them)"),
        # A ConfigError, not a SweepError, out of the include's targets check.
        ("matrix: {l: [1, ~]}\ninclude: [{l: 1, bs: 32}]\ntargets: [{l: 1, validation_loss: 0.1}]",
         "'include' (1 entry) kept"),
    ],
)  # fmt: skip
def test_a_file_queue_refuses_loads_with_a_note_not_a_crash(
    tmp_path: Path, text: str, note: str
) -> None:
    path = tmp_path / "s.yml"
    name = "" if text.startswith("name:") else "name: s\n"
    path.write_text(f"{name}{text}\n")
    with pytest.raises(SweepError):
        expand_sweep_file(path)
    loaded = load_sweep(path)  # the form marks what is wrong, field by field
    assert any(note in each for each in loaded.notes), loaded.notes


@pytest.mark.parametrize(
    ("lines", "key", "field", "bad"),
    [
        ("matrix:\n  act: [relu, 3]", "activation", "relu,3", "'3'"),
        ("model: 2", "model", "2", "'2'"),
        ("dataset: 1.5", "dataset", "1.5", "'1.5'"),
        # As the file's YAML reads it: the field showed Python's "True".
        ("act: yes", "activation", "true", "'true'"),
    ],
)
def test_a_loaded_key_of_fixed_values_given_no_text_names_the_values_it_takes(
    tmp_path: Path, lines: str, key: str, field: str, bad: str
) -> None:
    path = tmp_path / "s.yml"
    path.write_text(f"name: s\nlayers: 2\n{lines}\n")
    loaded = load_sweep(path)
    assert loaded.texts[key] == field
    known = ", ".join(ACTIVATIONS.values() if key == "activation" else SPECS[key].choices)
    assert loaded_preview(loaded).errors[key] == f"unknown {key} {bad}; known: {known}"


def loaded_preview(
    loaded: LoadedSweep,
    texts: Mapping[str, str] | None = None,
    published_for: Mapping[str, str] | None = None,
) -> Preview:
    """The preview the form shows of the sweep file it loaded (``loaded``), its fields'
    texts ``texts`` (the file's, unless given): with all the file's state, as the form
    passes it."""
    return preview(loaded.name, loaded.texts if texts is None else texts, loaded.key_names,
                   loaded.extra, published_for=published_for, excluded=loaded.excluded,
                   swept=loaded.swept, included=loaded.included)  # fmt: skip


def loaded_mapping(
    loaded: LoadedSweep, shown: Preview, texts: Mapping[str, str] | None = None
) -> dict[str, Any]:
    """The sweep f2 saves of the form's ``shown`` runs of ``loaded``, its fields' texts
    ``texts`` (the file's, unless given)."""
    values = parse_all(loaded.texts if texts is None else texts)[0]
    return saved_mapping(loaded.name, values, loaded.key_names, loaded.extra, shown,
                         loaded.excluded, loaded.swept, loaded.included)  # fmt: skip


def form_runs(path: Path, **edits: str) -> tuple[list[str], Preview]:
    """The names of the runs the form makes of the sweep file at ``path`` (fields edited)."""
    loaded = load_sweep(path)
    texts = {**loaded.texts, **edits}
    shown = preview(loaded.name, texts, loaded.key_names, loaded.extra, excluded=loaded.excluded,
                    included=loaded.included)  # fmt: skip
    return [run.name for run in shown.runs], shown


@pytest.mark.parametrize(
    "text",
    [
        "matrix:\n  l: [1, 2, 3]\n  act: [gelu, relu]\nexclude: [{l: 2, act: relu}, {l: 3}]",
        # Found by review: a one-value matrix key the form holds fixed, ks1/ks2 become
        # kernel_size pairs, a spelling the form writes its own way.
        "matrix:\n  l: [2]\n  ch: [4, 8]\nexclude: [{l: 2, ch: 8}]",
        "matrix:\n  ks1: [3, 5]\n  ks2: [3, 5]\nexclude: [{ks1: 5, ks2: 3}]",
        "ks1: 3\nmatrix:\n  ks2: [3, 5]\nexclude: [{ks2: 3}]",
        "matrix:\n  act: [GELU, relu]\nexclude: [{act: GELU}]",
        "seeds: 2\nmatrix:\n  l: [1, 2]\nexclude: [{l: 2}]",
        # Second review: cells excluded because they cannot be built (v1 has no batch
        # norm; 12 layers of 5x5 kernels without padding shrink 28x28 to nothing).
        "matrix:\n  model: [v1, v2]\n  bnp-e: [0, 1]\nexclude: [{model: v1, bnp-e: 1}]",
        "padding: 0\nmatrix:\n  l: [1, 12]\n  ks: [3, 5]\nexclude: [{l: 12, ks: 5}]",
        # Third review: spellings a RunConfig reads as one value.
        "matrix:\n  l: [1, 2]\n  bnp-e: [none, 1]\nexclude: [{l: 2, bnp-e: none}]",
        "matrix:\n  l: [1, 2]\n  lr: ['3e-4', 1e-3]\nexclude: [{l: 2, lr: '3e-4'}]",
    ],
)
def test_the_form_makes_a_loaded_files_runs_without_those_its_exclude_drops(
    tmp_path: Path, text: str
) -> None:
    # The form dropped exclude with a note and offered every cell: ctrl+s queued the runs
    # the file excludes, which `queue FILE` never trains.
    path = tmp_path / "s.yml"
    path.write_text(f"name: s\nmax_inputs: 256\n{text}\n")
    names, shown = form_runs(path)
    from_file = expand_sweep_file(path)
    assert [run.config for run in shown.runs] == [run.config for run in from_file]
    assert [run.index for run in shown.runs] == [run.index for run in from_file]
    assert shown.notes[-1].startswith("the loaded file's exclude leaves out ")
    # Saved (f2) and queued from that file: the same runs again.
    loaded = load_sweep(path)
    saved = save_sweep(tmp_path / "again.yml", saved_mapping(loaded.name, parse_all(
        loaded.texts)[0], loaded.key_names, loaded.extra, shown, loaded.excluded))  # fmt: skip
    assert [run.config for run in expand_sweep_file(saved)] == [r.config for r in shown.runs]


def test_a_loaded_exclude_follows_the_cells_it_drops_through_edits(tmp_path: Path) -> None:
    path = tmp_path / "s.yml"
    path.write_text("name: s\nmatrix:\n  l: [1, 2, 3]\n  act: [gelu, relu]\n"
                    "exclude: [{l: 2, act: relu}, {l: 3}]\n")  # fmt: skip
    assert form_runs(path)[0] == ["l-1_act-gelu", "l-1_act-relu", "l-2_act-gelu"]
    # Other inputs, another seed: the same cells are left out.
    names, shown = form_runs(path, max_inputs="3000", seed="1")
    assert len(names) == 3 and shown.notes[-1] == "the loaded file's exclude leaves out 3 runs"
    # One half of a pair swept (ks2), the other changed in the form: still that cell.
    path.write_text("name: s\nmatrix:\n  l: [1, 2]\n  ks1: [3]\n  ks2: [3, 5]\n"
                    "exclude: [{l: 2, ks2: 5}]\n")  # fmt: skip
    assert form_runs(path)[0] == ["l-1_ks2-3", "l-1_ks2-5", "l-2_ks2-3"]
    names, shown = form_runs(path, ks1="5")
    assert names == ["l-1_ks2-3", "l-1_ks2-5", "l-2_ks2-3"]
    assert [run.config.kernel_size for run in shown.runs] == [(5, 3), (5, 5), (5, 3)]
    # A one-value matrix key the form changes: the cell is its swept keys' values.
    path.write_text("name: s\nmatrix:\n  l: [1, 2]\n  act: [gelu]\nexclude: [{l: 2}]\n")
    assert form_runs(path, activation="relu")[0] == ["l-1"]
    # A value the model derives (v1's residual weight) is no part of a cell.
    path.write_text("name: s\nmatrix:\n  model: [v1, v2]\n  l: [1, 2]\n"
                    "exclude: [{model: v1, l: 2}]\n")  # fmt: skip
    assert len(form_runs(path, residual_weight="0.5")[0]) == 3
    path.write_text("name: s\nmatrix:\n  l: [1, 2, 3]\n  act: [gelu, relu]\n"
                    "exclude: [{l: 2, act: relu}, {l: 3}]\n")  # fmt: skip
    # Layers 2 only (the form holds it fixed): relu is that dropped cell.
    names, shown = form_runs(path, layers="2")
    assert names == ["act-gelu"] and shown.notes[-1].endswith("leaves out 1 run")
    # Saved with layers 1,2: {l: 3} would match no cell and the file be refused; one
    # entry per run left out is written instead, and reads back to the same runs.
    loaded = load_sweep(path)
    texts = {**loaded.texts, "layers": "1,2"}
    shown = preview(loaded.name, texts, loaded.key_names, loaded.extra, excluded=loaded.excluded)
    mapping = saved_mapping(loaded.name, parse_all(texts)[0], loaded.key_names, loaded.extra,
                            shown, loaded.excluded)  # fmt: skip
    assert mapping["exclude"] == [{"l": 2, "act": "relu"}]
    saved = save_sweep(tmp_path / "again.yml", mapping)
    assert [run.config for run in expand_sweep_file(saved)] == [r.config for r in shown.runs]
    # Only dropped cells left: the form says so, as the file's "everything was excluded".
    _, shown = form_runs(path, layers="3")
    assert shown.errors == {"_sweep": "the loaded file's exclude leaves out every run"}


@pytest.mark.parametrize(
    "text",
    [
        "matrix:\n  l: [1, 2]\nexclude: [{l: 2}]",  # no name: the form takes one typed in
        "name: s\nseeds: 0\nmatrix:\n  l: [1, 2]\nexclude: [{l: 2}]",  # noted, not taken
        "name: s\nmatrix:\n  l: [1, 2]\n  ch: [{a: 1}, 4]\nexclude: [{l: 2}]",  # a mapping
    ],
)
def test_an_exclude_is_kept_whatever_else_in_the_file_the_form_takes_its_own_way(
    tmp_path: Path, text: str
) -> None:
    # Fourth review: any other error of the file (no name, seeds: 0) lost the exclude,
    # and the form made l-2; a value no RunConfig takes raised TypeError.
    path = tmp_path / "s.yml"
    path.write_text(text + "\n")
    loaded = load_sweep(path)
    assert loaded.excluded is not None
    cell = {"layers": 2, "channels": 4}
    assert loaded.excluded.drops(cell) and not loaded.excluded.drops({**cell, "layers": 1})
    if "ch:" not in text:
        shown = preview("s", loaded.texts, loaded.key_names, loaded.extra,
                        excluded=loaded.excluded)  # fmt: skip
        assert [run.name for run in shown.runs] == ["l-1"]


def test_a_huge_matrix_with_an_exclude_is_refused_before_its_cells_are_listed(
    tmp_path: Path,
) -> None:
    # Third review: its million cells were listed (3.5 s, 337 MB; ten million: 45 s) on
    # the dashboard's UI thread, and the note said "kept", where queue refuses the file.
    path = tmp_path / "huge.yml"
    keys = ("l", "ch", "lr", "max_inputs", "weight_decay", "seed")
    matrix = "".join(f"  {key}: [{', '.join(str(i + 1) for i in range(10))}]\n" for key in keys)
    path.write_text(f"name: s\nmatrix:\n{matrix}exclude: [{{l: 2}}]\n")
    loaded = load_sweep(path)
    assert loaded.excluded is None and "(at most 10,000)" in loaded.notes[-1]


def test_a_field_of_many_values_is_refused_before_its_repeats_are_looked_for() -> None:
    import time

    started = time.perf_counter()
    result = preview("demo", texts(seed=",".join(map(str, range(30_000)))))
    assert result.errors["seed"] == "30000 values; at most 1000"
    assert time.perf_counter() - started < 2  # every pair compared: about 7 s


@pytest.mark.parametrize(
    ("exclude", "says"),
    [
        ("[{l: 7}]", "exclude entry 1 {l: 7} matches no cell of the matrix"),
        ("[{layers: 2}]", "exclude entry 1 {layers: 2} matches no cell"),
        ("{l: 2}", "'exclude'"),
    ],
)
def test_an_exclude_queue_refuses_is_not_loaded_and_the_note_says_why(
    tmp_path: Path, exclude: str, says: str
) -> None:
    # Review: a typo'd entry was half applied, under "matches no run the form makes".
    path = tmp_path / "s.yml"
    path.write_text(f"name: s\nmatrix:\n  l: [1, 2]\nexclude: {exclude}\n")
    loaded = load_sweep(path)
    assert loaded.excluded is None
    assert loaded.notes[-1].startswith("'exclude' not loaded: ") and says in loaded.notes[-1]


def test_a_batch_norm_position_written_off_loads_as_none(tmp_path: Path) -> None:
    # YAML reads `off` as False: the form wrote "False" and refused the file queue accepts.
    # (`exclude: []` drops nothing, and was said to be "(0 entries) kept".)
    path = tmp_path / "s.yml"
    path.write_text("name: s\nmax_inputs: 256\nmatrix:\n  bnp-e: [off, 1]\nexclude: []\n")
    loaded = load_sweep(path)
    assert loaded.texts["bn_encoder"] == "none,1"
    assert loaded.notes == []
    names, shown = form_runs(path)
    assert [run.config for run in shown.runs] == [run.config for run in expand_sweep_file(path)]


def test_memory_estimate_grows_with_batch_and_width() -> None:
    small = estimate_bytes(RunConfig())
    assert estimate_bytes(RunConfig(batch_size=128)) > small
    assert estimate_bytes(RunConfig(channels=64)) > small
    assert format_bytes(1536) == "1.5 KiB" and format_bytes(None) == "—"


def test_a_duplicate_keeps_the_base_run_s_swept_keys_with_their_values_now() -> None:
    from resconv_tui.sweep_form import BaseRun, name_runs

    base = BaseRun("l-1_ch-8_seed-0", RunConfig(layers=1, channels=8), {"l": 1, "ch": 8, "seed": 0})
    wider = expand_sweep({"name": "x", "layers": 1, "channels": 24}, source="test")
    (run,) = name_runs(wider, base)
    assert (run.name, run.swept) == ("l-1_ch-24_seed-0", {"l": 1, "ch": 24, "seed": 0})
    # the form's own matrix, on a base changed in two more keys: every one is said
    mapping = {"name": "x", "layers": 3, "channels": 24, "matrix": {"act": ["relu", "tanh"]}}
    names = [r.name for r in name_runs(expand_sweep(mapping, source="test"), base)]
    assert names == ["l-3_ch-24_seed-0_act-relu", "l-3_ch-24_seed-0_act-tanh"]
    unchanged = expand_sweep({"name": "x", "layers": 1, "channels": 8}, source="test")
    assert name_runs(unchanged, base)[0].name == "l-1_ch-8_seed-0"


def test_the_readme_s_duplicate_names_are_the_ones_d_gives() -> None:
    # It gave `l-1_ch-24_seed-0` as what `d` names, true only of a run whose sweep had
    # swept ch: a changed key it had not is named after the run's own keys.
    import re

    from core.sweep import slug_parts
    from resconv_tui.sweep_form import BaseRun, name_runs

    readme = (Path(__file__).parents[2] / "README.md").read_text()
    examples = re.findall(r"`([\w.-]+)` given 24 channels is `([\w.-]+)`", readme)
    assert len(examples) == 2
    for base_name, named in examples:
        swept = dict(part.split("-", 1) for part in base_name.split("_"))
        values = {key: int(value) for key, value in swept.items()}
        config = RunConfig(layers=values["l"], channels=values.get("ch", 32))
        base = BaseRun(base_name, config, values)
        assert slug_parts(values) == base_name.split("_")
        mapping = {"name": "x", "layers": values["l"], "channels": 24}
        (run,) = name_runs(expand_sweep(mapping, source="test"), base)
        assert run.name == named


def test_a_duplicate_of_a_pair_keyed_or_respelled_run_says_each_key_once() -> None:
    from resconv_tui.sweep_form import BaseRun, name_runs

    # T6's ch1-16_ch2-32 given channels [16, 64]: the pair's values now, not ch-16,64 too
    base = BaseRun("ch1-16_ch2-32", RunConfig(channels=[16, 32]), {"ch1": 16, "ch2": 32})
    runs = expand_sweep({"name": "x", "channels": [16, 64]}, source="test")
    (run,) = name_runs(runs, base)
    assert (run.name, run.swept) == ("ch1-16_ch2-64", {"ch1": 16, "ch2": 64})
    # swept as `layers` in the base, `l` in the form's matrix: one key, as the base wrote it
    base = BaseRun("layers-1", RunConfig(layers=1), {"layers": 1})
    mapping = {"name": "x", "matrix": {"l": [1, 2]}}
    assert [r.name for r in name_runs(expand_sweep(mapping, source="test"), base)] == [
        "layers-1", "layers-2",
    ]  # fmt: skip


def test_an_unchanged_duplicate_keeps_the_base_run_s_target() -> None:
    from resconv_tui.sweep_form import BaseRun, name_runs

    target = {"validation_loss": 0.0509118}
    base = BaseRun("l-11", RunConfig(layers=11), {"l": 11}, target)
    (same,) = name_runs(expand_sweep({"name": "x", "layers": 11}, source="test"), base)
    assert (same.name, same.target) == ("l-11", target)  # queued again in place: kept
    # Other seeds of its cell: the cell's published figure is theirs too (they showed
    # "–" while --by-cell applied it to all the seeds).
    seeds = expand_sweep({"name": "x", "layers": 11, "matrix": {"seed": [0, 1, 2]}}, "test")
    assert [run.target for run in name_runs(seeds, base)] == [target] * 3
    other = name_runs(expand_sweep({"name": "x", "layers": 5}, source="test"), base)
    assert other[0].target is None  # another cell: not its figure


def test_loading_a_file_that_is_not_utf8_says_so(tmp_path: Path) -> None:
    path = tmp_path / "s.yml"
    path.write_bytes(b"\xff\xfen\x00a\x00m\x00e\x00")
    with pytest.raises(SweepError, match=r"s.yml: not UTF-8 text \(byte 0xff at offset 0\)"):
        load_sweep(path)


def test_loading_a_file_nested_too_deeply_is_one_line(tmp_path: Path) -> None:
    # A RecursionError traceback from PyYAML's composer before.
    path = tmp_path / "deep.yml"
    path.write_text("name: x\nch: " + "[" * 1000 + "4" + "]" * 1000 + "\n")
    with pytest.raises(SweepError, match=r"deep.yml: the YAML is nested too deeply"):
        load_sweep(path)


@pytest.mark.parametrize(
    ("text", "says"),
    [
        # Both said only the problem's second half: "but found another document",
        # "second occurrence"; the form's f3 said only PyYAML's first line, with no line
        # number: "while scanning for the next token".
        ("name: x\n---\nname: y\n", "at line 2, column 1: expected a single document in "
         "the stream (line 1), but found another document"),
        ("name: x\na: &k 1\nb: &k 2\n", "at line 3, column 4: found duplicate anchor 'k'; "
         "first occurrence (line 2), second occurrence"),
        ("name: x\n\tlayers: 2\n",
         "at line 2, column 1: found character '\\t' that cannot start any token (indent "
         "with spaces, not tabs)"),
        # PyYAML ends a line at U+2028, U+2029 and NEL too, where an editor does not: the
        # tab of line 2 was said at line 5, and the second line's anchor at line 3.
        ('name: "a\u2028b\u2029c\x85d"\n\tlayers: 2\n',
         "at line 2, column 1: found character '\\t' that cannot start any token (indent "
         "with spaces, not tabs)"),
        ('name: "a\u2028b"\t: 1\n',
         "at line 1, column 12: found character '\\t' that cannot start any token (write "
         "a space there, not a tab)"),
        ('name: "\u2028"\na: &k 1\nb: &k 2\n', "at line 3, column 4: found duplicate anchor "
         "'k'; first occurrence (line 2), second occurrence"),
        # An unclosed bracket or quote was said only where the parser gave up (the file's
        # end), not where it opened: "while parsing a flow sequence" and its line dropped.
        ("name: x\nlr: [0.1, 0.2\n", "at line 3, column 1: expected ',' or ']', but got "
         "'<stream end>' (while parsing a flow sequence that began at line 2, column 5)"),
        ("name: x\nlr: {a: 1\nlayers: 2\n", "at line 3, column 7: expected ',' or '}', but "
         "got ':' (while parsing a flow mapping that began at line 2, column 5)"),
        ('name: "x\n', "at line 2, column 1: found unexpected end of stream (while scanning a "
         "quoted scalar that began at line 1, column 7)"),
    ],
    ids=["two documents", "anchor twice", "tab", "line separators", "column", "context line",
         "unclosed [", "unclosed {", "unclosed quote"],
)  # fmt: skip
def test_malformed_yaml_is_said_whole_where_it_is(tmp_path: Path, text: str, says: str) -> None:
    path = tmp_path / "s.yml"
    path.write_text(text, encoding="utf-8")
    for read in (expand_sweep_file, load_sweep):  # `queue` and the form's f3
        with pytest.raises(SweepError) as caught:
            read(path)
        assert str(caught.value) == f"{path}: malformed YAML {says}"


def test_a_loaded_include_follows_the_form_through_edits(tmp_path: Path) -> None:
    path = tmp_path / "s.yml"
    path.write_text("name: s\nmax_inputs: 256\nmatrix:\n  l: [1, 2, 3]\ninclude:\n"
                    "- {l: 2, batch_size: 32}\n- {l: 3, batch_size: 16}\n"
                    "- {l: 9, act: relu}\n")  # fmt: skip
    names, shown = form_runs(path)
    assert names == ["l-1", "l-2_batch_size-32", "l-3_batch_size-16", "l-9_act-relu"]
    assert [run.config.batch_size for run in shown.runs] == [64, 32, 16, 64]
    # Another lr for every run: the entries still change their cells.
    names, shown = form_runs(path, lr="1e-3")
    assert (
        names == ["l-1", "l-2_batch_size-32", "l-3_batch_size-16", "l-9_act-relu"]
        and not shown.notes
    )
    # Layers 1,3: the entry for 2 changes no run now. Queue would make it a run of its
    # own, which no field shows: left out, and said. {l: 9} is a run of its own as before.
    names, shown = form_runs(path, layers="1,3")
    assert names == ["l-1", "l-3_batch_size-16", "l-9_act-relu"]
    assert shown.notes == ("include entry {l: 2, batch_size: 32} left out: it changes none "
                           "of the form's runs",)  # fmt: skip
    # Saved (f2) without it, and queued from that file: the same runs again.
    loaded = load_sweep(path)
    texts = {**loaded.texts, "layers": "1,3"}
    mapping = loaded_mapping(loaded, shown, texts)
    assert mapping["include"] == [{"l": 3, "batch_size": 16}, {"l": 9, "act": "relu"}]
    saved = save_sweep(tmp_path / "again.yml", mapping)
    again = [(r.name, r.config_hash) for r in expand_sweep_file(saved)]
    assert again == [(r.name, r.config_hash) for r in shown.runs]


def test_a_loaded_files_seeds_are_named_after_what_its_include_adds(tmp_path: Path) -> None:
    # The seed field was written as a matrix key: the form named l-2_seed-0_bs-32 where
    # `queue FILE` names l-2_bs-32_seed-0 (its seeds are named after the whole cell).
    path = tmp_path / "s.yml"
    path.write_text("name: s\nmax_inputs: 256\nseeds: 2\nmatrix:\n  l: [1, 2]\n"
                    "include: [{l: 2, bs: 32}]\n")  # fmt: skip
    loaded = load_sweep(path)
    shown = loaded_preview(loaded)
    expected = [(r.name, r.config_hash) for r in expand_sweep_file(path)]
    assert [(r.name, r.config_hash) for r in shown.runs] == expected
    mapping = loaded_mapping(loaded, shown)
    assert mapping["seeds"] == [0, 1]
    assert [(r.name, r.config_hash) for r in expand_sweep(mapping)] == expected


def test_runs_an_edit_leaves_out_of_a_seeds_file_are_saved_as_one_entry_a_cell(
    tmp_path: Path,
) -> None:
    # Layers 1,2: {l: 3} matches no cell, so one entry per cell left out is written; with
    # `seeds` written as such, an entry naming the seed would be refused, and not saved.
    path = tmp_path / "s.yml"
    path.write_text("name: s\nmax_inputs: 256\nseeds: 2\nmatrix:\n  l: [1, 2, 3]\n"
                    "exclude: [{l: 2}, {l: 3}]\n")  # fmt: skip
    loaded = load_sweep(path)
    texts = {**loaded.texts, "layers": "1,2"}
    shown = loaded_preview(loaded, texts)
    mapping = loaded_mapping(loaded, shown, texts)
    assert mapping["exclude"] == [{"l": 2}]
    assert [r.config for r in expand_sweep(mapping)] == [r.config for r in shown.runs]


@pytest.mark.parametrize(
    ("text", "left_out"),
    [("matrix:\n  l: [1, 2]\nexclude: [{l: 2}]\ninclude: [{l: 2, batch_size: 32}]",
      "1 run"),
     ("seeds: 2\nmatrix:\n  l: [1, 2, 3]\nexclude: [{l: 2}]\n"
      "include: [{l: 2, bs: 32}, {l: 3, bs: 16}]", "2 runs")],  # l-2 at each seed
)  # fmt: skip
def test_an_include_entry_for_a_cell_the_exclude_drops_is_a_run_of_its_own(
    tmp_path: Path, text: str, left_out: str
) -> None:
    # Queue merges an include into the cells its exclude leaves: {l: 2, ...} fits none and
    # is a run of its own. The form left the exclude's cells out as their runs were built,
    # after the include was merged into them: l-2_batch_size-32 was left out too.
    path = tmp_path / "s.yml"
    path.write_text(f"name: s\nmax_inputs: 256\n{text}\n")
    loaded = load_sweep(path)
    shown = loaded_preview(loaded)
    expected = [(r.name, r.config_hash) for r in expand_sweep_file(path)]
    assert [(r.name, r.config_hash) for r in shown.runs] == expected
    assert shown.notes == (f"the loaded file's exclude leaves out {left_out}",)
    mapping = loaded_mapping(loaded, shown)
    assert [(r.name, r.config_hash) for r in expand_sweep(mapping)] == expected


def test_a_target_of_a_cell_the_loaded_exclude_leaves_out_goes_with_its_run(
    tmp_path: Path,
) -> None:
    # The exclude's cells were left out before the targets were matched (3df8ef8): act
    # edited to gelu left l-2's target only the excluded l-2_act-gelu, and the preview,
    # ctrl+s with it, said "targets entry 1 {l: 2, ...} matches no run: l: 2 is not among
    # the matrix's l values [1]" of a form whose layers are 1,2.
    path = tmp_path / "s.yml"
    path.write_text("name: s\nmax_inputs: 256\nmatrix:\n  l: [1, 2]\n  act: [gelu, relu]\n"
                    "exclude: [{l: 2, act: gelu}]\ntargets:\n- {l: 2, validation_loss: 0.1}\n"
                    "- {act: gelu, validation_loss: 0.2}\n")  # fmt: skip
    loaded = load_sweep(path)
    texts = {**loaded.texts, "activation": "gelu"}
    shown = loaded_preview(loaded, texts, published_for=dict(loaded.texts))
    assert shown.errors == {}
    assert [(r.name, r.target) for r in shown.runs] == [("l-1_act-gelu", {"validation_loss": 0.2})]
    # Kept out of the form's targets (its run is not made: a save keeps the file valid).
    assert shown.notes == (
        "targets: 1 of 2 entries kept; the others are for runs the form does not make",
        "the loaded file's exclude leaves out 1 run",
    )


def test_a_path_with_a_nul_is_named_in_yamls_escapes() -> None:
    # Written as a YAML file writes such text ("x\0.yml" double-quoted, escaped), as
    # every other value the form echoes is, not in Python's quotes.
    with pytest.raises(SweepError) as info:
        load_sweep("x\x00.yml")
    assert str(info.value) == '"x\\x00.yml": a path cannot hold a NUL character'


@pytest.mark.parametrize(
    ("field", "text", "yaml_text"),
    [
        ("lr", "100", "lr: [100]"),
        ("lr", "100,3e-3", "lr: [100, 3e-3]"),
        ("lr", "100.0", "lr: [100.0]"),
        ("lr", "1e2", "lr: [1e2]"),
        ("weight_decay", "0", "weight_decay: [0]"),
        ("residual_weight", "2", "RWF: [2]"),
    ],
)
def test_a_whole_float_typed_in_the_form_is_named_as_queue_names_it(
    tmp_path: Path, field: str, text: str, yaml_text: str
) -> None:
    # The form read `100` as 100.0 and named the run lr-100.0; `queue` of `lr: [100]`
    # names it lr-100. Both are one config: queueing either way skips the other's runs.
    from core.queue.repo import NewRun, Repo

    shown = preview("same", texts(**{field: text}))
    assert shown.ok, shown.errors
    key = {"residual_weight": "RWF"}.get(field, field)
    path = tmp_path / "s.yml"
    path.write_text(f"name: same\nmatrix:\n  {yaml_text}\n")
    queued = expand_sweep_file(path)
    assert [run.name for run in shown.runs] == [run.name for run in queued]
    assert all(run.name.startswith(f"{key}-") for run in shown.runs)
    repo = Repo.open(f"sqlite:///{tmp_path / 'runs.db'}")
    assert repo.enqueue([NewRun.from_expanded(run) for run in queued]).added == len(queued)
    again = repo.enqueue([NewRun.from_expanded(run) for run in shown.runs])
    assert again.added == 0
    repo.close()


def test_a_duplicate_of_an_lr_100_run_names_its_runs_as_queue_does() -> None:
    from resconv_tui.sweep_form import BaseRun

    (base,) = expand_sweep({"name": "x", "matrix": {"lr": [100]}}, source="test")
    assert base.name == "lr-100" and base.config.lr == 100.0
    dup = BaseRun(base.name, base.config, base.swept)
    from_run = default_texts(base.config.to_dict())
    assert from_run["lr"] == "100.0"  # as the config holds it; the base's name says 100
    shown = preview("x", {**from_run, "seed": "1"}, base=dup)
    assert [run.name for run in shown.runs] == ["lr-100_seed-1"]  # was lr-100.0_seed-1
    wider = preview("x", {**from_run, "layers": "2,3"}, base=dup)
    assert [run.name for run in wider.runs] == ["lr-100_l-2", "lr-100_l-3"]
    # A base named by a float (the logbook's RWF-1.0) keeps its spelling; a value
    # changed to one typed whole is named as typed.
    (rwf,) = expand_sweep({"name": "x", "matrix": {"RWF": [1.0]}}, source="test")
    texts_of = default_texts(rwf.config.to_dict())
    assert texts_of["residual_weight"] == "1.0"
    kept = preview("x", {**texts_of, "seed": "1"}, base=BaseRun(rwf.name, rwf.config, rwf.swept))
    assert [run.name for run in kept.runs] == ["RWF-1.0_seed-1"]
    changed = preview("x", {**from_run, "lr": "200"}, base=dup)
    assert [run.name for run in changed.runs] == ["lr-200"]
