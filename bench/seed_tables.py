"""Queue-free timing of a whole logbook table: every run of a sweep file through fit().

    python bench/seed_tables.py experiments/t1-layers-32.yml
    python bench/seed_tables.py experiments/t1-layers-32.yml --device cpu --inputs 256 --limit 2
    python bench/seed_tables.py experiments/t1-layers-32.yml --out $OUT/t1.json

Prints each run's final validation L1 next to the logbook's (the sweep file's
``targets``), its train speed and wall time, and the table's total wall time
(data loading included, since that is what a person waits for). Issue 5's
target: T1 (12 runs at 32x32) in under 90 s on one GPU.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import torch  # noqa: E402

from bench.shape import check_inputs, count, one_line_errors  # noqa: E402
from bench.train_speed import device_name, pick_device  # noqa: E402
from core.data import Datasets, load_datasets  # noqa: E402
from core.sweep import ExpandedRun, expand_sweep_file  # noqa: E402
from core.train import fit  # noqa: E402


@dataclass(frozen=True)
class TableRow:
    name: str
    validation_loss: float
    target_loss: float | None
    inputs_per_s: float
    wall_seconds: float
    path: str


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("sweep", help="a sweep file, e.g. experiments/t1-layers-32.yml")
    p.add_argument("--device", default="auto")
    p.add_argument("--precision", default=None, choices=("auto", "fp32", "bf16"))
    p.add_argument("--inputs", type=count(), default=None, help="override max_inputs (smoke runs)")
    p.add_argument("--limit", type=count(), default=None, help="only the first N runs")
    p.add_argument("--data-dir", default=None)
    p.add_argument("--out", default=None, help="write the rows as JSON here")
    return p.parse_args(argv)


def prepared(run: ExpandedRun, args: argparse.Namespace) -> ExpandedRun:
    changes = {}
    if args.inputs is not None:
        check_inputs(args.inputs, run.config.batch_size)
        changes["max_inputs"] = args.inputs
    if args.precision is not None:
        changes["precision"] = args.precision
    if not changes:
        return run
    return ExpandedRun(**{**run.__dict__, "config": run.config.replace(**changes)})


def train_all(
    runs: list[ExpandedRun], device: torch.device, data_dir: str | None
) -> list[TableRow]:
    cache: dict[tuple[str, int], Datasets] = {}
    rows = []
    for run in runs:
        c = run.config
        key = (c.dataset, c.image_size)
        if key not in cache:
            cache[key] = load_datasets(c.dataset, c.image_size, device, data_dir)
        started = time.perf_counter()
        result = fit(c, cache[key], device)
        target = (run.target or {}).get("validation_loss")
        row = TableRow(
            run.name, result.validation_loss, target, result.inputs_per_s,
            time.perf_counter() - started, result.path_used,
        )  # fmt: skip
        rows.append(row)
        print(_line(row), flush=True)
    return rows


def _line(r: TableRow) -> str:
    target = f"{r.target_loss:.6f}" if r.target_loss is not None else "-"
    diff = f"{r.validation_loss - r.target_loss:+.6f}" if r.target_loss is not None else "-"
    return (
        f"{r.name[:28]:<28} {r.validation_loss:>9.6f} {target:>9} {diff:>10} "
        f"{r.inputs_per_s:>9,.0f} {r.wall_seconds:>7.1f}  {r.path}"
    )


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    device = pick_device(args.device)
    runs = [prepared(r, args) for r in expand_sweep_file(args.sweep)][: args.limit]
    name = device_name(device)
    print(f"device: {name}; {len(runs)} runs of {args.sweep}")
    head = f"{'run':<28} {'val L1':>9} {'logbook':>9} {'diff':>10} {'inputs/s':>9} {'wall s':>7}"
    print(f"{head}  path")
    started = time.perf_counter()
    rows = train_all(runs, device, args.data_dir)
    total = time.perf_counter() - started
    label = "CPU " if device.type == "cpu" else ""
    print(f"{label}total wall time: {total:.1f} s for {len(rows)} runs on {name}")
    if args.out:
        payload = {
            "device": name,
            "sweep": args.sweep,
            # A smoke run's losses are far from the logbook's: say it was one.
            "inputs_override": args.inputs,
            "precision_override": args.precision,
            "total_wall_seconds": total,
            "rows": [asdict(r) for r in rows],
        }
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(json.dumps(payload, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(one_line_errors(main, "seed_tables.py"))
