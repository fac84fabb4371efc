"""The runs table: one row per run, updated in place so redraws stay small.

Each refresh compares the new cells with the ones on screen and touches only
the cells that changed; the table is rebuilt only when the set or order of runs
changes. Over a slow SSH link that is the difference between repainting one
progress bar and repainting the whole screen every second.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from typing import Self

from rich.cells import cell_len
from rich.text import Text
from textual import events
from textual.geometry import Region
from textual.widgets.data_table import ColumnKey

from core.queue import RunRow, RunStatus
from resconv_tui.name_cuts import cut_name, cut_names, name_parts
from resconv_tui.polling import format_duration, run_rate, shown_eta, status_word
from resconv_tui.widgets.rows_table import RowsTable

COLUMNS = (
    ("mark", " "),
    ("id", "id"),
    ("status", "status"),
    ("experiment", "experiment"),
    ("name", "name"),
    ("priority", "pri"),
    ("progress", "progress"),
    ("rate", "in/s"),
    ("eta", "ETA"),
    ("loss", "val loss"),
    ("params", "params"),
)
BAR_WIDTH = 12
# When the whole table would not fit (an 80-column terminal, or long experiment and run
# names at 100), it drops the bar (the percentage stays), the priority and the
# experiment (the line under the table names the highlighted run's) and cuts long
# names, so val loss and params are on screen without scrolling.
NARROW_DROPS = frozenset({"priority", "experiment"})
# Where even that leaves the names under NARROW_NAME_MIN (60 columns), these go too, in
# this order, until the rest fits: a column the table cannot hold whole is dropped rather
# than shown in part (params read "47," and "par" at 60 columns). The rate first (the
# ETA says the pace's outcome), then the parameter count (fixed per run, in the run's
# detail), then the ETA; val loss and progress stay longest.
TIGHT_DROPS = ("rate", "params", "eta", "loss", "progress")
NARROW_NAME_WIDTH = 18  # the names' width when first narrow (before the table is measured)
# The least the names get: a wide status or ETA at 80 columns cuts them further, rather
# than val loss and params scrolling off screen.
NARROW_NAME_MIN = 8
# Narrow: the names take the room the other columns leave. Their widths are judged with
# these floors, so an ETA going from "59s" to "1m02s" does not make the table again.
STEADY_WIDTHS = {"rate": 6, "eta": 6, "progress": 4}  # "99,999", "59m59s" / "99h59m", "100%"
WIDE_PROGRESS = BAR_WIDTH + 5  # the bar with its percentage, which only the wide has
Cells = tuple[str | Text, ...]
# show_runs's arguments, as last given: _fit shows them again.
ShownRuns = tuple[
    Sequence[RunRow],
    float,
    set[int],
    frozenset[int],
    dict[int, float] | None,
    dict[int, float] | None,
]


class RunTable(RowsTable):
    """Runs with status colours from the stylesheet (component classes, not inline colours)."""

    COMPONENT_CLASSES = {
        "run-table--queued",
        "run-table--running",
        "run-table--succeeded",
        "run-table--failed",
        "run-table--cancelled",
        "run-table--stalled",
        "run-table--bar",
        "run-table--bar-empty",
        "run-table--mark",
    }
    _quiet = False  # while _patch updates a cell: no whole-table repaint

    def __init__(self, *, id: str | None = None) -> None:
        # The mark and the id stay put when the table scrolls sideways.
        super().__init__(id=id, cursor_type="row", zebra_stripes=True, fixed_columns=2)
        self._shown: dict[int, Cells] = {}
        # Cells per run, reused while the poll hands back the very same row object:
        # runs that are not running are re-read only when they change (see polling).
        # With each run's cells, its width in every column (COLUMNS order), for judging
        # whether the wide layout fits without measuring 10,000 rows again each tick.
        self._made: dict[int, tuple[RunRow, bool, Cells, tuple[int, ...]]] = {}
        # Each run as read and as shown (``RunRow.terminal_safe``), kept on the same terms:
        # escaping every row at each poll took 2 ms for 2,000 runs (10 under load), and a
        # row that needs escaping came back a new copy each time, its cells made again.
        self._safe: dict[int, tuple[RunRow, RunRow]] = {}
        # Running runs whose worker took no step for minutes. Only running rows, which
        # every poll reads afresh, so the reuse above never keeps an old "stalled" cell.
        self._stalled: frozenset[int] = frozenset()
        self._ends: dict[int, float] = {}
        self._silent: dict[int, float] = {}  # the dashboard's silent runs (Dashboard.silent)
        self.narrow = False
        self.dropped: frozenset[str] = frozenset()  # columns left out (NARROW_DROPS and more)
        self.name_width = NARROW_NAME_WIDTH  # the name column's width when narrow
        # Narrow: the long names as cut to the column (``cut_names``), made again only
        # when the runs shown or the column's width change.
        self._cut: dict[int, str] = {}  # run id -> its name as cut to the narrow column
        self._named: tuple[int, tuple[tuple[int, str], ...]] = (0, ())  # what _cut is of
        self._parts: dict[int, tuple[str, tuple[str, ...]]] = {}  # run id -> (name, parts)
        self._last: ShownRuns | None = None

    @property
    def shown_columns(self) -> tuple[tuple[str, str], ...]:
        return tuple(c for c in COLUMNS if c[0] not in self.dropped)

    def on_mount(self) -> None:
        self._add_columns()

    def _add_columns(self) -> None:
        for key, label in self.shown_columns:
            # Narrow: a long run name (l-1_ch-8_seed-0_act-relu) is cut, not pushing the
            # losses off screen; the line under the table has it whole.
            width = self.name_width if self.narrow and key == "name" else None
            self.add_column(label, key=key, width=width)

    def on_resize(self, event: events.Resize) -> None:
        self._fit()

    def _widths(self, run: RunRow, every: Cells) -> tuple[int, ...]:
        """``run``'s width in every column of COLUMNS: its own values for the experiment,
        name and priority (the narrow layout cuts the name, or drops them), the wide bar
        for progress, its cells (``every_cell``: the same in either layout) for the others."""
        # The other cells are digits, ASCII words and one-cell marks (— ● ⨯): len() is
        # their width, and much cheaper than measuring, for 10,000 runs at first sight.
        own = {"experiment": run.experiment, "name": run.name}
        return tuple(
            cell_len(own[key]) if key in own
            else len(str(run.priority)) if key == "priority"
            else WIDE_PROGRESS if key == "progress"
            else len(_plain(cell))
            for (key, _), cell in zip(COLUMNS, every, strict=True)
        )  # fmt: skip

    def _column_widths(self, ids: Iterable[int]) -> dict[str, int]:
        """The widest cell of each column over the runs ``ids`` (made already)."""
        rows = [self._made[i][3] for i in ids if i in self._made]
        widest = [max(column) for column in zip(*rows, strict=True)] if rows else []
        return {key: widest[i] if widest else 0 for i, (key, _) in enumerate(COLUMNS)}

    def wide_width(self, widest: dict[str, int]) -> int:
        """Cells the table takes with every column, its widest cells being ``widest``."""
        padding = 2 * self.cell_padding
        return sum(max(cell_len(label), widest[key]) + padding for key, label in COLUMNS)

    def _narrow_layout(self, widest: dict[str, int], room: int) -> tuple[frozenset[str], int]:
        """The narrow layout's columns left out and its name column's width: NARROW_DROPS,
        and TIGHT_DROPS in turn while the others leave the names under NARROW_NAME_MIN;
        the names get the room left (at least NARROW_NAME_MIN), no wider than the longest
        name. The others are judged with floors (STEADY_WIDTHS), so that an ETA going from
        "59s" to "1m00s" does not make the table (10,000 rows) again."""
        dropped = set(NARROW_DROPS)
        left = 0
        for extra in (None, *TIGHT_DROPS):
            if extra is not None:
                dropped.add(extra)
            kept = [(key, label) for key, label in COLUMNS if key not in dropped]
            others = sum(
                max(cell_len(label), STEADY_WIDTHS.get(key, 0),
                    0 if key == "progress" else widest[key])  # the percentage, not the bar
                for key, label in kept if key != "name"
            )  # fmt: skip
            left = room - others - 2 * self.cell_padding * len(kept)
            if left >= NARROW_NAME_MIN:
                break
        return frozenset(dropped), max(NARROW_NAME_MIN, min(widest["name"], left))

    def _fit(self, ids: Iterable[int] | None = None) -> bool:
        """Narrow when the whole table would not fit (not before it is laid out); whether
        that changed (the table was made again). Room is kept for a vertical scrollbar
        whether one shows or not: otherwise rows coming and going could flip the layout."""
        shown = list(self._shown if ids is None else ids)
        if not shown and self._last is not None:
            # No row to measure (a filter that matches none): the layout stays, or the
            # header turned wide at 80 columns and back when the filter was cleared.
            return False
        widest = self._column_widths(shown)
        room = self.size.width - self.styles.scrollbar_size_vertical
        narrow = self.size.width > 0 and room < self.wide_width(widest)
        dropped, name_width = (
            self._narrow_layout(widest, room) if narrow else (frozenset(), self.name_width)
        )
        if (narrow, name_width, dropped) == (self.narrow, self.name_width, self.dropped):
            return False
        self.narrow, self.name_width, self.dropped = narrow, name_width, dropped
        keep, row = self.highlighted_id, self.cursor_row
        self.clear(columns=True)
        self._made, self._shown = {}, {}
        self._add_columns()
        if self._last is not None:
            self.show_runs(*self._last)
            if keep is not None and str(keep) in self.rows:
                self.move_cursor(row=self.get_row_index(str(keep)), animate=False)
            elif self.row_count:  # its run was removed: the next run's row, as _rebuild does
                self.move_cursor(row=min(row, self.row_count - 1), animate=False)
        return True

    @property
    def highlighted_id(self) -> int | None:
        """The run under the cursor (None when the table is empty)."""
        if not self.row_count:
            return None
        key = self.coordinate_to_cell_key(self.cursor_coordinate).row_key
        return int(key.value) if key.value is not None else None

    def show_runs(
        self,
        runs: Sequence[RunRow],
        now: float,
        marked: set[int],
        stalled: frozenset[int] = frozenset(),
        ends: dict[int, float] | None = None,
        silent: dict[int, float] | None = None,
    ) -> None:
        """Make the table show ``runs`` in order, touching as few cells as possible.
        ``ends``: the queue forecast's seconds until each run ends (the ETA column);
        ``silent``: the running runs whose beat the dashboard saw stop, and how long ago
        (``polling.HeardBeats``), shown "running?" and "silent 45s".
        The rows are shown terminal-safe (``RunRow.terminal_safe``): an experiment or run
        name with ESC in it (a database edited by hand) reached the terminal as it was.
        A row handed over again (the very object) is escaped once, and its cells reused."""
        self._stalled, self._ends, self._silent = stalled, ends or {}, silent or {}
        self._last = (runs, now, marked, stalled, ends, silent)  # as read: _fit shows them again
        runs = self._terminal_safe(runs)
        if self.narrow:
            named = (self.name_width, tuple((run.id, run.name) for run in runs))
            if named != self._named:  # runs came or went: names are cut anew
                parts = {run.id: self._name_parts(run) for run in runs}
                names = {run.id: run.name for run in runs}
                self._named, self._made = named, {}
                self._cut = cut_names(parts, names, self.name_width)
        fresh = {run.id: self._cells_of(run, now, run.id in marked) for run in runs}
        if self._fit(fresh):  # a long name or a wide cell came or went: made again
            return
        if fresh.keys() != self._shown.keys():
            self._made = {i: self._made[i] for i in fresh}  # forget removed runs
            self._rebuild(fresh)
        else:
            self._patch(fresh)
            if list(fresh) != list(self._shown):  # the same runs in another order
                self._reorder(list(fresh))
        self._shown = fresh
        self.measure_rows()  # the next paint has the columns' widths

    def _terminal_safe(self, runs: Sequence[RunRow]) -> list[RunRow]:
        """``runs`` as shown, escaped only where the row object is new to the table."""
        known, self._safe = self._safe, {}
        shown = []
        for run in runs:
            before = known.get(run.id)
            safe = before[1] if before is not None and before[0] is run else run.terminal_safe()
            self._safe[run.id] = (run, safe)
            shown.append(safe)
        return shown

    def _cells_of(self, run: RunRow, now: float, marked: bool) -> Cells:
        made = self._made.get(run.id)
        if made is not None and made[0] is run and made[1] == marked:
            return made[2]
        # Every column's cell measured, the shown ones kept: a column the narrow layout
        # left out (the rate at 60 columns) still counts when judging whether it fits.
        every = self.every_cell(run, now, marked)
        cells = self._shown_cells(every)
        self._made[run.id] = (run, marked, cells, self._widths(run, every))
        return cells

    def _rebuild(self, fresh: dict[int, Cells]) -> None:
        keep, row = self.highlighted_id, self.cursor_row
        self.clear()
        for run_id, cells in fresh.items():
            self.add_row(*cells, key=str(run_id))
        if keep in fresh:
            self.move_cursor(row=list(fresh).index(keep), animate=False)
        elif fresh:  # its run was removed: stay where it was (on the next run), not at the top
            self.move_cursor(row=min(row, len(fresh) - 1), animate=False)

    def _reorder(self, order: list[int]) -> None:
        """Put the rows in ``order`` (``o``, a run moved up the queue) without making them
        again: a rebuild's new rows have every cell measured (650 runs: 7,000 cells, about
        0.2 s of the key's 0.45 s here), where DataTable.sort only moves them. The cursor
        stays on its run."""
        keep = self.highlighted_id
        position = {str(run_id): i for i, run_id in enumerate(order)}
        # Sorted by the id column, whose cell is the run's id as text (as the row key is).
        self.sort("id", key=lambda cell: position[str(cell)])
        if keep is not None:
            self.move_cursor(row=order.index(keep), animate=False)

    def _patch(self, fresh: dict[int, Cells]) -> None:
        changed: list[str] = []  # rows drawn again: the running ones, mostly
        for run_id, cells in fresh.items():
            old = self._shown[run_id]
            if old is cells:
                continue
            row = str(run_id)
            for (key, _), new, before in zip(self.shown_columns, cells, old, strict=True):
                if new == before:
                    continue
                if cell_len(_plain(new)) > self.columns[ColumnKey(key)].content_width:
                    # "queued" -> "succeeded" must not be clipped: the column grows, and
                    # the whole table is drawn again (rare).
                    self.update_cell(row, key, new, update_width=True)
                    continue
                # DataTable.update_cell repaints the whole table (every visible row, over
                # SSH: 20 KB a second for one progress bar), and with update_width it
                # measures the column's every cell to see whether it can shrink. So: no
                # width update (a column keeps its widest value), and only the rows that
                # changed are drawn again.
                self._quiet = True
                try:
                    self.update_cell(row, key, new)
                finally:
                    self._quiet = False
                changed.append(row)
        for row in dict.fromkeys(changed):
            self.refresh_row(self.get_row_index(row))

    def refresh(self, *regions: Region, **kwargs: bool) -> Self:
        if self._quiet and not regions and not kwargs:
            return self  # update_cell's whole-table repaint: _patch repaints the row instead
        return super().refresh(*regions, **kwargs)

    def cells(self, run: RunRow, now: float, marked: bool) -> Cells:
        """``run``'s cells in the columns shown."""
        return self._shown_cells(self.every_cell(run, now, marked))

    def _shown_cells(self, every: Cells) -> Cells:
        """``every`` (a cell per COLUMNS entry) less the columns the layout leaves out."""
        if not self.dropped:
            return every
        return tuple(
            c for (key, _), c in zip(COLUMNS, every, strict=True) if key not in self.dropped
        )

    def every_cell(self, run: RunRow, now: float, marked: bool) -> Cells:
        """``run``'s cell in every column of COLUMNS (the name cut where narrow, the bar
        a percentage)."""
        loss = "—" if run.validation_loss is None else f"{run.validation_loss:.6f}"
        rate = run_rate(run, now)
        # ⨯: a cancel asked for and not yet done; a cancelled run has nothing more to say.
        asked = run.cancel_requested and run.status in (RunStatus.RUNNING, RunStatus.QUEUED)
        # Its last step is done: the final validation pass (10,000 images), samples and
        # checkpoints take a while (70 s on a CPU), at "100%" and an ETA of "0s" (now
        # "—" until a finished run has told how long: ``shown_eta``): "validating".
        status = status_word(run) + (" ⨯" if asked else "")
        eta = (
            format_duration(shown_eta(run, now, self._ends))
            if run.status == RunStatus.RUNNING
            else ""
        )
        style = str(run.status)
        if (silent := self._silent.get(run.id)) is not None:  # its worker died or hangs
            status, eta = f"{status}?", f"silent {format_duration(silent)}"
        elif run.id in self._stalled and run.status == RunStatus.RUNNING:  # beats, no steps
            status, eta, style = "stalled", "no steps", "stalled"
        return (
            Text("●", style=self._style("mark")) if marked else "",
            str(run.id),
            Text(status, style=self._style(style)),
            Text(run.experiment),  # as written: a name may hold `[/]`
            Text(self._shown_name(run)),
            str(run.priority),
            self._bar(run),
            Text("—" if rate is None else f"{rate:,.0f}", justify="right"),
            eta,
            Text(loss, justify="right"),
            Text(f"{run.param_count:,}", justify="right"),
        )

    def _shown_name(self, run: RunRow) -> str:
        """Narrow: a name longer than its column is cut where it says least (the line
        under the table has it whole)."""
        if not self.narrow or cell_len(run.name) <= self.name_width:
            return run.name
        return self._cut.get(run.id) or cut_name(self._name_parts(run), Counter(), self.name_width)

    def _name_parts(self, run: RunRow) -> tuple[str, ...]:
        """A sweep run's name's key-value parts; a name given otherwise is one part."""
        name, parts = self._parts.get(run.id, (None, ()))
        if name != run.name:
            parts = name_parts(run.name, run.swept)
            self._parts[run.id] = (run.name, parts)
        return parts

    def _bar(self, run: RunRow) -> Text:
        if self.narrow:
            return Text(f"{run.progress:4.0%}")
        filled = round(run.progress * BAR_WIDTH)
        bar = Text("━" * filled, style=self._style("bar"))
        bar.append("━" * (BAR_WIDTH - filled), style=self._style("bar-empty"))
        bar.append(f" {run.progress:4.0%}")
        return bar

    def _style(self, name: str) -> str:
        # Styles come from app.tcss; before the stylesheet applies they are plain.
        try:
            return str(self.get_component_rich_style(f"run-table--{name}", partial=True))
        except Exception:
            return ""


def _plain(cell: str | Text) -> str:
    return cell.plain if isinstance(cell, Text) else cell
