"""The reference-style loop: how the original framework trained a ResConv run (seed-spec §3-§4).

A baseline for ``bench/train_speed.py``, written the way the logbook's code
ran, overheads included, on purpose:

* the dataset lives on the host as float32 images; a ``DataLoader`` over a
  ``TensorDataset`` shuffles and collates every batch in Python, with one
  worker process, and the batch is copied to the device each step;
* the half-crop is per image, in a Python loop, with ``random.randrange(4)``;
* fp32, no CUDA graph, ``loss.item()`` after every step (the original logged
  and checked the loss on the host each step), ``CosineAnnealingLR`` stepped
  after every optimizer step.

The only addition: after training, the model is validated with the project's
fixed-mask validation (``core.train.validate_fixed``, same masks as ``fit``),
so the two paths' final losses compare.
"""

from __future__ import annotations

import random
import time
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader, TensorDataset

from core.config import RunConfig
from core.data import Datasets
from core.model import build_model
from core.task import draw_halves
from core.train import FIXED_VALIDATION_STREAM, cosine_length, seeded_generator, validate_fixed


@dataclass(frozen=True)
class ReferenceResult:
    validation_loss: float
    inputs_seen: int
    steps: int
    train_seconds: float
    inputs_per_s: float
    peak_memory_bytes: int  # CUDA only (0 on CPU)


def crop_half_per_image(batch: torch.Tensor) -> torch.Tensor:
    """RandomCropHalfImage as the original applied it: a copy, one image at a time."""
    out = batch.clone()
    height, width = out.shape[-2:]
    for image in out:  # (C, H, W) views
        side = random.randrange(4)
        if side == 0:
            image[:, :, : width // 2] = 0
        elif side == 1:
            image[:, :, width // 2 :] = 0
        elif side == 2:
            image[:, : height // 2, :] = 0
        else:
            image[:, height // 2 :, :] = 0
    return out


def train_reference(
    config: RunConfig, data: Datasets, device: torch.device | str, num_workers: int = 1
) -> ReferenceResult:
    """Train ``config`` the original way on ``device``; validate with the fixed masks."""
    device = torch.device(device)
    random.seed(config.seed)
    torch.manual_seed(config.seed)
    model = build_model(config).to(device).train()
    optimizer = torch.optim.AdamW(
        model.parameters(), lr=config.lr, weight_decay=config.weight_decay
    )
    t_max = max(cosine_length(config), 1)
    scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=t_max)
    # The original datasets yielded float32 images in [0, 1] from host memory.
    images = data.train.cpu().float().div_(255)
    loader = DataLoader(
        TensorDataset(images), batch_size=config.batch_size, shuffle=True, num_workers=num_workers
    )
    if device.type == "cuda":
        torch.cuda.synchronize(device)
        torch.cuda.reset_peak_memory_stats(device)
    inputs = steps = 0
    started = time.perf_counter()
    while inputs < config.max_inputs:
        for (batch,) in loader:
            target = batch.to(device)
            loss = F.l1_loss(model(crop_half_per_image(target)), target)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            scheduler.step()
            loss.item()  # the host read of every step
            inputs += len(batch)
            steps += 1
            if inputs >= config.max_inputs:
                break
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    seconds = time.perf_counter() - started
    peak = torch.cuda.max_memory_allocated(device) if device.type == "cuda" else 0
    halves = draw_halves(
        len(data.validation), seeded_generator(config.seed, FIXED_VALIDATION_STREAM), device
    )
    loss = validate_fixed(model, data.validation, halves, config.batch_size)
    return ReferenceResult(loss, inputs, steps, seconds, inputs / seconds, peak)
