"""Would training K same-shape runs as ONE model of grouped convolutions pay? (CUDA only)

    python bench/stack_probe.py                      # logbook 11-layer 28x28, K = 1 2 4 8
    python bench/stack_probe.py --stacks 1 4 16

A step of the logbook's network is about 740 tiny kernels (bench/profile_step.py):
the GPU runs out of kernels to overlap, not of arithmetic. K runs that share every
shape (seeds of one sweep cell, say) can be one network whose convolutions have
``groups=K`` and K times the channels (``ResConv(config, copies=K)``, trained by
``core.stack.fit_stack``, which tests that each run trains as alone): the same kernel
count for K runs, each kernel K times larger. This probe only times it: a
graph-captured train step (channels_last, bf16 autocast, capturable AdamW) on random
data, back to back, for each K, and prints ms per step and inputs per second counted
over all K runs. ``bench/train_speed.py --stack K`` times the real training.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

from bench.shape import add_shape_arguments, shape_config  # noqa: E402
from core.config import RunConfig  # noqa: E402
from core.model import ResConv  # noqa: E402

REPLAYS = 200


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    add_shape_arguments(p)
    p.add_argument("--stacks", type=int, nargs="+", default=[1, 2, 4, 8], metavar="K")
    return p.parse_args(argv)


def time_step(config: RunConfig, k: int) -> float:
    """Milliseconds per graph-captured train step of the K-stacked model."""
    device = torch.device("cuda")
    size, batch = config.image_size, config.batch_size
    model = ResConv(config, copies=k).to(device).to(memory_format=torch.channels_last).train()
    lr = torch.tensor(config.lr, device=device)
    optimizer = torch.optim.AdamW(
        model.parameters(), lr=lr, weight_decay=config.weight_decay, capturable=True
    )
    target = torch.rand(batch, k, size, size, device=device)
    inputs = target.clone()
    inputs[..., : size // 2] = 0  # a half deleted, as in training
    inputs = inputs.contiguous(memory_format=torch.channels_last)

    def step() -> None:
        with torch.autocast("cuda", dtype=torch.bfloat16, cache_enabled=False):
            output = model(inputs)
        # Each run's own mean L1, summed: every group gets its own run's gradient.
        F.l1_loss(output.float(), target, reduction="none").mean(dim=(0, 2, 3)).sum().backward()
        optimizer.step()

    torch.backends.cudnn.benchmark = True
    side = torch.cuda.Stream()
    side.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(side):
        for _ in range(3):
            optimizer.zero_grad(set_to_none=True)
            step()
    torch.cuda.current_stream().wait_stream(side)
    optimizer.zero_grad(set_to_none=True)
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        step()
    for _ in range(20):
        graph.replay()
    torch.cuda.synchronize()
    start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    start.record()
    for _ in range(REPLAYS):
        graph.replay()
    end.record()
    end.synchronize()
    return start.elapsed_time(end) / REPLAYS


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if not torch.cuda.is_available():
        print("stack_probe.py needs CUDA", file=sys.stderr)
        return 2
    config = shape_config(args)
    shape = f"{args.layers} layers {args.image_size}px {args.channels} ch batch {args.batch_size}"
    print(f"{torch.cuda.get_device_name()}; {shape} bf16, graph replays back to back")
    print(f"{'K runs':>6} {'ms/step':>8} {'inputs/s (all K)':>17} {'per run':>9}")
    for k in args.stacks:
        ms = time_step(config, k)
        rate = k * args.batch_size / ms * 1000
        print(f"{k:>6} {ms:>8.3f} {rate:>17,.0f} {rate / k:>9,.0f}", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
