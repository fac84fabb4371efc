"""One error family for the whole project.

Every error a user can cause derives from ResconvError. It carries a short human
``title`` (what the TUI shows as a heading) and a message that names the file,
key and value involved, so the CLI can print one line instead of a traceback.
"""

from __future__ import annotations

import argparse
import contextlib
import math
import re
import sys
import unicodedata
from typing import Any

# What an error message shows of a value the person gave: enough to find it in the
# file. A value read whole (a list of a million numbers) once printed 226 MB.
SHOWN_CHARS = 100


def cut(text: str, most: int = SHOWN_CHARS) -> str:
    """``text``, cut to ``most`` characters (an ellipsis marks the cut)."""
    return text if len(text) <= most else text[: most - 1] + "…"


def shown(value: Any) -> str:
    """``repr(value)`` for an error message, cut to SHOWN_CHARS characters."""
    return cut(repr(value))


def written(value: Any) -> str:
    """A value the person gave as they would write it in a sweep file (YAML's flow
    style), cut to SHOWN_CHARS: ``abc``, ``[1, a]``, ``{lr: 0.1}``, ``true``, ``null``.
    Python's repr read "got 'abc'", "got ['a', 'b']" and "got True" in messages about a
    file that holds none of those quotes or capitals. Text that would read as another
    value (``'3'``, ``'yes'``) or starts with YAML's own signs keeps single quotes;
    text with what a terminal acts on is double-quoted, those characters escaped."""
    return cut(_written(value))


# Why a sweep file's `yes` is refused as `true`: PyYAML reads YAML 1.1.
YAML_TRUTH_WORDS = "YAML reads yes, no, on, off, true and false unquoted as true or false"


def quote_hint(key: str, value: Any) -> str:
    """How to write ``value`` as text where a key that takes text got a number or a
    truth value, which YAML reads so unquoted: ``quote it: name: "123"``. "a non-empty
    string (got 123)" did not say why 123 is no string. Empty for any other value."""
    if isinstance(value, bool):
        return f"{YAML_TRUTH_WORDS}: quote it"
    if isinstance(value, int | float):
        return f'quote it: {key}: "{written(value)}"'
    return ""


def _written(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and not math.isfinite(value):
        return ".nan" if math.isnan(value) else ("-.inf" if value < 0 else ".inf")
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, str):
        return _written_text(value)
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_written(item) for item in value) + "]"
    if isinstance(value, dict):
        pairs = (f"{_written(key)}: {_written(item)}" for key, item in value.items())
        return "{" + ", ".join(pairs) + "}"
    return repr(value)  # nothing a sweep file gives (the loader refuses dates, binary)


# Plain text in YAML's flow style: no sign YAML reads at the start, none of its flow
# signs inside, no ": " or " #", no space at either end.
PLAIN_TEXT = re.compile(r"[^\s\-?:,\[\]{}#&*!|>'\"%@`](?:[^,\[\]{}]*[^\s,\[\]{}:])?")
# Text YAML would read as a number, a truth value or null.
OTHER_VALUE = re.compile(
    r"[-+]?(\.?[0-9][0-9_.]*([eE][-+]?[0-9]+)?|\.inf|\.nan|0[xob][0-9a-fA-F_]+)"
    r"|true|false|yes|no|on|off|y|n|null|~",
    re.IGNORECASE,
)


def _written_text(text: str) -> str:
    if any(acts_on_terminal(char) or unicodedata.category(char) == "Cs" for char in text):
        # YAML's double-quoted escapes, which are Python's for these characters.
        return '"' + "".join(_escaped(char) for char in text) + '"'
    plain = (
        PLAIN_TEXT.fullmatch(text)
        and not OTHER_VALUE.fullmatch(text)
        and ": " not in text
        and " #" not in text
        and all(char == " " or (char.isprintable() and not char.isspace()) for char in text)
        and not any(char in BLANK_LOOKING for char in text)
    )
    return text if plain else "'" + text.replace("'", "''") + "'"


def _escaped(char: str) -> str:
    if char in '"\\':
        return "\\" + char
    return repr(char)[1:-1] if acts_on_terminal(char) or 0xD800 <= ord(char) <= 0xDFFF else char


# Letters and symbols drawn as blank space (Braille blank, the Hangul fillers): a name
# of them showed as nothing in every table, and cannot be typed to filter by it.
BLANK_LOOKING = frozenset("\u2800\u3164\u115f\u1160\uffa0")


def terminal_safe(text: str) -> str:
    """``text`` with what a terminal would act on written as escapes (ESC and the other
    control characters, invisible format characters such as U+202E, line and paragraph
    separators); newlines and tabs kept. A refusal echoed the person's argument raw:
    ``cancel $'\\e[2J'`` cleared the screen it was said on."""
    return "".join(
        char if char in "\n\t" or not acts_on_terminal(char) else repr(char)[1:-1] for char in text
    )


def acts_on_terminal(char: str) -> bool:
    """A control or invisible format character, or a line or paragraph separator: what
    no message or name may send a terminal as it is. The joiners aside: ZWJ joins emoji
    (👩‍🔬), and ZWNJ (U+200C) is part of how Persian, Kurdish and Indic words are spelt
    (می‌خواهم): it moves no cursor and turns no text around, and a Persian name was
    refused and printed as '\u200c'. The soft hyphen (U+00AD) stays escaped: no word
    needs it, and terminals draw it as a hyphen or as nothing, a name no one can type."""
    return unicodedata.category(char) in ("Cc", "Cf", "Zl", "Zp") and char not in JOINERS


JOINERS = frozenset("\u200c\u200d")  # zero-width non-joiner and joiner


class ArgumentParser(argparse.ArgumentParser):
    """argparse's parser, its refusals written terminal-safe (``terminal_safe``): they
    echo what was given ("invalid choice: ...", "unrecognized arguments: ...")."""

    def error(self, message: str) -> Any:  # NoReturn, as argparse's
        super().error(terminal_safe(message))


def escape_unwritable_output() -> None:
    """stdout and stderr escape what their encoding cannot write (PYTHONIOENCODING=ascii
    and an experiment named 実験) instead of raising UnicodeEncodeError, a traceback out
    of the command line, and out of a worker in the middle of a run."""
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(AttributeError, ValueError):  # replaced by a test, closed
            stream.reconfigure(errors="backslashreplace")  # type: ignore[union-attr]


def first_line(exc: BaseException) -> str:
    """An exception's message, its first line only (for a one-line report)."""
    text = str(exc).strip()
    return text.splitlines()[0] if text else "(no message)"


class ResconvError(Exception):
    """Base class of every expected, user-facing error."""

    title = "Error"


class UsageError(ResconvError):
    """A command was given too little to act on (what argparse cannot check alone)."""

    title = "Usage"


class ConfigError(ResconvError):
    """A run parameter has a wrong key, type or value."""

    title = "Invalid configuration"


class SweepError(ConfigError):
    """A sweep file cannot be read or expanded."""

    title = "Invalid sweep file"


class DataError(ResconvError):
    """A dataset cannot be found or read."""

    title = "Dataset not available"


class NoDataHere(DataError):
    """A run's dataset cannot be loaded on this machine (missing, the other dataset only,
    a damaged file): not the run's fault, and every run of it would fail the same way,
    so the worker puts the run back in the queue and stops."""


class CheckpointsBlocked(ResconvError):
    """The checkpoints cannot be written: not the run's fault, and every run after it
    would fail the same way within seconds, so the worker puts the run back in the
    queue and stops."""

    title = "Checkpoints cannot be written"


class DiskFull(CheckpointsBlocked):
    """The disk holding the checkpoints is full (or the quota spent)."""

    title = "Disk full"


class CheckpointsNotWritable(CheckpointsBlocked):
    """A folder under the checkpoint root this user may not write (another user's
    experiment folder on a shared box, one made read-only, a read-only mount)."""

    title = "Checkpoint folder not writable"


class TrainingError(ResconvError):
    """A run failed while training (out of memory, NaN loss, ...)."""

    title = "Training failed"
