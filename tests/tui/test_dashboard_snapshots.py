"""SVG snapshots of the runs view, results and help at 120x36 with the seeded queue.

Times are frozen (see conftest), so ages, rates and ETAs are the same on every
run. Update baselines with ``pytest tests/tui --snapshot-update`` and review the SVGs.
"""

from __future__ import annotations

from typing import Any

from textual.pilot import Pilot

SIZE = (120, 36)


def test_runs_view(seeded: dict[str, Any], app_factory: Any, snap_compare: Any, settle: Any):
    assert snap_compare(app_factory(), terminal_size=SIZE, run_before=settle)


def test_runs_view_marked_and_filtered(seeded, app_factory, snap_compare, settle) -> None:
    async def mark_and_filter(pilot: Pilot[Any]) -> None:
        await settle(pilot)
        await pilot.press("down", "space", "down", "space", "F")  # space moves down too
        await settle(pilot)

    assert snap_compare(app_factory(), terminal_size=SIZE, run_before=mark_and_filter)


def test_results(seeded, app_factory, snap_compare, settle) -> None:
    async def open_results(pilot: Pilot[Any]) -> None:
        await settle(pilot)
        await pilot.press("R")
        await settle(pilot)

    assert snap_compare(app_factory(), terminal_size=SIZE, run_before=open_results)


def test_help(seeded, app_factory, snap_compare, settle) -> None:
    async def open_help(pilot: Pilot[Any]) -> None:
        await settle(pilot)
        await pilot.press("question_mark")
        await pilot.pause()

    assert snap_compare(app_factory(), terminal_size=SIZE, run_before=open_help)


def test_confirm_cancel_of_running_run(seeded, app_factory, snap_compare, settle) -> None:
    async def ask(pilot: Pilot[Any]) -> None:
        await settle(pilot)
        await pilot.press("down", "down", "down", "c")
        await pilot.pause()

    assert snap_compare(app_factory(), terminal_size=SIZE, run_before=ask)


def test_start_worker_dialog_with_a_bad_field(no_local_worker, app_factory, snap_compare, settle):
    async def ask(pilot: Pilot[Any]) -> None:
        await settle(pilot)
        await pilot.press("w", "tab", "backspace", *"0", "enter")  # slots: 0
        await pilot.pause()

    assert snap_compare(app_factory(), terminal_size=SIZE, run_before=ask)
