"""GPU stats: NVML through a fake pynvml, and silent degradation without it."""

from __future__ import annotations

import sys
import types
from typing import Any

import pytest

from core.gpu import GpuMonitor, GpuSnapshot, cuda_devices_said, cuda_index, visible_gpu_count


class NVMLError(Exception):
    pass


def fake_pynvml(fail_init: bool = False, fail_sample: bool = False) -> Any:
    module = types.ModuleType("pynvml")
    opened: list[object] = []

    def init() -> None:
        if fail_init:
            raise NVMLError("NVML Shared Library Not Found")

    def by_index(index: int) -> object:
        opened.append(index)
        return ("handle", index)

    def memory(handle: object) -> Any:
        if fail_sample:
            raise NVMLError("GPU is lost")
        return types.SimpleNamespace(used=5 * 2**30, total=80 * 2**30)

    module.nvmlInit = init  # type: ignore[attr-defined]
    module.nvmlShutdown = lambda: None  # type: ignore[attr-defined]
    module.nvmlDeviceGetHandleByIndex = by_index  # type: ignore[attr-defined]
    module.nvmlDeviceGetCount = lambda: 8  # type: ignore[attr-defined]

    def by_uuid(uuid: str) -> object:
        opened.append(uuid)
        return ("handle", uuid)

    module.nvmlDeviceGetHandleByUUID = by_uuid  # type: ignore[attr-defined]
    module.nvmlDeviceGetMemoryInfo = memory  # type: ignore[attr-defined]
    module.nvmlDeviceGetName = lambda h: b"NVIDIA H100"  # type: ignore[attr-defined]
    module.nvmlDeviceGetUtilizationRates = lambda h: types.SimpleNamespace(gpu=97)  # type: ignore[attr-defined]
    module.nvmlDeviceGetTemperature = lambda h, sensor: 61  # type: ignore[attr-defined]
    module.opened = opened  # type: ignore[attr-defined]
    return module


def test_cuda_index() -> None:
    assert [cuda_index(d) for d in ("cpu", "cuda", "cuda:2", "mps")] == [None, 0, 2, None]


def test_samples_through_nvml(monkeypatch: pytest.MonkeyPatch) -> None:
    nvml = fake_pynvml()
    monkeypatch.setitem(sys.modules, "pynvml", nvml)
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    monitor = GpuMonitor("cuda:1")
    assert monitor.available and nvml.opened == [1]
    assert monitor.sample() == GpuSnapshot("NVIDIA H100", 97.0, 5 * 2**30, 80 * 2**30, 61.0)


def test_cuda_visible_devices_maps_to_physical_gpus(monkeypatch: pytest.MonkeyPatch) -> None:
    nvml = fake_pynvml()
    monkeypatch.setitem(sys.modules, "pynvml", nvml)
    nvml.nvmlDeviceGetCount = lambda: 8
    uuids = [f"GPU-{i}{i}00-1111-2222" for i in range(8)]
    nvml.nvmlDeviceGetUUID = lambda handle: uuids[handle[1]]
    assert GpuMonitor("cuda:1", visible="3,5")._handle == ("handle", 5)
    # A UUID prefix is looked up: NVML's own lookup takes only a whole UUID, and the
    # workers panel showed no GPU for a worker under CUDA_VISIBLE_DEVICES=GPU-5500.
    assert GpuMonitor("cuda:0", visible="GPU-5500")._handle == ("handle", 5)
    assert GpuMonitor("cuda:1", visible=f"{uuids[2]},{uuids[7]}")._handle == ("handle", 7)
    assert GpuMonitor("cuda:0", visible="MIG-abc")._handle == ("handle", "MIG-abc")
    for visible, device in (("3,5", "cuda:2"), ("0,0", "cuda:0"), ("", "cuda:0")):
        assert not GpuMonitor(device, visible=visible).available  # CUDA has no such GPU


@pytest.mark.parametrize("device", ["cpu", "cuda:0"])
def test_no_nvml_means_no_stats_and_no_error(monkeypatch: pytest.MonkeyPatch, device: str) -> None:
    monkeypatch.setitem(sys.modules, "pynvml", fake_pynvml(fail_init=True))
    monitor = GpuMonitor(device)
    assert not monitor.available and monitor.sample() is None
    monitor.close()


def test_missing_module_or_lost_gpu_degrades(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "pynvml", None)  # import fails
    assert GpuMonitor("cuda:0").sample() is None
    monkeypatch.setitem(sys.modules, "pynvml", fake_pynvml(fail_sample=True))
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    monitor = GpuMonitor("cuda:0")
    assert monitor.available and monitor.sample() is None
    bad_index = GpuMonitor("cuda:4", visible="0")  # CUDA_VISIBLE_DEVICES too short
    assert not bad_index.available


def test_real_pynvml_on_this_machine_never_raises() -> None:
    GpuMonitor("cuda:0").sample()  # a GPU box returns stats, a CPU box None


def test_free_memory_for_a_new_run_leaves_out_cuda_graphs_private_pools(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # A live graph's pool holds its activations, freed after capture, for its replays:
    # with slot threads, `reserved - allocated` counted them free, and admitted runs OOMed.
    import torch

    from core.gpu import free_for_new_runs

    mib = 2**20
    segments = [
        {"device": 0, "total_size": 100 * mib, "allocated_size": 30 * mib,
         "active_size": 40 * mib, "segment_pool_id": (0, 0)},  # 60 MiB reusable
        {"device": 0, "total_size": 500 * mib, "allocated_size": 0,
         "active_size": 0, "segment_pool_id": (1, 3)},  # a graph's: none of it
        {"device": 1, "total_size": 200 * mib, "allocated_size": 0,
         "active_size": 0, "segment_pool_id": (0, 0)},  # another GPU's
        {"device": 0, "total_size": 8 * mib, "allocated_size": 2 * mib},  # no pool id: default
    ]  # fmt: skip
    monkeypatch.setattr(torch.cuda, "mem_get_info", lambda device: (1000 * mib, 8000 * mib))
    monkeypatch.setattr(torch.cuda, "memory_snapshot", lambda: segments)
    monkeypatch.setattr(torch.cuda, "current_device", lambda: 0)
    assert free_for_new_runs("cuda:0") == (1000 + 60 + 6) * mib
    assert free_for_new_runs("cuda") == (1000 + 60 + 6) * mib
    assert free_for_new_runs("cuda:1") == (1000 + 200) * mib


def test_visible_gpu_count_as_cuda_numbers_them(monkeypatch: pytest.MonkeyPatch) -> None:
    # What the dashboard's w dialog checks a cuda:N against, without torch.
    nvml = fake_pynvml()
    nvml.nvmlDeviceGetCount = lambda: 2
    monkeypatch.setitem(sys.modules, "pynvml", nvml)
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    assert visible_gpu_count() == 2
    assert visible_gpu_count(visible="1") == 1
    assert visible_gpu_count(visible="GPU-8a1c, 0") is None  # no UUIDs to look it up in
    assert visible_gpu_count(visible="") == 0  # set but empty: CUDA sees none
    assert visible_gpu_count(visible="0,5,1") == 1  # CUDA stops at the first bad entry
    assert visible_gpu_count(visible="\u00b2") == 0
    # CUDA's rules, as torch.cuda._parse_visible_devices writes them down: a device named
    # twice leaves none; a number is read as strtoul reads it; a negative one stops.
    assert visible_gpu_count(visible="0,0") == 0 and visible_gpu_count(visible="1,0,1") == 0
    assert visible_gpu_count(visible="1gpu") == 1 and visible_gpu_count(visible=" 1") == 1
    assert visible_gpu_count(visible="0,-1,1") == 1 and visible_gpu_count(visible="-1") == 0
    monkeypatch.setitem(sys.modules, "pynvml", fake_pynvml(fail_init=True))
    assert visible_gpu_count() is None  # no driver: unknown, the worker finds out


def test_visible_gpu_count_looks_up_gpu_uuids(monkeypatch: pytest.MonkeyPatch) -> None:
    # A GPU-... entry was taken on trust: CUDA_VISIBLE_DEVICES=GPU-<another box's> counted
    # 1, the w dialog let cuda:0 through, and the worker failed 10 s later.
    nvml = fake_pynvml()
    nvml.nvmlDeviceGetCount = lambda: 2
    uuids = ["GPU-8a1c0f2e-1111-2222-3333-444455556666", "GPU-8a1d9b00-aaaa-bbbb-cccc-dddd"]
    nvml.nvmlDeviceGetUUID = lambda handle: uuids[handle[1]].encode()  # bytes, as older NVML
    monkeypatch.setitem(sys.modules, "pynvml", nvml)
    assert visible_gpu_count(visible="GPU-ffff0000-1111-2222-3333-444455556666") == 0
    assert visible_gpu_count(visible=uuids[1]) == 1
    assert visible_gpu_count(visible="GPU-8a1c0,GPU-8a1d") == 2  # prefixes, as CUDA takes
    assert visible_gpu_count(visible="GPU-8a1, 0") == 0  # a prefix of both: names neither
    # The first entry says the kind: CUDA stops at one of another kind, and reads a UUID
    # as written (" GPU-8a1d" is none), where the dialog counted them all.
    assert visible_gpu_count(visible="GPU-8a1c0, GPU-8a1d") == 1
    assert visible_gpu_count(visible=f"GPU-8a1d,1,{uuids[0]}") == 1
    assert visible_gpu_count(visible=f"1,{uuids[0]}") == 1
    assert visible_gpu_count(visible=f"{uuids[1]},GPU-8a1d9") == 0  # the same GPU twice
    assert visible_gpu_count(visible="0, GPU-nope, 1") == 1
    assert visible_gpu_count(visible="MIG-5c1e,MIG-77") == 2  # MIG instances: not looked up
    assert visible_gpu_count(visible="MIG-5c1e, 0") == 1


def test_cuda_devices_said() -> None:
    assert [cuda_devices_said(n) for n in (0, 1, 3)] == [
        "no CUDA GPU (use --device cpu or auto)",
        "1 CUDA device: cuda:0",
        "3 CUDA devices: cuda:0 to cuda:2",
    ]
