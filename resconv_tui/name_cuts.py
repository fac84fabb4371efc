"""Run names cut to a column's width so that rows stay told apart: the dashboard's runs
table when narrow, and ``ls`` on a narrow terminal."""

from __future__ import annotations

import re
from bisect import bisect_left
from collections import Counter, defaultdict
from collections.abc import Callable, Mapping, Sequence
from itertools import accumulate

from rich.cells import cell_len as rich_cell_len

from core.sweep import slug_parts


def name_parts(name: str, swept: Mapping[str, object]) -> tuple[str, ...]:
    """A sweep run's name's key-value parts; a name given otherwise is one part. A row
    queued before names wrote booleans as a sweep file does keeps its own spelling
    (``bnp-e-False``, now ``bnp-e-false``), cut into the same parts."""
    made = tuple(slug_parts(swept))
    if "_".join(made) == name:
        return made
    if _respelled("_".join(made), name):
        # Where each part starts, past the '_' before it (and one past the last part).
        starts = accumulate((len(part) + 1 for part in made), initial=0)
        return tuple(name[at : at + len(part)] for part, at in zip(made, starts, strict=False))
    return (name,)


def _respelled(made: str, stored: str) -> bool:
    """Whether ``stored`` is ``made`` but for capitals (an older version's True/False)."""
    return len(made) == len(stored) and made.lower() == stored.lower()


def cut_names(
    parts: dict[int, tuple[str, ...]],
    names: dict[int, str],
    width: int,
    cell_len: Callable[[str], int] = rich_cell_len,
) -> dict[int, str]:
    """The names longer than ``width``, cut so that rows stay told apart where one way
    does it: by their most shared parts (``cut_name``), else keeping their ends, else by
    their parts' values alone (``values_kept``), else keeping their starts. (``act-gelu_seed-0``
    beside ``act-relu_seed-0`` both lost ``act-...`` to "…seed-0"; kept from the end they
    read "…t-gelu_seed-0", "…t-relu_seed-0". Eight runs of channels 16/32, kernel_size
    3/5 and lr 0.001/0.003 in 16 cells: each part is shared by four, and kept from the end
    ``channels-16_kernel_size-3_lr-0.001`` and its channels-32 twin both read
    "…size-3_lr-0.001"; by values, "…16_3_0.001" and "…32_3_0.001".)
    Where no one way does, each name takes the first way that tells it apart, and the
    cut that tells the most rows apart is shown (the first way's alone made three seeds
    of two cells read "act-tanh…" at 10 cells). A row is told apart where its cut reads
    as no other row's name (``_Readings``): "…ch-16" of ``lr-0.00125_ch-16`` beside
    ``lr-0.003_ch-16`` shown whole was a row of its own, but showed no lr at all.
    ``cell_len``: how a name's cells are counted where it is shown: rich's in the
    dashboard, which draws through rich; ``ls`` pads its plain rows with
    ``core.queue.views.cell_len``, and a name counted by rich's (a joiner joins any two
    characters there) came out wider than the column it was cut for."""
    long = [run_id for run_id, name in names.items() if cell_len(name) > width]
    if not long:
        return {}
    shared = Counter(part for each in parts.values() for part in set(each))
    values = values_kept(parts)
    keyed = _values_keyed(parts, shared, width, cell_len)
    ways = (
        lambda run_id: cut_name(parts[run_id], shared, width, cell_len),
        lambda run_id: _keep_end(names[run_id], width, parts[run_id], cell_len),
        lambda run_id: keep_start(keyed[run_id], width, cell_len),
        lambda run_id: keep_start(values[run_id], width, cell_len),
        lambda run_id: keep_start(names[run_id], width, cell_len),
    )
    cut_ids = set(long)  # (a list's `in` took 1 s of 10,000 names)
    kept = {i: n for i, n in names.items() if i not in cut_ids}
    readings = _Readings(names, values)

    def told_apart(cut: dict[int, str]) -> tuple[int, int]:
        """The rows told apart, then the rows shown differently (at 8 cells none is
        told apart, and "…ch-16", "…ch-32" still say more than "lr-…" each)."""
        alone = readings.alone(cut, kept)
        return len(kept) + sum(map(alone, cut)), len({*cut.values(), *kept.values()})

    cuts = []
    for way in ways:
        cut = {run_id: way(run_id) for run_id in long}
        if told_apart(cut)[0] == len(names):
            return cut
        cuts.append(cut)
    cuts.append(_mixed(cuts, kept, readings))
    return max(cuts, key=told_apart)  # the first of the best


class _Readings:
    """The names a cut may be read as. A cut kept from a start (``lr-…``, ``…16_…`` of
    the values) reads as every name, or values (``values_kept``), with that start; one
    kept from an end (``…ch-16``) as every one with that end; a cut with a gap inside
    (``l-1…lr-0.001``) as itself only. Sorted, so that each look is a bisection: the
    dashboard cuts the names of 10,000 runs."""

    def __init__(self, names: Mapping[int, str], values: Mapping[int, str]) -> None:
        self.names = names
        self.owners: dict[str, set[str]] = defaultdict(set)  # a text -> the names it is of
        for run_id, name in names.items():
            self.owners[name].add(name)
            self.owners[values[run_id]].add(name)
        self.starts = sorted(self.owners)
        self.ends = sorted(text[::-1] for text in self.owners)

    def alone(self, cut: Mapping[int, str], kept: Mapping[int, str]) -> Callable[[int], bool]:
        """Whether a row of ``cut`` shows what no row of another name shows, and reads
        as no other name (the rows of ``kept`` show their names whole)."""
        showing: dict[str, set[str]] = defaultdict(set)
        for run_id, shown in [*cut.items(), *kept.items()]:
            showing[shown].add(self.names[run_id])
        return lambda run_id: (
            len(showing[cut[run_id]]) == 1 and not self.another(cut[run_id], self.names[run_id])
        )

    def another(self, shown: str, name: str) -> bool:
        """Whether ``shown`` reads as a name other than ``name``."""
        if shown.endswith("…") and "…" not in shown[1:-1]:
            return self._past(self.starts, shown[:-1], name, lambda text: text)
        if shown.startswith("…") and "…" not in shown[1:]:
            return self._past(self.ends, shown[:0:-1], name, lambda text: text[::-1])
        return False

    def _past(self, texts: list[str], start: str, name: str, text_of: Callable[[str], str]) -> bool:
        """Whether a text of ``texts`` that starts with ``start`` is of another name."""
        for at in range(bisect_left(texts, start), len(texts)):
            if not texts[at].startswith(start):
                return False
            if self.owners[text_of(texts[at])] != {name}:
                return True
        return False


def values_kept(parts: dict[int, tuple[str, ...]]) -> dict[int, str]:
    """Each name as "…" and its parts' values joined by '_' (``_value_parts``):
    ``{1: ("l-1", "act-gelu"), 2: ("l-2", "act-gelu")}`` reads "…1_gelu", "…2_gelu"."""
    return {
        run_id: "…" + "_".join(kept) if len(parts[run_id]) > 1 else kept[0]
        for run_id, kept in _value_parts(parts).items()
    }


def _values_keyed(
    parts: dict[int, tuple[str, ...]],
    shared: Counter[str],
    width: int,
    cell_len: Callable[[str], int],
) -> dict[int, str]:
    """``values_kept``, with the keys its parts left out given back where ``width``
    leaves room, the part fewest names share first (among equals the later): at 12
    cells ``act-gelu_seed-0`` beside its seeds and relu's reads "…gelu_seed-0", where
    "…gelu_0" left the reader to guess what 0 was."""
    keyed = {}
    for run_id, kept in _value_parts(parts).items():
        each = parts[run_id]
        if len(each) < 2:
            keyed[run_id] = kept[0]
            continue
        for i in sorted(range(len(each)), key=lambda i: (shared[each[i]], -i)):
            with_key = [*kept[:i], each[i], *kept[i + 1 :]]
            if _numbers_keyed(with_key[:i], each) and cell_len("…" + "_".join(with_key)) <= width:
                kept = with_key
        keyed[run_id] = "…" + "_".join(kept)
    return keyed


def _numbers_keyed(shown: Sequence[str], parts: Sequence[str]) -> bool:
    """Whether each of the ``shown`` parts before a key given back that lost its own key
    is a word (``gelu`` says what it is): a number without its key before a keyed part,
    "…0.1_kernel_size-3", reads as a name's end cut at lr 0.1 (or inside lr-10.1)."""
    return all(
        text == part or not _is_number(text) for text, part in zip(shown, parts, strict=False)
    )


def _value_parts(parts: dict[int, tuple[str, ...]]) -> dict[int, list[str]]:
    """Each name's parts, a part's key left out where other names start their part at
    its place with that key too: up to the part's first '-' (``lr-`` of ``lr-1e-05``; a
    value may hold a '-' of its own, a key only seldom: ``bnp-e-1`` reads "e-1", still
    told apart). A part no other name has so at its
    place, and a name of one part, are kept whole (no key known to leave out). Counted
    key by key, not for the place as a whole: the dashboard lists every experiment's
    runs, and where one swept RWF and another act, each kept every key, and in 11
    cells 21 runs of three sweeps read as 9 ("RWF--0.5…" for three)."""
    starts: Counter[tuple[int, str]] = Counter()
    for each in parts.values():
        if len(each) > 1:
            starts.update((place, _key(part)) for place, part in enumerate(each))
    made = {}
    for run_id, each in parts.items():
        if len(each) < 2:
            made[run_id] = [each[0] if each else ""]
            continue
        made[run_id] = [
            part.removeprefix(_key(part)) if starts[place, _key(part)] > 1 else part
            for place, part in enumerate(each)
        ]
    return made


def _key(part: str) -> str:
    """A part's key and its '-' (``lr-`` of ``lr-1e-05``); "" where it has none."""
    return part[: part.find("-") + 1]


def _mixed(
    cuts: list[dict[int, str]], kept: Mapping[int, str], readings: _Readings
) -> dict[int, str]:
    """Each name cut the first of ``cuts``' ways that tells it apart in it."""
    alone = [readings.alone(cut, kept) for cut in cuts]
    mixed = {}
    for run_id in cuts[0]:
        apart = (cut[run_id] for cut, told in zip(cuts, alone, strict=True) if told(run_id))
        mixed[run_id] = next(apart, cuts[0][run_id])
    return mixed


def _keep_end(name: str, width: int, parts: Sequence[str], cell_len: Callable[[str], int]) -> str:
    """``name``'s end after "…" in at most ``width`` cells, the end starting where it reads
    as it is in the name (``_readable_from``): at 65 columns ``lr-0.1_kernel_size-3``
    read "…-0.1_kernel_size-3", lr -0.1, and at 63 "….1_kernel_size-3", lr .1."""
    start = 0
    while cell_len(name[start:]) > width - 1:
        start += 1
    return f"…{name[_readable_from(name, start, parts) :]}"


NUMBER_CHARS = frozenset("0123456789.,")  # a list's values are joined by ',' (ks-3,5)


def _readable_from(name: str, start: int, parts: Sequence[str]) -> int:
    """The first place from ``start`` on where ``name``'s end reads as it does in the
    name. In a name of key-value ``parts`` an end that would start at a key's '-' (a
    negative value), at its value's first character (a value without its key) or
    inside a number starts at the next part ("…kernel_size-3"); one inside a word value
    stays ("…nh_seed-1" of act-tanh). In a name given otherwise, where no key is known,
    the end starts past a '-' or '.' and past the rest of a number it cuts into."""
    if len(parts) > 1 and "_".join(parts) == name:
        at = 0
        for part in parts:
            dash = at + part.find("-") if "-" in part else at + len(part)
            end = at + len(part)
            value = name[dash + 1 : end]
            numeric = bool(value) and _is_number(value)
            if dash <= start < end and (start <= dash + 1 or numeric):
                return min(end + 1, len(name))  # past the '_' to the next part
            at = end + 1
        return start
    while start < len(name) and (name[start] in "-." or _inside_number(name, start)):
        start += 1
    return start


def _is_number(value: str) -> bool:
    """Whether a part's value is a number or a list of them (0.1, 1e-05, -2, 3,5)."""
    for piece in value.split(","):
        try:
            float(piece)
        except ValueError:
            return False
    return True


def _inside_number(name: str, at: int) -> bool:
    """Whether ``name[at]`` continues a number begun before it (the "1" of 0.1, the
    "05" of 1e-05)."""
    if at == 0 or name[at] not in NUMBER_CHARS:
        return False
    before = name[at - 1]
    exponent = before in "-+" and name[at - 2 : at - 1] in ("e", "E") and at >= 3
    return before in NUMBER_CHARS or (exponent and name[at - 3] in NUMBER_CHARS)


def keep_start(name: str, width: int, cell_len: Callable[[str], int] = rich_cell_len) -> str:
    """``name``'s start and "…" in at most ``width`` cells (``name`` whole if it fits),
    never ending inside a number: a number that does not fit goes whole (``lr-…``), as
    ``lr-0.1…`` of ``lr-0.125`` read as lr 0.1 and ``…16_0.001…`` of ``…16_0.00125`` as
    the other lr of its sweep. Not rich's truncate: where a wide character does not fit
    it pads with a space ("実験 …"), which ``ls`` split as two words."""
    if cell_len(name) <= width:
        return name
    end = len(name)
    while end and cell_len(name[:end]) > width - 1:
        end -= 1
    start = name[: _number_start(name, end)]
    return start if start.endswith("…") else f"{start}…"  # "…0.125_gelu": "…", not "……"


# A number as names write one: digits, a decimal point, a list's ',' (ks-3,5) and an
# exponent (1e-05, 1.5e6).
NUMBER = re.compile(r"\d[\d.,]*(?:[eE][-+]?\d+)?")


def _number_start(name: str, end: int) -> int:
    """``end``, or where the number starts that ``end`` cuts into (``lr-0.125`` cut at 6:
    3; ``lr-1e-05`` cut at 4, before its exponent: 3)."""
    number = _number_cut(name, end)
    return end if number is None else number.start()


def _number_cut(text: str, at: int) -> re.Match[str] | None:
    """The number of ``text`` that a cut at ``at`` falls inside, if one does."""
    return next((n for n in NUMBER.finditer(text) if n.start() < at < n.end()), None)


def keep_ends(text: str, width: int) -> str:
    """``text`` in at most ``width`` cells: its start and its end around "…" (``text``
    whole if it fits; counted by rich, which draws the runs screen's line). Its end is
    what tells ``t4-...-inputs-256`` from ``...-inputs-1000``. Neither cuts into a
    number: ``t1-layers-32-inputs-1000`` read "t1-layers-3…inputs-1000" (layers 3) in 23
    cells, and "t1…00" in 5."""
    if rich_cell_len(text) <= width:
        return text
    tail = _readable_tail(text, width)
    head_room = width - 1 - rich_cell_len(tail)
    end = 0
    while end < len(text) and rich_cell_len(text[: end + 1]) <= head_room:
        end += 1
    return f"{text[: _number_start(text, end)]}…{tail}"


def _readable_tail(text: str, width: int) -> str:
    """``text``'s end for ``keep_ends``: about half of ``width``, a number it would start
    inside whole where a cell of the start stays beside it, else left out, and no sign
    before a number ("…-1000" reads as minus 1000)."""
    room = width - 1 - (width - 1) // 2
    start = len(text)
    while start and rich_cell_len(text[start - 1 :]) <= room:
        start -= 1
    if (number := _number_cut(text, start)) is not None:
        whole = rich_cell_len(text[number.start() :]) <= width - 2
        start = number.start() if whole else number.end()
    if start < len(text) and text[start] in "-+" and NUMBER.match(text, start + 1):
        start += 1
    return text[start:]


def cut_name(
    parts: Sequence[str],
    shared: Counter[str],
    width: int,
    cell_len: Callable[[str], int] = rich_cell_len,
) -> str:
    """``parts`` joined by '_' in at most ``width`` cells: the parts most names share
    go first (each run of them left out reads "…"), so that what tells runs apart
    stays: ``act-gelu_seed-2_max_inputs-640`` beside its seeds reads ``…seed-2…``, where
    a plain cut made three rows of ``act-gelu_see…``. Still too long: cut at the end."""
    kept = [True] * len(parts)
    # The most shared first; among equals, the later first (sweeps put the main keys first).
    for i in sorted(range(len(parts)), key=lambda i: (-shared[parts[i]], -i)):
        if cell_len(_joined(parts, kept)) <= width or sum(kept) == 1:
            break
        kept[i] = False
    return keep_start(_joined(parts, kept), width, cell_len)


def _joined(parts: Sequence[str], kept: Sequence[bool]) -> str:
    text, gap = "", False
    for part, keep in zip(parts, kept, strict=True):
        if not keep:
            text += "" if gap else "…"
            gap = True
            continue
        text += part if gap or not text else f"_{part}"
        gap = False
    return text
