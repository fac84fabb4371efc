"""The sample reconstruction grid as stored in ``run.samples``: ``.npy`` bytes.

A uint8 array (3, n, H, W): masked input, output and target of n validation
images. ``.npy`` keeps shape and dtype and needs only numpy to read back.
"""

from __future__ import annotations

import io
from typing import Any


def encode_samples(samples: Any) -> bytes | None:
    """uint8 array-like (numpy array or CPU tensor) -> ``.npy`` bytes (None stays None)."""
    if samples is None:
        return None
    import numpy as np  # numpy only: the queue stays torch-free

    array = np.asarray(samples, dtype=np.uint8)
    buffer = io.BytesIO()
    np.save(buffer, array, allow_pickle=False)
    return buffer.getvalue()


def decode_samples(data: bytes) -> Any:
    """``.npy`` bytes -> numpy uint8 array (3, n, H, W)."""
    import numpy as np

    return np.load(io.BytesIO(data), allow_pickle=False)
