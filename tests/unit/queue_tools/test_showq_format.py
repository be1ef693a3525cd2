"""postqueue -p / -j formatting and postsuper's report, against Postfix's showq_compat.c."""

import io
import json
import os
import select
import time
from collections.abc import Iterator

import pytest

from mailseal.cli.postsuper import Progress, summary_lines
from mailseal.queue.admin import Action
from mailseal.services.showq import (
    QueuedRecipient,
    QueueEntry,
    entry_from_json,
    format_json,
    format_mailq,
    reason_line,
)

HEADER = "-Queue ID-  --Size-- ----Arrival Time---- -Sender/Recipient-------\n"
INDENT = " " * 41


@pytest.fixture(autouse=True)
def utc(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv("TZ", "UTC")
    time.tzset()
    yield
    monkeypatch.undo()
    time.tzset()


def entry(queue: str = "deferred", *recipients: QueuedRecipient, size: int = 500) -> QueueEntry:
    return QueueEntry(
        queue_name=queue,
        queue_id="4A1B2C3D4E5",
        arrival_time=1_700_000_000,  # Tue Nov 14 22:13:20 2023 UTC
        message_size=size,
        sender="alice@example.test",
        recipients=recipients or (QueuedRecipient("bob@example.net"),),
    )


def test_empty_queue() -> None:
    assert format_mailq([]) == "Mail queue is empty\n"
    assert format_json([]) == ""


def test_one_message_layout_and_singular_trailer() -> None:
    text = format_mailq([entry()])
    assert text == (
        HEADER
        + "4A1B2C3D4E5     500 Tue Nov 14 22:13:20  alice@example.test\n"
        + INDENT
        + "bob@example.net\n"
        + "\n-- 0 Kbytes in 1 Request.\n"
    )


@pytest.mark.parametrize(("queue", "marker"), [("active", "*"), ("hold", "!"), ("incoming", "")])
def test_queue_markers(queue: str, marker: str) -> None:
    first = format_mailq([entry(queue)]).splitlines()[1]
    assert first.startswith(f"4A1B2C3D4E5{marker} ")
    assert first.endswith("Tue Nov 14 22:13:20  alice@example.test")


def test_blank_line_between_messages_and_plural_trailer() -> None:
    text = format_mailq([entry(size=2048), entry("hold", size=1023)])
    blocks = text.split("\n\n")
    assert len(blocks) == 3
    assert blocks[-1] == "-- 2 Kbytes in 2 Requests.\n"  # (2048 + 1023) // 1024


def test_short_reason_is_right_aligned_to_column_78() -> None:
    line = reason_line("connect to mx.example.net[192.0.2.1]:25: Connection refused")
    assert line.endswith(")\n")
    assert len(line) == 79  # 78 columns and the newline
    assert line.lstrip().startswith("(connect")


def test_long_reason_is_not_padded_or_folded() -> None:
    reason = "host mx.example.net[192.0.2.1] said: 450 4.7.1 " + "x" * 80 + " (in reply to RCPT)"
    assert reason_line(reason) == f"({reason})\n"


def test_reason_once_per_run_and_reason_unavailable() -> None:
    same = "connect to mx.example.net[192.0.2.1]:25: Connection refused"
    text = format_mailq(
        [
            entry(
                "deferred",
                QueuedRecipient("a@example.net", same),
                QueuedRecipient("b@example.net", same),
                QueuedRecipient("c@example.net"),
                QueuedRecipient("d@example.net", same),
            )
        ]
    )
    lines = text.splitlines()[2:-2]
    assert lines == [
        reason_line(same).rstrip("\n"),
        INDENT + "a@example.net",
        INDENT + "b@example.net",
        " " * 58 + "(reason unavailable)",
        INDENT + "c@example.net",
        reason_line(same).rstrip("\n"),
        INDENT + "d@example.net",
    ]


def test_no_reason_line_when_no_recipient_has_one() -> None:
    assert "(" not in format_mailq([entry()])


def test_forced_expire_marker() -> None:
    expired = QueueEntry("deferred", "4A1B2C3D4E5", 0, 1, "MAILER-DAEMON", (), forced_expire=True)
    assert format_mailq([expired]).splitlines()[1].startswith("4A1B2C3D4E5# ")


def test_json_line_exactly_as_postfix() -> None:
    item = entry(
        "deferred",
        QueuedRecipient("bob@example.net", "connect to x: Connection refused"),
        QueuedRecipient("carol@example.net"),
    )
    assert format_json([item]) == (
        '{"queue_name": "deferred", "queue_id": "4A1B2C3D4E5", "arrival_time": 1700000000, '
        '"message_size": 500, "forced_expire": false, "sender": "alice@example.test", '
        '"recipients": [{"address": "bob@example.net", "delay_reason": '
        '"connect to x: Connection refused"}, {"address": "carol@example.net"}]}\n'
    )


def test_json_round_trip_and_rejection() -> None:
    item = entry("hold", QueuedRecipient("bob@example.net", "why"))
    assert entry_from_json(json.loads(format_json([item]))) == item
    with pytest.raises(ValueError, match="malformed queue entry"):
        entry_from_json({"queue_name": "hold"})
    with pytest.raises(ValueError, match="malformed queue entry"):
        entry_from_json({**item.to_json(), "arrival_time": "yesterday"})


def test_postsuper_summary_singular_plural_and_order() -> None:
    counts = {Action.DELETE: 3, Action.HOLD: 1, Action.RELEASE: 0, Action.REQUEUE: 2}
    assert summary_lines(counts) == [
        "Requeued: 2 messages",
        "Deleted: 3 messages",
        "Placed on hold: 1 message",
    ]
    assert summary_lines({Action.RELEASE: 1}) == ["Released from hold: 1 message"]
    assert summary_lines(dict.fromkeys(Action, 0)) == []


def read_pty(fd: int, until: str, timeout: float = 5.0) -> str:
    """What the terminal got, read until ``until`` shows (a pty hands it out in pieces)."""
    text = ""
    deadline = time.monotonic() + timeout
    while until not in text and time.monotonic() < deadline:
        ready, _, _ = select.select([fd], [], [], 0.1)
        if ready:
            text += os.read(fd, 4096).decode()
    return text


def test_progress_bar_on_a_terminal() -> None:
    master, slave = os.openpty()
    try:
        with os.fdopen(slave, "w", closefd=False) as stream:
            progress = Progress(250, stream)
            progress.advance(100)
            progress.advance(150)
            progress.finish()
        drawn = read_pty(master, until="250/250")
    finally:
        os.close(master)
        os.close(slave)
    assert "\r[############                  ] 100/250" in drawn
    assert "\r[##############################] 250/250" in drawn


def test_no_progress_bar_off_a_terminal_or_for_few_messages() -> None:
    stream = io.StringIO()
    progress = Progress(1000, stream)
    progress.advance(1000)
    progress.finish()
    assert stream.getvalue() == ""
    master, slave = os.openpty()
    try:
        with os.fdopen(slave, "w", closefd=False) as tty:
            few = Progress(100, tty)
            few.advance(100)
            few.finish()
            assert not few.shown
    finally:
        os.close(master)
        os.close(slave)
