"""Which device a worker trains on: ``--device`` checked, and ``auto`` chosen.

``auto`` on a machine with several GPUs takes the one with the fewest workers of this
machine, so a second ``worker`` trains on an idle GPU instead of beside the first on
cuda:0. Workers are counted from their rows in the queue, plus the choices made here in
the last ``CHOICE_TTL_S`` by processes that have not registered a row yet: a worker
imports torch and loads data for seconds before its row appears, and ``--slots K``
processes later still, so two workers started together would otherwise both count
nothing and both take cuda:0. The choices live in a small JSON file in the temp folder,
read and written under a file lock; without it (another user's file, a read-only
folder) only the rows count.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import re
import socket
import tempfile
import time
from collections import Counter
from collections.abc import Iterator, Mapping
from pathlib import Path

from core.errors import ConfigError
from core.gpu import cuda_devices_said
from core.processes import exited_here, process_alive
from core.queue import Repo, WorkerRow
from core.recording import say

CHOICES_PATH = Path(tempfile.gettempdir()) / "resconv-tui-device-choices.json"
CHOICE_TTL_S = 120.0  # longer than a worker takes to register (torch import, data load)
CUDA_LABEL = re.compile(r"cuda(?::(\d+))?")  # a worker row's device text: "cuda:1 slot 2/4"


def resolve_device(name: str, busy: Mapping[int, int] | None = None) -> str:
    """``auto`` -> a CUDA device when there is one, else ``cpu``; reject devices that do not
    exist. ``auto`` takes the device with the fewest workers of this machine (``busy``:
    CUDA index -> workers, see ``auto_device``), ties to the lowest index."""
    import torch

    if name == "auto":
        if not torch.cuda.is_available():
            return "cpu"
        busy = busy or {}
        best = min(range(torch.cuda.device_count()), key=lambda i: (busy.get(i, 0), i))
        if busy.get(best, 0) < busy.get(0, 0):
            say(f"--device auto: cuda:{best} (cuda:0 has {busy[0]} worker(s) of this machine)")
        return f"cuda:{best}"
    try:
        device = torch.device(name)
    except (RuntimeError, ValueError):
        # torch's own message lists a dozen device types this worker cannot train on
        raise ConfigError(f"--device {name}: not a device: use auto, cpu, cuda or cuda:N") from None
    if device.type == "cuda":
        count = torch.cuda.device_count() if torch.cuda.is_available() else 0
        # The index as written: torch keeps it in 8 bits, so cuda:999 would read as cuda:-25.
        index = int(name.partition(":")[2] or 0)
        if index >= count:
            raise ConfigError(f"--device {name}: this machine has {cuda_devices_said(count)}")
        return f"cuda:{index}"
    if device.type != "cpu":  # mps, xpu, meta...: torch parses them; this worker trains on none
        raise ConfigError(f"--device {name}: not a device resconv-tui trains on: use auto, "
                          "cpu, cuda or cuda:N")  # fmt: skip
    return "cpu"


def _rows_here(repo: Repo) -> list[WorkerRow]:
    host = socket.gethostname()
    return [w for w in repo.list_workers(skip_damaged=True) if w.host == host]


def _cuda_busy(rows_here: list[WorkerRow]) -> Counter[int]:
    """Live workers of this machine per CUDA device index, from their rows."""
    busy: Counter[int] = Counter()
    now = time.time()
    for worker in rows_here:
        label = CUDA_LABEL.match(worker.device)
        if label and not exited_here(
            worker.host, worker.pid, worker.age(now), registered_at=worker.started_at
        ):
            busy[int(label[1] or 0)] += 1
    return busy


def auto_device(repo: Repo) -> str:
    """What ``--device auto`` means now on this machine, recorded as a choice until this
    process's worker row can be counted instead."""
    with _recent_choices() as choices:
        rows = _rows_here(repo)  # read once: the counts and who has registered
        busy = _cuda_busy(rows)
        registered = {w.pid for w in rows}
        now = time.time()
        choices[:] = [
            c for c in choices
            if now - c["at"] < CHOICE_TTL_S and int(c["pid"]) not in registered
            and process_alive(int(c["pid"]))
        ]  # fmt: skip
        for choice in choices:
            busy[int(choice["index"])] += 1
        device = resolve_device("auto", busy)
        if device.startswith("cuda:"):
            choices.append({"pid": os.getpid(), "index": int(device[5:]), "at": now})
    return device


@contextlib.contextmanager
def _recent_choices() -> Iterator[list[dict[str, float]]]:
    """The recorded choices, locked; what the caller leaves in the list is written back."""
    try:
        fd = os.open(CHOICES_PATH, os.O_RDWR | os.O_CREAT, 0o666)
    except OSError:
        yield []  # not ours to use: rows only
        return
    with os.fdopen(fd, "r+", encoding="utf-8") as file:
        fcntl.flock(file, fcntl.LOCK_EX)  # released when the file closes
        choices = _read_choices(file.read())
        yield choices
        file.seek(0)
        file.truncate()
        file.write(json.dumps(choices))


def _read_choices(text: str) -> list[dict[str, float]]:
    """Well-formed entries only: a damaged file is an empty record, not an error."""
    try:
        data = json.loads(text or "[]")
    except ValueError:
        return []
    if not isinstance(data, list):
        return []
    fields = ("pid", "index", "at")
    return [
        {k: float(entry[k]) for k in fields}
        for entry in data
        if isinstance(entry, dict) and all(isinstance(entry.get(k), int | float) for k in fields)
    ]
