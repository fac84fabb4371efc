"""Deterministic runs for the detail and compare screens, written through Repo verbs.

``frozen_repo`` replaces the repo module's clock and worker-id randomness so every
timestamp and id on screen is the same on every run (snapshots stay stable).
"""

from __future__ import annotations

import math
import time
from types import SimpleNamespace

import numpy as np
import pytest

import core.queue.repo as repo_module
import resconv_tui.widgets.run_info as run_info
from core.config import RunConfig
from core.params import count_params
from core.queue import MetricPoint, NewRun

T0 = 1_700_000_000.0


def freeze(monkeypatch: pytest.MonkeyPatch) -> SimpleNamespace:
    """Frozen repo clock (set ``.time``), fixed worker ids, UTC on screen."""
    clock = SimpleNamespace(time=lambda: T0)
    monkeypatch.setattr(repo_module, "time", clock)
    monkeypatch.setattr(repo_module, "secrets", SimpleNamespace(token_hex=lambda n: "beef"))
    monkeypatch.setattr(run_info, "localtime", time.gmtime)
    return clock


def new_run(layers: int, experiment: str = "demo", **changes: object) -> NewRun:
    config = RunConfig(layers=layers, max_inputs=64_000, **changes)  # type: ignore[arg-type]
    return NewRun.from_config(
        config, experiment=experiment, name=f"l-{layers}", param_count=count_params(config)
    )


def curve(steps: range, floor: float = 0.05, every: int = 640) -> list[MetricPoint]:
    """Train loss, speed and memory each step; validation every 10th step."""
    points = []
    for s in steps:
        loss = 0.25 * math.exp(-s / 15) + floor
        points += [
            MetricPoint(s, s * every, "train_loss", loss),
            MetricPoint(s, s * every, "inputs_per_s", 3000.0 + 10 * (s % 7)),
            MetricPoint(s, s * every, "memory_bytes", float((300 + s) * 2**20)),
        ]
        if s % 10 == 0:
            points.append(MetricPoint(s, s * every, "val_loss", loss + 0.01))
    return points


def sample_grid(n: int = 8, side: int = 28) -> np.ndarray:
    """(3, n, side, side) uint8: a bright square per image; the input lost its lower half."""
    grid = np.zeros((3, n, side, side), dtype=np.uint8)
    for i in range(n):
        top = 4 + 2 * i % 12
        grid[:, i, top : top + 10, 6 : 6 + 12] = 200
    grid[0, :, side // 2 :, :] = 0
    grid[1] = (grid[2] * 0.8).astype(np.uint8)  # the output: a dimmer target
    return grid


def detail_runs(db_url: str, clock: SimpleNamespace) -> dict[str, int]:
    """One succeeded run (with samples), one failed (out of memory), one running; the
    times ``clock`` (``freeze``'s) gives."""
    from core.queue import FinalFigures, Repo
    from core.queue.samples import encode_samples

    repo = Repo.open(db_url)
    done, failed, running = repo.enqueue([new_run(n) for n in (3, 5, 7)]).added_ids
    worker = repo.register_worker("gpu-box", 1234, "cuda:0")
    repo.claim(worker)
    repo.add_metrics(done, curve(range(1, 100)), inputs_done=63_360)
    clock.time = lambda: T0 + 95.0
    samples = encode_samples(sample_grid())
    repo.finish(
        done, worker, FinalFigures(0.0512, None, 92.5, 3100.0, 412 * 2**20, 64_000, samples=samples)
    )
    repo.claim(worker)
    repo.add_metrics(failed, curve(range(1, 5)), inputs_done=2560)
    repo.fail(failed, worker, "CUDA out of memory (tried to allocate 2.0 GiB)")
    repo.claim(worker)
    repo.add_metrics(running, curve(range(1, 20)), inputs_done=12_160)
    clock.time = lambda: T0 + 135.0
    repo.heartbeat(worker, run_id=running)  # 12,160 inputs in 40 s
    repo.close()
    return {"done": done, "failed": failed, "running": running}


# A running run's ETA, and ls's words where it has none (`polling.why_no_eta`): what the
# run detail's and `show`'s ETA row says in each case, read at READ_AT[case] (T0 + ...).
ETA_SAYS = {
    "forecast": "2m51s",  # the queue forecast's, as the runs table's ETA column and ls
    "validating": "validating: its final pass, samples and checkpoints",
    "cancel requested": "cancel requested: its worker stops it within a few seconds",
    "cancel requested, finishing": "cancel requested, but it has trained all its inputs "
    "and is finishing: it will likely succeed",
    "stalled": "stalled: no training step for 10 min or more (see its worker's log)",
    "silent": "silent 1m05s: no heartbeat from its worker (lost?)",
    "exited": "its worker's process has exited: worker lost (a worker or dashboard marks it)",
}
# 15 s after the running run's last beat (an exited worker is told after 10 s of silence),
# but 65 s for a silent one (30 s).
READ_AT = dict.fromkeys(ETA_SAYS, 150.0) | {"silent": 200.0}


def eta_case(db_url: str, running: int, case: str) -> int:
    """``detail_runs``'s ``running`` run put in ``case`` (of ``ETA_SAYS``), or for
    "exited" a new run whose worker of this machine has exited (``kill -9``): its id."""
    import socket
    import subprocess
    import sys

    from core.queue import Repo

    repo = Repo.open(db_url)
    worker = repo.get_run(running).worker_id
    assert worker is not None
    if case in ("validating", "cancel requested, finishing"):
        repo.add_metrics(running, [], inputs_done=64_000)  # its last step done
    if case.startswith("cancel requested"):
        assert repo.request_cancel([running])[running].value == "running"
    if case == "stalled":
        assert repo.mark_worker_stalled(worker, True)
    if case == "exited":
        gone = subprocess.Popen([sys.executable, "-c", "pass"])
        gone.wait()  # its pid is free now: a worker killed with -9 looks like this
        (running,) = repo.enqueue([new_run(9)]).added_ids
        assert repo.claim(repo.register_worker(socket.gethostname(), gone.pid, "cpu"))
    repo.close()
    return running
