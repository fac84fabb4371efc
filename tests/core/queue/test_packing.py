"""Admission of packed runs: the pure decision, and its inputs read from a real queue."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from queue_helpers import tiny_run, tiny_runs
from sqlalchemy import update

from core.config import RunConfig
from core.errors import ConfigError
from core.memory import estimate_bytes
from core.packing import (
    MIB,
    Admission,
    Neighbour,
    Slot,
    base_device,
    decide,
    fits,
    margin_bytes,
    need_bytes,
    parse_slot,
    threads_per_slot,
)
from core.queue import FinalFigures, MetricPoint, Repo, RunRow
from core.queue.repo import RUN

GIB = 1024 * MIB


# ----- pure pieces --------------------------------------------------------------------


def test_slot_text_round_trip() -> None:
    slot = parse_slot("2/4")
    assert slot == Slot(2, 4) and slot.label("cuda:0") == "cuda:0 slot 2/4"
    assert base_device("cuda:0 slot 2/4") == "cuda:0" and base_device("cpu") == "cpu"
    for bad in ("0/2", "3/2", "2", "a/b", "-1/2"):
        with pytest.raises(ConfigError, match="--slot"):
            parse_slot(bad)


def test_cpu_slots_share_the_cores() -> None:
    assert [threads_per_slot(16, k) for k in (1, 2, 3, 4, 32)] == [16, 8, 5, 4, 1]
    assert threads_per_slot(1, 2) == 1


def test_fits_counts_the_margin() -> None:
    assert fits(GIB, 2 * GIB, GIB) and not fits(GIB, 2 * GIB - 1, GIB)
    assert margin_bytes(0) == GIB and margin_bytes(4 * GIB) == 2 * GIB  # 1 GiB + 25 %


def test_alone_a_run_trains_whatever_it_needs() -> None:
    assert decide(100 * GIB, GIB, []).train


def test_a_run_that_fits_next_to_running_ones_trains() -> None:
    assert decide(GIB, 10 * GIB, [Neighbour(1, warming=False)]).train


def test_a_run_that_does_not_fit_next_to_a_running_one_waits() -> None:
    decision = decide(8 * GIB, 10 * GIB, [Neighbour(1, warming=False)])
    assert not decision.train and "8192 MiB + margin, 10240 MiB free" in decision.reason


def test_a_starting_neighbours_need_is_kept_aside_from_the_free_memory() -> None:
    starting = Neighbour(2, warming=True, need_bytes=2 * GIB)  # kept: 2 + 1 + 0.5 GiB
    decision = decide(MIB, 80 * GIB, [Neighbour(1, warming=False), starting])
    assert decision.train and "3584 MiB of it kept for starting run(s) 2" in decision.reason
    decision = decide(GIB, 5 * GIB, [starting])  # 3.5 GiB kept, 1 + 1.25 GiB do not fit
    assert not decision.train and "kept for starting run(s) 2" in decision.reason


def test_need_prefers_a_measured_peak_of_the_same_config_with_any_seed() -> None:
    config = RunConfig(layers=2, channels=4, seed=7)
    other_seed = config.replace(seed=1).to_json()
    wider = config.replace(channels=8).to_json()
    assert need_bytes(config, [(wider, 5), (other_seed, 1234)]) == (1234, "measured")
    assert need_bytes(config, [(wider, 5)]) == (estimate_bytes(config), "estimated")


# ----- Admission on a real queue ------------------------------------------------------


class Device:
    """Two slots on cuda:0 plus a distractor on another GPU; free memory is settable."""

    def __init__(self, repo: Repo) -> None:
        self.repo = repo
        self.free = 80 * GIB
        self.slot1 = repo.register_worker("h", 1, "cuda:0 slot 1/2")
        self.slot2 = repo.register_worker("h", 2, "cuda:0 slot 2/2")
        self.other_gpu = repo.register_worker("h", 3, "cuda:1")
        self.admission = Admission(repo, lambda: self.free)

    def claim(self, worker: str, trained: bool = True) -> RunRow:
        run = self.repo.claim(worker)
        assert run is not None
        if trained:  # a training step recorded: its memory is in use
            self.repo.add_metrics(run.id, [MetricPoint(20, 1280, "train_loss", 0.1)], 1280)
        return run


def test_admission_next_to_a_training_slot_follows_free_memory(repo: Repo) -> None:
    repo.enqueue(tiny_runs(2))
    device = Device(repo)
    device.claim(device.slot1)
    run = device.claim(device.slot2, trained=False)
    assert device.admission.check(run).train
    device.free = GIB  # the tiny run's estimate + 1 GiB margin no longer fits
    decision = device.admission.check(run)
    assert not decision.train and "(estimated need)" in decision.reason


def test_admission_leaves_out_a_neighbour_s_damaged_row(repo: Repo) -> None:
    # Slot 1's run edited by hand into a config that is no mapping: each admission check of
    # every other slot on the machine raised "damaged", and each stopped, its run back.
    repo.enqueue(tiny_runs(2))
    device = Device(repo)
    first = device.claim(device.slot1)
    with repo.engine.begin() as conn:  # as an SQL client's UPDATE stores it
        conn.execute(update(RUN).where(RUN.c.id == first.id).values(config_json="[1]"))
    said: list[str] = []
    repo.log = said.append
    run = device.claim(device.slot2, trained=False)
    assert device.admission.check(run).train
    assert said == [
        f"run {first.id}'s row is damaged (its config_json: not a mapping): put its value "
        "back, or delete the row with an SQL client; this worker goes on without it"
    ]


def test_admission_keeps_all_free_memory_for_a_damaged_starting_neighbour(repo: Repo) -> None:
    # Slot 1's run, claimed and with no step yet, edited by hand: admission left it out,
    # and slot 2 trained as if alone on the GPU that run was about to fill. Its need is
    # unknown: all the free memory is kept for it. One on another GPU changes nothing.
    repo.enqueue(tiny_runs(3))
    device = Device(repo)
    first = device.claim(device.slot1, trained=False)
    elsewhere = device.claim(device.other_gpu, trained=False)
    with repo.engine.begin() as conn:  # as an SQL client's UPDATE stores it
        damaged = update(RUN).where(RUN.c.id.in_([first.id, elsewhere.id]))
        conn.execute(damaged.values(config_json="[1]"))
    said: list[str] = []
    repo.log = said.append
    run = device.claim(device.slot2, trained=False)
    decision = device.admission.check(run)
    need = estimate_bytes(run.config) // MIB
    assert not decision.train
    assert decision.reason == (
        f"needs {need} MiB + margin, 81920 MiB free, all of it kept for run(s) {first.id}: "
        f"damaged, need unknown (estimated need); run {first.id}'s row is damaged (its "
        "config_json: not a mapping): put its value back, or delete the row with an SQL client"
    )
    assert said == [
        f"run {elsewhere.id}'s row is damaged (its config_json: not a mapping): put its value "
        "back, or delete the row with an SQL client; this worker goes on without it"
    ]
    # A step taken: its memory is allocated, in the free count, as any run's.
    repo.add_metrics(first.id, [MetricPoint(20, 1280, "train_loss", 0.1)], 1280)
    assert device.admission.check(run).train


@pytest.mark.parametrize(
    ("column", "stepped", "counted"),
    [
        ("inputs_done", True, True),  # whether it has allocated: unknown
        ("worker_id", False, True),  # which device it is about to fill: unknown
        ("worker_id", True, False),  # its steps recorded: in the free count, wherever it is
        ("validation_loss", True, False),  # a figure admission does not read
    ],
)
def test_what_is_left_of_a_damaged_neighbour_decides_whether_it_counts(
    db_path: Path, column: str, stepped: bool, counted: bool
) -> None:
    # Values of the wrong kind, which only SQLite stores: a damaged column admission reads
    # leaves the run counted where it could be a starting run of this device; what can be
    # read of it rules it out by the usual rules.
    repo = Repo.open(str(db_path))
    repo.enqueue(tiny_runs(3))
    device = Device(repo)
    first = device.claim(device.slot1, trained=stepped)
    with sqlite3.connect(db_path) as conn:  # as an SQL client's UPDATE stores it
        conn.execute(f"UPDATE run SET {column} = X'00' WHERE id = ?", (first.id,))
    run = device.claim(device.slot2, trained=False)
    decision = device.admission.check(run)
    assert decision.train is not counted
    said = f"run {first.id}'s row is damaged (its {column} is 1 bytes of binary data"
    assert (said in decision.reason) is counted
    repo.close()


def test_admission_keeps_memory_for_an_earlier_run_that_is_starting(repo: Repo) -> None:
    repo.enqueue(tiny_runs(2))
    device = Device(repo)
    first = device.claim(device.slot1, trained=False)
    second = device.claim(device.slot2, trained=False)
    assert device.admission.check(first).train  # claimed first: nothing before it
    tiny = estimate_bytes(first.config)
    device.free = 2 * (tiny + margin_bytes(tiny))  # room for both
    assert device.admission.check(second).train
    device.free -= 1  # not quite: the first one's share is kept for it
    decision = device.admission.check(second)
    assert not decision.train and f"starting run(s) {first.id}" in decision.reason
    device.free = 0
    assert device.admission.check(first).train  # the later one waits for it, not it for them


def test_runs_on_other_devices_or_hosts_do_not_count(repo: Repo) -> None:
    repo.enqueue(tiny_runs(3))
    device = Device(repo)
    elsewhere = repo.register_worker("other-host", 1, "cuda:0 slot 1/2")
    device.claim(device.other_gpu)
    device.claim(elsewhere)
    device.free = 0
    assert device.admission.check(device.claim(device.slot1, trained=False)).train


def test_admission_uses_the_measured_peak_of_a_sibling_seed(repo: Repo) -> None:
    repo.enqueue([tiny_run(0), tiny_run(1), tiny_run(2)])
    device = Device(repo)
    done = device.claim(device.slot1)
    repo.finish(done.id, device.slot1, FinalFigures(peak_memory_bytes=30 * GIB))
    device.claim(device.slot1)
    device.free = 38 * GIB  # 30 GiB + 1 GiB + 7.5 GiB margin does not fit
    decision = device.admission.check(device.claim(device.slot2, trained=False))
    assert not decision.train and "(measured need)" in decision.reason


def test_a_stack_is_admitted_as_a_whole_and_its_own_runs_are_not_neighbours(
    repo: Repo,
) -> None:
    repo.enqueue(tiny_runs(4))
    device = Device(repo)
    first = device.claim(device.slot1)  # training on slot 1
    lead = device.claim(device.slot2, trained=False)
    partners = repo.claim_like(device.slot2, lead, 2)
    assert len(partners) == 2 and {p.started_at for p in partners} == {lead.started_at}
    tiny = estimate_bytes(lead.config)
    device.free = 3 * tiny + margin_bytes(3 * tiny)  # the stack fits, its partners ignored
    decision = device.admission.check(lead, copies=3)
    assert decision.train and "(estimated need, a stack of 3)" in decision.reason
    device.free -= 1
    assert not device.admission.check(lead, copies=3).train
    assert device.admission.check(lead).train  # one run would have fitted
    assert first.id not in {p.id for p in partners}
