"""The restoration task: delete one half of every image (seed-spec §3).

Each image independently loses its left, right, top or bottom half (ids 0..3,
drawn uniformly), filled with 0. The model sees the masked image and must
restore the clean one. Everything is vectorised: one gather from a (4, H, W)
table of half-masks, no per-image Python loop, so it runs on the training
device inside the step.
"""

from __future__ import annotations

import torch

# Half ids as in the original RandomCropHalfImage (random.randrange(4)).
HALVES = ("left", "right", "top", "bottom")
FILL = 0  # black, the Fashion-MNIST background


def draw_halves(count: int, generator: torch.Generator, device: torch.device | str) -> torch.Tensor:
    """``count`` half ids in 0..3 (int64), drawn with ``generator``, placed on ``device``."""
    halves = torch.randint(0, len(HALVES), (count,), generator=generator, device=generator.device)
    return halves.to(device, non_blocking=True)


def half_mask_table(height: int, width: int, device: torch.device | str) -> torch.Tensor:
    """Bool (4, H, W): True where half id 0..3 deletes a pixel (W//2 and H//2 split)."""
    cols = torch.arange(width, device=device).view(1, width).expand(height, width)
    rows = torch.arange(height, device=device).view(height, 1).expand(height, width)
    left = cols < width // 2
    top = rows < height // 2
    return torch.stack((left, ~left, top, ~top))


def half_masks(halves: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """Bool (N, 1, H, W) masks for half ids (N,); the channel dim broadcasts over C."""
    table = half_mask_table(height, width, halves.device)
    return table[halves].unsqueeze(1)


def delete_halves(images: torch.Tensor, halves: torch.Tensor) -> torch.Tensor:
    """A copy of ``images`` (N, C, H, W) with half ``halves[i]`` of image i set to 0.

    Works for uint8 and float images alike; the input is never modified, so it
    can still serve as the clean target.
    """
    height, width = images.shape[-2:]
    return images.masked_fill(half_masks(halves.to(images.device), height, width), FILL)


def mask_batch(
    images: torch.Tensor, generator: torch.Generator
) -> tuple[torch.Tensor, torch.Tensor]:
    """(masked copy, half ids) for a batch, with fresh halves drawn from ``generator``."""
    halves = draw_halves(images.shape[0], generator, images.device)
    return delete_halves(images, halves), halves
