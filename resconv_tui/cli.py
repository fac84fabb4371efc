"""Command-line entry point: ``resconv-tui [SUBCOMMAND] ...``.

Thin on purpose: each subcommand lives in ``resconv_tui/commands/<name>.py`` with
``add_parser(subparsers)`` and ``run(args) -> int``. With no subcommand the
dashboard opens. Expected errors (``core.errors.ResconvError``) become one line
on stderr and exit status 2, never a traceback.

Nothing here imports torch at module level: ``train`` and ``worker`` import the
training stack lazily, so ``queue --dry-run``, ``status`` and the TUI start fast.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from typing import TYPE_CHECKING

from core.errors import ArgumentParser, ResconvError, escape_unwritable_output, terminal_safe
from core.whole_text import misread_number_refusal

if TYPE_CHECKING:
    from core.queue import Repo, WorkerRow
    from core.queue.rows import DamagedWorker

# Subcommand modules, in the order ``--help`` lists them.
COMMANDS = (
    "queue",
    "train",
    "worker",
    "stop",
    "status",
    "ls",
    "results",
    "show",
    "compare",
    "manage",
)

DEFAULT_DB = "sqlite:///runs.db"


def default_db() -> str:
    """$RESCONV_DB, or runs.db; set but empty (``export RESCONV_DB=$DB`` with DB unset) is
    as unset."""
    return os.environ.get("RESCONV_DB", "").strip() or DEFAULT_DB


def add_db_option(parser: argparse.ArgumentParser) -> None:
    """``--db``, accepted before or after the subcommand.

    The subcommand's option has no default (SUPPRESS): argparse would otherwise
    copy the subparser's default over a ``--db`` given before the subcommand.
    """
    parser.add_argument(
        "--db",
        default=argparse.SUPPRESS,
        type=_db_text,
        help="database URL or SQLite file path (default: $RESCONV_DB or sqlite:///runs.db)",
    )


def _db_text(text: str) -> str:
    """--db as given; empty (``--db "$DB"`` with DB unset) is refused, not read as the
    default runs.db, which would quietly queue into another database."""
    if not text.strip():
        raise argparse.ArgumentTypeError("empty: give a database URL or SQLite file path")
    return text


def db_url(args: argparse.Namespace) -> str:
    """--db, then $RESCONV_DB, then sqlite:///runs.db; never SQLite's in-memory database."""
    from core.queue.db import stored_url

    return stored_url(getattr(args, "db", None) or default_db())


def db_option(args: argparse.Namespace) -> str:
    """`` --db X`` as the person gave it (quoted for a shell), for the commands a message
    suggests: without it, a suggested command acts on ./runs.db. Empty when not given.
    A password is left out (``core.queue.db.hint_url``)."""
    from core.queue.db import hint_option

    given = getattr(args, "db", None)
    return hint_option(given) if given else ""


def open_repo(args: argparse.Namespace, create: bool = False, only_reads: bool = False) -> Repo:
    """The queue named by ``args``; ``create=False`` refuses to make a new database.
    ``only_reads`` (status, ls, results, show, compare, queue --dry-run; stop, whose one
    write the workers' heartbeats repeat): an older version's database is read as it is
    at once while another process holds its write lock, not after the busy timeout. Any
    other command waits the busy timeout to add its columns, and fails "locked" if it
    runs out: its own write would wait as long again for the same lock."""
    from core.queue import Repo
    from core.queue.db import READER_UPGRADE_WAIT_S
    from core.queue.errors import NoDatabase

    wait = READER_UPGRADE_WAIT_S if only_reads else None
    url = db_url(args)
    try:
        return Repo.open(url, create=create, upgrade_wait_s=wait, upgrade_or_fail=not only_reads)
    except NoDatabase:
        missing = missing_default_database(args, url)
        if missing is None:
            raise
        raise NoDatabase(
            f"no database at {missing} (the default, as neither --db nor RESCONV_DB names "
            "one): give the --db your runs are in, or queue runs first: resconv-tui queue "
            "FILE.yml"
        ) from None


def readable_workers(repo: Repo) -> list[WorkerRow]:
    """The live workers, each damaged row (edited by hand into what no version writes)
    named on stderr with its repair and left out: a command that reads the workers in
    passing (queue's hint, cancel, retry) failed on one, `queue` after its runs were
    queued (exit 2, as if they were not)."""
    return workers_and_damaged_named(repo)[0]


def workers_and_damaged_named(repo: Repo) -> tuple[list[WorkerRow], list[DamagedWorker]]:
    """``readable_workers``, and the damaged rows it named and left out: for queue's
    hint, which must not say "no worker is running" where a damaged row's may be."""
    from resconv_tui.polling import damaged_worker_said

    workers, damaged = repo.workers_and_damaged()
    for row in damaged:
        said = damaged_worker_said(row, "this command goes on without it")
        print(f"resconv-tui: {said}", file=sys.stderr)
    return workers, damaged


def missing_default_database(args: argparse.Namespace, url: str) -> str | None:
    """Where the default ./runs.db was looked for, when that is why there is no database:
    its "queue runs first" misled a person back over SSH in another folder (the runs were
    queued elsewhere), and "runs.db" did not say which folder was read. None where --db or
    RESCONV_DB named the database, or the file is there (empty: said as before)."""
    from core.queue.db import sqlite_path

    path = sqlite_path(url)
    if getattr(args, "db", None) or default_db() != DEFAULT_DB or path is None:
        return None
    if os.path.exists(path):
        return None
    try:
        return str(path.absolute())
    except OSError:  # the current folder was removed
        return str(path)


def add_experiment_option(parser: argparse.ArgumentParser) -> None:
    """``--experiment NAME ...``, several names or given more than once for runs of any of
    them (argparse's "store" kept the last one, silently), as ``--status`` takes several.
    Given once with two names (``--experiment a b``, as the README writes it), "append"
    refused the second as an unrecognized argument."""
    parser.add_argument(
        "--experiment", nargs="+", action="extend", default=None, metavar="NAME",
        help="only these experiments (several, or given again: any of them)",
    )  # fmt: skip


def require_experiment(repo: Repo, names: list[str] | None) -> tuple[str, ...] | None:
    """``names`` (each once), or a one-line usage error naming the experiments there
    are, for an unknown one."""
    if names is None:
        return None
    from core.queue.db import describe
    from core.queue.errors import UsageError

    known = [experiment for experiment, _ in repo.experiments()]
    if unknown := [name for name in names if name not in known]:
        listed = ", ".join(known) if known else "none yet"
        missing = ", ".join(f"'{name}'" for name in dict.fromkeys(unknown))
        raise UsageError(f"no experiment {missing} in {describe(repo.url)} ({listed})")
    return tuple(dict.fromkeys(names))


def build_parser() -> argparse.ArgumentParser:
    parser = ArgumentParser(
        prog="resconv-tui",
        description="Queue, train and compare ResConv parameter sweeps. "
        "Without a subcommand the dashboard opens.",
        epilog="Errors are one line on stderr and exit status 2; Ctrl-C stops a command "
        "with exit status 130 (a worker: see its --help).",
    )
    parser.add_argument("--version", action=_Version, nargs=0, help="print the version and exit")
    add_db_option(parser)
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMANDS:
        module = importlib.import_module(f"resconv_tui.commands.{name}")
        module.add_parser(subparsers)
    return parser


def _parser_of(parser: argparse.ArgumentParser, command: str | None) -> argparse.ArgumentParser:
    """The subcommand's parser (``parser`` itself when none was given)."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction) and command in action.choices:
            chosen: argparse.ArgumentParser = action.choices[command]
            return chosen
    return parser


class _Version(argparse.Action):
    """argparse's version action, but the version is read only when asked for (the
    package metadata lookup costs every command ~30 ms otherwise)."""

    def __call__(self, parser: argparse.ArgumentParser, *_: object) -> None:
        print(f"{parser.prog} {_version()}")
        parser.exit()


def _version() -> str:
    """The installed package's version (pyproject.toml's), read without importing more."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("resconv-tui")
    except PackageNotFoundError:  # run from a source tree that was never installed
        return "(not installed)"


def main(argv: list[str] | None = None) -> int:
    escape_unwritable_output()
    parser = build_parser()
    given = sys.argv[1:] if argv is None else argv
    command = next((arg for arg in given if _parser_of(parser, arg) is not parser), None)
    if refusal := misread_number_refusal(_parser_of(parser, command), given):
        _parser_of(parser, command).error(refusal)
    args, extra = parser.parse_known_args(argv)
    if extra:  # argparse would print the top-level usage for `ls extra`: show ls's own
        # Before the subcommand (`--bogus ls`) it is the top level's argument.
        first = extra[0] in given and args.command in given
        if first and given.index(extra[0]) < given.index(args.command):
            owner = parser
        else:
            owner = _parser_of(parser, args.command)
        owner.error(f"unrecognized arguments: {' '.join(extra)}")
    if refusal := current_folder_gone():
        print(f"resconv-tui: {refusal}", file=sys.stderr)
        return 2
    try:
        if args.command is None:
            from resconv_tui.commands import dashboard

            return dashboard.run(args)
        return int(args.handler(args) or 0)
    except ResconvError as exc:
        print(terminal_safe(f"resconv-tui: {exc.title.lower()}: {exc}"), file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("resconv-tui: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        # `resconv-tui results | head`: the reader left; say nothing more.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0


def current_folder_gone() -> str | None:
    """What to do where the shell's current folder was removed since it was entered (a
    sweep's scratch folder, rm -rf'd from another terminal); None where it is there. Every
    command reads paths from it (the default runs.db, a relative --db or sweep file), and
    each failed on it with FileNotFoundError's traceback."""
    try:
        os.getcwd()
    except FileNotFoundError:
        return (
            "the current folder no longer exists (removed since this shell entered it): "
            "cd to one that does"
        )
    return None


if __name__ == "__main__":
    sys.exit(main())
