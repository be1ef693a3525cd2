"""main.cf: read it as Postfix does, and edit it in place as ``postconf -e`` does.

Rules from postconf(5): a logical line is ``name = value``; a line starting
with whitespace continues the previous logical line (joined with one space);
blank lines and lines whose first non-blank character is ``#`` are ignored
(a ``#`` later in a line is part of the value); the last definition wins.
Values are kept exactly as written (``!SSLv2, !SSLv3`` or ``>=TLSv1.2``);
``$name`` expansion happens later, in ``Config``.

Errors and warnings use Postfix's wording with the file and line added:
``missing '=' after attribute name``, ``logical line must not start with
whitespace``, ``multiple entries for "name"``.

Pure: imports only the standard library and this package.
"""

from __future__ import annotations

import os
import re
import tempfile
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

from mailseal.config.errors import ConfigError, ConfigWarning, Location, Setting

__all__ = [
    "MainCf",
    "MainEntry",
    "edit_main_cf",
    "logical_lines",
    "parse_assignment",
    "parse_main_cf",
    "read_config_text",
    "read_main_cf",
    "write_atomically",
]

_NAME = re.compile(r"[A-Za-z0-9_]+")


@dataclass(frozen=True)
class MainEntry:
    """One ``name = value`` definition and the physical lines it spans (0-based)."""

    name: str
    value: str
    location: Location
    first: int
    last: int


@dataclass(frozen=True)
class MainCf:
    """A parsed main.cf: its definitions in file order and what was odd about it."""

    path: str
    entries: tuple[MainEntry, ...]
    warnings: tuple[ConfigWarning, ...]

    def settings(self) -> dict[str, Setting]:
        """Each name's value in effect: the last definition wins (postconf(5))."""
        return {e.name: Setting(e.value, e.location) for e in self.entries}


def logical_lines(text: str) -> Iterator[tuple[int, int, str]]:
    """Yield ``(first, last, text)`` for each logical line (0-based physical lines).

    Continuation lines are joined with a single space; comment and blank lines
    are skipped even between continuation lines, as Postfix's readlline() does.
    A logical line that starts with whitespace is yielded as-is (the caller
    decides what to say about it).
    """
    start = -1
    parts: list[str] = []
    last = -1
    for number, line in enumerate(text.splitlines()):
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        if line[0].isspace() and start >= 0:
            parts.append(stripped)
            last = number
            continue
        if start >= 0:
            yield start, last, " ".join(parts)
        start, last, parts = number, number, [line.rstrip() if line[0].isspace() else stripped]
    if start >= 0:
        yield start, last, " ".join(parts)


def parse_assignment(text: str) -> tuple[str, str] | None:
    """Split ``name = value`` (spaces optional); None when there is no valid name and '='."""
    name, equals, value = text.partition("=")
    name = name.strip()
    if not equals or not _NAME.fullmatch(name):
        return None
    return name, value.strip()


def parse_main_cf(text: str, path: str) -> MainCf:
    """Parse main.cf ``text`` read from ``path``; raise ConfigError on a malformed line."""
    entries: list[MainEntry] = []
    warnings: list[ConfigWarning] = []
    for first, last, logical in logical_lines(text):
        location = Location(path, first + 1)
        if logical[0].isspace():
            warnings.append(
                ConfigWarning(
                    f'logical line must not start with whitespace: "{logical[:30]}"', location
                )
            )
            continue
        assignment = parse_assignment(logical)
        if assignment is None:
            raise ConfigError(f"missing '=' after attribute name: \"{logical}\"", location)
        entries.append(MainEntry(assignment[0], assignment[1], location, first, last))
    return MainCf(path, tuple(entries), tuple(warnings))


def read_config_text(path: str) -> str:
    """The text of a configuration file, or a ConfigError saying why it cannot be read."""
    try:
        return Path(path).read_text(encoding="utf-8")
    except OSError as error:
        raise ConfigError(f"open {path}: {error.strerror or error}") from None
    except UnicodeDecodeError as error:
        raise ConfigError(f"{path}: not UTF-8 text ({error.reason})") from None


def read_main_cf(path: str) -> MainCf:
    """Read and parse the main.cf at ``path`` (ConfigError when it cannot be read)."""
    return parse_main_cf(read_config_text(path), path)


def edit_main_cf(
    text: str,
    path: str,
    assignments: Mapping[str, str | None],
    *,
    comment_out: bool = False,
) -> tuple[str, list[ConfigWarning]]:
    """Return ``text`` with each name set (value) or removed (None), as ``postconf -e/-X``.

    Every existing definition of a name is replaced in place, keeping comments
    and order; continuation lines of a replaced definition go with it. Names
    not yet defined are appended. With ``comment_out`` removed definitions are
    kept as ``# name = value`` lines (``postconf -#``).
    """
    parsed = parse_main_cf(text, path)
    lines = text.splitlines()
    replacement: dict[int, list[str]] = {}
    dropped: set[int] = set()
    seen: dict[str, int] = {}
    warnings: list[ConfigWarning] = []
    for entry in parsed.entries:
        if entry.name not in assignments:
            continue
        seen[entry.name] = seen.get(entry.name, 0) + 1
        if seen[entry.name] == 2:
            warnings.append(ConfigWarning(f'multiple entries for "{entry.name}"', entry.location))
        new = assignments[entry.name]
        if new is not None:
            replacement[entry.first] = [f"{entry.name} = {new}"]
        elif comment_out:
            replacement[entry.first] = [f"# {line}" for line in lines[entry.first : entry.last + 1]]
        dropped.update(range(entry.first, entry.last + 1))
    out: list[str] = []
    for number, line in enumerate(lines):
        if number in replacement:
            out.extend(replacement[number])
        elif number not in dropped:
            out.append(line)
    out.extend(f"{n} = {v}" for n, v in assignments.items() if v is not None and n not in seen)
    return "\n".join(out) + "\n", warnings


def write_atomically(path: str, text: str, mode: int | None = None) -> None:
    """Replace ``path`` with ``text``: temp file, fsync, rename, directory fsync.

    A crash leaves either the old or the new file, never half of one; the old
    file's permission bits are kept unless ``mode`` is given.
    """
    target = Path(path)
    if mode is None:
        try:
            mode = target.stat().st_mode & 0o7777
        except FileNotFoundError:
            mode = 0o644
    handle, temp = tempfile.mkstemp(prefix=f".{target.name}.", dir=target.parent)
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as stream:
            stream.write(text)
            stream.flush()
            os.fchmod(stream.fileno(), mode)
            os.fsync(stream.fileno())
        Path(temp).replace(target)
    except BaseException:
        Path(temp).unlink(missing_ok=True)
        raise
    directory = os.open(target.parent, os.O_RDONLY)
    try:
        os.fsync(directory)
    finally:
        os.close(directory)
