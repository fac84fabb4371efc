"""Training throughput: the reference-style loop against the project's fit(), in one process.

    python bench/train_speed.py                       # logbook 11-layer 28x28, 180,000 inputs
    python bench/train_speed.py --device cpu --inputs 640 --layers 3   # a CPU smoke run
    python bench/train_speed.py --slots 4 8           # + 4, then 8 fits on their own streams
    python bench/train_speed.py --out $OUT/train_speed.json
    python bench/train_speed.py --variants 60000     # + short fits: fp32 graph, NCHW, no graph

Both paths train the same config on the same device and data, and are
validated with the project's fixed masks, so their final losses compare.
The table gives inputs/s (training only: validation excluded), their ratio,
peak memory and the final validation L1. Issue 5's targets are in bench/README.md.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import threading
import time
from collections import Counter
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import torch  # noqa: E402

from bench.reference_loop import train_reference  # noqa: E402
from bench.shape import (  # noqa: E402
    add_shape_arguments,
    check_inputs,
    count,
    one_line_errors,
    shape_config,
)
from core.config import RunConfig  # noqa: E402
from core.data import Datasets, load_datasets  # noqa: E402
from core.fast_path import (  # noqa: E402
    CHANNELS_LAST_ENV,
    COMPILE_ENV,
    FAST_PATH_ENV,
    FUSED_ADAM_ENV,
    GRAPH_ENV,
)
from core.stack import fit_stack  # noqa: E402
from core.train import FitResult, fit  # noqa: E402
from core.worker_options import MOST  # noqa: E402


@dataclass(frozen=True)
class Row:
    path: str
    inputs: int
    seconds: float  # training only
    inputs_per_s: float
    peak_memory_mib: float
    validation_loss: float
    note: str = ""


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    add_shape_arguments(p)
    p.add_argument("--inputs", type=count(), default=180_000, help="max_inputs of each run")
    p.add_argument("--device", default="auto", help="auto (cuda if present), cuda, cuda:1, cpu")
    p.add_argument("--precision", default="auto", choices=("auto", "fp32", "bf16"))
    p.add_argument(
        "--slots", type=count(1, MOST["--slots"]), nargs="+", action="extend", metavar="K",
        help="also K fits at once, one thread and CUDA stream each (as 'worker --slots K'); "
        "several values (or the option twice) give several rows; default 1",
    )  # fmt: skip
    p.add_argument(
        "--stack", type=count(1, MOST["--stack"]), nargs="+", action="extend", metavar="K",
        help="also K runs (seeds seed..seed+K-1) stacked as one model (core.stack.fit_stack); "
        "several values (or the option twice) give several rows",
    )  # fmt: skip
    p.add_argument("--compile", action="store_true", help=f"also time fit with {COMPILE_ENV}=1")
    p.add_argument(
        "--foreach", action="store_true",
        help=f"also time fit with {FUSED_ADAM_ENV}=0 (AdamW's multi-tensor form, not fused)",
    )  # fmt: skip
    p.add_argument(
        "--plain", action="store_true", help="also fit with the plain fp32 step (quality baseline)"
    )
    p.add_argument(
        "--variants", type=count(0), default=0, metavar="INPUTS",
        help="also short fits of INPUTS inputs each: fast path in fp32, NCHW layout, no graph",
    )  # fmt: skip
    p.add_argument("--skip-reference", action="store_true")
    p.add_argument("--seed", type=count(0), default=0)
    p.add_argument("--data-dir", default=None, help="Fashion-MNIST folder (else RESCONV_DATA...)")
    p.add_argument(
        "--workers", type=count(0), default=1, help="DataLoader workers of the reference"
    )
    p.add_argument("--out", default=None, help="write the rows and settings as JSON here")
    args = p.parse_args(argv)
    # Given twice, a list option adds up (extend); a default list would be extended too.
    args.slots = list(dict.fromkeys(args.slots or [1]))
    args.stack = list(dict.fromkeys(args.stack or []))
    return args


def pick_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except RuntimeError:  # torch's message lists twenty device types
        raise RuntimeError(f"--device {name}: use auto, cpu, cuda or cuda:N") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise RuntimeError(f"--device {name}: CUDA is not available on this machine")
    if device.type not in ("cuda", "cpu"):
        raise RuntimeError(f"--device {name}: use auto, cpu, cuda or cuda:N")
    return device


def device_name(device: torch.device) -> str:
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return f"CPU ({os.cpu_count()} cores, {torch.get_num_threads()} torch threads)"


def mib(n: int) -> float:
    return round(n / 2**20, 1)


# ----- the measured paths ------------------------------------------------------------------


def reference_row(config: RunConfig, data: Datasets, device: torch.device, workers: int) -> Row:
    r = train_reference(config, data, device, num_workers=workers)
    return Row(
        "reference fp32", r.inputs_seen, r.train_seconds, r.inputs_per_s,
        mib(r.peak_memory_bytes), r.validation_loss,
    )  # fmt: skip


def fit_row(
    config: RunConfig,
    data: Datasets,
    device: torch.device,
    env: dict[str, str] | None = None,
    label: str = "",
) -> Row:
    """fit() once, with ``env`` (the fast path's switches) set for the call only.

    ``label`` is added to the row's path where the path alone would not tell rows apart."""
    previous = {key: os.environ.get(key) for key in (env or {})}
    os.environ.update(env or {})
    if device.type == "cuda":  # earlier rows' cached blocks would count as this one's
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats(device)
    try:
        started = time.perf_counter()
        result = fit(config, data, device)
        wall = time.perf_counter() - started
    finally:
        for key, value in previous.items():
            _restore_env(key, value)
    note = f"fit wall {wall:.1f} s (build, capture/compile, validation included)"
    if device.type == "cuda":
        # The run records max_memory_allocated; what it holds of the card is nearer the
        # allocator's reserve (a CUDA graph keeps its pool between replays: pytorch#121932).
        note += f"; peak reserved {mib(torch.cuda.max_memory_reserved(device))} MiB"
    row = _row(result, note)
    return replace(row, path=f"{row.path} {label}") if label else row


def slots_row(config: RunConfig, data: Datasets, device: torch.device, slots: int) -> Row:
    """``slots`` fits at once, one thread and CUDA stream each; inputs/s over the common wall."""
    results: list[FitResult | BaseException] = [RuntimeError("not run")] * slots

    def one(i: int) -> None:
        stream = torch.cuda.Stream(device) if device.type == "cuda" else None
        try:
            if stream is None:
                results[i] = fit(config.replace(seed=config.seed + i), data, device)
                return
            with torch.cuda.stream(stream):
                results[i] = fit(config.replace(seed=config.seed + i), data, device)
        except BaseException as exc:  # reported in the table, not lost in a thread
            results[i] = exc

    threads = [threading.Thread(target=one, args=(i,)) for i in range(slots)]
    started = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.perf_counter() - started
    done = [r for r in results if isinstance(r, FitResult)]
    errors = [f"{type(r).__name__}: {r}" for r in results if not isinstance(r, FitResult)]
    inputs = sum(r.inputs_seen for r in done)
    losses = [r.validation_loss for r in done]
    # The stack row's figure is of its training steps only: this one's too, in the note, so
    # that the two compare on one basis (the wall also holds builds, captures, validation).
    steps_s = max((r.inputs_seen / r.inputs_per_s for r in done if r.inputs_per_s), default=0.0)
    steps = f", steps only {inputs / steps_s:,.0f}/s" if steps_s else ""
    # Each run's path, as a fit row names its own: a slot whose capture failed trains
    # eagerly at a fraction of the speed, and the total alone would not say so.
    paths = Counter(r.path_used for r in done)
    path = f" {next(iter(paths))}" if len(paths) == 1 else ", mixed paths" if paths else ""
    mixed = "; ".join(f"{n}x {p}" for p, n in paths.items()) + "; " if len(paths) > 1 else ""
    note = f"{len(done)}/{slots} ok, wall incl. build+validation{steps}; {mixed}" + (
        "; ".join(errors)[:200] if errors else f"each {[round(r.inputs_per_s) for r in done]}/s"
    )
    peak = torch.cuda.max_memory_allocated(device) if device.type == "cuda" else 0
    mean_loss = sum(losses) / len(losses) if losses else float("nan")
    label = f"fit x{slots} slots{path}"
    return Row(label, inputs, wall, inputs / wall, mib(peak), mean_loss, note)


def stack_row(config: RunConfig, data: Datasets, device: torch.device, copies: int) -> Row:
    """``copies`` runs as one stacked model; inputs/s counted over all of them."""
    configs = [config.replace(seed=config.seed + i) for i in range(copies)]
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    started = time.perf_counter()
    results = fit_stack(configs, data, device)
    wall = time.perf_counter() - started
    peak = torch.cuda.max_memory_allocated(device) if device.type == "cuda" else 0
    done = [r for r in results if isinstance(r, FitResult)]
    if not done:
        return Row(f"fit stack x{copies}", 0, wall, 0.0, 0.0, math.nan, f"failed: {results}")
    seconds = done[0].inputs_seen / done[0].inputs_per_s if done[0].inputs_per_s else 0.0
    inputs = sum(r.inputs_seen for r in done)
    losses = [r.validation_loss for r in done]
    note = (  # the wall's rate too, the basis of the slots row's figure
        f"{len(done)}/{copies} ok, {done[0].path_used}, fit wall {wall:.1f} s "
        f"({inputs / wall:,.0f}/s); "
        f"val each {[round(v, 5) for v in losses]}"
    )
    return Row(
        f"fit stack x{copies}", inputs, seconds, inputs / seconds if seconds else 0.0,
        mib(peak), sum(losses) / len(losses), note,
    )  # fmt: skip


def _row(result: FitResult, note: str) -> Row:
    seconds = result.inputs_seen / result.inputs_per_s if result.inputs_per_s else 0.0
    return Row(
        f"fit {result.path_used}", result.inputs_seen, seconds, result.inputs_per_s,
        mib(result.peak_memory_bytes), result.validation_loss, note,
    )  # fmt: skip


def _restore_env(key: str, value: str | None) -> None:
    if value is None:
        os.environ.pop(key, None)
    else:
        os.environ[key] = value


# ----- output ------------------------------------------------------------------------------


def table(rows: list[Row], reference: Row | None) -> str:
    head = (
        f"{'path':<44} {'inputs':>8} {'inputs/s':>10} {'x ref':>6} {'train s':>8} "
        f"{'peak MiB':>9} {'val L1':>9}"
    )
    lines = [head, "-" * len(head)]
    for r in rows:
        ratio = f"{r.inputs_per_s / reference.inputs_per_s:.2f}" if reference else "-"
        # A CPU run measures no peak (the process's is not the run's): a dash, not 0.0.
        peak = f"{r.peak_memory_mib:.1f}" if r.peak_memory_mib else "—"
        lines.append(
            f"{r.path[:44]:<44} {r.inputs:>8,} {r.inputs_per_s:>10,.0f} {ratio:>6} "
            f"{r.seconds:>8.1f} {peak:>9} {r.validation_loss:>9.5f}"
        )
        if r.note:
            lines.append(f"    {r.note}")
    return "\n".join(lines)


def write_json(path: str, name: str, config: RunConfig, rows: list[Row], text: str) -> None:
    payload: dict[str, Any] = {
        "device": name,
        "torch": torch.__version__,
        "config": config.to_dict(),
        "rows": [asdict(r) for r in rows],
        "table": text,
    }
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    Path(path).write_text(json.dumps(payload, indent=2))


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    check_inputs(args.inputs, args.batch_size)
    device = pick_device(args.device)
    config = shape_config(args, max_inputs=args.inputs, precision=args.precision, seed=args.seed)
    data = load_datasets(config.dataset, config.image_size, device, args.data_dir)
    if device.type == "cuda":
        torch.cuda.synchronize(device)  # slot threads read the data from other streams
    name = device_name(device)
    print(f"device: {name}; torch {torch.__version__}")
    size = config.image_size
    precision = f"{config.precision} -> {config.resolved_precision(device.type)}"
    print(
        f"config: {config.layers} layers, {size}x{size}, {config.channels} ch, batch "
        f"{config.batch_size}, {config.max_inputs:,} inputs, precision {precision}",
        flush=True,
    )
    rows: list[Row] = []
    reference = None

    def done(row: Row) -> None:  # print and save after every row: a timeout keeps the rest
        rows.append(row)
        print(f"done: {row.path}: {row.inputs_per_s:,.0f} inputs/s, val {row.validation_loss:.5f}",
              flush=True)  # fmt: skip
        if args.out:
            write_json(args.out, name, config, rows, table(rows, reference))

    if not args.skip_reference:
        reference = reference_row(config, data, device, args.workers)
        done(reference)
    done(fit_row(config, data, device, {COMPILE_ENV: "0"}))
    if args.plain:
        done(fit_row(config.replace(precision="fp32"), data, device, {FAST_PATH_ENV: "0"}))
    for slots in args.slots:
        if slots > 1:
            done(slots_row(config, data, device, slots))
    if args.variants:
        short = config.replace(max_inputs=args.variants)
        done(fit_row(short.replace(precision="fp32"), data, device, {COMPILE_ENV: "0"}))
        done(fit_row(short, data, device, {COMPILE_ENV: "0", CHANNELS_LAST_ENV: "0"}))
        done(fit_row(short, data, device, {COMPILE_ENV: "0", GRAPH_ENV: "0"}))
    for copies in args.stack:
        done(stack_row(config, data, device, copies))
    if args.foreach:
        done(fit_row(config, data, device, {COMPILE_ENV: "0", FUSED_ADAM_ENV: "0"}, "foreach"))
    if args.compile:
        done(fit_row(config, data, device, {COMPILE_ENV: "1"}))
    text = table(rows, reference)
    print(f"\n{'CPU ' if device.type == 'cpu' else ''}results on {name}\n{text}")
    return 0


if __name__ == "__main__":
    raise SystemExit(one_line_errors(main, "train_speed.py"))
