"""The worker loop in-process with a fake trainer: recording, failures, cancel, signals."""

from __future__ import annotations

import argparse
import math
import os
import re
import signal
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import replace
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest
from queue_helpers import tiny_run, tiny_runs
from sqlalchemy import select, update
from sqlalchemy.exc import OperationalError
from sqlite_locks import write_lock_held

import core.early_signals as early_signals
import core.queue.patience as patience
import core.queue.repo as repo_module
import core.recording as recording
import core.worker as worker_module
from core.early_signals import count_early, take_over
from core.errors import ConfigError
from core.packing import Admission, Decision
from core.pauses import PauseWatch
from core.processes import SUPERVISOR_ENV
from core.queue import FinalFigures, MetricPoint, QueueError, Repo, RunRow, RunStatus
from core.queue.failures import FailureCause, failure_cause
from core.queue.repo import RUN, WORKER
from core.queue.samples import decode_samples
from core.train import FitCallbacks, FitResult, NonFiniteLoss, TrainPoint, ValidationPoint
from core.worker import StopFlags, Worker, failure_message, final_figures, run_worker
from core.worker_options import ClaimRules, add_worker_arguments

S = RunStatus
Trainer = Callable[[RunRow, FitCallbacks, Path], FitResult]


def fake_trainer(
    steps: int = 100,
    step_s: float = 0.0,
    on_step: Callable[[int], None] | None = None,
    memory_bytes: int | None = 0,
) -> Trainer:
    """Walks ``steps`` steps through the callbacks like fit() does; lr >= 100 diverges,
    lr 50 validates to NaN. ``memory_bytes`` None: a CPU's, not measured."""

    def train(run: RunRow, cb: FitCallbacks, checkpoint_dir: Path) -> FitResult:
        config = run.config
        for step in range(1, steps + 1):
            assert cb.should_stop is not None
            if cb.should_stop():
                # As fit(): a stopped run's folder is named too (its checkpoints so far).
                folder = str(checkpoint_dir)
                return FitResult(float("nan"), steps=step - 1, stopped=True, checkpoint_path=folder)
            if on_step is not None:
                on_step(step)
            if config.lr >= 100 and step == 3:
                raise NonFiniteLoss("loss became NaN at step 3", inputs_done=192)
            if config.weight_decay == 0.5:
                raise RuntimeError("boom\nsecond line")
            time.sleep(step_s)
            if step % cb.log_every == 0 and cb.on_train_loss is not None:
                point = TrainPoint(step, step * 64, 1 / step, config.lr, 1000.0, memory_bytes)
                cb.on_train_loss(point)
        loss = float("nan") if config.lr == 50 else 0.25
        if cb.on_validation is not None:
            cb.on_validation(ValidationPoint(1, steps, steps * 64, loss))
        grid = np.full((3, 2, 28, 28), 7, dtype=np.uint8)
        return FitResult(loss, inputs_seen=steps * 64, steps=steps, inputs_per_s=1000.0,
                         peak_memory_bytes=5, wall_seconds=1.5, param_count=383, samples=grid,
                         checkpoint_path=str(checkpoint_dir))  # fmt: skip

    return train


def make_worker(repo: Repo, trainer: Trainer, tmp_path: Path, **kwargs: Any) -> Worker:
    return Worker(repo, "cpu", trainer, tmp_path / "ck", StopFlags(), heartbeat_s=0.05, **kwargs)


def test_trains_every_run_and_records_figures_metrics_and_samples(
    repo: Repo, tmp_path: Path
) -> None:
    repo.enqueue(tiny_runs(3))
    worker = make_worker(repo, fake_trainer(), tmp_path)
    assert worker.loop(until_empty=True) == 3
    for run in repo.list_runs():
        assert run.status == S.SUCCEEDED and run.validation_loss == 0.25
        assert (run.param_count, run.inputs_done, run.train_seconds) == (383, 6400, 1.5)
        assert run.checkpoint_path == str(tmp_path / "ck" / "exp" / f"run-{run.id}")
        samples = repo.get_samples(run.id)
        assert samples is not None and decode_samples(samples, 1).shape == (3, 2, 28, 28)
        names = [m.name for m in repo.metrics_since(run.id)]
        assert names.count("train_loss") == 5 and names.count("val_loss") == 1
        assert {"lr", "inputs_per_s", "memory_bytes"} <= set(names)
    (row,) = repo.list_workers(include_gone=True)
    assert (row.state, row.runs_done, row.device) == ("stopped", 3, "cpu")


def test_a_worker_s_runs_record_a_point_by_steps_or_by_training_time(
    repo: Repo, tmp_path: Path
) -> None:
    # 20 steps of a big model on a CPU took 100 s: its progress stood at 0% that long.
    asked: list[tuple[int, float | None]] = []

    def trainer(run: RunRow, cb: FitCallbacks, folder: Path) -> FitResult:
        asked.append((cb.log_every, cb.log_every_s))
        return fake_trainer(steps=20)(run, cb, folder)

    repo.enqueue(tiny_runs(1))
    make_worker(repo, trainer, tmp_path).loop(until_empty=True)
    assert asked == [(20, 10.0)] == [(recording.LOG_EVERY, recording.LOG_EVERY_S)]


def test_a_run_whose_memory_is_not_measured_records_no_memory_points(
    repo: Repo, tmp_path: Path
) -> None:
    # A CPU run's memory_bytes were stored as zeros, which show --json and --curves
    # gave as measured figures.
    repo.enqueue(tiny_runs(1))
    make_worker(repo, fake_trainer(memory_bytes=None), tmp_path).loop(until_empty=True)
    (run,) = repo.list_runs()
    names = {m.name for m in repo.metrics_since(run.id)}
    assert run.status == S.SUCCEEDED and names == {"train_loss", "lr", "inputs_per_s", "val_loss"}


def test_a_running_run_shows_its_training_rate_so_far(repo: Repo, tmp_path: Path) -> None:
    # The in/s column showed a running run's wall-time pace (validation passes and data
    # loading in it), then jumped to the training steps' rate as the run ended.
    repo.enqueue(tiny_runs(1))
    seen: list[float | None] = []

    def on_step(step: int) -> None:
        if step == 45:  # points at steps 20 and 40 (1,000 inputs/s), flushed by now
            seen.append(repo.list_runs()[0].inputs_per_s)

    worker = make_worker(repo, fake_trainer(steps=50, on_step=on_step), tmp_path)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr("core.recording.FLUSH_ROWS", 1)  # flush at every point
        worker.loop(until_empty=True)
    assert seen == [pytest.approx(1000.0)]


def test_a_run_records_the_time_its_worker_stood_still_since_its_claim(
    repo: Repo, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A worker stopped 10 minutes (Ctrl-Z, docker pause) mid-run and resumed: the wall
    # time since the claim held the stop, and the run's pace and ETA read it as training.
    # The run now carries its stop, while it runs and once it has ended; not one of the
    # worker's from before the claim (its earlier run's).
    clock = [100.0]
    watch = PauseWatch(clock=lambda: clock[0], late_s=5.0)
    watch.last, watch.total = clock[0], 30.0  # started; an earlier run's stop of 30 s
    monkeypatch.setattr(recording, "PAUSES", watch, raising=False)
    repo.enqueue(tiny_runs(1))
    seen: list[float | None] = []

    def on_step(step: int) -> None:
        if step == 30:
            watch.total += 600.0  # stopped, then resumed
        if step == 45:  # the point at step 40 is flushed by now
            seen.append(repo.list_runs()[0].paused_s)

    worker = make_worker(repo, fake_trainer(steps=50, on_step=on_step), tmp_path)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr("core.recording.FLUSH_ROWS", 1)  # flush at every point
        worker.loop(until_empty=True)
    (run,) = repo.list_runs()
    assert seen == [600.0] and (run.status, run.paused_s) == (S.SUCCEEDED, 600.0)


def test_the_training_rate_so_far_counts_steps_only() -> None:
    # Each point's rate covers the inputs since the last *training* point: a validation
    # point between them (its inputs) made the rate read high.
    written: list[float | None] = []
    repo = SimpleNamespace(
        add_metrics=lambda run_id, points, done, **kw: written.append(kw["inputs_per_s"]),
    )
    recorder = recording.RunRecorder(repo, 1, StopFlags())  # type: ignore[arg-type]
    recorder.on_train_loss(TrainPoint(20, 1280, 0.5, 1e-3, 1000.0, 0))  # 1.28 s of steps
    recorder.on_validation(ValidationPoint(1, 25, 1600, 0.4))
    recorder.on_train_loss(TrainPoint(40, 2560, 0.4, 1e-3, 500.0, 0))  # 2.56 s more
    recorder.flush()
    assert written[-1] == pytest.approx(2560 / (1.28 + 2.56))


def test_a_run_s_training_clock_leaves_out_its_worker_s_waits_for_the_database() -> None:
    recorder = recording.RunRecorder(SimpleNamespace(), 1, StopFlags())  # type: ignore[arg-type]
    assert recorder.callbacks().waited_s is patience.waited_s  # the training thread's


def test_a_running_run_s_rate_is_its_recent_steps_rate() -> None:
    # The rate since the start kept a slow stretch for good: a run training at 213
    # inputs/s read 79 after the CPU had been busy, and its ETA was 2.7 times too long.
    written: list[float | None] = []
    repo = SimpleNamespace(
        add_metrics=lambda run_id, points, done, **kw: written.append(kw["inputs_per_s"]),
    )
    recorder = recording.RunRecorder(repo, 1, StopFlags())  # type: ignore[arg-type]
    inputs = 0
    for rate in [50.0] * 10 + [200.0] * 10:  # 1,280 inputs a point: 25.6 s, then 6.4 s
        inputs += 1280
        recorder.on_train_loss(TrainPoint(inputs // 64, inputs, 0.5, 1e-3, rate, 0))
    recorder.flush()
    assert written[-1] == pytest.approx(200.0)  # the last 30 s: 64 s at 200 inputs/s
    recorder = recording.RunRecorder(repo, 1, StopFlags())  # type: ignore[arg-type]
    recorder.on_train_loss(TrainPoint(20, 1280, 0.5, 1e-3, 100.0, 0))  # 12.8 s
    recorder.on_train_loss(TrainPoint(40, 2560, 0.5, 1e-3, 400.0, 0))  # 3.2 s
    recorder.flush()
    assert written[-1] == pytest.approx(2560 / 16.0)  # under 30 s in all: all of it


def test_the_last_steps_point_is_written_at_once() -> None:
    # The final validation pass, samples and checkpoints follow it: the run read 85% and
    # an ETA held at 12 s for a minute until the validation point was written.
    written: list[int | None] = []
    repo = SimpleNamespace(add_metrics=lambda run_id, points, done, **kw: written.append(done))
    recorder = recording.RunRecorder(repo, 1, StopFlags(), total_inputs=3000)  # type: ignore[arg-type]
    recorder.on_train_loss(TrainPoint(20, 1280, 0.5, 1e-3, 1000.0, 0))
    recorder.on_train_loss(TrainPoint(40, 2560, 0.5, 1e-3, 1000.0, 0))
    assert written == []  # batched as before
    recorder.on_train_loss(TrainPoint(47, 3008, 0.5, 1e-3, 1000.0, 0))  # whole batches
    assert written == [3008]


def test_largest_first_trains_the_most_work_first(repo: Repo, tmp_path: Path) -> None:
    short = repo.enqueue(tiny_runs(2)).added_ids
    long = repo.enqueue(tiny_runs(1, "long", max_inputs=4096)).added_ids
    trained: list[int] = []
    base = fake_trainer(steps=2)

    def trainer(run: RunRow, cb: FitCallbacks, checkpoint_dir: Path) -> FitResult:
        trained.append(run.id)
        return base(run, cb, checkpoint_dir)

    worker = make_worker(repo, trainer, tmp_path, rules=ClaimRules(largest_first=True))
    assert worker.loop(until_empty=True) == 3
    assert trained == [long[0], short[0], short[1]]  # then the oldest among equals


class StackingTrainer:
    """A fake trainer that can also train stacks: seed 1 of a stack diverges alone."""

    def __init__(self) -> None:
        self.single = fake_trainer(steps=4)
        self.stacks: list[list[int]] = []
        self.beating: list[tuple[int, ...]] = []
        self.heartbeat: Any = None  # the worker's, to see what it keeps fresh

    def __call__(self, run: RunRow, cb: FitCallbacks, checkpoint_dir: Path) -> FitResult:
        return self.single(run, cb, checkpoint_dir)

    def train_stack(
        self, runs: list[RunRow], callbacks: list[FitCallbacks], dirs: list[Path]
    ) -> list[FitResult | Exception]:
        self.stacks.append([run.id for run in runs])
        self.beating.append(self.heartbeat.run_ids)
        out: list[FitResult | Exception] = []
        for run, cb, folder in zip(runs, callbacks, dirs, strict=True):
            if run.seed == 1:
                out.append(NonFiniteLoss("loss became NaN at step 3", inputs_done=192))
            else:
                out.append(self.single(run, cb, folder))
        return out


def test_stack_claims_seeds_of_one_config_and_ends_each_run_on_its_own(
    repo: Repo, tmp_path: Path
) -> None:
    cell = repo.enqueue(tiny_runs(4)).added_ids
    other = repo.enqueue([tiny_run(0, lr=1e-3)]).added_ids[0]
    trainer = StackingTrainer()
    worker = make_worker(repo, trainer, tmp_path, rules=ClaimRules(stack=3))
    trainer.heartbeat = worker.heartbeat
    assert worker.loop(until_empty=True) == 5
    assert trainer.stacks == [list(cell[:3])]  # then seed 3 alone (no partner left), and `other`
    assert trainer.beating == [tuple(cell[:3])]  # every run of the stack kept fresh
    runs = {r.id: r for r in repo.list_runs()}
    assert runs[cell[1]].status == S.FAILED and runs[cell[1]].error == "loss became NaN at step 3"
    assert runs[cell[1]].inputs_done == 192  # a stack's diverged run too
    for run_id in (cell[0], cell[2], cell[3], other):
        assert runs[run_id].status == S.SUCCEEDED and runs[run_id].validation_loss == 0.25
        assert [m.name for m in repo.metrics_since(run_id)].count("val_loss") == 1
    assert worker.current == []


def test_a_run_cancelled_inside_a_stack_is_recorded_as_it_stops(repo: Repo, tmp_path: Path) -> None:
    cell = repo.enqueue(tiny_runs(3)).added_ids
    seen: list[tuple[S, S]] = []  # (cancelled run, a partner) while the stack still trains

    def train_stack(
        runs: list[RunRow], callbacks: list[FitCallbacks], dirs: list[Path]
    ) -> list[FitResult | Exception]:
        stopped = FitResult(float("nan"), inputs_seen=64, steps=1, stopped=True)
        assert callbacks[1].on_early_end is not None
        callbacks[1].on_early_end(stopped)  # as fit_stack does when should_stop says so
        seen.append((repo.get_run(runs[1].id).status, repo.get_run(runs[0].id).status))
        finished = FitResult(0.25, inputs_seen=6400, steps=100, param_count=383)
        return [finished, stopped, finished]

    trainer = StackingTrainer()
    trainer.train_stack = train_stack  # type: ignore[method-assign]
    worker = make_worker(repo, trainer, tmp_path, rules=ClaimRules(stack=3))
    assert worker.loop(until_empty=True) == 3  # each run ended once
    assert seen == [(S.CANCELLED, S.RUNNING)]
    assert [repo.get_run(i).status for i in cell] == [S.SUCCEEDED, S.CANCELLED, S.SUCCEEDED]
    assert repo.get_run(cell[1]).inputs_done == 64


def test_a_stack_is_no_larger_than_max_runs_allows(repo: Repo, tmp_path: Path) -> None:
    cell = repo.enqueue(tiny_runs(4)).added_ids
    trainer = StackingTrainer()
    worker = make_worker(repo, trainer, tmp_path, rules=ClaimRules(stack=4), max_runs=2)
    (row,) = repo.list_workers()  # how it claims, recorded for the queue's forecast
    assert (row.stack, row.largest_first, row.max_runs) == (4, False, 2)
    trainer.heartbeat = worker.heartbeat
    assert worker.loop(until_empty=True) == 2
    assert trainer.stacks == [list(cell[:2])]
    assert [r.status for r in repo.list_runs()][2:] == [S.QUEUED, S.QUEUED]


def test_a_stack_that_fails_as_a_whole_fails_each_of_its_runs(repo: Repo, tmp_path: Path) -> None:
    cell = repo.enqueue(tiny_runs(2)).added_ids
    trainer = StackingTrainer()

    def broken(*args: object) -> list[FitResult | Exception]:
        raise RuntimeError("out of memory\ndetails")

    trainer.train_stack = broken  # type: ignore[method-assign]
    worker = make_worker(repo, trainer, tmp_path, rules=ClaimRules(stack=2))
    assert worker.loop(until_empty=True) == 2
    runs = repo.list_runs()
    assert [(r.id, r.status, r.error) for r in runs] == [
        (run_id, S.FAILED, "RuntimeError: out of memory") for run_id in cell
    ]


@pytest.mark.parametrize("stack", [1, 3])
def test_a_run_whose_config_was_edited_into_nonsense_fails_alone(
    repo: Repo, tmp_path: Path, stack: int
) -> None:
    # Valid JSON, but no run config: a --stack worker stopped at its claim with the run
    # left queued for the next worker to stop on; without --stack the run failed alone.
    cell = repo.enqueue(tiny_runs(3)).added_ids
    with repo.engine.begin() as conn:
        conn.execute(update(RUN).where(RUN.c.id == cell[0]).values(config_json='{"layers": "x"}'))
    trainer = StackingTrainer()
    worker = make_worker(repo, trainer, tmp_path, rules=ClaimRules(stack=stack))
    trainer.heartbeat = worker.heartbeat
    assert worker.loop(until_empty=True) == 3
    runs = {r.id: r for r in repo.list_runs()}
    assert runs[cell[0]].status == S.FAILED
    assert "layers" in (runs[cell[0]].error or "")
    assert trainer.stacks == ([list(cell[1:])] if stack > 1 else [])  # the others stacked
    assert all(runs[i].status in (S.SUCCEEDED, S.FAILED) for i in cell[1:])


# A row edited by hand into what the worker cannot read: (column, value, what the
# error says), and whether only SQLite takes it (a value of the wrong kind).
DAMAGES = {
    "config not JSON": ("config_json", "{bad", "its config_json: Expecting", False),
    "config not a mapping": ("config_json", "[1]", "its config_json: not a mapping", False),
    "seed as text": ("seed", "abc", "its seed is 'abc', not a whole number", True),
    "priority as text": ("priority", "hi", "its priority is 'hi', not a whole number", True),
    "name as bytes": ("name", b"\x00\xff", "its name is 2 bytes of binary data, not text", True),
}


@pytest.mark.parametrize("stack", [1, 3])
@pytest.mark.parametrize("damage", DAMAGES)
def test_a_damaged_run_row_fails_that_run_and_the_worker_goes_on(
    repo: Repo, tmp_path: Path, capsys: pytest.CaptureFixture[str], damage: str, stack: int
) -> None:
    # Claimed, a row the worker could not read stopped it (rc 2, the claim rolled back):
    # the next worker claimed it and stopped too, and one bad row stopped them all.
    column, value, said, sqlite_only = DAMAGES[damage]
    if sqlite_only and repo.engine.dialect.name != "sqlite":
        pytest.skip("PostgreSQL refuses a value of the wrong kind")
    cell = repo.enqueue(tiny_runs(3)).added_ids
    bad = cell[1]
    mark = "?" if repo.engine.dialect.name == "sqlite" else "%s"  # the driver's placeholder
    with repo.engine.begin() as conn:  # as an SQL client's UPDATE stores it
        conn.exec_driver_sql(f"UPDATE run SET {column} = {mark} WHERE id = {mark}", (value, bad))
    worker = make_worker(repo, StackingTrainer(), tmp_path, rules=ClaimRules(stack=stack))
    worker.trainer.heartbeat = worker.heartbeat  # type: ignore[attr-defined]
    worker.repo.log = recording.say  # a worker's repo says what its claims do
    assert worker.loop(until_empty=True) == 2  # the two readable runs, trained
    with repo.engine.connect() as conn:
        rows = dict(conn.exec_driver_sql("SELECT id, status FROM run").all())
        error = conn.exec_driver_sql(f"SELECT error FROM run WHERE id = {bad}").scalar()
    assert rows[bad] == "failed"
    assert all(rows[i] != "queued" for i in cell), rows
    assert error.startswith(f"not trained: its row is damaged ({said}")
    assert error.endswith("put the value back with an SQL client, then retry it")
    assert f"run {bad}: not trained: its row is damaged ({said}" in capsys.readouterr().out


@pytest.mark.parametrize("state", ["idle", "running"])
def test_a_damaged_worker_row_is_named_once_and_every_worker_goes_on(
    db_path: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], state: str
) -> None:
    # Another worker's row edited by hand (SQLite takes text in its pid column): read by
    # each worker's stale-run recovery, it stopped the worker at its start, and every
    # other worker of the queue at its next recovery, with nothing trained.
    repo = Repo.open(str(db_path), busy_timeout_s=5)
    repo.enqueue(tiny_runs(2))
    with repo.engine.begin() as conn:  # as an SQL client's INSERT stores it
        conn.exec_driver_sql(
            "INSERT INTO worker (id, host, pid, device, state, started_at, last_seen_at,"
            " runs_done) VALUES ('ghost', 'h', 'abc', 'cpu', ?, ?, ?, 0)",
            (state, time.time(), time.time()),
        )
    worker = make_worker(repo, fake_trainer(), tmp_path)
    worker.repo.log = recording.say  # a worker's repo says what it leaves out
    assert worker.loop(until_empty=True) == 2  # recovered at its start and before leaving
    said = capsys.readouterr().out
    named = (
        "worker ghost's row is damaged (its pid is 'abc', not a whole number): put its value "
        "back, or delete the row with an SQL client; this worker goes on without it\n"
    )
    assert said.count(named) == 1, said
    repo.close()


def test_an_until_empty_worker_leaves_out_another_worker_s_damaged_running_run(
    repo: Repo, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # The queue empty, an --until-empty worker reads the running runs (whose worker may
    # have died moments ago): one edited by hand stopped it "on a database error", rc 2,
    # in place of "queue empty".
    theirs, ours = repo.enqueue(tiny_runs(2)).added_ids
    alive = repo.register_worker("h", 1, "cpu")
    assert repo.claim(alive) is not None  # run 1: another worker's, beating
    with repo.engine.begin() as conn:  # as an SQL client's UPDATE stores it
        conn.execute(update(RUN).where(RUN.c.id == theirs).values(config_json="{bad"))
    worker = make_worker(repo, fake_trainer(), tmp_path)
    worker.repo.log = recording.say
    with beating(repo, theirs):
        assert worker.loop(until_empty=True) == 1  # run 2 trained
    said = capsys.readouterr().out
    assert f"run {theirs}'s row is damaged (its config_json: Expecting" in said
    assert "queue empty" in said
    with repo.engine.connect() as conn:
        assert conn.execute(select(RUN.c.status).where(RUN.c.id == theirs)).scalar() == "running"
    assert repo.get_run(ours).status == S.SUCCEEDED


def test_metric_rows_are_written_in_batches(
    repo: Repo, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[int] = []
    original = Repo.add_metrics

    def counting(self: Repo, run_id: int, points: list, *args: object, **kwargs: bool) -> None:
        calls.append(len(points))
        original(self, run_id, points, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(Repo, "add_metrics", counting)
    repo.enqueue([tiny_run()])
    make_worker(repo, fake_trainer(steps=2000), tmp_path).loop(until_empty=True)
    # 100 train points x 4 metrics + 1 validation: a handful of inserts, not 401.
    assert sum(calls) == 401
    assert len(calls) <= 4


def test_failures_are_recorded_and_the_worker_goes_on(repo: Repo, tmp_path: Path) -> None:
    ids = repo.enqueue(
        [tiny_run(0, lr=1000.0), tiny_run(1, weight_decay=0.5), tiny_run(2)]
    ).added_ids
    assert make_worker(repo, fake_trainer(), tmp_path).loop(until_empty=True) == 3
    nan, boom, fine = (repo.get_run(i) for i in ids)
    assert (nan.status, nan.error) == (S.FAILED, "loss became NaN at step 3")
    assert nan.inputs_done == 192  # how far it trained: its progress read 0% before
    assert (boom.status, boom.error) == (S.FAILED, "RuntimeError: boom")
    assert fine.status == S.SUCCEEDED
    # A failed run's folder is recorded too: `rm` said only "if made", the detail "—".
    for run in (nan, boom):
        assert run.checkpoint_path is not None and Path(run.checkpoint_path).is_dir()
        assert Path(run.checkpoint_path).name == f"run-{run.id}"


def test_a_worker_whose_run_went_to_another_stops_it_and_records_nothing(
    repo: Repo, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # Paused past the heartbeat's limit, its run recovered as lost, retried and claimed
    # by another worker: resumed, it trained on beside that one, into its attempt.
    monkeypatch.setattr(recording, "CANCEL_CHECK_S", 0.0)
    monkeypatch.setattr(recording, "FLUSH_S", 0.0)
    run_id = repo.enqueue([tiny_run()]).added_ids[0]
    other = repo.register_worker("box", 2, "cpu")

    def taken_over(step: int) -> None:
        if step == 3:  # what recovery, `retry` and the other worker's claim do meanwhile
            owner = repo.get_run(run_id).worker_id
            # The retry comes before the paused worker's next heartbeat: a beat between
            # the two revives the run as its own (Repo._revive), and retry then read it
            # running (1 failure in 3 runs); that order is other tests' case.
            with monkeypatch.context() as no_revival:
                no_revival.setattr(repo, "_revive", lambda *args: [])
                assert owner is not None and repo.fail(run_id, owner, "worker lost")
                repo.retry([run_id])
            assert repo.claim(other) is not None
            # The other worker trains it on: alive, its run is left to it at "queue empty".
            others_beat.enter_context(beating(repo, run_id))

    worker = make_worker(repo, fake_trainer(steps=100, on_step=taken_over), tmp_path)
    with ExitStack() as others_beat:
        assert worker.loop(until_empty=True) == 1
    run = repo.get_run(run_id)
    assert (run.status, run.worker_id, run.inputs_done) == (S.RUNNING, other, 0)
    assert repo.metrics_since(run_id) == []  # none of the paused worker's rows
    # Nobody cancelled it ("run 1: cancelled, but ..."): it stopped.
    assert (
        f"run {run_id}: stopped, but it is no longer this worker's run" in capsys.readouterr().out
    )


def test_a_validation_loss_of_nan_fails_its_run_and_the_worker_goes_on(
    repo: Repo, tmp_path: Path
) -> None:
    # SQLite stored the NaN point as NULL, refused by the column: the error stopped the
    # worker, left the run "running", and stopped the next worker that took it again.
    ids = repo.enqueue([tiny_run(0, lr=50.0), tiny_run(1)]).added_ids
    assert make_worker(repo, fake_trainer(), tmp_path).loop(until_empty=True) == 2
    diverged, fine = (repo.get_run(i) for i in ids)
    assert (diverged.status, diverged.error) == (
        S.FAILED,
        "validation loss is not finite (NaN/inf)",
    )
    assert failure_cause(diverged.error) == FailureCause.DIVERGED
    assert "val_loss" not in {m.name for m in repo.metrics_since(ids[0])}
    assert fine.status == S.SUCCEEDED


def test_a_database_error_stops_the_worker_and_puts_its_run_back(
    repo: Repo, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # It stopped and left the run "running", held by a stopped worker, for good.
    (run_id,) = repo.enqueue([tiny_run()]).added_ids

    def refused(step: int) -> None:
        if step == 5:
            raise QueueError("database runs.db: disk is full")

    worker = make_worker(repo, fake_trainer(on_step=refused), tmp_path)
    with pytest.raises(QueueError, match="disk is full"):
        worker.loop(until_empty=True)
    assert repo.get_run(run_id).status == S.QUEUED
    assert [w.state for w in repo.list_workers(include_gone=True)] == ["stopped"]
    said = capsys.readouterr().out
    assert f"stopping on a database error after 0 run(s); run {run_id} back in the queue" in said
    assert "stopped after" not in said  # not a clean stop


def test_a_bug_outside_training_fails_the_worker_s_run_and_stops_it(
    repo: Repo, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # It left the run "running" under a stopped worker, found lost only by a later start.
    (run_id,) = repo.enqueue([tiny_run()]).added_ids

    def broken_end(*_: Any) -> None:
        raise RuntimeError("a bug in end()")

    monkeypatch.setattr(Worker, "end", broken_end)
    with pytest.raises(RuntimeError, match="a bug in end"):
        make_worker(repo, fake_trainer(steps=5), tmp_path).loop(until_empty=True)
    run = repo.get_run(run_id)
    assert (run.status, run.error) == (S.FAILED, "worker error: RuntimeError: a bug in end()")
    assert [w.state for w in repo.list_workers(include_gone=True)] == ["stopped"]


def test_a_missing_dataset_stops_the_worker_and_fails_no_run(
    repo: Repo, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # This machine's data, not the run: failing each queued run in turn emptied the
    # queue within seconds. The run goes back (no attempt counted); the worker stops.
    from core.errors import NoDataHere

    ids = repo.enqueue(tiny_runs(3)).added_ids

    def no_data(run: RunRow, cb: FitCallbacks, checkpoint_dir: Path) -> FitResult:
        raise NoDataHere("FashionMNIST not found; looked in:\n  - $RESCONV_DATA: unset\nFix: ...")

    with pytest.raises(NoDataHere, match="FashionMNIST not found"):
        make_worker(repo, no_data, tmp_path).loop(until_empty=True)
    runs = [repo.get_run(i) for i in ids]
    assert [(r.status, r.attempts) for r in runs] == [(S.QUEUED, 0)] * 3
    assert repo.list_workers() == []  # it stopped (its row says so)
    out = capsys.readouterr().out
    assert "FashionMNIST not found: run 1 back in the queue, none failed; stopping" in out


@pytest.mark.parametrize("stack", [1, 2])
def test_a_full_disk_puts_the_runs_back_and_stops_the_worker(
    repo: Repo, tmp_path: Path, capsys: pytest.CaptureFixture[str], stack: int
) -> None:
    # Checkpoints on a full disk: each queued run failed in turn within seconds, "error:
    # OSError: [Errno 28] No space left on device", and the worker went on to the next.
    import errno

    from core.errors import DiskFull

    ids = repo.enqueue(tiny_runs(3)).added_ids

    def no_room(run: RunRow, cb: FitCallbacks, checkpoint_dir: Path) -> FitResult:
        raise OSError(errno.ENOSPC, "No space left on device", str(checkpoint_dir / "last.pt"))

    class StackTrainer:
        def __call__(self, run: RunRow, cb: FitCallbacks, checkpoint_dir: Path) -> FitResult:
            return no_room(run, cb, checkpoint_dir)

        def train_stack(self, runs: Any, cbs: Any, dirs: Any) -> Any:
            return no_room(runs[0], cbs[0], dirs[0])

    trainer: Any = StackTrainer() if stack > 1 else no_room
    worker = make_worker(repo, trainer, tmp_path, rules=ClaimRules(stack=stack))
    with pytest.raises(DiskFull, match="No space left on device: .*last.pt") as raised:
        worker.loop(until_empty=True)
    runs = [repo.get_run(i) for i in ids]
    assert [(r.status, r.attempts) for r in runs] == [(S.QUEUED, 0)] * 3
    assert repo.list_workers() == []  # it stopped (its row says so)
    back = "runs 1, 2" if stack > 1 else "run 1"
    assert f"{back} back in the queue, none failed; stopping" in capsys.readouterr().out
    # The error the command prints said "run run 1" (and "run runs 1, 2") once the ids
    # came with their noun.
    assert f"): {back} back in the queue, none failed; free some space" in str(raised.value)


@pytest.mark.parametrize("code", ["EACCES", "EROFS"])
def test_a_checkpoint_folder_it_may_not_write_puts_the_runs_back_and_stops_the_worker(
    repo: Repo, tmp_path: Path, capsys: pytest.CaptureFixture[str], code: str
) -> None:
    # Another user's experiment folder on a shared box: each queued run failed in turn
    # within a second, "PermissionError: [Errno 13] Permission denied: .../s1/run-2".
    import errno
    import os

    from core.errors import CheckpointsNotWritable

    ids = repo.enqueue(tiny_runs(3)).added_ids
    number = getattr(errno, code)

    def refused(run: RunRow, cb: FitCallbacks, checkpoint_dir: Path) -> FitResult:
        raise OSError(number, os.strerror(number), str(checkpoint_dir / ".last.pt.afwnoau4"))

    worker = make_worker(repo, refused, tmp_path)
    with pytest.raises(CheckpointsNotWritable) as raised:
        worker.loop(until_empty=True)
    assert f"{os.strerror(number)}: {tmp_path}" in str(raised.value)
    fix = {  # the folder to fix is the one holding the file: not the file
        "EACCES": f"make {tmp_path / 'ck' / 'exp' / 'run-1'} writable for this user (or pick ",
        "EROFS": "its file system is mounted read-only: pick another --checkpoints folder, then",
    }[code]
    assert fix in str(raised.value), raised.value
    assert [(r.status, r.attempts) for r in map(repo.get_run, ids)] == [(S.QUEUED, 0)] * 3
    assert "run 1 back in the queue, none failed; stopping" in capsys.readouterr().out


def test_a_checkpoint_root_written_with_dotdot_still_stops_the_worker(
    repo: Repo, tmp_path: Path
) -> None:
    # `--db ../runs.db`: the root kept its '..', the error's path lost it, and every run
    # failed "Read-only file system" as before.
    import errno

    from core.errors import CheckpointsNotWritable

    repo.enqueue(tiny_runs(2))
    (tmp_path / "sub").mkdir()
    root = tmp_path / "sub" / ".." / "ck"

    def refused(run: RunRow, cb: FitCallbacks, checkpoint_dir: Path) -> FitResult:
        raise OSError(errno.EROFS, "Read-only file system", f"{root}/exp/run-{run.id}")

    worker = Worker(repo, "cpu", refused, root, StopFlags(), heartbeat_s=0.05)
    with pytest.raises(CheckpointsNotWritable):
        worker.loop(until_empty=True)
    assert [r.status for r in repo.list_runs()] == [S.QUEUED] * 2


def test_a_permission_error_elsewhere_is_the_run_s_own_failure(repo: Repo, tmp_path: Path) -> None:
    # Not under the checkpoint root: nothing says the next run would fail alike.
    run_id = repo.enqueue([tiny_run()]).added_ids[0]

    def refused(run: RunRow, cb: FitCallbacks, checkpoint_dir: Path) -> FitResult:
        raise PermissionError(13, "Permission denied", "/etc/shadow")

    make_worker(repo, refused, tmp_path).loop(until_empty=True)
    failed = repo.get_run(run_id)
    assert failed.status == S.FAILED and "Permission denied" in (failed.error or "")


def test_a_relative_checkpoint_folder_is_stored_absolute(
    repo: Repo, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The dashboard and other shells read the path from other working folders.
    monkeypatch.chdir(tmp_path)
    run_id = repo.enqueue([tiny_run()]).added_ids[0]
    Worker(repo, "cpu", fake_trainer(), Path("ck"), StopFlags(), heartbeat_s=0.05).loop(True)
    assert repo.get_run(run_id).checkpoint_path == str(tmp_path / "ck" / "exp" / f"run-{run_id}")


@pytest.mark.parametrize("data", ["only MNIST in --data-dir", "damaged $RESCONV_DATA"])
def test_a_data_problem_puts_the_run_back_and_stops_the_worker(
    repo: Repo,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    idx_writer: Any,
    capsys: pytest.CaptureFixture[str],
    data: str,
) -> None:
    # Not only no data at all: a --data-dir holding the other dataset, or a damaged file,
    # failed each queued run in turn (the whole queue within seconds) and exited 0.
    import core.data as data_module
    from core.errors import NoDataHere
    from core.fit_trainer import FitTrainer

    real = data_module.load_datasets
    monkeypatch.setattr(data_module, "load_datasets", lambda *a, **k: real(*a, **k, download=None))
    monkeypatch.setattr(data_module, "DEBIAN_DATASETS", tmp_path / "no-debian")
    data_dir = None
    if data == "only MNIST in --data-dir":
        data_dir = str(idx_writer(tmp_path / "m", train=8, test=4, layout="torchvision",
                                  class_name="MNIST"))  # fmt: skip
        why = f"--data-dir {data_dir}: no train-images-idx3-ubyte"
    else:
        folder = idx_writer(tmp_path / "f", train=8, test=4)
        (folder / "t10k-images-idx3-ubyte.gz").write_bytes(b"")
        monkeypatch.setenv("RESCONV_DATA", str(folder))
        why = f"{folder}/t10k-images-idx3-ubyte.gz is empty (0 bytes)"
    ids = repo.enqueue(tiny_runs(3)).added_ids
    with pytest.raises(NoDataHere, match=re.escape(why)):
        make_worker(repo, FitTrainer("cpu", data_dir), tmp_path).loop(until_empty=True)
    assert [(repo.get_run(i).status, repo.get_run(i).attempts) for i in ids] == [(S.QUEUED, 0)] * 3
    assert "run 1 back in the queue, none failed; stopping" in capsys.readouterr().out


def test_cancel_through_the_database_stops_the_running_run(repo: Repo, tmp_path: Path) -> None:
    run_id = repo.enqueue([tiny_run()]).added_ids[0]
    started = threading.Event()
    trainer = fake_trainer(steps=100_000, step_s=0.001, on_step=lambda s: started.set())
    worker = make_worker(repo, trainer, tmp_path)
    thread = threading.Thread(target=worker.loop, kwargs={"until_empty": True})
    thread.start()
    assert started.wait(10)
    asked = time.monotonic()
    repo.request_cancel([run_id])
    thread.join(timeout=10)
    assert not thread.is_alive() and time.monotonic() - asked < 5
    assert repo.get_run(run_id).status == S.CANCELLED


def test_first_signal_requeues_the_run_and_stops_the_worker(repo: Repo, tmp_path: Path) -> None:
    ids = repo.enqueue(tiny_runs(2)).added_ids
    flags_holder: list[StopFlags] = []

    def on_step(step: int) -> None:
        if step == 30:
            flags_holder[0].handle(signal.SIGTERM, None)

    worker = make_worker(repo, fake_trainer(on_step=on_step), tmp_path)
    flags_holder.append(worker.flags)
    assert worker.loop() == 0
    first, second = (repo.get_run(i) for i in ids)
    assert (first.status, first.worker_id, first.attempts) == (S.QUEUED, None, 1)
    assert repo.metrics_since(first.id) == []  # it trains again from the start
    # Its folder stays named: what it saved so far is on disk, and the run takes it back.
    assert first.checkpoint_path == str(tmp_path / "ck" / "exp" / f"run-{first.id}")
    assert second.status == S.QUEUED and second.attempts == 0
    assert repo.counts_by_status()[S.RUNNING] == 0
    assert repo.list_workers(include_gone=True)[0].state == "stopped"


def test_a_stack_put_back_for_missing_data_is_said_as_runs(
    repo: Repo, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # A stack of seeds goes back whole; it was said "run 1, 2 back in the queue".
    from core.errors import NoDataHere

    class NoData(StackingTrainer):
        def train_stack(
            self, runs: list[RunRow], callbacks: list[FitCallbacks], dirs: list[Path]
        ) -> list[FitResult | Exception]:
            raise NoDataHere("FashionMNIST not found; looked in:\n  - here\nFix: ...")

    ids = repo.enqueue(tiny_runs(2)).added_ids
    with pytest.raises(NoDataHere):
        make_worker(repo, NoData(), tmp_path, rules=ClaimRules(stack=2)).loop(until_empty=True)
    assert [repo.get_run(i).status for i in ids] == [S.QUEUED] * 2
    said = f"FashionMNIST not found: runs {ids[0]}, {ids[1]} back in the queue, none failed"
    assert said in capsys.readouterr().out


def after_each_claim(
    monkeypatch: pytest.MonkeyPatch, repo: Repo, method: str, then: Callable[[str], None]
) -> None:
    """``repo``'s claim ``method`` (claim, claim_stack) calls ``then(worker_id)`` once it
    has claimed: what happened while the claim waited for the write lock."""
    real_claim = getattr(repo, method)

    def claimed_then(worker_id: str, *args: Any, **kwargs: Any) -> Any:
        claimed = real_claim(worker_id, *args, **kwargs)
        then(worker_id)
        return claimed

    monkeypatch.setattr(repo, method, claimed_then)


def test_a_signal_during_the_claim_puts_the_runs_back_unstarted(
    repo: Repo, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # `stop` beside workers started at once: the SIGTERM came while the claim waited for
    # the write lock, and the worker started the run it got, then put it back at its
    # first step, an attempt counted ("run 16: started", "interrupted, queued again").
    ids = repo.enqueue(tiny_runs(2)).added_ids
    trained: list[int] = []

    def trainer(run: RunRow, cb: FitCallbacks, checkpoint_dir: Path) -> FitResult:
        trained.append(run.id)
        return fake_trainer()(run, cb, checkpoint_dir)

    worker = make_worker(repo, trainer, tmp_path)
    after_each_claim(
        monkeypatch, repo, "claim", lambda _: worker.flags.handle(signal.SIGTERM, None)
    )
    assert worker.loop() == 0
    assert trained == []
    runs = [repo.get_run(i) for i in ids]
    assert [(r.status, r.attempts, r.worker_id) for r in runs] == [(S.QUEUED, 0, None)] * 2
    assert repo.list_workers(include_gone=True)[0].state == "stopped"


def test_a_run_cancelled_during_the_claim_is_not_said_back_in_the_queue(
    repo: Repo, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # Every run claimed was said "back in the queue", put back or not: one cancelled
    # meanwhile (its worker taken for dead) stays cancelled, and is said so.
    ids = repo.enqueue(tiny_runs(2)).added_ids
    worker = make_worker(repo, StackingTrainer(), tmp_path, rules=ClaimRules(stack=2))

    def cancelled_meanwhile(worker_id: str) -> None:
        repo.request_cancel([ids[1]], dead_worker_ids=[worker_id])
        worker.flags.handle(signal.SIGTERM, None)

    after_each_claim(monkeypatch, repo, "claim_stack", cancelled_meanwhile)
    assert worker.loop() == 0
    assert [repo.get_run(i).status for i in ids] == [S.QUEUED, S.CANCELLED]
    said = f"run {ids[0]} back in the queue (run {ids[1]} no longer this worker's), not started"
    assert said in capsys.readouterr().out


def test_a_second_signal_while_unstarted_runs_go_back_gives_them_back(
    repo: Repo, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The first signal came during the claim; the second while the claimed runs went back
    # (their put_back waiting on the write lock): the worker did not count them as its
    # own yet, so the second signal's give-back left them "running" under a "stopped"
    # worker, found by no one.
    ids = repo.enqueue(tiny_runs(2)).added_ids
    worker = make_worker(repo, fake_trainer(), tmp_path)
    given_back: list[worker_module.GivenBack] = []
    worker.flags.on_second = lambda: given_back.append(worker.give_back_quietly())
    real_put_back = repo.put_back
    after_each_claim(monkeypatch, repo, "claim", lambda _: worker.flags.note(signal.SIGTERM, 0.0))

    def signalled_again(run_id: int, worker_id: str) -> bool:
        worker.flags.note(signal.SIGTERM, 100.0)  # as leave_now, short of its os._exit
        return real_put_back(run_id, worker_id)

    monkeypatch.setattr(repo, "put_back", signalled_again)
    assert worker.loop() == 0
    assert given_back == [worker_module.GivenBack(back=[ids[0]])]
    runs = [repo.get_run(i) for i in ids]
    assert [(r.status, r.worker_id) for r in runs] == [(S.QUEUED, None)] * 2


def test_a_run_cancelled_then_stopped_before_the_worker_read_it_ends_cancelled(
    repo: Repo, tmp_path: Path
) -> None:
    # `cancel 5; stop`: the worker was interrupted before it read the cancel (at most once
    # a second), queued the run again, and the queue forgot the cancel: it trained again.
    ids = repo.enqueue(tiny_runs(2)).added_ids
    flags_holder: list[StopFlags] = []

    def on_step(step: int) -> None:
        if step == 20:
            repo.request_cancel([ids[0]])
        if step == 30:
            flags_holder[0].handle(signal.SIGTERM, None)

    worker = make_worker(repo, fake_trainer(on_step=on_step), tmp_path)
    flags_holder.append(worker.flags)
    assert worker.loop() == 1
    assert repo.get_run(ids[0]).status == S.CANCELLED
    assert repo.get_run(ids[1]).status == S.QUEUED
    # A second signal's quick requeue (no figures) cancels it too, in the same write: a
    # kept request sat "queued ⨯" until a worker trained the run (review).
    again = repo.claim(worker.id)
    assert again is not None
    repo.request_cancel([again.id])
    assert repo.requeue(again.id, worker.id) == S.CANCELLED
    assert repo.get_run(again.id).status == S.CANCELLED
    assert repo.requeue(again.id, worker.id) is None  # no longer its run


def test_stale_runs_of_dead_workers_are_recovered_at_start(
    repo: Repo, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import socket

    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True)  # fmt: skip
    real_time = time.time
    with monkeypatch.context() as patch:  # it beat last 15 s ago, then was killed
        patch.setattr(repo_module, "time", SimpleNamespace(time=lambda: real_time() - 15))
        ghost = repo.register_worker(socket.gethostname(), int(dead.stdout), "cpu")
        lost_id = repo.enqueue([tiny_run(0)]).added_ids[0]
        assert repo.claim(ghost) is not None
    repo.enqueue([tiny_run(1)])
    make_worker(repo, fake_trainer(), tmp_path).loop(until_empty=True)
    lost = repo.get_run(lost_id)
    assert (lost.status, lost.error) == (S.FAILED, "worker lost")
    repo.retry([lost_id])
    make_worker(repo, fake_trainer(), tmp_path).loop(until_empty=True)
    assert repo.get_run(lost_id).status == S.SUCCEEDED


def run_of_a_worker_just_killed(repo: Repo, monkeypatch: pytest.MonkeyPatch) -> int:
    """A run held by a worker of this machine that beat just now and was then killed
    (kill -9: its row says live); it counts as silent after 1 s (``SILENT_FOR_S``)."""
    import socket

    import core.processes as processes

    monkeypatch.setattr(processes, "SILENT_FOR_S", 1.0)
    monkeypatch.setattr(worker_module, "SILENT_FOR_S", 1.0)
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True)  # fmt: skip
    ghost = repo.register_worker(socket.gethostname(), int(dead.stdout), "cpu")
    lost_id = repo.enqueue([tiny_run(0)]).added_ids[0]
    assert repo.claim(ghost) is not None
    return lost_id


def test_an_until_empty_worker_leaves_no_run_of_a_worker_that_just_died_running(
    repo: Repo, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Started right after a reboot, a worker found the dead worker's run not yet lost
    # (silent under 10 s), trained the rest, and said "queue empty" beside it "running".
    lost_id = run_of_a_worker_just_killed(repo, monkeypatch)
    make_worker(repo, fake_trainer(), tmp_path).loop(until_empty=True)
    lost = repo.get_run(lost_id)
    assert (lost.status, lost.error) == (S.FAILED, "worker lost")


def test_an_until_empty_worker_leaves_no_run_running_of_a_worker_that_died_meanwhile(
    repo: Repo, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Chaos test: a worker killed (kill -9) 3 s after it claimed a run; the next
    # `worker --until-empty` found it silent under 10 s at its start, trained the other
    # run for 6 s, and at "queue empty" the dead one had been silent over 10 s: no wait
    # was needed, so no recovery was made either, and its run stayed "running".
    lost_id = run_of_a_worker_just_killed(repo, monkeypatch)
    repo.enqueue([tiny_run(1)])
    # Its run outlasts the dead worker's silence (no recovery between runs meanwhile).
    trainer = fake_trainer(steps=10, step_s=0.15)
    assert make_worker(repo, trainer, tmp_path).loop(until_empty=True) == 1
    lost = repo.get_run(lost_id)
    assert (lost.status, lost.error) == (S.FAILED, "worker lost")


def test_a_busy_worker_recovers_a_dead_box_s_run_between_its_runs(
    repo: Repo, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # Several GPU boxes on one queue, all busy: none is ever idle, yet a run whose box
    # died must not stay "running" for good. (Looks a beat apart, not at every beat: a
    # look's gap past two RECOVER_EVERY_S and a beat reads as this worker stopped.)
    monkeypatch.setattr(worker_module, "RECOVER_EVERY_S", 0.05)
    other_box = repo.register_worker("other-box", 1, "cuda:0")
    lost_id = repo.enqueue([tiny_run(0)]).added_ids[0]
    assert repo.claim(other_box) is not None  # beats now, then never again
    repo.enqueue(tiny_runs(3)[1:])
    worker = make_worker(repo, fake_trainer(steps=10, step_s=0.05), tmp_path, stale_after_s=0.3)
    assert worker.loop(until_empty=True) == 2  # busy until the queue is empty
    lost = repo.get_run(lost_id)
    assert (lost.status, lost.error) == (S.FAILED, "worker lost")
    # Its log names whose run it was: "run 1: worker lost" read as its own run dead.
    said = f"run {lost_id} of worker other-box pid 1: that worker lost (marked failed; "
    assert said in capsys.readouterr().out


@contextmanager
def beating(repo: Repo, run_id: int) -> Iterator[None]:
    """``run_id``'s worker, elsewhere, beats for it every 0.3 s meanwhile."""
    alive = threading.Event()
    alive.set()

    def beat() -> None:
        while alive.is_set():
            with repo._write() as conn:
                conn.execute(update(RUN).where(RUN.c.id == run_id).values(heartbeat_at=time.time()))
            time.sleep(0.3)

    thread = threading.Thread(target=beat)
    thread.start()
    try:
        yield
    finally:
        alive.clear()
        thread.join()


def run_of_another_box(repo: Repo, beat_age_s: float) -> int:
    """A run claimed by a worker of another box whose last beat reads ``beat_age_s`` old
    by the database's clock (under SURELY_LOST_AFTER_S: a worker's first look leaves it)."""
    other_box = repo.register_worker("other-box", 1, "cuda:0")
    (run_id,) = repo.enqueue([tiny_run(0)]).added_ids
    assert repo.claim(other_box) is not None
    with repo._write() as conn:
        conn.execute(
            update(RUN).where(RUN.c.id == run_id).values(heartbeat_at=time.time() - beat_age_s)
        )
    return run_id


def test_a_short_until_empty_worker_judges_a_dead_box_s_young_run_before_it_leaves(
    repo: Repo, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # A box died a minute ago; a `worker --until-empty` trained the one queued run in a
    # few seconds and said "queue empty" beside the dead run still "running": it had
    # watched its beat for less than the stale limit, and its first look judges by age
    # only past 10 minutes. Now it waits out the rest of the limit, and says so.
    lost_id = run_of_another_box(repo, beat_age_s=60)
    repo.enqueue([tiny_run(1)])
    worker = make_worker(repo, fake_trainer(), tmp_path, stale_after_s=1.0)
    began = time.monotonic()
    assert worker.loop(until_empty=True) == 1
    assert time.monotonic() - began < 5  # the rest of the limit, not more
    lost = repo.get_run(lost_id)
    assert (lost.status, lost.error) == (S.FAILED, "worker lost")
    said = capsys.readouterr().out
    assert (
        f"waiting up to 1 s to see whether run {lost_id} (worker other-box pid 1) still beats: "
        "a run of another worker is judged lost once its heartbeat has not changed for 1 s "
        "(Ctrl-C leaves it to the next worker)"
    ) in said
    assert f"run {lost_id} of worker other-box pid 1: that worker lost" in said
    assert said.index("waiting up to") < said.index("queue empty")


def test_a_short_until_empty_worker_leaves_a_live_box_s_run_as_soon_as_it_beats(
    repo: Repo, tmp_path: Path
) -> None:
    # Another box trains on: its beat changes within a beat, and the worker leaves then,
    # not after the whole limit.
    live_id = run_of_another_box(repo, beat_age_s=1)
    repo.enqueue([tiny_run(1)])
    worker = make_worker(repo, fake_trainer(), tmp_path, stale_after_s=20.0)
    with beating(repo, live_id):
        began = time.monotonic()
        assert worker.loop(until_empty=True) == 1
        assert time.monotonic() - began < 5
    assert repo.get_run(live_id).status == S.RUNNING


def test_a_stop_ends_an_until_empty_worker_s_wait_for_another_box_s_run(
    repo: Repo, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Ctrl-C while it waits to judge another box's run: it exits at once, the run left
    # for the next worker, and named.
    run_id = run_of_another_box(repo, beat_age_s=60)
    worker = make_worker(repo, fake_trainer(), tmp_path, stale_after_s=20.0)
    timer = threading.Timer(0.5, worker.flags.handle, (signal.SIGINT, None))
    timer.start()
    began = time.monotonic()
    try:
        assert worker.loop(until_empty=True) == 0
    finally:
        timer.cancel()
    assert time.monotonic() - began < 3
    assert repo.get_run(run_id).status == S.RUNNING
    said = capsys.readouterr().out
    assert f"run {run_id} (worker other-box pid 1) not judged (stopped): left running" in said


def test_a_training_worker_recovers_a_dead_box_s_run_while_it_trains(
    repo: Repo, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # Two GPU boxes on one queue, one dies: its run stayed "running" until the other's
    # run ended (hours), as only a worker between runs or idle looked.
    monkeypatch.setattr(worker_module, "RECOVER_EVERY_S", 0.1)
    other_box = repo.register_worker("other-box", 1, "cuda:0")
    (own_id,) = repo.enqueue([tiny_run(0)]).added_ids
    lost_id = -1
    seen: list[RunStatus] = []

    def on_step(step: int) -> None:
        nonlocal lost_id
        if step == 1:  # the other box takes a run now, beats, then never again
            (lost_id,) = repo.enqueue([tiny_run(1)]).added_ids
            assert repo.claim(other_box) is not None
        if step == 30:  # 1.5 s on: silent past 0.3 s, and looked at since
            seen.append(repo.get_run(lost_id).status)

    trainer = fake_trainer(steps=40, step_s=0.05, on_step=on_step)
    worker = make_worker(repo, trainer, tmp_path, stale_after_s=0.3)
    assert worker.loop(until_empty=True) == 1
    assert seen == [S.FAILED]  # while the worker trained, not after
    assert repo.get_run(lost_id).error == "worker lost"
    assert repo.get_run(own_id).status == S.SUCCEEDED  # its own run is never judged
    said = f"run {lost_id} of worker other-box pid 1: that worker lost (marked failed; "
    assert said in capsys.readouterr().out


def test_a_refused_look_for_lost_runs_waits_for_nothing_and_is_tried_at_the_next(
    repo: Repo, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The look runs on the heartbeat thread: a patient wait there (up to 300 s) would
    # keep the worker's own runs from beating, and have them found lost in turn.
    (run_id,) = repo.enqueue([tiny_run()]).added_ids
    other = repo.register_worker("elsewhere", 1, "cpu")
    assert repo.claim(other) is not None
    with repo._write() as conn:  # its last beat a minute ago: its box died
        conn.execute(update(RUN).values(heartbeat_at=time.time() - 60))
    repo.reconnect_s = worker_module.RECONNECT_S  # a worker's repo: patient
    worker = make_worker(repo, fake_trainer(), tmp_path, stale_after_s=0.2)
    worker.heartbeat.run_ids = (run_id + 1,)  # training a run of its own
    worker.looked_at = -math.inf
    with monkeypatch.context() as patch:
        away_until(repo, patch, 3600)
        began = time.monotonic()
        worker.recover_while_training()  # no error: the training must not hear of it
        assert time.monotonic() - began < 1.0
    assert repo.get_run(run_id).status == S.RUNNING
    worker.recover_while_training()  # too soon: at most one look a RECOVER_EVERY_S
    assert repo.get_run(run_id).status == S.RUNNING
    worker.looked_at = -math.inf
    worker.recover_while_training()  # reads its beat: unchanged since, by this clock?
    assert repo.get_run(run_id).status == S.RUNNING
    time.sleep(0.3)
    worker.looked_at = -math.inf
    worker.recover_while_training()
    assert (repo.get_run(run_id).status, repo.get_run(run_id).error) == (S.FAILED, "worker lost")


@pytest.mark.parametrize("look", ["training", "idle"])
def test_a_box_whose_clock_is_behind_keeps_its_live_run_and_a_dead_one_is_still_marked(
    repo: Repo, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, look: str
) -> None:
    # Each box writes heartbeat_at with its own clock. A box 40 s behind read as silent
    # past the limit at every look (every 10 s), a training worker's and an idle one's:
    # its live run was marked lost, its next beat revived it, both logs filled and the
    # dashboard flickered. Now a run is lost only when its beat stops changing, by the
    # looking worker's own clock (a worker's first look, at start, by age only past
    # SURELY_LOST_AFTER_S: test_a_worker_s_first_look_keeps_the_live_run_and_worker_...).
    monkeypatch.setattr(worker_module, "RECOVER_EVERY_S", 0.05)
    worker = make_worker(repo, fake_trainer(), tmp_path, stale_after_s=0.3)
    if look == "idle":
        worker.recover()  # its first look, at start: nothing running yet
    behind = repo.register_worker("behind", 1, "cuda:0")
    (run_id,) = repo.enqueue([tiny_run()]).added_ids
    assert repo.claim(behind) is not None
    if look == "training":
        worker.heartbeat.run_ids = (run_id + 1,)  # training a run of its own
    beating = threading.Event()
    beating.set()

    def beat_40_s_behind() -> None:  # as repo.heartbeat on that box writes
        while beating.is_set():
            now = time.time() - 40
            with repo._write() as conn:
                conn.execute(update(RUN).values(heartbeat_at=now))
                conn.execute(update(WORKER).where(WORKER.c.id == behind).values(last_seen_at=now))
            time.sleep(0.05)

    def look_until(seconds: float) -> RunStatus:
        until = time.monotonic() + seconds
        while time.monotonic() < until and repo.get_run(run_id).status == S.RUNNING:
            if look == "training":
                worker.looked_at = -math.inf
                worker.recover_while_training()
            else:
                worker.recover()
            time.sleep(0.05)
        return repo.get_run(run_id).status

    beats = threading.Thread(target=beat_40_s_behind)
    beats.start()
    try:
        assert look_until(1.5) == S.RUNNING  # alive: never marked, however far behind
    finally:
        beating.clear()
        beats.join()
    stopped = time.monotonic()
    # Its box dies: the beat stops changing and is found within the limit and a look or two.
    assert look_until(0.3 + 2 * 0.05 + 1.0) == S.FAILED
    assert time.monotonic() - stopped > 0.3
    assert repo.get_run(run_id).error == "worker lost"
    assert [w.state for w in repo.list_workers(include_gone=True) if w.id == behind] == ["lost"]


def test_an_idle_worker_marks_an_idle_worker_lost_once_its_beat_stops_not_by_its_age(
    repo: Repo, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # By age, an idle worker's look marked another box's idle worker (its clock 40 s
    # behind) lost at every look, its next beat making it idle again. Dead, such a worker
    # must still be marked lost: once its beat has stopped changing for the limit.
    monkeypatch.setattr(worker_module, "RECOVER_EVERY_S", 0.05)
    worker = make_worker(repo, fake_trainer(), tmp_path, stale_after_s=0.3)
    worker.recover()  # its first look, at start
    behind = repo.register_worker("behind", 1, "cuda:0")
    beating = threading.Event()
    beating.set()

    def beat_40_s_behind() -> None:
        while beating.is_set():
            with repo._write() as conn:
                seen = update(WORKER).where(WORKER.c.id == behind)
                conn.execute(seen.values(last_seen_at=time.time() - 40))
            time.sleep(0.05)

    def state_of_behind() -> str:
        (state,) = [w.state for w in repo.list_workers(include_gone=True) if w.id == behind]
        return state

    def look_until(seconds: float) -> str:
        until = time.monotonic() + seconds
        while time.monotonic() < until and state_of_behind() != "lost":
            worker.recover()
            time.sleep(0.05)
        return state_of_behind()

    beats = threading.Thread(target=beat_40_s_behind)
    beats.start()
    try:
        assert look_until(1.5) == "idle"
    finally:
        beating.clear()
        beats.join()
    stopped = time.monotonic()
    assert look_until(0.3 + 2 * 0.05 + 1.0) == "lost"
    assert time.monotonic() - stopped > 0.3


def beat_at(repo: Repo, worker_id: str, beat: float) -> None:
    """``worker_id``'s row and runs as its box wrote them last, at ``beat`` by its clock."""
    with repo._write() as conn:
        conn.execute(update(RUN).where(RUN.c.worker_id == worker_id).values(heartbeat_at=beat))
        conn.execute(update(WORKER).where(WORKER.c.id == worker_id).values(last_seen_at=beat))


def states_of(repo: Repo, *worker_ids: str) -> list[str]:
    states = {w.id: w.state for w in repo.list_workers(include_gone=True)}
    return [states[worker_id] for worker_id in worker_ids]


def test_a_worker_s_first_look_keeps_the_live_run_and_worker_of_a_box_whose_clock_is_behind(
    repo: Repo, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Each box writes its beats with its own clock. A worker's first look (at start)
    # judged them by age on its own: started on a box 30 s or more ahead, it marked
    # another box's live run and idle worker lost, revived by their next beats (log noise,
    # a dashboard flicker, and a retry meanwhile could have two workers train one run);
    # a worker restarted in a loop (--max-runs 1 under systemd) did so at every start.
    training = repo.register_worker("behind", 1, "cuda:0")
    idle = repo.register_worker("behind", 2, "cuda:1")
    (run_id,) = repo.enqueue([tiny_run()]).added_ids
    assert repo.claim(training) is not None
    for worker_id in (training, idle):  # their last beats, by a clock 40 s behind
        beat_at(repo, worker_id, time.time() - 40)
    worker = make_worker(repo, fake_trainer(), tmp_path)  # the 30 s limit
    worker.recover()  # its first look, at start
    assert repo.get_run(run_id).status == S.RUNNING
    assert states_of(repo, training, idle) == ["running", "idle"]
    assert "lost" not in capsys.readouterr().out


def test_a_worker_restarted_after_each_run_leaves_a_box_behind_alone_at_every_start(
    repo: Repo, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # `worker --max-runs 1` restarted by systemd: each start's first look marked the
    # live run of a box 40 s behind lost (nothing revived it here: it beats no more).
    behind = repo.register_worker("behind", 1, "cuda:0")
    (run_id,) = repo.enqueue([tiny_run(0)]).added_ids
    assert repo.claim(behind) is not None
    repo.enqueue(tiny_runs(3)[1:])
    for _ in range(2):
        beat_at(repo, behind, time.time() - 40)  # it beat just now, by its clock
        worker = make_worker(repo, fake_trainer(), tmp_path, max_runs=1)
        assert worker.loop() == 1
    assert repo.get_run(run_id).status == S.RUNNING
    assert states_of(repo, behind) == ["running"]
    assert "that worker lost" not in capsys.readouterr().out


def test_a_worker_s_first_look_marks_lost_at_once_what_is_silent_past_any_clock_difference(
    repo: Repo, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # A power cut's leftovers, silent longer than two boxes' clocks could be apart, are
    # lost at start, not a look or more later; one silent less long may be a live box's
    # whose clock is behind: its beats will tell (the next test).
    dead, dead_idle = (
        repo.register_worker("dead", 1, "cuda:0"),
        repo.register_worker("dead", 2, "cpu"),
    )
    behind = repo.register_worker("behind", 1, "cuda:0")
    repo.enqueue(tiny_runs(2))
    lost_run, kept_run = repo.claim(dead), repo.claim(behind)
    assert lost_run is not None and kept_run is not None
    bound = worker_module.SURELY_LOST_AFTER_S
    for worker_id, silent_s in ((dead, bound + 5), (dead_idle, bound + 5), (behind, bound - 5)):
        beat_at(repo, worker_id, time.time() - silent_s)
    worker = make_worker(repo, fake_trainer(), tmp_path)
    worker.recover()  # its first look, at start
    lost = repo.get_run(lost_run.id)
    assert (lost.status, lost.error) == (S.FAILED, "worker lost")
    assert repo.get_run(kept_run.id).status == S.RUNNING
    assert states_of(repo, dead, dead_idle, behind) == ["lost", "lost", "running"]
    said = f"run {lost_run.id} of worker dead pid 1: that worker lost (marked failed; "
    assert said in capsys.readouterr().out


def test_a_run_silent_less_long_at_start_is_marked_lost_by_a_later_look_within_the_limit(
    repo: Repo, tmp_path: Path
) -> None:
    # Its box died a minute ago: not lost at the first look (it could be a live box
    # whose clock is behind), but once its beat, read then, has not changed for the
    # limit on this worker's clock: within the limit and a look.
    dead, dead_idle = (
        repo.register_worker("dead", 1, "cuda:0"),
        repo.register_worker("dead", 2, "cpu"),
    )
    (run_id,) = repo.enqueue([tiny_run()]).added_ids
    assert repo.claim(dead) is not None
    for worker_id in (dead, dead_idle):
        beat_at(repo, worker_id, time.time() - 60)
    worker = make_worker(repo, fake_trainer(), tmp_path, stale_after_s=0.3)
    worker.recover()  # its first look, at start
    looked = time.monotonic()
    assert repo.get_run(run_id).status == S.RUNNING
    assert states_of(repo, dead, dead_idle) == ["running", "idle"]
    while repo.get_run(run_id).status == S.RUNNING and time.monotonic() - looked < 3.0:
        time.sleep(0.05)
        worker.recover()  # as the loop looks, every RECOVER_EVERY_S while idle
    assert 0.3 < time.monotonic() - looked < 0.3 + 2 * 0.05 + 1.0
    assert (repo.get_run(run_id).status, repo.get_run(run_id).error) == (S.FAILED, "worker lost")
    assert states_of(repo, dead, dead_idle) == ["lost", "lost"]


def test_a_worker_starting_trains_at_once_beside_another_box_s_run_silent_a_minute(
    repo: Repo, tmp_path: Path
) -> None:
    # Not lost at the first look, that run is judged by the next looks: the claim of the
    # one run queued does not wait for them (an --until-empty exit waits out the rest of
    # the limit: test_a_short_until_empty_worker_judges_a_dead_box_s_young_run_...).
    dead = repo.register_worker("dead", 1, "cuda:0")
    repo.enqueue([tiny_run(0)])
    assert repo.claim(dead) is not None
    beat_at(repo, dead, time.time() - 60)
    (own_id,) = repo.enqueue([tiny_run(1)]).added_ids
    trained_after: list[float] = []

    def on_step(step: int) -> None:
        if step == 1:
            trained_after.append(time.monotonic() - began)

    worker = make_worker(repo, fake_trainer(on_step=on_step), tmp_path, stale_after_s=1.0)
    began = time.monotonic()
    assert worker.loop(until_empty=True) == 1
    assert trained_after[0] < 2.0
    assert repo.get_run(own_id).status == S.SUCCEEDED


def test_an_idle_worker_stopped_with_the_others_times_their_silence_afresh(
    repo: Repo, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # As a training worker's look: an idle slot of a `worker --slots 2` group stopped
    # (Ctrl-Z) with the others does not read their beats, unchanged since, as silence.
    other = repo.register_worker("other-slot", 1, "cpu")
    (run_id,) = repo.enqueue([tiny_run()]).added_ids
    assert repo.claim(other) is not None
    worker = make_worker(repo, fake_trainer(), tmp_path)
    clock = [1000.0]
    monkeypatch.setattr(time, "monotonic", lambda: clock[0])

    def look_at(seconds: float) -> RunStatus:
        clock[0] = 1000.0 + seconds
        worker.recover()
        return repo.get_run(run_id).status

    assert [look_at(0), look_at(10), look_at(20)] == [S.RUNNING] * 3
    assert look_at(20 + 40) == S.RUNNING  # both stopped 40 s: not a silence it saw
    # Its worker does not beat again (it died meanwhile): found once watched silent.
    assert [look_at(60 + 10 * n) for n in (1, 2, 3, 4)] == [S.RUNNING] * 3 + [S.FAILED]
    assert repo.get_run(run_id).error == "worker lost"


def test_the_loop_and_the_heartbeat_thread_reading_at_once_past_a_stop_both_time_afresh(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # A worker stopped (Ctrl-Z) at a run's edge: as it resumes, its loop and its
    # heartbeat thread both look. The second read began after the first had stored its
    # read time but not yet its memory timed afresh: it saw no gap, took the memory of
    # before the stop, and read a sibling slot's live run (not beaten yet) as silent.
    clock = [1000.0]
    monkeypatch.setattr(time, "monotonic", lambda: clock[0])
    seen: worker_module.BeatsSeen[int] = worker_module.BeatsSeen()
    assert seen.silent({7: 5.0}, 30.0, 23.0) == {}
    clock[0] += 40  # both threads stopped 40 s
    second: list[dict[int, float]] = []
    lookers: list[threading.Thread] = []

    class ReadWhileTheOtherThreadLooks(dict[int, float]):
        def items(self) -> Any:  # inside the first read, past its gap check
            looker = threading.Thread(
                target=lambda: second.append(seen.silent({7: 5.0}, 30.0, 23.0))
            )
            lookers.append(looker)
            looker.start()
            looker.join(0.5)  # it waits for the first read to end, or reads in its midst
            return super().items()

    assert seen.silent(ReadWhileTheOtherThreadLooks({7: 5.0}), 30.0, 23.0) == {}
    lookers[0].join(5)
    assert second == [{}]  # silent 0 s by this process's watch, not 40


def test_a_worker_stopped_with_the_others_does_not_mark_their_live_runs_lost_on_resuming(
    repo: Repo, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Ctrl-Z of a `worker --slots 2` stops both slots; their monotonic clocks run on. At
    # `fg` the first look of one slot read the other's beat unchanged (it had not beaten
    # since it resumed) for longer than the limit: its live run was marked lost.
    other = repo.register_worker("other-slot", 1, "cpu")
    (run_id,) = repo.enqueue([tiny_run()]).added_ids
    assert repo.claim(other) is not None
    worker = make_worker(repo, fake_trainer(), tmp_path)
    worker.heartbeat.run_ids = (run_id + 1,)  # training a run of its own
    clock = [1000.0]
    monkeypatch.setattr(time, "monotonic", lambda: clock[0])

    def look_at(seconds: float) -> RunStatus:
        clock[0] = 1000.0 + seconds
        worker.looked_at = -math.inf
        worker.recover_while_training()
        return repo.get_run(run_id).status

    assert [look_at(0), look_at(10)] == [S.RUNNING, S.RUNNING]
    assert look_at(10 + 40) == S.RUNNING  # both stopped 40 s: not a silence it saw
    # Its worker does not beat again (it died meanwhile): found once watched silent.
    assert [look_at(50 + 10 * n) for n in (1, 2, 3, 4)] == [S.RUNNING] * 3 + [S.FAILED]
    assert repo.get_run(run_id).error == "worker lost"


def test_idle_polling_backs_off_to_a_few_seconds(
    repo: Repo, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    worker = make_worker(repo, fake_trainer(), tmp_path)
    delays: list[float] = []

    def fake_sleep(seconds: float) -> None:
        delays.append(seconds)
        if len(delays) == 8:
            worker.flags.signals = 1

    monkeypatch.setattr(worker, "sleep", fake_sleep)
    worker.loop()
    assert delays == [0.1, 0.2, 0.4, 0.8, 1.6, 3.0, 3.0, 3.0]


def test_heartbeats_keep_the_run_and_worker_fresh(repo: Repo, tmp_path: Path) -> None:
    run_id = repo.enqueue([tiny_run()]).added_ids[0]
    beats: list[float | None] = []

    def on_step(step: int) -> None:
        if step % 50 == 0:
            beats.append(repo.get_run(run_id).heartbeat_at)

    make_worker(repo, fake_trainer(steps=300, step_s=0.002, on_step=on_step), tmp_path).loop(
        until_empty=True
    )
    assert len(set(beats)) > 1  # the heartbeat thread moved it while training


def test_a_training_that_hangs_is_said_stalled_with_its_stack_until_it_steps_again(
    repo: Repo, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # The heartbeat thread beats through a hang: it must say what the run does not.
    run_id = repo.enqueue([tiny_run()]).added_ids[0]
    states: list[str] = []

    def hang_at_step_5(step: int) -> None:
        if step == 5:
            deadline = time.monotonic() + 30  # polled: ends once the heartbeat says it
            while "stalled" not in states and time.monotonic() < deadline:
                states.append(repo.list_workers()[0].state)
                time.sleep(0.05)
        elif step > 5:
            time.sleep(0.1)  # long enough for the heartbeats to see it go on

    trainer = fake_trainer(steps=10, on_step=hang_at_step_5)
    worker = make_worker(repo, trainer, tmp_path, stall_after_s=0.3)
    worker.loop(until_empty=True)
    out = capsys.readouterr().out
    assert states[0] == "running" and states[-1] == "stalled"
    assert re.search(rf"run {run_id}: no training step for \d s: stalled", out), out
    assert "in hang_at_step_5" in out  # the training thread's stack, down to the hang
    assert f"kill -9 {os.getpid()}" in out
    assert f"run {run_id}: training again" in out
    assert repo.get_run(run_id).status == S.SUCCEEDED


class StallClock:
    """A heartbeat on a hand-moved clock, its worker training run 1."""

    def __init__(self, repo: Repo, stall_after_s: float = 600) -> None:
        from core.gpu import GpuMonitor
        from core.recording import Heartbeat

        repo.enqueue(tiny_runs(1))
        self.repo, self.worker = repo, repo.register_worker("h", 1, "cpu")
        assert repo.claim(self.worker) is not None
        self.now = 0.0
        self.beat = Heartbeat(repo, self.worker, GpuMonitor("cpu"), 1.0,
                              stall_after_s=stall_after_s, clock=lambda: self.now)  # fmt: skip
        self.beat.watch((1,))

    def steps(self, count: int, seconds: float, calls: int = 1) -> None:
        """``count`` steps of ``seconds`` each, seen by ``calls`` runs' recorders (a stack),
        each a few milliseconds of database time after the one before."""
        for _ in range(count):
            self.now += seconds - 0.004 * (calls - 1)
            for run_id in range(calls):
                self.beat.stepped(run_id)
                self.now += 0.004 if run_id < calls - 1 else 0

    def state_after(self, seconds: float) -> str:
        self.now += seconds
        self.beat.beat()
        return self.repo.list_workers()[0].state


@pytest.mark.parametrize("calls", [1, 4], ids=["one run", "a stack of 4"])
def test_the_stall_limit_grows_with_slow_steps(repo: Repo, calls: int) -> None:
    # A big model on a CPU: 5 s a step, so a validation pass takes minutes, not a stall.
    from core.recording import STALL_STEPS

    clock = StallClock(repo)
    clock.steps(1, 30.0, calls)  # the first step waited for the model and the data
    clock.steps(10, 5.0, calls)
    clock.steps(1, 300.0, calls)  # one gap held a validation pass: the median ignores it
    assert clock.state_after(601) == "running"  # 601 s < 200 steps of 5 s
    assert clock.state_after(STALL_STEPS * 5 - 600) == "stalled"


def test_validation_batches_neither_shrink_the_stall_limit_nor_read_as_a_stall(
    repo: Repo,
) -> None:
    # 5 s steps (limit 1000 s); a pass of 200 batches of 1 s between epochs, then the
    # last pass (which polls nothing) and checkpoints, silent for 700 s.
    clock = StallClock(repo)
    clock.steps(11, 5.0)
    for _ in range(200):
        clock.now += 1.0
        clock.beat.alive(1)
    assert clock.state_after(599) == "running"  # the first pass's last batch was alive
    clock.steps(1, 5.0)
    assert clock.state_after(700) == "running"  # timed as steps, batches made it 600 s


def test_a_stop_of_the_worker_s_process_is_no_stall(
    repo: Repo, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Stopped for 15 minutes (Ctrl-Z, docker pause) and resumed, the heartbeat thread ran
    # before the training thread's next step: "no training step for 15m", a stack in the
    # log and the worker marked stalled, for a hang that never was. A real one still is.
    from core.gpu import GpuMonitor
    from core.recording import Heartbeat

    now = [0.0]
    watch = PauseWatch(clock=lambda: now[0], tick_s=0.5, late_s=5.0)
    watch.last = now[0]  # started, its ticks played by hand
    monkeypatch.setattr(recording, "PAUSES", watch, raising=False)
    repo.enqueue(tiny_runs(1))
    worker = repo.register_worker("h", 1, "cpu")
    assert repo.claim(worker) is not None
    beat = Heartbeat(repo, worker, GpuMonitor("cpu"), 1.0, stall_after_s=600)

    def live_for(seconds: float) -> None:
        for _ in range(int(seconds / 0.5)):
            now[0] += 0.5
            watch.tick()

    beat.watch((1,))
    for _ in range(5):
        live_for(1.0)
        beat.stepped(1)
    now[0] += 0.5 + 900.0  # stopped: no tick, no step
    beat.beat()
    assert repo.list_workers()[0].state == "running"
    live_for(601.0)  # alive, and no step: a hang
    beat.beat()
    assert repo.list_workers()[0].state == "stalled"


STOPPED_HEARTBEAT = """
import sys
from types import SimpleNamespace
from core.pauses import PAUSES
from core.recording import Heartbeat
PAUSES.start()  # as its run's recorder starts it
marked = []
repo = SimpleNamespace(mark_worker_stalled=lambda worker, stalled: marked.append(stalled))
beat = Heartbeat(repo, "w", None, 1.0, stall_after_s=5.0)
beat.watch((1,))
beat.stepped(1)
print("ready", flush=True)
sys.stdin.readline()
beat.watch_for_stall((1,))  # as its next beat does, before the training thread steps
print(marked, flush=True)
"""


def test_a_stopped_and_continued_worker_s_heartbeat_sees_no_stall() -> None:
    # The same with a real stop (kill -STOP, then -CONT) of a process 6.5 s long, past
    # its stall limit of 5 s: it read "no training step for 6s: stalled".
    child = subprocess.Popen(
        [sys.executable, "-c", STOPPED_HEARTBEAT], stdin=subprocess.PIPE,
        stdout=subprocess.PIPE, text=True,
        env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[3])},
    )  # fmt: skip
    try:
        assert child.stdout is not None and child.stdin is not None
        assert child.stdout.readline().strip() == "ready"
        time.sleep(0.6)  # the pause watch's first ticks
        os.kill(child.pid, signal.SIGSTOP)
        time.sleep(6.5)
        os.kill(child.pid, signal.SIGCONT)
        child.stdin.write("go\n")
        child.stdin.flush()
        assert child.stdout.readline().strip() == "[]"
    finally:
        child.kill()
        child.wait()


def test_a_stall_whose_write_failed_is_written_at_the_next_beat(repo: Repo) -> None:
    from core.queue import QueueError

    clock = StallClock(repo, stall_after_s=10)
    clock.steps(3, 0.01)  # fast steps: the limit is the 10 s floor
    real = repo.mark_worker_stalled
    calls = []

    def locked_once(worker_id: str, stalled: bool) -> bool:
        calls.append(stalled)
        if len(calls) == 1:
            raise QueueError("database is locked")
        return real(worker_id, stalled)

    repo.mark_worker_stalled = locked_once  # type: ignore[method-assign]
    assert clock.state_after(11) == "running" and calls == [True]  # the write failed...
    assert clock.state_after(1) == "stalled"  # ...and was made at the next beat
    clock.steps(1, 0.5)
    assert clock.state_after(0) == "running"  # steps again


def test_a_stall_never_overwrites_stopping(repo: Repo) -> None:
    clock = StallClock(repo, stall_after_s=10)
    repo.update_worker(clock.worker, state="stopping")  # resconv-tui stop: first signal
    assert clock.state_after(11) == "stopping"  # a second stop still means "at once"


def test_failure_messages_are_short_and_specific() -> None:
    assert failure_message(NonFiniteLoss("loss became NaN at step 812")) == (
        "loss became NaN at step 812"
    )
    assert failure_message(ConfigError("key 'lr': bad")) == "key 'lr': bad"
    assert failure_message(ValueError("x\ny")) == "ValueError: x"
    assert failure_message(KeyError()) == "KeyError: (no message)"
    assert len(failure_message(RuntimeError("z" * 1000))) == 300

    class OutOfMemoryError(RuntimeError):  # torch.cuda's, raised outside fit()
        pass

    assert failure_message(OutOfMemoryError("CUDA out of memory. Tried")) == (
        "out of memory: CUDA out of memory. Tried"
    )


def test_final_figures_treat_nan_and_an_unmeasured_peak_as_missing() -> None:
    figures = final_figures(FitResult(float("nan"), wall_seconds=2.0))
    assert figures == FinalFigures(
        train_seconds=2.0, inputs_per_s=0.0, peak_memory_bytes=None, inputs_done=0,
        path_used="plain",
    )  # fmt: skip


def test_run_worker_rejects_devices_that_do_not_exist(db_path: Path) -> None:
    # This machine has no GPU: said so, with what to use ("0 CUDA device(s)" before).
    no_gpu = "^--device cuda:7: this machine has no CUDA GPU \\(use --device cpu or auto\\)$"
    with pytest.raises(ConfigError, match=no_gpu):
        run_worker(str(db_path), device="cuda:7", install_signals=False)
    with pytest.raises(ConfigError, match="^--device nonsense: not a device: use auto, cpu, cuda"):
        run_worker(str(db_path), device="nonsense", install_signals=False)
    # Devices torch knows but no run trains on: the worker started, then failed every run.
    for other in ("mps", "meta", "xpu"):
        with pytest.raises(ConfigError, match=f"^--device {other}: not a device resconv-tui"):
            run_worker(str(db_path), device=other, install_signals=False)
    # torch keeps a device index in 8 bits (cuda:999 reads as cuda:-25): checked as written
    with pytest.raises(ConfigError, match="--device cuda:999: this machine has"):
        run_worker(str(db_path), device="cuda:999", install_signals=False)


def test_auto_takes_the_gpu_with_the_fewest_workers_of_this_machine(
    repo: Repo, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A box with 3 GPUs (faked: this machine has none): a second `worker` must not land
    # beside the first on cuda:0.
    import socket

    import torch

    import core.device_choice as choice

    monkeypatch.setattr(choice, "CHOICES_PATH", Path(tempfile.mkdtemp()) / "choices.json")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 3)
    here, pid = socket.gethostname(), os.getpid()  # a live process of this machine
    assert choice.auto_device(repo) == "cuda:0"
    repo.register_worker(here, pid, "cuda:0")
    assert choice.auto_device(repo) == "cuda:1"
    for slot in (1, 2):
        repo.register_worker(here, pid, f"cuda:1 slot {slot}/2")
    repo.register_worker("other-box", pid, "cuda:2")  # another machine's GPU 2, not ours
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    real_time = time.time
    with monkeypatch.context() as patch:  # killed with -9 15 s ago: its row still says idle
        patch.setattr(repo_module, "time", SimpleNamespace(time=lambda: real_time() - 15))
        repo.register_worker(here, gone.pid, "cuda:2")
    assert choice._cuda_busy(choice._rows_here(repo)) == {0: 1, 1: 2}
    assert choice.auto_device(repo) == "cuda:2"
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    assert choice.auto_device(repo) == "cuda:0"  # fewest: 1 against 2
    assert choice.resolve_device("auto") == "cuda:0"  # no rows given: the first
    with pytest.raises(ConfigError, match="^--device cuda:2: this machine has 2 CUDA devices: "
                       "cuda:0 to cuda:1$"):  # fmt: skip
        choice.resolve_device("cuda:2")


def test_slots_share_the_one_device_auto_chose(
    db_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Chosen once by the supervisor: K slots each resolving "auto" would spread out.
    import socket

    import torch

    import core.device_choice as choice
    import core.slots

    monkeypatch.setattr(choice, "CHOICES_PATH", db_path.parent / "choices.json")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    repo = Repo.open(str(db_path))
    repo.register_worker(socket.gethostname(), os.getpid(), "cuda:0")
    repo.close()
    seen: list[str] = []
    monkeypatch.setattr(core.slots, "supervise", lambda args, url, k: seen.append(args.device))
    parser = argparse.ArgumentParser()
    add_worker_arguments(parser)
    args = parser.parse_args(["--slots", "2", "--slot-mode", "processes"])
    worker_module.worker_from_args(args, str(db_path))
    assert seen == ["cuda:1"]


@pytest.mark.parametrize(
    ("option", "value", "why"),
    [("--stack", "0", "'0' is not a number of runs to stack (a whole number from 1 to 64)"),
     ("--slots", "0", "'0' is not a number of slots (a whole number from 1 to 16)"),
     ("--slots", "99999", "'99999' is not a number of slots (a whole number from 1 to 16)"),
     ("--stack", "65", "'65' is not a number of runs to stack (a whole number from 1 to 64)"),
     # Stored in the worker's row: beyond 2**63 an OverflowError traceback.
     ("--max-runs", "9" * 23,
      f"'{'9' * 23}' is not a number of runs (a whole number from 1 to 1,000,000)")],
)  # fmt: skip
def test_counts_out_of_range_are_refused_as_parsed_before_anything_starts(
    tmp_path: Path, capsys, option: str, value: str, why: str
) -> None:
    # --slots 99999 started 99999 processes, each loading torch: the box ran out of memory.
    # A count out of range was refused after parsing ("--slots must be at least 1 (got
    # 0)"), where "1_0" was refused by the parser: one shape now, the parser's.
    db = tmp_path / "runs.db"
    with pytest.raises(SystemExit) as exit_info:
        worker_module.main(["--db", str(db), option, value])
    assert exit_info.value.code == 2
    assert capsys.readouterr().err.strip().splitlines()[-1] == (
        f"python -m core.worker: error: argument {option}: {why}"
    )
    assert not db.exists()


def test_a_count_made_in_code_out_of_range_is_refused_in_the_parser_s_words(
    tmp_path: Path,
) -> None:
    # A Namespace the parser did not read (a caller's own) meets the same rule and text.
    parser = argparse.ArgumentParser()
    add_worker_arguments(parser)
    args = parser.parse_args([])
    args.stack = 0
    with pytest.raises(ConfigError, match=r"^--stack: '0' is not a number of runs to stack \("):
        worker_module.worker_from_args(args, str(tmp_path / "runs.db"))


def test_a_database_in_a_missing_folder_is_one_error_not_a_new_database_first(
    tmp_path: Path, capsys
) -> None:
    code = worker_module.main(["--db", str(tmp_path / "nowhere" / "runs.db"), "--until-empty"])
    captured = capsys.readouterr()
    assert code == 2 and "is new" not in captured.out + captured.err
    assert "does not exist" in captured.err


def test_module_entry_point_reports_errors_in_one_line(tmp_path: Path) -> None:
    bad = tmp_path / "bad.db"
    bad.write_text("not a database" * 100)
    result = subprocess.run(
        [sys.executable, "-m", "core.worker", "--db", str(bad), "--device", "cpu"],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        f"worker: database error: {bad} is not a SQLite database (wrong file, or corrupt)"
    ]
    assert "Traceback" not in result.stdout


def test_worker_module_keeps_torch_lazy() -> None:
    code = "import sys, core.worker; assert 'torch' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True)
    assert recording.LOG_EVERY > 0


class Exited(BaseException):
    """Stands in for os._exit: leaves the loop without running any cleanup."""


def test_second_signal_requeues_the_run_and_exits_at_once(
    repo: Repo, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    run_id = repo.enqueue([tiny_run()]).added_ids[0]
    codes: list[int] = []

    def fake_exit(code: int) -> None:
        codes.append(code)
        raise Exited

    monkeypatch.setattr(worker_module.os, "_exit", fake_exit)
    holder: list[Worker] = []

    def on_step(step: int) -> None:
        if step == 5:  # two signals before the step ends: no waiting for the step
            holder[0].flags.handle(signal.SIGINT, None)
            holder[0].flags.handle(signal.SIGINT, None)

    worker = make_worker(repo, fake_trainer(on_step=on_step), tmp_path)
    holder.append(worker)
    with pytest.raises(Exited):
        worker.loop()
    worker.heartbeat.stop()
    assert codes == [130]
    run = repo.get_run(run_id)
    assert run.status == S.QUEUED  # given back with its folder named, as by one signal
    assert run.checkpoint_path == str(tmp_path / "ck" / "exp" / f"run-{run_id}")
    assert repo.list_workers(include_gone=True)[0].state == "stopped"


@pytest.mark.parametrize("waiting", ["to register", "to claim"])
def test_a_second_signal_while_the_worker_waits_on_a_sqlite_lock_exits_at_once(
    db_path: Path, waiting: str
) -> None:
    # Python runs a signal's handler only once the main thread is back from the driver
    # call, and two signals of one kind that come before then run it once: a worker
    # waiting for another process's write lock (up to its 15 s busy timeout) took Ctrl-C
    # twice, or `stop` then `stop --now`, as one polite stop, said only after the wait.
    Repo.open(str(db_path)).close()
    script = (
        "from core.worker import run_worker\n"
        "print('ready', flush=True)\n"
        f"run_worker({str(db_path)!r}, 'cpu', trainer=lambda *args: None)\n"
    )
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    with ExitStack() as hold:
        if waiting == "to register":
            hold.enter_context(write_lock_held(db_path))
        worker = subprocess.Popen(
            [sys.executable, "-c", script], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
            env=env, text=True, start_new_session=True,
        )  # fmt: skip
        hold.callback(worker.wait)
        hold.callback(worker.kill)
        assert worker.stdout is not None and worker.stdout.readline() == "ready\n"
        if waiting == "to claim":  # idle, claiming every few seconds
            assert " on cpu, database " in worker.stdout.readline()
            hold.enter_context(write_lock_held(db_path))
        time.sleep(1.5)  # in its wait for the lock
        worker.send_signal(signal.SIGTERM)
        time.sleep(1.5)  # said at once, not once the wait is over
        signalled = time.monotonic()
        worker.send_signal(signal.SIGTERM)
        try:
            code = worker.wait(timeout=6)
        except subprocess.TimeoutExpired:
            code = None
        waited = time.monotonic() - signalled
    said = worker.stdout.read()
    assert (code, waited < 6) == (130, True), said
    assert (
        "SIGTERM: the worker stops once its current call returns (a write waits up to 15 s "
        "for another process's database lock); send it again to exit at once\n" in said
    )
    assert "second signal: exiting now" in said


class RefuseFirst(Admission):
    """Says "wait" to the first check, then "train"."""

    def __init__(self, repo: Repo) -> None:
        super().__init__(repo, lambda: 0)
        self.checks = 0

    def check(self, run: RunRow, copies: int = 1) -> Decision:
        self.checks += 1
        return Decision(self.checks > 1, f"check {self.checks}")


def test_a_slot_puts_back_a_refused_run_and_trains_it_later(
    repo: Repo, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(worker_module, "ADMIT_WAIT_MIN_S", 0.01)
    repo.enqueue(tiny_runs(1))
    admission = RefuseFirst(repo)
    worker = Worker(repo, "cuda:0", fake_trainer(), tmp_path / "ck", StopFlags(),
                    heartbeat_s=0.05, label="cuda:0 slot 1/2", admission=admission)  # fmt: skip
    assert worker.loop(until_empty=True) == 1
    run = repo.get_run(1)
    assert (run.status, run.attempts, admission.checks) == (S.SUCCEEDED, 1, 2)
    (row,) = repo.list_workers(include_gone=True)
    assert (row.device, row.runs_done) == ("cuda:0 slot 1/2", 1)


def test_say_goes_on_when_the_terminal_is_gone(monkeypatch: pytest.MonkeyPatch) -> None:
    # After SSH drops, writes to the old terminal fail with EIO: the worker must not die of it.
    import errno

    from core.recording import say

    class HungUp:
        def write(self, _text: str) -> int:
            raise OSError(errno.EIO, "Input/output error")

        def flush(self) -> None:
            raise OSError(errno.EIO, "Input/output error")

    monkeypatch.setattr("sys.stdout", HungUp())
    say("still training")


def test_nohup_keeps_sighup_ignored() -> None:
    # `nohup resconv-tui worker &`: the person asked it to outlive the terminal.
    saved = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)}
    try:
        signal.signal(signal.SIGHUP, signal.SIG_IGN)
        StopFlags().install()
        assert signal.getsignal(signal.SIGHUP) == signal.SIG_IGN
        signal.signal(signal.SIGHUP, signal.SIG_DFL)  # a plain shell: SIGHUP stops it cleanly
        flags = StopFlags()
        flags.install()
        assert signal.getsignal(signal.SIGHUP) == flags.handle
    finally:
        signal.set_wakeup_fd(-1)  # nothing watches for this process's signals after it
        for sig, handler in saved.items():
            signal.signal(sig, handler)


def test_a_signal_while_the_worker_starts_stops_it_once_its_handlers_are_in(
    db_path: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # A SIGTERM in a worker's first seconds (importing the database layer and torch)
    # killed it with status 143 before its handlers were in place. Counted from its
    # first line now, it stops the worker as one sent later does, before any claim.
    db_url = f"sqlite:///{db_path}"
    repo = Repo.open(db_url)
    ids = repo.enqueue(tiny_runs(1)).added_ids
    saved = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)}
    try:
        count_early()  # as the worker's entry points do first
        os.kill(os.getpid(), signal.SIGTERM)  # before the worker's own handlers
        assert run_worker(db_url, "cpu", until_empty=True, checkpoint_root=tmp_path / "ck",
                          trainer=fake_trainer(), heartbeat_s=0.05) == 0  # fmt: skip
        assert take_over() == []  # answered once, by the worker's handlers
    finally:
        for sig, handler in saved.items():
            signal.signal(sig, handler)
    run = repo.get_run(ids[0])
    assert (run.status, run.attempts) == (S.QUEUED, 0)
    assert [w.state for w in repo.list_workers(include_gone=True)] == ["stopped"]
    repo.close()
    # No step exists yet: "stopping after this step" claimed one.
    said = capsys.readouterr().out
    assert "SIGTERM: stopping before its first run (send it again to exit at once)" in said
    assert "after this step" not in said


def test_the_first_signal_names_a_run_in_its_final_pass(
    repo: Repo, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # "stopping after this step", then the pass ran on for 87 s and the run succeeded.
    repo.enqueue(tiny_runs(2))
    signalled: list[str] = []

    def trainer(run: RunRow, cb: FitCallbacks, folder: Path) -> FitResult:
        record = cb.on_validation
        assert record is not None

        def on_validation(point: ValidationPoint) -> None:  # after every input: the last pass
            worker.flags.note(signal.SIGTERM, time.monotonic())
            signalled.append(capsys.readouterr().out)
            record(point)

        if run.id == 1:
            cb.on_validation = on_validation
        return fake_trainer()(run, cb, folder)

    worker = make_worker(repo, trainer, tmp_path)
    assert worker.loop(until_empty=True) == 1  # then it stops
    assert signalled[0].endswith(
        "SIGTERM: stopping after this step; run 1 trained all its inputs: its final pass "
        "first (send it again to exit at once)\n"
    )
    statuses = [r.status for r in repo.list_runs()]
    assert statuses == [S.SUCCEEDED, S.QUEUED] and worker.flags.training == {}
    flags = StopFlags()  # no run training: as before
    flags.note(signal.SIGTERM, time.monotonic())
    assert capsys.readouterr().out.endswith(
        "SIGTERM: stopping after this step (send it again to exit at once)\n"
    )


def test_a_slot_leaves_send_it_again_to_its_supervisor(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # Ctrl-C once in `worker --slots 4`'s terminal: the supervisor says "(again: at once)"
    # and forwards SIGTERM; each of the 4 slots said "send it again to exit at once" too.
    monkeypatch.setenv(SUPERVISOR_ENV, "4242")
    StopFlags().note(signal.SIGTERM, time.monotonic())
    # Nor "SIGTERM: stopping": after a Ctrl-C it read as if something else had stopped them.
    assert capsys.readouterr().out.endswith("asked to stop (SIGTERM): stopping after this step\n")


def test_a_slot_whose_stop_waits_on_a_lock_says_it_was_asked_to_stop(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # Ctrl-C once in `worker --slots 2`'s terminal while the slots waited for another
    # process's lock: each slot said "SIGTERM: the worker stops once ...", the signal its
    # supervisor forwarded, read as if something else had stopped them (note() says
    # "asked to stop (SIGTERM)" in a slot).
    monkeypatch.setenv(SUPERVISOR_ENV, "4242")
    StopFlags().say_untaken(signal.SIGTERM)
    assert capsys.readouterr().out.endswith(
        ": asked to stop (SIGTERM): the worker stops once its current call returns (a write "
        "waits up to 15 s for another process's database lock)\n"
    )


def test_a_second_signal_while_the_worker_starts_exits_at_once() -> None:
    code = (
        # SIGHUP at its default, as from a login shell (under nohup it is ignored, and kept so).
        "import os, signal, time; signal.signal(signal.SIGHUP, signal.SIG_DFL); "
        "from core.early_signals import count_early; count_early(); "
        "os.kill(os.getpid(), signal.SIGTERM); print('counted', flush=True); "
        "os.kill(os.getpid(), signal.SIGHUP); time.sleep(30); print('not at once')"
    )
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[3])}
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env,
                          timeout=20)  # fmt: skip
    assert (done.returncode, done.stdout) == (130, "counted\n"), done.stderr
    # The first is said at once: starting may take long, and a silent stop reads as ignored.
    assert done.stderr == ("SIGTERM: the worker stops as soon as it has started (again: at once)\n")


def test_a_worker_that_fails_to_start_gives_the_signals_back() -> None:
    # Its counting handlers stayed after a start that failed (a bad folder, say): a
    # caller in the same process (a test) had its first Ctrl-C swallowed, its second
    # exit the process.
    saved = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)}
    count_early()
    assert signal.getsignal(signal.SIGINT) is early_signals._count
    early_signals.release()
    assert {sig: signal.getsignal(sig) for sig in saved} == saved
    from resconv_tui.cli import main

    # Through the command: a worker refused at its start (no such database) gives them back.
    assert main(["worker", "--device", "cpu", "--db", "/nonexistent/runs.db"]) == 2
    assert {sig: signal.getsignal(sig) for sig in saved} == saved


def test_a_slot_signalled_with_its_whole_service_stops_once(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # systemd's KillMode=control-group (or `pkill -f worker`) signals every process of
    # the service: a slot gets SIGTERM itself, and again from its supervisor, which
    # forwards it within its 0.1 s poll. Counted as "again: at once", one `systemctl
    # stop` made the slots exit 130 with "second signal: exiting now".
    monkeypatch.setenv(SUPERVISOR_ENV, "4242")
    seconds = []
    flags = StopFlags()
    flags.on_second = lambda: seconds.append(1)
    flags.handle(signal.SIGTERM, None)
    flags.handle(signal.SIGTERM, None)  # the supervisor's copy: the same stop
    assert (flags.stop, seconds) == (True, [])
    flags.handle(signal.SIGINT, None)  # the supervisor's "again: at once"
    assert seconds == [1]


def test_a_slot_takes_the_same_signal_later_for_again_at_once(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # `resconv-tui stop --now` and the dashboard's second `w` send a second SIGTERM to
    # each slot on purpose, seconds after the first.
    monkeypatch.setenv(SUPERVISOR_ENV, "4242")
    monkeypatch.setattr(early_signals, "SAME_STOP_S", 0.0, raising=False)
    seconds = []
    flags = StopFlags()
    flags.on_second = lambda: seconds.append(1)
    flags.handle(signal.SIGTERM, None)
    flags.handle(signal.SIGTERM, None)
    assert seconds == [1]


def test_a_worker_not_a_slot_takes_a_quick_second_signal_for_again_at_once(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Ctrl-C twice in a row in the worker's terminal: "at once", however quick.
    monkeypatch.delenv(SUPERVISOR_ENV, raising=False)
    seconds = []
    flags = StopFlags()
    flags.on_second = lambda: seconds.append(1)
    flags.handle(signal.SIGINT, None)
    flags.handle(signal.SIGINT, None)
    assert seconds == [1]


def test_a_slot_measures_the_same_stop_from_a_signal_counted_while_it_started(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # A slot stopped while it imported torch, its handlers in 3 s later: "the same stop"
    # ran 2 s from then, not from the signal, and a person's second SIGTERM 3.5 s after
    # the first (`stop --now`) was taken for the supervisor's copy and swallowed.
    monkeypatch.setenv(SUPERVISOR_ENV, "4242")
    clock = [1000.0]
    monkeypatch.setattr(time, "monotonic", lambda: clock[0])
    saved = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)}
    saved[recording.PARENT_GONE] = signal.getsignal(recording.PARENT_GONE)
    seconds = []
    try:
        count_early()
        early_signals._count(signal.SIGTERM, None)  # while it starts
        clock[0] += 3
        flags = StopFlags()
        flags.on_second = lambda: seconds.append(1)
        flags.install()
        assert flags.stop and seconds == []
        clock[0] += 0.5
        flags.handle(signal.SIGTERM, None)  # 3.5 s after the first: "again: at once"
    finally:
        flags.release()
        for sig, handler in saved.items():
            signal.signal(sig, handler)
    assert seconds == [1]


@pytest.mark.parametrize("slot", [True, False])
def test_a_slot_starting_counts_its_service_stop_once(slot: bool) -> None:
    # The same while the slot starts (core.early_signals counting): two SIGTERMs made it
    # exit 130 at once, silently ("exit statuses 130, 130" under systemd).
    code = (
        "import os, signal; from core.early_signals import count_early, take_over; "
        "count_early(); os.kill(os.getpid(), signal.SIGTERM); "
        "os.kill(os.getpid(), signal.SIGTERM); print([s for s, _ in take_over()], flush=True)"
    )
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[3])}
    env.pop(SUPERVISOR_ENV, None)
    if slot:
        env[SUPERVISOR_ENV] = "4242"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env,
                          timeout=20)  # fmt: skip
    if slot:
        assert (done.returncode, done.stdout) == (0, f"[{int(signal.SIGTERM)}]\n"), done.stderr
    else:
        assert (done.returncode, done.stdout) == (130, ""), done.stderr


def test_two_workers_choosing_before_either_registers_take_different_gpus(
    repo: Repo, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    # Started together (or --slots K, whose slot rows appear seconds later): the first
    # choice is recorded until its worker's row can be counted instead.
    import socket

    import torch

    import core.device_choice as choice

    monkeypatch.setattr(choice, "CHOICES_PATH", tmp_path / "choices.json")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    assert choice.auto_device(repo) == "cuda:0"
    assert choice.auto_device(repo) == "cuda:1"  # no row yet: the recorded choice counts
    # Once this process has a row, its row counts, not its choices: cuda:0 has 1 worker.
    repo.register_worker(socket.gethostname(), os.getpid(), "cuda:0")
    assert choice.auto_device(repo) == "cuda:1"
    (tmp_path / "choices.json").write_text("{not json")  # a damaged record: rows only
    assert choice.auto_device(repo) == "cuda:1"
    monkeypatch.setattr(choice, "CHOICE_TTL_S", 0.0)  # choices expire
    assert choice.auto_device(repo) == "cuda:1"


def test_a_worker_on_a_new_database_file_says_so(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # A typo'd --db creates an empty file: the worker would wait there for nothing.
    typo = tmp_path / "rusn.db"
    assert worker_module.main(["--db", str(typo), "--device", "cpu", "--until-empty"]) == 0
    out = capsys.readouterr().out
    assert f"database {typo} is new: nothing queued yet (is --db right? " in out
    assert worker_module.main(["--db", str(typo), "--device", "cpu", "--until-empty"]) == 0
    assert "is new" not in capsys.readouterr().out  # the second time it is not new


@pytest.mark.parametrize("new", [True, False], ids=["a new database", "an existing one"])
def test_one_worker_checks_its_options_once(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    idx_writer: Any,
    capsys: pytest.CaptureFixture[str],
    new: bool,
) -> None:
    # worker_from_args checked --device, --data-dir and --checkpoints (the new database's
    # before making it), and run_worker checked them all again: a second probe file,
    # a second look through the data folder.
    import core.data

    db = tmp_path / "runs.db"
    if not new:
        Repo.open(str(db)).close()
    data = str(idx_writer(tmp_path / "data"))
    checks: list[str] = []

    def counted(module: Any, name: str) -> None:
        real = getattr(module, name)
        monkeypatch.setattr(module, name, lambda *a: (checks.append(name), real(*a))[1])

    counted(worker_module, "resolve_device")
    counted(worker_module, "check_checkpoint_root")
    counted(core.data, "check_data_dir")
    argv = ["--db", str(db), "--device", "cpu", "--data-dir", data, "--until-empty"]
    assert worker_module.main(argv) == 0
    assert sorted(checks) == ["check_checkpoint_root", "check_data_dir", "resolve_device"]
    assert re.search(r"worker: \S+ on cpu, database ", capsys.readouterr().out)


def test_a_cpu_worker_says_when_another_already_trains_on_this_cpu(
    tmp_path: Path, idx_writer: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    # Two CPU workers each took every core: runs took 1.7 min instead of 0.15.
    import socket

    db = str(tmp_path / "runs.db")
    repo = Repo.open(db)
    repo.enqueue([tiny_run(0)])
    with subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"]) as other:
        try:
            repo.register_worker(socket.gethostname(), other.pid, "cpu")
            repo.register_worker("other-box", os.getpid() + 1, "cpu")  # not this machine's
            run_worker(db, "cpu", True, None, str(idx_writer(tmp_path / "data")), None,
                       install_signals=False)  # fmt: skip
        finally:
            other.kill()
    out = capsys.readouterr().out
    assert f"warning: another worker trains on this machine's CPU (pid {other.pid}): " in out
    assert "--slots 2, which splits the cores" in out
    assert repo.list_runs()[0].status == RunStatus.SUCCEEDED  # a warning, not a refusal


def test_a_worker_says_when_its_clock_is_far_from_the_database_server_s(
    repo: Repo, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # Heartbeats are stamped by one machine's clock and aged by another's: a box 40 s
    # behind had its live runs marked lost by the others.
    real_time = time.time
    offset = repo.clock_offset()
    if repo.engine.dialect.name == "sqlite":
        assert offset is None  # one machine's clock
        return
    assert offset is not None and abs(offset) < 1.0
    monkeypatch.setattr(time, "time", lambda: real_time() - 40.0)
    offset = repo.clock_offset()
    assert offset is not None and 39.0 < offset < 41.0
    repo.enqueue(tiny_runs(1))
    run_worker(repo.url, "cpu", True, None, None, tmp_path / "ck", trainer=fake_trainer(),
               install_signals=False)  # fmt: skip
    out = capsys.readouterr().out
    assert "warning: this machine's clock is 40 s behind the database server's;" in out
    assert "clocks are 30 s apart, each reads the other's live runs as silent (10 minutes" in out
    assert repo.list_runs()[0].status == S.SUCCEEDED  # a warning, not a refusal
    monkeypatch.setattr(time, "time", real_time)
    run_worker(repo.url, "cpu", True, None, None, tmp_path / "ck", trainer=fake_trainer(),
               install_signals=False)  # fmt: skip
    assert "clock" not in capsys.readouterr().out


def opened_repos(monkeypatch: pytest.MonkeyPatch) -> list[Repo]:
    """Every Repo the worker modules open from now on."""
    opened: list[Repo] = []
    real_open = Repo.open

    def open_and_keep(*args: Any, **kwargs: Any) -> Repo:
        opened.append(real_open(*args, **kwargs))
        return opened[-1]

    monkeypatch.setattr(worker_module.Repo, "open", open_and_keep)
    return opened


def test_a_worker_keeps_trying_a_database_away_or_locked(
    db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A PostgreSQL restart ended every worker (rc 2) and left their runs "running"; so
    # did a SQLite lock held past the busy timeout (a backup, an SQL shell).
    opened = opened_repos(monkeypatch)
    run_worker(db_url, "cpu", True, None, None, None, trainer=fake_trainer(),
               install_signals=False)  # fmt: skip
    assert opened[0].reconnect_s == worker_module.RECONNECT_S
    assert opened[0].log is recording.say


def test_packed_slot_threads_keep_trying_their_database(
    repo: Repo, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Their repos were opened plainly: a restart ended every slot of a --slots worker.
    from core.stream_slots import run_stream_slots

    repo.enqueue(tiny_runs(2))
    opened = opened_repos(monkeypatch)
    assert run_stream_slots(repo.url, 2, "cpu", until_empty=True, trainer=fake_trainer(),
                            install_signals=False) == 0  # fmt: skip
    slots = [r for r in opened if r.reconnect_s]
    assert len(slots) == 2 and all(r.reconnect_s == worker_module.RECONNECT_S for r in slots)


def test_a_run_the_database_will_not_take_back_is_left_to_be_found_lost(
    repo: Repo, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # A SQLite lock past the worker's patience: the requeue failed, but the worker row
    # was then marked "stopped", and a stopped worker's running run is found by nobody
    # (no dashboard, ls or status marked it lost: only some worker's start, if any).
    (run_id,) = repo.enqueue([tiny_run()]).added_ids

    def refused(step: int) -> None:
        if step == 5:
            monkeypatch.setattr(repo, "requeue", refuse)
            raise QueueError("database runs.db is locked by another process (waited 15 s)")

    def refuse(*args: Any, **kwargs: Any) -> None:
        raise QueueError("database runs.db is locked by another process (waited 15 s)")

    worker = make_worker(repo, fake_trainer(on_step=refused), tmp_path)
    with pytest.raises(QueueError, match="locked"):
        worker.loop(until_empty=True)
    assert repo.get_run(run_id).status == S.RUNNING
    (row,) = repo.list_workers()  # still live: once its process is gone, it is found lost
    assert row.state != "stopped"
    said = capsys.readouterr().out
    assert f"run {run_id} not given back: found lost later" in said


def away_until(repo: Repo, monkeypatch: pytest.MonkeyPatch, seconds: float) -> str:
    """The database refuses ``repo``'s connections for ``seconds`` from now, for a reason
    that passes (a SQLite file's lock, a PostgreSQL server away); the reason as said."""
    if repo.engine.dialect.name == "sqlite":
        cause, why = sqlite3.OperationalError("database is locked"), "locked by another process"
    else:
        cause, why = Exception("Connection refused"), "unreachable (Connection refused)"
    real_connect, until = repo.engine.connect, time.monotonic() + seconds

    def connect() -> Any:
        if time.monotonic() < until:
            raise OperationalError("connect", {}, cause)
        return real_connect()

    monkeypatch.setattr(repo.engine, "connect", connect)
    return why


def test_a_stop_while_the_database_is_away_gives_the_run_back_once_it_is_back(
    repo: Repo, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # A polite stop during a PostgreSQL restart or another process's SQLite lock: the
    # worker tried once to give its run back, exited 2, and the run stayed "running"
    # until found lost, to be retried by hand.
    (run_id,) = repo.enqueue([tiny_run()]).added_ids
    repo.reconnect_s = worker_module.RECONNECT_S  # a worker's repo: patient
    why: list[str] = []

    def stopped_as_it_goes(step: int) -> None:
        if step == 5:  # asked to stop (as its signal handler does); the database goes
            worker.flags.signals = 1
            why.append(away_until(repo, monkeypatch, 2.5))

    worker = make_worker(repo, fake_trainer(on_step=stopped_as_it_goes), tmp_path)
    assert worker.loop() == 0  # a stop, not a database error
    run = repo.get_run(run_id)
    assert (run.status, run.worker_id, run.attempts) == (S.QUEUED, None, 1)
    assert [w.state for w in repo.list_workers(include_gone=True)] == ["stopped"]
    said = capsys.readouterr().out
    trying = f"asked to stop; the database is {why[0]}: trying to give run {run_id} back"
    assert f"{trying} for up to 30 s" in said
    assert f"stopped after 0 run(s); run {run_id} back in the queue" in said


def test_a_stop_while_the_database_stays_away_leaves_the_run_to_be_found_lost(
    repo: Repo, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # Away past GIVE_BACK_S: the worker stops as on any database error, its row left
    # live so that its run is found lost once the process is gone.
    (run_id,) = repo.enqueue([tiny_run()]).added_ids
    repo.reconnect_s = worker_module.RECONNECT_S
    monkeypatch.setattr(worker_module, "GIVE_BACK_S", 2.0)

    def stopped_as_it_goes(step: int) -> None:
        if step == 5:
            worker.flags.signals = 1
            away_until(repo, monkeypatch, 3600)

    worker = make_worker(repo, fake_trainer(on_step=stopped_as_it_goes), tmp_path)
    started = time.monotonic()
    with pytest.raises(QueueError):
        worker.loop()
    assert time.monotonic() - started < 10
    monkeypatch.undo()  # the database back, to read what it holds
    assert repo.get_run(run_id).status == S.RUNNING
    (row,) = repo.list_workers()
    assert row.state != "stopped"
    said = capsys.readouterr().out
    assert f"run {run_id} not given back within 2 s: found lost later" in said


def test_a_stop_while_its_finish_is_refused_records_the_run_finished_once_it_is_back(
    repo: Repo, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # Trained to the end, its "succeeded" write refused (a lock, a server restarting) as
    # a stop came: the run went back to the queue and was trained again from scratch.
    (run_id,) = repo.enqueue([tiny_run()]).added_ids
    repo.reconnect_s = worker_module.RECONNECT_S
    real_finish, why = repo.finish, []

    def finish(*args: Any) -> bool:
        if not why:  # asked to stop as the last write starts; the database goes
            worker.flags.signals = 1
            why.append(away_until(repo, monkeypatch, 2.5))
        return real_finish(*args)

    monkeypatch.setattr(repo, "finish", finish)
    worker = make_worker(repo, fake_trainer(), tmp_path)
    assert worker.loop() == 1  # a stop, not a database error; the run ended
    run = repo.get_run(run_id)
    assert (run.status, run.validation_loss, run.inputs_done) == (S.SUCCEEDED, 0.25, 6400)
    assert run.attempts == 1
    assert [w.state for w in repo.list_workers(include_gone=True)] == ["stopped"]
    said = capsys.readouterr().out
    assert (
        f"asked to stop; the database is {why[0]}: trying to record run {run_id} as "
        "finished for up to 30 s" in said
    )
    assert f"run {run_id}: succeeded, validation loss 0.25" in said
    assert f"stopped after 1 run(s); run {run_id} recorded as finished" in said


def lock_at_its_end(trainer: Trainer, db_path: Path, flags: StopFlags, hold: ExitStack,
                    where: str) -> Trainer:  # fmt: skip
    """``trainer``, with a stop asked for and another process's write lock taken on
    ``db_path`` (held 2 s) as its run's last metric writes come: ``where`` "last
    validation" (as its last step ends: the final pass's point is refused) or "last
    flush" (as the training returns: the worker's flush of what is left is refused)."""

    def locked_now() -> None:
        flags.signals = 1
        hold.enter_context(write_lock_held(db_path, release_after_s=2.0))

    def train(run: RunRow, cb: FitCallbacks, checkpoint_dir: Path) -> FitResult:
        should_stop = cb.should_stop
        assert should_stop is not None and run.total_inputs is not None
        steps, asked = run.total_inputs // 64, []

        def stop_at_the_end() -> bool:  # asked before each step, as fit(): not after the last
            stop = should_stop()
            asked.append(stop)
            if where == "last validation" and len(asked) == steps:  # its last step goes on
                locked_now()
            return stop

        cb = replace(cb, should_stop=stop_at_the_end)
        result = fake_trainer(steps=steps)(run, cb, checkpoint_dir)
        if where == "last flush":
            locked_now()
        return result

    return train


@pytest.mark.parametrize("where", ["last validation", "last flush"])
def test_a_stop_while_a_trained_run_s_last_metrics_are_refused_records_it_finished(
    db_path: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], where: str
) -> None:
    # Trained to the end, its last metric write (the final pass's point, or the worker's
    # flush after fit()) refused by another process's lock as a stop came: the error
    # left fit() or the worker, the run went back to the queue and trained again from
    # scratch. Its "succeeded" write alone was recorded so (GIVE_BACK_S).
    repo = Repo.open(str(db_path), busy_timeout_s=0.3)
    repo.reconnect_s = worker_module.RECONNECT_S  # a worker's repo: patient
    (run_id,) = repo.enqueue([tiny_run()]).added_ids
    flags = StopFlags()
    with ExitStack() as hold:
        trainer = lock_at_its_end(fake_trainer(), db_path, flags, hold, where)
        worker = Worker(repo, "cpu", trainer, tmp_path / "ck", flags, heartbeat_s=0.05)
        assert worker.loop() == 1  # a stop, not a database error; the run ended
    run = repo.get_run(run_id)
    assert (run.status, run.validation_loss, run.attempts) == (S.SUCCEEDED, 0.25, 1)
    losses = repo.metrics_since(run_id, names=["val_loss"])
    assert [(m.inputs, m.value) for m in losses] == [(512, 0.25)]  # the final pass's point
    said = capsys.readouterr().out
    assert (
        f"run {run_id}: metric points not written (database locked by another process): "
        "to be written with the run's end" in said
    )
    assert f"run {run_id}: succeeded, validation loss 0.25" in said
    assert f"stopped after 1 run(s); run {run_id} recorded as finished" in said
    repo.close()


@pytest.mark.parametrize("end", ["raised", "validated to NaN"])
def test_a_stop_while_a_failed_run_s_end_is_refused_records_it_failed(
    db_path: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], end: str
) -> None:
    # A run whose end is a failure (its loss NaN as it trained, or its final pass's),
    # its "failed" write refused by another process's lock as a stop came: the run went
    # back to the queue, to train and fail again. Recorded failed within GIVE_BACK_S, as
    # a run that succeeded is.
    repo = Repo.open(str(db_path), busy_timeout_s=0.3)
    repo.reconnect_s = worker_module.RECONNECT_S  # a worker's repo: patient
    flags = StopFlags()
    with ExitStack() as hold:
        if end == "raised":  # NaN at step 3: the lock taken as that step fails
            (run_id,) = repo.enqueue([tiny_run(lr=100.0)]).added_ids

            def locked_at_step_3(step: int) -> None:
                if step == 3:
                    flags.signals = 1
                    hold.enter_context(write_lock_held(db_path, release_after_s=2.0))

            trainer = fake_trainer(on_step=locked_at_step_3)
            message = "loss became NaN at step 3"
        else:
            (run_id,) = repo.enqueue([tiny_run(lr=50.0)]).added_ids
            trainer = lock_at_its_end(fake_trainer(), db_path, flags, hold, "last flush")
            message = "validation loss is not finite (NaN/inf)"
        worker = Worker(repo, "cpu", trainer, tmp_path / "ck", flags, heartbeat_s=0.05)
        assert worker.loop() == 1  # a stop, not a database error; the run ended
    run = repo.get_run(run_id)
    assert (run.status, run.attempts, run.worker_id) == (S.FAILED, 1, worker.id)
    assert run.error is not None and run.error.startswith(message)
    said = capsys.readouterr().out
    assert f"trying to record run {run_id} as failed for up to 30 s" in said
    assert f"run {run_id}: failed: {message}" in said
    assert f"stopped after 1 run(s); run {run_id} recorded as failed" in said
    repo.close()


def test_a_failing_run_s_points_refused_as_the_stop_came_are_written_with_its_end(
    db_path: Path, tmp_path: Path
) -> None:
    # Kept for the run's end, the points refused as the stop came were dropped where
    # that end was a failure (its final pass validated to NaN): its curve lost its end.
    repo = Repo.open(str(db_path), busy_timeout_s=0.3)
    repo.reconnect_s = worker_module.RECONNECT_S  # a worker's repo: patient
    (run_id,) = repo.enqueue([tiny_run()]).added_ids
    worker = make_worker(repo, fake_trainer(), tmp_path)
    run = repo.claim(worker.id)
    assert run is not None
    recorder = recording.RunRecorder(repo, run_id, worker.flags, worker_id=worker.id)
    worker.flags.signals = 1  # asked to stop
    with write_lock_held(db_path):  # another process's, as the last points come
        recorder.on_train_loss(TrainPoint(8, 512, 0.5, 0.001, 1000.0, None))
        recorder.flush()  # refused: kept for the run's end
    worker.end(run, FitResult(float("nan"), inputs_seen=512, steps=8), recorder)
    ended = repo.get_run(run_id)
    assert (ended.status, ended.error) == (S.FAILED, "validation loss is not finite (NaN/inf)")
    points = repo.metrics_since(run_id, names=["train_loss"])
    assert [(m.inputs, m.value) for m in points] == [(512, 0.5)]
    repo.close()


def test_a_run_s_last_points_are_written_with_its_end_once(repo: Repo) -> None:
    # Kept after a refused flush whose COMMIT may have gone through unheard (a connection
    # cut while it was on the wire): its end must not write them twice.
    (run_id,) = repo.enqueue([tiny_run()]).added_ids
    worker = repo.register_worker("h", 1, "cpu")
    assert repo.claim(worker) is not None
    written = (MetricPoint(4, 256, "val_loss", 0.5),)
    last = (MetricPoint(8, 512, "val_loss", 0.25), MetricPoint(8, 512, "lr", float("nan")))
    repo.add_metrics(run_id, written, owner=worker)
    assert repo.finish(run_id, worker, FinalFigures(validation_loss=0.25, last_points=last))
    assert repo.finish(run_id, worker, FinalFigures(last_points=last)) is False  # ended
    points = repo.metrics_since(run_id)
    assert [(m.inputs, m.name, m.value) for m in points] == [
        (256, "val_loss", 0.5),
        (512, "val_loss", 0.25),  # not NaN's: no point of a curve
    ]
    (run_id,) = repo.enqueue([tiny_run(seed=1)]).added_ids
    assert repo.claim(worker) is not None
    repo.add_metrics(run_id, last[:1], owner=worker)  # the refused try's, committed unheard
    assert repo.fail(run_id, worker, "boom", FinalFigures(last_points=last))
    assert [m.value for m in repo.metrics_since(run_id)] == [0.25]


@pytest.mark.parametrize(
    ("verb", "lr", "end"), [("finish", 1e-3, "finished"), ("fail", 100.0, "failed")]
)
def test_an_end_still_refused_at_a_stop_gives_the_run_back_and_says_so(
    repo: Repo,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    verb: str,
    lr: float,
    end: str,
) -> None:
    # The "succeeded" (or "failed": lr 100 trains to NaN) write refused all GIVE_BACK_S
    # long, the database taking other writes: the run goes back to the queue as before,
    # and the log says its end was not recorded (a failure's said only "back in the queue").
    (run_id,) = repo.enqueue([tiny_run(lr=lr)]).added_ids
    repo.reconnect_s = worker_module.RECONNECT_S
    monkeypatch.setattr(worker_module, "GIVE_BACK_S", 1.0)
    locked = OperationalError("update", {}, sqlite3.OperationalError("database is locked"))

    def refused(*args: Any) -> bool:
        worker.flags.signals = 1
        raise QueueError("the database refused the write") from locked

    monkeypatch.setattr(repo, verb, refused)
    worker = make_worker(repo, fake_trainer(), tmp_path)
    assert worker.loop() == 0
    run = repo.get_run(run_id)
    assert (run.status, run.worker_id, run.attempts) == (S.QUEUED, None, 1)
    said = capsys.readouterr().out
    assert f"trying to record run {run_id} as {end} for up to 1 s" in said
    assert (
        f"stopped after 0 run(s); run {run_id} not recorded as {end} within 1 s: "
        "back in the queue" in said
    )


def refused_slowly(repo: Repo, monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """Each connection ``repo`` opens refused (``away_until``) only after 0.4 s, as a
    busy timeout waits before it says "locked"; the list fills with when each try began."""
    refusing, began = repo.engine.connect, []

    def slow_refusal() -> Any:
        began.append(time.monotonic())
        time.sleep(0.4)
        return refusing()

    monkeypatch.setattr(repo.engine, "connect", slow_refusal)
    return began


def test_a_stop_while_the_database_stays_away_begins_no_try_past_the_give_back_time(
    repo: Repo, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A stack's runs go back one verb each. Past GIVE_BACK_S each further run still got a
    # try of its own, each a whole busy timeout (15 s) on SQLite: a stack of 4 held a
    # stopping worker 76 s, past `stop`'s 60 s wait, where it says "up to 30 s".
    ids = repo.enqueue(tiny_runs(5)).added_ids
    repo.reconnect_s = worker_module.RECONNECT_S
    worker = make_worker(repo, fake_trainer(), tmp_path)
    worker.current = list(ids)
    worker.flags.signals = 1
    why = away_until(repo, monkeypatch, 3600)
    began = refused_slowly(repo, monkeypatch)
    deadline = time.monotonic() + 1.0
    gave = worker.give_back_quietly(deadline)
    assert (gave.back, gave.refused) == ([], list(ids)), why
    assert began and all(at < deadline for at in began), [at - deadline for at in began]


def test_a_finish_refused_past_the_give_back_time_begins_no_requeue_after_it(
    repo: Repo, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A run trained to the end whose "succeeded" write was still refused at the deadline
    # then got a requeue try begun past it (the deadline was checked only once a run had
    # been refused): one more busy timeout, 15 s on SQLite, past "up to 30 s".
    (run_id,) = repo.enqueue([tiny_run()]).added_ids
    repo.reconnect_s = worker_module.RECONNECT_S
    worker = make_worker(repo, fake_trainer(), tmp_path)
    worker.current = [run_id]
    worker.finishing[run_id] = worker_module.Ending(FinalFigures(validation_loss=0.25), "succeeded")
    worker.flags.signals = 1
    why = away_until(repo, monkeypatch, 3600)
    began = refused_slowly(repo, monkeypatch)
    deadline = time.monotonic() + 0.3
    gave = worker.give_back_quietly(deadline)
    assert (gave.finished, gave.back, gave.refused) == ([], [], [run_id]), why
    assert gave.unfinished == [run_id]
    assert began and all(at < deadline for at in began), [at - deadline for at in began]


def test_a_worker_back_from_an_outage_gives_the_others_time_to_come_back(
    repo: Repo, tmp_path: Path
) -> None:
    # A 20 s PostgreSQL restart: the first worker back marked the others "worker lost",
    # though they had been as cut off as it was, and were only waiting to try again.
    (run_id,) = repo.enqueue([tiny_run()]).added_ids
    other = repo.register_worker("elsewhere", 1, "cpu")
    assert repo.claim(other) is not None
    # Its last beat long ago, as after a long outage: past any clock difference, so
    # judged lost by its age at the first look that judges (silent less long, by its
    # beat not changing: test_a_run_silent_less_long_at_start_is_marked_lost_by_...).
    silent_s = worker_module.SURELY_LOST_AFTER_S + 60
    with repo._write() as conn:
        conn.execute(update(RUN).values(heartbeat_at=time.time() - silent_s))
    worker = make_worker(repo, fake_trainer(), tmp_path)
    worker.repo.outage.ended_at = time.monotonic()  # the database just came back
    worker.recover()
    assert repo.get_run(run_id).status == S.RUNNING
    worker.repo.outage.ended_at = time.monotonic() - worker.stale_after_s  # long enough
    worker.recover()
    assert repo.get_run(run_id).status == S.FAILED


def waited_out_a_lock(db_path: Path, tmp_path: Path, stale_after_s: float) -> tuple[Worker, int]:
    """A worker (a patient repo on the SQLite file ``db_path``) whose write waited out
    another process's write lock, held past its busy timeout, and a run of another box
    whose beat has not changed since before that lock: (the worker, that run)."""
    repo = Repo.open(str(db_path), busy_timeout_s=0.2)
    repo.reconnect_s, said = worker_module.RECONNECT_S, []
    repo.log = said.append
    (run_id,) = repo.enqueue([tiny_run()]).added_ids
    other = repo.register_worker("elsewhere", 1, "cpu")
    assert repo.claim(other) is not None
    worker = make_worker(repo, fake_trainer(), tmp_path, stale_after_s=stale_after_s)
    worker.recover()  # its first look: the other run's beat read
    with write_lock_held(db_path, release_after_s=stale_after_s + 0.5):
        repo.heartbeat(worker.id)  # refused past the busy timeout, tried again
    assert said[0].startswith("database locked by another process (held "), said
    assert said[-1].startswith("database no longer locked after "), said
    return worker, run_id


def test_a_worker_past_another_process_s_lock_marks_a_dead_box_s_run_lost_in_the_limit(
    db_path: Path, tmp_path: Path
) -> None:
    # A sqlite3 shell left in BEGIN past the busy timeout counted as an outage: the look
    # was held off the stale limit after it, and timed the silence afresh after that, so
    # a dead box's run stayed "running" twice the limit past the lock.
    stale_after_s = 2.0
    worker, run_id = waited_out_a_lock(db_path, tmp_path, stale_after_s)
    worker.recover()  # the first look past the lock reads the beats afresh
    assert worker.repo.get_run(run_id).status == S.RUNNING
    time.sleep(stale_after_s + 0.2)
    worker.recover()
    assert worker.repo.get_run(run_id).status == S.FAILED
    worker.repo.close()


def test_a_worker_past_another_process_s_lock_gives_the_others_time_to_beat(
    db_path: Path, tmp_path: Path
) -> None:
    # The lock held the other boxes' beats up as it held this worker's writes: a beat
    # unchanged across it says nothing of its worker until the stale limit after it.
    worker, run_id = waited_out_a_lock(db_path, tmp_path, stale_after_s=1.0)
    worker.recover()  # its memory of the beat is older than the stale limit
    assert worker.repo.get_run(run_id).status == S.RUNNING
    worker.repo.close()


def test_a_worker_s_look_marks_lost_a_run_whose_beat_was_edited_to_nan(
    repo: Repo, tmp_path: Path
) -> None:
    # A running run's heartbeat_at set by hand to 'NaN' (text on SQLite, a double NaN on
    # PostgreSQL): SQLite's was marked lost once read unchanged for the stale limit;
    # PostgreSQL's never was, NaN being unequal to itself, nor by age (NaN sorts past
    # every time there): "running" for good under a dead worker.
    from sqlalchemy import text

    (run_id,) = repo.enqueue([tiny_run()]).added_ids
    other = repo.register_worker("elsewhere", 1, "cpu")
    assert repo.claim(other) is not None
    with repo.engine.begin() as conn:
        conn.execute(text("UPDATE run SET heartbeat_at = 'NaN' WHERE id = :id"), {"id": run_id})
    worker = make_worker(repo, fake_trainer(), tmp_path, stale_after_s=0.3)
    worker.recover()  # its first look: the beat read
    time.sleep(0.5)
    worker.recover()
    with repo.engine.connect() as conn:  # read so: SQLite's text makes the row damaged
        status = conn.execute(select(RUN.c.status).where(RUN.c.id == run_id)).scalar_one()
    assert status == "failed"


def test_the_device_help_names_plain_cuda_which_the_worker_takes(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # `worker --help` listed "auto, cpu, cuda:N", yet `--device cuda` trains (on cuda:0)
    # and the worker's own errors offer it: the help said less than the worker takes.
    import torch

    from core.device_choice import resolve_device

    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    assert resolve_device("cuda") == "cuda:0"
    parser = argparse.ArgumentParser()
    add_worker_arguments(parser)
    said = next(action.help for action in parser._actions if action.dest == "device")
    assert said is not None and re.search(r"(?<![\w:])cuda(?![\w:])", said), said
    assert "cuda:0" in said and "cuda:N" in said
