"""What the worker's fit() callbacks cost per training step, on a real SQLite queue.

    .venv/bin/python bench/logging_cost.py [--steps 20000] [--step-ms 2.1]

Drives ``core.recording.RunRecorder`` exactly as fit() does (``should_stop`` before
every step, a TrainPoint every ``LOG_EVERY`` steps) while wall time passes, so the
batched metric inserts and the once-a-second cancel-flag reads happen as they would
in a real run. Prints the callback time per step and its share of a training step
(default 2.1 ms: 30,000 inputs/s at batch 64, issue 5's target). Issue 3's target:
logging costs under 2 % of step time.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from core.queue import NewRun, Repo  # noqa: E402
from core.recording import LOG_EVERY, RunRecorder, StopFlags  # noqa: E402
from core.sweep import expand_sweep_text  # noqa: E402
from core.train import TrainPoint  # noqa: E402

PAUSE_EVERY, PAUSE_S = 500, 0.2  # let wall time pass so flushes and cancel checks happen


def callback_seconds(steps: int) -> float:
    repo = Repo.open(str(Path(tempfile.mkdtemp()) / "runs.db"))
    repo.enqueue([NewRun.from_expanded(r) for r in expand_sweep_text("name: x\nlayers: 2\n")])
    worker = repo.register_worker("bench", 1, "cpu")
    run = repo.claim(worker)
    assert run is not None
    recorder = RunRecorder(repo, run.id, StopFlags(), worker_id=worker)
    paused = 0.0
    start = time.perf_counter()
    for step in range(1, steps + 1):
        recorder.should_stop()
        if step % LOG_EVERY == 0:
            recorder.on_train_loss(TrainPoint(step, step * 64, 0.1, 3e-4, 30_000.0, 0))
        if step % PAUSE_EVERY == 0:
            time.sleep(PAUSE_S)
            paused += PAUSE_S
    recorder.flush()
    return time.perf_counter() - start - paused


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=20_000)
    parser.add_argument("--step-ms", type=float, default=2.1, help="a training step's time")
    args = parser.parse_args()
    per_step = callback_seconds(args.steps) / args.steps
    print(f"callbacks: {per_step * 1e6:.1f} us per step over {args.steps:,} steps")
    share = per_step / (args.step_ms / 1000) * 100
    print(f"share of a {args.step_ms} ms step: {share:.2f} % (target < 2 %)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
