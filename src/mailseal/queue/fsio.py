"""Small durable-write helpers shared by the queue and the Maildir transport.

The rule they serve (Postfix's, and the Maildir spec's): data is on disk when the
file has been fsynced *and* the directory entry that names it has been fsynced
(``fsync(2)`` on a file does not persist its name on Linux file systems).
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

__all__ = ["fsync_directory", "write_all"]


def write_all(fd: int, chunks: Iterable[bytes]) -> int:
    """Write every chunk in order, retrying short writes; return the bytes written."""
    total = 0
    for chunk in chunks:
        view = memoryview(chunk)
        while view:
            written = os.write(fd, view)
            view = view[written:]
            total += written
    return total


def fsync_directory(path: Path | str, *, dir_fd: int | None = None) -> None:
    """Persist the entries of a directory (names created, renamed or removed in it)."""
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC, dir_fd=dir_fd)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
