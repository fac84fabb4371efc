"""``?``: every key of the dashboard on one page."""

from __future__ import annotations

from rich.table import Table
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Static

KEYS: tuple[tuple[str, tuple[tuple[str, str], ...]], ...] = (
    ("Runs (home)", (
        ("enter", "details of the highlighted run (live curves, samples)"),
        ("n", "new sweep: the form, with a live run count and parameter counts"),
        ("d", "duplicate the highlighted run's config into the form, then edit"),
        ("c", "cancel (asks first when the run is training)"),
        ("r", "retry a failed or cancelled run (asks first if it diverged: it likely would again)"),
        ("+ / -", "raise / lower priority"),
        ("t", "run next: move to the front of the queue"),
        ("x", "remove (asks first unless it is one queued run)"),
        ("space", "mark / unmark, then on to the next run; c r + - t x then act on the "
                  "marked runs shown (esc unmarks)"),
        ("C", "compare the marked runs' loss curves"),
        ("w", "start a worker here (asks device, slots, stack, order; enter starts), "
              "or stop this machine's workers (all of them, every slot; again: at once)"),
        ("/", "filter by text;  f status / F experiment filter;  esc clear marks, then filters"),
        ("o", "order: as runs train (running, next to train, then ended), or by id"),
        ("R", "results table"),
    )),
    ("Results", (
        ("enter", "open the run's detail (grouped: compare the cell's seeds)"),
        ("s / S", "next sort column / flip direction (or click a header)"),
        ("v", "choose visible columns"),
        ("f / F", "filter by experiment (F, as on the runs screen)"),
        ("g", "group seeds: one row per sweep cell, mean ± std, seeds done/total"),
        ("e / E", "export the view as markdown / CSV into the working directory"),
        ("esc", "back to runs"),
    )),
    ("New sweep form", (
        ("tab / enter", "next field (shift+tab back); a field takes 3,5,7 or 3..11:2 or [3,9]"),
        ("ctrl+s", "queue the previewed runs"),
        ("f2 / f3", "save as a sweep file / load a sweep file"),
        ("esc", "cancel (asks first when there are unsaved edits)"),
    )),
    ("Run detail / Compare", (
        ("l", "log scale on / off"),
        ("m", "compare: both losses / train only / validation only"),
        ("r", "refresh now"),
        ("esc", "back"),
    )),
    ("Everywhere", (
        ("ctrl+p", "command palette: every action by name"),
        ("? / f1", "this help (in a text field ? is typed: f1)"),
        ("q / ctrl+q", "quit (workers keep training); in a text field q is typed: ctrl+q"),
    )),
)  # fmt: skip


def keys_table(first: str | None = None) -> Table:
    """Every section of KEYS; ``first`` (the screen ``?`` was pressed on) at the top."""
    table = Table.grid(padding=(0, 2))
    table.add_column(style="bold", justify="right", min_width=8)
    table.add_column()
    ordered = sorted(KEYS, key=lambda section: section[0] != first)  # stable: the rest as listed
    for i, (section, rows) in enumerate(ordered):
        if i:
            table.add_row("", "")
        table.add_row("", f"[b u]{section}[/]")
        for key, what in rows:
            table.add_row(key, what)
    return table


class HelpScreen(ModalScreen[None]):
    """A key list, the keys of the screen it was opened on first (``section``: a
    section of KEYS, a screen's HELP_SECTION); any of escape, q or ? closes it."""

    BINDINGS = [Binding("escape,q,question_mark", "dismiss", "Close")]

    def __init__(self, section: str | None = None) -> None:
        super().__init__()
        self.section = section

    def compose(self) -> ComposeResult:
        with VerticalScroll(id="help-dialog"):
            yield Static(keys_table(self.section), id="help-keys")

    def on_mount(self) -> None:
        dialog = self.query_one("#help-dialog")
        dialog.border_title = "keys"
        dialog.border_subtitle = "esc closes"  # nothing on screen said how to leave it
