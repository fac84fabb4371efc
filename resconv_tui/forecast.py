"""When the queue's runs will end: the live workers' slots, filled in claim order.

A sweep mixes sizes (the logbook's T1 goes from 1 to 21 layers, T2 trains at 64x64), so
one typical rate misjudges it. Each run's cost is its parameter count times its image
area (every weight of a same-padded convolution is applied at every pixel), and the
seconds per input are fitted to that cost, ``a + b * cost``, over the finished runs and
the running ones of sizes no run has finished yet (their pace so far); with one size
measured, or a fit that makes no sense (a cost that would make runs faster), the
median seconds per input stands for all.

The schedule is discrete, as training is: a run is never split between slots. Each
live worker has a slot per run in flight (``--slots K`` rows are separate workers; a
``--stack K`` worker trains K runs at once), at least one unless it is stopping; a slot
frees up when its running run ends (at that run's own measured rate), then takes the
next queued run in claim order (priority, then age). Runs of offline workers are left
out: they end as "worker lost", not trained. A stopping worker's runs go back to the
queue after their current step: they count as queued, whole.
"""

from __future__ import annotations

import heapq
import json
import statistics
from collections.abc import Callable, Sequence
from functools import lru_cache

from core.queue import RunRow, RunStatus, WorkerRow

FIT_RECENT = 200  # the most recent measured runs the cost fit uses


# Keyed by the config text, which differs per seed: room for a large queue's every run
# (a settled run keeps its row, and so its string, between polls: hits after the first).
@lru_cache(maxsize=1 << 16)
def _image_area(config_json: str) -> int:
    size = json.loads(config_json).get("image_size", 28)
    return int(size) * int(size)


def run_cost(run: RunRow) -> float:
    """Work per input, in parameter-pixels (a same-padded convolution's multiply-adds)."""
    return float(run.param_count * _image_area(run.config_json))


def seconds_per_input(
    measured: Sequence[tuple[RunRow, float]],
) -> Callable[[RunRow], float] | None:
    """From (run, measured inputs/s) pairs: a run's expected seconds per input."""
    points = [(run_cost(run), 1.0 / rate) for run, rate in measured[-FIT_RECENT:] if rate > 0]
    if not points:
        return None
    typical = statistics.median(y for _, y in points)
    xs = [x for x, _ in points]
    if len(set(xs)) < 2:
        return lambda run: typical
    x_mean, y_mean = statistics.fmean(xs), statistics.fmean(y for _, y in points)
    spread = sum((x - x_mean) ** 2 for x in xs)
    slope = sum((x - x_mean) * (y - y_mean) for x, y in points) / spread
    base = y_mean - slope * x_mean
    if slope <= 0 or base < 0:  # noise, or too few sizes to tell: one rate for all
        return lambda run: typical
    return lambda run: base + slope * run_cost(run)


def _running_left(
    run: RunRow, measured_rate: float | None, per_input: Callable[[RunRow], float], seen: bool
) -> float:
    """Seconds until a running run ends: its inputs left at its pace so far, then, where
    runs of its size have finished (``seen``), the end their wall time says follows: the
    last validation pass, samples and checkpoints come after the last step (small runs
    on a CPU spend seconds there, and the ETA read 2 s with 7 s left).

    That end is at most the run's own time so far: a peer's wall time may hold what
    this run will not spend (the dataset's first load, a slower device on a shared
    queue), and an end longer than all the training before it is not one to expect."""
    left = max(0, run.total_inputs - run.inputs_done)
    if not measured_rate:
        return left * per_input(run)
    at_pace = left / measured_rate
    if not seen:
        return at_pace
    elapsed = run.inputs_done / measured_rate  # its pace is inputs per second since start
    end = run.total_inputs * per_input(run) - run.total_inputs / measured_rate
    return at_pace + min(max(0.0, end), elapsed)


def queue_ends(
    runs: Sequence[RunRow],
    workers: Sequence[WorkerRow],
    live: Callable[[WorkerRow], bool],
    rate: Callable[[RunRow], float | None],
) -> dict[int, float] | None:
    """Seconds from now until each running and queued run ends; None when nothing can be
    forecast (no live worker, or no run measured yet). Queued runs no slot will take
    (every live worker is stopping) are absent."""
    alive = [w for w in workers if live(w)]
    # Finished runs' final rates first: a running run's rate so far moves from one poll
    # to the next (its first steps, a validation pass), and the fit with it. A running
    # run counts only for a size no finished run has (a sweep's big runs end last).
    finished = [(run, r) for run in runs if run.status == RunStatus.SUCCEEDED and (r := rate(run))]
    sizes = {run_cost(run) for run, _ in finished}
    running = [(run, r) for run in runs if run.status == RunStatus.RUNNING and (r := rate(run))]
    per_input = seconds_per_input(finished + [(run, r) for run, r in running
                                              if run_cost(run) not in sizes])  # fmt: skip
    if not alive or per_input is None:
        return None
    taking = {w.id: w.state != "stopping" for w in alive}  # a stopping worker takes no run
    ends: dict[int, float] = {}
    slots: list[float] = []  # when each slot that takes queued runs is free
    in_flight: dict[str, int] = {}
    requeued = []  # a stopping worker puts its runs back: they train again from the start
    for run in runs:
        if run.status == RunStatus.RUNNING and run.worker_id in taking:
            if not taking[run.worker_id]:
                requeued.append(run)
                continue
            ends[run.id] = _running_left(run, rate(run), per_input, run_cost(run) in sizes)
            in_flight[run.worker_id] = in_flight.get(run.worker_id, 0) + 1
            slots.append(ends[run.id])
    for worker in alive:
        if taking[worker.id] and not in_flight.get(worker.id):
            slots.append(0.0)
    heapq.heapify(slots)
    waiting = [*(run for run in runs if run.status == RunStatus.QUEUED), *requeued]
    queued = sorted(waiting, key=lambda r: (-r.priority, r.id))
    for run in queued if slots else ():
        start = heapq.heappop(slots)
        ends[run.id] = start + run.total_inputs * per_input(run)
        heapq.heappush(slots, ends[run.id])
    return ends
