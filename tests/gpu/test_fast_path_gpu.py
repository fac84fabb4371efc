"""The CUDA fast path on a real GPU: capture, parity with eager, precision, no host sync."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import torch

import core.fast_path as fp
from core.config import RunConfig
from core.data import Datasets
from core.model import build_model
from core.train import (
    MASK_STREAM,
    SHUFFLE_STREAM,
    FitCallbacks,
    cosine_lr,
    fit,
    make_optimizer,
    planned_steps,
    seeded_generator,
    train_batches,
)

pytestmark = pytest.mark.gpu

# 1,000 train images: 15 batches of 64 and a short one of 40 per epoch.
SHORT = RunConfig(layers=5, channels=16, max_inputs=3_000, seed=1)


def _fit(config: RunConfig, data: Datasets, monkeypatch: pytest.MonkeyPatch, **env: str):
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    return fit(config, data, "cuda", FitCallbacks(log_every=5))


def _train_curve(result) -> list[float]:
    return [p.loss for p in result.train_losses]


def test_fit_on_cuda_captures_one_graph(cuda_data: Datasets, monkeypatch) -> None:
    result = _fit(SHORT, cuda_data, monkeypatch)
    assert result.path_used == "cuda-graph bf16", result.path_used
    assert result.steps == planned_steps(1000, 64, 3_000)[0]
    assert torch.isfinite(torch.tensor(result.validation_loss))


def test_graph_and_eager_give_the_same_curve(cuda_data: Datasets, monkeypatch) -> None:
    config = SHORT.replace(precision="fp32")
    graph = _fit(config, cuda_data, monkeypatch, RESCONV_GRAPH="1")
    eager = _fit(config, cuda_data, monkeypatch, RESCONV_GRAPH="0")
    assert graph.path_used == "cuda-graph fp32"
    assert eager.path_used == "cuda-eager fp32 (RESCONV_GRAPH=0)"
    # Same batches, masks and math; only kernel scheduling may differ (cuDNN, TF32).
    assert _train_curve(graph) == pytest.approx(_train_curve(eager), rel=2e-2, abs=2e-3)
    assert graph.validation_loss == pytest.approx(eager.validation_loss, abs=2e-3)


def test_fast_path_matches_the_plain_step_in_fp32(cuda_data: Datasets, monkeypatch) -> None:
    config = SHORT.replace(precision="fp32")
    fast = _fit(config, cuda_data, monkeypatch)
    plain = _fit(config, cuda_data, monkeypatch, RESCONV_FAST_PATH="0")
    assert fast.path_used == "cuda-graph fp32", fast.path_used  # not a silent eager fallback
    assert plain.path_used == "plain fp32"
    assert _train_curve(fast) == pytest.approx(_train_curve(plain), rel=2e-2, abs=2e-3)
    assert fast.validation_loss == pytest.approx(plain.validation_loss, abs=2e-3)


def test_bf16_final_validation_within_0_002_of_fp32(cuda_data: Datasets, monkeypatch) -> None:
    config = SHORT.replace(max_inputs=6_000)
    bf16 = _fit(config.replace(precision="bf16"), cuda_data, monkeypatch)
    fp32 = _fit(config.replace(precision="fp32"), cuda_data, monkeypatch)
    assert (bf16.path_used, fp32.path_used) == ("cuda-graph bf16", "cuda-graph fp32")
    assert abs(bf16.validation_loss - fp32.validation_loss) < 0.002


def test_a_failing_capture_falls_back_and_says_why(cuda_data: Datasets, monkeypatch) -> None:
    def broken(self, saved):
        raise RuntimeError("capture refused")

    monkeypatch.setattr(fp.FastStep, "_warm_up_and_capture", broken)
    result = _fit(SHORT, cuda_data, monkeypatch)
    reason = "graph capture failed: RuntimeError: capture refused"
    assert result.path_used == f"cuda-eager bf16 ({reason})"
    assert torch.isfinite(torch.tensor(result.validation_loss))


def test_a_warm_up_that_fails_leaves_rrelu_draws_as_a_plain_run(
    cuda_data: Datasets, monkeypatch
) -> None:
    """RReLU draws its slopes from the CUDA generator: warm-up steps that ran before a
    failure must not shift the eager fallback's draws (the same run, the same seed)."""

    def second_step_fails(self, saved):
        original, steps = self._eager, []

        def counted(buffer):
            steps.append(1)
            if len(steps) == 2:  # one warm-up step has drawn slopes by now
                raise RuntimeError("warm-up refused")
            original(buffer)

        self._eager = counted
        try:
            self._warm_up(saved)
        finally:
            del self._eager

    config = SHORT.replace(activation="rrelu", precision="fp32")
    monkeypatch.setenv("RESCONV_FUSED_ADAM", "0")
    # Deterministic kernels, so that the two runs differ only by RReLU's draws (cuDNN's
    # split-K weight gradients add in any order).
    monkeypatch.setattr(torch.backends.cudnn, "deterministic", True)
    plain = _fit(config, cuda_data, monkeypatch, RESCONV_GRAPH="0")
    monkeypatch.delenv("RESCONV_GRAPH")
    monkeypatch.setattr(fp.FastStep, "_warm_up_and_capture", second_step_fails)
    fallen = _fit(config, cuda_data, monkeypatch)
    assert plain.path_used == "cuda-eager fp32 (RESCONV_GRAPH=0)", plain.path_used
    assert fallen.path_used.startswith("cuda-eager fp32 (graph capture failed"), fallen.path_used
    # Before the RNG was put back on a failure: curves apart by the shifted slopes.
    assert _train_curve(fallen) == pytest.approx(_train_curve(plain), rel=1e-4, abs=1e-6)


def test_steps_never_wait_for_the_gpu(cuda_data: Datasets) -> None:
    torch.manual_seed(0)
    model = build_model(SHORT).cuda().train()
    optimizer = make_optimizer(model, SHORT)
    step = fp.make_fast_step(
        model, optimizer, cuda_data.train, seeded_generator(0, MASK_STREAM),
        batch_size=64, t_max=SHORT.max_inputs // 64, capacity=100, precision="bf16", graph=True,
    )  # fmt: skip
    assert step.mode == "graph", step.description
    batches = train_batches(1000, 64, SHORT.max_inputs, seeded_generator(0, SHUFFLE_STREAM))
    losses = []
    torch.cuda.set_sync_debug_mode("error")  # any synchronising call inside a step raises
    try:
        for i, (indices, _) in enumerate(batches):
            if len(indices) < 64:
                break  # the short batch runs eagerly; its AdamW is capturable too, but skip it
            losses.append(step(indices, cosine_lr(i, SHORT.lr, 46)))
    finally:
        torch.cuda.set_sync_debug_mode(0)
    assert len(losses) == 15
    values = torch.stack(losses).tolist()
    assert all(v == v for v in values) and values[-1] < values[0]
    # The lr tensor was updated inside the graph, in step with the plain schedule.
    assert step.lr.item() == pytest.approx(cosine_lr(15, SHORT.lr, 46), rel=1e-6)


def test_short_batches_end_each_epoch(cuda_data: Datasets, monkeypatch) -> None:
    result = _fit(SHORT, cuda_data, monkeypatch)
    # The short batches ran eagerly between graph replays, on the same optimizer state.
    assert result.path_used == "cuda-graph bf16", result.path_used
    assert [p.inputs for p in result.validation_losses] == [1000, 2000, 3000, 3000]
    assert all(p.loss == p.loss for p in result.train_losses)


# A real capture failure (an illegal host sync inside the graph), in a process of its own:
# torch may keep allocator / RNG state of a failed capture for the rest of the process.
_REAL_FAILURE = """
import sys
import torch
import core.fast_path as fp
from core.config import RunConfig
from core.data import Datasets
from core.train import FitCallbacks, fit

splits = torch.load(sys.argv[1])
data = Datasets(splits["train"].cuda(), splits["validation"].cuda(), "test")
config = RunConfig(layers=5, channels=16, max_inputs=3_000, seed=1)
body = fp.FastStep._body

def syncing_body(self, buffer, forward=None):
    body(self, buffer, forward)
    if torch.cuda.is_current_stream_capturing():
        self.position.item()  # a host sync: not allowed while capturing

fp.FastStep._body = syncing_body
stream = torch.cuda.current_stream()
first = fit(config, data, "cuda", FitCallbacks(log_every=5))
print("FIRST", first.path_used)
print("STREAM_KEPT", torch.cuda.current_stream() == stream)
print("FINITE", first.validation_loss == first.validation_loss, first.steps)
fp.FastStep._body = body
second = fit(config, data, "cuda", FitCallbacks(log_every=5))
print("SECOND", second.path_used)
"""


def test_a_real_capture_failure_falls_back_and_the_next_run_still_captures(
    cuda_data: Datasets, tmp_path: Path
) -> None:
    splits = tmp_path / "splits.pt"
    torch.save({"train": cuda_data.train.cpu(), "validation": cuda_data.validation.cpu()}, splits)
    root = Path(__file__).resolve().parents[2]
    run = subprocess.run(
        [sys.executable, "-c", _REAL_FAILURE, str(splits)],
        cwd=root, capture_output=True, text=True, timeout=150,
    )  # fmt: skip
    out = dict(line.split(" ", 1) for line in run.stdout.splitlines() if " " in line)
    assert run.returncode == 0, run.stderr[-3000:]
    # Fused AdamW (the default) is retried with the multi-tensor form first: its reason
    # shows too where that try failed differently.
    assert out["FIRST"].startswith("cuda-eager bf16 ("), out["FIRST"]
    assert "graph capture failed: " in out["FIRST"], out["FIRST"]
    assert "previous error during capture" not in out["FIRST"], "the first error is the reason"
    assert out["STREAM_KEPT"] == "True", "the fallback must train on the caller's stream"
    assert out["FINITE"] == f"True {planned_steps(1000, 64, 3_000)[0]}", out["FINITE"]
    # Fails when a failed capture poisons the process (torch 2.11's capture_end skipped the
    # allocator's endAllocateToPool on error, pytorch#180395): every later run would be eager.
    assert out["SECOND"] == "cuda-graph bf16", out["SECOND"]


def test_compiled_graph_runs(cuda_data: Datasets, monkeypatch) -> None:
    result = _fit(SHORT.replace(max_inputs=1_000), cuda_data, monkeypatch, RESCONV_COMPILE="1")
    # Compiled AND captured: "cuda-eager bf16 compiled (graph capture failed ...)" is a failure.
    assert result.path_used == "cuda-graph bf16 compiled", result.path_used
    assert torch.isfinite(torch.tensor(result.validation_loss))


def test_long_runs_compile_by_default_also_on_slot_threads(
    cuda_data: Datasets, monkeypatch
) -> None:
    # The threshold lowered to this short run: three slot threads compile (one at a time,
    # GATE.exclusive) or reuse the compiled shape, then capture, side by side.
    monkeypatch.setattr(fp, "COMPILE_AUTO_INPUTS", 1_000)
    monkeypatch.delenv(fp.COMPILE_ENV, raising=False)
    results = _fits_on_slot_threads(
        [SHORT.replace(max_inputs=1_000, seed=i) for i in range(3)], cuda_data
    )
    for result in results:
        assert not isinstance(result, BaseException), repr(result)
        assert result.path_used == "cuda-graph bf16 compiled", result.path_used
        assert torch.isfinite(torch.tensor(result.validation_loss))


def _fits_on_slot_threads(configs: list[RunConfig], data: Datasets) -> list[object]:
    """What ``worker --slots K`` does on CUDA: fits in threads, one stream each."""
    import threading

    results: list[object] = [RuntimeError("not run")] * len(configs)

    def slot(i: int) -> None:
        try:
            with torch.cuda.stream(torch.cuda.Stream()):
                results[i] = fit(configs[i], data, "cuda")
        except BaseException as exc:  # reported below, not lost in the thread
            results[i] = exc

    threads = [threading.Thread(target=slot, args=(i,)) for i in range(len(configs))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=240)  # a deadlock in the capture gate fails here instead of hanging
        assert not t.is_alive(), "a slot thread is still running after 240 s"
    return results


def test_runs_on_slot_threads_capture_and_match_a_run_alone(cuda_data: Datasets) -> None:
    config = SHORT.replace(precision="fp32")
    alone = fit(config, cuda_data, "cuda")
    for result in _fits_on_slot_threads([config] * 3, cuda_data):
        assert not isinstance(result, BaseException), repr(result)
        assert result.path_used == "cuda-graph fp32", result.path_used  # type: ignore[attr-defined]
        # Same seed, same batches and masks: the same run, whatever ran beside it.
        assert result.validation_loss == pytest.approx(alone.validation_loss, abs=2e-3)  # type: ignore[attr-defined]
        assert result.peak_memory_bytes == 0  # type: ignore[attr-defined]  # shared: not measured
    assert alone.peak_memory_bytes > 0


def test_a_stack_captures_one_graph_and_trains_each_run_as_alone(cuda_data: Datasets) -> None:
    from core.stack import fit_stack

    configs = [SHORT.replace(precision="fp32", seed=seed) for seed in (1, 2)]
    separate = [fit(config, cuda_data, "cuda", FitCallbacks(log_every=5)) for config in configs]
    stacked = fit_stack(configs, cuda_data, "cuda", [FitCallbacks(log_every=5)] * 2)
    for alone, result in zip(separate, stacked, strict=True):
        assert not isinstance(result, BaseException), repr(result)
        assert result.path_used == "cuda-graph fp32 stack x2", result.path_used
        # Same seeds, batches and masks; grouped convolutions only round differently.
        assert _train_curve(result) == pytest.approx(_train_curve(alone), rel=2e-2, abs=2e-3)
        assert result.validation_loss == pytest.approx(alone.validation_loss, abs=2e-3)
    assert stacked[0].validation_loss != stacked[1].validation_loss  # type: ignore[union-attr]


def test_a_stacked_run_that_diverges_fails_alone_on_cuda(cuda_data: Datasets, monkeypatch) -> None:
    # NaN must stay in its own group whatever grouped-convolution algorithm cuDNN picks.
    import core.stack as stack
    import core.train as train_module

    def poisoned(config: RunConfig) -> torch.nn.Module:
        model = build_model(config)
        if config.seed == 2:
            with torch.no_grad():
                next(model.parameters()).fill_(float("nan"))
        return model

    monkeypatch.setattr(train_module, "build_model", poisoned)  # what seeded_model builds
    configs = [SHORT.replace(seed=seed) for seed in (1, 2)]
    alone = fit(configs[0], cuda_data, "cuda")
    results = stack.fit_stack(configs, cuda_data, "cuda")
    assert isinstance(results[1], train_module.NonFiniteLoss), repr(results[1])
    assert not isinstance(results[0], BaseException), repr(results[0])
    assert results[0].validation_loss == pytest.approx(alone.validation_loss, abs=2e-3)
