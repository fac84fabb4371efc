"""Tables and numbers as people read them, built from ``rows`` values (no SQL, no torch).

The results table follows the logbook: one row per succeeded run, the swept
parameters, validation loss, model params, train time in minutes and a meter
bar; sorted by validation loss unless asked otherwise. The CLI prints it as
markdown, CSV or JSON; the TUI shows the same ``Table``.
"""

from __future__ import annotations

import contextlib
import csv
import io
import json
import math
import re
import statistics
import unicodedata
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache, partial
from typing import Any

from core.config import BN_KEYS, coerced
from core.errors import terminal_safe
from core.queue.errors import UsageError
from core.queue.rows import RunRow, WorkerRow
from core.queue.status import RunStatus
from core.queue.text_emoji import is_text_emoji
from core.sweep import ALIASES, PAIR_ALIASES, target_problem, value_text

RUN = "run"
EXPERIMENT = "experiment"
NAME = "name"  # the run's name, and its status: columns of a comparison (core.queue.comparison)
STATUS = "status"
LOSS = "validation loss"
PARAMS = "model params"
MINUTES = "train time (minutes)"
RATE = "inputs/s"
MEMORY = "peak memory (MiB)"
METER = "meter"
SEEDS = "seeds"
STD = "± std"
# From a sweep file's ``targets`` (the logbook's published figures), only where given.
TARGET = "target"
DIFF = "Δ target"
LOGBOOK_MINUTES = "logbook minutes"
# Only where one differs from the model's count. Not "...params": `--sort params` must
# stay unambiguous.
TARGET_PARAMS = "target param count"
# Headers on the results screen: the logbook's column names are long, and with them the
# default columns took 124 cells, so at 120 the logbook minutes and meter scrolled out of
# sight. Exports, ``v`` and the status line keep the full names; ``--columns`` and
# ``--sort`` take either (``resolve_column``), so what the screen shows can be typed.
SCREEN_LABELS = {
    LOSS: "val loss",
    PARAMS: "params",
    MINUTES: "minutes",
    LOGBOOK_MINUTES: "logbook min",
    RATE: "in/s",
    MEMORY: "peak MiB",
    TARGET_PARAMS: "tgt params",
}
# The results screen's shorter headers where its table is wider than the terminal (80
# columns over SSH, a grouped view with targets): what it shows, so typed as well (the
# line under that table says what "lb min" is).
NARROW_SCREEN_LABELS = {
    LOSS: "loss",
    MINUTES: "min",
    LOGBOOK_MINUTES: "lb min",
    TARGET_PARAMS: "tgt par",
    MEMORY: "MiB",
}
FORMATS = ("markdown", "csv", "json")
METER_WIDTH = 20
SEEDS_DONE = re.compile(r"(\d+)/(\d+)")  # the seeds column: done / in all


@dataclass(frozen=True)
class Table:
    """Column names and rows of raw values (None where a run has no value)."""

    columns: tuple[str, ...]
    rows: tuple[tuple[Any, ...], ...]
    swept: tuple[str, ...] = ()  # which columns are swept parameters
    # The run ids behind each row, parallel to ``rows`` (a cell's are its seeds): what a
    # screen opens for a row, whichever columns are shown. Empty when not known.
    runs: tuple[tuple[int, ...], ...] = ()

    def column(self, name: str) -> list[Any]:
        i = self.columns.index(name)
        return [row[i] for row in self.rows]


def results_table(
    runs: Sequence[RunRow],
    columns: Sequence[str] | None = None,
    sort: Sequence[str] | None = None,
) -> Table:
    """The logbook table of ``runs`` (pass succeeded runs).

    ``columns``: names to show in order, or only ``-NAME`` entries to hide columns
    from the default set, or ``ALL_COLUMNS``. ``sort``: names, first = primary key,
    ``-NAME`` descending; default: validation loss ascending. Names may be unique
    substrings (``valid``).
    """
    full = with_targets(_full_table(runs), [run.target for run in runs], after=LOSS)
    ordered = sorted_by(full, sort if sort else [LOSS])
    return _select(ordered, columns)


def _full_table(runs: Sequence[RunRow]) -> Table:
    swept = _swept_columns(runs)
    swept += _telling_columns(runs, swept)
    several = len({run.experiment for run in runs}) > 1
    head = [RUN, *([EXPERIMENT] if several else []), *swept]
    columns = (*head, LOSS, PARAMS, MINUTES, RATE, MEMORY, METER)
    meters = meters_of([run.validation_loss for run in runs])
    rows = []
    for run, meter in zip(runs, meters, strict=True):
        fixed = [run.id, *([run.experiment] if several else [])]
        values = [swept_value(run, key) for key in swept]
        rows.append((*fixed, *values, *run_figures(run), meter))
    return Table(tuple(columns), tuple(rows), tuple(swept), tuple((run.id,) for run in runs))


def _swept_columns(runs: Sequence[RunRow]) -> list[str]:
    """One column per swept parameter, named as the first run to sweep it wrote it: one
    sweep's ``act`` and another's ``activation`` are one column (``swept_value`` reads
    each run's value from its config)."""
    by_parameter: dict[str, str] = {}
    for run in runs:
        for key in run.swept:
            by_parameter.setdefault(ALIASES.get(key, key), key)
    return list(by_parameter.values())


def _telling_columns(runs: Sequence[RunRow], swept: Sequence[str]) -> list[str]:
    """Config keys, beyond the ``swept`` columns, whose values tell apart runs of one
    experiment that those columns show alike: an experiment name queued again with
    other fixed settings (3 layers, then 2, each sweeping ``ks``) made two rows "ks 3"
    whose difference no column showed."""
    shown = config_keys_named(swept)
    alike: dict[tuple[Any, ...], list[dict[str, Any]]] = {}
    for run in runs:
        values = tuple(json.dumps(swept_value(run, key), sort_keys=True) for key in swept)
        alike.setdefault((run.experiment, values), []).append(config_of(run.config_json))
    telling: dict[str, None] = {}
    for configs in alike.values():
        for key in keys_in_order(configs):
            if key not in shown and len(distinct_values(key, configs)) > 1:
                telling[key] = None
    return list(telling)


def config_keys_named(swept: Iterable[str]) -> set[str]:
    """The config keys that swept names (``l``, ``ks1``) stand for: ``layers``, and
    ``kernel_size`` for either half of its pair."""
    named = {ALIASES.get(key, key) for key in swept}
    return named | {key for key, pair in PAIR_ALIASES.items() if named & set(pair)}


def keys_in_order(configs: Sequence[dict[str, Any]]) -> list[str]:
    """Every config key, in the order the configs write them (a run made by an older
    version may lack a newer key: its value reads as none)."""
    return list(dict.fromkeys(key for config in configs for key in config))


def distinct_values(key: str, configs: Sequence[dict[str, Any]]) -> set[str]:
    """The configs' values of ``key``, each once, as JSON: ``[3, 5]`` and ``(3, 5)`` are
    one value; a missing key reads as none (null)."""
    return {json.dumps(config.get(key), sort_keys=True) for config in configs}


def results_by_cell(
    runs: Sequence[RunRow],
    all_runs: Sequence[RunRow] = (),
    columns: Sequence[str] | None = None,
    sort: Sequence[str] | None = None,
) -> Table:
    """One row per cell (one config but for the seed): mean ± std over its seeds.

    ``runs`` are the succeeded runs; ``all_runs`` count how many seeds each cell was
    queued with, so the ``seeds`` column reads "2/3" while one trains. A cancelled seed
    is none of them (none is to come: "2/3" promised one); a failed one is (a retry).
    One seed is a noisy sample (the logbook saw ±0.0003-0.0006 between repeats).
    """
    cells: dict[tuple[Any, ...], list[RunRow]] = {}
    for run in _one_per_seed(runs):
        cells.setdefault(_cell_of(run), []).append(run)
    seeds: dict[tuple[Any, ...], set[str]] = {}  # distinct configs: a --force copy is no seed
    for run in all_runs:
        if run.status != RunStatus.CANCELLED:
            seeds.setdefault(_cell_of(run), set()).add(run.config_hash)
    queued = {cell: len(hashes) for cell, hashes in seeds.items()}
    swept = [key for key in _swept_columns(runs) if key != "seed"]
    # A cell's seeds are its rows' own: its first run's seed tells no cell apart.
    swept += [k for k in _telling_columns([g[0] for g in cells.values()], swept) if k != "seed"]
    several = len({run.experiment for run in runs}) > 1
    head = [*([EXPERIMENT] if several else []), *swept]
    columns_all = (*head, SEEDS, LOSS, STD, PARAMS, MINUTES, RATE, MEMORY, METER)
    rows = [_cell_row(group, swept, several, queued.get(key, 0)) for key, group in cells.items()]
    meters = meters_of([row[len(head) + 1] for row in rows])
    table = Table(
        columns_all, tuple((*r, m) for r, m in zip(rows, meters, strict=True)), tuple(swept),
        tuple(tuple(run.id for run in group) for group in cells.values()),
    )  # fmt: skip
    table = with_targets(table, [group[0].target for group in cells.values()], after=STD)
    return _select(sorted_by(table, sort if sort else [LOSS]), columns)


def _one_per_seed(runs: Sequence[RunRow]) -> list[RunRow]:
    """The latest of the runs of one experiment, config and seed (``queue --force``
    trains a seed again): two of them are one seed twice, not two seeds, and their
    "± std" of 0 said nothing."""
    latest: dict[tuple[str, str], RunRow] = {}
    for run in runs:
        key = (run.experiment, run.config_hash)
        if key not in latest or run.id > latest[key].id:
            latest[key] = run
    return [run for run in runs if latest[(run.experiment, run.config_hash)] is run]


def _cell_of(run: RunRow) -> tuple[Any, ...]:
    """A cell is one config but for the seed: the swept values alone would put a run
    queued from the form (2 layers fixed, activation swept) with a sweep's run of the
    same activation but 3 layers, and average a 5,000- and a 21,000-parameter model."""
    config = {k: v for k, v in config_of(run.config_json).items() if k != "seed"}
    return (run.experiment, json.dumps(config, sort_keys=True))


def _cell_row(group: list[RunRow], swept: list[str], several: bool, queued: int) -> tuple[Any, ...]:
    first = group[0]
    losses = [r.validation_loss for r in group if r.validation_loss is not None]
    mean = sum(losses) / len(losses) if losses else None
    std = statistics.stdev(losses) if len(losses) > 1 else None
    minutes = [r.train_seconds / 60 for r in group if r.train_seconds is not None]
    rates = [r.inputs_per_s for r in group if r.inputs_per_s is not None]
    memory = [r.peak_memory_bytes / 2**20 for r in group if r.peak_memory_bytes is not None]
    return (
        *([first.experiment] if several else []),
        *(swept_value(first, key) for key in swept),
        f"{len(group)}/{max(queued, len(group))}",
        mean,
        std,
        first.param_count,
        sum(minutes) / len(minutes) if minutes else None,
        sum(rates) / len(rates) if rates else None,
        max(memory) if memory else None,
    )


def with_targets(table: Table, targets: Sequence[Mapping[str, float] | None], after: str) -> Table:
    """The published figures beside ours, where any row has one: the target validation
    loss and our difference to it after ``after``, the logbook's minutes after ours, and
    the target parameter count where one differs from the model's.
    ``targets`` are the rows' targets, in row order (a cell's seeds share one)."""
    given = [published(t) for t in targets]
    columns, rows = list(table.columns), [list(row) for row in table.rows]
    if any(t.get("validation_loss") is not None for t in given):
        at = columns.index(after) + 1
        for row, target in zip(rows, given, strict=True):
            goal, loss = target.get("validation_loss"), row[columns.index(LOSS)]
            row[at:at] = [goal, None if goal is None or loss is None else loss - goal]
        columns[at:at] = [TARGET, DIFF]
    params = columns.index(PARAMS)
    if any(t.get("params") not in (None, row[params]) for row, t in zip(rows, given, strict=True)):
        # The logbook's counts are ours (a test checks all 113): a difference is news.
        for row, target in zip(rows, given, strict=True):
            row[params + 1 : params + 1] = [target.get("params")]
        columns[params + 1 : params + 1] = [TARGET_PARAMS]
    if any(t.get("minutes") is not None for t in given):
        at = columns.index(MINUTES) + 1
        for row, target in zip(rows, given, strict=True):
            row[at:at] = [target.get("minutes")]
        columns[at:at] = [LOGBOOK_MINUTES]
    return Table(tuple(columns), tuple(tuple(row) for row in rows), table.swept, table.runs)


def published(target: Mapping[str, float] | None) -> dict[str, float]:
    """A run's target as figures: those a sweep file gave before they were checked
    ("0.2O") are left out, not subtracted from ours."""
    return {k: v for k, v in (target or {}).items() if target_problem(k, v) is None}


def swept_value(run: RunRow, key: str) -> Any:
    """``run``'s value of a swept column: its own swept value, or, where another
    experiment swept that key and this run had it fixed, its config's value (a fixed
    ``channels: 8`` is 8, not "–"; an ``act`` column shows the activation of a sweep that
    wrote ``activation``). None for the ``ks1``-style halves of a per-layer pair."""
    if key in run.swept:
        return _one_spelling(key, run.swept[key])
    return config_of(run.config_json).get(ALIASES.get(key, key))


def _one_spelling(key: str, value: Any) -> Any:
    """A swept value as the table shows and sorts it: batch norm off as None ("–", last
    either way, as the config holds it), however the sweep wrote it (``none``, ``null``,
    ``off``, ``false``, the logbook's ``–``). Read, not stored: runs queued by earlier
    versions keep the spelling their file used."""
    config_key = ALIASES.get(key, key)
    return coerced(config_key, value) if config_key in BN_KEYS else value


def swept_as_config(swept: Mapping[str, Any]) -> dict[str, Any]:
    """Each swept value as the run's config holds it, under the key the sweep wrote
    (``lr: '3e-4'`` 0.0003, ``act: GELU`` gelu, ``bnp-e: off`` None, a per-layer value a
    list), for ``ls --json`` and ``show --json`` beside the values as written. A pair's
    half (``ks1``) is its own number: the config holds the pair."""
    as_held = {key: coerced(ALIASES.get(key, key), value) for key, value in swept.items()}
    return {
        key: list(value) if isinstance(value, tuple) else value for key, value in as_held.items()
    }


@lru_cache(maxsize=1 << 14)
def config_of(config_json: str) -> dict[str, Any]:
    loaded = json.loads(config_json)
    return loaded if isinstance(loaded, dict) else {}


def run_figures(run: RunRow) -> tuple[Any, ...]:
    minutes = None if run.train_seconds is None else run.train_seconds / 60
    memory = None if run.peak_memory_bytes is None else run.peak_memory_bytes / 2**20
    return (run.validation_loss, run.param_count, minutes, run.inputs_per_s, memory)


def meters_of(losses: Sequence[float | None]) -> list[str | None]:
    """The logbook's bar: int((v-min)/(max-min)*20+1) asterisks; none if all are equal."""
    finite = [v for v in losses if v is not None and math.isfinite(v)]
    if len(finite) < 2 or max(finite) == min(finite):
        return [None] * len(losses)
    low, high = min(finite), max(finite)
    return [
        None if v is None or not math.isfinite(v) else "*" * int((v - low) / (high - low) * 20 + 1)
        for v in losses
    ]


def resolve_column(name: str, columns: Sequence[str]) -> str:
    """An exact column name, its header on the results screen (``minutes``, ``in/s``), its
    JSON key (``target_diff``) or a plain word for a column named with a symbol
    (``delta``, ``std``), or the one column containing ``name``."""
    if name in columns:
        return name
    # Before the prefixes: "minutes" is the screen's train time, though it begins a word
    # of "logbook minutes" too.
    if TYPED_NAMES.get(name.lower()) in columns:
        return TYPED_NAMES[name.lower()]
    # A parameter by its other name: `--sort layers` for the column a sweep named `l`.
    same = [c for c in columns if ALIASES.get(c, c) == ALIASES.get(name, name)]
    if len(same) == 1:
        return same[0]
    matches = [c for c in columns if _abbreviates(name, c)]
    if len(matches) == 1:
        return matches[0]
    if matches:  # the few it could be, not every column to search through
        raise UsageError(
            f"'{name}' is ambiguous: it could be {', '.join(matches)} (give more of its name)"
        )
    raise UsageError(f"'{name}' is not a column (columns: {', '.join(columns)})")


def _abbreviates(name: str, column: str) -> bool:
    """``name`` begins ``column`` or one of its words (``loss``, ``time``, ``mem``), not
    just any part of it: ``id`` inside "validation" is no column."""
    short, words = name.lower().strip(), column.lower()
    return bool(short) and (
        words.startswith(short) or any(w.startswith(short) for w in re.split(r"[\W_]+", words))
    )


def sorted_by(table: Table, keys: Sequence[str]) -> Table:
    """``table`` sorted by column names (first = primary, ``-NAME`` descending), stably,
    missing values last."""
    # Rows travel with the run ids behind them.
    pairs = list(zip(table.rows, table.runs or [()] * len(table.rows), strict=True))
    # Stable sorts applied last key first, so the first key listed is the primary one.
    for key in reversed(keys):
        descending = key.startswith("-")
        column = resolve_column(key.lstrip("-"), table.columns)
        if column == METER and LOSS in table.columns:
            # The meter draws the loss in at most 21 steps: rows of one bar length kept
            # their order before, and a descending sort put 0.4399 above 0.4514.
            column = LOSS
        index = table.columns.index(column)
        present = [p for p in pairs if p[0][index] is not None]
        absent = [p for p in pairs if p[0][index] is None]  # missing values always go last
        present.sort(key=partial(_cell_key, index), reverse=descending)
        pairs = present + absent
    runs = tuple(ids for _, ids in pairs) if table.runs else ()
    return Table(table.columns, tuple(row for row, _ in pairs), table.swept, runs)


def _cell_key(index: int, pair: tuple[tuple[Any, ...], tuple[int, ...]]) -> tuple[Any, ...]:
    return _sort_key(pair[0][index])


def _sort_key(value: Any) -> tuple[Any, ...]:
    if isinstance(value, bool):
        return (1, str(value))
    if isinstance(value, int | float):
        return (0, value)
    if isinstance(value, str) and (fraction := SEEDS_DONE.fullmatch(value)):
        return (0, int(fraction[1]), int(fraction[2]))  # "2/3" before "10/10"
    return (1, json.dumps(value) if isinstance(value, list | dict) else str(value))


ALL_COLUMNS = ("*",)  # ``columns=ALL_COLUMNS``: every column (the meter only if it has bars)


def _hidden(name: str, columns: Sequence[str]) -> str | None:
    """The column ``-name`` hides; None for one this table lacks but others may have."""
    try:
        return resolve_column(name, columns)
    except UsageError as error:
        if "ambiguous" in str(error):  # -minutes with both minutes columns: say so
            raise
        with contextlib.suppress(UsageError):
            resolve_column(name, SOMETIMES)
            return None
        raise


def _select(table: Table, columns: Sequence[str] | None) -> Table:
    hidden_by_default = {RATE, MEMORY}
    if not columns or tuple(columns) == ALL_COLUMNS:
        hidden = hidden_by_default if not columns else set()
        chosen = [c for c in table.columns if c not in hidden]
        if all(v is None for v in table.column(METER)):
            chosen.remove(METER)
    elif all(c.startswith("-") for c in columns):
        drop = {_hidden(c[1:], table.columns) for c in columns}
        chosen = [c for c in table.columns if c not in hidden_by_default and c not in drop]
        if not chosen:  # it printed rows of "|  |", blank lines, or [{}, {}]
            raise UsageError("--columns: that hides every column; hide fewer, or name some")
    elif hiding := [c for c in columns if c.startswith("-")]:
        showing = " ".join(c for c in columns if c not in hiding)
        raise UsageError(
            f"--columns: {' '.join(hiding)} hides while {showing} shows: give the columns "
            "to show, or only -COL entries to hide some"
        )
    else:
        # Once each: `--columns loss loss` (or `loss validation`) showed the column twice.
        chosen = list(dict.fromkeys(resolve_column(c, table.columns) for c in columns))
    indexes = [table.columns.index(c) for c in chosen]
    rows = tuple(tuple(row[i] for i in indexes) for row in table.rows)
    swept = tuple(c for c in chosen if c in table.swept)
    return Table(tuple(chosen), rows, swept, table.runs)


# ----- output formats ----------------------------------------------------------------


def render(table: Table, fmt: str) -> str:
    if fmt == "markdown":
        return to_markdown(table)
    if fmt == "csv":
        return to_csv(table)
    if fmt == "json":
        return to_json(table)
    raise UsageError(f"unknown format '{fmt}' (use {', '.join(FORMATS)})")


ZERO_WIDTH_JOINER = "\u200d"
EMOJI_PRESENTATION = "\ufe0f"
SKIN_TONES = range(0x1F3FB, 0x1F400)
# Blocks of wide CJK symbols (radicals ⼀, 〒, enclosed ㈱): "So" and wide as emoji are,
# but text, which a joiner does not join to what follows.
CJK_SYMBOLS = range(0x2E80, 0xA4D0)


def cell_len(text: str) -> int:
    """Terminal cells ``text`` takes: 2 for a wide character (実験, most emoji), 0 for a
    combining mark, else 1; an emoji sequence as one glyph, as a terminal draws it and
    rich (the dashboard) counts it: 👩‍🔬, 🏳️‍🌈 (a zero-width joiner between emoji), ❤️
    and the keycap 1️⃣ (U+FE0F after a character drawn as text or emoji), 👍🏽 (a skin
    tone after an emoji), 🇫🇷 (two letters of a flag, a cell each). Only an emoji joins:
    a joiner after any "So" character (°‍C, ⼀‍x) took the next character's cells away,
    U+FE0F after any character (a️) drew it wide, and a skin tone after 実 added nothing,
    where a terminal draws each of them (rich joins any two characters a joiner stands
    between, and counts a skin tone as no cells). The standard library's tables and
    ``core.queue.text_emoji``: the worker imports this module where rich is not
    installed (the GPU box's bench environment)."""
    cells = last = 0  # last: the cells of the glyph counted last
    glyph = ""  # the character that glyph starts with
    emoji = joined = False  # emoji: that glyph is drawn as one; joined: a joiner follows it
    for c in text:
        if joined and _pictograph(c):  # an emoji after an emoji and a joiner: one glyph
            joined = False
            continue
        joined = False
        if c == ZERO_WIDTH_JOINER:
            joined = emoji  # 実‍x and ‍abc: each character as a terminal draws it
            continue
        if c == EMOJI_PRESENTATION:
            if last == 1 and is_text_emoji(glyph):  # ❤️, ©️, 1️⃣: drawn as an emoji
                cells, last, emoji = cells + 1, 2, True
            continue
        if ord(c) in SKIN_TONES and emoji:
            continue
        if unicodedata.combining(c) or unicodedata.category(c) in ("Mn", "Me"):
            continue
        glyph, last = c, 2 if unicodedata.east_asian_width(c) in "WF" else 1
        emoji = _wide_emoji(c)
        cells += last
    return cells


def _wide_emoji(char: str) -> bool:
    """Whether ``char`` is an emoji drawn wide as it stands (👩, 🔬, ⭐): a wide "So"
    character outside the CJK blocks."""
    wide = unicodedata.east_asian_width(char) == "W" and ord(char) not in CJK_SYMBOLS
    return wide and unicodedata.category(char) == "So"


def _pictograph(char: str) -> bool:
    """Whether ``char`` is an emoji a joiner joins to the one before it: 🔬 of 👩‍🔬, or
    one drawn as text alone (♀ of 🏃‍♀️, ❤ of 👩‍❤️‍👨); not a keycap's digit."""
    return _wide_emoji(char) or (not char.isascii() and is_text_emoji(char))


def pad(text: str, width: int, right: bool = False) -> str:
    """``text`` padded to ``width`` terminal cells, as str.ljust/rjust would, but counting
    a wide character (実験, most emoji) as the two cells it takes on screen."""
    fill = " " * max(0, width - cell_len(text))
    return fill + text if right else text + fill


def to_markdown(table: Table) -> str:
    """A pipe table, numbers right-aligned (what pandas' ``to_markdown`` gave the logbook).
    Text is escaped (``markdown_text``); the meter's bars are the logbook's, as they are."""
    headers = [markdown_text(c) for c in table.columns]
    cells = [
        [_markdown_cell(c, v) for c, v in zip(table.columns, row, strict=True)]
        for row in table.rows
    ]
    widths = [max([cell_len(h), *(cell_len(r[i]) for r in cells)]) for i, h in enumerate(headers)]
    right = [_is_numeric(table.column(c)) for c in table.columns]

    def line(values: Sequence[str]) -> str:
        padded = [pad(v, w, r) for v, w, r in zip(values, widths, right, strict=True)]
        return "| " + " | ".join(padded) + " |"

    rule = ["-" * (w + 1) + ":" if r else "-" * (w + 2) for w, r in zip(widths, right, strict=True)]
    return "\n".join([line(headers), "|" + "|".join(rule) + "|", *(line(r) for r in cells)])


def _markdown_cell(column: str, value: Any) -> str:
    # A bar of asterisks alone in a cell is no emphasis (nothing inside it to stress).
    text = format_cell(column, value)
    return text if column == METER else markdown_text(text)


# What would end a cell (|), escape (a backslash) or start inline formatting in GitHub's
# markdown: emphasis (*), code (`), strikethrough (~), HTML and autolinks (<).
MARKDOWN_SPECIAL = re.compile(r"[\\|*`~<]")
# An underscore opens or closes emphasis only beside a space or punctuation: one between
# two letters or digits (run names such as l-1_ch-4, keys such as bn_position) is text.
LOOSE_UNDERSCORE = re.compile(r"(?<![^\W_])_|_(?![^\W_])")


def markdown_text(text: str) -> str:
    """``text`` as a markdown table cell that reads as written: ``a|b *x*`` gives
    ``a\\|b \\*x\\*``. Brackets are left alone (a per-layer value reads ``[16, 32]``).
    What a terminal acts on (ESC, a carriage return) is written as an escape first: the
    table is printed (``compare``, ``results``) as much as saved."""
    text = terminal_safe(text)
    text = MARKDOWN_SPECIAL.sub(lambda m: "\\" + m[0], text)
    return LOOSE_UNDERSCORE.sub(r"\\_", text)


# CSV's seeds column as two numbers, as JSON's ``seeds_done``/``seeds_total``: a
# spreadsheet reads "2/2" as a date (2 February). The second is every seed of the cell,
# done or to come (running, queued, failed: a retry may bring it), not those queued now:
# named "seeds queued", it read 2 for a cell whose 2 seeds were both done.
CSV_SEEDS = ("seeds done", "seeds total")
# The seeds column's names before, still taken by --columns and --sort (scripts use them).
OLD_SEEDS_NAMES = ("seeds queued", "seeds_queued")


def to_csv(table: Table) -> str:
    """The table as CSV, for a spreadsheet: without the meter, a column of asterisks no
    sheet can sort or plot (as JSON leaves it out), and the seeds as two numbers."""
    _refuse_meter_alone(table, "CSV")
    columns = [c for c in table.columns if c != METER]
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow([name for c in columns for name in (CSV_SEEDS if c == SEEDS else [c])])
    for row in table.rows:
        writer.writerow([cell for c, v in zip(table.columns, row, strict=True) if c != METER
                         for cell in _csv_cells(c, v)])  # fmt: skip
    return out.getvalue().rstrip("\n")


def _refuse_meter_alone(table: Table, kind: str) -> None:
    """CSV and JSON leave the meter out: asked for alone, they would print nothing."""
    if table.columns and set(table.columns) == {METER}:
        raise UsageError(
            f"--columns meter: {kind} leaves the meter out (a picture of the validation "
            "loss); ask for validation_loss, or --format markdown"
        )


def _csv_cells(column: str, value: Any) -> list[Any]:
    if column != SEEDS:
        return ["" if value is None else _plain(value)]
    seeds = _seeds_of(value)
    return list(seeds) if seeds else ["" if value is None else value, ""]


def _seeds_of(value: Any) -> tuple[int, int] | None:
    """The seeds column's "2/3" as numbers: (seeds done, seeds total)."""
    seeds = SEEDS_DONE.fullmatch(str(value))
    return (int(seeds[1]), int(seeds[2])) if seeds else None


# JSON is for scripts: the keys ``ls --json`` uses where both hold a figure
# (``validation_loss``, ``param_count``, ``inputs_per_s``), snake_case elsewhere. Swept
# parameters keep their names (``l``, ``ch``, as in run names and ``ls --json``'s
# ``swept``); the meter, a picture of the loss, is left out.
JSON_KEYS = {
    RUN: "id", EXPERIMENT: "experiment", NAME: "name", STATUS: "status",
    LOSS: "validation_loss", STD: "validation_loss_std",
    PARAMS: "param_count", MINUTES: "train_minutes", RATE: "inputs_per_s",
    MEMORY: "peak_memory_mib", TARGET: "target", DIFF: "target_diff",
    LOGBOOK_MINUTES: "logbook_minutes", TARGET_PARAMS: "target_param_count",
}  # fmt: skip


# What resolve_column also takes for a column (lower case): its header on the results
# screen (wide or narrow), its JSON key, or a plain word for a symbol.
TYPED_NAMES = (
    {label.lower(): column for column, label in SCREEN_LABELS.items()}
    # But "min", which stays ambiguous beside logbook minutes where both are present (a
    # review: `-min` said so, rather than hide the one the person did not mean).
    | {label.lower(): c for c, label in NARROW_SCREEN_LABELS.items() if c != MINUTES}
    | {key: column for column, key in JSON_KEYS.items()}
    | {"delta": DIFF, "std": STD, "seeds_done": SEEDS, "seeds_total": SEEDS}
    | dict.fromkeys((*CSV_SEEDS, *OLD_SEEDS_NAMES), SEEDS)
)
# Columns a table has only where its runs give them: hiding one that is absent is no error,
# so that one command serves experiments with and without targets.
SOMETIMES = (METER, SEEDS, STD, TARGET, DIFF, LOGBOOK_MINUTES, TARGET_PARAMS, RATE, MEMORY)


def to_json(table: Table) -> str:
    _refuse_meter_alone(table, "JSON")  # it would print [{}, {}, ...]
    return json.dumps([_json_row(table, row) for row in table.rows], indent=2)


def _json_row(table: Table, row: tuple[Any, ...]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for column, value in zip(table.columns, row, strict=True):
        if column == METER:
            continue
        seeds = _seeds_of(value) if column == SEEDS else None
        if seeds:  # "2/3" as two numbers: seeds done, seeds total
            out["seeds_done"], out["seeds_total"] = seeds
            continue
        out[column if column in table.swept else JSON_KEYS[column]] = value
    return out


def _plain(value: Any) -> Any:
    return json.dumps(value) if isinstance(value, list | dict) else value


def _is_numeric(values: list[Any]) -> bool:
    present = [v for v in values if v is not None]
    return bool(present) and all(
        isinstance(v, int | float) and not isinstance(v, bool) for v in present
    )


def format_cell(column: str, value: Any) -> str:
    """How a value reads in a table: 0.0512259, 186,787, 2.48, – for none."""
    if value is None:
        return "–"
    if column in (LOSS, STD, TARGET):
        return f"{value:.6g}"
    if column == DIFF:
        return f"{value:+.6f}"
    if column == LOGBOOK_MINUTES:
        return f"{value:.2f}"
    if column in (PARAMS, TARGET_PARAMS):
        return f"{value:,}"
    if column in (MINUTES, MEMORY):
        return f"{value:.2f}" if column == MINUTES else f"{value:,.1f}"
    if column == RATE:
        return f"{value:,.0f}"
    return value_text(value)  # a config value, as run names and `show` write it


# ----- small formatters shared by the CLI and the TUI --------------------------------


def ids_of(noun: str, ids: Sequence[int], most: int | None = None) -> str:
    """``pid 4242``, ``pids 4242, 4243``; ``run 4``, ``runs 4, 5``; with ``most``, a few
    of many (``ids_listed``)."""
    return f"{noun}{'s' if len(ids) > 1 else ''} {ids_listed(ids, most)}"


def ids_listed(ids: Sequence[int], most: int | None = None) -> str:
    """``4, 7, 8``; past one more than ``most``: ``4, 7, 8, 9, 10 and 295 more`` (one
    more is named whole: "and 1 more" saves nothing)."""
    return some_listed([str(i) for i in ids], most)


def some_listed(items: Sequence[str], most: int | None = None) -> str:
    """``items`` joined with commas; past one more than ``most``, the first ``most`` and
    ``and N more`` (``ids_listed``)."""
    if most is None or len(items) <= most + 1:
        return ", ".join(items)
    return f"{', '.join(items[:most])} and {len(items) - most:,} more"


def back_to_queue_said(ids: Sequence[int]) -> str:
    """``run 5 goes back to the queue``, ``runs 5, 6 go back to the queue``: what a stop
    does to a run that has not trained all its inputs."""
    return f"{ids_of('run', ids)} {'goes' if len(ids) == 1 else 'go'} back to the queue"


def ended_said(ended: Mapping[int, RunStatus | None]) -> list[str]:
    """``run 5 succeeded meanwhile``, ``runs 6, 7 were cancelled meanwhile``, ``run 8 was
    deleted meanwhile`` (None: its row is gone, ``rm``): one phrase for each way the runs
    ended."""
    said = []
    # By status, the deleted ones last.
    for status in sorted(set(ended.values()), key=lambda s: (s is None, s.value if s else "")):
        ids = sorted(i for i, s in ended.items() if s == status)
        was = "was" if len(ids) == 1 else "were"
        if status is None:
            how = f"{was} deleted"
        elif status == RunStatus.CANCELLED:  # by another's hand: "run 5 cancelled" misreads
            how = f"{was} cancelled"
        else:
            how = status.value
        said.append(f"{ids_of('run', ids)} {how} meanwhile")
    return said


def cancelling_said(ids: Sequence[int]) -> str:
    """``run 5 ends cancelled (a cancel was asked for)``: what a stop does to a run whose
    cancel its worker has not read yet (``Repo.requeue`` ends it cancelled, not queued)."""
    ends = "ends" if len(ids) == 1 else "end"
    return f"{ids_of('run', ids)} {ends} cancelled (a cancel was asked for)"


def final_pass_said(ids: Sequence[int]) -> str:
    """``run 5 trained all its inputs: its final pass ends first`` (several: ``... their
    final passes end first``): what a stop does to a run in its final pass, which is let
    finish (``core.train``)."""
    its, passes = ("its", "pass ends") if len(ids) == 1 else ("their", "passes end")
    return f"{ids_of('run', ids)} trained all {its} inputs: {its} final {passes} first"


def count_of(n: int, noun: str) -> str:
    """``1 run``, ``3 runs``, ``1,200 finished runs``."""
    return f"{n:,} {noun}" if n == 1 else f"{n:,} {noun}s"


def watching_said(ages: Mapping[int, float], wait_s: float) -> str:
    """Why a cancel pauses (``Repo.request_cancel``'s ``confirming``): the runs whose beat
    reads old here (run id -> its age by this clock), watched up to ``wait_s`` before they
    are cancelled at once. One sentence for all: a cancel of 300 runs of a dead box said
    it 300 times."""
    ids = sorted(ages)
    shown = list(dict.fromkeys(format_age(ages[i]) for i in sorted(ids, key=ages.__getitem__)))
    if len(ids) == 1:
        return (
            f"run {ids[0]}: its last heartbeat reads {shown[0]} old by this machine's clock; "
            f"watching it up to {wait_s:.0f} s for its worker's next one before cancelling "
            "it at once"
        )
    read = shown[0] if len(shown) == 1 else f"{shown[0]} to {shown[-1]}"
    return (
        f"{ids_of('run', ids, 10)}: their last heartbeats read {read} old by this machine's "
        f"clock; watching them up to {wait_s:.0f} s for their workers' next ones before "
        "cancelling them at once"
    )


def format_age(seconds: float | None) -> str:
    """3 s, 4 min, 2.5 h, 3 d (— when unknown)."""
    if seconds is None:
        return "—"
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 90 * 60:
        return f"{seconds / 60:.0f} min"
    if seconds < 36 * 3600:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 86400:.1f} d"


def format_bytes(n: float | None) -> str:
    """Binary units everywhere (CLI, dashboard, form): 1536 -> '1.5 KiB'; None -> '—'."""
    if n is None:
        return "—"
    for unit, size in (("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10)):
        if n >= size:
            return f"{n / size:.1f} {unit}"
    return f"{n:.0f} B"


def claim_rules(worker: WorkerRow) -> str:
    """How a worker claims, where not the default: ``stack 4, largest first, max 5 runs``
    (empty for one run at a time in queue order, or a worker that did not record it)."""
    rules = [f"stack {worker.stack}"] if worker.stack and worker.stack > 1 else []
    rules += ["largest first"] if worker.largest_first else []
    rules += [f"max {worker.max_runs} run{'s' * (worker.max_runs != 1)}"] if worker.max_runs else []
    return ", ".join(rules)
