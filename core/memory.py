"""A rough training-memory estimate from the layer plan, before a run is queued.

Counts what dominates a small conv net's training step: fp32 weights, gradients and
AdamW's two moments (16 bytes a parameter) plus the activations autograd keeps for
the backward pass (each layer's conv / BN / activation outputs, 4 bytes a value,
times the batch). Allocator slack and the CUDA context are not included: it is
meant to rank configs and catch "this will not fit", not to predict to the MiB.

Torch-free: the sweep form shows it before queueing, and a packing worker uses it
(with a safety margin, see ``core.packing``) when no earlier run was measured.
"""

from __future__ import annotations

from core.config import RunConfig
from core.params import LayerSpec, count_params, layer_plan

BYTES_PER_PARAM = 16  # weight + grad + AdamW exp_avg + exp_avg_sq, fp32
BYTES_PER_VALUE = 4


def _kept_per_value(layer: LayerSpec) -> int:
    # Tensors autograd saves per output value: conv out, plus BN and activation outputs.
    return 1 + (layer.bn_position is not None) + (layer.activation is not None)


def activation_values(config: RunConfig) -> int:
    """Values kept for backward for one image."""
    encoder, decoder = layer_plan(config)
    sizes = config.feature_map_sizes()
    # The decoder walks the same feature-map sizes back up to the image size.
    decoder_sizes = [*reversed(sizes[:-1]), config.image_size]
    total = config.image_size**2  # the masked input itself
    for layer, size in (
        *zip(encoder, sizes, strict=True),
        *zip(decoder, decoder_sizes, strict=True),
    ):
        total += layer.out_channels * size * size * _kept_per_value(layer)
    return total


def estimate_bytes(config: RunConfig, param_count: int | None = None) -> int:
    """Bytes one training run of ``config`` needs on its device, roughly (see above)."""
    params = count_params(config) if param_count is None else param_count
    activations = activation_values(config) * config.batch_size * BYTES_PER_VALUE
    return params * BYTES_PER_PARAM + activations
