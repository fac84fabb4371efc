"""What a failure's traceback still keeps alive (a plain module: tests import it directly)."""

from __future__ import annotations

from types import FrameType
from typing import Any


def frames_of(exc: BaseException) -> list[FrameType]:
    """The frames of ``exc``'s traceback, outermost first."""
    frames, tb = [], exc.__traceback__
    while tb is not None:
        frames.append(tb.tb_frame)
        tb = tb.tb_next
    return frames


def locals_of_type(frames: list[FrameType], kind: type) -> list[Any]:
    """The local variables of ``frames`` that are ``kind`` instances."""
    return [v for f in frames for v in f.f_locals.values() if isinstance(v, kind)]
