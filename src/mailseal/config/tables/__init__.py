"""Postfix lookup tables: ``type:name`` references opened, searched and indexed.

The types and formats are those of DATABASE_README, postmap(1),
regexp_table(5), pcre_table(5) and cidr_table(5); address searches follow
virtual(5) and canonical(5). ``open_table("hash:/etc/mailseal/virtual")``
gives a ``Table`` whose ``lookup(key)`` returns a string or None and whose
``warnings`` hold what Postfix would have warned about; ``build_index`` is
the core of ``postmap FILE``.

Supported types: texthash, inline, static, regexp, pcre, cidr, unix, the
indexed hash, btree, lmdb, cdb, dbm and sdbm (all kept in one SQLite format,
in the file Postfix would use), and the proxy: prefix (opened in-process).

Pure: imports only the standard library.
"""

from __future__ import annotations

# Importing the type modules fills the TABLE_TYPES registry of ``base``.
from mailseal.config.tables import cidr, index, memory, proxy, regexp, unix
from mailseal.config.tables.address import (
    AddressKey,
    AddressMatch,
    address_keys,
    find_address,
    lookup_address,
    split_extension,
)
from mailseal.config.tables.base import (
    TABLE_TYPES,
    Diagnostics,
    Table,
    TableError,
    open_table,
    register_type,
    table_ref,
)
from mailseal.config.tables.index import INDEX_SUFFIXES, build_index, delete_key, index_path
from mailseal.config.tables.source import SourceEntry, parse_source

__all__ = [
    "INDEX_SUFFIXES",
    "TABLE_TYPES",
    "AddressKey",
    "AddressMatch",
    "Diagnostics",
    "SourceEntry",
    "Table",
    "TableError",
    "address_keys",
    "build_index",
    "cidr",
    "delete_key",
    "find_address",
    "index",
    "index_path",
    "lookup_address",
    "memory",
    "open_table",
    "parse_source",
    "proxy",
    "regexp",
    "register_type",
    "split_extension",
    "table_ref",
    "unix",
]
