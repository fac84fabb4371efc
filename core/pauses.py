"""How long this process stood still, stopped whole: Ctrl-Z of a worker (SIGTSTP),
``kill -STOP``, ``docker pause`` (the cgroup freezer).

The monotonic clock runs on while a process is stopped, so a training timed by it
counted the pause as training: a run that trained 2 minutes, was paused 10 and resumed
read a sixth of its in/s, 12 minutes in the results, and an ETA six times too long. No
clock tells a stop apart, so a thread notes the time every ``TICK_S``: a tick that comes
``PAUSED_AFTER_S`` or more late was a stop (a busy process wakes a sleeping thread within
milliseconds: the GIL changes hands every 5 ms), and its lateness is paused time.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

TICK_S = 0.5
# Late by this much past a tick: the process was stopped, not busy. A shorter stop is
# left as time that ran (it moves no ETA far).
PAUSED_AFTER_S = 5.0


class PauseWatch:
    """The seconds this process has stood still since the watch started (``paused_s``)."""

    def __init__(
        self,
        clock: Callable[[], float] = time.monotonic,
        tick_s: float = TICK_S,
        late_s: float = PAUSED_AFTER_S,
    ) -> None:
        self.clock, self.tick_s, self.late_s = clock, tick_s, late_s
        self.lock = threading.Lock()
        self.total = 0.0
        self.last: float | None = None  # the last tick's time; None: not started

    def start(self) -> None:
        """Start watching (once: later calls do nothing)."""
        with self.lock:
            if self.last is not None:
                return
            self.last = self.clock()
        threading.Thread(target=self._watch, name="pause-watch", daemon=True).start()

    def paused_s(self) -> float:
        """Seconds stood still so far, with a stop just ended whose tick has not come yet
        (the training thread may read before the watch thread runs again)."""
        with self.lock:
            return self.total + self._late(self.clock())

    def running_s(self) -> float:
        """The watch's clock less the stops so far: a clock that stood still while the
        process did (a watch for hung steps times its gaps by it)."""
        with self.lock:
            now = self.clock()
            return now - self.total - self._late(now)

    def tick(self) -> None:
        """One tick of the watch: a late one adds its lateness."""
        with self.lock:
            now = self.clock()
            self.total += self._late(now)
            self.last = now

    def _late(self, now: float) -> float:
        if self.last is None:
            return 0.0
        late = now - self.last - self.tick_s
        return late if late >= self.late_s else 0.0

    def _watch(self) -> None:
        while True:
            time.sleep(self.tick_s)
            self.tick()


# The process's one watch: a stop stops every thread, so one serves them all.
PAUSES = PauseWatch()
