"""``v`` on the results screen: tick the columns to show."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Label, SelectionList


class ColumnsScreen(ModalScreen[list[str] | None]):
    """Dismisses with the ticked columns in table order (enter), or None (escape)."""

    BINDINGS = [
        Binding("enter", "apply", "Apply", priority=True),
        Binding("escape", "dismiss(None)", "Cancel"),
    ]

    def __init__(self, columns: list[str], shown: list[str]) -> None:
        super().__init__()
        self.columns = columns
        self.shown = set(shown)

    def compose(self) -> ComposeResult:
        with Vertical(id="columns-dialog"):
            yield Label("space: show/hide · enter: apply · esc: cancel")
            yield SelectionList[str](
                *((c, c, c in self.shown) for c in self.columns), id="columns-list"
            )

    def on_mount(self) -> None:
        self.query_one("#columns-dialog").border_title = "columns"
        self.query_one(SelectionList).focus()

    def action_apply(self) -> None:
        ticked = set(self.query_one(SelectionList).selected)
        self.dismiss([c for c in self.columns if c in ticked])
