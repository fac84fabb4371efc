"""Text laid out for a Textual notice (toast): a path on lines of its own, broken only
after a '/', so it can be copied whole (the results export, the worker ``w`` starts,
the checkpoint folders ``x`` leaves on disk)."""

from __future__ import annotations

import contextlib
import re
from pathlib import Path

from rich.cells import cell_len


def notice_width(screen_width: int) -> int:
    """The text width of a notice on a screen ``screen_width`` cells wide: Textual's toast
    is 60 cells, at most 70% of its rack here (app.tcss; the rack is the screen less 8:
    50 cells at 80 columns), less its left border and padding (3)."""
    return max(min(60, (screen_width - 8) * 7 // 10) - 3, 10)


def path_lines(path: Path, width: int) -> str:
    """``path`` for a notice ``width`` cells wide: relative to the current folder where
    inside it (the export folder unless set), on lines broken only after a '/'. A notice
    wraps a long word anywhere: the path broke before its ``.md``, or mid-name."""
    with contextlib.suppress(ValueError, OSError):  # elsewhere, or the folder is gone
        path = path.relative_to(Path.cwd())
    return slash_lines(str(path), width)


def slash_lines(path: str, width: int) -> str:
    """``path`` as written, on lines of at most ``width`` cells broken only after a '/'
    (a name longer than that alone on its line)."""
    lines = [""]
    for part in re.findall(r"[^/]*/|[^/]+$", path):
        if lines[-1] and cell_len(lines[-1] + part) > width:
            lines.append("")
        lines[-1] += part
    return "\n".join(lines)
