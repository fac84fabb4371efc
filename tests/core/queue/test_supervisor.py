"""The ``--slots K`` supervisor with stand-in slot processes (shell commands): which
slot it notices, when it starts one again, and the status it exits with."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import time
from pathlib import Path

import pytest
from queue_helpers import tiny_runs

import core.slots as slots
from core.queue import FinalFigures, Repo, RunStatus
from core.slots import SlotExit, Supervisor, recover_slot

KILLS_ITSELF = ["sh", "-c", "sleep 0.2; kill -9 $$"]


def test_a_slot_killed_after_the_others_left_is_not_started_again(
    capsys: pytest.CaptureFixture[str],
) -> None:
    # --until-empty: slot 1 left (queue empty), then slot 2 is killed. All have exited:
    # the supervisor ends, with slot 2's status, and starts nothing it would not watch.
    exited: list[int] = []

    def on_exit(pid: int, since: float) -> SlotExit:
        exited.append(pid)
        return SlotExit(lost=[], runs_ended=0)

    supervisor = Supervisor([["sh", "-c", "exit 0"], KILLS_ITSELF], on_exit=on_exit)
    assert supervisor.run() == 137
    out = capsys.readouterr().out
    assert "started again" not in out and "exit statuses 0, 137" in out
    assert len(exited) == 2  # both exits were checked for runs left running


def test_a_killed_slot_is_started_again_while_others_train_at_most_restarts_times(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(slots, "RESTARTS", 2)
    supervisor = Supervisor([["sleep", "2"], KILLS_ITSELF])
    assert supervisor.run() == 137  # the killed slot's status, though slot 1 ended cleanly
    out = capsys.readouterr().out
    assert out.count("slot 2/2 started again") == 2
    assert "restart 2 of 2" in out and "exit statuses 0, 137" in out


def test_a_slot_killed_once_that_then_ends_cleanly_leaves_exit_status_0(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    # kill -9 of a slot, started again, then a clean stop: the worker exited 137 with
    # "exit statuses 137, 0", the killed process's old status, not the slot's last one.
    first_time = f"if [ -e {tmp_path}/m ]; then sleep 0.5; else touch {tmp_path}/m; kill -9 $$; fi"
    supervisor = Supervisor([["sleep", "1"], ["sh", "-c", first_time]])
    assert supervisor.run() == 0
    out = capsys.readouterr().out
    assert "slot 2/2 started again" in out
    restarted = "started again after being killed: slot 2 1x"
    assert f"all slots stopped (0 run(s) ended; exit statuses 0, 0; {restarted})" in out


def test_the_closing_line_counts_the_runs_the_slot_processes_ended(
    capsys: pytest.CaptureFixture[str],
) -> None:
    # As the thread slots' closing line does ("all slots stopped (3 run(s) ended)"); the
    # process slots' said only their exit statuses.
    ended = iter([SlotExit([], 2), SlotExit([7], 1)])
    supervisor = Supervisor([["true"], ["true"]], on_exit=lambda _pid, _since: next(ended))
    assert supervisor.run() == 0
    out = capsys.readouterr().out
    assert "2 slots started as processes (pids " in out
    assert "all slots stopped (3 run(s) ended; exit statuses 0, 0)" in out


class StoppedAtStart(Supervisor):
    """``stops`` Ctrl-Cs come just after the slots started (while they import torch),
    or once the file ``ready`` exists."""

    ready: Path | None = None
    stops = 1

    def start(self, command: list[str]) -> subprocess.Popen[bytes]:  # type: ignore[override]
        child = Supervisor.start(command)
        deadline = time.monotonic() + 30
        while self.ready is not None and not self.ready.exists() and time.monotonic() < deadline:
            time.sleep(0.01)
        self.signals = max(self.signals, self.stops)
        return child


def test_slots_asked_to_stop_are_not_started_again(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    # The slot gets SIGTERM, ignores it, and is killed anyway (as by the OOM killer).
    killed = ["sh", "-c", f"trap '' TERM; touch {tmp_path}/ready; sleep 0.3; kill -9 $$"]
    supervisor = StoppedAtStart([killed])
    supervisor.ready = tmp_path / "ready"
    assert supervisor.run() == 137  # and is not started again
    assert "started again" not in capsys.readouterr().out


def test_a_slot_that_dies_of_the_forwarded_sigterm_has_stopped_cleanly(
    capsys: pytest.CaptureFixture[str],
) -> None:
    # A stop forwarded while the slots start (Python, their imports: no handler yet) took
    # the default action, and `worker --slots 2` exited 143 as if killed. They had
    # claimed nothing: a clean stop. (sleep has no handler either.)
    assert StoppedAtStart([["sleep", "5"], ["sleep", "5"]]).run() == 0
    assert "all slots stopped (0 run(s) ended; exit statuses 0, 0)" in capsys.readouterr().out
    # Sent to a slot alone (kill PID) before its handlers, the same stop: the supervisor,
    # not asked itself, took it for a crash (status 143) and started the slot again
    # (while another slot trains on: once all have exited, none is).
    assert Supervisor([["sleep", "1"], ["sh", "-c", "sleep 0.2; kill -TERM $$"]]).run() == 0
    out = capsys.readouterr().out
    assert "started again" not in out and "exit statuses 0, 0)" in out


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGHUP])
def test_a_slot_dead_of_another_stop_signal_sent_to_it_alone_is_not_started_again(
    capsys: pytest.CaptureFixture[str], sig: signal.Signals
) -> None:
    # As SIGTERM: a stop asked of that slot, not a crash (its status says which signal).
    # Its default action set first: under nohup SIGHUP comes ignored.
    import sys

    number = int(sig)
    code = f"import os, signal as s; s.signal({number}, s.SIG_DFL); os.kill(os.getpid(), {number})"
    stops_itself = [sys.executable, "-c", code]
    assert Supervisor([["sleep", "1"], stops_itself]).run() == 128 + sig
    assert "started again" not in capsys.readouterr().out


def test_a_stop_asked_before_the_slots_started_starts_none(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    # A SIGTERM while the supervisor itself started (counted by core.early_signals).
    monkeypatch.setattr(slots, "take_over", lambda: [(signal.SIGTERM, 0.0)])
    started = tmp_path / "started"
    assert Supervisor([["touch", str(started)]]).run() == 0
    assert "stopped before the slots started" in capsys.readouterr().out
    assert not started.exists()


def test_the_second_signal_reaches_the_slots_as_another_signal(tmp_path: Path) -> None:
    # Two SIGTERMs that reach a slot while its main thread is in a long C call (a
    # training step, an import) run its Python handler once: the second was lost.
    said = tmp_path / "said"
    slot = (
        f"trap 'echo TERM >> {said}' TERM; trap 'echo INT >> {said}; stop=1' INT; stop=0; "
        f"touch {tmp_path}/ready; while [ $stop = 0 ]; do sleep 0.05; done; exit 130"
    )
    supervisor = StoppedAtStart([["sh", "-c", slot]])
    supervisor.ready, supervisor.stops = tmp_path / "ready", 2
    assert supervisor.run() == 130
    assert sorted(said.read_text().split()) == ["INT", "TERM"]


def process_state(pid: int) -> str:
    """A process's state letter from /proc (T: stopped)."""
    return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]


def states_become(pids: list[int], wanted: set[str], within_s: float = 10.0) -> list[str]:
    """The processes' states once all are among ``wanted``, or as they read at the end."""
    deadline = time.monotonic() + within_s
    while True:
        states = [process_state(pid) for pid in pids]
        if all(state in wanted for state in states) or time.monotonic() > deadline:
            return states
        time.sleep(0.05)


def test_ctrl_z_stops_the_slots_with_the_supervisor_and_fg_continues_them(
    tmp_path: Path,
) -> None:
    # The slots run in their own process groups, so the terminal's SIGTSTP (Ctrl-Z)
    # reached the supervisor alone: the job read as stopped while its slots trained on.
    import sys

    slot = f"echo $$ > {tmp_path}/slot.$$; while true; do sleep 0.05; done"
    script = f"import sys; from core.slots import Supervisor; " \
        f"sys.exit(Supervisor([['sh', '-c', {slot!r}]] * 2).run())"  # fmt: skip
    # Its own process group in this session: the kernel drops SIGTSTP sent to an
    # orphaned group (one started in a session of its own would be).
    supervisor = subprocess.Popen([sys.executable, "-c", script], process_group=0)
    slots_pids: list[int] = []
    try:
        deadline = time.monotonic() + 30
        while len(slots_pids) < 2 and time.monotonic() < deadline:
            slots_pids = [int(p.read_text()) for p in tmp_path.glob("slot.*") if p.read_text()]
            time.sleep(0.05)
        assert len(slots_pids) == 2
        everyone = [supervisor.pid, *slots_pids]
        supervisor.send_signal(signal.SIGTSTP)
        assert states_become(everyone, {"T"}) == ["T", "T", "T"]
        supervisor.send_signal(signal.SIGCONT)  # fg
        assert "T" not in states_become(everyone, {"S", "R"})
        supervisor.send_signal(signal.SIGTERM)
        assert supervisor.wait(timeout=15) == 0
    finally:
        # Only while the supervisor lives: the slots are its children, their pids not
        # yet free for another process to take.
        if supervisor.poll() is None:
            for pid in [*slots_pids, supervisor.pid]:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGCONT)
                    os.kill(pid, signal.SIGKILL)
            supervisor.wait(timeout=15)


def test_nohup_keeps_sighup_ignored_by_the_supervisor() -> None:
    # `nohup resconv-tui worker --slots 2 &`: its slots ignore SIGHUP, but the supervisor
    # caught it at logout and forwarded SIGTERM to them all.
    saved = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)}
    try:
        signal.signal(signal.SIGHUP, signal.SIG_IGN)
        assert Supervisor([["sh", "-c", "exit 0"]]).run() == 0
        assert signal.getsignal(signal.SIGHUP) == signal.SIG_IGN
    finally:
        for sig, handler in saved.items():
            signal.signal(sig, handler)


def test_a_slot_started_again_has_only_what_is_left_of_its_max_runs(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # Each killed process of slot 2 had ended 1 run and left 1 running (lost): 2 of its
    # --max-runs 3. Its next process may end 1 more; after that, none is left.
    monkeypatch.setattr(slots, "RESTARTS", 3)
    killed = [*KILLS_ITSELF, "sh", "--max-runs", "3"]  # $0 and $1.. of the shell script
    lost = iter(range(100, 110))
    supervisor = Supervisor(
        [["sh", "-c", "sleep 2", "sh", "--max-runs", "3"], killed],
        on_exit=lambda pid, since: SlotExit(lost=[next(lost)], runs_ended=1),
        max_runs=3,
    )
    assert supervisor.run() == 137
    out = capsys.readouterr().out
    assert out.count("slot 2/2 started again") == 1 and "--max-runs 1)" in out
    assert "slot 2/2 has used its --max-runs 3: not started again" in out
    assert supervisor.restarts == [0, 1]
    assert supervisor.runs_used[1] == 4 and supervisor.children[1].args[-1] == "1"


def test_recover_slot_counts_the_runs_a_slot_ended_and_lost(repo: Repo, db_url: str) -> None:
    repo.enqueue(tiny_runs(3))
    slot = repo.register_worker(socket.gethostname(), 4321, "cpu slot 2/2")
    other = repo.register_worker(socket.gethostname(), 4322, "cpu slot 1/2")
    first = repo.claim(slot)
    assert first is not None
    repo.finish(first.id, slot, FinalFigures(validation_loss=0.1))
    second, third = repo.claim(slot), repo.claim(other)
    assert second is not None and third is not None
    since = time.time() - 5
    assert recover_slot(db_url, 4321, since) == SlotExit(lost=[second.id], runs_ended=1)
    assert repo.get_run(second.id).status == RunStatus.FAILED
    assert repo.get_run(third.id).status == RunStatus.RUNNING  # another slot's
    # Recorded lost by someone else first (a dashboard): its count is still read...
    assert recover_slot(db_url, 4321, since) == SlotExit(lost=[], runs_ended=1)
    # ...but a row of an earlier process that had the same pid is not this one's.
    assert recover_slot(db_url, 4321, time.time() + 5) == SlotExit(lost=[], runs_ended=0)


def test_a_slot_killed_while_it_was_stopping_is_not_started_again(
    capsys: pytest.CaptureFixture[str],
) -> None:
    # `resconv-tui stop` signals the slots, not their supervisor: a slot still in its
    # final pass after it, then killed (kill -9, the OOM killer), was started again and
    # claimed a run, the stop undone. Its row said "stopping" (recover_slot reads it).
    asked = SlotExit(lost=[], runs_ended=0, asked_to_stop=True)
    supervisor = Supervisor([["sleep", "1"], KILLS_ITSELF], on_exit=lambda _pid, _since: asked)
    assert supervisor.run() == 137  # killed all the same: its status stands
    out = capsys.readouterr().out
    assert "slot 2/2 started again" not in out
    assert "slot 2/2 was stopping: not started again" in out
    assert supervisor.restarts == [0, 0]


def test_recover_slot_says_whether_the_slot_was_stopping(repo: Repo, db_url: str) -> None:
    repo.enqueue(tiny_runs(1))
    slot = repo.register_worker(socket.gethostname(), 4321, "cpu slot 1/2")
    assert repo.claim(slot) is not None
    since = time.time() - 5
    assert recover_slot(db_url, 4321, since).asked_to_stop is False
    other = repo.register_worker(socket.gethostname(), 4322, "cpu slot 2/2")
    assert repo.mark_worker_stopping(other)
    # Read before the recovery makes the row "lost".
    assert recover_slot(db_url, 4322, since) == SlotExit([], 0, asked_to_stop=True)


def test_the_retry_it_suggests_for_a_lost_slot_carries_the_db(
    capsys: pytest.CaptureFixture[str],
) -> None:
    def on_exit(pid: int, since: float) -> SlotExit:
        return SlotExit(lost=[3], runs_ended=0)

    retry = slots.retry_lost_command("/data/my runs.db")
    assert retry == "resconv-tui retry --cause worker-lost --db '/data/my runs.db'"
    assert slots.retry_lost_command(None) == "resconv-tui retry --cause worker-lost"
    assert slots.retry_lost_command("postgresql+psycopg://box:secret@db/queue").endswith(
        "--db postgresql+psycopg://box@db/queue"
    )  # printed and logged: no password, and no *** that fails as pasted
    supervisor = Supervisor([["sh", "-c", "exit 0"]], on_exit=on_exit, retry=retry)
    supervisor.run()
    out = capsys.readouterr().out
    assert (
        "run 3 marked failed, worker lost (resconv-tui retry --cause worker-lost "
        "--db '/data/my runs.db' queues it again)"
    ) in out


def test_a_password_in_the_url_stays_off_the_slots_command_lines(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # `RESCONV_DB=postgresql://u:secret@... resconv-tui worker --slots 2` (or `w` with
    # slots on a CPU) started each slot with `--db postgresql://u:secret@...`, which `ps`
    # shows every user of the box. The slots get it in their environment instead.
    import argparse

    from core.worker_options import add_worker_arguments

    seen: dict[str, object] = {}

    class NoDatabase:
        @staticmethod
        def open(url: str) -> NoDatabase:
            return NoDatabase()

        def close(self) -> None:
            pass

    class Recorded:
        def __init__(self, commands: list[list[str]], **_: object) -> None:
            seen["commands"] = commands

        def run(self) -> int:
            import os

            seen["env"] = os.environ.get("RESCONV_DB")  # what Supervisor.start passes on
            return 0

    monkeypatch.setattr(slots, "Repo", NoDatabase)
    monkeypatch.setattr(slots, "Supervisor", Recorded)
    # supervise sets RESCONV_DB itself: setenv first, so that monkeypatch restores it (a
    # delenv of an unset name records nothing, and the URL leaked into later tests).
    monkeypatch.setenv("RESCONV_DB", "")
    monkeypatch.delenv("RESCONV_DB")
    parser = argparse.ArgumentParser()
    add_worker_arguments(parser)
    args = parser.parse_args(["--slots", "2"])
    url = "postgresql+psycopg://u:secret@db.example/runs"
    assert slots.supervise(args, url, 2) == 0
    commands = seen["commands"]
    assert isinstance(commands, list) and len(commands) == 2
    assert not any("secret" in part for command in commands for part in command), commands
    assert seen["env"] == url
    plain = "postgresql+psycopg://u@db.example/runs"
    assert ["--db", plain] == slots.slot_command(args, plain, slots.Slot(1, 2))[3:5]


@pytest.mark.parametrize(("named", "found"), [("parent", True), (None, False), ("other", False)])
def test_a_slot_s_supervisor_is_its_parent_only_where_the_slot_names_it(
    named: str | None, found: bool
) -> None:
    # `stop` waits for a slots' supervisor (it has no worker row) as the slot's parent:
    # only a parent that named itself in the slot's environment, not any worker's parent
    # (a shell, the dashboard).
    import os
    import sys

    from core.processes import SUPERVISOR_ENV, slot_supervisor

    env = {k: v for k, v in os.environ.items() if k != SUPERVISOR_ENV}
    if named is not None:
        env[SUPERVISOR_ENV] = str(os.getpid() if named == "parent" else os.getpid() + 1)
    child = subprocess.Popen(
        [sys.executable, "-c", "import time; print('up', flush=True); time.sleep(30)"],
        env=env,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        # Until the child has exec'd, /proc shows the forked copy of this process's
        # environment (no SUPERVISOR_ENV): wait for the new program to say it runs.
        assert child.stdout is not None and child.stdout.readline() == "up\n"
        assert slot_supervisor(child.pid) == (os.getpid() if found else None)
    finally:
        child.kill()
        child.wait()
    assert slot_supervisor(child.pid) is None  # gone


def test_a_process_is_known_by_its_start_time_not_by_its_pid_alone() -> None:
    # `stop` waits on a process found by pid: one that exited and whose pid went to
    # another process meanwhile must read as gone (the start time differs).
    import sys

    from core.processes import start_time, still_running

    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        started = start_time(child.pid)
        assert started is not None and start_time(child.pid) == started
        assert still_running(child.pid, started) and still_running(child.pid, None)
        assert not still_running(child.pid, started + 1)  # another process, its pid reused
    finally:
        child.kill()
        child.wait()
    assert start_time(child.pid) is None and not still_running(child.pid, started)
