"""Which messages the queue manager is working on, and what queue operations wait for them.

Postfix's postsuper renames queue files under a running qmgr and lets it cope;
mailseal's queue manager instead keeps a message's file to itself from the moment
it schedules the message until its delivery attempt has ended (the message is
*busy*). A queue operation (postsuper -d/-h/-H/-r through the control socket) on
a busy message is recorded and carried out when the attempt ends, so a delivery
never loses its file half-way and a message is never delivered twice; on an idle
message the operation *claims* it first, so that the queue manager does not start
it meanwhile, and a start it asked for during the claim is handed back afterwards.

Everything here runs on the event loop thread, so no lock is needed.
"""

from __future__ import annotations

from collections.abc import Callable

from mailseal.queue.store import QueueName

__all__ = ["AfterAttempt", "DeliveryGate"]

# Carried out in a worker thread once the attempt ended; returns the queue to deliver
# the message from at once (released or requeued), or None.
AfterAttempt = Callable[[], QueueName | None]


class DeliveryGate:
    """The busy set of the queue manager, claims, and the operations waiting on them."""

    def __init__(self) -> None:
        self._busy: set[str] = set()
        self._claimed: dict[str, QueueName | None] = {}
        self._after: dict[str, list[AfterAttempt]] = {}

    def enter(self, queue_id: str, queue: QueueName) -> bool:
        """The queue manager wants to deliver ``queue_id``: may it start?"""
        if queue_id in self._busy:
            if queue_id in self._claimed:
                # Remember the wish: smtpd's wake() for a new message is not repeated.
                self._claimed[queue_id] = queue
            return False
        self._busy.add(queue_id)
        return True

    def leave(self, queue_id: str) -> None:
        """The queue manager is done with ``queue_id`` (after :meth:`take_after`)."""
        self._busy.discard(queue_id)

    def is_busy(self, queue_id: str) -> bool:
        """Is ``queue_id`` scheduled or being delivered (or claimed)?"""
        return queue_id in self._busy

    def claim(self, queue_id: str) -> bool:
        """Reserve an idle message for a queue operation; False if it is busy."""
        if queue_id in self._busy:
            return False
        self._busy.add(queue_id)
        self._claimed[queue_id] = None
        return True

    def unclaim(self, queue_id: str) -> QueueName | None:
        """End a claim; the queue the manager asked to deliver it from meanwhile, if any."""
        self._busy.discard(queue_id)
        return self._claimed.pop(queue_id, None)

    def after_attempt(self, queue_id: str, action: AfterAttempt) -> None:
        """Carry out ``action`` when the busy message's delivery attempt ends."""
        self._after.setdefault(queue_id, []).append(action)

    def has_after(self, queue_id: str) -> bool:
        """Is an operation waiting? Then the attempt that has not begun is skipped."""
        return queue_id in self._after

    def take_after(self, queue_id: str) -> list[AfterAttempt]:
        """The operations waiting on ``queue_id``, removed from the gate."""
        return self._after.pop(queue_id, [])
