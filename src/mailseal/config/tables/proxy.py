"""``proxy:`` references: Postfix's proxymap(8) prefix, opened here in-process.

Postfix sends lookups for ``proxy:type:name`` through the proxymap server,
so that a chrooted daemon can still read the table (DATABASE_README,
proxymap(8)). mailseal's daemons are not chrooted and open every table
themselves, so the prefix is a transparent wrapper: ``proxy:unix:passwd.byname``
answers exactly as ``unix:passwd.byname`` does. The inner reference must
itself be ``type:name``; a doubled ``proxy:proxy:`` is refused, as proxymap
refuses it.

Pure: imports only the standard library and this package.
"""

from __future__ import annotations

from collections.abc import Iterator

from mailseal.config.kinds import TableRef
from mailseal.config.tables.base import (
    TABLE_TYPES,
    Diagnostics,
    Table,
    TableError,
    register_type,
    table_ref,
)

__all__ = ["ProxyTable", "open_proxy"]


class ProxyTable(Table):
    """Forwards every question to the table it wraps."""

    def __init__(self, ref: TableRef, inner: Table) -> None:
        super().__init__(ref)
        self.inner = inner
        # Pattern tables stay pattern tables behind the proxy.
        self.fixed = inner.fixed  # type: ignore[misc]

    def lookup(self, key: str) -> str | None:
        return self.inner.lookup(key)

    def items(self) -> Iterator[tuple[str, str]]:
        return self.inner.items()

    def close(self) -> None:
        self.inner.close()


@register_type("proxy")
def open_proxy(ref: TableRef, diagnostics: Diagnostics) -> Table:
    """Open the table named after ``proxy:``."""
    inner_ref = table_ref(ref.name)
    if inner_ref.type == "proxy":
        raise TableError(f"{ref}: a proxy: table cannot be proxied again")
    opener = TABLE_TYPES.get(inner_ref.type)
    if opener is None:
        raise TableError(f"unsupported dictionary type: {inner_ref.type}")
    inner = opener(inner_ref, diagnostics)
    # The inner table's own warnings are collected by ``diagnostics`` already.
    return ProxyTable(ref, inner)
