"""fit() and its pieces on tiny synthetic data: schedule, batching, validation, determinism."""

from __future__ import annotations

import json
import math
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest
import torch
from database_wait import waiting_once
from torch import nn
from traceback_locals import frames_of, locals_of_type

import core.train as train_module
from core.checkpoint import load_checkpoint, load_config, load_model
from core.config import RunConfig
from core.data import Datasets, Location, load_datasets
from core.params import count_params
from core.pauses import PauseWatch
from core.queue.failures import FailureCause, failure_cause
from core.stack import validate_faithful_stack, validate_fixed_stack
from core.train import (
    FitCallbacks,
    NonFiniteLoss,
    OutOfMemory,
    TrainPoint,
    ValidationPoint,
    cosine_lr,
    fit,
    planned_steps,
    train_batches,
    validate_faithful,
    validate_fixed,
)
from core.worker import failure_message

TINY = RunConfig(layers=2, channels=4, batch_size=32, max_inputs=300, seed=0)


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory, idx_writer: Callable[..., Path]) -> Datasets:
    folder = idx_writer(tmp_path_factory.mktemp("idx"), train=256, test=128)
    return load_datasets(
        "fmnist", 28, "cpu", locations=[Location("t", folder)], cache=folder / "c", download=None
    )


# ----- the cosine schedule -----------------------------------------------------------


def test_cosine_lr_key_values() -> None:
    assert cosine_lr(0, 3e-4, 2812) == 3e-4
    assert cosine_lr(1406, 3e-4, 2812) == pytest.approx(1.5e-4)
    assert cosine_lr(2812, 3e-4, 2812) == pytest.approx(0.0, abs=1e-20)
    # The logbook's 2 steps past T_max ran at about 1e-10.
    assert 0 < cosine_lr(2813, 3e-4, 2812) < 2e-10
    assert cosine_lr(5, 1e-3, 0) == 1e-3  # fewer inputs than one batch: no schedule


def test_cosine_lr_matches_torchs_scheduler() -> None:
    optimizer = torch.optim.AdamW([nn.Parameter(torch.zeros(1))], lr=3e-4)
    scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=10)
    for step in range(13):
        assert optimizer.param_groups[0]["lr"] == pytest.approx(
            cosine_lr(step, 3e-4, 10), abs=1e-12
        )
        optimizer.step()
        scheduler.step()


# ----- batching ----------------------------------------------------------------------


def test_planned_steps_like_the_logbook() -> None:
    assert planned_steps(60_000, 64, 180_000) == (2814, 180_000)  # 3 epochs of 938 batches
    assert planned_steps(60_000, 64, 6_000) == (94, 6_016)  # whole batches until >= max
    assert planned_steps(256, 32, 300) == (10, 320)


def test_train_batches_are_shuffled_epochs_with_a_short_last_batch() -> None:
    batches = list(train_batches(10, 4, 25, torch.Generator().manual_seed(0)))
    sizes = [len(indices) for indices, _ in batches]
    assert sizes == [4, 4, 2, 4, 4, 2, 4, 4]
    assert [end for _, end in batches] == [False, False, True] * 2 + [False, False]
    first_epoch = torch.cat([indices for indices, _ in batches[:3]])
    assert sorted(first_epoch.tolist()) == list(range(10))
    assert first_epoch.tolist() != list(range(10))
    assert len(batches) == planned_steps(10, 4, 25)[0]


# ----- fit ---------------------------------------------------------------------------


def test_same_seed_same_curve_on_cpu(data: Datasets) -> None:
    first, second = fit(TINY, data, "cpu"), fit(TINY, data, "cpu")
    assert [p.loss for p in first.train_losses] == [p.loss for p in second.train_losses]
    assert first.validation_losses == second.validation_losses
    assert torch.equal(first.samples, second.samples)
    other = fit(TINY.replace(seed=1), data, "cpu")
    assert [p.loss for p in other.train_losses] != [p.loss for p in first.train_losses]


def test_configs_with_one_training_key_train_to_equal_losses(data: Datasets) -> None:
    # What `queue` notes of such runs (core.sweep.trained_alike_note): at one layer the
    # activation, the batch norm of a v2 and the residual weight build nothing.
    from core.params import training_key

    one = TINY.replace(layers=1, max_inputs=128)
    alike = [one.replace(activation="tanh"), one.replace(bn_encoder=1, residual_weight=0.5)]
    assert {training_key(config) for config in (one, *alike)} == {training_key(one)}
    every_step = FitCallbacks(log_every=1)
    losses = [[p.loss for p in fit(c, data, "cpu", every_step).train_losses] for c in (one, *alike)]
    assert len(losses[0]) == 4 and losses[0] == losses[1] == losses[2]  # every step's
    # At two layers the activation builds another model: another key, other losses.
    two = TINY.replace(max_inputs=128)
    tanh = two.replace(activation="tanh")
    assert training_key(tanh) != training_key(two)
    other = [[p.loss for p in fit(c, data, "cpu", every_step).train_losses] for c in (two, tanh)]
    assert other[0] != other[1]


def test_result_figures(data: Datasets) -> None:
    before = data.train.clone()
    result = fit(TINY, data, "cpu")
    assert (result.steps, result.inputs_seen) == planned_steps(256, 32, 300) == (10, 320)
    assert result.param_count == count_params(TINY)
    assert result.inputs_per_s > 0 and result.wall_seconds > 0
    assert result.peak_memory_bytes == 0  # not measured on a CPU: the process's peak
    assert {p.memory_bytes for p in result.train_losses} == {None}  # nor live
    assert result.path_used == "plain fp32" and not result.stopped
    assert result.samples.shape == (3, 8, 28, 28) and result.samples.dtype == torch.uint8
    masked, _, target = result.samples
    assert (masked <= target).all() and (masked == 0).sum() >= 8 * 14 * 28
    assert math.isfinite(result.validation_loss)
    assert torch.equal(data.train, before)  # the dataset is never modified


def test_loss_goes_down(data: Datasets) -> None:
    result = fit(TINY.replace(max_inputs=2560, channels=8), data, "cpu", FitCallbacks(log_every=10))
    assert result.train_losses[-1].loss < result.train_losses[0].loss


def test_callbacks_get_windowed_train_points_and_every_validation(data: Datasets) -> None:
    train: list[TrainPoint] = []
    validation: list[ValidationPoint] = []
    callbacks = FitCallbacks(
        on_train_loss=train.append, on_validation=validation.append, log_every=4
    )
    result = fit(TINY.replace(max_inputs=512), data, "cpu", callbacks)  # exactly 2 epochs
    assert [p.step for p in train] == [4, 8, 12, 16]
    assert [p.inputs for p in train] == [128, 256, 384, 512]
    assert train[0].lr == cosine_lr(3, TINY.lr, 512 // 32)  # the lr of the window's last step
    # After each of the 2 epochs, then the final pass; the reported loss is the last one.
    assert [(p.epoch, p.step) for p in validation] == [(1, 8), (2, 16), (3, 16)]
    assert validation == result.validation_losses and result.train_losses == train
    assert result.validation_loss == validation[-1].loss


def test_a_train_point_also_comes_by_training_time(data: Datasets) -> None:
    # 20 steps of an 11-layer run took 100 s on a loaded CPU: its progress and in/s stood
    # at 0% and "-" that long. log_every_s 0: a point after every step.
    by_steps = fit(TINY, data, "cpu", FitCallbacks(log_every=1000))
    assert [p.step for p in by_steps.train_losses] == [10]  # the last: whatever the count
    by_time = fit(TINY, data, "cpu", FitCallbacks(log_every=1000, log_every_s=0.0))
    assert [p.step for p in by_time.train_losses] == list(range(1, 11))
    assert all(p.inputs_per_s > 0 for p in by_time.train_losses)
    assert by_time.validation_loss == by_steps.validation_loss  # the training is the same
    slow = fit(TINY, data, "cpu", FitCallbacks(log_every=1000, log_every_s=3600.0))
    assert [p.step for p in slow.train_losses] == [10]


def test_a_run_shorter_than_an_epoch_validates_once(data: Datasets) -> None:
    result = fit(TINY.replace(max_inputs=64), data, "cpu")
    assert [(p.epoch, p.inputs) for p in result.validation_losses] == [(1, 64)]


def test_fixed_validation_repeats_and_faithful_validation_redraws(data: Datasets) -> None:
    config = TINY.replace(max_inputs=256)  # one epoch: a pass after it, then the final pass
    fixed = [p.loss for p in fit(config, data, "cpu").validation_losses]
    faithful = [
        p.loss
        for p in fit(config.replace(validation="seed-faithful"), data, "cpu").validation_losses
    ]
    assert len(fixed) == len(faithful) == 2
    assert fixed[0] == fixed[1]  # same weights, same masks, eval mode
    assert faithful[0] != faithful[1]  # new masks, BatchNorm on batch statistics


class _Zero(nn.Module):
    """Outputs zeros, so a batch's L1 is its mean pixel value; has a BN to watch."""

    def __init__(self) -> None:
        super().__init__()
        self.bn = nn.BatchNorm2d(1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.bn(x) * 0


def test_fixed_validation_is_the_exact_mean_in_eval_mode() -> None:
    images = torch.randint(0, 256, (10, 1, 4, 4), dtype=torch.uint8)
    halves = torch.zeros(10, dtype=torch.long)
    model = _Zero()
    loss = validate_fixed(model, images, halves, batch_size=4)  # batches of 4, 4, 2
    assert loss == pytest.approx(images.double().div(255).mean().item())
    assert model.bn.num_batches_tracked.item() == 0 and model.training  # eval, then back


def test_faithful_validation_is_the_unweighted_mean_of_batch_means_in_train_mode() -> None:
    images = torch.cat([torch.full((4, 1, 4, 4), 255), torch.zeros(1, 1, 4, 4)]).to(torch.uint8)
    model = _Zero()
    loss = validate_faithful(model, images, 4, torch.Generator().manual_seed(0))
    assert loss == pytest.approx((1.0 + 0.0) / 2)  # not 4/5: the short batch counts fully
    assert model.bn.num_batches_tracked.item() == 2  # BatchNorm ran in train mode


def _validators() -> dict[str, Callable[[Callable[[], bool]], object]]:
    """Each validation pass over 10 images in batches of 4, 4 and 2, given ``stop``."""
    images = torch.randint(0, 256, (10, 1, 4, 4), dtype=torch.uint8)
    halves = torch.zeros(10, dtype=torch.long)
    generator = torch.Generator().manual_seed(0)
    return {
        "fixed": lambda stop: validate_fixed(_Zero(), images, halves, 4, stop),
        "faithful": lambda stop: validate_faithful(_Zero(), images, 4, generator, stop),
        "fixed stack": lambda stop: validate_fixed_stack(_Zero(), images, [halves], 4, stop),
        "faithful stack": lambda stop: validate_faithful_stack(
            _Zero(), images, 4, [generator], stop
        ),
    }


@pytest.mark.parametrize("kind", list(_validators()))
def test_a_validation_pass_lets_a_waiting_graph_capture_go_first(kind: str) -> None:
    """A slot thread's capture waits for every other slot's share of the GPU (and they all
    pause meanwhile): a validation pass steps aside at its next batch, as a train step does,
    instead of holding it for the whole pass."""
    gate, begun, captured_at = train_module.GATE, [], []

    def capture() -> None:
        with gate.exclusive():
            captured_at.append(len(begun))

    def stop() -> bool:  # called before each batch, after the gate's turn
        begun.append(1)
        if len(begun) == 1:  # another slot thread asks for a capture during batch 1
            threading.Thread(target=capture, name="capture").start()
            while not gate._waiting:
                time.sleep(0.001)
        return False

    with gate.gpu_work():  # as in fit(): a slot thread's share
        _validators()[kind](stop)
    for thread in threading.enumerate():
        if thread.name == "capture":
            thread.join(5)
    assert len(begun) == 3 and captured_at == [1]  # after batch 1, not after the pass


def test_should_stop_ends_the_run_early_without_error(data: Datasets, tmp_path: Path) -> None:
    polls = []

    def should_stop() -> bool:
        polls.append(1)
        return len(polls) > 3

    result = fit(TINY, data, "cpu", FitCallbacks(should_stop=should_stop), tmp_path / "ck")
    assert result.stopped and result.steps == 3 and result.inputs_seen == 96
    assert result.validation_losses == [] and math.isnan(result.validation_loss)
    assert (tmp_path / "ck" / "last.pt").is_file()


@pytest.mark.parametrize("validation", ["fixed", "seed-faithful"])
def test_a_stop_during_a_pass_between_epochs_ends_it_between_batches(
    data: Datasets, tmp_path: Path, validation: str
) -> None:
    # A pass is 10,000 images: 42 s for 11 layers on a 2-core CPU, 2 minutes for 21 at
    # 32x32. A stopped worker (or a cancel) waited it out, for a run put back anyway.
    polls: list[int] = []

    def should_stop() -> bool:  # 8 steps an epoch, then the pass's 4 batches of 32
        polls.append(1)
        return len(polls) > 9

    config = TINY.replace(max_inputs=512, validation=validation)  # 2 epochs
    result = fit(config, data, "cpu", FitCallbacks(should_stop=should_stop), tmp_path / "ck")
    assert result.stopped and result.steps == 8 and len(polls) == 10  # one batch, then stop
    assert result.validation_losses == [] and math.isnan(result.validation_loss)
    assert (tmp_path / "ck" / "last.pt").is_file()


def test_a_stop_during_the_last_pass_lets_it_end(data: Datasets) -> None:
    # Every step done: a stop now would throw the whole training away.
    polls: list[int] = []

    def should_stop() -> bool:
        polls.append(1)
        return len(polls) > 8

    result = fit(TINY.replace(max_inputs=256), data, "cpu", FitCallbacks(should_stop=should_stop))
    assert not result.stopped and len(polls) == 8 and result.steps == 8
    assert len(result.validation_losses) == 2 and result.samples is not None


def test_the_last_steps_point_comes_before_a_final_pass_at_an_epoch_s_end(
    data: Datasets,
) -> None:
    # max_inputs a whole number of epochs (the default's 3): the final pass came before
    # the last steps' point, so the run read short of every input while it validated,
    # and `stop`, the forecast and the ETA took it for a run that goes back to the queue.
    events: list[tuple[str, int]] = []
    callbacks = FitCallbacks(
        on_train_loss=lambda p: events.append(("train", p.inputs)),
        on_validation=lambda p: events.append(("val", p.inputs)),
        log_every=1000,
    )
    fit(TINY.replace(max_inputs=512), data, "cpu", callbacks)  # 2 epochs of 256
    assert events[:3] == [("val", 256), ("train", 512), ("val", 512)]


def test_time_spent_waiting_for_the_database_is_not_training_time(data: Datasets) -> None:
    # A run that lived through a database outage (its worker's writes waiting) ended
    # with the wait counted as training: its in/s was as low as the outage was long.
    should_stop, waited_s = waiting_once(at_poll=4, seconds=3.0)
    callbacks = FitCallbacks(should_stop=should_stop, waited_s=waited_s, log_every=2)
    began = time.perf_counter()
    result = fit(TINY, data, "cpu", callbacks)
    # The run's time leaves the wait out too: a PostgreSQL restart of 45 s made a run's
    # minutes 1.34 where the same config's were 0.47.
    assert result.wall_seconds <= time.perf_counter() - began - 3.0
    # Training time is that less model build and validation passes.
    assert 320 / result.inputs_per_s < result.wall_seconds
    waited_through = result.train_losses[1]  # steps 3 and 4: 64 inputs, and the wait
    assert waited_through.step == 4 and waited_through.inputs_per_s > 64 / 3.0


def test_time_the_process_stood_still_is_not_training_time(
    data: Datasets, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A worker stopped (Ctrl-Z, kill -STOP, docker pause) for 10 minutes after 2 of
    # training, then resumed, ended with 12 minutes in the results and a sixth of its
    # in/s. A stop is played here as the whole process standing still: the training
    # thread sleeps while the pause watch's thread cannot tick (its lock held).
    watch = PauseWatch(late_s=1.0)
    monkeypatch.setattr(train_module, "PAUSES", watch, raising=False)
    polls = 0

    def stopped_once() -> bool:
        nonlocal polls
        polls += 1
        if polls == 4:
            with watch.lock:
                time.sleep(3.0)
        return False

    began = time.perf_counter()
    result = fit(TINY, data, "cpu", FitCallbacks(should_stop=stopped_once, log_every=2))
    assert result.wall_seconds <= time.perf_counter() - began - 2.0
    stopped_through = result.train_losses[1]  # steps 3 and 4: 64 inputs, and the stop
    assert stopped_through.step == 4 and stopped_through.inputs_per_s > 64 / 2.0
    assert 320 / result.inputs_per_s < 2.0


SLOW_S = 1.5  # seconds a patched piece after the last step takes


def _slow(real: Callable[..., object]) -> Callable[..., object]:
    def slow(*args: object, **kwargs: object) -> object:
        time.sleep(SLOW_S)
        return real(*args, **kwargs)

    return slow


def test_the_samples_after_the_last_pass_are_not_training_time(
    data: Datasets, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The clock ran on from the final pass's end to result(): the sample grid (on CUDA
    # its cuDNN autotuning for a batch of 8 too) lowered the run's recorded in/s.
    monkeypatch.setattr(train_module, "sample_grid", _slow(train_module.sample_grid))
    result = fit(TINY, data, "cpu")
    assert result.samples is not None
    assert 320 / result.inputs_per_s < result.wall_seconds - SLOW_S


def test_a_stopped_run_s_last_pt_is_not_training_time(
    data: Datasets, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setattr(train_module, "save_checkpoint", _slow(train_module.save_checkpoint))
    polls = iter(range(1000))
    callbacks = FitCallbacks(should_stop=lambda: next(polls) >= 3)  # 3 steps, then a stop
    result = fit(TINY, data, "cpu", callbacks, tmp_path / "ck")
    assert result.stopped and result.steps == 3 and (tmp_path / "ck" / "last.pt").is_file()
    assert 96 / result.inputs_per_s < result.wall_seconds - SLOW_S


def test_a_run_stopped_because_another_worker_has_it_leaves_its_folder_alone(
    data: Datasets, tmp_path: Path
) -> None:
    # The paused worker's stop saved last.pt into the folder the run's new attempt uses.
    callbacks = FitCallbacks(should_stop=lambda: True, may_save_on_stop=lambda: False)
    result = fit(TINY, data, "cpu", callbacks, tmp_path / "ck")
    assert result.stopped and not (tmp_path / "ck" / "last.pt").exists()


def _poisoned_step(monkeypatch: pytest.MonkeyPatch, at_step: int, value: float) -> None:
    real = train_module.make_train_step

    def make(*args: object, **kwargs: object):
        step, path = real(*args, **kwargs)
        calls = []

        def poisoned(indices: torch.Tensor, lr: float) -> torch.Tensor:
            calls.append(1)
            loss = step(indices, lr)
            return torch.tensor(value) if len(calls) == at_step else loss

        return poisoned, path

    monkeypatch.setattr(train_module, "make_train_step", make)


@pytest.mark.parametrize(("value", "word"), [(math.nan, "NaN"), (math.inf, "inf")])
def test_non_finite_loss_names_the_step(
    data: Datasets, monkeypatch: pytest.MonkeyPatch, value: float, word: str
) -> None:
    _poisoned_step(monkeypatch, at_step=7, value=value)
    with pytest.raises(NonFiniteLoss, match=f"^loss became {word} at step 7$") as failed:
        fit(TINY, data, "cpu", FitCallbacks(log_every=4))
    # Its progress: up to step 7, not step 8 where the window's losses were read back.
    assert failed.value.inputs_done == 7 * TINY.batch_size
    # The text the worker stores reads back as its cause (dashboard, status, retry --cause).
    assert failure_cause(failure_message(failed.value)) == FailureCause.DIVERGED


def test_non_finite_loss_is_caught_before_a_validation_pass(
    data: Datasets, monkeypatch: pytest.MonkeyPatch
) -> None:
    _poisoned_step(monkeypatch, at_step=2, value=math.nan)
    seen: list[ValidationPoint] = []
    with pytest.raises(NonFiniteLoss, match="at step 2") as caught:
        fit(TINY, data, "cpu", FitCallbacks(on_validation=seen.append, log_every=1000))
    assert seen == []
    # How far it trained up to step 2, though seen at the epoch's end (before its pass):
    # the failed run's progress, which read 0% where no point had been recorded yet, and
    # then the epoch's end.
    assert caught.value.inputs_done == 2 * TINY.batch_size


def test_a_failed_run_is_not_kept_alive_by_its_traceback(
    data: Datasets, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Slot threads share the GPU: a failed run's tensors must go before the next starts."""
    _poisoned_step(monkeypatch, at_step=2, value=math.nan)
    with pytest.raises(NonFiniteLoss) as failed:
        fit(TINY, data, "cpu", FitCallbacks(log_every=1))
    frames = frames_of(failed.value)
    assert len(frames) > 3  # fit -> _fit -> _Run.train -> ...
    assert locals_of_type(frames, train_module._Run) == []


def test_out_of_memory_becomes_a_short_training_error(
    data: Datasets, monkeypatch: pytest.MonkeyPatch
) -> None:
    def make(*args: object, **kwargs: object):
        def step(indices: torch.Tensor, lr: float) -> torch.Tensor:
            raise torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 2 GiB")

        return step, "plain"

    monkeypatch.setattr(train_module, "make_train_step", make)
    with pytest.raises(
        OutOfMemory, match="out of memory at batch 32: try a smaller batch_size"
    ) as failed:
        fit(TINY, data, "cpu")
    assert failure_cause(failure_message(failed.value)) == FailureCause.OUT_OF_MEMORY


def test_a_run_starting_in_a_used_folder_first_removes_the_old_checkpoints(
    data: Datasets, tmp_path: Path
) -> None:
    # A removed run's id came back (SQLite), or an attempt before this one: its files
    # must not pass for this run's when it is cancelled before its first validation.
    folder = tmp_path / "run-18"
    folder.mkdir()
    for name in ("last.pt", "best.pt", "config.json"):
        (folder / name).write_bytes(b"an earlier run's")
    stop_at_once = FitCallbacks(should_stop=lambda: True)
    fit(TINY.replace(max_inputs=512), data, "cpu", stop_at_once, checkpoint_dir=folder)
    assert load_config(folder) == TINY.replace(max_inputs=512)
    assert not (folder / "best.pt").exists()  # no validation pass yet
    assert load_checkpoint(folder / "last.pt")["step"] == 0  # the cancelled run's own


def test_checkpoints_last_best_and_config(data: Datasets, tmp_path: Path) -> None:
    config = TINY.replace(max_inputs=512)
    result = fit(config, data, "cpu", checkpoint_dir=tmp_path / "ck")
    folder = Path(result.checkpoint_path or "")
    assert folder == tmp_path / "ck"
    assert sorted(p.name for p in folder.iterdir()) == ["best.pt", "config.json", "last.pt"]
    assert load_config(folder) == config
    assert json.loads((folder / "config.json").read_text())["layers"] == 2
    last, best = load_checkpoint(folder / "last.pt"), load_checkpoint(folder / "best.pt")
    assert last["step"] == 16 and "optimizer" in last
    assert best["validation_loss"] == min(p.loss for p in result.validation_losses)
    model = load_model(folder, "last.pt")
    assert not model.training and sum(p.numel() for p in model.parameters()) == result.param_count


class _NoQueue:
    """What a RunRecorder asks of its repo, answered with nothing."""

    def add_metrics(self, *args: object, **kwargs: object) -> None:
        pass

    def is_cancel_requested(self, *args: object) -> bool:
        return False


def test_the_stall_watch_times_training_steps_only(data: Datasets) -> None:
    # The pass between epochs polls for a stop before each batch; the recorder timed
    # those batches (forward only) as steps, and the stall limit, 200 steps' time,
    # shrank with them. They keep the run alive instead; the last pass never polls.
    from core.recording import RunRecorder, StopFlags

    steps: list[int] = []
    alive: list[int] = []
    recorder = RunRecorder(
        _NoQueue(),  # type: ignore[arg-type]
        1,
        StopFlags(),
        on_step=lambda: steps.append(1),
        on_alive=lambda: alive.append(1),
    )
    result = fit(TINY.replace(max_inputs=512), data, "cpu", recorder.callbacks())  # 2 epochs
    assert result.steps == 16 and len(steps) == 16
    assert len(alive) == 4  # the first pass's 4 batches of 32
