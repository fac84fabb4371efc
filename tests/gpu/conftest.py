"""GPU tests: every test in this folder is skipped when CUDA is not available."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
import torch

from core.data import Datasets, Location, load_datasets


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if torch.cuda.is_available():
        return
    skip = pytest.mark.skip(reason="needs CUDA")
    here = Path(__file__).parent
    for item in items:
        if here in Path(str(item.fspath)).parents:
            item.add_marker(skip)


@pytest.fixture(scope="session")
def cuda_data(
    tmp_path_factory: pytest.TempPathFactory, idx_writer: Callable[..., Path]
) -> Datasets:
    """A small synthetic dataset (1,000 train with a short last batch, 256 validation) on CUDA."""
    folder = idx_writer(tmp_path_factory.mktemp("gpu-idx"), train=1000, test=256)
    return load_datasets(
        "fmnist", 28, "cuda", locations=[Location("t", folder)], cache=folder / "c", download=None
    )
