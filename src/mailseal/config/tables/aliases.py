"""The aliases(5) source format, and the index postalias(1) / newaliases build from it.

Format, as Postfix's postalias reads it (Postfix 3.7):

* ``name: value, value, ...``; a line starting with whitespace continues the
  one before; blank lines and lines whose first non-blank character is ``#``
  are ignored;
* the name ends at the first ``:`` outside double quotes; a quoted name
  (``"first last": ...``) is stored unquoted; names are folded to lower case;
* a line without a name, without a value, or with a comma before the colon is
  skipped with ``FILE, line N: need name:value pair``; a name with ``@`` or
  ``%`` with ``FILE, line N: name must be local``;
* the value is kept in external (quoted) form with its whitespace normalised
  (``a ,b`` -> ``a, b``), so ``:include:/file``, ``|command`` and ``/file``
  targets stay as written; the first of duplicate names wins, with a warning;
* the index also gets Sendmail's ``@: @`` signature entry, as postalias adds it.

The index is the SQLite file of :mod:`.index` (``FILE.db`` for ``hash:``),
so ``alias_maps = hash:FILE`` finds the entries. Pure: standard library only.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from mailseal.config.errors import ConfigWarning, Location
from mailseal.config.kinds import TableRef
from mailseal.config.tables.base import Diagnostics
from mailseal.config.tables.index import (
    indexed_ref,
    write_index,
)
from mailseal.config.tables.source import SourceEntry, logical_lines, read_lines

__all__ = ["build_alias_index", "parse_alias_line", "parse_aliases"]

_NEED_PAIR = "need name:value pair"
_NOT_LOCAL = "name must be local"


def _split_outside_quotes(text: str, stop: str) -> int:
    """Index of the first ``stop`` character outside quotes and comments; -1 if none."""
    quoted = False
    depth = 0  # RFC 822 (comment) nesting
    index = 0
    while index < len(text):
        char = text[index]
        if char == "\\" and (quoted or depth):
            index += 2
            continue
        if char == '"' and not depth:
            quoted = not quoted
        elif not quoted and char == "(":
            depth += 1
        elif not quoted and char == ")" and depth:
            depth -= 1
        elif not quoted and not depth and char == stop:
            return index
        index += 1
    return -1


def _unquote(name: str) -> str:
    """tok822_internalize for a name: quotes removed, backslash escapes resolved."""
    out: list[str] = []
    index = 0
    while index < len(name):
        char = name[index]
        if char == "\\" and index + 1 < len(name):
            out.append(name[index + 1])
            index += 2
            continue
        if char != '"':
            out.append(char)
        index += 1
    return " ".join("".join(out).split())


def _normalise_value(value: str) -> str:
    """Whitespace outside quotes collapsed, and ``", "`` between list items."""
    items: list[str] = []
    rest = value
    while True:
        comma = _split_outside_quotes(rest, ",")
        item, rest = (rest, "") if comma < 0 else (rest[:comma], rest[comma + 1 :])
        items.append(_collapse(item))
        if comma < 0:
            break
    return ", ".join(item for item in items if item)


def _collapse(text: str) -> str:
    out: list[str] = []
    quoted = False
    pending_space = False
    escaped = False
    for char in text.strip():
        if escaped:
            out.append(char)
            escaped = False
            continue
        if char == "\\" and quoted:
            out.append(char)
            escaped = True
            continue
        if char == '"':
            quoted = not quoted
        if not quoted and char.isspace():
            pending_space = True
            continue
        if pending_space:
            out.append(" ")
            pending_space = False
        out.append(char)
    return "".join(out)


def parse_alias_line(text: str) -> tuple[str, str]:
    """``(name, value)`` of one logical line; ValueError with Postfix's words otherwise."""
    colon = _split_outside_quotes(text, ":")
    if colon < 0:
        raise ValueError(_NEED_PAIR)
    raw_name, raw_value = text[:colon], text[colon + 1 :]
    if not raw_name.strip() or not raw_value.strip() or _split_outside_quotes(raw_name, ",") >= 0:
        raise ValueError(_NEED_PAIR)
    if _split_outside_quotes(raw_name, "@") >= 0 or _split_outside_quotes(raw_name, "%") >= 0:
        raise ValueError(_NOT_LOCAL)
    name = _unquote(raw_name)
    value = _normalise_value(raw_value)
    if not name or not value:
        raise ValueError(_NEED_PAIR)
    return name.lower(), value


def parse_aliases(
    lines: Iterable[str], path: str, diagnostics: Diagnostics
) -> dict[str, SourceEntry]:
    """The entries of an aliases file in file order, keyed by the folded name."""
    entries: dict[str, SourceEntry] = {}
    for line in logical_lines(lines, path, diagnostics):
        try:
            name, value = parse_alias_line(line.text)
        except ValueError as error:
            diagnostics.skip(str(error), line.location)
            continue
        if name in entries:
            diagnostics.warn(f'duplicate entry: "{name}"', line.location)
            continue
        entries[name] = SourceEntry(name, value, line.location)
    return entries


def _ignore(warning: ConfigWarning) -> None:
    """The default ``warn``: drop the warning."""


def build_alias_index(ref: TableRef | str, warn: Callable[[ConfigWarning], None] = _ignore) -> str:
    """``postalias FILE``: build the index of an aliases file; return the index's path.

    Raises ``TableError`` (``open FILE: ...``) when the source cannot be read.
    """
    ref = indexed_ref(ref)
    diagnostics = Diagnostics()
    entries = parse_aliases(read_lines(ref.name), ref.name, diagnostics)
    for warning in diagnostics.warnings:
        warn(warning)
    # Sendmail compatibility: "@: @" says the database is complete (postalias.c).
    entries.setdefault("@", SourceEntry("@", "@", Location(ref.name, 0)))
    return write_index(ref, entries.values())
