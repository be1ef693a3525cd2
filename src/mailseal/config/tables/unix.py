"""``unix:`` tables: the system's user and group databases, as Postfix's dict_unix.

DATABASE_README: ``unix:passwd.byname`` is the password file, looked up by
user name, and ``unix:group.byname`` the group file by group name; a hit is
the whole entry in the file's own colon-separated form
(``root:x:0:0:root:/root:/bin/bash``), which is how Postfix answers. Postfix
opens them with the "fold fixed keys" flag wherever it uses them
(local_recipient_maps), so the key is folded to lower case here as in every
other fixed-string table. Another map name is Postfix's "unknown table".

These read the system databases through Python's ``pwd`` and ``grp``
modules: no files are opened and nothing is cached.
"""

from __future__ import annotations

import grp
import pwd
from collections.abc import Callable

from mailseal.config.kinds import TableRef
from mailseal.config.tables.base import Diagnostics, Table, TableError, register_type

__all__ = ["UnixTable", "open_unix"]


def _passwd_entry(name: str) -> str | None:
    try:
        entry = pwd.getpwnam(name)
    except KeyError:
        return None
    return ":".join(
        (
            entry.pw_name,
            entry.pw_passwd,
            str(entry.pw_uid),
            str(entry.pw_gid),
            entry.pw_gecos,
            entry.pw_dir,
            entry.pw_shell,
        )
    )


def _group_entry(name: str) -> str | None:
    try:
        entry = grp.getgrnam(name)
    except KeyError:
        return None
    fields = (entry.gr_name, entry.gr_passwd or "", str(entry.gr_gid), ",".join(entry.gr_mem))
    return ":".join(fields)


# Map name -> how an entry is found (Postfix's dict_unix knows exactly these two).
_MAPS: dict[str, Callable[[str], str | None]] = {
    "passwd.byname": _passwd_entry,
    "group.byname": _group_entry,
}


class UnixTable(Table):
    """One of the system's name databases, looked up by (folded) name."""

    def __init__(self, ref: TableRef, find: Callable[[str], str | None]) -> None:
        super().__init__(ref)
        self._find = find

    def lookup(self, key: str) -> str | None:
        # A NUL or an empty name would only ever miss; do not hand it to libc.
        if not key or "\0" in key:
            return None
        return self._find(key.lower())


@register_type("unix")
def open_unix(ref: TableRef, diagnostics: Diagnostics) -> Table:
    """``unix:passwd.byname`` or ``unix:group.byname``."""
    find = _MAPS.get(ref.name)
    if find is None:
        raise TableError(f"unknown table: unix:{ref.name}")
    return UnixTable(ref, find)
