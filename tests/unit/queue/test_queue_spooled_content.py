"""Large messages: spooled content into queue files, CRC combination, reading by region."""

from __future__ import annotations

import os
import time
import zlib
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mailseal.queue.body import INLINE_LIMIT, MessageBody
from mailseal.queue.crc import crc32_combine
from mailseal.queue.envelope import Envelope, Recipient
from mailseal.queue.qfile import parse_queue_file
from mailseal.queue.spool import PrefixedContent, SpoolFile
from mailseal.queue.store import TEMP_PREFIX, CorruptQueueFile, QueueName, QueueStore


@given(st.binary(max_size=300), st.binary(max_size=3000))
def test_crc32_combine_equals_the_crc_of_the_concatenation(a: bytes, b: bytes) -> None:
    assert crc32_combine(zlib.crc32(a), zlib.crc32(b), len(b)) == zlib.crc32(a + b)


def _envelope() -> Envelope:
    return Envelope("s@example.org", (Recipient("r@example.net", "r@example.net"),), time.time())


@pytest.fixture
def store(tmp_path: Path) -> QueueStore:
    queue = QueueStore(tmp_path / "queue", fsync=False)
    queue.create()
    return queue


def _big_content(size: int) -> bytes:
    line = b"0123456789abcdefghijklmnopqrstuvwxyz" * 2 + b"\r\n"
    body = b"Subject: big\r\n\r\n" + line * (size // len(line) + 1)
    return body[: size - 2] + b"\r\n"


def _spooled(store: QueueStore, content: bytes) -> PrefixedContent:
    spool = store.open_spool("4ABCD12345")
    for start in range(0, len(content), 70_000):
        spool.write(content[start : start + 70_000])
    return PrefixedContent(b"Received: from x\r\n", spool)


def _discard(content: PrefixedContent) -> None:
    assert isinstance(content.rest, SpoolFile)
    content.rest.discard()


def test_spooled_content_makes_the_same_queue_file_as_bytes(store: QueueStore) -> None:
    content = _big_content(300_000)
    spooled = _spooled(store, content)
    envelope = _envelope()
    from_spool = store.enqueue(envelope, spooled)
    from_bytes = store.enqueue(envelope, b"Received: from x\r\n" + content)
    from_parts = store.enqueue(envelope, PrefixedContent(b"Received: from x\r\n", content))
    _discard(spooled)
    first = store.path(from_spool, QueueName.INCOMING).read_bytes()
    second = store.path(from_bytes, QueueName.INCOMING).read_bytes()
    assert first == second == store.path(from_parts, QueueName.INCOMING).read_bytes()
    assert parse_queue_file(first).content == b"Received: from x\r\n" + content
    # Only the two queue files are left: no spool, no temporary file.
    assert sorted(os.listdir(store.directory / QueueName.INCOMING)) == sorted(
        [from_spool, from_bytes, from_parts]
    )


def test_a_large_queue_file_is_read_by_region(store: QueueStore) -> None:
    content = _big_content(INLINE_LIMIT * 3 + 12345)
    spooled = _spooled(store, content)
    queue_id = store.enqueue(_envelope(), spooled)
    _discard(spooled)
    message = store.read(queue_id, QueueName.INCOMING)
    assert not message.body.in_memory
    assert message.size == len(spooled.prefix) + len(content)
    pieces = list(message.body.chunks(1 << 20))
    assert max(map(len, pieces)) == 1 << 20
    assert b"".join(pieces) == spooled.prefix + content
    assert message.body.head(40) == (spooled.prefix + content)[:40]
    # The file moves (as the queue manager moves it): the open body still reads it.
    store.move(queue_id, QueueName.INCOMING, QueueName.ACTIVE)
    assert message.content == spooled.prefix + content


def test_a_garbled_byte_in_a_large_file_is_caught(store: QueueStore) -> None:
    content = _big_content(INLINE_LIMIT * 2)
    spooled = _spooled(store, content)
    queue_id = store.enqueue(_envelope(), spooled)
    _discard(spooled)
    path = store.path(queue_id, QueueName.INCOMING)
    with path.open("r+b") as handle:
        handle.seek(INLINE_LIMIT + 7)
        byte = handle.read(1)
        handle.seek(INLINE_LIMIT + 7)
        handle.write(bytes([byte[0] ^ 0x20]))
    with pytest.raises(CorruptQueueFile, match="checksum mismatch"):
        store.read(queue_id, QueueName.INCOMING)


def test_a_truncated_large_file_is_caught(store: QueueStore) -> None:
    spooled = _spooled(store, _big_content(INLINE_LIMIT * 2))
    queue_id = store.enqueue(_envelope(), spooled)
    _discard(spooled)
    path = store.path(queue_id, QueueName.INCOMING)
    os.truncate(path, INLINE_LIMIT + 10)
    with pytest.raises(CorruptQueueFile, match="truncated"):
        store.read(queue_id, QueueName.INCOMING)


def test_a_failed_spool_fails_the_enqueue_and_leaves_nothing(store: QueueStore) -> None:
    spool = SpoolFile.failed(OSError(28, "No space left on device"))
    spool.write(b"ignored")
    with pytest.raises(OSError, match="No space left on device"):
        store.enqueue(_envelope(), PrefixedContent(b"Received: x\r\n", spool))
    assert os.listdir(store.directory / QueueName.INCOMING) == []


def test_spool_files_are_temporary_and_recovery_removes_them(store: QueueStore) -> None:
    spool = store.open_spool("4ABCD12345")
    spool.write(b"partial content")
    assert spool.path.name.startswith(TEMP_PREFIX)
    report = store.recover()
    assert spool.path.name in report.removed_temp
    assert not spool.path.exists()


def test_discard_removes_the_spool_once(store: QueueStore) -> None:
    spool = store.open_spool("4ABCD12345")
    second = store.open_spool("4ABCD12345")  # same queue ID: a different file
    assert second.path != spool.path
    spool.discard()
    spool.discard()
    assert not spool.path.exists()
    assert second.path.exists()
    second.discard()


@given(st.binary(max_size=200), st.integers(min_value=1, max_value=64))
def test_body_chunks_join_to_the_content(data: bytes, size: int) -> None:
    body = MessageBody(data)
    assert b"".join(body.chunks(size)) == data
    assert all(0 < len(piece) <= size for piece in body.chunks(size))


def test_the_spools_of_a_dead_process_are_removed_and_no_others(store: QueueStore) -> None:
    mine = store.open_spool("4ABCD12345")
    incoming = store.directory / QueueName.INCOMING
    theirs = incoming / f"{TEMP_PREFIX}spool-999999999-4ABCD12346"
    theirs.write_bytes(b"left by a crashed worker")
    other = incoming / f"{TEMP_PREFIX}spool-9999999990-4ABCD12347"  # a longer PID
    other.write_bytes(b"someone else's")
    assert store.remove_spools(999999999) == 1
    assert not theirs.exists()
    assert other.exists() and mine.path.exists()
    assert str(os.getpid()) in mine.path.name
    mine.discard()
