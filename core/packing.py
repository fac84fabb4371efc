"""Packing: may a claimed run start on a device that other runs are already using?

``resconv-tui worker --slots K`` starts K worker processes ("slots") on one device
(see ``core.slots``). On CUDA a slot checks each run it claims before training it:

* Its need is the measured ``peak_memory_bytes`` of an earlier succeeded run with the
  same config (seed aside) on a CUDA device, else ``core.memory``'s estimate; plus a
  margin for what neither counts (allocator cache and fragmentation, cuDNN
  workspaces, the dataset the first run uploads, a CUDA graph's private pool).
* Only runs that started *before* this one on the same device and host matter. A
  later one is itself still deciding and will wait for this one, so two slots that
  claim at the same moment never both back off (no livelock).
* If such a run has not recorded a training step yet, its memory is not allocated
  yet, so the free memory the driver reports still counts it as free: its own need
  plus margin is kept aside. Train if this run's need plus margin fits in what is
  left, and wait if not. (Waiting until the earlier run had allocated, as a first
  version did, left the slots of an H200 idle: every run trained alone.)
* With no earlier run on the device the run trains whatever its need: alone is the
  normal case, and an out-of-memory then fails the run with the usual message.
* A running run whose row was edited by hand into what no version writes cannot be
  read whole (``Repo.running_and_damaged``): where what is left of it (its worker, start,
  progress) may make it an earlier run on this device that has taken no step, its need
  is unknown, so all the free memory is kept for it: the run waits, and the log names the
  damaged row and its repair. Left out (as admission did before), a slot could take the
  memory that run is about to allocate.

"Wait" means: put the run back in the queue (``Repo.put_back``: not an attempt) and
claim again after a backoff. The decision is pure (``decide``); ``Admission`` only
gathers its inputs. Torch-free: the caller passes a function for the free memory.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, replace

from core.config import RunConfig
from core.errors import ConfigError
from core.memory import estimate_bytes
from core.queue.repo import STALE_AFTER_S, Repo
from core.queue.rows import DamagedRun, RunRow, WorkerRow

MIB = 1024**2
MARGIN_FIXED_BYTES = 1024 * MIB  # context-independent extras: see the module docstring
MARGIN_FRACTION = 0.25  # the estimate is rough; a measured peak excludes allocator slack
SLOT_WORD = " slot "  # worker rows read "cuda:0 slot 2/4"


@dataclass(frozen=True)
class Slot:
    """Slot ``index`` (1-based) of ``count`` worker processes sharing one device."""

    index: int
    count: int

    def label(self, device: str) -> str:
        return f"{device}{SLOT_WORD}{self.index}/{self.count}"


def parse_slot(text: str) -> Slot:
    """``"2/4"`` -> ``Slot(2, 4)``; anything else is a ``ConfigError``."""
    index, _, count = text.partition("/")
    if not (index.isdigit() and count.isdigit()) or not 1 <= int(index) <= int(count):
        raise ConfigError(f"--slot {text}: expected I/K with 1 <= I <= K, e.g. 2/4")
    return Slot(int(index), int(count))


def base_device(label: str) -> str:
    """A worker row's device without its slot: ``"cuda:0 slot 2/4"`` -> ``"cuda:0"``."""
    return label.split(SLOT_WORD, 1)[0]


def threads_per_slot(cores: int, slots: int) -> int:
    """CPU slots share the cores instead of each starting one thread per core."""
    return max(1, cores // max(1, slots))


# ----- the decision -------------------------------------------------------------------


def margin_bytes(need_bytes: int) -> int:
    return MARGIN_FIXED_BYTES + int(need_bytes * MARGIN_FRACTION)


def fits(need_bytes: int, free_bytes: int, margin: int) -> bool:
    return need_bytes + margin <= free_bytes


@dataclass(frozen=True)
class Neighbour:
    """A run on the same device that started before the one being admitted."""

    run_id: int
    warming: bool  # no training step recorded yet: its memory is not allocated yet
    need_bytes: int = 0  # what a warming run will take (its measured peak or estimate)
    damaged: str = ""  # its row is damaged (this names it): its need is unknown


@dataclass(frozen=True)
class Decision:
    train: bool
    reason: str


def decide(need_bytes: int, free_bytes: int, earlier: Sequence[Neighbour]) -> Decision:
    """Train now, or put the run back and wait (rules in the module docstring)."""
    if not earlier:
        return Decision(True, "no earlier run on this device")
    warming = [n for n in earlier if n.warming]
    kept = sum(n.need_bytes + margin_bytes(n.need_bytes) for n in warming)
    need, free = need_bytes // MIB, free_bytes // MIB
    text = f"needs {need} MiB + margin, {free} MiB free"
    if damaged := [n for n in earlier if n.damaged]:
        ids = ", ".join(str(n.run_id) for n in damaged)
        return Decision(False, f"{text}, all of it kept for run(s) {ids}: damaged, need unknown")
    if warming:
        ids = ", ".join(str(n.run_id) for n in warming)
        text += f", {kept // MIB} MiB of it kept for starting run(s) {ids}"
    if fits(need_bytes, free_bytes - kept, margin_bytes(need_bytes)):
        return Decision(True, f"fits: {text}")
    return Decision(False, text)


# ----- gathering the inputs -----------------------------------------------------------


def need_bytes(config: RunConfig, measured: Iterable[tuple[str, int]]) -> tuple[int, str]:
    """The measured peak of the newest same-config run (seed aside), else the estimate."""
    for config_json, peak in measured:
        if RunConfig.from_json(config_json).replace(seed=config.seed) == config:
            return peak, "measured"
    return estimate_bytes(config), "estimated"


def earlier_neighbours(
    run: RunRow,
    workers: Sequence[WorkerRow],
    running: Sequence[RunRow],
    now: float,
    stale_after_s: float = STALE_AFTER_S,
) -> list[Neighbour]:
    """Running runs on ``run``'s worker's device and host that started before ``run``."""
    by_id = {w.id: w for w in workers}
    me = by_id.get(run.worker_id or "")
    if me is None:
        return []
    found = []
    for other in running:
        worker = by_id.get(other.worker_id or "")
        if (
            other.id == run.id
            or _holds_none_here(other.worker_id, worker, run, me, now, stale_after_s)
            or not _started_before(other, run)
        ):
            continue
        found.append(Neighbour(other.id, warming=other.inputs_done == 0))
    return found


def damaged_neighbours(
    run: RunRow,
    workers: Sequence[WorkerRow],
    damaged: Sequence[DamagedRun],
    now: float,
    stale_after_s: float = STALE_AFTER_S,
) -> list[Neighbour]:
    """Damaged running runs that may be earlier runs on ``run``'s device still to allocate
    their memory: each left out only where what can be read of it rules it out by
    ``earlier_neighbours``'s rules (a column damaged too could be anything)."""
    by_id = {w.id: w for w in workers}
    me = by_id.get(run.worker_id or "")
    if me is None:
        return []
    found = []
    for other in damaged:
        worker = by_id.get(other.worker_id or "")
        elsewhere = other.worker_id is not None and _holds_none_here(
            other.worker_id, worker, run, me, now, stale_after_s
        )
        later = other.started_at is not None and (other.started_at, other.id) > (
            run.started_at or 0.0,
            run.id,
        )
        allocated = other.inputs_done is not None and other.inputs_done > 0  # in free memory
        if other.id != run.id and not (elsewhere or later or allocated):
            found.append(Neighbour(other.id, warming=True, damaged=other.said))
    return found


def _holds_none_here(
    worker_id: str | None,
    worker: WorkerRow | None,
    run: RunRow,
    me: WorkerRow,
    now: float,
    stale_after_s: float,
) -> bool:
    """Whether a running run of ``worker_id`` (``worker``: its live row, None where it has
    none) holds no memory beside ``run`` on ``me``'s device: a run of ``run``'s own
    stack (counted in its need), or one whose worker is not live, is on another host or
    device, or is silent (a dead process holds no memory)."""
    return (
        worker_id == run.worker_id
        or worker is None
        or worker.host != me.host
        or base_device(worker.device) != base_device(me.device)
        or worker.age(now) > stale_after_s
    )


def _started_before(other: RunRow, run: RunRow) -> bool:
    # Ties (same clock tick) go to the lower id, so exactly one of two runs is first.
    return (other.started_at or 0.0, other.id) < (run.started_at or 0.0, run.id)


class Admission:
    """Decides for a freshly claimed run whether this slot may train it now."""

    def __init__(
        self,
        repo: Repo,
        free_memory: Callable[[], int],
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.repo, self.free_memory, self.clock = repo, free_memory, clock

    def check(self, run: RunRow, copies: int = 1) -> Decision:
        """``copies`` > 1: ``run`` leads a stack of that many runs (``worker --stack``),
        which needs about that many times one run's memory."""
        need, source = need_bytes(run.config, self.repo.measured_peaks(run.param_count))
        need *= copies
        running, damaged = self.repo.running_and_damaged()
        workers, now = self.repo.list_workers(skip_damaged=True), self.clock()
        earlier = earlier_neighbours(run, workers, running, now)
        by_id = {r.id: r for r in running}
        earlier = [self._with_need(n, by_id[n.run_id]) if n.warming else n for n in earlier]
        counted = damaged_neighbours(run, workers, damaged, now)
        for other in damaged:  # left out: said once, as a worker's other reads do
            if other.id not in {n.run_id for n in counted}:
                self.repo.say_left_out(other.said)
        earlier += counted
        decision = decide(need, self.free_memory(), earlier)
        stack = f", a stack of {copies}" if copies > 1 else ""
        # Each damaged row it waits on named, with its repair: the log says why.
        why = "".join(f"; {n.damaged}" for n in earlier if n.damaged and not decision.train)
        return Decision(decision.train, f"{decision.reason} ({source} need{stack}){why}")

    def _with_need(self, neighbour: Neighbour, run: RunRow) -> Neighbour:
        peaks = self.repo.measured_peaks(run.param_count)
        return replace(neighbour, need_bytes=need_bytes(run.config, peaks)[0])
