"""RunConfig: per-layer interpolation (seed-spec §2.4/§2.5, Appendices A/B), validation, hashing."""

from __future__ import annotations

import pytest

from core.config import RunConfig
from core.errors import ConfigError

APPENDIX_A = {
    (16, 32): [16, 17, 19, 20, 22, 24, 25, 27, 28, 30, 32],
    (16, 64): [16, 20, 25, 30, 35, 40, 44, 49, 54, 59, 64],
    (16, 128): [16, 27, 38, 49, 60, 72, 83, 94, 105, 116, 128],
    (32, 16): [32, 30, 28, 27, 25, 24, 22, 20, 19, 17, 16],
    (32, 64): [32, 35, 38, 41, 44, 48, 51, 54, 57, 60, 64],
    (32, 128): [32, 41, 51, 60, 70, 80, 89, 99, 108, 118, 128],
    (64, 16): [64, 59, 54, 49, 44, 40, 35, 30, 25, 20, 16],
    (64, 32): [64, 60, 57, 54, 51, 48, 44, 41, 38, 35, 32],
    (64, 128): [64, 70, 76, 83, 89, 96, 102, 108, 115, 121, 128],
    (128, 16): [128, 116, 105, 94, 83, 72, 60, 49, 38, 27, 16],
    (128, 32): [128, 118, 108, 99, 89, 80, 70, 60, 51, 41, 32],
    (128, 64): [128, 121, 115, 108, 102, 96, 89, 83, 76, 70, 64],
}
APPENDIX_B = {
    (3, 5): [3, 3, 3, 3, 3, 5, 5, 5, 5, 5, 5],
    (3, 7): [3, 3, 3, 5, 5, 5, 5, 5, 7, 7, 7],
    (3, 9): [3, 3, 5, 5, 5, 7, 7, 7, 7, 9, 9],
    (3, 11): [3, 3, 5, 5, 7, 7, 7, 9, 9, 11, 11],
    (5, 3): [5, 5, 5, 5, 5, 5, 3, 3, 3, 3, 3],
    (5, 7): [5, 5, 5, 5, 5, 7, 7, 7, 7, 7, 7],
    (5, 9): [5, 5, 5, 7, 7, 7, 7, 7, 9, 9, 9],
    (5, 11): [5, 5, 7, 7, 7, 9, 9, 9, 9, 11, 11],
    (7, 3): [7, 7, 7, 5, 5, 5, 5, 5, 3, 3, 3],
    (7, 5): [7, 7, 7, 7, 7, 7, 5, 5, 5, 5, 5],
    (7, 9): [7, 7, 7, 7, 7, 9, 9, 9, 9, 9, 9],
    (7, 11): [7, 7, 7, 9, 9, 9, 9, 9, 11, 11, 11],
    (9, 3): [9, 9, 7, 7, 7, 7, 5, 5, 5, 3, 3],
    (9, 5): [9, 9, 9, 7, 7, 7, 7, 7, 5, 5, 5],
    (9, 7): [9, 9, 9, 9, 9, 9, 7, 7, 7, 7, 7],
    (9, 11): [9, 9, 9, 9, 9, 11, 11, 11, 11, 11, 11],
    (11, 3): [11, 11, 9, 9, 7, 7, 7, 5, 5, 3, 3],
    (11, 5): [11, 11, 9, 9, 9, 9, 7, 7, 7, 5, 5],
    (11, 7): [11, 11, 11, 9, 9, 9, 9, 9, 7, 7, 7],
    (11, 9): [11, 11, 11, 11, 11, 11, 9, 9, 9, 9, 9],
}


@pytest.mark.parametrize(("pair", "expected"), APPENDIX_A.items())
def test_channel_interpolation_matches_appendix_a(
    pair: tuple[int, int], expected: list[int]
) -> None:
    assert RunConfig(channels=pair).channel_list() == expected


@pytest.mark.parametrize(("pair", "expected"), APPENDIX_B.items())
def test_kernel_interpolation_matches_appendix_b(
    pair: tuple[int, int], expected: list[int]
) -> None:
    config = RunConfig(kernel_size=pair)
    assert config.kernel_list() == expected
    assert config.padding_list() == [k // 2 for k in expected]


def test_uniform_and_full_lists() -> None:
    assert RunConfig(channels=16, layers=3).channel_list() == [16, 16, 16]
    assert RunConfig(channels=[4, 5, 6], layers=3).channel_list() == [4, 5, 6]
    assert RunConfig(kernel_size=3, padding=0, image_size=28, layers=2).padding_list() == [0, 0]


def test_residual_weight_defaults_per_model() -> None:
    assert RunConfig(model="v1").residual_weight == 0.1
    assert RunConfig(model="v2").residual_weight == 1.0
    assert RunConfig(model="v1", residual_weight=2.0).residual_weight == 2.0


def test_v1_has_bn_before_every_conv() -> None:
    assert RunConfig(model="v1", bn_encoder=None).bn_positions() == (0, 0)


@pytest.mark.parametrize(
    ("changes", "fragment"),
    [
        ({"channels": 0}, "'channels'"),
        ({"kernel_size": 0}, "'kernel_size'"),
        ({"kernel_size": 4}, "padding 'same' needs odd kernel sizes"),
        ({"activation": "swishy"}, "unknown activation"),
        ({"lr": -1.0}, "'lr'"),
        ({"image_size": 30}, "unsupported image size"),
        ({"bn_encoder": 3}, "'bn_encoder'"),
        ({"layers": 0}, "'layers'"),
        ({"channels": [1, 2, 3]}, "'channels'"),
        ({"kernel_size": 29, "padding": 0}, "shrinks to nothing"),
        ({"validation": "sometimes"}, "'validation'"),
        ({"dataset": "cifar"}, "'dataset'"),
    ],
)
def test_impossible_values_name_the_key(changes: dict, fragment: str) -> None:
    with pytest.raises(ConfigError, match=fragment):
        RunConfig.from_dict(changes)


def test_unknown_key_and_wrong_type() -> None:
    with pytest.raises(ConfigError, match="unknown key 'layer'"):
        RunConfig.from_dict({"layer": 3})
    with pytest.raises(ConfigError, match="key 'layers': expected an integer"):
        RunConfig.from_dict({"layers": "three"})
    with pytest.raises(ConfigError, match="key 'layers': expected an integer"):
        RunConfig.from_dict({"layers": True})


def test_values_in_messages_are_written_as_a_file_writes_them() -> None:
    # Python's repr: "got 'three'", "got True", "not [1, 'a']".
    with pytest.raises(ConfigError, match="^key 'layers': expected an integer, got three$"):
        RunConfig.from_dict({"layers": "three"})
    with pytest.raises(ConfigError, match="^key 'layers': expected an integer, got true$"):
        RunConfig.from_dict({"layers": True})
    with pytest.raises(
        ConfigError, match=r"^a run config is a mapping of keys to values, not \[1, a\]$"
    ):
        RunConfig.from_dict([1, "a"])  # type: ignore[arg-type]


def test_yaml_style_values_are_accepted() -> None:
    config = RunConfig.from_dict(
        {"lr": "3e-4", "bn_encoder": "none", "bn_decoder": False, "activation": "GELU"}
    )
    assert config.lr == 3e-4 and config.bn_encoder is None and config.bn_decoder is None
    assert config.activation == "gelu"
    # Every named choice is read in any case: `validation: Fixed` alone was refused.
    named = {"activation": "ReLU", "model": "V1", "dataset": "MNIST", "precision": "FP32",
             "validation": "Seed-Faithful"}  # fmt: skip
    config = RunConfig.from_dict(named)
    assert [getattr(config, key) for key in named] == ["relu", "v1", "mnist", "fp32",
                                                       "seed-faithful"]  # fmt: skip


def test_json_round_trip_and_stable_hash() -> None:
    config = RunConfig(channels=(32, 64), kernel_size=(3, 9), seed=3)
    again = RunConfig.from_json(config.to_json())
    assert again == config
    assert again.config_hash() == config.config_hash()
    assert config.replace(seed=4).config_hash() != config.config_hash()
    # The hash is a pure function of the values: pinned so it never drifts silently.
    assert RunConfig().config_hash() == RunConfig.from_dict({}).config_hash()
    assert len(config.config_hash()) == 16
