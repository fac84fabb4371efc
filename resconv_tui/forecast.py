"""When the queue's runs will end: the live workers' slots, filled in claim order.

A sweep mixes sizes (the logbook's T1 goes from 1 to 21 layers, T2 trains at 64x64), so
one typical rate misjudges it. A size already measured is paced by its own runs (their
median). For the others, each run's cost is its parameter count times its image area
(every weight of a same-padded convolution is applied at every pixel), and the
seconds per input are fitted to that cost, ``a + b * cost``, over the finished runs and
the running ones of sizes no run has finished yet (their pace so far); a fit below zero
at no cost is made through the origin instead (proportional to the cost). With one size
measured there is no slope to fit, nor where a bigger cost measured faster (noise
between two near sizes): a bigger run's steps are timed in proportion to its cost from
the measured sizes (``at_most_proportional``: an upper bound, that errs long, most on a
GPU, where small runs are launch-bound), a smaller one's at most at a measured bigger
size's median, until the sizes measured give a slope.

Where finished runs tell it, the fit is of the training steps' rates, and each run adds
the time it spends beside them (loading, validation, samples, checkpoints: ``overheads``,
the median of its size's finished runs): small runs' fixed time, spread over their few
inputs, would otherwise make a run ten times longer look ten times slower. Without it
(runs from older workers, none finished yet) the fit is of wall-time rates. With one
size finished, the time beside the steps is that size's for every run.

The schedule is discrete, as training is: a run is never split between slots. Each
live worker is a slot unless it is stopping (``--slots K`` rows are separate workers).
A slot frees up when its running runs end (each at its own measured rate), then claims
as its worker does (``_Taker``: ``--stack``, ``--order`` and ``--max-runs``, recorded
with the worker): the next queued run in claim order (priority, then age; or the most
work first), and a ``--stack K`` worker up to K-1 queued runs of that run's config but
for the seed with it, which end together; a worker with ``--max-runs`` takes no more
than it has left. Runs of offline workers are left out: they end as "worker lost", not
trained. A stopping worker's runs go back to the queue after their current step: they
count as queued, whole; but a run in its final pass (every input trained) ends there, as
the pass is let finish (``core.train``), and is forecast so.
"""

from __future__ import annotations

import heapq
import json
import statistics
from collections import Counter, defaultdict, deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import lru_cache

from core.config import UNSTACKABLE_ACTIVATIONS
from core.queue import RunRow, RunStatus, WorkerRow

FIT_RECENT = 200  # the most recent measured runs the cost fit uses


class UpperBound(float):
    """Seconds that are the most a wait can take, not a measured pace: a run timed by
    ``at_most_proportional`` (one size measured), and every end that waits on one (a
    slot's later runs). Shown marked (``polling.format_duration``: "≤4m"): such a
    figure erred long by 5 to 7 times on a CPU and read as the measured ones do.
    Arithmetic gives a plain float: ``marked`` keeps the mark where a sum holds one."""


def marked(seconds: float, *parts: float) -> float:
    """``seconds`` as an ``UpperBound`` where any of the ``parts`` it was made of is one."""
    return UpperBound(seconds) if any(isinstance(p, UpperBound) for p in parts) else seconds


# Keyed by the config text, which differs per seed: room for a large queue's every run
# (a settled run keeps its row, and so its string, between polls: hits after the first).
@lru_cache(maxsize=1 << 16)
def _cell(config_json: str) -> str:
    """A run's config but for the seed: the runs a `--stack` worker trains together."""
    config = {key: value for key, value in json.loads(config_json).items() if key != "seed"}
    return json.dumps(config, sort_keys=True)


@lru_cache(maxsize=1 << 16)
def _stackable(config_json: str) -> bool:
    """Whether a ``--stack`` worker stacks this run's seeds (``core.stack``)."""
    return json.loads(config_json).get("activation") not in UNSTACKABLE_ACTIVATIONS


@lru_cache(maxsize=1 << 16)
def _image_area(config_json: str) -> int:
    size = json.loads(config_json).get("image_size", 28)
    return int(size) * int(size)


def run_work(run: RunRow) -> int:
    """What ``--order largest-first`` claims first: parameters x inputs (``Repo.claim``)."""
    return run.param_count * run.total_inputs


def run_cost(run: RunRow) -> float:
    """Work per input, in parameter-pixels (a same-padded convolution's multiply-adds)."""
    return float(run.param_count * _image_area(run.config_json))


def seconds_per_input(
    measured: Sequence[tuple[RunRow, float]],
) -> Callable[[RunRow], float] | None:
    """From (run, measured inputs/s) pairs: a run's expected seconds per input: the
    median of its own size's where that size is measured, else fitted to its size; where
    no slope fits (one size measured, or bigger sizes measured faster), at most in
    proportion to its cost (``at_most_proportional``). (On a busy CPU a 3-layer run
    measured faster than a 2-layer one, and the fit through them gave the 1-layer runs,
    measured at 7 s, a minute.)"""
    points = [(run_cost(run), 1.0 / rate) for run, rate in measured[-FIT_RECENT:] if rate > 0]
    by_cost: dict[float, list[float]] = defaultdict(list)
    for cost, seconds in points:
        by_cost[cost].append(seconds)
    medians = {cost: statistics.median(values) for cost, values in by_cost.items()}
    if not medians:
        return None
    fitted = cost_slope(points)
    if fitted is None:
        # Two sizes 8 parameters apart (gelu, prelu), the bigger measured 1% faster (a busy
        # CPU), took their median for every size: a 186,787-parameter run of 1,000 inputs
        # read 20 s, where the one size alone gave it 6m24s.
        return lambda run: (
            medians.get(run_cost(run)) or at_most_proportional(medians, run_cost(run))
        )
    return lambda run: medians.get(run_cost(run)) or fitted(run_cost(run))


def at_most_proportional(medians: dict[float, float], cost: float) -> float:
    """Seconds per input at ``cost`` from the measured sizes' (``medians``: seconds by
    cost), where no slope fits: the least of what each size bounds it to, its seconds per
    parameter-pixel times the cost where the cost is bigger, its seconds where smaller.
    Where a step takes a fixed time plus one in proportion to the cost (as
    ``fit_to_cost`` fits it), that is the most it can take: whatever the fixed part is
    (a GPU's small runs are launch-bound, nearly flat), an upper bound, until a slope is
    measured (a running run's first record of another size). The measured size's median
    for all timed a 186,787-parameter run at 7 s from 4,979-parameter ones, for 4
    minutes. It errs long: on a busy 2-core CPU, 11 layers of 32 channels took 5 to 7
    times a step of 5 layers of 8 (4,939 parameters), where this says 38."""
    bounds = (
        seconds * cost / measured_cost if 0 < measured_cost < cost else seconds
        for measured_cost, seconds in medians.items()
    )
    return UpperBound(min(bounds))


def cost_slope(points: Sequence[tuple[float, float]]) -> Callable[[float], float] | None:
    """``a + b * cost`` fitted to (cost, value) points; through the origin where ``a``
    would be below zero; None where fewer than two costs are measured, or where a bigger
    cost would take less (noise, or too few sizes to tell)."""
    xs = [x for x, _ in points]
    if len(set(xs)) < 2:
        return None
    x_mean, y_mean = statistics.fmean(xs), statistics.fmean(y for _, y in points)
    spread = sum((x - x_mean) ** 2 for x in xs)
    slope = sum((x - x_mean) * (y - y_mean) for x, y in points) / spread
    base = y_mean - slope * x_mean
    if slope <= 0:
        return None
    if base < 0:  # no time at no cost: proportional to the cost, through the origin
        # (a CPU's small runs fitted below zero, and the median timed a sweep of 1 to
        # 21 layers at 1m26s for 7 minutes of runs)
        through_origin = sum(x * y for x, y in points) / sum(x * x for x in xs)
        return lambda cost: through_origin * cost
    return lambda cost: base + slope * cost


def fit_to_cost(points: Sequence[tuple[float, float]]) -> Callable[[float], float] | None:
    """``cost_slope``'s fit of (cost, value) points, else their median value for every
    cost; None without points."""
    if not points:
        return None
    fitted = cost_slope(points)
    if fitted is not None:
        return fitted
    typical = statistics.median(y for _, y in points)
    return lambda cost: typical


def overheads(finished: Sequence[RunRow]) -> Callable[[RunRow], float] | None:
    """Seconds a run spends beside its training steps: loading data, building the model,
    validation passes, samples, checkpoints. Each finished run's is its wall time (claim
    to end, its worker's stops left out) less its steps' time (inputs over its training
    rate); a run's estimate is the median of those of its size, else fitted to the size
    (validation passes grow with it: at 3,000 inputs on a 2-core CPU, T1's 1 layer spent
    3 s beside its steps and 9 layers 35 s). None when no finished run tells."""
    by_cost: dict[float, list[float]] = {}
    for run in finished[-FIT_RECENT:]:
        took = run.active_seconds(run.finished_at) if run.finished_at else None
        if run.inputs_per_s and took and run.inputs_done:
            beside = took - run.inputs_done / run.inputs_per_s
            by_cost.setdefault(run_cost(run), []).append(max(0.0, beside))
    fitted = fit_to_cost([(cost, x) for cost, xs in by_cost.items() for x in xs])
    if fitted is None:
        return None
    medians = {cost: statistics.median(xs) for cost, xs in by_cost.items()}
    return lambda run: medians.get(run_cost(run), fitted(run_cost(run)))


def _running_left(
    run: RunRow,
    pace: float | None,
    per_input: Callable[[RunRow], float],
    overhead: Callable[[RunRow], float] | None,
    elapsed: float = 0.0,
) -> float:
    """Seconds until a running run ends. ``pace``: its inputs per second of wall time
    since its claim (its worker's stops left out). Where finished runs tell the time
    spent beside the steps (``overhead``), the inputs left at its training rate plus what
    of that time it has not spent yet: the last validation pass, samples and checkpoints
    come after the last step (a small CPU run's ETA read 2 s with 7 s left, and 0 s while
    it validated). Otherwise the inputs left at its pace. ``elapsed``: seconds since its
    claim, taken off while it has recorded nothing yet (its ETA stood still until its
    first record)."""
    left = max(0, run.total_inputs - run.inputs_done)
    if not pace:  # claimed, nothing recorded yet
        per = per_input(run)
        whole = (overhead(run) if overhead else 0.0) + left * per
        return marked(max(0.0, whole - elapsed), per)
    training = run.inputs_per_s
    if overhead is None or not training:
        return left / pace
    spent = max(0.0, run.inputs_done / pace - run.inputs_done / training)
    return left / training + max(0.0, overhead(run) - spent)


def _stacked(run: RunRow, in_stack: Counter[str | None]) -> bool:
    """Trained in a stack: its recorded path says so once it has ended (``... stack x3``);
    while it runs, its worker trains other runs with it."""
    if run.status == RunStatus.RUNNING:
        return in_stack[run.worker_id] > 1
    return " stack x" in (run.path_used or "")


@dataclass
class _Taker:
    """How a live worker claims: K runs at once (``--stack K``: a run and up to K-1 of
    its seeds), in queue order or largest first (``--order``), and how many more runs
    it ends before it exits (``--max-runs``; None: no limit). A worker of an older
    resconv-tui recorded none of these: its stack is the runs it trains now, queue
    order, no limit."""

    stack: int
    largest_first: bool
    left: int | None

    @classmethod
    def of(cls, worker: WorkerRow, training: int) -> _Taker:
        stack = worker.stack if worker.stack is not None else max(1, training)
        left = None if worker.max_runs is None else worker.max_runs - worker.runs_done - training
        return cls(stack, bool(worker.largest_first), left)

    def more(self) -> bool:
        return self.left is None or self.left > 0

    def took(self, count: int) -> bool:
        """It took ``count`` runs; whether it takes more after them."""
        if self.left is not None:
            self.left -= count
        return self.more()


class _Claims:
    """The queued runs, taken as the workers' claims take them (``Repo.claim_stack``)."""

    def __init__(self, waiting: Sequence[RunRow], taken: dict[int, float]) -> None:
        self.taken = taken  # the runs already given an end: skipped
        self.in_queue_order = deque(sorted(waiting, key=lambda r: (-r.priority, r.id)))
        # --order largest-first: the most work (parameters x inputs) first, after priority.
        self.largest_first = deque(sorted(waiting, key=lambda r: (-r.priority, -run_work(r), r.id)))
        self.by_cell: dict[str, deque[RunRow]] = defaultdict(deque)
        for run in self.in_queue_order:  # a stack's seeds are claimed in queue order
            self.by_cell[_cell(run.config_json)].append(run)

    def next(self, taker: _Taker) -> list[RunRow]:
        """The run ``taker`` claims next and the seeds stacked with it; [] when none is left."""
        line = self.largest_first if taker.largest_first else self.in_queue_order
        while line and line[0].id in self.taken:
            line.popleft()
        if not line:
            return []
        run = line.popleft()
        most = taker.stack if taker.left is None else min(taker.stack, taker.left)
        if not _stackable(run.config_json):  # e.g. PReLU: its worker trains it alone
            most = 1
        # Linear over a whole queue: the taken runs at the cell's front go for good, and
        # the scan stops at the seeds it needs (a list made afresh per claim took 5.7 s
        # for a cell of 10,000 seeds, every poll).
        cell = self.by_cell[_cell(run.config_json)]
        while cell and (cell[0].id in self.taken or cell[0].id == run.id):
            cell.popleft()
        seeds: list[RunRow] = []
        for candidate in cell if most > 1 else ():
            if candidate.id != run.id and candidate.id not in self.taken:
                seeds.append(candidate)
                if len(seeds) == most - 1:
                    break
        return [run, *seeds]


def queue_ends(
    runs: Sequence[RunRow],
    workers: Sequence[WorkerRow],
    live: Callable[[WorkerRow], bool],
    rate: Callable[[RunRow], float | None],
    elapsed: Callable[[RunRow], float] = lambda run: 0.0,
) -> dict[int, float] | None:
    """Seconds from now until each running and queued run ends; None when nothing can be
    forecast (no live worker, or no run measured yet). Queued runs no slot will take
    (every live worker is stopping, or past its ``--max-runs``) are absent.

    ``rate``: a run's inputs per second of wall time, claim to end (to now if running),
    its worker's stops left out. A run's training rate is its ``inputs_per_s``.
    ``elapsed``: seconds since a running run's claim, its stops left out."""
    alive = [w for w in workers if live(w)]
    # Finished runs' figures first: a running run's rate so far moves from one poll to
    # the next (its first steps, a validation pass), and the fit with it. A running run
    # counts only for a size no finished run has (a sweep's big runs end last).
    done = [run for run in runs if run.status == RunStatus.SUCCEEDED]
    sizes = {run_cost(run) for run in done}
    overhead = overheads(done)
    running = [run for run in runs if run.status == RunStatus.RUNNING]
    measuring = done + [run for run in running if run_cost(run) not in sizes]
    if overhead is None:  # wall time alone: it holds the time beside the steps
        paces = [(run, r) for run in measuring if (r := rate(run) or run.inputs_per_s)]
    else:  # the steps' rate: each run adds the time beside them (``overhead``)
        paces = [(run, r) for run in measuring if (r := run.inputs_per_s or rate(run))]
    per_input = seconds_per_input(paces)
    if not alive or per_input is None:
        return None
    # A stacked run's rate is its share of the stack's: on a CPU a third of a run alone's
    # in a stack of 3, and runs alone after a stack were forecast twice as long. Runs
    # alone and stacks are each paced by their own kind where it has been measured.
    in_stack = Counter(run.worker_id for run in running)
    stacked = [_stacked(run, in_stack) for run, _ in paces]
    alone_pace = seconds_per_input([p for p, s in zip(paces, stacked, strict=True) if not s])
    stack_pace = seconds_per_input([p for p, s in zip(paces, stacked, strict=True) if s])
    per_alone, per_stacked = alone_pace or per_input, stack_pace or per_input
    taking = {w.id: w.state != "stopping" for w in alive}  # a stopping worker takes no run
    ends: dict[int, float] = {}
    free_at: dict[str, float] = {w.id: 0.0 for w in alive if taking[w.id]}
    requeued = []  # a stopping worker puts its runs back: they train again from the start
    for run in running:
        if run.worker_id in taking:
            if not taking[run.worker_id] and not run.trained_all:
                requeued.append(run)
                continue
            pace = per_stacked if _stacked(run, in_stack) else per_alone
            ends[run.id] = _running_left(run, rate(run), pace, overhead, elapsed(run))
            worker_id = run.worker_id or ""
            if worker_id in free_at:
                free_at[worker_id] = max(free_at[worker_id], ends[run.id])
    waiting = [*(run for run in runs if run.status == RunStatus.QUEUED), *requeued]
    claims = _Claims(waiting, ends)
    takers = {w.id: _Taker.of(w, in_stack[w.id]) for w in alive if taking[w.id]}
    slots = [(free, i, w) for i, (w, free) in enumerate(free_at.items()) if takers[w].more()]
    heapq.heapify(slots)
    while slots and (taken := claims.next(takers[slots[0][2]])):
        start, order, worker_id = heapq.heappop(slots)
        run, *seeds = taken
        beside = overhead(run) if overhead else 0.0
        per = (per_stacked if seeds else per_alone)(run)
        end = marked(start + beside + run.total_inputs * per, start, per)
        for member in taken:
            ends[member.id] = end
        if takers[worker_id].took(len(taken)):
            heapq.heappush(slots, (end, order, worker_id))
    return ends
