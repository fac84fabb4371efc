"""A dashboard left open while the code on disk is upgraded (`git pull` mid-sweep)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).parents[2]

# Runs in a fresh interpreter on a copy of the code: opens the dashboard, then replaces
# every screen and widget file on disk, as a pull of another version would, and opens
# the screens that are not on show at the start.
SCRIPT = """
import asyncio, sys
from pathlib import Path

from resconv_tui.app import make_app

code, db = Path(sys.argv[1]), sys.argv[2]


async def main() -> None:
    app = make_app(db, poll_interval_s=3600, export_dir=code)
    async with app.run_test(size=(120, 36)) as pilot:
        await pilot.pause()
        for folder in ("screens", "widgets"):
            for path in (code / "resconv_tui" / folder).glob("*.py"):
                path.write_text("raise ImportError('a newer version of this file')\\n")
        seen = []
        for key in ("R", "escape", "question_mark", "escape", "n", "escape", "w"):
            await pilot.press(key)
            await pilot.pause()
            seen.append(type(app.screen).__name__)
        print(" ".join(seen))


asyncio.run(main())
"""


def test_screens_opened_after_the_code_changed_on_disk_are_the_started_versions(
    tmp_path: Path,
) -> None:
    # `R` after a `git pull` imported the new version's results screen into the old
    # version's loaded modules and crashed the dashboard with a traceback ("module
    # 'core.queue.views' has no attribute 'SCREEN_LABELS'"): every screen is now
    # loaded when the dashboard starts.
    code = tmp_path / "code"
    for package in ("core", "resconv_tui"):
        shutil.copytree(
            ROOT / package, code / package, ignore=shutil.ignore_patterns("__pycache__")
        )
    env = {**os.environ, "PYTHONPATH": str(code), "PYTHONDONTWRITEBYTECODE": "1"}
    env["RESCONV_CONFIG"] = str(tmp_path / "dashboard.json")
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT, str(code), str(tmp_path / "runs.db")],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.split() == [
        "ResultsScreen",
        "RunsScreen",
        "HelpScreen",
        "RunsScreen",
        "NewSweepScreen",
        "RunsScreen",
        "StartWorkerScreen",
    ]
