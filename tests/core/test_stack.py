"""Stacked runs (core.stack), on CPU: K runs in one model train as K separate fits do."""

from __future__ import annotations

import time
from collections.abc import Callable
from functools import partial
from pathlib import Path

import pytest
import torch
from database_wait import waiting_once
from traceback_locals import frames_of, locals_of_type

import core.stack as stack
import core.train as train_module
from core.config import RunConfig
from core.data import Datasets, Location, load_datasets
from core.errors import TrainingError
from core.model import ResConv, build_model
from core.task import draw_halves
from core.train import (
    FitCallbacks,
    FitResult,
    NonFiniteLoss,
    fit,
    planned_steps,
    seeded_generator,
    seeded_model,
    validate_faithful,
    validate_fixed,
)

# 3 layers of 4 channels, batch 16: 16 steps a run over the 96 train images (6 per epoch).
CONFIG = RunConfig(layers=3, channels=4, batch_size=16, max_inputs=240, seed=3)
SEEDS = (3, 4, 5)


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory, idx_writer: Callable[..., Path]) -> Datasets:
    folder = idx_writer(tmp_path_factory.mktemp("idx"), train=96, test=40)
    return load_datasets(
        "fmnist", 28, "cpu", locations=[Location("t", folder)], cache=folder / "c", download=None
    )


def _configs() -> list[RunConfig]:
    return [CONFIG.replace(seed=seed) for seed in SEEDS]


def _ok(result: FitResult | TrainingError) -> FitResult:
    assert isinstance(result, FitResult), repr(result)
    return result


# ----- which runs stack ------------------------------------------------------------------


def test_only_the_seed_may_differ() -> None:
    assert stack.stack_problem(_configs()) is None
    problem = stack.stack_problem([CONFIG, CONFIG.replace(seed=9, lr=1e-3, layers=5)])
    assert problem == "runs differ in layers, lr (only the seed may differ)"
    assert "PReLU" in (stack.stack_problem([CONFIG.replace(activation="prelu")]) or "")
    assert "random" in (stack.stack_problem([CONFIG.replace(activation="rrelu")]) or "")
    with pytest.raises(ValueError, match="cannot stack these runs: runs differ in lr"):
        stack.fit_stack([CONFIG, CONFIG.replace(lr=1e-3)], None, "cpu")  # type: ignore[arg-type]
    callbacks = [FitCallbacks(log_every=4), FitCallbacks(log_every=8)]
    with pytest.raises(ValueError, match="log at different intervals"):
        stack.fit_stack(_configs()[:2], None, "cpu", callbacks)  # type: ignore[arg-type]


# ----- the stacked model -----------------------------------------------------------------


def _runs_and_their_stack() -> tuple[list[torch.nn.Module], ResConv]:
    """The three seeds' models, as fit() builds them, and a stack holding them."""
    models = [seeded_model(CONFIG.replace(seed=seed), torch.device("cpu")) for seed in SEEDS]
    stacked = ResConv(CONFIG, copies=3)
    for k, model in enumerate(models):
        stack.put_copy(stacked, k, model)
    return models, stacked


def _slices(stacked: ResConv) -> list[dict[str, torch.Tensor]]:
    """Each run's slice of ``stacked``, as the state dict of a plain model."""
    out = []
    for k in range(len(SEEDS)):
        back = build_model(CONFIG)
        stack.take_copy(stacked, k, back)
        out.append(back.state_dict())
    return out


def test_a_stack_holds_each_run_in_its_own_slice() -> None:
    models, stacked = _runs_and_their_stack()
    assert sum(p.numel() for p in stacked.parameters()) == 3 * sum(
        p.numel() for p in models[0].parameters()
    )
    for mine, model in zip(_slices(stacked), models, strict=True):
        for (name, value), theirs in zip(mine.items(), model.state_dict().values(), strict=True):
            assert torch.equal(value, theirs), name


@pytest.mark.parametrize("mode", ["train", "eval"])
def test_copy_k_of_the_output_is_run_k_on_its_own_input(mode: str) -> None:
    # The whole claim of stacking: grouped convolutions and per-channel BatchNorm keep the
    # runs apart, so channel k of the stack's output is run k's model on channel k's input.
    models, stacked = _runs_and_their_stack()
    for model in (*models, stacked):
        model.train(mode == "train")
    inputs = torch.rand(6, 3, 28, 28)
    together = stacked(inputs)
    for k, model in enumerate(models):
        alone = model(inputs[:, k : k + 1])
        torch.testing.assert_close(together[:, k : k + 1], alone, rtol=1e-5, atol=1e-6)


def test_one_validation_pass_of_a_stack_gives_each_runs_own_figures(data: Datasets) -> None:
    models, stacked = _runs_and_their_stack()
    images = data.validation
    halves = [draw_halves(len(images), seeded_generator(s, 2), "cpu") for s in SEEDS]
    together = stack.validate_fixed_stack(stacked, images, halves, 16)
    alone = [validate_fixed(m, images, h, 16) for m, h in zip(models, halves, strict=True)]
    assert together == pytest.approx(alone, rel=1e-5)
    # Seed-faithful: train-mode BatchNorm and fresh masks, each run from its own generator.
    together = stack.validate_faithful_stack(
        stacked, images, 16, [seeded_generator(s, 3) for s in SEEDS]
    )
    alone = [
        validate_faithful(m, images, 16, seeded_generator(s, 3))
        for m, s in zip(models, SEEDS, strict=True)
    ]
    assert together == pytest.approx(alone, rel=1e-5)
    for mine, model in zip(_slices(stacked), models, strict=True):  # running stats moved alike
        for (name, value), theirs in zip(mine.items(), model.state_dict().values(), strict=True):
            torch.testing.assert_close(value, theirs, rtol=1e-5, atol=1e-6, msg=name)


# ----- training -------------------------------------------------------------------------


@pytest.mark.parametrize("validation", ["fixed", "seed-faithful"])
def test_a_stack_trains_each_run_as_its_own_fit_would(data: Datasets, validation: str) -> None:
    configs = [c.replace(validation=validation) for c in _configs()]
    separate = [fit(config, data, "cpu", FitCallbacks(log_every=4)) for config in configs]
    stacked = stack.fit_stack(configs, data, "cpu", [FitCallbacks(log_every=4)] * 3)
    steps, inputs = planned_steps(96, 16, 240)
    for alone, result in zip(separate, map(_ok, stacked), strict=True):
        assert (
            (result.steps, result.inputs_seen)
            == (alone.steps, alone.inputs_seen)
            == (
                steps,
                inputs,
            )
        )
        assert result.path_used == "cpu-eager fp32 stack x3"
        assert result.param_count == alone.param_count
        curve = [p.loss for p in result.train_losses]
        assert curve == pytest.approx([p.loss for p in alone.train_losses], rel=1e-4, abs=1e-6)
        assert [p.step for p in result.validation_losses] == [
            p.step for p in alone.validation_losses
        ]
        assert result.validation_loss == pytest.approx(alone.validation_loss, rel=1e-4)
        assert torch.equal(result.samples[0], alone.samples[0])  # masked inputs: same masks
    # The runs really differ (different seeds), so the comparison above means something.
    assert len({_ok(r).validation_loss for r in stacked}) == 3


def test_a_run_that_diverges_fails_alone(data: Datasets, monkeypatch: pytest.MonkeyPatch) -> None:
    def poisoned(config: RunConfig) -> ResConv:
        model = build_model(config)
        if config.seed == 4:
            with torch.no_grad():
                next(model.parameters()).fill_(float("nan"))
        return model

    monkeypatch.setattr(train_module, "build_model", poisoned)  # what seeded_model builds
    early: list[object] = []
    callbacks = [FitCallbacks(log_every=4, on_early_end=early.append) for _ in range(3)]
    results = stack.fit_stack(_configs(), data, "cpu", callbacks)
    assert isinstance(results[1], NonFiniteLoss)
    assert early == [results[1]]  # handed over as it diverged; the others ran to the end
    assert str(results[1]) == "loss became NaN at step 1"
    # Its progress: up to the step that diverged, not to the window's end (4 steps) where
    # its loss was read back.
    assert results[1].inputs_done == 1 * CONFIG.batch_size
    alone = fit(CONFIG.replace(seed=5), data, "cpu", FitCallbacks(log_every=4))
    assert _ok(results[2]).validation_loss == pytest.approx(alone.validation_loss, rel=1e-4)
    assert _ok(results[0]).steps == planned_steps(96, 16, 240)[0]


def _stop_after(steps: int) -> Callable[[], bool]:
    polls: list[int] = []

    def should_stop() -> bool:
        polls.append(1)
        return len(polls) > steps  # polled before each step: ``steps`` steps, then stop

    return should_stop


def test_a_run_told_to_stop_stops_alone(data: Datasets) -> None:
    early: list[tuple[int, object]] = []  # (run, result) handed over as it ended
    callbacks = [FitCallbacks(should_stop=_stop_after(5), log_every=4)] + [
        FitCallbacks(should_stop=lambda: False, log_every=4) for _ in range(2)
    ]
    for k, cb in enumerate(callbacks):
        cb.on_early_end = partial(lambda k, result: early.append((k, result)), k)
    results = [_ok(r) for r in stack.fit_stack(_configs(), data, "cpu", callbacks)]
    assert results[0].stopped and results[0].steps == 5 and results[0].inputs_seen == 80
    # Handed over as it stopped (the worker records it then), the very result returned.
    assert [(k, result is results[0]) for k, result in early] == [(0, True)]
    assert results[0].wall_seconds < results[1].wall_seconds
    alone = fit(CONFIG, data, "cpu", FitCallbacks(should_stop=_stop_after(5), log_every=4))
    assert [(p.step, p.loss) for p in results[0].train_losses] == [
        (p.step, pytest.approx(p.loss, rel=1e-4)) for p in alone.train_losses
    ]  # a point after 4 steps, then the stopped step's own
    assert results[0].samples is None  # like fit(): a stopped run gets no final pass
    full = planned_steps(96, 16, 240)[0]
    assert [r.steps for r in results[1:]] == [full, full]
    assert not results[1].stopped and results[1].samples is not None


def test_a_stack_s_train_points_also_come_by_training_time(data: Datasets) -> None:
    timed = [FitCallbacks(log_every=1000, log_every_s=0.0) for _ in SEEDS]
    results = [_ok(r) for r in stack.fit_stack(_configs(), data, "cpu", timed)]
    steps = planned_steps(96, 16, 240)[0]
    assert [[p.step for p in r.train_losses] for r in results] == [list(range(1, steps + 1))] * 3
    mixed = [FitCallbacks(log_every=1000, log_every_s=s) for s in (0.0, None, None)]
    with pytest.raises(ValueError, match="log at different intervals"):
        stack.fit_stack(_configs(), data, "cpu", mixed)


def test_a_pass_between_epochs_ends_once_every_run_asks_to_stop(data: Datasets) -> None:
    # fit()'s rule, for a stack: its worker was signalled during the pass. One run's cancel
    # alone lets the pass end: the others' passes are in it.
    everyone = [FitCallbacks(should_stop=_stop_after(6)) for _ in SEEDS]  # an epoch: 6 steps
    results = [_ok(r) for r in stack.fit_stack(_configs(), data, "cpu", everyone)]
    assert [(r.stopped, r.steps, r.validation_losses) for r in results] == [(True, 6, [])] * 3
    one = [FitCallbacks(should_stop=_stop_after(6))] + [
        FitCallbacks(should_stop=lambda: False) for _ in SEEDS[1:]
    ]
    results = [_ok(r) for r in stack.fit_stack(_configs(), data, "cpu", one)]
    assert (results[0].stopped, results[0].steps, len(results[0].validation_losses)) == (True, 6, 1)
    assert [len(r.validation_losses) for r in results[1:]] == [3, 3]  # 2 epochs, then the last


def test_every_run_of_a_stack_hears_each_batch_of_a_pass(data: Datasets) -> None:
    # The worker's stall watch: a run not told of a pass's batch took the whole pass for
    # its next training step. all() stopped asking at the first run that said "go on".
    heard = [0 for _ in SEEDS]

    def between_batches(k: int) -> bool:
        heard[k] += 1
        return False

    callbacks = [
        FitCallbacks(should_stop=lambda: False, between_batches=partial(between_batches, k))
        for k in range(len(SEEDS))
    ]
    [_ok(r) for r in stack.fit_stack(_configs(), data, "cpu", callbacks)]
    assert heard[0] > 0 and heard == [heard[0]] * len(SEEDS)


def test_a_stack_s_last_points_come_before_a_final_pass_at_an_epoch_s_end(
    data: Datasets,
) -> None:
    # fit()'s order: every run reads all its inputs trained during its final pass.
    events: list[tuple[int, str, int]] = []
    callbacks = [
        FitCallbacks(
            on_train_loss=lambda p, k=k: events.append((k, "train", p.inputs)),
            on_validation=lambda p, k=k: events.append((k, "val", p.inputs)),
            log_every=1000,
        )
        for k in range(len(SEEDS))
    ]
    configs = [c.replace(max_inputs=192) for c in _configs()]  # 2 epochs of 96
    stack.fit_stack(configs, data, "cpu", callbacks)
    last = [(k, what) for k, what, inputs in events if inputs == 192]
    assert last[: 2 * len(SEEDS)] == [(k, "train") for k in range(len(SEEDS))] + [
        (k, "val") for k in range(len(SEEDS))
    ]


def test_a_stack_s_time_waiting_for_the_database_is_not_training_time(data: Datasets) -> None:
    should_stop, waited_s = waiting_once(at_poll=4, seconds=3.0)
    callbacks = [  # one thread: every run's recorder reads the same waited seconds
        FitCallbacks(should_stop=should_stop, waited_s=waited_s),
        FitCallbacks(should_stop=lambda: False, waited_s=waited_s),
    ]
    began = time.perf_counter()
    results = [_ok(r) for r in stack.fit_stack(_configs()[:2], data, "cpu", callbacks)]
    elapsed = time.perf_counter() - began
    # Each run's time leaves the wait out; its training time leaves out validation too.
    assert all(r.wall_seconds <= elapsed - 3.0 for r in results)
    assert all(r.inputs_seen / r.inputs_per_s < r.wall_seconds for r in results)


def test_a_stack_s_samples_after_the_last_pass_are_not_training_time(
    data: Datasets, monkeypatch: pytest.MonkeyPatch
) -> None:
    # As for fit(): each run's sample grid (K of them) went into every run's in/s.
    real = stack.sample_grid

    def slow(*args: object) -> torch.Tensor:
        time.sleep(0.75)
        return real(*args)

    monkeypatch.setattr(stack, "sample_grid", slow)
    results = [_ok(r) for r in stack.fit_stack(_configs()[:2], data, "cpu")]
    assert all(r.samples is not None for r in results)
    assert all(r.inputs_seen / r.inputs_per_s < r.wall_seconds - 1.5 for r in results)


def test_a_stacked_run_stopped_because_another_worker_has_it_saves_nothing(
    data: Datasets, tmp_path: Path
) -> None:
    callbacks = [
        FitCallbacks(should_stop=_stop_after(5), log_every=4, may_save_on_stop=lambda: False),
        FitCallbacks(should_stop=_stop_after(5), log_every=4),
    ]
    dirs = [tmp_path / "taken", tmp_path / "mine"]
    results = [_ok(r) for r in stack.fit_stack(_configs()[:2], data, "cpu", callbacks, dirs)]
    assert results[0].stopped and results[1].stopped
    assert not (dirs[0] / "last.pt").exists() and (dirs[1] / "last.pt").is_file()


def test_a_failed_stack_is_not_kept_alive_by_its_traceback(
    data: Datasets, monkeypatch: pytest.MonkeyPatch
) -> None:
    """As for fit(): slot threads share the GPU, a failed stack's tensors must go at once."""

    def broken(*args: object) -> None:
        raise RuntimeError("a bug after training")

    monkeypatch.setattr(stack, "sample_grid", broken)
    with pytest.raises(RuntimeError, match="a bug after training") as failed:
        stack.fit_stack(_configs()[:2], data, "cpu")
    frames = frames_of(failed.value)
    assert len(frames) > 3  # fit_stack -> _fit_stack -> _Stack.trained -> ...
    assert locals_of_type(frames, stack._Stack) == []
