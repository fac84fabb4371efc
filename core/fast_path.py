"""The CUDA fast path of fit() (issue 5): the same training, without the host in the way.

At batch 64 and 32 channels a ResConv step is a few hundred tiny kernels; a
plain PyTorch loop spends its time launching them and waiting for the host,
not computing. This module removes that overhead and nothing else:

* the dataset is already resident on the device (``core.data``); the batch is
  gathered there by index (``index_select``), masks come from a (4, H, W)
  table (``core.task``), so the only per-step upload is 2 x batch int64
  (indices and half ids) from a pinned ring buffer, asynchronously;
* the model runs channels_last under bf16 autocast (``precision: auto``) or in
  fp32 (``precision: fp32``);
* the whole step (gather, mask, forward, L1, backward, AdamW with
  ``capturable=True``, torch's fused kernel and a tensor learning rate, the
  loss record and the in-place cosine lr update) is captured once in a CUDA
  graph and replayed;
* the loss of step k is written on the device into ``history[k]``; the step
  returns that 0-dim view, so nothing waits for the GPU until the loop reads a
  window of losses (one wait every ``log_every`` steps).

What stays the same as the plain step, on purpose: the batch order and the
masks (the same index batches from the loop, the same ``mask_generator``
draws), BatchNorm in train mode with its running stats updated every step,
AdamW's math, the lr of step k (``core.train.cosine_lr``), and validation,
which the loop does with its own functions. The short last batch of an epoch
has another shape, so it runs eagerly through the same body.

If capture fails for any reason it is tried again without torch.compile, then with
AdamW's multi-tensor form instead of the fused kernel; if it still fails the step
runs the same body eagerly. Each reason is in ``description`` (which fit() stores
in ``FitResult.path_used``).

Switches (environment, so a worker or benchmark can flip them without a config change):
``RESCONV_FAST_PATH=0`` keeps the plain step on CUDA; ``RESCONV_GRAPH=0`` skips
capture; ``RESCONV_FUSED_ADAM=0`` keeps AdamW's multi-tensor form instead of the
fused kernel; ``RESCONV_COMPILE`` decides on ``torch.compile`` inside the graph (about
20 s per model shape, so by default only runs of 2,000,000 inputs or more compile;
``1`` always, ``0`` never; see ``wants_compile``);
``RESCONV_CHANNELS_LAST=0`` keeps the NCHW layout (for measuring the layout's effect).
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Mapping, MutableMapping, Sequence
from contextlib import AbstractContextManager, nullcontext
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from core.capture_gate import GATE
from core.data import cache_root
from core.task import FILL, draw_halves, half_mask_table

FAST_PATH_ENV = "RESCONV_FAST_PATH"
GRAPH_ENV = "RESCONV_GRAPH"
COMPILE_ENV = "RESCONV_COMPILE"
COMPILE_AUTO_INPUTS = 2_000_000  # see wants_compile
RECOMPILE_LIMIT = 64  # model shapes one process may compile (torch's default, 8, is few)
CHANNELS_LAST_ENV = "RESCONV_CHANNELS_LAST"
FUSED_ADAM_ENV = "RESCONV_FUSED_ADAM"
WARMUP_STEPS = 3  # cuDNN autotuning, AdamW's lazy state and compilation happen here
PINNED_SLOTS = 64  # the host may run this many steps ahead before reusing a staging slot
_OFF = {"0", "false", "no", "off"}
_ON = {"1", "true", "yes", "on"}


# ----- decisions ---------------------------------------------------------------------


def wants_fast_path(device: torch.device, env: Mapping[str, str] | None = None) -> bool:
    """True on CUDA unless ``RESCONV_FAST_PATH=0``; CPU always keeps the plain step."""
    return device.type == "cuda" and _switch(env, FAST_PATH_ENV, default=True)


def wants_graph(device: torch.device, env: Mapping[str, str] | None = None) -> str | None:
    """None when a CUDA graph should be captured, else the reason not to."""
    if device.type != "cuda":
        return "CUDA graphs need a CUDA device"
    if not _switch(env, GRAPH_ENV, default=True):
        return f"{GRAPH_ENV}=0"
    return None


def wants_compile(
    device: torch.device, max_inputs: int, env: Mapping[str, str] | None = None
) -> bool:
    """torch.compile where it wins, on CUDA: ``RESCONV_COMPILE=1`` always, ``=0`` never,
    and by default (unset or ``auto``) for runs of at least ``COMPILE_AUTO_INPUTS`` inputs.

    On an H200 the logbook's 11-layer run trained at 17,500 inputs/s as a plain CUDA
    graph and 26,700 compiled, after about 20 s of compiling (cold caches): about 20 us
    saved per input, so compiling pays from about 1,000,000 inputs on. The threshold
    is twice that, so a slower compile still pays. The logbook's own runs (180,000)
    stay uncompiled.
    """
    if device.type != "cuda":
        return False  # the CPU keeps the plain step; the fast step there is for tests
    value = (os.environ if env is None else env).get(COMPILE_ENV, "").strip().lower()
    if value in ("", "auto"):
        return max_inputs >= COMPILE_AUTO_INPUTS
    return value in _ON


def use_persistent_compile_cache(cache_root: Path, env: MutableMapping[str, str]) -> None:
    """Keep inductor's compiled kernels in ``cache_root/inductor`` unless the user chose a place.

    torch caches them under /tmp by default, which a reboot empties; with the cache
    kept, a model shape compiles once per machine (in a later process the compile
    takes a fraction of the time: 27 s -> 2 s for a small model on this project's CPU).
    """
    env.setdefault("TORCHINDUCTOR_CACHE_DIR", str(cache_root / "inductor"))


def wants_channels_last(device: torch.device, env: Mapping[str, str] | None = None) -> bool:
    """channels_last on CUDA (cuDNN's fast layout) unless ``RESCONV_CHANNELS_LAST=0``."""
    return device.type == "cuda" and _switch(env, CHANNELS_LAST_ENV, default=True)


def wants_fused_adam(device: torch.device, env: Mapping[str, str] | None = None) -> bool:
    """AdamW as one fused kernel on CUDA unless ``RESCONV_FUSED_ADAM=0``.

    The multi-tensor (foreach) form launches a dozen kernels per parameter chunk,
    the fused one two; same math, other rounding order (the GPU tests bound the
    difference). CPU keeps the single-tensor form, bit for bit the plain step's.
    """
    return device.type == "cuda" and _switch(env, FUSED_ADAM_ENV, default=True)


def _switch(env: Mapping[str, str] | None, name: str, default: bool) -> bool:
    """An on/off environment switch: on by default unless 0/false/no/off, and the reverse."""
    value = (os.environ if env is None else env).get(name, "").strip().lower()
    return value not in _OFF if default else value in _ON


def autocast(device: torch.device, precision: str) -> AbstractContextManager[Any]:
    """bf16 autocast on CUDA for ``precision == "bf16"``, else nothing (fp32).

    No weight cache: casts cached during a graph capture would go stale on replay
    (and a step casts each weight once anyway).
    """
    if precision == "bf16" and device.type == "cuda":
        return torch.autocast("cuda", dtype=torch.bfloat16, cache_enabled=False)
    return nullcontext()


def describe(
    device: torch.device,
    precision: str,
    mode: str,
    why_not: str | None,
    compiled: bool = False,
    nchw: bool = False,
) -> str:
    """``FitResult.path_used``, e.g. ``cuda-graph bf16`` or ``cuda-eager fp32 (graph ...)``."""
    text = f"{device.type}-{mode} {precision}" + (" compiled" if compiled else "")
    text += " nchw" if nchw else ""
    return f"{text} ({why_not})" if why_not else text


def failure_reason(exc: BaseException, limit: int = 160) -> str:
    """One short line for a failed capture: the first exception's type and first line.

    An illegal call inside ``torch.cuda.graph`` raises, and then the context
    manager's ``capture_end`` raises again with a generic "operation failed due
    to a previous error during capture"; the first error is in ``__context__``
    and is the one worth reading, so it comes first, the last one's type after it.
    """
    first, seen = exc, {id(exc)}
    while first.__context__ is not None and id(first.__context__) not in seen:
        first = first.__context__
        seen.add(id(first))
    text = _first_line(first)
    if first is not exc:
        text += f" (then {type(exc).__name__})"
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _first_line(exc: BaseException) -> str:
    lines = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {lines[0] if lines else ''}".rstrip(": ")


# ----- small tensor pieces -------------------------------------------------------------


def cosine_lr_(lr: torch.Tensor, step: torch.Tensor, base_lr: float, t_max: int) -> None:
    """In place, on the device: ``lr`` <- ``core.train.cosine_lr(step, base_lr, t_max)``.

    Tensor ops only (no ``.item()``), so it can live inside a CUDA graph. The
    angle is computed in float64 like the Python version, then stored in lr's dtype.
    """
    if t_max <= 0:
        lr.fill_(base_lr)
        return
    angle = step.to(torch.float64) * (math.pi / t_max)
    lr.copy_(angle.cos_().add_(1).mul_(base_lr / 2))


def make_capturable(
    optimizer: torch.optim.Optimizer, device: torch.device, fused: bool = False
) -> torch.Tensor:
    """Switch a fresh Adam/AdamW to a device tensor lr (and capturable on CUDA); return the lr.

    ``fused``: use torch's fused implementation (graph-safe, takes the tensor lr).
    Done in place so that the loop's optimizer object (saved in checkpoints)
    stays the one that trains. It must not have stepped yet: AdamW creates its
    state lazily, and reads ``capturable`` and ``fused`` from the group at that moment.
    """
    if optimizer.state:
        raise ValueError("make_capturable needs an optimizer that has not stepped yet")
    base = float(optimizer.param_groups[0]["lr"])
    lr = torch.tensor(base, dtype=torch.float32, device=device)
    for group in optimizer.param_groups:
        group["lr"] = lr
        # foreach + tensor lr is only allowed when capturable; off CUDA use the single-tensor form.
        group["capturable"] = device.type == "cuda"
        group["fused"] = fused
        if fused or device.type != "cuda":
            group["foreach"] = False
    return lr


def use_multi_tensor_adam(optimizer: torch.optim.Optimizer, device: torch.device) -> None:
    """Switch a capturable AdamW from the fused kernel back to the multi-tensor form
    (single-tensor off CUDA); its state, a device step count and moments, fits both."""
    for group in optimizer.param_groups:
        group["fused"] = False
        group["foreach"] = device.type == "cuda"


def select_batch(
    images: torch.Tensor, indices: torch.Tensor, halves: torch.Tensor, table: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """(masked input, clean target), float32 (n, C, H, W) in [0, 1], gathered on the device.

    ``images`` uint8 (N, C, H, W); ``indices``, ``halves`` int64 (n,); ``table``
    bool (4, H, W) from ``core.task.half_mask_table``. Same values as the plain
    step's ``delete_halves(to_unit(images[indices]), halves)``.
    """
    target = images.index_select(0, indices).float().div_(255)  # (n, C, H, W)
    masked = target.masked_fill(table.index_select(0, halves).unsqueeze(1), FILL)
    return masked, target


def side_by_side(batch: torch.Tensor, copies: int) -> torch.Tensor:
    """(K*n, C, H, W), the K runs' batches one after the other -> (n, K*C, H, W), run k's
    images in channels k*C .. k*C+C-1: the input layout of ``ResConv(copies=K)``."""
    _, channels, height, width = batch.shape
    stacked = batch.view(copies, -1, channels, height, width).transpose(0, 1)
    return stacked.reshape(-1, copies * channels, height, width)


def per_copy_l1(output: torch.Tensor, target: torch.Tensor, copies: int) -> torch.Tensor:
    """(K,) each run's mean L1 over its own channels of (n, K*C, H, W) tensors."""
    difference = (output - target).abs()
    return difference.reshape(len(output), copies, -1).mean(dim=(0, 2))


class PinnedRing:
    """Staging slots for the per-step upload, reused round-robin.

    A slot is written by the host only after the copy that last read it has
    finished (its event), so the host can run ``slots`` steps ahead of the GPU
    and never overwrites data still on its way.
    """

    def __init__(self, width: int, device: torch.device, slots: int = PINNED_SLOTS) -> None:
        cuda = device.type == "cuda"
        self.buffers = [
            torch.empty(width, dtype=torch.int64, pin_memory=cuda) for _ in range(slots)
        ]
        self.events: list[torch.cuda.Event | None] = [None] * slots
        self.cuda = cuda
        self.next = 0

    def upload(self, parts: Sequence[torch.Tensor], target: torch.Tensor) -> None:
        """Copy the int64 CPU ``parts``, one after the other, into the device tensor
        ``target`` without a host wait (and without joining them in a new tensor first)."""
        slot = self.next
        self.next = (slot + 1) % len(self.buffers)
        event = self.events[slot]
        if event is not None:
            event.synchronize()  # normally long done: only waits when the host is far ahead
        staging, start = self.buffers[slot], 0
        for part in parts:
            staging[start : start + part.numel()].copy_(part)
            start += part.numel()
        target.copy_(staging[:start], non_blocking=True)
        if self.cuda:
            event = event or torch.cuda.Event()
            event.record()
            self.events[slot] = event


# ----- the step ------------------------------------------------------------------------


class FastStep:
    """``step(CPU index batch, lr) -> the batch's loss`` (a 0-dim device view, no sync).

    Built by ``make_fast_step``. ``lr`` is accepted for the loop's contract but
    the step keeps its own device copy of the same schedule (``cosine_lr_``),
    which is what makes the lr update capturable.

    Stacked runs (``core.stack``): with K mask generators the model is K runs side by
    side (``ResConv(config, copies=K)``); the index batch is the K runs' batches one
    after the other, each run masks with its own generator, and the step returns the
    K runs' losses, a (K,) device view. The sum of the K losses is what trains: each
    run's weights only reach its own loss, so each gets exactly its own gradient.
    """

    def __init__(
        self,
        model: nn.Module,
        optimizer: torch.optim.Optimizer,
        images: torch.Tensor,
        mask_generators: Sequence[torch.Generator],
        *,
        batch_size: int,
        t_max: int,
        capacity: int,
        precision: str,
        channels_last: bool,
        compile_model: bool = False,
        fused_adam: bool = False,
    ) -> None:
        self.device = images.device
        self.model, self.optimizer, self.images = model, optimizer, images
        self.mask_generators, self.copies = list(mask_generators), len(mask_generators)
        self.batch_size, self.t_max = batch_size, t_max
        # Each run's last batch of an epoch where the train split is no whole number of
        # batches (60,000 = 937 x 64 + 32) and the run gets that far; 0 where it has none.
        # It trains eagerly (a graph has one shape), so the warm-up tunes its shape too.
        whole, rest = divmod(len(images), batch_size)
        self.short_batch = rest if capacity > whole else 0
        self.precision = precision
        self.memory_format = torch.channels_last if channels_last else torch.contiguous_format
        if channels_last:
            model.to(memory_format=torch.channels_last)  # same Parameter objects: AdamW keeps them
        self.forward: Callable[[torch.Tensor], torch.Tensor] = model
        if compile_model:
            use_persistent_compile_cache(cache_root(), os.environ)
            dynamo = torch._dynamo.config
            dynamo.recompile_limit = max(dynamo.recompile_limit, RECOMPILE_LIMIT)
            self.forward = torch.compile(model, dynamic=False)  # type: ignore[assignment]
        self.base_lr = float(optimizer.param_groups[0]["lr"])
        self.fused_adam = fused_adam
        self.lr = make_capturable(optimizer, self.device, fused=fused_adam)
        height, width = images.shape[-2:]
        self.table = half_mask_table(height, width, device=self.device)  # bool (4, H, W)
        self.position = torch.zeros((), dtype=torch.int64, device=self.device)  # step counter
        rows = (max(capacity, 1),) if self.copies == 1 else (max(capacity, 1), self.copies)
        self.history = torch.zeros(rows, dtype=torch.float32, device=self.device)
        self.ring = PinnedRing(2 * batch_size * self.copies, self.device)
        self.inputs: dict[int, torch.Tensor] = {}  # indices -> int64 device buffer [indices|halves]
        self.graph: torch.cuda.CUDAGraph | None = None
        self.steps = 0
        self.mode = "eager"
        self.why_not: str | None = None

    # --- what the loop calls ---

    def __call__(self, indices: torch.Tensor, lr: float) -> torch.Tensor:
        n = len(indices) // self.copies  # each run's batch
        # The same draws as the plain step (a stack: each run's own, one after the other).
        halves = [draw_halves(n, generator, "cpu") for generator in self.mask_generators]
        buffer = self._input_buffer(len(indices))
        self.ring.upload((indices, *halves), buffer)
        if self.graph is not None and n == self.batch_size:
            self.graph.replay()
        else:
            self._eager(buffer)
        slot = self.steps % len(self.history)
        self.steps += 1
        return self.history[slot]

    @property
    def compiled(self) -> bool:
        return self.forward is not self.model

    @property
    def description(self) -> str:
        nchw = self.device.type == "cuda" and self.memory_format != torch.channels_last
        return describe(self.device, self.precision, self.mode, self.why_not, self.compiled, nchw)

    # --- setting up ---

    def capture(self) -> None:
        """Warm up, restore the untouched state, capture the full-batch step; or say why not.

        A failure is retried with less: without torch.compile, then with AdamW's
        multi-tensor form instead of the fused kernel; when even that fails the step
        stays eager. Every reason ends up in ``description``, once: a capture that fails
        the same way with either AdamW reads "graph capture failed", fused not blamed.
        """
        saved, stream = _snapshot(self.model), self._current_stream()
        reasons: list[str] = []
        while True:
            try:
                self._warm_up_and_capture(saved)
                self.mode = "graph"
                break
            except Exception as exc:  # any failure: keep training, with less, and say why
                self._undo_warm_up(saved, stream)
                reason = failure_reason(exc)
                if self.compiled:
                    self.forward = self.model
                    reasons.append(f"compile dropped: {reason}")
                elif self.fused_adam:
                    self.fused_adam = False
                    use_multi_tensor_adam(self.optimizer, self.device)
                    reasons.append(f"fused AdamW dropped: {reason}")
                else:
                    failed = f"graph capture failed: {reason}"
                    if reasons and reasons[-1] == f"fused AdamW dropped: {reason}":
                        reasons[-1] = failed  # the same failure without it: not fused's doing
                    else:
                        reasons.append(failed)
                    break
        self.why_not = "; ".join(reasons) or None

    def compile_alone(self) -> None:
        """Without a graph: compile in warm-up steps with the GPU to itself, then undo them.

        So slot threads pause for the compile here too; a failure drops compile.
        """
        saved, stream = _snapshot(self.model), self._current_stream()
        try:
            self._warm_up(saved)
        except Exception as exc:
            self._undo_warm_up(saved, stream)
            self.forward = self.model
            self.why_not = f"{self.why_not}; compile dropped: {failure_reason(exc)}"

    def _current_stream(self) -> torch.cuda.Stream | None:
        """The caller's stream (a slot thread's own one), to train on after a failure."""
        return torch.cuda.current_stream(self.device) if self.device.type == "cuda" else None

    def _undo_warm_up(
        self, saved: dict[str, torch.Tensor], stream: torch.cuda.Stream | None
    ) -> None:
        self.graph = None
        if stream is not None:
            # When capture_end raises, torch.cuda.graph never leaves its capture stream:
            # without this the next try, or the eager fallback, would run on that stream.
            torch.cuda.set_stream(stream)
            torch.cuda.synchronize(self.device)
        self.optimizer.zero_grad(set_to_none=True)
        self._restore(saved)  # a warm-up step may have run before the failure

    def _warm_up(self, saved: dict[str, torch.Tensor]) -> torch.Tensor:
        """A few real steps on dummy data (cuDNN autotuning, AdamW's state, compiling),
        then everything they changed put back; returns the full-batch input buffer."""
        # RReLU draws slopes from the CUDA generator: put its state back after the warm-up
        # so the run trains as if none had been made. Only then: slot threads share the
        # generator, and a restore would rewind another thread's RReLU draws.
        random = any(isinstance(module, nn.RReLU) for module in self.model.modules())
        rng = torch.cuda.get_rng_state(self.device) if random else None
        buffer = self._input_buffer(self.batch_size * self.copies)
        dummy = torch.arange(len(buffer) // 2, device=self.device) % len(self.images)
        buffer.copy_(torch.cat((dummy, torch.zeros_like(dummy))))
        if self.short_batch:  # made here as the full one is, not on the side stream
            self._input_buffer(self.short_batch * self.copies)
        side = torch.cuda.Stream(self.device)
        side.wait_stream(torch.cuda.current_stream(self.device))
        # torch.compile compiles in the first warm-up step. Dynamo and inductor keep
        # process-wide state, so like a capture the compile gets the process's GPU work
        # to itself: packed slot threads pause, once per model shape and process (a
        # later run of the same shape reuses the compiled code).
        alone = GATE.exclusive() if self.compiled else nullcontext()
        try:
            with alone, torch.cuda.stream(side):  # the CUDA-graph docs: off the main stream
                self._warm_up_steps(buffer)
            torch.cuda.current_stream(self.device).wait_stream(side)
        finally:  # a failed warm-up too: the eager fallback then draws as a plain run would
            if rng is not None:
                torch.cuda.set_rng_state(rng, self.device)
        # Warm-up steps were real updates: put weights, BN stats, Adam state and lr back.
        self._restore(saved)
        return buffer

    def _warm_up_steps(self, buffer: torch.Tensor) -> None:
        """WARMUP_STEPS full batches from ``buffer``, then one short batch where the run has
        one: cuDNN's benchmark mode tunes each new shape in its first step (the short
        batch's tuning took its first epoch end, inside the run's training time)."""
        for _ in range(WARMUP_STEPS):
            self._eager(buffer)
        if self.short_batch:
            n = self.short_batch * self.copies
            short = self._input_buffer(n)
            short.copy_(torch.cat((buffer[:n], torch.zeros_like(buffer[:n]))))
            self._eager(short)

    def _warm_up_and_capture(self, saved: dict[str, torch.Tensor]) -> None:
        buffer = self._warm_up(saved)
        graph = torch.cuda.CUDAGraph()
        self.optimizer.zero_grad(set_to_none=True)  # grads get allocated inside the graph's pool
        # Runs packed as threads (core.stream_slots) pause their CUDA work meanwhile.
        with GATE.exclusive(), torch.cuda.graph(graph, capture_error_mode="thread_local"):
            self._body(buffer)
        self.graph = graph

    def _restore(self, saved: dict[str, torch.Tensor]) -> None:
        with torch.no_grad():
            for name, value in self.model.state_dict().items():
                value.copy_(saved[name])  # in place: the graph records these addresses
            for state in self.optimizer.state.values():
                for value in state.values():
                    if isinstance(value, torch.Tensor):
                        value.zero_()  # AdamW's initial state: step 0, zero moments
        self.position.zero_()
        self.history.zero_()
        self.lr.fill_(self.base_lr)

    def _input_buffer(self, n: int) -> torch.Tensor:
        """The device buffer for ``n`` indices (all runs' together) and their ``n`` half ids."""
        if n not in self.inputs:
            self.inputs[n] = torch.zeros(2 * n, dtype=torch.int64, device=self.device)
        return self.inputs[n]

    # --- the step itself ---

    def _eager(self, buffer: torch.Tensor) -> None:
        # Grads must start as None: the graph's own grads live in its pool and must not
        # be accumulated into (and the short batch must not reuse stale ones).
        self.optimizer.zero_grad(set_to_none=True)
        forward = self.forward
        if len(buffer) != 2 * self.batch_size * self.copies:
            forward = self.model  # the short batch: no recompilation for one odd shape
        self._body(buffer, forward)
        self.optimizer.zero_grad(set_to_none=True)

    def _body(self, buffer: torch.Tensor, forward: Callable | None = None) -> None:
        """One optimizer step from the device buffer [indices | halves] (2n,). Graph-safe."""
        n = len(buffer) // 2
        masked, target = select_batch(self.images, buffer[:n], buffer[n:], self.table)
        if self.copies > 1:
            masked, target = side_by_side(masked, self.copies), side_by_side(target, self.copies)
        masked = masked.contiguous(memory_format=self.memory_format)
        with autocast(self.device, self.precision):
            output = (self.forward if forward is None else forward)(masked)  # (n, C, H, W)
        if self.copies == 1:
            loss = F.l1_loss(output.float(), target)
            loss.backward()
        else:
            loss = per_copy_l1(output.float(), target, self.copies)  # (K,)
            loss.sum().backward()
        self.optimizer.step()
        with torch.no_grad():
            slot = self.position.remainder(len(self.history)).view(1)
            self.history.index_copy_(0, slot, loss.detach().view(1, *self.history.shape[1:]))
            self.position.add_(1)
            cosine_lr_(self.lr, self.position, self.base_lr, self.t_max)


def _snapshot(model: nn.Module) -> dict[str, torch.Tensor]:
    return {name: value.detach().clone() for name, value in model.state_dict().items()}


def make_fast_step(
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    images: torch.Tensor,
    mask_generator: torch.Generator | Sequence[torch.Generator],
    *,
    batch_size: int,
    t_max: int,
    capacity: int,
    precision: str,
    graph: bool | None = None,
    compile_model: bool | None = None,
    env: Mapping[str, str] | None = None,
) -> FastStep:
    """Build the fast step for ``images.device`` and capture its graph where possible.

    ``mask_generator``: the run's, or a stack's runs' (``core.stack``), one each.
    ``t_max``: the cosine's length; ``capacity``: the planned optimizer steps. ``graph`` and
    ``compile_model`` default to the environment switches (compile: for long CUDA runs);
    off CUDA there is no graph (the eager fast step still runs, which is how CPU tests
    check it).
    """
    device = images.device
    cuda = device.type == "cuda"
    if cuda:
        # Fixed shapes for the whole run: let cuDNN pick its fastest kernels once.
        torch.backends.cudnn.benchmark = True
    generators = [mask_generator] if isinstance(mask_generator, torch.Generator) else mask_generator
    step = FastStep(
        model,
        optimizer,
        images,
        generators,
        batch_size=batch_size,
        t_max=t_max,
        capacity=capacity,
        precision=precision,
        channels_last=wants_channels_last(device, env),
        compile_model=(
            wants_compile(device, capacity * batch_size, env)
            if compile_model is None
            else compile_model
        ),
        fused_adam=wants_fused_adam(device, env),
    )
    why_not = wants_graph(device, env) if graph is None else None if graph else "graph disabled"
    if why_not is None:
        step.capture()
    else:
        step.why_not = why_not if cuda else None  # on CPU eager is simply what runs
        if cuda and step.compiled:
            step.compile_alone()
    return step
