"""Lists of lookup tables named by one parameter, opened the way Postfix's maps(3) are.

A parameter such as ``alias_maps = hash:/etc/aliases, nis:mail.aliases`` names
tables that are searched in order. Opening them follows what an admin of
Postfix expects:

* a table of a type mailseal does not implement (``nis:``, ``ldap:``...) is
  left out, with one warning naming the parameter -- Debian's default
  ``alias_maps`` names ``nis:mail.aliases``, and Postfix without NIS support
  behaves the same way for lookups that find their answer elsewhere;
* a table that cannot be opened (a missing ``.db`` index, an index not built
  by mailseal, an unreadable file) stays in the list as an *unavailable*
  table, as Postfix's dict_surrogate does: every search that reaches it fails
  with ``TableLookupError``, which the smtpd checks turn into
  ``451 4.3.0 <address>: Temporary lookup failure``. Mail is delayed, never
  wrongly bounced, while the admin fixes the table.

A search stops at the first unavailable table it reaches, as maps_find does:
a later table must not answer for a key the broken one might hold.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass

from mailseal.config.errors import ConfigWarning
from mailseal.config.kinds import TableRef
from mailseal.config.tables import (
    TABLE_TYPES,
    AddressMatch,
    Table,
    TableError,
    find_address,
    open_table,
)

__all__ = ["Maps", "TableLookupError", "UnavailableTable", "open_maps"]


class TableLookupError(Exception):
    """A table could not answer; the decision must be postponed (4xx)."""

    def __init__(self, ref: TableRef, reason: str) -> None:
        super().__init__(f"{ref}: lookup failed: {reason}")
        self.ref = ref
        self.reason = reason


class UnavailableTable(Table):
    """Stands in for a table that could not be opened; every lookup fails (dict_surrogate)."""

    def __init__(self, ref: TableRef, reason: str) -> None:
        super().__init__(ref)
        self.reason = reason

    def lookup(self, key: str) -> str | None:
        raise TableLookupError(self.ref, self.reason)


@dataclass(frozen=True)
class Maps:
    """The tables of one parameter, in search order, and what went wrong opening them."""

    title: str
    tables: tuple[Table, ...]
    warnings: tuple[ConfigWarning, ...] = ()

    def __bool__(self) -> bool:
        return bool(self.tables)

    def find(self, key: str) -> str | None:
        """The first table's value for ``key``; ``TableLookupError`` from an unavailable table."""
        for table in self.tables:
            value = table.lookup(key)
            if value is not None:
                return value
        return None

    def find_fixed(self, key: str) -> str | None:
        """Like ``find``, but only fixed-string tables: for partial keys (Postfix PARTIAL)."""
        for table in self.tables:
            if not table.fixed:
                continue
            value = table.lookup(key)
            if value is not None:
                return value
        return None

    def find_address(
        self,
        address: str,
        *,
        delimiter: str = "",
        is_local_domain: Callable[[str], bool] | None = None,
    ) -> AddressMatch | None:
        """virtual(5) search order over these tables (see ``config.tables.address``)."""
        if not self.tables:
            return None
        return find_address(
            self.tables,
            address,
            delimiter=delimiter,
            is_local_domain=is_local_domain or _never,
        )

    def close(self) -> None:
        for table in self.tables:
            table.close()


def _never(domain: str) -> bool:
    return False


def open_maps(title: str, refs: Iterable[TableRef | str]) -> Maps:
    """Open every table of parameter ``title`` (see the module docstring for failures)."""
    tables: list[Table] = []
    warnings: list[ConfigWarning] = []
    for item in refs:
        ref = item if isinstance(item, TableRef) else TableRef.parse(item)
        if _base_type(ref) not in TABLE_TYPES:
            warnings.append(
                # No parameter name: the same table in several lists warns once.
                ConfigWarning(f"unsupported dictionary type: {ref.type}; {ref} is ignored")
            )
            continue
        try:
            table = open_table(ref)
        except TableError as error:
            # Postfix's dict_surrogate wording.
            warnings.append(ConfigWarning(f"{ref} is unavailable. {error.message}"))
            table = UnavailableTable(ref, error.message)
        warnings.extend(table.warnings)
        tables.append(table)
    return Maps(title, tuple(tables), tuple(warnings))


def _base_type(ref: TableRef) -> str:
    """The type that does the work: ``unix`` for ``proxy:unix:passwd.byname``."""
    while ref.type == "proxy":
        try:
            ref = TableRef.parse(ref.name)
        except ValueError:
            return ref.type
    return ref.type
