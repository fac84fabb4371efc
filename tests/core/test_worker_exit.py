"""A worker's process skips the interpreter's last garbage collection at exit."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

# A cycle of objects made while the process works, garbage by its end: only the final
# collection would find it (its __del__ says so). After training, that collection walked
# every object torch had made: about a second of each stopped worker's exit.
SCRIPT = """
import gc, sys
{setup}
class Node:
    def __del__(self):
        print("collected", flush=True)
gc.disable()
a, b = Node(), Node()
a.other, b.other = b, a
del a, b
"""


def exit_output(setup: str) -> str:
    code = SCRIPT.format(setup=setup)
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_a_worker_process_leaves_its_garbage_at_exit() -> None:
    assert exit_output("") == "collected\ncollected\n"  # what Python does by default
    setup = "from core.worker import leave_garbage_at_exit; leave_garbage_at_exit()"
    assert exit_output(setup) == ""
