"""The sample reconstruction grid as stored in ``run.samples``: ``.npy`` bytes.

A uint8 array (3, n, H, W): masked input, output and target of n validation
images. ``.npy`` keeps shape and dtype and needs only numpy to read back.
"""

from __future__ import annotations

import io
import math
from typing import Any

from core.config import IMAGE_SIZES
from core.errors import first_line
from core.queue.errors import QueueError

NPY_MAGIC = b"\x93NUMPY"  # how every .npy file starts
# Bounds no run reaches: a run saves 8 images (core.train's SAMPLE_COUNT) of at most
# max(IMAGE_SIZES) a side. Past them a grid was made by hand, and drawing it in full
# (3 x 1 x 200000 x 1: 300,036 lines of `show --samples`) helps nobody.
MAX_SAMPLE_SIDE = 4 * max(IMAGE_SIZES)
MAX_SAMPLE_COUNT = 64


def encode_samples(samples: Any) -> bytes | None:
    """uint8 array-like (numpy array or CPU tensor) -> ``.npy`` bytes (None stays None)."""
    if samples is None:
        return None
    import numpy as np  # numpy only: the queue stays torch-free

    array = np.asarray(samples, dtype=np.uint8)
    buffer = io.BytesIO()
    np.save(buffer, array, allow_pickle=False)
    return buffer.getvalue()


def decode_samples(data: bytes, run_id: int) -> Any:
    """``.npy`` bytes -> numpy uint8 array (3, n, H, W).

    Bytes that are no such array (a row edited by hand) are a QueueError naming run
    ``run_id``, not a numpy traceback (in ``show --samples``, or the dashboard)."""
    import numpy as np

    if not isinstance(data, bytes):  # SQLite holds whatever a hand wrote, text too
        raise _damaged(run_id, f"{type(data).__name__}, not bytes")
    if not data.startswith(NPY_MAGIC):  # np.load would call it a pickle it may not load
        raise _damaged(run_id, "not a .npy array")
    stream = io.BytesIO(data)
    try:
        # The header first: one that claims 3 x 10**9 x 1000 x 1000 made np.load try to
        # allocate petabytes (a MemoryError), for a blob of a few bytes.
        major, _ = np.lib.format.read_magic(stream)
        if major not in (1, 2, 3):  # the versions np.load reads
            raise ValueError(f"format version {major}")
        read_header = np.lib.format.read_array_header_1_0
        if major != 1:
            read_header = np.lib.format.read_array_header_2_0
        shape, _, dtype = read_header(stream)
        sizes_ok = all(type(n) is int and n >= 1 for n in shape)  # no bool, none empty
        if dtype != np.uint8 or len(shape) != 4 or shape[0] != 3 or not sizes_ok:
            shaped = " x ".join(str(n) for n in shape)
            raise _damaged(run_id, f"an array of {dtype} shaped {shaped}, not uint8 3 x n x H x W")
        if len(data) - stream.tell() != math.prod(shape):
            raise _damaged(run_id, f"its header says {math.prod(shape):,} bytes of pixels, it "
                           f"holds {len(data) - stream.tell():,}")  # fmt: skip
        if too_large := _too_large(shape):  # before np.load: it holds them all
            raise _damaged(run_id, too_large)
        return np.load(io.BytesIO(data), allow_pickle=False)
    except QueueError:
        raise
    except Exception as exc:  # noqa: BLE001 - numpy's header parser, on bytes made by hand,
        # raises IndexError, tokenize's TokenError, RecursionError... as well as ValueError
        raise _damaged(run_id, f"not a .npy array: {first_line(exc)[:80]}") from None


def _too_large(shape: tuple[int, ...]) -> str:
    """Why a 3 x n x H x W grid is larger than any run makes, or "" if it is not."""
    _, count, height, width = shape
    # The bounds are margins above what a run makes, not its sizes: "a run saves at most
    # 64" and "a run's are at most 256 a side" told of runs that save 8, at most 64 a side.
    if count > MAX_SAMPLE_COUNT:
        return f"{count:,} images, over {MAX_SAMPLE_COUNT}: more than any run saves"
    if max(height, width) > MAX_SAMPLE_SIDE:
        largest = max(IMAGE_SIZES)
        return (
            f"images {height:,} x {width:,}, over {MAX_SAMPLE_SIDE} a side "
            f"(a run's are at most {largest} x {largest})"
        )
    return ""


def _damaged(run_id: int, problem: str) -> QueueError:
    return QueueError(
        f"run {run_id}'s sample images are damaged ({problem}): retry the run to make them "
        "again, or set its samples to NULL with an SQL client"
    )
