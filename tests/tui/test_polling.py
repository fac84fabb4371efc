"""The dashboard's pure reading functions and the detached worker launcher."""

from __future__ import annotations

import argparse
import dataclasses
import json
import signal
import subprocess
import sys
import time
from functools import partial
from pathlib import Path
from typing import Any

import pytest

from core.queue import GpuSnapshot, MetricPoint, Repo, RunRow, RunStatus, WorkerRow
from core.queue.failures import FailureCause
from core.worker_options import add_worker_arguments
from resconv_tui import polling
from resconv_tui.polling import RunsQuery
from resconv_tui.worker_launcher import (
    WorkerLauncher,
    WorkerOptions,
    last_log_line,
    read_worker_fields,
    worker_command,
)

NOW = 1_700_000_600.0


def worker(state: str = "idle", age: float = 0.0, worker_id: str = "w") -> WorkerRow:
    return WorkerRow(
        worker_id, "host", 1, "cpu", state, NOW - 100, NOW - age, None, 0, GpuSnapshot()
    )


@pytest.mark.parametrize(
    ("state", "age", "health"),
    [("idle", 5, "online"), ("running", 60, "stale"), ("idle", 600, "offline"),
     ("stopped", 0, "offline"), ("lost", 0, "offline")],
)  # fmt: skip
def test_worker_health(state: str, age: float, health: str) -> None:
    assert polling.worker_health(worker(state, age), NOW) == health


def queue_eta(runs: list[RunRow], workers: list[WorkerRow], now: float) -> float | None:
    """Seconds until the queue is empty, as the dashboard's summary says it."""
    return polling.last_end(runs, polling.queue_forecast(runs, workers, now))


def test_rates_and_etas(seeded: dict[str, Any], db_url: str) -> None:
    runs = {r.id: r for r in Repo.open(db_url).list_runs()}
    running = runs[seeded["running"]]
    # 89,600 inputs in the 180 s between claim and last heartbeat
    assert polling.run_rate(running, NOW) == pytest.approx(89600 / 180)
    assert polling.run_eta(running, NOW) == pytest.approx((180000 - 89600) / (89600 / 180))
    assert polling.run_rate(runs[1], NOW) == 3172.0  # the final figure
    assert polling.run_eta(runs[1], NOW) is None
    assert polling.run_rate(runs[7], NOW) is None
    assert queue_eta(list(runs.values()), [], NOW) is None
    assert queue_eta(list(runs.values()), [worker(age=600)], NOW) is None  # offline
    assert queue_eta(list(runs.values()), [worker()], NOW) > 0


def finished_in_20_s(db_url: str) -> RunRow:
    """A succeeded run of 1000 inputs: 100 inputs/s training, 20 s from claim to end."""
    base = Repo.open(db_url).list_runs()[0]
    return dataclasses.replace(
        base, id=1, status=RunStatus.SUCCEEDED, total_inputs=1000, inputs_done=1000,
        inputs_per_s=100.0, started_at=NOW - 100, finished_at=NOW - 80,
    )  # fmt: skip


def test_the_queue_forecast_paces_a_finished_run_by_its_wall_time(
    seeded: dict[str, Any], db_url: str
) -> None:
    # Validation passes, loading and saving took as long as the training steps of these
    # small runs: paced by inputs/s alone, the ETA said 18 s for 3m40s of runs.
    done = finished_in_20_s(db_url)
    queued = dataclasses.replace(done, id=2, status=RunStatus.QUEUED, inputs_done=0,
                                 inputs_per_s=None, started_at=None, finished_at=None)  # fmt: skip
    assert polling.wall_rate(done, NOW) == pytest.approx(50.0)  # 1000 inputs in 20 s
    assert polling.run_rate(done, NOW) == 100.0  # the in/s column: training alone
    assert queue_eta([done, queued], [worker()], NOW) == pytest.approx(20)  # was 10
    # A run without both times (an old row) falls back on its inputs/s.
    undated = dataclasses.replace(done, finished_at=None)
    assert queue_eta([undated, queued], [worker()], NOW) == pytest.approx(10)


def test_a_running_run_s_eta_counts_the_end_its_finished_peers_took(
    seeded: dict[str, Any], db_url: str
) -> None:
    # The last validation pass, samples and checkpoints come after the last step: for a
    # small CPU run the ETA read 2 s with 7 s left, and 0 s while it validated.
    done = finished_in_20_s(db_url)  # 10 s of steps (100 inputs/s), 10 s beside them
    running = dataclasses.replace(done, id=2, status=RunStatus.RUNNING, worker_id="w",
                                  finished_at=None, heartbeat_at=NOW)  # fmt: skip
    steps_done = dataclasses.replace(running, started_at=NOW - 18)  # 8 of the 10 s spent
    assert queue_eta([done, steps_done], [worker("running")], NOW) == pytest.approx(2)  # was 0
    halfway = dataclasses.replace(running, inputs_done=500, started_at=NOW - 5)
    assert queue_eta([done, halfway], [worker("running")], NOW) == pytest.approx(5 + 10)
    # Slower steps than its peers': its own training rate counts.
    slow = dataclasses.replace(running, inputs_done=500, inputs_per_s=10.0, started_at=NOW - 50)
    assert queue_eta([done, slow], [worker("running")], NOW) == pytest.approx(50 + 10)
    # The time beside the steps is the median of its peers': one slow first load (the
    # dataset's cache made) does not add 90 s to every run after it.
    slow_peer = dataclasses.replace(done, id=3, started_at=NOW - 180)  # 90 s beside
    peers = [done, dataclasses.replace(done, id=4), slow_peer]
    assert queue_eta([*peers, halfway], [worker("running")], NOW) == pytest.approx(15)
    # No run has finished: its own pace alone (wall time since its claim).
    assert queue_eta([halfway], [worker("running")], NOW) == pytest.approx(5)
    # A worker that records no training rate (an older one): its pace alone.
    unrated = dataclasses.replace(halfway, inputs_per_s=None)
    assert queue_eta([done, unrated], [worker("running")], NOW) == pytest.approx(5)


def test_a_running_run_s_eta_falls_as_it_trains(seeded: dict[str, Any], db_url: str) -> None:
    # A walkthrough's queue ETA grew from 31 s to 34 s while its runs went from 70% to
    # 98%: peers of a tenth of its inputs made its end as long as its time so far.
    small = [dataclasses.replace(finished_in_20_s(db_url), id=i) for i in (1, 2)]
    big = dataclasses.replace(small[0], id=3, status=RunStatus.RUNNING, worker_id="w",
                              total_inputs=10_000, finished_at=None, heartbeat_at=NOW)  # fmt: skip
    etas = []
    for seconds in (20, 40, 60, 80, 100):  # 100 inputs/s of steps after 10 s of loading
        inputs = (seconds - 10) * 100
        now_running = dataclasses.replace(big, inputs_done=inputs, started_at=NOW - seconds)
        etas.append(queue_eta([*small, now_running], [worker("running")], NOW))
    assert etas == pytest.approx([90, 70, 50, 30, 10])  # 100 s of steps, 10 s beside


def test_a_worker_s_stop_is_not_counted_in_a_run_s_pace_or_eta(
    seeded: dict[str, Any], db_url: str
) -> None:
    # A run trained 2 minutes at 100 inputs/s, its worker was stopped for 10 (Ctrl-Z,
    # docker pause) and resumed: its pace read 16.7 inputs/s and its ETA 48 minutes for
    # the 8 minutes left; a finished run's stop made every later run read slower.
    base = finished_in_20_s(db_url)
    running = dataclasses.replace(
        base, id=2, status=RunStatus.RUNNING, worker_id="w", total_inputs=60_000,
        inputs_done=12_000, started_at=NOW - 720, finished_at=None, heartbeat_at=NOW,
        inputs_per_s=100.0, paused_s=600.0,
    )  # fmt: skip
    assert running.active_seconds(NOW) == pytest.approx(120)
    assert polling.pace_so_far(running, NOW) == pytest.approx(100)
    assert polling.wall_rate(running, NOW) == pytest.approx(100)
    assert polling.run_eta(running, NOW) == pytest.approx(480)
    assert queue_eta([running], [worker("running")], NOW) == pytest.approx(480)
    # A finished run stopped as long: its wall rate, and the time beside its steps, as
    # if it had not been (1000 inputs in 20 s, 10 s of them beside the steps).
    stopped = dataclasses.replace(base, started_at=NOW - 700, paused_s=600.0)
    assert polling.wall_rate(stopped, NOW) == pytest.approx(50.0)
    queued = dataclasses.replace(base, id=3, status=RunStatus.QUEUED, inputs_done=0,
                                 inputs_per_s=None, started_at=None, finished_at=None)  # fmt: skip
    assert queue_eta([stopped, queued], [worker()], NOW) == pytest.approx(20)
    # A run claimed, stopped before its first record: the time since its claim that the
    # forecast takes off its whole leaves the stop out too.
    claimed = dataclasses.replace(queued, status=RunStatus.RUNNING, worker_id="w",
                                  started_at=NOW - 605, paused_s=600.0)  # fmt: skip
    assert queue_eta([stopped, claimed], [worker("running")], NOW) == pytest.approx(15)


def test_the_time_beside_the_steps_grows_with_the_run_s_size(
    seeded: dict[str, Any], db_url: str
) -> None:
    # Validation passes cost what the model costs: at 3,000 inputs on a CPU, T1's 1 layer
    # spent 3 s beside its steps and 9 layers 35 s. One median for all said 4 s for 45.
    from resconv_tui.forecast import overheads

    done = finished_in_20_s(db_url)  # 10 s beside its steps
    bigger = dataclasses.replace(
        done, id=2, param_count=done.param_count * 3, started_at=NOW - 100, finished_at=NOW - 70
    )  # 20 s beside
    beside = overheads([done, bigger])
    assert beside is not None
    assert beside(done) == pytest.approx(10) and beside(bigger) == pytest.approx(20)
    between = dataclasses.replace(done, id=3, param_count=done.param_count * 2)
    assert beside(between) == pytest.approx(15)
    assert overheads([dataclasses.replace(done, finished_at=None)]) is None


def test_a_running_run_s_eta_is_the_forecast_s_where_there_is_one(
    seeded: dict[str, Any], db_url: str
) -> None:
    # The ETA column and `ls` showed the inputs left at the pace so far, beside a queue
    # ETA that counted each run's end: two figures for one run.
    done = finished_in_20_s(db_url)
    halfway = dataclasses.replace(done, id=2, status=RunStatus.RUNNING, worker_id="w",
                                  inputs_done=500, started_at=NOW - 5, finished_at=None,
                                  heartbeat_at=NOW)  # fmt: skip
    ends = polling.queue_forecast([done, halfway], [worker("running")], NOW)
    assert ends == pytest.approx({2: 15})
    assert polling.shown_eta(halfway, NOW, ends) == pytest.approx(15)
    assert polling.shown_eta(halfway, NOW, {}) == pytest.approx(5)  # no forecast: its pace
    assert polling.shown_eta(done, NOW, ends) is None
    # A stopping worker's run is forecast as trained anew after it: not this attempt's end.
    stopping = worker("stopping")
    again = polling.queue_forecast([done, halfway], [stopping, worker(worker_id="i")], NOW)
    assert again is not None and 2 in again
    assert polling.running_ends([done, halfway], [stopping], again) == {}


def test_a_run_past_its_forecast_before_its_first_record_has_no_eta(
    seeded: dict[str, Any], db_url: str
) -> None:
    # An 11-layer run paced by a finished 1-layer one read "0s" at 0% for the minute its
    # first 20 steps took on a CPU: its forecast is spent, its run is not.
    done = finished_in_20_s(db_url)  # 20 s from claim to end
    claimed = dataclasses.replace(done, id=2, status=RunStatus.RUNNING, worker_id="w",
                                  inputs_done=0, inputs_per_s=None, started_at=NOW - 60,
                                  finished_at=None, heartbeat_at=NOW)  # fmt: skip
    ends = polling.queue_forecast([done, claimed], [worker("running")], NOW)
    assert ends == pytest.approx({2: 0})
    assert polling.shown_eta(claimed, NOW, ends) is None
    # Within its forecast it counts down as before.
    early = dataclasses.replace(claimed, started_at=NOW - 5)
    assert polling.shown_eta(early, NOW, {2: 15.0}) == pytest.approx(15)


def test_a_stopping_worker_s_run_in_its_final_pass_ends_as_forecast(
    seeded: dict[str, Any], db_url: str
) -> None:
    # `resconv-tui stop` during an 11-layer run's final pass: status said "0 queued" and
    # "1 queued run left: every live worker is stopping", the ETA column "—"; the pass
    # is let finish, and the run succeeded 87 s later.
    done = finished_in_20_s(db_url)  # 10 s beside its steps
    validating = dataclasses.replace(done, id=2, status=RunStatus.RUNNING, worker_id="w",
                                     started_at=NOW - 12, finished_at=None,
                                     heartbeat_at=NOW)  # fmt: skip
    assert validating.trained_all
    stopping = worker("stopping")
    ends = polling.queue_forecast([done, validating], [stopping], NOW)
    assert ends is not None and ends[2] == pytest.approx(8)  # 10 s beside, 2 s of them gone
    assert polling.running_ends([done, validating], [stopping], ends) == ends
    assert polling.untaken_runs([done, validating], ends, [stopping], NOW) == []
    # Still training: it goes back to the queue, as before.
    training = dataclasses.replace(validating, inputs_done=500)
    again = polling.queue_forecast([done, training], [stopping], NOW)
    assert again is not None and 2 not in again
    assert polling.untaken_runs([done, training], again, [stopping], NOW) == [2]


def test_a_run_in_its_final_pass_gives_the_forecasts_eta_everywhere(
    seeded: dict[str, Any], db_url: str
) -> None:
    # The runs table's ETA column gave the forecast's 8s for the pass; ls, show and the
    # run detail said only "validating", as if none were known.
    from resconv_tui.commands.ls import run_line

    done = finished_in_20_s(db_url)
    validating = dataclasses.replace(done, id=2, status=RunStatus.RUNNING, worker_id="w",
                                     started_at=NOW - 12, finished_at=None,
                                     heartbeat_at=NOW)  # fmt: skip
    ends = polling.queue_forecast([done, validating], [worker("running")], NOW)
    assert ends is not None and ends[2] == pytest.approx(8)
    said = "validating: its final pass, samples and checkpoints"
    assert run_line(validating, NOW, ends=ends)[-1] == f"{said}; ETA 8s"  # ls
    assert polling.eta_text(validating, NOW, False, False, ends) == f"8s ({said})"  # its row
    # Its forecast spent (the pass outlasts it): none is known, as the ETA column's "—".
    spent = {2: 0.0}
    assert run_line(validating, NOW, ends=spent)[-1] == said
    assert polling.eta_text(validating, NOW, False, False, spent) == said


def test_ls_says_a_long_error_was_cut(seeded: dict[str, Any], db_url: str) -> None:
    # Cut at 60 characters mid-word with no mark: "...cannot be converted to type float withou"
    from resconv_tui.commands.ls import run_line

    error = "RuntimeError: value cannot be converted to type float without overflow"
    failed = dataclasses.replace(finished_in_20_s(db_url), status=RunStatus.FAILED, error=error)
    note = run_line(failed, NOW)[-1]
    assert note == f"error: {error[:59]}…" and len(note) == len("error: ") + 60
    short = dataclasses.replace(failed, error="RuntimeError: boom")
    assert run_line(short, NOW)[-1] == "error: RuntimeError: boom"


def test_a_silent_stopping_worker_s_run_is_not_counted_as_left_queued(
    seeded: dict[str, Any], db_url: str
) -> None:
    # The forecast leaves out a worker silent 30 s (its runs read "silent"), but
    # untaken_runs still took a stopping one that is only "stale" (under 120 s) as live:
    # its run counted as left queued beside a beating worker without --max-runs, so the
    # queue ETA read "—" and status "1 queued run beyond the workers' --max-runs".
    done = finished_in_20_s(db_url)
    training = dataclasses.replace(done, id=2, status=RunStatus.RUNNING, worker_id="s",
                                   started_at=NOW - 50, finished_at=None, inputs_done=500,
                                   heartbeat_at=NOW - 45)  # fmt: skip
    silent, idle = worker("stopping", age=45, worker_id="s"), worker(worker_id="i")
    runs, workers = [done, training], [silent, idle]
    ends = polling.queue_forecast(runs, workers, NOW)
    assert ends is not None and 2 not in ends  # left out: it ends "worker lost"
    assert polling.untaken_runs(runs, ends, workers, NOW) == []
    # A stopping worker that still beats puts its run back: that one is left queued.
    beating = worker("stopping", age=5, worker_id="s")
    again = polling.queue_forecast(runs, [beating], NOW)
    assert polling.untaken_runs(runs, again, [beating], NOW) == [2]


def test_queue_eta_schedules_whole_runs_on_the_slots_in_flight(
    seeded: dict[str, Any], db_url: str
) -> None:
    base = Repo.open(db_url).list_runs()[0]

    def run(run_id: int, status: RunStatus, worker_id: str | None = None) -> RunRow:
        figures = {"total_inputs": 1000, "inputs_done": 0, "inputs_per_s": 100.0,
                   "started_at": NOW}  # claimed just now  # fmt: skip
        return dataclasses.replace(base, id=run_id, status=status, worker_id=worker_id, **figures)

    # Worker "s" trains a stack of 3 seeds (10 s each, 3 at once); 1 queued run of 10 s
    # starts when the stack ends: a run is never split between slots.
    stack = [run(i, RunStatus.RUNNING, "s") for i in (1, 2, 3)] + [run(4, RunStatus.QUEUED)]
    stacker, idle = worker("running", worker_id="s"), worker(worker_id="i")
    assert queue_eta(stack, [stacker], NOW) == pytest.approx(20)
    # ...and an idle worker beside it takes the queued run at once.
    assert queue_eta(stack, [stacker, idle], NOW) == pytest.approx(10)
    # A run whose worker went silent is not trained by anyone: left out...
    gone = worker("running", age=600, worker_id="s")
    assert queue_eta(stack, [gone, idle], NOW) == pytest.approx(10)
    assert queue_eta(stack, [gone], NOW) is None  # ...and nobody takes the queued one
    # ...but a worker only late with its heartbeat (busy) still trains its runs...
    late = worker("running", age=25, worker_id="s")
    assert queue_eta(stack, [late], NOW) == pytest.approx(20)
    # ...until it is silent as long as its runs read "silent" (30 s): a paused worker's
    # queue ETA counted down beside them.
    silent = worker("running", age=40, worker_id="s")
    assert queue_eta(stack, [silent], NOW) is None
    assert queue_eta(stack, [silent, idle], NOW) == pytest.approx(10)
    # An idle worker that is stopping takes no more runs: the queue never empties by it.
    leaving = worker("stopping", worker_id="i")
    assert queue_eta(stack, [stacker, leaving], NOW) == pytest.approx(20)
    assert queue_eta([stack[3]], [leaving], NOW) is None
    # A stopping worker puts its half-done run back: it trains again, whole, elsewhere.
    half = dataclasses.replace(stack[0], inputs_done=500)
    stopping = worker("stopping", worker_id="s")
    assert polling.queue_forecast([half], [stopping, idle], NOW) == pytest.approx({1: 10})
    assert queue_eta([half], [stopping], NOW) is None  # nobody will train it
    # Once runs have finished, their final rates set a queued run's pace: a running run's
    # rate so far (noisy in its first steps) does not move the forecast of the others.
    done = dataclasses.replace(stack[0], id=9, status=RunStatus.SUCCEEDED, inputs_per_s=50.0)
    for pace in (1.0, 1000.0):
        moving = dataclasses.replace(stack[0], inputs_per_s=None, inputs_done=100,
                                     started_at=NOW - 100 / pace, heartbeat_at=NOW)  # fmt: skip
        ends = polling.queue_forecast([done, moving, stack[3]], [stacker, idle], NOW)
        assert ends is not None and ends[4] == pytest.approx(1000 / 50)
    # ...but a running run of a size no run has finished yet counts: a sweep's small runs
    # end first, and the big ones to come are paced by the big one training.
    big = dataclasses.replace(stack[0], id=7, param_count=10 * base.param_count,
                              inputs_per_s=10.0)  # fmt: skip
    big_queued = dataclasses.replace(big, id=8, status=RunStatus.QUEUED, inputs_per_s=None)
    ends = polling.queue_forecast([done, big, big_queued], [stacker, idle], NOW)
    assert ends is not None and ends[8] == pytest.approx(1000 / 10)
    # Idle workers cannot help a slow run that is already training: it bounds the ETA.
    slow = dataclasses.replace(stack[0], inputs_per_s=10.0)
    assert queue_eta([slow, stack[3]], [stacker, idle], NOW) == pytest.approx(100)
    # Queued runs go in claim order: the higher priority first, on the first free slot.
    first = dataclasses.replace(run(5, RunStatus.QUEUED), priority=1)
    ends = polling.queue_forecast([stack[0], stack[3], first], [stacker], NOW)
    assert ends == pytest.approx({1: 10, 5: 20, 4: 30})
    by_experiment = polling.experiment_etas(
        [stack[0], dataclasses.replace(stack[3], experiment="later"), first], ends
    )
    assert by_experiment == pytest.approx({base.experiment: 20, "later": 30})


def test_a_stack_worker_is_one_slot_that_takes_a_run_and_its_seeds(
    seeded: dict[str, Any], db_url: str
) -> None:
    # `worker --stack 3` training 3 seeds, then 3 single runs: the forecast gave each
    # stacked run a slot of its own, and the singles, which train one after another,
    # 3 parallel slots (20 s forecast, 29 s taken).
    base = Repo.open(db_url).list_runs()[0]

    def run(run_id: int, status: RunStatus, seed: int, lr: float = 3e-4) -> RunRow:
        config = json.dumps({"layers": 3, "lr": lr, "seed": seed})
        return dataclasses.replace(
            base, id=run_id, status=status, worker_id="s" if status == RunStatus.RUNNING
            else None, config_json=config, total_inputs=1000, inputs_done=0,
            inputs_per_s=100.0, started_at=NOW,
        )  # fmt: skip

    stack = [run(i, RunStatus.RUNNING, seed=i) for i in (1, 2, 3)]  # 10 s each, together
    singles = [run(i, RunStatus.QUEUED, seed=0, lr=lr) for i, lr in ((4, 1e-3), (5, 2e-3))]
    seeds = [run(i, RunStatus.QUEUED, seed=i, lr=3e-3) for i in (6, 7, 8, 9)]
    ends = polling.queue_forecast([*stack, *singles, *seeds], [worker("running", worker_id="s")],
                                  NOW)  # fmt: skip
    assert ends == pytest.approx({1: 10, 2: 10, 3: 10, 4: 20, 5: 30,
                                  6: 40, 7: 40, 8: 40, 9: 50})  # fmt: skip

    # A stacked run's rate is its share of the stack's (a third, on a CPU): runs alone
    # are paced by runs alone, stacks by stacks (forecast twice as long before).
    def done(run_id: int, rate: float, path: str, seed: int) -> RunRow:
        return dataclasses.replace(run(run_id, RunStatus.SUCCEEDED, seed=seed), inputs_per_s=rate,
                                   path_used=path, started_at=None, finished_at=None)  # fmt: skip

    finished = [done(i, 100 / 3, "plain stack x3", seed=i) for i in (11, 12, 13)]
    finished.append(done(14, 100.0, "plain", seed=0))
    queued = [run(15, RunStatus.QUEUED, seed=0, lr=5e-3)]
    ends = polling.queue_forecast([*finished, *queued], [worker(worker_id="i")], NOW)
    assert ends == pytest.approx({15: 10})  # 1000 inputs at a run alone's 100/s


def test_the_forecast_claims_as_each_worker_recorded_it_claims(
    seeded: dict[str, Any], db_url: str
) -> None:
    # --stack, --order and --max-runs are recorded with the worker: a stack worker
    # training one run was a stack of 1, a largest-first worker took the queue in order,
    # and one that exits after N runs was forecast to train the whole queue.
    base = Repo.open(db_url).list_runs()[0]

    def run(run_id: int, status: RunStatus, seed: int, lr: float, inputs: int = 1000) -> RunRow:
        config = json.dumps({"layers": 3, "lr": lr, "seed": seed})
        return dataclasses.replace(
            base, id=run_id, status=status, worker_id="s" if status == RunStatus.RUNNING
            else None, config_json=config, total_inputs=inputs, inputs_done=0,
            inputs_per_s=100.0, started_at=NOW,
        )  # fmt: skip

    training = run(1, RunStatus.RUNNING, seed=0, lr=1e-3)  # 10 s, alone
    cell = [run(i, RunStatus.QUEUED, seed=i, lr=3e-3) for i in (2, 3, 4)]  # 10 s each
    stacker = dataclasses.replace(worker("running", worker_id="s"), stack=3)
    ends = polling.queue_forecast([training, *cell], [stacker], NOW)
    assert ends == pytest.approx({1: 10, 2: 20, 3: 20, 4: 20})  # the 3 seeds at once
    older = worker("running", worker_id="s")  # an older worker: a stack of 1, as it trains
    assert polling.queue_forecast([training, *cell], [older], NOW) == pytest.approx(
        {1: 10, 2: 20, 3: 30, 4: 40}
    )
    # Claimed 4 s ago with nothing recorded yet: 6 s left, not 10 until its first record.
    early = dataclasses.replace(training, started_at=NOW - 4)
    assert polling.queue_forecast([early], [older], NOW) == pytest.approx({1: 6})
    # A PReLU cell's seeds train one by one on a stack worker too (core.stack cannot).
    prelu = [
        dataclasses.replace(r, config_json=json.dumps({**json.loads(r.config_json),
                                                       "activation": "prelu"}))
        for r in cell
    ]  # fmt: skip
    assert polling.queue_forecast([training, *prelu], [stacker], NOW) == pytest.approx(
        {1: 10, 2: 20, 3: 30, 4: 40}
    )
    # --max-runs 3, 1 ended and 1 training: it takes one more run, then exits.
    limited = dataclasses.replace(older, max_runs=3, runs_done=1)
    assert polling.queue_forecast([training, *cell], [limited], NOW) == pytest.approx(
        {1: 10, 2: 20}
    )
    # ...and a stack no larger than what is left of it.
    stack_of_two = dataclasses.replace(stacker, max_runs=4, runs_done=1)
    assert polling.queue_forecast([training, *cell], [stack_of_two], NOW) == pytest.approx(
        {1: 10, 2: 20, 3: 20}
    )
    # --order largest-first: the run with the most work first, after priority.
    small, big = run(5, RunStatus.QUEUED, 0, 1e-2), run(6, RunStatus.QUEUED, 0, 2e-2, 3000)
    largest = dataclasses.replace(older, largest_first=True)
    assert polling.queue_forecast([training, small, big], [largest], NOW) == pytest.approx(
        {1: 10, 6: 40, 5: 50}
    )
    assert polling.queue_forecast([training, small, big], [older], NOW) == pytest.approx(
        {1: 10, 5: 20, 6: 50}
    )


def test_a_big_run_is_forecast_slower_than_a_small_one() -> None:
    # Seconds per input fitted to parameter-pixels over the runs measured so far.
    from core.config import RunConfig
    from core.queue.rows import RunRow as Row
    from resconv_tui.forecast import run_cost, seconds_per_input

    def measured(params: int, rate: float, size: int = 28) -> tuple[RunRow, float]:
        config = RunConfig(image_size=size).to_json()
        row = Row(
            id=params, experiment="e", name="", status=RunStatus.SUCCEEDED, priority=0,
            config_json=config, config_hash="", seed=0, swept={}, target=None,
            param_count=params, total_inputs=1000, inputs_done=1000, attempts=1,
            created_at=0, started_at=0, finished_at=0, worker_id=None, heartbeat_at=0,
            cancel_requested=False, error=None, validation_loss=None, train_seconds=None,
            inputs_per_s=rate, peak_memory_bytes=None, checkpoint_path=None, path_used=None,
            has_samples=False,
        )  # fmt: skip
        return row, rate

    # 1 ms + 1 ns per parameter-pixel: 10k params at 28x28 -> 8.84 ms per input.
    truth = [measured(p, 1 / (1e-3 + 1e-9 * p * 784)) for p in (1_000, 50_000, 200_000)]
    per_input = seconds_per_input(truth)
    assert per_input is not None
    big = measured(100_000, 1.0, size=64)[0]
    assert run_cost(big) == 100_000 * 64 * 64
    assert per_input(big) == pytest.approx(1e-3 + 1e-9 * 100_000 * 4096)
    # One size measured: a bigger run in proportion to its cost (the truth's 0.41 s per
    # input is under it: its fixed 1 ms is not scaled), a smaller one at its median.
    alone = seconds_per_input(truth[1:2])
    assert alone is not None
    assert alone(big) == pytest.approx(1 / truth[1][1] * run_cost(big) / run_cost(truth[1][0]))
    assert alone(big) >= per_input(big)
    assert alone(truth[0][0]) == pytest.approx(1 / truth[1][1])
    # A fit below zero at no cost (small CPU runs): proportional to the cost instead of
    # the median, which timed a sweep of 1 to 21 layers at 1m26s for 7 minutes of runs.
    superlinear = [measured(p, 1 / (1e-12 * p * p)) for p in (1_000, 2_000, 3_000)]
    steep = seconds_per_input(superlinear)
    assert steep is not None and steep(big) > steep(superlinear[2][0]) > 1 / superlinear[2][1] / 2
    assert steep(superlinear[0][0]) > 0
    # Bigger runs measured faster (noise): no slope fits; as with one size, the bound the
    # measured sizes give, the tightest of them (the median, 0.1 s, is 29 times
    # less).
    noisy = seconds_per_input([measured(1_000, 10.0), measured(9_000, 20.0), measured(5, 5.0)])
    assert noisy is not None
    assert noisy(big) == pytest.approx(1 / 20 * run_cost(big) / run_cost(measured(9_000, 1)[0]))
    assert noisy(measured(2_000, 1.0)[0]) == pytest.approx(1 / 20)  # a bigger size's pace
    # A size measured is paced by its own runs, not the fit through every size: on a busy
    # CPU the 1-layer runs (7 s each) were forecast at a minute.
    assert noisy(measured(9_000, 1.0)[0]) == pytest.approx(1 / 20)
    assert per_input(truth[0][0]) == pytest.approx(1 / truth[0][1])
    assert seconds_per_input([]) is None


def test_dashboard_carries_its_summary_figures(seeded: dict[str, Any], db_url: str) -> None:
    dash = polling.read_dashboard(Repo.open(db_url), NOW)
    assert dash.counts == polling.status_counts(dash.runs)
    assert dash.counts[RunStatus.QUEUED] == 2 and sum(dash.counts.values()) == 8
    assert dash.queue_eta_s == queue_eta(dash.runs, dash.workers, NOW)
    ends = polling.queue_forecast(dash.runs, dash.workers, NOW)
    assert dash.experiment_etas == polling.experiment_etas(dash.runs, ends)
    assert set(dash.experiment_etas) == {"t1-layers-32", "act-demo"}
    assert dash.failures == {FailureCause.OUT_OF_MEMORY: 1}


def test_queued_runs_past_the_workers_max_runs_are_counted_not_timed(
    seeded: dict[str, Any], db_url: str
) -> None:
    # It read "no live worker takes runs: stopping", with no worker stopping.
    import sqlite3

    with sqlite3.connect(db_url.removeprefix("sqlite:///")) as conn:
        conn.execute("UPDATE worker SET max_runs = runs_done + (current_run_id IS NOT NULL)")
    dash = polling.read_dashboard(Repo.open(db_url), NOW)
    assert (dash.queue_eta_s, dash.untaken) == (None, 2)  # runs 7 and 8 stay queued
    assert dash.workers_end_s == dash.run_ends[seeded["running"]]  # the workers' run ends


def test_a_worker_holds_the_runs_it_trains_not_one_ended_since(
    seeded: dict[str, Any], db_url: str
) -> None:
    # `status` listed a dead worker with "run #1" after that run had been cancelled: its
    # row still named it.
    runs = Repo.open(db_url).list_runs()
    box = dataclasses.replace(worker("running", worker_id="gpu"), current_run_id=4)
    dead = dataclasses.replace(worker("lost", worker_id="dead"), current_run_id=6)  # cancelled
    ahead = dataclasses.replace(worker("running", worker_id="x"), current_run_id=99)  # unlisted
    held = polling.held_runs(runs, [box, dead, ahead])
    assert held == {"gpu": [4], "dead": [], "x": [99]}  # 99: not listed, so not known ended


def test_gone_workers_stay_listed_a_while(db_url: str) -> None:
    # A lost worker stays 15 minutes ("it just died"); one that stopped cleanly a minute.
    repo = Repo.open(db_url)
    lost, stopped, busy = (repo.register_worker("h", pid, "cpu") for pid in (1, 2, 3))
    repo.update_worker(lost, state="lost")
    repo.update_worker(stopped, state="stopped")
    now = time.time()
    assert {w.id for w in polling.read_workers(repo, now + 30)} == {lost, stopped, busy}
    assert {w.id for w in polling.read_workers(repo, now + 90)} == {lost, busy}  # busy: late
    assert {w.id for w in polling.read_workers(repo, now + 16 * 60)} == set()
    # The live one first, though the gone ones registered after it: a 24-line panel
    # shows its top lines.
    newest = repo.register_worker("h", 4, "cpu")
    repo.update_worker(newest, state="lost")
    assert [w.id for w in polling.read_workers(repo, now + 30)][0] == busy


def test_filters(seeded: dict[str, Any], db_url: str) -> None:
    runs = Repo.open(db_url).list_runs()
    assert [r.id for r in polling.filter_runs(runs, RunsQuery(status=RunStatus.QUEUED))] == [7, 8]
    assert len(polling.filter_runs(runs, RunsQuery(experiment="act-demo"))) == 4
    assert [r.id for r in polling.filter_runs(runs, RunsQuery(text="L-2"))] == [2]
    assert polling.filter_runs(runs, RunsQuery(RunStatus.RUNNING, "act-demo")) == []


def test_a_nan_run_is_found_as_diverged(seeded: dict[str, Any], db_url: str) -> None:
    # The dashboard's own word for it (r asks first "if it diverged"); "/diverged" found none.
    first, second = Repo.open(db_url).list_runs()[:2]
    failed = partial(dataclasses.replace, status=RunStatus.FAILED)
    runs = [failed(first, error="loss became NaN at step 4"),
            failed(second, error="out of memory at batch 64")]  # fmt: skip
    assert [r.id for r in polling.filter_runs(runs, RunsQuery(text="diverged"))] == [first.id]
    assert [r.id for r in polling.filter_runs(runs, RunsQuery(text="nan"))] == [first.id]


def test_a_name_with_control_characters_is_found_as_the_table_shows_it(
    seeded: dict[str, Any], db_url: str
) -> None:
    # The runs table shows ESC as "\\x1b" (RunRow.terminal_safe); "/" matched the stored
    # text alone, so typing what the table shows found nothing.
    first, second = Repo.open(db_url).list_runs()[:2]
    runs = [dataclasses.replace(first, experiment="exp\x1b[31mred", name="l-1\r\b"), second]
    for shown in ("exp\\x1b[31mred", "\\X1B[31M", "l-1\\r\\x08", "red"):
        assert [r.id for r in polling.filter_runs(runs, RunsQuery(text=shown))] == [first.id]
    assert polling.filter_runs(runs, RunsQuery(text="x1b")) == [runs[0]]


def test_latest_losses_are_read_incrementally(seeded: dict[str, Any], db_url: str) -> None:
    repo = Repo.open(db_url)
    run_id = seeded["running"]
    first = polling.read_latest_losses(repo, run_id, None)
    assert (first.train_loss, first.val_loss, first.inputs) == (0.2 - 14 / 500, 0.081, 89600)
    again = polling.read_latest_losses(repo, run_id, first)
    assert again == first  # nothing new: same values, same cursor
    repo.add_metrics(run_id, [MetricPoint(15, 96000, "train_loss", 0.1)])
    newer = polling.read_latest_losses(repo, run_id, first)
    assert newer.train_loss == 0.1 and newer.val_loss == 0.081 and newer.last_id > first.last_id


def test_a_run_queued_again_shows_none_of_its_old_losses(
    seeded: dict[str, Any], db_url: str
) -> None:
    # Cancelled and retried: its metrics were deleted; the line under the table showed
    # the old train loss until new rows came.
    repo = Repo.open(db_url)
    run_id = seeded["running"]
    before = polling.read_dashboard(repo, NOW, selected=run_id)
    assert before.latest is not None and before.latest.train_loss is not None
    worker = repo.get_run(run_id).worker_id
    assert worker is not None and repo.requeue(run_id, worker)
    repo.add_metrics(run_id, [MetricPoint(1, 64, "lr", 0.0003)])  # not a loss yet
    after = polling.read_dashboard(repo, NOW, selected=run_id, latest=before.latest)
    assert after.latest is not None and after.latest.train_loss is None


def test_read_dashboard(seeded: dict[str, Any], db_url: str) -> None:
    dash = polling.read_dashboard(Repo.open(db_url), NOW, selected=seeded["running"])
    assert len(dash.runs) == 8 and len(dash.workers) == 2
    assert dash.experiments == ("t1-layers-32", "act-demo")
    assert dash.latest is not None and dash.latest.val_loss == 0.081
    later = polling.read_dashboard(Repo.open(db_url), NOW + 3600)
    assert later.workers == ()  # long silent workers drop off the panel


@pytest.mark.parametrize(
    ("seconds", "text"), [(None, "—"), (42.4, "42s"), (125, "2m05s"), (3 * 3600 + 300, "3h05m")]
)
def test_format_duration(seconds: float | None, text: str) -> None:
    assert polling.format_duration(seconds) == text


@pytest.fixture
def popen_seen(monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    """What the launcher hands subprocess.Popen (its argv and keywords): a stand-in Popen,
    no process started; its process has pid 99 and exits 0."""
    seen: dict[str, Any] = {}

    class FakePopen:
        pid = 99

        def __init__(self, argv: list[str], **kwargs: Any) -> None:
            seen.update(argv=argv, **kwargs)

        def wait(self) -> int:
            return 0

    monkeypatch.setattr(subprocess, "Popen", FakePopen)
    return seen


def test_launcher_starts_worker_in_its_own_session(
    popen_seen: dict[str, Any], tmp_path: Path
) -> None:
    launched = WorkerLauncher(tmp_path).start("sqlite:////x/runs.db")
    assert popen_seen["argv"] == [sys.executable, "-m", "resconv_tui", "worker",
                                  "--db", "sqlite:////x/runs.db", "--device", "auto"]  # fmt: skip
    assert popen_seen["start_new_session"] is True and popen_seen["stdin"] == subprocess.DEVNULL
    assert launched.pid == 99 and launched.log_path.parent == tmp_path
    assert launched.log_path.exists()


def test_a_password_in_the_url_stays_off_the_worker_s_command_line(
    popen_seen: dict[str, Any], tmp_path: Path
) -> None:
    # `RESCONV_DB=postgresql://u:secret@... resconv-tui`, then w: the worker's argv held
    # `--db postgresql://u:secret@...`, which `ps` shows every user of the box for hours.
    url = "postgresql+psycopg://u:secret@db.example/runs?sslmode=disable"
    WorkerLauncher(tmp_path).start(url)
    assert not any("secret" in part for part in popen_seen["argv"]), popen_seen["argv"]
    assert popen_seen["argv"][3:] == ["worker", "--device", "auto"]
    assert popen_seen["env"]["RESCONV_DB"] == url  # the worker's own default for --db
    WorkerLauncher(tmp_path).start("postgresql+psycopg://u@db.example/runs")
    assert popen_seen["argv"][4:6] == ["--db", "postgresql+psycopg://u@db.example/runs"]


def test_a_real_worker_reads_a_url_with_a_password_from_its_environment(
    tmp_path: Path,
) -> None:
    # The URL given through RESCONV_DB reaches the worker: its error names that server
    # (the password hidden), not ./runs.db. Port 1: nothing listens, refused at once.
    launcher = WorkerLauncher(tmp_path)
    launched = launcher.start("postgresql+psycopg://u:secret@127.0.0.1:1/runs")
    deadline = time.monotonic() + 60
    while launcher.alive(launched.pid):
        assert time.monotonic() < deadline, launched.log_path.read_text()
        time.sleep(0.1)
    log = launched.log_path.read_text()
    assert "postgresql+psycopg://u:***@127.0.0.1:1/runs" in log, log
    assert "secret" not in log


def test_a_worker_that_exited_is_reaped_though_nothing_asks_after_it(
    monkeypatch, tmp_path: Path
) -> None:
    # Each worker started with w and stopped since stayed a zombie until the dashboard quit.
    import resconv_tui.worker_launcher as launcher_module

    monkeypatch.setattr(launcher_module, "worker_command", lambda *_: [sys.executable, "-c", ""])
    launcher = WorkerLauncher(tmp_path)
    pid = launcher.start("sqlite:////x/runs.db").pid
    deadline = time.monotonic() + 60  # polled: room for a loaded machine
    while Path(f"/proc/{pid}").exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not Path(f"/proc/{pid}").exists()  # a zombie keeps its /proc entry
    assert launcher.exit_code(pid) == 0  # its status is still known


def test_launcher_stops_a_real_process() -> None:
    process = subprocess.Popen(
        [sys.executable, "-c", "import time; time.sleep(60)"], start_new_session=True
    )
    launcher = WorkerLauncher()
    assert launcher.alive(process.pid)
    assert launcher.stop(process.pid)
    assert process.wait(timeout=10) == -signal.SIGTERM
    assert not launcher.alive(process.pid)
    assert not launcher.stop(process.pid)


def test_a_real_worker_that_cannot_start_leaves_its_reason_last_in_its_log(
    tmp_path: Path,
) -> None:
    # What the dashboard shows after `w` with a device this machine does not have.
    launcher = WorkerLauncher(tmp_path)
    launched = launcher.start(f"sqlite:///{tmp_path / 'runs.db'}", WorkerOptions("cuda:7"))
    deadline = time.monotonic() + 60
    while launcher.alive(launched.pid):
        assert time.monotonic() < deadline, launched.log_path.read_text()
        time.sleep(0.1)
    assert last_log_line(launched.log_path).startswith(
        "resconv-tui: invalid configuration: --device cuda:7: this machine has"
    )


def test_worker_command_lets_the_worker_pick_the_device() -> None:
    assert worker_command("u")[-2:] == ["--device", "auto"]
    options = WorkerOptions("cuda:0", slots=4, stack=4, order="largest-first")
    assert worker_command("u", options)[4:] == [
        "--db", "u", "--device", "cuda:0", "--slots", "4", "--stack", "4",
        "--order", "largest-first",
    ]  # fmt: skip


def test_worker_fields_read_with_the_worker_s_rules() -> None:
    # The options a dialog reads are ones the real worker parser accepts, same values.
    options, errors = read_worker_fields(
        {"device": " cuda ", "slots": "3", "stack": "", "order": "largest-first"}
    )
    assert errors == {} and options == WorkerOptions("cuda", 3, 1, "largest-first")
    parser = argparse.ArgumentParser()
    add_worker_arguments(parser)
    parsed = parser.parse_args(options.argv())
    assert (parsed.device, parsed.slots, parsed.stack, parsed.order) == (
        "cuda",
        3,
        1,
        "largest-first",
    )
    assert read_worker_fields(options.fields()) == (options, {})
    _, errors = read_worker_fields({"device": "cuda:x", "slots": "-2", "stack": "1.5"})
    assert errors == {
        "device": "'cuda:x' is not a device: use auto, cpu, cuda or cuda:N",
        "slots": "'-2' is not a number of slots (a whole number from 1 to 16)",
        "stack": "'1.5' is not a number of runs to stack (a whole number from 1 to 64)",
    }
    _, errors = read_worker_fields({"slots": "17", "stack": "64"})
    assert errors == {"slots": "'17' is not a number of slots (a whole number from 1 to 16)"}
    # As `worker --slots` reads them (and says so, in its words): int() took "1_0" as 10
    # and a full-width "２" as 2.
    _, errors = read_worker_fields({"slots": "1_0", "stack": "\uff12"})
    assert errors == {
        "slots": "'1_0' is not a number of slots (a whole number from 1 to 16)",
        "stack": "'２' is not a number of runs to stack (a whole number from 1 to 64)",
    }


def test_worker_fields_check_a_cuda_device_against_the_gpus_here(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Counted by NVML as the dialog opens: a cuda:3 on a one-GPU box was found absent
    # by the worker, in its log, after 10 s of importing torch.
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    one_gpu = {"device": "cuda:1", "slots": "1", "stack": "1", "order": "queue"}
    assert read_worker_fields(one_gpu, gpus=1)[1] == {
        "device": "'cuda:1': this machine has 1 CUDA device: cuda:0"
    }
    assert read_worker_fields(one_gpu, gpus=2)[1] == {}
    assert read_worker_fields(one_gpu, gpus=None)[1] == {}  # NVML cannot tell
    assert read_worker_fields({"device": "cuda"}, gpus=0)[1] == {
        "device": "'cuda': this machine has no CUDA GPU (use cpu or auto)"
    }  # the dialog's own words, not --device
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "")
    assert read_worker_fields({"device": "cuda"}, gpus=0)[1] == {
        "device": "'cuda': CUDA_VISIBLE_DEVICES='' leaves no GPU (use cpu or auto)"
    }
    assert read_worker_fields({"device": "cpu"}, gpus=0)[1] == {}
    assert read_worker_fields({"device": "auto"}, gpus=0)[1] == {}


def test_last_log_line_is_the_reason_a_worker_exited(tmp_path: Path) -> None:
    log = tmp_path / "w.log"
    log.write_text("x" * 10_000 + "\nTraceback ...\nresconv-tui: data error: no files\n\n  \n")
    assert last_log_line(log) == "resconv-tui: data error: no files"
    # A dataset not found: the error, then where it looked, then the fix (the last line
    # alone told the fix, never the problem).
    log.write_text(
        "00:20:27 worker: stopped after 0 run(s)\n"
        "resconv-tui: dataset not available: FashionMNIST not found; looked in:\n"
        "  - user cache: /c/fashion-mnist (does not exist)\n"
        "Fix: set RESCONV_DATA or pass --data-dir.\n"
    )
    assert last_log_line(log) == (
        "resconv-tui: dataset not available: FashionMNIST not found; looked in (see the log); "
        "Fix: set RESCONV_DATA or pass --data-dir."
    )
    # A --slots K worker: each slot process says the error as `worker: ...`, then the
    # supervisor's last line gives the exit statuses alone.
    log.write_text(
        "12:12:47 worker 1/2: FashionMNIST not found: run 2 back in the queue; stopping\n"
        "12:12:47 worker 1/2: stopped after 0 run(s)\n"
        "worker: dataset not available: FashionMNIST not found; looked in:\n"
        "  - user cache: /c/fashion-mnist (does not exist)\n"
        "Fix: set RESCONV_DATA or pass --data-dir.\n"
        "12:12:47 worker: all slots stopped (0 run(s) ended; exit statuses 2, 2)\n"
    )
    assert last_log_line(log) == (
        "worker: dataset not available: FashionMNIST not found; looked in (see the log); "
        "Fix: set RESCONV_DATA or pass --data-dir."
    )
    log.write_text("y" * 500)
    assert last_log_line(log, limit=10) == "y" * 9 + "…"
    assert last_log_line(tmp_path / "missing.log").startswith("cannot read")
    assert dataclasses.is_dataclass(polling.Dashboard)


def test_settled_runs_are_reread_only_when_they_change(seeded, db_url: str) -> None:
    repo = Repo.open(db_url)
    first = polling.read_dashboard(repo, NOW)
    again = polling.read_dashboard(repo, NOW, settled=first.settled)
    assert again.settled is first.settled  # same fingerprint: nothing re-read
    assert [r.id for r in again.runs] == list(range(1, 9))
    for change in (
        lambda: repo.set_priority([7], 3),
        lambda: repo.request_cancel([8]),
        lambda: repo.retry([seeded["failed"]]),
        lambda: repo.remove([2]),
    ):
        change()
        fresh = polling.read_dashboard(repo, NOW, settled=again.settled)
        assert fresh.settled is not again.settled
        assert fresh.runs == tuple(repo.list_runs())
        again = fresh


async def test_settle_waits_past_a_poll_that_a_newer_poll_cancelled() -> None:
    # Exclusive polls replace each other (a timer tick, a refresh after a write): the
    # replaced one ends cancelled, which settle() must take as "not yet", not as a failure.
    import threading

    from screen_host import ScreenHost, settle
    from textual import work
    from textual.screen import Screen
    from textual.worker import get_current_worker

    release = threading.Event()
    finished: list[int] = []

    class Polling(Screen[None]):
        @work(thread=True, exclusive=True, group="poll")
        def poll(self, n: int) -> None:
            while not release.wait(0.01):
                if get_current_worker().is_cancelled:
                    return
            finished.append(n)

    screen = Polling()
    app = ScreenHost(screen)
    async with app.run_test() as pilot:
        screen.poll(1)
        await pilot.pause()
        screen.poll(2)  # cancels poll 1 while settle() below waits for it
        threading.Timer(0.2, release.set).start()
        await settle(pilot)
        assert finished == [2]


def test_the_dashboard_times_a_run_s_silence_by_its_beat_unchanged_not_its_age(
    seeded: dict[str, Any], db_url: str
) -> None:
    # Each box writes its beats with its own clock: a live run of a box 40 s behind this
    # one's reads 40 s old at every poll. Silent only once its beat has not changed for
    # the stale limit on the dashboard's own clock, and then for as long as it has not.
    base = Repo.open(db_url).list_runs()[0]

    def running(run_id: int, beat: float) -> RunRow:
        return dataclasses.replace(base, id=run_id, status=RunStatus.RUNNING, heartbeat_at=beat)

    watched = [0.0]
    heard = polling.HeardBeats(clock=lambda: watched[0])
    behind = running(1, NOW - 40)
    assert heard.silent([behind], NOW) == {}  # not watched yet: its age says nothing
    for _ in range(20):  # beats every 3 s, always 40 s old here
        watched[0] += 3
        behind = running(1, behind.heartbeat_at + 3)  # type: ignore[operator]
        assert heard.silent([behind], NOW + watched[0]) == {}
    watched[0] += 31  # then no beat: silent once seen unchanged past the limit
    assert heard.silent([behind], NOW + watched[0]) == {1: 31}
    # A run ended is forgotten: running again (a retry), it is watched afresh.
    assert heard.silent([dataclasses.replace(behind, status=RunStatus.QUEUED)], NOW) == {}
    assert heard.silent([behind], NOW + watched[0]) == {}


def test_a_dashboard_just_started_says_a_run_silent_past_any_clocks_apart_at_once(
    seeded: dict[str, Any], db_url: str
) -> None:
    # Nothing watched yet: a beat 10 minutes old by this clock is no clock difference
    # (a worker warns at 10 s), its box is gone; younger, it is watched first.
    base = Repo.open(db_url).list_runs()[0]
    heard = polling.HeardBeats(clock=lambda: 0.0)
    old = dataclasses.replace(base, id=1, status=RunStatus.RUNNING, heartbeat_at=NOW - 601)
    young = dataclasses.replace(old, id=2, heartbeat_at=NOW - 599)
    assert heard.silent([old, young], NOW) == {1: 601}


def test_a_worker_s_heartbeat_is_timed_from_its_last_change_once_one_is_seen() -> None:
    # Beating from a box 40 s behind: late by its age only until its beat is seen to
    # change, then online as long as it beats. A worker that never beats while watched
    # (dead before the dashboard started) stays as late as its age says, not "online".
    watched = [0.0]
    heard = polling.HeardBeats(clock=lambda: watched[0])
    behind, dead = worker("running", age=40, worker_id="b"), worker(age=90, worker_id="d")
    quiet = heard.quiet_workers([behind, dead], NOW)
    assert quiet == {"b": 40, "d": 90}
    watched[0] += 3
    behind = dataclasses.replace(behind, last_seen_at=behind.last_seen_at + 3)
    quiet = heard.quiet_workers([behind, dead], NOW + 3)
    assert quiet == {"b": 0, "d": 93}
    seen_behind, seen_dead = heard.watched([behind, dead], NOW + 3)  # the rows, as polled
    assert (seen_behind.heard_quiet_s, seen_dead.heard_quiet_s) == (0, 93)
    assert polling.worker_health(seen_behind, NOW + 3) == "online"
    assert polling.beating(seen_behind, NOW + 3) and not polling.beating(seen_dead, NOW + 3)
    assert polling.worker_health(behind, NOW + 3) == "stale"  # by age: `status`, `stop`


def test_a_worker_seen_to_change_after_reads_paused_is_late_by_an_age_no_clocks_explain() -> None:
    # The runs screen reads no worker while covered (a new sweep's form, a compare): a
    # worker of another box that beat once after the last read and died read "online,
    # beat 0s ago" on the first poll back, 20 minutes later, and counted in the queue's
    # ETA, while its run read "silent 20m" at once (``silent``: an age past
    # SURELY_LOST_AFTER_S is no clock difference). As the run: late by that age.
    watched = [0.0]
    heard = polling.HeardBeats(clock=lambda: watched[0])
    gone, behind = worker("running", age=1, worker_id="g"), worker("running", worker_id="b")
    assert heard.quiet_workers([gone, behind], NOW) == {"g": 1, "b": 0}
    watched[0] += 1200
    later = NOW + 1200
    gone = dataclasses.replace(gone, last_seen_at=gone.last_seen_at + 3)  # then no beat
    # A box whose clock is 2 minutes behind, beating: its age is a clock difference.
    behind = dataclasses.replace(behind, last_seen_at=later - 120)
    seen_gone, seen_behind = heard.watched([gone, behind], later)
    assert seen_gone.heard_quiet_s == gone.age(later) == 1198
    assert polling.worker_health(seen_gone, later) == "offline"
    assert not polling.beating(seen_gone, later)
    assert seen_behind.heard_quiet_s == 0 and polling.beating(seen_behind, later)
