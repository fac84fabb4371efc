"""Whether a process of this machine still runs: the one liveness rule of the project.

A worker row names its host and pid, and when it was written: a process started after
that is not its worker, but one given its pid once it had exited (``worker_alive``).
The worker (recovering runs of workers that died without a clean stop), the dashboard
(each poll, for workers of its own host, and for a worker it just started), ``status``,
``cancel`` and ``retry`` all ask this, so they agree on what "gone" is."""

from __future__ import annotations

import ctypes
import math
import os
import re
import signal
import socket
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

# How ``worker --slots K`` (core.slots) names itself to its slot processes.
from core.early_signals import SUPERVISOR_ENV as SUPERVISOR_ENV

# A live worker beats every 3 s (core.recording.HEARTBEAT_S). A row of this host whose pid
# is not running here counts as exited only after this much silence: a container sharing
# the host's name (docker --network host) or another box of the same name on a shared
# queue has pids that mean nothing here, but it keeps beating.
SILENT_FOR_S = 10.0
# How much later than its worker row's registration a process may seem to have started
# and still be that worker: /proc/stat's boot time is in whole seconds and moves with
# the wall clock (an NTP step), where the row's time was read at its write.
STARTED_AFTER_SLACK_S = 5.0


def exited_here(
    host: str,
    pid: int,
    silent_s: float,
    *,
    registered_at: float,
    here: str | None = None,
    alive: Callable[[int, float], bool] | None = None,
) -> bool:
    """Whether a worker row (``host``, ``pid``, registered at ``registered_at``, silent
    for ``silent_s``) is a process of this machine that has exited. This process itself
    is never exited. ``here`` (this machine's name) and ``alive`` (``worker_alive``) are
    the dashboard's, which tests replace."""
    return silent_s >= SILENT_FOR_S and gone_here(
        host, pid, registered_at=registered_at, silent_s=silent_s, here=here, alive=alive
    )


def gone_here(
    host: str,
    pid: int,
    *,
    registered_at: float,
    silent_s: float,
    here: str | None = None,
    alive: Callable[[int, float], bool] | None = None,
) -> bool:
    """Whether a worker row's process (silent for ``silent_s``) is of this machine and
    not running (nor its pid another process's now: ``worker_alive``), however long its
    row has been silent (``exited_here`` waits ``SILENT_FOR_S`` more to be sure)."""
    if host != (here or socket.gethostname()) or pid == os.getpid():
        return False
    return not (alive or worker_alive)(pid, registered_by(registered_at, silent_s))


def registered_by(registered_at: float, silent_s: float) -> float:
    """When a worker row (registered at ``registered_at``, silent ``silent_s``) was
    written, as ``worker_alive`` should judge its pid's process by: any time (inf) while
    the row still beats. A pid goes to a stranger only once its worker has exited, and so
    stopped beating; while a clock stepped forward since the row's write (NTP's first
    sync after a boot, a VM resumed) has a live worker's process seem to start after its
    own row: `retry` said its running run's worker "has exited", again and again."""
    return registered_at if silent_s >= SILENT_FOR_S else math.inf


def worker_alive(pid: int, registered_at: float) -> bool:
    """Whether the worker whose row names ``pid`` and was registered at ``registered_at``
    still runs: its process runs, and is not one started after that row was written
    (``could_have_registered``). By pid alone, a worker killed with -9 whose pid went to
    another process read alive: its runs stayed "running" to ``retry``, ``status`` and
    the dashboard until some worker's stale-heartbeat check, and never with none up."""
    return process_alive(pid) and could_have_registered(pid, registered_at)


def process_alive(pid: int) -> bool:
    """Whether ``pid`` runs here. A zombie (exited, not yet reaped by its parent, e.g. a
    worker the dashboard started and never waited for) counts as gone."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # exists, owned by another user
    fields = _stat_fields(pid)
    if not fields:
        return True  # no /proc (macOS): the signal check is all there is
    return fields[0] != "Z"


def _stat_fields(pid: int) -> list[str] | None:
    """/proc/PID/stat's fields from the third (the state) on, read after the process's
    name in parentheses, which may hold spaces and ')'; None where /proc cannot tell
    (gone, no /proc: macOS)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return stat.rsplit(")", 1)[1].split() if ")" in stat else None


def start_time(pid: int) -> int | None:
    """When process ``pid`` started, in clock ticks since boot (/proc/PID/stat field 22):
    with its pid, it names one process, where a pid alone is given to another once its
    process has exited. None where /proc cannot tell (gone, no /proc: macOS)."""
    fields = _stat_fields(pid)
    try:
        return int(fields[22 - 3]) if fields is not None else None
    except (IndexError, ValueError):
        return None


def started_wall_clock(pid: int) -> float | None:
    """When process ``pid`` started, in wall-clock seconds (as ``time.time()``): its
    ``start_time`` past the boot time /proc/stat gives (``btime``). None where /proc
    cannot tell."""
    ticks = start_time(pid)
    if ticks is None:
        return None
    try:
        lines = Path("/proc/stat").read_text().splitlines()
        boot = next(int(line.split()[1]) for line in lines if line.startswith("btime "))
        per_second = os.sysconf("SC_CLK_TCK")
    except (OSError, StopIteration, IndexError, ValueError):
        return None
    return boot + ticks / per_second


def could_have_registered(pid: int, registered_at: float) -> bool:
    """Whether process ``pid`` may be the worker whose row was registered at
    ``registered_at`` (its ``started_at``): a process started after that row was
    written is not, its pid given to it once that worker had exited (a kill -9), and a
    signal meant for the worker would reach a stranger. True where /proc cannot tell.

    No bound the other way: a worker registers only once its database answers (the
    write waits out an outage, ``reconnect_s``), so its row may come long after it."""
    started = started_wall_clock(pid)
    return started is None or started <= registered_at + STARTED_AFTER_SLACK_S


def still_running(pid: int, started: int | None) -> bool:
    """Whether the process ``pid`` that started at ``started`` (``start_time``, taken
    when it was found) still runs, not another given its pid since; ``started`` None
    (/proc could not tell): whether any process ``pid`` does."""
    if not process_alive(pid):
        return False
    return started is None or start_time(pid) == started


def slot_supervisor(pid: int) -> int | None:
    """The pid of the ``worker --slots K`` supervisor (``core.slots``) whose slot process
    ``pid`` is, while it is still that slot's parent; None for any other process (a plain
    worker, thread slots, a slot whose supervisor died), or where /proc cannot tell.

    The supervisor has no worker row (only its slots do): it is the slot's parent, and
    it is known to be one because it named itself (``SUPERVISOR_ENV``, its own pid) in
    the environment it started the slot with. A parent pid alone could be anything a
    worker was started from (a shell, the dashboard, a process manager)."""
    fields = _stat_fields(pid)
    try:
        parent = int(fields[1]) if fields else 0  # the state, then the ppid; 0: unknown
        environ = Path(f"/proc/{pid}/environ").read_bytes()
    except (OSError, IndexError, ValueError):  # gone, another user's, or no /proc (macOS)
        return None
    named = f"{SUPERVISOR_ENV}={parent}".encode()
    if parent <= 1 or named not in environ.split(b"\0"):
        return None
    return parent


def slots_of(supervisor: int) -> list[int]:
    """The live slot processes of the ``worker --slots K`` supervisor ``supervisor``
    (``slot_supervisor`` of each is it), found in /proc; none where /proc cannot tell.
    A slot it has just started (again, after a kill -9) has no worker row yet: only
    this finds it."""
    try:
        entries = [int(entry.name) for entry in Path("/proc").iterdir() if entry.name.isdigit()]
    except OSError:  # no /proc (macOS)
        return []
    return sorted(
        pid for pid in entries if slot_supervisor(pid) == supervisor and process_alive(pid)
    )


# How a worker process is started: ``python -m core.worker`` (a slot too) and
# ``python -m resconv_tui worker`` (the dashboard's ``w``), or the ``resconv-tui worker``
# script; the module's name, after ``-m``, or the script's.
WORKER_MODULE = "core.worker"
CLI_MODULE = "resconv_tui"
CLI_SCRIPT = "resconv-tui"


# What libpq takes from a process's environment where a PostgreSQL URL leaves it out:
# a worker's own values say which server its URL names (PGOPTIONS: its search path, the
# schema; PGHOSTADDR and PGSERVICE: a server the URL's host does not say).
LIBPQ_DEFAULTS = (
    "PGHOST",
    "PGPORT",
    "PGUSER",
    "PGDATABASE",
    "PGOPTIONS",
    "PGHOSTADDR",
    "PGSERVICE",
)


@dataclass(frozen=True)
class WorkerProcess:
    """A worker process of this user found in /proc (``worker_processes``), whose
    database is ``db`` (its last ``--db``, else its starting ``RESCONV_DB``; None: the
    default) read from its working folder ``cwd`` (a relative SQLite path), and with
    ``libpq_environ`` (its starting ``LIBPQ_DEFAULTS`` that are set) for a PostgreSQL
    URL's missing parts."""

    pid: int
    db: str | None
    cwd: Path
    in_slot: bool  # a slot of a ``--slots K`` supervisor (SUPERVISOR_ENV set)
    libpq_environ: Mapping[str, str] = field(default_factory=dict, compare=False)


def worker_processes() -> list[WorkerProcess]:
    """This user's worker processes of this machine, but this one, by their command
    lines, with or without a worker row: one just started imports for seconds before it
    registers, and ``stop`` must find it then too. None where /proc cannot tell (macOS)."""
    try:
        entries = [int(entry.name) for entry in Path("/proc").iterdir() if entry.name.isdigit()]
    except OSError:
        return []
    found = []
    for pid in entries:
        if pid != os.getpid() and (process := _worker_process(pid)) is not None:
            found.append(process)
    return found


def _worker_process(pid: int) -> WorkerProcess | None:
    """Process ``pid`` as a ``WorkerProcess``; None for any other process, another
    user's (its environment is not ours to read, nor its process ours to signal), one
    of another PID namespace (a container: its row names it by a pid that is not its
    pid here, so it never reads registered), or one gone."""
    folder = Path(f"/proc/{pid}")
    try:
        if folder.stat().st_uid != os.getuid():
            return None
        if not _in_this_pid_namespace(folder):
            return None
        argv = [
            os.fsdecode(arg) for arg in (folder / "cmdline").read_bytes().rstrip(b"\0").split(b"\0")
        ]
        arguments = worker_arguments(argv)
        if arguments is None or not process_alive(pid):
            return None
        environ = dict(
            line.split(b"=", 1)
            for line in (folder / "environ").read_bytes().split(b"\0")
            if b"=" in line
        )
    except OSError:
        return None
    db = _last_db(arguments) or os.fsdecode(environ.get(b"RESCONV_DB", b"")).strip() or None
    in_slot = environ.get(SUPERVISOR_ENV.encode(), b"").isdigit()
    libpq = {
        name: os.fsdecode(environ[name.encode()])
        for name in LIBPQ_DEFAULTS
        if name.encode() in environ
    }
    return WorkerProcess(pid, db, folder / "cwd", in_slot, libpq)


def _in_this_pid_namespace(folder: Path) -> bool:
    """Whether the process of /proc folder ``folder`` has this process's pid numbers;
    True where /proc cannot tell (no namespace links)."""
    try:
        return os.readlink(folder / "ns" / "pid") == os.readlink("/proc/self/ns/pid")
    except OSError:
        return True


def _last_db(arguments: list[str]) -> str | None:
    """The ``--db`` a command line gives last (``--db X`` or ``--db=X``): the one its
    parser keeps."""
    db = None
    for i, text in enumerate(arguments):
        if text.startswith("--db="):
            db = text.removeprefix("--db=")
        elif text == "--db" and i + 1 < len(arguments):
            db = arguments[i + 1]
    return db


def worker_arguments(argv: list[str]) -> list[str] | None:
    """The arguments of a worker's command line ``argv`` (``python -m core.worker ...``,
    ``python -m resconv_tui [--db X] worker ...``, ``resconv-tui worker ...``), from
    the module's or script's name on; None for any other command. Only what the
    process runs itself counts: a wrapper that runs a worker (``timeout 8h python -m
    core.worker``, ``/usr/bin/time resconv-tui worker``, strace, unshare) names one in
    its arguments and is not one, nor is any other program given ``-m core.worker``
    (``git commit -m core.worker``); and ``worker --help`` prints and exits."""
    program, rest = _program_and_arguments(argv)
    if program == WORKER_MODULE:
        arguments: list[str] | None = rest
    elif program in (CLI_MODULE, CLI_SCRIPT):
        i = 0  # the subcommand: the first word past the options before it (--db X)
        while i < len(rest) and rest[i].startswith("-"):
            i += 2 if rest[i] == "--db" else 1
        arguments = rest if rest[i : i + 1] == ["worker"] else None
    else:
        arguments = None
    if arguments is None or {"-h", "--help"} & set(arguments):
        return None
    return arguments


# Python's own options, as its getopt reads them (CPython 3.8 to 3.13): the flags, which
# run together (-uB as -u -B: ``python -um core.worker``); those that take a value, as
# the rest of their word or the next word (-W ignore or -Wignore; -m core.worker or
# -umcore.worker); and its one long option with a value. Any other it refuses (-z,
# --foo) or prints at and exits (-h, -V, --help-env): no worker runs after them.
PYTHON_FLAGS = frozenset("bBdEiIOPqRsStuvx")
PYTHON_VALUE_FLAGS = frozenset("cmWX")
PYTHON_LONG_VALUE_OPTIONS = frozenset({"--check-hash-based-pycs"})
# An interpreter, by its file name: python, python3.12, python3.13t, pypy3.
PYTHON = re.compile(r"(python|pypy)[0-9.]*[a-z]*")


def _program_and_arguments(argv: list[str]) -> tuple[str, list[str]]:
    """What the command line ``argv`` runs: the module after a Python interpreter's
    ``-m``, or the script's name (``resconv-tui`` run as itself, or by the interpreter
    its first line names: ``python .../bin/resconv-tui``), and the words after it;
    ("", []) for anything else (``python -c``, an option Python refuses or exits at,
    another program)."""
    if not argv:
        return "", []
    if Path(argv[0]).name == CLI_SCRIPT:
        return CLI_SCRIPT, argv[1:]
    if not PYTHON.fullmatch(Path(argv[0]).name):
        return "", []
    i = 1
    while i < len(argv):
        word = argv[i]
        if word == "--":  # the options end: the script's name follows
            return _script_and_arguments(argv[i + 1 :])
        if not word.startswith("-") or word == "-":  # the script (or stdin)
            return _script_and_arguments(argv[i:])
        if word in PYTHON_LONG_VALUE_OPTIONS:
            i += 2
            continue
        option = None if word.startswith("--") else _short_options(word[1:])
        if option is None:
            return "", []
        letter, value = option
        if letter and not value:  # its value is the next word
            i += 1
            value = argv[i] if i < len(argv) else ""
        if letter == "m":
            return value, argv[i + 1 :]
        if letter == "c":
            return "", []
        i += 1
    return "", []


def _short_options(letters: str) -> tuple[str, str] | None:
    """A word of Python's short options run together, past its '-' (``uBm``,
    ``Wignore``): ("", "") for flags alone; else the first letter that takes a value,
    with the rest of the word (its value; empty: the next word holds it); None where a
    letter is one Python refuses or prints at and exits (-h, -V)."""
    for at, letter in enumerate(letters):
        if letter in PYTHON_VALUE_FLAGS:
            return letter, letters[at + 1 :]
        if letter not in PYTHON_FLAGS:
            return None
    return "", ""


def _script_and_arguments(words: list[str]) -> tuple[str, list[str]]:
    """``resconv-tui`` and the words after it where the script (``words``' first) is the
    CLI's script; else ("", []). Only the CLI is run as a script: a file named as a
    module (``python /home/me/core.worker``) runs that file, not the module, and was
    counted as a worker (``stop`` signalled it)."""
    if words and Path(words[0]).name == CLI_SCRIPT:
        return CLI_SCRIPT, words[1:]
    return "", []


PR_SET_PDEATHSIG = 1  # linux/prctl.h
# Its own signal, not SIGTERM: the kernel sends it once per thread of the dying parent
# (it came twice from a killed supervisor, which a slot took for "exit at once"). The
# worker's handler (core.recording.StopFlags) counts any number of them as one stop.
PARENT_GONE = signal.SIGUSR1


def stop_with_parent(parent: int) -> None:
    """PARENT_GONE to this process when ``parent`` dies (Linux's parent-death signal;
    elsewhere nothing): a slot then finishes its step, puts its run back and exits,
    rather than train on with no supervisor. A parent already gone: the signal now."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, PARENT_GONE, 0, 0, 0)
    except (OSError, AttributeError):  # not Linux: no parent-death signal to ask for
        return
    if os.getppid() != parent:  # it died before the prctl: no signal would ever come
        os.kill(os.getpid(), PARENT_GONE)
