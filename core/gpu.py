"""GPU statistics from NVML (``pynvml``, package nvidia-ml-py), or nothing.

A worker samples its device with every heartbeat. Any NVML problem (no driver,
no library, a CPU device, a GPU that vanished) means "no GPU stats": the
monitor never raises, because training must not stop over a dashboard badge.
Torch-free: NVML indexes physical GPUs, so ``cuda:N`` is mapped through
``CUDA_VISIBLE_DEVICES`` here instead of asking torch.
"""

from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class GpuSnapshot:
    """A device's state at one moment (from NVML); all None on CPU-only machines.

    What a worker's heartbeat stores (``core.queue`` re-exports it)."""

    name: str | None = None
    util_percent: float | None = None
    memory_used: int | None = None  # bytes
    memory_total: int | None = None  # bytes
    temperature_c: float | None = None


def cuda_index(device: str) -> int | None:
    """``cuda`` -> 0, ``cuda:1`` -> 1, anything else (cpu, mps) -> None."""
    kind, _, index = device.partition(":")
    if kind != "cuda":
        return None
    return int(index) if index.isdigit() else 0


class GpuMonitor:
    """Samples one CUDA device through NVML; ``sample()`` is None when it cannot."""

    def __init__(self, device: str, visible: str | None = None) -> None:
        self._nvml: Any = None
        self._handle: Any = None
        index = cuda_index(device)
        if index is None:
            return
        visible = os.environ.get("CUDA_VISIBLE_DEVICES") if visible is None else visible
        try:
            import pynvml

            pynvml.nvmlInit()
            self._nvml = pynvml
            self._handle = _handle(pynvml, index, visible)
        except Exception:  # ImportError, NVMLError_*, a bad CUDA_VISIBLE_DEVICES entry
            self.close()

    @property
    def available(self) -> bool:
        return self._handle is not None

    def sample(self) -> GpuSnapshot | None:
        if self._handle is None:
            return None
        nvml, handle = self._nvml, self._handle
        try:
            memory = nvml.nvmlDeviceGetMemoryInfo(handle)
            name = nvml.nvmlDeviceGetName(handle)
            return GpuSnapshot(
                name=name.decode() if isinstance(name, bytes) else str(name),
                util_percent=float(nvml.nvmlDeviceGetUtilizationRates(handle).gpu),
                memory_used=int(memory.used),
                memory_total=int(memory.total),
                temperature_c=float(nvml.nvmlDeviceGetTemperature(handle, 0)),  # 0: GPU die
            )
        except Exception:  # the device or driver went away: report nothing, keep training
            return None

    def close(self) -> None:
        if self._nvml is not None:
            with contextlib.suppress(Exception):
                self._nvml.nvmlShutdown()
        self._nvml = self._handle = None


def cuda_devices_said(count: int, instead: str = "--device cpu or auto") -> str:
    """What "this machine has ..." says of ``count`` CUDA devices (none: use ``instead``)."""
    if count == 0:
        return f"no CUDA GPU (use {instead})"
    if count == 1:
        return "1 CUDA device: cuda:0"
    return f"{count} CUDA devices: cuda:0 to cuda:{count - 1}"


def visible_gpu_count(visible: str | None = None) -> int | None:
    """How many GPUs CUDA numbers ``cuda:0``, ``cuda:1``... on this machine, torch-free
    (the dashboard's ``w`` dialog checks a ``cuda:N`` with it before a worker spends 10 s
    importing torch to find it absent). NVML's count, or with ``CUDA_VISIBLE_DEVICES``
    set, its entries up to the first one CUDA would stop at (empty: none). None where NVML
    cannot tell (no driver, no library): then the worker finds out."""
    visible = os.environ.get("CUDA_VISIBLE_DEVICES") if visible is None else visible
    try:
        import pynvml

        pynvml.nvmlInit()
    except Exception:
        return None
    try:
        count = int(pynvml.nvmlDeviceGetCount())
        uuids = _gpu_uuids(pynvml, count) if visible and "GPU-" in visible else None
    except Exception:
        return None
    finally:
        with contextlib.suppress(Exception):
            pynvml.nvmlShutdown()
    if visible is None:
        return count
    seen: list[int | str] = []
    for entry in (e.strip() for e in visible.split(",")):
        device = _visible_device(entry, count, uuids)
        if device is None or device in seen:  # CUDA stops at an entry that names no device
            break
        seen.append(device)
    # Erring to the larger count where NVML cannot tell (a MIG instance is not looked up):
    # a cuda:N past CUDA's own count is still refused by the worker.
    return len(seen)


def _gpu_uuids(pynvml: Any, count: int) -> list[str] | None:
    """Each GPU's UUID (``GPU-8a1c...``) by NVML index; None where NVML cannot tell."""
    try:
        uuids = [
            pynvml.nvmlDeviceGetUUID(pynvml.nvmlDeviceGetHandleByIndex(i)) for i in range(count)
        ]
    except Exception:
        return None
    return [uuid.decode() if isinstance(uuid, bytes) else str(uuid) for uuid in uuids]


def _visible_device(entry: str, count: int, uuids: list[str] | None) -> int | str | None:
    """The GPU a ``CUDA_VISIBLE_DEVICES`` entry names: its NVML index, the entry itself
    where it cannot be looked up, None where it names none (CUDA stops there). A
    ``GPU-...`` entry is a UUID or a prefix of one that no other GPU's shares, as CUDA
    takes it: one taken on trust let the w dialog start a worker on cuda:0 with no such
    GPU, which failed 10 s later importing torch."""
    if entry.isascii() and entry.isdigit():  # "²" is a digit to isdigit()
        return int(entry) if int(entry) < count else None
    if entry.startswith("GPU-") and uuids is not None:
        matches = [index for index, uuid in enumerate(uuids) if uuid.startswith(entry)]
        return matches[0] if len(matches) == 1 else None
    return entry if entry.startswith(("GPU-", "MIG-")) else None


def _handle(pynvml: Any, index: int, visible: str | None) -> Any:
    entries = [e.strip() for e in visible.split(",") if e.strip()] if visible else []
    if not entries:
        return pynvml.nvmlDeviceGetHandleByIndex(index)
    entry = entries[index]
    if entry.isdigit():
        return pynvml.nvmlDeviceGetHandleByIndex(int(entry))
    return pynvml.nvmlDeviceGetHandleByUUID(entry)  # "GPU-..." or "MIG-..." entries


def free_for_new_runs(device: str) -> int:
    """Bytes a new run in this process can take on ``device``: the driver's free memory
    plus what PyTorch's caching allocator holds unused in its default pool (finished
    runs' memory stays reserved by the process, reusable by the next run, yet the driver
    counts it as used)."""
    import torch

    free = int(torch.cuda.mem_get_info(device)[0])
    index = torch.device(device).index
    index = torch.cuda.current_device() if index is None else index
    return free + unused_in_default_pool(torch.cuda.memory_snapshot(), index)


DEFAULT_POOL = (0, 0)


def unused_in_default_pool(segments: list[dict[str, Any]], device_index: int) -> int:
    """Bytes of ``device_index``'s cached segments that no tensor holds, in the default
    pool only. A CUDA graph keeps a private pool: its activations, freed after capture,
    stay reserved for its replays and no other tensor may use them, so with slot threads
    ``reserved - allocated`` counted every live run's activations as free again."""
    return sum(
        max(
            0,
            int(segment["total_size"]) - int(segment.get("active_size", segment["allocated_size"])),
        )
        for segment in segments
        if segment.get("device") == device_index
        and tuple(segment.get("segment_pool_id", DEFAULT_POOL)) == DEFAULT_POOL
    )
