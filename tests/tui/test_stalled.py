"""A run whose worker still beats but takes no training step (a hung CUDA call, a lock):
the worker's heartbeat marks its row "stalled", and the dashboard says so on the run's
row, in the summary and in the workers panel, instead of showing it training."""

from __future__ import annotations

from typing import Any

import pytest
from screen_host import drawn

from core.queue import Repo
from resconv_tui.widgets.run_table import RunTable

SIZE = (120, 36)


async def test_a_stalled_worker_s_run_reads_stalled(seeded, app_factory, settle, db_url) -> None:
    repo = Repo.open(db_url)
    gpu_box = next(w for w in repo.list_workers() if w.pid == 1111)
    repo.update_worker(gpu_box.id, state="stalled")
    repo.close()
    app = app_factory()
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        table = app.screen.query_one(RunTable)
        row = [str(c) for c in table.get_row(str(seeded["running"]))]
        assert (row[2], row[8]) == ("stalled", "no steps")
        text = await drawn(pilot, "1 running (1 stalled)")
        assert "1 running (1 stalled)" in text
        assert "run 4 stalled" in text
        others: list[Any] = [str(c) for c in table.get_row(str(seeded["ids"][0]))]
        assert others[2] == "succeeded"


async def test_a_stopping_worker_s_run_reads_stopping_and_its_rules_show(
    seeded, app_factory, settle, db_url
) -> None:
    # It finishes the step (or its last validation) first: the panel said "run 4" alone.
    repo = Repo.open(db_url)
    gpu_box = next(w for w in repo.list_workers() if w.pid == 1111)
    repo.update_worker(gpu_box.id, state="stopping")
    repo.register_worker("other-box", 2222, "cuda:1", stack=4, max_runs=8)
    repo.close()
    app = app_factory()
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        text = await drawn(pilot, "run 4 stopping")
        assert "run 4 stopping" in text
        assert "stack 4, max 8 runs" in text
        await pilot.resize_terminal(80, 24)  # narrow: the rules still show, where they fit
        await settle(pilot)
        panel = str(app.screen.query_one("WorkersPanel").render()).splitlines()
        assert len(panel) == 3 and "stack 4, max 8 runs" in panel[0]


@pytest.mark.parametrize(
    "hosts",
    [("lab-box", "lab-box"), ("gpu-node-01", "gpu-node-02")],
    ids=["one host", "alike in the 10 characters shown"],
)
async def test_two_workers_of_one_host_keep_their_pids_apart_at_80_columns(
    seeded, app_factory, settle, db_url, hosts: tuple[str, str]
) -> None:
    # At 80 columns the panel left out the pid: two workers of one box read the same (and
    # two whose names differ past the 10 characters the line shows).
    repo = Repo.open(db_url)
    for host in repo.list_workers():
        repo.update_worker(host.id, state="stopped")  # the seeded ones: shown, told apart
    for host, pid in zip(hosts, (3333, 4444), strict=True):
        repo.register_worker(host, pid, "cuda:0")
    repo.close()
    app = app_factory()
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        panel = str(app.screen.query_one("WorkersPanel").render()).splitlines()
        twins = [line for line in panel if line[2:].startswith(hosts[0][:10])]
        assert len(twins) == 2 and {line.split()[2] for line in twins} == {"3333", "4444"}
        assert all(len(line) <= 78 for line in panel)


async def test_the_run_detail_says_its_run_is_stalled(seeded, db_url) -> None:
    # The runs table said "stalled"; the run's own detail said "running", beating.
    from screen_host import ScreenHost, drawn, settle

    from resconv_tui.screens.run_detail import RunDetailScreen

    repo = Repo.open(db_url)
    gpu_box = next(w for w in repo.list_workers() if w.pid == 1111)
    repo.update_worker(gpu_box.id, state="stalled")
    repo.close()
    app = ScreenHost(RunDetailScreen(db_url, seeded["running"]))
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        stalled = "running (stalled: no step for minutes)"
        assert stalled in await drawn(pilot, stalled)
