"""Maildir delivery from a queue file region: CRLF -> LF over pieces, sizes and names."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mailseal.delivery.maildir import MaildirError, _lf_pieces, deliver_to_maildir
from mailseal.queue.body import INLINE_LIMIT
from mailseal.queue.envelope import Envelope, Recipient
from mailseal.queue.store import QueueName, QueueStore


def _whole_to_lf(data: bytes) -> bytes:
    data = data.replace(b"\r\n", b"\n")
    return data if not data or data.endswith(b"\n") else data + b"\n"


@given(
    st.lists(st.sampled_from([b"a", b"\r", b"\n", b"\r\n"]), max_size=60).map(b"".join),
    st.lists(st.integers(0, 120), max_size=6),
)
def test_lf_conversion_does_not_depend_on_where_pieces_end(data: bytes, cuts: list[int]) -> None:
    points = sorted({min(c, len(data)) for c in cuts})
    pieces = [data[a:b] for a, b in zip([0, *points], [*points, len(data)], strict=True)]
    assert b"".join(_lf_pieces(pieces)) == _whole_to_lf(data)


def test_a_large_queued_message_is_delivered_from_its_file(tmp_path: Path) -> None:
    store = QueueStore(tmp_path / "queue", fsync=False)
    store.create()
    line = b"x" * 76 + b"\r\n"
    content = b"Subject: big\r\n\r\n" + line * (INLINE_LIMIT * 2 // len(line))
    envelope = Envelope("s@example.org", (Recipient("r@example.net", "r@example.net"),), 0.0)
    queue_id = store.enqueue(envelope, content)
    message = store.read(queue_id, QueueName.INCOMING)
    assert not message.body.in_memory
    delivered = deliver_to_maildir(
        tmp_path / "Maildir", message.body, prepend=b"Delivered-To: r\r\n", hostname="mx"
    )
    expected = b"Delivered-To: r\n" + content.replace(b"\r\n", b"\n")
    assert delivered.path.read_bytes() == expected
    assert delivered.size == len(expected)
    assert delivered.path.name.endswith(f",S={len(expected)}")
    assert os.listdir(tmp_path / "Maildir" / "tmp") == []


def test_a_queue_file_that_cannot_be_read_defers_and_leaves_nothing(tmp_path: Path) -> None:
    store = QueueStore(tmp_path / "queue", fsync=False)
    store.create()
    content = b"Subject: big\r\n\r\n" + (b"z" * 98 + b"\r\n") * (INLINE_LIMIT * 2 // 100)
    envelope = Envelope("s@example.org", (Recipient("r@example.net", "r@example.net"),), 0.0)
    queue_id = store.enqueue(envelope, content)
    message = store.read(queue_id, QueueName.INCOMING)
    # The file loses its end under the open body (as a failing disk would make reads fail).
    os.truncate(store.path(queue_id, QueueName.INCOMING), INLINE_LIMIT)
    with pytest.raises(MaildirError) as caught:
        deliver_to_maildir(tmp_path / "Maildir", message.body, hostname="mx")
    assert caught.value.temporary
    assert caught.value.dsn == "4.3.0"
    assert "queue file shrank" in caught.value.text
    assert os.listdir(tmp_path / "Maildir" / "tmp") == []
    assert not (tmp_path / "Maildir" / "new").exists() or not os.listdir(
        tmp_path / "Maildir" / "new"
    )
