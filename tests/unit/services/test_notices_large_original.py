"""Bounces of large queued messages: headers only, read from the start of the file."""

from __future__ import annotations

import email
import time
from pathlib import Path

from mailseal.config.errors import Setting
from mailseal.config.facts import SystemFacts
from mailseal.config.model import Config
from mailseal.queue.body import INLINE_LIMIT
from mailseal.queue.envelope import Envelope, Recipient
from mailseal.queue.store import QueueName, QueueStore
from mailseal.services.delivery_outcome import Outcome
from mailseal.services.notices import Failure, queue_notice


def _bounce_of(tmp_path: Path, content: bytes) -> bytes:
    store = QueueStore(tmp_path / "queue", fsync=False)
    store.create()
    rcpt = Recipient("gone@example.net", "gone@example.net")
    queue_id = store.enqueue(Envelope("sender@example.org", (rcpt,), time.time()), content)
    message = store.read(queue_id, QueueName.INCOMING)
    facts = SystemFacts(hostname="mail.example.com", config_directory=str(tmp_path))
    config = Config({"myhostname": Setting("mail.example.com")}, facts)
    failure = Failure(rcpt, Outcome("bounced", "5.1.1", "unknown user", "smtp", rcpt.address))
    queued = queue_notice(config, store, message, [failure], kind="failure", now=time.time())
    assert queued is not None
    notice = store.read(queued[0], QueueName.INCOMING)
    return notice.content


def test_a_large_message_is_returned_as_its_headers(tmp_path: Path) -> None:
    headers = b"Subject: huge\r\nMessage-ID: <huge@example.org>\r\n\r\n"
    content = headers + (b"y" * 98 + b"\r\n") * (INLINE_LIMIT * 2 // 100)
    bounce = _bounce_of(tmp_path, content)
    assert len(bounce) < 20_000
    parsed = email.message_from_bytes(bounce)
    returned = [part for part in parsed.walk() if part.get_content_type() == "text/rfc822-headers"]
    assert len(returned) == 1
    assert b"Message-ID: <huge@example.org>" in returned[0].as_bytes()
    assert b"yyyy" not in bounce


def test_a_small_message_is_returned_whole(tmp_path: Path) -> None:
    content = b"Subject: small\r\n\r\nthe body\r\n"
    bounce = _bounce_of(tmp_path, content)
    assert b"the body" in bounce
