"""The new-sweep form driven by keys: preview, invalid fields, queue, save, load."""

from __future__ import annotations

import contextlib
import os
import re
import sqlite3
from collections.abc import AsyncIterator, Iterable
from pathlib import Path
from time import monotonic
from typing import Any

import pytest
import yaml
from screen_host import (
    ScreenHost,
    assert_folds_at_separators,
    drawn,
    drawn_among,
    drawn_in,
    eventually,
    region_lines,
)
from sqlite_locks import drop_newer_columns, write_lock_held
from textual import events
from textual.geometry import Region
from textual.pilot import Pilot
from textual.screen import Screen
from textual.widgets import Button, Input, Static
from textual.worker import WorkerCancelled

from core.config import RunConfig
from core.errors import SweepError
from core.params import count_params
from core.queue import FinalFigures, NewRun, Repo, RunRow
from core.sweep import expand_sweep_file
from resconv_tui.screens.confirm import ConfirmScreen
from resconv_tui.screens.new_sweep import NewSweepScreen
from resconv_tui.widgets.param_field import ParamField
from resconv_tui.widgets.path_prompt import PathPrompt
from resconv_tui.widgets.sweep_preview import SweepPreview

SIZE = (120, 36)


@pytest.fixture(autouse=True)
def no_debounce(monkeypatch: pytest.MonkeyPatch) -> None:
    # The debounce is for people typing; tests wait for the preview worker instead.
    monkeypatch.setattr(NewSweepScreen, "DEBOUNCE_S", 0.0)


async def settle(pilot: Pilot[Any]) -> None:
    """Let the (undebounced) preview worker run and its result be drawn.

    Under load the field's Changed message can still be queued after one pause, with
    no worker yet to wait for: wait until the shown preview is the one the fields make.
    """
    for _ in range(100):
        await pilot.pause()
        # A preview worker replaced by a newer one (exclusive: a field changed again, the
        # debounce timer fired) ends cancelled by design: the loop waits for the newer.
        with contextlib.suppress(WorkerCancelled):
            await pilot.app.workers.wait_for_complete()
        if not isinstance(pilot.app.screen, NewSweepScreen) or _current(pilot.app.screen):
            break
    await pilot.pause()


def _current(screen: NewSweepScreen) -> bool:
    shown, now = screen.preview, screen.compute_preview()
    return shown.runs == now.runs and dict(shown.errors) == dict(now.errors)


async def type_into(pilot: Pilot[Any], key: str, text: str) -> None:
    """Set a field as typing would (Input.Changed fires); test_tab_order types real keys."""
    form(pilot).field(key).value = text
    await settle(pilot)


async def save_as(pilot: Pilot[Any], path: Path) -> None:
    """F2, the path typed into the prompt, enter."""
    await answer_path_prompt(pilot, "f2", path)


async def load_file(pilot: Pilot[Any], path: Path) -> None:
    """F3, the path typed into the prompt, enter (as save_as does for F2)."""
    await answer_path_prompt(pilot, "f3", path)


async def answer_path_prompt(pilot: Pilot[Any], key: str, path: Path) -> None:
    """``key``, ``path`` typed into the prompt it opens, enter; back once the prompt is
    gone and the form settled. ``settle`` alone stops at once while the prompt is the
    screen: on a loaded machine F3's notice was not posted yet when a test read them."""
    await pilot.press(key)
    assert await eventually(pilot, lambda: isinstance(pilot.app.screen, PathPrompt))
    pilot.app.screen.query_one("#path-input", Input).value = str(path)
    await pilot.press("enter")
    assert await eventually(pilot, lambda: not isinstance(pilot.app.screen, PathPrompt))
    await settle(pilot)


def form(pilot: Pilot[Any]) -> NewSweepScreen:
    assert isinstance(pilot.app.screen, NewSweepScreen)
    return pilot.app.screen


def named(runs: Iterable[Any], target: bool = False) -> list[tuple[Any, ...]]:
    """Each run's name and config hash, and its target where asked: a queued row, a
    preview's run and a file's run alike."""
    return [(run.name, run.config_hash, *((run.target,) if target else ())) for run in runs]


async def test_tab_order_and_preview_count(db_url: str) -> None:
    app = ScreenHost(NewSweepScreen(db_url))
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        assert app.focused is not None and app.focused.id == "input-name"
        await pilot.press(*"demo", "enter", *"1..3", "tab", "tab", "tab", "tab", *"gelu,relu")
        await settle(pilot)
        screen = form(pilot)
        assert screen.field("activation").input.has_focus
        runs = screen.preview.runs
        assert screen.preview.ok and len(runs) == 6
        assert [r.param_count for r in runs] == [count_params(r.config) for r in runs]
        shown = await drawn(pilot, "l-3_act-relu")
        assert "l-3_act-relu" in shown and f"{runs[-1].param_count:,}" in shown


async def test_invalid_value_is_marked_and_blocks_queueing(db_url: str) -> None:
    app = ScreenHost(NewSweepScreen(db_url))
    async with app.run_test(size=SIZE) as pilot:
        await type_into(pilot, "kernel_size", "3,4")
        field = form(pilot).field("kernel_size")
        assert field.has_class("-invalid")
        reason = str(field.query_one(".field-reason", Static).content)
        assert "kernel_size: padding 'same' needs odd kernel sizes (got 4)" in reason
        assert form(pilot).query_one(SweepPreview).has_class("-invalid")
        await type_into(pilot, "layers", "0..2:0")
        assert "step must be >= 1" in form(pilot).field("layers").error
        await pilot.press("ctrl+s")
        await settle(pilot)
        assert app.result == "not dismissed"
        assert Repo.open(db_url).list_runs() == []


async def test_queue_writes_rows_with_priority(db_url: str) -> None:
    app = ScreenHost(NewSweepScreen(db_url))
    async with app.run_test(size=SIZE) as pilot:
        await type_into(pilot, "name", "e2e")
        await type_into(pilot, "layers", "1,2,3")
        await type_into(pilot, "max_inputs", "256")
        await type_into(pilot, "priority", "5")
        await pilot.press("ctrl+s")
        await settle(pilot)
    assert app.result == 3
    rows = Repo.open(db_url).list_runs()
    assert [(r.experiment, r.name, r.priority) for r in rows] == [
        ("e2e", "l-1", 5),
        ("e2e", "l-2", 5),
        ("e2e", "l-3", 5),
    ]
    assert [r.config for r in rows] == [RunConfig(layers=n, max_inputs=256) for n in (1, 2, 3)]


async def test_queueing_into_an_experiment_of_other_settings_says_so(db_url: str) -> None:
    repo = Repo.open(db_url)
    repo.enqueue([NewRun.from_config(RunConfig(layers=3, max_inputs=256), experiment="e2e",
                                     name="l-3", param_count=1)])  # fmt: skip
    repo.close()
    app = ScreenHost(NewSweepScreen(db_url))
    async with app.run_test(size=SIZE) as pilot:
        await type_into(pilot, "name", "e2e")
        await type_into(pilot, "layers", "2")
        await type_into(pilot, "activation", "gelu,relu")
        await type_into(pilot, "max_inputs", "256")
        await pilot.press("ctrl+s")
        await settle(pilot)
        messages = [n.message for n in app._notifications]
    assert app.result == 2
    assert (
        "experiment 'e2e' already holds 1 run of other settings (layers 3 there, 2 here): its "
        "results mix the two sweeps; another name for this one keeps them apart"
    ) in messages, messages


@pytest.mark.parametrize(
    ("priority", "said"),
    [("x", "x is not"), ("1e3", "'1e3' is not"), ("yes", "'yes' is not")],
)  # fmt: skip
async def test_a_bad_priority_is_written_as_typed_not_in_pythons_quotes(
    db_url: str, priority: str, said: str
) -> None:
    # "'x' is not a whole number": Python's quotes, beside the fields' "x is not an integer".
    app = ScreenHost(NewSweepScreen(db_url))
    async with app.run_test(size=SIZE) as pilot:
        await type_into(pilot, "priority", priority)
        error = form(pilot).field("priority").error
        assert error.startswith(f"{said} a whole number from -1,000,000 to 1,000,000"), error


def test_a_target_cell_is_written_as_the_file_writes_it() -> None:
    # f2's question named "l=1 bnp-e=False": a capital the file does not hold.
    from resconv_tui.screens.new_sweep import _target_cell

    entry = {"l": 1, "bnp-e": False, "ch": [4, 8], "validation_loss": 0.1}
    assert _target_cell(entry) == "l=1 bnp-e=false ch=[4, 8]"


@pytest.mark.parametrize("priority", ["99999999999", "-1000001", "\u00b2", "x"])
async def test_a_priority_the_command_line_refuses_is_marked_not_queued(
    db_url: str, priority: str
) -> None:
    # The form took any digits: 99999999999 was queued on SQLite (`queue --priority` and
    # `priority N` refuse it) and PostgreSQL answered "integer out of range"; "²" passed
    # isdigit() and int() raised on ctrl+s.
    app = ScreenHost(NewSweepScreen(db_url))
    async with app.run_test(size=SIZE) as pilot:
        await type_into(pilot, "max_inputs", "256")
        await type_into(pilot, "priority", priority)
        error = form(pilot).field("priority").error
        assert "whole number from -1,000,000 to 1,000,000" in error
        await pilot.press("ctrl+s")
        await settle(pilot)
        assert app.result == "not dismissed"
    assert Repo.open(db_url).list_runs() == []


async def test_queueing_again_retries_failed_cells_in_place_and_says_so(db_url: str) -> None:
    repo = Repo.open(db_url)
    queued = [NewRun.from_config(RunConfig(layers=n, max_inputs=256), experiment="e2e",
                                 name=f"l-{n}", param_count=1) for n in (1, 2)]  # fmt: skip
    failed, done = repo.enqueue(queued).added_ids
    worker = repo.register_worker("h", 1, "cpu")
    repo.claim(worker)
    repo.fail(failed, worker, "loss became NaN at step 3")
    repo.claim(worker)
    repo.finish(done, worker, FinalFigures(validation_loss=0.1))
    app = ScreenHost(NewSweepScreen(db_url))
    async with app.run_test(size=SIZE) as pilot:
        await type_into(pilot, "name", "e2e")
        await type_into(pilot, "layers", "1,2,3")
        await type_into(pilot, "max_inputs", "256")
        await pilot.press("ctrl+s")
        await settle(pilot)
        messages = [n.message for n in app._notifications]
    assert app.result == 2  # l-3 added, l-1 queued again, l-2 succeeded: skipped
    assert "queued 2 runs, 1 failed or cancelled before (1 already queued or done: skipped)" in (
        messages
    )
    assert any(m.startswith("run 1 had diverged (loss NaN/inf)") for m in messages), messages
    rows = repo.list_runs()
    assert [(r.id, r.name, r.status.value) for r in rows] == [
        (failed, "l-1", "queued"), (done, "l-2", "succeeded"), (3, "l-3", "queued"),
    ]  # fmt: skip
    repo.close()


async def test_escape_cancels_and_palette_lists_actions(db_url: str) -> None:
    app = ScreenHost(NewSweepScreen(db_url))
    async with app.run_test(size=SIZE) as pilot:
        titles = [command.title for command in form(pilot).palette_commands()]
        assert titles == ["Queue sweep", "Save sweep file", "Load sweep file", "Cancel new sweep"]
        await pilot.press("escape")
        await settle(pilot)
    assert app.result is None


async def test_escape_asks_before_dropping_edits(db_url: str) -> None:
    from resconv_tui.screens.confirm import ConfirmScreen

    app = ScreenHost(NewSweepScreen(db_url))
    async with app.run_test(size=SIZE) as pilot:
        await type_into(pilot, "layers", "1,2,3")
        await pilot.press("escape")
        await settle(pilot)
        assert isinstance(app.screen, ConfirmScreen)
        await pilot.press("n")  # stay: the edits are still there
        await settle(pilot)
        assert form(pilot).field("layers").value == "1,2,3"
        await pilot.press("escape", "y")
        await settle(pilot)
    assert app.result is None


async def test_quitting_the_dashboard_from_the_form_asks_over_unsaved_edits(
    db_url: str, app_factory: Any
) -> None:
    # `q` with a button focused (the form's Inputs take the letter) quit at once.
    app = app_factory()
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("n")
        await settle(pilot)
        form(pilot).query_one(Button).focus()
        await pilot.press("q")  # nothing changed yet: quits without asking
        await settle(pilot)
    assert app.return_code == 0 and not app.is_running

    app = app_factory()
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("n")
        await settle(pilot)
        await type_into(pilot, "layers", "1,2,3")
        form(pilot).query_one(Button).focus()
        await pilot.press("q")
        await settle(pilot)
        assert isinstance(app.screen, ConfirmScreen)
        await pilot.press("n")  # stay: the edits are still there
        await settle(pilot)
        assert form(pilot).field("layers").value == "1,2,3"
        await pilot.press("q", "y")
        await settle(pilot)
        assert not app.is_running

    # Under a dialog of the form's own (f2's path prompt), ctrl+q asks too (review).
    app = app_factory()
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("n")
        await settle(pilot)
        await type_into(pilot, "layers", "1,2,3")
        await pilot.press("f2")
        await settle(pilot)
        await pilot.press("ctrl+q")
        await settle(pilot)
        assert isinstance(app.screen, ConfirmScreen) and app.is_running
        await pilot.press("ctrl+q")  # asked twice: meant
        await settle(pilot)
        assert not app.is_running


async def test_escape_after_loading_a_file_leaves_at_once(db_url: str) -> None:
    t7 = str(Path(__file__).parents[2] / "experiments" / "t7-kernel-size.yml")
    app = ScreenHost(NewSweepScreen(db_url))
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        form(pilot).load_file(t7)  # as F3 does: nothing edited yet
        await settle(pilot)
        await pilot.press("escape")
        await settle(pilot)
    assert app.result is None  # dismissed: no "Leave the form?" in the way


async def test_save_as_where_it_cannot_look_is_said(
    db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    app = ScreenHost(NewSweepScreen(db_url))
    async with app.run_test(size=SIZE) as pilot:
        await type_into(pilot, "layers", "2,4")
        monkeypatch.setattr(Path, "is_dir", lambda self: (_ for _ in ()).throw(
            PermissionError(13, "Permission denied")))  # fmt: skip
        form(pilot).save_to(str(tmp_path / "locked" / "x.yml"))
        await settle(pilot)
        monkeypatch.undo()
        said = [n.message for n in app._notifications]
        assert f"{tmp_path / 'locked' / 'x.yml'}: Permission denied" in said
        assert isinstance(app.screen, NewSweepScreen)  # the form, and its edits, are kept


@pytest.mark.parametrize(
    ("typed", "said"),
    [("~nosuchuser-resconv/x.yml", "Could not determine home directory"),
     ("x\x00.yml", "a path cannot hold a NUL character")],
)  # fmt: skip
async def test_a_path_no_file_can_have_is_said_by_f2_and_f3(
    db_url: str, typed: str, said: str
) -> None:
    # A RuntimeError out of expanduser (a ValueError for the NUL) closed the dashboard.
    app = ScreenHost(NewSweepScreen(db_url))
    async with app.run_test(size=SIZE) as pilot:
        await save_as(pilot, Path(typed))
        await load_file(pilot, Path(typed))
        messages = [n.message for n in app._notifications]
        assert len([m for m in messages if said in m]) == 2, messages
        assert isinstance(app.screen, NewSweepScreen)


async def test_save_as_file_reads_back(db_url: str, tmp_path: Path) -> None:
    app = ScreenHost(NewSweepScreen(db_url))
    target = tmp_path / "saved.yml"
    async with app.run_test(size=SIZE) as pilot:
        await type_into(pilot, "layers", "2,4")
        await type_into(pilot, "activation", "relu,tanh")
        await save_as(pilot, target)
        expected = named(form(pilot).preview.runs)
    assert named(expand_sweep_file(target)) == expected
    assert len(expected) == 4


async def test_save_as_an_existing_file_asks_before_replacing_it(
    db_url: str, tmp_path: Path
) -> None:
    from resconv_tui.screens.confirm import ConfirmScreen

    target = tmp_path / "mine.yml"
    target.write_text("# my notes\nname: mine\nlayers: 3\n")
    app = ScreenHost(NewSweepScreen(db_url))
    async with app.run_test(size=SIZE) as pilot:
        await type_into(pilot, "layers", "2,4")
        for answer in ("n", "y"):
            await save_as(pilot, target)
            assert isinstance(app.screen, ConfirmScreen)
            await pilot.press(answer)
            await settle(pilot)
            if answer == "n":
                assert target.read_text().startswith("# my notes")
    assert len(expand_sweep_file(target)) == 2


async def test_save_as_into_folders_that_do_not_exist_asks_first(
    db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A typo (`experimnets/walk.yml`) made the folder without a word before it was made:
    # the notice said so after. Asked first now; no leaves nothing, a failed write too.
    deeper = tmp_path / "new" / "dir" / "walk.yml"
    app = ScreenHost(NewSweepScreen(db_url))
    async with app.run_test(size=SIZE) as pilot:
        await type_into(pilot, "layers", "2,4")
        await save_as(pilot, deeper)
        assert isinstance(app.screen, ConfirmScreen)
        assert app.screen.question == (
            f"{deeper.parent} does not exist. Make it and the 1 folder above it and save "
            "walk.yml there?"
        )
        await pilot.press("n")
        await settle(pilot)
        assert isinstance(app.screen, NewSweepScreen)
        assert not (tmp_path / "new").exists()
        # Made, then the write fails (a full disk): the folders it made go with it.
        monkeypatch.setattr(os, "fsync", lambda fd: (_ for _ in ()).throw(
            OSError(28, "No space left on device")))  # fmt: skip
        await save_as(pilot, deeper)
        await pilot.press("y")
        await settle(pilot)
        monkeypatch.undo()
        said = [n.message for n in app._notifications]
        assert f"{deeper}: No space left on device" in said
        assert not (tmp_path / "new").exists()
        await save_as(pilot, deeper)
        await pilot.press("y")
        await settle(pilot)
        said = [n.message for n in app._notifications]
    assert deeper.is_file() and len(expand_sweep_file(deeper)) == 2
    assert f"2 runs -> {deeper} (made the folder {deeper.parent}, and 1 above it)" in said


async def test_save_as_under_a_file_says_that_file_is_no_folder(
    db_url: str, tmp_path: Path
) -> None:
    # `notes.txt/walk.yml` failed "File exists", read as walk.yml being there, and
    # `notes.txt/new/walk.yml` asked first to make `new`, then failed "Not a directory".
    notes = tmp_path / "notes.txt"
    notes.write_text("mine\n")
    app = ScreenHost(NewSweepScreen(db_url))
    async with app.run_test(size=SIZE) as pilot:
        await type_into(pilot, "layers", "2,4")
        for target in (notes / "walk.yml", notes / "new" / "walk.yml"):
            await save_as(pilot, target)
            assert isinstance(app.screen, NewSweepScreen)
            said = [n.message for n in app._notifications]
            assert f"{target}: {notes} is a file, not a folder" in said, said
    assert notes.read_text() == "mine\n"


async def replace_then_queue(pilot: Pilot[Any], path: Path) -> str:
    """F2 over ``path``, yes to the question it asks ('Replace it?'), then ctrl+s: the
    question, which names what the form's edits leave out of the file."""
    await save_as(pilot, path)
    assert isinstance(pilot.app.screen, ConfirmScreen)
    question = pilot.app.screen.question
    await pilot.press("y")
    await settle(pilot)
    await pilot.press("ctrl+s")
    await settle(pilot)
    return question


async def test_load_file_fills_fields_and_reports_what_it_dropped(
    db_url: str, tmp_path: Path
) -> None:
    path = tmp_path / "in.yml"
    path.write_text("name: loaded\nlayers: 3\nmatrix:\n  ks: [3, 5]\ninclude: [{ks: 7}]\n")
    app = ScreenHost(NewSweepScreen(db_url))
    async with app.run_test(size=SIZE) as pilot:
        await load_file(pilot, path)
        screen = form(pilot)
        assert screen.field("name").value == "loaded"
        assert (screen.field("kernel_size").value, screen.field("layers").value) == ("3,5", "3")
        notes = str(screen.query_one("#sweep-notes", Static).content)
        assert "'include' (1 entry) kept: its runs are made as queue makes them" in notes
        assert [r.name for r in screen.preview.runs] == ["ks-3", "ks-5", "ks-7"]


async def test_saving_over_the_loaded_file_names_what_the_form_did_not_load(
    db_url: str, tmp_path: Path
) -> None:
    # f3 then f2 over the same file asked only "Replace it? (its comments and layout are
    # lost)": its include entries went (they were not loaded: queue refuses them twice).
    path = tmp_path / "in.yml"
    path.write_text("name: loaded\nlayers: 3\nmatrix:\n  ks: [3, 5]\ninclude: [{ks: 7}, {ks: 7}]\n")
    app = ScreenHost(NewSweepScreen(db_url))
    async with app.run_test(size=SIZE) as pilot:
        await load_file(pilot, path)
        await save_as(pilot, tmp_path / "." / "in.yml")
        assert isinstance(app.screen, ConfirmScreen)
        assert app.screen.question == (
            f"{tmp_path / '.' / 'in.yml'} exists. Replace it? (its comments and layout are "
            "lost, and what the form did not load: its 'include' (2 entries))"
        )
        await pilot.press("n")
        await settle(pilot)
        other = tmp_path / "other.yml"
        other.write_text("name: other\nlayers: 1\n")
        await save_as(pilot, other)  # another file: nothing of it was loaded
        assert isinstance(app.screen, ConfirmScreen)
        assert app.screen.question.endswith("Replace it? (its comments and layout are lost)")
        await pilot.press("n")
        await settle(pilot)
        assert "include" in path.read_text()
        await save_as(pilot, path)
        await pilot.press("y")  # replaced: its include is gone, and said no more
        await settle(pilot)
        assert "include" not in path.read_text()
        await save_as(pilot, path)
        assert isinstance(app.screen, ConfirmScreen)
        assert app.screen.question.endswith("Replace it? (its comments and layout are lost)")
        await pilot.press("n")
        await settle(pilot)


async def test_saving_over_the_loaded_file_names_include_entries_its_edits_leave_out(
    db_url: str, tmp_path: Path
) -> None:
    # Layers 1,3: the entry for 2 changes no run, and is left out. The preview said so,
    # but f2 over the file asked only "Replace it? (its comments and layout are lost)".
    path = tmp_path / "in.yml"
    path.write_text("name: loaded\nmax_inputs: 256\nmatrix:\n  l: [1, 2, 3]\n"
                    "include: [{l: 2, batch_size: 32}, {l: 3, act: relu}]\n")  # fmt: skip
    app = ScreenHost(NewSweepScreen(db_url))
    async with app.run_test(size=SIZE) as pilot:
        await load_file(pilot, path)
        await type_into(pilot, "layers", "1,3")
        await save_as(pilot, path)
        assert isinstance(app.screen, ConfirmScreen)
        assert app.screen.question == (
            f"{path} exists. Replace it? (its comments and layout are lost, and what the "
            "form's edits leave out: include entry {l: 2, batch_size: 32})"
        )
        await pilot.press("n")
        await settle(pilot)
        other = tmp_path / "other.yml"
        other.write_text("name: other\nlayers: 1\n")
        await save_as(pilot, other)  # another file: none of its entries
        assert isinstance(app.screen, ConfirmScreen)
        assert app.screen.question.endswith("Replace it? (its comments and layout are lost)")
        await pilot.press("n")
        await settle(pilot)
        await save_as(pilot, path)
        await pilot.press("y")  # replaced: the entry is gone from it, and said no more
        await settle(pilot)
        assert yaml.safe_load(path.read_text())["include"] == [{"l": 3, "act": "relu"}]
        await save_as(pilot, path)
        assert isinstance(app.screen, ConfirmScreen)
        assert app.screen.question.endswith("Replace it? (its comments and layout are lost)")
        await pilot.press("n")
        await settle(pilot)


async def test_saving_over_the_loaded_file_names_the_targets_its_edits_drop(
    db_url: str, tmp_path: Path
) -> None:
    # Layers 1,3 of T2: the targets of the other ten cells go from the file, and f2's
    # question named none of them, where it named the include entry left out.
    t2 = Path(__file__).parents[2] / "experiments" / "t2-layers-64.yml"
    path = tmp_path / "t2.yml"
    path.write_text(t2.read_text())
    app = ScreenHost(NewSweepScreen(db_url))
    async with app.run_test(size=SIZE) as pilot:
        await load_file(pilot, path)
        await type_into(pilot, "layers", "1,3,21")
        await save_as(pilot, path)
        assert isinstance(app.screen, ConfirmScreen)
        assert app.screen.question == (
            f"{path} exists. Replace it? (its comments and layout are lost, and what the "
            "form's edits leave out: include entry {l: 30, batch_size: 32}, 9 targets "
            "entries (l=30, l=17, l=19 and 6 more))"
        )
        await pilot.press("y")
        await settle(pilot)
        saved = yaml.safe_load(path.read_text())
        assert [entry["l"] for entry in saved["targets"]] == [21, 3, 1]
        await type_into(pilot, "layers", "1,21")
        await save_as(pilot, path)  # one more: against the file as saved now
        assert isinstance(app.screen, ConfirmScreen)
        assert app.screen.question.endswith(
            "what the form's edits leave out: 1 targets entry (l=3))"
        )
        await pilot.press("n")
        await settle(pilot)
        # Another field changed: the file's figures are for none of the form's runs.
        await type_into(pilot, "lr", "1e-3")
        await save_as(pilot, path)
        assert isinstance(app.screen, ConfirmScreen)
        assert app.screen.question.endswith("3 targets entries (l=21, l=3, l=1))")
        await pilot.press("n")
        await settle(pilot)


@pytest.mark.parametrize(
    ("text", "lost"),
    [
        # ks1/ks2 in the matrix became pairs and every target was dropped (saved over, the
        # file lost them without a word); now they load as two fields, targets and all.
        ("name: x\nlayers: 3\nmatrix:\n  ks1: [3, 5]\n  ks2: [3]\n"
         "targets: [{ks1: 3, ks2: 3, validation_loss: 0.1}]\n", []),
        ("name: x\nlayers: 3\nmatrix: [1, 2]\n", ["its 'matrix'"]),
        ("name: x\nlayers: 3\nseeds: -1\n", ["its 'seeds'"]),
        ("name: x\nlayers: 3\nmatrix:\n  act: [relu]\nexclude: [{act: tanh}]\n",
         ["its 'exclude'"]),
        ("name: x\nlayers: 3\nmatrix:\n  act: [relu, tanh]\nexclude: [{act: tanh}]\n", []),
    ],
)  # fmt: skip
def test_what_the_form_drops_of_a_file_is_named_for_the_replace_question(
    text: str, lost: list[str]
) -> None:
    from resconv_tui.sweep_file_io import sweep_to_form

    assert sweep_to_form(yaml.safe_load(text)).lost == lost


async def test_a_loaded_files_exclude_leaves_its_runs_out_of_the_queue(
    db_url: str, tmp_path: Path
) -> None:
    # F3 dropped the file's exclude with a note: ctrl+s then queued l-2, which
    # `queue FILE` never trains.
    path = tmp_path / "in.yml"
    path.write_text("name: loaded\nmax_inputs: 256\nmatrix:\n  l: [1, 2]\nexclude: [{l: 2}]\n")
    app = ScreenHost(NewSweepScreen(db_url))
    async with app.run_test(size=SIZE) as pilot:
        await load_file(pilot, path)
        notes = str(app.screen.query_one("#sweep-notes", Static).content)
        assert "'exclude' (1 entry) kept: the runs it drops are left out" in notes
        assert "exclude leaves out 1 run" in await drawn(pilot, "exclude leaves out 1 run")
        await save_as(pilot, tmp_path / "saved.yml")  # f2: the exclude goes with it
        await pilot.press("ctrl+s")
        await settle(pilot)
    queued = [run.name for run in Repo.open(db_url).list_runs()]
    assert queued == [run.name for run in expand_sweep_file(path)] == ["l-1"]
    assert [run.name for run in expand_sweep_file(tmp_path / "saved.yml")] == ["l-1"]


async def test_a_loaded_files_include_is_queued_and_saved_as_queue_does(
    db_url: str, tmp_path: Path
) -> None:
    # F3 did not load T2's include: ctrl+s queued 21 and 30 layers at batch size 64, where
    # `queue FILE` trains them at 32, and f2 saved the file without it.
    path = Path(__file__).parents[2] / "experiments" / "t2-layers-64.yml"
    app = ScreenHost(NewSweepScreen(db_url))
    async with app.run_test(size=SIZE) as pilot:
        await load_file(pilot, path)
        notes = str(app.screen.query_one("#sweep-notes", Static).content)
        assert notes == "! 'include' (2 entries) kept: its runs are made as queue makes them"
        await save_as(pilot, tmp_path / "saved.yml")
        await pilot.press("ctrl+s")
        await settle(pilot)
    expected = named(expand_sweep_file(path), target=True)
    queued = named(Repo.open(db_url).list_runs(), target=True)
    assert sorted(queued, key=str) == sorted(expected, key=str)
    saved = expand_sweep_file(tmp_path / "saved.yml")
    assert named(saved, target=True) == expected


async def test_a_loaded_files_one_value_matrix_key_stays_in_its_run_names(
    db_url: str, tmp_path: Path
) -> None:
    # `act: [gelu]` in the matrix: queue names act-gelu_l-1, the form named (and queued,
    # and saved) l-1; a target naming act matched no run, and the form queued nothing.
    path = tmp_path / "in.yml"
    path.write_text("name: loaded\nmax_inputs: 256\nmatrix:\n  act: [gelu]\n  l: [1, 2]\n"
                    "targets: [{act: gelu, l: 1, validation_loss: 0.1}]\n")  # fmt: skip
    app = ScreenHost(NewSweepScreen(db_url))
    async with app.run_test(size=SIZE) as pilot:
        await load_file(pilot, path)
        preview = form(pilot).preview
        assert preview.errors == {}  # was: targets entry 1 ... 'act' is not a matrix key
        assert [run.name for run in preview.runs] == ["act-gelu_l-1", "act-gelu_l-2"]
        await save_as(pilot, tmp_path / "saved.yml")
        await pilot.press("ctrl+s")
        await settle(pilot)
    queued = [(run.name, run.target) for run in Repo.open(db_url).list_runs()]
    expected = [(run.name, run.target) for run in expand_sweep_file(path)]
    assert sorted(queued, key=str) == sorted(expected, key=str)
    saved = [(run.name, run.target) for run in expand_sweep_file(tmp_path / "saved.yml")]
    assert saved == expected


async def test_t8_s_ks1_ks2_matrix_loads_as_two_fields_and_queues_as_queue_does(
    db_url: str, tmp_path: Path
) -> None:
    # F3 of T8 made its 5 x 5 ks1/ks2 matrix 25 kernel_size pairs: ctrl+s queued ks-3,3 ..
    # where `queue` queues ks1-3_ks2-3 .., without the logbook's targets, with a note.
    t8 = Path(__file__).parents[2] / "experiments" / "t8-kernel-sizes.yml"
    app = ScreenHost(NewSweepScreen(db_url))
    async with app.run_test(size=(80, 24)) as pilot:
        await load_file(pilot, t8)
        screen = form(pilot)
        shown = {f.key for f in screen.query(ParamField) if f.display}
        assert {"ks1", "ks2"} <= shown and "kernel_size" not in shown
        assert screen.query_one("#sweep-notes", Static).display is False  # nothing to say
        screen.field("channels").input.focus()
        await pilot.press("tab")  # channels, then the file's halves where kernel_size was
        assert app.focused is screen.field("ks1").input
        hint = screen.query_one("#sweep-hint", Static)
        whole = f"ks1: {screen.field('ks1').hint}"
        assert await drawn_in(pilot, hint, whole) == whole  # whole at 80 columns
        await type_into(pilot, "ks2", "3,5")  # edited: still ks1 x ks2, targets kept
        assert [r.name for r in screen.preview.runs][:3] == ["ks1-3_ks2-3", "ks1-3_ks2-5",
                                                             "ks1-5_ks2-3"]  # fmt: skip
        assert all(r.target for r in screen.preview.runs) and len(screen.preview.runs) == 10
        await type_into(pilot, "ks2", "3,5,7,9,11")  # back as loaded
        await pilot.press("ctrl+s")
        await settle(pilot)
    queued = named(Repo.open(db_url).list_runs(), target=True)
    expected = named(expand_sweep_file(t8), target=True)
    assert sorted(queued, key=str) == sorted(expected, key=str)
    # A file without the halves brings kernel_size back in their place.
    app = ScreenHost(NewSweepScreen(db_url, initial_file=str(t8)))
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        form(pilot).load_file(str(t8.with_name("t7-kernel-size.yml")))
        await settle(pilot)
        shown = {f.key for f in form(pilot).query(ParamField) if f.display}
        assert "kernel_size" in shown and not {"ks1", "ks2"} & shown
        assert [r.name for r in form(pilot).preview.runs][0] == "ks-3"


async def test_emptying_both_halves_gives_the_one_kernel_size_field_back(
    db_url: str, tmp_path: Path
) -> None:
    # Once T8 showed ks1/ks2, no key gave kernel_size back: a plain kernel_size sweep took
    # a new form. Emptying both halves now shows kernel_size in their place.
    t8 = Path(__file__).parents[2] / "experiments" / "t8-kernel-sizes.yml"
    app = ScreenHost(NewSweepScreen(db_url))
    async with app.run_test(size=(80, 24)) as pilot:
        await load_file(pilot, t8)
        screen = form(pilot)
        assert "both empty: one kernel_size" in screen.field("ks1").hint
        await type_into(pilot, "ks1", "")
        shown = {f.key for f in screen.query(ParamField) if f.display}
        assert {"ks1", "ks2"} <= shown and "kernel_size" not in shown  # one empty: kept
        await type_into(pilot, "ks2", " ")
        shown = {f.key for f in screen.query(ParamField) if f.display}
        assert "kernel_size" in shown and not {"ks1", "ks2"} & shown
        assert app.focused is screen.field("kernel_size").input
        assert screen.field("kernel_size").value == "3"
        await type_into(pilot, "kernel_size", "3,5")
        preview = screen.preview
        assert preview.errors == {}, preview.errors
        assert [r.name for r in preview.runs] == ["ks-3", "ks-5"]
        assert [r.config.kernel_size for r in preview.runs] == [3, 5]
        assert not any(r.target for r in preview.runs)  # T8's are for ks1/ks2 cells
        assert (
            "targets: 0 of 25 entries kept; the others are for runs the form does not "
            "make" in preview.notes
        )
        await save_as(pilot, tmp_path / "saved.yml")
        await pilot.press("ctrl+s")
        await settle(pilot)
    queued = named(Repo.open(db_url).list_runs())
    saved = named(expand_sweep_file(tmp_path / "saved.yml"))
    assert sorted(queued) == sorted(saved) and len(saved) == 2


async def test_an_edit_that_spells_a_key_two_ways_with_an_include_entry_names_it(
    db_url: str, tmp_path: Path
) -> None:
    # The entries set the kernel size as ks1/ks2 and as kernel_size (queue takes it: the
    # file leaves it unset). kernel_size 5 was refused under "sweep", naming a run:
    # "run 'l-1_ks1-3_ks2-5': 'ks1/ks2' and 'kernel_size' both set 'kernel_size'".
    path = tmp_path / "in.yml"
    path.write_text("name: loaded\nmax_inputs: 256\nmatrix:\n  l: [1, 2]\n"
                    "include: [{l: 1, ks1: 3, ks2: 5}, {l: 2, kernel_size: 5}]\n")  # fmt: skip
    app = ScreenHost(NewSweepScreen(db_url))
    async with app.run_test(size=SIZE) as pilot:
        await load_file(pilot, path)
        screen = form(pilot)
        assert [r.name for r in screen.preview.runs] == ["l-1_ks1-3_ks2-5", "l-2_kernel_size-5"]
        await type_into(pilot, "kernel_size", "5")
        assert screen.preview.errors == {
            "kernel_size": "include entry 1 {l: 1, ks1: 3, ks2: 5} sets it as 'ks1/ks2', the "
            "form as 'kernel_size': one run cannot take both; leave kernel_size at its default "
            "(3), as the file does"
        }
        assert screen.field("kernel_size").has_class("-invalid")
        await pilot.press("ctrl+s")
        await settle(pilot)
        assert app.result == "not dismissed" and Repo.open(db_url).list_runs() == []
        await type_into(pilot, "kernel_size", "3")  # as the file: its runs again
        await pilot.press("ctrl+s")
        await settle(pilot)
    queued = sorted(run.name for run in Repo.open(db_url).list_runs())
    assert queued == sorted(run.name for run in expand_sweep_file(path))


async def test_t2_with_an_include_entry_queue_refuses_is_not_loaded_and_names_it(
    db_url: str, tmp_path: Path
) -> None:
    # T2 sets batch_size; an entry writing it as bs: queue refuses the file, and the form
    # loaded the include as "kept: its runs are made as queue makes them".
    t2 = Path(__file__).parents[2] / "experiments" / "t2-layers-64.yml"
    path = tmp_path / "t2.yml"
    path.write_text(t2.read_text().replace("{l: 30, batch_size: 32}", "{l: 30, bs: 32}"))
    why = ("include entry 2 {l: 30, bs: 32} sets 'batch_size' as 'bs', and the sweep as "
           "'batch_size': one run cannot take both")  # fmt: skip
    with pytest.raises(SweepError, match=re.escape(why)):
        expand_sweep_file(path)
    app = ScreenHost(NewSweepScreen(db_url))
    async with app.run_test(size=SIZE) as pilot:
        await load_file(pilot, path)
        notes = str(app.screen.query_one("#sweep-notes", Static).content)
        assert f"! 'include' (2 entries) not loaded: {why}" in notes


async def test_a_loaded_exclude_of_emptied_halves_is_left_out_as_queue_would_refuse_it(
    db_url: str, tmp_path: Path
) -> None:
    # T8 with an exclude of ks1/ks2 cells, its halves emptied for one kernel_size field:
    # the form left out kernel_size 3 (and [3,9,...,3]) as the cell ks1=3 ks2=3, where
    # queue refuses that exclude over a kernel_size sweep ('ks1' is not a matrix key).
    t8 = Path(__file__).parents[2] / "experiments" / "t8-kernel-sizes.yml"
    path = tmp_path / "t8.yml"
    path.write_text(t8.read_text() + "exclude: [{ks1: 3, ks2: 3}, {ks1: 11, ks2: 3}]\n")
    app = ScreenHost(NewSweepScreen(db_url))
    async with app.run_test(size=SIZE) as pilot:
        await load_file(pilot, path)
        screen = form(pilot)
        assert len(screen.preview.runs) == 23
        await type_into(pilot, "ks1", "")
        await type_into(pilot, "ks2", "")
        await type_into(pilot, "kernel_size", "3,5,[3,5,5,5,5,5,5,5,5,5,3]")
        preview = screen.preview
        assert [r.name for r in preview.runs] == ["ks-3", "ks-5", "ks-3,5,5,5,5,5,5,5,5,5,3"]
        assert not any("exclude leaves out" in note for note in preview.notes)
        notes = str(screen.query_one("#sweep-notes", Static).content)
        assert notes.endswith("! 'exclude' (2 entries) left out: it names ks1 and ks2, which "
                              "the form no longer has (queue refuses it over one kernel_size "
                              "field)")  # fmt: skip
        question = await replace_then_queue(pilot, path)
        assert question.endswith(", its 'exclude' (2 entries))"), question
    assert "exclude" not in yaml.safe_load(path.read_text())
    queued = sorted(named(Repo.open(db_url).list_runs()))
    assert queued == sorted(named(expand_sweep_file(path)))
    assert len(queued) == 3


def t8_over_l_3_and_11(tmp_path: Path, entries: str) -> Path:
    """T8 less its targets, swept over layers 3 and 11 too, with the line ``entries`` (an
    exclude or an include) added: 50 cells, some named by ks1/ks2 and some not."""
    t8 = Path(__file__).parents[2] / "experiments" / "t8-kernel-sizes.yml"
    text = t8.read_text().partition("targets:")[0].replace("layers: 11\n", "")
    path = tmp_path / "t8.yml"
    path.write_text(text.replace("matrix:\n", "matrix:\n  l: [3, 11]\n") + entries + "\n")
    return path


async def test_emptied_halves_leave_out_only_the_exclude_entries_that_name_them(
    db_url: str, tmp_path: Path
) -> None:
    # T8 (less its targets) swept over l 3 and 11 too, its exclude one ks1/ks2 cell and
    # every l-3 run. Once the halves were emptied the whole exclude went, {l: 3} too,
    # which queue takes over a kernel_size sweep: l-3 was queued, and the saved file no
    # longer left it out.
    path = t8_over_l_3_and_11(tmp_path, "exclude: [{ks1: 3, ks2: 3}, {l: 3}]")
    assert len(expand_sweep_file(path)) == 24  # 50 cells, 25 of l-3 and l-11's ks 3/3 out
    app = ScreenHost(NewSweepScreen(db_url))
    async with app.run_test(size=SIZE) as pilot:
        await load_file(pilot, path)
        screen = form(pilot)
        assert len(screen.preview.runs) == 24
        await type_into(pilot, "ks1", "")
        await type_into(pilot, "ks2", "")
        assert [r.name for r in screen.preview.runs] == ["l-11"]
        await type_into(pilot, "kernel_size", "3,5")
        assert [r.name for r in screen.preview.runs] == ["l-11_ks-3", "l-11_ks-5"]
        notes = str(screen.query_one("#sweep-notes", Static).content)
        assert notes.endswith("! 'exclude': 1 of 2 entries left out ({ks1: 3, ks2: 3}): it "
                              "names ks1 and ks2, which the form no longer has (queue refuses "
                              "it over one kernel_size field)")  # fmt: skip
        question = await replace_then_queue(pilot, path)
        assert question.endswith("leave out: its 'exclude' entry {ks1: 3, ks2: 3})"), question
    assert yaml.safe_load(path.read_text())["exclude"] == [{"l": 3}]
    queued = sorted(named(Repo.open(db_url).list_runs()))
    assert queued == sorted(named(expand_sweep_file(path)))
    assert [name for name, _ in queued] == ["l-11_ks-3", "l-11_ks-5"]


async def test_f3_s_folder_is_typed_on_from_not_over(db_url: str) -> None:
    # The prompt's "experiments/" was selected: typing a file name replaced it, and the
    # load failed with "cannot read file".
    app = ScreenHost(NewSweepScreen(db_url))
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("f3")
        await settle(pilot)
        await pilot.press(*"t7.yml")
        assert app.screen.query_one("#path-input", Input).value == "experiments/t7.yml"


async def test_f3_over_unsaved_edits_asks_first(db_url: str, tmp_path: Path) -> None:
    # Esc asked before losing edits; loading a file over them did not.
    path = tmp_path / "in.yml"
    path.write_text("name: loaded\nlayers: 3\n")
    app = ScreenHost(NewSweepScreen(db_url))
    async with app.run_test(size=SIZE) as pilot:
        await type_into(pilot, "seed", "0,1")
        for answer, seed in (("n", "0,1"), ("y", "0")):
            await load_file(pilot, path)
            assert isinstance(app.screen, ConfirmScreen)
            asks = "The form's changes are neither queued nor"
            assert asks in await drawn(pilot, asks)
            await pilot.press(answer)
            await settle(pilot)
            assert form(pilot).field("seed").value == seed
        assert form(pilot).field("layers").value == "3"


async def test_initial_file_and_base_config(db_url: str) -> None:
    base = RunConfig(layers=7, activation="mish").to_dict()
    app = ScreenHost(NewSweepScreen(db_url, base_config=base))
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        screen = form(pilot)
        assert (screen.field("layers").value, screen.field("activation").value) == ("7", "mish")
        assert screen.preview.runs[0].config == RunConfig(layers=7, activation="mish")
    t7 = str(Path(__file__).parents[2] / "experiments" / "t7-kernel-size.yml")
    app = ScreenHost(NewSweepScreen(db_url, initial_file=t7))
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        assert form(pilot).field("kernel_size").value == "3,5,7,9,11"
        assert len(form(pilot).preview.runs) == 5


async def test_a_file_loaded_into_a_duplicate_names_its_runs_as_queue_does(db_url: str) -> None:
    # d then f3: T1's runs read act-gelu_l-1_image_size-32_..., named as changes from the
    # run d copied, not l-1, l-2 as the file names them (and its targets are keyed).
    repo = Repo.open(db_url)
    repo.enqueue([NewRun.from_config(RunConfig(layers=3), experiment="walk/odd", name="l-3",
                                     param_count=1)])  # fmt: skip
    original = repo.list_runs()[0]
    repo.close()
    t1 = str(Path(__file__).parents[2] / "experiments" / "t1-layers-32.yml")
    app = ScreenHost(NewSweepScreen(db_url, base_run=original))
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await pilot.press("f2")  # the name offered is a file name: `walk/odd` made a folder
        await settle(pilot)
        assert pilot.app.screen.query_one("#path-input", Input).value == "walk_odd.yml"
        await pilot.press("escape")
        await settle(pilot)
        form(pilot).load_file(t1)
        await settle(pilot)
        names = [run.name for run in form(pilot).preview.runs]
    assert names[:3] == ["l-1", "l-2", "l-3"]


@pytest.mark.parametrize(
    ("stored", "field"),
    [("exp\x1b[31mred", "exp[31mred"), ("a\rb\u202ec", "abc"), ("\x1b\x07", "sweep")],
)
async def test_a_duplicate_of_a_run_whose_experiment_holds_control_characters(
    db_url: str, stored: str, field: str
) -> None:
    # A database edited by hand (UPDATE run SET experiment = 'exp' || char(27) || ...):
    # d put the raw ESC into the name field, where the terminal acted on it, and ctrl+s
    # refused it. The field has the name without them, a notice says so, ctrl+s queues.
    original = hand_edited_run(db_url, "experiment", stored)
    app = ScreenHost(NewSweepScreen(db_url, base_run=original))
    async with app.run_test(size=SIZE, notifications=True) as pilot:
        await settle(pilot)
        assert form(pilot).field("name").value == field
        (notice,) = [n.message for n in app._notifications]
        assert notice.startswith(f"run {original.id}'s experiment '") and f"'{field}'" in notice
        assert not any(char in notice for char in "\x1b\x07\r\u202e"), notice
        await type_into(pilot, "channels", "64")
        await pilot.press("ctrl+s")
        await settle(pilot)
    assert app.result == 1
    copy = Repo.open(db_url).list_runs()[1]
    assert (copy.experiment, copy.name) == (field, "ch-64")


def hand_edited_run(db_url: str, column: str, stored: str) -> RunRow:
    """walk's run l-3 (3 layers, 256 inputs), its ``column`` set to ``stored`` as a database
    edited by hand holds it (UPDATE run SET name = 'l-3' || char(27) || ...)."""
    repo = Repo.open(db_url)
    config = RunConfig(layers=3, max_inputs=256)
    repo.enqueue([NewRun.from_config(config, experiment="walk", name="l-3", param_count=1)])
    repo.close()
    with sqlite3.connect(db_url.removeprefix("sqlite:///")) as conn:
        conn.execute(f"UPDATE run SET {column} = ?", (stored,))
    (original,) = Repo.open(db_url).list_runs()
    assert (getattr(original, column), original.config) == (stored, config)
    return original


async def test_a_duplicate_keeps_its_experiment_and_is_named_by_what_changed(
    db_url: str,
) -> None:
    repo = Repo.open(db_url)
    config = RunConfig(layers=3, max_inputs=256)
    repo.enqueue([NewRun.from_config(config, experiment="walk", name="l-3", param_count=1)])
    original = repo.list_runs()[0]
    app = ScreenHost(NewSweepScreen(db_url, base_run=original))
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        assert form(pilot).field("name").value == "walk"
        assert form(pilot).preview.runs[0].name == "l-3"
        await pilot.press("ctrl+s")  # unchanged: the same run, already queued
        await settle(pilot)
        # The form stays, to be changed (it closed, saying "Sweep queued: queued 0 runs").
        assert isinstance(app.screen, NewSweepScreen)
        assert [n.message for n in app._notifications] == [
            "nothing new to queue: 1 run already queued or done (change a field, e.g. seed, "
            "or esc to leave)"
        ]
        assert len(repo.list_runs()) == 1
        await type_into(pilot, "channels", "64")
        await pilot.press("ctrl+s")
        await settle(pilot)
    assert app.result == 1
    copy = repo.list_runs()[1]
    assert (copy.experiment, copy.name, copy.swept) == ("walk", "ch-64", {"ch": 64})
    assert copy.config == config.replace(channels=64)


async def test_a_new_single_run_is_named_by_what_differs_from_the_defaults(
    db_url: str,
) -> None:
    app = ScreenHost(NewSweepScreen(db_url))
    async with app.run_test(size=SIZE) as pilot:
        await type_into(pilot, "layers", "5")
        await type_into(pilot, "channels", "16")
        assert form(pilot).preview.runs[0].name == "l-5_ch-16"


def test_snapshot_form(snap_compare: Any, db_url: str) -> None:
    async def edit(pilot: Pilot[Any]) -> None:
        for field in form(pilot).query(Input):
            field.cursor_blink = False  # a blinking cursor makes the picture random
        await type_into(pilot, "layers", "1..3")
        await type_into(pilot, "activation", "gelu,relu")
        await type_into(pilot, "kernel_size", "3,4")
        await type_into(pilot, "kernel_size", "3,5")

    assert snap_compare(ScreenHost(NewSweepScreen(db_url)), terminal_size=SIZE, run_before=edit)


async def test_the_preview_stays_readable_at_80_columns(db_url: str) -> None:
    app = ScreenHost(NewSweepScreen(db_url))
    async with app.run_test(size=(80, 24)) as pilot:
        await type_into(pilot, "layers", "1,2,3")
        preview = app.screen.query_one(SweepPreview)
        assert preview.region.width >= 34  # was 14: "9,6…" for a parameter count
        assert "19,171" in await drawn(pilot, "19,171")
        assert "3..11:2" in await drawn(pilot, "3..11:2")  # the title's last example was cut
        # Longer names: the ~mem column gives way, and they were two cells or none wide.
        await type_into(pilot, "kernel_size", "3,5")
        await type_into(pilot, "seed", "0,1")
        text = await drawn(pilot, "l-1_ks-3_s")
        assert "name" in text and "~mem" not in text and "l-1_ks-3_s" in text


@pytest.mark.parametrize(("size", "said"), [(SIZE, "  mem <= "), ((80, 24), "est. memory <= ")])
async def test_the_previews_memory_figure_is_never_broken_across_lines(
    db_url: str, size: tuple[int, int], said: str
) -> None:
    # At 120 columns "60 runs  params 305..8,576,899  est. memory <= 4.3 GiB" took 53
    # cells of the preview's 50: "4.3" ended one line and "GiB" began the next.
    from resconv_tui.memory_estimate import format_bytes

    app = ScreenHost(NewSweepScreen(db_url))
    async with app.run_test(size=size) as pilot:
        await type_into(pilot, "layers", "1..30")
        await type_into(pilot, "channels", "16,128")
        summary = app.screen.query_one("#preview-summary", Static)
        assert "60 runs" in await drawn_among(pilot, summary, "60 runs")  # the last preview's
        lines = region_lines(app, summary.region)
        memory = format_bytes(max(form(pilot).preview.memory))
        assert lines[0].startswith("60 runs  params 305..8,576,899")
        # Shorter where it fits (120), else whole on a line of its own (80).
        assert f"{said}{memory}" in "\n".join(lines) and lines[-1].endswith(f"<= {memory}")


async def test_every_fields_hint_is_shown_whole_at_80_columns(db_url: str) -> None:
    # The hint under the fields has two lines: at 80 columns kernel_size's took three and
    # read "... [first,last] or [per,layer] in", its last word cut off.
    app = ScreenHost(NewSweepScreen(db_url))
    async with app.run_test(size=(80, 24)) as pilot:
        hint = app.screen.query_one("#sweep-hint", Static)
        for field in app.screen.query(ParamField):
            field.input.focus()
            await pilot.pause()
            whole = f"{field.key}: {field.hint}"
            assert await drawn_in(pilot, hint, whole) == whole, field.key


async def test_the_preview_says_what_queueing_would_do_against_the_database(
    db_url: str,
) -> None:
    # As queue --dry-run: a sweep whose runs are all there reads "already queued or done".
    app = ScreenHost(NewSweepScreen(db_url))
    async with app.run_test(size=SIZE) as pilot:
        await type_into(pilot, "layers", "1,2")
        await type_into(pilot, "max_inputs", "256")
        await pilot.press("ctrl+s")
        await settle(pilot)
    app = ScreenHost(NewSweepScreen(db_url))
    async with app.run_test(size=SIZE) as pilot:
        await type_into(pilot, "layers", "1,2,3")
        await type_into(pilot, "max_inputs", "256")
        assert form(pilot).preview.plans == ("skip #1 queued", "skip #2 queued", "new")
        text = await drawn(pilot, "3 runs (1 new, 2 already queued or done)")
        assert "3 runs (1 new, 2 already queued or done)" in text
        assert text.count("there") >= 2


async def test_a_preview_that_ends_while_the_form_is_dismissed_is_dropped(db_url: str) -> None:
    # Escape while the preview thread computed: its result met a screen whose widgets were
    # being removed and the app crashed (NoMatches SweepPreview), once in a full run.
    app = ScreenHost(NewSweepScreen(db_url))
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        screen = form(pilot)
        shown = screen.preview
        screen.dismiss(None)  # its widgets are removed over the next turns of the loop
        # The worker's first read: it stops there, not once the fields are gone.
        assert screen._fields_now() is None
        screen.apply_preview(screen.compute_preview())
        assert screen.preview is shown  # dropped (test_a_preview_that_arrives_as_...)


async def test_a_slow_preview_of_older_fields_does_not_replace_a_newer_one(
    db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Typing on while a big sweep's preview is computed: the newer preview started the
    # exclusive worker, but the older thread still ran to its end and drew its preview
    # last, so the form showed (and the flaky tests read) the fields as they had been.
    import threading

    from resconv_tui.screens import new_sweep

    slow_started, slow_may_end = threading.Event(), threading.Event()
    real_preview = new_sweep.preview

    def preview(name: str, texts: dict[str, str], *rest: Any) -> Any:
        if texts["layers"] == "1,2":
            slow_started.set()
            slow_may_end.wait(60)  # set as soon as the newer preview is shown
        return real_preview(name, texts, *rest)

    # The runs of each preview handed to the UI thread: the old one's arrival is waited
    # for, not guessed at (20 pauses of 10 ms could end before it came, and pass).
    handed: list[int] = []
    real_apply = NewSweepScreen._apply_if_latest

    def apply_if_latest(self: NewSweepScreen, number: int, result: Any) -> None:
        handed.append(len(result.runs))
        real_apply(self, number, result)

    monkeypatch.setattr(new_sweep, "preview", preview)
    monkeypatch.setattr(NewSweepScreen, "_apply_if_latest", apply_if_latest)
    app = ScreenHost(NewSweepScreen(db_url))
    async with app.run_test(size=SIZE) as pilot:
        form(pilot).field("layers").value = "1,2"
        for _ in range(1000):  # 10 s: a loaded machine's thread start
            if slow_started.is_set():
                break
            await pilot.pause(0.01)
        assert slow_started.is_set()
        await type_into(pilot, "layers", "1,2,3")
        assert len(form(pilot).preview.runs) == 3
        slow_may_end.set()
        for _ in range(1000):  # the old thread ends and hands its preview to the UI thread
            if 2 in handed:
                break
            await pilot.pause(0.01)
        assert 2 in handed, handed
        await pilot.pause()
        assert len(form(pilot).preview.runs) == 3  # was 2
        assert "3 runs" in await drawn(pilot, "3 runs")


async def test_a_loaded_files_targets_follow_the_runs_the_form_makes(
    db_url: str, tmp_path: Path
) -> None:
    # T1 loaded, layers made 1,2,3: its targets for l 5..21 matched no run, the sweep
    # refused them, and the form could neither queue nor save; nothing showed why.
    t1 = str(Path(__file__).parents[2] / "experiments" / "t1-layers-32.yml")
    app = ScreenHost(NewSweepScreen(db_url))
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        form(pilot).load_file(t1)
        await settle(pilot)
        await type_into(pilot, "layers", "1,2,3")
        shown = form(pilot).preview
        assert shown.ok and len(shown.runs) == 3
        assert shown.notes == (
            "targets: 3 of 12 entries kept; the others are for runs the form does not make",
        )
        assert [run.target and run.target["params"] for run in shown.runs] == [675, 19299, 37923]
        assert "! targets: 3 of 12 entries kept" in await drawn(pilot, "! targets")
        # 4 channels, not the file's 32: no published figure describes these runs.
        await type_into(pilot, "channels", "4")
        assert form(pilot).preview.notes[0].startswith("targets left out: channels is not")
        # Queued under T1's name, they would sit beside its full runs named alike (l-1).
        assert (
            form(pilot)
            .preview.notes[0]
            .endswith(
                "its runs and the form's have the same names: give the experiment a name of its "
                "own, e.g. 't1-layers-32-channels-4'"
            )
        )
        await type_into(pilot, "max_inputs", "640")
        await type_into(pilot, "channels", "32")  # only max_inputs differs: a quick check
        assert "e.g. 't1-layers-32-inputs-640'" in form(pilot).preview.notes[0]
        await type_into(pilot, "name", "t1-quick")  # apart already: nothing to suggest
        assert form(pilot).preview.notes[0].endswith("the published figures are for its runs")
        await type_into(pilot, "name", "t1-layers-32")
        await type_into(pilot, "max_inputs", "180000")
        await type_into(pilot, "channels", "4")
        assert all(run.target is None for run in form(pilot).preview.runs)
        await save_as(pilot, tmp_path / "mine.yml")
        saved = expand_sweep_file(tmp_path / "mine.yml")  # reads back: no stray targets
        assert [run.config.channels for run in saved] == [4, 4, 4]
        await type_into(pilot, "channels", "32")  # back as loaded: the kept ones again
        await pilot.press("ctrl+s")
        await settle(pilot)
    queued = Repo.open(db_url).list_runs()
    assert [run.target and run.target["params"] for run in queued] == [675, 19299, 37923]


async def test_the_previews_run_names_fold_at_their_separators_at_80_columns(
    db_url: str,
) -> None:
    # Rich folded them at the column's edge, inside a key or value ("max_i" / "nputs-…").
    app = ScreenHost(NewSweepScreen(db_url))
    async with app.run_test(size=(80, 24)) as pilot:
        for key, values in [("layers", "1,2"), ("activation", "gelu,relu"),
                            ("max_inputs", "180000,360000"), ("seed", "0,1")]:  # fmt: skip
            await type_into(pilot, key, values)
        names = [run.name for run in form(pilot).preview.runs]
        table = app.screen.query_one("#preview-table", Static)
        # Laid out for the last preview (its size is the new table's) before it is read.
        assert "16 runs" in await drawn(pilot, "16 runs")
        # Every row, not only those scrolled into view.
        lines = [strip.text.rstrip() for strip in table.render_lines(Region(0, 0, *table.size))]
    start = lines[0].index("name")
    cells = [(line[:start].strip(), line[start:].split(" ")[0]) for line in lines[1:]]
    drawn_names: list[list[str]] = []
    for index, part in cells:
        if index:  # a row's first line; the lines under it, with no index, go on its name
            drawn_names.append([])
        drawn_names[-1].append(part)
    assert len(drawn_names) == len(names) and any(len(parts) > 1 for parts in drawn_names)
    for parts, name in zip(drawn_names, names, strict=True):
        assert_folds_at_separators(parts, name)


async def test_a_bad_last_fields_reason_is_scrolled_into_sight_at_80x24(db_url: str) -> None:
    # The reason is drawn under its field: under the last one (priority) it appeared below
    # the fields' visible rows at 80x24 as it was typed. ctrl+s's focus move shows it.
    app = ScreenHost(NewSweepScreen(db_url))
    async with app.run_test(size=(80, 24)) as pilot:
        priority = form(pilot).field("priority")
        reason = priority.query_one(".field-reason", Static)
        scroller = app.screen.query_one("#sweep-fields")

        async def reason_in_sight() -> bool:
            await settle(pilot)

            def drawn_in_sight() -> bool:  # scrolled to once laid out: a later refresh
                seen = " ".join(" ".join(region_lines(app, reason.region)).split())
                return scroller.region.contains_region(reason.region) and priority.error in seen

            return await eventually(pilot, drawn_in_sight)

        priority.input.focus()
        await pilot.press("end", *"x9")  # typed, as a person would: "0x9"
        assert "0x9" in priority.error and await reason_in_sight()
        form(pilot).field("name").input.focus()  # scrolls back up, the reason out of sight
        assert await eventually(pilot, lambda: not scroller.region.contains_region(reason.region))
        await pilot.press("ctrl+s")  # refused: the focus goes back to priority, and its reason
        assert app.focused is priority.input and await reason_in_sight()


@contextlib.asynccontextmanager
async def form_on_an_older_database(
    db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, busy_timeout_s: float
) -> AsyncIterator[Pilot[Any]]:
    """The form over ``tmp_path``/runs.db (``db_url``), max_inputs 256 typed, the file
    then made an older version's (each preview or queueing opens it afresh, and finds its
    worker table without the newer columns); the busy timeout ``busy_timeout_s``."""
    from core.queue import db as db_module

    Repo.open(db_url).close()
    monkeypatch.setattr(db_module, "DEFAULT_BUSY_TIMEOUT_S", busy_timeout_s)
    app = ScreenHost(NewSweepScreen(db_url))
    async with app.run_test(size=SIZE) as pilot:
        await type_into(pilot, "max_inputs", "256")
        drop_newer_columns(tmp_path / "runs.db")
        yield pilot


async def test_the_preview_on_an_older_database_does_not_wait_out_another_writers_lock(
    db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The preview's "what queueing would do" only reads, on the UI thread, yet it opened
    # the database as a writer does: on an older version's runs.db whose write lock
    # another process held, the form froze for the busy timeout (15 s) at every preview.
    import time

    async with form_on_an_older_database(db_url, tmp_path, monkeypatch, 3.0) as pilot:
        with write_lock_held(tmp_path / "runs.db"):
            start = time.monotonic()
            form(pilot).show_preview_now()
            assert time.monotonic() - start < 1.5  # a reader's short try, not 3 s
        assert form(pilot).preview.plans == ("new",)


async def test_queueing_locked_out_of_an_older_databases_upgrade_waits_once(
    db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # As `queue` did before 5514929: the upgrade waited the busy timeout for another
    # process's write lock and let it pass, then the enqueue waited it again for the same
    # lock, and said "waited 15 s" after 30.
    import time

    async with form_on_an_older_database(db_url, tmp_path, monkeypatch, 1.0) as pilot:
        with write_lock_held(tmp_path / "runs.db"):
            start = time.monotonic()
            form(pilot).action_queue()
            await pilot.app.workers.wait_for_complete()
            waited = time.monotonic() - start
        # One busy timeout (1 s), not two: under 2 s. 1.6 failed at 1.63 s on 2 cores shared
        # with other test runs (load 5), with the code unchanged.
        assert 0.9 <= waited < 1.9, waited
        said = [n.message for n in pilot.app._notifications]
        assert any("locked by another process (waited 1 s)" in m for m in said), said
    repo = Repo.open(db_url)
    assert repo.list_runs() == []  # nothing written
    repo.close()


async def test_save_as_over_a_sqlite_file_is_said_and_the_form_stays(
    db_url: str, tmp_path: Path
) -> None:
    # save_sweep's refusal of a SQLite file (a SweepError) went out of f2's callback
    # uncaught: the dashboard closed with a traceback. Said as a notice; the file whole.
    other = tmp_path / "other.db"
    with contextlib.closing(sqlite3.connect(other)) as connection:  # not opened by Repo here
        connection.execute("CREATE TABLE run (id INTEGER)")
    before = other.read_bytes()
    app = ScreenHost(NewSweepScreen(db_url))
    async with app.run_test(size=SIZE) as pilot:
        await type_into(pilot, "layers", "2,4")
        await save_as(pilot, other)
        assert isinstance(app.screen, ConfirmScreen)
        await pilot.press("y")
        await settle(pilot)
        said = [n.message for n in app._notifications]
        assert f"{other}: a SQLite database, not a sweep file; save the sweep elsewhere" in said
        assert isinstance(app.screen, NewSweepScreen)
    assert other.read_bytes() == before


async def test_save_as_through_a_link_to_a_missing_folder_or_a_loop_makes_nothing(
    db_url: str, tmp_path: Path
) -> None:
    # A link to a file in a folder not there (an unmounted share) had that folder made
    # without the question f2 asks of a typed one, and the sweep written into it; a loop
    # of links had its link replaced by a file. Both are refused, naming the link.
    dangling = tmp_path / "shared.yml"
    dangling.symlink_to(tmp_path / "mnt" / "share" / "sweep.yml")
    loop = tmp_path / "loop.yml"
    loop.symlink_to(tmp_path / "loop2.yml")
    (tmp_path / "loop2.yml").symlink_to(loop)
    app = ScreenHost(NewSweepScreen(db_url))
    async with app.run_test(size=SIZE) as pilot:
        await type_into(pilot, "layers", "2,4")
        await save_as(pilot, dangling)
        await save_as(pilot, loop)
        said = [n.message for n in app._notifications]
        assert (
            f"{dangling}: a link to {tmp_path / 'mnt' / 'share' / 'sweep.yml'}, whose folder "
            "does not exist; save the sweep elsewhere" in said
        ), said
        assert f"{loop}: a loop of symbolic links; save the sweep elsewhere" in said, said
        assert isinstance(app.screen, NewSweepScreen)
    assert not (tmp_path / "mnt").exists()
    assert loop.is_symlink() and (tmp_path / "loop2.yml").is_symlink()


async def test_a_single_run_form_saves_a_file_queue_names_as_the_form_does(
    db_url: str, tmp_path: Path
) -> None:
    # T8 loaded, ks1 and ks2 emptied, kernel_size 5: the preview and ctrl+s named the run
    # ks-5, and `queue` of the f2-saved file (kernel_size: 5, no matrix) named it "run".
    t8 = Path(__file__).parents[2] / "experiments" / "t8-kernel-sizes.yml"
    app = ScreenHost(NewSweepScreen(db_url))
    async with app.run_test(size=SIZE) as pilot:
        await load_file(pilot, t8)
        await type_into(pilot, "ks1", "")
        await type_into(pilot, "ks2", "")
        await type_into(pilot, "kernel_size", "5")
        shown = named(form(pilot).preview.runs)
        await save_as(pilot, tmp_path / "saved.yml")
        await pilot.press("ctrl+s")
        await settle(pilot)
    queued = named(Repo.open(db_url).list_runs())
    saved = named(expand_sweep_file(tmp_path / "saved.yml"))
    assert shown == queued == saved and [name for name, _ in saved] == ["ks-5"], (queued, saved)


def plain_file(tmp_path: Path, more: str = "") -> Path:
    """A sweep file of fixed settings only (kernel_size 5, max_inputs 1000), and ``more``:
    queue makes one run of it, named "run"."""
    path = tmp_path / "plain.yml"
    path.write_text("name: plain\nkernel_size: 5\nmax_inputs: 1000\n" + more)
    return path


async def test_a_loaded_plain_file_names_its_run_as_queue_does(db_url: str, tmp_path: Path) -> None:
    # A file of fixed settings only: `queue` names its one run "run", the form queued it as
    # ks-5_max_inputs-1000 (what differs from the defaults), so the same file made two
    # rows of one config under two names. An edit is named by what it changes (ks-7), and
    # f2 saves it so that queue names it the same.
    path = plain_file(tmp_path)
    expected = named(expand_sweep_file(path))
    assert [name for name, _ in expected] == ["run"]
    app = ScreenHost(NewSweepScreen(db_url))
    async with app.run_test(size=SIZE) as pilot:
        await load_file(pilot, path)
        screen = form(pilot)
        assert named(screen.preview.runs) == expected
        await pilot.press("ctrl+s")
        await settle(pilot)
    queued = named(Repo.open(db_url).list_runs())
    assert queued == expected
    app = ScreenHost(NewSweepScreen(db_url, initial_file=str(path)))
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        assert [r.name for r in form(pilot).preview.runs] == ["run"]
        await type_into(pilot, "kernel_size", "7")
        assert [r.name for r in form(pilot).preview.runs] == ["ks-7"]
        await save_as(pilot, tmp_path / "saved.yml")
        await pilot.press("ctrl+s")
        await settle(pilot)
    queued = named(Repo.open(db_url).list_runs())
    saved = named(expand_sweep_file(tmp_path / "saved.yml"))
    assert queued[1:] == saved and [name for name, _ in saved] == ["ks-7"]


async def test_emptied_halves_leave_out_the_include_entries_that_name_them(
    db_url: str, tmp_path: Path
) -> None:
    # T8 (less its targets) over l 3 and 11, an include entry setting ks1/ks2 and one not.
    # Once the halves were emptied, the first entry refused every kernel_size sweep ("sets
    # it as 'ks1/ks2', the form as 'kernel_size'") and no field of the form could drop it.
    path = t8_over_l_3_and_11(
        tmp_path, "include: [{ks1: 3, ks2: 3, batch_size: 32}, {l: 3, lr: 0.001}]"
    )
    assert len(expand_sweep_file(path)) == 50
    app = ScreenHost(NewSweepScreen(db_url))
    async with app.run_test(size=SIZE) as pilot:
        await load_file(pilot, path)
        screen = form(pilot)
        assert len(screen.preview.runs) == 50
        await type_into(pilot, "ks1", "")
        await type_into(pilot, "ks2", "")
        await type_into(pilot, "kernel_size", "3,5")
        preview = screen.preview
        assert preview.errors == {}, preview.errors
        assert [r.name for r in preview.runs] == [
            "l-3_ks-3_lr-0.001", "l-3_ks-5_lr-0.001", "l-11_ks-3", "l-11_ks-5"
        ]  # fmt: skip
        assert [r.config.batch_size for r in preview.runs] == [64] * 4
        notes = str(screen.query_one("#sweep-notes", Static).content)
        assert notes.endswith("! 'include': 1 of 2 entries left out ({ks1: 3, ks2: 3, "
                              "batch_size: 32}): it names ks1 and ks2, which the form no "
                              "longer has (queue refuses them beside its kernel_size "
                              "field)")  # fmt: skip
        question = await replace_then_queue(pilot, path)
        assert question.endswith(
            "leave out: its 'include' entry {ks1: 3, ks2: 3, batch_size: 32})"
        ), question
    assert yaml.safe_load(path.read_text())["include"] == [{"l": 3, "lr": 0.001}]
    queued = sorted(named(Repo.open(db_url).list_runs()))
    assert queued == sorted(named(expand_sweep_file(path)))
    assert len(queued) == 4


def note_lines(pilot: Pilot[Any]) -> list[str]:
    return str(form(pilot).query_one("#sweep-notes", Static).content).splitlines()


EXCLUDE_KEPT = "! 'exclude' ({}) kept: the runs it drops are left out"
INCLUDE_KEPT = "! 'include' ({}) kept: its runs are made as queue makes them"


@pytest.mark.parametrize(
    ("entries", "before", "after"),
    [
        # Every entry gone: the file's exclude is no longer kept at all.
        ("exclude: [{ks1: 3, ks2: 3}, {ks1: 11, ks2: 3}]", EXCLUDE_KEPT.format("2 entries"), []),
        # One of two gone: the other is kept, and the note counts it.
        (
            "exclude: [{ks1: 3, ks2: 3}, {l: 3}]",
            EXCLUDE_KEPT.format("2 entries"),
            [EXCLUDE_KEPT.format("1 entry")],
        ),
        (
            "include: [{ks1: 3, ks2: 3, batch_size: 32}, {l: 3, lr: 0.001}]",
            INCLUDE_KEPT.format("2 entries"),
            [INCLUDE_KEPT.format("1 entry")],
        ),
    ],
)
async def test_the_notes_say_what_of_the_file_is_kept_after_a_fold(
    db_url: str, tmp_path: Path, entries: str, before: str, after: list[str]
) -> None:
    # Emptying ks1 and ks2 left "'exclude' (2 entries) kept: the runs it drops are left
    # out" beside "'exclude' (2 entries) left out: it names ks1 and ks2": both at once.
    path = t8_over_l_3_and_11(tmp_path, entries)
    app = ScreenHost(NewSweepScreen(db_url))
    async with app.run_test(size=SIZE) as pilot:
        await load_file(pilot, path)
        assert before in note_lines(pilot)
        await type_into(pilot, "ks1", "")
        await type_into(pilot, "ks2", "")
        lines = note_lines(pilot)
        assert [line for line in lines if " kept: " in line] == after
        assert " left out" in lines[-1] and lines.count(lines[-1]) == 1


async def in_ks2_of_t8_with_ks1_empty(pilot: Pilot[Any]) -> NewSweepScreen:
    """The form of T8 with ks1 emptied and ks2 focused (its text selected): one key that
    empties ks2 folds the halves into kernel_size, and focus moves there."""
    await load_file(pilot, Path(__file__).parents[2] / "experiments" / "t8-kernel-sizes.yml")
    screen = form(pilot)
    await type_into(pilot, "ks1", "")
    screen.field("ks2").input.focus()
    return screen


async def press_at(pilot: Pilot[Any], key: str, at: float) -> None:
    """``key`` sent as the terminal's driver sends it, stamped ``at`` (Textual's clock):
    a held key's repeats and a person's pauses as they come from a keyboard, where
    Pilot's presses are stamped when sent, each after the last one's work (half a second
    apart on a loaded machine)."""
    event = events.Key(key, None)
    event.time = at
    event.set_sender(pilot.app)
    assert pilot.app._driver is not None
    pilot.app._driver.send_message(event)
    await pilot.pause()


async def test_backspace_held_in_an_emptied_half_leaves_the_folded_field_alone(
    db_url: str,
) -> None:
    # Holding backspace to empty ks2: the fold moved focus into kernel_size mid-burst, and
    # the key's repeats went on there and deleted its 3. A delete after a pause is the
    # person's own, and acts on the field.
    app = ScreenHost(NewSweepScreen(db_url))
    async with app.run_test(size=SIZE) as pilot:
        screen = await in_ks2_of_t8_with_ks1_empty(pilot)
        screen.field("ks2").input.action_end()
        now = monotonic()
        repeats = ["backspace"] * (len(screen.field("ks2").value) + 6) + ["delete"]
        for number, key in enumerate(repeats):  # a repeat every 33 ms, as X11's
            await press_at(pilot, key, now + number * 0.033)
        await settle(pilot)
        assert app.focused is screen.field("kernel_size").input
        assert screen.field("kernel_size").value == "3"
        last = now + (len(repeats) - 1) * 0.033
        await press_at(pilot, "backspace", last + NewSweepScreen.HELD_KEY_GAP_S + 0.1)
        await settle(pilot)
        assert screen.field("kernel_size").value == ""  # the text selected on focus: gone


async def test_backspace_held_from_its_first_press_leaves_the_folded_field_alone(
    db_url: str,
) -> None:
    # ks2's text selected on focus: the key's first press emptied it and folded, and its
    # first repeat came after the keyboard's repeat delay (X11's default: 660 ms), past
    # the 0.5 s a burst's repeats are looked for: it deleted kernel_size's 3.
    assert NewSweepScreen.HELD_KEY_GAP_S < 0.66 < NewSweepScreen.FIRST_REPEAT_S
    app = ScreenHost(NewSweepScreen(db_url))
    async with app.run_test(size=SIZE) as pilot:
        screen = await in_ks2_of_t8_with_ks1_empty(pilot)
        now = monotonic()
        await press_at(pilot, "backspace", now)  # ks2's text, selected on focus: gone
        await settle(pilot)
        assert app.focused is screen.field("kernel_size").input
        await press_at(pilot, "backspace", now + 0.66)  # the repeat delay
        await press_at(pilot, "backspace", now + 0.69)  # the repeats
        await settle(pilot)
        assert screen.field("kernel_size").value == "3"
        # A pause between repeats ends the burst: the next is the person's own.
        await press_at(pilot, "backspace", now + 0.69 + NewSweepScreen.HELD_KEY_GAP_S + 0.1)
        await settle(pilot)
        assert screen.field("kernel_size").value == ""


@pytest.mark.parametrize(
    ("stored", "shown"), [("l-3\x1b[31mred\x07", "l-3[31mred"), ("\x1b\u202e", "run")]
)
async def test_a_duplicate_of_a_run_whose_name_holds_control_characters(
    db_url: str, stored: str, shown: str
) -> None:
    # A database edited by hand (UPDATE run SET name = 'l-3' || char(27) || ...): d put
    # the raw name into the preview, and ctrl+s under another experiment queued a row
    # named with the ESC and BEL. The form has it without them, and a notice says so.
    original = hand_edited_run(db_url, "name", stored)
    app = ScreenHost(NewSweepScreen(db_url, base_run=original))
    async with app.run_test(size=SIZE, notifications=True) as pilot:
        await settle(pilot)
        assert [run.name for run in form(pilot).preview.runs] == [shown]
        (notice,) = [n.message for n in app._notifications]
        assert notice.startswith(f"run {original.id}'s name '") and f"'{shown}'" in notice
        assert not any(char in notice for char in "\x1b\x07\u202e"), notice
        await type_into(pilot, "name", "other")
        await pilot.press("ctrl+s")
        await settle(pilot)
    assert app.result == 1
    copy = Repo.open(db_url).list_runs()[1]
    assert (copy.experiment, copy.name, copy.config) == ("other", shown, original.config)


@pytest.mark.parametrize(("key", "text"), [("kernel_size", "5,7"), ("seed", "0,1")])
async def test_a_loaded_plain_file_swept_by_the_form_names_its_runs_as_queue_does(
    db_url: str, tmp_path: Path, key: str, text: str
) -> None:
    # The plain file's run named the form's runs even once they were a matrix: its own
    # config was "run" beside kernel_size-7 (seed-1), where queue of the f2-saved file
    # names it kernel_size-5 (seed-0), so the form queued one config under a name no
    # file of it makes.
    path = plain_file(tmp_path)
    app = ScreenHost(NewSweepScreen(db_url))
    async with app.run_test(size=SIZE) as pilot:
        await load_file(pilot, path)
        await type_into(pilot, key, text)
        shown = named(form(pilot).preview.runs)
        await save_as(pilot, tmp_path / "saved.yml")
        await pilot.press("ctrl+s")
        await settle(pilot)
    queued = named(Repo.open(db_url).list_runs())
    saved = named(expand_sweep_file(tmp_path / "saved.yml"))
    assert shown == queued == saved and len(saved) == 2, (shown, saved)
    assert "run" not in [name for name, _ in saved]


async def test_a_loaded_plain_file_with_targets_given_another_seed_saves_its_name(
    db_url: str, tmp_path: Path
) -> None:
    # A plain file's targets: given seed 1, the form's run is seed-1 with the file's
    # figure (another seed of its cell), but f2 wrote no one-cell matrix beside targets,
    # so queue named the saved file's run "run".
    path = plain_file(tmp_path, "targets:\n- {validation_loss: 0.05}\n")
    app = ScreenHost(NewSweepScreen(db_url))
    async with app.run_test(size=SIZE) as pilot:
        await load_file(pilot, path)
        await type_into(pilot, "seed", "1")
        shown = named(form(pilot).preview.runs, target=True)
        await save_as(pilot, tmp_path / "saved.yml")
        await pilot.press("ctrl+s")
        await settle(pilot)
    queued = named(Repo.open(db_url).list_runs(), target=True)
    saved = named(expand_sweep_file(tmp_path / "saved.yml"), target=True)
    assert shown == queued == saved, (shown, saved)
    assert saved[0][0] == "seed-1" and saved[0][2] == {"validation_loss": 0.05}


async def test_the_last_include_entries_left_out_by_the_other_pair_are_named(
    db_url: str, tmp_path: Path
) -> None:
    # Both pairs' halves emptied, one after the other: the second pair's entries were the
    # last of the include, and the note and f2's question said "its 'include' (1 entry)",
    # as if that were the file's whole include, which held 2.
    path = tmp_path / "pairs.yml"
    path.write_text(
        "name: pairs\nlayers: 3\nmax_inputs: 1000\n"
        "matrix: {ks1: [3, 5], ks2: [3], ch1: [8], ch2: [8, 16]}\n"
        "include: [{ks1: 3, ks2: 3, batch_size: 32}, {ch1: 8, ch2: 16, lr: 0.001}]\n"
    )
    app = ScreenHost(NewSweepScreen(db_url))
    async with app.run_test(size=SIZE) as pilot:
        await load_file(pilot, path)
        screen = form(pilot)
        for half in ("ks1", "ks2", "ch1", "ch2"):
            await type_into(pilot, half, "")
        notes = str(screen.query_one("#sweep-notes", Static).content)
        assert notes.endswith("! 'include': the last entry left out ({ch1: 8, ch2: 16, lr: "
                              "0.001}): it names ch1 and ch2, which the form no longer has "
                              "(queue refuses them beside its channels field)")  # fmt: skip
        question = await replace_then_queue(pilot, path)
        assert question.endswith(
            "leave out: its 'include' entry {ks1: 3, ks2: 3, batch_size: 32}, its 'include' "
            "entry {ch1: 8, ch2: 16, lr: 0.001})"
        ), question
    assert "include" not in yaml.safe_load(path.read_text())
    queued = sorted(named(Repo.open(db_url).list_runs()))
    assert queued == sorted(named(expand_sweep_file(path))) and len(queued) == 1


async def test_a_duplicate_names_and_sweeps_only_what_varies(db_url: str) -> None:
    # A one-run form's run is named by what differs from the defaults; `d` on it with an
    # lr sweep named its runs l-3_ch-8_max_inputs-640_lr-0.001 (its swept keys, though
    # every run of the experiment has them alike), and results showed them as columns.
    from core.queue.views import results_table
    from resconv_tui.sweep_form import default_texts, preview

    solo = preview("solo", {**default_texts(), "layers": "3", "channels": "8",
                            "max_inputs": "640"})  # fmt: skip
    repo = Repo.open(db_url)
    repo.enqueue([NewRun.from_expanded(run) for run in solo.runs])
    (base,) = repo.list_runs()
    assert base.name == "l-3_ch-8_max_inputs-640"
    app = ScreenHost(NewSweepScreen(db_url, base_run=base))
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await type_into(pilot, "lr", "1e-3,3e-3")
        assert [run.name for run in form(pilot).preview.runs] == ["lr-0.001", "lr-0.003"]
        await pilot.press("ctrl+s")
        await settle(pilot)
    copies = repo.list_runs()[1:]
    assert [(run.name, run.swept) for run in copies] == [
        ("lr-0.001", {"lr": 0.001}), ("lr-0.003", {"lr": 0.003}),
    ]  # fmt: skip
    assert "ch" not in results_table(copies).columns
    assert "max_inputs" not in results_table(copies).columns
    # Duplicated again, a key the experiment now varies is named, as its sweep names it.
    app = ScreenHost(NewSweepScreen(db_url, base_run=copies[0]))
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await type_into(pilot, "seed", "1")
        assert [run.name for run in form(pilot).preview.runs] == ["lr-0.001_seed-1"]


@pytest.mark.parametrize("kernel_size", ["3", "3,4"])  # a valid preview; one with a reason
async def test_a_preview_that_arrives_as_the_form_closes_is_dropped(
    db_url: str, kernel_size: str
) -> None:
    """The preview thread hands its result to the UI thread (``_apply_if_latest``); one
    that came while ctrl+s or esc closed the form found it half removed, children before
    their parents: the preview without its summary, and NoMatches printed a traceback
    (twice in ~14 runs of the hostile-text test). Each turn of the loop while the form is
    removed is such a moment: none may raise."""
    import asyncio

    screen = NewSweepScreen(db_url)
    app = ScreenHost(screen)
    async with app.run_test(size=SIZE) as pilot:
        await type_into(pilot, "kernel_size", kernel_size)
        screen.field("kernel_size").input.focus()  # a reason shown scrolls into sight
        await settle(pilot)
        late = screen.compute_preview()
        assert late.ok == (kernel_size == "3")
        screen.dismiss(None)  # as ctrl+s does once queued, and esc
        raised: list[str] = []
        for _ in range(1000):
            if not screen.is_attached:
                break
            try:
                screen._apply_if_latest(screen._asked, late)
            except Exception as exc:  # a traceback, in the preview's thread
                raised.append(repr(exc))
            await asyncio.sleep(0)
        assert not screen.is_attached and raised == []
        await settle(pilot)
        assert app.result is None


async def test_runs_queued_after_the_form_was_left_are_said_and_nothing_else_closes(
    db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """ctrl+s, then esc while the write waited (another process's lock: up to the 15 s
    busy timeout): the runs were queued, but the thread reached the app through the form,
    gone by then (NoActiveAppError, lost with the cancelled worker): nothing said. Had it
    reached ``queued``, dismissing the form again popped the screen under it (the runs
    screen in the dashboard)."""
    may_write, waiting, _ = slow_writes(monkeypatch)
    screen = NewSweepScreen(db_url)
    app = ScreenHost(screen)
    async with app.run_test(size=SIZE, notifications=True) as pilot:
        await type_into(pilot, "name", "late")
        await type_into(pilot, "max_inputs", "256")
        await pilot.press("ctrl+s")
        assert await eventually(pilot, waiting.is_set)
        await pilot.press("escape", "y")  # unsaved edits: it asks first
        assert await eventually(pilot, lambda: not screen.is_attached)
        under = Screen[None]()  # as the runs screen is in the dashboard, under the form
        await app.push_screen(under)
        may_write.set()
        said = [n.message for n in app._notifications]
        assert await eventually(
            pilot, lambda: "queued 1 run" in [n.message for n in app._notifications]
        ), said
        await pilot.pause()
        assert app.screen is under and app.result is None and app.return_code is None
    assert [r.experiment for r in Repo.open(db_url).list_runs()] == ["late"]


def slow_writes(monkeypatch: pytest.MonkeyPatch) -> tuple[Any, Any, list[int]]:
    """Repo.enqueue held until ``may_write`` is set, ``waiting`` set once one waits; the
    list counts the writes started."""
    import threading

    may_write, waiting = threading.Event(), threading.Event()
    real_enqueue = Repo.enqueue
    started: list[int] = []

    def slow_enqueue(self: Repo, *args: Any, **kwargs: Any) -> Any:
        started.append(1)
        waiting.set()
        may_write.wait(60)
        return real_enqueue(self, *args, **kwargs)

    monkeypatch.setattr(Repo, "enqueue", slow_enqueue)
    return may_write, waiting, started


def answers_counted(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """One entry for each write's result handed to the form (``queued``)."""
    answered: list[int] = []
    real_queued = NewSweepScreen.queued

    def queued(self: NewSweepScreen, result: Any) -> None:
        answered.append(1)
        real_queued(self, result)

    monkeypatch.setattr(NewSweepScreen, "queued", queued)
    return answered


async def test_a_second_ctrl_s_while_the_first_write_waits_starts_no_second_write(
    db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """ctrl+s pressed again while the first write waited (another process's lock): two
    writes raced for the lock, and the one that found the runs queued by the other said
    "nothing new to queue … (change a field, … or esc to leave)", over the form or over
    the screen under it once the other had closed it, as if none had been queued."""
    may_write, waiting, started = slow_writes(monkeypatch)
    screen = NewSweepScreen(db_url)
    app = ScreenHost(screen)
    async with app.run_test(size=SIZE, notifications=True) as pilot:
        await type_into(pilot, "name", "twice")
        await type_into(pilot, "max_inputs", "256")
        await pilot.press("ctrl+s")
        assert await eventually(pilot, waiting.is_set)
        await pilot.press("ctrl+s")  # nothing seemed to happen: pressed again
        await pilot.pause()
        may_write.set()
        assert await eventually(pilot, lambda: not screen.is_attached)
        await pilot.pause(0.2)  # a second write, had one started, answers too
        said = [n.message for n in app._notifications]
        assert said == ["still queueing: the runs are said once written", "queued 1 run"]
        assert started == [1]
    assert [r.experiment for r in Repo.open(db_url).list_runs()] == ["twice"]


async def test_a_write_that_queued_nothing_after_the_form_was_left_says_nothing(
    db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """ctrl+s on runs already queued (by another process meanwhile), then esc while the
    write waited: "nothing new to queue … (change a field, e.g. seed, or esc to leave)"
    came over the screen under the form, which had been left."""
    real_enqueue = Repo.enqueue
    may_write, waiting, started = slow_writes(monkeypatch)
    answered = answers_counted(monkeypatch)
    screen = NewSweepScreen(db_url)
    app = ScreenHost(screen)
    async with app.run_test(size=SIZE, notifications=True) as pilot:
        await type_into(pilot, "name", "again")
        await type_into(pilot, "max_inputs", "256")
        await settle(pilot)
        repo = Repo.open(db_url)
        real_enqueue(repo, [NewRun.from_expanded(run) for run in screen.preview.runs])
        repo.close()
        await pilot.press("ctrl+s")
        assert await eventually(pilot, waiting.is_set)
        await pilot.press("escape", "y")  # unsaved edits: it asks first
        assert await eventually(pilot, lambda: not screen.is_attached)
        under = Screen[None]()  # as the runs screen is in the dashboard, under the form
        await app.push_screen(under)
        may_write.set()
        assert await eventually(pilot, lambda: answered == [1])
        await pilot.pause(0.2)
        assert [n.message for n in app._notifications] == []
        assert app.screen is under and started == [1]


QUIT_NOTICE = ("still queueing sweep 'late': waiting for the database; the dashboard quits "
               "once the runs are written or the write fails")  # fmt: skip


async def quit_ended(app: Any, timeout: float = 10.0) -> bool:
    """Whether the app has stopped running within ``timeout`` (the pilot cannot pause a
    stopped app: asked of the loop instead)."""
    import asyncio

    for _ in range(int(timeout / 0.05)):
        if not app.is_running:
            return True
        await asyncio.sleep(0.05)
    return not app.is_running


async def test_quitting_while_ctrl_s_waits_for_the_database_says_so_and_tells_the_shell(
    db_url: str, app_factory: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """q while ctrl+s's write waited (another process's lock: up to the 15 s busy
    timeout) asked "Quit? The form's changes are neither queued nor saved", then closed
    the screen and left the shell waiting for the write with nothing said, and what
    became of the runs unsaid. The quit now waits for the write on screen, saying so,
    and quits with a line for the shell."""
    from resconv_tui.sweep_writes import ExitNote

    may_write, waiting, started = slow_writes(monkeypatch)
    app = app_factory()
    async with app.run_test(size=SIZE, notifications=True) as pilot:
        await pilot.press("n")
        await settle(pilot)
        await type_into(pilot, "name", "late")
        await type_into(pilot, "max_inputs", "256")
        await pilot.press("ctrl+s")
        assert await eventually(pilot, waiting.is_set)
        form(pilot).query_one(Button).focus()  # the form's Inputs take the letter
        await pilot.press("q")  # the fields are being queued: nothing to ask
        shown = await drawn(pilot, "still queueing sweep 'late'")
        assert "still queueing sweep 'late'" in shown
        assert QUIT_NOTICE in [n.message for n in app._notifications]
        assert not isinstance(app.screen, ConfirmScreen)
        await pilot.pause(0.3)
        assert app.is_running  # it waits for the write
        may_write.set()
        assert await quit_ended(app)
    repo = Repo.open(db_url)
    (run,) = repo.list_runs()
    repo.close()
    assert app.return_value == (ExitNote(f"queued sweep 'late': 1 run (run {run.id})"),)
    assert started == [1]


async def test_quitting_the_runs_screen_while_a_left_forms_write_fails_tells_the_shell(
    db_url: str, app_factory: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The form left (esc) while its write waited on another process's lock, then q on
    the runs screen: the quit waits for the write there too, and the shell gets its
    error (on stderr, ``commands.dashboard.said_on_exit``); nothing is written."""
    from core.queue import db as db_module

    monkeypatch.setattr(db_module, "DEFAULT_BUSY_TIMEOUT_S", 1.0)
    may_write, waiting, _ = slow_writes(monkeypatch)
    app = app_factory()
    async with app.run_test(size=SIZE, notifications=True) as pilot:
        await pilot.press("n")
        await settle(pilot)
        await type_into(pilot, "name", "late")
        await type_into(pilot, "max_inputs", "256")
        await pilot.press("ctrl+s")
        assert await eventually(pilot, waiting.is_set)
        await pilot.press("escape", "y")  # unsaved edits: it asks first
        assert await eventually(pilot, lambda: not isinstance(app.screen, NewSweepScreen))
        await pilot.press("q")
        shown = await drawn(pilot, "still queueing sweep 'late'")
        assert "still queueing sweep 'late'" in shown
        assert QUIT_NOTICE in [n.message for n in app._notifications]
        with write_lock_held(tmp_path / "runs.db"):
            may_write.set()  # the write meets the lock and fails at the busy timeout
            assert await quit_ended(app)
    (note,) = app.return_value
    assert note.failed and note.text.startswith("sweep 'late' not queued: ")
    assert "locked" in note.text
    repo = Repo.open(db_url)
    assert repo.list_runs() == []
    repo.close()
