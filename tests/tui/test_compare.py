"""Compare: one coloured curve per run, a legend entry per run, toggles, live updates."""

from __future__ import annotations

from typing import Any

import pytest
from screen_host import ScreenHost, drawn, drawn_in, settle
from seed_runs import T0, curve, freeze, new_run
from textual.pilot import Pilot

from core.queue import FinalFigures, Repo
from resconv_tui.plotting import colour
from resconv_tui.screens.compare import BOTH, CompareScreen
from resconv_tui.widgets.loss_chart import LossChart

SIZE = (120, 36)


@pytest.fixture
def runs(db_url: str, monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Two finished runs with different loss floors and one still training."""
    clock = freeze(monkeypatch)
    repo = Repo.open(db_url)
    ids = list(repo.enqueue([new_run(n) for n in (1, 3, 5)]).added_ids)
    worker = repo.register_worker("gpu-box", 1234, "cuda:0")
    for run_id, floor in zip(ids[:2], (0.12, 0.05), strict=True):
        repo.claim(worker)
        repo.add_metrics(run_id, curve(range(1, 61), floor=floor))
        clock.time = lambda: T0 + 60.0
        repo.finish(run_id, worker, FinalFigures(validation_loss=floor + 0.011))
    repo.claim(worker)
    repo.add_metrics(ids[2], curve(range(1, 25), floor=0.08))
    repo.close()
    return ids


@pytest.fixture(autouse=True)
def slow_polls(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(CompareScreen, "POLL_S", 3600.0)
    monkeypatch.setattr(CompareScreen, "SETTLED_POLL_S", 3600.0)


def compare(pilot: Pilot[Any]) -> CompareScreen:
    assert isinstance(pilot.app.screen, CompareScreen)
    return pilot.app.screen


async def test_legend_has_an_entry_per_run(db_url: str, runs: list[int]) -> None:
    app = ScreenHost(CompareScreen(db_url, [*runs, 99]))
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        text = await drawn(pilot, "#1 l-1  (demo, succeeded)  val 0.131000")
        assert "#1 l-1  (demo, succeeded)  val 0.131000" in text
        assert "#2 l-3  (demo, succeeded)  val 0.061000" in text
        assert "#3 l-5  (demo, running)  val 0." in text  # its last validation point
        assert "#99  not in the database" in text


async def test_one_colour_per_run_and_metric_toggle(db_url: str, runs: list[int]) -> None:
    app = ScreenHost(CompareScreen(db_url, runs))
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        screen = compare(pilot)
        chart = screen.query_one(LossChart)
        assert screen.metric == BOTH
        assert [s.color for s in chart.series] == [colour(i) for i in (0, 0, 1, 1, 2, 2)]
        assert [len(s.xs) for s in chart.series] == [60, 6, 60, 6, 24, 2]
        await pilot.press("m")
        assert [len(s.xs) for s in chart.series] == [60, 60, 24]
        await pilot.press("m")
        assert [len(s.xs) for s in chart.series] == [6, 6, 2]
        await pilot.press("l")
        scale = "validation loss (log)"
        assert chart.log_y and scale in await drawn(pilot, scale)


async def test_new_rows_extend_the_running_curve(db_url: str, runs: list[int]) -> None:
    app = ScreenHost(CompareScreen(db_url, runs))
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        Repo.open(db_url).add_metrics(runs[2], curve(range(25, 31), floor=0.08))
        await pilot.press("r")
        await settle(pilot)
        chart = compare(pilot).query_one(LossChart)
        assert [len(s.xs) for s in chart.series] == [60, 6, 60, 6, 30, 3]


async def test_a_poll_with_nothing_new_draws_nothing_again(db_url: str, runs: list[int]) -> None:
    # Each poll redrew the chart and the legend, new rows or not: kilobytes over SSH.
    app = ScreenHost(CompareScreen(db_url, runs[:2]))  # both ended: nothing will change
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        screen = compare(pilot)
        chart, legend = screen.query_one(LossChart), screen.query_one("#compare-legend")
        drawn = []
        real_draw, real_update = chart.draw, legend.update
        chart.draw = lambda: (drawn.append("chart"), real_draw())  # type: ignore[method-assign]
        legend.update = lambda *a, **k: (drawn.append("legend"), real_update(*a, **k))  # type: ignore[method-assign]
        await pilot.press("r")
        await settle(pilot)
        assert drawn == []
        await pilot.press("m")  # what it shows changes: drawn again
        await settle(pilot)
        assert drawn == ["chart"]


async def test_a_removed_run_loses_its_curve_and_a_retried_one_starts_afresh(
    db_url: str, runs: list[int]
) -> None:
    # A run removed from the command line kept its curve beside "not in the database";
    # once every run had ended the screen read none of them again, so a retry went unseen.
    done, training = runs[1], runs[2]
    repo = Repo.open(db_url)
    worker = repo.get_run(training).worker_id
    assert worker is not None and repo.mark_cancelled(training, worker)
    app = ScreenHost(CompareScreen(db_url, [done, training]))
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        screen = compare(pilot)
        chart = screen.query_one(LossChart)
        assert [len(s.xs) for s in chart.series] == [60, 6, 24, 2]
        assert screen._timer is not None  # both ended, and still read now and then
        repo.retry([training])
        await pilot.press("r")
        await settle(pilot)
        assert [len(s.xs) for s in chart.series] == [60, 6, 0, 0]
        repo.claim(worker)
        repo.add_metrics(training, curve(range(1, 4), floor=0.2))
        await pilot.press("r")
        await settle(pilot)
        assert [len(s.xs) for s in chart.series] == [60, 6, 3, 0]  # the new attempt's alone
        repo.remove([done])
        await pilot.press("r")
        await settle(pilot)
        assert [len(s.xs) for s in chart.series] == [0, 0, 3, 0]
        gone = f"#{done}  not in the database"
        assert gone in await drawn(pilot, gone)
    repo.close()


def test_snapshot_compare(snap_compare: Any, db_url: str, runs: list[int]) -> None:
    assert snap_compare(
        ScreenHost(CompareScreen(db_url, runs)), terminal_size=SIZE, run_before=settle
    )


async def test_compare_takes_as_many_runs_as_it_has_colours(db_url: str, runs: list[int]) -> None:
    # 21 marked runs (or a results cell of 21 seeds): the legend stopped at 12, and runs
    # 1 and 9 had one colour.
    repo = Repo.open(db_url)
    more = list(repo.enqueue([new_run(1, seed=s) for s in range(1, 8)]).added_ids)
    repo.close()
    app = ScreenHost(CompareScreen(db_url, [*runs, *more]))
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        screen = pilot.app.screen
        assert isinstance(screen, CompareScreen) and screen.run_ids == [*runs, *more][:8]
        said = " ".join(str(n.message) for n in app._notifications)
        assert "comparing the first 8 of 10 runs" in said


async def test_the_title_names_what_differs_and_the_legend_what_names_leave_out(
    db_url: str,
) -> None:
    # Two sweeps' runs: each name shows its own sweep's key (layers), not the lr that
    # the other sweep fixed otherwise; the chart alone left the reader guessing.
    from core.config import RunConfig
    from core.queue import NewRun

    def swept_run(layers: int, lr: float, experiment: str) -> NewRun:
        config = RunConfig(layers=layers, lr=lr, max_inputs=64_000)
        return NewRun.from_config(config, experiment=experiment, name=f"l-{layers}",
                                  param_count=1000, swept={"l": layers})  # fmt: skip

    repo = Repo.open(db_url)
    ids = repo.enqueue([swept_run(3, 1e-3, "a"), swept_run(5, 3e-3, "b")]).added_ids
    same = repo.enqueue([new_run(7), new_run(7, experiment="again")]).added_ids
    repo.close()
    text = await compare_text(db_url, list(ids))
    assert "Compare 2 runs: they differ in layers, lr" in text
    assert "#1 l-3  (a, queued)  val —  lr 0.001" in text
    assert "#2 l-5  (b, queued)  val —  lr 0.003" in text
    text = await compare_text(db_url, list(same))
    assert "Compare 2 runs: same config" in text
    assert "#3 l-7  (demo, queued)  val —\n" in text


async def test_the_legend_writes_a_value_of_none_as_its_loss_of_none(db_url: str) -> None:
    # No batch norm read "bn_encoder none" beside "val —" on the same line, and "–" in
    # the compare table: one legend, two spellings of nothing.
    from core.config import RunConfig
    from core.queue import NewRun

    def swept_run(bn: int | None) -> NewRun:
        config = RunConfig(layers=3, model="v2", bn_encoder=bn, max_inputs=64_000)
        return NewRun.from_config(config, experiment="a", name=f"run-{bn or 0}",
                                  param_count=1000, swept={"act": "relu"})  # fmt: skip

    repo = Repo.open(db_url)
    ids = repo.enqueue([swept_run(None), swept_run(1)]).added_ids
    repo.close()
    text = await compare_text(db_url, list(ids))
    assert "#1 run-0  (a, queued)  val —  bn_encoder —" in text
    assert "#2 run-1  (a, queued)  val —  bn_encoder 1" in text
    assert "none" not in text


async def compare_text(db_url: str, run_ids: list[int]) -> str:
    """What the compare screen of ``run_ids`` shows once it has read them (drawn: the
    last run's legend entry)."""
    app = ScreenHost(CompareScreen(db_url, run_ids))
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        return await drawn(pilot, f"#{run_ids[-1]} ")


async def test_a_long_title_wraps_at_80_columns_and_names_every_differing_key(
    db_url: str,
) -> None:
    # Seven runs marked on the runs screen, differing in six keys: at 80 columns the
    # title stopped at "max_inputs," and seed, the key the runs differed in last, was
    # nowhere on screen.
    from core.config import RunConfig
    from core.queue import NewRun

    def run_of(index: int) -> NewRun:
        config = RunConfig(
            layers=3 + index, channels=8 + index, activation=("relu", "gelu")[index % 2],
            lr=1e-3 * (index + 1), max_inputs=64_000 + 640 * index, seed=index,
        )  # fmt: skip
        return NewRun.from_config(config, experiment="audit", name=f"r-{index}",
                                  param_count=1000)  # fmt: skip

    repo = Repo.open(db_url)
    ids = list(repo.enqueue([run_of(i) for i in range(7)]).added_ids)
    repo.close()
    app = ScreenHost(CompareScreen(db_url, ids))
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        title = pilot.app.screen.query_one("#compare-title")
        said = "Compare 7 runs: they differ in activation, channels, layers, lr, max_inputs, seed"
        assert await drawn_in(pilot, title, said) == said
