"""The layer plan of a ResConv model and its parameter count, without torch.

``layer_plan`` is the single description of the architecture: ``core.model``
builds its modules from it and ``count_params`` sums it analytically, so the
count shown before a run is queued is the count the optimizer will see.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any

from core.config import ACTIVATIONS, RunConfig

IMAGE_CHANNELS = 1  # Fashion-MNIST / MNIST are grey-scale; the output is too


@dataclass(frozen=True)
class LayerSpec:
    """One ConvLayer: [BN] -> conv -> [size fix] -> [BN] -> [activation] -> [BN]."""

    transposed: bool  # decoder layers use ConvTranspose2d
    in_channels: int
    out_channels: int
    kernel_size: int
    padding: int
    stride: int
    bn_position: int | None  # 0 before conv, 1 after conv, 2 after activation, None
    activation: str | None  # torch.nn class name, or None for identity

    @property
    def bn_channels(self) -> int:
        return self.in_channels if self.bn_position == 0 else self.out_channels

    def param_count(self) -> int:
        conv = self.in_channels * self.out_channels * self.kernel_size**2 + self.out_channels
        bn = 0 if self.bn_position is None else 2 * self.bn_channels
        prelu = 1 if self.activation == "PReLU" else 0
        return conv + bn + prelu


def layer_plan(config: RunConfig) -> tuple[list[LayerSpec], list[LayerSpec]]:
    """(encoder layers 1..L, decoder layers 1..L) as in seed-spec §2.1-§2.2."""
    L = config.layers
    channels = [IMAGE_CHANNELS, *config.channel_list()]  # c_0 .. c_L
    kernels = config.kernel_list()
    pads = config.padding_list()
    bn_enc, bn_dec = config.bn_positions()
    hidden = ACTIVATIONS[config.activation]
    # V2 never has BN in the last encoder/decoder layer; V1 has it everywhere.
    v1 = config.model == "v1"

    encoder = [
        LayerSpec(
            transposed=False,
            in_channels=channels[i - 1],
            out_channels=channels[i],
            kernel_size=kernels[i - 1],
            padding=pads[i - 1],
            stride=config.stride,
            bn_position=bn_enc if (v1 or i < L) else None,
            activation=hidden if i < L else None,
        )
        for i in range(1, L + 1)
    ]
    decoder = [
        LayerSpec(
            transposed=True,
            in_channels=channels[L - j + 1],
            out_channels=channels[L - j],
            kernel_size=kernels[L - j],
            padding=pads[L - j],
            stride=config.stride,
            bn_position=bn_dec if (v1 or j < L) else None,
            activation=hidden if j < L else "Sigmoid",
        )
        for j in range(1, L + 1)
    ]
    return encoder, decoder


def count_params(config: RunConfig) -> int:
    """Trainable parameters (conv weights+biases, BN affine, PReLU), as the logbook counted."""
    encoder, decoder = layer_plan(config)
    return sum(layer.param_count() for layer in (*encoder, *decoder))


# The keys a layer plan is made of (with the residual weight, which only a model of 2
# layers or more adds), so that ``training_key`` compares what they build instead.
PLANNED_KEYS = frozenset({"model", "layers", "channels", "kernel_size", "padding", "stride",
                          "activation", "bn_encoder", "bn_decoder", "residual_weight"})  # fmt: skip
_TRAINING_FIELDS = tuple(f.name for f in fields(RunConfig) if f.name not in PLANNED_KEYS)


def training_key(config: RunConfig) -> tuple[Any, ...]:
    """Equal for two configs that build the same model (its layer plan and residual weight)
    and train it the same way (every other key, the seed included). At ``layers: 1`` the
    activation (its one encoder layer has none; its decoder layer ends in a Sigmoid), a
    v2's batch norm (none in the last layers), the residual weight (no skip to add) and
    the last value of a [first, last] pair change nothing in the training."""
    rest = tuple(getattr(config, name) for name in _TRAINING_FIELDS)
    residual = float(config.residual_weight or 0.0) if config.layers > 1 else None
    encoder, decoder = layer_plan(config)
    return (rest, residual, tuple(encoder), tuple(decoder))
