"""Group commit (services/queue_writer.py, QueueStore.enqueue_many with syncfs)."""

from __future__ import annotations

import asyncio
import errno
import threading
from pathlib import Path
from typing import Any

import pytest

from mailseal.queue.envelope import Envelope, Recipient
from mailseal.queue.fsio import can_sync_filesystem, sync_filesystem
from mailseal.queue.ids import new_queue_id
from mailseal.queue.store import QueueName, QueueStore
from mailseal.services.queue_writer import QueueWriter


def _envelope(n: int) -> Envelope:
    rcpt = Recipient(f"r{n}@example.test", f"r{n}@example.test")
    return Envelope(sender=f"s{n}@example.net", recipients=(rcpt,), arrival_time=1.0)


def test_concurrent_messages_share_syncs_and_all_land(tmp_path: Path) -> None:
    store = QueueStore(tmp_path / "q")
    store.create()
    writer = QueueWriter(store)

    async def burst() -> list[str]:
        return await asyncio.gather(
            *(
                writer.enqueue(_envelope(n), b"Subject: %d\r\n\r\nhi\r\n" % n, new_queue_id())
                for n in range(40)
            )
        )

    ids = asyncio.run(burst())
    assert len(set(ids)) == 40
    assert sorted(store.list(QueueName.INCOMING)) == sorted(ids)
    for n, queue_id in enumerate(ids):
        message = store.read(queue_id, QueueName.INCOMING)
        assert message.envelope.sender == f"s{n}@example.net"
        assert message.content == b"Subject: %d\r\n\r\nhi\r\n" % n
    assert writer.messages == 40
    # The first batch holds the first message; the others piled up meanwhile.
    assert writer.batches < writer.messages
    assert writer.summary() == f"queue writes: 40 messages in {writer.batches} syncs"


def test_a_failed_batch_fails_every_message_in_it_and_leaves_nothing(tmp_path: Path) -> None:
    store = QueueStore(tmp_path / "q")  # never created: every write fails

    async def burst() -> list[str | BaseException]:
        return await asyncio.gather(
            *(writer.enqueue(_envelope(n), b"x\r\n", new_queue_id()) for n in range(5)),
            return_exceptions=True,
        )

    writer = QueueWriter(store)
    results = asyncio.run(burst())
    assert all(isinstance(r, OSError) for r in results)
    assert writer.messages == 0
    assert not (tmp_path / "q").exists()


def test_enqueue_many_uses_one_filesystem_sync(tmp_path: Path) -> None:
    store = QueueStore(tmp_path / "q")
    store.create()
    ids = store.enqueue_many([(_envelope(n), b"body\r\n") for n in range(3)])
    assert [store.read(i, QueueName.INCOMING).content for i in ids] == [b"body\r\n"] * 3
    assert not [p for p in (tmp_path / "q" / "incoming").iterdir() if p.name.startswith("tmp-")]


@pytest.mark.skipif(not can_sync_filesystem(), reason="syncfs(2) is Linux's")
def test_sync_filesystem_reports_a_missing_directory(tmp_path: Path) -> None:
    sync_filesystem(tmp_path)
    with pytest.raises(FileNotFoundError):
        sync_filesystem(tmp_path / "absent")


def test_a_failed_sync_fails_every_message_of_the_batch_and_leaves_no_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import mailseal.queue.store as store_module

    def failing_sync(_path: object) -> None:
        raise OSError(errno.EIO, "Input/output error")

    monkeypatch.setattr(store_module, "sync_filesystem", failing_sync)
    monkeypatch.setattr(store_module, "fsync_file", failing_sync)
    store = QueueStore(tmp_path / "q")
    store.create()
    writer = QueueWriter(store)

    async def burst() -> list[str | BaseException]:
        return await asyncio.gather(
            *(writer.enqueue(_envelope(n), b"x\r\n", new_queue_id()) for n in range(5)),
            return_exceptions=True,
        )

    results = asyncio.run(burst())
    assert all(isinstance(r, OSError) and r.errno == errno.EIO for r in results)
    assert list((tmp_path / "q" / "incoming").iterdir()) == []
    assert writer.messages == 0


# The group commit's steps, and the two calls that run several of them.
_STEPS = (
    "write_unsynced",
    "sync_unsynced",
    "publish_synced",
    "sync_incoming",
    "finish_unsynced",
    "enqueue_many",
)


def _recorded_writer(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> tuple[QueueStore, QueueWriter, list[tuple[str, bool]]]:
    """A writer on a new store, and (step, ran on the loop's thread) for each outermost step."""
    store = QueueStore(tmp_path / "q")
    store.create()
    where: list[tuple[str, bool]] = []
    loop_thread = threading.get_ident()
    depth: list[bool] = []  # finish_unsynced and enqueue_many call the steps themselves

    def recorded(name: str, real: Any) -> Any:
        def step(*args: Any) -> Any:
            if not depth:
                where.append((name, threading.get_ident() == loop_thread))
            depth.append(True)
            try:
                return real(*args)
            finally:
                depth.pop()

        return step

    for name in _STEPS:
        monkeypatch.setattr(store, name, recorded(name, getattr(store, name)))
    return store, QueueWriter(store), where


def test_small_batches_are_written_on_the_loop_and_large_ones_in_a_thread(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A large message must not hold up the loop's other sessions while it is copied."""
    store, writer, where = _recorded_writer(tmp_path, monkeypatch)
    large = b"Subject: big\r\n\r\n" + (b"y" * 78 + b"\r\n") * 20_000  # 1.6 MB

    async def one(content: bytes) -> str:
        return await writer.enqueue(_envelope(0), content, new_queue_id())

    small_id = asyncio.run(one(b"Subject: small\r\n\r\nhi\r\n"))
    large_id = asyncio.run(one(large))
    # One small message: written on the loop, then one trip to a thread for the rest.
    assert where == [("write_unsynced", True), ("finish_unsynced", False), ("enqueue_many", False)]
    assert store.read(small_id, QueueName.INCOMING).content == b"Subject: small\r\n\r\nhi\r\n"
    assert store.read(large_id, QueueName.INCOMING).content == large


def test_a_batch_of_several_is_named_on_the_loop_between_two_syncs_in_a_thread(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Naming several files is many system calls: on the loop, not against it for the GIL."""
    store, writer, where = _recorded_writer(tmp_path, monkeypatch)

    async def burst() -> list[str]:
        # Enqueued before the writer's task first runs: one batch of three.
        return await asyncio.gather(
            *(writer.enqueue(_envelope(n), b"m%d\r\n" % n, new_queue_id()) for n in range(3))
        )

    ids = asyncio.run(burst())
    assert writer.batches == 1
    assert where == [
        ("write_unsynced", True),
        ("sync_unsynced", False),
        ("publish_synced", True),
        ("sync_incoming", False),
    ]
    assert [store.read(i, QueueName.INCOMING).content for i in ids] == [
        b"m0\r\n",
        b"m1\r\n",
        b"m2\r\n",
    ]
