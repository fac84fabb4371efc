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
                *((prompt(c, c in self.shown), c, c in self.shown) for c in self.columns),
                id="columns-list",
            )

    def on_mount(self) -> None:
        self.query_one("#columns-dialog").border_title = "columns"
        self.query_one(SelectionList).focus()

    def on_selection_list_selected_changed(self, event: SelectionList.SelectedChanged) -> None:
        """Each prompt says whether its column shows: the tick differs in colour alone,
        which a monochrome terminal does not show."""
        chosen = set(event.selection_list.selected)
        for index, column in enumerate(self.columns):
            event.selection_list.replace_option_prompt_at_index(
                index, prompt(column, column in chosen)
            )

    def action_apply(self) -> None:
        ticked = set(self.query_one(SelectionList).selected)
        self.dismiss([c for c in self.columns if c in ticked])


def prompt(column: str, shown: bool) -> str:
    return column if shown else f"{column}  (hidden)"
