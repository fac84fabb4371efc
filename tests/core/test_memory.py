"""The torch-free memory estimate: shared by the sweep form and the packing worker."""

from __future__ import annotations

import resconv_tui.memory_estimate as form_estimate
from core import memory
from core.config import RunConfig
from core.params import count_params


def test_the_form_uses_the_core_estimate() -> None:
    assert form_estimate.estimate_bytes is memory.estimate_bytes


def test_estimate_is_optimizer_state_plus_kept_activations() -> None:
    config = RunConfig(layers=2, channels=4, batch_size=32)
    expected = count_params(config) * 16 + memory.activation_values(config) * 32 * 4
    assert memory.estimate_bytes(config) == expected


def test_estimate_unchanged_by_the_move() -> None:
    # Values of resconv_tui/memory_estimate.py before it moved to core/memory.py.
    assert memory.estimate_bytes(RunConfig()) == 395_364_912
    assert memory.estimate_bytes(RunConfig(layers=2, channels=4)) == 6_227_952
    assert memory.estimate_bytes(RunConfig(batch_size=128, channels=64)) == 1_580_176_432
