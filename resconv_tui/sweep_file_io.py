"""Sweep files <-> the new-sweep form. Pure and torch-free.

Loading maps every key the form can show onto its field and keeps the key's name
(``l`` stays ``l``) so run names and published targets still match. What the form
cannot show (unknown keys) is listed in ``notes``, never dropped silently; ``exclude``
is kept as the cells it drops (``ExcludedCells``), ``include`` as written (``KeptInclude``).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from core.config import coerced
from core.errors import ConfigError, SweepError, written
from core.files import SQLITE_HEADER, atomic_write, held_database_file
from core.sweep import (
    MAX_RUNS,
    PAIR_ALIASES,
    TARGET_FIELDS,
    excluded_cells,
    expand_sweep,
    include_fits,
    key_shown,
    read_sweep_text,
    sweep_data,
)
from resconv_tui.sweep_form import (
    SPECS,
    BaseRun,
    ExcludedCells,
    KeptInclude,
    canonical_key,
    default_texts,
    format_values,
)

HEADER = "# Sweep file written by resconv-tui's new-sweep form (docs/sweep-format.md).\n"
_KEPT = ("description", "targets")


@dataclass
class LoadedSweep:
    """A sweep file as form state."""

    name: str
    texts: dict[str, str]  # field -> text, swept keys first in the file's matrix order
    key_names: dict[str, str] = field(default_factory=dict)  # field -> name in the file
    # The fields the file sweeps (its matrix keys, the seed of 'seeds'), kept swept with one
    # value too: `act: [gelu]` names runs act-gelu_l-1 in queue, and the form named them l-1.
    swept: list[str] = field(default_factory=list)
    extra: dict[str, Any] = field(default_factory=dict)  # description, targets: saved back
    notes: list[str] = field(default_factory=list)  # what the form could not take over
    # The notes above that say the file's exclude or include is kept, by key: the form
    # says them afresh where its edits leave entries out (``kept_note``).
    kept_notes: dict[str, str] = field(default_factory=dict)
    # What saving the form over the file would drop without a word: an include not
    # loaded, keys not loaded, targets left out (the replace question names them).
    lost: list[str] = field(default_factory=list)
    excluded: ExcludedCells | None = None  # the cells the file's exclude drops
    included: KeptInclude | None = None  # the file's include entries, applied as queue does
    # The one run of a file that sweeps nothing, as queue makes it (named "run"): the form
    # names it so, and its edits of one run by what they change (ks-7), as a duplicate's
    # are; a matrix the form's edits make is named by its cells, as queue names it.
    plain_run: BaseRun | None = None


def sweep_yaml(mapping: dict[str, Any]) -> str:
    """YAML that ``core.sweep.expand_sweep_file`` reads back to the same runs."""
    # Block style at the top, lists of values in brackets: default_flow_style=None
    # writes a mapping of plain values (a one-run form's, no matrix) as one flow line,
    # `{name: x, layers: 3, ...}`, unlike every sweep file in experiments/.
    nested = any(isinstance(value, dict | list) for value in mapping.values())
    flow = None if nested else False
    # allow_unicode: a name or description is written as typed (`§2.4`, `ré`), not as
    # `\xA72.4` in a double-quoted string; what YAML cannot print plainly is still escaped.
    body = yaml.safe_dump(
        mapping, sort_keys=False, default_flow_style=flow, width=100, allow_unicode=True
    )
    return HEADER + body


def typed_path(path: str | Path) -> Path:
    """A path as typed into the form, ``~`` expanded; SweepError for one no file can have:
    ``~nosuchuser/x.yml`` (a RuntimeError out of expanduser) or a NUL character (a
    ValueError out of every file call), which crashed the form."""
    if "\x00" in str(path):
        raise SweepError(f"{written(str(path))}: a path cannot hold a NUL character")
    try:
        return Path(path).expanduser()
    except RuntimeError as exc:  # "Could not determine home directory."
        raise SweepError(f"{path}: {exc}") from None


def save_sweep(path: str | Path, mapping: dict[str, Any]) -> Path:
    """Write the sweep file whole or not at all (a full disk leaves the old file). A
    ``path`` that is a symbolic link is written through, as editors do: the file it
    points to is replaced (its temporary file beside it), the link kept. Saved over a
    link to a shared sweep, f2 made the link a file of its own, and the shared file
    never changed. A loop of links, or a link into a folder not there, is refused
    (SweepError), as is a SQLite file."""
    path = typed_path(path)
    _refuse_a_database(path)
    text = sweep_yaml(mapping).encode("utf-8")
    target = path
    if path.is_symlink():
        # realpath: the whole chain of links, and a link to a file not there yet makes it.
        target = Path(os.path.realpath(path))
        if target.is_symlink():  # realpath stops at a loop: the write would replace a link
            raise SweepError(f"{path}: a loop of symbolic links; save the sweep elsewhere")
        if not target.parent.is_dir():
            # An unmounted share's folder, made here without the question f2 asks of a
            # folder typed (atomic_write makes folders), and the sweep written into it.
            raise SweepError(
                f"{path}: a link to {target}, whose folder does not exist; save the sweep elsewhere"
            )
    atomic_write(target, lambda handle: handle.write(text))
    return path


def _refuse_a_database(path: Path) -> None:
    """f2 over runs.db replaced the queue's database with the sweep (behind a "Replace
    it?" that reads like any file's): refused. The queue's own file is known unopened
    (``held_database_file``: reading it would drop this process's SQLite locks); any
    other SQLite file by its header."""
    if database := held_database_file(path):
        raise SweepError(f"{path}: the queue's database ({database}); save the sweep elsewhere")
    try:
        with path.open("rb") as file:
            start = file.read(len(SQLITE_HEADER))
    except OSError:
        return  # none there yet, or the write says why not
    if start == SQLITE_HEADER:
        raise SweepError(f"{path}: a SQLite database, not a sweep file; save the sweep elsewhere")


def load_sweep(path: str | Path) -> LoadedSweep:
    """Read a sweep file into form state; SweepError when it is not a sweep mapping."""
    path = typed_path(path)
    text = read_sweep_text(path)
    # The queue's loader: `lr: 1e-3` is the number 0.001 here too, not text.
    data = sweep_data(text, str(path))
    if not isinstance(data, dict):
        raise SweepError(f"{path}: expected a mapping with at least 'name:'")
    return sweep_to_form(data)


def sweep_to_form(data: dict[str, Any]) -> LoadedSweep:
    raw_matrix = data.get("matrix")
    matrix: dict[str, Any] = raw_matrix if isinstance(raw_matrix, dict) else {}
    name = data.get("name")
    loaded = LoadedSweep(name=name if isinstance(name, str) else "", texts={})
    # What queue refuses, said rather than loaded as something else: a name that is no
    # text became "{'a': 1}", a matrix that is no mapping was dropped without a word.
    if name is not None and not isinstance(name, str):
        loaded.notes.append(f"'name: {written(name)}' is no text: not loaded")
    if raw_matrix is not None and not isinstance(raw_matrix, dict):
        loaded.notes.append(f"'matrix: {written(raw_matrix)}' is no mapping of keys to lists: "
                            "not loaded")  # fmt: skip
        loaded.lost.append("its 'matrix'")
    values: dict[str, list[Any]] = {}
    for key, vals in matrix.items():
        _take(loaded, values, key, vals)
        if canonical_key(str(key)) in loaded.key_names:  # taken (not unknown)
            loaded.swept.append(canonical_key(str(key)))
    for key, raw in data.items():
        if key != "matrix" and key not in matrix:
            _take(loaded, values, key, [raw])
    _take_partners(loaded, values)
    seeds = _take_seeds(loaded, values, data.get("seeds"))
    if seeds and ("seed" in data or "seed" in matrix):  # queue refuses both at once
        loaded.notes.append("'seed' beside 'seeds' (queue takes one or the other): the seed "
                            "field holds the seeds")  # fmt: skip
    loaded.texts = _texts(values, seeds_last=seeds)
    if not _take_include(loaded, data):
        _drop_included_targets(loaded, data)
    _take_exclude(loaded, data)
    loaded.plain_run = _plain_run(data)
    return loaded


def _plain_run(data: dict[str, Any]) -> BaseRun | None:
    """The run of a file of fixed settings only (no matrix, seeds or include) as ``queue``
    makes it: named ``run`` (core.sweep names a run by its matrix cell), where the form
    named it by what differs from the defaults (ks-5_max_inputs-1000). None for any other
    file, or one queue refuses (the form says why as it loads or previews it)."""
    if data.get("matrix") or data.get("seeds") is not None or data.get("include"):
        return None
    try:
        runs = expand_sweep(data, source="file")
    except ConfigError:
        return None
    if len(runs) != 1 or runs[0].swept:
        return None
    run = runs[0]
    target = dict(run.target) if run.target else None
    return BaseRun(run.name, run.config, {}, target, alone=True)


def _take_exclude(loaded: LoadedSweep, data: dict[str, Any]) -> None:
    """The cells the file's ``exclude`` drops, read from its matrix and exclude as ``queue``
    reads them (``core.sweep.excluded_cells``). An exclude ``queue`` refuses is not loaded;
    the note says why."""
    if data.get("exclude") in (None, []):  # `exclude: []` drops nothing: nothing to say
        return
    try:
        fields, dropped = excluded_cells(data, source="file")
    except ConfigError as exc:
        loaded.notes.append(f"'exclude' not loaded: {str(exc).removeprefix('file: ')}")
        loaded.lost.append("its 'exclude'")
        return
    entries = data["exclude"]  # a list of mappings: excluded_cells has read it
    loaded.excluded = ExcludedCells.of(fields, dropped, entries, data)
    _say_kept(loaded, "exclude", len(entries))


def _take_include(loaded: LoadedSweep, data: dict[str, Any]) -> bool:
    """The file's ``include`` entries, kept as written with which of them ``queue`` merges
    into cells of its matrix (``core.sweep.include_fits``), so the form makes its runs:
    T2's 21 and 30 layers at batch size 32, not the matrix's 64. An include ``queue``
    refuses is not loaded, the note says why. False where there is one, not loaded."""
    entries = data.get("include")
    if entries in (None, []):  # `include: []` adds nothing: nothing to say
        return True
    try:
        merged = include_fits(data, source="file")
    except ConfigError as exc:
        count = f" ({_entries(len(entries))})" if isinstance(entries, list) else ""
        loaded.notes.append(f"'include'{count} not loaded: {str(exc).removeprefix('file: ')}")
        loaded.lost.append(f"its 'include'{count}")
        return False
    # A field the file leaves to its default stays unset while the form holds the
    # default (KeptInclude.unset), and is written under the include's name for it once
    # edited: the form's `activation: relu` beside an entry's `act: tanh` is a key set twice.
    unset: set[str] = set()
    for entry in entries:
        for key in entry:
            for canonical in (canonical_key(str(key)), *_pair_of(key)):
                if canonical in SPECS and canonical not in loaded.key_names:
                    unset.add(canonical)
    for entry in entries:
        for key in entry:
            if canonical_key(str(key)) in unset:
                loaded.key_names.setdefault(canonical_key(str(key)), str(key))
    loaded.included = KeptInclude(tuple(entries), tuple(merged), frozenset(unset))
    _say_kept(loaded, "include", len(entries))
    return True


def kept_note(key: str, count: int) -> str:
    """The note that ``count`` entries of the file's ``key`` (exclude, include) are kept."""
    does = {"exclude": "the runs it drops are left out",
            "include": "its runs are made as queue makes them"}[key]  # fmt: skip
    return f"'{key}' ({_entries(count)}) kept: {does}"


def _say_kept(loaded: LoadedSweep, key: str, count: int) -> None:
    loaded.kept_notes[key] = kept_note(key, count)
    loaded.notes.append(loaded.kept_notes[key])


def _drop_included_targets(loaded: LoadedSweep, data: dict[str, Any]) -> None:
    """The file's ``include`` entries are not loaded (``queue`` refuses them), so the form
    trains the cells they change as the matrix makes them (21 layers at batch size 64, not 32):
    their published figures are for other runs, and are left out. A target stays where
    the file without its include gives it to the same runs as the file does."""
    targets = loaded.extra.get("targets")
    if not data.get("include") or not isinstance(targets, list):
        return
    without = {key: value for key, value in data.items() if key != "include"}

    def runs_of(mapping: dict[str, Any], target: Any) -> set[str] | None:
        try:
            runs = expand_sweep({**mapping, "targets": [target]})
        except ConfigError:  # e.g. a target of a cell only the include makes, a bad value
            return None
        return {run.config.replace(seed=0).to_json() for run in runs if run.target}

    kept = [t for t in targets if runs_of(without, t) == runs_of(data, t) != set()]
    if len(kept) == len(targets):
        return
    loaded.extra["targets"] = kept
    dropped = [t for t in targets if t not in kept]
    cells = ", ".join(
        " ".join(f"{k}={written(v)}" for k, v in t.items() if k not in TARGET_FIELDS)
        if isinstance(t, dict)
        else written(t)
        for t in dropped
    )
    loaded.notes.append(f"targets of {cells} left out: the file's 'include' changes those runs")
    loaded.lost.append(f"the targets of {cells}")


def _take(loaded: LoadedSweep, values: dict[str, list[Any]], key: str, vals: Any) -> None:
    if key in ("name", "seeds"):
        return
    if key in _KEPT:
        loaded.extra[key] = vals[0]
        return
    if key in ("exclude", "include"):
        return  # _take_exclude, _take_include
    if _is_pair_key(key) and not isinstance(vals, list):
        # `matrix: {ks1: 3}`, which queue refuses: one value in the ks1 field, said so.
        loaded.notes.append(f"'{key}: {written(vals)}' under 'matrix' is no list: loaded as "
                            "one value")  # fmt: skip
        vals = [vals]
    canonical = canonical_key(str(key))
    if canonical not in SPECS or not isinstance(vals, list):
        # Cut and escaped as queue's message names it: a raw ESC cleared the screen.
        loaded.notes.append(f"unknown or malformed key {key_shown(key)}: not loaded")
        loaded.lost.append(f"its key {key_shown(key)}")
        return
    values[canonical] = vals
    loaded.key_names[canonical] = str(key)


def _pair_of(key: Any) -> tuple[str, ...]:
    """The pair field a half sets (``ks1`` -> kernel_size), or none."""
    return tuple(pair for pair, halves in PAIR_ALIASES.items() if key in halves)


def _is_pair_key(key: Any) -> bool:
    return any(key in pair for pair in PAIR_ALIASES.values())


def _take_partners(loaded: LoadedSweep, values: dict[str, list[Any]]) -> None:
    """A half the file gives without its partner (``ks1`` but no ``ks2``, which queue
    refuses) gets an empty field of its own, marked, to be filled in."""
    for first, last in PAIR_ALIASES.values():
        for half, partner in ((first, last), (last, first)):
            if half in values and partner not in values:
                values[partner] = []
                loaded.key_names[partner] = partner
                loaded.notes.append(f"'{half}' needs its partner '{partner}': give it")


def _entries(count: int) -> str:
    return "1 entry" if count == 1 else f"{count} entries"


def _take_seeds(loaded: LoadedSweep, values: dict[str, list[Any]], seeds: Any) -> bool:
    """``seeds: 3`` -> seed ``0,1,2``; True when the seed field came from ``seeds``."""
    if seeds is None:
        return False
    many = len(seeds) if isinstance(seeds, list) else seeds
    if isinstance(many, int) and not isinstance(many, bool) and many > MAX_RUNS:
        # As many seeds as runs too many for any sweep: listing them took gigabytes
        # (2**63: an OverflowError out of f3).
        loaded.notes.append(f"'seeds' ({many:,} of them) makes more runs than a sweep may "
                            f"(at most {MAX_RUNS:,}): not loaded")  # fmt: skip
        loaded.lost.append("its 'seeds'")
        return False
    if isinstance(seeds, int) and not isinstance(seeds, bool) and seeds >= 1:
        values["seed"] = list(range(seeds))
    elif isinstance(seeds, list) and seeds:
        values["seed"] = seeds
    else:
        loaded.notes.append(
            f"'seeds: {written(seeds)}' is no count of 1 or more and no list: not loaded"
        )
        loaded.lost.append("its 'seeds'")
        return False
    loaded.key_names["seed"] = "seeds"  # written back as 'seeds' (build_mapping)
    loaded.swept.append("seed")  # `seeds: 1` names runs l-1_seed-0, as several seeds do
    return True


def _texts(values: dict[str, list[Any]], seeds_last: bool) -> dict[str, str]:
    """Every field's text: loaded ones first (in file order), defaults after.

    ``seeds`` vary fastest in a sweep file, so a seed field made from them goes last.
    """
    # YAML reads a bare `off` or `no` as False: a batch-norm position's, no batch norm, as a
    # RunConfig reads it (coerced: None, written "none"); it wrote "False", and refused it.
    texts = {key: format_values(coerced(key, value) if value is False else value
                                for value in vals) for key, vals in values.items()}  # fmt: skip
    # A pair's field (kernel_size) is left out where its halves (ks1/ks2) stand for it.
    halved = {pair for pair, halves in PAIR_ALIASES.items() if set(halves) & set(texts)}
    texts.update({key: text for key, text in default_texts().items()
                  if key not in texts and key not in halved})  # fmt: skip
    if seeds_last:
        texts["seed"] = texts.pop("seed")
    return texts
