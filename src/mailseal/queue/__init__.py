"""The durable mail queue: queue files on disk, queue IDs, and retry scheduling.

``ids`` makes Postfix-style queue IDs, ``envelope`` holds the envelope values,
``qfile`` is the on-disk layout of one queue file, ``store`` the queue directories
(incoming/, active/, deferred/, hold/, corrupt/ under ``queue_directory``) and
``schedule`` the pure retry arithmetic. See docs/DESIGN.md for the durability rule.
"""

from mailseal.queue.envelope import Envelope, EnvelopeError, Recipient
from mailseal.queue.ids import is_queue_id, new_queue_id
from mailseal.queue.store import (
    CorruptQueueFile,
    QuarantinedFile,
    QueuedMessage,
    QueueName,
    QueueStore,
    RecoveryReport,
)

__all__ = [
    "CorruptQueueFile",
    "Envelope",
    "EnvelopeError",
    "QuarantinedFile",
    "QueueName",
    "QueueStore",
    "QueuedMessage",
    "Recipient",
    "RecoveryReport",
    "is_queue_id",
    "new_queue_id",
]
