"""A recorder's cancel check that waits out a database outage (a plain module: tests
import it directly)."""

from __future__ import annotations

import time
from collections.abc import Callable


def waiting_once(at_poll: int, seconds: float) -> tuple[Callable[[], bool], Callable[[], float]]:
    """(should_stop, waited_s): ``should_stop`` sleeps ``seconds`` at its ``at_poll``-th
    call, as a worker's patient verb waits for its database, and ``waited_s`` reports
    it (``core.queue.patience.waited_s``); neither ever asks to stop."""
    waited, polls = [0.0], [0]

    def should_stop() -> bool:
        polls[0] += 1
        if polls[0] == at_poll:
            time.sleep(seconds)
            waited[0] += seconds
        return False

    return should_stop, lambda: waited[0]
