"""One labelled, one-line form field that shows why its value is wrong.

The input is one terminal line (no border) so a whole sweep form fits on a
modest SSH terminal; an invalid field turns red and its reason appears under it.
"""

from __future__ import annotations

from textual.app import ComposeResult
from textual.containers import Horizontal
from textual.reactive import reactive
from textual.widget import Widget
from textual.widgets import Input, Label, Static


class ParamField(Widget):
    """``label  [value]`` with the reason it is invalid, if it is."""

    DEFAULT_CSS = """
    ParamField { height: auto; }
    ParamField > Horizontal { height: 1; }
    ParamField Label.field-label { width: 16; color: $text-muted; }
    ParamField Input { width: 1fr; background: $boost; }
    ParamField Input:focus { background: $primary 40%; }
    ParamField .field-reason { display: none; color: $error; padding-left: 16; height: auto; }
    ParamField.-invalid Input { background: $error 35%; }
    ParamField.-invalid Label.field-label { color: $error; }
    ParamField.-invalid .field-reason { display: block; }
    """

    error: reactive[str] = reactive("")
    """Why the value is invalid; empty when it is fine."""

    def __init__(self, key: str, value: str = "", label: str | None = None, hint: str = "") -> None:
        super().__init__(id=f"field-{key}")
        self.key = key
        self.hint = hint
        self._initial = value
        self._label = label if label is not None else key

    def compose(self) -> ComposeResult:
        with Horizontal():
            yield Label(self._label, classes="field-label")
            yield Input(self._initial, id=f"input-{self.key}", placeholder=self.hint, compact=True)
        yield Static("", classes="field-reason", markup=False)

    @property
    def input(self) -> Input:
        return self.query_one(Input)

    @property
    def value(self) -> str:
        return self.input.value

    @value.setter
    def value(self, text: str) -> None:
        self.input.value = text

    def watch_error(self, error: str) -> None:
        self.set_class(bool(error), "-invalid")
        self.query_one(".field-reason", Static).update(f"{self.key}: {error}" if error else "")
