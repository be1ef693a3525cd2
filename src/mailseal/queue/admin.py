"""postsuper's operations on queue files: delete, hold, release, requeue, and making mail due.

Each operation renames or removes one file, durably (:class:`QueueStore` fsyncs the
directories), and says whether it found the message. Which queues an operation
looks in follows postsuper(1):

- ``-d`` delete: hold, incoming, active, deferred;
- ``-h`` hold: incoming, active, deferred -> hold/ (a message already on hold is left);
- ``-H`` release: hold -> deferred/, due at once;
- ``-r`` requeue: hold, incoming, active, deferred -> deferred/, due at once.

Postfix requeues into maildrop/ so that cleanup rewrites the message again;
mailseal has no rewriting pass after smtpd, so a requeued message is simply due
now (TODO(#6): re-run address rewriting on requeue). These functions know nothing
of a running queue manager: :mod:`mailseal.services.queue_admin` makes sure a
message being delivered is not pulled from under its delivery.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterable, Sequence
from enum import StrEnum

from mailseal.queue.store import QueueName, QueueStore

__all__ = [
    "MESSAGE_QUEUES",
    "Action",
    "apply",
    "default_queues",
    "list_ids",
    "locate",
    "make_due",
    "parse_queue_names",
]

# The queues that hold messages, in the order postsuper walks them; corrupt/ is not one.
MESSAGE_QUEUES = (QueueName.INCOMING, QueueName.ACTIVE, QueueName.DEFERRED, QueueName.HOLD)


class Action(StrEnum):
    """One postsuper operation; the value is the word of the control protocol."""

    DELETE = "delete"
    HOLD = "hold"
    RELEASE = "release"
    REQUEUE = "requeue"

    @property
    def log_text(self) -> str:
        """What postsuper logs after ``ID: `` when it acted on one message."""
        return _LOG_TEXT[self]


_LOG_TEXT = {
    Action.DELETE: "removed",
    Action.HOLD: "placed on hold",
    Action.RELEASE: "released from hold",
    Action.REQUEUE: "requeued",
}

_DEFAULT_QUEUES = {
    Action.DELETE: (QueueName.HOLD, QueueName.INCOMING, QueueName.ACTIVE, QueueName.DEFERRED),
    Action.HOLD: (QueueName.INCOMING, QueueName.ACTIVE, QueueName.DEFERRED),
    Action.RELEASE: (QueueName.HOLD,),
    Action.REQUEUE: (QueueName.HOLD, QueueName.INCOMING, QueueName.ACTIVE, QueueName.DEFERRED),
}

# Where an operation may find its message at all, whatever queues were named.
_APPLIES_TO = {
    Action.DELETE: frozenset(MESSAGE_QUEUES),
    Action.HOLD: frozenset({QueueName.INCOMING, QueueName.ACTIVE, QueueName.DEFERRED}),
    Action.RELEASE: frozenset({QueueName.HOLD}),
    Action.REQUEUE: frozenset(MESSAGE_QUEUES),
}


def default_queues(action: Action) -> tuple[QueueName, ...]:
    """The queues postsuper searches when the command line names none."""
    return _DEFAULT_QUEUES[action]


def parse_queue_names(names: Iterable[str]) -> tuple[QueueName, ...]:
    """Queue names as given to postsuper; ``ValueError(name)`` for one that is not a queue."""
    parsed: list[QueueName] = []
    for name in names:
        try:
            queue = QueueName(name)
        except ValueError:
            raise ValueError(name) from None
        if queue not in MESSAGE_QUEUES:
            raise ValueError(name)
        parsed.append(queue)
    return tuple(parsed)


def locate(store: QueueStore, queue_id: str, queues: Sequence[QueueName]) -> QueueName | None:
    """The first of ``queues`` that holds ``queue_id``, or None."""
    for queue in queues:
        if store.path(queue_id, queue).is_file():
            return queue
    return None


def list_ids(store: QueueStore, queues: Sequence[QueueName]) -> list[tuple[str, QueueName]]:
    """Every message in ``queues``, queue by queue, oldest first within a queue."""
    found: list[tuple[str, QueueName]] = []
    for queue in queues:
        try:
            found += [(queue_id, queue) for queue_id in store.list(queue)]
        except FileNotFoundError:
            continue
    return found


def apply(
    store: QueueStore, action: Action, queue_id: str, queues: Sequence[QueueName]
) -> QueueName | None:
    """Carry out ``action`` on ``queue_id`` if one of ``queues`` holds it.

    Returns the queue the message was taken from, or None when it was not found
    (absent, or it moved away meanwhile: a lost race is not an error, as in postsuper).
    """
    # A file that vanishes between the look and the rename lost a race with the
    # queue manager or another postsuper: look once more, as postsuper does.
    for _ in range(2):
        source = locate(store, queue_id, [q for q in queues if q in _APPLIES_TO[action]])
        if source is None:
            return None
        try:
            _carry_out(store, action, queue_id, source)
        except FileNotFoundError:
            continue
        return source
    return None


def _carry_out(store: QueueStore, action: Action, queue_id: str, source: QueueName) -> None:
    if action is Action.DELETE:
        store.remove(queue_id, source)
    elif action is Action.HOLD:
        store.move(queue_id, source, QueueName.HOLD)
    else:  # release and requeue: deferred and due now
        if source is not QueueName.DEFERRED:
            store.move(queue_id, source, QueueName.DEFERRED)
        make_due(store, queue_id)


def make_due(store: QueueStore, queue_id: str, now: float | None = None) -> None:
    """Make a deferred message due (its mtime is its next attempt, as in Postfix)."""
    stamp = time.time() if now is None else now
    os.utime(store.path(queue_id, QueueName.DEFERRED), (stamp, stamp))
