"""What the run-detail and compare screens share: a database of their own read in a
poll thread, a poll-failed message, and the actions of ``l`` (log scale on the loss
chart), ``r`` (poll now) and ``escape`` (back); each screen binds its own keys."""

from __future__ import annotations

from collections.abc import Callable, Iterator

from textual.app import SystemCommand
from textual.message import Message
from textual.screen import Screen
from textual.timer import Timer

from core.errors import ResconvError
from core.queue import Repo
from core.queue.db import READER_UPGRADE_WAIT_S
from resconv_tui.widgets.loss_chart import LossChart


class ChartScreen(Screen[None]):
    """Subclasses set ``LOSS_CHART`` (the id of the chart ``l`` toggles), define ``poll``
    and handle ``PollFailed``; ``repo()`` opens the database on first use."""

    HELP_SECTION = "Run detail / Compare"  # what ? shows first (screens.help.KEYS)

    LOSS_CHART = ""
    POLL_S = 1.0  # while a run trains or waits
    SETTLED_POLL_S = 5.0  # once every run has ended: a retry elsewhere queues one again
    poll: Callable[[], object]  # the subclass's poll worker

    class PollFailed(Message):
        def __init__(self, error: ResconvError) -> None:
            super().__init__()
            self.error = error

    def __init__(self, db_url: str) -> None:
        super().__init__()
        self.db_url = db_url
        self._repo: Repo | None = None
        self._timer: Timer | None = None

    def repo(self) -> Repo:
        """The screen's own connection, opened in the poll thread on first use. As a
        reader (it writes nothing): on an older version's file whose write lock another
        process held, adding the newer columns waited the busy timeout (15 s) before the
        first draw; a reader's short try reads without them at once."""
        if self._repo is None:
            self._repo = Repo.open(self.db_url, create=False, upgrade_wait_s=READER_UPGRADE_WAIT_S)
        return self._repo

    def on_unmount(self) -> None:
        if self._repo is not None:
            self._repo.close()

    def action_poll_now(self) -> None:
        self.poll()

    def action_toggle_log(self) -> None:
        chart = self.query_one(f"#{self.LOSS_CHART}", LossChart)
        chart.log_y = not chart.log_y

    def action_back(self) -> None:
        self.dismiss(None)

    def palette_commands(self) -> Iterator[SystemCommand]:
        """This screen's actions by name (the app adds them to ctrl+p)."""
        yield SystemCommand(
            "Toggle log scale", "Log / linear loss axis (l)", self.action_toggle_log
        )
        yield SystemCommand("Back", "Back to the screen before (esc)", self.action_back)
