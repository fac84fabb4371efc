"""A DataTable of rows one picks (runs, results): home and end go to the first and last
row, as in any list, where DataTable's own home/end scroll sideways; a table made again
is drawn again once its rows are measured."""

from __future__ import annotations

from typing import Any

from textual import events
from textual.binding import Binding
from textual.widgets import DataTable


class RowsTable(DataTable[Any]):
    BINDINGS = [
        Binding("home", "first_row", "First", show=False),
        Binding("end", "last_row", "Last", show=False),
    ]

    def action_first_row(self) -> None:
        self.move_cursor(row=0, animate=False)

    def action_last_row(self) -> None:
        self.move_cursor(row=max(0, self.row_count - 1), animate=False)

    async def _on_idle(self, event: events.Idle) -> None:
        # DataTable measures new rows on idle, and draws again only if its size changed,
        # from render caches that do not know the columns' widths. After a rebuild
        # (columns made anew at their labels' widths) the measure gives the old size
        # back: a paint that came before it (a busy machine, a screen popped) had drawn
        # "succee" under "status", and every row not patched since kept it until a
        # resize (the runs table, seen twice at 80 columns under training). The caches
        # and this handler are textual's own: textual is pinned (8.2.8).
        before = self._content_widths()
        await super()._on_idle(event)
        self._drawn_at_widths(before)

    def measure_rows(self) -> None:
        """Measure the rows just added now, as DataTable's idle would: that idle comes only
        after the table's next message (a timer's, a key's), and the screen paints before
        it, so a table filled from a poll showed each column at its label's width, "succee"
        under "status", for about half a second at 80 columns."""
        if not self._require_update_dimensions:
            return
        before = self._content_widths()
        self._require_update_dimensions = False
        new_rows = self._new_rows.copy()
        self._new_rows.clear()
        self._update_dimensions(new_rows)
        self._drawn_at_widths(before)

    def _content_widths(self) -> list[int]:
        return [column.content_width for column in self.ordered_columns]

    def _drawn_at_widths(self, before: list[int]) -> None:
        """Draw again from fresh caches where the columns' widths changed since ``before``."""
        if self._content_widths() != before:
            self._clear_caches()
            self.refresh()
