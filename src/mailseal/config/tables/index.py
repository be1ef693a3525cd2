"""Indexed tables: ``hash:``, ``btree:``, ``lmdb:``, ``cdb:``, ``dbm:``, ``sdbm:``.

Postfix keeps these in Berkeley DB, LMDB or CDB files built by postmap(1);
mailseal keeps all of them in one format, an SQLite file with the same name
Postfix would use (``FILE.db`` for hash, btree, dbm and sdbm, ``FILE.lmdb``,
``FILE.cdb``), so admins find the index where they expect it. An index built
by the real postmap is not readable and is reported as such.

Behaviour follows postmap(1) and Postfix 3.7:

* the index is built from the source in postmap's input format (see
  ``source``), with keys folded to lower case, and replaces the old one
  atomically: a temporary file in the same directory is written, synced and
  renamed, so a lookup never sees a half-built index;
* the new index gets the source's group and other read permissions
  (owner read/write always), as postmap gives it;
* a lookup opens the index read-only; a missing index is
  ``open database FILE.db: No such file or directory``;
* an index older than its source still answers, with the warning
  ``database FILE.db is older than source file FILE`` -- but only once the
  source has been unchanged for 100 seconds, as in Postfix, so a table that is
  being edited and rebuilt does not warn.

Pure: imports only the standard library.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import tempfile
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path

from mailseal.config.errors import ConfigWarning
from mailseal.config.kinds import TableRef
from mailseal.config.tables.base import (
    TABLE_TYPES,
    Diagnostics,
    Table,
    TableError,
    register_type,
    table_ref,
)
from mailseal.config.tables.source import SourceEntry, parse_source

__all__ = [
    "INDEX_SUFFIXES",
    "IndexedTable",
    "build_index",
    "delete_key",
    "index_path",
    "indexed_ref",
    "open_indexed",
    "write_index",
]

# Table type -> suffix of the index file (postmap(1) "file_type").
INDEX_SUFFIXES: dict[str, str] = {
    "hash": ".db",
    "btree": ".db",
    "dbm": ".db",
    "sdbm": ".db",
    "lmdb": ".lmdb",
    "cdb": ".cdb",
}

# Written into every index so that a foreign file (a real Berkeley DB built by
# Postfix's postmap) is recognised instead of giving odd SQL errors.
_FORMAT = "mailseal-index-1"

# Postfix does not call an index stale while its source is younger than this.
_STALE_GRACE_SECONDS = 100

_SCHEMA = (
    "CREATE TABLE meta (name TEXT PRIMARY KEY, value TEXT NOT NULL)",
    "CREATE TABLE entries (key TEXT PRIMARY KEY, value TEXT NOT NULL)",
)


class IndexedTable(Table):
    """A read-only SQLite index; safe to share between threads."""

    def __init__(self, ref: TableRef, connection: sqlite3.Connection, path: str) -> None:
        super().__init__(ref)
        self.path = path
        self._connection = connection
        # One connection serves every thread; sqlite3 objects need serialising.
        self._lock = threading.Lock()

    def lookup(self, key: str) -> str | None:
        with self._lock:
            row = self._connection.execute(
                "SELECT value FROM entries WHERE key = ?", (key.lower(),)
            ).fetchone()
        return None if row is None else str(row[0])

    def items(self) -> Iterator[tuple[str, str]]:
        with self._lock:
            rows = self._connection.execute("SELECT key, value FROM entries ORDER BY rowid")
            return iter([(str(key), str(value)) for key, value in rows])

    def close(self) -> None:
        with self._lock:
            self._connection.close()


def index_path(ref: TableRef) -> str:
    """The index file of ``ref``: ``FILE.db``, ``FILE.lmdb`` or ``FILE.cdb``."""
    return ref.name + INDEX_SUFFIXES[ref.type]


def indexed_ref(ref: TableRef | str) -> TableRef:
    """Parse ``ref`` and check that its type is one with an index file."""
    ref = table_ref(ref)
    if ref.type not in TABLE_TYPES:
        raise TableError(f"unsupported dictionary type: {ref.type}")
    if ref.type not in INDEX_SUFFIXES:
        raise TableError(
            f"unsupported dictionary type: {ref.type} does not support bulk-mode creation."
        )
    return ref


def _ignore(warning: ConfigWarning) -> None:
    """The default ``warn`` of ``build_index``: drop the warning."""


def build_index(
    ref: TableRef | str,
    warn: Callable[[ConfigWarning], None] = _ignore,
    *,
    strict: bool = False,
) -> str:
    """Build the index of ``ref`` from its source file and return the index's path.

    ``warn`` receives each warning about the source (duplicate keys, lines
    without a value); with ``strict`` the skipped lines raise ``TableError``.
    """
    ref = indexed_ref(ref)
    diagnostics = Diagnostics(strict=strict)
    entries = parse_source(ref.name, diagnostics)
    for warning in diagnostics.warnings:
        warn(warning)
    return write_index(ref, entries.values())


def write_index(ref: TableRef, entries: Iterable[SourceEntry]) -> str:
    """Replace the index of ``ref`` (an indexed type, see :func:`indexed_ref`) atomically.

    The index gets the source file's read permissions; returns the index's path.
    """
    target = index_path(ref)
    _write_atomically(target, ref.type, entries, _index_mode(ref.name))
    return target


def _index_mode(source: str) -> int:
    """Owner read/write, plus the source's group and other read bits (as postmap)."""
    return 0o600 | (Path(source).stat().st_mode & 0o044)


def _write_atomically(
    target: str, table_type: str, entries: Iterable[SourceEntry], mode: int
) -> None:
    directory = Path(target).absolute().parent
    handle, temporary = tempfile.mkstemp(
        prefix=f".{Path(target).name}.", suffix=".tmp", dir=directory
    )
    try:
        connection = sqlite3.connect(temporary)
        try:
            # The file is private until renamed, so sqlite's own journal and
            # syncs buy nothing; one fsync before the rename does the job.
            connection.execute("PRAGMA journal_mode = OFF")
            connection.execute("PRAGMA synchronous = OFF")
            for statement in _SCHEMA:
                connection.execute(statement)
            connection.executemany(
                "INSERT INTO meta (name, value) VALUES (?, ?)",
                [("format", _FORMAT), ("type", table_type)],
            )
            connection.executemany(
                "INSERT INTO entries (key, value) VALUES (?, ?)",
                [(entry.key, entry.value) for entry in entries],
            )
            connection.commit()
        finally:
            connection.close()
        os.fsync(handle)
        os.fchmod(handle, mode)
        Path(temporary).replace(target)
    except BaseException:
        with contextlib.suppress(OSError):
            Path(temporary).unlink()
        raise
    finally:
        os.close(handle)
    _sync_directory(directory)


def _sync_directory(directory: Path) -> None:
    """Make the rename durable (not every platform lets a directory be synced)."""
    with contextlib.suppress(OSError):
        handle = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(handle)
        finally:
            os.close(handle)


@register_type(*INDEX_SUFFIXES)
def open_indexed(ref: TableRef, diagnostics: Diagnostics) -> Table:
    """Open the index of ``ref`` read-only, warning when it is older than its source."""
    path = index_path(ref)
    connection = _connect(path, read_only=True)
    _warn_if_stale(ref, path, diagnostics)
    return IndexedTable(ref, connection, path)


def _connect(path: str, *, read_only: bool) -> sqlite3.Connection:
    try:
        Path(path).stat()
    except OSError as error:
        raise TableError(f"open database {path}: {error.strerror}") from None
    uri = Path(path).absolute().as_uri() + ("?mode=ro" if read_only else "?mode=rw")
    connection: sqlite3.Connection | None = None
    try:
        connection = sqlite3.connect(uri, uri=True, check_same_thread=False)
        row = connection.execute("SELECT value FROM meta WHERE name = 'format'").fetchone()
    except sqlite3.Error:
        row = None
    if connection is None or row is None or row[0] != _FORMAT:
        if connection is not None:
            connection.close()
        raise TableError(
            f"open database {path}: not a mailseal index (rebuild it with mailseal postmap)"
        )
    return connection


def _warn_if_stale(ref: TableRef, path: str, diagnostics: Diagnostics) -> None:
    try:
        source_mtime = Path(ref.name).stat().st_mtime
        index_mtime = Path(path).stat().st_mtime
    except OSError:
        return  # no source to compare with: the index is all there is
    if index_mtime < source_mtime < time.time() - _STALE_GRACE_SECONDS:
        diagnostics.warn(f"database {path} is older than source file {ref.name}")


def delete_key(ref: TableRef | str, key: str) -> bool:
    """Remove ``key`` from the index of ``ref`` (``postmap -d``); True when it was there."""
    ref = indexed_ref(ref)
    connection = _connect(index_path(ref), read_only=False)
    try:
        with connection:
            cursor = connection.execute("DELETE FROM entries WHERE key = ?", (key.lower(),))
        return cursor.rowcount > 0
    finally:
        connection.close()
