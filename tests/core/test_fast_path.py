"""The CUDA fast path's pieces, on CPU: masks, schedule, batch order, fallback decisions.

The fast step runs eagerly on CPU (no graph), through the same body the CUDA
graph captures, so its losses can be compared step for step with the plain step.
"""

from __future__ import annotations

import inspect
import math
from collections.abc import Callable, Iterator
from contextlib import contextmanager, nullcontext
from pathlib import Path
from typing import Any

import pytest
import torch

import core.fast_path as fp
from core.config import RunConfig
from core.model import build_model
from core.task import delete_halves, draw_halves, half_mask_table
from core.train import (
    MASK_STREAM,
    SHUFFLE_STREAM,
    cosine_lr,
    make_optimizer,
    make_plain_step,
    planned_steps,
    seeded_generator,
    to_unit,
    train_batches,
)

CONFIG = RunConfig(layers=3, channels=4, batch_size=16, max_inputs=200, seed=3)
N_TRAIN = 72  # 4 full batches of 16 and a short one of 8 per epoch
CPU = torch.device("cpu")


@pytest.fixture(scope="module")
def images() -> torch.Tensor:
    return torch.randint(0, 256, (N_TRAIN, 1, 28, 28), generator=torch.Generator().manual_seed(1))


def _fresh(config: RunConfig = CONFIG) -> tuple[torch.nn.Module, torch.optim.Optimizer]:
    torch.manual_seed(config.seed)
    model = build_model(config).train()
    return model, make_optimizer(model, config)


def _fast_step(images: torch.Tensor, config: RunConfig = CONFIG, **kwargs: object) -> fp.FastStep:
    model, optimizer = _fresh(config)
    t_max = config.max_inputs // config.batch_size
    steps = planned_steps(len(images), config.batch_size, config.max_inputs)[0]
    return fp.make_fast_step(
        model, optimizer, images, seeded_generator(config.seed, MASK_STREAM),
        batch_size=config.batch_size, t_max=t_max, capacity=steps, precision="fp32", **kwargs,
    )  # fmt: skip


def _losses(step: object, images: torch.Tensor, config: RunConfig = CONFIG) -> list[float]:
    shuffle = seeded_generator(config.seed, SHUFFLE_STREAM)
    t_max = config.max_inputs // config.batch_size
    out = []
    batches = train_batches(len(images), config.batch_size, config.max_inputs, shuffle)
    for i, (indices, _) in enumerate(batches):
        out.append(step(indices, cosine_lr(i, config.lr, t_max)))  # type: ignore[operator]
    return torch.stack(out).tolist()


# ----- decisions -----------------------------------------------------------------------


def test_cpu_keeps_the_plain_step_and_cuda_takes_the_fast_one() -> None:
    assert not fp.wants_fast_path(CPU, env={})
    assert fp.wants_fast_path(torch.device("cuda"), env={})
    assert not fp.wants_fast_path(torch.device("cuda"), env={fp.FAST_PATH_ENV: "0"})


def test_graph_decision_names_its_reason() -> None:
    assert fp.wants_graph(torch.device("cuda"), env={}) is None
    assert fp.wants_graph(torch.device("cuda"), env={fp.GRAPH_ENV: "off"}) == "RESCONV_GRAPH=0"
    assert "CUDA" in (fp.wants_graph(CPU, env={}) or "")


def test_channels_last_on_cuda_unless_switched_off() -> None:
    assert fp.wants_channels_last(torch.device("cuda"), env={})
    assert not fp.wants_channels_last(torch.device("cuda"), env={fp.CHANNELS_LAST_ENV: "0"})
    assert not fp.wants_channels_last(torch.device("cpu"), env={})


def test_compile_where_it_pays_unless_switched() -> None:
    cuda, logbook, long = torch.device("cuda"), 180_000, fp.COMPILE_AUTO_INPUTS
    assert not fp.wants_compile(cuda, logbook, env={})
    assert fp.wants_compile(cuda, long, env={})
    assert fp.wants_compile(cuda, long, env={fp.COMPILE_ENV: "auto"})
    assert fp.wants_compile(cuda, logbook, env={fp.COMPILE_ENV: "1"})
    assert not fp.wants_compile(cuda, long, env={fp.COMPILE_ENV: "0"})
    assert not fp.wants_compile(CPU, long, env={fp.COMPILE_ENV: "1"})  # CPU: plain step


def test_compiled_kernels_are_kept_in_the_user_cache(tmp_path) -> None:
    env: dict[str, str] = {}
    fp.use_persistent_compile_cache(tmp_path, env)
    assert env == {"TORCHINDUCTOR_CACHE_DIR": str(tmp_path / "inductor")}
    chosen = {"TORCHINDUCTOR_CACHE_DIR": "/elsewhere"}
    fp.use_persistent_compile_cache(tmp_path, chosen)
    assert chosen == {"TORCHINDUCTOR_CACHE_DIR": "/elsewhere"}  # the user's choice stays


def test_the_compile_decision_sees_the_runs_planned_inputs(
    images: torch.Tensor, monkeypatch: pytest.MonkeyPatch
) -> None:
    asked: list[tuple[str, int]] = []

    def spy(device: torch.device, max_inputs: int, env: object = None) -> bool:
        asked.append((device.type, max_inputs))
        return False

    monkeypatch.setattr(fp, "wants_compile", spy)
    step = _fast_step(images)
    steps = planned_steps(N_TRAIN, CONFIG.batch_size, CONFIG.max_inputs)[0]
    assert asked == [("cpu", steps * CONFIG.batch_size)] and not step.compiled


def test_precision_resolution() -> None:
    assert RunConfig().resolved_precision("cuda") == "bf16"
    assert RunConfig().resolved_precision("cpu") == "fp32"
    assert RunConfig(precision="fp32").resolved_precision("cuda") == "fp32"
    assert RunConfig(precision="bf16").resolved_precision("cpu") == "fp32"  # CPU trains fp32


def test_description_reads_like_a_path() -> None:
    cuda = torch.device("cuda")
    assert fp.describe(cuda, "bf16", "graph", None) == "cuda-graph bf16"
    assert fp.describe(cuda, "bf16", "graph", None, compiled=True) == "cuda-graph bf16 compiled"
    text = fp.describe(cuda, "fp32", "eager", "graph capture failed: RuntimeError: x")
    assert text == "cuda-eager fp32 (graph capture failed: RuntimeError: x)"
    long = fp.failure_reason(RuntimeError("a" * 500 + "\nsecond line"))
    assert long.startswith("RuntimeError: aaa") and long.endswith("...") and len(long) == 160


def test_failure_reason_names_the_first_error_not_the_cleanups() -> None:
    class Capture:  # like torch.cuda.graph: capture_end raises again in __exit__
        def __enter__(self) -> None:
            return None

        def __exit__(self, *args: object) -> None:
            raise RuntimeError("CUDA error: operation failed due to a previous error during ...")

    with pytest.raises(RuntimeError) as info, Capture():
        raise RuntimeError("CUDA error: operation not permitted when stream is capturing\nhint")
    assert fp.failure_reason(info.value) == (
        "RuntimeError: CUDA error: operation not permitted when stream is capturing"
        " (then RuntimeError)"
    )


# ----- tensor pieces -------------------------------------------------------------------


def test_device_masks_equal_the_task_functions(images: torch.Tensor) -> None:
    indices = torch.tensor([5, 0, 71, 5, 33])
    halves = torch.tensor([0, 1, 2, 3, 1])
    masked, target = fp.select_batch(images, indices, halves, half_mask_table(28, 28, CPU))
    expected_target = to_unit(images[indices])
    assert torch.equal(target, expected_target)
    assert torch.equal(masked, delete_halves(expected_target, halves))
    assert masked[0, 0, :, :14].eq(0).all() and masked[2, 0, :14].eq(0).all()


def test_tensor_cosine_equals_the_plain_schedule() -> None:
    lr, step = torch.zeros((), dtype=torch.float32), torch.zeros((), dtype=torch.int64)
    for t in range(2815):
        step.fill_(t)
        fp.cosine_lr_(lr, step, 3e-4, 2812)
        assert lr.item() == pytest.approx(cosine_lr(t, 3e-4, 2812), rel=1e-6, abs=1e-12)
    fp.cosine_lr_(lr, step, 1e-3, 0)  # no schedule when max_inputs < batch_size
    assert lr.item() == pytest.approx(1e-3)


def test_lr_is_one_tensor_updated_in_place(images: torch.Tensor) -> None:
    step = _fast_step(images)
    lr = step.lr
    address = lr.data_ptr()
    assert all(group["lr"] is lr for group in step.optimizer.param_groups)
    indices = torch.arange(16)
    for i in range(3):
        step(indices, 0.0)
        assert lr.data_ptr() == address  # a captured graph reads this very memory
        assert lr.item() == pytest.approx(cosine_lr(i + 1, CONFIG.lr, 12), rel=1e-6)


def test_fused_adamw_reads_the_tensor_lr_and_does_adamws_step() -> None:
    # torch's fused AdamW also runs on CPU, so its use of the shared lr tensor is checked here.
    (plain_model, plain), (fused_model, fused) = _fresh(), _fresh()
    lr = fp.make_capturable(fused, CPU, fused=True)
    assert all(g["fused"] and not g["foreach"] and g["lr"] is lr for g in fused.param_groups)
    batch = torch.rand(4, 1, 28, 28)

    def step(model: torch.nn.Module, optimizer: torch.optim.Optimizer) -> None:
        optimizer.zero_grad()
        model(batch).mean().backward()
        optimizer.step()

    before = [p.detach().clone() for p in fused_model.parameters()]
    lr.fill_(0.0)  # AdamW with lr 0 changes nothing (weight decay is scaled by lr too)
    step(fused_model, fused)
    assert all(torch.equal(a, b) for a, b in zip(before, fused_model.parameters(), strict=True))

    lr.fill_(CONFIG.lr)  # the next step must use the new value, as a captured graph would
    fused.state.clear()  # fresh moments, like the plain optimizer's
    step(fused_model, fused)
    step(plain_model, plain)
    for mine, theirs in zip(fused_model.parameters(), plain_model.parameters(), strict=True):
        assert torch.allclose(mine, theirs, rtol=0, atol=1e-6)  # rounding order only


def test_make_capturable_refuses_an_optimizer_that_stepped() -> None:
    model, optimizer = _fresh()
    model(torch.rand(2, 1, 28, 28)).mean().backward()
    optimizer.step()
    with pytest.raises(ValueError, match="not stepped"):
        fp.make_capturable(optimizer, CPU)


# ----- the step against the plain step ---------------------------------------------------


def test_fast_step_follows_the_plain_batch_order_and_masks(images: torch.Tensor) -> None:
    model, optimizer = _fresh()
    plain = make_plain_step(model, optimizer, images, seeded_generator(CONFIG.seed, MASK_STREAM))
    expected = _losses(plain, images)
    fast = _fast_step(images)
    got = _losses(fast, images)
    # 14 steps: 2 epochs of 4 + 1 (a short batch of 8, eager in the fast path), then 4.
    assert len(got) == len(expected) == planned_steps(N_TRAIN, 16, 200)[0] == 14
    assert got == pytest.approx(expected, rel=1e-5, abs=1e-6)
    assert fast.description == "cpu-eager fp32"


def test_loss_views_stay_valid_until_read(images: torch.Tensor) -> None:
    step = _fast_step(images)
    views = [step(torch.arange(16) + i, 0.0) for i in range(5)]
    values = torch.stack(views).tolist()
    assert values == step.history[:5].tolist() and all(math.isfinite(v) for v in values)
    assert len(set(values)) == 5  # each view kept its own step's loss


def test_history_wraps_instead_of_overflowing(images: torch.Tensor) -> None:
    step = _fast_step(images.clone())
    step.history = torch.zeros(3)
    for i in range(7):
        last = step(torch.arange(16) + i, 0.0)
    assert math.isfinite(last.item()) and step.steps == 7 and int(step.position) == 7


def test_the_warm_up_also_steps_the_epochs_short_batch(
    images: torch.Tensor, monkeypatch: pytest.MonkeyPatch
) -> None:
    """cuDNN tunes each new shape in its first step: the epoch's short last batch (8 of
    72 here) is warmed up with the full ones, so its tuning is not training time."""
    sizes: list[int] = []
    eager = fp.FastStep._eager

    def counted(self: fp.FastStep, buffer: torch.Tensor) -> None:
        sizes.append(len(buffer) // 2)
        eager(self, buffer)

    monkeypatch.setattr(fp.FastStep, "_eager", counted)
    step = _fast_step(images)
    step._warm_up_steps(step._input_buffer(16))
    assert step.short_batch == 8 and sizes == [16] * fp.WARMUP_STEPS + [8]
    # A run that ends before its first epoch's short batch has none to warm up.
    sizes.clear()
    short_run = _fast_step(images, CONFIG.replace(max_inputs=64))
    short_run._warm_up_steps(short_run._input_buffer(16))
    assert short_run.short_batch == 0 and sizes == [16] * fp.WARMUP_STEPS


# ----- fallback when capture fails -------------------------------------------------------


def test_a_failed_capture_falls_back_to_eager_with_the_reason(
    images: torch.Tensor, monkeypatch: pytest.MonkeyPatch
) -> None:
    model, optimizer = _fresh()
    plain = make_plain_step(model, optimizer, images, seeded_generator(CONFIG.seed, MASK_STREAM))
    expected = _losses(plain, images)

    def broken(self: fp.FastStep, saved: dict[str, torch.Tensor]) -> None:
        self._eager(self._input_buffer(self.batch_size))  # a warm-up step really ran ...
        raise RuntimeError("operation not permitted when stream is capturing\nmore detail")

    monkeypatch.setattr(fp.FastStep, "_warm_up_and_capture", broken)
    step = _fast_step(images, graph=True)
    assert step.graph is None and step.mode == "eager"
    assert step.description == (
        "cpu-eager fp32 (graph capture failed: RuntimeError: operation not permitted when "
        "stream is capturing)"
    )
    # ... and was undone: the run is the same as if capture had never been tried.
    assert _losses(step, images) == pytest.approx(expected, rel=1e-5, abs=1e-6)


def test_a_capture_that_fails_compiled_is_tried_again_without_compile(
    images: torch.Tensor, monkeypatch: pytest.MonkeyPatch
) -> None:
    tries: list[bool] = []

    def capture(self: fp.FastStep, saved: dict[str, torch.Tensor]) -> None:
        tries.append(self.compiled)
        if self.compiled:
            raise RuntimeError("InductorError: no working C compiler\nlong log")

    monkeypatch.setattr(fp.FastStep, "_warm_up_and_capture", capture)
    step = _fast_step(images, graph=True, compile_model=True)
    assert tries == [True, False] and not step.compiled and step.mode == "graph"
    assert step.description == (
        "cpu-graph fp32 (compile dropped: RuntimeError: InductorError: no working C compiler)"
    )


def test_a_capture_that_fails_with_fused_adamw_is_tried_with_the_multi_tensor_form(
    images: torch.Tensor, monkeypatch: pytest.MonkeyPatch
) -> None:
    model, optimizer = _fresh()
    plain = make_plain_step(model, optimizer, images, seeded_generator(CONFIG.seed, MASK_STREAM))
    expected = _losses(plain, images)

    def capture(self: fp.FastStep, saved: dict[str, torch.Tensor]) -> None:
        self._eager(self._input_buffer(self.batch_size))  # a real warm-up step first
        if self.optimizer.param_groups[0]["fused"]:
            raise RuntimeError("fused kernel: params, grads, exp_avgs must have same layout")
        raise RuntimeError("no CUDA here")  # then the ordinary CPU failure

    monkeypatch.setattr(fp, "wants_fused_adam", lambda device, env=None: True)
    monkeypatch.setattr(fp.FastStep, "_warm_up_and_capture", capture)
    step = _fast_step(images, graph=True)
    assert not step.fused_adam and not step.optimizer.param_groups[0]["fused"]
    assert step.description == (
        "cpu-eager fp32 (fused AdamW dropped: RuntimeError: fused kernel: params, grads, "
        "exp_avgs must have same layout; graph capture failed: RuntimeError: no CUDA here)"
    )
    # Each failed try was undone: the run trains as if nothing had been tried.
    assert _losses(step, images) == pytest.approx(expected, rel=1e-5, abs=1e-6)


def test_a_capture_that_fails_alike_with_either_adamw_does_not_blame_fused(
    images: torch.Tensor, monkeypatch: pytest.MonkeyPatch
) -> None:
    tries: list[bool] = []

    def capture(self: fp.FastStep, saved: dict[str, torch.Tensor]) -> None:
        tries.append(self.optimizer.param_groups[0]["fused"])
        raise RuntimeError("capture refused")

    monkeypatch.setattr(fp, "wants_fused_adam", lambda device, env=None: True)
    monkeypatch.setattr(fp.FastStep, "_warm_up_and_capture", capture)
    step = _fast_step(images, graph=True)
    assert tries == [True, False]  # both were tried
    assert (
        step.description == "cpu-eager fp32 (graph capture failed: RuntimeError: capture refused)"
    )


def test_capture_without_cuda_fails_cleanly(images: torch.Tensor) -> None:
    step = _fast_step(images, graph=True)
    assert step.mode == "eager" and (step.why_not or "").startswith("graph capture failed")
    assert math.isfinite(step(torch.arange(16), 0.0).item())


# ----- the CUDA-only capture code, against torch.cuda's API faked on a CPU ------------------


class _FakeStream:
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        inspect.signature(torch.cuda.Stream.__new__).bind(torch.cuda.Stream, *args, **kwargs)

    def wait_stream(self, *args: Any, **kwargs: Any) -> None:
        inspect.signature(torch.cuda.Stream.wait_stream).bind(self, *args, **kwargs)


class _FakeGraph:
    def __init__(self) -> None:
        self.replays = 0

    def replay(self) -> None:
        self.replays += 1


@pytest.fixture
def fake_cuda(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """torch.cuda's streams, graph and RNG state as the capture calls them, for a CPU: each
    call is bound to the real function's signature first (a changed argument raises as it
    would on a GPU). Returns the names of the functions called, as they are called."""
    called: list[str] = []

    def faked(name: str, result: Callable[[], Any]) -> Callable[..., Any]:
        signature = inspect.signature(getattr(torch.cuda, name))

        def fake(*args: Any, **kwargs: Any) -> Any:
            signature.bind(*args, **kwargs)
            called.append(name)
            return result()

        return fake

    results: dict[str, Callable[[], Any]] = {
        "current_stream": _FakeStream, "stream": nullcontext, "graph": nullcontext,
        "get_rng_state": torch.get_rng_state, "set_rng_state": lambda: None,
        "set_stream": lambda: None, "synchronize": lambda: None,
    }  # fmt: skip
    for name, result in results.items():
        monkeypatch.setattr(torch.cuda, name, faked(name, result))
    monkeypatch.setattr(torch.cuda, "Stream", _FakeStream)
    monkeypatch.setattr(torch.cuda, "CUDAGraph", _FakeGraph)
    return called


@pytest.mark.parametrize("activation", ["relu", "rrelu"])
def test_the_cuda_only_capture_code_runs_to_a_graph(
    images: torch.Tensor, fake_cuda: list[str], activation: str
) -> None:
    """The warm-up and capture run only on a GPU; on a CPU they fail at the first CUDA
    call, and a failure falls back to eager with its reason (the test above), so a method
    renamed or a torch call changed there passed every CPU test and would have cost a GPU
    session its graph. With torch.cuda faked they run through, and the step replays."""
    step = _fast_step(images, CONFIG.replace(activation=activation), graph=True)
    assert step.description == "cpu-graph fp32", step.description  # no fallback reason
    # RReLU draws from the CUDA generator: its state is put back after the warm-up.
    random = {"get_rng_state", "set_rng_state"}
    assert random <= set(fake_cuda) if activation == "rrelu" else not random & set(fake_cuda)
    batches = train_batches(N_TRAIN, 16, N_TRAIN, seeded_generator(0, SHUFFLE_STREAM))
    for indices, _ in batches:
        step(indices, 0.0)
    assert isinstance(step.graph, _FakeGraph) and step.graph.replays == 4  # the short one: eager


class _Recorded:
    """The order of what happens around a faked capture: ``events`` holds "capture
    begins", "capture ends", "replay", "save <file>" and each ``logged`` callback's name."""

    def __init__(self) -> None:
        self.events: list[str] = []

    def logged(self, name: str, answer: Any = None) -> Callable[..., Any]:
        return lambda *args: self.events.append(name) or answer

    def callbacks(self, suffix: str = "") -> Any:
        from core.train import FitCallbacks

        return FitCallbacks(
            on_train_loss=self.logged(f"on_train_loss{suffix}"),
            on_validation=self.logged(f"on_validation{suffix}"),
            should_stop=self.logged(f"should_stop{suffix}", False),
            between_batches=self.logged(f"between_batches{suffix}", False),
            may_checkpoint=self.logged(f"may_checkpoint{suffix}", True),
            on_start=self.logged(f"on_start{suffix}"),
            log_every=2,
        )

    def capture_span(self) -> tuple[int, int]:
        return self.events.index("capture begins"), self.events.index("capture ends")


@pytest.fixture
def recorded(fake_cuda: list[str], monkeypatch: pytest.MonkeyPatch) -> _Recorded:
    """fit() and fit_stack() on a CPU through the graph-captured fast path (torch.cuda
    faked), with what they do recorded in order."""
    import core.train as train_module

    record = _Recorded()

    @contextmanager
    def capture(*args: Any, **kwargs: Any) -> Iterator[None]:
        inspect.signature(torch.cuda.graph).bind(*args, **kwargs)
        record.events.append("capture begins")
        yield
        record.events.append("capture ends")

    class Graph(_FakeGraph):
        def replay(self) -> None:
            record.events.append("replay")

    save = train_module.save_checkpoint

    def saved(directory: Path, name: str, *args: Any, **kwargs: Any) -> None:
        record.events.append(f"save {name}")
        save(directory, name, *args, **kwargs)

    monkeypatch.setattr(torch.cuda, "graph", capture)
    monkeypatch.setattr(torch.cuda, "CUDAGraph", Graph)
    monkeypatch.setattr(train_module, "wants_fast_path", lambda device: True)
    monkeypatch.setattr(fp, "wants_graph", lambda device, env=None: None)
    monkeypatch.setattr(train_module, "save_checkpoint", saved)
    return record


def test_fit_on_the_captured_fast_path_calls_back_outside_the_capture_and_points_first(
    images: torch.Tensor, recorded: _Recorded, tmp_path: Path
) -> None:
    """What fit() does around a graph-captured step, which only a GPU runs: its callbacks
    come outside the capture (a worker's callback there would be non-captured work, or a
    database wait, while every slot thread waits on GATE.exclusive), the run's start
    before it, and each validation point before its checkpoints, as on the plain step."""
    from core.data import Datasets
    from core.train import fit

    data = Datasets(images, images[:32], "test")
    config = CONFIG.replace(max_inputs=2 * N_TRAIN)  # 2 epochs: a pass between them
    result = fit(config, data, "cpu", recorded.callbacks(), checkpoint_dir=tmp_path / "run")

    events = recorded.events
    assert result.path_used == "cpu-graph fp32", result.path_used
    begins, ends = recorded.capture_span()
    assert events[begins + 1 : ends] == [], events[begins:ends]  # no callback while capturing
    assert "on_start" in events[:begins]
    assert events.count("replay") == 8  # 4 full batches per epoch; the short ones eager
    # Every replayed step comes right after the loop's poll, none inside a pass.
    after_capture = [e for e in events[ends + 1 :] if e != "between_batches"]
    steps = [i for i, e in enumerate(after_capture) if e == "replay"]
    assert all(after_capture[i - 1] == "should_stop" for i in steps), after_capture
    # Each pass's point, then whether the run is still its own, then its checkpoints.
    passes = [i for i, e in enumerate(events) if e == "on_validation"]
    assert len(passes) == 3  # after each epoch and the final pass
    for i in passes:
        assert events[i + 1 : i + 3] == ["may_checkpoint", "save last.pt"], events[i : i + 4]
    assert events.index("save last.pt") > passes[0]


def test_a_stack_on_the_captured_fast_path_calls_back_outside_the_capture_and_points_first(
    images: torch.Tensor, recorded: _Recorded, tmp_path: Path
) -> None:
    """fit_stack()'s side of the test above: every run starts before the capture, no run's
    callback comes during it, and each run's point comes before its own checkpoints."""
    from core.data import Datasets
    from core.stack import fit_stack

    data = Datasets(images, images[:32], "test")
    configs = [CONFIG.replace(max_inputs=2 * N_TRAIN, seed=seed) for seed in (3, 4)]
    callbacks = [recorded.callbacks(f" {k}") for k in range(2)]
    folders = [tmp_path / f"run-{k}" for k in range(2)]
    results = fit_stack(configs, data, "cpu", callbacks, folders)

    events = recorded.events
    assert [getattr(r, "path_used", r) for r in results] == ["cpu-graph fp32 stack x2"] * 2
    begins, ends = recorded.capture_span()
    assert events[begins + 1 : ends] == [], events[begins:ends]
    assert {"on_start 0", "on_start 1"} <= set(events[:begins])
    assert events.count("replay") == 8
    for k in range(2):
        passes = [i for i, e in enumerate(events) if e == f"on_validation {k}"]
        assert len(passes) == 3
        for i in passes:
            expected = [f"may_checkpoint {k}", "save last.pt"]
            assert events[i + 1 : i + 3] == expected, events[i : i + 4]


# ----- host buffers ------------------------------------------------------------------------


def test_ring_upload_round_trip() -> None:
    ring = fp.PinnedRing(8, CPU, slots=2)
    target = torch.zeros(6, dtype=torch.int64)
    for k in range(5):
        values = torch.arange(6) * k
        ring.upload((values[:2], values[2:]), target)
        assert torch.equal(target, values)


def test_draws_match_the_plain_steps_generator_use() -> None:
    # The fast step draws halves on the CPU from the same generator, in the same amounts.
    a, b = seeded_generator(1, MASK_STREAM), seeded_generator(1, MASK_STREAM)
    assert torch.equal(draw_halves(16, a, "cpu"), draw_halves(16, b, CPU))
