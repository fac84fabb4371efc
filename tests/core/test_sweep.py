"""Sweep files: expansion (matrix order, include/exclude, seeds, aliases) and bad input."""

from __future__ import annotations

import contextlib
import re
import sqlite3
from pathlib import Path

import pytest

from core.errors import ConfigError, SweepError, written
from core.sweep import (
    expand_sweep,
    expand_sweep_file,
    expand_sweep_text,
    flow_text,
    include_fits,
    targets_attached,
    trained_alike_note,
)
from core.sweep_yaml import load_yaml

EXPERIMENTS = Path(__file__).resolve().parents[2] / "experiments"
KNOWN_ACTIVATIONS = (
    "Hardshrink, Hardsigmoid, Hardtanh, Hardswish, LeakyReLU, LogSigmoid, PReLU, ReLU, ReLU6, "
    "RReLU, SELU, CELU, GELU, Sigmoid, SiLU, Mish, Softplus, Softshrink, Softsign, Tanh, "
    "Tanhshrink"
)

LOGBOOK_RUNS = {
    "t1-layers-32.yml": 12,
    "t2-layers-64.yml": 12,
    "t3-residual-weight.yml": 6,
    "t4-batchnorm-position.yml": 16,
    "t5-activation.yml": 21,
    "t6-channels.yml": 16,
    "t7-kernel-size.yml": 5,
    "t8-kernel-sizes.yml": 25,
}


@pytest.mark.parametrize(("file", "count"), LOGBOOK_RUNS.items())
def test_experiment_files_expand_to_the_logbook_runs(file: str, count: int) -> None:
    runs = expand_sweep_file(EXPERIMENTS / file)
    assert len(runs) == count
    for run in runs:
        assert run.target is not None, run.name
        assert run.param_count == run.target["params"], run.name


def test_t1_is_v1_at_32_and_t2_reduces_batch_for_deep_runs() -> None:
    t1 = expand_sweep_file(EXPERIMENTS / "t1-layers-32.yml")
    assert [r.config.layers for r in t1] == [1, 2, 3, 5, 7, 9, 11, 13, 15, 17, 19, 21]
    assert {(r.config.model, r.config.image_size, r.config.residual_weight) for r in t1} == {
        ("v1", 32, 0.1)
    }
    t2 = expand_sweep_file(EXPERIMENTS / "t2-layers-64.yml")
    batch = {r.config.layers: r.config.batch_size for r in t2}
    assert batch[21] == batch[30] == 32 and batch[19] == 64


def test_t4_includes_no_batch_norm() -> None:
    runs = expand_sweep_file(EXPERIMENTS / "t4-batchnorm-position.yml")
    assert runs[-1].config.bn_encoder is None and runs[-1].config.bn_decoder is None
    assert runs[-1].name == "bnp-e-none_bnp-d-none"


def test_matrix_order_first_key_outermost_and_slugs() -> None:
    runs = expand_sweep_text("name: x\nlayers: 2\nmatrix:\n  ks: [3, 5]\n  act: [gelu, relu]\n")
    assert [r.name for r in runs] == [
        "ks-3_act-gelu",
        "ks-3_act-relu",
        "ks-5_act-gelu",
        "ks-5_act-relu",
    ]
    assert [r.index for r in runs] == [1, 2, 3, 4]
    assert runs[2].config.kernel_size == 5 and runs[2].config.activation == "gelu"
    assert runs[0].swept == {"ks": 3, "act": "gelu"}
    assert {r.experiment for r in runs} == {"x"}


def test_exclude_and_include_follow_github_actions() -> None:
    text = """
name: x
layers: 2
matrix:
  l: [2, 3]
  ks: [3, 5]
exclude:
  - {l: 3, ks: 5}
include:
  - {l: 2, batch_size: 32}      # merges into both l=2 cells
  - {l: 4, ks: 7}               # fits no cell: a new one
"""
    text = text.replace("layers: 2\n", "")
    runs = expand_sweep_text(text)
    assert [r.name for r in runs] == [
        "l-2_ks-3_batch_size-32",
        "l-2_ks-5_batch_size-32",
        "l-3_ks-3",
        "l-4_ks-7",
    ]
    assert runs[0].config.batch_size == 32 and runs[2].config.batch_size == 64


def test_with_no_matrix_every_include_entry_is_a_run_of_its_own() -> None:
    # GitHub Actions: with no matrix variables, every include entry is a combination.
    # Each entry was merged into the one empty cell in turn: only the last one ran.
    text = (
        "name: inc\nlayers: 1\ninclude:\n  - {act: relu}\n  - {act: tanh}\n  - {act: gelu, ch: 8}\n"
    )
    runs = expand_sweep_text(text)
    assert [r.name for r in runs] == ["act-relu", "act-tanh", "act-gelu_ch-8"]
    assert [r.config.channels for r in runs] == [32, 32, 8]
    assert [r.name for r in expand_sweep_text(text + "seeds: 2\n")] == [
        "act-relu_seed-0", "act-relu_seed-1", "act-tanh_seed-0", "act-tanh_seed-1",
        "act-gelu_ch-8_seed-0", "act-gelu_ch-8_seed-1",
    ]  # fmt: skip
    with pytest.raises(SweepError, match="include entries 1 and 2 are the same"):
        expand_sweep_text("name: x\nlayers: 1\ninclude: [{act: relu}, {act: relu}]\n")
    # No include, no matrix: the one run of the fixed parameters.
    assert [r.name for r in expand_sweep_text("name: x\nlayers: 1\nmatrix: {}\n")] == ["run"]


def test_values_are_compared_with_their_types() -> None:
    # An include of `bnp-e: false` (no batch norm) was merged into the `bnp-e: 0` cell
    # (False == 0), turning it into a run without batch norm: it is a cell of its own.
    text = "name: x\nlayers: 2\nmatrix:\n  bnp-e: [0, 1]\ninclude: [{bnp-e: false}]\n"
    runs = expand_sweep_text(text)
    assert [r.name for r in runs] == ["bnp-e-0", "bnp-e-1", "bnp-e-false"]
    assert [r.config.bn_encoder for r in runs] == [0, 1, None]
    text = "name: x\nlayers: 2\nmatrix:\n  bnp-e: [0, false]\nexclude: [{bnp-e: false}]\n"
    assert [r.name for r in expand_sweep_text(text)] == ["bnp-e-0"]
    text = "name: x\nlayers: 2\nmatrix:\n  ch: [[4, 8], [1, 2]]\nexclude: [{ch: [4, 8]}]\n"
    assert [r.name for r in expand_sweep_text(text)] == ["ch-1,2"]


def test_names_write_booleans_as_the_sweep_file_does() -> None:
    # YAML 1.1 reads `off` as false (no batch norm): the run was named bnp-e-False, in
    # Python's spelling, where every message about the file says false.
    text = "name: x\nlayers: 2\nmatrix:\n  bnp-e: [off, 1]\n  bnp-d: [none]\n"
    assert [r.name for r in expand_sweep_text(text)] == [
        "bnp-e-false_bnp-d-none", "bnp-e-1_bnp-d-none"
    ]  # fmt: skip
    with pytest.raises(SweepError, match=r"run 'ch-true,2': key 'channels'"):
        expand_sweep_text("name: x\nlayers: 2\nmatrix:\n  ch: [[yes, 2]]\n")


def test_an_include_is_never_merged_into_a_cell_an_include_made() -> None:
    # GitHub's documented example, fruit/animal as act/ch: {fruit: banana} makes a
    # combination, and {fruit: banana, animal: cat} makes another, not a merge into it
    # (the act-tanh cell disappeared when it took the second entry's ch).
    text = """
name: x
layers: 2
matrix:
  act: [gelu, relu]
  ch: [4, 8]
include:
  - {act: tanh}
  - {act: tanh, ch: 4}
"""
    runs = expand_sweep_text(text)
    assert [r.name for r in runs] == [
        "act-gelu_ch-4", "act-gelu_ch-8", "act-relu_ch-4", "act-relu_ch-8",
        "act-tanh", "act-tanh_ch-4",
    ]  # fmt: skip
    assert runs[4].config.channels == 32  # the default: a cell of its own


@pytest.mark.parametrize(
    ("text", "fits"),
    [("matrix: {l: [1, 2]}\ninclude: [{l: 2, bs: 32}, {l: 3}, {bs: 16}]", [True, False, True]),
     # After the exclude: an entry for an excluded cell only is a run of its own.
     ("matrix: {l: [1, 2]}\nexclude: [{l: 2}]\ninclude: [{l: 2, bs: 32}]", [False]),
     ("layers: 1\ninclude: [{act: relu}]", [False]),  # no matrix: no cell to merge into
     ("matrix: {act: [gelu]}\ninclude: [{act: tanh}, {act: tanh, ch: 4}]", [False, False])],
)  # fmt: skip
def test_include_fits_says_which_entries_queue_merges_into_cells(
    text: str, fits: list[bool]
) -> None:
    # The new-sweep form's rule for a loaded include, read as expand_sweep reads it.
    data = load_yaml(f"name: x\n{text}\n")
    assert include_fits(data, source="x") == fits
    with pytest.raises(SweepError, match="include entries 1 and 2 are the same"):
        include_fits(load_yaml("name: x\nmatrix: {l: [1]}\ninclude: [{l: 3}, {l: 3}]\n"), "x")


@pytest.mark.parametrize(
    ("text", "attached"),
    [("matrix: {l: [1, 2]}\ninclude: [{l: 3}]\n"
      "targets: [{l: 3, validation_loss: 0.1}, {l: 4, validation_loss: 0.1}]", [True, False]),
     # A key an include entry sets names its cell too; the matrix's own value does not.
     ("matrix: {l: [1, 2]}\ninclude: [{l: 2, bs: 32}]\n"
      "targets: [{l: 2, bs: 32, validation_loss: 0.1}, {l: 2, bs: 64, validation_loss: 0.1}]",
      [True, False]),
     # A cell the exclude drops is no run's.
     ("matrix: {l: [1, 2]}\nexclude: [{l: 2}]\n"
      "targets: [{l: 1, validation_loss: 0.1}, {l: 2, validation_loss: 0.1}]", [True, False])],
)  # fmt: skip
def test_targets_attached_says_which_entries_name_a_run(text: str, attached: list[bool]) -> None:
    # The new-sweep form keeps a loaded file's targets that still name a run, as queue
    # attaches them: a target for a cell only an include makes was left out.
    data = load_yaml(f"name: x\nmax_inputs: 256\n{text}\n")
    assert targets_attached(data, source="x") == attached
    kept = [entry for entry, fits in zip(data["targets"], attached, strict=True) if fits]
    runs = expand_sweep({**data, "targets": kept}, source="x")
    assert sum(run.target is not None for run in runs) == len(kept)


def test_seeds_multiply_cells_and_change_the_hash() -> None:
    runs = expand_sweep_text("name: x\nlayers: 2\nmatrix:\n  ks: [3, 5]\nseeds: 3\n")
    assert len(runs) == 6
    assert [r.config.seed for r in runs[:3]] == [0, 1, 2]
    assert runs[1].name == "ks-3_seed-1"
    assert len({r.config_hash for r in runs}) == 6
    listed = expand_sweep_text("name: x\nlayers: 2\nseeds: [7, 9]\n")
    assert [r.config.seed for r in listed] == [7, 9]


def test_pair_aliases_make_interpolated_lists() -> None:
    runs = expand_sweep_text("name: x\nmatrix:\n  ks1: [3]\n  ks2: [9]\n  ch1: [16]\n  ch2: [64]\n")
    config = runs[0].config
    assert config.kernel_list() == [3, 3, 5, 5, 5, 7, 7, 7, 7, 9, 9]
    assert config.channel_list() == [16, 20, 25, 30, 35, 40, 44, 49, 54, 59, 64]


def test_same_config_and_seed_gives_the_same_hash_across_files() -> None:
    a = expand_sweep_text("name: a\nlayers: 2\nks: 3\n")
    b = expand_sweep_text("name: b\nmatrix:\n  layers: [2]\n  kernel_size: [3]\n")
    assert a[0].config_hash == b[0].config_hash
    assert a[0].name == "run"


BAD_FILES = {
    "malformed YAML": ("name: x\nmatrix: [\n", "malformed YAML at line"),
    # PyYAML's "found character '\t' that cannot start any token" said nothing of what
    # to do, of a character most editors do not show.
    "a tab to indent": (
        "name: x\nmatrix:\n\tact: [gelu]\n",
        "bad.yml: malformed YAML at line 3, column 1: found character '\\t' that cannot start "
        "any token (indent with spaces, not tabs)",
    ),
    "a tab after a colon": (
        "name: x\nlayers:\t2\n",
        "malformed YAML at line 2, column 8: found character '\\t' that cannot start any "
        "token (write a space there, not a tab)",
    ),
    # Unquoted, YAML reads these as no text: "a non-empty string (got 123)" said not why.
    "name a number": (
        "name: 123\n",
        "bad.yml: key 'name': required, a non-empty string (got 123; quote it: name: \"123\")",
    ),
    "name a truth value": (
        "name: yes\n",
        "key 'name': required, a non-empty string (got true; YAML reads yes, no, on, off, "
        "true and false unquoted as true or false: quote it)",
    ),
    "no name": ("layers: 2\n", "key 'name': required"),
    "unknown key": (
        "name: x\nlayerz: 2\n",
        "unknown key 'layerz' (did you mean 'layers'?); run parameters",
    ),
    "two typos, fixed and swept": (
        "name: x\nlayer: 2\nmatrix:\n  chanels: [3]\n  ks: [3]\n",
        "2 unknown keys: 'layer' (did you mean 'layers'?), matrix: 'chanels' (did you mean "
        "'channels'?); run parameters",
    ),
    "typos of the file's own keys": (
        "name: x\nmatrx:\n  l: [1]\ntargts: []\n",
        "2 unknown keys: 'matrx' (did you mean 'matrix'?), 'targts' (did you mean 'targets'?)",
    ),
    "two typos in exclude entries": (
        "name: x\nmatrix:\n  l: [2]\nexclude: [{lr: 1, foo: 2}, {bar: 1}]\n",
        "2 unknown keys: exclude entry 1: 'foo', exclude entry 2: 'bar'; run parameters",
    ),
    "unknown matrix key": ("name: x\nmatrix:\n  foo: [1]\n", "unknown key 'foo'"),
    "empty matrix list": ("name: x\nmatrix:\n  l: []\n", "matrix key 'l': the list is empty"),
    "matrix not a list": ("name: x\nmatrix:\n  l: 3\n", "matrix key 'l': expected a list"),
    "channels 0": ("name: x\nmatrix:\n  ch: [32, 0]\n", "key 'channels': every value must be >= 1"),
    "kernel 0": ("name: x\nks: 0\n", "key 'kernel_size'"),
    "even kernel with same": ("name: x\nks: 4\n", "padding 'same' needs odd kernel sizes"),
    "unknown activation": ("name: x\nact: swishy\n", "unknown activation"),
    "negative lr": ("name: x\nlr: -0.1\n", "key 'lr': must be a positive number"),
    "image size": ("name: x\nimage_size: 48\n", "unsupported image size"),
    "ks1 alone": ("name: x\nmatrix:\n  ks1: [3]\n", "'ks1' needs its partner 'ks2'"),
    "fixed and swept": ("name: x\nl: 2\nmatrix:\n  l: [3]\n", "both fixed and in 'matrix'"),
    "seeds and seed": ("name: x\nseed: 1\nseeds: 2\n", "either 'seeds' or 'seed'"),
    # The seeds replaced the entry's seed without a word.
    "seeds and an include's seed": (
        "name: x\nseeds: [0, 1]\nmatrix:\n  ch: [4, 8]\ninclude: [{ch: 4, seed: 7}]\n",
        "include entry 1: key 'seed' with 'seeds': give either 'seeds' or 'seed', not both",
    ),
    "seeds and an include's seed, no matrix": (
        "name: x\nseeds: 2\ninclude: [{l: 2}, {seed: 5}]\n",
        "include entry 2: key 'seed' with 'seeds'",
    ),
    "all excluded": ("name: x\nmatrix:\n  l: [2]\nexclude: [{l: 2}]\n", "expands to no runs"),
    "not a mapping": ("- 1\n- 2\n", "expected a mapping"),
    # The whole list as Python's repr: "got [{1: 2, 'lr': 0.1}, [1], 5]".
    "an include entry a list": (
        "name: x\nmatrix:\n  lr: [0.1]\ninclude:\n- {l: 2, lr: 0.1}\n- [1]\n- 5\n",
        "bad.yml: include entry 2 is [1], not a mapping of keys to values",
    ),
    "an exclude entry text": (
        "name: x\nmatrix:\n  lr: [0.1]\nexclude:\n- lr:0.1\n",
        "bad.yml: exclude entry 1 is lr:0.1, not a mapping of keys to values",
    ),
    "an include entry empty": (
        "name: x\nmatrix:\n  lr: [0.1]\ninclude:\n- {l: 2}\n-\n",
        "bad.yml: include entry 2 is empty: give it keys and values",
    ),
    "an include entry {}": (
        "name: x\nmatrix:\n  lr: [0.1]\ninclude: [{}]\n",
        "bad.yml: include entry 1 is {}: give it keys and values",
    ),
    "include no list": (
        "name: x\nmatrix:\n  lr: [0.1]\ninclude: {l: 2}\n",
        "key 'include': expected a list of mappings of keys to values, got {l: 2}",
    ),
    # As Python's repr, the whole list: "key 'targets': expected a list of mappings, got
    # [{'lr': 0.1, 'validation_loss': 0.2}, [1], 5]" (None for an empty entry, 'a' for text).
    "a targets entry a list": (
        "name: x\nmatrix:\n  lr: [0.1]\ntargets:\n- {lr: 0.1, validation_loss: 0.2}\n- [1]\n- 5\n",
        "bad.yml: targets entry 2 is [1], not a mapping of keys to values",
    ),
    "a targets entry text": (
        "name: x\nmatrix:\n  lr: [0.1]\ntargets: [名前]\n",
        "bad.yml: targets entry 1 is 名前, not a mapping of keys to values",
    ),
    "a targets entry empty": (
        "name: x\nmatrix:\n  lr: [0.1]\ntargets:\n- {lr: 0.1, validation_loss: 0.2}\n-\n",
        "bad.yml: targets entry 2 is empty: give it keys and values",
    ),
    "targets no list": (
        "name: x\nmatrix:\n  lr: [0.1]\ntargets: {lr: 0.1, validation_loss: 0.2}\n",
        "key 'targets': expected a list of mappings of keys to values, got {lr: 0.1, "
        "validation_loss: 0.2}",
    ),
    # A file that sweeps nothing has one run, named "run": it said "run 'run': key ...".
    "wrong type": ("name: x\nlayers: three\n", "bad.yml: key 'layers': expected an integer"),
    # Free text: a number or a list passed.
    "description a number": (
        "name: x\ndescription: 3\n",
        "key 'description': free text, a string (got 3; quote it: description: \"3\")",
    ),
    "description a list": ("name: x\ndescription: [1, 2]\n", "a string (got [1, 2])"),
    # The real reason: a whole number written as a float is exact only up to 2**53.
    "max_inputs 1e16": (
        "name: x\nmax_inputs: 1e16\n",
        "key 'max_inputs': must be 1 to 1,000,000,000 (got 1e+16)",
    ),
    "layers 1e16": (
        "name: x\nlayers: 1e16\n",
        "expected an integer (written as a float, at most 2**53 = 9,007,199,254,740,992), "
        "got 1e+16",
    ),
    # False == 0 in Python: this dropped the `bnp-e: 0` cell.
    "exclude false for 0": (
        "name: x\nmatrix:\n  bnp-e: [0, 1]\nexclude: [{bnp-e: false}]\n",
        "exclude entry 1 {bnp-e: false} matches no cell of the matrix: bnp-e: false is not among",
    ),
    # Values as the file writes them, not as Python's repr: "got 'abc'", "got ['a', 'b']",
    # "got True", with quotes and capitals the file does not hold.
    "a targets figure text": (
        "name: x\nmatrix:\n  lr: [0.1]\ntargets:\n- {lr: 0.1, validation_loss: abc}\n",
        "bad.yml: targets entry 1: key 'validation_loss': a number, 0 or more (got abc)",
    ),
    "a targets figure true": (
        "name: x\nmatrix:\n  lr: [0.1]\ntargets:\n- {lr: 0.1, minutes: yes}\n",
        "key 'minutes': a number, 0 or more (minutes) (got true)",
    ),
    "an include value text": (
        "name: x\nmatrix:\n  lr: [0.1]\ninclude:\n- {lr: 0.1, layers: abc}\n",
        "key 'layers': expected an integer, got abc",
    ),
    "a matrix key no list": (
        "name: x\nmatrix:\n  l: abc\n",
        "matrix key 'l': expected a list, got abc",
    ),
    "a matrix text": (
        "name: x\nmatrix: abc\n",
        "key 'matrix': expected a mapping of key -> list, got abc",
    ),
    "seeds text": ("name: x\nseeds: abc\n", "a count or a list of seeds >= 0, got abc"),
    "seeds of text": ("name: x\nseeds: [a, b]\n", "a count or a list of seeds >= 0, got [a, b]"),
    "name a list": ("name: [a, b]\n", "key 'name': required, a non-empty string (got [a, b])"),
    "description a list of text": ("name: x\ndescription: [a, b]\n", "a string (got [a, b])"),
    "dataset unknown": (
        "name: x\ndataset: foo\n",
        "key 'dataset': must be one of fmnist, mnist (got foo)",
    ),
    "activation a list": (
        "name: x\nact: [relu]\n",
        f"key 'activation': unknown activation; known: {KNOWN_ACTIVATIONS} (got [relu])",
    ),
    "channels holding text": ("name: x\nl: 3\nch: [4, x]\n", "per-layer list of ints, got [4, x]"),
    "padding holding text": ("name: x\npad: [1, a]\n", "per-layer list of ints, got [1, a]"),
    "bn position text": (
        "name: x\nbnp-e: a\n",
        "key 'bn_encoder': expected 0, 1, 2 or 'none', got a",
    ),
    "lr null": ("name: x\nlr: null\n", "key 'lr': expected a number, got null"),
    # Text that reads as a number keeps its quotes, as the file must write it.
    "layers quoted": ("name: x\nlayers: '3'\n", "key 'layers': expected an integer, got '3'"),
    "exclude text not among": (
        "name: x\nmatrix:\n  act: [relu]\nexclude: [{act: gelu}]\n",
        "act: gelu is not among the matrix's act values [relu]",
    ),
}


@pytest.mark.parametrize(
    "value",
    [
        "abc",
        "two words",
        "名前",
        "a-b",
        "lr:0.1",
        'a"b',
        "3",
        "yes",
        "null",
        "",
        " a",
        "a: b",
        "[x]",
        "*x",
        "a'b",
        "a\nb",
        1,
        0.1,
        float("nan"),
        float("-inf"),
        True,
        None,
        [1, "a", False],
        {"lr": 0.1, "act": "relu", "ch": [4, 8]},
    ],
)
def test_values_in_messages_read_as_yaml_writes_them(value: object) -> None:
    # core.config cannot use YAML (stdlib only): its own writing agrees with YAML's.
    assert written(value) == flow_text(value)


def test_text_with_what_a_terminal_acts_on_is_escaped_in_double_quotes() -> None:
    assert written("\x1b[2J") == '"\\x1b[2J"'
    assert written(["a\u202eb"]) == '["a\\u202eb"]'
    assert written("\u2800") == "'\u2800'"  # drawn as blank: quoted, so it shows


@pytest.mark.parametrize(("text", "fragment"), BAD_FILES.values(), ids=BAD_FILES.keys())
def test_bad_files_fail_whole_with_one_line_naming_the_problem(
    tmp_path: Path, text: str, fragment: str
) -> None:
    path = tmp_path / "bad.yml"
    path.write_text(text)
    with pytest.raises(SweepError) as info:
        expand_sweep_file(path)
    message = str(info.value)
    assert fragment in message
    assert message.startswith(f"{path}: ")
    assert message.count(str(path)) == 1  # named once, not once per wrapping layer
    assert "\n" not in message


def test_a_bad_value_names_the_run(tmp_path: Path) -> None:
    path = tmp_path / "s.yml"
    path.write_text("name: x\nmatrix:\n  ks: [3, 4]\n")
    with pytest.raises(SweepError, match=r"run 'ks-4': key 'kernel_size'"):
        expand_sweep_file(path)


def test_missing_file_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(SweepError, match="cannot read file"):
        expand_sweep_file(tmp_path / "nope.yml")


@pytest.mark.parametrize("data", [b"\xff\xfen\x00a\x00m\x00e\x00", bytes(range(128, 256))])
def test_a_file_that_is_not_utf8_is_a_clear_error(tmp_path: Path, data: bytes) -> None:
    # A UTF-16 export or a binary file: UnicodeDecodeError was a traceback.
    path = tmp_path / "s.yml"
    path.write_bytes(data)
    with pytest.raises(SweepError) as caught:
        expand_sweep_file(path)
    assert str(caught.value).startswith(f"{path}: not UTF-8 text (byte 0x")


def test_a_sqlite_database_given_as_the_sweep_file_is_named_so(tmp_path: Path) -> None:
    # `queue runs.db` (a slip of the file name) said "not UTF-8 text (byte 0xf8 at
    # offset 102)": the file is named for what it is. A real database, made by sqlite3.
    path = tmp_path / "runs.db"
    with contextlib.closing(sqlite3.connect(path)) as connection:
        connection.execute("CREATE TABLE run (id INTEGER PRIMARY KEY, name TEXT)")
        connection.executemany("INSERT INTO run (name) VALUES (?)", [("\u00f8",)] * 50)
        connection.commit()
    with pytest.raises(SweepError) as caught:
        expand_sweep_file(path)
    assert str(caught.value) == f"{path}: a SQLite database (a queue's runs.db?), not a sweep file"


def test_no_code_is_ever_evaluated() -> None:
    # The original framework eval'd YAML values; ours treats them as plain strings.
    with pytest.raises(SweepError, match="unknown activation"):
        expand_sweep_text("name: x\nact: __import__('os').system('false')\n")
    with pytest.raises(SweepError, match="malformed YAML|expected"):
        expand_sweep_text("name: !!python/object/apply:os.system ['false']\n")


@pytest.mark.parametrize("path", sorted(EXPERIMENTS.rglob("*.yml")), ids=lambda p: p.name)
def test_every_shipped_sweep_file_expands(path: Path) -> None:
    runs = expand_sweep_file(path)
    assert runs and all(run.param_count > 0 for run in runs)


def test_include_written_inside_the_matrix_as_github_does_says_where_it_goes() -> None:
    with pytest.raises(SweepError) as caught:
        expand_sweep_text("name: x\nmatrix:\n  l: [1, 2]\n  exclude:\n    - l: 2\n")
    where = "(write 'exclude:' at the top of the file, beside 'matrix:')"
    assert f"matrix: unknown key 'exclude' {where}" in str(caught.value)


@pytest.mark.parametrize(
    ("text", "why"),
    [
        # PyYAML kept the last of two keys: 3-layer runs queued for a file that said 2 too.
        ("name: x\nlayers: 2\nlayers: 3\n",
         "malformed YAML at line 3, column 1: key 'layers' is given twice"),
        ("name: x\nmatrix:\n  l: [1, 2]\n  l: [3]\n", "key 'l' is given twice"),
        # Repeated values made one run, dropping the other without a word.
        ("name: x\nmatrix:\n  l: [1, 1]\n", "run 'l-1': comes twice (the same config and seed)"),
        ("name: x\nmatrix:\n  act: [relu, ReLU]\n",
         "run 'act-ReLU': is run 'act-relu' again"),
        # Which entries: the run's name alone did not say that two include entries made it.
        ("name: x\nmatrix:\n  l: [1, 2]\ninclude:\n  - {l: 3}\n  - {ch: 4}\n  - {l: 3}\n",
         "include entries 1 and 3 are the same ({l: 3}): they would queue one run twice"),
        # Which other key: the fixed one.
        ("name: x\nchannels: 8\nmatrix:\n  ch: [4, 8]\n",
         "'channels' and 'ch' both set 'channels'"),
        # An include entry spelling a key two ways was refused at each run it went into,
        # named by the run ('ks1/ks2' and 'kernel_size' both set ...), not by the entry.
        ("name: x\nmatrix:\n  l: [1, 2]\ninclude: [{l: 1, ks1: 3, ks2: 5, kernel_size: 5}]\n",
         "include entry 1 {l: 1, ks1: 3, ks2: 5, kernel_size: 5} sets 'kernel_size' as "
         "'ks1/ks2', and itself as 'kernel_size': one run cannot take both"),
        # The sweep's pair named as the pair, not by its first half ('ks1').
        ("name: x\nmatrix:\n  ks1: [3, 5]\n  ks2: [3]\ninclude: [{kernel_size: 7}]\n",
         "include entry 1 {kernel_size: 7} sets 'kernel_size' as 'kernel_size', and the "
         "sweep as 'ks1/ks2': one run cannot take both"),
        ("name: x\nbatch_size: 64\nmatrix:\n  l: [1, 2]\ninclude: [{l: 2, bs: 32}]\n",
         "include entry 1 {l: 2, bs: 32} sets 'batch_size' as 'bs', and the sweep as "
         "'batch_size': one run cannot take both"),
    ],
)  # fmt: skip
def test_a_value_given_twice_is_an_error_not_a_silent_choice(text: str, why: str) -> None:
    with pytest.raises(SweepError) as caught:
        expand_sweep_text(text, source="s.yml")
    assert str(caught.value).startswith("s.yml: ") and why in str(caught.value)


def test_a_yaml_merge_key_may_still_be_overridden() -> None:
    text = "name: x\nbase: &b {layers: 2, ch: 4}\n"
    mapping = load_yaml(text + "run: {<<: *b, layers: 3}\n")
    assert mapping["run"] == {"layers": 3, "ch": 4}
    # A node an earlier merge flattened holds merged keys beside its own: not repeated.
    nested = load_yaml("a:\n  - &b {act: relu}\n  - &m {<<: *b, act: tanh}\nc: {<<: *m}\n")
    assert nested["c"] == {"act": "tanh"}


@pytest.mark.parametrize(
    ("name", "why"),
    [
        ("x" * 101, "key 'name': at most 100 characters (got 101)"),
        ('"tab\\there"', "key 'name': no tabs, newlines or other control characters"),
        # Invisible (U+200B) or turning the text around (U+202E): they passed.
        # Written as the file may write them (YAML's double-quoted escapes), not as
        # Python's repr: "(got 'ab\\u200bc', with '\\u200b')".
        ('"ab\\u200bc"', 'nor invisible format characters (got "ab\\u200bc", with "\\u200b")'),
        ('"ab\\u202ec"', 'nor invisible format characters (got "ab\\u202ec", with "\\u202e")'),
        ('"ab\\u00adc"', 'nor invisible format characters (got "ab\\xadc", with "\\xad")'),
        ('"ab\\u2066c"', 'nor invisible format characters (got "ab\\u2066c", with "\\u2066")'),
        # Drawn as blank (Braille blank, Hangul filler): a name that showed as nothing.
        ('"\\u2800"', "nor invisible format characters (got '\u2800', with U+2800)"),
        ('"a\\u3164"', "nor invisible format characters (got 'a\u3164', with U+3164)"),
    ],
)
def test_an_experiment_name_that_cannot_be_a_folder_or_a_table_cell_is_refused(
    name: str, why: str
) -> None:
    # 300 characters failed every run at the worker (file name too long).
    with pytest.raises(SweepError, match=re.escape(why)):
        expand_sweep_text(f"name: {name}\nlayers: 2\n", source="s.yml")
    assert expand_sweep_text("name: Ünïcode-実験 x\nlayers: 2\n")[0].experiment == "Ünïcode-実験 x"
    assert expand_sweep_text("name: lab-👩\u200d🔬\nlayers: 2\n")  # a ZWJ emoji is a name
    # A ZWNJ is how Persian spells words: a Persian name was refused as "invisible".
    persian = "آزمایش\u200cها"
    assert expand_sweep_text(f"name: {persian}\nlayers: 2\n")[0].experiment == persian
    # Spaces around a name are dropped (documented), as the quick check's name drops them.
    assert expand_sweep_text('name: " tiny "\nlayers: 2\n')[0].experiment == "tiny"


@pytest.mark.parametrize("key", ["bnp-d: 1", "bn_encoder: none"])
def test_batch_norm_positions_for_model_v1_are_refused(key: str) -> None:
    # v1 has BN before every conv: bn_decoder 1 was accepted and did nothing.
    with pytest.raises(SweepError, match="model v1 has batch norm before every convolution"):
        expand_sweep_text(f"name: x\nmodel: v1\n{key}\n", source="s.yml")
    assert expand_sweep_text(f"name: x\nmodel: v2\n{key}\n")


def test_a_list_outside_the_matrix_says_where_it_belongs() -> None:
    # `layers: [1, 2]` at the top said only "expected an integer, got [1, 2]".
    with pytest.raises(ConfigError, match=r"got \[1, 2\]; values to sweep go under matrix: "
                                        r"\(matrix: \{layers: \[\.\.\.\]\}\)"):  # fmt: skip
        expand_sweep_text("name: x\nlayers: [1, 2]\n")
    with pytest.raises(ConfigError) as caught:  # a list inside the matrix: no such hint
        expand_sweep_text("name: x\nmatrix:\n  layers: [[1, 2]]\n")
    assert "expected an integer, got [1, 2]" in str(caught.value)
    assert "go under matrix" not in str(caught.value)
    assert len(expand_sweep_text("name: x\nchannels: [8, 16]\nlayers: 2\n")) == 1  # per layer


def test_runs_that_would_train_alike_are_noted() -> None:
    # At one layer the activation builds nothing: relu and tanh gave bit-equal losses, and
    # the sweep read as if the activation had been measured.
    text = "name: s\nlayers: 1\nseeds: 3\nmatrix:\n  act: [relu, tanh]\n"
    assert trained_alike_note(expand_sweep_text(text)) == (
        "activation changes nothing in these runs: act-relu_seed-0 and act-tanh_seed-0 build "
        "the same model and train it alike, to the same losses (2 more such groups)"
    )
    two = "name: s\nlayers: 1\nmatrix:\n  act: [relu, tanh, gelu]\n  rwf: [0.5, 1]\n"
    note = trained_alike_note(expand_sweep_text(two))
    assert note is not None and note.startswith("activation and residual_weight change nothing")
    assert "act-relu_rwf-0.5, act-relu_rwf-1, act-tanh_rwf-0.5" in note
    # Seeds alone, or keys that build another model, are runs of their own.
    assert trained_alike_note(expand_sweep_text("name: s\nlayers: 1\nseeds: 3\n")) is None
    deeper = "name: s\nlayers: 2\nmatrix:\n  act: [relu, tanh]\n  rwf: [0.5, 1]\n"
    assert trained_alike_note(expand_sweep_text(deeper)) is None
    # The keys named are the named group's own; a pair's last value at one layer builds
    # nothing either; long groups are cut.
    gelu = "  - {act: gelu, lr: 0.002, rwf: "
    mixed = ("name: s\nlayers: 1\nmatrix:\n  act: [relu, tanh]\n  lr: [0.001]\ninclude:\n"
             f"{gelu}0.5}}\n{gelu}2}}\n")  # fmt: skip
    assert trained_alike_note(expand_sweep_text(mixed)) == (
        "activation changes nothing in these runs: act-relu_lr-0.001 and act-tanh_lr-0.001 "
        "build the same model and train it alike, to the same losses (1 more such group)"
    )
    pair = "name: s\nlayers: 1\nmatrix:\n  ks1: [3]\n  ks2: [3, 5, 7, 9]\n"
    assert trained_alike_note(expand_sweep_text(pair)) == (
        "kernel_size changes nothing in these runs: ks1-3_ks2-3, ks1-3_ks2-5, ks1-3_ks2-7 and "
        "1 more build the same model and train it alike, to the same losses"
    )


@pytest.mark.parametrize("path", sorted(EXPERIMENTS.rglob("*.yml")), ids=lambda p: p.name)
def test_no_shipped_sweep_trains_two_runs_alike(path: Path) -> None:
    assert trained_alike_note(expand_sweep_file(path)) is None


@pytest.mark.parametrize(
    ("lines", "said"),
    [
        # YAML 1.1 reads these keys as true and no value: "unknown key 'True'" said no why.
        ("yes: 2", "unknown key 'True' (YAML reads the key yes, no, on, off, true or false"),
        ("~: 2", "unknown key 'None' (YAML reads the key yes, no, on, off, true or false"),
        ("LR: 0.1", "unknown key 'LR' (did you mean 'lr'?)"),  # the names are lower case
        (
            "matrix:\n  act: [yes, no]",
            f"run 'act-true': key 'activation': unknown activation; known: {KNOWN_ACTIVATIONS} "
            "(got true; YAML reads yes, no, on, off, true and false unquoted as true or false)",
        ),
        # "key 'padding': padding: give one int...", and per-layer lists shown as tuples.
        ("pad: [0, 2]", "key 'padding': give one int, 'same' or 3 values (got [0, 2])"),
        # Padding takes no [first, last] pair: its other refusals offered one all the same.
        ("pad: [0, 2, 2, 2]", "key 'padding': give one int, 'same' or 3 values (got [0, 2, 2, 2])"),
        (
            "pad: [1.5, 1]",
            "key 'padding': expected an int, 'same' or a per-layer list of ints, got [1.5, 1]",
        ),
        ("ch: [4, 0, 4]", "key 'channels': every value must be >= 1 (got [4, 0, 4])"),
    ],
)
def test_refusals_say_what_yaml_read_and_show_values_as_written(lines: str, said: str) -> None:
    with pytest.raises(SweepError) as caught:
        expand_sweep_text(f"name: x\nlayers: 3\nmax_inputs: 200\n{lines}\n", source="s.yml")
    assert said in str(caught.value)


@pytest.mark.parametrize(
    ("lines", "said"),
    [
        # "expected a string, got 3" named none of the values the key takes.
        (
            "act: 3",
            f"s.yml: key 'activation': unknown activation; known: {KNOWN_ACTIVATIONS} (got 3)",
        ),
        (
            "matrix:\n  activation: [relu, 3]",
            "s.yml: run 'activation-3': key 'activation': unknown activation; known: "
            f"{KNOWN_ACTIVATIONS} (got 3)",
        ),
        ("model: 2", "s.yml: key 'model': must be v1 or v2 (got 2)"),
        ("dataset: 1.5", "s.yml: key 'dataset': must be one of fmnist, mnist (got 1.5)"),
        (
            "validation: null",
            "s.yml: key 'validation': must be 'fixed' or 'seed-faithful' (got null)",
        ),
        ("precision: {a: 16}", "s.yml: key 'precision': must be auto, fp32 or bf16 (got {a: 16})"),
        (
            "model: [v1, v2]",
            "s.yml: key 'model': must be v1 or v2 (got [v1, v2]); values to sweep go under matrix: "
            "(matrix: {model: [...]})",
        ),
        # Why `act: yes` reads as true; no "quote it": no choice is yes, no, on or off.
        (
            "act: yes",
            f"s.yml: key 'activation': unknown activation; known: {KNOWN_ACTIVATIONS} (got true; "
            "YAML reads yes, no, on, off, true and false unquoted as true or false)",
        ),
    ],
)
def test_a_key_of_fixed_values_given_no_text_names_the_values_it_takes(
    lines: str, said: str
) -> None:
    with pytest.raises(SweepError) as caught:
        expand_sweep_text(f"name: x\nlayers: 3\nmax_inputs: 200\n{lines}\n", source="s.yml")
    assert str(caught.value) == said


@pytest.mark.parametrize("key", ["dataset", "model", "activation", "validation", "precision"])
def test_a_number_for_a_key_of_fixed_values_is_refused_as_unknown_text_is(key: str) -> None:
    def refusal(value: str) -> str:
        with pytest.raises(SweepError) as caught:
            expand_sweep_text(f"name: x\n{key}: {value}\n", source="s.yml")
        return str(caught.value)

    assert refusal("3") == refusal("foo").replace("(got foo)", "(got 3)")


def test_terminal_safe_keeps_the_joiners_and_escapes_what_reorders_or_hides() -> None:
    from core.errors import terminal_safe

    # ZWNJ spells Persian words (it was written '\u200c'); ZWJ joins emoji.
    assert terminal_safe("می\u200cخواهم lab-👩\u200d🔬") == "می\u200cخواهم lab-👩\u200d🔬"
    # A bidi override or isolate turns the text shown around; a soft hyphen is drawn as a
    # hyphen or as nothing; ESC and a carriage return act on the terminal.
    assert terminal_safe("a\u202eb\u2066c\u00add\x1b[2J\re") == (
        "a\\u202eb\\u2066c\\xadd\\x1b[2J\\re"
    )
