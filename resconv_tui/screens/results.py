"""Results: finished runs as the logbook's table, sortable, filterable, exportable.

The table itself is ``core.queue.views.results_table`` (the same one the
``results`` CLI prints, with target and difference columns where the sweep
file published targets). Sorting and column choice happen here, on the rows
already read, so they never wait for the database.
"""

from __future__ import annotations

import itertools
import math
import time
from pathlib import Path
from typing import Any

from rich.cells import cell_len
from rich.text import Text
from textual import events, on, work
from textual.app import ComposeResult, SystemCommand
from textual.binding import Binding
from textual.message import Message
from textual.reactive import reactive
from textual.screen import Screen
from textual.timer import Timer
from textual.widgets import DataTable, Header, Static
from textual.worker import get_current_worker

from core.errors import ResconvError, terminal_safe
from core.queue import RunRow, RunStatus, WorkerRow
from core.queue import views as v
from core.run_folders import experiment_folder
from resconv_tui.context import DashboardContext, ResultsChoices
from resconv_tui.notice_text import notice_width, path_lines
from resconv_tui.polling import SettledRuns, held_runs, read_runs, watched_workers
from resconv_tui.screens.columns import ColumnsScreen
from resconv_tui.screens.seen import on_view
from resconv_tui.widgets.fit_footer import FitFooter
from resconv_tui.widgets.rows_table import RowsTable
from resconv_tui.widgets.workers_panel import WorkersPanel

DEFAULT_VIEW = ResultsChoices()
EXPORTS = {"markdown": ("md", v.to_markdown), "csv": ("csv", v.to_csv)}


# Loss columns on screen: one number of decimals down the column, so the digits line up
# (6 significant digits gave 0.0991 over 0.161 over 0.0512259). Six, as the logbook's
# figures and the Δ target column, or more where a loss is so small that six would keep
# fewer than four significant digits.
ALIGNED = (v.LOSS, v.TARGET)
LOSS_DECIMALS = 6
LOSS_DIGITS = 4
MAX_DECIMALS = 12


def why_not_exported(path: Path, error: OSError) -> str:
    """Why the export to ``path`` failed. Where its folder (the dashboard's, by default) was
    removed after the dashboard opened, "results-all-....md: No such file or directory"
    read as the new file being missing: that the folder is gone is said, as ``w`` says it."""
    if isinstance(error, FileNotFoundError) and not path.parent.is_dir():
        return (
            f"cannot write {path.name}: the folder {path.parent} is gone (removed after the "
            "dashboard opened): open the dashboard in a folder you can write (exports go to "
            "the dashboard's folder)"
        )
    return f"{path}: {error.strerror or error}"


def screen_column(column: str, values: list[Any]) -> list[str]:
    """A column's values as the screen shows them: ``v.format_cell``'s, but losses with one
    number of decimals, and a std with 2 significant digits (0.00018, not 0.000175594):
    over a few seeds a third digit is noise, and the eleven characters pushed the grouped
    view with targets past 120 columns."""
    if column == v.STD:
        return [v.format_cell(column, x) if x is None else f"{x:#.2g}" for x in values]
    if column in ALIGNED and v._is_numeric(values):
        places = loss_decimals([x for x in values if x is not None])
        return [v.format_cell(column, x) if x is None else f"{x:.{places}f}" for x in values]
    return [v.format_cell(column, x) for x in values]


METER_LEAST = 5  # stars of the worst run's bar where the screen has less room

# Headers where the table is wider than the screen (80 columns over SSH, a grouped view
# with targets: the logbook minutes and meter were cut at the edge), with one cell
# between columns instead of two: ``v.NARROW_SCREEN_LABELS``, which `results --sort`
# takes too. Each short header the line under the table explains (``lb min: logbook
# minutes``), but "loss", the only loss a results table has besides the target's columns.
NARROW_MEANINGS = {
    v.MINUTES: "train minutes",
    v.LOGBOOK_MINUTES: "logbook minutes",
    v.TARGET_PARAMS: "target params",
    v.MEMORY: "peak memory",
}


# Where the whole legend is wider than its line (80 columns with targets and peak memory
# shown: 88 cells, wrapped to a third line that cost the table a row), the two minutes
# columns share one entry: "lb" is all that "lb min" adds to "min".
PAIRED_MINUTES = "min: train minutes, lb: logbook's"


def legend_line(columns: list[str], room: int) -> str:
    """What the short headers among ``columns`` stand for, on one line of ``room`` cells
    where the shorter wording lets it (0: not laid out yet; narrower than 80 columns
    with every short header shown, it still wraps)."""
    said = {c: f"{v.NARROW_SCREEN_LABELS[c]}: {NARROW_MEANINGS[c]}"
            for c in columns if c in NARROW_MEANINGS}  # fmt: skip
    whole = " · ".join(said.values())
    if not room or cell_len(whole) <= room or not {v.MINUTES, v.LOGBOOK_MINUTES} <= set(said):
        return whole
    said[v.MINUTES] = PAIRED_MINUTES  # in the minutes' place, dict order kept
    del said[v.LOGBOOK_MINUTES]
    return " · ".join(said.values())


def fit_meters(meters: list[str], room: int) -> list[str]:
    """The meter's bars (1 to 21 stars) scaled to ``room`` cells where all 21 would not
    fit: cut at the screen's edge, losses of 0.31 and 0.43 both read "******" at 80
    columns. With less than ``METER_LEAST`` cells left (many columns: the table scrolls
    sideways anyway) they get that many, so that they still differ where they are cut."""
    longest = max((len(m) for m in meters), default=0)
    room = min(longest, max(room, METER_LEAST))  # never more stars than the logbook's
    if room >= longest or longest <= 1:
        return meters
    return [m and "*" * (1 + (len(m) - 1) * (room - 1) // (longest - 1)) for m in meters]


def loss_decimals(values: list[float]) -> int:
    """Decimals that show every value of a loss column with 4 significant digits, at least 6."""
    smallest = min((abs(x) for x in values if x and math.isfinite(x)), default=1.0)
    needed = LOSS_DIGITS - 1 - math.floor(math.log10(smallest))
    return min(max(LOSS_DECIMALS, needed), MAX_DECIMALS)


def table_width(labels: list[str], shown: list[list[str]], gap: int) -> int:
    """Cells the columns take with ``gap`` cells between them (and half of it at each
    edge), each as wide as its header or widest value (a meter at its fewest stars)."""
    widths = [
        max([cell_len(label), *map(cell_len, texts)])
        for label, texts in zip(labels, shown, strict=True)
    ]
    return sum(widths) + gap * len(widths)


def build_results(runs: list[RunRow]) -> v.Table:
    """The logbook table of ``runs`` with every column (rate and memory, and the targets
    where the sweep file gave them)."""
    if not runs:
        return v.Table(columns=(v.RUN, v.LOSS, v.PARAMS, v.MINUTES), rows=())
    return v.results_table(runs, columns=v.ALL_COLUMNS)


def select_columns(table: v.Table, hidden: frozenset[str]) -> v.Table:
    keep = [i for i, c in enumerate(table.columns) if c not in hidden]
    rows = tuple(tuple(row[i] for i in keep) for row in table.rows)
    columns = tuple(table.columns[i] for i in keep)
    return v.Table(columns, rows, tuple(c for c in table.swept if c in columns), table.runs)


class ResultsScreen(Screen[None]):
    """Finished runs: enter opens, s/S/header click sort, v columns, f (or F) experiment,
    g seeds, e/E export."""

    HELP_SECTION = "Results"  # what ? shows first (screens.help.KEYS)

    BINDINGS = [
        Binding("escape", "app.pop_screen", "Runs"),
        Binding("s", "cycle_sort", "Sort"),
        Binding("S", "flip_sort", "Flip", show=False),  # 80 columns: in help instead
        Binding("v", "choose_columns", "Columns"),
        Binding("f", "cycle_experiment", "Experiment"),
        # F filters by experiment on the runs screen (f is status there): the same here.
        Binding("F", "cycle_experiment", "Experiment", show=False),
        Binding("g", "toggle_cells", "Seeds"),
        Binding("e", "export('markdown')", "Markdown"),  # exported (help says so)
        Binding("E", "export('csv')", "CSV"),
    ]

    class ResultsRefreshed(Message):
        """A poll of the runs and workers finished."""

        def __init__(
            self,
            runs: tuple[RunRow, ...],
            settled: SettledRuns,
            workers: list[WorkerRow],
            now: float,
            error: str = "",
        ) -> None:
            super().__init__()
            self.runs, self.settled, self.workers = runs, settled, workers
            self.now, self.error = now, error

    # A screen opens with the session's last view (ctx.results); these are the first R's.
    sort_column: reactive[str] = reactive(DEFAULT_VIEW.sort_column, init=False)
    """The column rows are sorted by (validation loss, as in the logbook, by default)."""
    descending: reactive[bool] = reactive(DEFAULT_VIEW.descending, init=False)
    """Sort direction; S flips it."""
    hidden: reactive[frozenset[str]] = reactive(DEFAULT_VIEW.hidden, init=False)
    """Columns the person chose not to see (v)."""
    experiment: reactive[str | None] = reactive(DEFAULT_VIEW.experiment, init=False)
    """Show only this experiment's runs (f); None shows all."""
    by_cell: reactive[bool] = reactive(DEFAULT_VIEW.by_cell, init=False)
    """One row per sweep cell, mean ± std over its seeds (g); False: one row per run."""

    def __init__(self, ctx: DashboardContext) -> None:
        super().__init__()
        self.ctx = ctx
        choices = ctx.results
        self.set_reactive(ResultsScreen.sort_column, choices.sort_column)
        self.set_reactive(ResultsScreen.descending, choices.descending)
        self.set_reactive(ResultsScreen.hidden, choices.hidden)
        self.set_reactive(ResultsScreen.experiment, choices.experiment)
        self.set_reactive(ResultsScreen.by_cell, choices.by_cell)
        self.runs: tuple[RunRow, ...] = ()  # every status: cells count the seeds to come
        # The table changes only when a run that is not running changes (one ends, is
        # queued or removed); a training run's progress must not redraw it (and reset
        # the cursor) every poll.
        self.settled = SettledRuns()
        self.view: v.Table = build_results([])
        self.sorted_by = self.sort_column  # what the view is sorted by: sort_column if it has it
        self.narrow = False  # too wide for the screen: short headers (v.NARROW_SCREEN_LABELS)
        self._timer: Timer | None = None

    def compose(self) -> ComposeResult:
        yield Header()
        # The run (or first swept) column stays put when the table scrolls sideways.
        yield RowsTable(id="results-table", cursor_type="row", zebra_stripes=True, fixed_columns=1)
        yield Static(id="results-status", markup=False)
        yield WorkersPanel(id="workers-panel")
        yield FitFooter()

    def on_mount(self) -> None:
        self.sub_title = f"results — {self.ctx.db_name}"
        table = self.query_one(DataTable)
        table.focus()
        # Scrolled sideways, the status line says which side the hidden columns are on.
        self.watch(table, "scroll_x", lambda _: self._status(), init=False)
        self.refresh_now()

    def on_resize(self, event: events.Resize) -> None:
        """The headers, the space between columns (``_fill``) and the meter's bars
        (``fit_meters``) fit the table's width: measured again; the status line too."""
        table = self.query_one(DataTable)
        if self.view.columns:
            row = table.cursor_row
            self._fill(table)
            table.move_cursor(row=row, animate=False)
        self._status()
        self.call_after_refresh(self._status)  # columns laid out anew: whether it scrolls

    # ----- polling (same pattern as the runs screen) ---------------------------------

    def refresh_now(self) -> None:
        if self._timer is not None:
            self._timer.stop()
        self._poll()

    @work(thread=True, exclusive=True, group="results-poll")
    def _poll(self) -> None:
        worker, now = get_current_worker(), self.ctx.clock()
        try:
            runs, settled = read_runs(self.ctx.repo, self.settled)
            # Judged as the runs screen's panel judges them (the app's memory of beats).
            workers = watched_workers(self.ctx.repo, now, self.ctx.heard)[0]
            message = self.ResultsRefreshed(runs, settled, workers, now)
        except ResconvError as exc:
            error = f"{exc.title}: {exc}"
            message = self.ResultsRefreshed(self.runs, self.settled, [], now, error)
        if not worker.is_cancelled:
            self.post_message(message)

    def on_results_screen_results_refreshed(self, message: ResultsRefreshed) -> None:
        self._timer = self.set_timer(self.ctx.poll_interval_s * 2, self._tick)
        if message.error:
            self.query_one("#results-status", Static).update(message.error)
            return
        held = held_runs(message.runs, message.workers)
        self.query_one(WorkersPanel).show(message.workers, message.now, held)
        if message.settled.signature != self.settled.signature:
            self.runs, self.settled = message.runs, message.settled
            self._redraw()
        else:  # each poll: a table laid out since (a column more) may scroll sideways now
            self._status()

    def _tick(self) -> None:
        if on_view(self):  # covered (a run's detail): on_screen_resume polls again
            self.refresh_now()

    def on_screen_resume(self) -> None:
        if self._timer is not None:  # back from a run's detail; not the first show
            self.refresh_now()

    # ----- the view ------------------------------------------------------------------

    def full_table(self) -> v.Table:
        every = [r for r in self.runs if self.experiment in (None, r.experiment)]
        done = [r for r in every if r.status == RunStatus.SUCCEEDED]
        if not self.by_cell:
            return build_results(done)
        return v.results_by_cell(done, every, columns=v.ALL_COLUMNS)

    def _redraw(self) -> None:
        table = self.query_one(DataTable)
        row, chosen = table.cursor_row, self._runs_at(table.cursor_row)
        full = self.full_table()
        # The chosen column is kept while a view lacks it (another experiment's has no
        # targets) or the person hid it (v): it sorts again once it is back. Meanwhile,
        # validation loss (or the first column shown), so that the order on screen is
        # one a header's arrow shows.
        shown = [c for c in full.columns if c not in self.hidden] or list(full.columns)
        self.sorted_by = self.sort_column
        if self.sort_column not in shown:
            self.sorted_by = v.LOSS if v.LOSS in shown else shown[0]
        ordered = v.sorted_by(full, [("-" if self.descending else "") + self.sorted_by])
        self.view = select_columns(ordered, self.hidden)
        self._fill(table)
        # The cursor stays on its run (its cell) through a run ending elsewhere in the
        # table, a new sort, a column shown: the refill put it back on the first row at
        # every run that ended.
        rows = [i for i, ids in enumerate(self.view.runs) if chosen & set(ids)]
        table.move_cursor(row=rows[0] if rows else row, animate=False)
        self._status()
        self.call_after_refresh(self._status)  # the table's width is known once laid out

    def _runs_at(self, row: int) -> frozenset[int]:
        """The run ids of the view's ``row`` (a cell's seeds, grouped), none past its end."""
        return frozenset(self.view.runs[row]) if 0 <= row < len(self.view.runs) else frozenset()

    def _fill(self, table: DataTable[Any]) -> None:
        table.clear(columns=True)
        numeric = [v._is_numeric(self.view.column(c)) for c in self.view.columns]
        # Terminal-safe (a name edited by hand with ESC in it); the view, which e/E
        # export, keeps the stored text.
        shown = [[terminal_safe(text) for text in screen_column(c, self.view.column(c))]
                 for c in self.view.columns]  # fmt: skip
        room = table.size.width - table.styles.scrollbar_size_vertical
        labels = self._labels(v.SCREEN_LABELS)
        # Laid out (on_resize fills again once it is) and too wide with two cells between
        # columns, the meter at its fewest stars: short headers, one cell between them;
        # still too wide, it scrolls sideways.
        least = [fit_meters(texts, 0) if c == v.METER else texts
                 for c, texts in zip(self.view.columns, shown, strict=True)]  # fmt: skip
        self.narrow = bool(table.size.width) and table_width(labels, least, 2) > room
        gap = 1 if self.narrow else 2
        if self.narrow:
            labels = self._labels({**v.SCREEN_LABELS, **v.NARROW_SCREEN_LABELS})
        if v.METER in self.view.columns and table.size.width:
            at = self.view.columns.index(v.METER)
            others = table_width(labels[:at] + labels[at + 1 :], shown[:at] + shown[at + 1 :], gap)
            shown[at] = fit_meters(shown[at], room - others - gap)
        # One cell between columns: no padding, and a space before each header and value
        # (the first column's too, as the padding's cell was).
        table.cell_padding = gap // 2
        lead = " " if self.narrow else ""
        for column, label in zip(self.view.columns, labels, strict=True):
            table.add_column(lead + label, key=column)
        for i in range(len(self.view.rows)):
            cells = [Text(lead + texts[i], justify="right" if n else "left")
                     for texts, n in zip(shown, numeric, strict=True)]  # fmt: skip
            table.add_row(*cells)

    def _labels(self, names: dict[str, str]) -> list[str]:
        """The view's headers by ``names``, the sort column's with its arrow."""
        arrow = " ▼" if self.descending else " ▲"
        return [names.get(c, c) + (arrow if c == self.sorted_by else "") for c in self.view.columns]

    def _status(self) -> None:
        direction = "descending" if self.descending else "ascending"
        exp = terminal_safe(self.experiment or "all experiments")
        order = f"sorted by {self.sorted_by} {direction}"
        if self.sorted_by != self.sort_column:
            why = "is hidden" if self.sort_column in self.hidden else "is not in this view"
            order += f" ({self.sort_column} {why})"
        rows = len(self.view.rows)
        what = f"{v.count_of(rows, 'cell')} (mean over seeds)" if self.by_cell else None
        what = what or v.count_of(rows, "finished run")
        status = self.query_one("#results-status", Static)
        # Columns beyond the right edge (grouped, at 80 columns): said, or cut numbers
        # ("0.1" for 0.11) read as the values.
        more = self._more_columns(self.query_one(DataTable))
        line = f"{what} · {exp} · {order}{more}"
        room = status.content_region.width
        legend = legend_line(list(self.view.columns), room)
        if room and cell_len(line) > room:  # 80 columns: the header's arrow says the order
            arrow = "▼" if self.descending else "▲"
            what = what.removesuffix(" (mean over seeds)")  # the ± column says so
            line = f"{what} · {exp} · by {self.sorted_by} {arrow}{more}"
            if cell_len(line) > room and not self.experiment:  # "all experiments" goes
                line = f"{what} · by {self.sorted_by} {arrow}{more}"
        status.update(f"{line}\n{legend}" if self.narrow and legend else line)

    @staticmethod
    def _more_columns(table: DataTable[Any]) -> str:
        """Which sides columns lie beyond: " · more columns →" said so at the right edge
        too, where the user had scrolled as far as the table goes."""
        left, right = table.scroll_x > 0, table.scroll_x < table.max_scroll_x
        if not (left or right):
            return ""
        return f" · {'← ' if left else ''}more columns{' →' if right else ''}"

    def _chosen(self) -> None:
        """A key changed the view: keep it for the next R, and redraw."""
        self.ctx.results = ResultsChoices(
            self.sort_column, self.descending, self.hidden, self.experiment, self.by_cell
        )
        self._redraw()

    def watch_sort_column(self) -> None:
        self._chosen()

    def watch_descending(self) -> None:
        self._chosen()

    def watch_hidden(self) -> None:
        self._chosen()

    def watch_experiment(self) -> None:
        self._chosen()

    def watch_by_cell(self) -> None:
        self._chosen()

    # ----- keys ----------------------------------------------------------------------

    def action_cycle_sort(self) -> None:
        columns = list(self.view.columns)
        i = columns.index(self.sorted_by) if self.sorted_by in columns else -1
        self.sort_column = columns[(i + 1) % len(columns)]

    def action_flip_sort(self) -> None:
        self.descending = not self.descending

    @on(DataTable.HeaderSelected)
    def _header_clicked(self, event: DataTable.HeaderSelected) -> None:
        column = str(event.column_key.value)
        if column == self.sorted_by:
            self.descending = not self.descending
        else:
            self.sort_column = column

    def action_cycle_experiment(self) -> None:
        finished = (r for r in self.runs if r.status == RunStatus.SUCCEEDED)
        names = [None, *dict.fromkeys(r.experiment for r in finished)]
        i = names.index(self.experiment) if self.experiment in names else 0
        self.experiment = names[(i + 1) % len(names)]

    def action_toggle_cells(self) -> None:
        self.by_cell = not self.by_cell

    @on(DataTable.RowSelected, "#results-table")
    def _row_selected(self) -> None:
        self.action_open_row()

    def action_open_row(self) -> None:
        """enter: a run's detail (curves, samples, config); a cell's seeds side by side."""
        row = self.query_one(DataTable).cursor_row
        if not self.view.runs or not 0 <= row < len(self.view.runs):
            return
        ids = list(self.view.runs[row])
        if len(ids) == 1:
            from resconv_tui.screens.run_detail import RunDetailScreen

            self.app.push_screen(
                RunDetailScreen(
                    self.ctx.db_url, ids[0], heard=self.ctx.heard, db_hint=self.ctx.db_hint
                )
            )
        else:
            from resconv_tui.screens.compare import CompareScreen

            self.app.push_screen(CompareScreen(self.ctx.db_url, ids))

    def action_choose_columns(self) -> None:
        columns = list(self.full_table().columns)

        def chosen(visible: list[str] | None) -> None:
            # Only the columns offered change: a hidden one the table lacks now (rate and
            # memory while no run has finished or before the first poll, another
            # experiment's swept key) stays hidden, not shown again once it comes back.
            if visible is not None:
                kept = self.hidden - set(columns)
                self.hidden = kept | {c for c in columns if c not in visible}

        shown = [c for c in columns if c not in self.hidden]
        self.app.push_screen(ColumnsScreen(columns, shown), chosen)

    def action_export(self, fmt: str) -> Path | None:
        """Write the current view (columns, order, filter) and say where; None if empty."""
        if not self.view.rows:
            # A file with a header only (or nothing) would pass for a result.
            self.notify("nothing to export", severity="warning")
            return None
        suffix, render = EXPORTS[fmt]
        stamp = time.strftime("%Y%m%d-%H%M%S", time.localtime(self.ctx.clock()))
        # An experiment may be named "a/b", "..", or 100 characters of 実験 (300 bytes):
        # the file name takes it as its checkpoint folder does.
        experiment = experiment_folder(self.experiment or "all")
        if fmt == "csv" and set(self.view.columns) == {v.METER}:  # CSV leaves it out
            self.notify("CSV leaves the meter out, and it is the only column shown: show "
                        "another (v), or export markdown (e)", title="Not exported",
                        severity="warning")  # fmt: skip
            return None
        text = render(self.view) + "\n"
        for number in itertools.count(1):
            # Two exports in one second (e, S, e) each get their own file.
            again = "" if number == 1 else f"-{number}"
            path = self.ctx.export_dir / f"results-{experiment}-{stamp}{again}.{suffix}"
            try:
                with open(path, "x", encoding="utf-8") as handle:
                    handle.write(text)
            except FileExistsError:
                continue
            except OSError as exc:
                self.notify(why_not_exported(path, exc), title="Not exported",
                            severity="error")  # fmt: skip
                return None
            break
        shown = path_lines(path, notice_width(self.app.size.width))
        self.notify(f"exported {v.count_of(len(self.view.rows), 'row')} to\n{shown}")
        return path

    def palette_commands(self) -> Any:
        yield SystemCommand(
            "Open row", "Results: the run's detail, or a cell's seeds compared (enter)",
            self.action_open_row,
        )  # fmt: skip
        yield SystemCommand("Sort by next column", "Results (s)", self.action_cycle_sort)
        yield SystemCommand("Flip sort direction", "Results (S)", self.action_flip_sort)
        yield SystemCommand("Choose columns", "Results (v)", self.action_choose_columns)
        yield SystemCommand("Filter by experiment", "Results (f)", self.action_cycle_experiment)
        yield SystemCommand(
            "Group seeds", "Results: mean ± std per sweep cell (g)", self.action_toggle_cells
        )
        yield SystemCommand(
            "Export markdown", "Results (e)", lambda: self.action_export("markdown")
        )
        yield SystemCommand("Export CSV", "Results (E)", lambda: self.action_export("csv"))
        yield SystemCommand("Back to runs", "Results (esc)", self.app.pop_screen)
