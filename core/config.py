"""RunConfig: every parameter of one training run, validated, with a stable hash.

Torch-free on purpose: the TUI, the queue and ``queue --dry-run`` build and
check configs without importing the GPU stack.

Per-layer values (channels, kernel sizes, paddings) may be given three ways:
  * one int            -> the same value in every layer
  * a [first, last] pair (when layers != 2) -> interpolated with the logbook's
    truncating formulas (seed-spec §2.4 for kernels, §2.5 for channels)
  * a full list with one value per layer
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
from collections.abc import Collection
from dataclasses import dataclass
from typing import Any

from core.errors import YAML_TRUTH_WORDS, ConfigError, written

# The 21 torch.nn activations of the logbook's T5, by lower-case key.
ACTIVATIONS: dict[str, str] = {
    name.lower(): name
    for name in (
        "Hardshrink", "Hardsigmoid", "Hardtanh", "Hardswish", "LeakyReLU", "LogSigmoid",
        "PReLU", "ReLU", "ReLU6", "RReLU", "SELU", "CELU", "GELU", "Sigmoid", "SiLU",
        "Mish", "Softplus", "Softshrink", "Softsign", "Tanh", "Tanhshrink",
    )
}  # fmt: skip

DATASETS = ("fmnist", "mnist")
IMAGE_SIZES = (28, 32, 64)
MODELS = ("v1", "v2")
VALIDATION_MODES = ("fixed", "seed-faithful")
PRECISIONS = ("auto", "fp32", "bf16")
BN_POSITIONS = (0, 1, 2)
# The residual weight each model variant used when the logbook did not set it.
DEFAULT_RESIDUAL_WEIGHT = {"v1": 0.1, "v2": 1.0}
MAX_LAYERS = 128

# The largest whole number read as a count: a float holds every whole number up to
# 2**53 exactly (``1e20`` is not one), and text written out in full keeps the same limit.
MAX_WHOLE = 2**53
# The queue stores seeds, inputs and parameter counts in PostgreSQL INTEGER columns
# (32-bit) and SQLite's (64-bit): a larger value failed the queueing with a database
# error or a traceback. Torch seeds its generators with seed * 16 + stream (at most
# 2**64 - 1), far above MAX_SEED.
INT32_MAX = 2**31 - 1
MAX_SEED = INT32_MAX
MAX_PARAMS = INT32_MAX  # 8 GiB of fp32 weights; the logbook's largest model has 3 million
# 10**9 inputs is 16,700 epochs of Fashion-MNIST; a run's inputs done (up to a batch past
# it) stay inside the 32-bit column.
MAX_INPUTS = 10**9
# The most each whole-number run parameter may be in a new sweep (least, most), checked
# before a run is built. Far beyond any real use, they keep the parameter count and the
# torch layers within what can be stored and built: the largest image is 64 pixels, so a
# kernel of 2 x 64 - 1 already sees all of it from every pixel; padding beyond half of
# that only adds zeros; a stride beyond 64 leaves a one-pixel map. The logbook goes up
# to 128 channels.
LIMITS: dict[str, tuple[int, int]] = {
    "channels": (1, 4096),
    "kernel_size": (1, 127),
    "padding": (0, 63),
    "stride": (1, 64),
    "batch_size": (1, MAX_INPUTS),
    "max_inputs": (1, MAX_INPUTS),
    "seed": (0, MAX_SEED),
}

# Activations a stack (``core.stack``: K seeds as one model) cannot train: their runs
# train alone. Here, not in core.stack, so the queue's forecast knows it without torch.
UNSTACKABLE_ACTIVATIONS = {
    "prelu": "PReLU has one weight for all channels",
    "rrelu": "RReLU draws random slopes",
}

PerLayer = int | tuple[int, ...]


@dataclass(frozen=True)
class RunConfig:
    """One run. Defaults reproduce the logbook's 11-layer 28x28 V2 baseline."""

    dataset: str = "fmnist"
    image_size: int = 28
    model: str = "v2"
    layers: int = 11
    channels: PerLayer = 32
    kernel_size: PerLayer = 3
    padding: str | PerLayer = "same"
    stride: int = 1
    activation: str = "gelu"
    bn_encoder: int | None = 0
    bn_decoder: int | None = 0
    residual_weight: float | None = None  # None -> the model variant's default
    batch_size: int = 64
    lr: float = 3e-4
    weight_decay: float = 0.01
    max_inputs: int = 180_000
    seed: int = 0
    validation: str = "fixed"
    precision: str = "auto"

    def __post_init__(self) -> None:
        if self.residual_weight is None:
            object.__setattr__(self, "residual_weight", DEFAULT_RESIDUAL_WEIGHT.get(self.model))
        _validate(self)

    # ----- per-layer views ---------------------------------------------------

    def channel_list(self) -> list[int]:
        """Output channels of encoder layers 1..L (the decoder mirrors them)."""
        return _per_layer(self.channels, self.layers, _interpolate_channels)

    def kernel_list(self) -> list[int]:
        """Kernel size of encoder layers 1..L (the decoder uses them reversed)."""
        return _per_layer(self.kernel_size, self.layers, _interpolate_kernels)

    def padding_list(self) -> list[int]:
        """Padding of encoder layers 1..L; ``same`` means kernel // 2."""
        if self.padding == "same":
            return [k // 2 for k in self.kernel_list()]
        assert not isinstance(self.padding, str)
        if isinstance(self.padding, int):
            return [self.padding] * self.layers
        if len(self.padding) == self.layers:
            return list(self.padding)
        # Not _per_layer's message, which offers a [first, last] pair: padding takes none
        # (the logbook interpolates only kernels and channels). No "padding: " of its
        # own: every caller says "key 'padding': " before it.
        got = written(list(self.padding))
        raise ConfigError(f"give one int, 'same' or {self.layers} values (got {got})")

    def feature_map_sizes(self) -> list[int]:
        """Height (= width) of the outputs of encoder layers 1..L."""
        size, sizes = self.image_size, []
        for k, p in zip(self.kernel_list(), self.padding_list(), strict=True):
            size = (size + 2 * p - k) // self.stride + 1
            sizes.append(size)
        return sizes

    def bn_positions(self) -> tuple[int | None, int | None]:
        """(encoder, decoder) batch-norm position; V1 has BN before every conv."""
        if self.model == "v1":
            return 0, 0
        return self.bn_encoder, self.bn_decoder

    def resolved_precision(self, device_type: str) -> str:
        """What trains: fp32 off CUDA whatever was asked; on CUDA ``auto`` is bf16."""
        if device_type != "cuda":
            return "fp32"
        return "bf16" if self.precision == "auto" else self.precision

    # ----- serialisation -----------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for f in dataclasses.fields(self):
            if f.name.startswith("_"):
                continue
            value = getattr(self, f.name)
            out[f.name] = list(value) if isinstance(value, tuple) else value
        return out

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True)

    @classmethod
    def from_dict(cls, data: dict[str, Any], where: str = "") -> RunConfig:
        """Build from plain data (JSON, YAML); every problem is a ConfigError."""
        if not isinstance(data, dict):  # JSON or YAML that is a list or a number
            raise ConfigError(
                f"{where}a run config is a mapping of keys to values, not {written(data)}"
            )
        known = {f.name for f in dataclasses.fields(cls) if not f.name.startswith("_")}
        values: dict[str, Any] = {}
        for key, raw in data.items():
            if key not in known:
                raise ConfigError(f"{where}unknown key '{key}' (known: {', '.join(sorted(known))})")
            values[key] = _coerce(key, raw, where)
        try:
            return cls(**values)
        except ConfigError as exc:
            raise ConfigError(f"{where}{exc}") from None

    @classmethod
    def from_json(cls, text: str) -> RunConfig:
        return cls.from_dict(json.loads(text))

    def config_hash(self) -> str:
        """Stable 16-hex-digit identity of config + seed (same run -> same hash)."""
        return hashlib.sha256(self.to_json().encode()).hexdigest()[:16]

    def replace(self, **changes: Any) -> RunConfig:
        return RunConfig.from_dict({**self.to_dict(), **changes})


# ----- interpolation (the logbook's formulas) --------------------------------


def _interpolate_kernels(first: int, last: int, layers: int) -> list[int]:
    # seed-spec §2.4: v = ks1*(1-t) + ks2*t, then int(v/2)*2+1 (truncate, make odd)
    out = []
    for i in range(layers):
        t = i / (layers - 1) if layers > 1 else 0.0
        v = first * (1 - t) + last * t
        out.append(int(v / 2) * 2 + 1)
    return out


def _interpolate_channels(first: int, last: int, layers: int) -> list[int]:
    # seed-spec §2.5: c = int(ch1*(1-t) + ch2*t), truncation (matches every T6 count)
    out = []
    for i in range(layers):
        t = i / (layers - 1) if layers > 1 else 0.0
        out.append(int(first * (1 - t) + last * t))
    return out


def _per_layer(value: PerLayer, layers: int, interpolate: Any) -> list[int]:
    if isinstance(value, int):
        return [value] * layers
    if len(value) == layers:
        return list(value)
    if len(value) == 2:
        return list(interpolate(value[0], value[1], layers))
    raise ConfigError(
        f"expected one value, a [first, last] pair or {layers} values, got {written(list(value))}"
    )


# ----- coercion of raw values ------------------------------------------------

INT_KEYS = {"image_size", "layers", "stride", "batch_size", "max_inputs", "seed"}
_FLOAT_KEYS = {"lr", "weight_decay", "residual_weight"}
# The keys with a fixed set of values (all text), and how a value outside it is refused:
# the same words for `act: foo` and `act: 3`, which said only "expected a string".
CHOICES: dict[str, tuple[Collection[str], str]] = {
    "dataset": (DATASETS, f"must be one of {', '.join(DATASETS)}"),
    "model": (MODELS, "must be v1 or v2"),
    "activation": (ACTIVATIONS, "unknown activation; known: " + ", ".join(ACTIVATIONS.values())),
    "validation": (VALIDATION_MODES, "must be 'fixed' or 'seed-faithful'"),
    "precision": (PRECISIONS, "must be auto, fp32 or bf16"),
}
PER_LAYER_KEYS = {"channels", "kernel_size", "padding"}
BN_KEYS = {"bn_encoder", "bn_decoder"}
_BN_OFF = {"none", "-", "–", "off", "false"}


def whole_number(value: Any) -> bool:
    """A float that is exactly a whole number (2e3), small enough to be one exactly."""
    return isinstance(value, float) and value.is_integer() and abs(value) <= MAX_WHOLE


def whole_from_text(text: str) -> int | None:
    """A whole number typed as text, also as ``1.8e5`` (as a sweep file may write it: a
    whole number is a count), up to MAX_WHOLE written either way; None for anything else."""
    try:
        value = int(text)
    except ValueError:
        pass
    else:  # 99999999999999999999999 as 1e23 is: beyond any count, not stored by a database
        return value if abs(value) <= MAX_WHOLE else None
    try:
        number = float(text)
    except ValueError:
        return None
    return int(number) if whole_number(number) else None


def as_whole(value: Any) -> Any:
    """``value`` with whole-number floats as ints, in a list too (``[1.6e1, 32]``): YAML
    reads an exponent as a float, and ``max_inputs: 1.8e5`` means a count."""
    if isinstance(value, list | tuple):
        return type(value)(as_whole(v) for v in value)
    return int(value) if whole_number(value) else value


def coerced(key: str, raw: Any) -> Any:
    """``raw`` as a RunConfig holds it for ``key`` (``bnp-e: none`` is None, ``lr: '3e-4'``
    0.0003, ``act: GELU`` gelu, a per-layer list a tuple); ``raw`` itself where a RunConfig
    would refuse it. For comparing values written in different ways."""
    try:
        return _coerce(key, raw, "")
    except ConfigError:
        return raw


def _coerce(key: str, raw: Any, where: str) -> Any:
    def bad(expected: str) -> ConfigError:
        return ConfigError(f"{where}key '{key}': expected {expected}, got {written(raw)}")

    if key in INT_KEYS | PER_LAYER_KEYS:
        raw = as_whole(raw)  # `max_inputs: 1.8e5`: YAML reads an exponent as a float
    if key in INT_KEYS:
        if isinstance(raw, float) and raw.is_integer():  # `1e16`: whole, but not exactly
            raise bad(f"an integer (written as a float, at most 2**53 = {MAX_WHOLE:,})")
        if isinstance(raw, bool) or not isinstance(raw, int):
            raise bad("an integer")
        return raw
    if key in _FLOAT_KEYS:
        if key == "residual_weight" and raw is None:
            return None
        if isinstance(raw, str):
            # PyYAML reads "3e-4" (no dot) as a string, a classic trap: accept it.
            try:
                return float(raw)
            except ValueError:
                raise bad("a number") from None
        if isinstance(raw, bool) or not isinstance(raw, int | float):
            raise bad("a number")
        return float(raw)
    if key in CHOICES:
        if not isinstance(raw, str):
            raise _not_a_choice(key, raw, where)
        return raw.strip().lower()  # `validation: Fixed` as `act: GELU` and `model: V2`
    if key in BN_KEYS:
        # YAML 1.1 reads a bare `off`/`no` as False: that means "no BN" too.
        if raw is None or raw is False or (isinstance(raw, str) and raw.strip().lower() in _BN_OFF):
            return None
        if isinstance(raw, bool) or not isinstance(raw, int):
            raise bad("0, 1, 2 or 'none'")
        return raw
    if key in PER_LAYER_KEYS:
        if key == "padding" and isinstance(raw, str) and raw.strip().lower() == "same":
            return "same"
        if isinstance(raw, int) and not isinstance(raw, bool):
            return raw
        if (
            isinstance(raw, list | tuple)
            and raw
            and all(isinstance(v, int) and not isinstance(v, bool) for v in raw)
        ):
            return tuple(raw)
        if key == "padding":  # no pair: `pad: [1.5, 1]` was offered one, then refused it
            raise bad("an int, 'same' or a per-layer list of ints")
        raise bad("an int, a [first, last] pair or a per-layer list of ints")
    return raw


def _not_a_choice(key: str, raw: Any, where: str) -> ConfigError:
    """``raw``, no text, refused in the words text outside ``key``'s choices gets, which
    name the values it takes. A truth value says why `act: yes` reads as true; there is
    no "quote it" as for a name: no choice is yes, no, on or off."""
    got = written(raw) + (f"; {YAML_TRUTH_WORDS}" if isinstance(raw, bool) else "")
    return ConfigError(f"{where}key '{key}': {CHOICES[key][1]} (got {got})")


# ----- validation ------------------------------------------------------------


def _check(ok: bool, key: str, value: Any, problem: str) -> None:
    if not ok:
        # A per-layer value is held as a tuple: shown as the list it was written as.
        value_written = list(value) if isinstance(value, tuple) else value
        raise ConfigError(f"key '{key}': {problem} (got {written(value_written)})")


def _check_choice(key: str, value: Any) -> None:
    choices, problem = CHOICES[key]
    _check(value in choices, key, value, problem)


def _validate(c: RunConfig) -> None:
    _check_choice("dataset", c.dataset)
    _check(
        c.image_size in IMAGE_SIZES,
        "image_size",
        c.image_size,
        "unsupported image size, use 28, 32 or 64",
    )
    _check_choice("model", c.model)
    _check(
        isinstance(c.layers, int) and 1 <= c.layers <= MAX_LAYERS,
        "layers",
        c.layers,
        f"must be 1..{MAX_LAYERS}",
    )
    _check_choice("activation", c.activation)
    for key in ("bn_encoder", "bn_decoder"):
        value = getattr(c, key)
        _check(
            value is None or value in BN_POSITIONS,
            key,
            value,
            "must be 0 (before conv), 1 (after conv), 2 (after activation) or 'none'",
        )
    _check(c.stride >= 1, "stride", c.stride, "must be >= 1")
    _check(c.batch_size >= 1, "batch_size", c.batch_size, "must be >= 1")
    _check(c.lr > 0 and math.isfinite(c.lr), "lr", c.lr, "must be a positive number")
    _check(
        c.weight_decay >= 0 and math.isfinite(c.weight_decay),
        "weight_decay",
        c.weight_decay,
        "must be >= 0",
    )
    rw = c.residual_weight
    _check(rw is not None and math.isfinite(rw), "residual_weight", rw, "must be a finite number")
    _check(c.max_inputs >= 1, "max_inputs", c.max_inputs, "must be >= 1")
    _check(c.seed >= 0, "seed", c.seed, "must be >= 0")
    _check_choice("validation", c.validation)
    _check_choice("precision", c.precision)
    _validate_layers(c)


def _validate_layers(c: RunConfig) -> None:
    lists = {}
    for key, getter in (("channels", c.channel_list), ("kernel_size", c.kernel_list)):
        try:
            lists[key] = getter()
        except ConfigError as exc:
            raise ConfigError(f"key '{key}': {exc}") from None
        _check(all(v >= 1 for v in lists[key]), key, getattr(c, key), "every value must be >= 1")
    if c.padding == "same":
        even = [k for k in lists["kernel_size"] if k % 2 == 0]
        _check(not even, "kernel_size", c.kernel_size, "padding 'same' needs odd kernel sizes")
    try:
        pads = c.padding_list()
    except ConfigError as exc:
        raise ConfigError(f"key 'padding': {exc}") from None
    _check(all(p >= 0 for p in pads), "padding", c.padding, "must be >= 0")
    _check(
        min(c.feature_map_sizes()) >= 1,
        "kernel_size",
        c.kernel_size,
        f"the feature map shrinks to nothing at {c.image_size}x{c.image_size}",
    )
