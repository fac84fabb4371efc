"""A name as a table cell that folds at its separators, not in the middle of a token.

Rich wraps a cell at whitespace only, and ``overflow="fold"`` cuts a longer word at the
cell's edge: ``layers-3_kernel-5_seed-0`` read ``layers-3_kern`` / ``el-5_seed-0``. Here the
lines are chosen once the width is known (at render time), and Rich only draws them.
"""

from __future__ import annotations

import re

from rich.cells import cell_len, chop_cells
from rich.console import Console, ConsoleOptions, RenderResult
from rich.measure import Measurement
from rich.text import Text

# Where a name may fold, tried in turn: between a run name's key-value parts (`_`),
# words and path parts; then inside a part at `-` ("layers-" / "3" only if need be);
# a piece wider than the space alone is cut where it must, as Rich's fold does.
BREAKS = (re.compile(r"[^_ /]*[_ /]*"), re.compile(r"[^-]*-*"))
TOKEN_END = re.compile(r"(?<=[-_ /])")


def fold_at_separators(text: str, width: int) -> list[str]:
    """``text`` in lines of at most ``width`` cells, each ending after a separator (`_`,
    `-`, space, `/`) unless one token alone is wider; trailing spaces are dropped."""
    return [line.rstrip(" ") for line in _fold(text, max(width, 1), 0)]


def _fold(text: str, width: int, level: int) -> list[str]:
    if level == len(BREAKS):
        body = text.rstrip(" ")
        cut = chop_cells(body, width) or [""]
        return [*cut[:-1], cut[-1] + text[len(body) :]]  # spaces hang past the edge
    lines: list[str] = []
    line = ""
    for piece in filter(None, BREAKS[level].findall(text)):
        if cell_len((line + piece).rstrip(" ")) <= width:
            line += piece
            continue
        if line:
            lines.append(line)
        # A piece too wide for a line of its own starts one, as Rich starts a long word.
        *whole, line = _fold(piece, width, level + 1)
        lines += whole
    return [*lines, line]


class FoldedName:
    """``name`` drawn in the width its cell gets, folded by ``fold_at_separators``."""

    def __init__(self, name: str) -> None:
        self.name = name

    def __rich_measure__(self, console: Console, options: ConsoleOptions) -> Measurement:
        # As Text measures itself: its longest unbreakable piece up to its whole length.
        tokens = TOKEN_END.split(self.name)
        return Measurement(max(cell_len(t.rstrip(" ")) for t in tokens), cell_len(self.name))

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        yield Text("\n".join(fold_at_separators(self.name, options.max_width)))
