"""The start dialog's worker options are kept between dashboard sessions."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from resconv_tui.app import make_app
from resconv_tui.preferences import load_worker_options, preferences_path, save_worker_options
from resconv_tui.worker_launcher import DEFAULT_WORKER, WorkerOptions

SIZE = (120, 36)


def test_where_the_file_lives(tmp_path: Path) -> None:
    assert preferences_path({"RESCONV_CONFIG": "/x/p.json"}) == Path("/x/p.json")
    assert preferences_path({"XDG_CONFIG_HOME": "/cfg"}) == Path("/cfg/resconv-tui/dashboard.json")
    assert preferences_path({}) == Path.home() / ".config/resconv-tui/dashboard.json"


def test_save_then_load_keeps_other_keys(tmp_path: Path) -> None:
    path = tmp_path / "deep" / "dashboard.json"
    assert load_worker_options(path) == (DEFAULT_WORKER, None)  # none yet: the defaults
    options = WorkerOptions("cuda:1", slots=4, stack=2, order="largest-first")
    assert save_worker_options(path, options) is None
    saved = json.loads(path.read_text())
    assert saved["worker"] == {"device": "cuda:1", "slots": 4, "stack": 2,
                               "order": "largest-first"}  # fmt: skip
    saved["theme"] = "dark"
    path.write_text(json.dumps(saved))
    save_worker_options(path, DEFAULT_WORKER)
    assert json.loads(path.read_text())["theme"] == "dark"
    assert load_worker_options(path) == (DEFAULT_WORKER, None)


def test_a_bad_file_means_the_defaults_and_says_why(tmp_path: Path) -> None:
    path = tmp_path / "dashboard.json"
    for text, why in [
        ("{not json", "JSONDecodeError"),
        ("[1, 2]", "a JSON list, not an object"),
        ('{"worker": null}', "'worker' is NoneType"),
        ("[" * 100_000 + "]" * 100_000, "RecursionError"),
        ('{"worker": {"device": "auto", "slots": 0, "stack": 1, "order": "queue"}}',
         "slots: '0' is not a number of slots (a whole number from 1 to 16)"),
        ('{"worker": {"slots": true}}',
         "slots: 'True' is not a number of slots (a whole number from 1 to 16)"),
    ]:  # fmt: skip
        path.write_text(text)
        options, problem = load_worker_options(path)
        assert options == DEFAULT_WORKER
        assert problem is not None and problem.startswith(f"{path}: not used") and why in problem
        # ...and saving leaves a file it cannot keep the rest of as it is
        if not text.startswith('{"worker"'):
            assert "not saved" in (save_worker_options(path, DEFAULT_WORKER) or "")
            assert path.read_text() == text
    options, problem = load_worker_options(tmp_path)  # a folder where the file should be
    assert options == DEFAULT_WORKER and "IsADirectoryError" in (problem or "")
    blocked = tmp_path / "file"
    blocked.write_text("")
    assert "not saved" in (save_worker_options(blocked / "dashboard.json", DEFAULT_WORKER) or "")


def test_a_key_missing_from_the_file_takes_its_default_alone(tmp_path: Path) -> None:
    path = tmp_path / "dashboard.json"
    path.write_text('{"worker": {"slots": 4, "stack": 2}}')  # no device, no order
    assert load_worker_options(path) == (WorkerOptions("auto", 4, 2, "queue"), None)


async def test_the_next_session_offers_the_last_choice(
    no_local_worker: Any, db_url: str, launcher: Any, settle: Any, tmp_path: Path
) -> None:
    path = tmp_path / "config" / "dashboard.json"

    def session() -> Any:
        return make_app(db_url, launcher=launcher, poll_interval_s=3600, preferences=path,
                        hostname="workstation")  # fmt: skip

    app = session()
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await pilot.press("w")
        app.screen.query_one("#input-slots").value = "4"
        await pilot.press("enter")
    assert launcher.started[0][1].slots == 4
    app = session()
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await pilot.press("w")
        assert app.screen.field_values()["slots"] == "4"


async def test_an_unusable_file_is_said_once_the_dashboard_shows(
    seeded: Any, db_url: str, launcher: Any, settle: Any, tmp_path: Path
) -> None:
    path = tmp_path / "dashboard.json"
    path.write_text("{not json")
    app = make_app(db_url, launcher=launcher, poll_interval_s=3600, preferences=path)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        messages = [n.message for n in app._notifications]
        assert any(m.startswith(f"{path}: not used (JSONDecodeError") for m in messages)
        assert app.ctx.worker_options == DEFAULT_WORKER
