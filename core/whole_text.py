"""How every command-line option reads a whole number: ASCII digits, a sign allowed.

Standard library only: the CLI's parser (``core.worker_options`` among them) builds
without SQLAlchemy or torch.

Python's int() is looser than a person means: it reads "1_0" as 10 and a full-width
"２" or an Arabic-Indic "٣" as 2 and 3. ``worker --slots 1_0`` started 10 slot
processes while ``priority 1_0 ID`` was refused; one rule keeps them alike.
"""

from __future__ import annotations

import re

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
