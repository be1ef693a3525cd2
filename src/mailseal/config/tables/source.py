"""The text format every file-based table is written in, read as postmap(1) reads it.

postmap(1) "INPUT FILE FORMAT", checked against Postfix 3.7's postmap:

* blank lines, and lines whose first non-whitespace character is ``#``, are
  ignored wherever they appear (also between a line and its continuation);
* a line starting with whitespace continues the logical line before it; the
  pieces are joined as they are, without the line break, so the whitespace at
  the join is kept;
* an entry is ``key whitespace value``: the key ends at the first whitespace
  outside double quotes (``"a b" value``; inside quotes a backslash escapes
  the next character; the quotes stay part of the key, as in Postfix), the
  value is the rest with surrounding whitespace stripped;
* keys are folded to lower case; of duplicate keys the first wins;
* lines Postfix ignores with a warning (no value, unbalanced quote, bytes that
  are not UTF-8) are reported through ``Diagnostics.skip``.

Pure: imports only the standard library.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from mailseal.config.errors import Location
from mailseal.config.tables.base import Diagnostics, TableError

__all__ = [
    "LogicalLine",
    "SourceEntry",
    "logical_lines",
    "parse_entries",
    "parse_source",
    "read_lines",
    "split_entry",
]

# Bytes that are not UTF-8 survive decoding as lone surrogates (surrogateescape),
# so a bad line can be reported with its number instead of failing the file.
_UNDECODABLE = re.compile("[\udc80-\udcff]")


@dataclass(frozen=True)
class LogicalLine:
    """One logical line (continuations joined) and where it starts."""

    text: str
    location: Location


@dataclass(frozen=True)
class SourceEntry:
    """A ``key value`` entry of a source file; the key is already folded."""

    key: str
    value: str
    location: Location


def read_lines(path: str, action: str = "open") -> list[str]:
    """The physical lines of ``path`` without line ends.

    ``action`` words the error as Postfix does for the caller: ``open`` for
    pattern tables and postmap's source, ``open database`` for texthash.
    """
    try:
        data = Path(path).read_bytes()
    except OSError as error:
        raise TableError(f"{action} {path}: {error.strerror}") from None
    return data.decode("utf-8", "surrogateescape").split("\n")


def logical_lines(
    lines: Iterable[str], path: str, diagnostics: Diagnostics
) -> Iterator[LogicalLine]:
    """Join continuation lines and drop comments and blank lines."""
    pending: list[str] = []
    first = 0
    for number, line in enumerate(lines, start=1):
        stripped = line.lstrip()
        if not stripped or stripped.startswith("#"):
            continue
        if line[0].isspace():
            if pending:
                pending.append(line)
            else:
                diagnostics.skip(
                    f'logical line must not start with whitespace: "{line}"',
                    Location(path, number),
                )
            continue
        if pending:
            yield from _finish(pending, Location(path, first), diagnostics)
        pending, first = [line], number
    if pending:
        yield from _finish(pending, Location(path, first), diagnostics)


def _finish(
    pieces: list[str], location: Location, diagnostics: Diagnostics
) -> Iterator[LogicalLine]:
    text = "".join(pieces)
    if _UNDECODABLE.search(text):
        shown = _UNDECODABLE.sub("?", text)
        diagnostics.skip(f'non-UTF-8 input "{shown}" -- ignoring this line', location)
        return
    yield LogicalLine(text, location)


def split_entry(text: str) -> tuple[str, str]:
    """Split ``key whitespace value``; ValueError (Postfix's wording) when it is not that."""
    end = _key_end(text)
    key, value = text[:end], text[end:].strip()
    if not value:
        raise ValueError("expected format: key whitespace value -- ignoring this line")
    return key, value


def _key_end(text: str) -> int:
    """Index just past the key: the first whitespace outside double quotes."""
    quoted = False
    index = 0
    while index < len(text):
        char = text[index]
        if quoted and char == "\\" and index + 1 < len(text):
            index += 2
            continue
        if char == '"':
            quoted = not quoted
        elif not quoted and char.isspace():
            return index
        index += 1
    if quoted:
        raise ValueError(f"unbalanced '\"' in '{text}' -- ignoring this line")
    return index


def parse_entries(
    lines: Iterable[str], path: str, diagnostics: Diagnostics
) -> dict[str, SourceEntry]:
    """The entries of a source text, in file order, keyed by folded key."""
    entries: dict[str, SourceEntry] = {}
    for line in logical_lines(lines, path, diagnostics):
        try:
            key, value = split_entry(line.text)
        except ValueError as error:
            diagnostics.skip(str(error), line.location)
            continue
        # postmap folds keys by default (no -f): lookups fold the same way.
        key = key.lower()
        if key in entries:
            diagnostics.warn(f'duplicate entry: "{key}"', line.location)
            continue
        entries[key] = SourceEntry(key, value, line.location)
    return entries


def parse_source(
    path: str, diagnostics: Diagnostics, action: str = "open"
) -> dict[str, SourceEntry]:
    """Read and parse the source file ``path`` (see ``read_lines`` for ``action``)."""
    return parse_entries(read_lines(path, action), path, diagnostics)
