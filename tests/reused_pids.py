"""A freed pid given to a new process, as the kernel gives one to whatever starts next
once a worker killed with -9 has exited: the stranger that liveness checks by pid alone
took for that worker."""

from __future__ import annotations

import subprocess
from pathlib import Path


def started_with_pid(pid: int) -> subprocess.Popen[bytes] | None:
    """Another process (a sleep) given ``pid`` (a freed one) by the kernel, as it gives
    a freed pid to whatever starts next; None where this test cannot arrange that
    (/proc/sys/kernel/ns_last_pid takes root)."""
    for _ in range(200):  # another process of the machine may take it first
        try:
            Path("/proc/sys/kernel/ns_last_pid").write_text(str(pid - 1))
        except OSError:
            return None
        stranger = subprocess.Popen(["sleep", "30"])
        if stranger.pid == pid:
            return stranger
        stranger.kill()
        stranger.wait()
    return None
