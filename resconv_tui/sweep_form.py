"""The new-sweep form's fields, parsed into a sweep mapping. Pure and torch-free.

Each field takes one value or several:

* a list: ``3,5,7`` or ``gelu,relu,mish`` (choices are case-insensitive)
* an inclusive integer range: ``3..11:2`` -> 3, 5, 7, 9, 11 (step defaults to 1)
* per-layer fields (channels, kernel_size, padding) also take one value per layer in
  brackets, and channels and kernel_size a ``[first,last]`` pair (padding takes none):
  ``[3,9]`` is ONE value, ``3,[3,9]`` two
* ``none`` for the batch-norm positions; an empty residual weight means the model's default
* a loaded file's pair halves (``ks1``/``ks2``, ``ch1``/``ch2``) are fields of their own,
  in place of their pair's field, written back as the file writes them

The mapping feeds ``core.sweep.expand_sweep``: a field with one value becomes a fixed
key, a field with several becomes a ``matrix`` key, so the form and a sweep file
always expand to the same runs.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field, replace
from functools import cache
from typing import Any, Self

from core.config import LIMITS, RunConfig, coerced
from core.errors import ConfigError
from core.memory import estimate_bytes
from core.sweep import (
    PAIR_ALIASES,
    TARGET_FIELDS,
    DropRun,
    ExpandedRun,
    SpellingClash,
    excluded_cells,
    expand_sweep,
    flow_text,
    include_fits,
    include_spelling_clash,
    quick_check_name,
    slug,
    targets_attached,
    trained_alike_note,
)
from resconv_tui.field_values import (  # noqa: F401 - re-exported: the form's whole API
    FIELDS,
    SPECS,
    FieldError,
    FieldSpec,
    canonical_key,
    format_value,
    format_values,
    parse_field,
    parse_range,
    split_items,
)

MAX_RUNS = 2000  # the preview expands every run; beyond this the form says "too many"
# Swept keys are written with the logbook's short names so run names read like its
# tables (``l-3_act-relu``); fixed keys keep their full names for readable files.
SWEPT_NAMES = {
    "layers": "l",
    "kernel_size": "ks",
    "channels": "ch",
    "activation": "act",
    "residual_weight": "RWF",
    "bn_encoder": "bnp-e",
    "bn_decoder": "bnp-d",
}


def default_texts(base: Mapping[str, Any] | None = None) -> dict[str, str]:
    """Field texts for RunConfig defaults, overridden by ``base`` (a run's config dict)."""
    values = RunConfig().to_dict()
    values["residual_weight"] = None  # the model's default, unless base says otherwise
    for key, value in (base or {}).items():
        if canonical_key(key) in SPECS:
            values[canonical_key(key)] = value
    texts = {spec.key: format_value(values[spec.key]) for spec in FIELDS}
    if values["residual_weight"] is None:
        texts["residual_weight"] = ""
    return texts


# ----- the sweep mapping and its preview -------------------------------------


@dataclass(frozen=True)
class ExcludedCells:
    """The cells a loaded sweep file's ``exclude`` drops (``core.sweep.excluded_cells``),
    by their values of the config keys the file sweeps: whatever the file's key names
    (``l``, ``ks1``/``ks2``), spellings (``GELU``) or which of them the form holds fixed,
    a run of the form with a dropped cell's values is left out before it is built.
    ``entries``: the exclude as written, saved back where it still drops the same runs
    (``saved_mapping``); ``source``: the sweep mapping they were read from (``without``)."""

    fields: tuple[str, ...]
    cells: frozenset[tuple[Any, ...]]
    entries: tuple[Any, ...]
    source: Mapping[str, Any] | None = field(default=None, compare=False)

    @classmethod
    def of(
        cls,
        fields: tuple[str, ...],
        dropped: list[dict[str, Any]],
        entries: Any,
        source: Mapping[str, Any] | None = None,
    ) -> Self:
        cells = frozenset(_cell_of(cell, fields) for cell in dropped)
        return cls(fields, cells, tuple(entries), source)

    def without(self, keys: Collection[str]) -> ExcludedCells | None:
        """This exclude less the entries that name any of ``keys`` (a pair's halves the
        form no longer has), read again as ``queue`` reads it from its sweep without those
        keys: ``{l: 3}`` beside ``{ks1: 3, ks2: 3}`` still leaves out every l-3 run. None
        where no entry is left, or the rest no longer reads (then none is kept)."""
        kept = [e for e in self.entries if not (isinstance(e, dict) and set(keys) & set(e))]
        if not kept or self.source is None:
            return None
        data = {key: value for key, value in self.source.items() if key not in keys}
        if isinstance(matrix := data.get("matrix"), dict):
            data["matrix"] = {key: value for key, value in matrix.items() if key not in keys}
        data["exclude"] = kept
        try:
            fields, dropped = excluded_cells(data, source="file")
        except ConfigError:
            return None
        return ExcludedCells.of(fields, dropped, kept, data)

    def drops(self, params: Mapping[str, Any]) -> bool:
        return _cell_of(params, self.fields) in self.cells


def _cell_of(params: Mapping[str, Any], fields: tuple[str, ...]) -> tuple[Any, ...]:
    """A run's values of ``fields`` as a RunConfig holds them (``GELU`` is ``gelu``, ``none``
    no batch norm), hashable; 0 and 0.0 compare equal as they are. ``kernel_size:last``
    is the last layer's kernel (a pair's ``ks2``; one int is every layer's)."""
    cell = []
    for name in fields:
        key, _, half = name.partition(":")
        value = coerced(key, params.get(key))
        if half and isinstance(value, tuple) and value:
            value = value[0] if half == "first" else value[-1]
        cell.append(_hashable(value))
    return tuple(cell)


def _hashable(value: Any) -> Any:
    if isinstance(value, list | tuple):
        return tuple(_hashable(item) for item in value)
    try:
        hash(value)
    except TypeError:  # a value no RunConfig takes (a mapping): compared as written
        return repr(value)
    return value


@dataclass(frozen=True)
class KeptInclude:
    """A loaded sweep file's ``include`` entries as written, and which of them the file
    merges into cells of its matrix (``core.sweep.include_fits``; the others are runs of
    their own). The form applies them as ``queue`` does (T2's 21 and 30 layers train at
    batch size 32) and saves them back. An entry the file merges that the form's edits
    make fit no cell is left out: ``queue`` would make it a run of its own, one no field
    shows (21 layers at batch size 32 beside layers ``1,3,5``), and none the file made.

    ``unset``: the fields the entries set that the file leaves to their default. While
    the form's field holds the default it is left out of the mapping, as the file leaves
    it: entries may spell the key two ways (``{l: 1, bs: 16}``, ``{l: 2, batch_size: 32}``),
    which queue takes, and any name the form wrote it under was set twice in one of them."""

    entries: tuple[dict[str, Any], ...]
    merged: tuple[bool, ...]
    unset: frozenset[str] = frozenset()

    def without(self, keys: Collection[str]) -> KeptInclude | None:
        """This include less the entries that name any of ``keys`` (a pair's halves the
        form no longer has); None where no entry is left. Whether ``queue`` merges an entry
        is the entry's own (``core.sweep.include_fits``): the others' marks stand."""
        kept = [(entry, merged) for entry, merged in zip(self.entries, self.merged, strict=True)
                if not set(keys) & set(entry)]  # fmt: skip
        if not kept:
            return None
        still_set = {field for entry, _ in kept for key in entry for field in _fields_set(key)}
        return KeptInclude(tuple(entry for entry, _ in kept),
                           tuple(merged for _, merged in kept), self.unset & still_set)  # fmt: skip

    def clash(self, mapping: Mapping[str, Any]) -> SpellingClash | None:
        """An entry that spells a key otherwise than ``mapping`` (the form's) now writes it:
        the form's field moved off its default (kernel_size 5) where one entry sets it as
        ks1/ks2 and another as kernel_size. ``queue`` refuses such a file at each run."""
        return include_spelling_clash({**self._set(mapping), "include": list(self.entries)})

    def clash_reason(self, clash: SpellingClash) -> str:
        """Why the form's field is refused, said at the field: which entry, which key."""
        entry = f"include entry {clash.number} {flow_text(clash.entry)}"
        reason = (f"{entry} sets it as '{clash.key_named}', the form as "
                  f"'{clash.other_named}': one run cannot take both")  # fmt: skip
        if clash.field in self.unset:
            default = default_texts()[clash.field]
            reason += f"; leave {clash.field} at its default ({default}), as the file does"
        return reason

    def _set(self, mapping: Mapping[str, Any]) -> dict[str, Any]:
        """``mapping`` without the fields the file leaves unset while they are at default."""
        return {key: value for key, value in mapping.items() if not self._unset(key, value)}

    def applied(self, mapping: Mapping[str, Any]) -> tuple[dict[str, Any], list[dict[str, Any]]]:
        """``mapping`` with the entries that still apply to it, and those left out."""
        mapping = self._set(mapping)
        every = {**mapping, "include": list(self.entries)}
        try:
            fits = include_fits(every, source="form")
        except ConfigError:  # refused: expanding the mapping says why, at its field
            return every, []
        gone = [not fit and merged for fit, merged in zip(fits, self.merged, strict=True)]
        kept = [entry for entry, out in zip(self.entries, gone, strict=True) if not out]
        left_out = [entry for entry, out in zip(self.entries, gone, strict=True) if out]
        applied = {**mapping, "include": kept} if kept else dict(mapping)
        return applied, left_out

    def _unset(self, key: str, value: Any) -> bool:
        """Whether ``key: value`` of the form's mapping is a field the file left unset,
        still at its default (the same runs with it or without: an entry's value wins)."""
        field = canonical_key(key)
        return field in self.unset and _default_values().get(field, _NONE) == value


_NONE = object()  # no field's default


def _fields_set(key: Any) -> tuple[str, ...]:
    """The fields an include entry's ``key`` sets: ``l`` layers, ``ks1`` ks1 and kernel_size."""
    return (canonical_key(str(key)), *((PAIR_OF[key][0],) if key in PAIR_OF else ()))


@cache
def _default_values() -> dict[str, Any]:
    """Each field's default as ``build_mapping`` writes it (no residual weight: none)."""
    return build_mapping("", parse_all(default_texts())[0])


def with_include(
    mapping: dict[str, Any], included: KeptInclude | None
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """``mapping`` with a loaded file's include (``KeptInclude.applied``), and the entries
    left out (``include_notes`` says them)."""
    if included is None:
        return mapping, []
    return included.applied(mapping)


def include_notes(left_out: Collection[dict[str, Any]]) -> tuple[str, ...]:
    """A note naming each include entry left out (``with_include``)."""
    return tuple(f"include entry {flow_text(entry)} left out: it changes none of the form's "
                 "runs" for entry in left_out)  # fmt: skip


def saved_mapping(
    name: str,
    values: Mapping[str, list[Any]],
    key_names: Mapping[str, str] | None,
    extra: Mapping[str, Any],
    shown: Preview,
    excluded: ExcludedCells | None,
    swept: Collection[str] = (),
    included: KeptInclude | None = None,
) -> dict[str, Any]:
    """The sweep file to save for the form's runs (``shown``, its latest preview): with the
    loaded file's exclude entries as written (``excluded``) where they drop exactly the
    runs the form leaves out, else one entry per run left out, by its matrix values.
    ConfigError when neither makes the runs shown (not written: a file that trains others
    is worse). ``swept``: as ``build_mapping``'s; ``included``: the loaded file's include,
    saved as the preview applies it (``with_include``)."""
    mapping, _ = with_include(build_mapping(name, values, key_names, extra, swept), included)
    mapping, _ = with_attached_targets(mapping, _drop_of(excluded))
    mapping = _named_as_shown(mapping, shown)
    if not shown.excluded or excluded is None:
        return mapping
    for entries in (excluded.entries, _left_out_entries(shown.excluded, mapping)):
        with_exclude = {**mapping, "exclude": list(entries)}
        try:
            runs = expand_sweep(with_exclude, source="form")
        except ConfigError:
            continue
        if [run.config for run in runs] == [run.config for run in shown.runs]:
            return with_exclude
    raise ConfigError("the form's runs cannot be written with the loaded file's exclude")


def _named_as_shown(mapping: dict[str, Any], shown: Preview) -> dict[str, Any]:
    """``mapping`` with the form's one run named as the preview names it (``name_runs``:
    ``ks-5``, by what differs) where ``queue`` would name it otherwise. A file with no
    matrix makes one run named ``run`` (core.sweep names a run by its matrix cell), so
    the form queued ``ks-5`` and ``queue`` of its f2-saved file ``run``. The named keys
    are written as a one-cell matrix (``matrix: {ks: [5]}``) in place of their fixed
    keys; kept only where ``queue`` then makes exactly the run shown, name and target
    and all. A loaded plain file's targets stay: given seed 1, its run is ``seed-1`` with
    the file's figure in the form, and was ``run`` in the saved file."""
    if len(shown.runs) != 1 or any(key in mapping for key in ("matrix", "include")):
        return mapping
    run = shown.runs[0]
    if not run.swept or run.name == "run":
        return mapping
    fields = {PAIR_OF.get(key, (canonical_key(key), -1))[0] for key in run.swept}
    fixed = {key: value for key, value in mapping.items()
             if PAIR_OF.get(key, (canonical_key(key), -1))[0] not in fields}  # fmt: skip
    named = {**fixed, "matrix": {key: [value] for key, value in run.swept.items()}}
    try:
        made = expand_sweep(named, source="form")
    except ConfigError:
        return mapping
    made_as_shown = [(r.name, r.config, r.target) for r in made] == [
        (run.name, run.config, run.target)
    ]
    return named if made_as_shown else mapping


def _left_out_entries(
    dropped: tuple[dict[str, Any], ...], mapping: Mapping[str, Any]
) -> list[dict[str, Any]]:
    """One exclude entry per cell left out, by its matrix values: a seed of ``seeds`` is
    none (the entry would be refused), and a cell is left out whatever its seed there."""
    matrix = mapping.get("matrix") or {}
    entries: list[dict[str, Any]] = []
    for swept in dropped:
        entry = {key: value for key, value in swept.items() if key in matrix}
        if entry not in entries:
            entries.append(entry)
    return entries


@dataclass(frozen=True)
class Preview:
    """What the form makes right now: runs, or the reasons it makes none."""

    runs: tuple[ExpandedRun, ...] = ()
    errors: Mapping[str, str] = field(default_factory=dict)  # field key (or "name") -> reason
    # Runs the fields multiply out to, even when some are invalid; None when that cannot
    # be known (an invalid range: "1..3:0" is no count of runs).
    total: int | None = 0
    memory: tuple[int, ...] = ()  # each run's estimated bytes (computed off the UI thread)
    # What queueing would do with each run against the database now (Repo.plan_enqueue:
    # "new", "again #5 failed", "skip #3 succeeded"); empty when not asked.
    plans: tuple[str, ...] = ()
    notes: tuple[str, ...] = ()  # what the form left out of a loaded file (its targets)
    excluded: tuple[dict[str, Any], ...] = ()  # matrix values of the cells its exclude left out
    # The loaded file's include entries left out (with_include): lost saved over it.
    left_out: tuple[dict[str, Any], ...] = ()

    def __post_init__(self) -> None:
        # Listed as the fields are shown, whichever way they were found: a field that does
        # not parse came after one the model refuses (kernel_size before layers).
        object.__setattr__(self, "errors", in_screen_order(self.errors))

    @property
    def ok(self) -> bool:
        return not self.errors and bool(self.runs)


# The form's fields top to bottom (a pair's halves under it), then its priority and the
# sweep's own problems: the order its errors are listed in.
SCREEN_ORDER = {key: rank for rank, key in enumerate((
    "name", *(key for spec in FIELDS for key in (spec.key, *PAIR_ALIASES.get(spec.key, ()))),
    "priority", "_sweep"))}  # fmt: skip


def in_screen_order(errors: Mapping[str, str]) -> dict[str, str]:
    """``errors`` in ``SCREEN_ORDER`` (any other key last, as found)."""
    return dict(
        sorted(errors.items(), key=lambda item: SCREEN_ORDER.get(item[0], len(SCREEN_ORDER)))
    )


def parse_all(texts: Mapping[str, str]) -> tuple[dict[str, list[Any]], dict[str, str]]:
    """(values per field, reason per bad field), every field read independently."""
    values: dict[str, list[Any]] = {}
    errors: dict[str, str] = {}
    for key, text in texts.items():
        try:
            values[canonical_key(key)] = parse_field(key, text)
        except FieldError as exc:
            errors[exc.key] = exc.reason
    return values, errors


def build_mapping(
    name: str,
    values: Mapping[str, list[Any]],
    key_names: Mapping[str, str] | None = None,
    extra: Mapping[str, Any] | None = None,
    swept: Collection[str] = (),
) -> dict[str, Any]:
    """A sweep mapping (as in a sweep file) from parsed field values.

    ``key_names`` writes a field under another name (``layers`` as ``l``, as a loaded
    file did) so run names stay the logbook's; ``extra`` adds file keys (description,
    targets). Swept keys keep the order of ``values``: first key outermost. A field of
    one value is a fixed key, unless ``swept`` names it (a loaded file's matrix key of
    one value, ``act: [gelu]``): swept, as the file swept it, it stays in the run names
    (``act-gelu_l-1``, not ``l-1``) and the file's targets that name it still match.
    The seed field of a file's ``seeds`` (``key_names``: ``seeds``) is its ``seeds``.
    """
    names = dict(key_names or {})
    mapping: dict[str, Any] = {"name": name.strip()}
    mapping.update(extra or {})
    matrix: dict[str, list[Any]] = {}
    for key, vals in values.items():
        if vals == [None] and SPECS[key].kind == "opt_float":
            continue  # empty residual weight: the model's own default
        plain = [list(v) if isinstance(v, tuple) else v for v in vals]
        if names.get(key) == "seeds":
            # A file's `seeds`, written as such: a run's seed is named last, after what
            # an include adds to its cell (l-2_bs-32_seed-0, where the matrix's seed
            # made l-2_seed-0_bs-32).
            mapping["seeds"] = plain
        elif len(plain) > 1 or key in swept:
            matrix[names.get(key, SWEPT_NAMES.get(key, key))] = plain
        else:
            mapping[names.get(key, key)] = plain[0]
    if matrix:
        mapping["matrix"] = matrix
    return mapping


def fitting_extra(
    extra: Mapping[str, Any] | None,
    values: Mapping[str, list[Any]],
    published_for: Mapping[str, str] | None,
    name: str = "",
) -> tuple[dict[str, Any], tuple[str, ...]]:
    """``extra`` without the loaded file's ``targets`` where none describes the form's runs
    any more, and a note saying so. ``published_for``: the field texts as loaded;
    ``name``: the experiment's, while it is still the loaded file's (the note then says
    how to keep the form's other runs apart from the file's).

    The logbook's figures are for the file's runs: once a field they are not keyed by
    differs from the file (32 channels made 4) none applies. Seeds may change: a
    published figure is a cell's, whatever the seed. Which of the others still name a
    run is the sweep's to say (``with_attached_targets``)."""
    kept = dict(extra or {})
    targets = kept.get("targets")
    if not isinstance(targets, list) or not targets or published_for is None:
        return kept, ()
    # A half (ks1) is a cell key as its own field and as a half of its pair's field.
    cell_keys = {name for entry in targets if isinstance(entry, dict) for k in entry
                 if k not in TARGET_FIELDS
                 for name in (canonical_key(str(k)), _field_of(str(k)))}  # fmt: skip
    loaded, _ = parse_all(published_for)
    changed = next((key for key, vals in values.items() if key not in cell_keys
                    and key != "seed" and vals != loaded.get(key)), None)  # fmt: skip
    if changed is not None:
        del kept["targets"]
        note = (f"targets left out: {changed} is not the loaded file's, and the published "
                f"figures are for its runs{_apart(name, changed, values[changed])}")  # fmt: skip
        return kept, (note,)
    return kept, ()


def with_attached_targets(
    mapping: dict[str, Any], drop: DropRun | None = None
) -> tuple[dict[str, Any], tuple[str, ...]]:
    """``mapping`` with those of its targets entries that name a run it makes, and a note
    on the others: an entry for a cell the form no longer makes (``l: 15`` with layers
    ``1,2,3``) is left out, where the sweep refused it and the form could neither queue
    nor save. Which entries attach is ``core.sweep.targets_attached``'s to say, as queue
    attaches them: a cell only an include makes (``include: [{l: 3}]``) or a key it sets
    (``bs: 32``) is one too. ``drop``: the form's hold on a loaded exclude."""
    targets = mapping.get("targets")
    if not isinstance(targets, list) or not targets:
        return mapping, ()
    entries = [entry for entry in targets if isinstance(entry, dict)]
    try:
        attached = targets_attached({**mapping, "targets": entries}, "form", drop)
    except ConfigError:  # refused before its targets: expanding the mapping says why
        return mapping, ()
    kept = [entry for entry, fits in zip(entries, attached, strict=True) if fits]
    if len(kept) == len(targets):
        return mapping, ()
    fitted = {key: value for key, value in mapping.items() if key != "targets" or kept}
    if kept:
        fitted["targets"] = kept
    return fitted, (f"targets: {len(kept)} of {len(targets)} entries kept; the others are "
                    "for runs the form does not make",)  # fmt: skip


def _field_of(key: str) -> str:
    """The field a target's key is about: ``l`` -> layers, ``ks1`` -> kernel_size."""
    return PAIR_OF[key][0] if key in PAIR_OF else canonical_key(key)


def _apart(name: str, changed: str, values: list[Any]) -> str:
    """How the form's runs, other than the loaded file's but named alike (``l-1``), keep
    apart from its full runs: a name of their own, as ``queue --max-inputs`` gives."""
    if not name.strip():
        return ""
    if changed == "max_inputs" and len(values) == 1:
        other = quick_check_name(name, values[0])
    else:
        other = f"{name.strip()}-{changed}-{','.join(map(str, values))}"
    return (f"; its runs and the form's have the same names: give the experiment a name "
            f"of its own, e.g. {other!r}")  # fmt: skip


def run_count(values: Mapping[str, list[Any]]) -> int:
    total = 1
    for vals in values.values():
        total *= len(vals)
    return total


def preview(
    name: str,
    texts: Mapping[str, str],
    key_names: Mapping[str, str] | None = None,
    extra: Mapping[str, Any] | None = None,
    base: BaseRun | None = None,
    published_for: Mapping[str, str] | None = None,
    published_name: str = "",
    excluded: ExcludedCells | None = None,
    swept: Collection[str] = (),
    included: KeptInclude | None = None,
) -> Preview:
    """Parse every field and expand the sweep; errors name the field they belong to.

    ``base``: the run the form was duplicated from; see ``name_runs``.
    ``published_for``: the fields as a file with targets was loaded (``fitting_extra``),
    ``published_name`` its experiment's name; ``excluded``: the cells a loaded file's
    exclude drops, left out wherever the form makes them; ``swept``: the fields a loaded
    file sweeps (``build_mapping``); ``included``: its include (``with_include``)."""
    values, errors = parse_all(texts)
    if not name.strip():
        errors["name"] = "the experiment needs a name"
    total = _total(values, texts)
    if total is not None and total > MAX_RUNS:
        errors.setdefault("_sweep", f"{total:,} runs; at most {MAX_RUNS:,} from the form")
    if errors:  # and the fields that parsed but the model refuses, all at once
        return Preview(errors={**field_errors(values), **errors}, total=total)
    same_name = name if name.strip() == published_name.strip() else ""
    extra, notes = fitting_extra(extra, values, published_for, same_name)
    dropped: list[dict[str, Any]] = []  # the matrix values of the cells left out

    def drop(params: dict[str, Any], cell: dict[str, Any]) -> bool:
        if excluded is None or not excluded.drops(params):
            return False
        dropped.append(cell)
        return True

    built = build_mapping(name, values, key_names, extra, swept)
    if included is not None and (clash := included.clash(built)):
        # Said at the field, naming the entry: the sweep's refusal named a run, under "sweep".
        field = _shown_field(clash.field, values)
        return Preview(errors={field: included.clash_reason(clash)}, total=total)
    try:
        mapping, unapplied = with_include(built, included)
        notes += include_notes(unapplied)
        if published_for is not None:  # a loaded file's: kept as long as they name a run
            mapping, unattached = with_attached_targets(mapping, _drop_of(excluded))
            notes += unattached
        runs = expand_sweep(mapping, source="form", drop=drop)
    except ConfigError as exc:
        key, reason = blame(str(exc))
        key = _shown_field(key, values)
        # The sweep stops at its first problem; every field wrong on its own is marked
        # at once, not one more after each fix.
        return Preview(errors=field_errors(values) or {key: reason}, total=total)
    if not runs:
        every = {"_sweep": "the loaded file's exclude leaves out every run"}
        return Preview(errors=every, total=total)
    named = name_runs(runs, base, _given_once(values))
    if alike := trained_alike_note(named):
        notes += (alike,)
    if dropped:  # each cell's runs: one per seed of a file's `seeds`
        count = len(dropped) * len(mapping.get("seeds") or [None])
        left_out = f"{count} run{'' if count == 1 else 's'}"
        notes += (f"the loaded file's exclude leaves out {left_out}",)
    memory = tuple(estimate_bytes(run.config, run.param_count) for run in runs)
    return Preview(runs=named, total=total, memory=memory, notes=notes, excluded=tuple(dropped),
                   left_out=tuple(unapplied))  # fmt: skip


def _drop_of(excluded: ExcludedCells | None) -> DropRun | None:
    """``excluded`` as ``expand_sweep``'s drop, without recording the cells it drops."""
    return None if excluded is None else lambda params, _cell: excluded.drops(params)


def _shown_field(key: str, values: Mapping[str, list[Any]]) -> str:
    """The field to mark for an error about ``key``: a pair's first half (``ks1``) where the
    form shows the halves in place of the pair's field (``kernel_size``)."""
    if key in values or key not in PAIR_ALIASES:
        return key
    return next((half for half in PAIR_ALIASES[key] if half in values), "_sweep")


def _total(values: Mapping[str, list[Any]], texts: Mapping[str, str]) -> int | None:
    """The runs the fields multiply out to. A field that does not parse counts as many
    runs as it lists items: "lr 1e-3,3e-4x" read "1 run, not valid yet" where fixing the
    typo makes two. One that holds a range does not count at all (None): "1..3:0"
    counted as one item, and "1 run" was claimed for what no count fits."""
    total = run_count(values)
    for key, text in texts.items():
        if canonical_key(key) not in values:
            items = split_items(text)
            if any(".." in item for item in items):
                return None
            total *= len(items)
    return total


@dataclass(frozen=True)
class BaseRun:
    """The run ``d`` duplicated into the form: its name, config, swept values, target.

    ``alone``: it names the form's runs only while the form makes one run (a loaded file
    of fixed settings, ``LoadedSweep.plain_run``): ``queue`` names a matrix's runs by their
    cells, the file's own config among them (``ks-5``, not ``run``).

    ``varied``: the config keys whose values differ among its experiment's runs (the
    new-sweep screen reads them); None where unknown (each of its swept keys counts as
    one that varies)."""

    name: str
    config: RunConfig
    swept: Mapping[str, Any] = field(default_factory=dict)
    target: Mapping[str, float] | None = None
    alone: bool = False
    varied: frozenset[str] | None = None


# ks1 -> (kernel_size, 0), ks2 -> (kernel_size, 1): a pair's first and last layer value.
PAIR_OF = {key: (canon, i) for canon, pair in PAIR_ALIASES.items() for i, key in enumerate(pair)}


def _given_once(values: Mapping[str, list[Any]]) -> dict[str, Any]:
    """The fields of one value, as the form read them (``100``, not the config's 100.0)."""
    return {key: vals[0] for key, vals in values.items() if len(vals) == 1}


def name_runs(
    runs: list[ExpandedRun], base: BaseRun | None, given: Mapping[str, Any] | None = None
) -> tuple[ExpandedRun, ...]:
    """Names and swept values that say what each run is, not ``run`` for every one.

    A duplicate's runs keep the base run's swept keys (as its file spelled them) with
    their values now, plus the form's own matrix keys and every other key changed from
    the base: a duplicate of ``l-1_ch-8_seed-0`` given 24 channels is
    ``l-1_ch-24_seed-0``; an unchanged one is the base run itself, target and all
    (queueing skips it, or queues it again in place). A new form's single run is named
    by what differs from the defaults (``l-5_ch-16``); a new form's matrix keeps its
    names, as a loaded plain file's does (``BaseRun.alone``).

    A value is named as it was given (``given``: the form's fields of one value; a
    cell's own; the base run's unchanged), not as the config holds it: lr typed ``100``
    is lr-100, as ``queue`` names `lr: 100`, where the config's 100.0 named lr-100.0."""
    if base is not None and base.alone and len(runs) != 1:
        base = None
    if base is None:
        if len(runs) != 1 or runs[0].name != "run":
            return tuple(runs)
        return (_described(runs[0], BaseRun("", RunConfig()), given or {}),)
    return tuple(_described(run, base, given or {}) for run in runs)


def _as_given(current: Any, *given: Any) -> Any:
    """``current`` (a config's value) as the first of ``given`` equal to it was written:
    100 for 100.0."""
    return next((value for value in given if _same_value(value, current)), current)


def _same_value(value: Any, current: Any) -> bool:
    # Only a number may stand for the config's float: True == 1 is no such case.
    numbers = (int, float)
    alike = type(value) is type(current) or {type(value), type(current)} <= set(numbers)
    return alike and value == current


def _described(run: ExpandedRun, base: BaseRun, given: Mapping[str, Any]) -> ExpandedRun:
    now, old = run.config.to_dict(), base.config.to_dict()
    if run.config == base.config:
        target = dict(base.target) if base.target is not None else None
        return replace(run, name=base.name or "run", swept=dict(base.swept), target=target)
    swept: dict[str, Any] = {}
    spelled: dict[str, str] = {}  # config key -> how it is written: "l", or "pair" (ks1/ks2)
    for key, value in [*base.swept.items(), *run.swept.items()]:
        canon, pair = PAIR_OF.get(key, (canonical_key(key), -1))
        if key not in run.swept and _fixed_in(canon, base, now, old):
            continue
        if spelled.setdefault(canon, "pair" if pair >= 0 else key) != (
            "pair" if pair >= 0 else key
        ):
            continue  # already there, spelled another way (l beside layers, ks beside ks1)
        current = now.get(canon, value)
        if pair >= 0 and isinstance(current, list | tuple):
            current = current[0] if pair == 0 else current[-1]
        # The base's own spelling of an unchanged value before the field's text (RWF-1.0
        # stays so, though the field shows "1").
        swept[key] = _as_given(current, run.swept.get(key), value, given.get(canon))
    for key, value in now.items():
        if old.get(key) != value and key not in spelled:
            swept[SWEPT_NAMES.get(key, key)] = _as_given(value, given.get(key))
    # Another seed of the base run's cell: the cell's published figure is its too.
    same_cell = run.config.replace(seed=base.config.seed) == base.config
    target = dict(base.target) if same_cell and base.target is not None else run.target
    return replace(run, swept=swept, name=slug(swept), target=target)


def _fixed_in(canon: str, base: BaseRun, now: dict[str, Any], old: dict[str, Any]) -> bool:
    """Whether the base run's swept key ``canon`` is a fixed setting of its experiment and
    of the form too: a one-run form's run is named by what differs from the defaults
    (``ch-8_max_inputs-640``), which every duplicate of it then named and swept
    (``ch-8_max_inputs-640_lr-0.001``), and results showed as columns of one value. A
    duplicate names what varies, as a hand-written sweep's matrix would."""
    return base.varied is not None and canon not in base.varied and now.get(canon) == old.get(canon)


def field_errors(values: Mapping[str, list[Any]]) -> dict[str, str]:
    """Each field's first value that the model refuses with every other field at its
    default (``activation foo``, ``kernel_size 4`` under padding same)."""
    errors: dict[str, str] = {}
    for key, vals in values.items():
        for value in vals:
            if reason := _half_refused(key, value):
                errors[key] = reason
                break
            try:
                RunConfig.from_dict(_alone(key, value))
            except ConfigError as exc:
                field_key, reason = blame(str(exc))
                errors[field_key if field_key in SPECS and key not in PAIR_OF else key] = reason
                break
    return errors


def _alone(key: str, value: Any) -> dict[str, Any]:
    """One field's value as a RunConfig takes it: a half (``ks1`` 3) as the pair ``[3,3]``,
    not as the int 3 (every layer's kernel): a pair's halves are made odd, so ``ks1`` 4
    is fine under padding same where ``kernel_size`` 4 is not."""
    if key in PAIR_OF:
        return {PAIR_OF[key][0]: [value, value]}
    return {key: list(value) if isinstance(value, tuple) else value}


def _half_refused(key: str, value: Any) -> str | None:
    """A half beyond its pair's limits (ks1 0, ks2 200), said at that half: the sweep's
    refusal names the pair's field and both halves ('kernel_size ... (got [0, 3])')."""
    if key not in PAIR_OF or not isinstance(value, int):
        return None
    least, most = LIMITS[PAIR_OF[key][0]]
    return None if least <= value <= most else f"must be {least} to {most:,} (got {value})"


_KEY = re.compile(r"key '([A-Za-z_\-0-9]+)': (.*)$")


def blame(message: str) -> tuple[str, str]:
    """The field a ConfigError is about and its reason (``_sweep`` when none fits)."""
    match = _KEY.search(message)
    if match and canonical_key(match[1]) in SPECS:
        return canonical_key(match[1]), match[2]
    return "_sweep", message.removeprefix("form: ")
