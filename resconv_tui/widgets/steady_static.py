"""A Static that sends nothing to the terminal when it is given what it shows already.

The runs screen's poll updates the summary above the table, the line under it and the
workers panel every second, mostly with the text already there. ``Static.update``
repaints the widget and lays the whole screen out again all the same, and every layout
also repaints the runs table's scrollbar (Textual's ``ScrollView._size_updated``
compares the table's own virtual size with the compositor's, which always differ, and
refreshes its scrollbars): 2.7 KB a second of an idle dashboard at 160x45, for nothing,
and 1.2 KB a second more while a worker's heartbeat age changes in the workers panel.
"""

from __future__ import annotations

from rich.text import Text
from textual.css.scalar import Scalar
from textual.visual import VisualType
from textual.widgets import Static


class SteadyStatic(Static):
    """``update`` with the text or ``Text`` shown already does nothing; any other
    renderable (a rich Table has no equality) is drawn again as by Static. Content of
    the size shown (a heartbeat's age, an ETA: new digits on the same lines) repaints
    this widget alone, without laying the screen out again."""

    def update(self, content: VisualType = "", *, layout: bool = True) -> None:
        if same_text(content, self.content):
            return
        width = self.content_region.width
        if not layout or not width:  # not laid out yet: nothing to compare
            super().update(content, layout=layout)
            return
        before = self._content_size(width)
        super().update(content, layout=False)
        self.clear_cached_dimensions()  # the content's sizes are cached per width
        if self._content_size(width) != before:
            self.refresh(layout=True)

    def _content_size(self, width: int) -> tuple[int | None, int | None]:
        """The content's width and height where the widget takes its size from them
        (``auto``); None where its styles fix it (``height: 1``, the full width)."""
        screen = self.app.size  # compared before and after one update: the same sizes in
        styles = self.styles
        return (
            self.get_content_width(screen, screen) if _auto(styles.width) else None,
            self.get_content_height(screen, screen, width) if _auto(styles.height) else None,
        )


def _auto(scalar: Scalar | None) -> bool:
    return scalar is not None and scalar.is_auto


def same_text(new: VisualType, old: VisualType) -> bool:
    """Whether ``new`` draws as ``old`` does: equal strings, or Texts equal in their
    characters, spans and whole-text style and layout (Text's own ``==`` compares only
    the characters and spans)."""
    if isinstance(new, str) and isinstance(old, str):
        return new == old
    if isinstance(new, Text) and isinstance(old, Text) and new is not old:  # not mutated since
        return new == old and _looks(new) == _looks(old)
    return False


def _looks(text: Text) -> tuple[object, ...]:
    return text.style, text.justify, text.overflow, text.no_wrap, text.end, text.tab_size
