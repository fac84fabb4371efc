"""Sample reconstructions drawn with half-block characters (two pixels per cell).

The grid is uint8 (3, n, H, W): masked input, output and target of n validation
images (see ``core.queue.samples``). Each row shows as many images as fit the
widget's width; rich-pixels turns pixels into coloured half-blocks, which is
exact and deterministic on any truecolour terminal and in headless tests.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from PIL import Image
from rich.console import Group, RenderableType
from rich.text import Text
from rich_pixels import Pixels
from textual.reactive import reactive
from textual.widget import Widget

ROWS = ("masked input", "output", "target")
MAX_SIDE = 32  # bigger images are shrunk (nearest) so a row stays a few lines tall
GAP = 1  # pixels (= columns) between images


def fit_count(width: int, image_width: int, available: int) -> int:
    """How many images of ``image_width`` (plus a gap) fit in ``width`` columns."""
    return max(1, min(available, (width + GAP) // (image_width + GAP)))


def row_image(images: Any, count: int) -> Image.Image:
    """``count`` grey images side by side, RGB, with a dark gap between them."""
    height, width = images.shape[1], images.shape[2]
    canvas = Image.new("RGB", (count * (width + GAP) - GAP, height), (24, 24, 24))
    for i in range(count):
        tile = Image.fromarray(np.ascontiguousarray(images[i], dtype=np.uint8)).convert("RGB")
        canvas.paste(tile, (i * (width + GAP), 0))
    return canvas


def shrink(grid: Any) -> Any:
    """Nearest-neighbour shrink by an integer factor so no side exceeds MAX_SIDE (by the
    longer side: by the width alone a tall image drew all its rows)."""
    factor = max(1, -(-max(grid.shape[-2:]) // MAX_SIDE))
    return grid[..., ::factor, ::factor] if factor > 1 else grid


def sample_rows(grid: Any, width: int) -> Group:
    """The three labelled rows of ``grid`` as fit ``width`` columns (the widget, and
    ``show --samples`` on a terminal)."""
    grid = shrink(grid)
    count = fit_count(width, grid.shape[-1], grid.shape[1])
    parts: list[RenderableType] = []
    for label, images in zip(ROWS, grid, strict=False):
        parts.append(Text(label, style="bold"))
        parts.append(Pixels.from_image(row_image(images, count)))
    return Group(*parts)


NO_SAMPLES_YET = "no sample reconstructions yet (they are saved when a run ends)"


class SampleImage(Widget):
    """Three labelled rows of images; says so when the run has none yet."""

    DEFAULT_CSS = """
    SampleImage { height: auto; width: 1fr; }
    """

    grid: reactive[Any] = reactive(None, layout=True, always_update=True)
    """uint8 array (3, n, H, W), or None before the run has finished (always_update:
    numpy arrays do not compare to one bool)."""

    empty_note: reactive[str] = reactive(NO_SAMPLES_YET)
    """What it says while ``grid`` is None (the detail screen words it by the run's status)."""

    def render(self) -> RenderableType:
        if self.grid is None:
            return Text(self.empty_note, "dim")
        return sample_rows(self.grid, self.size.width or 80)

    def get_content_height(self, container: Any, viewport: Any, width: int) -> int:
        if self.grid is None:
            return 1
        height = shrink(self.grid).shape[-2]
        return len(ROWS) * (1 + -(-height // 2))
