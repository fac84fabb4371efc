"""The footer, closed up on a narrow terminal so that its last keys (? Help, q Quit)
stay on screen: at 80 columns the spaced-out footer cut them off. The command palette's
key (ctrl+p) gives way there too: the header's ⭘ opens the palette, and help names it."""

from __future__ import annotations

from textual import events
from textual.widgets import Footer

COMPACT_BELOW = 120  # columns: the runs screen's keys fit spaced out from here


class FitFooter(Footer):
    def on_resize(self, event: events.Resize) -> None:
        self.compact = event.size.width < COMPACT_BELOW
        palette = event.size.width >= COMPACT_BELOW
        if palette != self.show_command_palette:
            # Not a recomposing reactive: a footer already drawn kept (or lacked) the
            # palette's key until its bindings changed, over "? Help q Quit" at 80.
            self.show_command_palette = palette
            self.refresh(recompose=True)
