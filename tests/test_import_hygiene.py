"""Import boundaries of ARCHITECTURE.md, each module imported by itself in a fresh interpreter.

The TUI and the torch-free core must start fast and run without the GPU stack;
the training code must not know about the database or the terminal UI.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor, wait

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
    "core.pauses": TORCH | DATABASE | UI,  # the recorder's and the training clock's
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


# Imported before the modules of a group, where every module of it may import them:
# each is seconds of a fresh interpreter's time (torch most), which a group pays once.
HEAVY = ("torch", "sqlmodel")

# Run in a fresh interpreter per group of modules with the same forbidden packages: it
# imports the heavy packages they may all import, then forks a child per module, which
# imports it into that interpreter and sends back the top-level packages in sys.modules
# (or its import's traceback). The forbidden ones are not loaded beforehand (checked
# here), so one a module pulls in is in its child's sys.modules as in a bare interpreter.
FORK_PER_MODULE = """
import json, os, sys, traceback
preload, forbidden, modules = json.loads(sys.argv[1])
for package in preload:
    __import__(package)
already = sorted({m.split('.')[0] for m in sys.modules} & set(forbidden))
if already:
    sys.exit(f"importing {preload} loads forbidden {already}")
children = []
for module in modules:
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(read_end)
        try:
            __import__(module)
            report = {"packages": sorted({m.split('.')[0] for m in sys.modules})}
        except BaseException:
            report = {"error": traceback.format_exc()}
        with os.fdopen(write_end, "w") as out:
            json.dump(report, out)
        os._exit(0)
    os.close(write_end)
    children.append((module, pid, read_end))
reports = {}
for module, pid, read_end in children:
    with os.fdopen(read_end) as reading:
        text = reading.read()
    os.waitpid(pid, 0)
    reports[module] = json.loads(text) if text else {"error": "its child sent nothing"}
print(json.dumps(reports))
"""


def imported_top_level_packages(
    modules: list[str], forbidden: set[str]
) -> dict[str, set[str] | str]:
    """Each module's top-level packages once imported (its traceback if that failed)."""
    # A lone module pays for a heavy package it may not import at all: none then.
    preload = [p for p in HEAVY if p not in forbidden] if len(modules) > 1 else []
    argument = json.dumps([preload, sorted(forbidden), modules])
    out = subprocess.run(
        [sys.executable, "-c", FORK_PER_MODULE, argument], capture_output=True, text=True
    )
    assert out.returncode == 0, f"importing {modules}: {out.stderr}"
    reports = json.loads(out.stdout)
    return {m: set(r["packages"]) if "packages" in r else r["error"] for m, r in reports.items()}


def groups_by_forbidden() -> list[tuple[list[str], set[str]]]:
    groups: dict[frozenset[str], list[str]] = {}
    for module, forbidden in RULES.items():
        groups.setdefault(frozenset(forbidden), []).append(module)
    return [(modules, set(forbidden)) for forbidden, modules in groups.items()]


@pytest.fixture(scope="module")
def imports_of() -> dict[str, set[str] | str]:
    """Each module of RULES imported by itself (a fork of an interpreter that holds only
    heavy packages its group may import), groups as many at once as there are CPUs: one
    fresh interpreter a module took a minute on a loaded 2-core machine, torch four times."""
    with ThreadPoolExecutor(max_workers=max(2, os.cpu_count() or 1)) as pool:
        futures = [
            pool.submit(imported_top_level_packages, *group) for group in groups_by_forbidden()
        ]
        wait(futures)
    return {module: packages for f in futures for module, packages in f.result().items()}


@pytest.mark.parametrize(("module", "forbidden"), RULES.items(), ids=RULES.keys())
def test_module_keeps_its_import_boundary(
    module: str, forbidden: set[str], imports_of: dict[str, set[str] | str]
) -> None:
    packages = imports_of[module]
    assert not isinstance(packages, str), f"importing {module} failed:\n{packages}"
    leaked = packages & forbidden
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
