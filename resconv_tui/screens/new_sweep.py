"""The new-sweep form: one field per run parameter, a live preview, queue or save.

Keys only (this is what the e2e test drives through tmux):

    focus starts on the experiment name; tab / shift+tab move through the fields in
    this order: name, layers, channels, kernel_size, padding, activation, model,
    residual_weight, bn_encoder, bn_decoder, image_size, dataset, batch_size, lr,
    weight_decay, max_inputs, stride, validation, precision, seed, priority,
    then the buttons Queue, Save, Load, Cancel. A loaded file that writes a pair's
    halves (ks1/ks2, ch1/ch2) shows them as two fields in place of kernel_size (channels);
    emptying both halves shows the one field (kernel_size, channels) again.
    Tabbing into a field selects its text, so typing replaces the value; enter in a
    field moves on like tab.

    ctrl+s queue (with the priority field's value)   f2 save as sweep file
    f3 load a sweep file                             escape cancel (dismisses None)

The screen dismisses with the number of runs queued (new ones, and failed or cancelled
ones queued again; 0 when every run was already queued or done). Each field takes one
value, a list (``3,5,7``) or a range (``3..11:2``); see ``resconv_tui.sweep_form``.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

from textual import events, on, work
from textual.app import App, ComposeResult, SystemCommand
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.screen import Screen
from textual.timer import Timer
from textual.widgets import Button, Header, Input, Static

from core.errors import (
    ConfigError,
    ResconvError,
    SweepError,
    acts_on_terminal,
    terminal_safe,
    written,
)
from core.queue import Repo, RunRow
from core.queue.comparison import settings_apart_in
from core.queue.db import READER_UPGRADE_WAIT_S, is_new_file
from core.queue.failures import diverged_before, diverged_warning
from core.queue.rows import PRIORITY_LIMIT, EnqueueResult, NewRun, RunFilter
from core.queue.views import config_of, count_of, distinct_values, keys_in_order
from core.run_folders import experiment_folder
from core.sweep import TARGET_FIELDS
from resconv_tui.screens.confirm import ConfirmScreen
from resconv_tui.sweep_file_io import LoadedSweep, kept_note, load_sweep, save_sweep, typed_path
from resconv_tui.sweep_form import (
    FIELDS,
    PAIR_ALIASES,
    SPECS,
    BaseRun,
    ExcludedCells,
    KeptInclude,
    Preview,
    default_texts,
    fitting_extra,
    flow_text,
    parse_all,
    preview,
    saved_mapping,
)
from resconv_tui.sweep_writes import WriteEnded, WriteStarted, failed_note, queued_note
from resconv_tui.widgets.fit_footer import FitFooter
from resconv_tui.widgets.param_field import ParamField
from resconv_tui.widgets.path_prompt import PathPrompt
from resconv_tui.widgets.sweep_preview import SweepPreview

DEFAULT_NAME = "sweep"
TITLE = "[b]New sweep[/]   per field: 3  or  3,5,7  or  3..11:2"


class NewSweepScreen(Screen[int | None]):
    """Build a sweep with the keyboard, see what it makes, queue it or save it."""

    HELP_SECTION = "New sweep form"  # what ? shows first (screens.help.KEYS)

    DEFAULT_CSS = """
    NewSweepScreen #sweep-body { height: 1fr; }
    NewSweepScreen #sweep-form { width: 64; max-width: 55%; height: 1fr; padding: 0 1; }
    NewSweepScreen #sweep-fields { height: 1fr; }
    NewSweepScreen #sweep-title { height: auto; margin-bottom: 1; }  /* 80 columns: two lines */
    NewSweepScreen #sweep-notes { color: $warning; height: auto; display: none; }
    NewSweepScreen #sweep-notes.-shown { display: block; }
    NewSweepScreen #sweep-hint { color: $text-muted; height: 2; }
    NewSweepScreen #sweep-buttons { height: 1; }
    NewSweepScreen #sweep-buttons Button { min-width: 10; margin-right: 1; }
    NewSweepScreen SweepPreview { width: 1fr; }
    """
    BINDINGS = [
        Binding("ctrl+s", "queue", "Queue"),
        Binding("f2", "save", "Save as"),
        Binding("f3", "load", "Load file"),
        Binding("escape", "cancel", "Cancel"),
    ]
    AUTO_FOCUS = "#input-name"
    DEBOUNCE_S = 0.15  # typing "3,5,7" recomputes the preview once, not five times
    # A held key repeats every 30-100 ms (longer gaps over a slow SSH link); a press of the
    # person's own, once they see the field change under it, comes later than this.
    HELD_KEY_GAP_S = 0.5
    # A held key's first repeat comes after the keyboard's repeat delay: 500 ms (GNOME,
    # Windows), 660 ms (X11's default), later over SSH. A fold on the press itself (ks2's
    # text selected on focus: one backspace empties it) waits this long for it.
    FIRST_REPEAT_S = 1.0

    def __init__(
        self,
        db_url: str,
        initial_file: str | None = None,
        base_config: dict | None = None,
        base_run: RunRow | None = None,
    ) -> None:
        """``base_run``: the run ``d`` duplicates (its experiment, config and name)."""
        super().__init__()
        self.db_url = db_url
        self.initial_file = initial_file
        base = dict(base_config or {})
        if base_run is not None:
            base = {"experiment": base_run.experiment, **base_run.config.to_dict()}
        self._experiment = str(base.pop("experiment", DEFAULT_NAME))
        self._base = None
        # A duplicated run's experiment or name with control characters (a database
        # edited by hand: ESC [31m) went into the form raw: the experiment into the name
        # field, where the terminal acted on it and ctrl+s refused it; the name into the
        # preview, and ctrl+s queued it so under another experiment. The form takes them
        # without them, and a notice says so.
        self._cleaned_notes: list[str] = []
        if base_run is not None:
            self._experiment, experiment_note = _cleaned(
                self._experiment, f"run {base_run.id}'s experiment", "the name field", DEFAULT_NAME
            )
            name, name_note = _cleaned(base_run.name, f"run {base_run.id}'s name", "the preview",
                                       "run")  # fmt: skip
            self._cleaned_notes = [note for note in (experiment_note, name_note) if note]
            varied = _varied_in(db_url, base_run.experiment)
            self._base = BaseRun(name, base_run.config, dict(base_run.swept), base_run.target,
                                 varied=varied)  # fmt: skip
        self._texts = default_texts(base)
        self._order = list(self._texts)  # swept keys of a loaded file go first
        self._key_names: dict[str, str] = {}
        self._swept: tuple[str, ...] = ()  # a loaded file's swept fields (LoadedSweep.swept)
        self._extra: dict[str, Any] = {}
        # The fields as a file with targets was loaded: its published figures describe
        # those runs, and only as long as the form makes them (sweep_form.fitting_extra).
        self._published_for: dict[str, str] | None = None
        self._published_name = ""  # the loaded file's experiment (its targets' runs)
        self._excluded: ExcludedCells | None = None  # the cells its exclude drops
        self._included: KeptInclude | None = None  # its include entries
        # The file loaded (resolved) and what of it the form did not load: saving over it
        # says so first (LoadedSweep.lost).
        self._loaded_from: tuple[Path | None, list[str]] = (None, [])
        # The include entries that file holds now (as loaded, or as last saved over it):
        # those the form's edits leave out are named too.
        self._file_include: list[dict[str, Any]] = []
        self._file_targets: list[Any] = []  # and its targets entries the form holds
        # Its exclude and include entries that left the form when a pair's halves they
        # name were emptied (fold_emptied_halves): saving over the file loses them, and
        # the question says so.
        self._halves_left_out = ""
        # The keys (exclude, include) some entries of which went so: the others going
        # with the other pair's halves are the last of them, not the file's whole key.
        self._keys_left_out: set[str] = set()
        # The notes under the fields (a loaded file's, and what a fold left out since),
        # and of them those that say the file's exclude or include is kept, by key: a
        # fold that leaves entries out says them afresh ("'exclude' (2 entries) kept"
        # stayed beside "'exclude' (2 entries) left out").
        self._notes: list[str] = []
        self._kept_notes: dict[str, str] = {}
        # The pair's field a fold focused, when the last delete of the burst that emptied
        # the halves came, and how long the next may take: its repeats are dropped there
        # (on_key).
        self._delete_burst: tuple[Input, float, float] | None = None
        # When the last delete key came, as the terminal's driver stamped it: the fold it
        # makes counts its burst from that key, not from when the fold is handled (on a
        # loaded machine, half a second later).
        self._last_delete_at: float | None = None
        self._timer: Timer | None = None
        self._kept: tuple[str, dict[str, str], str] | None = None  # fields as loaded or saved
        self.preview = Preview()
        """The last computed preview (what ctrl+s would queue when it is ok)."""
        self._asked = 0
        """Counts field changes: a preview thread started before the latest one is stale
        (a cancelled thread worker still runs to its end and would draw an old preview)."""
        # A ctrl+s's write under way (it may wait on another process's lock): a second
        # ctrl+s then starts none, as its runs would race the first's for the lock.
        self._queueing = False
        self._queued_as: tuple[str, dict[str, str], str] | None = None  # the fields it writes

    def compose(self) -> ComposeResult:
        yield Header()
        with Horizontal(id="sweep-body"):
            with Vertical(id="sweep-form"):
                yield Static(TITLE, id="sweep-title")
                yield Static("", id="sweep-notes", markup=False)
                with VerticalScroll(id="sweep-fields", can_focus=False):
                    yield ParamField(
                        "name", self._experiment, "experiment", "the experiment's name"
                    )
                    for spec in FIELDS:
                        yield ParamField(spec.key, self._texts[spec.key], hint=spec.hint)
                        yield from _half_fields(spec.key)
                    yield ParamField("priority", "0", hint="higher trains sooner")
                yield Static("", id="sweep-hint", markup=False)
                with Horizontal(id="sweep-buttons"):
                    yield Button("Queue", id="queue", variant="primary", compact=True)
                    yield Button("Save", id="save", compact=True)
                    yield Button("Load", id="load", compact=True)
                    yield Button("Cancel", id="cancel", compact=True)
            yield SweepPreview()
        yield FitFooter()

    def on_mount(self) -> None:
        self.title = "New sweep"
        for note in self._cleaned_notes:
            self.notify(note, severity="warning")
        if self.initial_file:
            self.load_file(self.initial_file)
        self.show_preview_now()
        self._kept = self._snapshot()  # escape asks first once the fields differ from this

    # ----- reading the form ----------------------------------------------------------

    def field(self, key: str) -> ParamField:
        return self.query_one(f"#field-{key}", ParamField)

    def texts(self) -> dict[str, str]:
        """Field texts in sweep order (a loaded file's matrix order first)."""
        return {key: self.field(key).value for key in self._order}

    def compute_preview(self) -> Preview:
        return self._preview_of(*self._snapshot())

    def _preview_of(self, name: str, texts: dict[str, str], priority: str) -> Preview:
        """The preview of these field values, with what queueing would do and the priority
        (on the UI thread, or in the preview thread from a snapshot of the fields)."""
        made = preview(name, texts, self._key_names, self._extra, self._base,
                       self._published_for, self._published_name, self._excluded,
                       self._swept, self._included)  # fmt: skip
        return _with_priority(self.planned(made), priority)

    def planned(self, result: Preview) -> Preview:
        """``result`` with what queueing would do with each run now (new, queue again,
        skip), as ``queue --dry-run`` says it: a finished sweep reads "9 already there"."""
        if not result.ok or is_new_file(self.db_url):
            return result
        try:
            # It only reads, on the UI thread too: an older version's database is read as
            # it is at once while another process holds its write lock (as `queue
            # --dry-run` reads it), not after the busy timeout with the form frozen.
            repo = Repo.open(self.db_url, create=False, upgrade_wait_s=READER_UPGRADE_WAIT_S)
            try:
                plans = repo.plan_enqueue([NewRun.from_expanded(run) for run in result.runs])
            finally:
                repo.close()
        except ResconvError:
            return result  # the queue cannot be read now: ctrl+s will say why
        return replace(result, plans=tuple(plans))

    def show_preview_now(self) -> None:
        """Recompute on the UI thread; previews still being computed are now stale."""
        self._asked += 1
        self.apply_preview(self.compute_preview())

    def apply_preview(self, result: Preview) -> None:
        if self.leaving():  # dismissed (ctrl+s, escape) while the preview was computed
            return
        shown = self.query_one(SweepPreview)
        self.preview = result
        for field in self.query(ParamField):
            field.error = result.errors.get(field.key, "")
            if field.error and field.input.has_focus:
                self._show_whole(field)
        shown.show(result)

    def _show_whole(self, field: ParamField) -> None:
        """Scroll ``field`` and its reason, drawn under it, into sight once laid out: the
        focused input stays where it is, and under the last field at 80x24 the reason
        appeared below the visible rows as it was typed."""
        self.call_after_refresh(field.scroll_visible, animate=False)

    # ----- live preview --------------------------------------------------------------

    @on(Input.Changed)
    def schedule_preview(self, event: Input.Changed) -> None:
        self.fold_emptied_halves()
        self._asked += 1
        if self._timer is not None:
            self._timer.stop()
        if self.DEBOUNCE_S > 0:
            self._timer = self.set_timer(self.DEBOUNCE_S, self.refresh_preview)
        else:
            self.refresh_preview()

    @work(thread=True, exclusive=True, group="preview")
    def refresh_preview(self) -> None:
        # A 2000-run sweep takes a moment to expand: keep typing smooth.
        asked = self.app.call_from_thread(self._fields_now)
        if asked is None:  # dismissed before this started
            return
        number, fields = asked
        self.app.call_from_thread(self._apply_if_latest, number, self._preview_of(*fields))

    def fold_emptied_halves(self) -> None:
        """Both halves of a pair (ks1, ks2) emptied: the pair's own field (kernel_size) is
        shown in their place again. A loaded file's halves were shown for good, and a
        plain kernel_size sweep took a new form. The halves' file names go with them
        (runs are named ks-5, not ks1-..); the pair's field starts at its default (3),
        not at what it held, unseen, before the file was loaded."""
        for pair, halves in PAIR_ALIASES.items():
            fields = [self.field(half) for half in halves]
            if not all(f.display and not f.value.strip() for f in fields):
                continue
            for shown in fields:
                shown.display = False
            whole = self.field(pair)
            whole.value = default_texts()[pair]
            whole.display = True
            where = self._order.index(halves[0]) if halves[0] in self._order else len(self._order)
            self._order = [key for key in self._order if key not in halves]
            self._order.insert(min(where, len(self._order)), pair)
            self._swept = tuple(key for key in self._swept if key not in halves)
            self._key_names = {k: v for k, v in self._key_names.items() if k not in halves}
            self._leave_out_exclude_of(halves)
            self._leave_out_include_of(halves)
            whole.input.focus()
            emptied_at = self._last_delete_at or time.monotonic()  # emptied by a paste
            self._delete_burst = (whole.input, emptied_at, self.FIRST_REPEAT_S)
            self.notify(f"{' and '.join(halves)} empty: {pair} is one field again "
                        f"(one value, a list, or [first,last])", title=pair)  # fmt: skip

    def on_key(self, event: events.Key) -> None:
        """A delete (backspace, delete, ctrl+w ...) of the burst that emptied a pair's
        halves, come once the fold moved focus to the pair's field, is dropped: holding
        backspace in ks2 went on in kernel_size and deleted its value. The burst ends at
        any other key or at a pause of ``HELD_KEY_GAP_S``; deletes after it act. Right after
        the fold the pause may be ``FIRST_REPEAT_S``: a fold on the key's first press sees
        its repeats start only after the keyboard's repeat delay (X11: 660 ms). A delete of
        the person's own in that second costs nothing: the field's text, selected on
        focus, is still replaced by what they type."""
        if event.key in DELETE_KEYS:
            self._last_delete_at = event.time
        if self._delete_burst is None:
            return
        folded, last, gap = self._delete_burst
        held = event.time - last < gap  # earlier keys, queued: negative
        if event.key in DELETE_KEYS and held and self.focused is folded:
            self._delete_burst = (folded, event.time, self.HELD_KEY_GAP_S)
            event.stop()
            event.prevent_default()
            return
        self._delete_burst = None

    def _leave_out_exclude_of(self, halves: tuple[str, ...]) -> None:
        """The loaded exclude, left out where an entry names the emptied halves: ``queue``
        refuses it over one kernel_size field ('ks1' is not a matrix key), and the form
        had matched it by each run's first and last kernel, so ``3`` every layer, and
        ``[3,9,3]`` too, were left out as T8's ks1-3_ks2-3. The preview now counts the
        runs the form queues and its saved file makes, and a note says what went."""
        if self._excluded is None:
            return
        entries = self._excluded.entries
        if not any(isinstance(e, dict) and set(halves) & set(e) for e in entries):
            return
        # The entries that do not name them are kept, read again without the halves: the
        # whole exclude went, and with it {l: 3}, which queue takes over one kernel_size.
        self._excluded = self._excluded.without(halves)
        kept = self._excluded.entries if self._excluded else ()
        gone = [entry for entry in entries if entry not in kept]
        why = (f"it names {' and '.join(halves)}, which the form no longer has (queue "
               f"refuses it over one {PAIR_OF_HALF[halves[0]]} field)")  # fmt: skip
        self._say_left_out("exclude", entries, gone, why)

    def _leave_out_include_of(self, halves: tuple[str, ...]) -> None:
        """The loaded include entries that name the emptied halves, left out. Merged into
        a cell they set the kernel as ks1/ks2 beside the form's kernel_size, which ``queue``
        refuses (one run cannot take both): the kernel_size field was refused whatever it
        held off its default, and no field of the form could drop the entry. The others
        are kept, and a note says what went."""
        if self._included is None:
            return
        entries = self._included.entries
        gone = [entry for entry in entries if set(halves) & set(entry)]
        if not gone:
            return
        self._included = self._included.without(halves)
        why = (f"it names {' and '.join(halves)}, which the form no longer has (queue "
               f"refuses them beside its {PAIR_OF_HALF[halves[0]]} field)")  # fmt: skip
        self._say_left_out("include", entries, gone, why)

    def _say_left_out(self, key: str, entries: Any, gone: list[Any], why: str) -> None:
        """A note on the file's ``key`` entries ``gone`` from the form (all of ``entries``
        or some), kept for the question f2 asks over the file. The last of them, where
        others went with the other pair's halves, are named: "its 'include' (1 entry)"
        read as the file's whole include, which held more."""
        if len(gone) < len(entries) or key in self._keys_left_out:
            shown = ", ".join(flow_text(entry) for entry in gone)
            lost = f"its '{key}' {'entry' if len(gone) == 1 else 'entries'} {shown}"
            if len(gone) < len(entries):
                some = f"{len(gone)} of {len(entries)} entries"
            else:  # the others went with the other pair's halves
                some = "the last entry" if len(gone) == 1 else f"the last {len(gone)} entries"
            note = f"'{key}': {some} left out ({shown}): {why}"
        else:
            count = "1 entry" if len(entries) == 1 else f"{len(entries)} entries"
            lost, note = f"its '{key}' ({count})", f"'{key}' ({count}) left out: {why}"
        # Both pairs' halves may go, one after the other: the question names each loss.
        self._halves_left_out = ", ".join(filter(None, (self._halves_left_out, lost)))
        self._keys_left_out.add(key)
        self._say_kept_afresh(key, len(entries) - len(gone))
        self._notes.append(note)
        self._show_notes()

    def _say_kept_afresh(self, key: str, count: int) -> None:
        """The note that the file's ``key`` is kept, now ``count`` entries (none: gone)."""
        said = self._kept_notes.pop(key, None)
        if said is None or said not in self._notes:
            return
        where = self._notes.index(said)
        if count:
            self._kept_notes[key] = self._notes[where] = kept_note(key, count)
        else:
            del self._notes[where]

    def _show_notes(self) -> None:
        notes = self.query_one("#sweep-notes", Static)
        notes.update("\n".join(f"! {note}" for note in self._notes))
        notes.set_class(bool(self._notes), "-shown")

    def _fields_now(self) -> tuple[int, tuple[str, dict[str, str], str]] | None:
        if self.leaving():
            return None
        return self._asked, self._snapshot()

    def leaving(self) -> bool:
        """Whether the form was dismissed: off the screen stack at once, its widgets are
        removed over the next turns of the loop, children before their parents, so a
        query may find the preview without its summary (NoMatches: a traceback printed
        from the preview's thread, seen as ctrl+s closed the form)."""
        return self not in self.app.screen_stack

    def _apply_if_latest(self, number: int, result: Preview) -> None:
        # A field changed while this preview was computed: the newer one is on its way.
        if number == self._asked:
            self.apply_preview(result)

    def _snapshot(self) -> tuple[str, dict[str, str], str]:
        return self.field("name").value, self.texts(), self.field("priority").value

    @on(Input.Submitted)
    def next_field(self, event: Input.Submitted) -> None:
        event.stop()
        self.focus_next()

    def on_descendant_focus(self, event: Any) -> None:
        field = next((a for a in event.widget.ancestors if isinstance(a, ParamField)), None)
        hint = f"{field.key}: {field.hint}" if field else ""
        self.query_one("#sweep-hint", Static).update(hint)

    # ----- actions -------------------------------------------------------------------

    @on(Button.Pressed)
    def pressed(self, event: Button.Pressed) -> None:
        actions = {
            "queue": self.action_queue,
            "save": self.action_save,
            "load": self.action_load,
            "cancel": self.action_cancel,
        }
        actions[event.button.id or "cancel"]()

    def valid_now(self) -> bool:
        """Recompute (no debounce) and point at the first problem, if any."""
        self.show_preview_now()
        if self.preview.ok:
            return True
        bad = next((f for f in self.query(ParamField) if f.error), None)
        if bad is not None:
            bad.input.focus()
            # Its reason, drawn under it, scrolled into sight too: the focus move's own
            # scroll, smooth, met the one still running from the focus before (a quick
            # ctrl+s after a move up) and left the last field's reason out of sight.
            self._show_whole(bad)
        problems = "; ".join(f"{k.strip('_')}: {r}" for k, r in self.preview.errors.items())
        self.notify(problems or "the sweep makes no runs", title="Fix the form", severity="error")
        return False

    def action_queue(self) -> None:
        if self._queueing:
            self.notify("still queueing: the runs are said once written")
            return
        if self.valid_now():
            runs = [NewRun.from_expanded(run) for run in self.preview.runs]
            self._queueing = True
            self._queued_as = self._snapshot()
            experiment = runs[0].experiment  # the name as written (valid_now: runs made)
            # The app waits for it before quitting (resconv_tui.sweep_writes).
            self.app.post_message(WriteStarted(experiment))
            self.enqueue(runs, int(self.field("priority").value), self.app, experiment)

    @work(thread=True, exclusive=True, group="enqueue")
    def enqueue(self, runs: list[NewRun], priority: int, app: App[Any], experiment: str) -> None:
        """Queue ``runs``, then say so and close the form. ``app``, handed over from the UI
        thread: here ``self.app`` finds it through the form's parents only, and a form left
        (esc) while the write waited has none, so the queued runs went unsaid. The app is
        told the write ended last, as a quit may wait on it and then close every screen."""
        try:
            # As `queue`: locked out of adding an older version's columns, it fails at the
            # busy timeout, rather than wait as long again at its own write.
            repo = Repo.open(self.db_url, upgrade_or_fail=True)
            try:
                diverged = diverged_before(repo, runs)
                apart = settings_apart_in(repo, runs)  # as `queue` says it
                result = repo.enqueue(runs, priority=priority)
            finally:
                repo.close()
        except ResconvError as exc:
            app.call_from_thread(self.not_queued, exc)
            app.post_message(WriteEnded(experiment, failed_note(experiment, exc)))
            return
        if warning := diverged_warning(diverged, result.queued_again_ids):
            app.call_from_thread(app.notify, warning, severity="warning", timeout=15)
        if apart and (result.added or result.queued_again):
            app.call_from_thread(app.notify, apart, timeout=15)
        app.call_from_thread(self.queued, result)
        app.post_message(WriteEnded(experiment, queued_note(experiment, result)))

    def not_queued(self, exc: ResconvError) -> None:
        self._queueing = False
        self.app.notify(str(exc), title=exc.title, severity="error")

    def queued(self, result: EnqueueResult) -> None:
        self._queueing = False
        again = result.queued_again
        queued = result.added + again
        if not queued:  # pressed before changing a field: the form stays, to be changed
            if self.leaving():
                # Left (esc) while the write waited: "change a field … or esc to leave"
                # came over the screen under it.
                return
            there = count_of(result.skipped, "run")
            self.notify(f"nothing new to queue: {there} already queued or done (change a "
                        "field, e.g. seed, or esc to leave)", severity="warning")  # fmt: skip
            return
        again_text = f", {again} failed or cancelled before" if again else ""
        skipped = f" ({result.skipped} already queued or done: skipped)" if result.skipped else ""
        self.app.notify(f"queued {count_of(queued, 'run')}{again_text}{skipped}",
                        title="Sweep queued")  # fmt: skip
        if not self.leaving():  # esc while the write waited: dismissing again pops another
            self.dismiss(queued)

    def action_save(self) -> None:
        if self.valid_now():
            # A file name, not a path: `a/b` made a folder `a` (as the exports name theirs).
            default = f"{experiment_folder(self.field('name').value.strip())}.yml"
            self.app.push_screen(PathPrompt("Save sweep file as", default), self.save_to)

    def save_to(self, path: str | None) -> None:
        """Save as ``path``: a file there is replaced only when the person says so (a
        hand-written sweep's comments and layout would be lost), and folders it lacks
        are made only when the person says so too (a typo, ``experimnets/x.yml``, made a
        stray folder, said only once it was made)."""
        if not path:
            return
        try:
            target = typed_path(path)
        except SweepError as exc:
            self.notify(str(exc), title="Not saved", severity="error")
            return
        try:  # Python 3.11's is_dir() raises PermissionError under a folder it cannot enter
            is_dir, exists = target.is_dir(), target.exists()
        except OSError as exc:
            self.notify(f"{target}: {exc.strerror or exc}", title="Not saved", severity="error")
            return
        if is_dir:
            self.notify(f"{target} is a folder: give a file name", title="Not saved",
                        severity="error")  # fmt: skip
        elif blocking := _file_above(target):
            self.notify(f"{target}: {blocking} is a file, not a folder", title="Not saved",
                        severity="error")  # fmt: skip
        elif exists:
            lost = "its comments and layout are lost"
            if _resolved(target) == self._loaded_from[0]:
                # Over the file it loaded: what it did not load, and the include entries
                # its edits leave out, went without a word.
                lost += self._lost_over_loaded()
            question = f"{target} exists. Replace it? ({lost})"
            self.app.push_screen(
                ConfirmScreen(question, "Replace"), lambda yes: self._save(target) if yes else None
            )
        elif missing := _missing_folders(target):
            above = len(missing) - 1  # `new/dir/walk.yml`: `new` is made too
            them = f"it and the {count_of(above, 'folder')} above it" if above else "it"
            question = f"{target.parent} does not exist. Make {them} and save {target.name} there?"
            self.app.push_screen(
                ConfirmScreen(question, "Make and save"),
                lambda yes: self._save(target) if yes else None,
            )
        else:
            self._save(target)

    def _lost_over_loaded(self) -> str:
        """What saving over the loaded file drops of it, said after "... are lost"."""
        unloaded = self._loaded_from[1]
        said = f", and what the form did not load: {', '.join(unloaded)}" if unloaded else ""
        edited = [f"include entry {flow_text(entry)}" for entry in self.preview.left_out
                  if entry in self._file_include]  # fmt: skip
        if dropped := self._dropped_targets():
            edited.append(dropped)
        if self._halves_left_out:
            edited.append(self._halves_left_out)
        if edited:
            said += f", and what the form's edits leave out: {', '.join(edited)}"
        return said

    def _dropped_targets(self) -> str:
        """The loaded file's targets entries a save would leave out (the form's runs are
        no longer theirs): how many, and which cells, the first few. The question named
        left-out include entries but not these, and the file lost its published figures."""
        try:
            kept = self._saved_mapping().get("targets") or []
        except ConfigError:  # the save says why it cannot write the form
            return ""
        gone = [entry for entry in self._file_targets if entry not in kept]
        if not gone:
            return ""
        cells = [_target_cell(entry) for entry in gone[:SHOWN_TARGETS]]
        more = f" and {len(gone) - SHOWN_TARGETS} more" if len(gone) > SHOWN_TARGETS else ""
        entries = "1 targets entry" if len(gone) == 1 else f"{len(gone)} targets entries"
        return f"{entries} ({', '.join(cells)}{more})"

    def _saved_mapping(self) -> dict[str, Any]:
        """The sweep f2 writes for the form now (ConfigError where none makes its runs)."""
        values = self._values()
        extra, _ = fitting_extra(self._extra, values, self._published_for)
        return saved_mapping(self.field("name").value, values, self._key_names, extra,
                             self.preview, self._excluded, self._swept,
                             self._included)  # fmt: skip

    def _save(self, target: Path) -> None:
        try:
            mapping = self._saved_mapping()
        except ConfigError as exc:
            self.notify(str(exc), title="Not saved", severity="error")
            return
        new_folders = _missing_folders(target)
        try:
            written = save_sweep(target, mapping)
        except OSError as exc:
            # Not saved: the folders this save made go too (deepest first; one something
            # else has written into since stays).
            for folder in new_folders:
                with contextlib.suppress(OSError):
                    folder.rmdir()
            self.notify(f"{target}: {exc.strerror or exc}", title="Not saved", severity="error")
            return
        except SweepError as exc:  # a SQLite file, a loop of links: refused before any write
            self.notify(str(exc), title="Not saved", severity="error")
            return
        made = f" (made the folder {target.parent}" if new_folders else ""
        above = len(new_folders) - 1  # `new/dir/walk.yml`: it made `new` too
        made += f", and {above} above it)" if above > 0 else ")" if made else ""
        runs = count_of(len(self.preview.runs), "run")
        self.notify(f"{runs} -> {written}{made}", title="Sweep saved")
        if _resolved(target) == self._loaded_from[0]:  # what it lacked is gone from it now
            self._loaded_from = (self._loaded_from[0], [])
            self._file_include = list(mapping.get("include", []))
            self._file_targets = list(mapping.get("targets", []))
            self._halves_left_out = ""
            self._keys_left_out = set()
        self._kept = self._snapshot()

    def _values(self) -> dict[str, list[Any]]:
        values, _ = parse_all(self.texts())
        return values

    def action_load(self) -> None:
        self.app.push_screen(PathPrompt("Load sweep file", "experiments/"), self.load_unless_kept)

    def load_unless_kept(self, path: str | None) -> None:
        """Load ``path``, asking first when the form has edits neither queued nor saved
        (a file replaces every field)."""
        if not path or not self.unsaved():
            self.load_file(path)
            return
        question = f"Load {path}? The form's changes are neither queued nor saved."
        self.app.push_screen(
            ConfirmScreen(question, "Load"), lambda yes: self.load_file(path) if yes else None
        )

    def load_file(self, path: str | None) -> None:
        if not path:
            return
        try:
            loaded = load_sweep(path)
        except ResconvError as exc:
            self.notify(str(exc), title=exc.title, severity="error")
            return
        self.fill(loaded)
        self._loaded_from = (_resolved(Path(path)), loaded.lost)
        self._file_include = list(loaded.included.entries) if loaded.included else []
        self._file_targets = list(loaded.extra.get("targets") or [])
        self._halves_left_out = ""
        self._keys_left_out = set()
        self.notify(f"{Path(path).name}: {_runs_of(self.preview)}", title="Sweep loaded")
        self._kept = self._snapshot()  # as loaded: nothing to lose yet

    def fill(self, loaded: LoadedSweep) -> None:
        """Put a loaded sweep into the fields; say what the form could not take over."""
        self._order, self._key_names, self._extra = (
            list(loaded.texts),
            loaded.key_names,
            loaded.extra,
        )
        self._published_for = dict(loaded.texts) if "targets" in loaded.extra else None
        self._published_name = loaded.name
        self._excluded = loaded.excluded
        self._included = loaded.included
        self._swept = tuple(loaded.swept)
        # The file's runs are named as `queue` names them, no longer as changes from a run
        # `d` copied into the form (act-gelu_l-1_image_size-32_... for T1's l-1); a file
        # that sweeps nothing names its run "run", and the form's edits of it by what
        # they change, as a duplicate's.
        self._base = loaded.plain_run
        self.field("name").value = loaded.name
        for key, text in loaded.texts.items():
            self.field(key).value = text
        # The file's ks1/ks2 as two fields, in place of kernel_size (and back for a file
        # without them): the fields shown are the ones the sweep is made of.
        for pair, halves in PAIR_ALIASES.items():
            for key in (pair, *halves):
                self.field(key).display = key in loaded.texts
        self._notes, self._kept_notes = list(loaded.notes), dict(loaded.kept_notes)
        self._show_notes()
        self.show_preview_now()

    def action_cancel(self) -> None:
        """Back to the runs; edits neither queued nor saved are lost only after a yes."""
        if not self.unsaved():
            self.dismiss(None)
            return

        def leave(yes: bool | None) -> None:
            if yes:
                self.dismiss(None)

        question = "Leave the form? Its changes are neither queued nor saved."
        self.app.push_screen(ConfirmScreen(question, "Leave"), leave)

    def unsaved(self) -> bool:
        """Whether the fields differ from the form as last loaded, saved or queued: leaving
        (esc, q), or loading a file over them, asks first."""
        return self._snapshot() != self._kept

    def quit_question(self) -> str | None:
        """What quitting the dashboard asks first (None: nothing would be lost). The fields
        ctrl+s is still queueing are not lost: the quit waits for their write, and the
        shell is told how it ended (``ResconvApp.quit_once_written``)."""
        if self._queueing and self._snapshot() == self._queued_as:
            return None
        return "Quit? The form's changes are neither queued nor saved." if self.unsaved() else None

    def palette_commands(self) -> Iterator[SystemCommand]:
        """This screen's actions by name (the app adds them to ctrl+p)."""
        yield SystemCommand(
            "Queue sweep", "Queue every run of the form (ctrl+s)", self.action_queue
        )
        yield SystemCommand(
            "Save sweep file", "Write the form as a sweep YAML (f2)", self.action_save
        )
        yield SystemCommand(
            "Load sweep file", "Fill the form from a sweep YAML (f3)", self.action_load
        )
        yield SystemCommand(
            "Cancel new sweep", "Back without queueing (escape)", self.action_cancel
        )


def _half_fields(pair: str) -> Iterator[ParamField]:
    """The hidden fields of ``pair``'s halves (kernel_size: ks1, ks2), shown by ``fill``."""
    for half in PAIR_ALIASES.get(pair, ()):
        field = ParamField(half, hint=SPECS[half].hint)
        field.display = False
        yield field


# The keys Input binds to a delete (backspace, delete, ctrl+w, ctrl+u ...): a held one's
# repeats are dropped in the field a fold focused (NewSweepScreen.on_key).
DELETE_KEYS = frozenset(
    key.strip()
    for binding in Input.BINDINGS
    if isinstance(binding, Binding) and binding.action.startswith("delete_")
    for key in binding.key.split(",")
)
PAIR_OF_HALF = {half: pair for pair, halves in PAIR_ALIASES.items() for half in halves}
SHOWN_TARGETS = 3  # the replace question names this many dropped targets, then "and N more"


def _target_cell(entry: Any) -> str:
    """A targets entry by its cell (``l=21``, ``ks1=3 ks2=9``), without its figures."""
    if not isinstance(entry, dict):
        return written(entry)
    return " ".join(f"{k}={written(v)}" for k, v in entry.items() if k not in TARGET_FIELDS)


def _file_above(path: Path) -> Path | None:
    """The nearest of the folders above ``path`` that is a file, not a folder (None where
    there is none, or it cannot be told). ``notes.txt/x.yml`` failed as "File exists", read
    as the sweep file being there, and ``notes.txt/new/x.yml`` asked first to make ``new``."""
    try:
        return next((folder for folder in path.parents
                     if folder.exists() and not folder.is_dir()), None)  # fmt: skip
    except OSError:  # one it may not look into: the save says why it fails, if it does
        return None


def _missing_folders(path: Path) -> list[Path]:
    """The folders above ``path`` that do not exist, deepest first (a save makes them)."""
    try:
        return [folder for folder in path.parents if not folder.exists()]
    except OSError:  # one it may not look into: the save says why it fails, if it does
        return []


def _runs_of(preview: Preview) -> str:
    """How many runs a loaded file makes: "not valid yet" where no count is known."""
    if preview.ok:
        return count_of(len(preview.runs), "run")
    return "not valid yet" if preview.total is None else count_of(preview.total, "run")


def _resolved(path: Path) -> Path | None:
    """``path`` as the kernel resolves it (``a/../in.yml`` is ``in.yml``), or None."""
    try:
        return path.resolve()
    except (OSError, RuntimeError):  # a link loop
        return None


def _with_priority(result: Preview, priority: str) -> Preview:
    """The priority is not a run parameter, but a bad one still blocks queueing: the
    command line's range (``queue --priority``), which PostgreSQL's INTEGER holds."""
    text = priority.strip()
    try:
        value: int | None = int(text)
    except ValueError:  # "²" passed isdigit(), then int() raised on ctrl+s
        value = None
    if value is not None and abs(value) <= PRIORITY_LIMIT:
        return result
    errors = {**result.errors, "priority": f"{written(text)} is not a whole number from "
              f"-{PRIORITY_LIMIT:,} to {PRIORITY_LIMIT:,}"}  # fmt: skip
    return Preview(errors=errors, total=result.total)


def _varied_in(db_url: str, experiment: str) -> frozenset[str] | None:
    """The config keys whose values differ among ``experiment``'s runs: a duplicate names
    only those of its base run's swept keys (``BaseRun.varied``). None where the queue
    cannot be read now (the base run's swept keys are then all named, as before)."""
    try:
        repo = Repo.open(db_url, create=False, upgrade_wait_s=READER_UPGRADE_WAIT_S)
        try:
            runs = repo.list_runs(RunFilter(experiment=experiment))
        finally:
            repo.close()
    except ResconvError:
        return None
    configs = [config_of(run.config_json) for run in runs]
    return frozenset(key for key in keys_in_order(configs)
                     if len(distinct_values(key, configs)) > 1)  # fmt: skip


def _cleaned(text: str, whose: str, where: str, fallback: str) -> tuple[str, str]:
    """``text`` without the characters a terminal acts on (``fallback`` where nothing else
    is left), and a notice saying so ('' where it held none). ``whose``: the text's owner
    ("run 7's name"); ``where``: what of the form shows it ("the preview")."""
    cleaned = without_terminal_controls(text)
    if cleaned == text:
        return text, ""
    said = f"{whose} '{terminal_safe(text)}' holds"
    if cleaned:
        return cleaned, (f"{said} characters a terminal acts on: {where} has it without "
                         f"them ('{cleaned}')")  # fmt: skip
    return fallback, f"{said} only characters a terminal acts on: {where} has '{fallback}'"


def without_terminal_controls(text: str) -> str:
    """``text`` less the characters ``core.errors.acts_on_terminal`` flags (ESC, CR, BEL,
    U+202E...): what an experiment name may not hold (``core.sweep`` refuses it)."""
    return "".join(char for char in text if not acts_on_terminal(char))
