"""One form field's text -> its values, and back. Pure and torch-free.

Grammar of a field (see ``resconv_tui.sweep_form`` for how fields become a sweep):
a comma list (``3,5,7``), an inclusive integer range (``3..11:2``), brackets for one
per-layer value (``[3,9]``), ``none`` for "no batch norm" or "model default".
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from core.config import (
    ACTIVATIONS,
    DATASETS,
    MODELS,
    PRECISIONS,
    VALIDATION_MODES,
    whole_from_text,
)
from core.errors import written
from core.sweep import ALIASES, PAIR_ALIASES, value_text

MAX_RANGE = 1000


@dataclass(frozen=True)
class FieldSpec:
    """One form field: a RunConfig key and how its text is read."""

    key: str
    kind: str  # int, float, opt_float, choice, bn, layer, padding
    choices: tuple[str, ...] = ()
    hint: str = ""


_LAYER_HINT = "int, list 3,5, range 3..11:2; in brackets: [first,last] or [per,layer]"
# Form order = tab order (the screen documents it); the keys most often swept come first.
FIELDS: tuple[FieldSpec, ...] = (
    FieldSpec("layers", "int", hint="1..128; list 1,2,3 or range 1..11:2"),
    FieldSpec("channels", "layer", hint=_LAYER_HINT),
    FieldSpec("kernel_size", "layer", hint=_LAYER_HINT),
    FieldSpec("padding", "padding", hint="same, an int, or [per,layer]"),
    FieldSpec("activation", "choice", tuple(ACTIVATIONS), "e.g. gelu,relu,mish"),
    FieldSpec("model", "choice", MODELS, "v1 or v2"),
    FieldSpec("residual_weight", "opt_float", hint="empty = model default (v1 0.1, v2 1.0)"),
    FieldSpec("bn_encoder", "bn", hint="0 before conv, 1 after conv, 2 after act, none"),
    FieldSpec("bn_decoder", "bn", hint="0, 1, 2 or none"),
    FieldSpec("image_size", "int", hint="28, 32 or 64"),
    FieldSpec("dataset", "choice", DATASETS, "fmnist or mnist"),
    FieldSpec("batch_size", "int", hint=">= 1"),
    FieldSpec("lr", "float", hint="> 0, e.g. 3e-4 or 1e-4,3e-4"),
    FieldSpec("weight_decay", "float", hint=">= 0"),
    FieldSpec("max_inputs", "int", hint="training images seen"),
    FieldSpec("stride", "int", hint=">= 1"),
    FieldSpec("validation", "choice", VALIDATION_MODES, "fixed or seed-faithful"),
    FieldSpec("precision", "choice", PRECISIONS, "auto, fp32 or bf16"),
    FieldSpec("seed", "int", hint="several seeds: 0..2"),
)
# A [first,last] pair's halves as a sweep file writes them (ks1/ks2, ch1/ch2): fields of
# their own, shown instead of their pair's field while a loaded file writes them, so its
# matrix of halves (T8's ks1 x ks2) stays a matrix of halves, with queue's run names.
# Emptying both halves gives the pair's own field back (the new-sweep screen's
# fold_emptied_halves): the hint says so, as nothing else on the form does.
HALF_FIELDS: tuple[FieldSpec, ...] = tuple(
    FieldSpec(half, "int", hint=f"{where} layer's {pair} (list, range); both empty: one {pair}")
    for pair, halves in PAIR_ALIASES.items()
    for half, where in zip(halves, ("first", "last"), strict=True)
)
SPECS: dict[str, FieldSpec] = {spec.key: spec for spec in (*FIELDS, *HALF_FIELDS)}
_BN_NONE = {"none", "null", "-", "off"}
_RANGE = re.compile(r"^(-?\d+)\s*\.\.\s*(-?\d+)(?:\s*:\s*(-?\d+))?$")


class FieldError(ValueError):
    """The text of one field cannot be read; ``reason`` is shown next to the field."""

    def __init__(self, key: str, reason: str) -> None:
        super().__init__(f"{key}: {reason}")
        self.key = key
        self.reason = reason


# ----- text -> values --------------------------------------------------------


def canonical_key(key: str) -> str:
    """``ks`` -> ``kernel_size``; RunConfig keys pass through."""
    return ALIASES.get(key, key)


def split_items(text: str) -> list[str]:
    """Split on commas outside brackets: ``3,[3,9]`` -> ``['3', '[3,9]']``."""
    items, depth, current = [], 0, ""
    for char in text:
        depth += {"[": 1, "]": -1}.get(char, 0)
        if char == "," and depth == 0:
            items.append(current.strip())
            current = ""
        else:
            current += char
    items.append(current.strip())
    return items


def parse_field(key: str, text: str) -> list[Any]:
    """The values one field's text stands for; raise FieldError with a short reason."""
    spec = SPECS[canonical_key(key)]
    if not text.strip():
        if spec.kind == "opt_float":
            return [None]
        raise FieldError(spec.key, "empty: give a value")
    values: list[Any] = []
    for item in split_items(text):
        if not item:
            raise FieldError(spec.key, f"empty item in {written(text.strip())}")
        values.extend(_parse_item(spec, item))
    _check_repeats(spec.key, values)
    return values


def _check_repeats(key: str, values: list[Any]) -> None:
    # The count first: the repeat check compares every pair (values may be lists, which
    # no set holds), and 99,000 loaded seeds took it 69 s on the UI thread.
    if len(values) > MAX_RANGE:
        raise FieldError(key, f"{len(values)} values; at most {MAX_RANGE}")
    seen: list[Any] = []
    for value in values:
        if value in seen:
            raise FieldError(key, f"{format_value(value)} is listed twice")
        seen.append(value)


def _parse_item(spec: FieldSpec, item: str) -> list[Any]:
    if ".." in item:
        if spec.kind not in ("int", "layer", "padding", "bn"):
            raise FieldError(
                spec.key, f"ranges need integers, {spec.key} has none ({written(item)})"
            )
        return list(parse_range(spec.key, item))
    if item.startswith("[") or item.endswith("]"):
        return [_parse_bracket(spec, item)]
    return [_parse_scalar(spec, item)]


def parse_range(key: str, item: str) -> range:
    """``3..11:2`` -> range(3, 12, 2): inclusive end; descending when start > end."""
    match = _RANGE.match(item)
    if not match:
        raise FieldError(key, f"bad range {written(item)}: write start..end or start..end:step")
    start, end = int(match[1]), int(match[2])
    step = int(match[3]) if match[3] is not None else 1
    if step <= 0:
        raise FieldError(key, f"bad range {written(item)}: the step must be >= 1")
    if start > end:
        step = -step
    # Counted, not len(): len() of a range past 2**63 values raised OverflowError (a
    # traceback out of the form's preview for "1..99999999999999999999").
    count = (end - start) // step + 1
    if count > MAX_RANGE:
        said = str(count) if count < 10**12 else "far too many"
        raise FieldError(key, f"range {written(item)} has {said} values; at most {MAX_RANGE}")
    return range(start, end + (1 if step > 0 else -1), step)


def _parse_bracket(spec: FieldSpec, item: str) -> list[int]:
    if spec.kind not in ("layer", "padding"):
        raise FieldError(spec.key, f"brackets are only for per-layer keys ({written(item)})")
    one_pair = item.count("[") == item.count("]") == 1 and item.index("[") < item.index("]")
    if one_pair and not (item.startswith("[") and item.endswith("]")):  # "[3,5]x" balances
        hint = "write [first,last] or [per,layer]"  # as the field's hint line says
        raise FieldError(spec.key, f"text outside the brackets in {written(item)}: {hint}")
    if not (item.startswith("[") and item.endswith("]")) or len(item) < 3:
        raise FieldError(spec.key, f"unbalanced brackets in {written(item)}")
    return [_parse_int(spec.key, part.strip()) for part in item[1:-1].split(",")]


def _parse_int(key: str, text: str) -> int:
    number = whole_from_text(text)  # 1.8e5 too, as a sweep file may write it
    if number is None:
        raise FieldError(key, f"{written(text)} is not an integer")
    return number


# A whole number written without a point or exponent (`100`), which a sweep file's
# YAML reads as an int: kept one, so the form names its run lr-100 as `queue` of the
# same file does (float() made it lr-100.0). The config hash is the same either way.
_WHOLE_AS_YAML_READS = re.compile(r"[-+]?[0-9][0-9_]*")
# Longer ones stay floats (inf, refused as such): an int beyond a float's range made
# the config's float() raise OverflowError, a traceback out of the preview.
_WHOLE_DIGITS_MOST = 300


def _parse_float(key: str, text: str) -> float | int:
    if _WHOLE_AS_YAML_READS.fullmatch(text) and len(text) <= _WHOLE_DIGITS_MOST:
        return int(text.replace("_", ""))
    try:
        return float(text)
    except ValueError:
        raise FieldError(key, f"{written(text)} is not a number") from None


def _parse_scalar(spec: FieldSpec, item: str) -> Any:
    low = item.lower()
    if spec.kind == "choice":
        if low not in spec.choices:
            known = ", ".join(ACTIVATIONS.values() if spec.key == "activation" else spec.choices)
            raise FieldError(spec.key, f"unknown {spec.key} {written(item)}; known: {known}")
        return low
    if spec.kind == "bn" and low in _BN_NONE:
        return None
    if spec.kind == "padding" and low == "same":
        return "same"
    if spec.kind in ("float", "opt_float"):
        if spec.kind == "opt_float" and low in _BN_NONE:
            return None
        return _parse_float(spec.key, item)
    return _parse_int(spec.key, item)


# ----- values -> text --------------------------------------------------------


def format_value(value: Any) -> str:
    """One value as the form shows it (and parses it back)."""
    if value is None:
        return "none"
    if isinstance(value, bool):  # a loaded file's `act: yes`, as YAML writes it: not "True"
        return written(value)
    if isinstance(value, list | tuple):
        return "[" + ",".join(str(v) for v in value) + "]"
    if isinstance(value, float):
        # As run names and `show` write it (1e12, where "g" wrote 1e+12); a whole float
        # keeps its point ("1.0", not "1", which reads back as an int): the field then
        # names its runs RWF-1.0 as the file or run it came from did.
        return value_text(value)
    return str(value)


def format_values(values: Iterable[Any]) -> str:
    return ",".join(format_value(v) for v in values)
