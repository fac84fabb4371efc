"""The results screen: logbook table, sorting, columns, experiment filter, export."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from screen_host import drawn, eventually
from textual.widgets import SelectionList

from core.queue import views as v
from resconv_tui.screens.columns import ColumnsScreen
from resconv_tui.screens.compare import CompareScreen
from resconv_tui.screens.results import ResultsScreen, screen_column
from resconv_tui.screens.run_detail import RunDetailScreen

SIZE = (120, 36)


async def open_results(pilot: Any, settle: Any) -> ResultsScreen:
    await settle(pilot)
    await pilot.press("R")
    await settle(pilot)
    screen = pilot.app.screen
    assert isinstance(screen, ResultsScreen)
    return screen


def ids(screen: ResultsScreen) -> list[int]:
    return screen.view.column(v.RUN)


async def test_finished_runs_sorted_by_loss_with_targets(seeded, app_factory, settle) -> None:
    app = app_factory()
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_results(pilot, settle)
        assert ids(screen) == [3, 2, 1]
        assert screen.view.columns == (
            "run", "l", v.LOSS, v.TARGET, v.DIFF, v.PARAMS, v.MINUTES, v.LOGBOOK_MINUTES,
            v.METER,
        )  # fmt: skip
        assert screen.view.column(v.TARGET) == [0.102242, 0.124805, 0.164834]
        assert round(screen.view.column(v.DIFF)[0], 6) == round(0.0991 - 0.102242, 6)
        assert screen.view.column(v.METER) == ["*", "*" * 11, "*" * 21]
        assert screen.query_one("DataTable").row_count == 3


async def test_default_columns_fit_120_columns_with_short_headers(
    seeded, app_factory, settle
) -> None:
    """The logbook minutes and meter were scrolled out of sight at 120 columns."""
    app = app_factory()
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_results(pilot, settle)
        table = screen.query_one("DataTable")
        labels = [str(c.label) for c in table.columns.values()]
        assert labels[2:] == [
            "val loss ▲", "target", "Δ target", "params", "minutes", "logbook min", "meter",
        ]  # fmt: skip
        used = sum(c.get_render_width(table) for c in table.columns.values())
        assert used <= table.scrollable_content_region.width - 10  # room for a 2nd swept key
        assert table.max_scroll_x == 0


async def test_at_80_columns_the_meter_s_bars_are_scaled_to_fit(
    seeded, app_factory, settle
) -> None:
    # Cut at the screen's edge, the 11- and 21-star bars both read "******".
    app = app_factory()
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await open_results(pilot, settle)
        table = screen.query_one("DataTable")
        assert table.max_scroll_x == 0
        bars = [str(table.get_cell_at((row, len(table.columns) - 1))) for row in range(3)]
        assert bars[0] == "*" and len(set(bars)) == 3  # best, middle and worst still differ
        assert 1 < len(bars[1]) < len(bars[2]) < 21
        assert screen.view.column(v.METER) == ["*", "*" * 11, "*" * 21]  # exports keep 21
        # Narrower, the status line keeps the order by the header's arrow (a longer
        # experiment's name cut "descending" off at 80 columns); the short headers (at 58
        # columns, still too wide: it scrolls) are said on a line of their own.
        status = screen.query_one("#results-status")
        await pilot.resize_terminal(58, 24)
        await settle(pilot)
        said = "3 finished runs · by validation loss ▲ · more columns →"
        legend = "min: train minutes · lb min: logbook minutes"
        lines = f"{said}\n{legend}"
        assert await eventually(pilot, lambda: str(status.render()) == lines)
        assert await eventually(pilot, lambda: status.size.height == 2)
        await pilot.resize_terminal(120, 36)  # room again: the logbook's 21 stars
        await settle(pilot)
        assert str(table.get_cell_at((2, len(table.columns) - 1))) == "*" * 21
        assert str(status.render()).endswith(" · sorted by validation loss ascending")


def test_meters_keep_their_order_when_scaled() -> None:
    from resconv_tui.screens.results import fit_meters

    meters = ["*" * n for n in (1, 2, 11, 20, 21)] + [""]
    assert fit_meters(meters, 21) == meters  # room for them: as they are
    scaled = fit_meters(meters, 11)
    assert [len(m) for m in scaled] == [1, 1, 6, 10, 11, 0]
    # Less room than a few stars (many columns): 5 at most, still in order where cut.
    assert [len(m) for m in fit_meters(meters, 2)] == [1, 1, 3, 4, 5, 0]
    assert fit_meters(meters, -40) == fit_meters(meters, 2)
    assert fit_meters(["*", "**"], 0) == ["*", "**"]  # never scaled up (review)
    assert fit_meters(["*"], 0) == ["*"] and fit_meters([], 3) == []


async def test_home_and_end_go_to_the_first_and_last_row(seeded, app_factory, settle) -> None:
    app = app_factory()
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_results(pilot, settle)
        table = screen.query_one("DataTable")
        await pilot.press("end")
        assert table.cursor_row == 2
        await pilot.press("home")
        assert table.cursor_row == 0


async def test_s_cycles_sort_and_S_flips(seeded, app_factory, settle) -> None:
    app = app_factory()
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_results(pilot, settle)
        await pilot.press("s")
        assert screen.sort_column == v.TARGET
        await pilot.press("S")
        assert screen.descending and ids(screen) == [1, 2, 3]
        await pilot.press("s", "s", "s")
        assert screen.sort_column == v.MINUTES
        assert ids(screen) == [3, 2, 1]  # longest train time first


async def test_clicking_a_header_sorts(seeded, app_factory, settle) -> None:
    app = app_factory()
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_results(pilot, settle)
        table = screen.query_one("DataTable")
        x = sum(c.get_render_width(table) for c in list(table.columns.values())[:1]) + 1
        assert await pilot.click(table, offset=(x, 0))  # the "l" column
        await settle(pilot)
        assert screen.sort_column == "l" and ids(screen) == [1, 2, 3]
        assert await pilot.click(table, offset=(x, 0))
        assert screen.descending and ids(screen) == [3, 2, 1]


async def test_v_chooses_columns(seeded, app_factory, settle) -> None:
    app = app_factory()
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_results(pilot, settle)
        await pilot.press("v")
        assert isinstance(app.screen, ColumnsScreen)
        await pilot.press("space", "enter")  # untick "run"
        assert app.screen is screen
        assert "run" not in screen.view.columns and v.LOSS in screen.view.columns
        await pilot.press("v")
        # Each prompt says whether its column shows (the tick differs in colour alone).
        options = app.screen.query_one(SelectionList)
        assert str(options.get_option_at_index(0).prompt) == "run  (hidden)"
        assert str(options.get_option_at_index(1).prompt) == screen.view.columns[0]
        await pilot.press("space")  # "run" ticked again
        assert str(options.get_option_at_index(0).prompt) == "run"
        await pilot.press("escape")
        assert "run" not in screen.view.columns


async def test_f_and_F_filter_by_experiment(seeded, app_factory, settle) -> None:
    app = app_factory()
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_results(pilot, settle)
        await pilot.press("f")
        assert screen.experiment == "t1-layers-32" and len(screen.view.rows) == 3
        await pilot.press("f")
        assert screen.experiment is None
        # F, the runs screen's key for it, does the same here.
        await pilot.press("F")
        assert screen.experiment == "t1-layers-32" and len(screen.view.rows) == 3


async def test_a_sort_column_another_experiment_lacks_comes_back_with_it(
    seeded, app_factory, settle, db_url
) -> None:
    # Sorted by Δ target, f to an experiment without targets: the screen fell back to
    # validation loss and forgot Δ target, also once its experiment was shown again.
    from core.queue import FinalFigures, NewRun, Repo
    from core.sweep import expand_sweep_text

    repo = Repo.open(db_url)
    (plain,) = expand_sweep_text("name: plain\nlayers: 2\nmax_inputs: 256\n")
    repo.enqueue([NewRun.from_expanded(plain)], priority=100)  # claimed first
    worker = repo.register_worker("box", 7, "cpu")
    claimed = repo.claim(worker)
    assert claimed is not None and claimed.experiment == "plain"
    repo.finish(claimed.id, worker, FinalFigures(validation_loss=0.2, inputs_done=256))
    app = app_factory()
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_results(pilot, settle)
        screen.sort_column = v.DIFF
        await pilot.press("f")
        assert screen.experiment == "t1-layers-32" and screen.sorted_by == v.DIFF
        await pilot.press("f")
        assert screen.experiment == "plain" and v.DIFF not in screen.view.columns
        status = str(screen.query_one("#results-status").render())
        assert "sorted by validation loss ascending (Δ target is not in this view)" in status
        await pilot.press("f", "f")
        assert screen.experiment == "t1-layers-32" and screen.sorted_by == v.DIFF


async def test_hiding_the_sort_column_sorts_by_loss_until_it_is_shown(
    seeded, app_factory, settle
) -> None:
    # Sorted by Δ target, then Δ target hidden: the rows stayed in its order while no
    # header had an arrow and the status line still said "sorted by Δ target".
    app = app_factory()
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_results(pilot, settle)
        screen.sort_column = v.DIFF
        assert ids(screen) == [1, 3, 2]  # -0.003834, -0.003142, +0.005395
        await pilot.press("v", "down", "down", "down", "down", "space", "enter")
        assert v.DIFF in screen.hidden and v.DIFF not in screen.view.columns
        assert screen.sort_column == v.DIFF and screen.sorted_by == v.LOSS
        assert ids(screen) == [3, 2, 1]  # as the arrow says: validation loss ascending
        table = screen.query_one("DataTable")
        arrows = [str(c.label) for c in table.columns.values() if "▲" in str(c.label)]
        assert arrows == ["val loss ▲"]
        status = str(screen.query_one("#results-status").render())
        assert "sorted by validation loss ascending (Δ target is hidden)" in status
        await pilot.press("v", "down", "down", "down", "down", "space", "enter")  # shown again
        assert screen.sorted_by == v.DIFF and ids(screen) == [1, 3, 2]
        assert str(table.columns[v.DIFF].label) == "Δ target ▲"
        assert "(Δ target" not in str(screen.query_one("#results-status").render())


async def test_e_exports_markdown_and_E_csv(seeded, app_factory, settle, tmp_path) -> None:
    app = app_factory()
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_results(pilot, settle)
        await pilot.press("S", "e", "E")
        markdown = next(Path(tmp_path).glob("results-all-*.md")).read_text()
        csv = next(Path(tmp_path).glob("results-all-*.csv")).read_text()
    lines = markdown.splitlines()
    assert lines[0].startswith("| run | l | validation loss |   target |  Δ target |")
    assert [line.split("|")[1].strip() for line in lines[2:]] == ["1", "2", "3"]
    assert "0.164834" in lines[2] and "*********************" in lines[2]
    assert (
        csv.splitlines()[0] == "run,l,validation loss,target,Δ target,model params,"
        "train time (minutes),logbook minutes"
    )
    assert csv.splitlines()[1].startswith("1,1,0.161,0.164834,")
    assert screen.view.rows[0][0] == 1


async def test_E_with_only_the_meter_shown_says_why_and_writes_nothing(
    seeded, app_factory, settle, tmp_path
) -> None:
    # CSV leaves the meter out, as JSON does: with it alone shown, E has nothing to write.
    app = app_factory()
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_results(pilot, settle)
        screen.hidden = set(screen.full_table().columns) - {v.METER}
        screen._redraw()
        assert screen.view.columns == (v.METER,)
        await pilot.press("E")
        await settle(pilot)
        said = [n.message for n in app._notifications]
        assert any("CSV leaves the meter out" in message for message in said), said
        assert not list(Path(tmp_path).glob("results-*.csv"))
        await pilot.press("e")  # markdown draws it
        assert len(list(Path(tmp_path).glob("results-*.md"))) == 1


def exported(app: Any) -> list[str]:
    """The notices, each on one line: an export's path is on lines of its own."""
    return [n.message.replace(" to\n", " to ", 1).replace("\n", "") for n in app._notifications]


async def test_two_exports_in_one_second_keep_both_files(
    seeded, app_factory, settle, tmp_path
) -> None:
    # e, S, e within a second: the second file replaced the first under the same name.
    app = app_factory()  # its clock stands still: every export is in the same second
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_results(pilot, settle)
        first = screen.action_export("markdown")
        await pilot.press("S")
        second = screen.action_export("markdown")
    assert first is not None and second is not None and first != second
    assert second.name == first.name.replace(".md", "-2.md")
    assert f"exported 3 rows to {first}" in exported(app)
    firsts = [line.split("|")[1].strip() for line in first.read_text().splitlines()[2:]]
    seconds = [line.split("|")[1].strip() for line in second.read_text().splitlines()[2:]]
    assert firsts == seconds[::-1]


@pytest.mark.parametrize("size", [(120, 36), (100, 36), (80, 30)])
@pytest.mark.parametrize("inside", [False, True], ids=["elsewhere", "current folder"])
async def test_the_export_notice_breaks_its_path_only_after_a_slash(
    seeded, app_factory, settle, tmp_path, monkeypatch, size: tuple[int, int], inside: bool
) -> None:
    # The notice wrapped the path as one long word: ".../results-all-20231114-2223" on
    # one line, "20.md" on the next, or the name cut before its ".md".
    from textual.geometry import Region

    if inside:  # the export folder is the current one (as it is unless set)
        monkeypatch.chdir(tmp_path)
    app = app_factory()
    async with app.run_test(size=size, notifications=True) as pilot:
        screen = await open_results(pilot, settle)
        path = screen.action_export("markdown")
        # The notice, shown and laid out (its size is read below), not one pause later.
        assert "exported 3 rows to" in await drawn(pilot, "exported 3 rows to")
        (toast,) = app.screen.query("Toast")
        seen = [s.text.strip(" ▌") for s in toast.render_lines(Region(0, 0, toast.size.width, 9))]
    assert path is not None
    lines = [line for line in seen if line][1:]  # after "exported 3 rows to"
    shown = path.name if inside else str(path)
    assert "".join(lines) == shown and all(line.endswith("/") for line in lines[:-1]), seen


async def test_an_export_into_a_folder_removed_since_says_the_folder_is_gone(
    seeded, db_url, launcher, settle, tmp_path
) -> None:
    # The dashboard opened in a folder removed since: e said "results-all-....md: No such
    # file or directory", as if the new file were missing, where w says the folder is gone.
    from conftest import LOCAL_HOST, NOW

    from resconv_tui.app import make_app

    gone = tmp_path / "gone"
    gone.mkdir()
    app = make_app(db_url, clock=lambda: NOW, launcher=launcher, poll_interval_s=3600,
                   export_dir=gone, hostname=LOCAL_HOST)  # fmt: skip
    gone.rmdir()
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_results(pilot, settle)
        assert screen.action_export("markdown") is None
    said = [n.message for n in app._notifications]
    assert any(
        f"the folder {gone} is gone (removed after the dashboard opened)" in m for m in said
    ), said
    assert not gone.exists()


async def test_an_export_of_one_row_says_one_row(db_url, app_factory, settle) -> None:
    from core.queue import FinalFigures, NewRun, Repo
    from core.sweep import expand_sweep_text

    repo = Repo.open(db_url)
    repo.enqueue([NewRun.from_expanded(r) for r in expand_sweep_text("name: one\nlayers: 2\n")])
    worker = repo.register_worker("h", 1, "cpu")
    run = repo.claim(worker)
    assert run is not None
    repo.finish(run.id, worker, FinalFigures(validation_loss=0.05, train_seconds=60.0))
    app = app_factory()
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_results(pilot, settle)
        path = screen.action_export("csv")
    assert f"exported 1 row to {path}" in exported(app)  # "1 rows"


async def test_g_groups_seeds_into_cells(db_url, app_factory, settle) -> None:
    from core.queue import FinalFigures, NewRun, Repo
    from core.sweep import expand_sweep_text

    repo = Repo.open(db_url)
    sweep = expand_sweep_text("name: seeds\nlayers: 2\nmatrix:\n  ch: [4, 8]\nseeds: 2\n")
    repo.enqueue([NewRun.from_expanded(r) for r in sweep])
    worker = repo.register_worker("h", 1, "cpu")
    for loss in (0.05, 0.07, 0.02):  # ch 4 seeds 0 and 1, ch 8 seed 0; ch 8 seed 1 still queued
        run = repo.claim(worker)
        assert run is not None
        repo.finish(run.id, worker, FinalFigures(validation_loss=loss, train_seconds=60.0))
    app = app_factory()
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_results(pilot, settle)
        assert ids(screen) == [3, 1, 2]  # one row per run, best first
        await pilot.press("g")
        assert screen.by_cell
        assert screen.view.columns[:4] == ("ch", "seeds", v.LOSS, "± std")
        assert screen.view.column("seeds") == ["1/2", "2/2"]
        assert screen.view.column(v.LOSS)[1] == pytest.approx(0.06)
        assert screen.query_one("DataTable").row_count == 2
        assert "2 cells (mean over seeds)" in str(screen.query_one("#results-status").render())
        # Narrow, columns past the right edge are said: cut numbers read as the values.
        await pilot.resize_terminal(36, 24)
        await settle(pilot)
        assert screen.query_one("DataTable").max_scroll_x > 0
        status = str(screen.query_one("#results-status").render())
        assert status == "2 cells · by validation loss ▲ · more columns →\nmin: train minutes"
        # Scrolled to the right edge, the hidden columns are on the left: "→" said more
        # lay right, where the user had scrolled as far as the table goes.
        table = screen.query_one("DataTable")
        table.scroll_to(x=table.max_scroll_x, animate=False)
        await settle(pilot)
        status = str(screen.query_one("#results-status").render())
        assert status == "2 cells · by validation loss ▲ · ← more columns\nmin: train minutes"
        table.scroll_to(x=1, animate=False)
        await settle(pilot)
        assert "← more columns →\n" in str(screen.query_one("#results-status").render())
        await pilot.resize_terminal(*SIZE)
        await settle(pilot)
        assert "more columns" not in str(screen.query_one("#results-status").render())
        await pilot.press("down", "enter")  # the ch 4 cell: its two seeds' curves side by side
        assert isinstance(app.screen, CompareScreen) and app.screen.run_ids == [1, 2]
        await pilot.press("escape", "g")
        assert ids(screen) == [3, 1, 2]
        table = screen.query_one("DataTable")
        assert ids(screen)[table.cursor_row] == 1  # the cursor kept on the cell's first run
        await pilot.press("v", "space", "enter")  # hide the run column: enter still knows
        assert v.RUN not in screen.view.columns
        await pilot.press("enter")
        assert isinstance(app.screen, RunDetailScreen) and app.screen.run_id == 1


async def test_a_training_runs_progress_does_not_redraw_the_table(
    seeded, app_factory, settle, db_url
) -> None:
    from core.queue import Repo

    app = app_factory()
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_results(pilot, settle)
        table = screen.query_one("DataTable")
        await pilot.press("down")
        assert table.cursor_row == 1
        repo = Repo.open(db_url)
        running = repo.get_run(seeded["running"])
        repo.heartbeat(running.worker_id, run_id=running.id, inputs_done=96000)
        repo.close()
        screen.refresh_now()
        await settle(pilot)
        assert table.cursor_row == 1  # the person's place in the table is kept


def finish_runs(db_url: str, sweep_text: str, losses: list[float]) -> None:
    """Queue ``sweep_text`` and finish its first runs with ``losses`` (60 s each)."""
    from core.queue import FinalFigures, NewRun, Repo
    from core.sweep import expand_sweep_text

    repo = Repo.open(db_url)
    repo.enqueue([NewRun.from_expanded(r) for r in expand_sweep_text(sweep_text)])
    worker = repo.register_worker("h", 1, "cuda:0")  # a peak is measured on a GPU only
    for loss in losses:
        run = repo.claim(worker)
        assert run is not None
        figures = FinalFigures(
            validation_loss=loss, train_seconds=60.0, inputs_per_s=3000.0,
            peak_memory_bytes=300 * 2**20,
        )  # fmt: skip
        repo.finish(run.id, worker, figures)
    repo.close()


async def test_v_before_any_run_finished_keeps_rate_and_memory_hidden(
    db_url, app_factory, settle
) -> None:
    """v on the empty table (no rate or memory column) used to forget they were hidden:
    once runs finished, both showed and the chooser had them ticked."""
    app = app_factory()
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_results(pilot, settle)
        await pilot.press("v", "enter")
        finish_runs(db_url, "name: two\nlayers: 2\nmatrix:\n  ch: [4, 8]\n", [0.05, 0.07])
        screen.refresh_now()
        await settle(pilot)
        assert len(screen.view.rows) == 2
        assert v.RATE not in screen.view.columns and v.MEMORY not in screen.view.columns
        await pilot.press("v")
        chooser = app.screen
        assert isinstance(chooser, ColumnsScreen)
        ticked = chooser.query_one(SelectionList).selected
        assert v.LOSS in ticked and v.RATE not in ticked and v.MEMORY not in ticked


async def test_v_unticked_box_is_empty_and_ticked_x_shows(seeded, app_factory, settle) -> None:
    """An unticked X was drawn black on navy in a 256-colour terminal, like a ticked one."""
    app = app_factory()
    async with app.run_test(size=SIZE) as pilot:
        await open_results(pilot, settle)
        await pilot.press("v")
        chooser = app.screen.query_one(SelectionList)
        for name in ("", "-highlighted"):
            unticked = chooser.get_component_rich_style("selection-list--button" + name)
            assert unticked.color == unticked.bgcolor  # no X to see
            ticked = chooser.get_component_rich_style("selection-list--button-selected" + name)
            assert ticked.color != ticked.bgcolor and ticked.bold


async def test_leaving_and_coming_back_keeps_the_view(seeded, app_factory, settle) -> None:
    """escape then R used to open the default view: sort, columns, filter and seeds lost."""
    app = app_factory()
    async with app.run_test(size=SIZE) as pilot:
        first = await open_results(pilot, settle)
        await pilot.press("s", "S", "f", "v", "space", "enter", "g")  # "space" unticks run
        chosen = (first.sort_column, first.descending, first.experiment, first.by_cell)
        assert chosen == (v.TARGET, True, "t1-layers-32", True)
        assert first.hidden == {v.RUN, v.RATE, v.MEMORY}
        await pilot.press("escape")
        second = await open_results(pilot, settle)
        assert second is not first
        assert (second.sort_column, second.descending) == (v.TARGET, True)
        assert (second.experiment, second.by_cell) == ("t1-layers-32", True)
        assert second.hidden == {v.RUN, v.RATE, v.MEMORY}
        assert second.view.columns == first.view.columns
        assert second.view.column("l") == [1, 2, 3]  # target descending
        table = second.query_one("DataTable")
        assert str(table.columns[v.TARGET].label) == "target ▼"


async def test_export_with_no_rows_writes_nothing(db_url, app_factory, settle, tmp_path) -> None:
    """e and E used to write a file with no rows."""
    app = app_factory()
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_results(pilot, settle)
        assert screen.view.rows == ()
        await pilot.press("e", "E")
        notes = [n.message for n in app._notifications]
    assert list(Path(tmp_path).glob("results-*")) == []
    assert notes[-2:] == ["nothing to export", "nothing to export"]


SEEDED_TARGETS = """
name: t1-seeds
image_size: 32
model: v1
matrix:
  l: [1, 2, 3]
seeds: 3
targets:
- {l: 1, validation_loss: 0.164834, params: 186787, minutes: 0.36}
- {l: 2, validation_loss: 0.124805, params: 19299, minutes: 0.52}
- {l: 3, validation_loss: 0.102242, params: 37923, minutes: 0.78}
"""


async def test_grouped_view_with_targets_fits_120_columns(db_url, app_factory, settle) -> None:
    """g with targets (a published parameter count that differs too) and a std of 11
    characters took 124 cells: at 120 the meter's longest bars were cut off."""
    losses = [0.161, 0.16115, 0.16087, 0.1302, 0.13041, 0.13005, 0.0991, 0.09925, 0.0989]
    finish_runs(db_url, SEEDED_TARGETS, losses)
    app = app_factory()
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_results(pilot, settle)
        await pilot.press("g")
        assert screen.view.columns == (
            "l", v.SEEDS, v.LOSS, v.STD, v.TARGET, v.DIFF, v.PARAMS, v.TARGET_PARAMS, v.MINUTES,
            v.LOGBOOK_MINUTES, v.METER,
        )  # fmt: skip
        assert screen.view.column(v.STD)[0] == pytest.approx(0.000175594, rel=1e-4)
        assert screen.view.column(v.METER)[-1] == "*" * 21
        table = screen.query_one("DataTable")
        assert table.max_scroll_x == 0
        labels = [str(c.label) for c in table.columns.values()]
        assert labels[3] == "± std" and labels[-1] == "meter"
        assert str(table.get_row_at(0)[3]) == "0.00018"  # on screen; exports keep the digits
        assert "0.000175594" in v.to_markdown(screen.view)


def test_loss_columns_line_up_their_decimals() -> None:
    # 6 significant digits gave 0.0991 over 0.161 over 0.0512259.
    assert screen_column(v.LOSS, [0.0991, 0.161, 0.0512259, None]) == [
        "0.099100", "0.161000", "0.051226", "–",
    ]  # fmt: skip
    # A loss so small that 6 decimals would keep fewer than 4 significant digits gets more.
    assert screen_column(v.TARGET, [0.000123456, 0.2]) == ["0.0001235", "0.2000000"]
    assert screen_column(v.LOSS, [0.0, 0.05]) == ["0.000000", "0.050000"]
    assert screen_column(v.STD, [0.000175594, None]) == ["0.00018", "–"]
    assert screen_column(v.STD, [0.0198928, 0.033]) == ["0.020", "0.033"]  # was "0.02"
    assert screen_column(v.PARAMS, [186915]) == ["186,915"]


async def test_grouped_view_with_targets_fits_80_columns(db_url, app_factory, settle) -> None:
    """Over SSH at 80x24 the grouped view with targets took 101 cells: the logbook
    minutes were cut to "log" at the edge and the meter was out of sight. Short headers
    and one cell between columns fit it, the line under the table saying what they mean;
    at 120 columns it is as before."""
    losses = [0.161, 0.16115, 0.16087, 0.1302, 0.13041, 0.13005, 0.0991, 0.09925, 0.0989]
    finish_runs(db_url, SEEDED_TARGETS, losses)
    app = app_factory()
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await open_results(pilot, settle)
        await pilot.press("g")
        table = screen.query_one("DataTable")
        header = "l seeds loss ▲   ± std   target   Δ target  params tgt par min  lb min meter"
        shown = await drawn(pilot, header)
        assert header in shown
        # The last column's value whole: the worst loss's bar, the longest the room leaves.
        last_row = " 1 3/3   0.161007 0.00014 0.164834 -0.003827    675 186,787 1.00   0.36 ******"
        assert last_row in shown.splitlines()
        assert "tgt par: target params · min: train minutes · lb min: logbook minutes" in shown
        assert table.max_scroll_x == 0
        await pilot.resize_terminal(120, 36)  # room: the long headers, 21 stars, no legend
        shown = await drawn(pilot, "  minutes  logbook min  meter")
        assert "  minutes  logbook min  meter" in shown and "*" * 21 in shown
        assert "lb min:" not in shown


async def show_memory(pilot: Any, settle: Any) -> None:
    """v, the cursor down to peak memory (hidden by default), space to tick it, enter."""
    await pilot.press("v")
    chooser = pilot.app.screen.query_one(SelectionList)
    at = [chooser.get_option_at_index(i).value for i in range(chooser.option_count)]
    await pilot.press(*["down"] * at.index(v.MEMORY), "space", "enter")
    await settle(pilot)


async def test_at_80x24_the_legend_of_targets_and_peak_memory_keeps_to_its_line(
    db_url, app_factory, settle
) -> None:
    """At 80 columns with the targets and peak memory shown, the legend under the short
    headers was 88 cells: it wrapped to a third line ("peak memory" alone), which the
    table's rows paid for. The two minutes columns now share one entry where the whole
    wording does not fit; the screen's every line is whole."""
    losses = [0.161, 0.16115, 0.16087, 0.1302, 0.13041, 0.13005, 0.0991, 0.09925, 0.0989]
    finish_runs(db_url, SEEDED_TARGETS, losses)
    app = app_factory()
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await open_results(pilot, settle)
        await show_memory(pilot, settle)
        legend = "tgt par: target params · min: train minutes, lb: logbook's · MiB: peak memory"
        ungrouped = "9 finished runs · all experiments · sorted by validation loss ascending"
        for said in (
            ungrouped,
            "3 cells · all experiments · by validation loss ▲ · more columns →",
        ):
            shown = (await drawn(pilot, legend)).splitlines()
            assert " " + said in shown, shown
            # The status's two lines, whole, with the workers panel right under them.
            at = shown.index(" " + said)
            assert shown[at + 1] == " " + legend and shown[at + 2].startswith("─workers")
            assert screen.query_one("#results-status").size.height == 2
            assert " MiB " in shown[1]  # the header it explains
            await pilot.press("g")  # by cell: the seeds and ± columns too (it scrolls)
            await settle(pilot)


def test_the_legend_is_whole_where_it_fits_and_pairs_the_minutes_where_not() -> None:
    from resconv_tui.screens.results import legend_line

    columns = [v.LOSS, v.TARGET_PARAMS, v.MINUTES, v.LOGBOOK_MINUTES, v.MEMORY]
    whole = ("tgt par: target params · min: train minutes · lb min: logbook minutes"
             " · MiB: peak memory")  # fmt: skip
    assert legend_line(columns, 120) == whole and legend_line(columns, 0) == whole
    paired = "tgt par: target params · min: train minutes, lb: logbook's · MiB: peak memory"
    assert legend_line(columns, 78) == paired  # 80 columns, less the status's padding
    # Only one of the minutes columns shown: nothing to pair, and it stays whole.
    assert legend_line([v.MINUTES, v.TARGET_PARAMS, v.MEMORY], 40) == (
        "min: train minutes · tgt par: target params · MiB: peak memory"
    )


async def test_the_cursor_stays_on_its_run_when_a_run_ends_and_when_the_sort_flips(
    seeded, app_factory, settle, db_url
) -> None:
    # Each poll that found a run ended refilled the table with the cursor on the first
    # row: a person reading run 1's row lost their place whenever another run finished.
    from core.queue import FinalFigures, Repo

    app = app_factory()
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_results(pilot, settle)
        table = screen.query_one("DataTable")
        await pilot.press("down", "down")
        assert ids(screen)[table.cursor_row] == 1  # by loss: 3, 2, 1
        repo = Repo.open(db_url)
        running = repo.get_run(seeded["running"])
        assert repo.finish(running.id, running.worker_id, FinalFigures(validation_loss=0.01))
        repo.close()
        screen.refresh_now()
        assert await eventually(pilot, lambda: len(ids(screen)) == 4)
        assert ids(screen) == [running.id, 3, 2, 1]  # the new run sorts first
        assert ids(screen)[table.cursor_row] == 1
        await pilot.press("S")
        assert ids(screen) == [1, 2, 3, running.id]
        assert ids(screen)[table.cursor_row] == 1
