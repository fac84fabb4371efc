"""Slot threads (``core.stream_slots``) in-process with a fake trainer, and the slot mode."""

from __future__ import annotations

import signal
import threading
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from queue_helpers import tiny_runs

import core.stream_slots as stream_slots
from core.early_signals import STOP_SIGNALS
from core.processes import PARENT_GONE
from core.queue import QueueError, Repo, RunRow, RunStatus
from core.stream_slots import run_stream_slots
from core.train import FitCallbacks, FitResult
from core.worker_options import ClaimRules, slot_mode


class OverlapTrainer:
    """Each run takes 0.3 s; records how many runs were training at the same time."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.active = self.most = 0
        self.threads: set[str] = set()

    def __call__(self, run: RunRow, cb: FitCallbacks, checkpoint_dir: Path) -> FitResult:
        with self.lock:
            self.active += 1
            self.most = max(self.most, self.active)
            self.threads.add(threading.current_thread().name)
        time.sleep(0.3)
        with self.lock:
            self.active -= 1
        grid = np.zeros((3, 1, 28, 28), dtype=np.uint8)
        return FitResult(0.5, inputs_seen=512, steps=8, inputs_per_s=100.0,
                         wall_seconds=0.3, param_count=321, samples=grid)  # fmt: skip


def test_slot_threads_train_runs_at_the_same_time_each_exactly_once(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'runs.db'}"
    repo = Repo.open(url)
    repo.enqueue(tiny_runs(6))
    repo.close()
    trainer = OverlapTrainer()
    code = run_stream_slots(
        url, 3, "cpu", until_empty=True, checkpoint_root=tmp_path / "ck",
        trainer=trainer, install_signals=False,
    )  # fmt: skip
    assert code == 0
    assert trainer.most == 3 and trainer.threads == {"slot-1", "slot-2", "slot-3"}
    repo = Repo.open(url)
    runs, workers = repo.list_runs(), repo.list_workers(include_gone=True)
    repo.close()
    assert [(r.status, r.attempts) for r in runs] == [(RunStatus.SUCCEEDED, 1)] * 6
    assert sorted(w.device for w in workers) == [f"cpu slot {i}/3" for i in (1, 2, 3)]
    assert {w.state for w in workers} == {"stopped"}
    assert sum(w.runs_done for w in workers) == 6


def test_cpu_slot_threads_claim_no_cuda_streams(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`--slot-mode threads` on a CPU said "one CUDA stream each" (user walk)."""
    url = f"sqlite:///{tmp_path / 'runs.db'}"
    Repo.open(url).close()
    code = run_stream_slots(
        url, 2, "cpu", until_empty=True, checkpoint_root=tmp_path / "ck",
        trainer=OverlapTrainer(), install_signals=False,
    )  # fmt: skip
    assert code == 0
    started = next(line for line in capsys.readouterr().out.splitlines() if "started" in line)
    assert "2 slots started as threads of process" in started
    assert "CUDA" not in started


def test_a_wrong_database_is_reported_before_any_slot_starts(tmp_path: Path) -> None:
    missing = tmp_path / "nowhere" / "runs.db"
    with pytest.raises(QueueError):
        run_stream_slots(f"sqlite:///{missing}", 2, "cpu", trainer=OverlapTrainer(),
                         install_signals=False)  # fmt: skip


def test_slot_threads_that_fail_to_start_give_the_wakeup_socket_back(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A slot whose registration the database refused (locked past its waits) raised out
    # of run_stream_slots with the signal watch still set: the process's wakeup socket
    # still written to and read, a caller that goes on (a test) exited on its next signal.
    url = f"sqlite:///{tmp_path / 'runs.db'}"
    Repo.open(url).close()

    def refused(*_args: object) -> None:
        raise QueueError("database is locked by another process")

    monkeypatch.setattr(stream_slots, "_slot_worker", refused)
    handlers = {sig: signal.getsignal(sig) for sig in (*STOP_SIGNALS, PARENT_GONE)}
    before = set(threading.enumerate())  # another test's watch is not this one's
    try:
        with pytest.raises(QueueError):
            run_stream_slots(url, 2, "cpu", trainer=OverlapTrainer(), install_signals=True)
        left = signal.set_wakeup_fd(-1)
    finally:
        for sig, handler in handlers.items():
            signal.signal(sig, handler)
    assert left == -1
    for watch in [t for t in set(threading.enumerate()) - before if t.name == "signals"]:
        watch.join(timeout=2)  # its socket closed: it ends
        assert not watch.is_alive()


def test_slot_mode_auto_is_threads_on_cuda_and_processes_elsewhere() -> None:
    assert slot_mode("auto", "cuda:0") == "threads"
    assert slot_mode("auto", "cpu") == "processes"
    assert slot_mode("processes", "cuda:0") == "processes"
    assert slot_mode("threads", "cpu") == "threads"


def test_second_signal_puts_every_slots_run_back_and_exits_130(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import core.worker as worker_module
    from core.recording import StopFlags
    from core.worker import Worker

    url = f"sqlite:///{tmp_path / 'runs.db'}"
    repo = Repo.open(url)
    repo.enqueue(tiny_runs(3))
    flags = StopFlags()
    workers = [Worker(Repo.open(url), "cpu", OverlapTrainer(), tmp_path, flags) for _ in range(2)]
    for worker in workers:  # each slot is training a run
        run = worker.repo.claim(worker.id)
        assert run is not None
        worker.current = [run.id]

    def leave(code: int) -> None:
        raise SystemExit(code)

    monkeypatch.setattr(worker_module.os, "_exit", leave)
    with pytest.raises(SystemExit) as exited:
        worker_module.leave_now(workers)
    assert exited.value.code == 130
    runs = repo.list_runs()
    assert [r.status for r in runs] == [RunStatus.QUEUED] * 3
    assert [w.state for w in repo.list_workers(include_gone=True)] == ["stopped"] * 2
    for worker in workers:
        worker.repo.close()
    repo.close()


def test_shared_trainer_keeps_datasets_in_use_and_the_last_one(
    tmp_path: Path, idx_writer: Callable[..., Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    import gc

    from core.fit_trainer import FitTrainer

    monkeypatch.setenv("RESCONV_CACHE", str(tmp_path / "cache"))
    trainer = FitTrainer("cpu", str(idx_writer(tmp_path / "data", train=64, test=16)))
    in_use = trainer.datasets("fmnist", 28)  # a run is training on it
    assert trainer.datasets("fmnist", 28) is in_use  # loaded once
    other = trainer.datasets("fmnist", 32)
    assert trainer.datasets("fmnist", 28) is in_use  # still in use: not loaded again
    assert trainer.datasets("fmnist", 32) is other
    del in_use, other
    trainer.datasets("fmnist", 32)  # the last one asked for stays; 28 is nobody's now
    gc.collect()
    assert list(trainer.cache.keys()) == [("fmnist", 32)]


def test_largest_first_reaches_the_slot_threads_and_the_slot_processes(tmp_path: Path) -> None:
    import argparse

    from core.packing import Slot
    from core.slots import slot_command
    from core.worker_options import add_worker_arguments

    url = f"sqlite:///{tmp_path / 'runs.db'}"
    repo = Repo.open(url)
    ids = repo.enqueue(tiny_runs(2) + tiny_runs(2, "long", max_inputs=4096)).added_ids
    repo.close()
    started: list[int] = []

    def trainer(run: RunRow, cb: FitCallbacks, checkpoint_dir: Path) -> FitResult:
        started.append(run.id)
        return FitResult(0.5, inputs_seen=512, steps=8, inputs_per_s=100.0, param_count=321)

    code = run_stream_slots(
        url, 1, "cpu", until_empty=True, checkpoint_root=tmp_path / "ck",
        trainer=trainer, install_signals=False, rules=ClaimRules(largest_first=True),
    )  # fmt: skip
    assert code == 0 and started == [ids[2], ids[3], ids[0], ids[1]]  # the long runs first

    parser = argparse.ArgumentParser()
    add_worker_arguments(parser)
    args = parser.parse_args(["--slots", "2", "--order", "largest-first", "--stack", "3"])
    assert " --order largest-first --stack 3" in " ".join(slot_command(args, url, Slot(1, 2)))
    plain = slot_command(parser.parse_args(["--slots", "2"]), url, Slot(1, 2))
    assert "--order" not in plain and "--stack" not in plain
