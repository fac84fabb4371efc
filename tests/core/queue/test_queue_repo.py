"""The queue's verbs against a real SQLite file."""

from __future__ import annotations

import math
import re
import time
from collections.abc import Callable

import pytest
from queue_helpers import beat_behind, beating_behind, tiny_run, tiny_runs
from sqlalchemy import bindparam, insert, select, update

import core.queue.repo as repo_module
from core.config import RunConfig
from core.queue import (
    FinalFigures,
    GpuSnapshot,
    InvalidTransition,
    MetricPoint,
    NewRun,
    QueueError,
    Repo,
    RunFilter,
    RunStatus,
    UnknownRun,
)
from core.queue.failures import FailureCause, failure_cause
from core.queue.repo import RUN, WORKER
from core.queue.status import can_transition

S = RunStatus


def claim(repo: Repo, worker: str) -> int:
    run = repo.claim(worker)
    assert run is not None
    return run.id


def status(repo: Repo, run_id: int) -> RunStatus:
    return repo.get_run(run_id).status


# ----- enqueue ------------------------------------------------------------------------


def test_enqueue_stores_everything_a_dashboard_needs(repo: Repo) -> None:
    result = repo.enqueue([tiny_run(3, lr=0.01)], priority=5)
    assert (result.added, result.skipped) == (1, 0)
    run = repo.get_run(result.added_ids[0])
    assert run.status == S.QUEUED and run.priority == 5 and run.seed == 3
    assert run.swept == {"seed": 3, "lr": 0.01}
    assert run.config.lr == 0.01 and run.config_hash == run.config.config_hash()
    assert (run.param_count, run.total_inputs, run.inputs_done) == (321, 512, 0)
    assert run.progress == 0.0 and not run.has_samples and run.created_at <= time.time()


def test_same_config_and_seed_is_skipped_while_queued_running_or_succeeded(repo: Repo) -> None:
    assert repo.enqueue(tiny_runs(3)).added == 3
    again = repo.enqueue(tiny_runs(3))
    assert (again.added, again.skipped) == (0, 3)
    assert set(again.skipped_names) == {r.name for r in tiny_runs(3)}
    worker = repo.register_worker("h", 1, "cpu")
    first = claim(repo, worker)
    repo.finish(first, worker, FinalFigures(validation_loss=0.1))
    assert repo.enqueue(tiny_runs(3)).added == 0  # succeeded, running, queued all block


def test_extending_a_sweep_adds_only_the_new_cells(repo: Repo) -> None:
    repo.enqueue(tiny_runs(2))
    extended = repo.enqueue(tiny_runs(4))  # two more seeds
    assert (extended.added, extended.skipped) == (2, 2)
    assert len(repo.list_runs()) == 4


def test_failed_and_cancelled_runs_are_queued_again_in_place_and_force_adds_anyway(
    repo: Repo,
) -> None:
    ids = repo.enqueue(tiny_runs(2)).added_ids
    worker = repo.register_worker("h", 1, "cpu")
    failed = claim(repo, worker)
    repo.add_metrics(failed, [MetricPoint(1, 64, "train_loss", 0.3)], inputs_done=64)
    repo.fail(failed, worker, "boom")
    repo.request_cancel([ids[1]])
    again = repo.enqueue(tiny_runs(2), priority=4)
    assert (again.added, again.queued_again, again.skipped) == (0, 2, 0)
    assert sorted(again.queued_again_ids) == sorted(ids)  # one row per cell, not two
    assert "added 0, queued again 2 (failed or cancelled before), skipped 0" in again.summary()
    for run in repo.list_runs():
        assert (run.status, run.error, run.inputs_done, run.priority) == (S.QUEUED, None, 0, 4)
    assert repo.metrics_since(failed) == []
    assert repo.enqueue(tiny_runs(2)).skipped == 2  # queued now: they block
    forced = repo.enqueue(tiny_runs(2), force=True)
    assert (forced.added, forced.skipped) == (2, 0)


def test_queueing_again_leaves_a_run_alone_that_was_retried_and_claimed_meanwhile(
    repo: Repo,
) -> None:
    # On PostgreSQL the enqueue reads before it writes: the write re-checks the status.
    (run_id,) = repo.enqueue([tiny_run(0)]).added_ids
    worker = repo.register_worker("h", 1, "cpu")
    repo.fail(claim(repo, worker), worker, "boom")
    repo.retry([run_id])
    assert claim(repo, worker) == run_id  # running now, though read as failed a moment ago
    with repo._write() as conn:
        assert not repo._queue_again(conn, run_id, tiny_run(0), 0)
    assert repo.get_run(run_id).status == S.RUNNING


def test_the_same_cell_in_another_experiment_is_its_own_run(repo: Repo) -> None:
    # The logbook's tables share cells (T5's gelu row is T7's ks-3): each table is whole.
    assert repo.enqueue(tiny_runs(2, "t5")).added == 2
    in_t7 = repo.enqueue(tiny_runs(2, "t7"))
    assert (in_t7.added, in_t7.skipped) == (2, 0)
    assert repo.enqueue(tiny_runs(2, "t7")).skipped == 2  # within t7 it is the same run
    assert [r.experiment for r in repo.list_runs()] == ["t5", "t5", "t7", "t7"]


def test_duplicates_inside_one_batch_are_skipped(repo: Repo) -> None:
    result = repo.enqueue([tiny_run(0), tiny_run(0)])
    assert (result.added, result.skipped) == (1, 1)


# ----- claim, heartbeat, metrics, ending ----------------------------------------------


def test_largest_first_takes_the_most_work_within_a_priority(repo: Repo) -> None:
    def run(seed: int, params: int, inputs: int) -> NewRun:
        config = RunConfig(layers=2, channels=4, max_inputs=inputs, seed=seed)
        return NewRun.from_config(
            config, experiment="exp", name=f"s{seed}", param_count=params, swept={"seed": seed}
        )

    # Logbook-sized figures: parameters x inputs is past 2**31 (PostgreSQL's INTEGER).
    small, big, mid = repo.enqueue(
        [run(0, 2_000, 180_000), run(1, 200_000, 180_000), run(2, 2_000, 1_800_000)]
    ).added_ids
    urgent = repo.enqueue([run(3, 10, 512)], priority=1).added_ids[0]
    tie = repo.enqueue([run(4, 200_000, 180_000)]).added_ids[0]  # big's work, queued later
    worker = repo.register_worker("h", 1, "cpu")
    order = [repo.claim(worker, largest_first=True) for _ in range(5)]
    assert [r.id for r in order if r is not None] == [urgent, big, tie, mid, small]


def test_claim_like_takes_queued_runs_that_differ_only_in_seed(repo: Repo) -> None:
    cell = repo.enqueue(tiny_runs(4)).added_ids
    other = repo.enqueue([tiny_run(5, lr=1e-3)]).added_ids[0]  # another config
    elsewhere = repo.enqueue([tiny_run(7, "another-sweep")]).added_ids  # same config
    worker, rival = repo.register_worker("h", 1, "cpu"), repo.register_worker("h", 2, "cpu")
    first = repo.claim(worker)
    assert first is not None and first.id == cell[0]
    assert claim(repo, rival) == cell[1]  # already running elsewhere: not a partner
    partners = repo.claim_like(worker, first, 1)
    assert [p.id for p in partners] == [cell[2]]
    assert [(p.status, p.worker_id, p.attempts) for p in partners] == [(S.RUNNING, worker, 1)]
    rest = repo.claim_like(worker, first, 5)
    assert [p.id for p in rest] == [cell[3], elsewhere[0]]  # not the lr=1e-3 run
    assert status(repo, other) == S.QUEUED
    assert repo.claim_like(worker, first, 5) == [] and repo.claim_like(worker, first, 0) == []
    # One heartbeat keeps the whole stack fresh.
    before = {r.id: r.heartbeat_at for r in repo.list_runs()}
    time.sleep(0.01)
    repo.heartbeat(worker, run_id=first.id, more_run_ids=[cell[2], cell[3], elsewhere[0]])
    after = {r.id: r.heartbeat_at for r in repo.list_runs()}
    fresher = {i for i in after if (after[i] or 0) > (before[i] or 0)}
    assert fresher == {first.id, cell[2], cell[3], elsewhere[0]}


def test_a_claim_racing_claim_like_still_finds_the_queued_runs(
    repo: Repo, monkeypatch: pytest.MonkeyPatch
) -> None:
    # claim_like compares candidates without locking them: another worker's claim at that
    # moment must not find the queue empty (on PostgreSQL, SKIP LOCKED skipped them all).
    import threading

    import core.queue.repo as repo_module

    cell = repo.enqueue(tiny_runs(3)).added_ids
    unrelated = repo.enqueue([tiny_run(9, lr=1e-3)]).added_ids[0]  # same shape, another lr
    worker = repo.register_worker("h", 1, "cpu")
    lead = repo.claim(worker)
    assert lead is not None and lead.id == cell[0]
    rival_repo = Repo.open(repo.url)
    rival = rival_repo.register_worker("h", 2, "cpu")
    got: list[object] = []
    thread = threading.Thread(target=lambda: got.append(rival_repo.claim(rival)))
    parse, calls = repo_module.RunConfig.from_json, []

    def slow_parse(text: str) -> RunConfig:
        calls.append(text)
        if len(calls) == 2:  # the 1st reads `lead`'s own config; the 2nd is a candidate
            thread.start()  # the rival claims while claim_like compares
            thread.join(2)  # PostgreSQL answers now; SQLite waits for the write lock
        return parse(text)

    monkeypatch.setattr(repo_module.RunConfig, "from_json", slow_parse)
    partners = repo.claim_like(worker, lead, 5)
    thread.join(10)
    rival_repo.close()
    assert len(got) == 1 and got[0] is not None, "the rival found the queue empty"
    taken = {p.id for p in partners} | {got[0].id}  # type: ignore[attr-defined]
    assert len(taken) == len(partners) + 1  # no run handed out twice
    assert taken <= {cell[1], cell[2], unrelated}
    assert unrelated not in {p.id for p in partners}


def test_a_stack_claim_is_whole_though_another_slot_claims_meanwhile(repo: Repo) -> None:
    # `worker --slots 2 --stack 3`: the other slot claims while this one has taken a run
    # and not yet its seeds. It must get the next cell, not split this one.
    import threading

    cell = repo.enqueue(tiny_runs(3)).added_ids
    next_cell = repo.enqueue([tiny_run(0, lr=1e-3)]).added_ids[0]
    slot_1 = repo.register_worker("h", 1, "cpu")
    rival_repo = Repo.open(repo.url)
    slot_2 = rival_repo.register_worker("h", 1, "cpu")
    got: list[object] = []
    rival = threading.Thread(target=lambda: got.append(rival_repo.claim(slot_2)))

    def stackable(config: RunConfig) -> bool:
        rival.start()  # between the first run's claim and its seeds'
        rival.join(2)  # it waits for this claim to end (SQLite and PostgreSQL alike)
        return True

    stack = repo.claim_stack(slot_1, False, 3, stackable)
    rival.join(10)
    rival_repo.close()
    assert [run.id for run in stack] == list(cell)
    assert [getattr(run, "id", None) for run in got] == [next_cell]
    assert {run.worker_id for run in stack} == {slot_1}


def test_a_claim_waits_for_the_claims_lock_no_longer_than_the_busy_timeout(
    repo: Repo,
) -> None:
    # PostgreSQL: claims take turns on one advisory lock. A box that lost its network
    # while holding it must not hold every other box's claims for hours.
    if not repo.url.startswith("postgresql"):
        pytest.skip("the claims' lock is PostgreSQL's (SQLite's write lock has its timeout)")
    from sqlalchemy import func, select

    repo.enqueue(tiny_runs(1))
    worker = repo.register_worker("h", 1, "cpu")
    impatient = Repo.open(repo.url, busy_timeout_s=0.3)
    with repo.engine.connect() as holder, holder.begin():
        holder.execute(select(func.pg_advisory_xact_lock(repo_module.CLAIM_LOCK_KEY)))
        started = time.monotonic()
        with pytest.raises(QueueError, match="locked by another process"):
            impatient.claim(worker)
        assert time.monotonic() - started < 5
    assert impatient.claim(worker) is not None  # the lock is free again
    # `next` takes turns on it too: two at once read the same top priority and gave
    # their runs equal ones.
    with repo.engine.connect() as holder, holder.begin():
        holder.execute(select(func.pg_advisory_xact_lock(repo_module.CLAIM_LOCK_KEY)))
        with pytest.raises(QueueError, match="locked by another process"):
            impatient.move_to_front([1])
    impatient.close()


def test_a_stack_claim_takes_no_seeds_for_a_run_that_cannot_stack(repo: Repo) -> None:
    cell = repo.enqueue(tiny_runs(3)).added_ids
    worker = repo.register_worker("h", 1, "cpu")
    assert [run.id for run in repo.claim_stack(worker, False, 3, lambda config: False)] == [cell[0]]
    assert [run.id for run in repo.claim_stack(worker, False, 1, lambda config: True)] == [cell[1]]
    assert [run.id for run in repo.claim_stack(worker, False, 3, lambda config: True)] == [cell[2]]
    assert repo.claim_stack(worker, False, 3, lambda config: True) == []


def test_a_worker_whose_stack_lost_one_run_still_trains_the_others(repo: Repo) -> None:
    cell = repo.enqueue(tiny_runs(3)).added_ids
    worker = repo.register_worker("h", 1, "cpu")
    repo.claim_stack(worker, False, 3, lambda config: True)

    def row() -> tuple[str, int | None, int]:
        (w,) = repo.list_workers()
        return w.state, w.current_run_id, w.runs_done

    assert repo.mark_cancelled(cell[0], worker, FinalFigures(inputs_done=64))
    assert row() == ("running", cell[1], 1)  # not idle: two runs of its stack still train
    assert repo.fail(cell[1], worker, "loss became NaN at step 3")
    assert row() == ("running", cell[2], 2)
    assert repo.finish(cell[2], worker, FinalFigures(validation_loss=0.25))
    assert row() == ("idle", None, 3)


def test_claim_takes_highest_priority_then_oldest(repo: Repo) -> None:
    low = repo.enqueue([tiny_run(0)]).added_ids[0]
    high = repo.enqueue([tiny_run(1), tiny_run(2)], priority=3).added_ids
    worker = repo.register_worker("h", 1, "cpu")
    assert [claim(repo, worker) for _ in range(3)] == [high[0], high[1], low]
    assert repo.claim(worker) is None


def test_claim_marks_run_and_worker(repo: Repo) -> None:
    repo.enqueue([tiny_run()])
    worker = repo.register_worker("h", 1, "cpu")
    run = repo.claim(worker)
    assert run is not None and run.status == S.RUNNING and run.worker_id == worker
    assert run.attempts == 1 and run.started_at and run.heartbeat_at
    (row,) = repo.list_workers()
    assert (row.state, row.current_run_id) == ("running", run.id)


def test_metrics_are_inserted_in_batches_and_read_incrementally(repo: Repo) -> None:
    repo.enqueue(tiny_runs(2))
    worker = repo.register_worker("h", 1, "cpu")
    run_id = claim(repo, worker)
    batch = [MetricPoint(step, step * 64, "train_loss", 1 / step) for step in range(1, 51)]
    repo.add_metrics(run_id, batch, inputs_done=3200)
    repo.add_metrics(2, [MetricPoint(1, 64, "train_loss", 9.0)])  # another run's rows
    rows = repo.metrics_since(run_id)
    assert [r.step for r in rows] == list(range(1, 51))
    assert repo.get_run(run_id).inputs_done == 3200
    later = repo.metrics_since(run_id, after_id=rows[-1].id)
    assert later == []
    repo.add_metrics(run_id, [MetricPoint(51, 3264, "val_loss", 0.2)])
    (new,) = repo.metrics_since(run_id, after_id=rows[-1].id)
    assert (new.name, new.value, new.inputs) == ("val_loss", 0.2, 3264)
    assert repo.metrics_since(run_id, names=["val_loss"]) == [new]
    assert len(repo.metrics_since(run_id, limit=10)) == 10


def test_progress_stamps_the_heartbeat_and_the_training_rate_so_far(repo: Repo) -> None:
    # The in/s of a new run read 8,791 for about 1,000: its inputs done were divided by
    # the time since its claim up to an older heartbeat.
    run_id = repo.enqueue([tiny_run()]).added_ids[0]
    worker = repo.register_worker("h", 1, "cpu")
    claimed = repo.claim(worker)
    assert claimed is not None and claimed.heartbeat_at is not None
    time.sleep(0.02)
    repo.add_metrics(run_id, [], inputs_done=640, inputs_per_s=1234.5)
    run = repo.get_run(run_id)
    assert (run.inputs_done, run.inputs_per_s) == (640, 1234.5)
    assert run.heartbeat_at is not None and run.heartbeat_at > claimed.heartbeat_at
    repo.add_metrics(run_id, [], inputs_done=1280)  # no rate given: the last one stays
    assert repo.get_run(run_id).inputs_per_s == 1234.5
    # Its final figure replaces it.
    assert repo.finish(run_id, worker, FinalFigures(validation_loss=0.2, inputs_per_s=999.0))
    assert repo.get_run(run_id).inputs_per_s == 999.0
    # A late write that reached a queued row (review: a requeue racing a flush) is
    # forgotten by the next claim, which would otherwise show it as the new attempt's.
    other = repo.enqueue([tiny_run(1)]).added_ids[0]
    repo.add_metrics(other, [], inputs_done=64, inputs_per_s=77.0)
    assert repo.get_run(other).inputs_per_s == 77.0
    again = repo.claim(worker)
    assert again is not None and again.id == other and again.inputs_per_s is None


def test_heartbeat_refreshes_run_and_worker_with_gpu_stats(repo: Repo) -> None:
    repo.enqueue([tiny_run()])
    worker = repo.register_worker("h", 1, "cuda:0")
    run_id = claim(repo, worker)
    before = repo.get_run(run_id).heartbeat_at
    gpu = GpuSnapshot("H100", 97.0, 5 * 2**30, 80 * 2**30, 61.0)
    repo.heartbeat(worker, run_id=run_id, inputs_done=128, gpu=gpu)
    run = repo.get_run(run_id)
    assert run.heartbeat_at is not None and before is not None and run.heartbeat_at >= before
    assert run.inputs_done == 128
    (row,) = repo.list_workers()
    assert row.gpu == gpu  # 80 GiB fits: byte counts are BIGINT


def test_finish_stores_figures_and_samples(repo: Repo) -> None:
    repo.enqueue([tiny_run()])
    worker = repo.register_worker("h", 1, "cuda:0")  # a CPU's peak is not read back
    run_id = claim(repo, worker)
    figures = FinalFigures(
        validation_loss=0.05, train_seconds=12.0, inputs_per_s=42.5, peak_memory_bytes=3 * 2**32,
        inputs_done=512, checkpoint_path="ck/1.pt", path_used="plain", samples=b"\x93NUMPY",
    )  # fmt: skip
    assert repo.finish(run_id, worker, figures)
    run = repo.get_run(run_id)
    assert run.status == S.SUCCEEDED and run.finished_at and run.progress == 1.0
    assert (run.validation_loss, run.peak_memory_bytes, run.param_count) == (0.05, 3 * 2**32, 321)
    assert run.has_samples and repo.get_samples(run_id) == b"\x93NUMPY"
    (row,) = repo.list_workers()
    assert (row.state, row.current_run_id, row.runs_done) == ("idle", None, 1)


def test_ending_a_run_that_is_no_longer_ours_changes_nothing(repo: Repo) -> None:
    repo.enqueue([tiny_run()])
    worker = repo.register_worker("h", 1, "cpu")
    run_id = claim(repo, worker)
    assert not repo.finish(run_id, "someone-else", FinalFigures(validation_loss=1.0))
    repo.recover_stale(dead_worker_ids=[worker])
    repo.retry([run_id])  # the lost run queued again: another attempt's, not the worker's
    assert not repo.finish(run_id, worker, FinalFigures(validation_loss=1.0))
    assert repo.get_run(run_id).status == S.QUEUED


def test_a_run_taken_for_lost_while_its_worker_lived_on_is_revived_by_its_writes(
    repo: Repo,
) -> None:
    # PostgreSQL away for 50 s: an idle worker on another box (which could reach it)
    # marked the training run "worker lost"; its worker, back, threw the training away.
    repo.enqueue(tiny_runs(3))
    worker = repo.register_worker("h", 1, "cpu")
    beating, metered, ending = (claim(repo, worker) for _ in range(3))
    assert repo.recover_stale(stale_after_s=0.0, now=time.time() + 60) == [1, 2, 3]
    assert [w.state for w in repo.list_workers(include_gone=True)] == ["lost"]
    assert not repo.is_cancel_requested(beating, owner=worker)  # still its own: train on
    assert repo.is_running_for(beating, worker)
    assert repo.is_cancel_requested(beating)  # to anyone else it is not running
    assert repo.heartbeat(worker, run_id=beating) == [beating]
    repo.add_metrics(metered, [MetricPoint(1, 64, "train_loss", 0.5)], 64, owner=worker)
    assert repo.finish(ending, worker, FinalFigures(validation_loss=0.25))
    runs = {run.id: run for run in repo.list_runs()}
    assert [runs[i].status for i in (1, 2, 3)] == [S.RUNNING, S.RUNNING, S.SUCCEEDED]
    assert runs[beating].error is None and runs[beating].finished_at is None
    assert runs[metered].inputs_done == 64
    assert [p.value for p in repo.metrics_since(metered)] == [0.5]
    (row,) = repo.list_workers()
    assert (row.state, row.current_run_id) == ("running", beating)


def test_a_retry_committed_while_a_beat_revives_its_run_is_not_undone(repo: Repo) -> None:
    # PostgreSQL: the beat read the run "lost", waited on the retry's row lock, then
    # updated it by id alone: the retried run read "running" with no worker, for good.
    import threading

    from sqlalchemy import text

    repo.enqueue(tiny_runs(1))
    worker = repo.register_worker("h", 1, "cpu")
    run_id = claim(repo, worker)
    assert repo.recover_stale(stale_after_s=0.0, now=time.time() + 60) == [run_id]
    with repo.engine.connect() as other:  # a person's retry, in flight
        retrying = other.begin()
        other.execute(
            text("UPDATE run SET status = 'queued', worker_id = NULL, error = NULL, "
                 "started_at = NULL, heartbeat_at = NULL, finished_at = NULL WHERE id = :i"),
            {"i": run_id},
        )  # fmt: skip
        revived: list[list[int]] = []
        beat = threading.Thread(
            target=lambda: revived.append(repo.heartbeat(worker, run_id=run_id))
        )
        beat.start()
        time.sleep(0.5)  # the beat waits on the retry's lock
        retrying.commit()
    beat.join(timeout=10)
    assert revived == [[]]
    run = repo.get_run(run_id)
    assert (run.status, run.worker_id) == (S.QUEUED, None)
    assert [(w.state, w.current_run_id) for w in repo.list_workers()] == [("idle", None)]


def test_a_finish_committed_while_recover_stale_marks_its_run_is_not_undone(
    repo: Repo,
) -> None:
    # PostgreSQL: recover_stale read the silent run "running", its worker (paused, not
    # dead) then finished it, and the update by id alone made it failed "worker lost":
    # the worker logged "succeeded" for a run the queue says failed. Then the finish,
    # waiting on the update's row lock, heard "not recorded" (its revival read the row
    # "running" before it waited): its result lost. Now it revives the run and ends it
    # succeeded with its figures, as on SQLite (which waits for the write lock).
    import threading

    from sqlalchemy import event

    repo.enqueue(tiny_runs(1))
    looker, paused = (repo.register_worker("h", pid, "cpu") for pid in (1, 2))
    run_id = claim(repo, paused)
    other_repo = Repo.open(repo.url, busy_timeout_s=30)  # waits out the 2 s below
    finished: list[bool] = []
    finish = threading.Thread(
        target=lambda: finished.append(
            other_repo.finish(run_id, paused, FinalFigures(validation_loss=0.5))
        )
    )

    def finish_after_the_read(_conn: object, _cursor: object, statement: str, *_: object) -> None:
        reads_the_silent = statement.lstrip().startswith("SELECT run.id")
        if reads_the_silent and "heartbeat_at" in statement and finish.ident is None:
            finish.start()  # its worker's finish, between the read and the update
            finish.join(2)  # PostgreSQL: it commits now, unless the read locked it

    event.listen(repo.engine, "after_cursor_execute", finish_after_the_read)
    try:
        lost = repo.recover_stale(30.0, now=time.time() + 60, caller=looker)
    finally:
        event.remove(repo.engine, "after_cursor_execute", finish_after_the_read)
    finish.join(10)
    other_repo.close()
    run = repo.get_run(run_id)
    assert (finished, lost) == ([True], [run_id])
    assert (run.status, run.error, run.validation_loss) == (S.SUCCEEDED, None, 0.5)


def test_recover_stale_leaves_a_row_a_dead_box_s_transaction_holds_and_takes_the_rest(
    repo: Repo,
) -> None:
    # PostgreSQL: a box whose power or network went inside its beat's transaction keeps
    # that run's and worker's row locks until the server gives up on the connection
    # (hours). recover_stale waited on them: a training worker's look held its heartbeat
    # thread (its own runs unbeaten, found lost in turn), and every other's likewise.
    if not repo.url.startswith("postgresql"):
        pytest.skip("row locks are PostgreSQL's (SQLite's write lock has its busy timeout)")
    import threading

    from sqlalchemy import text

    repo.enqueue(tiny_runs(2))
    cut, dead = (repo.register_worker("h", pid, "cpu") for pid in (1, 2))
    held, free = claim(repo, cut), claim(repo, dead)
    got: list[list[int]] = []
    with repo.engine.connect() as box:  # the cut box's beat: begun, never ended
        beating = box.begin()
        box.execute(text("UPDATE run SET inputs_done = 1 WHERE id = :i"), {"i": held})
        box.execute(text("UPDATE worker SET gpu_util = 1 WHERE id = :w"), {"w": cut})
        look = threading.Thread(
            target=lambda: got.append(repo.recover_stale(30.0, now=time.time() + 60))
        )
        look.start()
        look.join(10)
        waited = look.is_alive()
        beating.rollback()  # the server gives up on the connection at last
    look.join(10)
    assert not waited, "recover_stale waited on the dead transaction's locks"
    assert got == [[free]] and status(repo, held) == S.RUNNING
    states = {w.id: w.state for w in repo.list_workers(include_gone=True)}
    assert (states[cut], states[dead]) == ("running", "lost")
    assert repo.recover_stale(30.0, now=time.time() + 60) == [held]  # at the next look


def test_a_stray_run_of_a_live_worker_is_still_found_lost(repo: Repo) -> None:
    # A claim whose answer a cut connection lost: the worker never trains that run, and
    # sparing all of its caller's runs left it "running" (and the worker row with it).
    repo.enqueue(tiny_runs(2))
    worker = repo.register_worker("h", 1, "cpu")
    stray, trained = claim(repo, worker), claim(repo, worker)
    later = time.time() + 60
    lost = repo.recover_stale(30.0, now=later, caller=worker, caller_runs=[trained])
    assert lost == [stray] and status(repo, trained) == S.RUNNING


def test_a_worker_asked_to_stop_stays_stopping_through_a_revival(repo: Repo) -> None:
    # Revived by its training thread's write, its row said "running": a second `stop`
    # then read as the first, and exited it at once.
    repo.enqueue(tiny_runs(1))
    worker = repo.register_worker("h", 1, "cpu")
    run_id = claim(repo, worker)
    repo.heartbeat(worker, run_id=run_id, stopping=True)
    repo.recover_stale(stale_after_s=0.0, now=time.time() + 60)
    repo.add_metrics(run_id, [MetricPoint(1, 64, "train_loss", 0.5)], 64, owner=worker)
    repo.heartbeat(worker, run_id=run_id, stopping=True)
    assert repo.list_workers()[0].state == "stopping"


def test_a_lost_worker_that_beats_is_alive_again(repo: Repo) -> None:
    worker = repo.register_worker("h", 1, "cpu")
    repo.recover_stale(stale_after_s=0.0, now=time.time() + 60)
    assert repo.list_workers() == []  # lost: not live
    assert repo.heartbeat(worker) == []
    (row,) = repo.list_workers()
    assert (row.id, row.state) == (worker, "idle")


def test_fail_keeps_the_message(repo: Repo) -> None:
    repo.enqueue([tiny_run()])
    worker = repo.register_worker("h", 1, "cpu")
    run_id = claim(repo, worker)
    assert repo.fail(run_id, worker, "loss became NaN at step 3")
    run = repo.get_run(run_id)
    assert (run.status, run.error) == (S.FAILED, "loss became NaN at step 3")


def test_requeue_puts_the_run_back_fresh(repo: Repo) -> None:
    repo.enqueue([tiny_run()])
    worker = repo.register_worker("h", 1, "cpu")
    run_id = claim(repo, worker)
    repo.add_metrics(run_id, [MetricPoint(1, 64, "train_loss", 0.3)], inputs_done=64)
    assert repo.requeue(run_id, worker)
    run = repo.get_run(run_id)
    assert (run.status, run.worker_id, run.inputs_done, run.attempts) == (S.QUEUED, None, 0, 1)
    assert repo.metrics_since(run_id) == []


def test_a_run_put_back_or_retried_keeps_its_checkpoint_folder(repo: Repo) -> None:
    # `stop` while it trained, then a retry: the row forgot the folder holding its
    # last.pt, and `rm` and `show` could no longer name it.
    repo.enqueue([tiny_run()])
    worker = repo.register_worker("h", 1, "cpu")
    run_id = claim(repo, worker)
    stopped = FinalFigures(validation_loss=0.3, checkpoint_path="/ck/exp/run-1")
    assert repo.requeue(run_id, worker, stopped) == S.QUEUED
    run = repo.get_run(run_id)
    assert (run.checkpoint_path, run.validation_loss) == ("/ck/exp/run-1", None)
    assert claim(repo, worker) == run_id
    assert repo.put_back(run_id, worker)  # no room on the device yet: no folder of its own
    assert repo.get_run(run_id).checkpoint_path == "/ck/exp/run-1"
    assert claim(repo, worker) == run_id
    assert repo.fail(run_id, worker, "boom", FinalFigures(checkpoint_path="/ck/exp/run-1"))
    repo.retry([run_id])
    assert repo.get_run(run_id).checkpoint_path == "/ck/exp/run-1"


def test_a_run_back_in_the_queue_forgets_its_attempts_stops(repo: Repo) -> None:
    # Requeued, put back, retried or queued again, a run kept the paused_s of its last
    # attempt: `show --json` gave a queued run a stop, and a worker of an older version
    # (whose claim does not reset it) had its next attempt's pace and ETA short of it.
    repo.enqueue([tiny_run()])
    worker = repo.register_worker("h", 1, "cpu")
    stopped = FinalFigures(paused_s=600.0)

    def paused_then(back: Callable[[int], object]) -> float | None:
        run_id = claim(repo, worker)
        assert repo.add_metrics(run_id, [], 64, owner=worker, paused_s=600.0)
        assert repo.get_run(run_id).paused_s == 600.0
        back(run_id)
        return repo.get_run(run_id).paused_s

    assert paused_then(lambda run_id: repo.requeue(run_id, worker, stopped)) is None
    assert paused_then(lambda run_id: repo.put_back(run_id, worker)) is None

    def failed_then_retried(run_id: int) -> None:
        assert repo.fail(run_id, worker, "boom", stopped)
        repo.retry([run_id])

    assert paused_then(failed_then_retried) is None

    def failed_then_queued_again(run_id: int) -> None:
        assert repo.fail(run_id, worker, "boom", stopped)
        assert repo.enqueue([tiny_run()]).queued_again_ids == (run_id,)

    assert paused_then(failed_then_queued_again) is None


def test_a_worker_asked_to_stop_says_so_until_it_stops(repo: Repo) -> None:
    """Its heartbeat writes "stopping" at the first signal; ending its run keeps that."""
    from core.gpu import GpuMonitor
    from core.recording import Heartbeat

    repo.enqueue(tiny_runs(2))
    worker = repo.register_worker("h", 1, "cpu")
    run_id = claim(repo, worker)
    asked = [False]
    beat = Heartbeat(repo, worker, GpuMonitor("cpu"), 1.0, stopping=lambda: asked[0])
    beat.beat()
    assert repo.list_workers()[0].state == "running"
    asked[0] = True
    beat.beat()
    assert repo.list_workers()[0].state == "stopping"
    assert repo.requeue(run_id, worker)  # the signal put its run back
    assert [(w.state, w.current_run_id) for w in repo.list_workers()] == [("stopping", None)]
    repo.update_worker(worker, state="stopped")
    assert repo.list_workers() == []


def test_a_late_beat_leaves_a_stopped_worker_stopped(
    repo: Repo, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A beat in flight as the worker wrote "stopped" (waiting on the write lock past
    # Heartbeat.stop()'s join, or racing a second signal's give_back_quietly) landed
    # after it: the row said "stopping" for a process gone, until marked lost.
    import threading

    from core.gpu import GpuMonitor
    from core.recording import Heartbeat

    repo.enqueue(tiny_runs(1))
    worker = repo.register_worker("h", 1, "cpu")
    run_id = claim(repo, worker)
    in_flight, go_on = threading.Event(), threading.Event()
    real_heartbeat = repo.heartbeat

    def held_beat(*args: object, **kwargs: object) -> list[int]:
        in_flight.set()
        go_on.wait(10)  # as the write lock would hold it
        return real_heartbeat(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(repo, "heartbeat", held_beat)
    beat = Heartbeat(repo, worker, GpuMonitor("cpu"), 0.01, stopping=lambda: True)
    beat.run_ids = (run_id,)
    beat.start()
    assert in_flight.wait(10)
    assert repo.requeue(run_id, worker) == S.QUEUED  # the worker's way out
    repo.update_worker(worker, state="stopped")
    go_on.set()
    beat.stop()
    assert not beat.is_alive()
    (row,) = repo.list_workers(include_gone=True)
    assert (row.state, row.current_run_id) == ("stopped", None)
    assert status(repo, run_id) == S.QUEUED


def test_an_error_in_the_look_after_a_beat_does_not_end_the_beats(
    repo: Repo, capsys: pytest.CaptureFixture[str]
) -> None:
    # The look for other workers' lost runs runs on the heartbeat thread after each beat:
    # an error there ended the thread, and this worker's own run went unbeaten (marked
    # lost by the others 30 s later).
    from core.gpu import GpuMonitor
    from core.recording import Heartbeat

    repo.enqueue(tiny_runs(1))
    worker = repo.register_worker("h", 1, "cpu")
    run_id = claim(repo, worker)
    looks: list[int] = []

    def failing_look() -> None:
        looks.append(1)
        raise TypeError("'<=' not supported between instances of 'str' and 'float'")

    beat = Heartbeat(repo, worker, GpuMonitor("cpu"), 0.01, after_beat=failing_look)
    beat.run_ids = (run_id,)
    beat.start()
    deadline = time.monotonic() + 30  # polled: room for a loaded machine, not a wait
    while len(looks) < 3 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert beat.is_alive() and len(looks) >= 3  # beating on after each failed look
    beat.stop()
    said = capsys.readouterr()
    assert (said.out + said.err).count("look for other workers' lost runs failed") == 1


def test_a_revived_run_is_said_by_whichever_write_revives_it(repo: Repo) -> None:
    # Only the heartbeat said it: when the training thread's write came back first, the
    # run was revived without a word in the log.
    from core.gpu import GpuMonitor
    from core.recording import Heartbeat

    repo.enqueue(tiny_runs(1))
    worker = repo.register_worker("h", 1, "cpu")
    run_id = claim(repo, worker)
    said: list[str] = []
    repo.log = said.append
    beat = Heartbeat(repo, worker, GpuMonitor("cpu"), 1.0, stopping=lambda: True)
    beat.run_ids = (run_id,)
    beat.beat()  # "stopping"
    assert repo.recover_stale(stale_after_s=0.0, now=time.time() + 60) == [run_id]
    repo.add_metrics(run_id, [MetricPoint(1, 64, "train_loss", 0.5)], 64, owner=worker)
    assert said == [
        f"run {run_id}: marked lost while this worker was silent (its database away, or "
        "the process paused); running again"
    ]
    assert status(repo, run_id) == S.RUNNING
    assert repo.recover_stale(stale_after_s=0.0, now=time.time() + 60) == [run_id]
    beat.beat()  # revived by the beat this time: said once more, and "stopping" again
    assert len(said) == 2 and status(repo, run_id) == S.RUNNING
    assert repo.list_workers()[0].state == "stopping"  # asked to stop still: a second signal


def test_a_worker_back_from_an_outage_neither_marks_itself_lost_nor_runs_another_s_run(
    repo: Repo,
) -> None:
    # Back from a database outage, a worker's recovery marked its own row lost; its next
    # beat (still naming the run it trained, retried and taken by another worker
    # meanwhile) made the row "running" that run for good.
    repo.enqueue(tiny_runs(1))
    away, other = (repo.register_worker("h", pid, "cpu") for pid in (1, 2))
    (run_id,) = [claim(repo, away)]
    later = time.time() + 60
    assert repo.recover_stale(30.0, now=later, caller=away, caller_runs=[run_id]) == []
    assert {w.id: w.state for w in repo.list_workers(include_gone=True)}[away] == "running"
    assert repo.recover_stale(stale_after_s=30.0, now=later, caller=other) == [run_id]
    repo.retry([run_id])
    assert claim(repo, other) == run_id
    assert repo.heartbeat(away, run_id=run_id) == []  # not revived: another attempt's now
    rows = {w.id: w for w in repo.list_workers()}
    assert (rows[away].state, rows[away].current_run_id) == ("idle", None)
    assert (rows[other].state, rows[other].current_run_id) == ("running", run_id)


def test_put_back_is_a_requeue_that_does_not_count_as_an_attempt(repo: Repo) -> None:
    ids = repo.enqueue(tiny_runs(2)).added_ids
    worker = repo.register_worker("h", 1, "cuda:0 slot 1/2")
    run_id = claim(repo, worker)
    assert repo.put_back(run_id, worker)
    run = repo.get_run(run_id)
    assert (run.status, run.worker_id, run.attempts, run.started_at) == (S.QUEUED, None, 0, None)
    assert repo.list_workers()[0].state == "idle"
    assert claim(repo, worker) == ids[0]  # it kept its place at the front
    assert not repo.put_back(run_id, "someone-else")  # only the claiming worker may
    repo.request_cancel([run_id])
    assert repo.put_back(run_id, worker)
    assert repo.get_run(run_id).cancel_requested  # a cancel asked for meanwhile is kept


def test_measured_peaks_of_succeeded_runs_on_a_device(repo: Repo) -> None:
    repo.enqueue([tiny_run(0), tiny_run(1), tiny_run(2), tiny_run(3, channels=8)])
    gpu = repo.register_worker("h", 1, "cuda:0 slot 1/2")
    cpu = repo.register_worker("h", 2, "cpu")
    for worker, peak in ((gpu, 1000), (cpu, 7), (gpu, 2000), (gpu, 3000)):
        assert repo.finish(claim(repo, worker), worker, FinalFigures(peak_memory_bytes=peak))
    found = repo.measured_peaks(321)  # tiny_run's param_count; the CPU run is left out
    assert [peak for _, peak in found] == [3000, 2000, 1000]
    assert repo.measured_peaks(321, device_prefix="cpu") == [(repo.get_run(2).config_json, 7)]
    assert repo.measured_peaks(999) == []


def test_a_peak_an_older_worker_recorded_on_a_cpu_is_not_read(repo: Repo) -> None:
    # Versions before MemoryMeter wrote a CPU run's process peak (ru_maxrss, which only
    # grows): a database they trained in showed 46.9 MiB and 4.2 MiB for two runs of one
    # model. Such a figure is not the run's own, so it reads as not measured.
    repo.enqueue([tiny_run(0), tiny_run(1)])
    cpu = repo.register_worker("h", 2, "cpu")
    gpu = repo.register_worker("h", 1, "cuda:0")
    for worker, peak in ((cpu, 49_172_480), (gpu, 3000)):
        assert repo.finish(claim(repo, worker), worker, FinalFigures(peak_memory_bytes=peak))
    assert [run.peak_memory_bytes for run in repo.list_runs()] == [None, 3000]
    assert repo.get_run(1).peak_memory_bytes is None
    assert repo.measured_peaks(321, device_prefix="cpu") == [
        (repo.get_run(1).config_json, 49_172_480)
    ]


# ----- a person's changes ------------------------------------------------------------


def test_cancel_queued_is_immediate_running_is_a_request(repo: Repo) -> None:
    ids = repo.enqueue(tiny_runs(2)).added_ids
    worker = repo.register_worker("h", 1, "cpu")
    running = claim(repo, worker)
    queued = ids[1]
    assert repo.request_cancel([queued, running]) == {queued: S.CANCELLED, running: S.RUNNING}
    assert status(repo, queued) == S.CANCELLED
    assert repo.is_cancel_requested(running)
    assert repo.mark_cancelled(running, worker)
    assert status(repo, running) == S.CANCELLED


def test_cancel_asks_the_worker_of_a_live_run_whose_box_clock_is_behind(
    repo: Repo, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Each box writes heartbeat_at with its own clock. Asked on a box 40 s ahead of the
    # training box, the beat read 40 s old, past STALE_AFTER_S: the live run was cancelled
    # at once, its worker's end was refused ("not recorded"; a run in its final pass lost
    # its success) and its progress stopped being written. Its beat changes: it is asked.
    monkeypatch.setattr(repo_module, "SILENCE_CONFIRM_S", 5.0, raising=False)
    repo.enqueue([tiny_run()])
    worker = repo.register_worker("behind", 1, "cuda:0")
    run_id = claim(repo, worker)
    with beating_behind(repo, run_id, 40):
        asked = time.monotonic()
        assert repo.request_cancel([run_id]) == {run_id: S.RUNNING}
        assert time.monotonic() - asked < 4  # its next beat ended the wait
    run = repo.get_run(run_id)
    assert (run.status, run.cancel_requested) == (S.RUNNING, True)
    assert repo.mark_cancelled(run_id, worker)  # its worker stops it, recorded
    assert status(repo, run_id) == S.CANCELLED


def test_cancel_of_a_running_run_whose_beat_stopped_is_immediate_once_it_stays(
    repo: Repo, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(repo_module, "SILENCE_CONFIRM_S", 0.5, raising=False)
    repo.enqueue(tiny_runs(2))
    worker = repo.register_worker("behind", 1, "cuda:0")
    run_id = claim(repo, worker)
    beat_behind(repo, run_id, 40)  # its last beat; then its box died
    asked = time.monotonic()
    assert repo.request_cancel([run_id, 2]) == {run_id: S.CANCELLED, 2: S.CANCELLED}
    assert time.monotonic() - asked >= 0.5  # watched, unchanged, for the whole wait
    assert not repo.mark_cancelled(run_id, worker)


def test_cancel_of_a_run_whose_worker_is_dead_here_waits_for_nothing(
    repo: Repo, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(repo_module, "SILENCE_CONFIRM_S", 30.0, raising=False)
    repo.enqueue(tiny_runs(2))
    worker = repo.register_worker("h", 1, "cpu")
    run_id = claim(repo, worker)
    beat_behind(repo, run_id, 40)
    asked = time.monotonic()
    cancelled = repo.request_cancel([run_id, 2], dead_worker_ids=[worker])
    assert cancelled == {run_id: S.CANCELLED, 2: S.CANCELLED}
    assert time.monotonic() - asked < 10


@pytest.mark.parametrize(
    "ends", ["a live run succeeds", "the watched run is marked lost", "the queued run is deleted"]
)
def test_a_run_that_ends_while_a_cancel_watches_is_said_and_the_others_are_cancelled(
    repo: Repo, monkeypatch: pytest.MonkeyPatch, ends: str
) -> None:
    # `cancel 1 2 3` with run 1's beat reading old here waits up to SILENCE_CONFIRM_S
    # before its write; a run that ended meanwhile (run 2 in its final pass, or run 1
    # marked lost by a worker's look) refused the whole cancel: "run 2 has succeeded: only
    # queued or running runs can be cancelled; nothing changed", run 3 left queued; queued
    # run 3 removed meanwhile (`rm 3`, the dashboard's delete): "no run with id 3 ...;
    # nothing changed", run 2 left training. The window was milliseconds before the watch,
    # seconds now.
    monkeypatch.setattr(repo_module, "SILENCE_CONFIRM_S", 0.5)
    repo.enqueue(tiny_runs(3))
    silent_worker = repo.register_worker("dead-box", 1, "cuda:0")
    live_worker = repo.register_worker("h", 2, "cpu")
    watched, live = claim(repo, silent_worker), claim(repo, live_worker)
    queued = 3
    beat_behind(repo, watched, 40)
    real_sleep = repo_module.sleep

    def end_one_during_the_watch(seconds: float) -> None:  # at its first poll
        if ends == "a live run succeeds" and status(repo, live) == S.RUNNING:
            assert repo.finish(live, live_worker, FinalFigures(validation_loss=0.5))
        elif ends == "the watched run is marked lost" and status(repo, watched) == S.RUNNING:
            lost = repo.recover_stale_runs(None, [silent_worker], caller=live_worker)
            assert [run.id for run in lost] == [watched]
        elif ends == "the queued run is deleted" and repo.list_runs(RunFilter(ids=(queued,))):
            assert repo.remove([queued]) == 1
        real_sleep(seconds)

    monkeypatch.setattr(repo_module, "sleep", end_one_during_the_watch)
    result = repo.request_cancel([watched, live, queued])
    expected: dict[str, dict[int, S | None]] = {  # returned, and then read back
        "a live run succeeds": {watched: S.CANCELLED, live: S.SUCCEEDED, queued: S.CANCELLED},
        "the watched run is marked lost": {watched: S.FAILED, live: S.RUNNING, queued: S.CANCELLED},
        "the queued run is deleted": {watched: S.CANCELLED, live: S.RUNNING, queued: None},
    }
    assert result == expected[ends]
    read_back = {run.id: run.status for run in repo.list_runs()}
    assert {i: read_back.get(i) for i in (watched, live, queued)} == expected[ends]
    assert repo.get_run(live).cancel_requested == (expected[ends][live] == S.RUNNING)


def test_a_cancel_of_a_run_another_connection_holds_says_so_after_the_busy_timeout(
    repo: Repo,
) -> None:
    # PostgreSQL: cancel locks its rows (FOR UPDATE) with no lock_timeout. A box cut off
    # its network inside a beat keeps its run's row locked until the server gives up on
    # the connection (hours): `cancel` of that very run hung that long, silent, where
    # SQLite says "locked by another process" after its busy timeout.
    import threading
    from contextlib import ExitStack

    (run_id,) = repo.enqueue([tiny_run()]).added_ids
    worker = repo.register_worker("cut-off", 1, "cuda:0")
    assert claim(repo, worker) == run_id
    canceller = Repo.open(repo.url, busy_timeout_s=1)
    outcome: list[object] = []

    def cancel() -> None:
        try:
            outcome.append(canceller.request_cancel([run_id]))
        except QueueError as error:
            outcome.append(error)

    with ExitStack() as holding:
        conn = holding.enter_context(repo._write())  # its beat's transaction, never ended
        conn.execute(update(RUN).where(RUN.c.id == run_id).values(heartbeat_at=time.time()))
        cancelling = threading.Thread(target=cancel)
        cancelling.start()
        cancelling.join(10)
        waited_on = cancelling.is_alive()
    cancelling.join()
    canceller.close()
    assert not waited_on, "the cancel waited on the row lock past its busy timeout"
    (error,) = outcome
    assert isinstance(error, QueueError) and "is locked by another process" in str(error), error
    assert (status(repo, run_id), repo.get_run(run_id).cancel_requested) == (S.RUNNING, False)


def test_a_finish_committed_while_a_cancel_reads_its_run_is_not_overwritten(
    repo: Repo,
) -> None:
    # PostgreSQL: the cancel read the run "running", its worker then finished it, and the
    # update by id alone made it cancelled: the worker logged "succeeded" for a run the
    # queue says cancelled. Now the cancel locks the rows before it reads them: the finish
    # waits, and is refused ("not recorded"), as on SQLite (which waits for the write lock).
    import threading

    from sqlalchemy import event

    repo.enqueue(tiny_runs(1))
    worker = repo.register_worker("h", 1, "cpu")
    run_id = claim(repo, worker)
    other_repo = Repo.open(repo.url, busy_timeout_s=30)  # waits out the 2 s below
    finished: list[bool] = []
    finish = threading.Thread(
        target=lambda: finished.append(
            other_repo.finish(run_id, worker, FinalFigures(validation_loss=0.5))
        )
    )
    reads: list[str] = []

    def finish_after_the_read(_conn: object, _cursor: object, statement: str, *_: object) -> None:
        if "has_samples" in statement:  # a read of the runs, as the cancel checks them
            reads.append(statement)
        if len(reads) == 2 and finish.ident is None:  # the write's, after _looks_silent's
            finish.start()  # its worker's finish, between the read and the update
            finish.join(2)  # PostgreSQL: it commits now, unless the read locked it

    event.listen(repo.engine, "after_cursor_execute", finish_after_the_read)
    try:
        assert repo.request_cancel([run_id], dead_worker_ids=[worker]) == {run_id: S.CANCELLED}
    finally:
        event.remove(repo.engine, "after_cursor_execute", finish_after_the_read)
    finish.join(10)
    other_repo.close()
    assert (finished, status(repo, run_id)) == ([False], S.CANCELLED)


def test_cancel_of_finished_runs_or_unknown_ids_changes_nothing(repo: Repo) -> None:
    ids = repo.enqueue(tiny_runs(2)).added_ids
    repo.request_cancel([ids[0]])
    with pytest.raises(InvalidTransition, match="run 1 is cancelled"):
        repo.request_cancel([ids[1], ids[0]])
    with pytest.raises(UnknownRun, match="no run with id 99"):
        repo.request_cancel([ids[1], 99])
    assert status(repo, ids[1]) == S.QUEUED


def test_retry_requeues_failed_and_cancelled_only(repo: Repo) -> None:
    ids = repo.enqueue(tiny_runs(3)).added_ids
    worker = repo.register_worker("h", 1, "cpu")
    failed = claim(repo, worker)
    repo.add_metrics(failed, [MetricPoint(1, 64, "train_loss", 0.3)])
    repo.fail(failed, worker, "boom")
    repo.request_cancel([ids[1]])
    with pytest.raises(InvalidTransition, match="run 3 is queued"):
        repo.retry([failed, ids[2]])
    assert status(repo, failed) == S.FAILED
    repo.retry([failed, ids[1]])
    run = repo.get_run(failed)
    assert (run.status, run.error, run.finished_at) == (S.QUEUED, None, None)
    assert repo.metrics_since(failed) == []
    with pytest.raises(UnknownRun):
        repo.retry([123])


def test_remove_deletes_runs_and_metrics_but_not_running_ones(repo: Repo) -> None:
    ids = repo.enqueue(tiny_runs(2)).added_ids
    worker = repo.register_worker("h", 1, "cpu")
    running = claim(repo, worker)
    repo.add_metrics(running, [MetricPoint(1, 64, "train_loss", 0.3)])
    with pytest.raises(InvalidTransition, match="cancel it first") as refused:
        repo.remove([*ids, running, running])
    assert str(refused.value).count(f"run {running} is running") == 1  # once, as asked twice
    repo.request_cancel([running])  # asked already: "cancel it first" read as if not
    with pytest.raises(InvalidTransition, match="its cancel is asked for: remove it once it "):
        repo.remove([running])
    other = repo.register_worker("h", 2, "cpu")
    second = claim(repo, other)
    repo.request_cancel([second])
    with pytest.raises(InvalidTransition, match="their cancels are asked for: remove them once"):
        repo.remove([running, second])
    repo.mark_cancelled(second, other)
    assert repo.remove([ids[1]]) == 1
    repo.fail(running, worker, "x")
    assert repo.remove([running]) == 1
    assert repo.list_runs() == [] and repo.metrics_since(running) == []
    with pytest.raises(UnknownRun):
        repo.remove([running])


def test_priority_and_move_to_front_change_the_claim_order(repo: Repo) -> None:
    ids = repo.enqueue(tiny_runs(4)).added_ids
    repo.set_priority([ids[1]], 2)
    # In the order given, not by id: ``next 4 3`` trains 4 first.
    assert repo.move_to_front([ids[3], ids[2], ids[3]]) == [4, 3]
    order = [r.id for r in repo.list_runs(RunFilter(order="queue"))]
    assert order == [ids[3], ids[2], ids[1], ids[0]]
    worker = repo.register_worker("h", 1, "cpu")
    assert claim(repo, worker) == ids[3]
    with pytest.raises(UnknownRun):
        repo.set_priority([77], 1)


def test_priority_steps_and_next_stop_at_the_priority_limit(repo: Repo) -> None:
    # The command line and the form keep priorities within +-PRIORITY_LIMIT; ``+`` and
    # ``next`` repeated went past it, unbounded.
    from core.queue.rows import PRIORITY_LIMIT

    first, second = repo.enqueue(tiny_runs(2)).added_ids
    repo.set_priority([first], PRIORITY_LIMIT)
    with pytest.raises(InvalidTransition, match=f"run {first} to 1,000,001, past the priority"):
        repo.change_priority([first, second], 1)
    with pytest.raises(InvalidTransition, match=f"run {second} to 1,000,001.*nothing changed"):
        repo.move_to_front([second])
    assert [r.priority for r in repo.list_runs(RunFilter(ids=(first, second)))] == [
        PRIORITY_LIMIT,
        0,
    ]
    # Already next at the limit: `next` of it is done, not refused; of another, it says how.
    assert repo.move_to_front([first]) == [PRIORITY_LIMIT]
    with pytest.raises(InvalidTransition, match="lower the highest queued priority first"):
        repo.move_to_front([second, first])
    repo.change_priority([first, second], -1)  # within the limit: both move
    repo.set_priority([second], -PRIORITY_LIMIT)
    with pytest.raises(InvalidTransition, match="-1,000,001"):
        repo.change_priority([second], -1)
    # Past it already (an older version's +): it can be brought back, not sent further.
    repo.set_priority([first], PRIORITY_LIMIT + 5)
    repo.change_priority([first], -1)
    with pytest.raises(InvalidTransition):
        repo.change_priority([first], 1)
    assert repo.get_run(first).priority == PRIORITY_LIMIT + 4


def test_the_settled_signature_holds_the_highest_priority_on_a_big_queue(repo: Repo) -> None:
    # PostgreSQL multiplied priority by id as 32-bit INTEGERs: run 2,148 at priority
    # 1,000,000 (queue --priority's limit) made every dashboard poll "integer out of range".
    from sqlalchemy import text

    from core.queue.rows import PRIORITY_LIMIT

    (run_id,) = repo.enqueue(tiny_runs(1)).added_ids
    with repo.engine.begin() as conn:
        conn.execute(text("UPDATE run SET id = 3000 WHERE id = :id"), {"id": run_id})
    repo.set_priority([3000], PRIORITY_LIMIT)
    before = repo.settled_signature()
    assert before[1] == 3000 * PRIORITY_LIMIT
    repo.set_priority([3000], -PRIORITY_LIMIT)
    assert repo.settled_signature() != before


# ----- lost workers -------------------------------------------------------------------


def test_recover_stale_marks_old_heartbeats_and_dead_workers_lost(repo: Repo) -> None:
    repo.enqueue(tiny_runs(3))
    fresh, stale, dead = (repo.register_worker("h", pid, "cpu") for pid in (1, 2, 3))
    runs = [claim(repo, w) for w in (fresh, stale, dead)]
    assert repo.recover_stale(stale_after_s=30) == []
    later = time.time() + 60
    repo.heartbeat(fresh, run_id=runs[0])  # still beating "now"...
    lost = repo.recover_stale(stale_after_s=30, dead_worker_ids=[dead], now=later - 40)
    assert lost == [runs[2]]  # ...only the dead one is lost 20 s later
    lost = repo.recover_stale(stale_after_s=30, now=later)
    assert sorted(lost) == sorted(runs[:2])
    for run_id in runs:
        run = repo.get_run(run_id)
        assert (run.status, run.error) == (S.FAILED, "worker lost")
        assert failure_cause(run.error) == FailureCause.WORKER_LOST
    assert repo.list_workers() == []
    assert {w.state for w in repo.list_workers(include_gone=True)} == {"lost"}
    # Each ended when last heard from, not when found silent: its "took" is what it trained.
    for run_id in runs:
        run = repo.get_run(run_id)
        assert run.finished_at == run.heartbeat_at and run.finished_at < later - 50


def test_running_beats_reads_the_others_runs_beats_as_written(repo: Repo) -> None:
    # A training worker reads this every few seconds and compares each beat with its
    # last read, never with its own clock (boxes' clocks differ).
    repo.enqueue(tiny_runs(3))
    caller, other = (repo.register_worker("h", pid, "cpu") for pid in (1, 2))
    training, unheard = claim(repo, caller), claim(repo, caller)  # a claim whose answer was lost
    elsewhere = claim(repo, other)
    beats = repo.running_beats(caller=caller, caller_runs=[training])
    assert sorted(beats) == [unheard, elsewhere]
    assert beats[elsewhere] == repo.get_run(elsewhere).heartbeat_at
    repo.heartbeat(other, run_id=elsewhere)
    assert repo.running_beats(caller=caller, caller_runs=[training])[elsewhere] > beats[elsewhere]


def test_recover_stale_given_the_beats_seen_marks_only_those_still_at_them(repo: Repo) -> None:
    # A training worker's look, by its own clock: a run whose beat it saw unchanged for
    # the stale limit. A beat between its read and its write wins, whatever the clocks
    # say (the beats here are an hour old: by age all would be lost).
    repo.enqueue(tiny_runs(3))
    caller, beating, dead = (repo.register_worker("h", pid, "cpu") for pid in (1, 2, 3))
    training, alive, silent = claim(repo, caller), claim(repo, beating), claim(repo, dead)
    with repo._write() as conn:  # each box's clock an hour behind the caller's
        conn.execute(update(RUN).values(heartbeat_at=RUN.c.heartbeat_at - 3600))
        conn.execute(update(WORKER).values(last_seen_at=WORKER.c.last_seen_at - 3600))
    seen = repo.running_beats(caller=caller, caller_runs=[training])
    with repo._write() as conn:  # the beating box beats, as late by the caller's clock
        conn.execute(update(RUN).where(RUN.c.id == alive).values(heartbeat_at=time.time() - 3599))
        conn.execute(
            update(WORKER).where(WORKER.c.id == beating).values(last_seen_at=time.time() - 3599)
        )
    lost = repo.recover_stale(caller=caller, caller_runs=[training], beats_seen=seen)
    assert lost == [silent]
    assert [status(repo, i) for i in (training, alive, silent)] == [S.RUNNING, S.RUNNING, S.FAILED]
    states = {w.id: w.state for w in repo.list_workers(include_gone=True)}
    assert (states[caller], states[beating], states[dead]) == ("running", "running", "lost")
    assert repo.recover_stale(caller=caller, caller_runs=[training], beats_seen={}) == []


def test_recover_silent_workers_marks_only_idle_workers_still_at_the_beat_seen(
    repo: Repo,
) -> None:
    # An idle worker's look at the other idle workers, by its own clock: one whose beat
    # it saw unchanged for the stale limit (a dead box's worker that held no run). A beat
    # or a claim between its read and its write wins (the beats here are an hour behind:
    # by age all would be lost).
    (run_id,) = repo.enqueue([tiny_run()]).added_ids
    caller, beating, claiming, dead = (
        repo.register_worker("h", pid, "cpu") for pid in (1, 2, 3, 4)
    )
    with repo._write() as conn:  # each box's clock an hour behind the caller's
        conn.execute(update(WORKER).values(last_seen_at=WORKER.c.last_seen_at - 3600))
    seen = repo.idle_beats(caller=caller)
    assert sorted(seen) == sorted([beating, claiming, dead])
    with repo._write() as conn:  # the beating box beats, as late by the caller's clock
        beat = update(WORKER).where(WORKER.c.id == beating)
        conn.execute(beat.values(last_seen_at=time.time() - 3599))
    assert repo.claim(claiming) is not None  # its run's look's now
    assert repo.recover_silent_workers(seen) == [dead]
    states = {w.id: w.state for w in repo.list_workers(include_gone=True)}
    assert [states[w] for w in (caller, beating, claiming, dead)] == [
        "idle", "idle", "running", "lost",
    ]  # fmt: skip
    assert status(repo, run_id) == S.RUNNING
    assert repo.idle_beats(caller=caller).keys() == {beating}
    assert repo.recover_silent_workers({}) == []


def _running_under_dead_workers(repo: Repo, count: int, beat: float) -> list[str]:
    """``count`` runs, each running under a worker of its own that last beat at ``beat``
    (a dead box's), written in a few statements: the ids of those workers."""
    repo.enqueue(tiny_runs(count))
    dead = [f"gone-{i}" for i in range(count)]
    rows = [
        dict(id=w, host="gone", pid=i + 10, device="cpu", state="running",
             started_at=beat, last_seen_at=beat, runs_done=0)
        for i, w in enumerate(dead)
    ]  # fmt: skip
    with repo._write() as conn:
        conn.execute(insert(WORKER), rows)
        ids = sorted(conn.execute(select(RUN.c.id)).scalars())
        conn.execute(
            update(RUN).where(RUN.c.id == bindparam("run")),
            [
                dict(run=run_id, status=S.RUNNING.value, worker_id=w, attempts=1,
                     started_at=beat, heartbeat_at=beat)
                for run_id, w in zip(ids, dead, strict=True)
            ],
        )  # fmt: skip
    return dead


def test_a_look_over_more_silent_runs_than_one_statement_holds_marks_them_all(
    repo: Repo,
) -> None:
    # A busy shared queue whose boxes all died at once (a power cut): 1,200 running runs
    # of 1,200 silent workers. One SQL expression per run made SQLite refuse the look
    # ("Expression tree is too large"), every look, so none was ever marked lost.
    count = 1_200
    dead = _running_under_dead_workers(repo, count, beat=time.time() - 3600)
    caller = repo.register_worker("h", 1, "cpu")
    seen = repo.running_beats(caller=caller, caller_runs=[])
    assert len(seen) == count
    lost = repo.recover_stale(caller=caller, caller_runs=[], beats_seen=seen)
    assert len(lost) == count
    assert repo.list_runs(RunFilter(statuses=frozenset({S.RUNNING}))) == []
    states = {w.id: w.state for w in repo.list_workers(include_gone=True)}
    assert {states[w] for w in dead} == {"lost"} and states[caller] == "idle"


def test_a_look_at_a_run_whose_beat_is_text_marks_it_lost_without_an_error(
    repo: Repo, db_url: str
) -> None:
    # A running run's heartbeat_at edited by hand to a text (SQLite keeps text that
    # reads as no number in a REAL column): the look compared its worker's last_seen_at
    # with it in Python, float <= str, a TypeError on the heartbeat thread, which ended
    # it: the looking worker's own runs stopped beating and were marked lost in turn.
    from sqlalchemy import text

    if not db_url.startswith("sqlite"):
        pytest.skip("PostgreSQL's typed columns hold no value of the wrong kind")
    repo.enqueue(tiny_runs(3))
    caller, dead = (repo.register_worker("h", pid, "cpu") for pid in (1, 2))
    training, edited, beaten = claim(repo, caller), claim(repo, dead), claim(repo, dead)
    with repo.engine.begin() as conn:
        conn.execute(text("UPDATE run SET heartbeat_at = 'noon' WHERE id = :id"), {"id": edited})
    seen = repo.running_beats(caller=caller, caller_runs=[training])
    assert seen[edited] == "noon"
    lost = repo.recover_stale(caller=caller, caller_runs=[training], beats_seen=seen)
    assert sorted(lost) == [edited, beaten]
    with repo.engine.connect() as conn:  # the edited row is read damaged, as it was
        statuses = {row.id: row.status for row in conn.execute(select(RUN.c.id, RUN.c.status))}
    assert [statuses[i] for i in (training, edited, beaten)] == ["running", "failed", "failed"]
    # Its worker is judged by its other run's beat, a number: silent since.
    states = {w.id: w.state for w in repo.list_workers(include_gone=True)}
    assert (states[caller], states[dead]) == ("running", "lost")


def test_a_look_at_a_run_whose_beat_was_edited_to_nan_marks_it_lost(repo: Repo) -> None:
    # heartbeat_at edited by hand to 'NaN': SQLite keeps the text, which the look marks
    # lost as any beat read unchanged; PostgreSQL holds a double NaN, which it never
    # marked: NaN == NaN is false in Python, so the beat never read as the one seen.
    from sqlalchemy import text

    repo.enqueue(tiny_runs(3))
    caller, dead = (repo.register_worker("h", pid, "cpu") for pid in (1, 2))
    training, edited, beaten = claim(repo, caller), claim(repo, dead), claim(repo, dead)
    with repo.engine.begin() as conn:
        conn.execute(text("UPDATE run SET heartbeat_at = 'NaN' WHERE id = :id"), {"id": edited})
    seen = repo.running_beats(caller=caller, caller_runs=[training])
    lost = repo.recover_stale(caller=caller, caller_runs=[training], beats_seen=seen)
    assert sorted(lost) == [edited, beaten]
    with repo.engine.connect() as conn:
        statuses = {row.id: row.status for row in conn.execute(select(RUN.c.id, RUN.c.status))}
    assert [statuses[i] for i in (training, edited, beaten)] == ["running", "failed", "failed"]
    # Its worker is judged by its other run's beat, a number: silent since.
    states = {w.id: w.state for w in repo.list_workers(include_gone=True)}
    assert (states[caller], states[dead]) == ("running", "lost")


@pytest.mark.parametrize(
    ("table", "column"),
    [("run", "heartbeat_at"), ("run", "started_at"), ("worker", "last_seen_at")],
)
def test_a_time_edited_to_nan_is_a_damaged_row_named(repo: Repo, table: str, column: str) -> None:
    # 'NaN' set by hand: SQLite keeps the text, a damaged row named with its repair;
    # PostgreSQL's double precision holds a NaN, read as a time: the run's beat (and
    # the worker's) "0 s ago" for good, a time of NaN in every view.
    from sqlalchemy import text

    repo.enqueue(tiny_runs(1))
    worker = repo.register_worker("h", 1, "cpu")
    run_id = claim(repo, worker)
    with repo.engine.begin() as conn:
        conn.execute(text(f"UPDATE {table} SET {column} = 'NaN'"))
    shown = "'NaN'" if repo.engine.dialect.name == "sqlite" else "nan"
    said = f"its {column} is {shown}, not a number"
    if table == "run":
        with pytest.raises(QueueError, match=re.escape(f"run {run_id}'s row is damaged ({said})")):
            repo.list_runs()
    else:
        workers, damaged = repo.workers_and_damaged()
        assert workers == [] and len(damaged) == 1 and f"({said})" in damaged[0].said, damaged


@pytest.mark.parametrize(
    ("table", "column"),
    [("run", "heartbeat_at"), ("run", "started_at"), ("worker", "last_seen_at")],
)
@pytest.mark.parametrize(("value", "shown"), [(math.inf, "inf"), (1e20, "1e+20")])
def test_a_time_edited_past_any_date_is_a_damaged_row_named(
    repo: Repo, table: str, column: str, value: float, shown: str
) -> None:
    # Infinite (SQLite's 9e999, PostgreSQL's 'Infinity') or past the year 9999, a time
    # passed as a number: `show` ended in a traceback (OverflowError: timestamp out of
    # range), and a beat of inf read "0 s ago" for good, as NaN's did.
    from sqlalchemy import text

    repo.enqueue(tiny_runs(1))
    worker = repo.register_worker("h", 1, "cpu")
    run_id = claim(repo, worker)
    with repo.engine.begin() as conn:
        conn.execute(text(f"UPDATE {table} SET {column} = :value"), {"value": value})
    said = f"its {column} is {shown}, not a time"
    if table == "run":
        with pytest.raises(QueueError, match=re.escape(f"run {run_id}'s row is damaged ({said}")):
            repo.list_runs()
    else:
        workers, damaged = repo.workers_and_damaged()
        assert workers == [] and len(damaged) == 1 and f"({said}" in damaged[0].said, damaged


@pytest.mark.parametrize(
    ("value", "shown"), [(math.inf, "inf"), (-100.0, "-100.0"), (math.nan, "nan")]
)
def test_paused_seconds_edited_past_any_stop_are_a_damaged_row_named(
    repo: Repo, value: float, shown: str
) -> None:
    # A run's paused_s edited by hand: inf ended `show` in a traceback (OverflowError:
    # cannot convert float infinity to integer), NaN (PostgreSQL holds it) likewise, and
    # -100 read "paused -100s" and added 100 s to its pace's wall time.
    from sqlalchemy import text

    repo.enqueue(tiny_runs(1))
    run_id = claim(repo, repo.register_worker("h", 1, "cpu"))
    with repo.engine.begin() as conn:
        conn.execute(text("UPDATE run SET paused_s = :value"), {"value": value})
    if repo.engine.dialect.name == "sqlite" and math.isnan(value):
        pytest.skip("SQLite stores a NaN as NULL: nothing damaged")
    said = f"its paused_s is {shown}, not a number of seconds"
    with pytest.raises(QueueError, match=re.escape(f"run {run_id}'s row is damaged ({said}")):
        repo.list_runs()


def test_recover_stale_without_a_cutoff_takes_only_the_dead_workers(repo: Repo) -> None:
    # The dashboard's call: it knows a pid of its host is gone; ages are the workers' rule.
    repo.enqueue(tiny_runs(2))
    silent, dead = (repo.register_worker("h", pid, "cpu") for pid in (1, 2))
    runs = [claim(repo, w) for w in (silent, dead)]
    later = time.time() + 3600  # the silent one's heartbeat is an hour old by then
    assert repo.recover_stale(stale_after_s=None, dead_worker_ids=[dead], now=later) == [runs[1]]
    assert repo.get_run(runs[0]).status == S.RUNNING
    assert [w.id for w in repo.list_workers()] == [silent]


# ----- reading ------------------------------------------------------------------------


def test_list_runs_filters_and_counts(repo: Repo) -> None:
    repo.enqueue(tiny_runs(3, experiment="a"))
    repo.enqueue(tiny_runs(2, experiment="b", lr=0.01))
    worker = repo.register_worker("h", 1, "cpu")
    claim(repo, worker)
    assert [r.id for r in repo.list_runs(RunFilter(experiment="b"))] == [4, 5]
    queued = repo.list_runs(RunFilter(statuses=frozenset({S.QUEUED}), order="recent", limit=2))
    assert [r.id for r in queued] == [5, 4]
    counts = repo.counts_by_status()
    assert counts[S.QUEUED] == 4 and counts[S.RUNNING] == 1 and counts[S.FAILED] == 0
    assert repo.counts_by_status("b")[S.QUEUED] == 2
    assert repo.experiments() == [("a", 3), ("b", 2)]
    with pytest.raises(UnknownRun):
        repo.get_run(42)


def test_verbs_only_make_allowed_transitions(repo: Repo) -> None:
    """Walk a run through every verb and check each change against the table."""
    worker = repo.register_worker("h", 1, "cpu")
    run_id = repo.enqueue([tiny_run()]).added_ids[0]
    seen = [status(repo, run_id)]
    steps = [
        lambda: repo.claim(worker),
        lambda: repo.requeue(run_id, worker),
        lambda: repo.claim(worker),
        lambda: repo.fail(run_id, worker, "x"),
        lambda: repo.retry([run_id]),
        lambda: repo.request_cancel([run_id]),
        lambda: repo.retry([run_id]),
        lambda: repo.claim(worker),
        lambda: repo.finish(run_id, worker, FinalFigures(validation_loss=0.1)),
    ]
    for step in steps:
        step()
        seen.append(status(repo, run_id))
    for old, new in zip(seen, seen[1:], strict=False):
        assert can_transition(old, new), (old, new)
    assert seen[-1] == S.SUCCEEDED


def test_the_recorders_late_metrics_for_a_run_no_longer_running_are_dropped(repo: Repo) -> None:
    run_id = repo.enqueue([tiny_run()]).added_ids[0]
    worker = repo.register_worker("host", 1, "cpu")
    assert repo.claim(worker) is not None
    repo.add_metrics(run_id, [MetricPoint(1, 64, "train_loss", 0.3)], 64, owner=worker)
    repo.requeue(run_id, worker)  # e.g. a second signal, while the slot still flushes
    repo.add_metrics(run_id, [MetricPoint(2, 128, "train_loss", 0.2)], 128, owner=worker)
    run = repo.get_run(run_id)
    assert (run.status, run.inputs_done) == (RunStatus.QUEUED, 0)
    assert repo.metrics_since(run_id) == []


def test_a_worker_paused_while_its_run_went_to_another_writes_nothing_and_stops(
    repo: Repo,
) -> None:
    # Stopped (ctrl+z, a suspended VM) past the heartbeat's limit: its run was recovered
    # as lost, retried and claimed by another worker. Resumed, it trained on beside it,
    # its rows and progress mixed into the new attempt's.
    run_id = repo.enqueue([tiny_run()]).added_ids[0]
    paused, other = (repo.register_worker("host", pid, "cpu") for pid in (1, 2))
    assert repo.claim(paused) is not None
    assert repo.fail(run_id, paused, "worker lost")  # as recovery marks it
    repo.retry([run_id])
    assert repo.claim(other) is not None
    repo.add_metrics(run_id, [MetricPoint(1, 64, "train_loss", 0.3)], 64, owner=other)
    repo.add_metrics(run_id, [MetricPoint(9, 576, "train_loss", 0.1)], 576, owner=paused)
    assert [m.step for m in repo.metrics_since(run_id)] == [1]
    assert repo.get_run(run_id).inputs_done == 64
    assert repo.is_cancel_requested(run_id, paused)  # its training stops at the next check
    assert not repo.is_cancel_requested(run_id, other)
    # Nor may its stop save last.pt in the folder the two share.
    assert not repo.is_running_for(run_id, paused) and repo.is_running_for(run_id, other)


def test_a_removed_newest_run_s_id_is_never_handed_out_again(repo: Repo) -> None:
    ids = repo.enqueue(tiny_runs(3)).added_ids
    assert repo.remove([ids[-1]]) == 1
    again = repo.enqueue([tiny_run(7)]).added_ids
    assert list(again) == [ids[-1] + 1]


def test_queueing_again_gives_done_runs_the_sweep_file_s_new_target(repo: Repo) -> None:
    # A published figure added to the file after its runs trained: no retraining needed.
    from dataclasses import replace

    runs = tiny_runs(2)
    ids = list(repo.enqueue(runs).added_ids)
    target = {"validation_loss": 0.053}
    # queue --dry-run says so too (it said only "skip #1 queued").
    plan = repo.plan_enqueue([replace(runs[0], target=target), runs[1]])
    assert plan == [f"skip #{ids[0]} queued, new target", f"skip #{ids[1]} queued"]
    result = repo.enqueue([replace(runs[0], target=target), runs[1]])
    assert (result.added, result.skipped, result.retargeted_ids) == (0, 2, (ids[0],))
    assert "1 of them given the sweep file's new target" in result.summary()
    assert repo.get_run(ids[0]).target == target and repo.get_run(ids[1]).target is None
    assert repo.enqueue([replace(runs[0], target=target)]).retargeted_ids == ()  # unchanged
    both = {"validation_loss": 0.053, "params": 675}
    assert repo.enqueue([replace(runs[1], target=both)]).retargeted_ids == (ids[1],)
    reordered = {"params": 675.0, "validation_loss": 0.053}  # the same figures
    assert repo.enqueue([replace(runs[1], target=reordered)]).retargeted_ids == ()


def test_a_worker_state_no_version_writes_is_a_damaged_row(repo: Repo) -> None:
    # PostgreSQL takes no text pid, but any text in state: 'zzz' (edited by hand) was
    # read as a worker neither live nor gone, left out of the live workers as if it
    # had stopped. It is named damaged by every read, the live ones too.
    from sqlalchemy import text

    from core.queue.errors import DamagedRow

    kept = repo.register_worker("box", 4242, "cpu")
    edited = repo.register_worker("box", 4243, "cpu")
    with repo.engine.begin() as conn:
        conn.execute(text("UPDATE worker SET state = 'zzz' WHERE id = :id"), {"id": edited})
    for include_gone in (False, True):
        workers, damaged = repo.workers_and_damaged(include_gone=include_gone)
        assert [w.id for w in workers] == [kept]
        assert [(d.id, d.host) for d in damaged] == [(edited, "box")]
        assert "its state is 'zzz', not one of idle, running" in damaged[0].said
    with pytest.raises(DamagedRow, match="its state is 'zzz'"):
        repo.list_workers()
    said: list[str] = []
    repo.log = said.append
    assert [w.id for w in repo.list_workers(skip_damaged=True)] == [kept]
    assert len(said) == 1 and edited in said[0]


def test_a_worker_largest_first_no_version_writes_is_a_damaged_row(repo: Repo, db_url: str) -> None:
    # largest_first edited by hand into text ('yes'; SQLite takes any value in any
    # column) read as True: the panel said "(largest first)" and ls ordered the queue
    # so. It is named damaged; what a version writes (true, false, none) still reads.
    from sqlalchemy import text

    plain = repo.register_worker("box", 4241, "cpu")
    largest = repo.register_worker("box", 4242, "cpu", largest_first=True)
    edited = repo.register_worker("box", 4243, "cpu")
    if db_url.startswith("sqlite"):
        with repo.engine.begin() as conn:
            conn.execute(
                text("UPDATE worker SET largest_first = 'yes' WHERE id = :id"), {"id": edited}
            )
    workers, damaged = repo.workers_and_damaged()
    read = {w.id: w.largest_first for w in workers}
    assert read[plain] is False and read[largest] is True
    if db_url.startswith("sqlite"):
        assert edited not in read and [d.id for d in damaged] == [edited]
        assert "its largest_first is 'yes', not true or false" in damaged[0].said
    else:  # PostgreSQL's boolean column takes no text
        assert read[edited] is False and damaged == []


def test_a_damaged_worker_row_names_every_bad_field_on_one_line(repo: Repo, db_url: str) -> None:
    # A row with several fields edited by hand (a text pid, a number for a host) was named
    # by its first bad field alone: mended, it was named again by the next, one at a time.
    # Its gpu_name was not checked at all (binary data there was read as the GPU's name).
    # (SQLite stores a number written to a text column as text: binary data stays.)
    from sqlalchemy import text

    if not db_url.startswith("sqlite"):
        pytest.skip("PostgreSQL's typed columns hold no value of the wrong kind")
    edited = repo.register_worker("box", 4242, "cpu")
    with repo.engine.begin() as conn:
        conn.execute(
            text(
                "UPDATE worker SET pid = 'abc', host = x'0505', gpu_name = x'0707' WHERE id = :id"
            ),
            {"id": edited},
        )
    damaged = repo.workers_and_damaged()[1]
    assert [d.id for d in damaged] == [edited] and "\n" not in damaged[0].said
    assert (
        "(its host is 2 bytes of binary data, not text; its pid is 'abc', not a whole number; "
        "its gpu_name is 2 bytes of binary data, not text)" in damaged[0].said
    )
    # Many at once (an UPDATE of the wrong columns): the first few in full, in the table's
    # order, the others by their columns, so the line stays a line.
    with repo.engine.begin() as conn:
        conn.execute(
            text(
                "UPDATE worker SET runs_done = 'x', started_at = 'x', last_seen_at = 'x', "
                "device = x'0101', state = 'zzz' WHERE id = :id"
            ),
            {"id": edited},
        )
    said = repo.workers_and_damaged()[1][0].said
    assert "(its host is 2 bytes of binary data, not text; its pid is 'abc', not a " in said
    assert (
        "its device is 2 bytes of binary data, not text; and 5 more: state, started_at, "
        "last_seen_at, runs_done, gpu_name)" in said
    )
    assert "\n" not in said and len(said) < 400
