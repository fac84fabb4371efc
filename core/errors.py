"""One error family for the whole project.

Every error a user can cause derives from ResconvError. It carries a short human
``title`` (what the TUI shows as a heading) and a message that names the file,
key and value involved, so the CLI can print one line instead of a traceback.
"""

from __future__ import annotations


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
    """Neither dataset is anywhere this machine looks: every run would fail the same way,
    so the worker stops (a run of one missing dataset, beside the other, just fails)."""


class TrainingError(ResconvError):
    """A run failed while training (out of memory, NaN loss, ...)."""

    title = "Training failed"
