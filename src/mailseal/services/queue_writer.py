"""Group commit for smtpd: messages that arrive while a batch is written share the next sync.

A ``250`` after DATA needs the message on disk (queue file and its name synced).
One writer at a time writes a batch of queue files (on the loop, or in a thread
when the batch is large) and syncs it in a thread; whatever sessions finish their
DATA meanwhile wait for the next batch, which is made durable by one syncfs(2) and
one directory fsync however many messages it holds.
At low load a batch is one message and costs what a single enqueue costs; under
load the sync cost is shared, with no timer adding latency.

``batches`` and ``messages`` count what happened (messages per sync =
messages / batches), for the benchmarks and the log at shutdown.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from mailseal.queue.envelope import Envelope
from mailseal.queue.spool import PrefixedContent
from mailseal.queue.store import QueueStore

__all__ = ["QueueWriter"]

# Bounded batches: a failure (disk full) fails a batch, so keep the blast radius small.
_MAX_BATCH = 64
# The most a batch may write on the event loop (see QueueWriter._commit).
_LOOP_WRITE_LIMIT = 1 << 20


@dataclass
class _Item:
    envelope: Envelope
    content: bytes | PrefixedContent
    queue_id: str
    done: asyncio.Future[str]


class QueueWriter:
    """Queues messages into ``store`` with shared syncs; one per process (SmtpdShared)."""

    def __init__(self, store: QueueStore) -> None:
        self._store = store
        self._pending: list[_Item] = []
        self._writing = False
        self._task: asyncio.Task[None] | None = None
        self.batches = 0
        self.messages = 0

    async def enqueue(
        self, envelope: Envelope, content: bytes | PrefixedContent, queue_id: str
    ) -> str:
        """Store durably and return the queue ID; OSError means nothing was stored."""
        loop = asyncio.get_running_loop()
        item = _Item(envelope, content, queue_id, loop.create_future())
        self._pending.append(item)
        if not self._writing:
            self._writing = True
            self._task = loop.create_task(self._write_batches())
        return await asyncio.shield(item.done)

    def summary(self) -> str:
        """``queue writes: 120 messages in 31 syncs`` (messages per sync, for the log)."""
        return f"queue writes: {self.messages} messages in {self.batches} syncs"

    async def _write_batches(self) -> None:
        loop = asyncio.get_running_loop()
        try:
            while self._pending:
                batch = self._pending[:_MAX_BATCH]
                del self._pending[:_MAX_BATCH]
                try:
                    ids = await self._commit(loop, batch)
                except OSError as error:
                    for item in batch:
                        if not item.done.done():
                            item.done.set_exception(OSError(error.errno, error.strerror))
                    continue
                self.batches += 1
                self.messages += len(batch)
                for item, queue_id in zip(batch, ids, strict=True):
                    if not item.done.done():
                        item.done.set_result(queue_id)
        finally:
            self._writing = False

    async def _commit(self, loop: asyncio.AbstractEventLoop, batch: list[_Item]) -> list[str]:
        """Store ``batch`` durably; its queue IDs in order (OSError: nothing stored).

        A batch of ordinary size is written on the loop and only synced in a thread
        (named on the loop between its two syncs, or, for one file, in the thread).
        Written in the thread, its system calls each gave up the GIL and took it back
        while the loop wanted it too: about 30 futex calls per message in a worker
        under load, 8 with the writes on the loop (docs/performance.md). A batch
        larger than :data:`_LOOP_WRITE_LIMIT` is written in the thread as a whole, so
        a large message never holds up the loop's other sessions.
        """
        store = self._store
        items = [(item.envelope, item.content) for item in batch]
        queue_ids = [item.queue_id for item in batch]
        if sum(_size(content) for _, content in items) > _LOOP_WRITE_LIMIT:
            return await loop.run_in_executor(None, store.enqueue_many, items, queue_ids)
        written = store.write_unsynced(items, queue_ids)
        if len(written) == 1:
            # Alone (low load): one trip to the thread instead of two. Naming one
            # file there is two short system calls, cheaper than a second hand-over.
            return await loop.run_in_executor(None, store.finish_unsynced, written)
        await loop.run_in_executor(None, store.sync_unsynced, written)
        ids = store.publish_synced(written)
        await loop.run_in_executor(None, store.sync_incoming, ids)
        return ids


def _size(content: bytes | PrefixedContent) -> int:
    return content.size if isinstance(content, PrefixedContent) else len(content)
