"""The delay-warning record: written once, read back, never mistaken for damage."""

from pathlib import Path

from mailseal.queue.envelope import Envelope, Recipient
from mailseal.queue.store import QueueName, QueueStore


def test_warned_survives_and_coexists_with_other_records(tmp_path: Path) -> None:
    store = QueueStore(tmp_path / "queue")
    store.create()
    envelope = Envelope("a@example.org", (Recipient("b@example.net", "b@example.net"),), 1.0)
    queue_id = store.enqueue(envelope, b"Subject: x\r\n\r\nhi\r\n")
    store.move(queue_id, QueueName.INCOMING, QueueName.ACTIVE)
    assert store.read(queue_id, QueueName.ACTIVE).warned is False
    store.mark_warned(queue_id, QueueName.ACTIVE)
    store.defer(queue_id, QueueName.ACTIVE, {0: "connect to x[192.0.2.1]:25: refused"}, 5.0)
    message = store.read(queue_id, QueueName.DEFERRED)
    assert message.warned is True
    assert message.defer_reasons == {0: "connect to x[192.0.2.1]:25: refused"}
    assert message.done == frozenset()
    assert store.recover().quarantined == ()
