"""fit(): train one ResConv run. Knows nothing about databases or Textual.

INTERFACE CONTRACT (shared by core.worker and the CLI; keep these names):

    fit(config, data, device, callbacks=None, checkpoint_dir=None) -> FitResult

    - ``data`` is a ``core.data.Datasets`` (train / validation uint8 tensors on ``device``).
    - ``callbacks.on_train_loss(TrainPoint)`` every ``callbacks.log_every`` steps,
      ``callbacks.on_validation(ValidationPoint)`` after each validation pass,
      ``callbacks.should_stop()`` polled between steps (cheap; return True to stop).
    - Raises ``NonFiniteLoss`` / ``OutOfMemory`` (both ``core.errors.TrainingError``)
      with short, specific messages.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from core.errors import TrainingError


class NonFiniteLoss(TrainingError):
    title = "Loss became NaN/inf"


class OutOfMemory(TrainingError):
    title = "Out of memory"


@dataclass(frozen=True)
class TrainPoint:
    step: int  # optimizer steps done
    inputs: int  # training images seen
    loss: float  # mean train L1 over the steps since the last point
    lr: float
    inputs_per_s: float
    memory_bytes: int  # current device memory allocated (0 on CPU)


@dataclass(frozen=True)
class ValidationPoint:
    epoch: int  # 1-based pass number
    step: int
    inputs: int
    loss: float


@dataclass
class FitCallbacks:
    on_train_loss: Callable[[TrainPoint], None] | None = None
    on_validation: Callable[[ValidationPoint], None] | None = None
    should_stop: Callable[[], bool] | None = None
    log_every: int = 20


@dataclass
class FitResult:
    validation_loss: float  # the LAST validation pass (as the logbook reported)
    validation_losses: list[ValidationPoint] = field(default_factory=list)
    train_losses: list[TrainPoint] = field(default_factory=list)
    inputs_seen: int = 0
    steps: int = 0
    inputs_per_s: float = 0.0
    peak_memory_bytes: int = 0
    wall_seconds: float = 0.0
    param_count: int = 0
    stopped: bool = False  # should_stop() ended it early
    # uint8 array-like (3, n, H, W): masked input / output / target of n validation images
    samples: Any = None
    checkpoint_path: str | None = None
    path_used: str = "plain"  # "plain" or the fast path's description


def fit(config: Any, data: Any, device: Any, callbacks: FitCallbacks | None = None,
        checkpoint_dir: Any = None) -> FitResult:
    raise NotImplementedError("being written: see issue 2")
