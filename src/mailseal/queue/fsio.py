"""Small durable-write helpers shared by the queue and the Maildir transport.

The rule they serve (Postfix's, and the Maildir spec's): data is on disk when the
file has been fsynced *and* the directory entry that names it has been fsynced
(``fsync(2)`` on a file does not persist its name on Linux file systems).
"""

from __future__ import annotations

import contextlib
import ctypes
import os
from collections.abc import Iterable
from pathlib import Path
from typing import Protocol

__all__ = [
    "FileSource",
    "can_sync_filesystem",
    "fsync_directory",
    "rewrite_file",
    "sync_descriptor",
    "sync_filesystem",
    "write_all",
    "write_new_file",
]

_libc = ctypes.CDLL(None, use_errno=True)
_syncfs = getattr(_libc, "syncfs", None)  # Linux 2.6.39+; errors reported since 5.8


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


_NEW_FILE = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC | os.O_NOFOLLOW
_OLD_FILE = os.O_WRONLY | os.O_CLOEXEC | os.O_NOFOLLOW


class FileSource(Protocol):
    """Content that writes itself to a file descriptor (a spool copied by the kernel)."""

    def copy_to(self, fd: int) -> None: ...


def write_new_file(path: Path, chunks: Iterable[bytes | FileSource], *, sync: bool) -> bool:
    """Create ``path`` (0600, never an existing name or a symlink), write, fsync if asked.

    False when the name exists (the caller picks another); on any other error the
    half-written file is removed and the error raised.
    """
    try:
        fd = os.open(path, _NEW_FILE, 0o600)
    except FileExistsError:
        return False
    _fill(fd, path, chunks, sync=sync, truncate=False)
    return True


def rewrite_file(path: Path | str, chunks: Iterable[bytes | FileSource], *, sync: bool) -> None:
    """Overwrite the existing file ``path`` from its start, cut it to what was written.

    For a file taken over instead of created (recycled queue files); errors as
    :func:`write_new_file`'s, the file removed.
    """
    try:
        fd = os.open(path, _OLD_FILE)
    except OSError:
        with contextlib.suppress(OSError):
            os.unlink(path)
        raise
    _fill(fd, path, chunks, sync=sync, truncate=True)


def _fill(
    fd: int,
    path: Path | str,
    chunks: Iterable[bytes | FileSource],
    *,
    sync: bool,
    truncate: bool,
) -> None:
    """Write ``chunks`` to the open ``fd`` and close it; on error remove ``path``."""
    try:
        try:
            for chunk in chunks:
                if isinstance(chunk, bytes | bytearray | memoryview):
                    write_all(fd, (chunk,))
                else:
                    chunk.copy_to(fd)
            if truncate:
                os.ftruncate(fd, os.lseek(fd, 0, os.SEEK_CUR))
            if sync:
                os.fsync(fd)
        finally:
            os.close(fd)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(path)
        raise


def fsync_file(path: Path | str) -> None:
    """Persist a file written earlier without a sync (fsync(2) works on any descriptor)."""
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC | os.O_NOFOLLOW)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def fsync_directory(path: Path | str, *, dir_fd: int | None = None) -> None:
    """Persist the entries of a directory (names created, renamed or removed in it)."""
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC, dir_fd=dir_fd)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def can_sync_filesystem() -> bool:
    """Whether :func:`sync_filesystem` exists here (Linux's syncfs(2))."""
    return _syncfs is not None


def sync_filesystem(path: Path | str) -> None:
    """Persist every file written on the file system holding ``path``: one call for many.

    Group commit: after N queue files are written, one syncfs(2) makes all of
    them durable, where N fsync(2) calls would each wait for their own journal
    commit. Raises OSError like fsync does.
    """
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        sync_descriptor(fd)
    finally:
        os.close(fd)


def sync_descriptor(fd: int) -> None:
    """syncfs(2) on the file system of the open file ``fd`` (see :func:`sync_filesystem`)."""
    if _syncfs is None:
        raise OSError("syncfs(2) is not available")
    if _syncfs(fd) != 0:
        error = ctypes.get_errno()
        raise OSError(error, os.strerror(error))
