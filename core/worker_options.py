"""The worker's command-line options, shared by ``resconv-tui worker`` and
``python -m core.worker``. Standard library only: building the CLI parser must not
pay for SQLAlchemy or torch.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from dataclasses import dataclass

from core.errors import shown
from core.whole_text import plain_whole


def add_worker_arguments(parser: argparse.ArgumentParser) -> None:
    """The worker's options, shared by ``resconv-tui worker`` and ``python -m core.worker``."""
    parser.add_argument(
        "--device",
        default="auto",
        help="auto (default: the CUDA GPU with the fewest workers of this machine, else "
        "the CPU), cpu, cuda (the first GPU, cuda:0) or cuda:N",
    )
    parser.add_argument(
        "--until-empty", action="store_true", help="exit when no queued run is left"
    )
    parser.add_argument(
        "--max-runs",
        type=count_text("--max-runs"),
        default=None,
        metavar="N",
        help="exit after N runs ended",
    )
    parser.add_argument(
        "--data-dir",
        default=None,
        type=folder_text,
        metavar="DIR",
        help="dataset folder (default: $RESCONV_DATA, caches)",
    )
    parser.add_argument(
        "--checkpoints", default=None, type=folder_text, metavar="DIR",
        help="checkpoint folder (default: checkpoints/ next to the SQLite file; with "
        "PostgreSQL, checkpoints/ in the folder the worker starts in)",
    )  # fmt: skip
    parser.add_argument(
        "--order", choices=CLAIM_ORDERS, default="queue",
        help="which queued run to take next, after priority: 'queue' (default: the oldest) or "
        "'largest-first' (the most work, parameters x inputs: with --slots, big runs start "
        "first and small ones fill the slots at the end)",
    )  # fmt: skip
    parser.add_argument(
        "--stack", type=count_text("--stack"), default=1, metavar="K",
        help="train up to K queued runs that differ only in their seed as ONE model "
        "(grouped convolutions: K seeds of a sweep cell for about the GPU time of one); "
        "default 1",
    )  # fmt: skip
    add_slots_argument(parser)


CLAIM_ORDERS = ("queue", "largest-first")


def folder_text(text: str) -> str:
    """A folder option (--data-dir, --checkpoints) as given; empty (``--data-dir "$DIR"``
    with DIR unset) is refused, as ``--db ""`` is: read as not given, it quietly trained
    from $RESCONV_DATA or wrote to the default checkpoints/."""
    if not text.strip():
        raise argparse.ArgumentTypeError("empty: give a folder")
    return text


# The most a count option may ask for. Each slot is a process that loads torch (and on
# a GPU holds a CUDA context): --slots 99999 filled a 24 GB box's memory before the
# first slot trained. The packing target is 4 runs; 16 leaves room. A stack of
# K trains K copies of the model side by side; 64 is far past where it stops paying.
# --max-runs is stored in the worker's row, a 32-bit INTEGER on PostgreSQL (beyond
# 2**63 SQLite raised an OverflowError traceback); a million runs is no limit in practice.
MOST = {"--slots": 16, "--stack": 64, "--max-runs": 1_000_000}


# What each count option counts, for a refusal of its text.
COUNTED = {"--slots": "number of slots", "--stack": "number of runs to stack",
           "--max-runs": "number of runs"}  # fmt: skip


def count_value(option: str, text: str) -> int:
    """``text`` as the count option ``option`` (``--slots``, ``--stack``, ``--max-runs``):
    a whole number in ASCII digits, read by the rule of every whole-number option
    (``core.whole_text``), from 1 to ``MOST[option]``; else ValueError with its refusal,
    in the shape of ``--priority``'s. One rule and one text for the worker's command
    lines (``resconv-tui worker``, ``python -m core.worker``) and the dashboard's
    start-worker dialog: a 0 was refused after parsing, as "--slots must be at least 1
    (got 0)", where "1_0" was refused by the parser, as "'1_0' is not a number of slots
    (a whole number from 1 to 16)"."""
    try:
        value: int | None = plain_whole(text)
    except ValueError:
        value = None
    if value is None or not 1 <= value <= MOST[option]:
        # shown: a field's text may hold what the terminal must not be sent (ESC), or
        # 5,000 digits.
        raise ValueError(
            f"{shown(text)} is not a {COUNTED[option]} (a whole number from 1 to {MOST[option]:,})"
        )
    return value


def count_text(option: str) -> Callable[[str], int]:
    """The argparse type of a count option (``count_value``): refused as it is parsed."""

    def count(text: str) -> int:
        try:
            return count_value(option, text)
        except ValueError as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None

    return count


def count_problem(value: int | None, option: str) -> str | None:
    """Why a count option's value, read already (a Namespace made in code), is wrong:
    the refusal ``count_value`` gives its text; None where it is right or not given."""
    if value is None:
        return None
    try:
        count_value(option, str(value))
    except ValueError as exc:
        return str(exc)
    return None


@dataclass(frozen=True)
class ClaimRules:
    """Which queued runs a worker takes, and how many at once (``--order``, ``--stack``)."""

    largest_first: bool = False
    stack: int = 1  # runs that differ only in seed, trained as one model (core.stack)

    @classmethod
    def from_args(cls, args: argparse.Namespace) -> ClaimRules:
        order, stack = getattr(args, "order", "queue"), getattr(args, "stack", 1)
        return cls(largest_first=order == "largest-first", stack=stack)

    def options(self) -> list[str]:
        """The same rules as command-line options (for slot processes)."""
        options = ["--order", "largest-first"] if self.largest_first else []
        return options + (["--stack", str(self.stack)] if self.stack > 1 else [])


NO_RULES = ClaimRules()  # the defaults: queue order, one run at a time


def add_slots_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--slots", type=count_text("--slots"), default=1, metavar="K",
        help="train up to K runs at once on the device (default 1; on CUDA a run starts "
        "only if its memory fits; --max-runs is per slot, and a slot started again after "
        "a crash has what is left of it)",
    )  # fmt: skip
    parser.add_argument(
        "--slot-mode", choices=SLOT_MODES, default="auto",
        help="how slots share the device: threads of one process with a CUDA stream each "
        "(kernels overlap; auto on CUDA) or worker processes (auto on CPU; on a GPU they "
        "only overlap under NVIDIA MPS)",
    )  # fmt: skip


SLOT_MODES = ("auto", "threads", "processes")


def slot_mode(requested: str, device: str) -> str:
    """``auto`` -> ``threads`` on CUDA (streams overlap), ``processes`` elsewhere.

    ``device`` is the resolved device (``cuda:0``, ``cpu``), not ``auto``.
    """
    if requested != "auto":
        return requested
    return "threads" if device.startswith("cuda") else "processes"
