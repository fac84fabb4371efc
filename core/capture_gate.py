"""One CUDA graph capture at a time, with no other CUDA work in the process meanwhile.

PyTorch's rule for CUDA graphs: while a capture is underway, no non-captured CUDA
work may run in the process, on any thread. Slot threads (``core.stream_slots``)
train several runs in one process, so a run that captures its graph must have
the GPU to itself for that moment; on an H200 we saw what happens otherwise:
"operation not permitted when stream is capturing" in the other threads and
cuDNN stream errors in the capturing one.

``GATE`` is a readers-writer lock that prefers the writer:

* CUDA work (a whole ``fit()``, a dataset upload) runs inside ``GATE.gpu_work()``;
  any number of threads may hold it together;
* a thread about to capture calls ``GATE.exclusive()``: new ``gpu_work`` waits, the
  thread gives up its own share, and it waits until no other thread holds one;
* a thread inside ``gpu_work`` calls ``GATE.yield_to_capture()`` between train steps:
  a single integer test normally, and when a capture is waiting it steps aside
  until the capture is over; a validation pass does the same before each batch
  (``core.train.between_batches``). So a capture waits at most one step (or one
  validation batch) of each other run.

With one worker and one run nothing ever waits. Torch-free, so it is tested on CPU.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager


class CaptureGate:
    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._holders = 0  # shares held, all threads together
        self._capturing = False
        self._waiting = 0  # threads waiting in exclusive()
        self._mine = threading.local()  # this thread's shares (gpu_work may nest)

    # ----- shared: ordinary CUDA work ----------------------------------------------------

    @contextmanager
    def gpu_work(self) -> Iterator[None]:
        self._take(1)
        try:
            yield
        finally:
            self._give(1)

    def yield_to_capture(self) -> None:
        """Between steps: if a capture is waiting, let it run first."""
        if not self._waiting:  # unlocked read: a missed capture is seen at the next step
            return
        shares = self._shares()
        if shares:
            self._give(shares)
            self._take(shares)

    # ----- exclusive: the capture ---------------------------------------------------------

    @contextmanager
    def exclusive(self) -> Iterator[None]:
        shares = self._shares()
        with self._cond:
            self._holders -= shares
            self._mine.shares = 0
            self._waiting += 1
            self._cond.notify_all()
            try:
                while self._capturing or self._holders > 0:
                    self._cond.wait()
                self._capturing = True
                self._mine.capturing = True
            except BaseException:  # e.g. KeyboardInterrupt while waiting: undo, no capture
                self._holders += shares
                self._mine.shares = shares
                raise
            finally:
                self._waiting -= 1
                self._cond.notify_all()
        try:
            yield
        finally:
            with self._cond:
                self._capturing = False
                self._mine.capturing = False
                self._holders += shares
                self._mine.shares = shares
                self._cond.notify_all()

    # ----- bookkeeping ----------------------------------------------------------------------

    def _shares(self) -> int:
        return int(getattr(self._mine, "shares", 0))

    def _take(self, shares: int) -> None:
        if getattr(self._mine, "capturing", False):
            raise RuntimeError("gpu_work() inside exclusive(): the capture would wait on itself")
        with self._cond:
            if self._shares() == 0:  # a thread already inside never waits (no self-deadlock)
                while self._capturing or self._waiting:
                    self._cond.wait()
            self._holders += shares
            self._mine.shares = self._shares() + shares

    def _give(self, shares: int) -> None:
        with self._cond:
            self._holders -= shares
            self._mine.shares = self._shares() - shares
            self._cond.notify_all()

    @property
    def holders(self) -> int:
        return self._holders


GATE = CaptureGate()
