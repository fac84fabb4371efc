"""A small modal that asks for a file path: enter accepts, escape cancels."""

from __future__ import annotations

import os

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Input, Label


class PathPrompt(ModalScreen[str | None]):
    """Dismisses with the typed path (stripped), or None when cancelled or empty."""

    DEFAULT_CSS = """
    PathPrompt { align: center middle; }
    PathPrompt > Vertical {
        width: 70; height: auto; padding: 1 2; border: thick $primary; background: $surface;
    }
    PathPrompt Label { width: 1fr; }
    PathPrompt .prompt-help { color: $text-muted; }
    """
    BINDINGS = [Binding("escape", "cancel", "Cancel")]

    def __init__(self, title: str, default: str = "") -> None:
        super().__init__()
        self.title_text = title
        self.default = default

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Label(self.title_text, markup=False)
            # A folder (f3's "experiments/") is to be typed on from, not typed over; a
            # whole file name (f2's) is selected, to be kept or replaced at once.
            folder = self.default.endswith(("/", os.sep))
            yield Input(self.default, id="path-input", select_on_focus=not folder)
            yield Label("enter: ok   escape: cancel", classes="prompt-help")

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        self.dismiss(event.value.strip() or None)

    def action_cancel(self) -> None:
        self.dismiss(None)
