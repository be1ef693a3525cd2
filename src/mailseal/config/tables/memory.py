"""Tables held in memory: ``texthash:``, ``inline:`` and ``static:``.

* ``texthash:FILE`` (DATABASE_README): the postmap(1) source format, read
  when the table is opened instead of being indexed first.
* ``inline:{ key=value, { key = text with spaces } }`` (Postfix 3.0+,
  DATABASE_README): the entries are written in the name; a braced entry may
  contain spaces and has the whitespace around key and value removed; of
  duplicate keys the last wins, as in Postfix.
* ``static:value`` or ``static:{ text with spaces }``: every key has the
  same value.

All three are fixed-string tables: keys are folded to lower case.

Pure: imports only the standard library.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping

from mailseal.config.kinds import TableRef, split_list
from mailseal.config.tables.base import Diagnostics, Table, TableError, register_type
from mailseal.config.tables.source import parse_source

__all__ = ["MemoryTable", "StaticTable", "open_inline", "open_static", "open_texthash"]


class MemoryTable(Table):
    """Fixed keys in a dict; the keys given must already be lower case."""

    def __init__(self, ref: TableRef, entries: Mapping[str, str]) -> None:
        super().__init__(ref)
        self._entries = dict(entries)

    def lookup(self, key: str) -> str | None:
        return self._entries.get(key.lower())

    def items(self) -> Iterator[tuple[str, str]]:
        return iter(self._entries.items())


class StaticTable(Table):
    """The same value for every key."""

    def __init__(self, ref: TableRef, value: str) -> None:
        super().__init__(ref)
        self.value = value

    def lookup(self, key: str) -> str | None:
        return self.value


@register_type("texthash")
def open_texthash(ref: TableRef, diagnostics: Diagnostics) -> Table:
    """Read ``ref.name`` in postmap's source format."""
    entries = parse_source(ref.name, diagnostics, action="open database")
    return MemoryTable(ref, {key: entry.value for key, entry in entries.items()})


@register_type("inline")
def open_inline(ref: TableRef, diagnostics: Diagnostics) -> Table:
    """Parse the ``{ key=value, ... }`` list in ``ref.name``."""
    usage = f'; need "{ref.type}:{{name=value...}}"'
    body = _braced_body(ref.name)
    if not body:
        raise TableError(f'bad syntax: "{ref}"{usage}')
    try:
        items = split_list(body)
    except ValueError:
        raise TableError(f'bad syntax: "{ref}"{usage}') from None
    entries: dict[str, str] = {}
    for item in items:
        text = _braced_body(item) if item.startswith("{") else item
        key, equals, value = (text or "").partition("=")
        if not equals:
            raise TableError(f"missing '=' after attribute name: \"{ref}\"{usage}")
        # Later entries replace earlier ones: Postfix fills a hash table in order.
        entries[key.strip().lower()] = value.strip()
    return MemoryTable(ref, entries)


@register_type("static")
def open_static(ref: TableRef, diagnostics: Diagnostics) -> Table:
    """The value is the name itself, or the text inside ``{ }``."""
    name = ref.name
    if name.startswith("{"):
        if not name.rstrip().endswith("}"):
            raise TableError(f"bad static:name syntax: missing '}}' in \"{name}\"")
        name = name.rstrip()[1:-1].strip()
    return StaticTable(ref, name)


def _braced_body(text: str) -> str | None:
    """The text between ``{`` and the final ``}``, stripped; None when not braced."""
    text = text.strip()
    if len(text) < 2 or text[0] != "{" or text[-1] != "}":
        return None
    return text[1:-1].strip()
