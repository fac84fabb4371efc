"""What the dashboard remembers between sessions: the start dialog's worker options.

A person who starts workers with ``--slots 4 --stack 4`` from ``w`` wants that choice
offered again after reconnecting over SSH. It is one small JSON file per user:
``$RESCONV_CONFIG``, else ``$XDG_CONFIG_HOME/resconv-tui/dashboard.json``, else
``~/.config/resconv-tui/dashboard.json``. A missing or unreadable file only means the
defaults; it never stops the dashboard. Saving is atomic (``core.files``).
"""

from __future__ import annotations

import dataclasses
import json
import os
from collections.abc import Mapping
from pathlib import Path

from core.files import atomic_write
from resconv_tui.worker_launcher import DEFAULT_WORKER, WorkerOptions, read_worker_fields


def preferences_path(env: Mapping[str, str] = os.environ) -> Path:
    if env.get("RESCONV_CONFIG"):
        return Path(env["RESCONV_CONFIG"])
    config = Path(env.get("XDG_CONFIG_HOME") or Path.home() / ".config")
    return config / "resconv-tui" / "dashboard.json"


def load_worker_options(path: Path) -> tuple[WorkerOptions, str | None]:
    """The saved options, read with the dialog's rules; the defaults and why, if unusable.

    Key by key: a key missing from the file (one added by a later version) takes its
    default without losing the others.
    """
    try:
        saved = _read(path).get("worker", {})
        if not isinstance(saved, dict):
            raise ValueError(f"'worker' is {type(saved).__name__}, not an object")
    except FileNotFoundError:
        return DEFAULT_WORKER, None
    except (OSError, ValueError, RecursionError) as exc:
        return DEFAULT_WORKER, f"{path}: not used ({type(exc).__name__}: {exc})"
    fields = {key: str(saved.get(key, default)) for key, default in DEFAULT_WORKER.fields().items()}
    options, errors = read_worker_fields(fields)
    if options is None:
        reasons = "; ".join(f"{key}: {why}" for key, why in errors.items())
        return DEFAULT_WORKER, f"{path}: not used ({reasons})"
    return options, None


def save_worker_options(path: Path, options: WorkerOptions) -> str | None:
    """Remember ``options``, keeping the file's other keys; the reason if it was not saved.

    A file that cannot be read as a JSON object is left as it is (it may be someone's).
    """
    try:
        data = _read(path)
    except FileNotFoundError:
        data = {}
    except (OSError, ValueError, RecursionError) as exc:
        return f"worker options not saved: {path} is unreadable ({type(exc).__name__}: {exc})"
    data["worker"] = dataclasses.asdict(options)
    text = json.dumps(data, indent=2) + "\n"
    try:
        atomic_write(path, lambda handle: handle.write(text.encode()))
    except OSError as exc:
        return f"worker options not saved to {path}: {exc.strerror or exc}"
    return None


def _read(path: Path) -> dict[str, object]:
    """The file's JSON object (FileNotFoundError, OSError or ValueError otherwise)."""
    data = json.loads(path.read_text(encoding="utf-8"))
    if not isinstance(data, dict):
        raise ValueError(f"a JSON {type(data).__name__}, not an object")
    return data
