"""A worker row edited by hand into what no version writes (SQLite takes text in its
pid column): the dashboard shows every run and the other workers, and names that row
with its repair in the workers panel. Raised, the poll failed and nothing was shown."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

from screen_host import drawn

from core.queue import Repo
from resconv_tui.widgets.run_table import RunTable
from resconv_tui.widgets.workers_panel import WorkersPanel

SIZE = (160, 36)  # the panel's line naming the row whole


async def test_the_dashboard_names_a_damaged_worker_row_and_shows_the_rest(
    seeded: dict[str, Any], app_factory: Any, settle: Any, db_url: str, tmp_path: Path
) -> None:
    repo = Repo.open(db_url)
    ghost = repo.register_worker("ghost-box", 5555, "cuda:2")
    repo.close()
    with sqlite3.connect(tmp_path / "runs.db") as conn:  # as an SQL client's UPDATE stores it
        conn.execute("UPDATE worker SET pid = 'abc' WHERE id = ?", (ghost,))
    app = app_factory()
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        # The read is drawn (the panel names the row) before what it must not show.
        named = f"worker {ghost}'s row is damaged"
        shown = await drawn(pilot, named)
        assert named in shown and "unreadable" not in shown and "damaged since" not in shown
        table = app.screen.query_one(RunTable)
        assert table.row_count == len(seeded["ids"])
        panel = app.screen.query_one(WorkersPanel)
        assert {w.pid for w in panel.rows} == {1111, 2222}  # the seeded ones, ghost left out
        lines = str(panel.render()).splitlines()
        assert lines[0] == (  # first: the panel shows its top lines only
            f"⚠ worker {ghost}'s row is damaged (its pid is 'abc', not a whole number): put "
            "its value back, or delete the row with an SQL client; the rest is shown without it"
        )


async def test_damaged_worker_rows_take_one_line_of_the_panel_at_80x24(
    seeded: dict[str, Any], app_factory: Any, settle: Any, db_url: str, tmp_path: Path
) -> None:
    # A line each: the panel shows its top five lines, and four damaged rows (an
    # UPDATE without its WHERE, say) hid the live workers under them at 80x24.
    repo = Repo.open(db_url)
    ghosts = [repo.register_worker("ghost-box", 5550 + i, "cpu") for i in range(4)]
    repo.close()
    with sqlite3.connect(tmp_path / "runs.db") as conn:  # as an SQL client's UPDATE stores it
        conn.execute("UPDATE worker SET pid = 'abc' WHERE host = 'ghost-box'")
    app = app_factory()
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        shown = await drawn(pilot, "cuda:0")
        assert "gpu-box" in shown and "cuda:0" in shown  # the seeded workers, on screen
        panel = app.screen.query_one(WorkersPanel)
        lines = str(panel.render()).splitlines()
        assert len(lines) == 3  # one line for the damaged rows, one per seeded worker
        assert lines[0].startswith("⚠ 4 worker rows are damaged (resconv-tui status names ")
        assert any(ghost in lines[0] for ghost in ghosts)
