"""The fsync discipline: what is synced, in which order, relative to the renames.

``os.fsync`` is wrapped (not replaced) to record each call; this is the one place the
tests patch anything, because a crash between two system calls cannot be staged here.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from mailseal.queue.envelope import Envelope, Recipient
from mailseal.queue.ids import new_queue_id
from mailseal.queue.qfile import done_record
from mailseal.queue.store import QueueName, QueueStore


@dataclass(frozen=True)
class Sync:
    path: Path
    is_dir: bool
    snapshot: object


Recorder = Callable[[Callable[[Path], object]], list[Sync]]


@pytest.fixture
def store(tmp_path: Path) -> QueueStore:
    queue = QueueStore(tmp_path / "queue")
    queue.create()
    return queue


@pytest.fixture
def record_fsyncs(monkeypatch: pytest.MonkeyPatch) -> Recorder:
    """Wrap os.fsync; each call records its path and ``snapshot(path)`` taken right then."""

    def start(snapshot: Callable[[Path], object]) -> list[Sync]:
        calls: list[Sync] = []
        real_fsync = os.fsync

        def fsync(fd: int) -> None:
            path = Path(os.readlink(f"/proc/self/fd/{fd}"))
            calls.append(Sync(path, path.is_dir(), snapshot(path)))
            real_fsync(fd)

        monkeypatch.setattr(os, "fsync", fsync)
        return calls

    return start


def _envelope() -> Envelope:
    return Envelope("s@example.org", (Recipient("r@example.net", "r@example.net"),), time.time())


def _listing(path: Path) -> object:
    return sorted(os.listdir(path)) if path.is_dir() else path.read_bytes()


def test_enqueue_syncs_file_then_directory_after_rename(
    store: QueueStore, record_fsyncs: Recorder
) -> None:
    calls = record_fsyncs(_listing)
    queue_id = store.enqueue(_envelope(), b"data\r\n")
    incoming = store.directory / QueueName.INCOMING
    assert [call.is_dir for call in calls] == [False, True]
    file_sync, dir_sync = calls
    # The file is synced under its temporary name, before it has its queue ID name...
    assert file_sync.path.parent == incoming
    assert file_sync.path.name != queue_id
    assert file_sync.snapshot == (incoming / queue_id).read_bytes()
    # ...and the directory is synced once the queue ID name has replaced the temporary one.
    assert dir_sync.path == incoming
    assert dir_sync.snapshot == [queue_id]


def _record_fsyncs_and_syncfs(record: Recorder, monkeypatch: pytest.MonkeyPatch) -> list[Sync]:
    """Record fsyncs as ``record_fsyncs`` does, and each syncfs with the listing it saw."""
    import mailseal.queue.store as store_module

    calls = record(_listing)
    real_syncfs = getattr(store_module, "sync_filesystem")  # noqa: B009 - patched below

    def syncfs(path: Path) -> None:
        calls.append(Sync(Path(path), True, ("syncfs", _listing(Path(path)))))
        real_syncfs(path)

    monkeypatch.setattr(store_module, "sync_filesystem", syncfs)
    return calls


def _assert_a_syncfs_of_temporary_files(call: Sync, count: int) -> None:
    """``call`` was a syncfs, and the directory held ``count`` files, none named yet."""
    snapshot = call.snapshot
    assert isinstance(snapshot, tuple)
    kind, before = snapshot
    assert kind == "syncfs"
    assert len(before) == count
    assert all(name.startswith("tmp-") for name in before)


def test_enqueue_many_is_one_filesystem_sync_then_one_directory_sync(
    store: QueueStore, record_fsyncs: Recorder, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Group commit: the files' data in one syncfs before any name is published."""
    calls = _record_fsyncs_and_syncfs(record_fsyncs, monkeypatch)
    ids = store.enqueue_many([(_envelope(), b"%d\r\n" % i) for i in range(4)])
    assert [call.is_dir for call in calls] == [True, True]
    # All four written, none named yet: only temporary files when the data is synced.
    _assert_a_syncfs_of_temporary_files(calls[0], 4)
    assert calls[-1].snapshot == sorted(ids)


def test_enqueue_many_of_one_message_fsyncs_the_file(
    store: QueueStore, record_fsyncs: Recorder
) -> None:
    calls = record_fsyncs(_listing)
    ids = store.enqueue_many([(_envelope(), b"one\r\n")])
    assert [call.is_dir for call in calls] == [False, True]
    assert calls[-1].snapshot == ids


def test_move_syncs_both_directories_after_rename(
    store: QueueStore, record_fsyncs: Recorder
) -> None:
    queue_id = store.enqueue(_envelope(), b"data\r\n")
    calls = record_fsyncs(_listing)
    store.move(queue_id, QueueName.INCOMING, QueueName.ACTIVE)
    assert [(call.path.name, call.snapshot) for call in calls] == [
        ("active", [queue_id]),
        ("incoming", []),
    ]


def test_mark_done_syncs_the_file_with_the_record(
    store: QueueStore, record_fsyncs: Recorder
) -> None:
    queue_id = store.enqueue(_envelope(), b"data\r\n")
    calls = record_fsyncs(_listing)
    store.mark_done(queue_id, QueueName.INCOMING, 0)
    assert len(calls) == 1
    assert calls[0].path == store.path(queue_id, QueueName.INCOMING)
    assert isinstance(calls[0].snapshot, bytes)
    assert calls[0].snapshot.endswith(done_record(0))


def test_defer_syncs_mtime_and_reasons_before_the_move(
    store: QueueStore, record_fsyncs: Recorder
) -> None:
    queue_id = store.enqueue(_envelope(), b"data\r\n")
    calls = record_fsyncs(lambda path: (path.stat().st_mtime, _listing(path)))
    store.defer(queue_id, QueueName.INCOMING, {0: "later"}, 2_000_000_000.0)
    assert [(call.path.name, call.is_dir) for call in calls] == [
        (queue_id, False),
        ("deferred", True),
        ("incoming", True),
    ]
    assert isinstance(calls[0].snapshot, tuple)
    assert calls[0].snapshot[0] == 2_000_000_000.0


def test_remove_syncs_the_directory(store: QueueStore, record_fsyncs: Recorder) -> None:
    queue_id = store.enqueue(_envelope(), b"data\r\n")
    calls = record_fsyncs(_listing)
    store.remove(queue_id, QueueName.INCOMING)
    assert [(call.path.name, call.snapshot) for call in calls] == [("incoming", [])]


def test_fsync_false_syncs_nothing(tmp_path: Path, record_fsyncs: Recorder) -> None:
    calls = record_fsyncs(_listing)
    store = QueueStore(tmp_path / "q", fsync=False)
    store.create()
    queue_id = store.enqueue(_envelope(), b"x")
    store.mark_done(queue_id, QueueName.INCOMING, 0)
    store.move(queue_id, QueueName.INCOMING, QueueName.ACTIVE)
    assert calls == []


def test_defer_marks_done_and_keeps_reasons_in_one_synced_append(
    store: QueueStore, record_fsyncs: Recorder
) -> None:
    rcpts = tuple(Recipient(f"r{i}@example.net", f"r{i}@example.net") for i in range(3))
    queue_id = store.enqueue(Envelope("s@example.org", rcpts, time.time()), b"data\r\n")
    store.move(queue_id, QueueName.INCOMING, QueueName.ACTIVE, durable=False)
    calls = record_fsyncs(_listing)
    store.defer(queue_id, QueueName.ACTIVE, {1: "try later"}, time.time() + 60, done=[0, 2])
    files = [call for call in calls if not call.is_dir]
    assert len(files) == 1  # the file once, then the two directories of the move
    message = store.read(queue_id, QueueName.DEFERRED)
    assert message.done == frozenset({0, 2})
    assert dict(message.defer_reasons) == {1: "try later"}
    assert message.pending == (1,)


def test_undurable_moves_and_removals_sync_nothing(
    store: QueueStore, record_fsyncs: Recorder
) -> None:
    queue_id = store.enqueue(_envelope(), b"data\r\n")
    calls = record_fsyncs(_listing)
    store.move(queue_id, QueueName.INCOMING, QueueName.ACTIVE, durable=False)
    store.remove(queue_id, QueueName.ACTIVE, durable=False)
    assert calls == []
    assert store.list(QueueName.ACTIVE) == []


def test_the_split_group_commit_syncs_data_before_names_and_names_last(
    store: QueueStore, record_fsyncs: Recorder, monkeypatch: pytest.MonkeyPatch
) -> None:
    """write_unsynced, sync_unsynced, publish_synced, sync_incoming: enqueue_many's order."""
    calls = _record_fsyncs_and_syncfs(record_fsyncs, monkeypatch)
    wanted = [new_queue_id() for _ in range(3)]
    written = store.write_unsynced([(_envelope(), b"%d\r\n" % i) for i in range(3)], wanted)
    assert calls == []  # nothing synced while the files are written
    store.sync_unsynced(written)
    _assert_a_syncfs_of_temporary_files(calls[0], 3)
    ids = store.publish_synced(written)
    assert len(calls) == 1  # the names are not synced yet: the caller does it next
    store.sync_incoming(ids)
    assert calls[-1].path == store.directory / QueueName.INCOMING
    assert calls[-1].snapshot == sorted(ids) == sorted(wanted)
    contents = [store.read(i, QueueName.INCOMING).content for i in ids]
    assert contents == [b"0\r\n", b"1\r\n", b"2\r\n"]


def test_the_split_commit_of_one_message_fsyncs_the_file(
    store: QueueStore, record_fsyncs: Recorder
) -> None:
    calls = record_fsyncs(_listing)
    written = store.write_unsynced([(_envelope(), b"one\r\n")], [new_queue_id()])
    store.sync_unsynced(written)
    ids = store.publish_synced(written)
    store.sync_incoming(ids)
    assert [call.is_dir for call in calls] == [False, True]
    assert calls[0].path == written[0][1]
    assert calls[0].snapshot == (store.directory / QueueName.INCOMING / ids[0]).read_bytes()
    assert calls[-1].snapshot == ids


def test_finish_unsynced_of_one_message_fsyncs_the_file_then_its_name(
    store: QueueStore, record_fsyncs: Recorder
) -> None:
    """The queue writer's one trip to a thread for a batch of one: the same syncs, in order."""
    calls = record_fsyncs(_listing)
    written = store.write_unsynced([(_envelope(), b"one\r\n")], [new_queue_id()])
    assert calls == []
    ids = store.finish_unsynced(written)
    assert [call.is_dir for call in calls] == [False, True]
    assert calls[0].path == written[0][1]
    assert calls[0].snapshot == (store.directory / QueueName.INCOMING / ids[0]).read_bytes()
    assert calls[-1].snapshot == ids
