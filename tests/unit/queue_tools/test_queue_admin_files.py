"""postsuper's file operations and showq's scan on a real queue directory (no master)."""

import os
import time
from pathlib import Path

import pytest

from mailseal.log.sinks import MailLog, Severity
from mailseal.queue import admin
from mailseal.queue.admin import Action
from mailseal.queue.envelope import Envelope, Recipient
from mailseal.queue.store import QueueName, QueueStore
from mailseal.services.queue_admin import AdminRequest, QueueAdmin, due_for_site
from mailseal.services.queue_admin_gate import DeliveryGate
from mailseal.services.showq import scan_queue


class ListSink:
    def __init__(self) -> None:
        self.lines: list[tuple[Severity, str, int, str]] = []

    def write(self, severity: Severity, program: str, number: int, message: str) -> None:
        self.lines.append((severity, program, number, message))

    def close(self) -> None:
        pass


@pytest.fixture
def store(tmp_path: Path) -> QueueStore:
    made = QueueStore(tmp_path / "queue", fsync=False)
    made.create()
    return made


def put(store: QueueStore, queue_id: str, queue: QueueName, *rcpts: str) -> str:
    addresses = rcpts or ("bob@example.net",)
    envelope = Envelope(
        sender="alice@example.test",
        recipients=tuple(Recipient(a, a) for a in addresses),
        arrival_time=1_700_000_000.0,
    )
    stored = store.enqueue(envelope, b"Subject: x\r\n\r\nbody\r\n", queue_id)
    if queue is not QueueName.INCOMING:
        store.move(stored, QueueName.INCOMING, queue)
    return stored


def where(store: QueueStore, queue_id: str) -> QueueName | None:
    return admin.locate(store, queue_id, admin.MESSAGE_QUEUES)


def test_hold_release_requeue_delete(store: QueueStore) -> None:
    qid = put(store, "4A1B2C3D4E5", QueueName.DEFERRED)
    os.utime(store.path(qid, QueueName.DEFERRED), (time.time() + 3600,) * 2)
    assert admin.apply(store, Action.HOLD, qid, admin.default_queues(Action.HOLD)) == "deferred"
    assert where(store, qid) is QueueName.HOLD
    # Already on hold: -h does not look in hold/, as postsuper's hold_one.
    assert admin.apply(store, Action.HOLD, qid, admin.MESSAGE_QUEUES) is None
    before = time.time()
    assert admin.apply(store, Action.RELEASE, qid, admin.default_queues(Action.RELEASE))
    assert where(store, qid) is QueueName.DEFERRED
    assert store.next_attempt(qid, QueueName.DEFERRED) >= before - 1  # due now
    assert admin.apply(store, Action.RELEASE, qid, admin.MESSAGE_QUEUES) is None
    store.move(qid, QueueName.DEFERRED, QueueName.HOLD)
    assert admin.apply(store, Action.REQUEUE, qid, admin.default_queues(Action.REQUEUE))
    assert where(store, qid) is QueueName.DEFERRED
    assert admin.apply(store, Action.DELETE, qid, (QueueName.HOLD,)) is None  # restricted
    assert admin.apply(store, Action.DELETE, qid, admin.default_queues(Action.DELETE))
    assert where(store, qid) is None
    assert admin.apply(store, Action.DELETE, qid, admin.MESSAGE_QUEUES) is None


def test_queue_names(store: QueueStore) -> None:
    assert admin.parse_queue_names(["deferred", "hold"]) == (QueueName.DEFERRED, QueueName.HOLD)
    for bad in ("corrupt", "maildrop", "Deferred", ""):
        with pytest.raises(ValueError, match=f"^{bad}$"):
            admin.parse_queue_names([bad])


def test_list_ids_queue_by_queue(store: QueueStore) -> None:
    put(store, "4A1B2C3D4E2", QueueName.HOLD)
    put(store, "4A1B2C3D4E1", QueueName.DEFERRED)
    put(store, "4A1B2C3D4E3", QueueName.DEFERRED)
    found = admin.list_ids(store, (QueueName.DEFERRED, QueueName.HOLD))
    assert found == [
        ("4A1B2C3D4E1", QueueName.DEFERRED),
        ("4A1B2C3D4E3", QueueName.DEFERRED),
        ("4A1B2C3D4E2", QueueName.HOLD),
    ]


def test_queue_admin_logs_one_line_per_named_message(store: QueueStore) -> None:
    qids = [put(store, f"4A1B2C3D4E{n}", QueueName.DEFERRED) for n in range(3)]
    sink = ListSink()
    tool = QueueAdmin(store, MailLog(sink, "postfix"))
    request = AdminRequest(Action.HOLD, (*qids[:2], "4A1B2C3D4EF"), (QueueName.DEFERRED,))
    assert tool.run(request, 4242) == 2
    assert sink.lines == [
        (Severity.INFO, "postfix/postsuper", 4242, f"{qids[0]}: placed on hold"),
        (Severity.INFO, "postfix/postsuper", 4242, f"{qids[1]}: placed on hold"),
    ]
    mass = AdminRequest(Action.DELETE, tuple(qids), admin.MESSAGE_QUEUES, log_each=False)
    assert tool.run(mass, 4242) == 3
    assert len(sink.lines) == 2  # "ALL" is not logged per message, as in Postfix


def test_admin_request_refuses_malformed_ids() -> None:
    with pytest.raises(ValueError, match=r"invalid mail queue id: \.\./etc"):
        AdminRequest(Action.DELETE, ("../etc",), admin.MESSAGE_QUEUES)


def test_due_for_site_looks_at_pending_recipients_only(store: QueueStore) -> None:
    mixed = put(store, "4A1B2C3D4E1", QueueName.DEFERRED, "a@Site.example", "b@other.example")
    done = put(store, "4A1B2C3D4E2", QueueName.DEFERRED, "c@site.example", "d@other.example")
    store.mark_done(done, QueueName.DEFERRED, 0)
    put(store, "4A1B2C3D4E3", QueueName.HOLD, "e@site.example")
    assert due_for_site(store, "site.example") == [mixed]
    assert due_for_site(store, "[other.example]") == [mixed, done]


def test_scan_queue_order_pending_recipients_and_reasons(store: QueueStore) -> None:
    put(store, "4A1B2C3D4E1", QueueName.HOLD)
    deferred = put(store, "4A1B2C3D4E2", QueueName.DEFERRED, "x@a.example", "y@b.example")
    store.mark_done(deferred, QueueName.DEFERRED, 0)
    store.defer(deferred, QueueName.DEFERRED, {1: "connect refused"}, time.time() + 60)
    put(store, "4A1B2C3D4E3", QueueName.ACTIVE)
    (store.directory / "deferred" / "4A1B2C3D4E4").write_bytes(b"garbage")
    entries = scan_queue(store)
    assert [(e.queue_name, e.queue_id) for e in entries] == [
        ("active", "4A1B2C3D4E3"),
        ("deferred", "4A1B2C3D4E2"),
        ("hold", "4A1B2C3D4E1"),
    ]
    assert [(r.address, r.delay_reason) for r in entries[1].recipients] == [
        ("y@b.example", "connect refused")
    ]
    assert entries[0].message_size == len(b"Subject: x\r\n\r\nbody\r\n")


def test_delivery_gate_claims_and_waiting_operations() -> None:
    gate = DeliveryGate()
    assert gate.enter("A", QueueName.INCOMING)
    assert not gate.claim("A")  # being delivered
    gate.after_attempt("A", lambda: QueueName.DEFERRED)
    assert gate.has_after("A")
    assert [action() for action in gate.take_after("A")] == [QueueName.DEFERRED]
    assert gate.take_after("A") == []
    gate.leave("A")
    assert gate.claim("A")
    assert not gate.enter("A", QueueName.INCOMING)  # claimed: the wish is remembered
    assert gate.is_busy("A")
    assert gate.unclaim("A") is QueueName.INCOMING
    assert not gate.is_busy("A")
    assert gate.claim("A")
    assert gate.unclaim("A") is None
