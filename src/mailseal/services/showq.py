"""showq(8) and postqueue's two report formats: what the queue holds, per message.

:func:`scan_queue` reads the queue files into :class:`QueueEntry` values (the
running master does it for the control socket; ``postqueue`` does it itself
when the mail system is down). :func:`format_mailq` renders them as Postfix's
``postqueue -p`` / ``mailq`` (``postqueue/showq_compat.c``, short queue ID
layout), :func:`format_json` as ``postqueue -j`` (``showq_json.c``, Postfix 3.1+).

Layout facts taken from Postfix: queues are walked active, incoming, deferred,
hold; the ID is followed by ``*`` (active) or ``!`` (hold); the arrival time is
``asctime()`` cut to 20 characters; the null sender is shown as
``MAILER-DAEMON`` (``empty_address_recipient``'s default); only recipients not yet
delivered are listed; a deferral reason is printed in parentheses, right-aligned
to column 78 when it fits and unpadded when it does not (Postfix never folds
it), once for a run of recipients that share it, and ``(reason unavailable)``
when a recipient without a reason follows one with a reason; the trailer counts
message sizes in Kbytes (integer division) and requests.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from mailseal.queue.store import CorruptQueueFile, QueueName, QueueStore

__all__ = [
    "SHOWQ_QUEUES",
    "QueueEntry",
    "QueuedRecipient",
    "asctime",
    "entry_from_json",
    "format_json",
    "format_mailq",
    "format_message",
    "read_entry",
    "reason_line",
    "scan_queue",
]

SHOWQ_QUEUES = (QueueName.ACTIVE, QueueName.INCOMING, QueueName.DEFERRED, QueueName.HOLD)
EMPTY_SENDER = "MAILER-DAEMON"
_MARKERS = {QueueName.ACTIVE.value: "*", QueueName.HOLD.value: "!"}
_STRING_FORMAT = "{:<11} {:>7} {:<20} {}\n"
_HEADINGS = ("-Queue ID-", "--Size--", "----Arrival Time----", "-Sender/Recipient-------")
_DAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
# showq_compat.c pads a reason to end at column 78: "%*s(%s)" with 76 - strlen(reason).
_REASON_WIDTH = 76


@dataclass(frozen=True)
class QueuedRecipient:
    """A recipient still to be delivered, with its last deferral reason ("" if none)."""

    address: str
    delay_reason: str = ""


@dataclass(frozen=True)
class QueueEntry:
    """One message as showq reports it (the fields of ``postqueue -j``)."""

    queue_name: str
    queue_id: str
    arrival_time: int
    message_size: int
    sender: str
    recipients: tuple[QueuedRecipient, ...]
    forced_expire: bool = False

    def to_json(self) -> dict[str, Any]:
        """The ``postqueue -j`` object, keys in Postfix's order."""
        recipients: list[dict[str, str]] = []
        for rcpt in self.recipients:
            item = {"address": rcpt.address}
            if rcpt.delay_reason:
                item["delay_reason"] = rcpt.delay_reason
            recipients.append(item)
        return {
            "queue_name": self.queue_name,
            "queue_id": self.queue_id,
            "arrival_time": self.arrival_time,
            "message_size": self.message_size,
            "forced_expire": self.forced_expire,
            "sender": self.sender,
            "recipients": recipients,
        }


def entry_from_json(data: Mapping[str, Any]) -> QueueEntry:
    """Parse :meth:`QueueEntry.to_json` output (from the control socket); ValueError if bad."""
    try:
        recipients = tuple(
            QueuedRecipient(_text(r["address"]), _text(r.get("delay_reason", "")))
            for r in data["recipients"]
        )
        entry = QueueEntry(
            queue_name=_text(data["queue_name"]),
            queue_id=_text(data["queue_id"]),
            arrival_time=_number(data["arrival_time"]),
            message_size=_number(data["message_size"]),
            sender=_text(data["sender"]),
            recipients=recipients,
            forced_expire=bool(data.get("forced_expire", False)),
        )
    except (KeyError, TypeError, AttributeError) as error:
        raise ValueError(f"malformed queue entry: {error}") from None
    return entry


def _text(value: object) -> str:
    if not isinstance(value, str):
        raise TypeError("expected a string")
    return value


def _number(value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError("expected an integer")
    return value


# -- reading the queue -------------------------------------------------------------------


def scan_queue(store: QueueStore) -> list[QueueEntry]:
    """Every readable message, queue by queue in showq's order.

    A file that moves or vanishes while we look is skipped, as showq skips it; a
    corrupt one is left for the queue manager to quarantine.
    """
    entries: list[QueueEntry] = []
    for queue in SHOWQ_QUEUES:
        try:
            queue_ids = store.list(queue)
        except FileNotFoundError:
            continue
        for queue_id in queue_ids:
            entry = read_entry(store, queue_id, queue)
            if entry is not None:
                entries.append(entry)
    return entries


def read_entry(store: QueueStore, queue_id: str, queue: QueueName) -> QueueEntry | None:
    """One message's entry, or None if it is gone or unreadable."""
    try:
        message = store.read(queue_id, queue)
    except (FileNotFoundError, CorruptQueueFile):
        return None
    recipients = tuple(
        QueuedRecipient(
            message.envelope.recipients[index].address,
            message.defer_reasons.get(index, ""),
        )
        for index in message.pending
    )
    return QueueEntry(
        queue_name=queue.value,
        queue_id=queue_id,
        arrival_time=int(message.envelope.arrival_time),
        message_size=message.size,
        sender=message.envelope.sender or EMPTY_SENDER,
        recipients=recipients,
    )


# -- postqueue -p ----------------------------------------------------------------------


def asctime(timestamp: float) -> str:
    """C's ``asctime(localtime(t))`` without its newline: ``Mon Jan  5 09:03:07 2026``."""
    tm = time.localtime(timestamp)
    return (
        f"{_DAYS[tm.tm_wday]} {_MONTHS[tm.tm_mon - 1]} {tm.tm_mday:2d} "
        f"{tm.tm_hour:02d}:{tm.tm_min:02d}:{tm.tm_sec:02d} {tm.tm_year}"
    )


def reason_line(reason: str) -> str:
    """``(reason)`` right-aligned to column 78, or unpadded when it is longer."""
    padding = max(_REASON_WIDTH - len(reason), 0)
    return f"{'':{padding}}({reason})\n"


def format_message(entry: QueueEntry) -> str:
    """One message's block of ``postqueue -p`` (no separating blank line)."""
    id_status = entry.queue_id + _MARKERS.get(entry.queue_name, "")
    if entry.forced_expire:
        id_status += "#"
    # "%-11s %7ld %20.20s %s": asctime() ends in "\n", so the cut keeps a trailing space.
    arrival = (asctime(entry.arrival_time) + "\n")[:20]
    lines = [f"{id_status:<11} {entry.message_size:>7} {arrival:>20} {entry.sender}\n"]
    saved = ""
    for rcpt in entry.recipients:
        if rcpt.delay_reason != saved:
            saved = rcpt.delay_reason
            lines.append(reason_line(saved or "reason unavailable"))
        lines.append(_STRING_FORMAT.format("", "", "", rcpt.address))
    return "".join(lines)


def format_mailq(entries: Sequence[QueueEntry]) -> str:
    """The whole ``postqueue -p`` / ``mailq`` report."""
    if not entries:
        return "Mail queue is empty\n"
    parts = [_STRING_FORMAT.format(*_HEADINGS)]
    for number, entry in enumerate(entries):
        if number:
            parts.append("\n")
        parts.append(format_message(entry))
    total = sum(entry.message_size for entry in entries)
    count = len(entries)
    parts.append(f"\n-- {total // 1024} Kbytes in {count} Request{'' if count == 1 else 's'}.\n")
    return "".join(parts)


def format_json(entries: Iterable[QueueEntry]) -> str:
    """``postqueue -j``: one JSON object per line (Postfix's ``", "`` / ``": "`` spacing)."""
    return "".join(json.dumps(entry.to_json(), ensure_ascii=False) + "\n" for entry in entries)
