"""Group commit for smtpd: messages that arrive while a batch is written share the next sync.

A ``250`` after DATA needs the message on disk (queue file and its name synced).
One writer at a time runs :meth:`QueueStore.enqueue_many` in a thread; whatever
sessions finish their DATA meanwhile wait for the next batch, which is made
durable by one syncfs(2) and one directory fsync however many messages it holds.
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
                    ids = await loop.run_in_executor(
                        None,
                        self._store.enqueue_many,
                        [(item.envelope, item.content) for item in batch],
                        [item.queue_id for item in batch],
                    )
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
