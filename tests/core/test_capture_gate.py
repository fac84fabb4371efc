"""The capture gate with plain threads: a capture runs alone, nothing deadlocks."""

from __future__ import annotations

import threading
import time

from core.capture_gate import CaptureGate


def test_alone_a_capture_never_waits_and_gpu_work_nests() -> None:
    gate = CaptureGate()
    with gate.gpu_work(), gate.gpu_work():
        gate.yield_to_capture()
        with gate.exclusive():
            assert gate.holders == 0  # its own shares are set aside meanwhile
        assert gate.holders == 2
    assert gate.holders == 0
    with gate.exclusive():  # without any share (bench/profile_step.py)
        pass
    assert gate.holders == 0


def test_other_threads_do_no_gpu_work_while_a_capture_runs() -> None:
    gate = CaptureGate()
    events: list[str] = []
    stop = threading.Event()

    def training(name: str) -> None:
        with gate.gpu_work():
            while not stop.is_set():
                gate.yield_to_capture()
                events.append(f"{name} step")
                time.sleep(0.001)

    def capturing() -> None:
        with gate.gpu_work():
            time.sleep(0.02)
            with gate.exclusive():
                events.append("capture begins")
                time.sleep(0.05)
                events.append("capture ends")
            time.sleep(0.02)

    trainers = [threading.Thread(target=training, args=(n,)) for n in "ab"]
    for t in trainers:
        t.start()
    capturer = threading.Thread(target=capturing)
    capturer.start()
    capturer.join(5)
    stop.set()
    for t in trainers:
        t.join(5)
    assert not capturer.is_alive() and not any(t.is_alive() for t in trainers)
    begin, end = events.index("capture begins"), events.index("capture ends")
    assert end == begin + 1  # no step of another thread in between
    assert any(e.endswith("step") for e in events[end + 1 :])  # and they went on after it
    assert gate.holders == 0


def test_two_captures_take_turns() -> None:
    gate = CaptureGate()
    inside = []
    most = [0]
    lock = threading.Lock()

    def run() -> None:
        with gate.gpu_work():
            for _ in range(3):
                gate.yield_to_capture()
                with gate.exclusive():
                    with lock:
                        inside.append(1)
                        most[0] = max(most[0], len(inside))
                    time.sleep(0.005)
                    with lock:
                        inside.pop()
                gate.yield_to_capture()

    threads = [threading.Thread(target=run) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    assert not any(t.is_alive() for t in threads)
    assert most[0] == 1 and gate.holders == 0


def test_new_gpu_work_waits_while_a_capture_is_waiting() -> None:
    gate = CaptureGate()
    order: list[str] = []
    holder_may_leave = threading.Event()

    def holder() -> None:
        with gate.gpu_work():
            holder_may_leave.wait(5)
        order.append("holder left")

    def capturer() -> None:
        with gate.exclusive():
            order.append("captured")

    def newcomer() -> None:
        with gate.gpu_work():
            order.append("newcomer worked")

    h = threading.Thread(target=holder)
    h.start()
    while gate.holders == 0:
        time.sleep(0.001)
    c = threading.Thread(target=capturer)
    c.start()
    while not gate._waiting:  # the capture now waits for the holder
        time.sleep(0.001)
    n = threading.Thread(target=newcomer)
    n.start()
    time.sleep(0.05)
    assert order == []  # neither the capture nor the newcomer got in
    holder_may_leave.set()
    for t in (h, c, n):
        t.join(5)
    assert order.index("captured") < order.index("newcomer worked")


def test_gpu_work_inside_a_capture_is_an_error_not_a_deadlock() -> None:
    gate = CaptureGate()
    with gate.exclusive():
        try:
            with gate.gpu_work():
                raise AssertionError("entered")
        except RuntimeError as exc:
            assert "inside exclusive()" in str(exc)
    with gate.gpu_work():  # and the gate still works afterwards
        pass
    assert gate.holders == 0
