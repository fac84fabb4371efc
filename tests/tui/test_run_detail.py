"""Run detail: status, error, config, live curves that grow with new metric rows, log toggle."""

from __future__ import annotations

import io
import math
import re
import shutil
import sqlite3
import tempfile
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy
import pytest
from rich.console import Console
from screen_host import (
    ScreenHost,
    assert_folds_at_separators,
    drawn,
    drawn_among,
    region_lines,
    settle,
)
from seed_runs import ETA_SAYS, READ_AT, T0, curve, detail_runs, eta_case, freeze, new_run
from textual.pilot import Pilot
from textual.widgets import Static

import resconv_tui.screens.run_detail as run_detail
from core.queue import FinalFigures, Repo
from core.queue.samples import encode_samples
from resconv_tui.plotting import PALETTE
from resconv_tui.polling import HeardBeats
from resconv_tui.screens.run_detail import RunDetailScreen
from resconv_tui.widgets.loss_chart import LossChart
from resconv_tui.widgets.sample_image import SampleImage

SIZE = (120, 36)


@pytest.fixture
def runs(db_url: str, monkeypatch: pytest.MonkeyPatch) -> dict[str, int]:
    """One succeeded run (with samples), one failed, one running; frozen times and ids."""
    return detail_runs(db_url, freeze(monkeypatch))


def plain(renderable: Any) -> str:
    console = Console(width=120, record=True, file=io.StringIO())
    console.print(renderable)
    return console.export_text()


def detail(pilot: Pilot[Any]) -> RunDetailScreen:
    assert isinstance(pilot.app.screen, RunDetailScreen)
    return pilot.app.screen


@pytest.fixture(autouse=True)
def slow_polls(monkeypatch: pytest.MonkeyPatch) -> None:
    # Tests poll by hand (`r`), never by waiting for the timer.
    monkeypatch.setattr(RunDetailScreen, "POLL_S", 3600.0)
    monkeypatch.setattr(RunDetailScreen, "SETTLED_POLL_S", 3600.0)


async def test_succeeded_run_shows_figures_config_and_samples(db_url: str, runs: dict) -> None:
    app = ScreenHost(RunDetailScreen(db_url, runs["done"]))
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        text = await drawn(pilot, "0.051200")
        assert "succeeded" in text and "0.051200" in text and "l-3" in text
        screen = detail(pilot)
        assert screen.query_one(SampleImage).grid.shape == (3, 8, 28, 28)
        train, validation = screen.query_one("#chart-loss", LossChart).series
        assert len(train.xs) == 99 and train.xs[-1] == 99 * 640
        # Dots, as compare draws them: one validation point as a line was one braille
        # dot on the end of the train curve.
        assert validation.scatter and validation.marker == "●"
        assert not screen.query_one("#detail-error").has_class("-shown")
        config = plain(screen.query_one("#detail-config", Static).content)
        pairs = re.findall(r"(\w+) +(\S+)", config)
        assert ("max_inputs", "64000") in pairs and ("layers", "3") in pairs


@pytest.mark.parametrize("screen", ["detail", "compare"])
async def test_a_chart_screen_on_an_older_database_draws_without_waiting_out_a_lock(
    db_url: str, runs: dict, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, screen: str
) -> None:
    # Both open the database in their poll thread as a writer did: on an older version's
    # runs.db whose write lock another process held, adding the newer columns waited the
    # busy timeout (15 s) before the first draw, where the dashboard's own read did not.
    import time

    from sqlite_locks import drop_newer_columns, write_lock_held

    from core.queue import db as db_module
    from resconv_tui.screens.compare import CompareScreen

    # 8 s against 4: room for a slow start on a loaded machine, none for the wait.
    monkeypatch.setattr(db_module, "DEFAULT_BUSY_TIMEOUT_S", 8.0)
    drop_newer_columns(tmp_path / "runs.db")  # as an older version made it
    if screen == "detail":
        opened: Any = RunDetailScreen(db_url, runs["done"])
    else:
        opened = CompareScreen(db_url, [runs["done"], runs["failed"]])
    app = ScreenHost(opened)
    with write_lock_held(tmp_path / "runs.db"):
        start = time.monotonic()
        async with app.run_test(size=SIZE) as pilot:
            await settle(pilot)
            assert time.monotonic() - start < 4.0  # a reader's short try, not 8 s
            assert "l-3" in await drawn(pilot, "l-3")  # drawn from the read


async def test_damaged_sample_images_leave_the_rest_of_the_run_shown(
    db_url: str, runs: dict
) -> None:
    # Edited by hand: decoding them in the message handler was a numpy traceback that
    # ended the dashboard.
    with sqlite3.connect(db_url.removeprefix("sqlite:///")) as conn:
        conn.execute("UPDATE run SET samples = x'0011' WHERE id = ?", (runs["done"],))
    app = ScreenHost(RunDetailScreen(db_url, runs["done"]))
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        assert "0.051200" in await drawn(pilot, "0.051200")
        note = detail(pilot).query_one(SampleImage).empty_note
        assert note.startswith(f"run {runs['done']}'s sample images are damaged (not a .npy")


async def test_a_sample_grid_larger_than_any_run_makes_is_a_note_not_drawn(
    db_url: str, runs: dict
) -> None:
    # A valid but hand-made 3 x 1 x 200000 x 1 grid was drawn in full: 100,000 lines a row.
    tall = encode_samples(numpy.zeros((3, 1, 200_000, 1), numpy.uint8))
    with sqlite3.connect(db_url.removeprefix("sqlite:///")) as conn:
        conn.execute("UPDATE run SET samples = ? WHERE id = ?", (tall, runs["done"]))
    app = ScreenHost(RunDetailScreen(db_url, runs["done"]))
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        image = detail(pilot).query_one(SampleImage)
        assert image.grid is None and image.size.height == 1
        assert image.empty_note.startswith(
            f"run {runs['done']}'s sample images are damaged (images 200,000 x 1, over 256 a side"
        )


async def test_failed_run_shows_its_error(db_url: str, runs: dict) -> None:
    app = ScreenHost(RunDetailScreen(db_url, runs["failed"]))
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        error = detail(pilot).query_one("#detail-error", Static)
        assert error.has_class("-shown")
        assert "CUDA out of memory" in str(error.content)
        # ...with its cause and the retry that fits it
        assert "\nout of memory: retry once the device has room for it" in str(error.content)
        # The command it suggests acts on this database, not on ./runs.db of the shell
        # it is pasted into (which said "no database at runs.db", or retried another's).
        assert f"resconv-tui retry --cause oom --db {db_url} retries every" in str(error.content)
        assert detail(pilot).query_one("#detail-body").children[0] is error  # above the charts
        assert "failed" in await drawn(pilot, "failed")
        note = detail(pilot).query_one(SampleImage).empty_note
        assert note == "no sample reconstructions: the run failed before its final validation pass"


@pytest.mark.parametrize("ended", ["failed", "was cancelled"])
async def test_a_run_that_ended_before_any_point_promises_no_data(db_url: str, ended: str) -> None:
    repo = Repo.open(db_url)
    (run_id,) = repo.enqueue([new_run(3)]).added_ids
    worker = repo.register_worker("gpu-box", 1234, "cuda:0")
    repo.claim(worker)
    if ended == "failed":
        repo.fail(run_id, worker, "CUDA out of memory (tried to allocate 2.0 GiB)")
    else:
        repo.mark_cancelled(run_id, worker)
    app = ScreenHost(RunDetailScreen(db_url, run_id))
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        # Its charts said "no data yet", as if data were to come; "the run cancelled".
        notes = {chart.empty_note for chart in detail(pilot).query(LossChart)}
        assert notes == {f"none recorded, the run {ended}"}
        said = detail(pilot).query_one(SampleImage).empty_note
        assert (
            said == f"no sample reconstructions: the run {ended} before its final validation pass"
        )


async def test_a_run_retried_elsewhere_starts_its_charts_afresh(db_url: str) -> None:
    # Left open on a cancelled run, the screen stopped reading it: a retry from the command
    # line went unseen, and the new attempt's curve was drawn over the deleted one's.
    repo = Repo.open(db_url)
    (run_id,) = repo.enqueue([new_run(3)]).added_ids
    worker = repo.register_worker("gpu-box", 1234, "cuda:0")
    repo.claim(worker)
    repo.add_metrics(run_id, curve(range(1, 20), floor=0.3))
    repo.mark_cancelled(run_id, worker)
    app = ScreenHost(RunDetailScreen(db_url, run_id))
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        screen = detail(pilot)
        chart = screen.query_one("#chart-loss", LossChart)
        assert len(chart.series[0].xs) == 19
        assert screen._timer is not None  # an ended run is still read, now and then
        repo.retry([run_id])
        await pilot.press("r")
        await settle(pilot)
        assert screen.run is not None and screen.run.status.value == "queued"
        assert chart.series[0].xs == [] and chart.empty_note == "no data yet"
        repo.claim(worker)
        repo.add_metrics(run_id, curve(range(1, 4), floor=0.1))
        await pilot.press("r")
        await settle(pilot)
        assert len(chart.series[0].xs) == 3  # the new attempt's points alone
    repo.close()


async def test_running_run_redraws_with_new_rows_only(db_url: str, runs: dict) -> None:
    app = ScreenHost(RunDetailScreen(db_url, runs["running"]))
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        screen = detail(pilot)
        chart = screen.query_one("#chart-loss", LossChart)
        assert len(chart.series[0].xs) == 19 and len(chart.series[1].xs) == 1
        # Its newest validation point, not "—" beside the chart's dots until it ends.
        last_val = 0.25 * math.exp(-10 / 15) + 0.06  # seed_runs.curve's at step 10
        said = f"val loss   {last_val:.6f} at 6,400 inputs (the last pass"
        assert said in await drawn(pilot, said)
        seen = screen.last_metric_id
        repo = Repo.open(db_url)
        repo.add_metrics(runs["running"], curve(range(20, 31)), inputs_done=19_840)
        await pilot.press("r")
        await settle(pilot)
        assert len(chart.series[0].xs) == 30 and len(chart.series[1].xs) == 3
        assert screen.last_metric_id == seen + 11 * 3 + 2
        last_val = 0.25 * math.exp(-30 / 15) + 0.06
        said = f"val loss   {last_val:.6f} at 19,200 inputs"
        assert said in await drawn(pilot, said)
        await pilot.press("r")  # nothing new: nothing is added twice
        await settle(pilot)
        assert len(chart.series[0].xs) == 30
        assert "19,840 / 64,000" in await drawn(pilot, "19,840 / 64,000")
        # Its pace so far, as the runs table shows it: not "—" until it ends.
        assert "inputs/s   496\n" in await drawn(pilot, "inputs/s   496\n")  # 19,840 in 40 s


async def test_l_toggles_log_scale(db_url: str, runs: dict) -> None:
    app = ScreenHost(RunDetailScreen(db_url, runs["done"]))
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        chart = detail(pilot).query_one("#chart-loss", LossChart)
        assert not chart.log_y
        await pilot.press("l")
        assert chart.log_y and "loss (log)" in await drawn(pilot, "loss (log)")
        await pilot.press("l")
        assert not chart.log_y


async def test_unknown_run_says_so(db_url: str, runs: dict) -> None:
    app = ScreenHost(RunDetailScreen(db_url, 999))
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        assert "no run with id 999" in await drawn(pilot, "no run with id 999")


def test_snapshot_run_detail(snap_compare: Any, db_url: str, runs: dict) -> None:
    app = ScreenHost(RunDetailScreen(db_url, runs["done"]))
    assert snap_compare(app, terminal_size=SIZE, run_before=settle)


def test_snapshot_run_detail_samples(snap_compare: Any, db_url: str, runs: dict) -> None:
    async def scroll_down(pilot: Pilot[Any]) -> None:
        await settle(pilot)
        detail(pilot).query_one("#detail-body").scroll_end(animate=False)
        await pilot.pause()

    app = ScreenHost(RunDetailScreen(db_url, runs["done"]))
    assert snap_compare(app, terminal_size=SIZE, run_before=scroll_down)


@pytest.mark.parametrize("memory_points", [0, 3], ids=["none", "older-zeros"])
async def test_no_memory_chart_for_cpu_runs_which_measure_no_device_memory(
    db_url: str, memory_points: int
) -> None:
    from core.queue import MetricPoint

    repo = Repo.open(db_url)
    (run_id,) = repo.enqueue([new_run(2)]).added_ids
    repo.claim(repo.register_worker("laptop", 1, "cpu"))
    # A CPU worker records no memory points; older ones wrote zeros.
    points = [MetricPoint(s, s * 640, "memory_bytes", 0.0) for s in range(1, 1 + memory_points)]
    repo.add_metrics(run_id, [*points, MetricPoint(3, 1920, "train_loss", 0.3)], inputs_done=1920)
    app = ScreenHost(RunDetailScreen(db_url, run_id))
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        chart = detail(pilot).query_one("#chart-memory", LossChart)
        # Not half the row standing empty: the speed chart takes it whole.
        speed = detail(pilot).query_one("#chart-speed", LossChart)
        assert chart.series == [] and not chart.display
        assert speed.size.width == detail(pilot).query_one("#detail-mid").size.width
        assert detail(pilot).query_one("#chart-loss", LossChart).series[0].ys == [0.3]
        # A GPU run's points: the chart is back, beside the speed chart.
        gpu = [MetricPoint(4, 2560, "memory_bytes", 300 * 2**20)]
        repo.add_metrics(run_id, [*gpu, MetricPoint(4, 2560, "train_loss", 0.2)])
        detail(pilot).poll()
        await settle(pilot)
        assert chart.display and chart.series[0].ys[-1] == 300


def test_progress_of_a_run_whose_last_whole_batch_passed_max_inputs(db_url: str) -> None:
    from resconv_tui.widgets.run_info import progress

    repo = Repo.open(db_url)
    (run_id,) = repo.enqueue([new_run(2)]).added_ids  # max_inputs 64,000
    worker = repo.register_worker("h", 1, "cpu")
    repo.claim(worker)
    repo.add_metrics(run_id, [], inputs_done=32_000)
    assert progress(repo.get_run(run_id)) == "32,000 / 64,000 inputs (50%)"
    repo.finish(run_id, worker, FinalFigures(0.05, None, 9.0, 7000.0, None, 64_032))
    assert progress(repo.get_run(run_id)) == ("64,032 inputs (max_inputs 64,000, in whole batches)")
    repo.close()


async def test_the_loss_chart_stays_readable_at_80_columns(db_url: str, runs: dict) -> None:
    app = ScreenHost(RunDetailScreen(db_url, runs["running"]))
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        assert detail(pilot).query_one("#chart-loss").region.width >= 40  # was 28


@pytest.mark.parametrize("size", [(80, 24), (200, 50)])
async def test_a_long_experiment_name_folds_at_its_separators(
    db_url: str, monkeypatch: pytest.MonkeyPatch, size: tuple[int, int]
) -> None:
    # Rich folded it at the cell's edge, inside a word: "…-max-in" / "puts-300…" at 80 columns.
    freeze(monkeypatch)
    name = "t1-layers-sweep-max-inputs-300_fashion-mnist-rerun-after-the-warmup-fix"
    repo = Repo.open(db_url)
    (run_id,) = repo.enqueue([new_run(3, experiment=name)]).added_ids
    repo.close()
    app = ScreenHost(RunDetailScreen(db_url, run_id))
    async with app.run_test(size=size) as pilot:
        await settle(pilot)
        assert "experiment" in await drawn_among(pilot, detail(pilot).query_one("#detail-info"),
                                                 "experiment")  # fmt: skip
        assert "queued" in await drawn_among(pilot, detail(pilot).query_one("#detail-title"),
                                             "queued")  # fmt: skip
        lines = region_lines(app, detail(pilot).query_one("#detail-info").content_region)
        title = region_lines(app, detail(pilot).query_one("#detail-title").content_region)
    assert_folds_at_separators(row_value(lines, "experiment", name), name)
    # The title shows it whole too, status and all (at 80 columns it ended mid-name).
    assert "".join(title).replace(" ", "").endswith(f"({name})queued".replace(" ", ""))


async def test_a_long_worker_and_checkpoint_fold_at_their_separators(
    db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    freeze(monkeypatch)
    repo = Repo.open(db_url)
    (run_id,) = repo.enqueue([new_run(3)]).added_ids
    worker = repo.register_worker("gpu-box-in-the-basement-rack-3", 41234, "cuda:0")
    assert repo.claim(worker) is not None
    # On this host (one that is not says so after it), and short enough for the panel
    # to draw whole at 80x24 (pytest's tmp_path is not): the path alone folds.
    base = Path(tempfile.mkdtemp(dir="/tmp"))
    folder = str(base / "projects/resconv/checkpoints/t1-layers-32/run-1")
    try:
        Path(folder).mkdir(parents=True)
        repo.finish(run_id, worker, FinalFigures(0.05, checkpoint_path=folder))
        repo.close()
        app = ScreenHost(RunDetailScreen(db_url, run_id))
        async with app.run_test(size=(80, 24)) as pilot:
            await settle(pilot)
            info = detail(pilot).query_one("#detail-info")
            assert "checkpoint" in await drawn_among(pilot, info, "checkpoint")
            lines = region_lines(app, info.content_region)
    finally:
        shutil.rmtree(base)
    for label, value in (("worker", worker), ("checkpoint", folder)):
        assert_folds_at_separators(row_value(lines, label, value), value)


async def test_a_put_back_run_names_its_earlier_checkpoint_folder(
    db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Put back (its worker lost, then retried) it read "checkpoint —" while its folder
    # held the last.pt of the attempt that was cut short.
    from core.run_folders import claim_run_folder

    freeze(monkeypatch)
    repo = Repo.open(db_url)
    (run_id,) = repo.enqueue([new_run(3)]).added_ids
    worker = repo.register_worker("gpu-box", 1234, "cuda:0")
    run = repo.claim(worker)
    assert run is not None
    # run.json as a worker writes it, in the folder a worker uses next to runs.db
    owner = {"run": run.id, "experiment": run.experiment, "config_hash": run.config_hash,
             "queued_at": run.created_at}  # fmt: skip
    folder = claim_run_folder(tmp_path / "checkpoints" / "demo", run_id, owner)
    (folder / "last.pt").write_text("weights")
    repo.recover_stale(dead_worker_ids=[worker])
    repo.retry([run_id])
    repo.close()
    app = ScreenHost(RunDetailScreen(db_url, run_id))
    async with app.run_test(size=(160, 40)) as pilot:
        await settle(pilot)
        text = plain(detail(pilot).query_one("#detail-info", Static).content)
    assert f"checkpoint {folder} (an earlier attempt's)" in " ".join(text.split())


def row_value(lines: list[str], label: str, value: str) -> list[str]:
    """The lines the info panel draws ``value`` of the row ``label`` in (folded, not cut)."""
    first = next(i for i, line in enumerate(lines) if line.startswith(label))
    start = lines[first].index(value[:6])
    parts = [lines[first][start:]]
    for line in lines[first + 1 :]:
        if line[:start].strip():  # the next row's label: the value has ended
            break
        parts.append(line[start:])
    assert len(parts) > 1  # it is folded at this width, not cut
    return parts


@pytest.fixture
def updated(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The ids of the Statics updated from now on (each update is sent to the terminal)."""
    ids: list[str] = []
    update = Static.update

    def spy(self: Static, *args: Any, **kwargs: Any) -> None:
        ids.append(self.id or "")
        update(self, *args, **kwargs)

    monkeypatch.setattr(Static, "update", spy)
    return ids


async def test_an_ended_run_s_panels_are_not_sent_again_at_each_poll(
    db_url: str, runs: dict, updated: list[str]
) -> None:
    # An ended run is read every few seconds: its title, info, config and error panels
    # went to the terminal again each time (about 6 KB a poll at 160x45).
    app = ScreenHost(RunDetailScreen(db_url, runs["failed"]))
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        panels = {"detail-title", "detail-info", "detail-config", "detail-error"}
        assert panels <= set(updated)  # drawn once
        updated.clear()
        for _ in range(2):
            await pilot.press("r")
            await settle(pilot)
        assert not panels & set(updated)
        assert "CUDA out of memory" in await drawn(pilot, "CUDA out of memory")


async def test_a_running_run_s_info_is_drawn_again_as_its_times_change(
    db_url: str, runs: dict, updated: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    now = T0 + 140.0
    monkeypatch.setattr(run_detail, "time", SimpleNamespace(time=lambda: now))
    app = ScreenHost(RunDetailScreen(db_url, runs["running"]))
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        assert "heartbeat  5s ago" in await drawn(pilot, "heartbeat  5s ago")
        updated.clear()
        await pilot.press("r")  # the same second: nothing to draw again
        await settle(pilot)
        assert "detail-info" not in updated
        now += 3
        await pilot.press("r")
        await settle(pilot)
        # "elapsed" and "heartbeat 8s ago" changed; the title, config and error did not.
        assert updated.count("detail-info") == 1
        assert "heartbeat  8s ago" in await drawn(pilot, "heartbeat  8s ago")
        assert not {"detail-title", "detail-config", "detail-error"} & set(updated)


def eta_row(screen: RunDetailScreen) -> str | None:
    """The info panel's ETA row (its value, on one line), or None where it has none."""
    lines = plain(screen.query_one("#detail-info", Static).content).splitlines()
    found = [line for line in lines if line.startswith("ETA ")]
    return found[0][len("checkpoint ") :].strip() if found else None


@pytest.mark.parametrize("case", ETA_SAYS)
async def test_a_running_run_s_eta_is_the_runs_table_s_or_ls_s_why_none(
    db_url: str, runs: dict, monkeypatch: pytest.MonkeyPatch, case: str
) -> None:
    # It said "elapsed 17s", "heartbeat 0s ago" and "progress 5,120 / 9,000 inputs (57%)",
    # where the runs table said "ETA 10s": the one thing someone opens it for.
    from resconv_tui.commands.ls import run_line, troubled_runs
    from resconv_tui.polling import format_duration, read_dashboard, shown_eta

    run_id = eta_case(db_url, runs["running"], case)
    now = T0 + READ_AT[case]
    monkeypatch.setattr(run_detail, "time", SimpleNamespace(time=lambda: now))
    # The dashboard has watched the run since its last beat (the runs screen's polls):
    # silent as long as that beat's age says (``ls`` judges by age, the dashboard by it).
    watched = [0.0]
    heard = HeardBeats(clock=lambda: watched[0])
    repo = Repo.open(db_url)
    beaten = repo.get_run(run_id)
    repo.close()
    heard.silent([beaten], beaten.heartbeat_at or now)
    watched[0] = now - (beaten.heartbeat_at or now)
    app = ScreenHost(RunDetailScreen(db_url, run_id, heard=heard))
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        assert eta_row(detail(pilot)) == ETA_SAYS[case]
        # On screen, below its progress (the panel folds a long note).
        info = detail(pilot).query_one("#detail-info")
        assert ETA_SAYS[case] in await drawn_among(pilot, info, ETA_SAYS[case])
        shown = " ".join(" ".join(region_lines(app, info.content_region)).split())
        assert re.search(r"inputs \(\d+%\) ETA " + re.escape(ETA_SAYS[case]) + " val loss", shown)
    repo = Repo.open(db_url)
    every = repo.list_runs()
    run = repo.get_run(run_id)
    stalled, exited = troubled_runs(repo, every, now)
    dashboard = read_dashboard(repo, now)
    repo.close()
    if case == "forecast":  # the runs table's ETA column, from the same forecast
        assert format_duration(shown_eta(run, now, dashboard.run_ends)) == ETA_SAYS[case]
    ls_says = run_line(run, now, run_id in stalled, run_id in exited, dashboard.run_ends)[-1]
    assert ls_says == (f"ETA {ETA_SAYS[case]}" if case == "forecast" else ETA_SAYS[case])


async def test_a_run_that_is_not_running_has_no_eta_row(db_url: str, runs: dict) -> None:
    repo = Repo.open(db_url)
    (queued,) = repo.enqueue([new_run(9)]).added_ids
    repo.close()
    for run_id in (runs["done"], runs["failed"], queued):
        app = ScreenHost(RunDetailScreen(db_url, run_id))
        async with app.run_test(size=SIZE) as pilot:
            await settle(pilot)
            assert eta_row(detail(pilot)) is None and "progress" in await drawn(pilot, "progress")


async def test_a_running_run_s_eta_follows_the_forecast_as_it_trains(
    db_url: str, runs: dict, monkeypatch: pytest.MonkeyPatch
) -> None:
    now = T0 + 140.0
    monkeypatch.setattr(run_detail, "time", SimpleNamespace(time=lambda: now))
    watched = [0.0]  # the dashboard's clock that times a beat unchanged
    heard = HeardBeats(clock=lambda: watched[0])
    app = ScreenHost(RunDetailScreen(db_url, runs["running"], heard=heard))
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        screen = detail(pilot)
        assert eta_row(screen) == "2m51s"
        repo = Repo.open(db_url)
        repo.add_metrics(runs["running"], [], inputs_done=51_200)  # 4x as far, at T0 + 135
        repo.close()
        await pilot.press("r")
        await settle(pilot)
        assert eta_row(screen) == "10s"
        now += 40  # 45 s since its last beat, read unchanged for 40 s: silent, as the
        watched[0] += 40  # runs table says
        await pilot.press("r")
        await settle(pilot)
        assert eta_row(screen) == "silent 40s: no heartbeat from its worker (lost?)"


@pytest.mark.parametrize("handed", [False, True], ids=["afresh", "from-the-runs-screen"])
async def test_the_forecast_reads_the_ended_runs_only_when_they_changed(
    db_url: str, runs: dict, monkeypatch: pytest.MonkeyPatch, handed: bool
) -> None:
    # Opened from the runs screen, the detail takes its read of the runs not running:
    # read afresh, a queue of 10,000 kept a running run's detail blank for half a second.
    from core.queue.repo import SETTLED
    from resconv_tui.polling import SettledRuns, read_runs

    now = T0 + 140.0
    monkeypatch.setattr(run_detail, "time", SimpleNamespace(time=lambda: now))
    repo = Repo.open(db_url)
    settled = read_runs(repo, SettledRuns())[1] if handed else None
    repo.close()
    reads: list[object] = []
    list_runs = Repo.list_runs

    def counted(self: Repo, *args: Any, **kwargs: Any) -> Any:
        found = list_runs(self, *args, **kwargs)
        if args and args[0].statuses == SETTLED:
            reads.append(found)
        return found

    monkeypatch.setattr(Repo, "list_runs", counted)
    app = ScreenHost(RunDetailScreen(db_url, runs["running"], settled=settled))
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        assert eta_row(detail(pilot)) == "2m51s"  # the same forecast either way
        assert len(reads) == (0 if handed else 1)
        await pilot.press("r")
        await settle(pilot)
        assert len(reads) == (0 if handed else 1)  # unchanged since: not read again


@pytest.mark.parametrize("log_first", [False, True])
async def test_inf_losses_are_left_out_of_the_chart_on_both_scales(
    db_url: str, log_first: bool
) -> None:
    # A diverged run's rows held inf in a database of a version before 6081ce2 (Repo now
    # stores no NaN or inf): plotext raised on it (OverflowError on the linear scale,
    # ValueError on the log scale) while drawing the chart, and the dashboard was lost.
    repo = Repo.open(db_url)
    (run_id,) = repo.enqueue([new_run(3)]).added_ids
    worker = repo.register_worker("gpu-box", 1234, "cuda:0")
    repo.claim(worker)
    repo.add_metrics(run_id, curve(range(1, 20)))
    repo.fail(run_id, worker, "loss became inf at step 20")
    repo.close()
    with sqlite3.connect(db_url.removeprefix("sqlite:///")) as conn:  # as the older one did
        conn.executemany(
            "INSERT INTO metric (run_id, step, inputs, name, value) VALUES (?, ?, ?, ?, ?)",
            [(run_id, 20, 12_800, "train_loss", math.inf), (run_id, 20, 12_800, "val_loss",
              math.inf), (run_id, 21, 13_440, "train_loss", -math.inf)],
        )  # fmt: skip
    conn.close()
    app = ScreenHost(RunDetailScreen(db_url, run_id))
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        chart = detail(pilot).query_one("#chart-loss", LossChart)
        assert len(chart.series[0].xs) == 21  # the rows as read: only the drawing skips them
        for _ in range(2):
            if log_first:
                await pilot.press("l")
            await settle(pilot)
            scale = " (log)" if chart.log_y else ""
            note = f"loss{scale}: 3 inf/NaN points left out"
            text = await drawn(pilot, note)
            # The finite points are drawn (round axis labels of their range), with a note.
            assert note in text
            assert re.search(r"0\.[0-9]+┤", text) and "10,000" in text
            log_first = not log_first


async def test_a_run_in_its_final_pass_is_validating_as_the_runs_table_says(
    db_url: str, runs: dict, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Every input trained, its final pass under way: the runs table said "validating",
    # the detail's title and status row "running".
    from resconv_tui.widgets.run_table import RunTable

    run_id = eta_case(db_url, runs["running"], "validating")
    now = T0 + READ_AT["validating"]
    monkeypatch.setattr(run_detail, "time", SimpleNamespace(time=lambda: now))
    repo = Repo.open(db_url)
    run = repo.get_run(run_id)
    repo.close()
    table_says = str(RunTable().cells(run, now, marked=False)[2])
    assert table_says == "validating"
    app = ScreenHost(RunDetailScreen(db_url, run_id))
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        screen = detail(pilot)
        assert table_says in await drawn_among(pilot, screen.query_one("#detail-title"), table_says)
        assert "status" in await drawn_among(pilot, screen.query_one("#detail-info"), "status")
        title = " ".join(region_lines(app, screen.query_one("#detail-title").content_region))
        info = region_lines(app, screen.query_one("#detail-info").content_region)
    assert title.split()[-1] == table_says, title
    status_row = next(line for line in info if line.split()[:1] == ["status"])
    assert status_row.split()[1:] == [table_says], info


def running_with_one_validation_pass(db_url: str, monkeypatch: pytest.MonkeyPatch) -> int:
    """A run training on a GPU box with 60 train points and its first validation pass at
    0 inputs (a falling curve's start, where plotext drew its legend): its id."""
    from core.queue import MetricPoint

    freeze(monkeypatch)
    repo = Repo.open(db_url)
    run_id = repo.enqueue([new_run(3)]).added_ids[0]
    worker = repo.register_worker("gpu-box", 1234, "cuda:0")
    repo.claim(worker)
    repo.add_metrics(run_id, [*curve(range(1, 61)), MetricPoint(0, 0, "val_loss", 0.31)])
    repo.close()
    return run_id


@pytest.mark.parametrize("size", [(80, 24), (120, 35)])
async def test_the_legend_is_drawn_below_the_plot_not_over_the_curves(
    db_url: str, monkeypatch: pytest.MonkeyPatch, size: tuple[int, int]
) -> None:
    # plotext drew its legend over the plot's top left rows, where a falling loss curve
    # starts: a run of 640 inputs showed its one validation dot beside "●● validation",
    # and the inputs/s curve's first peaks fell on its "inputs/s" row.
    run_id = running_with_one_validation_pass(db_url, monkeypatch)
    app = ScreenHost(RunDetailScreen(db_url, run_id))
    async with app.run_test(size=size) as pilot:
        await settle(pilot)
        # The legend below the plot: a drawn frame, before reading what the plot holds.
        legend = "── train ● validation"
        assert legend in await drawn_among(pilot, detail(pilot).query_one("#chart-loss"), legend)
        shown = ["#chart-loss", "#chart-speed"] if size[1] >= 35 else ["#chart-loss"]
        for chart_id in shown:  # (at 24 rows the speed chart is below, scrolled to)
            assert "└" in await drawn_among(pilot, detail(pilot).query_one(chart_id), "└")
            lines = region_lines(app, detail(pilot).query_one(chart_id, LossChart).region)
            top = next(i for i, line in enumerate(lines) if "┌" in line)
            bottom = next(i for i, line in enumerate(lines) if "└" in line)
            inside = "\n".join(lines[top + 1 : bottom])
            assert not re.search(r"train|validation|inputs/s", inside), inside
        loss = region_lines(app, detail(pilot).query_one("#chart-loss", LossChart).region)
        plots = [re.split("[│┤]", line, maxsplit=1)[-1] for line in loss]
        assert any(plot.startswith("●") for plot in plots), "\n".join(loss)  # the first pass
        assert "inputs   ── train   ● validation" in loss[-1] + loss[-2]
        # Each key in its curve's colour: the legend tells them apart as plotext's did.
        legend = next(s for s in app.screen._compositor.render_strips() if "── train" in s.text)
        colours = {seg.text.strip(): seg.style.color for seg in legend if seg.style}
        assert colours["──"] and colours["──"].triplet == PALETTE[0]
        assert colours["●"] and colours["●"].triplet == PALETTE[1]


async def test_the_legend_under_a_narrow_loss_chart_keeps_its_keys(
    db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # plotext leaves out an x label wider than its room: at 60 columns the line below the
    # loss chart was empty, neither "inputs" nor which curve is which.
    run_id = running_with_one_validation_pass(db_url, monkeypatch)
    app = ScreenHost(RunDetailScreen(db_url, run_id))
    async with app.run_test(size=(60, 24)) as pilot:
        await settle(pilot)
        legend = "── train ● validation"
        assert legend in await drawn_among(pilot, detail(pilot).query_one("#chart-loss"), legend)
        loss = region_lines(app, detail(pilot).query_one("#chart-loss", LossChart).region)
        assert "── train   ● validation" in loss[-1] + loss[-2], "\n".join(loss)


async def test_opened_without_db_the_retry_it_suggests_leaves_the_db_out(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # `resconv-tui` with no --db suggested `retry --cause oom --db sqlite:///runs.db` for a
    # failed run, where `show` (and the shell it is pasted into) takes ./runs.db without.
    import resconv_tui.app
    from resconv_tui.cli import main
    from resconv_tui.widgets.run_table import RunTable

    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("RESCONV_DB", raising=False)
    failed = detail_runs("sqlite:///runs.db", freeze(monkeypatch))["failed"]
    opened: list[resconv_tui.app.ResconvApp] = []
    monkeypatch.setattr(resconv_tui.app.ResconvApp, "run", lambda app, **_: opened.append(app))
    assert main([]) == 0  # the dashboard command, its app's run left to the test
    async with opened[0].run_test(size=SIZE) as pilot:
        await settle(pilot)
        runs_table = pilot.app.screen.query_one(RunTable)
        runs_table.move_cursor(row=runs_table.get_row_index(str(failed)), animate=False)
        await pilot.press("enter")
        await settle(pilot)
        error = str(detail(pilot).query_one("#detail-error", Static).content)
        assert "resconv-tui retry --cause oom retries every run that failed so" in error
        assert "--db" not in error
