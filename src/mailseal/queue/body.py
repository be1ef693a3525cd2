"""The content of a queued message as the queue manager reads it: bytes, or a file region.

A small queue file is read whole, as before. A large one (over ``INLINE_LIMIT``)
is checked in bounded chunks and its content stays on disk: the body keeps the
open file and reads its region on demand, so delivering a 50 MB message to a
Maildir costs a chunk of memory, not the message. The file descriptor stays valid
when the queue manager moves the file between queues (a rename keeps the inode).
"""

from __future__ import annotations

import os
import weakref
from collections.abc import Iterator

__all__ = ["CHUNK", "HEADER_SCAN", "INLINE_LIMIT", "BodyReadError", "MessageBody"]

# Queue files up to this size are read into memory whole.
INLINE_LIMIT = 1 << 20
CHUNK = 1 << 20
# How much of a message the header checks read (Delivered-To: loops, the headers a
# bounce returns): Postfix's default header_size_limit (102400) and then some.
HEADER_SCAN = 256 * 1024


class BodyReadError(OSError):
    """The queue file could not be read while its content was being delivered."""


class MessageBody:
    """Message content, CRLF line ends as received; in memory or a region of a file."""

    def __init__(self, data: bytes = b"", *, fd: int = -1, offset: int = 0, size: int = 0) -> None:
        """Either ``data``, or ``size`` bytes at ``offset`` of ``fd`` (the body owns ``fd``)."""
        self._data = data
        self._fd = fd
        self._offset = offset
        self.size = size if fd >= 0 else len(data)
        if fd >= 0:
            # Closed when the body goes: queue manager code never needs to remember it.
            weakref.finalize(self, os.close, fd)

    @property
    def in_memory(self) -> bool:
        return self._fd < 0

    def read(self) -> bytes:
        """All of it, in memory (bounce with RET=FULL, the smtp client, postcat)."""
        if self._fd < 0:
            return self._data
        return b"".join(self.chunks())

    def head(self, limit: int) -> bytes:
        """At most the first ``limit`` bytes (for header checks such as Delivered-To:)."""
        if self._fd < 0:
            return self._data[:limit]
        return self._pread(0, min(limit, self.size))

    def chunks(self, size: int = CHUNK) -> Iterator[bytes]:
        """The content in pieces of at most ``size`` bytes."""
        if self._fd < 0:
            if len(self._data) <= size:  # the usual case: the bytes themselves, no copy
                yield from (self._data,) if self._data else ()
                return
            view = memoryview(self._data)
            for start in range(0, len(view), size):
                yield bytes(view[start : start + size])
            return
        for start in range(0, self.size, size):
            yield self._pread(start, min(size, self.size - start))

    def _pread(self, start: int, length: int) -> bytes:
        try:
            data = os.pread(self._fd, length, self._offset + start)
        except OSError as error:
            raise BodyReadError(error.errno, f"queue file read error: {error.strerror}") from None
        if len(data) != length:
            raise BodyReadError(f"queue file shrank: {len(data)} of {length} bytes at {start}")
        return data

    def is_ascii(self) -> bool:
        """Whether no octet has the high bit set (8BITMIME), reading the file if need be."""
        return all(piece.isascii() for piece in self.chunks())
