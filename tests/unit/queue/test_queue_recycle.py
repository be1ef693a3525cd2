"""Recycled queue files: a delivered message's file is reused, bounded, never mixed up."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from mailseal.queue import recycle
from mailseal.queue.envelope import Envelope, Recipient
from mailseal.queue.recycle import Recycler
from mailseal.queue.store import QueueName, QueueStore


def _envelope(n: int = 1) -> Envelope:
    return Envelope(
        sender="a@example.test",
        recipients=tuple(Recipient(f"r{i}@example.test", f"r{i}@example.test") for i in range(n)),
        arrival_time=1_700_000_000.0,
    )


@pytest.fixture
def store(tmp_path: Path) -> QueueStore:
    queue = QueueStore(tmp_path / "queue", fsync=False)
    queue.create()
    return queue


def _delivered(store: QueueStore, content: bytes) -> tuple[str, int]:
    """Queue a message, move it to active/ and remove it as the queue manager does."""
    queue_id = store.enqueue(_envelope(3), content)
    store.move(queue_id, QueueName.INCOMING, QueueName.ACTIVE, durable=False)
    inode = store.path(queue_id, QueueName.ACTIVE).stat().st_ino
    store.remove(queue_id, QueueName.ACTIVE, durable=False)
    return queue_id, inode


def test_the_next_message_reuses_a_delivered_file_cut_to_its_length(
    store: QueueStore, tmp_path: Path
) -> None:
    old_id, inode = _delivered(store, b"Subject: long\r\n\r\n" + b"x" * 10_000 + b"\r\n")
    recycled = tmp_path / "queue" / recycle.RECYCLE_DIR
    assert os.listdir(recycled) == [old_id]

    smtpd = QueueStore(tmp_path / "queue", fsync=False)  # another process, as in smtpd
    new_id = smtpd.enqueue(_envelope(), b"Subject: short\r\n\r\nhi\r\n")

    path = store.path(new_id, QueueName.INCOMING)
    assert path.stat().st_ino == inode  # the same file, no new inode
    assert os.listdir(recycled) == []
    message = store.read(new_id, QueueName.INCOMING)  # checks the CRC and the end marker
    assert message.content == b"Subject: short\r\n\r\nhi\r\n"
    assert message.envelope == _envelope()
    assert b"x" * 100 not in path.read_bytes()  # the old message's tail is gone
    assert sorted(os.listdir(tmp_path / "queue" / "incoming")) == [new_id]


def test_a_durable_removal_deletes(store: QueueStore, tmp_path: Path) -> None:
    queue_id = store.enqueue(_envelope(), b"m\r\n")
    store.remove(queue_id, QueueName.INCOMING)  # postsuper -d, for one
    assert not (tmp_path / "queue" / recycle.RECYCLE_DIR).exists()
    assert not store.path(queue_id, QueueName.INCOMING).exists()


def test_recycle_holds_at_most_the_limit(
    store: QueueStore, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(recycle, "LIMIT", 2)
    fresh = QueueStore(tmp_path / "queue", fsync=False)  # a recycler that sees LIMIT 2
    ids = [fresh.enqueue(_envelope(), b"m\r\n") for _ in range(5)]
    for queue_id in ids:
        fresh.remove(queue_id, QueueName.INCOMING, durable=False)
    assert len(os.listdir(tmp_path / "queue" / recycle.RECYCLE_DIR)) == 2
    assert all(not fresh.path(q, QueueName.INCOMING).exists() for q in ids)


def test_recycled_files_are_in_no_queue_and_survive_recovery(
    store: QueueStore, tmp_path: Path
) -> None:
    _delivered(store, b"m\r\n")
    report = store.recover()
    assert all(store.list(queue) == [] for queue in QueueName)
    assert report.resumed == ()
    assert len(os.listdir(tmp_path / "queue" / recycle.RECYCLE_DIR)) == 1


def test_a_file_another_process_took_is_skipped(tmp_path: Path) -> None:
    base = str(tmp_path)
    os.mkdir(tmp_path / recycle.RECYCLE_DIR)
    for name in ("A", "B"):
        (tmp_path / recycle.RECYCLE_DIR / name).write_bytes(b"old")
    mine, theirs = Recycler(base), Recycler(base)
    assert mine.take(f"{base}/first")  # lists both names, takes one
    assert theirs.take(f"{base}/second")  # the other process takes the other
    assert not mine.take(f"{base}/third")  # its remembered name is gone: none left
    assert sorted(os.listdir(tmp_path)) == ["first", recycle.RECYCLE_DIR, "second"]


def test_a_half_written_taken_file_is_removed_by_recovery(
    store: QueueStore, tmp_path: Path
) -> None:
    _delivered(store, b"m\r\n")
    incoming = tmp_path / "queue" / "incoming"
    taken = f"{incoming}/tmp-0000000000AB.{os.getpid()}"
    assert Recycler(str(tmp_path / "queue")).take(taken)
    store.recover()
    assert os.listdir(incoming) == []


def test_a_large_file_is_deleted_not_kept(store: QueueStore, tmp_path: Path) -> None:
    queue_id, _ = _delivered(store, b"x" * (recycle.MAX_SIZE + 1))
    assert not store.path(queue_id, QueueName.ACTIVE).exists()
    assert not (tmp_path / "queue" / recycle.RECYCLE_DIR).exists()  # nothing was kept


def test_files_that_smtpd_took_make_room_before_anything_is_deleted(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The queue manager sees only what it keeps; smtpd's takes free room it must find
    # by looking again, not by deleting first (which threw away a sixth to a half of them).
    monkeypatch.setattr(recycle, "LIMIT", 4)
    monkeypatch.setattr(recycle, "_RECOUNT", 2)
    base = str(tmp_path)
    qmgr, smtpd = Recycler(base), Recycler(base)

    def retire(name: str) -> None:
        (tmp_path / name).write_bytes(b"delivered")
        qmgr.retire(f"{base}/{name}", name)

    for name in ("A", "B", "C", "D"):
        retire(name)
    for n in range(3):
        assert smtpd.take(f"{base}/taken{n}")
    retire("E")
    kept = os.listdir(tmp_path / recycle.RECYCLE_DIR)
    assert "E" in kept  # kept for reuse: the three taken left room
    assert len(kept) == 2
    assert not (tmp_path / "E").exists()
