"""QueueStore: enqueue/read round trip, torn and garbled files, progress records, moves."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from mailseal.queue.envelope import Envelope, Recipient
from mailseal.queue.ids import is_queue_id
from mailseal.queue.qfile import done_record
from mailseal.queue.store import TEMP_PREFIX, CorruptQueueFile, QueueName, QueueStore

CONTENT = b"Subject: hi\r\nFrom: a@example.org\r\n\r\nbody \xe9\xff\x00 8-bit\r\n.dot\r\n"


def _envelope(count: int = 3) -> Envelope:
    rcpts = tuple(Recipient(f"r{i}@example.net", f"R{i}@Example.NET") for i in range(count))
    return Envelope(
        "sender@example.org",
        rcpts,
        time.time(),
        client_name="mx.example.org",
        client_addr="192.0.2.1",
        helo="mx.example.org",
        protocol="ESMTP",
        message_id="<1@example.org>",
    )


@pytest.fixture
def store(tmp_path: Path) -> QueueStore:
    queue = QueueStore(tmp_path / "queue", fsync=False)
    queue.create()
    return queue


def _single_file(store: QueueStore, queue: QueueName) -> Path:
    (queue_id,) = store.list(queue)
    return store.path(queue_id, queue)


def test_create_makes_private_directories_idempotently(tmp_path: Path) -> None:
    store = QueueStore(tmp_path / "q")
    store.create()
    store.create()
    for name in QueueName:
        directory = tmp_path / "q" / name
        assert directory.is_dir()
        assert directory.stat().st_mode & 0o777 == 0o700
    # Searchable, not listable: local users reach maildrop/ through it (sendmail).
    assert (tmp_path / "q").stat().st_mode & 0o777 == 0o711


def test_round_trip_with_8bit_content(store: QueueStore) -> None:
    envelope = _envelope()
    queue_id = store.enqueue(envelope, CONTENT)
    assert is_queue_id(queue_id)
    assert store.list(QueueName.INCOMING) == [queue_id]
    message = store.read(queue_id, QueueName.INCOMING)
    assert message.envelope == envelope
    assert message.content == CONTENT
    assert message.size == len(CONTENT)
    assert message.done == frozenset()
    assert message.pending == (0, 1, 2)
    assert message.queue is QueueName.INCOMING
    assert store.path(queue_id, QueueName.INCOMING).stat().st_mode & 0o777 == 0o600


def test_round_trip_huge_content(store: QueueStore) -> None:
    content = os.urandom(1 << 20) * 24  # 24 MiB of arbitrary bytes
    queue_id = store.enqueue(_envelope(1), content)
    assert store.read(queue_id, QueueName.INCOMING).content == content


def test_empty_content_and_no_leftover_temp(store: QueueStore) -> None:
    queue_id = store.enqueue(_envelope(1), b"")
    assert store.read(queue_id, QueueName.INCOMING).content == b""
    names = os.listdir(store.directory / QueueName.INCOMING)
    assert names == [queue_id]


def test_enqueue_many_returns_ids_in_order(store: QueueStore) -> None:
    items = [(_envelope(i + 1), b"message %d\r\n" % i) for i in range(5)]
    ids = store.enqueue_many(items)
    assert len(set(ids)) == 5
    assert sorted(store.list(QueueName.INCOMING)) == sorted(ids)
    for (envelope, content), queue_id in zip(items, ids, strict=True):
        message = store.read(queue_id, QueueName.INCOMING)
        assert (message.envelope, message.content) == (envelope, content)


def test_enqueue_many_failing_item_leaves_nothing(store: QueueStore) -> None:
    items = [(_envelope(), b"one\r\n"), (_envelope(), "not bytes")]
    with pytest.raises(TypeError):
        store.enqueue_many(items)  # type: ignore[arg-type]
    assert os.listdir(store.directory / QueueName.INCOMING) == []


def test_enqueue_many_failing_commit_leaves_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = QueueStore(tmp_path / "q", fsync=True)
    store.create()
    real_fsync = os.fsync

    def fsync_failing_on_directories(fd: int) -> None:
        if os.path.isdir(os.readlink(f"/proc/self/fd/{fd}")):
            raise OSError(5, "Input/output error")
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", fsync_failing_on_directories)
    with pytest.raises(OSError, match="Input/output"):
        store.enqueue_many([(_envelope(), b"one\r\n"), (_envelope(), b"two\r\n")])
    monkeypatch.undo()
    assert os.listdir(store.directory / QueueName.INCOMING) == []


def test_list_ignores_temp_and_foreign_files(store: QueueStore) -> None:
    queue_id = store.enqueue(_envelope(), CONTENT)
    incoming = store.directory / QueueName.INCOMING
    (incoming / f"{TEMP_PREFIX}0123456789AB").write_bytes(b"partial")
    (incoming / "README").write_text("x")
    assert store.list(QueueName.INCOMING) == [queue_id]


def test_list_is_oldest_first(store: QueueStore) -> None:
    ids = [store.enqueue(_envelope(1), b"%d" % i) for i in range(20)]
    assert store.list(QueueName.INCOMING) == ids


@pytest.mark.parametrize("step", [1, 7, 61])
def test_truncation_anywhere_is_corrupt(store: QueueStore, step: int) -> None:
    queue_id = store.enqueue(_envelope(), CONTENT)
    path = store.path(queue_id, QueueName.INCOMING)
    whole = path.read_bytes()
    for cut in range(0, len(whole), step):
        path.write_bytes(whole[:cut])
        with pytest.raises(CorruptQueueFile) as caught:
            store.read(queue_id, QueueName.INCOMING)
        assert caught.value.queue_id == queue_id
        assert caught.value.reason


@pytest.mark.parametrize(
    "garbage", [b"garbage", b"garbage\n", b"\n", b"D 0 00000000\n", b"D 9 1234abcd\n", b"X"]
)
def test_garbage_appended_is_corrupt(store: QueueStore, garbage: bytes) -> None:
    queue_id = store.enqueue(_envelope(), CONTENT)
    path = store.path(queue_id, QueueName.INCOMING)
    with path.open("ab") as file:
        file.write(garbage)
    with pytest.raises(CorruptQueueFile):
        store.read(queue_id, QueueName.INCOMING)


def test_flipped_byte_fails_the_checksum(store: QueueStore) -> None:
    queue_id = store.enqueue(_envelope(), CONTENT)
    path = store.path(queue_id, QueueName.INCOMING)
    data = bytearray(path.read_bytes())
    offset = data.index(b"body")
    data[offset] ^= 0x20
    path.write_bytes(bytes(data))
    with pytest.raises(CorruptQueueFile) as caught:
        store.read(queue_id, QueueName.INCOMING)
    assert "checksum" in caught.value.reason


def test_mark_done_is_kept(store: QueueStore) -> None:
    queue_id = store.enqueue(_envelope(), CONTENT)
    store.mark_done(queue_id, QueueName.INCOMING, 2)
    store.mark_done(queue_id, QueueName.INCOMING, 0)
    message = store.read(queue_id, QueueName.INCOMING)
    assert message.done == {0, 2}
    assert message.pending == (1,)
    with pytest.raises(IndexError):
        store.mark_done(queue_id, QueueName.INCOMING, 3)


@pytest.mark.parametrize("torn", [b"D", b"D 1", b"D 1 12ab", b'R 1 "deferred', b"\0\0\0\0"])
def test_torn_trailing_record_is_ignored_then_repaired(store: QueueStore, torn: bytes) -> None:
    queue_id = store.enqueue(_envelope(), CONTENT)
    store.mark_done(queue_id, QueueName.INCOMING, 0)
    path = store.path(queue_id, QueueName.INCOMING)
    with path.open("ab") as file:
        file.write(torn)  # a crash in the middle of the next record
    message = store.read(queue_id, QueueName.INCOMING)
    assert message.done == {0}
    assert message.content == CONTENT
    # The next record is written after the torn one has been cut off.
    store.mark_done(queue_id, QueueName.INCOMING, 1)
    assert store.read(queue_id, QueueName.INCOMING).done == {0, 1}
    assert path.read_bytes().endswith(b"\n" + done_record(0) + done_record(1))


def test_defer_keeps_reasons_and_sets_mtime(store: QueueStore) -> None:
    queue_id = store.enqueue(_envelope(), CONTENT)
    store.move(queue_id, QueueName.INCOMING, QueueName.ACTIVE)
    store.mark_done(queue_id, QueueName.ACTIVE, 0)
    later = time.time() + 3600.0
    reason = 'host mx.example.net[192.0.2.7] said: 451 4.7.1 "greylisted"\nsecond line'
    store.defer(queue_id, QueueName.ACTIVE, {1: reason, 2: "connect timed out"}, later)
    assert store.list(QueueName.ACTIVE) == []
    assert store.list(QueueName.DEFERRED) == [queue_id]
    assert store.next_attempt(queue_id, QueueName.DEFERRED) == pytest.approx(later, abs=1e-3)
    message = store.read(queue_id, QueueName.DEFERRED)
    assert message.defer_reasons == {1: reason, 2: "connect timed out"}
    assert message.done == {0}
    # A later deferral replaces a recipient's reason, and may stay in deferred/.
    store.defer(queue_id, QueueName.DEFERRED, {1: "try again"}, later + 60)
    message = store.read(queue_id, QueueName.DEFERRED)
    assert message.defer_reasons == {1: "try again", 2: "connect timed out"}
    assert store.next_attempt(queue_id, QueueName.DEFERRED) == pytest.approx(later + 60, abs=1e-3)


def test_long_reason_is_cut_not_fatal(store: QueueStore) -> None:
    queue_id = store.enqueue(_envelope(1), CONTENT)
    store.defer(queue_id, QueueName.INCOMING, {0: "x" * 100_000}, time.time())
    assert len(store.read(queue_id, QueueName.DEFERRED).defer_reasons[0]) == 2000


def test_move_quarantine_remove(store: QueueStore) -> None:
    queue_id = store.enqueue(_envelope(), CONTENT)
    store.move(queue_id, QueueName.INCOMING, QueueName.HOLD)
    assert store.list(QueueName.HOLD) == [queue_id]
    assert store.list(QueueName.INCOMING) == []
    store.quarantine(queue_id, QueueName.HOLD)
    assert store.list(QueueName.CORRUPT) == [queue_id]
    store.remove(queue_id, QueueName.CORRUPT)
    assert all(store.list(queue) == [] for queue in QueueName)
    with pytest.raises(FileNotFoundError):
        store.read(queue_id, QueueName.CORRUPT)


def test_path_refuses_non_ids(store: QueueStore) -> None:
    with pytest.raises(ValueError, match="not a queue ID"):
        store.path("../../etc/passwd", QueueName.ACTIVE)


def test_new_ids_never_reuse_a_name_in_another_queue(
    store: QueueStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    first = store.enqueue(_envelope(), CONTENT)
    store.move(first, QueueName.INCOMING, QueueName.DEFERRED)
    # Make the ID generator hand out the taken ID once more, then fresh ones.
    import mailseal.queue.store as store_module

    handed = iter([first, first, "0000000100AB"])
    monkeypatch.setattr(store_module, "new_queue_id", lambda: next(handed))
    second = store.enqueue(_envelope(), b"other")
    assert second == "0000000100AB"
    assert store.read(first, QueueName.DEFERRED).content == CONTENT
