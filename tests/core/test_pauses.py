"""core.pauses: the time a process stood still, stopped (Ctrl-Z, kill -STOP, docker pause)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from core.pauses import PauseWatch

ROOT = Path(__file__).resolve().parents[2]


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_a_late_tick_is_paused_time_and_a_slightly_late_one_is_not() -> None:
    clock = FakeClock()
    watch = PauseWatch(clock=clock, tick_s=0.5, late_s=5.0)
    assert watch.paused_s() == 0.0  # not started: nothing watched
    watch.last = clock()  # as start() sets it, without the thread
    clock.now += 0.5 + 2.0  # a busy process: late, but not stopped
    watch.tick()
    assert watch.paused_s() == 0.0
    clock.now += 0.5 + 600.0  # stopped for 10 minutes
    # Read before the watch ticks again (the training thread resumed first): counted.
    assert watch.paused_s() == 600.0
    watch.tick()
    assert watch.paused_s() == 600.0  # the tick folds it in, once
    clock.now += 0.5
    watch.tick()
    assert watch.paused_s() == 600.0


CHILD = """
import sys, time
from core.pauses import PauseWatch
watch = PauseWatch(late_s=1.0)
watch.start()
print("ready", flush=True)
sys.stdin.readline()
print(watch.paused_s(), flush=True)
"""


def test_a_process_stopped_and_continued_counts_its_stop() -> None:
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    try:
        assert child.stdout is not None and child.stdin is not None
        assert child.stdout.readline().strip() == "ready"
        time.sleep(0.6)
        os.kill(child.pid, signal.SIGSTOP)
        time.sleep(3.0)
        os.kill(child.pid, signal.SIGCONT)
        time.sleep(0.2)
        child.stdin.write("go\n")
        child.stdin.flush()
        paused = float(child.stdout.readline())
        # Its tick of 0.5 s is not pause: 2.5 s or so, with room for a busy machine.
        assert 1.5 <= paused <= 4.0
    finally:
        child.kill()
        child.wait()
