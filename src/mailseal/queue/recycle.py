"""Recycled queue files: a delivered message's file becomes the next message's.

Creating a file and deleting one are the file system's most expensive steps in a
message's life: a new inode is allocated, an old one freed. On ext4 without a
journal, every allocation also searches past the inodes freed in the last seconds
to minutes, which was a third of an smtpd worker's CPU under load
(docs/performance.md). So the queue manager does not delete a delivered queue file
but renames it into ``recycle/``, and smtpd takes one from there (a rename, which
exactly one process can win), overwrites it from the start and cuts it to length
before writing the rest as for a new file: the same content, the same fsyncs, the
same link into incoming/. PostgreSQL recycles its WAL segments for the same reason.

At most :data:`LIMIT` files of at most :data:`MAX_SIZE` bytes wait there (64 MiB of
disk at worst); a larger file, or one more, is deleted. A file in recycle/ belongs to
no message: nothing reads it, recovery leaves it, and a taken file that a crash
leaves half-written is a ``tmp-`` file, which recovery deletes like every other.

The rename into recycle/ is not synced, as the deletion it replaces was not. After a
crash the file may be back in active/ and delivered again, as before; if a later
message had taken it over, that message may be found under both names and delivered
twice. Never lost: the later message's content and name were synced before its 250.
"""

from __future__ import annotations

import os
import threading
import time

__all__ = ["LIMIT", "MAX_SIZE", "RECYCLE_DIR", "Recycler"]

RECYCLE_DIR = "recycle"
LIMIT = 256
MAX_SIZE = 256 * 1024
# Look at how full recycle/ is again after this many files were kept or deleted since
# the last look (smtpd's takes are not seen here, so only a count can tell).
_RECOUNT = 64
# While recycle/ is empty, new files are created; look again after this long.
_RELIST = 1.0


class Recycler:
    """One process's side of ``recycle/`` in the queue directory ``base``."""

    def __init__(self, base: str) -> None:
        self.directory = f"{base}/{RECYCLE_DIR}"
        self._lock = threading.Lock()  # the qmgr's threads share one store
        self._room = -1  # files we may still put there; -1: not counted yet
        self._handled = 0  # files kept or deleted since the last count
        self._names: list[str] = []
        self._next_listing = 0.0

    def retire(self, path: str, name: str) -> None:
        """Keep the finished file ``path`` for reuse, or delete it when there is no room."""
        if os.stat(path).st_size > MAX_SIZE:
            os.unlink(path)
            return
        with self._lock:
            if self._room <= 0 and (self._room < 0 or self._handled >= _RECOUNT):
                # The room counts down only by what we keep; smtpd takes files
                # meanwhile, so look again before deleting. Counting again only after
                # _RECOUNT deletions deleted a sixth to a half of the delivered files
                # under a steady load, with recycle/ far from full (docs/performance.md).
                self._room = LIMIT - self._count()
                self._handled = 0
            keep = self._room > 0
            if keep:
                self._room -= 1
            self._handled += 1
        if keep:
            try:
                os.rename(path, f"{self.directory}/{name}")
            except FileNotFoundError:
                if os.path.lexists(path):  # recycle/ itself is gone
                    os.unlink(path)
                    return
                raise
            return
        os.unlink(path)

    def take(self, target: str) -> bool:
        """Move a recycled file to ``target`` (a new name); False when there is none."""
        with self._lock:
            while True:
                if not self._names and not self._list():
                    return False
                name = self._names.pop()
                try:
                    os.rename(f"{self.directory}/{name}", target)
                except FileNotFoundError:
                    continue  # another process took it first
                except OSError:
                    return False  # an optimisation only: the caller creates a file
                return True

    def _list(self) -> bool:
        now = time.monotonic()
        if now < self._next_listing:
            return False
        try:
            self._names = os.listdir(self.directory)
        except FileNotFoundError:
            self._names = []
        if not self._names:
            self._next_listing = now + _RELIST
        return bool(self._names)

    def _count(self) -> int:
        try:
            return len(os.listdir(self.directory))
        except FileNotFoundError:
            os.makedirs(self.directory, mode=0o700, exist_ok=True)
            return 0
