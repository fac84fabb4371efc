"""How every command-line option reads a whole number: ASCII digits, a sign allowed.

Standard library only: the CLI's parser (``core.worker_options`` among them) builds
without SQLAlchemy or torch.

Python's int() is looser than a person means: it reads "1_0" as 10 and a full-width
"２" or an Arabic-Indic "٣" as 2 and 3. ``worker --slots 1_0`` started 10 slot
processes while ``priority 1_0 ID`` was refused; one rule keeps them alike.
"""

from __future__ import annotations

import argparse
import re

from core.errors import shown

PLAIN_WHOLE = re.compile(r"[+-]?[0-9]+")
# A number as a sweep file may write a count (1.8e5), in ASCII alone: float() too
# reads "1_0.5" and full-width digits.
PLAIN_NUMBER = re.compile(r"[+-]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][+-]?[0-9]+)?")


def plain_whole(text: str) -> int:
    """``text`` as a whole number written with ASCII digits (a sign allowed, spaces
    around it too); ValueError else."""
    if not PLAIN_WHOLE.fullmatch(text.strip()):
        raise ValueError(text)
    return int(text)


def plain_number(text: str) -> bool:
    """Whether ``text`` is a number written in ASCII digits, as ``1.8e5`` or ``64``."""
    return PLAIN_NUMBER.fullmatch(text.strip()) is not None


# What argparse itself reads as a negative number, not an option (its own pattern).
ARGPARSE_NUMBER = re.compile(r"-\d+|-\d*\.\d+")


def misread_number_refusal(parser: argparse.ArgumentParser, argv: list[str]) -> str | None:
    """The refusal of the first argument (before ``--``) that reads as a number with a
    minus sign but that argparse takes for an unknown option (it takes ``-5`` and
    ``-1.5`` as values, not ``-inf``, ``-1e3`` or ``-1_0``); None where there is none.
    ``parser`` is the (sub)command's own. After an option that takes one value, that
    option's own refusal of it, as ``--max-inputs=-1e3`` gets it ("argument --max-inputs:
    '-1e3' is not a number of inputs (...)"): argparse said "expected one argument",
    naming no value. Else (a positional: ``priority -inf 1`` said "the following
    arguments are required: ID", the 1 taken as the priority) that it is no whole number."""
    for at, arg in enumerate(argv):
        if arg == "--":
            return None
        if not arg.startswith("-") or ARGPARSE_NUMBER.fullmatch(arg) or not _float_text(arg):
            continue
        option = _option_named(parser, argv[at - 1]) if at else None
        # An option of one value, or of one or more (its first: `--experiment -inf`).
        if option is not None and option.nargs in (None, "+"):
            # Its own type's refusal; an option of any text (type None: `--experiment
            # -inf`) takes it, and is told to be written --opt=VALUE as one whose type does.
            value: object = arg
            if callable(option.type):
                try:
                    value = option.type(arg)
                except (argparse.ArgumentTypeError, ValueError, TypeError) as exc:
                    return f"argument {'/'.join(option.option_strings)}: {exc}"
            if option.choices is not None and value not in option.choices:
                # argparse's own words: told to write `--order=-inf`, it was then refused
                # as no choice of --order.
                choices = ", ".join(map(repr, option.choices))
                return (f"argument {'/'.join(option.option_strings)}: invalid choice: "
                        f"{value!r} (choose from {choices})")  # fmt: skip
            # A value its option takes, which argparse reads as an option all the same.
            given = argv[at - 1]
            return f"argument {given}: {shown(arg)} reads as an option: write {given}={arg}"
        return (f"{shown(arg)} is not a whole number (e.g. -5): a value starting with '-' must "
                "be one, or it reads as an option")  # fmt: skip
    return None


def _option_named(parser: argparse.ArgumentParser, text: str) -> argparse.Action | None:
    """The option ``text`` names as argparse reads it: its full spelling, or (where the
    parser allows abbreviations) the one option a ``--`` prefix starts (``--max-in``)."""
    # argparse's own table of option strings: its parser holds no other way to it.
    table = parser._option_string_actions
    if text in table:
        return table[text]
    if not (parser.allow_abbrev and text.startswith("--") and len(text) > 2):
        return None
    starting = {table[name] for name in table if name.startswith(text)}
    return starting.pop() if len(starting) == 1 else None


def _float_text(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True
