"""Message content spooled to disk while it arrives, and handed to the queue file whole.

smtpd keeps a small message in memory; past a threshold (see
:mod:`mailseal.smtp.content`) the content goes to a :class:`SpoolFile` in incoming/,
written as it arrives and never synced: a spool is not a promise to anyone. When the
message is complete, :meth:`QueueStore.enqueue_many` copies the spool into the queue
file with ``copy_file_range(2)`` (the kernel moves the bytes; they never come back to
Python) and syncs the queue file as usual. The spool is then discarded by its owner.

Spool names start with the queue's temporary prefix, so the recovery at start-up
deletes any that a crash left behind.
"""

from __future__ import annotations

import contextlib
import errno
import os
import zlib
from dataclasses import dataclass
from pathlib import Path

from mailseal.queue.crc import crc32_combine
from mailseal.queue.fsio import write_all

__all__ = ["PrefixedContent", "SpoolFile"]

_FLAGS = os.O_RDWR | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC | os.O_NOFOLLOW
_COPY_CHUNK = 1 << 20


class SpoolFile:
    """An unnamed-to-anyone file of message content; satisfies :class:`smtp.content.Spill`.

    ``write`` never raises: the first error is kept in :attr:`error` and later
    writes are dropped, so the SMTP session reads on to the final dot and then
    answers 4xx (the queue writer refuses a failed spool).
    """

    def __init__(self, path: Path, fd: int) -> None:
        self.path = path
        self._fd = fd
        self.size = 0
        self.crc = 0
        self.error: OSError | None = None

    @classmethod
    def create(cls, directory: Path, stem: str) -> SpoolFile:
        """A new spool file ``directory/stem[.N]`` (0600, never an existing name)."""
        for attempt in range(100):
            path = directory / (stem if attempt == 0 else f"{stem}.{attempt}")
            try:
                return cls(path, os.open(path, _FLAGS, 0o600))
            except FileExistsError:
                continue
        raise FileExistsError(f"no free spool file name in {directory}")

    @classmethod
    def failed(cls, error: OSError) -> SpoolFile:
        """A spool that could not be created: it takes writes and fails the enqueue."""
        spool = cls(Path(), -1)
        spool.error = error
        return spool

    def write(self, data: bytes) -> None:
        if self._fd < 0 or self.error is not None:
            return
        try:
            write_all(self._fd, (data,))
        except OSError as error:
            self.error = error
            return
        self.size += len(data)
        self.crc = zlib.crc32(data, self.crc)

    def copy_to(self, out_fd: int) -> None:
        """Append the whole spool to ``out_fd`` at its current offset."""
        if self.error is not None:
            raise OSError(self.error.errno, f"spool file: {self.error.strerror}")
        if self._fd < 0:
            raise OSError("spool file already discarded")
        copied = self._copy_range(out_fd)
        if copied < self.size:
            self._copy_by_hand(out_fd, copied)

    def _copy_range(self, out_fd: int) -> int:
        """Copy in the kernel; how far it got (0 where the file systems cannot)."""
        offset = 0
        while offset < self.size:
            try:
                copied = os.copy_file_range(
                    self._fd, out_fd, min(self.size - offset, 1 << 30), offset
                )
            except OSError as error:
                # Not every file system pair supports it: the caller copies by hand.
                if offset or error.errno not in _NO_COPY_RANGE:
                    raise
                return 0
            if copied == 0:
                break
            offset += copied
        return offset

    def _copy_by_hand(self, out_fd: int, offset: int) -> None:
        while offset < self.size:
            chunk = os.pread(self._fd, min(_COPY_CHUNK, self.size - offset), offset)
            if not chunk:
                raise OSError(f"spool file shrank to {offset} of {self.size} bytes")
            write_all(out_fd, (chunk,))
            offset += len(chunk)

    def discard(self) -> None:
        """Close and delete the spool; safe to call more than once."""
        if self._fd < 0:
            return
        fd, self._fd = self._fd, -1
        os.close(fd)
        with contextlib.suppress(OSError):
            self.path.unlink()


_NO_COPY_RANGE = frozenset({errno.EXDEV, errno.ENOSYS, errno.EINVAL, errno.EOPNOTSUPP})


@dataclass(frozen=True)
class PrefixedContent:
    """Queue-file content: ``prefix`` (our Received: header), then the message itself.

    The message is bytes in memory or a spool on disk; either way the two parts
    are written one after the other, never joined into a new copy first.
    """

    prefix: bytes
    rest: bytes | SpoolFile

    @property
    def size(self) -> int:
        rest = self.rest
        return len(self.prefix) + (len(rest) if isinstance(rest, bytes) else rest.size)

    def crc(self, start: int) -> int:
        """CRC-32 of ``prefix + rest`` continued from ``start``."""
        crc = zlib.crc32(self.prefix, start)
        if isinstance(self.rest, bytes):
            return zlib.crc32(self.rest, crc)
        return crc32_combine(crc, self.rest.crc, self.rest.size)

    def copy_to(self, fd: int) -> None:
        if isinstance(self.rest, bytes):
            write_all(fd, (self.prefix, self.rest))
        else:
            write_all(fd, (self.prefix,))
            self.rest.copy_to(fd)
