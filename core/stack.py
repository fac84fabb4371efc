"""Stacked runs: K runs of one shape trained as ONE model (issue 5's next speed step).

    fit_stack(configs, data, device, callbacks=None) -> list[FitResult | TrainingError]

Why: on a big GPU a step of the logbook's network is about 740 tiny kernels whose
time is mostly fixed cost (``bench/profile_step.py``), and runs on parallel CUDA
streams overlap only a little. K runs side by side in one model
(``ResConv(config, copies=K)``: K times the channels, every convolution grouped K
ways) run the same ~740 kernels per step, each K times wider.

What stays each run's own, as in ``fit()``: its initial weights (built from its
seed exactly as fit builds them, then copied into its slice), its batch order and
masks (its own generators), its BatchNorm statistics (its own channels), AdamW
(elementwise: a slice's update depends on that slice alone), its loss (the step
trains on the sum of the K losses, and a run's weights reach only its own), and
its validation: one pass of the stack feeds each run its own masked images and
gives each the loss fit's validation would (``validate_fixed_stack``,
``validate_faithful_stack``); samples and checkpoints come from a plain ResConv
holding the run's slice (``take_copy``). What may differ from K separate fits is
rounding: a grouped convolution adds in another order, as any two convolution
algorithms do.

Which runs stack (``stack_problem``): every setting equal but the seed, and an
activation without a weight shared across channels (PReLU) or random slopes
(RReLU). A run whose loss turns NaN fails alone; a run whose ``should_stop`` says so
stops alone; the others keep training, and ``on_early_end`` hands the ended run's
result over at once.

Checkpoints hold each run's model (``last.pt``, ``best.pt``) but not AdamW's state,
which lives in the stack. ``worker --stack K`` claims such runs together;
``bench/train_speed.py --stack K`` measures it.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import torch
from torch import nn

from core.capture_gate import GATE
from core.config import UNSTACKABLE_ACTIVATIONS
from core.errors import TrainingError
from core.fast_path import make_fast_step
from core.model import ResConv, trainable_params
from core.task import delete_halves, draw_halves
from core.train import (
    BUILD_LOCK,
    MASK_STREAM,
    SAMPLE_COUNT,
    SHUFFLE_STREAM,
    Checkpoints,
    FitCallbacks,
    FitResult,
    MemoryMeter,
    PassStopped,
    TrainClock,
    TrainPoint,
    ValidationPoint,
    between_batches,
    cosine_length,
    cosine_lr,
    make_optimizer,
    non_finite,
    planned_steps,
    point_due,
    sample_grid,
    seeded_generator,
    seeded_model,
    to_unit,
    train_batches,
    training_errors,
    validation_draws,
)

if TYPE_CHECKING:
    from core.config import RunConfig
    from core.data import Datasets


def stack_problem(configs: Sequence[RunConfig]) -> str | None:
    """Why these runs cannot train as one stack, or None when they can."""
    if not configs:
        return "no runs to stack"
    first = configs[0]
    if first.activation in UNSTACKABLE_ACTIVATIONS:
        return f"activation {first.activation}: {UNSTACKABLE_ACTIVATIONS[first.activation]}"
    for config in configs[1:]:
        if config.replace(seed=first.seed) != first:
            differing = sorted(
                key
                for key, value in config.to_dict().items()
                if key != "seed" and first.to_dict().get(key) != value
            )
            return f"runs differ in {', '.join(differing)} (only the seed may differ)"
    return None


# ----- one run's slice of the stacked model ----------------------------------------------


def put_copy(stacked: nn.Module, k: int, model: nn.Module) -> None:
    """Copy ``model``'s weights and buffers into copy ``k`` of ``stacked``."""
    whole = stacked.state_dict()
    with torch.no_grad():
        for name, value in model.state_dict().items():
            _slice(whole[name], k, value).copy_(value)


def take_copy(stacked: nn.Module, k: int, model: nn.Module) -> None:
    """Copy copy ``k`` of ``stacked`` into ``model`` (a plain ResConv of the same config)."""
    whole = stacked.state_dict()
    with torch.no_grad():
        for name, value in model.state_dict().items():
            value.copy_(_slice(whole[name], k, value))


def _slice(whole: torch.Tensor, k: int, part: torch.Tensor) -> torch.Tensor:
    if part.dim() == 0:
        return whole  # BatchNorm's step counter: one for all copies, the same in each run
    n = part.shape[0]
    return whole[k * n : (k + 1) * n]


# ----- the loop ------------------------------------------------------------------------------


@torch.no_grad()
def validate_fixed_stack(
    model: nn.Module,
    images: torch.Tensor,
    halves: Sequence[torch.Tensor],
    batch_size: int,
    stop: Callable[[], bool] | None = None,
) -> list[float]:
    """``core.train.validate_fixed`` for every run of a stack in one pass: run k's input
    is the images masked with its own halves, in its channel."""
    model.eval()
    totals = torch.zeros(len(halves), dtype=torch.float64, device=images.device)
    try:
        for start in range(0, len(images), batch_size):
            between_batches(stop)
            target = to_unit(images[start : start + batch_size])
            window = slice(start, start + batch_size)
            inputs = torch.cat([delete_halves(target, h[window]) for h in halves], dim=1)
            totals += _abs_error_per_copy(model(inputs), target, len(halves)).double()
    finally:
        model.train()
    return (totals / images.numel()).tolist()


@torch.no_grad()
def validate_faithful_stack(
    model: nn.Module,
    images: torch.Tensor,
    batch_size: int,
    generators: Sequence[torch.Generator],
    stop: Callable[[], bool] | None = None,
) -> list[float]:
    """``core.train.validate_faithful`` for every run of a stack in one pass (BatchNorm
    in train mode works per channel, so per run; each run draws its masks as alone)."""
    model.train(True)
    means = []
    for batch in images.split(batch_size):
        between_batches(stop)
        target = to_unit(batch)
        drawn = [draw_halves(len(batch), g, batch.device) for g in generators]
        inputs = torch.cat([delete_halves(target, halves) for halves in drawn], dim=1)
        means.append(_abs_error_per_copy(model(inputs), target, len(generators)) / target.numel())
    return torch.stack(means).mean(dim=0).tolist()


def _abs_error_per_copy(output: torch.Tensor, target: torch.Tensor, copies: int) -> torch.Tensor:
    """(K,) summed |output - target| of each run: output (n, K*C, H, W), target (n, C, H, W)."""
    n = len(target)
    stacked = output.reshape(n, copies, *target.shape[1:])
    return (stacked - target.unsqueeze(1)).abs().sum(dim=(0, 2, 3, 4))


def fit_stack(
    configs: Sequence[RunConfig],
    data: Datasets,
    device: torch.device | str,
    callbacks: Sequence[FitCallbacks] | None = None,
    checkpoint_dirs: Sequence[str | Path] | None = None,
) -> list[FitResult | TrainingError]:
    """Train ``configs`` as one stack; each run's FitResult, or the error that ended it.

    ``checkpoint_dirs``: one folder per run, as fit()'s ``checkpoint_dir`` (the model's
    ``last.pt`` and ``best.pt``; without AdamW's state, which lives in the stack).
    """
    problem = stack_problem(configs)
    if problem is not None:
        raise ValueError(f"cannot stack these runs: {problem}")
    device = torch.device(device)
    callbacks = list(callbacks) if callbacks is not None else [FitCallbacks() for _ in configs]
    if len({(c.log_every, c.log_every_s) for c in callbacks}) > 1:
        # One window of losses serves every run: a run's points must come at its own fit's.
        raise ValueError("cannot stack these runs: their callbacks log at different intervals")
    memory = MemoryMeter(device)
    try:
        with GATE.gpu_work():  # see core.capture_gate
            return _fit_stack(configs, data, device, callbacks, checkpoint_dirs, memory)
    finally:
        memory.finish()


def _fit_stack(
    configs: Sequence[RunConfig],
    data: Datasets,
    device: torch.device,
    callbacks: list[FitCallbacks],
    checkpoint_dirs: Sequence[str | Path] | None,
    memory: MemoryMeter,
) -> list[FitResult | TrainingError]:
    # As core.train._fit: no local names the stack, so its CUDA objects go with this call.
    with training_errors(device, f"out of memory for a stack of {len(configs)} runs"):
        return _Stack(configs, data, device, callbacks, checkpoint_dirs, memory).trained()


@dataclass
class _Member:
    """One run of the stack: its own model copy (for validation), generators and figures."""

    config: RunConfig
    callbacks: FitCallbacks
    model: nn.Module
    fixed_halves: torch.Tensor
    faithful_generator: torch.Generator
    out: FitResult
    checkpoints: Checkpoints | None = None
    error: TrainingError | None = None
    ended_at: tuple[int, int, float, float] | None = None  # _now() when it ended

    @property
    def live(self) -> bool:
        return self.error is None and not self.out.stopped


class _Stack:
    """The state of one fit_stack() call, phase by phase like core.train's _Run."""

    def __init__(
        self,
        configs: Sequence[RunConfig],
        data: Datasets,
        device: torch.device,
        callbacks: list[FitCallbacks],
        checkpoint_dirs: Sequence[str | Path] | None,
        memory: MemoryMeter,
    ) -> None:
        # One thread trains them all: any run's recorder reads the same waited seconds.
        self.wall = TrainClock.started(callbacks[0].waited_s)
        for started in callbacks:
            if started.on_start is not None:
                started.on_start()
        self.config, self.data, self.device, self.memory = configs[0], data, device, memory
        copies = len(configs)
        models = [seeded_model(config, device) for config in configs]
        with BUILD_LOCK:  # its (overwritten) random init must not shift another thread's
            self.model = ResConv(self.config, copies).to(device).train()
        for k, model in enumerate(models):
            put_copy(self.model, k, model)
        self.optimizer = make_optimizer(self.model, self.config)
        n_train = len(data.train)
        self.step_fn = make_fast_step(
            self.model, self.optimizer, data.train,
            [seeded_generator(c.seed, MASK_STREAM) for c in configs],
            batch_size=self.config.batch_size, t_max=cosine_length(self.config),
            capacity=planned_steps(n_train, self.config.batch_size, self.config.max_inputs)[0],
            precision=self.config.resolved_precision(device.type),
        )  # fmt: skip
        path = f"{self.step_fn.description} stack x{copies}"
        self.members = [
            _Member(
                config,
                callbacks[k],
                models[k],
                *validation_draws(config, data, device),
                FitResult(math.nan, param_count=trainable_params(models[k]), path_used=path),
                Checkpoints(checkpoint_dirs[k], config) if checkpoint_dirs else None,
            )  # fmt: skip
            for k, config in enumerate(configs)
        ]
        self.logging = callbacks[0]  # every run's points at once (fit_stack checks they agree)
        self.t_max = cosine_length(self.config)
        self.step = self.inputs = 0
        self.lr = self.config.lr
        self.window: list[torch.Tensor] = []
        self.window_inputs: list[int] = []  # the inputs done by each window step's end
        # One thread trains them all: any run's recorder reads the same waited seconds.
        self.clock = TrainClock(callbacks[0].waited_s)
        self.last_point = (0, 0.0)

    def trained(self) -> list[FitResult | TrainingError]:
        self.train()
        return self.results()

    def train(self) -> None:
        self.clock.start()
        for batches in zip(*self._batches(), strict=True):
            self._poll_stops()
            if not any(m.live for m in self.members):
                break
            GATE.yield_to_capture()
            self.lr = cosine_lr(self.step, self.config.lr, self.t_max)
            self.window.append(self.step_fn(torch.cat([b[0] for b in batches]), self.lr))
            self.step += 1
            self.inputs += len(batches[0][0])
            self.window_inputs.append(self.inputs)
            if self._log_due():
                self._log()
            if batches[0][1]:
                final = self.inputs >= self.config.max_inputs
                if final:  # fit()'s rule: the last steps' points before the final pass
                    self._log()
                self._validate(stoppable=not final)
        self._log()
        self.clock.stop(self.device)  # as fit(): the last pass and the samples are not training
        live = [m for m in self.members if m.live]
        if live:
            self._validate(resume=False)
        first = slice(0, min(SAMPLE_COUNT, len(self.data.validation)))
        for k, member in enumerate(self.members):
            if not member.live:
                continue
            take_copy(self.model, k, member.model)
            member.out.samples = sample_grid(
                member.model, self.data.validation[first], member.fixed_halves[first]
            )

    def _batches(self) -> list:
        n_train, config = len(self.data.train), self.config
        return [
            train_batches(
                n_train,
                config.batch_size,
                config.max_inputs,
                seeded_generator(member.config.seed, SHUFFLE_STREAM),
            )  # fmt: skip
            for member in self.members
        ]

    def _poll_stops(self) -> None:
        for k, member in enumerate(self.members):
            should_stop = member.callbacks.should_stop
            if not (member.live and should_stop is not None and should_stop()):
                continue
            # Like fit(): the losses since its last point first, unless they diverged.
            rows = self._window_rows()
            self._mark_diverged(rows)
            if member.live:
                if rows:
                    self._emit(k, member, rows)
                member.out.stopped = True
                member.ended_at = self._now()
                # like fit(): a stopped run saves last.pt (while the run is still its own)
                if member.checkpoints is not None and member.callbacks.save_on_stop():
                    take_copy(self.model, k, member.model)
                    member.checkpoints.save_last(member.model, None, self.step, self.inputs)
                self._ended_early(member)

    def _log_due(self) -> bool:
        """fit()'s rule for a TrainPoint, for every run at once."""
        return point_due(self.logging, len(self.window), self.clock, self.last_point[1])

    def _log(self) -> None:
        """A TrainPoint per live run for the steps since the last one (one sync for all)."""
        rows = self._window_rows()
        if not rows:
            return
        self._mark_diverged(rows)
        for k, member in enumerate(self.members):
            if member.live:
                self._emit(k, member, rows)
        self.window, self.window_inputs = [], []
        self.last_point = (self.inputs, self.clock.seconds())

    def _window_rows(self) -> list[list[float]]:
        """The window's losses, a row per step and a column per run (the only sync)."""
        if not self.window:
            return []
        return torch.stack(self.window).view(len(self.window), -1).tolist()

    def _mark_diverged(self, rows: list[list[float]]) -> None:
        """A run with a NaN/inf loss in ``rows`` fails (NonFiniteLoss names the first step)."""
        for k, member in enumerate(self.members):
            if not member.live:
                continue
            # Its slice goes on computing NaN; no other run's weights or losses read it.
            member.error = non_finite([row[k] for row in rows], self.step, self.window_inputs)
            if member.error is not None:
                self._ended_early(member)

    def _ended_early(self, member: _Member) -> None:
        if member.callbacks.on_early_end is not None:
            member.callbacks.on_early_end(self._result(member))

    def _emit(self, k: int, member: _Member, rows: list[list[float]]) -> None:
        seconds = self.clock.seconds()
        done, before = self.inputs - self.last_point[0], seconds - self.last_point[1]
        point = TrainPoint(
            step=self.step,
            inputs=self.inputs,
            loss=sum(row[k] for row in rows) / len(rows),
            lr=self.lr,
            inputs_per_s=done / before if before > 0 else 0.0,
            memory_bytes=self.memory.current(),
        )
        member.out.train_losses.append(point)
        if member.callbacks.on_train_loss is not None:
            member.callbacks.on_train_loss(point)

    def _validate(self, stoppable: bool = False, resume: bool = True) -> None:
        """fit()'s pass for every live run. ``stoppable`` (between epochs): ended early,
        unrecorded, once every live run asks to stop (a signal to the worker); the next
        step's ``_poll_stops`` then stops them. One run's cancel alone lets it end.
        ``resume``: the training clock runs again after it (not after the last pass)."""
        self._mark_diverged(self._window_rows())  # never validate a run that diverged
        self.clock.stop(self.device)
        live = [(k, member) for k, member in enumerate(self.members) if member.live]
        if live:
            try:
                losses = self._validation_losses(self._all_stop if stoppable else None)
            except PassStopped:
                self.clock.start()
                return
            for k, member in live:
                self._record_validation(k, member, losses[k])
        if resume:
            self.clock.start()

    def _all_stop(self) -> bool:
        # between_batches, not should_stop: a batch of the pass is no training step. Each
        # run is asked (a list, not all()'s first "no"): each run's stall watch hears it
        # is alive, or the pass's time was timed as its next step.
        asks = [
            m.callbacks.between_batches or m.callbacks.should_stop for m in self.members if m.live
        ]
        answers = [ask is not None and ask() for ask in asks]
        return all(answers)

    def _validation_losses(self, stop: Callable[[], bool] | None = None) -> list[float]:
        """Every run's validation loss (fit's rules), from one pass of the stacked model."""
        config, images = self.config, self.data.validation
        if config.validation == "seed-faithful":
            generators = [member.faithful_generator for member in self.members]
            return validate_faithful_stack(self.model, images, config.batch_size, generators, stop)
        # Fixed masks, eval mode and unchanged weights since the last pass (the final
        # pass right after the last epoch's): every run would repeat its value.
        repeated = [self._loss_at_this_step(member) for member in self.members]
        if all(loss is not None for loss, m in zip(repeated, self.members, strict=True) if m.live):
            return [math.nan if loss is None else loss for loss in repeated]
        halves = [member.fixed_halves for member in self.members]
        return validate_fixed_stack(self.model, images, halves, config.batch_size, stop)

    def _loss_at_this_step(self, member: _Member) -> float | None:
        points = member.out.validation_losses
        return points[-1].loss if points and points[-1].step == self.step else None

    def _record_validation(self, k: int, member: _Member, loss: float) -> None:
        points = member.out.validation_losses
        point = ValidationPoint(len(points) + 1, self.step, self.inputs, loss)
        points.append(point)
        member.out.validation_loss = loss
        try:  # the point first, as in core.train's _Run._validate: is the run still its own
            if member.callbacks.on_validation is not None:
                member.callbacks.on_validation(point)
        finally:
            if member.checkpoints is not None and member.callbacks.checkpoint_allowed():
                take_copy(self.model, k, member.model)
                member.checkpoints.after_validation(member.model, None, point)

    def results(self) -> list[FitResult | TrainingError]:
        return [self._result(member) for member in self.members]

    def _result(self, member: _Member) -> FitResult | TrainingError:
        """What fit() would return for this run: its figures up to its end (or now)."""
        if member.error is not None:
            return member.error
        steps, inputs, seconds, wall = member.ended_at or self._now()
        result = member.out
        result.steps, result.inputs_seen, result.wall_seconds = steps, inputs, wall
        result.inputs_per_s = inputs / seconds if seconds > 0 else 0.0
        # Not one run's peak (the stack's is K runs'): unmeasured, like a run that
        # shared its process; worker admission reads recorded peaks as one run's need.
        result.peak_memory_bytes = 0
        if member.checkpoints is not None:
            result.checkpoint_path = str(member.checkpoints.directory)
        return result

    def _now(self) -> tuple[int, int, float, float]:
        """(steps, inputs, training seconds, wall seconds) so far."""
        return self.step, self.inputs, self.clock.seconds(), self.wall.seconds()
