"""The form's memory estimate (computed in ``core.memory``) and its byte formatting."""

from __future__ import annotations

from core.memory import activation_values, estimate_bytes

__all__ = ["activation_values", "estimate_bytes", "format_bytes"]


def format_bytes(count: float | None) -> str:
    """1536 -> '1.5 KiB'; None -> '-'."""
    if count is None:
        return "-"
    for unit in ("B", "KiB", "MiB", "GiB"):
        if abs(count) < 1024 or unit == "GiB":
            return f"{count:.0f} {unit}" if unit == "B" else f"{count:.1f} {unit}"
        count /= 1024
    return f"{count:.1f} GiB"
