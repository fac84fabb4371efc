"""A database the dashboard cannot read for a while (PostgreSQL down, a SQLite file
locked or gone): the last rows stay on screen, but it says plainly that they are not
live, since when and why, and says so again when the database is back."""

from __future__ import annotations

import time
from typing import Any

import pytest
from conftest import NOW
from screen_host import drawn, drawn_among, region_lines

import resconv_tui.screens.runs as runs_module
from core.queue.db import describe
from core.queue.errors import QueueError
from resconv_tui.widgets.run_table import RunTable
from resconv_tui.widgets.workers_panel import WorkersPanel


def clock_time(at: float) -> str:
    return time.strftime("%H:%M:%S", time.localtime(at))


def notifications(app: Any) -> list[str]:
    return [n.message for n in app._notifications]


async def test_an_outage_is_said_above_the_last_rows_and_its_end_too(
    seeded, app_factory, settle, db_url, monkeypatch: pytest.MonkeyPatch
) -> None:
    app = app_factory()
    now = [NOW]
    app.ctx.clock = lambda: now[0]
    # The driver's message names the database first: a PostgreSQL URL fills an
    # 80-column line before the reason comes.
    where = describe(db_url)
    reason = "connection failed: server closed the connection unexpectedly"

    def down(*args: Any, **kwargs: Any) -> Any:
        raise QueueError(f"database {where}: {reason}")

    read_dashboard = runs_module.read_dashboard
    async with app.run_test(size=(80, 24), notifications=True) as pilot:
        await settle(pilot)
        screen = app.screen
        table = screen.query_one(RunTable)
        rows = table.row_count
        assert rows == len(seeded["ids"])
        monkeypatch.setattr(runs_module, "read_dashboard", down)
        for later in (5, 40):  # down from the poll 5 s after the last read, 35 s on
            now[0] = NOW + later
            screen.refresh_now()
            await settle(pilot)
        assert "database unreachable since" in await drawn(pilot, "database unreachable since")
        banner = screen.query_one("#runs-unreachable")
        assert "(35 s)" in await drawn_among(pilot, banner, "(35 s)")  # the second poll's
        lines = region_lines(app, banner.region)
        said = " ".join(line.strip() for line in lines)
        assert said == (
            f"database unreachable since {clock_time(NOW + 5)} (35 s): showing what was "
            f"read at {clock_time(NOW)} {reason} ({where})"
        )
        assert lines[0].startswith(" database unreachable since")
        assert table.row_count == rows  # the last rows stay
        panel = screen.query_one(WorkersPanel)
        assert panel.border_title == f"workers as of {clock_time(NOW)}"
        shown = await drawn(pilot, "beat 20 s ago")
        assert "beat 20 s ago" in shown  # as read, under "as of"
        assert "Database error" not in shown

        monkeypatch.setattr(runs_module, "read_dashboard", read_dashboard)
        now[0] = NOW + 45
        screen.refresh_now()
        await settle(pilot)
        assert "database reachable again (unreachable for 40 s)" in notifications(app)
        assert not banner.display
        # The panel's border says "workers" again (not "workers as of"): a frame drawn
        # after the read, before looking for what it must not show.
        shown = await drawn(pilot, "─workers─")
        assert "─workers─" in shown and "database unreachable" not in shown
        assert panel.border_title == "workers"


async def test_a_first_poll_that_fails_says_nothing_was_read(
    seeded, app_factory, settle, monkeypatch: pytest.MonkeyPatch
) -> None:
    def locked(*args: Any, **kwargs: Any) -> Any:
        raise QueueError("database runs.db is locked by another process (waited 15 s)")

    monkeypatch.setattr(runs_module, "read_dashboard", locked)
    app = app_factory()
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        shown = await drawn(pilot, "database locked since")
        assert f"database locked since {clock_time(NOW)} (0 s): nothing read yet" in shown
        assert "database runs.db is locked by another process (waited 15 s)" in shown


async def test_a_read_error_that_is_no_outage_is_not_called_unreachable(
    seeded, app_factory, settle, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A removed runs.db read "database unreachable since ...".
    def removed(*args: Any, **kwargs: Any) -> Any:
        raise QueueError("database runs.db was removed while in use: nothing more is read")

    monkeypatch.setattr(runs_module, "read_dashboard", removed)
    app = app_factory()
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        said = f"database not readable since {clock_time(NOW)} (0 s)"
        assert said in await drawn(pilot, said)
