"""Sweep files too big to expand, and error messages that echo big values: refused or
cut in one line, quickly (a deep or self-referencing YAML value was a RecursionError
traceback, an alias chain took minutes and gigabytes, one message printed 226 MB)."""

from __future__ import annotations

import re
import time
from pathlib import Path

import pytest

from core.errors import SweepError
from core.sweep import expand_sweep_file, expand_sweep_text


def refused(text: str) -> str:
    with pytest.raises(SweepError) as info:
        expand_sweep_text(text, source="s.yml")
    message = str(info.value)
    assert message.startswith("s.yml: ") and "\n" not in message
    return message


@pytest.mark.parametrize("depth", [25, 300, 600, 5000])
def test_a_value_nested_too_deeply_is_refused(depth: int) -> None:
    text = "name: x\nlayers: 2\nch: " + "[" * depth + "4" + "]" * depth + "\n"
    assert refused(text) == "s.yml: the YAML is nested too deeply (at most 20 levels)"


def test_nesting_a_sweep_uses_is_read() -> None:
    text = "name: x\nlayers: 2\nmatrix:\n  ch: [[4, 8]]\ninclude:\n  - {ch: [8, 4], bs: 32}\n"
    assert [run.name for run in expand_sweep_text(text)] == ["ch-4,8", "ch-8,4_bs-32"]


def test_a_value_that_contains_itself_is_refused() -> None:
    assert "an alias in the YAML refers to a value it is part of" in refused(
        "name: x\nlayers: 2\nch: &a [4, *a]\n"
    )


def alias_chain(levels: int) -> str:
    lines = ["name: x", "layers: 2", "description: &a0 [4, 4, 4, 4, 4, 4, 4, 4, 4, 4]"]
    for n in range(1, levels + 1):
        lines.append(f"l{n}: &a{n} [{', '.join([f'*a{n - 1}'] * 10)}]")
    return "\n".join(lines) + f"\nmatrix:\n  ch: *a{levels}\n"


def test_aliases_that_expand_too_far_are_refused_quickly() -> None:
    start = time.monotonic()
    message = refused(alias_chain(9))
    assert re.fullmatch(
        r"s.yml: the YAML's aliases expand to [\d,]{14} values \(at most 100,000\)", message
    )
    assert time.monotonic() - start < 2


@pytest.mark.parametrize(
    "text",
    [
        "name: x\nlayers: 2\nseed: [" + ", ".join(["12345"] * 50_000) + "]\n",
        "name: x\nlayers: 2\nmatrix:\n  l: " + "7" * 20_000 + "\n",
        "name: x\nlayers: 2\nmatrix:\n  l: [2]\nexclude:\n  - {l: [" + "3, " * 20_000 + "3]}\n",
        "name: x\nlayers: 2\nseeds: [" + "1, " * 20_000 + "1]\n",
        "name: x\nlayers: 2\nch: [" + "4, " * 20_000 + "4]\n",
        "name: x\nlayers: 2\n" + "k" * 20_000 + ": 1\n",
        "name: x\nlayers: 2\n" + "".join(f"bad{i}: 1\n" for i in range(2000)),
        "name: " + "x" * 20_000 + "\n",
        "name: [" + "1, " * 20_000 + "1]\n",
        "name: x\nlayers: 2\nseeds: -" + "9" * 4000 + "\n",
        "name: x\nlayers: 2\nseeds: [" + "9" * 4000 + "]\n",
    ],
    ids=[
        "fixed",
        "matrix",
        "exclude",
        "seeds",
        "per-layer",
        "key",
        "keys",
        "name",
        "name list",
        "seeds count",
        "seed value",
    ],  # fmt: skip
)
def test_values_in_error_messages_are_cut(text: str) -> None:
    assert len(refused(text)) < 1000


def test_a_big_file_is_read_whole(tmp_path: Path) -> None:
    # Below the limit: a list of 60,000 values (with every alias expanded) is read.
    path = tmp_path / "big.yml"
    path.write_text("name: x\nlayers: 2\nch: [" + "4, " * 60_000 + "4]\n")
    with pytest.raises(SweepError, match=r"key 'channels': expected one value, .* 2 values"):
        expand_sweep_file(path)  # read, then refused


@pytest.mark.parametrize(
    ("value", "why"),
    [("!!timestamp 2024-13-45", "month must be in 1..12")],
    ids=["date"],
)
def test_a_value_pyyaml_cannot_make_is_one_line(value: str, why: str) -> None:
    message = refused(f"name: x\nlayers: 2\ndescription: {value}\n")
    assert message.startswith(f"s.yml: a value in the YAML cannot be read: {why}")
    assert len(message) < 200


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("seeds: 100000000", "the sweep expands to 100,000,000 runs (at most 10,000)"),
        (
            "matrix:\n"
            + "".join(
                f"  {k}: [{', '.join(map(str, range(1, 11)))}]\n"
                for k in ("ch", "ks", "lr", "bs", "max_inputs", "seed")
            ),
            "the sweep expands to 1,000,000 runs (at most 10,000)",
        ),  # fmt: skip
        # Counted before exclude, include entries one cell each, times the seeds.
        (
            "matrix:\n  ch: [" + ", ".join(map(str, range(1, 101))) + "]\n"
            "exclude: [{ch: 1}]\ninclude: [{ch: 1, bs: 8}]\nseeds: 100",
            "the sweep expands to 10,100 runs before exclude (at most 10,000)",
        ),
    ],
    ids=["seeds", "matrix", "everything"],
)
def test_a_sweep_of_too_many_runs_is_refused_before_expanding(text: str, message: str) -> None:
    start = time.monotonic()
    assert message in refused(f"name: x\nlayers: 2\n{text}\n")
    assert time.monotonic() - start < 1


def test_a_sweep_of_the_most_runs_is_expanded() -> None:
    runs = expand_sweep_text("name: x\nlayers: 1\nch: 1\nmatrix:\n  ks: [1, 3]\nseeds: 5000\n")
    assert len(runs) == 10_000 and runs[-1].name == "ks-3_seed-4999"


HUGE_HEX = "0x" + "f" * 4000  # PyYAML reads hex with no digit limit


@pytest.mark.parametrize(
    ("text", "message"),
    [
        # A float made of it overflowed, then the message showing it broke (tracebacks).
        (f"lr: 1{'0' * 309}", "key 'lr': a whole number of 301 digits or more"),
        (f"layers: {HUGE_HEX}", "key 'layers': a whole number of 301 digits or more"),
        (f"matrix:\n  l: [1, {HUGE_HEX}]", "key 'matrix' > 'l' > item 2: a whole number of 301"),
        # --dry-run passed this one; the queue's insert broke on it.
        (f"matrix: {{l: [1, 2]}}\ntargets: [{{l: 1, params: {HUGE_HEX}}}]",
         "key 'targets' > item 1 > 'params': a whole number of 301"),
        # It passed every check, then broke printing the listing and the database insert.
        ('name: "a\\ud800b"', "key 'name': text with a UTF-16 surrogate escape"),
        # A pair too: PyYAML keeps its halves apart. The message says how to write one.
        ('name: "a\\ud83d\\ude00"', "write the character itself, or \\U0001F600"),
        # Keys the path passes through, as Python writes them ("key a key" said nothing).
        (f"3: 1{'0' * 300}", "key 3: a whole number of 301 digits"),
        ('matrix: {l: [1], "\\ud800x": [1e999999]}', "key 'matrix' > '\\ud800x': text with"),
        ("description: !!binary aGVsbG8=", "key 'description': binary data (!!binary)"),
        ("!!set {1, 2}: 1", "malformed YAML at line 3, column 1: found unhashable key"),
        ("seeds: 9223372036854775808", "the sweep expands to 9,223,372,036,854,775,808 runs"),
        # Past Python's 4,300 digits: "a value in the YAML cannot be read: Exceeds the limit
        # (4300 digits) ... use sys.set_i…", which named neither the key nor the line.
        (f"description: {'9' * 5000}", "key 'description': a whole number of 301 digits"),
        (f"matrix:\n  l: [1, -{'9' * 5000}]", "key 'matrix' > 'l' > item 2: a whole number of"),
        (f"seeds: {'1' * 5000}:30", "key 'seeds': a whole number of 301 digits or more"),
        # The pair's first value rounded up to kernels [1, 1, 3] without a word.
        ("layers: 3\nks1: 0\nks2: 3", "key 'kernel_size': must be 1 to 127 (got [0, 3])"),
    ],
    ids=["310 digits", "hex", "hex in matrix", "hex params", "surrogate", "surrogate pair",
         "int key", "surrogate key", "binary", "set key", "2**63 seeds", "5000 digits",
         "5000 digits in matrix", "5000 digits base 60", "ks1 0"],
)  # fmt: skip
def test_what_no_key_takes_is_refused_naming_where(text: str, message: str) -> None:
    name = "" if text.startswith("name:") else "name: x\n"
    layers = "" if "layers:" in text else "layers: 2\n"
    assert message in refused(f"{name}{layers}{text}\n")


@pytest.mark.parametrize("value", ["0b_", "0x_", "-0b__"])
def test_an_int_with_no_digits_is_no_huge_number(value: str) -> None:
    # YAML 1.1 reads "0b_" and "0x_" as whole numbers with no digits: Python's int()
    # refuses them as it refuses 5,000 digits, and they were said to be "a whole number
    # of 301 digits or more, far too large for any key".
    message = refused(f"name: x\nlayers: 2\nlr: {value}\n")
    assert "301 digits" not in message
    assert message == f"s.yml: malformed YAML at line 3, column 5: {value!r} is no number"


def test_a_tagged_int_that_is_no_number_is_named_as_written() -> None:
    # Python's repr quoted it: "'abc' is no number"; text quoted so is a number ('0b_').
    message = refused("name: x\nlayers: 2\nlr: !!int abc\n")
    assert message == "s.yml: malformed YAML at line 3, column 5: abc is no number"


def test_a_run_queued_before_the_pair_check_still_loads() -> None:
    # Refused in new sweeps only: RunConfig must still read the rows queued before.
    from core.config import RunConfig

    assert RunConfig.from_dict({"layers": 3, "kernel_size": [0, 3]}).kernel_list() == [1, 1, 3]


def test_dates_are_text() -> None:
    # YAML 1.1 made them dates, which no key takes: "got datetime.date(2024, 1, 1)".
    assert expand_sweep_text("name: 2024-01-01\nlayers: 2\n")[0].experiment == "2024-01-01"
    assert expand_sweep_text("name: x\nlayers: 2\ndescription: 2024-13-01\n")
    assert "key 'seed'" in refused("name: x\nlayers: 2\nseed: 2024-01-01\n")


def test_an_entry_with_a_line_break_is_shown_in_one_line() -> None:
    message = refused('name: x\nmatrix:\n  l: [1, 2]\nexclude: [{l: "a\\nb"}]\n')
    assert 'exclude entry 1 {"l": "a\\nb"} matches no cell' in message


def test_a_file_past_a_mib_is_refused_unread(tmp_path: Path) -> None:
    # /dev/zero was read until the kernel killed the process (24 GB).
    path = tmp_path / "big.yml"
    path.write_text("name: x\n# " + "x" * (1 << 20) + "\n")
    with pytest.raises(SweepError, match=r"big.yml: larger than 1 MiB, which no sweep file is"):
        expand_sweep_file(path)
    with pytest.raises(SweepError, match=r"^/dev/zero: a character device"):
        expand_sweep_file("/dev/zero")  # refused unread, as a terminal is
    with pytest.raises(SweepError, match=r"^no sweep file given \(the path is empty\)$"):
        expand_sweep_file("")  # it said "cannot read file ." (a folder)


def test_a_named_pipe_is_read_from_its_writer_and_waited_for_only_so_long(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # With no writer its open blocked forever: queue hung, and the dashboard's f3 with it.
    import os
    import threading

    import core.sweep as sweep

    monkeypatch.setattr(sweep, "FIFO_WAIT_S", 0.3)
    fifo = tmp_path / "sweep.yml"
    os.mkfifo(fifo)
    started = time.monotonic()
    with pytest.raises(SweepError, match=r"sweep.yml: cannot read file \(a named pipe that no "
                                         r"writer wrote to in 0 s\)$"):  # fmt: skip
        expand_sweep_file(fifo)
    assert time.monotonic() - started < 5
    # A writer that comes a moment later (`cat t1.yml > p &`): its sweep is read.
    writer = threading.Thread(target=lambda: (time.sleep(0.1), fifo.write_text("name: x\n")))
    writer.start()
    monkeypatch.setattr(sweep, "FIFO_WAIT_S", 20.0)
    assert [run.experiment for run in expand_sweep_file(fifo)] == ["x"]
    writer.join(20)
    # A folder's descriptor is not left open (f3's default path is experiments/).
    before = len(os.listdir("/proc/self/fd"))
    for _ in range(5):
        with pytest.raises(SweepError, match="Is a directory"):
            expand_sweep_file(tmp_path)
    assert len(os.listdir("/proc/self/fd")) == before


def test_a_terminal_is_refused_unread(tmp_path: Path) -> None:
    # `queue /dev/tty` read the terminal until Ctrl-D: it seemed hung (the dashboard's f3
    # too). The reading thread must be done at once, with the reason.
    import os
    import threading

    main, terminal = os.openpty()
    said: list[str] = []

    def queue() -> None:
        try:
            expand_sweep_file(os.ttyname(terminal))
        except SweepError as exc:
            said.append(str(exc))

    reading = threading.Thread(target=queue, daemon=True)
    reading.start()
    reading.join(3)
    os.close(main)  # a read still waiting ends (EIO)
    reading.join(5)
    os.close(terminal)
    assert said and re.fullmatch(
        r"/dev/pts/\d+: a character device \(a terminal, /dev/null\), not a sweep file; "
        r"give a file or a pipe",
        said[0],
    ), said


@pytest.mark.parametrize("part", ["exclude", "targets", "include"])
def test_many_entries_are_matched_by_lookup_not_each_against_every_cell(
    part: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # 10,000 cells and as many exclude or targets entries (a 450 KB file, within the
    # limits) kept `queue --dry-run` busy past 150 s: each entry was tried on every cell.
    import core.sweep as sweep

    compared = 0
    same = sweep._same

    def counted(a: object, b: object) -> bool:
        nonlocal compared
        compared += 1
        return same(a, b)

    monkeypatch.setattr(sweep, "_same", counted)
    cells = 600
    entries = {
        "exclude": [f"  - {{seed: {i}}}" for i in range(0, cells, 2)],
        "targets": [f"  - {{seed: {i}, validation_loss: 0.1}}" for i in range(cells)],
        "include": [f"  - {{seed: {i}, bs: 32}}" for i in range(cells)],
    }[part]
    text = (
        f"name: x\nlayers: 1\nch: 4\nmax_inputs: 200\nmatrix:\n  seed: {list(range(cells))}\n"
        f"{part}:\n" + "\n".join(entries) + "\n"
    )
    runs = expand_sweep_text(text)
    assert len(runs) == (cells // 2 if part == "exclude" else cells)
    if part == "targets":
        assert all(run.target == {"validation_loss": 0.1} for run in runs)
    if part == "include":
        assert all(run.config.batch_size == 32 for run in runs)
    assert compared < 10 * cells  # each entry on each cell: 360,000 (180,000 for exclude)


def test_the_lookup_matches_as_the_cell_by_cell_rule_does() -> None:
    # A bool only to a bool (false is no 0), 1 to 1.0, lists item by item, text to text,
    # null to null; a mapping (no lookup for it) is tried one by one.
    from core.sweep import _CellIndex, _matches

    nan = float("nan")  # one object, as PyYAML gives every .nan of a file: no match still
    values = [0, 1, 1.0, 2.5, True, False, None, "1", "relu", [1, 2], [1.0, 2], [True, 2],
              [[1], 2], {"a": 1}, {"a": 1.0}, nan, [nan, 1]]  # fmt: skip
    cells = [{"k": value, "j": i % 3} for i, value in enumerate(values)] + [{"j": 1}]
    index = _CellIndex(cells)
    for value in values:
        for entry in ({"k": value}, {"k": value, "j": 1}, {"j": 2}, {}):
            expected = [i for i, cell in enumerate(cells) if _matches(cell, entry)]
            assert index.matching(entry) == expected, entry
