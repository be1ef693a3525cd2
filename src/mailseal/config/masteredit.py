"""Edit master.cf in place, as ``postconf -Me/-MX/-M#`` and ``-Pe/-PX`` do.

Only the entries an edit touches change; every other line, comment and blank
line stays byte for byte. A touched entry is written back in the folded form
``postconf -Mf`` prints (each ``-o`` on its own line), which is what Postfix
writes too, so automation that runs these commands sees the same files.

Pure: imports only the standard library and this package.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from functools import partial

from mailseal.config.errors import ConfigError, ConfigWarning, Location
from mailseal.config.mastercf import (
    MasterService,
    Override,
    format_service,
    parse_entry,
    parse_master_cf,
)

__all__ = ["OverrideChange", "edit_entries", "edit_overrides"]


@dataclass(frozen=True)
class OverrideChange:
    """Set (``value``) or remove (None) the ``-o name=`` of the service ``key`` (name/type)."""

    key: str
    name: str
    value: str | None


def edit_entries(
    text: str,
    path: str,
    *,
    replace: Mapping[str, str] | None = None,
    remove: Iterable[str] = (),
    comment_out: bool = False,
) -> tuple[str, list[ConfigWarning]]:
    """Replace entries (``-Me key=entry``; appended when new) or remove them (``-MX``/``-M#``)."""
    document = _Document(text, path)
    warnings: list[ConfigWarning] = []
    appended: list[str] = []
    for key, entry_text in (replace or {}).items():
        entry = parse_entry(entry_text.strip(), Location(path, 0))
        new = format_service(entry, fold=True).split("\n")
        matches = document.matching(key)
        for service in matches:
            # Postfix writes the new entry where the old one started; comment
            # lines that sat between its continuation lines follow it.
            document.rewrite(service, partial(_entry_then_comments, new))
        if not matches:
            appended += new
    for key in remove:
        matches = document.matching(key)
        if not matches:
            warnings.append(ConfigWarning(f'unmatched request: "{key}"'))
        for service in matches:
            document.rewrite(service, _commented if comment_out else _comments_only)
    return document.render(appended), warnings


def edit_overrides(
    text: str, path: str, changes: Sequence[OverrideChange]
) -> tuple[str, list[ConfigWarning]]:
    """Set or remove ``-o name=value`` of services (``-Pe`` / ``-PX``)."""
    document = _Document(text, path)
    touched: dict[int, MasterService] = {}
    warnings: list[ConfigWarning] = []
    for change in changes:
        matches = [touched.get(s.first, s) for s in document.matching(change.key)]
        if not matches:
            warnings.append(ConfigWarning(f'unmatched service_name/type: "{change.key}"'))
        for service in matches:
            touched[service.first] = _with_override(service, change)
    for service in document.services:
        if service.first in touched:
            new = format_service(touched[service.first], fold=True).split("\n")
            # Postfix rewrites an entry once it has read all of it, so comment
            # lines read on the way come out before the rewritten entry.
            document.rewrite(service, partial(_comments_then_entry, new))
    return document.render([]), warnings


class _Document:
    """master.cf lines with the entries in them, and the rewrites decided so far."""

    def __init__(self, text: str, path: str) -> None:
        self.lines = text.splitlines()
        self.services = parse_master_cf(text, path).services
        self._rewrites: dict[int, tuple[int, list[str]]] = {}

    def matching(self, key: str) -> list[MasterService]:
        return [service for service in self.services if service.key == key]

    def rewrite(self, service: MasterService, how: Callable[[list[str]], list[str]]) -> None:
        """Replace the entry's region (its lines up to the next entry) with ``how(region)``."""
        following = [s.first for s in self.services if s.first > service.first]
        end = min(following, default=len(self.lines))
        self._rewrites[service.first] = (end, how(self.lines[service.first : end]))

    def render(self, appended: list[str]) -> str:
        out: list[str] = []
        number = 0
        while number < len(self.lines):
            if number in self._rewrites:
                end, new = self._rewrites[number]
                out.extend(new)
                number = end
                continue
            out.append(self.lines[number])
            number += 1
        out.extend(appended)
        return "\n".join(out) + "\n" if out else ""


def _is_comment_or_blank(line: str) -> bool:
    stripped = line.strip()
    return not stripped or stripped.startswith("#")


def _comments_only(region: list[str]) -> list[str]:
    """``-MX``: the entry goes; comment and blank lines in its region stay."""
    return [line for line in region if _is_comment_or_blank(line)]


def _commented(region: list[str]) -> list[str]:
    """``-M#``: every entry line gets a ``#``; comment and blank lines stay as they are."""
    return [line if _is_comment_or_blank(line) else f"#{line}" for line in region]


def _entry_then_comments(new: list[str], region: list[str]) -> list[str]:
    return new + _comments_only(region)


def _comments_then_entry(new: list[str], region: list[str]) -> list[str]:
    return _comments_only(region) + new


def _with_override(service: MasterService, change: OverrideChange) -> MasterService:
    """The entry with ``-o name`` replaced, removed, or added after the last daemon option."""
    options, rest = _split_options(service.args)
    pairs = [(options[i], options[i + 1]) for i in range(0, len(options), 2)]
    new_pairs: list[tuple[str, str]] = []
    found = False
    for flag, word in pairs:
        name = word.strip("{}").partition("=")[0]
        if flag == "-o" and name == change.name:
            found = True
            if change.value is not None:
                new_pairs.append(("-o", _render(change.name, change.value)))
            continue
        new_pairs.append((flag, word))
    if not found and change.value is not None:
        new_pairs.append(("-o", _render(change.name, change.value)))
    args = [word for pair in new_pairs for word in pair if word] + rest
    text = " ".join((*service.fields, service.command, *args))
    try:
        return parse_entry(text, service.location, service.last)
    except ConfigError as error:  # a value that breaks the entry: say which edit did it
        raise ConfigError(f"{change.key}/{change.name}: {error.message}") from None


def _render(name: str, value: str) -> str:
    return Override(name, value, Location("", 0)).render()


def _split_options(args: tuple[str, ...]) -> tuple[list[str], list[str]]:
    """Daemon options as (flag, value) word pairs ('' for flags without value), and the rest."""
    options: list[str] = []
    index = 0
    while index < len(args):
        word = args[index]
        if not word.startswith("-") or word == "--":
            break
        if word == "-o" and index + 1 < len(args):
            options += [word, args[index + 1]]
            index += 2
        else:
            options += [word, ""]
            index += 1
    return options, list(args[index:])
