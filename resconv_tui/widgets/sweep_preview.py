"""What the new-sweep form would queue: run count, names, parameter counts, memory."""

from __future__ import annotations

from collections.abc import Sequence

from rich.cells import cell_len
from rich.console import Console, ConsoleOptions, RenderResult
from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.containers import VerticalScroll
from textual.widgets import Static

from core.queue.views import count_of
from resconv_tui.memory_estimate import format_bytes
from resconv_tui.sweep_form import Preview
from resconv_tui.widgets.folded_name import FoldedName

MAX_ROWS = 200  # more rows than this only slow the redraw; the count says the rest


class SweepPreview(VerticalScroll, can_focus=False):
    """Not focusable on purpose: tab moves between form fields only."""

    DEFAULT_CSS = """
    SweepPreview { border: round $primary 50%; padding: 0 1; }
    SweepPreview #preview-summary { height: auto; margin-bottom: 1; }
    SweepPreview.-invalid { border: round $error; }
    """

    def compose(self) -> ComposeResult:
        yield Static("", id="preview-summary")
        yield Static("", id="preview-table")

    def on_mount(self) -> None:
        self.border_title = "Preview"

    def show(self, preview: Preview) -> None:
        self.set_class(not preview.ok, "-invalid")
        self.query_one("#preview-summary", Static).update(summary(preview))
        self.query_one("#preview-table", Static).update(run_table(preview))


def summary(preview: Preview) -> Text | PreviewSummary:
    if not preview.ok:
        # No count where none can be known (an invalid range): the reasons say what is wrong.
        head = (
            "Not valid yet"
            if preview.total is None
            else f"{count_of(preview.total, 'run')}, not valid yet"
        )
        text = Text(f"{head}:\n", style="bold red")
        for key, reason in preview.errors.items():
            label = "sweep" if key == "_sweep" else key
            text.append(f"  {label}: {reason}\n", style="red")
        return text
    counts = [run.param_count for run in preview.runs]
    memory = max(preview.memory)
    runs = "1 run" if len(counts) == 1 else f"{len(counts)} runs"
    text = Text(runs, style="bold green")
    if preview.plans:  # against the database: what ctrl+s would add
        new = sum(plan == "new" for plan in preview.plans)
        again = sum(plan.startswith("again") for plan in preview.plans)
        there = len(preview.plans) - new - again
        parts = [f"{new} new", *([f"{again} again"] if again else []),
                 *([f"{there} already queued or done"] if there else [])]  # fmt: skip
        text.append(f" ({', '.join(parts)})", style="bold" if not new and not again else "")
    low, high = min(counts), max(counts)
    text.append(f"  params {low:,}..{high:,}" if low != high else f"  params {low:,}")
    return PreviewSummary(text, format_bytes(memory), preview.notes)


class PreviewSummary:
    """The summary laid out for the width it gets: at 120 columns the form leaves the
    preview 50 cells, and "est. memory <= 4.3 GiB" wrapped inside its figure ("4.3" on
    one line, "GiB" on the next). Too wide, it says "mem <= 4.3 GiB"; still too wide,
    the memory goes whole on a line of its own."""

    def __init__(self, head: Text, memory: str, notes: Sequence[str]) -> None:
        self.head, self.memory, self.notes = head, memory, notes

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        yield self.text(options.max_width)

    def text(self, width: int) -> Text:
        forms = [f"  est. memory <= {self.memory}", f"  mem <= {self.memory}"]
        fits = [form for form in forms if self.head.cell_len + cell_len(form) <= width]
        text = self.head.copy()
        text.append(fits[0] if fits else f"\nest. memory <= {self.memory}", style="dim")
        for note in self.notes:  # what the form left out of a loaded file
            text.append(f"\n! {note}", style="yellow")
        return text


NAME_MIN = 14  # the least the name column gets before ~mem gives way ("l-2_ch-4_seed-0")


def run_table(preview: Preview) -> PreviewTable | str:
    if not preview.ok:
        return ""
    return PreviewTable(preview)


class PreviewTable:
    """The preview's runs, laid out for the width they get: where the name column would
    get less than NAME_MIN cells (an 80-column terminal; it got none, and names read
    "na/me" or vanished), the ~mem column gives way (the summary has the largest)."""

    def __init__(self, preview: Preview) -> None:
        self.preview = preview
        plans = preview.plans or ("",) * len(preview.runs)
        self.rows = [
            (str(run.index), run.name, f"{run.param_count:,}", format_bytes(memory),
             "there" if plan.startswith("skip") else plan.split(" ")[0])
            for run, memory, plan in zip(preview.runs[:MAX_ROWS], preview.memory, plans,
                                         strict=False)
        ]  # fmt: skip

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        yield self.table(options.max_width)

    def table(self, width: int) -> Table:
        queue = bool(self.preview.plans)
        headers = ["#", "name", "params", "~mem", *(["queue"] if queue else [])]
        widest = [max([len(h), *(len(r[i]) for r in self.rows)]) for i, h in enumerate(headers)]
        others = sum(w for i, w in enumerate(widest) if i != 1) + 2 * (len(headers) - 1)
        memory = width - others >= NAME_MIN
        table = Table(box=None, pad_edge=False, expand=True, header_style="bold")
        table.add_column("#", justify="right", no_wrap=True)
        table.add_column("name", ratio=1, overflow="fold")
        table.add_column("params", justify="right", no_wrap=True)
        if memory:
            table.add_column("~mem", justify="right", no_wrap=True)
        if queue:
            table.add_column("queue", no_wrap=True)  # new / again / there
        for index, name, params, mem, word in self.rows:
            table.add_row(index, FoldedName(name), params, *([mem] if memory else []),
                          *([word] if queue else []))  # fmt: skip
        if len(self.preview.runs) > MAX_ROWS:
            more = f"... and {len(self.preview.runs) - MAX_ROWS} more"
            table.add_row("", more, "", *([""] if memory else []), *([""] if queue else []))
        return table
