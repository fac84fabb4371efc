"""Import boundaries of ARCHITECTURE.md, checked in a fresh interpreter per module.

The TUI and the torch-free core must start fast and run without the GPU stack;
the training code must not know about the database or the terminal UI.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from concurrent.futures import Future, ThreadPoolExecutor, wait

import pytest

TORCH = {"torch", "torchvision"}
DATABASE = {"sqlmodel", "sqlalchemy"}
UI = {"textual", "resconv_tui"}

RULES: dict[str, set[str]] = {
    "core.config": TORCH | DATABASE | UI,
    "core.params": TORCH | DATABASE | UI,
    "core.sweep_yaml": TORCH | DATABASE | UI,
    "core.sweep": TORCH | DATABASE | UI,
    "core.memory": TORCH | DATABASE | UI,
    "core.packing": TORCH | UI,
    "core.queue.repo": TORCH | UI,
    "core.queue.views": TORCH | UI,
    "core.queue.failures": TORCH | UI,
    "core.model": DATABASE | UI,
    "core.data": DATABASE | UI,
    "core.task": DATABASE | UI,
    "core.train": DATABASE | UI,
    # The GPU box's bench environment has torch, numpy, pyyaml and sqlmodel, not rich.
    "core.worker": UI | {"rich"},
    "core.fit_trainer": TORCH | UI | {"rich"},  # torch when it trains, lazily
    "core.slots": TORCH | UI | {"rich"},  # torch only inside a slot process, lazily
    "core.recording": TORCH | UI | {"rich"},
    "core.worker_options": TORCH | DATABASE | UI,
    "core.processes": TORCH | DATABASE | UI,
    "core.early_signals": TORCH | DATABASE | UI,  # in place before anything heavy
    "core.device_choice": TORCH | UI,  # torch only when a device is resolved
    "resconv_tui.cli": TORCH,
    "resconv_tui.app": TORCH,
    "core.queue.comparison": TORCH | UI,
    # The command line draws with these too: no Textual (nor the queue, for the charts).
    "resconv_tui.plotting": TORCH | DATABASE | {"textual"},
    "resconv_tui.widgets.run_info": TORCH | {"textual"},
    "resconv_tui.follow": TORCH | {"textual"},
    "resconv_tui.commands.show": TORCH | DATABASE | {"textual"},
    "resconv_tui.commands.compare": TORCH | DATABASE | {"textual"},
    "resconv_tui.terminal_output": TORCH | DATABASE | {"textual"},
}


def imported_top_level_packages(module: str) -> set[str]:
    code = (
        f"import sys, json; import {module}; "
        "print(json.dumps(sorted({m.split('.')[0] for m in sys.modules})))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return set(json.loads(out.stdout))


@pytest.fixture(scope="module")
def imports_of() -> dict[str, Future[set[str]]]:
    """Each module of RULES imported in its own fresh interpreter, as many at once as
    there are CPUs (a dozen import SQLAlchemy, four torch: about 20 s one after another)."""
    with ThreadPoolExecutor(max_workers=max(2, os.cpu_count() or 1)) as pool:
        futures = {module: pool.submit(imported_top_level_packages, module) for module in RULES}
        wait(futures.values())
    return futures


@pytest.mark.parametrize(("module", "forbidden"), RULES.items(), ids=RULES.keys())
def test_module_keeps_its_import_boundary(
    module: str, forbidden: set[str], imports_of: dict[str, Future[set[str]]]
) -> None:
    leaked = imports_of[module].result() & forbidden  # its import's error, if it failed
    assert not leaked, f"{module} imports {sorted(leaked)}"


def test_building_the_cli_parser_loads_no_database_or_torch() -> None:
    # Every subcommand's add_parser runs for `resconv-tui --help`, tab completion and each
    # command: the queue (SQLAlchemy) and torch are imported only by the command that runs.
    code = (
        "import sys, json; from resconv_tui.cli import build_parser; "
        "build_parser().parse_args(['retry', '--cause', 'oom']); "
        "print(json.dumps(sorted({m.split('.')[0] for m in sys.modules})))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    leaked = set(json.loads(out.stdout)) & (TORCH | DATABASE)
    assert not leaked, f"building the parser imports {sorted(leaked)}"
