"""Sweep files (YAML) -> a list of runs. Data only: nothing is ever evaluated.

Format (documented in docs/sweep-format.md)::

    name: t1-layers-32          # required: the experiment name
    description: free text      # optional
    image_size: 32              # fixed run parameters (RunConfig keys or aliases)
    matrix:                     # key -> list; Cartesian product, first key outermost
      l: [1, 2, 3]
    exclude: [{l: 2}]           # drop cells matching every listed key
    include: [{l: 30, batch_size: 32}]   # GitHub-Actions semantics (see _apply_include)
    seeds: 3                    # or a list [0, 1, 2]; default: the config's seed
    targets:                    # optional published values to reproduce
      - {l: 1, validation_loss: 0.164834, params: 675, minutes: 0.36}

Any problem fails the whole file with one SweepError naming file, key and value.
"""

from __future__ import annotations

import difflib
import itertools
import json
import math
import os
import re
import select
import stat
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any, BinaryIO

import yaml

from core.config import (
    INT_KEYS,
    LIMITS,
    MAX_PARAMS,
    MAX_SEED,
    PER_LAYER_KEYS,
    RunConfig,
    as_whole,
)
from core.errors import (
    BLANK_LOOKING,
    ConfigError,
    SweepError,
    acts_on_terminal,
    cut,
    quote_hint,
    shown,
    written,
)
from core.files import SQLITE_HEADER, held_database_file
from core.params import count_params, training_key
from core.sweep_yaml import MAX_FILE_BYTES, YAMLTooBig, load_yaml, malformed

# The logbook's short names -> RunConfig keys.
ALIASES: dict[str, str] = {
    "l": "layers",
    "ks": "kernel_size",
    "ch": "channels",
    "act": "activation",
    "pad": "padding",
    "RWF": "residual_weight",
    "rwf": "residual_weight",
    "bnp-e": "bn_encoder",
    "bnp-d": "bn_decoder",
    "ds": "dataset",
    "bs": "batch_size",
}
# Pairs of short names that together make a [first, last] per-layer value.
PAIR_ALIASES: dict[str, tuple[str, str]] = {
    "kernel_size": ("ks1", "ks2"),
    "channels": ("ch1", "ch2"),
}
FILE_KEYS = {"name", "description", "matrix", "include", "exclude", "seeds", "targets"}
TARGET_FIELDS = {"validation_loss", "params", "minutes"}
_SLUG_DROP = re.compile(r"[^A-Za-z0-9.,\-_]")


@dataclass(frozen=True)
class ExpandedRun:
    """One run of a sweep, ready to queue or train."""

    index: int  # 1-based position in the expansion
    experiment: str
    name: str  # readable slug of the swept values, like the logbook's matrix_slug
    config: RunConfig
    swept: dict[str, Any]  # swept keys as written in the file -> value
    param_count: int
    config_hash: str
    target: dict[str, float] | None = None  # published values for this cell, if any


def trained_alike_note(runs: Sequence[ExpandedRun]) -> str | None:
    """A note where runs of different configs would train the same model the same way
    (``core.params.training_key``): their losses come out the same, and the sweep reads as
    if a key were measured where it changes nothing. None where every run trains its own."""
    groups: dict[tuple[Any, ...], list[ExpandedRun]] = {}
    for run in runs:
        groups.setdefault(training_key(run.config), []).append(run)
    alike = [group for group in groups.values() if len({r.config_hash for r in group}) > 1]
    if not alike:
        return None
    first = alike[0]  # named, with the keys its own runs differ in
    configs = [run.config.to_dict() for run in first]
    keys = [key for key in configs[0] if len({json.dumps(c[key]) for c in configs}) > 1]
    names = list(dict.fromkeys(run.name for run in first))
    shown_names = names[:3] + ([f"{len(names) - 3} more"] if len(names) > 3 else [])
    others = len(alike) - 1
    more = f" ({others} more such group{'s' if others > 1 else ''})" if others else ""
    changes = "changes" if len(keys) == 1 else "change"
    return (f"{_and(keys)} {changes} nothing in these runs: {_and(shown_names)} build the "
            f"same model and train it alike, to the same losses{more}")  # fmt: skip


def _and(items: Sequence[str]) -> str:
    """``a``, ``a and b``, ``a, b and c``."""
    return items[0] if len(items) == 1 else f"{', '.join(items[:-1])} and {items[-1]}"


def expand_sweep_file(path: str | Path, max_inputs: int | None = None) -> list[ExpandedRun]:
    """Read and expand a sweep file; raise SweepError naming the file on any problem.
    ``max_inputs``: a quick check of the sweep (``shortened``)."""
    if not str(path):  # Path("") is ".", a folder: "cannot read file ." misled
        raise SweepError("no sweep file given (the path is empty)")
    path = Path(path)
    return expand_sweep_text(read_sweep_text(path), source=str(path), max_inputs=max_inputs)


def read_sweep_text(path: Path) -> str:
    """A sweep file's text; SweepError naming the file when it cannot be read or is not
    UTF-8 (a binary file, a UTF-16 export) or larger than ``MAX_FILE_BYTES``, rather
    than a traceback (or, for /dev/zero, reading until the kernel kills the process)."""
    try:
        with _opened(path) as file:
            data = file.read(MAX_FILE_BYTES + 1)
    except OSError as exc:
        raise SweepError(f"{path}: cannot read file ({exc.strerror or exc})") from None
    if len(data) > MAX_FILE_BYTES:
        raise SweepError(f"{path}: larger than {MAX_FILE_BYTES >> 20} MiB, which no sweep file "
                         "is (the logbook's tables are about 2 KB each)")  # fmt: skip
    if data.startswith(SQLITE_HEADER):  # `queue runs.db`: a slip of the file name
        raise SweepError(f"{path}: a SQLite database (a queue's runs.db?), not a sweep file")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise SweepError(
            f"{path}: not UTF-8 text (byte {exc.object[exc.start]:#04x} at offset {exc.start}); "
            "save the sweep file as UTF-8"
        ) from None


# How long a named pipe may wait for its writer: `mkfifo p; cat t1.yml > p & queue p`
# connects at once; with none the open blocked forever (queue hung, and the dashboard's f3).
FIFO_WAIT_S = 5.0


def _device_kind(mode: int) -> str | None:
    """What a path that is neither a file, a folder nor a pipe is. ``queue /dev/tty`` read
    the terminal until Ctrl-D (a sweep typed blind, or a queue that seemed hung), the
    dashboard's f3 with it; /dev/zero was read to the size limit. Pipes stay: they are
    how ``<(...)`` and ``/dev/stdin`` from a command hand a sweep over."""
    if stat.S_ISCHR(mode):
        return "a character device (a terminal, /dev/null)"
    if stat.S_ISBLK(mode):
        return "a block device (a disk)"
    if stat.S_ISSOCK(mode):
        return "a socket"
    return None


def _opened(path: Path) -> BinaryIO:
    """``path`` opened to read; a named pipe waits at most ``FIFO_WAIT_S`` for data from
    its writer (a TimeoutError, an OSError, after that). A device is refused unread."""
    mode = path.stat().st_mode
    if device := _device_kind(mode):
        # No "queue <(...)" hint: the dashboard's f3 reads files through here too.
        raise SweepError(f"{path}: {device}, not a sweep file; give a file or a pipe")
    if database := held_database_file(path):
        # Not even opened: closing it would drop this process's SQLite locks on it.
        raise SweepError(f"{path}: the queue's database ({database}), not a sweep file")
    if not stat.S_ISFIFO(mode):
        return path.open("rb")
    descriptor = os.open(path, os.O_RDONLY | os.O_NONBLOCK)  # no wait for a writer here
    try:
        poller = select.poll()
        poller.register(descriptor, select.POLLIN | select.POLLHUP)
        if not poller.poll(FIFO_WAIT_S * 1000):
            raise TimeoutError(f"a named pipe that no writer wrote to in {FIFO_WAIT_S:.0f} s")
        os.set_blocking(descriptor, True)  # then read to its end, as from a file
        return os.fdopen(descriptor, "rb")
    except BaseException:
        os.close(descriptor)
        raise


def sweep_data(text: str, source: str) -> Any:
    """A sweep file's ``text`` as plain data (``load_yaml``); SweepError naming ``source``
    where it is no YAML this reads: one message for ``queue`` and the form's f3 alike."""
    try:
        return load_yaml(text)
    except YAMLTooBig as exc:
        raise SweepError(f"{source}: {exc}") from None
    except yaml.YAMLError as exc:
        raise SweepError(f"{source}: {malformed(exc)}") from None


def expand_sweep_text(
    text: str, source: str = "<sweep>", max_inputs: int | None = None
) -> list[ExpandedRun]:
    data = sweep_data(text, source)
    if max_inputs is not None:
        data = shortened(data, max_inputs, source)
    try:
        return expand_sweep(data, source)
    except SweepError:
        raise
    except ConfigError as exc:
        raise SweepError(f"{source}: {exc}") from None


QUICK_SUFFIX = "-inputs-{}"  # a quick check's experiment: NAME-inputs-N


def quick_check_name(name: str, max_inputs: int) -> str:
    """The experiment of ``name``'s runs trained on ``max_inputs`` inputs: beside the full
    one, not in it (same run names, other runs)."""
    return name.strip() + QUICK_SUFFIX.format(max_inputs)


def shortened(data: Any, max_inputs: int, source: str = "<sweep>") -> Any:
    """The sweep ``data`` with every run trained on ``max_inputs`` inputs: a quick check
    of a sweep (a logbook table on a CPU) before the full one. Its experiment is
    NAME-inputs-N, beside the full one rather than in it (same names, other runs), and
    its targets are left out: they are the full runs' figures. A sweep that varies
    max_inputs itself is refused."""
    if not isinstance(data, dict):
        return data  # expand_sweep says what is wrong with it
    parts = [data.get("matrix"), *_listed(data.get("include")), *_listed(data.get("exclude"))]
    if any(isinstance(part, dict) and "max_inputs" in part for part in parts):
        raise SweepError(
            f"{source}: --max-inputs: this sweep varies max_inputs itself (matrix, include "
            "or exclude); edit the file instead"
        )
    out = {key: value for key, value in data.items() if key != "targets"}
    out["max_inputs"] = max_inputs
    name = data.get("name")
    if isinstance(name, str) and name.strip():
        out["name"] = quick_check_name(name, max_inputs)
        if len(out["name"]) > MAX_NAME_CHARS:
            # "Shorten the file's name" sent people to rename the file, which changes nothing.
            room = MAX_NAME_CHARS - len(QUICK_SUFFIX.format(max_inputs))
            raise SweepError(
                f"{source}: --max-inputs: the quick check's experiment "
                f"{written(out['name'])} would be over {MAX_NAME_CHARS} characters: shorten "
                f"key 'name' to {room} at most"
            )
    return out


def _listed(entries: Any) -> list[Any]:
    return entries if isinstance(entries, list) else [entries]


# Given a matrix cell's parameters (RunConfig keys, the fixed ones too) and its values (as
# written), whether to leave it out as the exclude does: before an include is merged into
# the cells, and before any run is built. The new-sweep form's hold on a loaded exclude.
DropRun = Callable[[dict[str, Any], dict[str, Any]], bool]


def expand_sweep(
    data: Any, source: str = "<sweep>", drop: DropRun | None = None
) -> list[ExpandedRun]:
    """Expand already-parsed sweep data (a mapping) into runs (the matrix's cells ``drop``
    takes left out as the exclude leaves them out: a cell is often excluded because it
    cannot be built; none when it takes every cell and the include adds none)."""
    if data is None:
        raise SweepError(f"{source}: the file is empty: a sweep needs at least 'name:'")
    if not isinstance(data, dict):
        got = "a list" if isinstance(data, list) else type(data).__name__
        raise SweepError(f"{source}: expected a mapping with at least 'name:', got {got}")
    experiment = _experiment_name(data, source)
    description = data.get("description")
    if description is not None and not isinstance(description, str):
        got = "; ".join(
            filter(None, (written(description), quote_hint("description", description)))
        )
        raise SweepError(f"{source}: key 'description': free text, a string (got {got})")
    sweep = _sweep_cells(data, source, drop)
    if not sweep.cells:
        if drop is not None:
            return []
        raise SweepError(f"{source}: the matrix expands to no runs (everything was excluded)")
    targets = _read_targets(data.get("targets"), source)
    _check_targets_match(targets, sweep.cells, source, sweep.matrix_cells, sweep.excludes)
    return _build_runs(experiment, sweep.fixed, sweep.cells, sweep.seeds, targets, source)


@dataclass(frozen=True)
class _Cells:
    """A sweep mapping read up to its cells: what ``_build_runs`` makes runs of."""

    fixed: dict[str, Any]
    matrix_cells: list[dict[str, Any]]  # every cell of the matrix, before the exclude
    excludes: list[dict[str, Any]]
    seeds: Sequence[int] | None
    cells: list[dict[str, Any]]  # after the exclude, ``drop`` and the include


def _sweep_cells(data: dict[str, Any], source: str, drop: DropRun | None) -> _Cells:
    """The cells of a sweep mapping, with the keys and entries they are made of."""
    fixed = {k: v for k, v in data.items() if k not in FILE_KEYS}
    matrix = data.get("matrix")
    _check_keys(source, ("", fixed), *([("matrix: ", matrix)] if isinstance(matrix, dict) else []))
    matrix = _read_matrix(matrix, source)
    overlap = set(fixed) & set(matrix)
    if overlap:
        raise SweepError(f"{source}: key '{sorted(overlap)[0]}' is both fixed and in 'matrix'")
    excludes = _read_entries(data.get("exclude"), "exclude", source)
    includes = _read_entries(data.get("include"), "include", source)
    _refuse_spelling_clash(data, source)
    seeds = _read_seeds(data.get("seeds"), fixed, matrix, includes, source)
    _check_run_count(matrix, includes, excludes, seeds, source)
    matrix_cells = _matrix_cells(matrix)
    _check_excludes_match(excludes, matrix_cells, matrix, source)
    cells = _apply_exclude(matrix_cells, excludes)
    if drop is not None:
        cells = [cell for cell in cells if not _dropped(cell, fixed, drop, source)]
    cells = _apply_include(cells, includes, matrix, source)
    return _Cells(fixed, matrix_cells, excludes, seeds, cells)


def targets_attached(data: dict[str, Any], source: str, drop: DropRun | None = None) -> list[bool]:
    """For each of a sweep mapping's targets entries, whether it names a cell that
    ``expand_sweep`` (with ``drop``) makes runs of: one of the matrix's after its exclude,
    or one its include merges into or makes (``{l: 3}`` of ``include: [{l: 3}]``, a key an
    entry sets). The new-sweep form keeps a loaded file's targets that still attach to
    its runs. SweepError where ``queue`` refuses the sweep up to its cells, or the
    targets are no list of mappings (their figures are not read)."""
    index = _CellIndex(_sweep_cells(data, source, drop).cells)
    entries = _read_mappings(data.get("targets"), "targets", source)
    return [bool(index.matching(_target_cell(entry))) for entry in entries]


def _dropped(cell: dict[str, Any], fixed: dict[str, Any], drop: DropRun, source: str) -> bool:
    """Whether ``drop`` takes a matrix cell, given as ``_build_runs`` reads it."""
    written = _whole_counts(cell)
    try:
        params = _canonical({**fixed, **written}, source, "")
    except SweepError:  # building its runs says what is wrong, naming the run
        return False
    return drop(params, written)


# ----- reading the file's parts ---------------------------------------------


# An experiment's name is a folder of its checkpoints (255 bytes at most on Linux) and
# a column of every table: 300 characters failed each run at the worker, and a tab or
# newline broke ls, the markdown tables and the log lines.
MAX_NAME_CHARS = 100


def _experiment_name(data: dict[str, Any], source: str) -> str:
    name = data.get("name")
    if not isinstance(name, str) or not name.strip():
        got = "; ".join(filter(None, (written(name), quote_hint("name", name))))
        raise SweepError(f"{source}: key 'name': required, a non-empty string (got {got})")
    name = name.strip()
    if len(name) > MAX_NAME_CHARS:
        raise SweepError(
            f"{source}: key 'name': at most {MAX_NAME_CHARS} characters (got {len(name)})"
        )
    # Control characters and line breaks, and invisible format characters (U+202E turns
    # the text around, U+200B hides in it): the name is typed to filter by it. A
    # zero-width joiner (👩‍🔬) is fine.
    if control := next((c for c in name if _control(c)), None):
        raise SweepError(
            f"{source}: key 'name': no tabs, newlines or other control characters, nor "
            "invisible format characters "
            f"(got {written(name)}, with {_char_shown(control)})"
        )
    return name


def key_shown(key: Any) -> str:
    """A key as an error message names it: 'layers', cut as values are; one with a
    control character as Python writes it ('\\x1b[2J'), which printed raw cleared the
    terminal, and a line break split the one-line message."""
    text = str(key)
    if any(_control(c) or 0xD800 <= ord(c) <= 0xDFFF for c in text):
        return shown(text)
    return f"'{cut(text)}'"


def _char_shown(char: str) -> str:
    """``"\\u200b"`` as the file may write it; a character drawn as blank (U+2800) by number."""
    return written(char) if acts_on_terminal(char) else f"U+{ord(char):04X}"


def _control(char: str) -> bool:
    return acts_on_terminal(char) or char in BLANK_LOOKING


def _known_key(key: Any) -> bool:
    if not isinstance(key, str):
        return False
    pair_keys = {k for pair in PAIR_ALIASES.values() for k in pair}
    return key in ALIASES or key in pair_keys or key in RunConfig.__dataclass_fields__


def _check_keys(source: str, *parts: tuple[str, dict[str, Any]], also: Sequence[str] = ()) -> None:
    """Every unknown key of the (context, entry) ``parts`` in one error, so a file with
    two typos is mended in one go; each typo gets the nearest name ('layer', 'chanels'),
    of the run parameters or the names ``also`` gives (a targets entry's fields)."""
    parameters = [k for k in RunConfig.__dataclass_fields__ if not k.startswith("_")]
    aliases = [*ALIASES, "ks1", "ks2", "ch1", "ch2"]
    file_keys = sorted(FILE_KEYS)
    unknown = []
    for context, entry in parts:
        # At the top of the file a typo may be of the file's own keys ('matrx').
        names = [*parameters, *aliases, *(file_keys if not context else []), *also]
        for key in entry:
            if not _known_key(key) or str(key).startswith("_"):
                # `LR` as `lr`: the names are lower case, and a typo may be in capitals.
                near = difflib.get_close_matches(str(key), names, n=1) or (
                    difflib.get_close_matches(str(key).lower(), names, n=1)
                )
                hint = f" (did you mean '{near[0]}'?)" if near else ""
                if isinstance(key, bool) or key is None:  # `yes: 2` said "unknown key 'True'"
                    hint = (" (YAML reads the key yes, no, on, off, true or false unquoted as "
                            "true or false, and ~ or null as no value: quote it)")  # fmt: skip
                if context == "matrix: " and key in {"include", "exclude"}:  # as GitHub nests them
                    hint = f" (write '{key}:' at the top of the file, beside 'matrix:')"
                unknown.append((context, f"{key_shown(key)}{hint}"))
    if not unknown:
        return
    known = f"run parameters: {', '.join(parameters)}; aliases: {', '.join(aliases)}"
    if any(not context for context, _ in parts):
        known += f"; file keys: {', '.join(file_keys)}"
    if len(unknown) == 1:
        context, key = unknown[0]
        raise SweepError(f"{source}: {context}unknown key {key}; {known}")
    keys = ", ".join(context + key for context, key in unknown[:5])
    if len(unknown) > 5:
        keys += f" and {len(unknown) - 5} more"
    raise SweepError(f"{source}: {len(unknown)} unknown keys: {keys}; {known}")


def _read_matrix(matrix: Any, source: str) -> dict[str, list[Any]]:
    if matrix is None:
        return {}
    if not isinstance(matrix, dict):
        raise SweepError(
            f"{source}: key 'matrix': expected a mapping of key -> list, got {written(matrix)}"
        )
    for key, values in matrix.items():
        if not isinstance(values, list):
            raise SweepError(
                f"{source}: matrix key {key_shown(key)}: expected a list, got {written(values)}"
            )
        if not values:
            raise SweepError(f"{source}: matrix key {key_shown(key)}: the list is empty")
    return matrix


def _read_entries(entries: Any, what: str, source: str) -> list[dict[str, Any]]:
    mappings = _read_mappings(entries, what, source)
    for number, entry in enumerate(mappings, 1):
        if not entry:
            raise SweepError(f"{source}: {what} entry {number} is {{}}: give it keys and values")
    _check_keys(source, *((f"{what} entry {i}: ", entry) for i, entry in enumerate(mappings, 1)))
    return mappings


def _read_mappings(entries: Any, what: str, source: str) -> list[dict[str, Any]]:
    """The include, exclude or targets (``what``) entries: a list of mappings, or none."""
    if entries is None:
        return []
    if not isinstance(entries, list):
        raise SweepError(
            f"{source}: key '{what}': expected a list of mappings of keys to values, got "
            f"{flow_text(entries)}"
        )
    # The entry by its number and as written: the whole list as Python's repr read
    # "got [{1: 2, 'lr': 0.1}, [1], …]", leaving the person to find the odd one out.
    for number, entry in enumerate(entries, 1):
        if entry is None:
            raise SweepError(f"{source}: {what} entry {number} is empty: give it keys and values")
        if not isinstance(entry, dict):
            raise SweepError(
                f"{source}: {what} entry {number} is {flow_text(entry)}, not a mapping of keys "
                "to values"
            )
    return entries


# The most runs one sweep file may queue. The logbook's largest table has 25 runs, of
# minutes each: 10,000 is weeks of a GPU, and takes a second to expand and queue. A typo
# (`seeds: 100000000`) grew a dry run to 4.4 GB; a 6-key matrix of 10 values never ended.
MAX_RUNS = 10_000


def _check_run_count(
    matrix: dict[str, list[Any]],
    includes: list[dict],
    excludes: list[dict],
    seeds: Sequence[int] | None,
    source: str,
) -> None:
    """Refuse a sweep of more than MAX_RUNS runs, counted before expanding it: the
    matrix's cells plus one per include entry (those it makes), times the seeds. An
    exclude would be applied to the cells, so they are counted before it."""
    # With no matrix the include entries are the cells (none: the one fixed run).
    matrix_cells = math.prod(len(values) for values in matrix.values()) if matrix else 0
    cells = max(1, matrix_cells + len(includes))
    # A range's stop, not its len(): a range of 2**63 seeds or more has none (a traceback).
    count = cells * (1 if seeds is None else seeds.stop if isinstance(seeds, range) else len(seeds))
    if count > MAX_RUNS:
        before = " before exclude" if excludes else ""
        raise SweepError(
            f"{source}: the sweep expands to {count:,} runs{before} (at most {MAX_RUNS:,}): "
            "split it into several files"
        )


def _read_seeds(
    seeds: Any, fixed: dict, matrix: dict, includes: list[dict], source: str
) -> Sequence[int] | None:
    if seeds is None:
        return None
    seeds = as_whole(seeds)
    if "seed" in fixed or "seed" in matrix:
        raise SweepError(f"{source}: key 'seeds': give either 'seeds' or 'seed', not both")
    # The seeds replace every run's seed: an include entry's was dropped without a word.
    if number := next((i for i, entry in enumerate(includes, 1) if "seed" in entry), None):
        raise SweepError(
            f"{source}: include entry {number}: key 'seed' with 'seeds': give either 'seeds' "
            "or 'seed', not both"
        )
    if isinstance(seeds, int) and not isinstance(seeds, bool):
        if seeds < 1:
            raise SweepError(f"{source}: key 'seeds': a count must be >= 1 (got {written(seeds)})")
        return range(seeds)  # not a list: `seeds: 100000000` is refused by its length
    if (
        isinstance(seeds, list)
        and seeds
        and all(isinstance(s, int) and not isinstance(s, bool) and s >= 0 for s in seeds)
    ):
        if len(set(seeds)) != len(seeds):
            raise SweepError(f"{source}: key 'seeds': repeated seed in {written(seeds)}")
        if (big := max(seeds)) > MAX_SEED:  # the queue's column, see core.config
            raise SweepError(
                f"{source}: key 'seeds': a seed must be 0 to {MAX_SEED:,} (got {written(big)})"
            )
        return seeds
    raise SweepError(
        f"{source}: key 'seeds': expected a count or a list of seeds >= 0, got {written(seeds)}"
    )


def _read_targets(targets: Any, source: str) -> list[dict[str, Any]]:
    # A count written as an exponent is a count (`params: 7.7e1` is 77), as everywhere in
    # a sweep: "a whole number ... (got 77.0)" refused it.
    entries = [
        {**entry, "params": as_whole(entry["params"])} if "params" in entry else entry
        for entry in _read_mappings(targets, "targets", source)
    ]
    for i, entry in enumerate(entries, 1):
        context = f"targets entry {i}: "
        # Unknown keys first: 'validation_los: 0.2' is a typo of a target field.
        _check_keys(source, (context, _target_cell(entry)), also=sorted(TARGET_FIELDS))
        measured = {k for k in entry if k in TARGET_FIELDS}
        if not measured:
            raise SweepError(f"{source}: {context}names none of {', '.join(sorted(TARGET_FIELDS))}")
        for key in sorted(measured):
            if problem := target_problem(key, entry[key]):
                raise SweepError(
                    f"{source}: {context}key '{key}': {problem} (got {written(entry[key])})"
                )
    return entries


def _target_cell(entry: dict[str, Any]) -> dict[str, Any]:
    """A targets entry's keys that name its cell (all but the published figures)."""
    return {k: v for k, v in entry.items() if k not in TARGET_FIELDS}


def target_problem(key: str, value: Any) -> str | None:
    """Why a published figure is not one: results subtract it from ours and print it.
    None (``validation_loss: null``, no figure published) is allowed: the cell has none."""
    if value is None:
        return None
    number = isinstance(value, int | float) and not isinstance(value, bool)
    if key == "params":
        ok = number and isinstance(value, int) and 0 < value <= MAX_PARAMS  # as a model's
        return None if ok else f"a parameter count, a whole number from 1 to {MAX_PARAMS:,}"
    if not number or not math.isfinite(value) or value < 0:
        return "a number, 0 or more" + (" (minutes)" if key == "minutes" else "")
    return None


# ----- expansion -------------------------------------------------------------


def _matrix_cells(matrix: dict[str, list[Any]]) -> list[dict[str, Any]]:
    if not matrix:
        return [{}]
    keys = list(matrix)
    # itertools.product varies the last key fastest: the first key is outermost.
    return [dict(zip(keys, combo, strict=True)) for combo in itertools.product(*matrix.values())]


def _matches(cell: dict[str, Any], entry: dict[str, Any]) -> bool:
    return all(k in cell and _same(cell[k], v) for k, v in entry.items())


class _CellIndex:
    """Which of ``cells`` an entry matches (as ``_matches`` says), found by looking its
    values up: a file of 10,000 cells and as many exclude or targets entries, each entry
    tried on every cell, kept ``queue`` busy for minutes (1 MiB of YAML allows that)."""

    def __init__(self, cells: list[dict[str, Any]]) -> None:
        self.cells = cells
        # key -> (each value's hashable form -> the cells holding it, cells whose value
        # has none, such as a mapping, tried one by one)
        self._by_key: dict[str, tuple[dict[Any, list[int]], list[int]]] = {}

    def matching(self, entry: dict[str, Any]) -> list[int]:
        """The indices of the cells ``entry`` matches, in order."""
        found: set[int] | None = None
        for key, value in entry.items():
            ids = self._holding(key, value)
            found = ids if found is None else found & ids
            if not found:
                return []
        return list(range(len(self.cells))) if found is None else sorted(found)

    def _holding(self, key: str, value: Any) -> set[int]:
        exact, loose = self._index(key)
        form = _hashable(value)
        if form is None:  # no lookup for it: every cell with the key is tried
            tried: Iterable[int] = [i for ids in exact.values() for i in ids] + loose
        else:
            tried = loose
        ids = {i for i in tried if _same(self.cells[i][key], value)}
        return ids if form is None else ids | set(exact.get(form, ()))

    def _index(self, key: str) -> tuple[dict[Any, list[int]], list[int]]:
        if key not in self._by_key:
            exact: dict[Any, list[int]] = {}
            loose: list[int] = []
            for i, cell in enumerate(self.cells):
                if key not in cell:
                    continue
                form = _hashable(cell[key])
                if form is None:
                    loose.append(i)
                else:
                    exact.setdefault(form, []).append(i)
            self._by_key[key] = (exact, loose)
        return self._by_key[key]


def _hashable(value: Any) -> Any:
    """A form of ``value`` equal to another's exactly where ``_same`` says the two values
    are the same (a bool only to a bool, 1 to 1.0, lists item by item); None for a value
    that has none (a mapping)."""
    if isinstance(value, bool):
        return ("bool", value)
    if isinstance(value, int | float):
        # NaN is no value's equal, its own neither (`_same`); as a key it would match the
        # one NaN object PyYAML gives every `.nan` of a file.
        return None if value != value else ("number", value)
    if isinstance(value, str):
        return ("text", value)
    if value is None:
        return ("none",)
    if isinstance(value, list):
        items = [_hashable(item) for item in value]
        return None if any(item is None for item in items) else ("list", tuple(items))
    return None


def _same(a: Any, b: Any) -> bool:
    """Equal values, a bool only to a bool: in Python False == 0, so `exclude: [{bnp-e:
    false}]` (no batch norm) dropped the `bnp-e: 0` cell (before the convolution)."""
    if isinstance(a, bool) or isinstance(b, bool):
        return type(a) is type(b) and a == b
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b, strict=True))
    return bool(a == b)


def excluded_cells(data: dict[str, Any], source: str) -> tuple[tuple[str, ...], list[dict]]:
    """What a sweep mapping's ``exclude`` drops, read before any run is built (a cell is
    often excluded because it cannot be), from its matrix and exclude alone (the
    new-sweep form takes the rest its own way: a name typed in, ``seeds`` noted).

    Returns the fields that make a cell, RunConfig keys, ``key:first`` or ``key:last`` for
    one half of a pair (``ks2``): those of the matrix keys with more than one value or
    an entry names (``seed`` only where an entry names it: otherwise a cell is dropped
    whatever its seed); and each dropped cell's values of those keys (RunConfig keys).
    SweepError where ``queue`` refuses the matrix or the exclude."""
    fixed = {k: v for k, v in data.items() if k not in FILE_KEYS}
    raw = data.get("matrix")
    if isinstance(raw, dict):
        _check_keys(source, ("matrix: ", raw))
    matrix = _read_matrix(raw, source)
    excludes = _read_entries(data.get("exclude"), "exclude", source)
    _check_run_count(matrix, [], excludes, None, source)
    cells = _matrix_cells(matrix)
    _check_excludes_match(excludes, cells, matrix, source)
    dropped = [cells[i] for i in sorted(_matched(_CellIndex(cells), excludes))]
    # A cell is its values of the keys the matrix sweeps (and any an entry names): a
    # one-value key the form then changes (act: [gelu] made relu) keeps the cell dropped.
    named = {key for entry in excludes for key in entry}
    halves = {key: f"{canon}:{('first', 'last')[i]}"
              for canon, pair in PAIR_ALIASES.items() for i, key in enumerate(pair)}  # fmt: skip
    chosen = [halves.get(key) or ALIASES.get(key, key) for key, values in matrix.items()
              if len(values) > 1 or key in named]  # fmt: skip
    fields = tuple(dict.fromkeys(key for key in chosen if key != "seed" or "seed" in named))
    bases = list(dict.fromkeys(name.partition(":")[0] for name in fields))
    values = [_canonical({**fixed, **cell}, source, "") for cell in dropped]
    return fields, [{key: params.get(key) for key in bases} for params in values]


def _apply_exclude(cells: list[dict], excludes: list[dict]) -> list[dict]:
    dropped = _matched(_CellIndex(cells), excludes)
    return [cell for i, cell in enumerate(cells) if i not in dropped]


def _matched(index: _CellIndex, entries: list[dict]) -> set[int]:
    """The cells of ``index`` that any of ``entries`` matches."""
    return {i for entry in entries for i in index.matching(entry)}


def _check_excludes_match(
    excludes: list[dict], cells: list[dict], matrix: dict[str, list[Any]], source: str
) -> None:
    """Every exclude entry must match some cell of the matrix: a typo'd key or value
    (``ch: 23``, ``channels`` where the matrix says ``ch``) would otherwise exclude
    nothing and queue the runs it meant to drop, without a word."""
    index = _CellIndex(cells)
    for i, entry in enumerate(excludes, 1):
        where = f"exclude entry {i}"
        _refuse_unmatched(where, entry, entry, index, lambda: matrix, "cell of the matrix", source)


def _check_targets_match(
    targets: list[dict],
    cells: list[dict],
    source: str,
    matrix_cells: list[dict],
    excludes: list[dict],
) -> None:
    """Every targets entry must match some cell, as exclude entries must: a typo'd key
    (``activation`` where the matrix says ``act``) or value would drop the published
    figure from the results without a word. An entry for a cell of the matrix that an
    exclude entry drops names that entry (its value is the matrix's, so "not among the
    matrix's values" would be wrong)."""
    values = partial(_values, cells)
    index = _CellIndex(cells)
    for i, entry in enumerate(targets, 1):
        cell = _target_cell(entry)
        if not index.matching(cell):
            _refuse_excluded(f"targets entry {i}", entry, cell, matrix_cells, excludes, source)
        _refuse_unmatched(f"targets entry {i}", entry, cell, index, values, "run", source)


def _refuse_excluded(
    what: str,
    entry: dict[str, Any],
    keys: dict[str, Any],
    matrix_cells: list[dict],
    excludes: list[dict],
    source: str,
) -> None:
    """A SweepError naming the exclude entry that drops the matrix's cell ``keys`` names."""
    dropped = [cell for cell in matrix_cells if _matches(cell, keys)]
    for number, exclude in enumerate(excludes, 1):
        if any(_matches(cell, exclude) for cell in dropped):
            raise SweepError(
                f"{source}: {what} {flow_text(entry)} matches no run: exclude entry {number} "
                f"{flow_text(exclude)} drops its run"
            )


def _values(cells: list[dict]) -> dict[str, list[Any]]:
    """Each key's values over ``cells``, once each (lists among them: not hashable)."""
    values: dict[str, list[Any]] = {}
    for cell in cells:
        for key, value in cell.items():
            if value not in values.setdefault(key, []):
                values[key].append(value)
    return values


def _refuse_unmatched(
    what: str,
    entry: dict[str, Any],
    keys: dict[str, Any],
    cells: _CellIndex,
    values: Callable[[], dict[str, list[Any]]],
    nothing: str,
    source: str,
) -> None:
    """A SweepError naming ``entry`` and why, unless a cell matches all its ``keys``
    (``values``: each key's values, for the why; worked out only then)."""
    if cells.matching(keys):
        return
    raise SweepError(
        f"{source}: {what} {flow_text(entry)} matches no {nothing}: {_why_no_cell(keys, values())}"
    )


def flow_text(entry: Any) -> str:
    """An entry as YAML's flow style writes it: ``{l: 3, act: relu}`` (``[1]``, ``5`` for
    an entry that is no mapping).

    Text as the person wrote it (``{act: ü名}``, not ``"\\xFC\\u540D"``). YAML escapes
    control characters itself (``"\\e[2J"``), but writes U+2028 as a line break and
    an invisible format character raw (U+202E turns the text around): an entry with
    one of these (``_control``) is written with all past ASCII escaped, as before."""
    text = _flow_text(entry, allow_unicode=True)
    if any(_control(c) for c in text):
        text = _flow_text(entry, allow_unicode=False)
    return cut(text)


def _flow_text(entry: Any, allow_unicode: bool) -> str:
    text = yaml.safe_dump(
        entry, default_flow_style=True, sort_keys=False, width=10**9, allow_unicode=allow_unicode
    ).strip()
    text = text.removesuffix("\n...")  # a lone scalar's end-of-document mark ("5\n...")
    if "\n" in text:  # text with a line break, which YAML breaks too: one line as JSON
        text = json.dumps(entry, ensure_ascii=not allow_unicode, default=str)
    return text


def _why_no_cell(entry: dict[str, Any], matrix: dict[str, list[Any]]) -> str:
    if not matrix:
        return "the file has no matrix"
    for key, value in entry.items():
        if key not in matrix:
            return f"'{key}' is not a matrix key (matrix keys: {', '.join(matrix)})"
        if _holds_nan(value):  # "nan is not among [nan, ...]" said it was missing, not why
            return (
                f"{key}: .nan is not allowed here: NaN equals no value, not even NaN, "
                "so it matches nothing"
            )
        if not any(_same(value, v) for v in matrix[key]):
            values = written(matrix[key])
            return f"{key}: {written(value)} is not among the matrix's {key} values {values}"
    return "no cell has these values together"  # unreachable for a full product; kept safe


def _holds_nan(value: Any) -> bool:
    """Whether ``value`` is NaN or a list holding one (a per-layer list)."""
    if isinstance(value, list):
        return any(_holds_nan(item) for item in value)
    return isinstance(value, float) and math.isnan(value)


def _apply_include(
    cells: list[dict],
    includes: list[dict],
    matrix: dict,
    source: str,
    fits: list[bool] | None = None,
) -> list[dict]:
    """GitHub Actions' rule: an include entry is merged into every cell of the matrix
    whose original values it does not overwrite; if it fits no cell it becomes a new
    cell. Only the matrix's own cells take merges: a cell an include made stays as it
    is (``{act: tanh}`` then ``{act: tanh, ch: 4}`` make two cells, as in GitHub's).
    With no matrix there is no cell to merge into: every entry is a cell of its own (as
    in GitHub's; the one empty cell took each entry in turn, and only the last ran).
    ``fits`` is told, entry by entry, whether it was merged (``include_fits``)."""
    if not matrix and includes:
        cells = []
    merged = [dict(c) for c in cells]
    index = _CellIndex(cells)  # the matrix's cells, each with every matrix key
    added: dict[int, dict] = {}  # include entry number (from 1) -> the cell it made
    made: dict[Any, int] = {}  # a made cell's hashable form -> its entry's number
    for number, entry in enumerate(includes, start=1):
        fitted = index.matching({k: v for k, v in entry.items() if k in matrix})
        for i in fitted:
            merged[i].update(entry)
        if fits is not None:
            fits.append(bool(fitted))
        if fitted:
            continue
        form = _hashable_entry(entry)
        if form is None:
            same = next((n for n, cell in added.items() if cell == entry), None)
        else:
            same = made.setdefault(form, number)
            same = None if same == number else same
        if same is not None:
            raise SweepError(
                f"{source}: include entries {same} and {number} are the same "
                f"({flow_text(entry)}): they would queue one run twice"
            )
        added[number] = dict(entry)
    return merged + list(added.values())


def include_fits(data: dict[str, Any], source: str) -> list[bool]:
    """For each of a sweep mapping's include entries, whether ``queue`` merges it into
    cells of its matrix (True) or makes it a cell of its own (False), after its exclude,
    by ``_apply_include``'s rule: the new-sweep form keeps a loaded file's include and
    leaves out an entry its edits made fit no cell, which the file merged into some.
    SweepError where ``queue`` refuses the matrix, the exclude or the include."""
    raw = data.get("matrix")
    if isinstance(raw, dict):
        _check_keys(source, ("matrix: ", raw))
    matrix = _read_matrix(raw, source)
    excludes = _read_entries(data.get("exclude"), "exclude", source)
    includes = _read_entries(data.get("include"), "include", source)
    _refuse_spelling_clash(data, source)
    _check_run_count(matrix, includes, excludes, None, source)
    cells = _matrix_cells(matrix)
    _check_excludes_match(excludes, cells, matrix, source)
    fits: list[bool] = []
    _apply_include(_apply_exclude(cells, excludes), includes, matrix, source, fits)
    return fits


@dataclass(frozen=True)
class SpellingClash:
    """An include entry that sets a RunConfig key (``field``) as ``key`` where the sweep,
    or the entry itself, writes it as ``other`` (``kernel_size`` beside ``ks1``/``ks2``, ``bs``
    beside ``batch_size``). Every run the entry goes into holds both, and ``queue`` refuses
    it there, named only by the run ('ks1/ks2' and 'kernel_size' both set 'kernel_size')."""

    number: int  # the entry's, from 1
    entry: dict[str, Any]
    key: str
    other: str
    field: str
    within: bool  # ``other`` is the entry's own, not the sweep's

    @property
    def key_named(self) -> str:
        """``key`` as a message names it: a pair's half as the pair ('ks1/ks2'), since
        the entry sets the field through both halves, not through 'ks1' alone."""
        return spelling_named(self.key)

    @property
    def other_named(self) -> str:
        """``other`` as a message names it (``key_named``'s rule)."""
        return spelling_named(self.other)

    def __str__(self) -> str:
        where = "itself" if self.within else "the sweep"
        entry = f"include entry {self.number} {flow_text(self.entry)}"
        return (f"{entry} sets '{self.field}' as '{self.key_named}', and {where} as "
                f"'{self.other_named}': one run cannot take both")  # fmt: skip


def spelling_named(key: str) -> str:
    """A sweep key as a message about its spelling names it: a half of a pair as the
    pair ('ks1' -> 'ks1/ks2'), any other key as itself."""
    halves = next((pair for pair in PAIR_ALIASES.values() if key in pair), None)
    return "/".join(halves) if halves else key


def include_spelling_clash(data: dict[str, Any]) -> SpellingClash | None:
    """The first include entry of a sweep mapping that spells a key otherwise than the
    entry itself or the sweep's fixed or matrix keys do (``SpellingClash``), or None.
    The two halves of a pair (``ks1``, ``ks2``) are one spelling; entries may spell a key
    two ways between them (``{l: 1, bs: 16}``, ``{l: 2, batch_size: 32}``): each run
    holds one entry."""
    entries = data.get("include")
    if not isinstance(entries, list):
        return None
    matrix = data.get("matrix")
    swept = list(matrix) if isinstance(matrix, dict) else []
    sweep_keys = [key for key in data if key not in FILE_KEYS] + swept
    for within, others_of in ((True, lambda entry: list(entry)), (False, lambda _: sweep_keys)):
        for number, entry in enumerate(entries, 1):
            if not isinstance(entry, dict):
                continue
            for key in entry:
                other = next((o for o in others_of(entry) if _spelled_apart(key, o)), None)
                if other is not None:
                    field = _key_field(key)
                    return SpellingClash(number, entry, str(key), str(other), field, within)
    return None


def _key_field(key: Any) -> str:
    """The RunConfig key a sweep key sets: ``l`` -> layers, ``ks1`` -> kernel_size."""
    pair = next((canon for canon, halves in PAIR_ALIASES.items() if key in halves), None)
    return pair or ALIASES.get(str(key), str(key))


def _spelled_apart(key: Any, other: Any) -> bool:
    """Whether two keys set one RunConfig key under different names (a pair's halves are
    one name: ks1 with ks2 is the pair)."""
    if key == other or _key_field(key) != _key_field(other):
        return False
    return not any(key in halves and other in halves for halves in PAIR_ALIASES.values())


def _refuse_spelling_clash(data: dict[str, Any], source: str) -> None:
    if clash := include_spelling_clash(data):
        raise SweepError(f"{source}: {clash}")


def _hashable_entry(entry: dict[str, Any]) -> Any:
    """An entry's hashable form (``_hashable``'s of each value), or None."""
    forms = {key: _hashable(value) for key, value in entry.items()}
    return None if None in forms.values() else frozenset(forms.items())


def _canonical(entry: dict[str, Any], source: str, context: str) -> dict[str, Any]:
    """Map aliases and ks1/ks2-style pairs onto RunConfig keys."""
    out: dict[str, Any] = {}
    set_by: dict[str, str] = {}
    for key, value in entry.items():
        if any(key in pair for pair in PAIR_ALIASES.values()):
            continue
        canonical = ALIASES.get(key, key)
        if canonical in out:
            raise SweepError(
                f"{source}: {context}'{set_by[canonical]}' and '{key}' both set '{canonical}'"
            )
        out[canonical], set_by[canonical] = value, key
    for canonical, (first, last) in PAIR_ALIASES.items():
        present = [k for k in (first, last) if k in entry]
        if not present:
            continue
        if len(present) == 1:
            partner = last if present[0] == first else first
            raise SweepError(f"{source}: {context}'{present[0]}' needs its partner '{partner}'")
        if canonical in out:
            raise SweepError(
                f"{source}: {context}'{first}/{last}' and '{canonical}' both set '{canonical}'"
            )
        out[canonical] = [entry[first], entry[last]]
    return out


def _with_matrix_hint(
    error: ConfigError, params: dict[str, Any], cell: dict[str, Any]
) -> ConfigError:
    """``error``, with where a list belongs when a key outside ``matrix:`` was given one
    (`layers: [1, 2]` said only "expected an integer, got [1, 2]")."""
    swept = {ALIASES.get(key, key) for key in cell}
    listed = [
        key for key, value in params.items()
        if isinstance(value, list) and key not in PER_LAYER_KEYS and key not in swept
    ]  # fmt: skip
    key = next((k for k in listed if f"key '{k}':" in str(error)), None)
    if key is None:
        return error
    return type(error)(f"{error}; values to sweep go under matrix: (matrix: {{{key}: [...]}})")


def slug(swept: dict[str, Any]) -> str:
    """The logbook's matrix_slug: key-value pairs joined by '_', odd characters dropped."""
    return "_".join(slug_parts(swept)) if swept else "run"


def slug_parts(swept: Mapping[str, Any]) -> list[str]:
    """The key-value pairs of ``slug`` (``max_inputs-640``: a key may hold a '_')."""
    return [_SLUG_DROP.sub("", f"{key}-{_slug_value(value)}") for key, value in swept.items()]


def _slug_value(value: Any) -> str:
    # None and booleans as a sweep file writes them (`bnp-e: [off, 1]` was named
    # bnp-e-False), not as Python's str: the logbook's names (seed-spec §6) hold none
    # we know of (§8.3: how T4 wrote "no batch norm" is unknown).
    if value is None:
        return "none"
    if isinstance(value, bool):
        return _bool_text(value)
    if isinstance(value, list):
        return ",".join(_bool_text(v) if isinstance(v, bool) else str(v) for v in value)
    if isinstance(value, float):
        return float_text(value)
    return str(value)[:40]


def _bool_text(value: bool) -> str:
    return "true" if value else "false"


# From here on a whole-number float is written with an exponent in names (and, through
# `value_text`, wherever a config value is shown), as Python's "g" format (and the lr
# refusals) write it: `lr: [1e6]` was named lr-1000000.0. Not lower: "g" writes 100000
# for 1e5, and "wherever the exponent is shorter" would name one sweep's
# `[10.0, 15.0, 20.0]` RWF-1e1, RWF-15.0, RWF-2e1.
WHOLE_AS_EXPONENT = 1e6


def float_text(value: float) -> str:
    """A float as Python writes it (``0.0003``, ``1e-05``, ``2.0``: the logbook's names
    such as ``RWF-1.0`` stay as they were), but a whole number from 1e6 on compactly as
    ``1e6`` or ``1.5e6``, all its digits kept (Python itself writes ``1e+16`` from 1e16
    on: written ``1e16``, as names wrote it already, their slugs dropping the '+', so
    ``show`` and the run's name agree there too)."""
    text = repr(value)
    if not (text.endswith(".0") and abs(value) >= WHOLE_AS_EXPONENT):
        # Not whole, below 1e6, or Python's own exponent form (or inf, nan).
        return text.replace("e+", "e")
    digits = text.removesuffix(".0").lstrip("-")
    significant = digits.rstrip("0")
    mantissa = significant[0] + (f".{significant[1:]}" if len(significant) > 1 else "")
    return f"{'-' if value < 0 else ''}{mantissa}e{len(digits) - 1}"


def value_text(value: Any) -> str:
    """A config value as every place that shows one to a person writes it (``show``,
    the run detail, ``compare`` and the results tables, ``queue``'s notes and preview,
    the new-sweep form's fields): floats as run names write them (``float_text``: lr
    1e12 read ``1000000000000.0`` in ``show`` beside run lr-1e12 and ``1e+12`` in the
    form), none and truth values as a sweep file writes them, lists in brackets."""
    if value is None:
        return "none"
    if isinstance(value, bool):
        return _bool_text(value)
    if isinstance(value, float):
        return float_text(value)
    if isinstance(value, list | tuple):
        return "[" + ", ".join(value_text(item) for item in value) + "]"
    return str(value)


def _counts(key: str) -> bool:
    """Whether a sweep key's values are whole numbers (layers, channels, ks1, ...)."""
    pair = next((name for name, halves in PAIR_ALIASES.items() if key in halves), None)
    return (pair or ALIASES.get(key, key)) in INT_KEYS | PER_LAYER_KEYS


def _whole_counts(cell: dict[str, Any]) -> dict[str, Any]:
    """``cell`` with its counts whole: `max_inputs: [1e4, 2e4]` are whole numbers, runs
    named max_inputs-10000, not -10000.0."""
    return {k: as_whole(v) if _counts(k) else v for k, v in cell.items()}


def _build_runs(
    experiment: str,
    fixed: dict[str, Any],
    cells: list[dict[str, Any]],
    seeds: Sequence[int] | None,
    targets: list[dict[str, Any]],
    source: str,
) -> list[ExpandedRun]:
    runs: list[ExpandedRun] = []
    seen: dict[str, str] = {}  # config hash -> the run's name
    targets_of = _targets_of_cells(cells, targets)
    for number, as_given in enumerate(cells):
        cell = _whole_counts(as_given)
        for seed in seeds if seeds is not None else [None]:
            swept = dict(cell) if seed is None else {**cell, "seed": seed}
            name = slug(swept)
            # A file that sweeps nothing makes one run, named "run": an error is the file's.
            context = f"run '{cut(name)}': " if swept else ""
            params = _canonical({**fixed, **cell}, source, context)
            if seed is not None:
                params["seed"] = seed
            _check_limits(params, source, context)
            try:
                config = RunConfig.from_dict(params, where=context)
            except ConfigError as error:
                raise _with_matrix_hint(error, params, cell) from None
            _check_inputs_fill_a_batch(config, source, context)
            _check_bn_for_v1(config, source, context)
            _check_step_fits_float32(config, source, context)
            param_count = _checked_param_count(config, source, context)
            digest = config.config_hash()
            if digest in seen:
                # `l: [1, 1]`, `act: [relu, ReLU]`: one run would be dropped without a word.
                other = "comes twice" if seen[digest] == name else f"is run '{seen[digest]}' again"
                raise SweepError(
                    f"{source}: {context}{other} (the same config and seed): a value is given twice"
                )
            seen[digest] = name
            runs.append(
                ExpandedRun(
                    index=len(runs) + 1,
                    experiment=experiment,
                    name=name,
                    config=config,
                    swept=swept,
                    param_count=param_count,
                    config_hash=digest,
                    target=_target_for(targets_of[number], source, context),
                )
            )
    return runs


def _check_limits(params: dict[str, Any], source: str, context: str) -> None:
    """Refuse whole numbers beyond ``LIMITS`` (``seed: 99999999999999999999999``): the
    queue cannot store them, or torch cannot build or seed the run. Checked before the
    RunConfig is built, whose per-layer interpolation would overflow on such numbers;
    checked here, for new sweeps, as max_inputs is: runs already queued must still load."""
    for key, (least, most) in LIMITS.items():
        value = as_whole(params.get(key))
        for number in value if isinstance(value, list | tuple) else [value]:
            # Small ones below `least` (0 channels) get RunConfig's own message; a float
            # too (`max_inputs: 1e16`, beyond the 2**53 of a whole number is refused so).
            number_given = isinstance(number, int | float) and not isinstance(number, bool)
            # Below `least` too in a [first, last] pair, whose values are not the layers'
            # (`ks1: 0` made kernels [1, 1, 3] by seed-spec's rounding, without a word).
            # Here, not in RunConfig: runs queued before this check must still load.
            below = isinstance(value, list | tuple) and len(value) == 2 and number_given
            if number_given and (abs(number) > most or (below and number < least)):
                got = written(value)
                raise SweepError(
                    f"{source}: {context}key '{key}': must be {least} to {most:,} (got {got})"
                )


def _checked_param_count(config: RunConfig, source: str, context: str) -> int:
    """The run's parameter count, refused beyond what the queue can store."""
    count = count_params(config)
    if count > MAX_PARAMS:
        raise SweepError(
            f"{source}: {context}the model has {count:,} parameters, at most {MAX_PARAMS:,} "
            "(the queue's 32-bit count): fewer channels, layers or smaller kernels"
        )
    return count


MAX_LR = 1e30  # AdamW's first step is lr x 10 (its bias correction): float32 ends at 3.4e38


def _check_step_fits_float32(config: RunConfig, source: str, context: str) -> None:
    """Refuse an lr (or lr x weight_decay) AdamW's float32 step cannot hold: `lr: 1e38`
    raised "value cannot be converted to type float without overflow" at the first step,
    a traceback out of `train` and cause "error" in a worker, where `lr: 1e35` diverges
    as a NaN loss. Here, for new sweeps: runs already queued must still load."""
    for what, value in (("lr", config.lr), ("lr x weight_decay", config.lr * config.weight_decay)):
        if value > MAX_LR:
            raise SweepError(
                f"{source}: {context}key 'lr': {what} must be at most {MAX_LR:g} (got "
                f"{value:g}): AdamW's float32 step cannot hold more"
            )


def _check_bn_for_v1(config: RunConfig, source: str, context: str) -> None:
    """Refuse batch-norm positions for model v1, which has BN before every convolution
    whatever they say: the run would train as if they were not there. Checked here, for
    new sweeps, as max_inputs is: runs already queued must still load."""
    if config.model != "v1":
        return
    for key in ("bn_encoder", "bn_decoder"):
        if getattr(config, key) != 0:
            raise SweepError(
                f"{source}: {context}key '{key}': model v1 has batch norm before every "
                f"convolution; '{key}' applies to v2 only (got {written(getattr(config, key))})"
            )


def _check_inputs_fill_a_batch(config: RunConfig, source: str, context: str) -> None:
    """Refuse max_inputs < batch_size: training draws whole batches, so such a run
    would train on a full batch_size inputs without a word (and plan 0 cosine steps).

    Checked here, for new sweeps, not in RunConfig: runs already queued with such a
    config must still load from the database.
    """
    if config.max_inputs < config.batch_size:
        raise SweepError(
            f"{source}: {context}key 'max_inputs': must be at least batch_size "
            f"{config.batch_size}, training draws whole batches (got {config.max_inputs})"
        )


def _targets_of_cells(
    cells: list[dict[str, Any]], targets: list[dict[str, Any]]
) -> list[list[tuple[int, dict[str, Any]]]]:
    """Each cell's matching targets entries, with their numbers (from 1)."""
    found: list[list[tuple[int, dict[str, Any]]]] = [[] for _ in cells]
    index = _CellIndex(cells)
    for number, entry in enumerate(targets, 1):
        for i in index.matching(_target_cell(entry)):
            found[i].append((number, entry))
    return found


def _target_for(
    found: list[tuple[int, dict[str, Any]]], source: str, context: str
) -> dict[str, float] | None:
    """The one targets entry of ``found`` (those matching a cell); two would be two
    published figures for one cell (the first used, the other dropped without a word):
    refused."""
    if len(found) > 1:
        which = ", ".join(str(i) for i, _ in found[:-1]) + f" and {found[-1][0]}"
        # A file that sweeps nothing has no run name to say: "match it" named nothing.
        it = "it" if context else "its one run"
        raise SweepError(
            f"{source}: {context}targets entries {which} match {it} (give one per cell)"
        )
    if not found:
        return None
    return {k: v for k, v in found[0][1].items() if k in TARGET_FIELDS}
