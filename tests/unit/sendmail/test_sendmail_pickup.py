"""pickup over a real queue directory: files in maildrop/ become queue files, or go to corrupt/."""

import itertools
import os
from pathlib import Path

import pytest

from mailseal.log.sinks import MailLog, Severity
from mailseal.queue.maildrop import Submission
from mailseal.queue.store import QueueName, QueueStore
from mailseal.services.pickup import Pickup, PickupSettings

SETTINGS = PickupSettings(
    hostname="mail.example.test",
    mail_name="mailseal",
    myorigin="example.test",
    append_at_myorigin=True,
)


class ListSink:
    def __init__(self) -> None:
        self.lines: list[tuple[Severity, str, str]] = []

    def write(self, severity: Severity, program: str, number: int, message: str) -> None:
        self.lines.append((severity, program, message))

    def close(self) -> None:
        pass


@pytest.fixture
def queue(tmp_path: Path) -> tuple[QueueStore, Pickup, ListSink]:
    store = QueueStore(tmp_path, fsync=False)
    store.create()
    sink = ListSink()
    pickup = Pickup(SETTINGS, store, MailLog(sink, "mailseal"), itertools.count(1), fsync=False)
    pickup.maildrop.create()
    return store, pickup, sink


def drop(pickup: Pickup, submission: Submission, content: bytes) -> str:
    return pickup.maildrop.write(submission, content)


def test_a_dropped_message_is_queued_then_removed(
    queue: tuple[QueueStore, Pickup, ListSink],
) -> None:
    store, pickup, sink = queue
    sub = Submission(
        uid=42,
        sender="joe",
        recipients=("ann", "bob@other.test"),
        extract_recipients=True,
        full_name="Joe User",
        notify="NEVER",
        envid="e1",
        body="7BIT",
    )
    drop(pickup, sub, b"To: ann, carl@x.test\nBcc: dora\nSubject: s\n\nhello\n")
    queued = pickup.scan()
    assert len(queued) == 1
    assert pickup.maildrop.list() == []
    message = store.read(queued[0], QueueName.INCOMING)
    env = message.envelope
    assert env.sender == "joe@example.test"
    assert [r.address for r in env.recipients] == [
        "ann@example.test",
        "bob@other.test",
        "carl@x.test",
        "dora@example.test",
    ]
    assert {r.notify for r in env.recipients} == {"NEVER"}
    assert (env.envid, env.body) == ("e1", "7BIT")
    content = message.content.decode()
    assert content.startswith(
        f"Received: by mail.example.test (mailseal, from userid {os.getuid()})"
        f"\r\n\tid {queued[0]}; "
    )
    assert "Bcc" not in content
    assert "From: Joe User <joe@example.test>\r\n" in content
    assert env.message_id in content
    # uid is the file's owner, not what the file says (42)
    assert sink.lines[0][1:] == ("mailseal/pickup", f"{queued[0]}: uid={os.getuid()} from=<joe>")
    assert sink.lines[1][1:] == ("mailseal/cleanup", f"{queued[0]}: message-id={env.message_id}")


def test_per_recipient_notify_from_bsmtp(queue: tuple[QueueStore, Pickup, ListSink]) -> None:
    store, pickup, _ = queue
    sub = Submission(uid=0, sender="", recipients=("a@x", "b@x"), recipient_notify=("SUCCESS", ""))
    drop(pickup, sub, b"Subject: s\r\n\r\nb\r\n")
    [queue_id] = pickup.scan()
    env = store.read(queue_id, QueueName.INCOMING).envelope
    assert env.sender == ""
    assert [(r.address, r.notify) for r in env.recipients] == [("a@x", "SUCCESS"), ("b@x", "")]
    assert b"From: MAILER-DAEMON\r\n" in store.read(queue_id, QueueName.INCOMING).content


def test_a_malformed_file_goes_to_corrupt_with_a_warning(
    queue: tuple[QueueStore, Pickup, ListSink],
) -> None:
    store, pickup, sink = queue
    bad = pickup.maildrop.directory / "0123456789AB"
    bad.write_bytes(b"garbage")
    assert pickup.scan() == []
    assert not bad.exists()
    assert (store.directory / "corrupt" / "maildrop-0123456789AB").read_bytes() == b"garbage"
    assert sink.lines == [
        (
            Severity.WARNING,
            "mailseal/pickup",
            "warning: maildrop/0123456789AB: malformed maildrop file: not a mailseal maildrop "
            "file; saved as corrupt/maildrop-0123456789AB",
        )
    ]
    assert pickup.scan() == []  # nothing left to trip over
    assert len(sink.lines) == 1


def test_no_recipients_is_quarantined_not_queued(
    queue: tuple[QueueStore, Pickup, ListSink],
) -> None:
    store, pickup, sink = queue
    name = drop(pickup, Submission(uid=0, sender="a", recipients=(), extract_recipients=True), b"")
    assert pickup.scan() == []
    assert store.list(QueueName.INCOMING) == []
    assert (store.directory / "corrupt" / f"maildrop-{name}").exists()
    assert "no recipients specified" in sink.lines[0][2]


def test_a_queue_write_error_keeps_the_maildrop_file(
    queue: tuple[QueueStore, Pickup, ListSink],
) -> None:
    store, pickup, sink = queue
    name = drop(pickup, Submission(uid=0, sender="a", recipients=("b",)), b"x\n")
    (store.directory / "incoming").rename(store.directory / "gone")
    assert pickup.scan() == []
    assert pickup.maildrop.list() == [name]
    assert "queue file write error" in sink.lines[0][2]
    (store.directory / "gone").rename(store.directory / "incoming")
    assert len(pickup.scan()) == 1
    assert pickup.maildrop.list() == []
