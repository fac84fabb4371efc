"""``resconv-tui stop``: stop this machine's workers, as the dashboard's ``w`` does.

Every live worker process of this machine gets one SIGTERM: it finishes its current
step, puts its run back in the queue and exits (all slots of ``--slots K``; thread
slots share one pid). A worker already asked (its row says ``stopping``) is not signalled,
since a second signal means "exit at once": ``--now`` sends it on purpose. It is waited
for all the same: a stop run again after one that found a worker still running asks
whether it is down now.

Then it waits (``--wait``, bounded) for them to exit and says how each run ended, read
from the database, as ``systemctl stop`` and ``docker stop`` return once the service
is down: what a worker does with a run is known only once it has done it (a signal
after the run's last step, before its end was written, reads "goes back to the queue"
and the run then succeeds). ``--no-wait`` says at once what is likely, as far as known.

The slots of ``worker --slots K`` (processes) have a supervisor with no worker row of its
own: it exits seconds after its last slot (it records what each left). Stop waits for it
too, found as the slots' parent (``core.processes.slot_supervisor``), so "stopped" means
every process of the worker is gone; and a slot it has just started (again, after a
kill -9) and that has no row yet, found as its child (``core.processes.slots_of``), is
signalled with the others. Each process waited for is known by its pid and its
start time as found: a pid freed within the wait may go to another process. A row's
pid whose process started after the row was written (its worker killed, the pid given
to another) is said exited, not signalled (``core.processes.could_have_registered``),
with the runs it left running.

A worker just started (``resconv-tui worker & ...; stop``) has no row for its first
seconds (imports, its database's answer): found by its command line and environment
(``core.processes.worker_processes``: this user's ``core.worker`` and ``resconv_tui
worker`` processes) as one of this database (``same_database``: the same SQLite file,
or server, database, role and search path, as libpq reads each URL in its own process's
environment: the query's host, port, name and role win over the URL's, localhost and
127.0.0.1 are one server, a socket folder is known by its real path), it is signalled
and waited for as the others; it stops as soon as it has started
(``core.early_signals``), having claimed nothing.

The rows are read again after the signals (``registered_since``): a slot or worker found
starting that registered and claimed a run in between is named with that run.

A worker row of this machine edited by hand into what no version writes (a text pid) is
not signalled by (its pid cannot be trusted): the others are stopped, and the row is
named with its repair. Its worker, where one runs, is found by its command line as one
with no row and signalled once, as any other: it finishes its step and exits. Its row
cannot be marked "stopping", so a stop again signals it again (exit at once).

Exit status (``stop && next-step``): 0 once every process waited for has exited, or with
``--no-wait`` (which promised nothing); ``STILL_RUNNING`` when one is still running after
the wait, or could not be signalled, or a damaged row of this machine was left alone (its
worker, if one runs, is not known to be down).
"""

from __future__ import annotations

import argparse
import os
import re
import socket
import sys
import time
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from resconv_tui.cli import add_db_option, db_url, missing_default_database, open_repo

# How long stop waits for the workers it signalled to exit, by default: a step on a GPU
# takes milliseconds, a final pass of a big model on a CPU a minute or two.
DEFAULT_WAIT_S = 60
MAX_WAIT_S = 3600
WAIT_POLL_S = 0.1
# A worker (or a slots' supervisor) is still running after --wait, or could not be
# signalled, or its row is damaged: the workers are not known to be down.
STILL_RUNNING = 1

if TYPE_CHECKING:
    from sqlalchemy.engine import URL

    from core.processes import WorkerProcess
    from core.queue import Repo, RunRow, RunStatus, WorkerRow
    from core.queue.rows import DamagedWorker
    from resconv_tui.worker_launcher import WorkerLauncher


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    parser = subparsers.add_parser(
        "stop",
        help="stop this machine's workers after their current step (runs go back to the queue)",
        description="Send each live worker process of this machine one SIGTERM: it "
        "finishes its step, puts its run back in the queue and exits. Then wait for them to "
        "exit (--wait) and say how each of their runs ended. Exit status: 0 once all have "
        f"exited (or with --no-wait), {STILL_RUNNING} if one is still running after the wait "
        "or could not be signalled, or a worker row of this machine is damaged (edited by "
        "hand: it is named, not signalled by; the others are stopped).",
    )
    parser.add_argument(
        "--now", action="store_true",
        help="also signal workers already stopping: they put their runs back and exit at once",
    )  # fmt: skip
    parser.add_argument(
        "--wait", type=wait_seconds, default=DEFAULT_WAIT_S, metavar="S",
        help=f"wait up to S seconds for the workers to exit, then say how each run ended "
        f"(default {DEFAULT_WAIT_S}; they are never killed)",
    )  # fmt: skip
    parser.add_argument(
        "--no-wait", dest="wait", action="store_const", const=0,
        help="do not wait: say at once what likely becomes of the runs",
    )  # fmt: skip
    add_db_option(parser)
    parser.set_defaults(handler=run)
    return parser


def wait_seconds(text: str) -> int:
    """--wait: whole seconds in ASCII digits, 0 (do not wait) to MAX_WAIT_S."""
    from core.errors import shown
    from core.whole_text import plain_whole

    try:
        value: int | None = plain_whole(text)
    except ValueError:
        value = None
    if value is None or not 0 <= value <= MAX_WAIT_S:
        raise argparse.ArgumentTypeError(
            f"{shown(text)} is not a number of seconds (a whole number from 0 to {MAX_WAIT_S:,})"
        )
    return value


def run(args: argparse.Namespace) -> int:
    from core.processes import could_have_registered, slot_supervisor, start_time, still_running
    from core.queue.db import TRY_AGAIN_WHEN_FREE, describe, folder_trouble, sqlite_path
    from core.queue.errors import NoDatabase, QueueError
    from core.queue.views import back_to_queue_said, cancelling_said, ended_said, ids_of
    from resconv_tui.polling import live_workers_of
    from resconv_tui.worker_launcher import WorkerLauncher

    try:
        # As a reader: its one write (the rows' "stopping" below) is a courtesy the
        # workers' heartbeats repeat. Opened as a writer, a lock that kept an older
        # version's columns from being added failed it "locked" before any signal.
        repo = open_repo(args, only_reads=True)
    except NoDatabase:  # "queue runs first" misled: the workers train from another one
        url = db_url(args)
        path = sqlite_path(url)
        if path is not None and folder_trouble(path) is not None:
            # "the folder runz does not exist (a typo in --db or RESCONV_DB?)", in the words
            # of ls and the others: "give that one's --db" hid the typo in the folder.
            raise
        if getattr(args, "db", None):
            named = "given by --db"
        elif os.environ.get("RESCONV_DB", "").strip():
            named = "named by RESCONV_DB"
        else:
            named = "the default, as neither --db nor RESCONV_DB names one"
        # An empty file (`touch runs.db`) is there, holding no database: "in" it, as ls says.
        missing = path is not None and not os.path.exists(path)
        what = "no database at" if missing else "no resconv-tui database in"
        if path is None:
            named = f"no tables this role can see; {named}"
        # The default file by its absolute path, as the other commands name it: "runs.db"
        # did not say which folder was read.
        where = missing_default_database(args, url) or describe(url)
        raise NoDatabase(
            f"{what} {where} ({named}): stop finds this machine's workers in the "
            "database they train from: give that one's --db"
        ) from None
    host = socket.gethostname()
    launcher = WorkerLauncher()
    workers, damaged = repo.workers_and_damaged()
    rows = live_workers_of(host, workers, time.time())
    # A row of this machine (or of no host that can be read) edited by hand into what no
    # version writes: its pid cannot be trusted, so it is left alone, said, and the exit
    # status says the workers are not known to be down. Raised, it kept stop from
    # signalling every other worker.
    left_alone = [row for row in damaged if row.host in (None, host)]
    for row in left_alone:
        print(f"resconv-tui: {left_alone_said(row)}", file=sys.stderr, flush=True)
    running = [w for w in rows if launcher.alive(w.pid)]
    # A worker killed (kill -9) within the last minutes still reads live, and its pid may
    # have gone to a process started since: signalled, a stranger got the SIGTERM, and
    # one whose row said "stopping" kept stop waiting out --wait on it and exiting 1.
    live = [w for w in running if could_have_registered(w.pid, w.started_at)]
    asked_before = {w.pid for w in live if w.state == "stopping"}
    pids = sorted({w.pid for w in live} - (set() if args.now else asked_before))
    # Asked by an earlier stop, not signalled again (a second signal is --now's "exit at
    # once"), but waited for all the same: a stop run again after one that said "still
    # running" is asked whether they are down now, and `stop && next-step` relies on it.
    stopping = sorted(asked_before - set(pids))
    # A worker just started (`worker & ... ; stop`) imports for seconds before it writes
    # its row: unseen, stop said "no live worker" and exited 0, and it then trained.
    # Found by its command line, asked to stop as the others (it stops as soon as it has
    # started, core.early_signals); one with slots already, through them (below).
    unregistered, their_slots = unregistered_workers(repo, db_url(args), rows, host)
    early_slots = starting_slots(repo, set(their_slots), rows)
    if reused := sorted({w.pid for w in running} - {w.pid for w in live}):
        # Their runs too, as for any worker that exited without giving its runs back:
        # unnamed, `status` still showed them running and `retry` refused them. A pid
        # now a starting worker's is signalled below: "not signalled" was wrong of it.
        exited_ids = {w.id for w in running if w.pid in reused}
        starting_now = {*unregistered, *early_slots}
        print(reused_said(reused, starting_now) + left_running_said(held_runs(repo, exited_ids)))
    if not pids and not stopping and not unregistered and not early_slots:
        print(f"no live worker on {host}" + (" whose row could be read" if left_alone else ""))
        return STILL_RUNNING if left_alone else 0
    # Read before the signal: a worker puts its run back within a step of it (on a GPU,
    # milliseconds), and a read after it found none and said "it was idle".
    targets = {w.id for w in live if w.pid in pids or w.pid in stopping}
    held = held_runs(repo, targets)
    # Looked up before the signal too: a slot that exits at once has no parent to read.
    supervisor_of = {pid: slot_supervisor(pid) for pid in pids + stopping}
    # A slot its supervisor has just started (again, after a kill -9: the OOM killer) has
    # no worker row yet: unseen, it claimed a run once stop had gone, while stop waited
    # on its supervisor to the end of --wait and exited 1. Asked to stop as the others.
    known = {p for p in supervisor_of.values() if p is not None} - set(their_slots)
    starting = {**starting_slots(repo, known, rows), **early_slots}
    supervisor_of.update(starting)
    supervisor_of.update({pid: None for pid in unregistered})
    pids = sorted([*pids, *starting, *unregistered])
    # And each one's start time, as found: waited for by pid alone, one that exited and
    # whose pid went to another process meanwhile kept stop waiting on a stranger.
    found = {*pids, *stopping, *(p for p in supervisor_of.values() if p is not None)}
    started = {pid: start_time(pid) for pid in found}
    signalled = [pid for pid in pids if launcher.stop(pid)]
    # Read again after the signals: a slot or worker just started that registered (and
    # claimed a run) between the read above and its signal was stopped, its run put
    # back, and that run went unnamed.
    late = registered_since(repo, host, set(signalled), live)
    live = [*live, *late]
    targets |= {w.id for w in late}
    # Exited between the look above and its signal (its last run ended, a kill): down, as
    # asked, not "could not signal" and exit 1. Said stopped, as one gone at its signal.
    exited = [pid for pid in pids if pid not in signalled and not launcher.alive(pid)]
    up = sorted(signalled + stopping)  # the processes still to wait for
    waited = sorted(up + exited)  # and those said stopped with them, their runs read
    # Not signalled itself: it exits once its slots have (a signal to it would be
    # forwarded, reaching each slot twice); waited for below.
    supervisors = sorted({p for pid in waited if (p := supervisor_of[pid]) is not None})
    failed = [pid for pid in pids if pid not in signalled and pid not in exited]
    # Said at once in the rows (their heartbeat says so within seconds too): a second
    # `stop` right after this one must not send the "exit at once" signal by accident.
    unmarked = [w for w in live if w.pid in signalled and w.state != "stopping"]
    try:  # the first refusal ends it: each next row would wait the busy timeout again
        while unmarked:
            repo.mark_worker_stopping(unmarked[0].id)
            unmarked.pop(0)
    except QueueError as exc:  # locked past the busy timeout: the signals went all the same
        # Not "try again": a second stop now tells them to exit at once.
        why = str(exc).removesuffix(TRY_AGAIN_WHEN_FREE)
        print(f"resconv-tui: {why}; {unmarked_said(unmarked)}", file=sys.stderr)
    # And read after it: a worker that claimed a run between the first read and its
    # signal was said "idle" while that run went back to the queue.
    # Should that read fail (a run row damaged meanwhile), the first read's runs stand.
    ended: dict[int, RunStatus] = {}
    both: dict[int, RunRow] = {}
    after: list[RunRow] | None = None
    if held is not None:
        after = held_runs(repo, targets, say_unread=False)
        both = {run.id: run for run in (*held, *(after or ()))}  # the later read's row wins
        if after is not None:
            # And one that ended on its own between the reads (its last step done before
            # the signal came) goes nowhere: it was said to go back to the queue.
            gone = [run for i, run in both.items() if i not in {r.id for r in after}]
            ended = ended_meanwhile(repo, gone)
        held = [both[i] for i in sorted(both) if i not in ended]
    said = []
    left: list[int] = []  # of waited and supervisors, those still alive after the wait
    now_ones = [pid for pid in signalled if pid in asked_before]
    first = [pid for pid in signalled if pid not in asked_before and pid not in unregistered]
    early = [pid for pid in signalled if pid in unregistered]
    if first:
        said.append(f"asked worker {ids_of('pid', first)} to stop after the current step")
    if early:
        said += early_said(early, left_alone)
    if now_ones:
        said.append(f"told worker {ids_of('pid', now_ones)} to exit at once")
    if stopping:
        said.append(f"worker {ids_of('pid', stopping)} already stopping (--now: stop at once)")
    if waited and args.wait > 0:
        them = "it" if len(up) == 1 else "them"
        if said:  # none when every one had exited before its signal
            print(f"{'; '.join(said)}; waiting up to {args.wait} s for {them} to exit", flush=True)
        elif any(still_running(pid, started[pid]) for pid in supervisors):
            # Their supervisor is left (it records what they left, or started one again):
            # waited for without a word, stop looked hung for up to --wait.
            slots_gone = f"worker {ids_of('pid', exited)} had exited"
            theirs = supervised(supervisors, len(waited))
            print(f"{slots_gone}; waiting up to {args.wait} s for {theirs} to exit", flush=True)
        # Each worker's own pid: a run is judged by whether its own worker is still at
        # it, not by whether any is (one gone beside one in its final pass).
        pid_of = {w.id: w.pid for w in live if w.pid in waited}
        watched = sorted(i for i, run in both.items() if run.worker_id in pid_of)
        try:
            left = still_alive(launcher, waited + supervisors, args.wait, started)
        except KeyboardInterrupt:  # "interrupted" alone read as if the stop was called off
            left_said = interrupted_said(up, exited)
            print(f"resconv-tui: not waiting any more; {left_said}", file=sys.stderr)
            return 130
        print(
            after_the_wait(
                repo, watched, pid_of, waited, supervisors, set(now_ones), left, args.wait,
                held is not None,
            )
        )  # fmt: skip
    elif waited and held is None:
        print("; ".join(said + exited_said(exited)))
    elif waited and held is not None:
        said += exited_said(exited)
        reached = {w.id for w in live if w.pid in waited}
        held = [run for run in held if run.worker_id in reached]
        # Still held by a worker already exited (the read after the signal): left
        # running, as after the wait of one killed; unknown where that read failed.
        gone_ids = {w.id for w in live if w.pid in exited}
        still_held = {run.id for run in after or ()}
        orphaned = [r.id for r in held if r.worker_id in gone_ids and r.id in still_held]
        held = [run for run in held if run.id not in orphaned]
        # Asked once, not told to exit at once: that puts even a final pass's run back.
        asked = {w.id for w in live if w.pid in first or w.pid in early or w.pid in stopping}
        ends = {run.id: likely_end(run, run.worker_id not in asked) for run in held}
        finishing, cancelling, back = (
            [run_id for run_id, end in ends.items() if end == what]
            for what in ("finishing", "cancelling", "back")
        )
        if back:
            said.append(back_to_queue_said(back))
        if cancelling:
            said.append(cancelling_said(cancelling))
        if orphaned:
            said.append(orphaned_said(orphaned))
        said += ended_said(ended)
        if not (back or finishing or ended or cancelling or orphaned):
            # "Runs go back" of none misled. "When read": a run claimed and put back
            # between the two reads is not seen.
            said.append(f"{'it' if len(waited) == 1 else 'they'} held no run when read")
        print("; ".join(said))
        if finishing:
            print(f"{'but ' if back else ''}{will_likely_succeed(finishing)}")
    if failed:
        print(f"could not signal worker {ids_of('pid', failed)} (another user's process?)")
        return STILL_RUNNING
    return STILL_RUNNING if left or left_alone else 0


def left_alone_said(row: DamagedWorker) -> str:
    """A damaged worker row of this machine that stop did not act on, and why."""
    from core.errors import terminal_safe

    # Not "its process was not signalled": a worker that runs is found by its command
    # line as one with no row (``unregistered_workers``) and signalled. Nor "as one
    # starting": it gets the one SIGTERM any worker gets, and finishes its step first.
    # Its row is not marked stopping (it cannot be read), so the next stop signals it
    # again, which a worker takes as "exit at once".
    untrusted = "stop did not signal by it (its values cannot be trusted)"
    found = (
        "a worker process of this database with no readable row, found by its command line, "
        "is asked to stop after its current step as the others are"
    )
    again = "its row cannot say it is stopping: a second stop tells it to exit at once"
    return terminal_safe(f"{row.said}; {untrusted}: {found} ({again})")


def early_said(early: list[int], left_alone: list[DamagedWorker]) -> list[str]:
    """What stop asked of the workers ``early`` it found by their command line, with no
    readable row: one whose pid a damaged row of this machine (``left_alone``) holds is
    named with that row; the others are starting, or (a damaged row whose pid cannot be
    read beside them) may be that row's. "starting: no row yet" was said of a worker
    whose row was there, damaged, and that may have trained for hours."""
    from core.errors import cut, terminal_safe
    from core.queue.views import ids_of

    row_of = {row.pid: cut(row.id) for row in left_alone if row.pid is not None}
    said = [
        f"asked worker pid {pid} to stop (found by its command line: damaged worker row "
        f"{row_of[pid]} holds its pid)"
        for pid in early
        if pid in row_of
    ]
    if others := [pid for pid in early if pid not in row_of]:
        unread = any(row.pid is None for row in left_alone)
        why = (
            "found by its command line: starting, or the damaged row's worker"
            if unread
            else "starting: no row yet"
        )
        said.append(f"asked worker {ids_of('pid', others)} to stop ({why})")
    return [terminal_safe(line) for line in said]


def reused_said(pids: list[int], starting: set[int]) -> str:
    """The workers whose pids now name processes started after their rows were written:
    they exited (killed) and were not signalled, nor waited for; a pid that went to a
    worker of this database ``starting`` (no row yet) is asked to stop as that one."""
    from core.queue.views import ids_of

    said = []
    for taken_by, pids_now in (
        ("another process's now: not signalled", [p for p in pids if p not in starting]),
        ("a worker's starting now: asked to stop below", [p for p in pids if p in starting]),
    ):
        if pids_now:
            whose = "its pid is" if len(pids_now) == 1 else "their pids are"
            said.append(f"worker {ids_of('pid', pids_now)} had exited ({whose} {taken_by})")
    return "; ".join(said)


def left_running_said(runs: list[RunRow] | None) -> str:
    """``; run 5 still reads running: ...``: the ``runs`` still held by workers that
    exited with their pids given to other processes since, and how they are queued
    again (``orphaned_said``: ``retry`` tells such a worker gone by its start time);
    empty for none (or unread: said on stderr)."""
    return f"; {orphaned_said(sorted(run.id for run in runs))}" if runs else ""


def interrupted_said(up: list[int], exited: list[int]) -> str:
    """What a Ctrl-C during the wait leaves: the workers ``up`` (signalled, or already
    stopping) stop all the same; with none, those ``exited`` before their signal (their
    supervisor was waited for: "worker pid  asked" named no one)."""
    from core.queue.views import ids_of

    pids = up or exited
    its = "its" if len(pids) == 1 else "their"
    if not up:
        done = f"worker {ids_of('pid', exited)} had exited"
        return f"{done} (resconv-tui status shows how {its} runs ended)"
    asked = f"worker {ids_of('pid', up)} asked to stop all the same"
    return f"{asked} (resconv-tui status shows how {its} runs end)"


def starting_slots(repo: Repo, supervisors: set[int], live: list[WorkerRow]) -> dict[int, int]:
    """The slot processes of ``supervisors`` with no worker row of this host, each with
    its supervisor: just started, still importing, about to claim a run. Rows stopped
    and lost count too (a slot on its way out, its row "stopped", is not one starting:
    a second signal exits at once); a damaged row is left out (``workers_and_damaged``),
    the others still read; where the rows cannot be read at all, the ``live`` rows alone."""
    from core.processes import slots_of
    from core.queue.errors import QueueError

    if not supervisors:
        return {}
    host = socket.gethostname()
    try:
        # One damaged row (of any host) must not leave the rest unread: read as the
        # live rows alone, an exiting worker's "stopped" row was not known, and the
        # worker was signalled again as one starting.
        rows = repo.workers_and_damaged(include_gone=True)[0]
    except QueueError:
        rows = live
    known = {w.pid for w in [*rows, *live] if w.host == host}
    return {slot: sup for sup in sorted(supervisors) for slot in slots_of(sup) if slot not in known}


def unregistered_workers(
    repo: Repo, url: str, live: list[WorkerRow], host: str
) -> tuple[list[int], list[int]]:
    """This user's worker processes of the database ``url`` with no worker row of this
    host yet (``live``: the rows read; all of them are looked at as ``starting_slots``
    does): the pids to signal (a plain worker, or a ``--slots`` supervisor that has
    started no slot yet: it then starts none), and the supervisors whose slots are
    started (signalled as theirs: ``starting_slots``). A row names its process only
    where it could have registered it: a pid given to a new worker since is that one's.
    A slot is left to its supervisor, found so or through its row."""
    from core.processes import could_have_registered, slots_of, worker_processes
    from core.queue.errors import QueueError

    try:
        rows = repo.workers_and_damaged(include_gone=True)[0]  # as starting_slots reads them
    except QueueError:  # the rows cannot be read now: the stop goes on
        rows = live
    known = {
        w.pid
        for w in [*rows, *live]
        if w.host == host and could_have_registered(w.pid, w.started_at)
    }
    found = [
        process.pid
        for process in worker_processes()
        if not process.in_slot and process.pid not in known and same_database(url, process)
    ]
    with_slots = [pid for pid in found if slots_of(pid)]
    return [pid for pid in found if pid not in with_slots], with_slots


def registered_since(
    repo: Repo, host: str, pids: set[int], seen: list[WorkerRow]
) -> list[WorkerRow]:
    """The live rows of this host's processes ``pids`` that the first read (``seen``) did
    not have: written since by a worker or slot just started (a damaged row left out:
    raised, one hid them all). None where the rows cannot be read now: the first read
    stands."""
    from core.processes import could_have_registered
    from core.queue.errors import QueueError

    try:
        rows = repo.workers_and_damaged()[0]
    except QueueError:
        return []
    known = {w.id for w in seen}
    return [
        w
        for w in rows
        if w.host == host and w.pid in pids and w.id not in known
        and could_have_registered(w.pid, w.started_at)
    ]  # fmt: skip


def same_database(url: str, process: WorkerProcess) -> bool:
    """Whether worker ``process`` trains from the database ``url`` names: the same file
    (a relative path read from each one's working folder), or the same server, database,
    role and search path (``server_database``). A database text it cannot read is not (it would not
    have started)."""
    from core.processes import LIBPQ_DEFAULTS
    from core.queue.db import parse_url, sqlite_path
    from core.queue.errors import QueueError
    from resconv_tui.cli import DEFAULT_DB

    theirs = process.db or DEFAULT_DB
    try:
        ours_file, their_file = sqlite_path(url), sqlite_path(theirs)
        ours, their = parse_url(url), parse_url(theirs)
    except QueueError:
        return False
    if ours_file is not None or their_file is not None:
        if ours_file is None or their_file is None:
            return False
        try:  # their folder as /proc/PID/cwd: one removed since still leads to the file
            return os.path.samefile(ours_file, process.cwd / their_file)
        except OSError:  # no such file for one of them: not one database
            return False
    our_environ = {name: os.environ[name] for name in LIBPQ_DEFAULTS if name in os.environ}
    ours_named = server_database(ours, our_environ)
    theirs_named = server_database(their, process.libpq_environ)
    return ours_named is not None and ours_named == theirs_named


# The names of this machine's loopback address: a server reached by one is reached by
# the others (a URL of localhost against one of 127.0.0.1 named one server as two).
LOOPBACK = frozenset({"localhost", "127.0.0.1", "::1"})


def server_database(url: URL, environ: Mapping[str, str]) -> tuple[object, ...] | None:
    """What names a database on a server, as libpq reads ``url`` in a process whose
    environment gives ``environ`` (``LIBPQ_DEFAULTS``, for what the URL leaves out): its
    kind, server, port, name, role and search path (``-c search_path=...`` in its
    options: another schema, another queue), not the driver nor the password, which a
    worker's URL may give otherwise. The URL is read as SQLAlchemy hands it to psycopg,
    its query winning over its host, port, name and role
    (``postgresql://u@localhost/db?host=/run/other`` is the socket folder's server).
    The server: a loopback name as one, any other host name whatever
    its case, a socket folder by its real path (``?host=/run/postgresql``, as
    ``/run/postgresql/`` or through a link); the port 5432 where none is given. A socket
    folder and a host name are never one server: one machine may run a server on each.
    None where it cannot be told (several hosts, a service file, an address libpq
    connects to instead of the host's): that URL is matched by no other."""
    from sqlalchemy import exc

    try:
        given = url.get_dialect()().create_connect_args(url)[1]
    except exc.ArgumentError:  # several hosts and ports that do not pair up
        return None
    if any(key in given for key in ("hostaddr", "service")):
        return None
    if any(name in environ for name in ("PGHOSTADDR", "PGSERVICE")):
        return None
    try:  # several hosts (?host=a&host=b, a,b): libpq tries each in turn
        host = _one_value(given.get("host")) or environ.get("PGHOST", "")
        port = int(_one_value(given.get("port")) or environ.get("PGPORT") or 5432)
        user = _one_value(given.get("user")) or environ.get("PGUSER")
        # "database": the name's key for a driver other than psycopg (pg8000, asyncpg).
        named = given.get("dbname", given.get("database"))
        database = _one_value(named) or environ.get("PGDATABASE")
        options = _one_value(given.get("options")) or environ.get("PGOPTIONS", "")
    except ValueError:
        return None
    if "," in host:
        return None
    user = user or _os_user_name()  # libpq's default: both processes are this user's
    if host.startswith("/"):
        server = os.path.realpath(host)
    else:  # "": libpq's built-in socket folder
        server = host.lower().strip("[]")
        server = "localhost" if server in LOOPBACK else server
    schema = _search_path(options)
    return (url.get_backend_name(), server, port, database or user, user, schema)


def _os_user_name() -> str:
    """This process's user name, as libpq takes it for a URL that gives none: the
    system's, not $USER; where the system has none, a text no URL gives."""
    import pwd

    try:
        return pwd.getpwuid(os.getuid()).pw_name
    except KeyError:  # a uid without a name (a container's)
        return f"uid {os.getuid()}"


# A search path in libpq's options (``-c search_path=a``, ``-csearch_path=a,b``,
# ``--search_path=a``): the schema the queue's tables are in. Its other settings (a
# statement timeout) name no other database.
SEARCH_PATH = re.compile(r"(?:-c\s*|--)search_path=(\S*)")


def _search_path(options: str) -> str:
    """The search path ``options`` sets last (the server's setting wins as it reads them),
    else ""."""
    paths = SEARCH_PATH.findall(options)
    return paths[-1] if paths else ""


def _one_value(value: object) -> str | None:
    """A connection parameter's value as text (a port may be a number); ValueError where
    the URL's query gives it several times."""
    if isinstance(value, tuple | list):
        raise ValueError("several values")
    return None if value is None else str(value)


def exited_said(exited: list[int]) -> list[str]:
    """``worker pid 42 stopped``, of workers that exited before their signal reached
    them: the phrase of one that exited at it (``after_the_wait``)."""
    from core.queue.views import ids_of

    return [f"worker {ids_of('pid', exited)} stopped"] if exited else []


def still_alive(
    launcher: WorkerLauncher, pids: list[int], wait_s: float, started: dict[int, int | None]
) -> list[int]:
    """Wait up to ``wait_s`` for the processes ``pids`` (each with its start time as
    found, ``core.processes.start_time``) to exit; those still alive."""
    from core.processes import still_running

    deadline = time.monotonic() + wait_s
    alive = list(pids)
    while alive:
        alive = [pid for pid in alive if launcher.alive(pid) and still_running(pid, started[pid])]
        if not alive or time.monotonic() >= deadline:
            break
        time.sleep(WAIT_POLL_S)
    return alive


def after_the_wait(
    repo: Repo,
    watched: list[int],
    pid_of: dict[str, int],
    waited: list[int],
    supervisors: list[int],
    told_now: set[int],
    left: list[int],
    wait_s: int,
    read: bool,
) -> str:
    """How the runs the workers waited for held (``watched``, by id; ``pid_of``: each
    such worker's pid by its id) ended, each read now from the database; of those whose
    own worker is still at it (``left``: the pids of ``waited`` and of their slots'
    ``supervisors`` still alive after ``wait_s``), what is likely, as ``--no-wait`` says
    (``told_now``: the pids told to exit at once, which put even a final pass's run back)."""
    from core.queue import RunStatus
    from core.queue.errors import QueueError, UnknownRun
    from core.queue.views import back_to_queue_said, cancelling_said, ids_of

    said = []
    exited = [pid for pid in waited if pid not in left]
    # A supervisor exits only after all its slots: one down follows slots down.
    down = [pid for pid in supervisors if pid not in left]
    if exited:
        also = f" and {supervised(down, len(waited))}" if down else ""
        said.append(f"worker {ids_of('pid', exited)}{also} stopped")
    # Never killed: a final pass let finish, a stalled step (`stop --now`).
    if still := [pid for pid in waited if pid in left]:
        said.append(f"worker {ids_of('pid', still)} still running after {wait_s} s")
    if up := [pid for pid in supervisors if pid in left]:
        said.append(f"{supervised(up, len(waited))} still running after {wait_s} s")
    if not read:  # the runs could not be read before the signal (said on stderr)
        return "; ".join(said)
    how: dict[str, list[int]] = {}
    for run_id in watched:
        try:
            run = repo.get_run(run_id)
        except UnknownRun:  # `rm` meanwhile
            how.setdefault("was removed", []).append(run_id)
            continue
        except QueueError:  # its row damaged meanwhile: said as unread, not guessed
            how.setdefault("unread", []).append(run_id)
            continue
        if run.status == RunStatus.RUNNING and run.worker_id in pid_of:
            pid = pid_of[run.worker_id]
            # Its own worker exited without giving it back (killed, or its database away).
            end = "orphaned" if pid not in left else likely_end(run, pid in told_now)
            how.setdefault(end, []).append(run_id)
        elif run.status in (RunStatus.QUEUED, RunStatus.RUNNING):  # RUNNING: claimed again
            how.setdefault("went back to the queue", []).append(run_id)
        elif run.status == RunStatus.CANCELLED:
            how.setdefault("ended cancelled", []).append(run_id)
        else:
            how.setdefault(run.status.value, []).append(run_id)
    finishing = how.pop("finishing", [])
    if "back" in how:
        said.append(back_to_queue_said(how.pop("back")))
    if "cancelling" in how:
        said.append(cancelling_said(how.pop("cancelling")))
    if orphaned := how.pop("orphaned", []):
        said.append(orphaned_said(orphaned))
    unread = how.pop("unread", [])
    said += [f"{ids_of('run', ids)} {what}" for what, ids in how.items()]
    if unread:
        said.append(f"{ids_of('run', unread)} could not be read")
    if not watched:  # of the processes named (a slot just started has no row)
        said.append(f"{'it' if len(waited) == 1 else 'they'} held no run when read")
    line = "; ".join(said)
    if finishing:
        line += f"\n{will_likely_succeed(finishing)}"
    return line


def likely_end(run: RunRow, told_now: bool) -> str:
    """What a signalled worker will likely do with ``run``, still running under it:
    ``finishing`` (its final pass is let finish, core.train; not when its worker was
    ``told_now`` to exit at once, which puts even that back), ``cancelling`` (a cancel
    asked for and not yet read: the put-back ends it cancelled, Repo.requeue) or
    ``back`` (to the queue)."""
    if run.trained_all and not told_now:
        return "finishing"
    return "cancelling" if run.cancel_requested else "back"


def will_likely_succeed(finishing: list[int]) -> str:
    """The line of runs in their final pass: minutes for a big model on a CPU, and "go
    back to the queue" was not what comes of them."""
    from core.queue.views import final_pass_said

    then = "it" if len(finishing) == 1 else "they"
    return f"{final_pass_said(finishing)}, then {then} will likely succeed"


def supervised(pids: list[int], slots: int) -> str:
    """``their --slots supervisor pid 40``: the supervisors of the ``slots`` slot
    processes just named (one: ``its``, as in "worker pid 41 and its ... stopped")."""
    from core.queue.views import ids_of

    whose = "its" if slots == 1 else "their"
    return f"{whose} --slots supervisor{'s' if len(pids) > 1 else ''} {ids_of('pid', pids)}"


def orphaned_said(ids: list[int]) -> str:
    """Runs whose worker exited without giving them back (killed; or, asked to stop while
    its database was locked or away, the database still refused them after the worker's
    ``GIVE_BACK_S``): they read running until found lost, which `retry` does once the
    worker has been silent a while."""
    from core.processes import SILENT_FOR_S
    from core.queue.views import ids_of

    one = len(ids) == 1
    it = "it" if one else "them"
    return (
        f"{ids_of('run', ids)} still read{'s' if one else ''} running: {'its' if one else 'their'} "
        f"worker exited without giving {it} back (resconv-tui retry "
        f"{' '.join(map(str, ids))} queues {it} again once silent {SILENT_FOR_S:g} s)"
    )


def unmarked_said(unmarked: list[WorkerRow]) -> str:
    """What a lock that kept out the rows' "stopping" means, of the workers it kept it
    from: only those (not one told to exit at once, whose row said so already), in the
    right number (thread slots share one pid)."""
    from core.queue.views import ids_of

    pids = sorted({w.pid for w in unmarked})
    if len(pids) == 1:
        rows, it = "its row says so at its next heartbeat", "it"
    else:
        rows, it = "their rows say so at their next heartbeats", "them"
    return (
        f"worker {ids_of('pid', pids)} asked all the same: {rows} (a second stop before "
        f"then tells {it} to exit at once)"
    )


def held_runs(repo: Repo, worker_ids: set[str], say_unread: bool = True) -> list[RunRow] | None:
    """The runs these workers are training (those in their final pass too); None when a
    damaged run row keeps them from being read (the workers are stopped all the same),
    said unless ``say_unread`` is False: the read after the signal, where the read before
    named what it found and "the runs are not said" would unsay it."""
    from core.queue.errors import QueueError
    from resconv_tui.polling import read_held_runs

    try:
        return read_held_runs(repo, worker_ids)
    except QueueError as exc:
        if say_unread:
            print(f"resconv-tui: {exc}; the runs the workers held are not said", file=sys.stderr)
        return None


def ended_meanwhile(repo: Repo, runs: list[RunRow]) -> dict[int, RunStatus]:
    """Of the runs the first read found training (``runs``, as read) and the second did
    not, those that ended on their own (succeeded, failed, cancelled), by id, with how; a
    run put back by the signal (queued, or claimed since) is not one. A row that cannot
    be read is left out: said as the first read found it, as before."""
    from core.queue import RunStatus
    from core.queue.errors import QueueError
    from core.queue.status import FINISHED

    ended: dict[int, RunStatus] = {}
    for run in runs:
        try:
            status = repo.get_run(run.id).status
        except QueueError:  # removed meanwhile, or damaged
            continue
        if status == RunStatus.CANCELLED and run.cancel_requested:
            # The cancel asked for, carried out by the put-back the signal made as likely
            # as by its worker before it: said as such ("ends cancelled"), not "meanwhile".
            continue
        if status in FINISHED:
            ended[run.id] = status
    return ended
