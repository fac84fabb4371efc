"""The ETA with one model size measured: the runs table, ``ls`` and ``status`` alike.

A new user's sweep had finished only 4,979-parameter runs: a claimed 186,787-parameter
run at 0% read ETA 7 s (then 1 s) and the queue 37 s, and about 10 s after its first
record 4m05s and 39m46s. Its steps are now timed in proportion to its cost (an upper
bound: a bigger model takes no more per parameter-pixel than a smaller one where a step
is a fixed time plus one in proportion to the cost).
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import replace

import pytest
from seed_runs import T0, freeze

from core.config import RunConfig
from core.params import count_params
from core.queue import FinalFigures, NewRun, Repo
from resconv_tui import polling
from resconv_tui.cli import main
from resconv_tui.forecast import UpperBound

INPUTS = 1_000
SMALL = RunConfig(model="v2", layers=5, channels=8, max_inputs=INPUTS)  # 4,939 parameters
BIG = RunConfig(model="v2", layers=11, channels=32, max_inputs=INPUTS)  # 186,787 parameters
MID = RunConfig(model="v2", layers=8, channels=16, max_inputs=INPUTS)
READ_AT = T0 + 31.0  # one second after the big run's claim


def queued(config: RunConfig, name: str) -> NewRun:
    return NewRun.from_config(config, experiment="e", name=name, param_count=count_params(config))


@pytest.fixture
def one_size_done(db_url: str, monkeypatch: pytest.MonkeyPatch) -> dict[str, int]:
    """A finished small run (10 s of steps at 100 inputs/s, 10 s beside them), a big run
    claimed a second ago with nothing recorded, and a big run queued behind it."""
    clock = freeze(monkeypatch)
    repo = Repo.open(db_url)
    small, big, after = repo.enqueue(
        [queued(SMALL, "small"), queued(BIG, "big"), queued(replace(BIG, seed=1), "big-2")]
    ).added_ids
    worker = repo.register_worker("gpu-box", 1234, "cpu")
    repo.claim(worker)
    clock.time = lambda: T0 + 20.0
    repo.finish(small, worker, FinalFigures(0.1, None, 10.0, 100.0, None, INPUTS))
    clock.time = lambda: T0 + 30.0
    repo.claim(worker)
    repo.heartbeat(worker, run_id=big)
    repo.close()
    monkeypatch.setattr(time, "time", lambda: READ_AT)
    return {"small": small, "big": big, "after": after}


def big_run_seconds() -> float:
    """The big run's steps at the small run's seconds per parameter-pixel, plus the small
    run's 10 s beside its steps."""
    per_input = 1 / 100 * count_params(BIG) / count_params(SMALL)
    return 10 + INPUTS * per_input


def test_a_bigger_size_than_the_one_measured_is_timed_in_proportion_to_its_cost(
    db_url: str, one_size_done: dict[str, int], capsys: pytest.CaptureFixture[str]
) -> None:
    assert big_run_seconds() > 380  # the small run's median said 20 s
    running_left = big_run_seconds() - 1  # claimed a second ago
    queue_left = running_left + big_run_seconds()
    dash = polling.read_dashboard(Repo.open(db_url), READ_AT)
    assert dash.run_ends[one_size_done["big"]] == pytest.approx(running_left)
    assert dash.queue_eta_s == pytest.approx(queue_left)
    # ls and status say what the runs table and its summary say.
    assert main(["ls", "--json", "--db", db_url]) == 0
    listed = {run["id"]: run for run in json.loads(capsys.readouterr().out)}
    # (to a tenth of a second, as --json gives it)
    assert listed[one_size_done["big"]]["eta_seconds"] == pytest.approx(running_left, abs=0.05)
    assert main(["status", "--db", db_url]) == 0
    assert (
        f"queue ETA: {polling.format_duration(UpperBound(queue_left))} " in capsys.readouterr().out
    )


def test_an_eta_timed_from_one_measured_size_is_marked_as_the_most_it_can_take(
    db_url: str, one_size_done: dict[str, int], capsys: pytest.CaptureFixture[str]
) -> None:
    # It read "queue ETA: 13m19s" as a measured figure, where it errs long 5 to 7 times.
    running_left = big_run_seconds() - 1
    queue_left = running_left + big_run_seconds()
    at_most_running, at_most_queue = math.ceil(running_left / 60), math.ceil(queue_left / 60)
    dash = polling.read_dashboard(Repo.open(db_url), READ_AT)
    assert polling.format_duration(dash.queue_eta_s) == f"≤{at_most_queue}m"
    assert polling.format_duration(dash.run_ends[one_size_done["big"]]) == f"≤{at_most_running}m"
    assert dash.experiment_etas == {"e": pytest.approx(queue_left)}
    assert polling.format_duration(dash.experiment_etas["e"]) == f"≤{at_most_queue}m"
    assert main(["status", "--db", db_url]) == 0
    said = capsys.readouterr().out
    assert f"queue ETA: ≤{at_most_queue}m (e ≤{at_most_queue}m)" in said
    assert main(["ls", "--db", db_url]) == 0
    assert f"≤{at_most_running}m" in capsys.readouterr().out
    assert main(["ls", "--json", "--db", db_url]) == 0
    listed = {run["id"]: run for run in json.loads(capsys.readouterr().out)}
    assert listed[one_size_done["big"]]["eta_upper_bound"] is True


def test_an_eta_is_unmarked_once_two_sizes_are_measured(
    db_url: str, one_size_done: dict[str, int], monkeypatch: pytest.MonkeyPatch
) -> None:
    repo = Repo.open(db_url)
    worker = repo.get_run(one_size_done["big"]).worker_id
    assert worker is not None
    clock = freeze(monkeypatch)
    clock.time = lambda: T0 + 60.0
    repo.finish(one_size_done["big"], worker, FinalFigures(0.1, None, 10.0, 50.0, None, INPUTS))
    mid = repo.enqueue([queued(MID, "mid")]).added_ids[0]  # a third size: fitted, no bound
    repo.claim(worker)
    repo.heartbeat(worker, run_id=one_size_done["after"])
    dash = polling.read_dashboard(repo, T0 + 61.0)
    assert dash.run_ends[mid] is not None and dash.queue_eta_s is not None
    assert not polling.format_duration(dash.queue_eta_s).startswith("≤")
    assert not polling.format_duration(dash.run_ends[mid]).startswith("≤")
    assert not polling.format_duration(dash.run_ends[one_size_done["after"]]).startswith("≤")


@pytest.mark.parametrize(
    ("seconds", "said"),
    [(44.2, "≤45s"), (59.4, "≤1m"), (60.0, "≤1m"), (12 * 60 + 1, "≤13m"),
     (3 * 3600 + 4 * 60 + 30, "≤3h05m"), (10 * 3600 + 1, "≤11h")],
)  # fmt: skip
def test_an_upper_bound_is_said_to_the_minute_above_it(seconds: float, said: str) -> None:
    assert polling.format_duration(UpperBound(seconds)) == said
    assert len(said) <= 6  # the runs table's ETA column: as wide as "59m59s"


def test_a_smaller_size_than_the_one_measured_is_timed_at_its_pace(
    db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Proportional scaling below the measured size would time a tiny run at nothing; its
    # steps take no less than a fixed time, so the measured size's pace bounds it.
    clock = freeze(monkeypatch)
    repo = Repo.open(db_url)
    big, small = repo.enqueue([queued(BIG, "big"), queued(SMALL, "small")]).added_ids
    worker = repo.register_worker("gpu-box", 1234, "cpu")
    repo.claim(worker)
    clock.time = lambda: T0 + 20.0
    repo.finish(big, worker, FinalFigures(0.1, None, 10.0, 100.0, None, INPUTS))
    repo.heartbeat(worker)
    dash = polling.read_dashboard(repo, T0 + 20.0)
    assert dash.queue_eta_s == pytest.approx(20)  # 10 s of steps, 10 s beside them


def test_a_second_size_measured_faster_keeps_the_bound(
    db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A PReLU twin of the small run (8 more parameters) measured 1% faster, as noise on a
    # busy CPU has it: no slope fits, and the median of the two timed the big run at 20 s
    # where the small run alone gave it 6 minutes.
    twin = replace(SMALL, activation="prelu")
    assert count_params(SMALL) < count_params(twin) < count_params(BIG)
    clock = freeze(monkeypatch)
    repo = Repo.open(db_url)
    small, faster, big = repo.enqueue(
        [queued(SMALL, "small"), queued(twin, "prelu"), queued(BIG, "big")]
    ).added_ids
    worker = repo.register_worker("gpu-box", 1234, "cpu")
    now = T0
    for run, rate in ((small, 100.0), (faster, 101.0)):
        repo.claim(worker)
        now += 10 + INPUTS / rate  # its steps and 10 s beside them
        clock.time = lambda now=now: now
        repo.finish(run, worker, FinalFigures(0.1, None, 10.0, rate, None, INPUTS))
    repo.heartbeat(worker)
    dash = polling.read_dashboard(repo, now)
    # Each measured size bounds the big run's steps from above; the tighter bound holds.
    per_input = min(
        1 / 100 * count_params(BIG) / count_params(SMALL),
        1 / 101 * count_params(BIG) / count_params(twin),
    )
    assert dash.run_ends[big] == pytest.approx(10 + INPUTS * per_input)
    assert dash.run_ends[big] > 380
