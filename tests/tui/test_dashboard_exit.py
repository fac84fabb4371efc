"""The dashboard command's exit status says when the app crashed."""

from __future__ import annotations

import argparse
from typing import Any

import pytest
from sqlite_locks import drop_newer_columns, write_lock_held
from textual.app import App

import resconv_tui.app
from resconv_tui.commands import dashboard
from resconv_tui.sweep_writes import ExitNote


class Crashing(App[None]):
    def on_mount(self) -> None:
        raise RuntimeError("boom")

    def run(self, *args: Any, **kwargs: Any) -> None:  # type: ignore[override]
        super().run(headless=True)


def test_a_crash_in_the_dashboard_exits_non_zero(monkeypatch: pytest.MonkeyPatch) -> None:
    # A crash (a bad stored target, say) printed its traceback and still exited 0.
    monkeypatch.setattr(resconv_tui.app, "make_app", lambda *a, **k: Crashing())
    assert dashboard.run(argparse.Namespace(db=None)) == 1


def test_quitting_names_the_workers_of_this_machine_that_train_on(tmp_path: Any) -> None:
    # q left a worker training without a word: the screen that showed it was gone.
    import os
    import subprocess
    import sys

    from core.queue import Repo

    url = f"sqlite:///{tmp_path / 'runs.db'}"
    repo = Repo.open(url)
    assert dashboard.still_training(url, here="box") is None  # none: nothing to say
    training = repo.register_worker("box", os.getpid(), "cuda:0")  # alive (this process)
    repo.update_worker(training, state="running")
    repo.register_worker("other-box", 4242, "cuda:0")  # another machine's
    ended = subprocess.Popen([sys.executable, "-c", "pass"])
    ended.wait()
    repo.register_worker("box", ended.pid, "cpu")  # killed -9: its row says live
    stopped = repo.register_worker("box", os.getppid(), "cpu")
    repo.update_worker(stopped, state="stopped")  # stopped cleanly
    # Stopped from the dashboard (w) just before q: it finishes its step, and `stop`
    # leaves it alone. "train on ... resconv-tui stop stops them" was wrong of it.
    stopping = repo.register_worker("box", os.getppid(), "cpu")
    repo.update_worker(stopping, state="stopping")
    repo.close()
    note = dashboard.still_training(url, here="box", db=" --db runs.db")
    assert note == (
        f"workers of this machine train on (pid {os.getpid()}): "
        "resconv-tui stop --db runs.db stops them"
    )
    assert dashboard.still_training(f"sqlite:///{tmp_path / 'none.db'}") is None


def test_quitting_names_the_pid_of_thread_slots_once(tmp_path: Any) -> None:
    # A --slots K worker of thread slots: K rows, one pid. The note read "(pids 4242,
    # 4242)", where `stop` (which signals each pid once) says "pid 4242".
    import os

    from core.queue import Repo

    url = f"sqlite:///{tmp_path / 'runs.db'}"
    repo = Repo.open(url)
    slots = [repo.register_worker("box", os.getpid(), "cpu") for _ in range(2)]
    repo.update_worker(slots[0], state="running")  # the other slot idle: the pid trains
    repo.close()
    note = dashboard.still_training(url, here="box")
    assert (
        note == f"workers of this machine train on (pid {os.getpid()}): resconv-tui stop stops them"
    )


def test_quitting_says_an_idle_worker_waits_for_runs(tmp_path: Any) -> None:
    # "workers of this machine train on (pid 4242)" of a worker that trained nothing.
    import os

    from core.queue import Repo

    url = f"sqlite:///{tmp_path / 'runs.db'}"
    repo = Repo.open(url)
    repo.register_worker("box", os.getpid(), "cpu")  # idle, as a worker starts
    note = dashboard.still_training(url, here="box")
    assert note == (
        f"workers of this machine stay running, waiting for runs (pid {os.getpid()}): "
        "resconv-tui stop stops them"
    )
    training = repo.register_worker("box", os.getppid(), "cuda:0")
    repo.update_worker(training, state="running")
    repo.close()
    note = dashboard.still_training(url, here="box")
    assert note == (
        f"workers of this machine go on (pid {os.getppid()} training, pid {os.getpid()} "
        "waiting for runs): resconv-tui stop stops them"
    )


def test_quitting_on_an_older_database_does_not_wait_out_another_writers_lock(
    tmp_path: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Its note only reads the workers, yet it opened as a writer does: on an older
    # version's runs.db whose write lock another process held, the shell came back only
    # after the busy timeout (15 s), waiting to add the worker table's newer columns.
    import os
    import time

    from core.queue import Repo
    from core.queue import db as db_module

    monkeypatch.setattr(db_module, "DEFAULT_BUSY_TIMEOUT_S", 3.0)
    url = f"sqlite:///{tmp_path / 'runs.db'}"
    repo = Repo.open(url)
    repo.update_worker(repo.register_worker("box", os.getpid(), "cpu"), state="running")
    repo.close()
    drop_newer_columns(tmp_path / "runs.db")  # as an older version made it
    with write_lock_held(tmp_path / "runs.db"):
        start = time.monotonic()
        note = dashboard.still_training(url, here="box")
        assert time.monotonic() - start < 1.5  # a reader's short try, not the busy timeout
    assert (
        note == f"workers of this machine train on (pid {os.getpid()}): resconv-tui stop stops them"
    )


def test_quitting_names_the_workers_that_train_on_beside_a_damaged_worker_row(
    tmp_path: Any,
) -> None:
    # One worker row edited by hand (a text pid, of any machine) made the note on
    # quitting read nothing at all: a worker of this machine trained on without a word.
    import os
    import sqlite3

    from core.queue import Repo

    url = f"sqlite:///{tmp_path / 'runs.db'}"
    repo = Repo.open(url)
    training = repo.register_worker("box", os.getpid(), "cuda:0")  # alive (this process)
    repo.update_worker(training, state="running")
    ghost = repo.register_worker("other-box", 4242, "cpu")
    repo.close()
    with sqlite3.connect(tmp_path / "runs.db") as conn:  # as an SQL client's UPDATE stores it
        conn.execute("UPDATE worker SET pid = 'abc' WHERE id = ?", (ghost,))
    note = dashboard.still_training(url, here="box")
    assert note == (
        f"workers of this machine train on (pid {os.getpid()}): resconv-tui stop stops them"
    )


class QuitAfterWrites(App[tuple[ExitNote, ...]]):
    """Quits as the dashboard does once the form's writes it waited for have ended."""

    def on_mount(self) -> None:
        queued = ExitNote("queued sweep 'a': 2 runs (runs 1, 2)")
        self.exit((queued, ExitNote("sweep 'b' not queued: the database is locked", failed=True)))

    def run(self, *args: Any, **kwargs: Any) -> None:  # type: ignore[override]
        super().run(headless=True)


def test_the_shell_is_told_what_became_of_the_writes_the_quit_waited_for(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    # Quit while ctrl+s's write waited: the shell came back with nothing said of it.
    monkeypatch.chdir(tmp_path)  # no runs.db here: no workers to name after them
    monkeypatch.setattr(resconv_tui.app, "make_app", lambda *a, **k: QuitAfterWrites())
    assert dashboard.run(argparse.Namespace(db=None)) == 2  # one failed: as a command's error
    said = capsys.readouterr()
    assert said.out == "queued sweep 'a': 2 runs (runs 1, 2)\n"
    assert said.err == "sweep 'b' not queued: the database is locked\n"
