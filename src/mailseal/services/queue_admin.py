"""postsuper's and postqueue's queue operations, the same whether or not the master runs.

:class:`QueueAdmin` carries out an :class:`AdminRequest` (delete, hold, release or
requeue a list of queue IDs, restricted to some queues) and writes postsuper's log
line per message (``ID: removed``, ``ID: placed on hold``, ``ID: released from
hold``, ``ID: requeued``; Postfix writes none for ``ALL``, and neither do we).

- :meth:`QueueAdmin.run` works on the files alone: the mail system is down and
  ``mailseal postsuper`` does the work itself.
- :meth:`QueueAdmin.run_live` runs in the master for the control socket, beside
  the queue manager: an idle message is claimed while its file is moved; an
  operation on a message being delivered is recorded and carried out when the
  attempt ends (:mod:`mailseal.services.queue_admin_gate`); a released or
  requeued message is delivered at once.

:func:`due_for_site` finds the deferred mail ``postqueue -s SITE`` flushes.
Reads: nothing of the configuration; the caller passes the store and log.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from mailseal.log.sinks import MailLog
from mailseal.queue import admin
from mailseal.queue.admin import MESSAGE_QUEUES, Action
from mailseal.queue.ids import is_queue_id
from mailseal.queue.store import CorruptQueueFile, QueueName, QueueStore

if TYPE_CHECKING:  # the command-line tools use this module without a queue manager
    from mailseal.services.qmgr import QueueManager

__all__ = ["AdminRequest", "QueueAdmin", "due_for_site"]

_DELIVER_AGAIN = frozenset({Action.RELEASE, Action.REQUEUE})


@dataclass(frozen=True)
class AdminRequest:
    """One postsuper operation over a batch of queue IDs."""

    action: Action
    queue_ids: tuple[str, ...]
    queues: tuple[QueueName, ...]
    log_each: bool = True  # False for "ALL", which postsuper does not log per message

    def __post_init__(self) -> None:
        bad = [queue_id for queue_id in self.queue_ids if not is_queue_id(queue_id)]
        if bad:
            raise ValueError(f"invalid mail queue id: {bad[0]}")


class QueueAdmin:
    """Carries out admin requests on ``store``, logging as ``$syslog_name/postsuper[N]``."""

    def __init__(self, store: QueueStore, log: MailLog | None) -> None:
        self.store = store
        self.log = log

    def run(self, request: AdminRequest, number: int) -> int:
        """Act on the files directly (no queue manager runs); the count of messages acted on."""
        return len(self._batch(request, request.queue_ids, number))

    async def run_live(self, request: AdminRequest, number: int, qmgr: QueueManager) -> int:
        """Act beside a running queue manager (on its event loop); the count acted on."""
        gate = qmgr.gate
        claimed: list[str] = []
        waiting = 0
        for queue_id in request.queue_ids:
            if gate.claim(queue_id):
                claimed.append(queue_id)
            elif self._wait_for_attempt(request, queue_id, number, qmgr):
                waiting += 1
        loop = asyncio.get_running_loop()
        done: dict[str, QueueName] = {}
        try:
            done = await loop.run_in_executor(None, self._batch, request, claimed, number)
        finally:
            for queue_id in claimed:
                wanted = gate.unclaim(queue_id)
                if queue_id in done and request.action in _DELIVER_AGAIN:
                    qmgr.kick(queue_id, QueueName.DEFERRED)
                elif wanted is not None:
                    qmgr.kick(queue_id, wanted)
        return waiting + len(done)

    def _wait_for_attempt(
        self, request: AdminRequest, queue_id: str, number: int, qmgr: QueueManager
    ) -> bool:
        """A busy message in one of the queues: act when its attempt ends. Found?"""
        # A busy message is in incoming/, active/ or deferred/, never on hold.
        if admin.locate(self.store, queue_id, request.queues) is None:
            return False
        if request.action is Action.RELEASE:
            return False
        # Where the file is after the attempt no longer depends on the queues named.
        later = AdminRequest(request.action, (queue_id,), MESSAGE_QUEUES, request.log_each)
        qmgr.gate.after_attempt(queue_id, functools.partial(self._after, later, number))
        return True

    def _after(self, request: AdminRequest, number: int) -> QueueName | None:
        done = self._batch(request, request.queue_ids, number)
        return QueueName.DEFERRED if done and request.action in _DELIVER_AGAIN else None

    def _batch(
        self, request: AdminRequest, queue_ids: Sequence[str], number: int
    ) -> dict[str, QueueName]:
        """Act on each message found; where each was taken from (worker thread)."""
        done: dict[str, QueueName] = {}
        for queue_id in queue_ids:
            source = admin.apply(self.store, request.action, queue_id, request.queues)
            if source is None:
                continue
            done[queue_id] = source
            if request.log_each and self.log is not None:
                program = self.log.program("postsuper")
                self.log.info(program, number, f"{queue_id}: {request.action.log_text}")
        return done


def due_for_site(store: QueueStore, site: str) -> list[str]:
    """Deferred messages with a recipient still to deliver in domain ``site`` (postqueue -s).

    The site is compared without case and without the brackets of ``[host]``.
    """
    wanted = site.strip("[]").lower()
    found: list[str] = []
    for queue_id in store.list(QueueName.DEFERRED):
        try:
            message = store.read(queue_id, QueueName.DEFERRED)
        except (FileNotFoundError, CorruptQueueFile):
            continue
        domains = {
            message.envelope.recipients[i].address.rpartition("@")[2].lower()
            for i in message.pending
        }
        if wanted in domains:
            found.append(queue_id)
    return found
