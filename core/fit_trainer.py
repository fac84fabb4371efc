"""The worker's real trainer: datasets loaded once per (dataset, image size), then
``core.train.fit`` for a run or ``core.stack.fit_stack`` for seeds trained as one stack.
Torch is imported when training starts, so ``core.worker`` stays importable without it."""

from __future__ import annotations

import threading
import weakref
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from core.capture_gate import GATE
from core.errors import DataError, NoDataHere
from core.queue import RunRow

if TYPE_CHECKING:
    from core.errors import TrainingError
    from core.train import FitCallbacks, FitResult

StackResults = list["FitResult | TrainingError"]


class FitTrainer:
    """The real trainer: datasets loaded once per (dataset, image size), then fit().

    Thread-safe: slot threads (``core.stream_slots``) share one trainer and its datasets.
    A dataset stays loaded while a run uses it (weak references) or while it is the
    last one asked for; others are dropped, since device memory is for training.
    """

    def __init__(self, device: str, data_dir: str | None) -> None:
        self.device, self.data_dir = device, data_dir
        self.cache: weakref.WeakValueDictionary[tuple[str, int], Any] = (
            weakref.WeakValueDictionary()
        )
        self.last: Any = None  # keeps the last dataset asked for alive between runs
        self.lock = threading.Lock()

    def __call__(self, run: RunRow, callbacks: FitCallbacks, checkpoint_dir: Path) -> FitResult:
        from core.train import fit

        config = run.config
        return fit(config, self.datasets(config.dataset, config.image_size), self.device,
                   callbacks, checkpoint_dir)  # fmt: skip

    def train_stack(
        self, runs: Sequence[RunRow], callbacks: Sequence[FitCallbacks], dirs: Sequence[Path]
    ) -> StackResults:
        """``runs`` (seeds of one config) as one stack: ``core.stack.fit_stack``."""
        from core.stack import fit_stack

        config = runs[0].config
        data = self.datasets(config.dataset, config.image_size)
        return fit_stack([run.config for run in runs], data, self.device, callbacks, dirs)

    def datasets(self, dataset: str, image_size: int) -> Any:
        key = (dataset, image_size)
        with self.lock:
            data = self.cache.get(key)
            if data is None:
                data = self.cache[key] = self._load(dataset, image_size)
            self.last = data
            return data

    def _load(self, dataset: str, image_size: int) -> Any:
        from core.data import Datasets, load_datasets

        # Finding, reading and resizing are CPU work: outside the capture gate, so a
        # slow load never holds up another slot's graph capture (and every slot with it).
        try:
            host = load_datasets(dataset, image_size, "cpu", self.data_dir)
        except DataError as error:
            # This machine's data, never the run's: missing, the other dataset, a damaged
            # file. Each queued run of the dataset would fail in turn (the whole queue,
            # within seconds), so the worker puts the run back and stops (exit 2); on a
            # shared queue, a box that has the data trains it.
            raise NoDataHere(str(error)) from None
        if self.device == "cpu":
            return host
        with GATE.gpu_work():
            data = Datasets(
                host.train.to(self.device), host.validation.to(self.device), host.source
            )
            _wait_for_upload(self.device)
        return data


def _wait_for_upload(device: str) -> None:
    """The upload ran on this thread's stream; other slots' streams must see it finished."""
    import torch

    torch.cuda.current_stream(device).synchronize()
