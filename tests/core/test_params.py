"""Every "model params" figure of the logbook's eight tables (seed-spec §7), every row.

The expected numbers are typed in from the logbook here, independently of the
experiment files, and checked twice: analytically (core.params, torch-free) and
on the built torch model.
"""

from __future__ import annotations

import pytest

from core.config import ACTIVATIONS, RunConfig
from core.params import count_params

T1_T2 = {1: 675, 2: 19_299, 3: 37_923, 5: 75_171, 7: 112_419, 9: 149_667, 11: 186_915,
         13: 224_163, 15: 261_411, 17: 298_659, 19: 335_907, 21: 373_155, 30: 540_771}  # fmt: skip
T1_LAYERS = [1, 2, 3, 5, 7, 9, 11, 13, 15, 17, 19, 21]
T2_LAYERS = [1, 3, 5, 7, 9, 11, 13, 15, 17, 19, 21, 30]
T3_RWF = [0.01, 0.05, 0.1, 0.5, 1.0, 2.0]
# T4: (encoder, decoder) BN position, None = "–"
T4 = {(0, 0): 186_787, (0, 1): 186_787, (1, 0): 186_849, (1, 1): 186_849, (0, 2): 186_787,
      (1, 2): 186_849, (2, 1): 186_849, (None, 0): 186_209, (2, 2): 186_849, (None, 1): 186_209,
      (2, 0): 186_849, (0, None): 186_147, (1, None): 186_209, (2, None): 186_209,
      (None, 2): 186_209, (None, None): 185_569}  # fmt: skip
T6 = {(128, 128): 2_958_979, (128, 64): 1_712_091, (128, 32): 1_280_341, (128, 16): 1_109_285,
      (64, 128): 1_710_773, (64, 64): 742_211, (32, 128): 1_278_363, (16, 128): 1_106_979,
      (64, 32): 426_357, (64, 16): 319_347, (32, 64): 425_699, (32, 32): 186_787,
      (16, 64): 318_357, (32, 16): 105_925, (16, 32): 105_595, (16, 16): 47_315}  # fmt: skip
T7 = {3: 186_787, 5: 515_491, 7: 1_008_547, 9: 1_665_955, 11: 2_487_715}
T8 = {(3, 9): 907_683, (3, 11): 1_251_747, (3, 7): 596_387, (5, 9): 1_105_315, (5, 7): 810_403,
      (3, 5): 383_395, (5, 11): 1_514_915, (5, 5): 515_491, (7, 7): 1_008_547, (7, 9): 1_401_763,
      (7, 5): 762_787, (7, 11): 1_778_595, (7, 3): 517_027, (9, 9): 1_665_955, (9, 3): 764_835,
      (5, 3): 351_651, (9, 5): 994_211, (9, 7): 1_338_275, (9, 11): 2_157_475,
      (11, 11): 2_487_715, (11, 7): 1_635_747, (11, 5): 1_324_451, (11, 3): 1_029_539,
      (11, 9): 2_078_115, (3, 3): 186_787}  # fmt: skip


def logbook_cases() -> list[tuple[str, RunConfig, int]]:
    cases = []
    for layers in T1_LAYERS:
        cases.append(
            (f"T1 l={layers}", RunConfig(model="v1", image_size=32, layers=layers), T1_T2[layers])
        )
    for layers in T2_LAYERS:
        bs = 32 if layers in (21, 30) else 64
        config = RunConfig(model="v1", image_size=64, layers=layers, batch_size=bs)
        cases.append((f"T2 l={layers}", config, T1_T2[layers]))
    for rwf in T3_RWF:
        cases.append((f"T3 RWF={rwf}", RunConfig(model="v1", residual_weight=rwf), 186_915))
    for (enc, dec), expected in T4.items():
        cases.append((f"T4 {enc},{dec}", RunConfig(bn_encoder=enc, bn_decoder=dec), expected))
    for act in ACTIVATIONS:
        expected = 186_807 if act == "prelu" else 186_787
        cases.append((f"T5 {act}", RunConfig(activation=act), expected))
    for (ch1, ch2), expected in T6.items():
        cases.append((f"T6 {ch1}->{ch2}", RunConfig(channels=(ch1, ch2)), expected))
    for ks, expected in T7.items():
        cases.append((f"T7 ks={ks}", RunConfig(kernel_size=ks), expected))
    for (ks1, ks2), expected in T8.items():
        cases.append((f"T8 {ks1}->{ks2}", RunConfig(kernel_size=(ks1, ks2)), expected))
    return cases


CASES = logbook_cases()


def test_every_logbook_row_is_covered() -> None:
    # 12 + 12 + 6 + 16 + 21 + 16 + 5 + 25 rows in the eight tables.
    assert len(CASES) == 113


@pytest.mark.parametrize(("label", "config", "expected"), CASES, ids=[c[0] for c in CASES])
def test_analytic_count_matches_logbook(label: str, config: RunConfig, expected: int) -> None:
    assert count_params(config) == expected


@pytest.mark.parametrize(("label", "config", "expected"), CASES, ids=[c[0] for c in CASES])
def test_torch_model_count_matches_logbook(label: str, config: RunConfig, expected: int) -> None:
    from core.model import ResConv, trainable_params

    assert trainable_params(ResConv(config)) == expected


def test_prelu_adds_one_parameter_per_activated_layer() -> None:
    base = RunConfig(layers=5)
    assert count_params(base.replace(activation="prelu")) - count_params(base) == 2 * 5 - 2
