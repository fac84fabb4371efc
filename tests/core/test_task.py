"""Half-image deletion (seed-spec §3): shapes, which half, fill value, no in-place change."""

from __future__ import annotations

import pytest
import torch

from core.task import HALVES, delete_halves, draw_halves, half_mask_table, mask_batch


def test_half_ids_follow_the_original_order() -> None:
    assert HALVES == ("left", "right", "top", "bottom")


@pytest.mark.parametrize(("height", "width"), [(28, 28), (32, 32), (64, 64), (5, 7)])
def test_mask_table_splits_at_half_width_and_height(height: int, width: int) -> None:
    left, right, top, bottom = half_mask_table(height, width, "cpu")
    assert left[:, : width // 2].all() and not left[:, width // 2 :].any()
    assert right[:, width // 2 :].all() and not right[:, : width // 2].any()
    assert top[: height // 2].all() and not top[height // 2 :].any()
    assert bottom[height // 2 :].all() and not bottom[: height // 2].any()


def test_each_image_loses_exactly_its_half_and_keeps_the_rest() -> None:
    images = torch.randint(1, 256, (8, 1, 28, 28), dtype=torch.uint8)
    halves = torch.tensor([0, 1, 2, 3, 3, 2, 1, 0])
    masked = delete_halves(images, halves)
    table = half_mask_table(28, 28, "cpu")
    for i, half in enumerate(halves.tolist()):
        deleted = table[half]
        assert (masked[i, 0][deleted] == 0).all()
        assert torch.equal(masked[i, 0][~deleted], images[i, 0][~deleted])


def test_all_channels_are_masked_and_float_images_work() -> None:
    images = torch.rand(4, 3, 6, 6) + 0.5
    masked = delete_halves(images, torch.tensor([0, 1, 2, 3]))
    assert masked.shape == images.shape and masked.dtype == images.dtype
    assert (masked[0, :, :, :3] == 0).all() and (masked[0, :, :, 3:] > 0).all()
    assert (masked[3, :, 3:] == 0).all() and (masked[3, :, :3] > 0).all()


def test_the_input_is_not_modified() -> None:
    images = torch.randint(1, 256, (16, 1, 28, 28), dtype=torch.uint8)
    before = images.clone()
    masked, _ = mask_batch(images, torch.Generator().manual_seed(0))
    assert torch.equal(images, before)
    assert masked.data_ptr() != images.data_ptr()


def test_masks_are_reproducible_per_generator_and_roughly_uniform() -> None:
    first = draw_halves(4000, torch.Generator().manual_seed(3), "cpu")
    again = draw_halves(4000, torch.Generator().manual_seed(3), "cpu")
    other = draw_halves(4000, torch.Generator().manual_seed(4), "cpu")
    assert torch.equal(first, again) and not torch.equal(first, other)
    counts = torch.bincount(first, minlength=4)
    assert counts.min() > 900 and counts.max() < 1100


def test_mask_batch_returns_the_halves_it_used() -> None:
    images = torch.full((32, 1, 28, 28), 200, dtype=torch.uint8)
    masked, halves = mask_batch(images, torch.Generator().manual_seed(1))
    assert halves.shape == (32,)
    assert torch.equal(masked, delete_halves(images, halves))
    # Exactly half of every image is gone (28x28 splits evenly).
    assert ((masked == 0).sum(dim=(1, 2, 3)) == 28 * 14).all()
