"""Whether a process of this machine still runs: the one liveness rule of the project.

A worker row names its host and pid. The worker (at start, recovering runs of workers
that died without a clean stop) and the dashboard (each poll, for workers of its own
host, and for a worker it just started) both ask this, so they agree on what "gone" is.
"""

from __future__ import annotations

import os
from pathlib import Path


def process_alive(pid: int) -> bool:
    """Whether ``pid`` runs here. A zombie (exited, not yet reaped by its parent, e.g. a
    worker the dashboard started and never waited for) counts as gone."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # exists, owned by another user
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return True  # no /proc (macOS): the signal check is all there is
    return state != "Z"
