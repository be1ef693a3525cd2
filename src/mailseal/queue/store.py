"""The queue on disk: one file per message in incoming/, active/, deferred/, hold/, corrupt/.

Durability follows Postfix: a message file is written under a temporary name, fsynced,
given its queue ID name, and the directory is fsynced, all before smtpd answers 250
(``queue_directory``). Afterwards a file only moves between queue directories
(rename, then fsync of both directories) and grows by small appended records, each
fsynced, that mark recipients done or keep deferral reasons (see :mod:`.qfile`).
A deferred file's mtime is the time of its next delivery attempt, Postfix's trick.

Everything here is synchronous and blocking: the asyncio daemons call it in a thread
executor. Several threads of one process may share a :class:`QueueStore`.
"""

from __future__ import annotations

import builtins
import contextlib
import os
import threading
import zlib
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from types import MappingProxyType

from mailseal.queue.body import CHUNK, INLINE_LIMIT, MessageBody
from mailseal.queue.envelope import Envelope
from mailseal.queue.fsio import (
    can_sync_filesystem,
    fsync_directory,
    fsync_file,
    rewrite_file,
    sync_filesystem,
    write_all,
    write_new_file,
)
from mailseal.queue.ids import is_queue_id, new_queue_id, sort_oldest_first
from mailseal.queue.qfile import (
    HEAD_MAX,
    MAX_REASON,
    QueueFileError,
    done_record,
    encode_head,
    encode_tail,
    encode_tail_from_crc,
    envelope_location,
    parse_envelope,
    parse_queue_file,
    parse_queue_file_parts,
    reason_record,
    warned_record,
)
from mailseal.queue.recycle import Recycler
from mailseal.queue.spool import PrefixedContent, SpoolFile

__all__ = [
    "TEMP_PREFIX",
    "CorruptQueueFile",
    "QuarantinedFile",
    "QueueName",
    "QueueStore",
    "QueuedMessage",
    "RecoveryReport",
]

# Temporary files live in incoming/ under this prefix; the name is never a queue ID.
TEMP_PREFIX = "tmp-"
# Appended records are at most ~12 KiB (a reason of MAX_REASON characters, JSON-escaped):
# the torn-tail repair never needs to look further back than this.
_TAIL_WINDOW = 8 * MAX_REASON + 4096
_ID_ATTEMPTS = 100


def _read_all(fd: int, size: int) -> bytes:
    """The whole file: ``size`` bytes (from fstat) and anything appended since."""
    parts = [os.pread(fd, size, 0)]
    offset = len(parts[0])
    while more := os.pread(fd, 1 << 16, offset):
        parts.append(more)
        offset += len(more)
    return parts[0] if len(parts) == 1 else b"".join(parts)


class QueueName(StrEnum):
    """The queue directories, named as Postfix names them."""

    INCOMING = "incoming"
    ACTIVE = "active"
    DEFERRED = "deferred"
    HOLD = "hold"
    CORRUPT = "corrupt"


_QUEUE_NAMES = tuple(q.value for q in QueueName)


class CorruptQueueFile(Exception):  # noqa: N818 - the name is the API the daemons use
    """A queue file is torn or garbled; move it to corrupt/ and log."""

    def __init__(self, queue_id: str, reason: str) -> None:
        super().__init__(f"{queue_id}: corrupt queue file: {reason}")
        self.queue_id = queue_id
        self.reason = reason


@dataclass(frozen=True)
class QueuedMessage:
    """One message as read from its queue file."""

    queue_id: str
    queue: QueueName
    envelope: Envelope
    body: MessageBody = field(repr=False)
    done: frozenset[int]
    defer_reasons: Mapping[int, str]
    size: int
    warned: bool = False

    @property
    def content(self) -> bytes:
        """The whole content in memory; delivery agents stream :attr:`body` instead."""
        return self.body.read()

    @property
    def pending(self) -> tuple[int, ...]:
        """Indices of the recipients not yet marked done, in envelope order."""
        return tuple(i for i in range(len(self.envelope.recipients)) if i not in self.done)


@dataclass(frozen=True)
class QuarantinedFile:
    """A queue file that recovery moved to corrupt/."""

    queue_id: str
    queue: QueueName
    reason: str

    @property
    def log_text(self) -> str:
        """Postfix's warning text for the move (qmgr logs it after "warning: ")."""
        return f'saving corrupt file "{self.queue_id}" from queue "{self.queue}" to queue "corrupt"'


@dataclass(frozen=True)
class RecoveryReport:
    """What :meth:`QueueStore.recover` did, for the daemon to log."""

    removed_temp: tuple[str, ...]
    from_incoming: tuple[str, ...]
    resumed: tuple[str, ...]
    quarantined: tuple[QuarantinedFile, ...]


class QueueStore:
    """The queue directory tree and the operations on its files."""

    def __init__(self, directory: Path, *, fsync: bool = True) -> None:
        """Use ``directory`` (Postfix's ``queue_directory``); ``fsync=False`` only in tests."""
        self._dir = Path(directory)
        self._base = os.fspath(self._dir)
        self._recycler = Recycler(self._base)
        self._fsync = fsync
        # Appends to one file must not interleave with its torn-tail repair.
        self._append_lock = threading.Lock()

    @property
    def directory(self) -> Path:
        """The queue directory."""
        return self._dir

    def create(self) -> None:
        """Create the queue directories; existing ones are left alone.

        The queue directories are 0700. The queue directory itself is 0711, as
        Postfix's is searchable: local users reach maildrop/ and public/ through
        it (``mailseal sendmail``) without being able to list anything.
        """
        self._dir.mkdir(mode=0o711, parents=True, exist_ok=True)
        for queue in QueueName:
            (self._dir / queue).mkdir(mode=0o700, exist_ok=True)
        self._sync_dir(self._dir)

    def path(self, queue_id: str, queue: QueueName) -> Path:
        """Where the file of ``queue_id`` lives when it is in ``queue``."""
        return Path(self._file(queue_id, queue))

    def _file(self, queue_id: str, queue: QueueName) -> str:
        """:meth:`path` as a string: the queue manager's hot path, where pathlib showed."""
        if not is_queue_id(queue_id):
            raise ValueError(f"not a queue ID: {queue_id!r}")
        return f"{self._base}/{queue}/{queue_id}"

    # -- accepting mail -----------------------------------------------------------------

    def open_spool(self, queue_id: str) -> SpoolFile:
        """A spool file in incoming/ for the content of ``queue_id`` while it arrives.

        The name carries the process ID, so the spools of a process that died can be
        found (:meth:`remove_spools`); recovery at start-up removes any others.
        """
        stem = f"{TEMP_PREFIX}spool-{os.getpid()}-{queue_id}"
        return SpoolFile.create(self._dir / QueueName.INCOMING, stem)

    def remove_spools(self, pid: int) -> int:
        """Delete the spool files process ``pid`` left behind; how many there were."""
        prefix = f"{TEMP_PREFIX}spool-{pid}-"
        incoming = self._dir / QueueName.INCOMING
        removed = 0
        with os.scandir(incoming) as entries:
            names = [entry.name for entry in entries if entry.name.startswith(prefix)]
        for name in names:
            with contextlib.suppress(FileNotFoundError):
                (incoming / name).unlink()
                removed += 1
        return removed

    def enqueue(
        self, envelope: Envelope, content: bytes | PrefixedContent, queue_id: str | None = None
    ) -> str:
        """Store a message durably in incoming/ and return its queue ID.

        When this returns, the message survives a crash: smtpd may answer 250.
        ``OSError`` (disk full, I/O error) means nothing was stored. ``queue_id``
        is the ID smtpd already logged (Postfix names a message at its first
        recipient); it is used unless a file of that name exists, and the
        returned ID is the one on disk.
        """
        return self.enqueue_many([(envelope, content)], [queue_id])[0]

    def enqueue_many(
        self,
        items: Sequence[tuple[Envelope, bytes | PrefixedContent]],
        queue_ids: Sequence[str | None] | None = None,
    ) -> list[str]:
        """Store several messages with one directory fsync (group commit); IDs in order.

        All or nothing: on an error every file of the batch is removed again and the
        error is raised, so no client is told 250 for a message that is not on disk.
        A :class:`PrefixedContent` is copied from its spool, which the caller discards.
        """
        preferred = list(queue_ids) if queue_ids is not None else [None] * len(items)
        return self.finish_unsynced(self.write_unsynced(items, preferred))

    def write_unsynced(
        self,
        items: Sequence[tuple[Envelope, bytes | PrefixedContent]],
        queue_ids: Sequence[str | None],
    ) -> list[tuple[str, Path]]:
        """A group commit's first step: the batch's temporary files, not yet synced.

        Cheap enough for an event loop (no fsync); on an error every file of the
        batch is removed again and the error raised. :meth:`sync_unsynced`,
        :meth:`publish_synced` and :meth:`sync_incoming` finish the batch, in that
        order (:meth:`finish_unsynced` is the three in one call, :meth:`enqueue_many`
        all four).
        """
        written: list[tuple[str, Path]] = []
        try:
            for (envelope, content), wanted in zip(items, queue_ids, strict=True):
                written.append(self._write_temp(envelope, content, wanted))
        except BaseException:
            self._abandon([temp for _, temp in written], [])
            raise
        return written

    def finish_unsynced(self, written: Sequence[tuple[str, Path]]) -> list[str]:
        """The last three steps in one call (blocking): sync, publish, sync incoming/."""
        self.sync_unsynced(written)
        published = self.publish_synced(written)
        self.sync_incoming(published)
        return published

    def sync_unsynced(self, written: Sequence[tuple[str, Path]]) -> None:
        """Make the files of :meth:`write_unsynced` durable (blocking).

        One syncfs(2) for several files, as :meth:`enqueue_many` does; one file is
        fsynced on its own, which does not flush what else the file system holds.
        """
        if not self._fsync:
            return
        try:
            if len(written) > 1 and can_sync_filesystem():
                sync_filesystem(self._dir / QueueName.INCOMING)
            else:
                for _, temp in written:
                    fsync_file(temp)
        except BaseException:
            self._abandon([temp for _, temp in written], [])
            raise

    def publish_synced(self, written: Sequence[tuple[str, Path]]) -> list[str]:
        """Give the synced files their queue ID names; the IDs, in order.

        The caller then syncs the incoming directory (:meth:`sync_incoming`) before it
        says 250; on an error here every file of the batch is removed again.
        """
        published: list[str] = []
        try:
            for queue_id, temp in written:
                published.append(self._publish(queue_id, temp))
        except BaseException:
            self._abandon([temp for _, temp in written], published)
            raise
        return published

    def sync_incoming(self, published: Sequence[str]) -> None:
        """Persist the names :meth:`publish_synced` gave (blocking); on error remove them."""
        try:
            self._sync_dir(self._dir / QueueName.INCOMING)
        except BaseException:
            self._abandon([], list(published))
            raise

    def _write_temp(
        self,
        envelope: Envelope,
        content: bytes | PrefixedContent,
        wanted: str | None = None,
    ) -> tuple[str, Path]:
        """A temporary file with the queue file's bytes, not synced (sync_unsynced does)."""
        if isinstance(content, PrefixedContent):
            head = encode_head(envelope, content.size)
            tail = encode_tail_from_crc(head, content.size, content.crc(zlib.crc32(head)))
        else:
            head = encode_head(envelope, len(content))
            tail = encode_tail(head, content)
        incoming = f"{self._base}/{QueueName.INCOMING}"
        for _ in range(_ID_ATTEMPTS):
            queue_id = self._unused_id(wanted)
            wanted = None
            # A recycled file first: no inode to allocate (queue/recycle.py). The name
            # has our PID, so the rename that takes it cannot replace anyone's file.
            reused = f"{incoming}/{TEMP_PREFIX}{queue_id}.{os.getpid()}"
            if self._recycler.take(reused):
                rewrite_file(reused, (head, content, tail), sync=False)
                return queue_id, Path(reused)
            temp = Path(f"{incoming}/{TEMP_PREFIX}{queue_id}")
            if write_new_file(temp, (head, content, tail), sync=False):
                return queue_id, temp
        raise FileExistsError(f"no free queue file name in {temp.parent}")

    def _unused_id(self, wanted: str | None = None) -> str:
        """A fresh ID that names no file in any queue (so a clash costs a retry only)."""
        for _ in range(_ID_ATTEMPTS):
            queue_id, wanted = wanted or new_queue_id(), None
            # os.path on strings: this runs for every message, pathlib costs 4x here.
            if not any(os.path.lexists(f"{self._base}/{q}/{queue_id}") for q in _QUEUE_NAMES):
                return queue_id
        raise FileExistsError(f"no free queue ID in {self._dir}")

    def _publish(self, queue_id: str, temp: Path) -> str:
        """Give the temporary file its queue ID name, never replacing an existing file."""
        incoming = self._dir / QueueName.INCOMING
        for _ in range(_ID_ATTEMPTS):
            try:
                # link() fails on an existing name where rename() would replace it.
                os.link(temp, incoming / queue_id)
            except FileExistsError:
                queue_id = self._unused_id()
                continue
            temp.unlink()
            return queue_id
        raise FileExistsError(f"no free queue ID in {incoming}")

    def _abandon(self, temps: list[Path], published: list[str]) -> None:
        with contextlib.suppress(OSError):
            for temp in temps:
                temp.unlink(missing_ok=True)
            for queue_id in published:
                self.path(queue_id, QueueName.INCOMING).unlink(missing_ok=True)
            self._sync_dir(self._dir / QueueName.INCOMING)

    # -- reading and listing ----------------------------------------------------------

    def read(self, queue_id: str, queue: QueueName) -> QueuedMessage:
        """Read a queue file; raise :class:`CorruptQueueFile` if it is torn or garbled.

        A file over :data:`~.body.INLINE_LIMIT` bytes is checked chunk by chunk and its
        content left on disk (see :class:`~.body.MessageBody`).
        """
        fd = os.open(self._file(queue_id, queue), os.O_RDONLY | os.O_CLOEXEC | os.O_NOFOLLOW)
        try:
            size = os.fstat(fd).st_size
            if size <= INLINE_LIMIT:
                parsed = parse_queue_file(_read_all(fd, size))
                body = MessageBody(parsed.content)
            else:
                parsed, offset, length = parse_queue_file_parts(
                    lambda start, count: os.pread(fd, count, start), size, CHUNK
                )
                body = MessageBody(fd=os.dup(fd), offset=offset, size=length)
        except QueueFileError as exc:
            raise CorruptQueueFile(queue_id, str(exc)) from None
        finally:
            os.close(fd)
        return QueuedMessage(
            queue_id=queue_id,
            queue=queue,
            envelope=parsed.envelope,
            body=body,
            done=parsed.done,
            defer_reasons=MappingProxyType(parsed.defer_reasons),
            size=body.size,
            warned=parsed.warned,
        )

    def list(self, queue: QueueName) -> list[str]:
        """The queue IDs in ``queue``, oldest first; temporary files are not listed."""
        with os.scandir(self._dir / queue) as entries:
            names = [entry.name for entry in entries if is_queue_id(entry.name)]
        return sort_oldest_first(names)

    def next_attempt(self, queue_id: str, queue: QueueName) -> float:
        """When a deferred message is due again (the file's mtime)."""
        return self.path(queue_id, queue).stat().st_mtime

    # -- delivery progress -------------------------------------------------------------

    def mark_done(self, queue_id: str, queue: QueueName, index: int) -> None:
        """Record durably that recipient ``index`` is finished (delivered or bounced)."""
        self._append(self.path(queue_id, queue), done_record(index), (index,), mtime=None)

    def mark_warned(self, queue_id: str, queue: QueueName) -> None:
        """Record durably that the delay warning went out (it is sent once)."""
        self._append(self.path(queue_id, queue), warned_record(), (), mtime=None)

    def defer(
        self,
        queue_id: str,
        src: QueueName,
        reasons: Mapping[int, str],
        next_attempt: float,
        *,
        done: Collection[int] = (),
    ) -> None:
        """Mark ``done`` finished, keep the reasons, set the next attempt, move to deferred/.

        One append and one fsync for all of it.
        """
        records = b"".join(done_record(i) for i in sorted(done)) + b"".join(
            reason_record(i, text) for i, text in sorted(reasons.items())
        )
        indices = [*done, *reasons.keys()]
        self._append(self.path(queue_id, src), records, indices, mtime=next_attempt)
        if src is not QueueName.DEFERRED:
            self.move(queue_id, src, QueueName.DEFERRED)

    def _append(
        self, path: Path, records: bytes, indices: Collection[int], *, mtime: float | None
    ) -> None:
        with self._append_lock:
            fd = os.open(path, os.O_RDWR | os.O_APPEND | os.O_CLOEXEC | os.O_NOFOLLOW)
            try:
                count = self._recipient_count(fd, path.name)
                bad = [i for i in indices if not 0 <= i < count]
                if bad:
                    raise IndexError(f"{path.name}: no recipient {bad[0]} of {count}")
                self._repair_tail(fd, path.name)
                write_all(fd, (records,))
                if mtime is not None:
                    # Postfix sets both times of a deferred file to the next attempt.
                    os.utime(fd, (mtime, mtime))
                if self._fsync:
                    os.fsync(fd)
            finally:
                os.close(fd)

    @staticmethod
    def _recipient_count(fd: int, queue_id: str) -> int:
        try:
            start, length = envelope_location(os.pread(fd, HEAD_MAX, 0))
            return len(parse_envelope(os.pread(fd, length, start)).recipients)
        except QueueFileError as exc:
            raise CorruptQueueFile(queue_id, str(exc)) from None

    @staticmethod
    def _repair_tail(fd: int, queue_id: str) -> None:
        """Cut off a record that a crash left half-written, so the next one stands alone."""
        size = os.fstat(fd).st_size
        window = min(size, _TAIL_WINDOW)
        tail = os.pread(fd, window, size - window)
        if tail.endswith(b"\n"):
            return
        cut = tail.rfind(b"\n")
        if cut < 0:
            raise CorruptQueueFile(queue_id, "no record boundary near the end of the file")
        os.ftruncate(fd, size - window + cut + 1)

    # -- moving and removing ----------------------------------------------------------

    def move(self, queue_id: str, src: QueueName, dst: QueueName, *, durable: bool = True) -> None:
        """Move a file between queues; durable when this returns, unless ``durable=False``.

        The queue manager's own moves (to active/) need not be: a rename lost in a
        crash leaves the file where it was, and recovery delivers it from there.
        """
        os.rename(self._file(queue_id, src), self._file(queue_id, dst))  # noqa: PTH104 - see _file
        if durable:
            self._sync_dir(self._dir / dst)
            self._sync_dir(self._dir / src)

    def quarantine(self, queue_id: str, queue: QueueName) -> None:
        """Move a file to corrupt/, where nothing reads it (Postfix's corrupt queue)."""
        self.move(queue_id, queue, QueueName.CORRUPT)

    def remove(self, queue_id: str, queue: QueueName, *, durable: bool = True) -> None:
        """Delete a finished message; durable when this returns, unless ``durable=False``.

        After a delivery the removal need not be durable (Postfix does not sync it
        either): a crash can only bring the file back, delivered twice, never lost.
        Such a file is kept for reuse by a later message (:mod:`.recycle`).
        """
        if durable:
            os.unlink(self._file(queue_id, queue))  # noqa: PTH108 - see _file
            self._sync_dir(self._dir / queue)
        else:
            # Delivered: the file becomes a later message's (queue/recycle.py).
            self._recycler.retire(self._file(queue_id, queue), queue_id)

    def _sync_dir(self, directory: Path) -> None:
        if self._fsync:
            fsync_directory(directory)

    # -- startup ------------------------------------------------------------------------

    def recover(self) -> RecoveryReport:
        """Make the queue consistent after a stop or crash, before delivery starts.

        Temporary files in incoming/ were never acknowledged to a client and are
        deleted. Every readable file in incoming/ moves to active/; files in active/ stay
        for delivery to resume (recipients marked done are not delivered again).
        Unreadable files go to corrupt/. deferred/ and hold/ are left as they are.
        Meant to run before smtpd accepts mail; run beside a live enqueue it still never
        loses an acknowledged message (that enqueue fails instead, with nothing stored).
        """
        incoming = self._dir / QueueName.INCOMING
        with os.scandir(incoming) as entries:
            temps = sorted(e.name for e in entries if e.name.startswith(TEMP_PREFIX))
        for name in temps:
            (incoming / name).unlink(missing_ok=True)
        if temps:
            self._sync_dir(incoming)
        quarantined: list[QuarantinedFile] = []
        moved: list[str] = []
        for queue_id in self.list(QueueName.INCOMING):
            if self._check(queue_id, QueueName.INCOMING, quarantined):
                self.move(queue_id, QueueName.INCOMING, QueueName.ACTIVE)
                moved.append(queue_id)
        for queue_id in self.list(QueueName.ACTIVE):
            self._check(queue_id, QueueName.ACTIVE, quarantined)
        return RecoveryReport(
            removed_temp=tuple(temps),
            from_incoming=tuple(moved),
            resumed=tuple(self.list(QueueName.ACTIVE)),
            quarantined=tuple(quarantined),
        )

    def _check(
        self, queue_id: str, queue: QueueName, found: builtins.list[QuarantinedFile]
    ) -> bool:
        """Read a file whole; quarantine it (and say so) if it cannot be read."""
        try:
            self.read(queue_id, queue)
        except CorruptQueueFile as exc:
            reason = exc.reason
        except FileNotFoundError:
            return False
        except OSError as exc:
            reason = f"read error: {exc.strerror}"
        else:
            return True
        self.quarantine(queue_id, queue)
        found.append(QuarantinedFile(queue_id, queue, reason))
        return False
