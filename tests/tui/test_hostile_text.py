"""Text the user or the machine wrote is shown as written, never read as markup.

An experiment named ``oops [/] x`` stopped the dashboard at its first frame
("MarkupError: auto closing tag ('[/]') has nothing to close"); so would an error
message holding ``[/]``, or ``[bold]`` have styled what followed it.
"""

from __future__ import annotations

import sqlite3
from typing import Any

import pytest
from screen_host import drawn
from seed_runs import new_run

from core.queue import FinalFigures, Repo, RunRow
from resconv_tui.screens.compare import CompareScreen
from resconv_tui.screens.confirm import ConfirmScreen
from resconv_tui.screens.new_sweep import NewSweepScreen
from resconv_tui.screens.results import ResultsScreen
from resconv_tui.screens.run_detail import RunDetailScreen
from resconv_tui.widgets.run_table import RunTable

EXPERIMENT = "oops [/] x [bold]y"
ERROR = "RuntimeError: bad [/] shape [64, 1]"
HOST = "box[/]"


@pytest.fixture
def hostile(db_url: str) -> dict[str, int]:
    repo = Repo.open(db_url)
    done, failed, waiting = repo.enqueue(
        [new_run(layers, experiment=EXPERIMENT) for layers in (1, 2, 3)]
    ).added_ids
    worker = repo.register_worker(HOST, 99, "cpu")
    assert repo.claim(worker) is not None
    repo.finish(done, worker, FinalFigures(0.1, train_seconds=3.0, inputs_per_s=100.0))
    assert repo.claim(worker) is not None
    repo.fail(failed, worker, ERROR)
    repo.close()
    return {"done": done, "failed": failed, "waiting": waiting}


async def test_every_screen_shows_hostile_names_and_errors_as_written(
    app_factory: Any, settle: Any, hostile: dict[str, int]
) -> None:
    app = app_factory()
    async with app.run_test(size=(160, 40), notifications=True) as pilot:
        await settle(pilot)
        assert EXPERIMENT in await drawn(pilot, EXPERIMENT)  # the runs table
        await pilot.press("F")  # the experiment filter, said in the summary line
        await settle(pilot)
        assert f"exp={EXPERIMENT}" in await drawn(pilot, f"exp={EXPERIMENT}")
        table = app.screen.query_one("#runs-table")
        table.move_cursor(row=table.get_row_index(str(hostile["failed"])))
        await settle(pilot)
        under = "bad [/] shape [64, 1]"
        assert under in await drawn(pilot, under)  # the line under the table
        await pilot.press("enter")
        await settle(pilot)
        assert isinstance(app.screen, RunDetailScreen)
        shown = await drawn(pilot, ERROR)
        assert EXPERIMENT in shown and ERROR in shown  # title and error box
        await pilot.press("escape", "space", "down", "space", "C")
        await settle(pilot)
        assert isinstance(app.screen, CompareScreen)
        assert f"({EXPERIMENT}, " in await drawn(pilot, f"({EXPERIMENT}, ")  # the legend
        await pilot.press("escape", "R")
        await settle(pilot)
        assert isinstance(app.screen, ResultsScreen)
        await pilot.press("f")  # one experiment: named in the status line
        await settle(pilot)
        assert EXPERIMENT in await drawn(pilot, f" · {EXPERIMENT} · ")  # the status line
        await pilot.press("escape", "d")  # a new sweep from the highlighted run: its name
        await settle(pilot)
        form = app.screen
        assert isinstance(form, NewSweepScreen) and form.field("name").value == EXPERIMENT
        form.field("layers").value = "[/]"  # no number: the field's reason repeats it
        assert "[/]" in await drawn(pilot, "layers: ")
        await pilot.press("ctrl+s")  # refused, and the notification says why, value and all
        await settle(pilot)
        assert "[/]" in said(app)[-1] and "Fix the form" in await drawn(pilot, "Fix the form")
        form.field("layers").value = "4"
        await pilot.press("ctrl+s")  # queued under that name
        await settle(pilot)
        assert not form.is_attached and said(app)[-1] == "queued 1 run"
        assert EXPERIMENT in await drawn(pilot, "queued 1 run")


def said(app: Any) -> list[str]:
    """The notifications' messages, oldest first."""
    return [note.message for note in app._notifications]


def test_the_command_line_prints_hostile_names_as_written(
    db_url: str, hostile: dict[str, int], capsys: pytest.CaptureFixture[str]
) -> None:
    from resconv_tui.cli import main

    said = {"ls": EXPERIMENT, "status": "bad [/] shape", "results": "|   1 |"}
    for command, text in said.items():
        assert main([command, "--db", db_url]) == 0
        assert text in capsys.readouterr().out, command


def test_the_command_line_escapes_what_a_terminal_would_act_on(
    db_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    # A database of an older version or edited by hand, or an error text naming a file,
    # holds control characters: `ls`, `status`, `show` and `compare` printed them raw, a
    # carriage return overwriting the start of the line and ESC [2J clearing the screen.
    from resconv_tui.cli import main

    repo = Repo.open(db_url)
    done, failed = repo.enqueue([new_run(layers) for layers in (1, 2)]).added_ids
    worker = repo.register_worker("box", 99, "cpu")
    assert repo.claim(worker) is not None
    repo.finish(done, worker, FinalFigures(0.1, train_seconds=3.0, inputs_per_s=100.0,
                                           checkpoint_path="/ck/a\x1b]0;t\x07/run-1"))  # fmt: skip
    assert repo.claim(worker) is not None
    repo.fail(failed, worker, "OSError: cannot open '/data/a\rEVIL\x1b[2J\b'")
    repo.close()
    with sqlite3.connect(db_url.removeprefix("sqlite:///")) as conn:  # as an older one wrote
        conn.execute("UPDATE run SET experiment = 'exp\rX', name = name || '\x1b[31m'")
    conn.close()
    error = "OSError: cannot open '/data/a\\rEVIL\\x1b[2J\\x08'"
    said = {
        ("ls",): ["exp\\rX/l-1\\x1b[31m", error],
        ("status",): [f"#{failed} exp\\rX/l-2\\x1b[31m [error]: {error}"],
        ("show", str(failed)): ["(exp\\rX)", f"error  {error}"],
        ("show", str(done)): ["checkpoint /ck/a\\x1b]0;t\\x07/run-1"],
        ("compare", str(done), str(failed)): ["exp\\\\rX", "l-1\\\\x1b[31m"],
    }
    for command, texts in said.items():
        assert main([*command, "--db", db_url]) == 0
        out = capsys.readouterr().out
        for text in texts:
            assert text in out, (command, text)
        assert not set(out) & set("\r\x1b\b\x07"), command
    assert main(["show", str(failed), "--follow", "--db", db_url]) == 1  # it failed
    out = capsys.readouterr().out
    assert f"error  {error}" in out and not set(out) & set("\r\x1b\b\x07")


# A database of an older version, or edited by hand with sqlite3: what a terminal acts on
# in names, an error, a worker's host and id, and folders.
ESC_EXPERIMENT = "exp\x1b[31mred"
ESC_ERROR = "OSError: x\x1b[2Jy"
ESC_HOST = "box\x1b[31mred"
ACTED_ON = set("\x1b\r\b\x07")


@pytest.fixture
def hand_edited(db_url: str) -> dict[str, int]:
    repo = Repo.open(db_url)
    done, failed, queued = repo.enqueue(
        [new_run(layers, experiment="exp") for layers in (1, 2, 3)]
    ).added_ids
    (plain,) = repo.enqueue([new_run(4, experiment="plain")]).added_ids
    worker = repo.register_worker("box", 99, "cpu")
    assert repo.claim(worker) is not None
    repo.finish(done, worker, FinalFigures(0.1, train_seconds=3.0, inputs_per_s=100.0))
    assert repo.claim(worker) is not None
    repo.fail(failed, worker, "OSError: x")
    repo.close()
    with sqlite3.connect(db_url.removeprefix("sqlite:///")) as conn:  # as a hand edit would
        conn.execute("UPDATE run SET experiment = ?, name = name || '\r\b' "
                     "WHERE experiment = 'exp'", (ESC_EXPERIMENT,))  # fmt: skip
        conn.execute("UPDATE run SET error = ? WHERE id = ?", (ESC_ERROR, failed))
        conn.execute("UPDATE run SET checkpoint_path = '/ck/a\x1b]0;t\x07/run-1', "
                     "path_used = 'eager\x1b[1m' WHERE id = ?", (done,))  # fmt: skip
        conn.execute("UPDATE run SET worker_id = ? WHERE worker_id IS NOT NULL",
                     (f"{ESC_HOST}-99-beef",))  # fmt: skip
        conn.execute("UPDATE worker SET id = ?, host = ?", (f"{ESC_HOST}-99-beef", ESC_HOST))
    conn.close()
    return {"done": done, "failed": failed, "queued": queued, "plain": plain}


def escaped(text: str) -> str:
    return text.encode("unicode_escape").decode("ascii")


async def test_the_dashboard_escapes_what_a_terminal_would_act_on(
    app_factory: Any, settle: Any, hand_edited: dict[str, int]
) -> None:
    # Textual drops \r, \b and BEL (names then ran together) but sent ESC to the terminal:
    # an error holding ESC [2J cleared the screen. Each view shows them as escapes, as
    # the command line (core.errors.terminal_safe) writes them.
    app = app_factory()
    exp = escaped(ESC_EXPERIMENT)  # exp\x1b[31mred
    async with app.run_test(size=(200, 50), notifications=True) as pilot:
        await settle(pilot)
        shown = await drawn(pilot, exp)
        assert "l-1\\r\\x08" in shown and exp in shown  # the runs table
        assert escaped(ESC_HOST)[:16] in shown  # the workers panel (its host, cut to 16)
        assert not set(shown) & ACTED_ON
        table = app.screen.query_one("#runs-table")
        table.move_cursor(row=table.get_row_index(str(hand_edited["failed"])))
        await settle(pilot)
        shown = await drawn(pilot, escaped(ESC_ERROR))
        assert escaped(ESC_ERROR) in shown and not set(shown) & ACTED_ON  # line under it
        titles = [c.title for c in app.screen.palette_commands()]
        assert f"Filter experiment: {exp}" in titles  # the experiment filter list
        await pilot.press("F")  # the experiment filter: the stored name, said escaped
        await settle(pilot)
        shown = await drawn(pilot, f"exp={exp}")
        assert f"exp={exp}" in shown and not set(shown) & ACTED_ON
        assert app.screen.filters.experiment == ESC_EXPERIMENT
        rows = {int(str(key.value)) for key in table.rows}
        assert rows == {hand_edited["done"], hand_edited["failed"], hand_edited["queued"]}
        await pilot.press("enter")  # the failed run's detail
        await settle(pilot)
        assert isinstance(app.screen, RunDetailScreen)
        shown = await drawn(pilot, escaped(ESC_ERROR))
        assert f"({exp})" in shown and escaped(ESC_ERROR) in shown  # title and error
        assert escaped(ESC_HOST) in shown.replace("\n", "")  # its worker, folded maybe
        assert not set(shown) & ACTED_ON
        await pilot.press("escape")
        await settle(pilot)
        table.move_cursor(row=table.get_row_index(str(hand_edited["done"])))
        await pilot.press("enter")
        await settle(pilot)
        shown = await drawn(pilot, "eager\\x1b[1m")
        assert "eager\\x1b[1m" in shown and "/ck/a\\x1b]0;t\\x07/run-1" in shown
        assert not set(shown) & ACTED_ON
        await pilot.press("escape", "space", "down", "space", "C")
        await settle(pilot)
        assert isinstance(app.screen, CompareScreen)
        shown = await drawn(pilot, f"({exp}, ")
        assert f"({exp}, " in shown and not set(shown) & ACTED_ON  # the legend
        await pilot.press("escape", "x")  # remove: the question names its folder
        await settle(pilot)
        shown = await drawn(pilot, "not found on this host")  # a made-up /ck folder
        assert isinstance(app.screen, ConfirmScreen)
        assert "/ck/a\\x1b]0;t\\x07/run-1" in shown and not set(shown) & ACTED_ON
        await pilot.press("n", "R")
        await settle(pilot)
        assert isinstance(app.screen, ResultsScreen)
        await pilot.press("f")
        await settle(pilot)
        shown = await drawn(pilot, f" · {exp} · ")  # the status line names it
        assert exp in shown and not set(shown) & ACTED_ON
        app.notify(f"run 1 · {ESC_EXPERIMENT}")  # every notice, whoever words it
        await pilot.pause()
        assert said(app)[-1] == f"run 1 · {exp}"


ORDINARY = ("plain-ascii_1", "ü 実験", "👩\u200d🔬 lab", "می\u200cخواهم")


async def test_ordinary_names_show_as_they_are(app_factory: Any, settle: Any, db_url: str) -> None:
    repo = Repo.open(db_url)
    ids = repo.enqueue([new_run(1, experiment=name) for name in ORDINARY]).added_ids
    rows = {run.id: run for run in repo.list_runs()}
    repo.close()
    for run in rows.values():  # the very row: the table reuses its cells while it is
        assert run.terminal_safe() is run
    app = app_factory()
    async with app.run_test(size=(160, 40)) as pilot:
        await settle(pilot)
        table = app.screen.query_one("#runs-table")
        for run_id, name in zip(ids, ORDINARY, strict=True):
            cell = table.get_cell(str(run_id), "experiment")
            assert cell.plain == name
        titles = [c.title for c in app.screen.palette_commands()]
        assert all(f"Filter experiment: {name}" in titles for name in ORDINARY)


async def test_a_poll_escapes_only_the_rows_it_has_not_seen(
    app_factory: Any, settle: Any, hand_edited: dict[str, int], monkeypatch: pytest.MonkeyPatch
) -> None:
    # The runs table escaped every row at each poll (RunRow.terminal_safe: 2 to 10 ms for
    # 2,000 runs here), and a row that needs escaping came back a new copy each time, so
    # its cells were made again at every poll. Rows the poll hands back unchanged (the
    # very object) are escaped once, and their cells kept.
    escaped_ids: list[int] = []
    made_ids: list[int] = []
    escape, cells = RunRow.terminal_safe, RunTable.cells

    def counted_escape(run: RunRow) -> RunRow:
        escaped_ids.append(run.id)
        return escape(run)

    def counted_cells(table: RunTable, run: RunRow, now: float, marked: bool) -> Any:
        made_ids.append(run.id)
        return cells(table, run, now, marked)

    monkeypatch.setattr(RunRow, "terminal_safe", counted_escape)
    monkeypatch.setattr(RunTable, "cells", counted_cells)
    app = app_factory()
    async with app.run_test(size=(200, 50)) as pilot:
        await settle(pilot)
        table = app.screen.query_one(RunTable)
        assert {int(str(key.value)) for key in table.rows} == set(hand_edited.values())
        escaped_ids.clear()
        made_ids.clear()
        app.screen.refresh_now()
        await settle(pilot)
        # (The line under the table escapes the highlighted run as it draws it.)
        others = set(hand_edited.values()) - {table.highlighted_id}
        assert not others & set(escaped_ids), escaped_ids
        assert made_ids == [], made_ids  # every row's cells kept, the escaped ones too
        cell = table.get_cell(str(hand_edited["failed"]), "experiment")
        assert cell.plain == escaped(ESC_EXPERIMENT)
