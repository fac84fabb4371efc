"""Start and stop training workers as detached processes.

The TUI and workers share nothing but the database, so a worker started from the
dashboard runs in its own session (``start_new_session=True``): closing the TUI,
Ctrl-C in its terminal or a dropped SSH connection (SIGHUP to the session) never
reaches it. Stopping is a SIGTERM to the pid the worker recorded in its row; the
worker treats the first signal as "finish cleanly".

``WorkerOptions`` are the worker options the dashboard's start dialog offers (device,
slots, stack, order), read from its text fields with the worker's own rules.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from core.errors import ResconvError
from core.gpu import cuda_devices_said, cuda_index
from core.processes import process_alive, worker_alive
from core.queue.db import holds_password
from core.worker_options import CLAIM_ORDERS, count_value

# What the dialog accepts; the worker itself would take any torch device string, but a
# worker started detached can only report a bad one in its log.
DEVICE_NAME = re.compile(r"auto|cpu|cuda(:\d+)?")


@dataclass(frozen=True)
class WorkerOptions:
    """How a worker started from the dashboard trains (``resconv-tui worker`` options)."""

    device: str = "auto"
    slots: int = 1
    stack: int = 1
    order: str = "queue"

    def argv(self) -> list[str]:
        """These options on the worker's command line (defaults left out, device always)."""
        argv = ["--device", self.device]
        argv += ["--slots", str(self.slots)] if self.slots > 1 else []
        argv += ["--stack", str(self.stack)] if self.stack > 1 else []
        return argv + (["--order", self.order] if self.order != "queue" else [])

    def fields(self) -> dict[str, str]:
        """The dialog's field texts for these options."""
        return {"device": self.device, "slots": str(self.slots), "stack": str(self.stack),
                "order": self.order}  # fmt: skip


DEFAULT_WORKER = WorkerOptions()  # what `resconv-tui worker` does with no options


def read_worker_fields(
    fields: Mapping[str, str], gpus: int | None = None
) -> tuple[WorkerOptions | None, dict[str, str]]:
    """The options the dialog's fields hold, or None with each bad field's reason;
    ``gpus``: how many GPUs CUDA sees here (``core.gpu.visible_gpu_count``; None: unknown)."""
    errors: dict[str, str] = {}
    device = fields.get("device", "").strip() or "auto"
    if not DEVICE_NAME.fullmatch(device):
        errors["device"] = f"{device!r} is not a device: use auto, cpu, cuda or cuda:N"
    elif problem := missing_gpu(device, gpus):
        errors["device"] = problem
    counts: dict[str, int] = {}
    for key in ("slots", "stack"):
        text = fields.get(key, "").strip() or "1"
        try:
            counts[key] = count_value(f"--{key}", text)  # as `worker --slots` reads it
        except ValueError as exc:
            errors[key] = str(exc)
    order = fields.get("order", "").strip() or "queue"
    if order not in CLAIM_ORDERS:
        errors["order"] = f"{order!r} is not an order: use {' or '.join(CLAIM_ORDERS)}"
    if errors:
        return None, errors
    return WorkerOptions(device, counts["slots"], counts["stack"], order), {}


def missing_gpu(device: str, gpus: int | None) -> str | None:
    """Why ``device`` (cuda or cuda:N) names no GPU of the ``gpus`` CUDA sees here."""
    index = cuda_index(device)
    if index is None or gpus is None or index < gpus:
        return None
    if gpus == 0 and os.environ.get("CUDA_VISIBLE_DEVICES") is not None:
        hidden = os.environ["CUDA_VISIBLE_DEVICES"]
        return f"{device!r}: CUDA_VISIBLE_DEVICES={hidden!r} leaves no GPU (use cpu or auto)"
    return f"{device!r}: this machine has {cuda_devices_said(gpus, 'cpu or auto')}"


@dataclass(frozen=True)
class Launched:
    """A worker process this dashboard started (it registers itself in the DB later)."""

    pid: int
    log_path: Path
    started_at: float


def worker_command(db_url: str, options: WorkerOptions = DEFAULT_WORKER) -> list[str]:
    """The argv of a worker; device ``auto`` lets it pick CUDA or CPU (the TUI is torch-free).
    A URL holding a password is left out (``worker_environment`` gives it): a command
    line is for every user of the box to read (``ps``), for the worker's whole life."""
    db = [] if holds_password(db_url) else ["--db", db_url]
    return [sys.executable, "-m", "resconv_tui", "worker", *db, *options.argv()]


def worker_environment(db_url: str) -> dict[str, str]:
    """The worker's environment: this one, plus ``RESCONV_DB`` where the URL is not on its
    command line (only its own user, and root, read a process's environment)."""
    return {**os.environ, "RESCONV_DB": db_url} if holds_password(db_url) else dict(os.environ)


def default_log_path(folder: Path | None = None) -> Path:
    """A new log per launch (milliseconds: two starts in one second get their own)."""
    now = time.time()
    stamp = time.strftime("%Y%m%d-%H%M%S", time.localtime(now)) + f".{int(now * 1000) % 1000:03d}"
    return (folder or Path.cwd()) / f"resconv-worker-{stamp}-{os.getpid()}.log"


def spawn(db_url: str, options: WorkerOptions, log: BinaryIO) -> subprocess.Popen[bytes]:
    """The worker process, detached, its output to ``log``."""
    try:
        return subprocess.Popen(
            worker_command(db_url, options),
            env=worker_environment(db_url),
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            close_fds=True,
        )
    except OSError as exc:  # the venv's python moved or removed since
        raise WorkerNotStarted(f"cannot run {sys.executable}: {exc.strerror}") from None


class WorkerNotStarted(ResconvError):
    """The dashboard could not start a worker: its log cannot be written (the
    dashboard's folder is read-only, not this user's, or removed since it opened), or the
    process not run."""

    title = "Worker not started"


class WorkerLauncher:
    """Starts workers detached and signals them; tests swap in a fake with the same methods."""

    def __init__(self, log_folder: Path | None = None) -> None:
        self.log_folder = log_folder
        # The processes started here: their exit status tells a clean stop (0) from a
        # failed start.
        self.processes: dict[int, subprocess.Popen[bytes]] = {}

    def start(self, db_url: str, options: WorkerOptions = DEFAULT_WORKER) -> Launched:
        try:
            log_path = default_log_path(self.log_folder)
        except OSError as exc:  # its folder removed while it ran: no cwd to log to
            raise WorkerNotStarted(
                f"cannot name its log: the dashboard's folder is gone ({exc.strerror}): "
                "open the dashboard in a folder you can write (the worker's log goes to the "
                "dashboard's folder)"
            ) from None
        try:
            with open(log_path, "ab") as log:
                process = spawn(db_url, options, log)
        except OSError as exc:  # a dashboard opened in /sys, or in another user's folder
            raise WorkerNotStarted(
                f"cannot write its log {log_path}: {exc.strerror}: open the dashboard in a "
                "folder you can write (the worker's log goes to the dashboard's folder)"
            ) from None
        self.processes[process.pid] = process
        # Reaped as soon as it exits, whether or not anything asks after it: a worker
        # stopped cleanly is not polled again, and each stayed a zombie until the
        # dashboard quit. (Popen's wait and poll share a lock: poll still says its status.)
        threading.Thread(target=process.wait, name=f"reap-{process.pid}", daemon=True).start()
        return Launched(pid=process.pid, log_path=log_path, started_at=time.time())

    def stop(self, pid: int) -> bool:
        """SIGTERM ``pid``; False when no such process exists (already gone, or another host)."""
        try:
            os.kill(pid, signal.SIGTERM)
        except ProcessLookupError:
            return False
        except PermissionError:
            return False
        return True

    def alive(self, pid: int) -> bool:
        """Whether ``pid`` still runs (a worker that exited at once left its reason in its log)."""
        if pid in self.processes:
            return self.processes[pid].poll() is None
        return process_alive(pid)

    def worker_alive(self, pid: int, registered_at: float) -> bool:
        """Whether the worker whose row names ``pid`` (registered at ``registered_at``)
        still runs: one started here by its process; any other as
        ``core.processes.worker_alive`` judges it (not a process given its pid since)."""
        if pid in self.processes:
            return self.processes[pid].poll() is None
        return worker_alive(pid, registered_at)

    def exit_code(self, pid: int) -> int | None:
        """A worker started here that has exited: its exit status; else None."""
        process = self.processes.get(pid)
        return None if process is None else process.poll()


# How a worker's error line starts: ``resconv-tui worker``'s own, and a ``--slots K``
# slot process's (``python -m core.worker``); its other lines start with the time.
ERROR_PREFIXES = ("resconv-tui: ", "worker: ")


def last_log_line(path: Path, limit: int = 240) -> str:
    """Why a worker exited, from its log, shortened to ``limit``: its error line
    (``resconv-tui: ...``, or a slot's ``worker: ...``) with the ``Fix: ...`` line that
    follows it where there is one, else its last non-empty line. A dataset not found
    ends with a list of the places looked in and the fix: the last line alone gave the
    fix without the problem."""
    try:
        with open(path, "rb") as log:
            log.seek(max(0, log.seek(0, os.SEEK_END) - 4096))
            lines = log.read().decode("utf-8", "replace").splitlines()
    except OSError as exc:
        return f"cannot read {path}: {exc.strerror}"
    lines = [line.strip() for line in lines if line.strip()]
    errors = [i for i, line in enumerate(lines) if line.startswith(ERROR_PREFIXES)]
    if errors:
        reason = lines[errors[-1]]
        if reason.endswith(":"):  # a list follows ("looked in:"): the log has it
            reason = reason[:-1] + " (see the log);"
        fix = next((line for line in lines[errors[-1] + 1 :] if line.startswith("Fix:")), None)
        reason += f" {fix}" if fix else ""
    else:
        reason = lines[-1] if lines else ""
    return reason if len(reason) <= limit else reason[: limit - 1] + "…"
