"""fit(): train one ResConv run. Knows nothing about databases or Textual.

INTERFACE CONTRACT (shared by core.worker and the CLI; keep these names):

    fit(config, data, device, callbacks=None, checkpoint_dir=None) -> FitResult

    - ``data`` is a ``core.data.Datasets`` (train / validation uint8 tensors on ``device``).
    - ``callbacks.on_train_loss(TrainPoint)`` every ``callbacks.log_every`` steps,
      ``callbacks.on_validation(ValidationPoint)`` after each validation pass,
      ``callbacks.should_stop()`` polled between steps (cheap; return True to stop),
      ``callbacks.between_batches()`` (or should_stop) between a pass's batches.
    - Raises ``NonFiniteLoss`` / ``OutOfMemory`` (both ``core.errors.TrainingError``)
      with short, specific messages.

What a run does (seed-spec §3-§4): AdamW, a cosine learning rate over
``max_inputs // batch_size`` optimizer steps, L1 between the output for the
half-deleted image and the clean image. Batches come like a shuffling
DataLoader with ``drop_last=False`` (each epoch ends with a short batch) until
``max_inputs`` images were seen, so 180,000 inputs are 3 epochs and 2,814 steps.
Validation runs after every epoch and once more at the end; the reported loss
is the last pass, as in the logbook.

Randomness comes from ``config.seed`` alone: the model init (torch's global
RNG), the shuffling, the training masks and the validation masks each have
their own generator, so on CPU the same config gives the same curve twice.

The train step is built by ``make_train_step``; a faster step (CUDA graphs,
issue 5) plugs in there without touching the loop.
"""

from __future__ import annotations

import math
import threading
import time
import traceback
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
import torch.nn.functional as F
from torch import nn

from core.capture_gate import GATE
from core.checkpoint import save_checkpoint, write_config
from core.errors import TrainingError
from core.fast_path import autocast, make_fast_step, wants_fast_path
from core.model import build_model, trainable_params
from core.pauses import PAUSES, PauseWatch
from core.run_folders import BEST_FILE, LAST_FILE, clear_checkpoints
from core.task import delete_halves, draw_halves

if TYPE_CHECKING:
    from core.config import RunConfig
    from core.data import Datasets


class NonFiniteLoss(TrainingError):
    title = "Training diverged"  # its message says how: "loss became NaN at step 11"

    def __init__(self, message: str, inputs_done: int | None = None) -> None:
        super().__init__(message)
        # The inputs trained when it was seen: the failed run's progress (it read 0%
        # beside "loss became NaN at step 4" where none had been recorded yet).
        self.inputs_done = inputs_done


class OutOfMemory(TrainingError):
    title = "Out of memory"


@dataclass(frozen=True)
class TrainPoint:
    step: int  # optimizer steps done
    inputs: int  # training images seen
    loss: float  # mean train L1 over the steps since the last point
    lr: float
    inputs_per_s: float
    # Device memory allocated now; None where it is not measured (a CPU: see MemoryMeter).
    memory_bytes: int | None


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
    # Polled before each batch of a validation pass that may end early (the passes
    # between epochs; None: should_stop). Apart from should_stop, which comes before
    # each training step, so that the worker's stall watch never times a batch of a
    # pass, forward only, as a step: the limit it grows with the step time shrank.
    between_batches: Callable[[], bool] | None = None
    log_every: int = 20
    # A point also once this many seconds have passed since the last (None: by steps
    # only): 20 steps of a big model on a CPU took 100 s, and its progress and in/s
    # stood at 0% and "-" that long. A GPU's 20 steps take far less.
    log_every_s: float | None = None
    # fit_stack only: a run of the stack that ends before the others (stopped, or its
    # loss diverged) is handed what fit_stack will also return for it, so that it can
    # be recorded at once rather than when the whole stack ends.
    on_early_end: Callable[[FitResult | TrainingError], None] | None = None
    # Whether a stopped run may still save last.pt: not once another worker trains the
    # run (recovered as lost while this one was paused, then claimed again), whose folder
    # it shares. Asked once, at the stop.
    may_save_on_stop: Callable[[], bool] | None = None
    # Whether a validation pass's checkpoints may be written, asked after on_validation
    # (whose write tells the worker whether the run is still its own): not once another
    # worker trains the run, as for may_save_on_stop.
    may_checkpoint: Callable[[], bool] | None = None

    # Called once the run's data is there, before its model is built (fit_stack: before
    # the stack's) and before any checkpoint is written: the attempt starts. A worker's
    # retry has its earlier attempt's weights removed then, not at the claim, which a
    # machine without the data puts back as never made.
    on_start: Callable[[], None] | None = None

    # Seconds the training thread has waited for the worker's database so far
    # (core.queue.patience.waited_s): they are not training time.
    waited_s: Callable[[], float] | None = None

    def save_on_stop(self) -> bool:
        return self.may_save_on_stop is None or self.may_save_on_stop()

    def checkpoint_allowed(self) -> bool:
        return self.may_checkpoint is None or self.may_checkpoint()


@dataclass
class FitResult:
    validation_loss: float  # the LAST validation pass (as the logbook reported); NaN if none
    validation_losses: list[ValidationPoint] = field(default_factory=list)
    train_losses: list[TrainPoint] = field(default_factory=list)
    inputs_seen: int = 0
    steps: int = 0
    inputs_per_s: float = 0.0  # training only: validation and checkpoint time excluded
    # CUDA: torch.cuda.max_memory_allocated. CPU: 0, not measured (see MemoryMeter).
    peak_memory_bytes: int = 0
    wall_seconds: float = 0.0  # the whole fit(): model build, training, validation, saves
    param_count: int = 0
    stopped: bool = False  # should_stop() ended it early
    # uint8 array-like (3, n, H, W): masked input / output / target of n validation images
    samples: Any = None
    checkpoint_path: str | None = None  # the folder with last.pt, best.pt, config.json
    path_used: str = "plain"  # "plain" or the fast path's description


# Independent random streams of a run, all derived from config.seed.
SHUFFLE_STREAM, MASK_STREAM, FIXED_VALIDATION_STREAM, FAITHFUL_VALIDATION_STREAM = range(4)
SAMPLE_COUNT = 8

TrainStep = Callable[[torch.Tensor, float], torch.Tensor]
"""step(CPU int64 index batch into the train split, lr) -> the batch's loss, 0-dim, no sync.

The step gathers the batch itself, so a fast step can upload the indices its own way."""


# ----- pure pieces ---------------------------------------------------------------------


def cosine_lr(step: int, base_lr: float, t_max: int) -> float:
    """The learning rate of optimizer step ``step`` (0-based), as CosineAnnealingLR gives it.

    Half a cosine from ``base_lr`` to 0 over ``t_max`` steps (eta_min 0). Past
    ``t_max`` it rises again like torch's scheduler (the logbook's last 2 steps
    ran there at about 1e-10). ``t_max`` 0 (fewer inputs than one batch) keeps ``base_lr``.
    """
    if t_max <= 0:
        return base_lr
    return base_lr * (1 + math.cos(math.pi * step / t_max)) / 2


def cosine_length(config: RunConfig) -> int:
    """``t_max`` of the run's cosine: ``max_inputs // batch_size`` steps (seed-spec §4)."""
    return config.max_inputs // config.batch_size


def planned_steps(n_train: int, batch_size: int, max_inputs: int) -> tuple[int, int]:
    """(optimizer steps, inputs seen) of a run: whole DataLoader batches until max_inputs."""
    per_epoch = math.ceil(n_train / batch_size)
    epochs, rest = divmod(max_inputs, n_train)
    tail = math.ceil(rest / batch_size)
    return epochs * per_epoch + tail, epochs * n_train + min(n_train, tail * batch_size)


def seeded_generator(seed: int, stream: int) -> torch.Generator:
    """A CPU generator for one random stream of the run with seed ``seed``."""
    return torch.Generator().manual_seed(seed * 16 + stream)


def train_batches(
    n_train: int, batch_size: int, max_inputs: int, generator: torch.Generator
) -> Iterator[tuple[torch.Tensor, bool]]:
    """(CPU index batch, ends an epoch) pairs, like a shuffling DataLoader, until max_inputs."""
    inputs = 0
    while inputs < max_inputs:
        batches = torch.randperm(n_train, generator=generator).split(batch_size)
        for i, indices in enumerate(batches):
            inputs += len(indices)
            yield indices, i == len(batches) - 1
            if inputs >= max_inputs:
                return


def to_unit(images: torch.Tensor) -> torch.Tensor:
    """uint8 images -> float32 in [0, 1], the model's input range."""
    return images.float().div_(255)


def set_lr(optimizer: torch.optim.Optimizer, lr: float) -> None:
    for group in optimizer.param_groups:
        group["lr"] = lr


# ----- the train step ---------------------------------------------------------------


def make_optimizer(model: nn.Module, config: RunConfig) -> torch.optim.Optimizer:
    """AdamW with the logbook's settings: weight decay on every parameter, default betas."""
    return torch.optim.AdamW(model.parameters(), lr=config.lr, weight_decay=config.weight_decay)


def make_train_step(
    config: RunConfig,
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    images: torch.Tensor,
    mask_generator: torch.Generator,
) -> tuple[TrainStep, str]:
    """The train step for ``images.device`` and a description for ``FitResult.path_used``.

    ``images`` is the uint8 train split. CUDA gets the fast path of
    ``core.fast_path`` (one CUDA graph per step; ``RESCONV_FAST_PATH=0`` turns
    it off); the CPU keeps the plain step.
    """
    device = images.device
    precision = config.resolved_precision(device.type)
    if wants_fast_path(device):
        steps = planned_steps(len(images), config.batch_size, config.max_inputs)[0]
        fast = make_fast_step(
            model, optimizer, images, mask_generator, batch_size=config.batch_size,
            t_max=cosine_length(config), capacity=steps, precision=precision,
        )  # fmt: skip
        return fast, fast.description
    step = make_plain_step(model, optimizer, images, mask_generator, precision)
    return step, f"plain {precision}"


def make_plain_step(
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    images: torch.Tensor,
    mask_generator: torch.Generator,
    precision: str = "fp32",
) -> TrainStep:
    """A readable eager step: gather, mask, forward, L1, backward, AdamW with the given lr."""
    device = images.device

    def step(indices: torch.Tensor, lr: float) -> torch.Tensor:
        target = to_unit(images[indices.to(device)])
        inputs = delete_halves(target, draw_halves(len(indices), mask_generator, device))
        set_lr(optimizer, lr)
        optimizer.zero_grad(set_to_none=True)
        with autocast(device, precision):
            loss = F.l1_loss(model(inputs).float(), target)
        loss.backward()
        optimizer.step()
        return loss.detach()

    return step


# ----- validation -------------------------------------------------------------------


class PassStopped(Exception):
    """A validation pass given ``stop`` ended early: ``stop()`` said so between batches."""


def between_batches(stop: Callable[[], bool] | None) -> None:
    """Before each validation batch: another slot thread's graph capture, waiting for the
    GPU to itself, goes first (as between train steps: a pass of 157 batches would keep
    it, and every slot paused behind it, waiting); then PassStopped if ``stop`` says so."""
    GATE.yield_to_capture()
    if stop is not None and stop():
        raise PassStopped


@torch.no_grad()
def validate_fixed(
    model: nn.Module,
    images: torch.Tensor,
    halves: torch.Tensor,
    batch_size: int,
    stop: Callable[[], bool] | None = None,
) -> float:
    """Exact mean L1 over all images with the given masks, in eval mode (deterministic)."""
    model.eval()
    total = torch.zeros((), dtype=torch.float64, device=images.device)
    try:
        for batch, halves_of in zip(
            images.split(batch_size), halves.split(batch_size), strict=True
        ):
            between_batches(stop)
            target = to_unit(batch)
            output = model(delete_halves(target, halves_of))
            total += F.l1_loss(output, target, reduction="sum").double()
    finally:
        model.train()
    return total.item() / images.numel()


@torch.no_grad()
def validate_faithful(
    model: nn.Module,
    images: torch.Tensor,
    batch_size: int,
    generator: torch.Generator,
    stop: Callable[[], bool] | None = None,
) -> float:
    """The logbook's validation: fresh masks, BN in train mode, mean of per-batch means."""
    # The original trainer called model.eval() and then its train step's model.train(True),
    # so BatchNorm used (and updated) each validation batch's own statistics.
    model.train(True)
    means = []
    for batch in images.split(batch_size):
        between_batches(stop)
        target = to_unit(batch)
        inputs = delete_halves(target, draw_halves(len(batch), generator, batch.device))
        means.append(F.l1_loss(model(inputs), target))
    return torch.stack(means).mean().item()


@torch.no_grad()
def sample_grid(model: nn.Module, images: torch.Tensor, halves: torch.Tensor) -> torch.Tensor:
    """uint8 (3, n, H, W) on the CPU: masked input / output / target, eval mode."""
    model.eval()
    target = to_unit(images)
    masked = delete_halves(target, halves)
    output = model(masked).float()
    model.train()
    grid = torch.stack((masked, output, target)).squeeze(2)
    return grid.mul(255).round_().clamp_(0, 255).to(torch.uint8).cpu()


# ----- the loop ---------------------------------------------------------------------


def fit(
    config: RunConfig,
    data: Datasets,
    device: torch.device | str,
    callbacks: FitCallbacks | None = None,
    checkpoint_dir: str | Path | None = None,
) -> FitResult:
    """Train one run as described in the module docstring and return its figures."""
    device = torch.device(device)
    memory = MemoryMeter(device)
    try:
        with GATE.gpu_work():  # see core.capture_gate: runs packed as threads share the GPU
            return _fit(config, data, device, callbacks or FitCallbacks(), checkpoint_dir, memory)
    finally:
        memory.finish()  # after the run's CUDA memory is freed: see _fit


def _fit(
    config: RunConfig,
    data: Datasets,
    device: torch.device,
    callbacks: FitCallbacks,
    checkpoint_dir: str | Path | None,
    memory: MemoryMeter,
) -> FitResult:
    # The run's CUDA objects (graph, pinned buffers, model, AdamW state) are freed when
    # this call ends, inside the capture gate and before another slot's run counts as
    # alone, also when an error propagates: no local names the run (a traceback keeps
    # its frames' locals), and training_errors clears the finished frames.
    hint = "try a smaller batch_size or fewer channels"
    with training_errors(device, f"out of memory at batch {config.batch_size}: {hint}"):
        return _Run(config, data, device, callbacks, checkpoint_dir, memory).trained()


@contextmanager
def training_errors(device: torch.device, out_of_memory: str) -> Iterator[None]:
    """Around a training call: CUDA's out-of-memory error becomes ``OutOfMemory`` with the
    given message, a failure's traceback lets go of the run's tensors (its frames would
    keep them alive), and the device's queued work is done on the way out."""
    try:
        yield
    except torch.cuda.OutOfMemoryError as exc:
        release_frames(exc)
        raise OutOfMemory(out_of_memory) from None
    except BaseException as exc:
        release_frames(exc)
        raise
    finally:
        if device.type == "cuda":
            torch.cuda.current_stream(device).synchronize()


def release_frames(exc: BaseException) -> None:
    """Drop the locals of the finished frames of ``exc`` (the running ones stay)."""
    if exc.__traceback__ is not None:
        traceback.clear_frames(exc.__traceback__)


def point_due(callbacks: FitCallbacks, steps: int, clock: TrainClock, last_s: float) -> bool:
    """Whether a TrainPoint is due after ``steps`` steps since the last one, made at
    ``last_s`` seconds of training (``clock``'s, which leave validation passes out)."""
    if steps >= callbacks.log_every:
        return True
    every_s = callbacks.log_every_s  # the clock is read only where it is asked for
    return every_s is not None and clock.seconds() - last_s >= every_s


class _Run:
    """The state of one fit() call; each method is one phase of the loop."""

    def __init__(
        self,
        config: RunConfig,
        data: Datasets,
        device: torch.device,
        callbacks: FitCallbacks,
        checkpoint_dir: str | Path | None,
        memory: MemoryMeter,
    ) -> None:
        self.wall = TrainClock.started(callbacks.waited_s)
        if callbacks.on_start is not None:
            callbacks.on_start()
        self.config, self.data, self.device, self.callbacks = config, data, device, callbacks
        self.memory = memory
        self.model = seeded_model(config, device)
        self.optimizer = make_optimizer(self.model, config)
        masks = seeded_generator(config.seed, MASK_STREAM)
        self.step_fn, path = make_train_step(config, self.model, self.optimizer, data.train, masks)
        self.fixed_halves, self.faithful_generator = validation_draws(config, data, device)
        self.out = FitResult(math.nan, param_count=trainable_params(self.model), path_used=path)
        self.checkpoints = Checkpoints(checkpoint_dir, config) if checkpoint_dir else None
        self.t_max = cosine_length(config)
        self.step = self.inputs = 0
        self.lr = config.lr
        self.window: list[torch.Tensor] = []
        self.window_inputs: list[int] = []  # the inputs done by each window step's end
        self.clock = TrainClock(callbacks.waited_s)
        self.last_point = (0, 0.0)  # (inputs, train seconds) at the last TrainPoint

    def trained(self) -> FitResult:
        self.train()
        return self.result()

    def train(self) -> None:
        """Epochs of steps, a validation pass after each epoch, then the final pass."""
        self.clock.start()
        for indices, epoch_done in self._batches():
            if self.callbacks.should_stop is not None and self.callbacks.should_stop():
                self.out.stopped = True
                break
            self._train_step(indices)
            if self._log_due():
                self._log()
            if epoch_done:
                final = self.inputs >= self.config.max_inputs
                if final:  # its point first: the run reads every input trained meanwhile
                    self._log()
                self._validate(stoppable=not final)
                if self.out.stopped:
                    break
        self._log()
        # Training ends here: a stopped run's last.pt, the final pass and the samples
        # (on CUDA with cuDNN autotuning their batch of 8) are not training time.
        self.clock.stop(self.device)
        if self.out.stopped:
            if self.callbacks.save_on_stop():
                self._save_last()  # a cancelled run returns quickly: no final pass
            return
        self._validate(resume=False)
        first = slice(0, min(SAMPLE_COUNT, len(self.data.validation)))
        self.out.samples = sample_grid(
            self.model, self.data.validation[first], self.fixed_halves[first]
        )

    def _batches(self) -> Iterator[tuple[torch.Tensor, bool]]:
        shuffle = seeded_generator(self.config.seed, SHUFFLE_STREAM)
        n_train, config = len(self.data.train), self.config
        return train_batches(n_train, config.batch_size, config.max_inputs, shuffle)

    def _train_step(self, indices: torch.Tensor) -> None:
        GATE.yield_to_capture()  # another run's graph capture needs the GPU to itself
        self.lr = cosine_lr(self.step, self.config.lr, self.t_max)
        self.window.append(self.step_fn(indices, self.lr))
        self.step += 1
        self.inputs += len(indices)
        self.window_inputs.append(self.inputs)

    def _log_due(self) -> bool:
        return point_due(self.callbacks, len(self.window), self.clock, self.last_point[1])

    def _log(self) -> None:
        """Emit a TrainPoint for the steps since the last one (the only per-window sync)."""
        if not self.window:
            return
        losses = self._check_window()
        self.window, self.window_inputs = [], []
        seconds = self.clock.seconds()
        done, before = self.inputs - self.last_point[0], seconds - self.last_point[1]
        point = TrainPoint(
            step=self.step,
            inputs=self.inputs,
            loss=sum(losses) / len(losses),
            lr=self.lr,
            inputs_per_s=done / before if before > 0 else 0.0,
            memory_bytes=self.memory.current(),
        )
        self.last_point = (self.inputs, seconds)
        self.out.train_losses.append(point)
        if self.callbacks.on_train_loss is not None:
            self.callbacks.on_train_loss(point)

    def _check_window(self) -> list[float]:
        """The window's losses as floats; NonFiniteLoss names the first bad step."""
        losses = torch.stack(self.window).tolist() if self.window else []
        error = non_finite(losses, self.step, self.window_inputs)
        if error is not None:
            raise error
        return losses

    def _validate(self, stoppable: bool = False, resume: bool = True) -> None:
        """A validation pass, recorded. ``stoppable`` (a pass between epochs): a stop asked
        for meanwhile ends it between batches, unrecorded: the run is put back or
        cancelled, and the pass, minutes long for a big model on a CPU, kept a stopped
        worker (or a cancel) waiting for nothing. The last pass, once every step is
        done, always ends: a stop then must not throw away a whole training.
        ``resume``: the training clock runs again after it (not after the last pass)."""
        self._check_window()  # never validate (or checkpoint) a model that already diverged
        self.clock.stop(self.device)
        try:
            loss = self._validation_loss(self._stop_asked if stoppable else None)
        except PassStopped:
            self.out.stopped = True
            self.clock.start()
            return
        points = self.out.validation_losses
        point = ValidationPoint(len(points) + 1, self.step, self.inputs, loss)
        points.append(point)
        self.out.validation_loss = point.loss
        # The point first: its write tells whether the run is still this worker's, and a
        # paused worker, resumed after another claimed the run, wrote its weights into
        # that attempt's folder. Checkpointed even where the write raised (the database
        # away): its answer unknown, the run keeps its checkpoints.
        try:
            if self.callbacks.on_validation is not None:
                self.callbacks.on_validation(point)
        finally:
            if self.checkpoints is not None and self.callbacks.checkpoint_allowed():
                self.checkpoints.after_validation(self.model, self.optimizer, point)
        if resume:
            self.clock.start()

    def _stop_asked(self) -> bool:
        asks = self.callbacks.between_batches or self.callbacks.should_stop
        return asks is not None and asks()

    def _validation_loss(self, stop: Callable[[], bool] | None) -> float:
        config, images = self.config, self.data.validation
        if config.validation == "seed-faithful":
            generator = self.faithful_generator
            return validate_faithful(self.model, images, config.batch_size, generator, stop)
        points = self.out.validation_losses
        if points and points[-1].step == self.step:
            # Fixed masks, eval mode and unchanged weights: the pass would repeat its value.
            return points[-1].loss
        return validate_fixed(self.model, images, self.fixed_halves, config.batch_size, stop)

    def _save_last(self) -> None:
        if self.checkpoints is not None:
            self.checkpoints.save_last(self.model, self.optimizer, self.step, self.inputs)

    def result(self) -> FitResult:
        out = self.out
        out.steps, out.inputs_seen = self.step, self.inputs
        train_seconds = self.clock.seconds()
        out.inputs_per_s = self.inputs / train_seconds if train_seconds > 0 else 0.0
        out.peak_memory_bytes = self.memory.peak()
        out.checkpoint_path = str(self.checkpoints.directory) if self.checkpoints else None
        out.wall_seconds = self.wall.seconds()
        return out


# ----- helpers of the loop (fit's and core.stack's) ----------------------------------


def seeded_model(config: RunConfig, device: torch.device) -> nn.Module:
    """The run's model with its initial weights from ``config.seed``, on ``device``, training."""
    with BUILD_LOCK:  # slot threads (core.stream_slots) share torch's global RNG
        torch.manual_seed(config.seed)
        return build_model(config).to(device).train()


def validation_draws(
    config: RunConfig, data: Datasets, device: torch.device
) -> tuple[torch.Tensor, torch.Generator]:
    """The run's fixed validation masks and its seed-faithful validation generator."""
    fixed = seeded_generator(config.seed, FIXED_VALIDATION_STREAM)
    halves = draw_halves(len(data.validation), fixed, device)
    return halves, seeded_generator(config.seed, FAITHFUL_VALIDATION_STREAM)


def non_finite(
    losses: list[float], step: int, inputs_after: list[int] | None = None
) -> NonFiniteLoss | None:
    """The error for the first NaN/inf of ``losses``, the losses of the steps up to ``step``
    (``inputs_after``: the inputs trained by the end of each of them). Its progress is
    the inputs up to the step that diverged, not up to the one that read the losses
    back (up to 20 steps on, or a whole epoch's on a CPU by training time)."""
    for i, loss in enumerate(losses):
        if not math.isfinite(loss):
            word = "NaN" if math.isnan(loss) else "inf"
            at = step - len(losses) + i + 1
            done = inputs_after[i] if inputs_after is not None else None
            return NonFiniteLoss(f"loss became {word} at step {at}", inputs_done=done)
    return None


class TrainClock:
    """Seconds spent training, excluding validation and checkpoint saves, the time its
    thread waited for the database (``waited_s``: a worker's, during an outage), and the
    time its process stood still, stopped (``pauses``: Ctrl-Z, ``docker pause``)."""

    def __init__(
        self, waited_s: Callable[[], float] | None = None, pauses: PauseWatch | None = None
    ) -> None:
        self.total = 0.0
        self.since: float | None = None
        self.waited_s = waited_s or (lambda: 0.0)
        self.pauses = pauses or PAUSES
        self.waited_at_start = 0.0

    @classmethod
    def started(cls, waited_s: Callable[[], float] | None = None) -> TrainClock:
        """A clock running from now, never stopped: a fit's wall seconds, less its waits
        for the database and its process's stops (``FitResult.wall_seconds``, the
        results' minutes, are the same with or without an outage or a pause, as its in/s
        is)."""
        clock = cls(waited_s)
        clock.start()
        return clock

    def start(self) -> None:
        self.pauses.start()
        self.since = time.perf_counter()
        self.waited_at_start = self.stood_still()

    def stop(self, device: torch.device) -> None:
        if device.type == "cuda":
            # Queued steps belong to training, not validation. This thread's stream only:
            # runs packed on other streams of the process (core.stream_slots) keep going.
            torch.cuda.current_stream(device).synchronize()
        self.total = self.seconds()
        self.since = None

    def seconds(self) -> float:
        if self.since is None:
            return self.total
        waited = self.stood_still() - self.waited_at_start
        return self.total + time.perf_counter() - self.since - waited

    def stood_still(self) -> float:
        """Seconds not training so far that the clock ran through: database waits and
        stops of the process."""
        return self.waited_s() + self.pauses.paused_s()


class MemoryMeter:
    """Device memory on CUDA; nothing on a CPU.

    A CPU run's memory is the process's, and the process's peak (``ru_maxrss``) only
    grows: a worker's second run of the same model showed 2 MiB beside the first's
    55 MiB. No figure is better than a wrong one there.

    CUDA's counters are per process. When runs share the process (slot threads,
    ``core.stream_slots``) they count every run's tensors, so a run's peak is only
    reported when it trained alone from start to end; otherwise it is 0 (not measured).
    """

    def __init__(self, device: torch.device) -> None:
        self.device = device
        self.cuda = device.type == "cuda"
        self.finished = False
        with _ACTIVE_LOCK:
            self.alone = _ACTIVE["fits"] == 0
            _ACTIVE["fits"] += 1
            _ACTIVE["started"] += 1
            self.started_as = _ACTIVE["started"]
            if self.cuda and self.alone:
                torch.cuda.reset_peak_memory_stats(device)

    def current(self) -> int | None:
        return torch.cuda.memory_allocated(self.device) if self.cuda else None

    def peak(self) -> int:
        if self.cuda:
            with _ACTIVE_LOCK:
                alone_throughout = self.alone and _ACTIVE["started"] == self.started_as
            return torch.cuda.max_memory_allocated(self.device) if alone_throughout else 0
        return 0

    def finish(self) -> None:
        """The run has ended and freed its memory (once; fit() calls it whatever happened)."""
        if self.finished:
            return
        self.finished = True
        with _ACTIVE_LOCK:
            _ACTIVE["fits"] -= 1


# fit() calls in progress in this process, and how many have started (see MemoryMeter).
_ACTIVE_LOCK = threading.Lock()
_ACTIVE = {"fits": 0, "started": 0}
# Seeding and building a model must not interleave between threads: one global RNG.
BUILD_LOCK = threading.Lock()


class Checkpoints:
    """last.pt after every validation pass, best.pt when the pass is the best so far.

    ``optimizer`` None (a run of a stack, ``core.stack``): last.pt without AdamW's state.
    """

    def __init__(self, directory: str | Path, config: RunConfig) -> None:
        self.directory = Path(directory)
        self.best = math.inf
        # The folder may hold an earlier training's files (`train --checkpoints` given
        # the same folder again; a worker's retry has them removed as its attempt starts,
        # core.run_folders.start_attempt), and a save killed midway its temporary file.
        # Until this run's first validation they would pass for its own (a cancel before
        # it would keep them).
        write_config(self.directory, config)  # first: it makes a folder not there yet
        clear_checkpoints(self.directory)

    def after_validation(
        self, model: nn.Module, optimizer: torch.optim.Optimizer | None, point: ValidationPoint
    ) -> None:
        self.save_last(model, optimizer, point.step, point.inputs, validation_loss=point.loss)
        if point.loss < self.best:
            self.best = point.loss
            save_checkpoint(
                self.directory,
                BEST_FILE,
                model,
                step=point.step,
                inputs=point.inputs,
                validation_loss=point.loss,
            )

    def save_last(
        self,
        model: nn.Module,
        optimizer: torch.optim.Optimizer | None,
        step: int,
        inputs: int,
        **extra: Any,
    ) -> None:
        state = {"step": step, "inputs": inputs, **extra}
        if optimizer is not None:
            state["optimizer"] = optimizer.state_dict()
        save_checkpoint(self.directory, LAST_FILE, model, **state)
