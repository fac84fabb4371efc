"""The ``--slots K`` supervisor with stand-in slot processes (shell commands): which
slot it notices, when it starts one again, and the status it exits with."""

from __future__ import annotations

import pytest

import core.slots as slots
from core.slots import Supervisor

KILLS_ITSELF = ["sh", "-c", "sleep 0.2; kill -9 $$"]


def test_a_slot_killed_after_the_others_left_is_not_started_again(
    capsys: pytest.CaptureFixture[str],
) -> None:
    # --until-empty: slot 1 left (queue empty), then slot 2 is killed. All have exited:
    # the supervisor ends, with slot 2's status, and starts nothing it would not watch.
    lost: list[int] = []
    supervisor = Supervisor([["sh", "-c", "exit 0"], KILLS_ITSELF], on_exit=lost.append)
    assert supervisor.run() == 137
    out = capsys.readouterr().out
    assert "started again" not in out and "exit statuses 0, 137" in out
    assert len(lost) == 2  # both exits were checked for runs left running


def test_a_killed_slot_is_started_again_while_others_train_at_most_restarts_times(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(slots, "RESTARTS", 2)
    supervisor = Supervisor([["sleep", "2"], KILLS_ITSELF])
    assert supervisor.run() == 137  # the killed slot's status, though slot 1 ended cleanly
    out = capsys.readouterr().out
    assert out.count("slot 2/2 started again") == 2
    assert "restart 2 of 2" in out and "exit statuses 0, 137" in out


def test_slots_asked_to_stop_are_not_started_again(capsys: pytest.CaptureFixture[str]) -> None:
    supervisor = Supervisor([["sleep", "2"], KILLS_ITSELF])
    supervisor.signals = 1  # a Ctrl-C arrived: slots get SIGTERM, none comes back
    assert supervisor.run() != 0
    assert "started again" not in capsys.readouterr().out
