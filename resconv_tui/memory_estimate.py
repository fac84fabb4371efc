"""The form's memory estimate (computed in ``core.memory``) and its byte formatting."""

from __future__ import annotations

from core.memory import activation_values, estimate_bytes
from core.queue.views import format_bytes

__all__ = ["activation_values", "estimate_bytes", "format_bytes"]
