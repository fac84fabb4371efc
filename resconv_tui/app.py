"""The dashboard application and the one factory that CLI and tests share."""

from __future__ import annotations

import contextlib
import importlib
import pkgutil
import time
from collections.abc import Callable, Iterable
from pathlib import Path

from textual import on
from textual.app import App, SystemCommand
from textual.binding import Binding
from textual.notifications import SeverityLevel
from textual.screen import Screen

from core.errors import terminal_safe
from core.queue import Repo
from resconv_tui.context import DashboardContext
from resconv_tui.sweep_writes import ExitNote, WriteEnded, WriteStarted, still_writing_said
from resconv_tui.worker_launcher import WorkerLauncher

# The quitting notice stays until the write it waits for ends (the app quits then).
QUIT_NOTICE_S = 3600.0


class ResconvApp(App[tuple[ExitNote, ...]]):
    """Opens on the runs screen; screens add their own keys and palette commands. Quits
    with the notes the shell gets after it (``resconv_tui.sweep_writes``)."""

    CSS_PATH = "app.tcss"
    TITLE = "resconv-tui"
    BINDINGS = [
        Binding("question_mark", "help", "Help", key_display="?"),
        Binding("q", "quit", "Quit"),
        # In a text field (the form is all fields) ? is typed: f1 shows the help there too.
        Binding("f1", "help", "Help", show=False, priority=True),
    ]

    def __init__(self, ctx: DashboardContext) -> None:
        super().__init__()
        self.ctx = ctx
        self.writing: list[str] = []  # the experiments of the form's writes under way
        # Quit asked for while some were: how each that ended since went (None: not asked).
        self._exit_notes: list[ExitNote] | None = None

    def notify(
        self,
        message: str,
        *,
        title: str = "",
        severity: SeverityLevel = "information",
        timeout: float | None = None,
        markup: bool = False,
    ) -> None:
        """Every notification as plain text: they carry names, paths and errors as the user
        or the machine wrote them, and `[/]` in one was a MarkupError that stopped the app.
        (A widget's ``notify`` asks for markup whatever its caller wants: refused here.)
        Terminal-safe too (``core.errors.terminal_safe``), here for every notice: a name,
        folder or log line with ESC in it reached the terminal as it was."""
        super().notify(terminal_safe(message), title=terminal_safe(title), severity=severity,
                       timeout=timeout, markup=False)  # fmt: skip

    def on_mount(self) -> None:
        from resconv_tui.screens.runs import RunsScreen

        self.push_screen(RunsScreen(self.ctx))
        self.call_after_refresh(import_every_screen)

    async def action_quit(self) -> None:
        """``q``, ctrl+q and the palette's Quit: a screen with unsaved edits (the new-sweep
        form, also under a dialog of its own, such as f2's path prompt) asks first, as its
        own ``esc`` does."""
        from resconv_tui.screens.confirm import ConfirmScreen

        asks = (getattr(screen, "quit_question", lambda: None)() for screen in self.screen_stack)
        question = next((q for q in asks if q is not None), None)
        if question is None or getattr(self.screen, "is_quit_question", False):
            self.quit_once_written()  # nothing to lose, or quit asked for twice
            return

        def leave(yes: bool | None) -> None:
            if yes:
                self.quit_once_written()

        dialog = ConfirmScreen(question, "Quit")
        dialog.is_quit_question = True  # type: ignore[attr-defined]
        self.push_screen(dialog, leave)

    def quit_once_written(self) -> None:
        """Quit now, or, while a ctrl+s of the form still writes (it may wait out another
        process's lock), once it ends: the screen says so meanwhile, and the shell gets
        what became of it. Quitting at once left the process waiting for the write's
        thread with the screen gone and nothing said, and its runs went unsaid."""
        if not self.writing:
            self.exit(tuple(self._exit_notes or ()))
            return
        self._exit_notes = self._exit_notes or []
        self.notify(still_writing_said(self.writing), title="Quitting", timeout=QUIT_NOTICE_S)

    @on(WriteStarted)
    def _write_started(self, message: WriteStarted) -> None:
        self.writing.append(message.experiment)

    @on(WriteEnded)
    def _write_ended(self, message: WriteEnded) -> None:
        self.writing.remove(message.experiment)
        if self._exit_notes is not None:  # quit asked for: it waited for this write
            self._exit_notes.append(message.note)
            if not self.writing:
                self.exit(tuple(self._exit_notes))

    def action_help_quit(self) -> None:
        """ctrl+c, pressed out of habit to quit: which keys quit, in plain words. Textual's
        own note is markup ("Press [b]ctrl+q[/b] to quit the app"), which this app's
        plain notifications showed as written, tags and all."""
        self.notify("q quits (ctrl+q while typing in a field); workers keep training",
                    title="Do you want to quit?")  # fmt: skip

    def action_help(self) -> None:
        from resconv_tui.screens.help import HelpScreen

        if not isinstance(self.screen, HelpScreen):
            self.push_screen(HelpScreen(getattr(self.screen, "HELP_SECTION", None)))

    def get_system_commands(self, screen: Screen) -> Iterable[SystemCommand]:
        yield from super().get_system_commands(screen)
        yield SystemCommand("Help", "Every key of the dashboard (?)", self.action_help)
        commands = getattr(screen, "palette_commands", None)
        if commands is not None:
            yield from commands()

    def deliver_screenshot(
        self, filename: str | None = None, path: str | None = None, time_format: str | None = None
    ) -> str | None:
        """The palette's Screenshot: saved beside the results exports (the dashboard's
        working directory), and the file named. Textual's default, the Downloads folder,
        is missing on most servers, and it then said only "Failed to save screenshot"."""
        folder = Path(path) if path else self.ctx.export_dir
        try:
            saved = self.save_screenshot(filename, str(folder), time_format)
        except OSError as exc:
            self.notify(f"screenshot not saved in {folder}: {exc.strerror or exc}",
                        severity="error")  # fmt: skip
            return None
        self.notify(f"screenshot saved: {saved}")
        return saved

    def on_unmount(self) -> None:
        self.ctx.repo.close()


def import_every_screen() -> None:
    """Import every screen and widget the dashboard may open later, once it has shown
    its first screen.

    A dashboard stays open for days; imported on first use, a screen came from the code
    on disk at that moment: after a `git pull` (an upgrade while a sweep trains) the new
    version's results screen met the old version's loaded modules, and `R` crashed the
    dashboard ("module 'core.queue.views' has no attribute 'SCREEN_LABELS'"). Loaded
    now, every screen is of the version that started. One that fails to import is left
    to its first use, as before.
    """
    import resconv_tui.screens
    import resconv_tui.widgets

    names = ["resconv_tui.preferences"]
    for package in (resconv_tui.screens, resconv_tui.widgets):
        names += [f"{package.__name__}.{m.name}" for m in pkgutil.iter_modules(package.__path__)]
    for name in names:
        with contextlib.suppress(Exception):  # not worse than before: it fails when opened
            importlib.import_module(name)


def make_app(
    db_url: str,
    *,
    clock: Callable[[], float] = time.time,
    launcher: WorkerLauncher | None = None,
    poll_interval_s: float = 1.0,
    export_dir: Path | None = None,
    hostname: str | None = None,
    preferences: Path | None = None,
    db_option: str | None = None,
) -> ResconvApp:
    """The dashboard on ``db_url`` (created if missing); tests freeze ``clock``.

    ``preferences``: the file that keeps the start dialog's worker options between
    sessions (the CLI passes ``preferences_path()``; None keeps them for this session).
    ``db_option``: the command line's `` --db X`` (``DashboardContext.db_option``).
    """
    from core.queue.db import describe, is_new_file

    new = is_new_file(db_url)
    ctx = DashboardContext(
        repo=Repo.open(db_url),
        db_url=db_url,
        clock=clock,
        launcher=launcher or WorkerLauncher(),
        poll_interval_s=poll_interval_s,
        export_dir=export_dir or Path.cwd(),
        db_option=db_option,
    )
    if new:  # said, in case --db has a typo: a new file shows an empty queue
        ctx.notes.append(f"new database {describe(db_url)}: nothing queued yet (n: new sweep)")
    if hostname is not None:
        ctx.hostname = hostname
    if preferences is not None:
        from resconv_tui.preferences import load_worker_options

        ctx.preferences = preferences
        ctx.worker_options, problem = load_worker_options(preferences)
        ctx.notes += [problem] if problem else []
    return ResconvApp(ctx)
