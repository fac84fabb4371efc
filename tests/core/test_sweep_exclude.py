"""An exclude entry that matches no cell of the matrix is an error, not a silent no-op."""

from __future__ import annotations

from pathlib import Path

import pytest

from core.errors import SweepError
from core.sweep import expand_sweep_file, expand_sweep_text

NAN_WHY = ".nan is not allowed here: NaN equals no value, not even NaN, so it matches nothing"
MATRIX = "name: x\nmax_inputs: 512\nmatrix:\n  ch: [4, 8]\n  l: [2, 3]\nexclude:\n"


@pytest.mark.parametrize(
    ("entry", "why"),
    [
        ("{ch: 23}", "ch: 23 is not among the matrix's ch values [4, 8]"),
        ("{ch: 8, l: 5}", "l: 5 is not among the matrix's l values [2, 3]"),
        ("{channels: 4}", "'channels' is not a matrix key (matrix keys: ch, l)"),
        ("{lr: 0.1}", "'lr' is not a matrix key (matrix keys: ch, l)"),
        # NaN equals nothing: "nan is not among the matrix's values [nan, ...]" said otherwise.
        ("{ch: .nan}", f"ch: {NAN_WHY}"),
        ("{ch: [4, .nan]}", f"ch: {NAN_WHY}"),  # in a per-layer list
    ],
)
def test_an_exclude_matching_nothing_names_file_index_and_content(
    tmp_path: Path, entry: str, why: str
) -> None:
    path = tmp_path / "s.yml"
    path.write_text(MATRIX + f"  - {{ch: 4, l: 2}}\n  - {entry}\n")
    with pytest.raises(SweepError) as caught:
        expand_sweep_file(path)
    assert str(caught.value) == (
        f"{path}: exclude entry 2 {entry} matches no cell of the matrix: {why}"
    )


def test_without_a_matrix_an_exclude_matches_nothing() -> None:
    with pytest.raises(SweepError, match=r"exclude entry 1 \{l: 2\} .*the file has no matrix"):
        expand_sweep_text("name: x\nexclude: [{l: 2}]\n")


def test_overlapping_excludes_that_each_match_are_fine() -> None:
    # Entry 2 matches only a cell entry 1 already dropped: it still names a real cell.
    runs = expand_sweep_text(MATRIX + "  - {ch: 4}\n  - {ch: 4, l: 3}\n")
    assert [run.name for run in runs] == ["ch-8_l-2", "ch-8_l-3"]


@pytest.mark.parametrize(
    ("value", "said"),
    [("\u00fc\u540d", "{act: \u00fc\u540d}"),  # the person's own text, as written
     ("\u00fc\\e[2J", '{act: "\u00fc\\e[2J"}'),  # printed raw, ESC [2J clears the terminal
     ("\u00fc\\u202Eb", '{act: "\\xFC\\u202Eb"}'),  # U+202E turns the text around
     ("\u00fc\\u2028b", '{act: "\\xFC\\Lb"}')],  # a line break, in a one-line message
)  # fmt: skip
def test_an_exclude_entry_s_text_is_shown_as_written_but_control_characters_escaped(
    value: str, said: str
) -> None:
    # Shown as {act: "\xFC\u540D"}: YAML's dump escapes everything past ASCII.
    text = f'name: x\nexclude:\n  - {{act: "{value}"}}\n'
    with pytest.raises(SweepError) as caught:
        expand_sweep_text(text)
    assert str(caught.value) == (
        f"<sweep>: exclude entry 1 {said} matches no cell of the matrix: the file has no matrix"
    )
