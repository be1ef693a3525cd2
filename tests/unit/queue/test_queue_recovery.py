"""QueueStore.recover(): startup after a stop or a crash."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from mailseal.queue.envelope import Envelope, Recipient
from mailseal.queue.store import TEMP_PREFIX, QueueName, QueueStore


def _envelope(count: int = 2) -> Envelope:
    rcpts = tuple(Recipient(f"r{i}@example.net", f"r{i}@example.net") for i in range(count))
    return Envelope("s@example.org", rcpts, time.time())


@pytest.fixture
def store(tmp_path: Path) -> QueueStore:
    queue = QueueStore(tmp_path / "queue", fsync=False)
    queue.create()
    return queue


def _truncate(path: Path, keep: int) -> None:
    path.write_bytes(path.read_bytes()[:keep])


def test_recover_sorts_out_a_crashed_queue(store: QueueStore) -> None:
    incoming = store.directory / QueueName.INCOMING
    good_in = store.enqueue(_envelope(), b"good incoming\r\n")
    torn_in = store.enqueue(_envelope(), b"torn incoming\r\n")
    _truncate(store.path(torn_in, QueueName.INCOMING), 30)
    good_active = store.enqueue(_envelope(), b"good active\r\n")
    store.move(good_active, QueueName.INCOMING, QueueName.ACTIVE)
    store.mark_done(good_active, QueueName.ACTIVE, 1)
    bad_active = store.enqueue(_envelope(), b"bad active\r\n")
    store.move(bad_active, QueueName.INCOMING, QueueName.ACTIVE)
    with store.path(bad_active, QueueName.ACTIVE).open("ab") as file:
        file.write(b"junk\n")
    deferred = store.enqueue(_envelope(), b"deferred\r\n")
    store.defer(deferred, QueueName.INCOMING, {0: "later"}, time.time() + 600)
    leftover = f"{TEMP_PREFIX}0000000000AB"
    (incoming / leftover).write_bytes(b"MAILSEAL-QUEUE 1 half a message")

    report = store.recover()

    assert report.removed_temp == (leftover,)
    assert report.from_incoming == (good_in,)
    assert set(report.resumed) == {good_in, good_active}
    assert {(q.queue_id, q.queue) for q in report.quarantined} == {
        (torn_in, QueueName.INCOMING),
        (bad_active, QueueName.ACTIVE),
    }
    assert all(q.reason for q in report.quarantined)
    text = next(q.log_text for q in report.quarantined if q.queue_id == bad_active)
    assert text == f'saving corrupt file "{bad_active}" from queue "active" to queue "corrupt"'
    assert os.listdir(incoming) == []
    assert sorted(store.list(QueueName.CORRUPT)) == sorted([torn_in, bad_active])
    assert store.list(QueueName.DEFERRED) == [deferred]
    # Delivery resumes where it stopped: recipient 1 is not delivered again.
    assert store.read(good_active, QueueName.ACTIVE).pending == (0,)


def test_recover_on_a_clean_queue_does_nothing(store: QueueStore) -> None:
    report = store.recover()
    assert report.removed_temp == report.from_incoming == report.resumed == ()
    assert report.quarantined == ()


_WRITER = textwrap.dedent(
    """
    import sys, time
    from pathlib import Path
    from mailseal.queue.envelope import Envelope, Recipient
    from mailseal.queue.store import QueueStore

    store = QueueStore(Path(sys.argv[1]))
    envelope = Envelope("s@example.org", (Recipient("r@example.net", "r@example.net"),), 0.0)
    content = b"x" * 200_000 + b"\\r\\n"
    while True:
        queue_id = store.enqueue(envelope, content)
        print(queue_id, flush=True)  # the "250": only now is the message acknowledged
    """
)


def test_kill_during_enqueue_loses_no_acknowledged_message(tmp_path: Path) -> None:
    store = QueueStore(tmp_path / "queue")
    store.create()
    src = Path(__file__).resolve().parents[3] / "src"
    writer = subprocess.Popen(
        [sys.executable, "-c", _WRITER, str(store.directory)],
        stdout=subprocess.PIPE,
        env={**os.environ, "PYTHONPATH": str(src)},
    )
    assert writer.stdout is not None
    acknowledged = [writer.stdout.readline().decode().strip() for _ in range(5)]
    writer.send_signal(signal.SIGKILL)
    acknowledged += writer.stdout.read().decode().split()
    writer.wait()

    report = store.recover()

    assert report.quarantined == ()
    assert set(acknowledged) <= set(report.resumed)
    assert os.listdir(store.directory / QueueName.INCOMING) == []
    for queue_id in acknowledged:
        assert store.read(queue_id, QueueName.ACTIVE).content.endswith(b"x\r\n")
