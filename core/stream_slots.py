"""``worker --slots K`` on CUDA: K slot workers as threads of one process, a CUDA stream each.

Why threads and not processes: without NVIDIA's MPS daemon the GPU time-slices
between processes, so kernels of two processes never run at the same time, and a
ResConv step at batch 64 is hundreds of small kernels that leave most of the chip
idle. Kernels on different streams of one process do run at the same time, so K
runs on K streams fill the chip where K processes would only take turns.
``--slot-mode processes`` (``core.slots``) stays available: a crash there ends one
run, not all, and with MPS running processes overlap too.

Each slot is a plain ``core.worker.Worker`` (its own database connection, worker
row, heartbeat and memory admission) looping in its own thread, with its own CUDA
stream. They share the process's datasets (one ``FitTrainer``) and one set of
signal flags:

* first SIGINT/SIGTERM: every slot stops its run before the next step and puts it
  back to ``queued``; the process exits 0 when all slots have stopped;
* second: every slot's current run is put back as best it can within 2 s, then the
  process exits at once with status 130.

What sharing a process costs: a crash of the process itself (not a Python
exception, which fails one run as usual) ends every slot's run; the worker's next
start marks them "worker lost". Per-run peak memory is only measured for a run
that trained alone (see ``core.train.MemoryMeter``).
"""

from __future__ import annotations

import contextlib
import os
import threading
from collections.abc import Iterator
from pathlib import Path

from core.capture_gate import GATE
from core.device_choice import resolve_device
from core.errors import CheckpointsBlocked, NoDataHere, ResconvError
from core.fit_trainer import FitTrainer
from core.gpu import free_for_new_runs
from core.packing import Admission, Slot
from core.queue import QueueError, Repo
from core.recording import StopFlags, say, set_thread_speaker
from core.worker import (
    Trainer,
    Worker,
    checkpoint_root_of,
    leave_now,
    warn_of_clock_offset,
    worker_repo,
)
from core.worker_options import NO_RULES, ClaimRules

JOIN_SLICE_S = 0.2  # the main thread waits in slices so that signal handlers run promptly


def run_stream_slots(
    db_url: str,
    slots: int,
    device: str = "auto",
    until_empty: bool = False,
    max_runs: int | None = None,
    data_dir: str | None = None,
    checkpoint_root: str | Path | None = None,
    *,
    trainer: Trainer | None = None,
    install_signals: bool = True,
    rules: ClaimRules = NO_RULES,
) -> int:
    """Run ``slots`` slot threads until all stop; 0, or 2 if a slot stopped on an error."""
    repo = Repo.open(db_url)  # a wrong --db is reported once, before any thread starts
    try:
        with contextlib.suppress(ResconvError):  # a warning must not stop the worker
            warn_of_clock_offset(repo)
    finally:
        repo.close()
    resolved = resolve_device(device) if trainer is None else device
    flags = StopFlags()
    if install_signals:
        flags.install()
    try:  # the signal watch ends with the slots, or with a slot that could not start
        trainer = trainer or FitTrainer(resolved, data_dir)
        root = checkpoint_root_of(checkpoint_root, db_url)
        workers = [
            _slot_worker(db_url, resolved, trainer, root, flags, Slot(i, slots), rules, max_runs)
            for i in range(1, slots + 1)
        ]
        flags.on_second = lambda: leave_now(workers)
        failures: list[str] = []
        threads = [
            threading.Thread(
                target=_slot_main,
                args=(worker, f"worker {i}/{slots}", until_empty, failures),
                name=f"slot-{i}",
                daemon=True,  # a second signal leaves through os._exit anyway
            )
            for i, worker in enumerate(workers, 1)
        ]
        streams = ", one CUDA stream each" if resolved.startswith("cuda") else ""  # none on a CPU
        say(
            f"{slots} slots started as threads of process {os.getpid()}{streams}; Ctrl-C stops them"
        )
        for thread in threads:
            thread.start()
        for thread in threads:
            while thread.is_alive():
                thread.join(JOIN_SLICE_S)
        for worker in workers:
            worker.repo.close()
        say(f"all slots stopped ({sum(w.runs_done for w in workers)} run(s) ended)")
        if failures:
            say("; ".join(failures))
            return 2
        return 0
    finally:
        flags.release()


def _slot_worker(
    db_url: str,
    device: str,
    trainer: Trainer,
    root: Path,
    flags: StopFlags,
    slot: Slot,
    rules: ClaimRules,
    max_runs: int | None,
) -> Worker:
    repo = worker_repo(db_url)  # patient, as a worker's own
    admission = None
    if device.startswith("cuda"):

        def free_bytes() -> int:
            with GATE.gpu_work():  # a CUDA call: not while another slot captures a graph
                return free_for_new_runs(device)

        admission = Admission(repo, free_bytes)
    return Worker(
        repo, device, trainer, root, flags, label=slot.label(device), admission=admission,
        rules=rules, max_runs=max_runs,
    )  # fmt: skip


def _slot_main(
    worker: Worker,
    speaker: str,
    until_empty: bool,
    failures: list[str],
) -> None:
    set_thread_speaker(speaker)
    try:
        with _own_stream(worker.device):
            worker.loop(until_empty)
    except QueueError as exc:  # the database is gone: this slot cannot go on
        failures.append(f"{speaker}: {exc}")
    except (NoDataHere, CheckpointsBlocked) as exc:
        # This machine's problem, not the runs': they are back in the queue.
        failures.append(f"{speaker}: {str(exc).splitlines()[0]}")
        worker.give_back_quietly()
    except Exception as exc:  # a bug outside any run: say so, put its run back, stop the slot
        failures.append(f"{speaker}: {type(exc).__name__}: {exc}")
        worker.give_back_quietly()


@contextlib.contextmanager
def _own_stream(device: str) -> Iterator[None]:
    """This thread's work on a stream of its own (CUDA); nothing to do on a CPU."""
    if not device.startswith("cuda"):
        yield
        return
    import torch

    with torch.cuda.stream(torch.cuda.Stream(device)):
        yield
