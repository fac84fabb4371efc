"""The compact workers panel docked at the bottom of the runs and results screens.

One line per worker: health dot, host, device, GPU utilisation, memory, current
run(s) and heartbeat age. It reads nothing itself: the screen's poll hands it rows.
A worker's row names one run; the screen hands the runs each worker holds
(``polling.held_runs``: a stacked worker trains several).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence

from rich.cells import cell_len, set_cell_size
from rich.text import Text
from textual.reactive import reactive

from core.queue import WorkerRow
from core.queue.views import claim_rules, format_age, format_bytes
from resconv_tui.polling import worker_health
from resconv_tui.widgets.steady_static import SteadyStatic

HEALTH_DOT = {"online": "●", "stale": "◐", "offline": "○"}
# Narrower than this (an 80-column terminal), or where a wide line would not fit (a
# stack's claim rules), a line leaves out the health word, the pid and the runs done, and
# shortens the host, so each worker stays on one line; the pid stays where two rows
# share a host (two workers of one box read the same without). What still does not fit
# is cut with an ellipsis (app.tcss), the claim rules first.
NARROW_BELOW = 100


class WorkersPanel(SteadyStatic):
    """Workers and their health; empty states say how to start one. (Steady: a poll
    that finds the panel as it was sends nothing to the terminal.)"""

    COMPONENT_CLASSES = {
        "workers-panel--online",
        "workers-panel--stale",
        "workers-panel--offline",
        "workers-panel--dim",
    }

    rows: reactive[tuple[WorkerRow, ...]] = reactive(tuple, always_update=False)
    """The rows to show (newest first), as read by the last poll."""
    now: reactive[float] = reactive(0.0)
    """The poll's clock, so heartbeat ages match the data they came with."""

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__("", id=id)
        self.border_title = "workers"
        self.held: Mapping[str, list[int]] = {}  # worker id -> its running runs
        self.starting: int | None = None  # a worker w started, not registered yet
        # Worker rows edited by hand, left out of ``rows``: each named on a line of its own.
        self.damaged: tuple[str, ...] = ()

    def show(
        self,
        workers: Sequence[WorkerRow],
        now: float,
        held: Mapping[str, list[int]],
        starting: int | None = None,
        damaged: Sequence[str] = (),
    ) -> None:
        """``starting``: the pid of a worker ``w`` started that has no row yet.
        ``damaged``: what names each damaged worker row left out of ``workers``. Each
        worker's health and "beat 2s ago" go by its silence as its row carries it
        (``WorkerRow.quiet_for``: as the dashboard watched it, ``HeardBeats.watched``)."""
        # Set both before one redraw instead of repainting twice.
        self.set_reactive(WorkersPanel.now, now)
        self.held = held
        self.starting = starting
        self.damaged = tuple(damaged)
        # Terminal-safe: a host name edited by hand with ESC in it reached the terminal.
        # (The ids, which ``held`` is keyed by, are kept as stored.)
        self.rows = tuple(w.terminal_safe() for w in workers)
        self._redraw()

    def _redraw(self) -> None:
        # A worker started with w registers once torch is imported (about 10 s on a CPU
        # box): the panel said "no workers — press w to start one" meanwhile.
        coming = f"worker pid {self.starting} starting (loading torch)…" if self.starting else ""
        if not self.rows:
            empty = Text(coming or "no workers — press w to start one", style=self._style("dim"))
            self.update(self._with_damaged(empty))
            return
        lines = Text(no_wrap=True, overflow="ellipsis")  # a line too long is cut, not wrapped
        # Slot workers say "cuda:0 slot 2/4", stacked ones "runs 9,10,11": widen those
        # columns for all rows alike; the GPU column is as wide as its widest text (narrow
        # on a CPU box), so a line fits 120 columns.
        device_width = max(7, *(cell_len(w.device) for w in self.rows))
        runs = {w.id: _runs_label(w, self.held.get(w.id, [])) for w in self.rows}
        runs_width = max(7, *(len(label) for label in runs.values()))
        hosts = Counter(
            set_cell_size(w.host, 10) for w in self.rows
        )  # as the narrow line shows them
        # The narrow line's pid column, for all rows alike, as wide as their widest pid.
        pids = max(len(str(w.pid)) for w in self.rows) if max(hosts.values()) > 1 else 0
        narrow = 0 < self.size.width < NARROW_BELOW
        rows = self._lines(device_width, runs, runs_width, pids, narrow)
        room = self.content_region.width
        if room and not narrow and any(line.cell_len > room for line in rows):
            # A stack's rules at 120 columns: the narrow form keeps them.
            rows = self._lines(device_width, runs, runs_width, pids, True)
        for i, line in enumerate(rows):
            if i:
                lines.append("\n")
            lines.append_text(line)
        if coming:
            lines.append(f"\n{coming}", style=self._style("dim"))
        self.update(self._with_damaged(lines))

    def _lines(
        self, device_width: int, runs: Mapping[str, str], runs_width: int, pids: int, narrow: bool
    ) -> list[Text]:
        """A line a worker, the GPU and runs columns as wide as their widest text."""
        gpus = {w.id: _gpu_text(w, narrow) for w in self.rows}
        gpu_width = max(len(text) for text in gpus.values())
        columns = {
            w.id: f"{gpus[w.id]:<{gpu_width}}  {runs[w.id]:<{runs_width}}" for w in self.rows
        }
        return [self._line(w, device_width, columns[w.id], pids, narrow) for w in self.rows]

    def _with_damaged(self, lines: Text) -> Text:
        """``lines`` under one line naming the damaged worker rows (a worker's state would
        be a guess: its row holds what no version writes). First: the panel shows its top
        lines only, and such a row is rare and wants mending. One line for them all: a
        line each hid the live workers under a few (an UPDATE without its WHERE)."""
        if not self.damaged:
            return lines
        first = self.damaged[0]
        if len(self.damaged) > 1:  # the count first: a line too long is cut at its end
            many = f"{len(self.damaged)} worker rows are damaged (resconv-tui status names each)"
            first = f"{many}: {first}"
        named = Text(f"⚠ {first}\n", style=self._style("stale"), no_wrap=True, overflow="ellipsis")
        named.append_text(lines)
        return named

    def on_resize(self) -> None:
        self._redraw()

    def _line(self, w: WorkerRow, device_width: int, columns: str, pids: int, narrow: bool) -> Text:
        # Host and device cut and padded by terminal cells, not characters: a host name in
        # CJK (two cells a character) pushed its line's columns out of line with the rest.
        health = worker_health(w, self.now)
        line = Text()
        beat = f"beat {format_age(w.quiet_for(self.now))} ago"
        if narrow:  # the dot's shape says the health: ● ◐ ○
            line.append(f"{HEALTH_DOT[health]} ", style=self._style(health))
            pid = f"{w.pid:<{pids}} " if pids else ""
            host, device = set_cell_size(w.host, 10), set_cell_size(w.device, device_width)
            line.append(f"{host} {pid}{device} {columns} {beat}")
        else:
            line.append(f"{HEALTH_DOT[health]} {health:<7} ", style=self._style(health))
            host, device = set_cell_size(w.host, 16), set_cell_size(w.device, device_width)
            line.append(f"{host} pid {w.pid:<7} {device} {columns}")
            line.append(f" done {w.runs_done:<3} {beat}")
        if rules := claim_rules(w):  # last: a narrow panel cuts it first
            line.append(f"  {rules}", style=self._style("dim"))
        return line

    def _style(self, name: str) -> str:
        return str(self.get_component_rich_style(f"workers-panel--{name}", partial=True))


def _runs_label(w: WorkerRow, ids: list[int]) -> str:
    """``run 4``, or ``runs 4,5,6`` for a stack, with ``stalled`` or ``stopping`` where
    the worker is (it finishes the step, or its last validation, then puts the run back
    or ends it); the worker's state when it trains none."""
    if not ids:
        return w.state
    runs = f"run {ids[0]}" if len(ids) == 1 else f"runs {','.join(map(str, ids))}"
    return f"{runs} {w.state}" if w.state in ("stalled", "stopping") else runs


def _gpu_text(w: WorkerRow, narrow: bool = False) -> str:
    """``GPU  87% mem 5.0 GiB/24.0 GiB``; ``narrow``, ``GPU  87% 5.0/24.0 GiB``: at 80
    columns the whole one, the width of every line's column, cut each line's heartbeat
    age off its end."""
    gpu = w.gpu
    if gpu.util_percent is None and gpu.memory_total is None:
        return "GPU —"
    util = "—" if gpu.util_percent is None else f"{gpu.util_percent:3.0f}%"
    used, total = format_bytes(gpu.memory_used), format_bytes(gpu.memory_total)
    if not narrow:
        return f"GPU {util} mem {used}/{total}"
    unit = total.rpartition(" ")[2]
    if used.endswith(f" {unit}"):  # one unit for both: 5.0/24.0 GiB
        used = used.removesuffix(f" {unit}")
    return f"GPU {util} {used}/{total}"
