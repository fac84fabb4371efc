"""Where a fast-path train step spends its GPU time (CUDA only).

    python bench/profile_step.py                  # logbook 11-layer 28x28, batch 64, bf16
    python bench/profile_step.py --precision fp32 --layers 5

Prints, for one step of the fast path: the number of CUDA kernels and their summed
time (torch.profiler over eager steps), the top kernels by time, and the replay
time of the captured graph (median over CUDA events). Replay time minus kernel
time is what the graph still loses between kernels; kernel time is what fusing
(torch.compile) or bigger kernels (packing runs) can shrink. Random images, not
real data: only shapes matter here.
"""

from __future__ import annotations

import argparse
import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import torch  # noqa: E402
from torch.profiler import ProfilerActivity, profile  # noqa: E402

from bench.shape import add_shape_arguments, shape_config  # noqa: E402
from core.config import RunConfig  # noqa: E402
from core.fast_path import make_fast_step  # noqa: E402
from core.model import build_model  # noqa: E402
from core.train import make_optimizer  # noqa: E402

STEPS = 20


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    add_shape_arguments(p)
    p.add_argument("--precision", default="bf16", choices=("bf16", "fp32"))
    p.add_argument("--top", type=int, default=15)
    return p.parse_args(argv)


def build_step(config: RunConfig, graph: bool):  # type: ignore[no-untyped-def]
    device = torch.device("cuda")
    torch.manual_seed(0)
    size = config.image_size
    images = torch.randint(0, 256, (4096, 1, size, size), dtype=torch.uint8, device=device)
    model = build_model(config).to(device).train()
    step = make_fast_step(
        model, make_optimizer(model, config), images, torch.Generator().manual_seed(0),
        batch_size=config.batch_size, t_max=10_000, capacity=10_000, precision=config.precision,
        graph=graph, compile_model=False,
    )  # fmt: skip
    batches = [torch.randint(0, 4096, (config.batch_size,)) for _ in range(8)]
    return step, batches


def kernel_profile(config: RunConfig, top: int) -> None:
    step, batches = build_step(config, graph=False)
    for i in range(5):
        step(batches[i % 8], 0.0)
    torch.cuda.synchronize()
    with profile(activities=[ProfilerActivity.CUDA]) as prof:
        for i in range(STEPS):
            step(batches[i % 8], 0.0)
        torch.cuda.synchronize()
    events = [e for e in prof.key_averages() if e.device_type.name == "CUDA"]
    kernels = sum(e.count for e in events) / STEPS
    total_us = sum(e.self_device_time_total for e in events) / STEPS
    print(f"eager step: {kernels:.0f} GPU kernels/copies, {total_us / 1000:.3f} ms GPU time")
    print(f"{'kernel':<70} {'per step':>8} {'us/step':>9}")
    for e in sorted(events, key=lambda e: -e.self_device_time_total)[:top]:
        name = e.key.replace("\n", " ")[:70]
        print(f"{name:<70} {e.count / STEPS:>8.1f} {e.self_device_time_total / STEPS:>9.1f}")


def replay_time(config: RunConfig) -> None:
    step, batches = build_step(config, graph=True)
    print(f"graph path: {step.description}")
    for i in range(20):
        step(batches[i % 8], 0.0)
    torch.cuda.synchronize()
    times = []
    for i in range(200):
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        step(batches[i % 8], 0.0)
        end.record()
        end.synchronize()
        times.append(start.elapsed_time(end))
    median = statistics.median(times)
    rate = config.batch_size / median * 1000
    print(f"graph replay (upload included): median {median:.3f} ms/step = {rate:,.0f} inputs/s")
    # Back to back, the host never waits: the throughput a run can reach.
    torch.cuda.synchronize()
    start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    start.record()
    for i in range(200):
        step(batches[i % 8], 0.0)
    end.record()
    end.synchronize()
    per_step = start.elapsed_time(end) / 200
    rate = config.batch_size / per_step * 1000
    print(f"graph replay back to back: {per_step:.3f} ms/step = {rate:,.0f} inputs/s")


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if not torch.cuda.is_available():
        print("profile_step.py needs CUDA", file=sys.stderr)
        return 2
    config = shape_config(args, precision=args.precision)
    print(f"{torch.cuda.get_device_name()}; {args.layers} layers {args.image_size}px "
          f"{args.channels} ch batch {args.batch_size} {args.precision}")  # fmt: skip
    replay_time(config)
    kernel_profile(config, args.top)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
