"""Checkpoints: ``last.pt`` / ``best.pt`` state dicts with ``config.json`` beside them.

A checkpoint folder holds:
  * ``config.json`` - the RunConfig (``RunConfig.to_json``), enough to rebuild the model
  * ``run.json``    - (a worker's folders) the queued run it belongs to (core.run_folders)
  * ``last.pt``     - model + optimizer state after the latest validation pass
  * ``best.pt``     - model state of the best validation pass so far

Every file is written to a temporary name and renamed, so a crash or a reader
polling the folder never sees half a file.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch
from torch import nn

from core.config import RunConfig
from core.errors import ResconvError
from core.files import atomic_write
from core.run_folders import BEST_FILE

CONFIG_FILE = "config.json"


class CheckpointError(ResconvError):
    """A checkpoint folder is missing files or cannot be read."""

    title = "Checkpoint not readable"


def write_config(directory: str | os.PathLike[str], config: RunConfig) -> Path:
    """Write ``config.json`` into ``directory``; returns its path."""
    path = Path(directory) / CONFIG_FILE
    atomic_write(path, lambda handle: handle.write(config.to_json().encode()))
    return path


def save_checkpoint(
    directory: str | os.PathLike[str], name: str, model: nn.Module, **extra: Any
) -> Path:
    """Save ``{"model": state_dict, **extra}`` as ``directory/name`` (e.g. ``last.pt``)."""
    path = Path(directory) / name
    state = {"model": model.state_dict(), **extra}
    atomic_write(path, lambda handle: torch.save(state, handle))
    return path


def load_checkpoint(path: str | os.PathLike[str], map_location: Any = "cpu") -> dict[str, Any]:
    """The dict written by ``save_checkpoint`` (tensors mapped to ``map_location``)."""
    try:
        return torch.load(Path(path), map_location=map_location, weights_only=True)
    except (OSError, RuntimeError, ValueError) as exc:
        raise CheckpointError(f"cannot read checkpoint {path}: {exc}") from None


def load_config(directory: str | os.PathLike[str]) -> RunConfig:
    """The RunConfig saved beside a checkpoint."""
    path = Path(directory) / CONFIG_FILE
    try:
        return RunConfig.from_json(path.read_text())
    except OSError as exc:
        raise CheckpointError(f"cannot read {path}: {exc}") from None


def load_model(directory: str | os.PathLike[str], name: str = BEST_FILE) -> nn.Module:
    """Rebuild the model from ``config.json`` and load ``name``'s weights (eval mode, CPU)."""
    from core.model import build_model

    model = build_model(load_config(directory))
    model.load_state_dict(load_checkpoint(Path(directory) / name)["model"])
    return model.eval()
