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
import re
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
    set, the devices it leaves CUDA (``visible_devices``). None where NVML cannot tell (no
    driver, no library, no UUIDs to look a ``GPU-`` value up in): then the worker finds
    out."""
    visible = os.environ.get("CUDA_VISIBLE_DEVICES") if visible is None else visible
    try:
        import pynvml

        pynvml.nvmlInit()
    except Exception:
        return None
    try:
        if visible is None:
            return int(pynvml.nvmlDeviceGetCount())
        devices = _nvml_visible_devices(pynvml, visible)
    except Exception:
        return None
    finally:
        with contextlib.suppress(Exception):
            pynvml.nvmlShutdown()
    return None if devices is None else len(devices)


def _nvml_visible_devices(pynvml: Any, visible: str) -> list[int] | list[str] | None:
    """``visible_devices`` of this machine's GPUs as NVML counts them, their UUIDs read
    only where the value names GPUs by UUID."""
    count = int(pynvml.nvmlDeviceGetCount())
    uuids = _gpu_uuids(pynvml, count) if visible.startswith("GPU-") else None
    return visible_devices(visible, count, uuids)


LEADING_NUMBER = re.compile(r"[+-]?[0-9]+")  # what C's strtoul reads of "1gpu": 1


def visible_devices(
    visible: str, count: int, uuids: list[str] | None
) -> list[int] | list[str] | None:
    """The devices ``CUDA_VISIBLE_DEVICES=visible`` leaves CUDA, in order: NVML indices
    (of ``count`` GPUs whose UUIDs are ``uuids``), or a ``MIG-`` value's entries (not
    looked up); None where a ``GPU-`` value cannot be looked up (``uuids`` None).

    CUDA's own rules, as PyTorch writes them down (``torch.cuda._parse_visible_devices``,
    ``_transform_uuid_to_ordinals``, ``_device_count_nvml``): the value's first entry
    says its kind, numbers or ``GPU-``/``MIG-`` UUIDs; it stops at the first entry of
    another kind, or naming no device (a number past the count, a UUID prefix of no GPU or
    of two); a number is read as strtoul reads it (``1gpu`` is 1, `` 1`` too) and a UUID
    as written (`` GPU-...`` is not one); a device named twice leaves none. Counting
    entries (a UUID on trust, ``0,0`` as 1) let the w dialog start a worker that failed
    10 s later importing torch."""
    if visible.startswith(("GPU-", "MIG-")):
        kind = visible[:4]
        entries: list[str] = []
        for entry in visible.split(","):
            if entry in entries:
                return []
            if not entry.startswith(kind):
                break
            entries.append(entry)
        if kind == "MIG-":
            return entries
        return None if uuids is None else _uuid_ordinals(entries, uuids)
    numbers: list[int] = []
    for entry in visible.split(","):
        number = LEADING_NUMBER.match(entry.strip())
        value = int(number[0]) if number else -1
        if value in numbers:
            return []
        if value < 0:
            break
        numbers.append(value)
    past = next((at for at, value in enumerate(numbers) if value >= count), len(numbers))
    return numbers[:past]


def _uuid_ordinals(entries: list[str], uuids: list[str]) -> list[int]:
    """The NVML index each ``GPU-`` entry names (the whole UUID or a prefix of no other
    GPU's), up to the first naming none; none at all where one GPU is named twice."""
    ordinals: list[int] = []
    for entry in entries:
        matches = [index for index, uuid in enumerate(uuids) if uuid.startswith(entry)]
        if len(matches) != 1:
            break
        if matches[0] in ordinals:
            return []
        ordinals.append(matches[0])
    return ordinals


def _gpu_uuids(pynvml: Any, count: int) -> list[str] | None:
    """Each GPU's UUID (``GPU-8a1c...``) by NVML index; None where NVML cannot tell."""
    try:
        uuids = [
            pynvml.nvmlDeviceGetUUID(pynvml.nvmlDeviceGetHandleByIndex(i)) for i in range(count)
        ]
    except Exception:
        return None
    return [uuid.decode() if isinstance(uuid, bytes) else str(uuid) for uuid in uuids]


def _handle(pynvml: Any, index: int, visible: str | None) -> Any:
    """NVML's handle of the GPU CUDA numbers ``cuda:index`` (IndexError where none is)."""
    if visible is None:
        return pynvml.nvmlDeviceGetHandleByIndex(index)
    devices = _nvml_visible_devices(pynvml, visible)
    if devices is None:  # no UUIDs to look its entries up in: as written
        devices = visible.split(",")
    device = devices[index]
    if isinstance(device, int):
        return pynvml.nvmlDeviceGetHandleByIndex(device)
    return pynvml.nvmlDeviceGetHandleByUUID(device)  # a MIG instance


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
