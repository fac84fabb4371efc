"""What the real worker achieved, read back from its database: one line per experiment.

    python bench/worker_speed.py --db /tmp/gpu.db
    python bench/worker_speed.py --db runs.db --experiment t1-layers-32

For each experiment: runs by status, the inputs trained, the span from the first
run's start to the last run's end (claims, data loading, capture and validation
included: what a person waits for), inputs per second over that span, the sum
of the runs' own training rates, and the paths the runs took. Each run's line
gives its validation L1 next to the logbook's (the sweep's ``targets``).
"""

from __future__ import annotations

import argparse
import sys
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from core.queue import QueueError, Repo, RunRow  # noqa: E402
from core.queue.rows import RunFilter  # noqa: E402


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--db", required=True, help="database URL or SQLite path")
    p.add_argument("--experiment", default=None, help="only this experiment")
    p.add_argument("--runs", action="store_true", help="also one line per run")
    return p.parse_args(argv)


def summary(name: str, runs: list[RunRow]) -> str:
    statuses = Counter(r.status.value for r in runs)
    ended = [r for r in runs if r.started_at is not None and r.finished_at is not None]
    inputs = sum(r.inputs_done for r in runs)
    text = f"{name}: {len(runs)} runs ({', '.join(f'{n} {s}' for s, n in statuses.items())})"
    if not ended:
        return text + ", none ended"
    span = max(r.finished_at for r in ended) - min(r.started_at for r in ended)  # type: ignore[type-var,operator]
    own = sum(r.inputs_per_s or 0.0 for r in ended)
    paths = Counter(r.path_used or "-" for r in ended)
    return (
        f"{text}\n  {inputs:,} inputs in {span:.1f} s (first start to last end) = "
        f"{inputs / span:,.0f} inputs/s; sum of the runs' own training rates {own:,.0f}/s\n"
        f"  paths: {'; '.join(f'{n} x {p}' for p, n in paths.items())}"
    )


def run_line(r: RunRow) -> str:
    target = (r.target or {}).get("validation_loss")
    loss = f"{r.validation_loss:.6f}" if r.validation_loss is not None else "-"
    logbook = f"{target:.6f}" if target is not None else "-"
    rate = f"{r.inputs_per_s:,.0f}" if r.inputs_per_s else "-"
    seconds = f"{r.finished_at - r.started_at:.1f}" if r.finished_at and r.started_at else "-"
    return (
        f"  {r.name[:26]:<26} {loss:>9} {logbook:>9} {rate:>8}/s {seconds:>6} s  {r.status.value}"
    )


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        repo = Repo.open(args.db, create=False)
    except QueueError as exc:
        print(f"worker_speed.py: {exc}", file=sys.stderr)
        return 2
    try:
        runs = repo.list_runs(RunFilter(experiment=args.experiment))
    finally:
        repo.close()
    by_experiment: dict[str, list[RunRow]] = {}
    for run in sorted(runs, key=lambda r: r.id):
        by_experiment.setdefault(run.experiment, []).append(run)
    for name, group in by_experiment.items():
        print(summary(name, group))
        if args.runs:
            print(f"  {'run':<26} {'val L1':>9} {'logbook':>9} {'inputs/s':>10} {'wall':>8}")
            for run in group:
                print(run_line(run))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
