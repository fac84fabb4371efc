"""Time one dashboard refresh on a big queue: 10,000 runs and 5,000,000 metric rows.

    .venv/bin/python bench/tui_refresh.py [--db PATH] [--runs N] [--metrics N] [--repeat N]

Builds the database once (schema through ``Repo``, rows through sqlite3's
``executemany`` in one transaction: about a minute), then times exactly what the
runs screen's poll does each tick: ``polling.read_dashboard`` (all runs, recent
workers, and the selected running run's new metric rows, read incrementally).
Between ticks a few metric rows are added to that run, as a training worker would.
Then it opens the real app headless on the same database and times what the UI
thread does with each poll's result (drawing the table, summary and panel), so
poll + draw is the whole tick. The target is a median under 100 ms.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import sqlite3
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.shape import count, one_line_errors  # noqa: E402
from core.config import RunConfig  # noqa: E402
from core.queue import MetricPoint, QueueError, Repo, RunFilter, RunStatus  # noqa: E402
from resconv_tui.app import make_app  # noqa: E402
from resconv_tui.polling import read_dashboard  # noqa: E402
from resconv_tui.screens.runs import RunsScreen  # noqa: E402

STATUSES = ["succeeded"] * 90 + ["failed"] * 3 + ["cancelled"] * 2 + ["queued"] * 5


def build(path: Path, runs: int, metrics: int) -> int:
    """Fill ``path``; returns the id of a running run to select."""
    Repo.open(str(path)).close()  # the schema, exactly as the app makes it
    conn = sqlite3.connect(path, isolation_level=None)
    rng = random.Random(0)
    now = time.time()
    conn.execute("BEGIN")
    conn.executemany(
        "INSERT INTO run (id, experiment, name, status, priority, config_json, config_hash, "
        "seed, swept_json, param_count, total_inputs, inputs_done, attempts, created_at, "
        "started_at, finished_at, heartbeat_at, cancel_requested, validation_loss, "
        "train_seconds, inputs_per_s) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
        (_run_values(i, rng, now, runs) for i in range(1, runs + 1)),
    )
    per_run = max(1, metrics // runs)
    conn.executemany(
        "INSERT INTO metric (run_id, step, inputs, name, value) VALUES (?,?,?,?,?)",
        (
            (1 + i // per_run, i % per_run, (i % per_run) * 64,
             "train_loss" if i % 10 else "val_loss", 0.05 + rng.random() / 10)
            for i in range(metrics)
        ),
    )  # fmt: skip
    # Columns named: a table that gains a column (worker's stack, say) keeps this working.
    conn.execute("INSERT INTO worker (id, host, pid, device, state, started_at, last_seen_at, "
                 "current_run_id, runs_done, gpu_name, gpu_util, gpu_memory_used, "
                 "gpu_memory_total, gpu_temperature) VALUES ('gpu-1', 'box', 1, 'cuda:0', "
                 "'running', ?, ?, ?, 12, 'RTX', 90, 5000000000, 24000000000, 60)",
                 (now, now, runs))  # fmt: skip
    conn.execute("COMMIT")
    conn.close()
    return runs  # the last run is the running one


def _run_values(i: int, rng: random.Random, now: float, total: int) -> tuple[object, ...]:
    layers = rng.choice([1, 3, 5, 7, 9, 11])
    config = RunConfig(layers=layers, seed=i)
    status = "running" if i == total else STATUSES[i % len(STATUSES)]
    done = status == "succeeded"
    return (
        i, f"exp-{i // 500}", f"l-{layers}_seed-{i}", status, 0, config.to_json(),
        config.config_hash(), i, json.dumps({"l": layers, "seed": i}), 186915, 180000,
        180000 if done else 1000, 1, now - 1000, now - 900, now - 100 if done else None,
        now, False, 0.05 + rng.random() / 10 if done else None, 120.0 if done else None,
        1500.0 if done else None,
    )  # fmt: skip


def running_run(path: Path) -> int:
    """The running run of a file ``build`` made (its last run); QueueError if none."""
    repo = Repo.open(str(path), create=False)
    try:
        running = repo.list_runs(RunFilter(statuses=frozenset({RunStatus.RUNNING})))
    finally:
        repo.close()
    if not running:
        raise QueueError(f"{path} has no running run: not a file this benchmark built")
    return running[-1].id


def time_refreshes(path: Path, selected: int, repeat: int) -> list[float]:
    repo = Repo.open(str(path))
    start = time.perf_counter()
    dash = read_dashboard(repo, time.time(), selected)  # the first, full read
    print(f"first refresh (reads every run): {(time.perf_counter() - start) * 1000:.0f} ms")
    timings = []
    for step in range(repeat):
        repo.add_metrics(selected, [MetricPoint(10_000 + step, 0, "train_loss", 0.1)])
        start = time.perf_counter()
        dash = read_dashboard(repo, time.time(), selected, dash.latest, dash.settled)
        timings.append((time.perf_counter() - start) * 1000)
    repo.close()
    return timings


def time_draws(path: Path, repeat: int) -> tuple[float, list[float]]:
    """(seconds until the first draw, ms per later draw) of the runs screen in the real app."""
    draws: list[float] = []
    handler = RunsScreen.on_runs_screen_dashboard_refreshed

    def timed(screen: RunsScreen, message: RunsScreen.DashboardRefreshed) -> None:
        start = time.perf_counter()
        handler(screen, message)
        draws.append((time.perf_counter() - start) * 1000)

    async def drive() -> float:
        app = make_app(f"sqlite:///{path}")
        async with app.run_test(size=(160, 45)) as pilot:
            start = time.perf_counter()
            while not draws:
                await pilot.pause(0.02)
            first = time.perf_counter() - start
            for _ in range(repeat):
                done = len(draws)
                app.screen.refresh_now()  # type: ignore[attr-defined]
                while len(draws) == done:
                    await pilot.pause(0.005)
            return first

    RunsScreen.on_runs_screen_dashboard_refreshed = timed  # type: ignore[method-assign]
    try:
        first = asyncio.run(drive())
    finally:
        RunsScreen.on_runs_screen_dashboard_refreshed = handler  # type: ignore[method-assign]
    return first, draws[1:]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", type=Path, default=None, help="reuse or create this file")
    parser.add_argument("--runs", type=count(), default=10_000)
    parser.add_argument("--metrics", type=count(0), default=5_000_000)
    parser.add_argument("--repeat", type=count(), default=30)
    args = parser.parse_args()
    path = args.db or Path(tempfile.mkdtemp()) / "bench.db"
    if not path.exists():
        start = time.perf_counter()
        selected = build(path, args.runs, args.metrics)
        print(f"built {path}: {args.runs:,} runs, {args.metrics:,} metric rows "
              f"in {time.perf_counter() - start:.1f} s")  # fmt: skip
    else:
        # Its own size and running run, not --runs' (another --runs failed on a foreign
        # key, or timed a run that was not the running one).
        selected = running_run(path)
        print(f"reusing {path}: {selected:,} runs (--runs and --metrics apply to a new file)")
    timings = time_refreshes(path, selected, args.repeat)
    print(f"refresh over {args.repeat} ticks: median {statistics.median(timings):.1f} ms, "
          f"max {max(timings):.1f} ms (target < 100 ms)")  # fmt: skip
    first, draws = time_draws(path, args.repeat)
    print(f"app: first screen drawn after {first:.2f} s; draw per tick on the UI thread: "
          f"median {statistics.median(draws):.1f} ms, max {max(draws):.1f} ms")  # fmt: skip
    total = statistics.median(timings) + statistics.median(draws)
    print(f"whole tick (poll + draw), median: {total:.1f} ms (target < 100 ms)")
    return 0


if __name__ == "__main__":
    sys.exit(one_line_errors(main, "tui_refresh.py"))
