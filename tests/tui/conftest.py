"""Fixtures of the dashboard tests: a seeded SQLite queue with frozen times.

The database is written through ``Repo``'s verbs only (as the worker and CLI
would), with the repo module's clock replaced so every timestamp, and so every
age and ETA on screen, is the same on every run: snapshots stay stable.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from screen_host import settle as settle_pilot

import core.queue.repo as repo_module
from core.queue import FinalFigures, GpuSnapshot, MetricPoint, NewRun, Repo
from core.sweep import expand_sweep_text
from resconv_tui.app import ResconvApp, make_app
from resconv_tui.worker_launcher import DEFAULT_WORKER, Launched, WorkerOptions

T0 = 1_700_000_000.0
NOW = T0 + 600.0  # the dashboard's frozen "now"
SIZE = (120, 36)
LOCAL_HOST = "workstation"  # the dashboard's own host in tests (snapshots show it)
LAUNCHED_PID = 4242  # the fake launcher's worker

SWEEP_T1 = """
name: t1-layers-32
image_size: 32
model: v1
max_inputs: 180000
matrix:
  l: [1, 2, 3, 5]
targets:
- {l: 1, validation_loss: 0.164834, params: 675, minutes: 0.36}
- {l: 2, validation_loss: 0.124805, params: 19299, minutes: 0.52}
- {l: 3, validation_loss: 0.102242, params: 37923, minutes: 0.78}
"""
SWEEP_ACT = """
name: act-demo
layers: 3
max_inputs: 60000
matrix:
  act: [gelu, relu, mish, tanh]
"""


class FakeClock:
    """Stands in for the ``time`` module inside ``core.queue.repo``."""

    def __init__(self, now: float) -> None:
        self.now = now

    def time(self) -> float:
        return self.now


@contextmanager
def frozen_repo_time(now: float) -> Iterator[FakeClock]:
    clock = FakeClock(now)
    original = repo_module.time
    repo_module.time = clock  # type: ignore[assignment]
    try:
        yield clock
    finally:
        repo_module.time = original


@dataclass
class FakeLauncher:
    """Records start/stop instead of spawning processes (the e2e test spawns real ones)."""

    started: list[tuple[str, WorkerOptions]] = field(default_factory=list)
    stopped: list[int] = field(default_factory=list)
    exited: set[int] = field(default_factory=set)  # pids of worker rows whose process is gone
    # The worker it starts (pid LAUNCHED_PID): alive() says no after this many looks.
    exits_after: int | None = None
    alive_calls: int = 0  # looks at the started worker
    exit_status: int = 2  # what the started worker exits with (2: a refused start)
    log_path: Path = Path("worker.log")

    def start(self, db_url: str, options: WorkerOptions = DEFAULT_WORKER) -> Launched:
        self.started.append((db_url, options))
        return Launched(pid=LAUNCHED_PID, log_path=self.log_path, started_at=NOW)

    def stop(self, pid: int) -> bool:
        self.stopped.append(pid)
        return True

    def alive(self, pid: int) -> bool:
        if pid != LAUNCHED_PID:
            return pid not in self.exited
        self.alive_calls += 1
        return self.exits_after is None or self.alive_calls <= self.exits_after

    def worker_alive(self, pid: int, registered_at: float) -> bool:
        return self.alive(pid)  # its pids are made up: no process to tell a start time of

    def exit_code(self, pid: int) -> int | None:
        gone = self.exits_after is not None and self.alive_calls > self.exits_after
        return self.exit_status if pid == LAUNCHED_PID and gone else None


def new_runs(text: str) -> list[NewRun]:
    return [NewRun.from_expanded(run) for run in expand_sweep_text(text)]


def seed_queue(url: str) -> dict[str, Any]:
    """Eight runs in every status, two workers, metrics; ids are 1..8 in queue order."""
    repo = Repo.open(url)
    with frozen_repo_time(T0) as clock:
        ids = list(repo.enqueue(new_runs(SWEEP_T1)).added_ids)
        ids += repo.enqueue(new_runs(SWEEP_ACT)).added_ids
        gpu_box = repo.register_worker("gpu-box", 1111, "cuda:0")
        for run_id, loss in zip(ids[:3], (0.161, 0.1302, 0.0991), strict=True):
            _train(repo, clock, gpu_box, run_id, loss)
        clock.now = T0 + 400
        running = repo.claim(gpu_box)
        assert running is not None and running.id == ids[3]
        points = [MetricPoint(s, s * 6400, "train_loss", 0.2 - s / 500) for s in range(1, 15)]
        repo.add_metrics(running.id, [*points, MetricPoint(14, 89600, "val_loss", 0.081)])
        gpu = GpuSnapshot("RTX 4090", 87.0, 5 * 2**30, 24 * 2**30, 61.0)
        clock.now = T0 + 580
        repo.heartbeat(gpu_box, run_id=running.id, inputs_done=89600, gpu=gpu)
        local = repo.register_worker(LOCAL_HOST, 2222, "cpu")
        _fail_and_cancel(repo, clock, local, ids[4], ids[5])
    repo.close()
    return {"ids": ids, "running": ids[3], "failed": ids[4], "cancelled": ids[5]}


def _train(repo: Repo, clock: FakeClock, worker: str, run_id: int, loss: float) -> None:
    claimed = repo.claim(worker)
    assert claimed is not None and claimed.id == run_id
    clock.now += 60 + run_id * 7
    repo.add_metrics(run_id, [MetricPoint(1, 64, "train_loss", loss * 1.1)])
    figures = FinalFigures(
        validation_loss=loss,
        train_seconds=55.0 + run_id * 7,
        inputs_per_s=3272.0 - run_id * 100,
        peak_memory_bytes=(300 + run_id * 40) * 2**20,
        inputs_done=claimed.total_inputs,
    )
    assert repo.finish(run_id, worker, figures)


def _fail_and_cancel(repo: Repo, clock: FakeClock, worker: str, fail: int, cancel: int) -> None:
    clock.now = T0 + 590
    repo.set_priority([fail], 5)  # claimed before the older queued runs
    assert repo.claim(worker) is not None
    repo.add_metrics(fail, [], inputs_done=1280)
    repo.fail(fail, worker, "CUDA out of memory (tried to allocate 2.0 GiB)")
    repo.request_cancel([cancel])


@pytest.fixture
def db_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'runs.db'}"


@pytest.fixture
def seeded(db_url: str) -> dict[str, Any]:
    return seed_queue(db_url)


@pytest.fixture
def no_local_worker(seeded: dict[str, Any], db_url: str) -> None:
    """The seeded local worker (pid 2222) has stopped: ``w`` starts a worker, not stops one."""
    repo = Repo.open(db_url)
    for worker in repo.list_workers():
        if worker.pid == 2222:
            repo.update_worker(worker.id, state="stopped")
    repo.close()


@pytest.fixture
def local_slot_workers(no_local_worker: None, db_url: str) -> list[int]:
    """A ``worker --slots 2`` here as processes (a row per slot, pids 3001 and 3002).

    Slot 1 is training a run; its id is returned (in a list, like ``local_stack_worker``).
    """
    repo = Repo.open(db_url)
    with frozen_repo_time(NOW):
        slot_1 = repo.register_worker(LOCAL_HOST, 3001, "cpu slot 1/2")
        repo.register_worker(LOCAL_HOST, 3002, "cpu slot 2/2")
        training = repo.claim(slot_1)
    repo.close()
    assert training is not None
    return [training.id]


@pytest.fixture
def local_slots_one_finishing(local_slot_workers: list[int], db_url: str) -> list[int]:
    """``local_slot_workers`` with slot 2 training a run too, which has trained all its
    inputs (its final pass); the two runs' ids, the finishing one last."""
    repo = Repo.open(db_url)
    with frozen_repo_time(NOW):
        slot_2 = next(w.id for w in repo.list_workers() if w.pid == 3002)
        finishing = repo.claim(slot_2)
        assert finishing is not None
        repo.add_metrics(finishing.id, [], inputs_done=finishing.total_inputs)
    repo.close()
    return [*local_slot_workers, finishing.id]


@pytest.fixture
def local_stack_worker(no_local_worker: None, db_url: str) -> list[int]:
    """A ``worker --stack 3`` here (pid 3003) training three seeds of one cell as one model.

    Its row names only the first run; the ids of all three are returned.
    """
    repo = Repo.open(db_url)
    with frozen_repo_time(NOW):
        ids = list(repo.enqueue(new_runs("name: seeds\nlayers: 2\nseeds: 3\n")).added_ids)
        repo.set_priority(ids, 9)
        worker = repo.register_worker(LOCAL_HOST, 3003, "cpu")
        lead = repo.claim(worker)
        assert lead is not None
        partners = repo.claim_like(worker, lead, 2)
    repo.close()
    assert [lead.id, *(r.id for r in partners)] == ids
    return ids


@pytest.fixture
def local_thread_slots(no_local_worker: None, db_url: str) -> None:
    """A ``worker --slots 2`` here as threads of one process: two idle rows, one pid (3004)."""
    repo = Repo.open(db_url)
    with frozen_repo_time(NOW):
        for slot in (1, 2):
            repo.register_worker(LOCAL_HOST, 3004, f"cuda:0 slot {slot}/2")
    repo.close()


@pytest.fixture
def launcher(monkeypatch: pytest.MonkeyPatch) -> FakeLauncher:
    # The w dialog checks cuda:N against the GPUs NVML counts: none known here, so that
    # a test's cuda:1 means the same on a one-GPU box as on CI's GPU-less one.
    import resconv_tui.screens.start_worker as start_worker

    monkeypatch.setattr(start_worker, "visible_gpu_count", lambda: None)
    return FakeLauncher()


@pytest.fixture
def app_factory(db_url: str, launcher: FakeLauncher, tmp_path: Path) -> Any:
    def factory() -> ResconvApp:
        # Long poll interval: tests refresh through actions, never by waiting.
        return make_app(
            db_url,
            clock=lambda: NOW,
            launcher=launcher,  # type: ignore[arg-type]
            poll_interval_s=3600,
            export_dir=tmp_path,
            hostname=LOCAL_HOST,
        )

    return factory


@pytest.fixture
def settle() -> Any:
    return settle_pilot
