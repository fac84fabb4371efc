"""The real ``resconv-tui`` in tmux, driven with keys as a person over SSH would.

Empty database -> 3-run sweep through the form -> ``w`` starts a worker -> all
three succeed while the runs view updates -> results sorted by validation loss
-> markdown export -> a longer run, quit the TUI while it trains -> the CLI
sees it finish. Keys go in small groups with a short pause, like typing, and
each key that changes where keys go waits to be seen on screen: on a busy
machine, text typed after a tab can land in the field the tab leaves.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from core.processes import process_alive
from core.queue import Repo, RunStatus

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(shutil.which("tmux") is None, reason="tmux is not installed"),
]
REPO_ROOT = Path(__file__).resolve().parents[2]
KEY_GAP_S = 0.25


class Tmux:
    """One private tmux server (``-L``) running the dashboard in a 160x45 pane."""

    def __init__(self, root: Path, env: dict[str, str]) -> None:
        self.root, self.env = root, env
        self.socket = f"resconv-e2e-{os.getpid()}"

    def tmux(self, *args: str, check: bool = True) -> str:
        done = subprocess.run(["tmux", "-L", self.socket, *args], capture_output=True,
                              text=True, env=self.env, check=check)  # fmt: skip
        return done.stdout

    def start(self, command: str) -> None:
        self.tmux("new-session", "-d", "-s", "dash", "-x", "160", "-y", "45",
                  "-c", str(self.root), command)  # fmt: skip

    def keys(self, *keys: str) -> None:
        for key in keys:
            self.tmux("send-keys", "-t", "dash", key)
            time.sleep(KEY_GAP_S)

    def burst(self, *keys: str) -> None:
        """``keys`` in one go: only for keys that all go to the focused field (no focus move)."""
        self.tmux("send-keys", "-t", "dash", *keys)
        time.sleep(KEY_GAP_S)

    def type(self, text: str) -> None:
        self.tmux("send-keys", "-t", "dash", "-l", text)
        time.sleep(KEY_GAP_S)

    def screen(self) -> str:
        return self.tmux("capture-pane", "-p", "-t", "dash", check=False)

    def alive(self) -> bool:
        return subprocess.run(["tmux", "-L", self.socket, "has-session", "-t", "dash"],
                              capture_output=True, env=self.env).returncode == 0  # fmt: skip

    def wait_for(self, check: Callable[[str], bool], what: str, timeout: float = 30) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            text = self.screen()
            if check(text):
                return text
            time.sleep(0.2)
        raise AssertionError(f"timed out waiting for {what}; screen:\n{self.screen()}")

    def wait_text(self, text: str, timeout: float = 30) -> str:
        return self.wait_for(lambda screen: text in screen, repr(text), timeout)


@pytest.fixture
def session(tmp_path: Path, idx_writer: Callable[..., Path]) -> Iterator[Tmux]:
    data = idx_writer(tmp_path / "data", train=256, test=64)
    env = {
        **os.environ,
        "RESCONV_DATA": str(data),
        "RESCONV_CACHE": str(tmp_path / "cache"),
        "RESCONV_CONFIG": str(tmp_path / "config" / "dashboard.json"),  # not the user's
        "OMP_NUM_THREADS": "1",
        "PYTHONPATH": str(REPO_ROOT),
        "TERM": "xterm-256color",
    }
    env.pop("NO_COLOR", None)
    tmux = Tmux(tmp_path, env)
    yield tmux
    tmux.tmux("kill-server", check=False)
    _stop_workers(tmp_path / "runs.db")


def _stop_workers(db: Path) -> None:
    if not db.exists():
        return
    for worker in Repo.open(str(db)).list_workers(include_gone=True):
        for sig in (signal.SIGTERM, signal.SIGKILL):
            try:
                os.kill(worker.pid, sig)
            except (ProcessLookupError, PermissionError):
                break
            deadline = time.monotonic() + 0.5  # gone sooner: no need for the next signal
            while process_alive(worker.pid) and time.monotonic() < deadline:
                time.sleep(0.05)


def dashboard_command() -> str:
    script = Path(sys.executable).parent / "resconv-tui"
    program = str(script) if script.exists() else f"{sys.executable} -m resconv_tui"
    return f"{program} --db runs.db"


FORM_ORDER = ("name", "layers", "channels", "kernel_size", "padding", "activation", "model",
              "residual_weight", "bn_encoder", "bn_decoder", "image_size", "dataset",
              "batch_size", "lr", "weight_decay", "max_inputs")  # fmt: skip


def focus_on(tmux: Tmux, key: str) -> None:
    """Wait until the form's hint line names ``key``: its field has the focus. A tab's focus
    move ends after the keys sent behind it are handed to the field it leaves, so on a busy
    machine text typed a quarter second after a tab can land in the previous field."""
    tmux.wait_for(lambda s: re.search(rf"^ ?{key}: ", s, re.M) is not None, f"focus on {key}")


def tab_to(tmux: Tmux, start: str, key: str) -> None:
    """Tab field by field from ``start`` to ``key``, each move seen on screen."""
    for step in FORM_ORDER[FORM_ORDER.index(start) + 1 : FORM_ORDER.index(key) + 1]:
        tmux.keys("Tab")
        focus_on(tmux, step)


def enter(tmux: Tmux, label: str, value: str) -> None:
    """Type ``value`` into the focused field and wait until its row (``label``) reads it."""
    tmux.type(value)
    row = re.compile(rf"^ {label} +{re.escape(value)} ", re.M)
    tmux.wait_for(lambda s: row.search(s) is not None, f"{label} to read {value!r}")


def fill_form(tmux: Tmux, name: str, activation: str, max_inputs: int) -> None:
    """Keys only: name, layers 2, channels 4, activation, max_inputs, then ctrl+s."""
    tmux.keys("n")
    tmux.wait_text("per field:")
    focus_on(tmux, "name")
    tmux.burst("End", *["BSpace"] * 8)  # the name field's default
    tmux.wait_for(lambda s: re.search(r"^ experiment +the experiment's name", s, re.M)
                  is not None, "the name field to be empty")  # fmt: skip
    enter(tmux, "experiment", name)
    at = "name"
    for key, value in (("layers", "2"), ("channels", "4"), ("activation", activation),
                       ("max_inputs", str(max_inputs))):  # fmt: skip
        tab_to(tmux, at, key)
        enter(tmux, key, value)
        at = key
    runs = len(activation.split(","))
    tmux.wait_text(f"{runs} run{'s' if runs > 1 else ''}")
    tmux.keys("C-s")


def status(root: Path) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "resconv_tui", "status", "--db", str(root / "runs.db")],
        capture_output=True, text=True, cwd=root, check=True,
    )  # fmt: skip
    return done.stdout


def test_dashboard_over_ssh(session: Tmux, tmp_path: Path) -> None:
    session.start(dashboard_command())
    session.wait_text("no runs yet")
    fill_form(session, "e2e", "gelu,relu,tanh", 512)
    session.wait_text("3 runs · 3 queued")

    session.keys("w")  # asks how the worker trains; enter takes the defaults
    session.wait_text("Start a worker on this machine")
    session.keys("Enter")
    session.wait_text("online", timeout=60)
    saved = json.loads((tmp_path / "config" / "dashboard.json").read_text())  # the next w offers it
    assert saved["worker"] == {"device": "auto", "slots": 1, "stack": 1, "order": "queue"}
    summaries: set[str] = set()

    def all_done(screen: str) -> bool:
        summaries.add(screen.splitlines()[1].split("│")[0].strip())
        return "3 succeeded" in screen

    session.wait_for(all_done, "three runs to succeed", timeout=150)
    assert len(summaries) >= 2, summaries  # the view changed while the runs trained

    session.keys("R")
    session.wait_text("sorted by validation loss ascending")
    session.keys("S")
    session.wait_text("sorted by validation loss descending")
    session.keys("S", "e")
    session.wait_text("exported 3 rows")
    export = next(tmp_path.glob("results-*.md")).read_text().splitlines()
    assert "validation loss" in export[0] and len(export) == 5
    losses = [float(line.split("|")[3]) for line in export[2:]]
    assert losses == sorted(losses)

    # A longer run: quit while it trains; the detached worker must finish it. Six seconds
    # at the rate of the runs before, and its model build, data and validation on top:
    # seconds more than the quit takes (under two, seen under load), not tens. The run's
    # finish time in the database must come after the test saw the TUI gone: a `status`
    # started after the quit, on a busy machine, could come after the run's end.
    rate = max(r.inputs_per_s or 0 for r in Repo.open(str(tmp_path / "runs.db")).list_runs())
    session.keys("escape")  # not "n" before the runs screen is back: escape+n reads as alt+n
    session.wait_text("resconv-tui — runs.db")
    fill_form(session, "long", "relu", int(min(max(rate * 6, 4096), 400_000)))  # not the default
    session.wait_for(lambda s: re.search(r"\d+ running", s) is not None, "the long run to start",
                     timeout=60)  # fmt: skip
    session.keys("q")
    session.wait_for(lambda _: not session.alive(), "the TUI to exit", timeout=30)
    tui_gone_at = time.time()
    deadline = time.monotonic() + 120
    while "4 succeeded" not in (text := status(tmp_path)):
        assert time.monotonic() < deadline, text
        time.sleep(0.5)
    long_run = Repo.open(str(tmp_path / "runs.db")).get_run(4)
    assert long_run.status == RunStatus.SUCCEEDED
    assert long_run.finished_at is not None
    assert long_run.finished_at > tui_gone_at, (
        f"ended {tui_gone_at - long_run.finished_at:.1f} s early"
    )
