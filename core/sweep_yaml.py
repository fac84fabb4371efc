"""Sweep YAML read safely: plain data only (a SafeLoader, no python/* tags), YAML 1.2's
floats (``1e-3``), a key given twice refused, and limits on nesting and alias expansion,
so a hostile or broken file is one error in milliseconds, never a traceback, minutes of
work or gigabytes of memory. ``core.sweep`` turns the data into runs."""

from __future__ import annotations

import re
from typing import Any

import yaml

from core.errors import cut, shown, written


class SweepLoader(yaml.SafeLoader):
    """PyYAML's SafeLoader (plain data, no python/* tags) that also reads YAML 1.2's
    floats: ``1e-3``, ``5E-4``, ``1e8``, ``+1.5e+3``, ``1.0e3``.

    YAML 1.1 wants a dot and a signed exponent (``1.0e-3``), so PyYAML read the usual
    way of writing a learning rate as the string "1e-3": RunConfig coerced it, but the
    swept value stayed text (run name ``lr-1e-3``, results sorted and aligned as text).

    A key given twice in one mapping is an error (PyYAML keeps the last without a word:
    ``layers: 2`` then ``layers: 3`` queued 3-layer runs).
    """

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self.checked_nodes: set[int] = set()

    def flatten_mapping(self, node: yaml.MappingNode) -> None:
        # Checked here, before PyYAML merges `<<: *anchor` keys into the node in place
        # (keys after a merge may override merged ones), and once per node: a node an
        # earlier merge already flattened holds merged keys beside its own.
        if id(node) not in self.checked_nodes:
            self.checked_nodes.add(id(node))
            self._refuse_repeated_keys(node)
        super().flatten_mapping(node)

    def construct_yaml_int(self, node: yaml.ScalarNode) -> int:
        try:
            return super().construct_yaml_int(node)
        except ValueError:
            # Python reads no decimal number of over 4,300 digits ("Exceeds the limit ...
            # use sys.set_int_max_str_digits()", naming no key). A stand-in past MAX_WHOLE:
            # `_refuse_unusable` refuses it naming its key, as any of 301 digits or more.
            if DIGITS_ONLY.fullmatch(str(node.value).replace("_", "")):
                return MAX_WHOLE
            # Not a long number: YAML 1.1 takes `0b_` and `0x_` for whole numbers with no
            # digits, which were said to be "301 digits or more".
            raise yaml.constructor.ConstructorError(
                None, None, f"{written(str(node.value))} is no number", node.start_mark
            ) from None

    def _refuse_repeated_keys(self, node: yaml.MappingNode) -> None:
        seen: set[Any] = set()
        for key_node, _ in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                continue
            key = self.construct_object(key_node, deep=False)
            try:
                repeated = key in seen  # a set key is looked up as a frozenset...
                seen.add(key)  # ...but cannot be added: a TypeError traceback
            except TypeError:
                continue  # unhashable: the base class says so
            if repeated:
                raise yaml.constructor.ConstructorError(
                    "while reading a mapping", node.start_mark,
                    f"key {shown(key)} is given twice", key_node.start_mark,
                )  # fmt: skip


# PyYAML's table holds the base class's function: the override is named here.
SweepLoader.add_constructor("tag:yaml.org,2002:int", SweepLoader.construct_yaml_int)

# Only the exponent forms YAML 1.1 lacks; everything else resolves as before (ints,
# `0.0003`, `1.0e-05`), so existing files keep their values, run names and hashes.
SweepLoader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"^[-+]?(?:[0-9][0-9_]*(?:\.[0-9_]*)?|\.[0-9_]+)[eE][-+]?[0-9]+$"),
    list("-+0123456789."),
)


# No dates: YAML 1.1 reads `2024-01-01` as a date, which no key takes. As text, a name or
# a description so written is kept, a seed so written is refused naming its key, and an
# impossible date (`2024-13-01`) is no "month must be in 1..12" naming nothing.
SweepLoader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag != "tag:yaml.org,2002:timestamp"]
    for first, resolvers in SweepLoader.yaml_implicit_resolvers.items()
}

# A sweep file is a few KB (the logbook's tables, about 2 KB each): reading stops past this,
# where /dev/zero was read until the kernel killed the process (24 GB).
MAX_FILE_BYTES = 1 << 20
# Whole numbers far past any key's limit (``core.config.LIMITS`` names those): a 4,000-
# digit hex number (PyYAML reads `0x...` with no limit) broke the error message showing
# it, and one of 310 digits the float a learning rate is made into.
MAX_WHOLE = 10**300
# A decimal or base-60 (`1:30`) whole number's text, its `_`s taken out: int() refuses
# such text only where it is too long for Python (over 4,300 digits).
DIGITS_ONLY = re.compile(r"[-+]?[0-9:]+")

# A sweep nests 5 levels at most (include: entry: ch: per-layer list); 600 levels was a
# RecursionError traceback from PyYAML's composer, 300 from our own code later on.
MAX_DEPTH = 20
# Values in the file with every alias expanded: a chain of aliases (`&a1 [*a0, *a0, ...]`,
# ten levels) makes billions from a few lines, which took minutes and gigabytes to expand
# and to echo in an error message. A logbook table has a few hundred.
MAX_VALUES = 100_000


class YAMLTooBig(yaml.YAMLError):
    """Sweep YAML nested too deeply, containing itself, expanding too far, or with a
    value PyYAML cannot make (a ValueError traceback)."""


TOO_DEEP = f"the YAML is nested too deeply (at most {MAX_DEPTH} levels)"


def load_yaml(text: str) -> Any:
    """Parse sweep YAML (raises yaml.YAMLError) with ``SweepLoader``; refuses data nested
    deeper than MAX_DEPTH, a value that contains itself (``&a [*a]``) and aliases that
    expand to more than MAX_VALUES values (YAMLTooBig, a yaml.YAMLError)."""
    try:
        data = yaml.load(text, Loader=SweepLoader)  # safe: SweepLoader is a SafeLoader
    except RecursionError:
        raise YAMLTooBig(TOO_DEEP) from None
    except ValueError as exc:  # PyYAML's constructors: `2024-13-01`, a 5,000-digit number
        raise YAMLTooBig(f"a value in the YAML cannot be read: {cut(str(exc))}") from None
    values, _ = _expanded_size(data, 1, {})
    if values > MAX_VALUES:
        raise YAMLTooBig(f"the YAML's aliases expand to {values:,} values (at most {MAX_VALUES:,})")
    _refuse_unusable(data, (), set())
    return data


def malformed(exc: yaml.YAMLError) -> str:
    """A YAML error as one line: ``malformed YAML at line 3, column 1: what``. PyYAML
    splits what into a context and a problem: the problem alone is usually whole, but
    not where the context holds its first half ("but found another document", "second
    occurrence" of an anchor), which is joined then, with the line it points to. A
    "while parsing ..." / "while scanning ..." context follows the problem with the place
    it began where that is elsewhere: for an unclosed ``[``, ``{`` or quote the problem's
    place is where the parser gave up (often the file's end), and only the context says
    where the bracket opened."""
    mark = getattr(exc, "problem_mark", None)
    where = " at line {}, column {}".format(*_place(mark)) if mark else ""
    problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
    context = getattr(exc, "context", None)
    context_mark = getattr(exc, "context_mark", None)
    if context and context.startswith("while "):
        if context_mark and mark and _place(context_mark) != _place(mark):
            began = "line {}, column {}".format(*_place(context_mark))
            problem = f"{problem} ({context} that began at {began})"
    elif context:
        line = f" (line {_place(context_mark)[0]})" if context_mark and mark else ""
        problem = f"{context}{line}, {problem}"
    return f"malformed YAML{where}: {problem}{_tab_hint(mark)}"


def _tab_hint(mark: yaml.Mark | None) -> str:
    """What to do where PyYAML refused a tab: it says only "found character '\\t' that
    cannot start any token", and the tab itself is invisible in most editors. YAML
    indents with spaces alone, and PyYAML takes no tab after a key's colon either.
    Empty where the error is at no tab."""
    text = getattr(mark, "buffer", None)
    if mark is None or not isinstance(text, str) or not 0 <= mark.index < len(text):
        return ""
    if text[mark.index] != "\t":
        return ""
    line_start = text.rfind("\n", 0, mark.index) + 1
    if not text[line_start : mark.index].strip(" \t"):
        return " (indent with spaces, not tabs)"
    return " (write a space there, not a tab)"


def _place(mark: yaml.Mark) -> tuple[int, int]:
    """``mark``'s line and column, from 1, as an editor, grep -n and sed count them:
    a line ends at a newline alone. PyYAML ends one at U+2028, U+2029 and NEL (U+0085)
    too, so a value holding one moved the line said past the file's last line. Its own
    count where the mark holds no text to count in (a file read as a stream)."""
    text, index = getattr(mark, "buffer", None), mark.index
    if not isinstance(text, str) or not 0 <= index <= len(text):
        return mark.line + 1, mark.column + 1
    return text.count("\n", 0, index) + 1, index - text.rfind("\n", 0, index)


def _refuse_unusable(value: Any, path: tuple[str, ...], seen: set[int]) -> None:
    """YAMLTooBig naming where ``value`` holds what no key takes and what cannot be shown
    or stored: a whole number of 301 digits or more, text with a surrogate escape
    (``"\\ud800"``: it passed every check, then broke printing and the database), binary
    data."""
    if isinstance(value, list | dict):
        if id(value) in seen:  # an alias: looked at once
            return
        seen.add(id(value))
        items = value.items() if isinstance(value, dict) else enumerate(value, 1)
        for key, item in items:
            inner = (*path, f"item {key}" if isinstance(value, list) else _key_text(key))
            if isinstance(value, dict):
                _refuse_unusable(key, inner, seen)
            _refuse_unusable(item, inner, seen)
        return
    where = f"key {' > '.join(path)}" if path else "the document"
    if isinstance(value, int) and not isinstance(value, bool) and abs(value) >= MAX_WHOLE:
        raise YAMLTooBig(f"{where}: a whole number of 301 digits or more, far too large "
                         "for any key")  # fmt: skip
    if isinstance(value, str) and not _encodable(value):
        raise YAMLTooBig(f"{where}: text with a UTF-16 surrogate escape (such as \\ud83d), "
                         "which is no character: write the character itself, or \\U0001F600 "
                         "for one beyond \\uffff")  # fmt: skip
    if isinstance(value, bytes):
        raise YAMLTooBig(f"{where}: binary data (!!binary), which no key takes")


def _key_text(key: Any) -> str:
    """A mapping key as a path step: as Python writes it ('lr', 3, '\\ud800x')."""
    if isinstance(key, int) and not isinstance(key, bool) and abs(key) >= MAX_WHOLE:
        return "a key of 301 digits or more"  # repr() itself fails past 4,300 digits
    return shown(key)


def _encodable(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _expanded_size(value: Any, depth: int, seen: dict[int, tuple[int, int]]) -> tuple[int, int]:
    """(values, levels) of ``value`` with every alias expanded. An alias is the same
    Python object in several places: ``seen`` holds each list's and mapping's figures
    once worked out (by id), so this is quick however far the aliases expand."""
    if not isinstance(value, list | dict):
        return 1, 0
    if depth > MAX_DEPTH:
        raise YAMLTooBig(TOO_DEEP)
    if id(value) in seen:
        values, levels = seen[id(value)]
        if values < 0:  # still being counted: it is inside itself
            raise YAMLTooBig("an alias in the YAML refers to a value it is part of (`&a [*a]`)")
        if depth + levels > MAX_DEPTH:
            raise YAMLTooBig(TOO_DEEP)
        return values, levels
    seen[id(value)] = (-1, 0)
    values, levels = 1, 0
    for item in value.values() if isinstance(value, dict) else value:
        item_values, item_levels = _expanded_size(item, depth + 1, seen)
        values, levels = values + item_values, max(levels, item_levels + 1)
    seen[id(value)] = (values, levels)
    return values, levels
