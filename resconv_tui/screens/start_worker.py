"""``w`` with no worker here: choose how the new worker trains, then start it.

The four fields are the ``resconv-tui worker`` options a GPU box needs from the
dashboard: the device, ``--slots`` (runs at once), ``--stack`` (seeds of one cell as
one model) and ``--order``. They come prefilled with the last choice; enter starts,
escape starts nothing. A bad field turns red with its reason and nothing starts; a
``cuda:N`` is checked against the GPUs NVML counts here (asked in a thread as the
dialog opens: NVML can take a while to start on a many-GPU box without its daemon).
"""

from __future__ import annotations

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Input, Label, Static

from core.gpu import visible_gpu_count
from resconv_tui.widgets.param_field import ParamField
from resconv_tui.worker_launcher import WorkerOptions, read_worker_fields

FIELDS = (  # key, what it means (under the title, and in an empty field)
    ("device", "auto (a CUDA GPU if there is one), cpu, cuda or cuda:N"),
    ("slots", "runs trained at once on the device (1: one at a time)"),
    ("stack", "queued seeds of one cell trained as one model (1: off)"),
    ("order", "queue (priority, then age) or largest-first (most work)"),
)


class StartWorkerScreen(ModalScreen[WorkerOptions | None]):
    """Dismisses with the chosen options, or None when cancelled."""

    BINDINGS = [Binding("escape", "cancel", "Cancel")]

    def __init__(self, options: WorkerOptions) -> None:
        super().__init__()
        self.options = options
        self.gpus: int | None = None  # GPUs CUDA sees here, once counted (None: unknown)

    def compose(self) -> ComposeResult:
        values = self.options.fields()
        with Vertical(id="start-worker-dialog"):
            yield Label("Start a worker on this machine", id="start-worker-title")
            yield Static("\n".join(f"{key:<8}{hint}" for key, hint in FIELDS),
                         id="start-worker-hints")  # fmt: skip
            for key, hint in FIELDS:
                yield ParamField(key, values[key], hint=hint)
            with Horizontal(id="start-worker-buttons"):
                yield Button("Start (enter)", variant="primary", id="start-worker-start")
                yield Button("Cancel (esc)", id="start-worker-cancel")

    def on_mount(self) -> None:
        self.query_one("#input-device", Input).focus()
        self.run_worker(self.count_gpus, thread=True, exit_on_error=False)

    def count_gpus(self) -> None:
        self.gpus = visible_gpu_count()

    def field_values(self) -> dict[str, str]:
        return {field.key: field.value for field in self.query(ParamField)}

    @on(Input.Submitted)
    @on(Button.Pressed, "#start-worker-start")
    def start(self) -> None:
        options, errors = read_worker_fields(self.field_values(), self.gpus)
        for field in self.query(ParamField):
            field.error = errors.get(field.key, "")
        if options is not None:
            self.dismiss(options)

    @on(Input.Changed)
    def recheck(self) -> None:
        """A field shown wrong is judged again as it is edited: corrected, its reason
        goes (it stayed until enter, beside a value that was right by then)."""
        _, errors = read_worker_fields(self.field_values(), self.gpus)
        for field in self.query(ParamField):
            if field.error:
                field.error = errors.get(field.key, "")

    @on(Button.Pressed, "#start-worker-cancel")
    def action_cancel(self) -> None:
        self.dismiss(None)
