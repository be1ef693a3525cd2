r"""The byte layout of one queue file, and its parser.

A queue file is written once, whole, by :meth:`QueueStore.enqueue`, and afterwards only
grows by small appended records (a recipient delivered, a recipient deferred)::

    MAILSEAL-QUEUE 1 <envelope length> <content length>\n
    <envelope JSON>\n
    <message content, CRLF line ends as received>\n
    END <length of everything above> <CRC-32 of everything above, 8 hex digits>\n
    D <recipient index> <crc>\n                       one per delivered recipient
    R <recipient index> <JSON string> <crc>\n         one per deferral reason
    W 0 <crc>\n                                        the delay warning was sent

Every appended record carries the CRC-32 of its own text, so a record garbled on disk
is caught. A record that a crash cut short (no final newline, or a tail of zeros that
the file system left behind) is ignored: the operation that wrote it never returned, so
nobody relied on it. Anything else that does not parse makes the file corrupt; the
caller moves such a file to ``corrupt/`` as Postfix does.
"""

from __future__ import annotations

import json
import re
import zlib
from collections.abc import Callable
from dataclasses import dataclass

from mailseal.queue.envelope import Envelope

__all__ = [
    "HEAD_MAX",
    "MAGIC",
    "MAX_REASON",
    "ParsedQueueFile",
    "QueueFileError",
    "done_record",
    "encode_head",
    "encode_tail",
    "encode_tail_from_crc",
    "envelope_location",
    "parse_envelope",
    "parse_queue_file",
    "parse_queue_file_parts",
    "reason_record",
    "warned_record",
]

MAGIC = b"MAILSEAL-QUEUE 1"
# A deferral reason longer than this is cut: Postfix's own reasons are single lines
# of server replies, and a bounded record keeps the tail repair in the store bounded.
MAX_REASON = 2000
_HEAD = re.compile(rb"MAILSEAL-QUEUE 1 (\d{1,12}) (\d{1,15})\n")
_END = re.compile(rb"END (\d{1,16}) ([0-9a-f]{8})\n")
_DONE = re.compile(rb"D (\d{1,9}) ([0-9a-f]{8})")
_WARNED = re.compile(rb"W (0) ([0-9a-f]{8})")
_REASON = re.compile(rb"R (\d{1,9}) (\"[\x20-\x7e]*\") ([0-9a-f]{8})")
HEAD_MAX = 64
_PRINTABLE = re.compile(rb"[\x20-\x7e]*")


class QueueFileError(ValueError):
    """The bytes are not a well-formed queue file; the message says what is wrong."""


@dataclass(frozen=True)
class ParsedQueueFile:
    """What a queue file holds."""

    envelope: Envelope
    content: bytes
    done: frozenset[int]
    defer_reasons: dict[int, str]
    warned: bool = False  # delay_warning_time: the sender was told once


def _crc(data: bytes | memoryview, start: int = 0) -> int:
    return zlib.crc32(data, start) & 0xFFFFFFFF


def encode_head(envelope: Envelope, content_length: int) -> bytes:
    """The bytes before the content: header line and envelope."""
    env = envelope.to_json().encode("ascii")
    return b"%s %d %d\n%s\n" % (MAGIC, len(env), content_length, env)


def encode_tail(head: bytes, content: bytes) -> bytes:
    """The bytes after the content: its newline and the end marker."""
    return encode_tail_from_crc(head, len(content), _crc(content, _crc(head)))


def encode_tail_from_crc(head: bytes, content_length: int, crc: int) -> bytes:
    """:func:`encode_tail` given the CRC-32 of ``head + content`` (for spooled content)."""
    core_len = len(head) + content_length + 1
    return b"\nEND %d %08x\n" % (core_len, _crc(b"\n", crc))


def done_record(index: int) -> bytes:
    """The record saying recipient ``index`` was delivered (or bounced: it is finished)."""
    body = b"D %d" % index
    return b"%s %08x\n" % (body, _crc(body))


def warned_record() -> bytes:
    """The record saying the delay warning for this message was sent (Postfix's warn time)."""
    body = b"W 0"
    return b"%s %08x\n" % (body, _crc(body))


def reason_record(index: int, reason: str) -> bytes:
    """The record keeping the latest deferral reason of recipient ``index``."""
    text = json.dumps(reason[:MAX_REASON], ensure_ascii=True).encode("ascii")
    body = b"R %d %s" % (index, text)
    return b"%s %08x\n" % (body, _crc(body))


def envelope_location(first_bytes: bytes) -> tuple[int, int]:
    """Offset and length of the envelope, from the first :data:`HEAD_MAX` bytes of a file."""
    start, length, _, _ = _layout(first_bytes)
    return start, length


def parse_envelope(data: bytes | memoryview) -> Envelope:
    """Parse the envelope section; raise :class:`QueueFileError` if it is not one."""
    return _envelope(data)


def _envelope(data: bytes | memoryview) -> Envelope:
    try:
        return Envelope.from_json(bytes(data))
    except (ValueError, TypeError, UnicodeDecodeError) as exc:
        raise QueueFileError(f"bad envelope: {exc}") from None


def parse_queue_file(data: bytes) -> ParsedQueueFile:
    """Parse a whole queue file; raise :class:`QueueFileError` if it is torn or garbled."""
    view = memoryview(data)
    env_start, env_len, content_start, content_len = _layout(data[:HEAD_MAX])
    core_len = content_start + content_len + 1
    if len(data) < core_len:
        raise QueueFileError(f"queue file truncated at {len(data)} of {core_len} bytes")
    if data[content_start - 1] != 0x0A or data[core_len - 1] != 0x0A:
        raise QueueFileError("queue file sections out of place")
    records = _after_end(data[core_len:], core_len, _crc(view[:core_len]))
    envelope = _envelope(view[env_start : env_start + env_len])
    done, reasons, warned = _parse_records(records, len(envelope.recipients))
    content = data[content_start : content_start + content_len]
    return ParsedQueueFile(envelope, content, done, reasons, warned)


def parse_queue_file_parts(
    read: Callable[[int, int], bytes], size: int, chunk: int
) -> tuple[ParsedQueueFile, int, int]:
    """Parse a queue file of ``size`` bytes through ``read(offset, length)``, ``chunk`` at a time.

    For files too large to read whole: the content is checked but not kept. Returns
    the parsed file (with empty ``content``) and the content's offset and length.
    """
    env_start, env_len, content_start, content_len = _layout(read(0, HEAD_MAX))
    core_len = content_start + content_len + 1
    if size < core_len:
        raise QueueFileError(f"queue file truncated at {size} of {core_len} bytes")
    crc = 0
    for start in range(0, core_len, chunk):
        piece = read(start, min(chunk, core_len - start))
        if (
            start <= content_start - 1 < start + len(piece)
            and piece[content_start - 1 - start] != 0x0A
        ):
            raise QueueFileError("queue file sections out of place")
        crc = _crc(piece, crc)
    if not piece.endswith(b"\n"):
        raise QueueFileError("queue file sections out of place")
    records = _after_end(read(core_len, size - core_len), core_len, crc)
    envelope = _envelope(read(env_start, env_len))
    done, reasons, warned = _parse_records(records, len(envelope.recipients))
    return ParsedQueueFile(envelope, b"", done, reasons, warned), content_start, content_len


def _layout(first: bytes) -> tuple[int, int, int, int]:
    """Envelope offset and length, content offset and length, from the header line."""
    match = _HEAD.match(first[:HEAD_MAX])
    if match is None:
        raise QueueFileError("bad queue file header")
    env_len, content_len = int(match[1]), int(match[2])
    return match.end(), env_len, match.end() + env_len + 1, content_len


def _after_end(rest: bytes, core_len: int, crc: int) -> bytes:
    """Check the end marker at the start of ``rest``; return the records after it."""
    end = _END.match(rest)
    if end is None:
        raise QueueFileError("queue file has no end marker")
    if int(end[1]) != core_len or int(end[2], 16) != crc:
        raise QueueFileError("queue file checksum mismatch")
    return rest[end.end() :]


def _parse_records(region: bytes, count: int) -> tuple[frozenset[int], dict[int, str], bool]:
    lines = region.split(b"\n")
    fragment = lines.pop()  # empty when the region ends with a complete record
    if fragment and not _is_torn_record(fragment):
        raise QueueFileError("garbage after the last queue file record")
    done: set[int] = set()
    reasons: dict[int, str] = {}
    warned = False
    for line in lines:
        warned_match = _WARNED.fullmatch(line)
        if warned_match is not None and int(line[-8:], 16) == _crc(line[:-9]):
            warned = True
            continue
        # The CRC covers the record text before its last field (" " + 8 hex digits).
        done_match = _DONE.fullmatch(line)
        reason_match = None if done_match else _REASON.fullmatch(line)
        match = done_match or reason_match
        if match is None or int(line[-8:], 16) != _crc(line[:-9]) or int(match[1]) >= count:
            raise QueueFileError("bad queue file record")
        if reason_match is None:
            done.add(int(match[1]))
        else:
            reasons[int(match[1])] = _reason_text(match[2])
    return frozenset(done), reasons, warned


def _reason_text(quoted: bytes) -> str:
    try:
        text = json.loads(quoted)
    except ValueError:
        raise QueueFileError("bad queue file record") from None
    if not isinstance(text, str):
        raise QueueFileError("bad queue file record")
    return text


def _is_torn_record(fragment: bytes) -> bool:
    """Could this unterminated tail be a record that a crash cut short?"""
    text = fragment.rstrip(b"\0")
    if not text:
        return True  # the file system extended the file but lost the data
    starts_like_record = text[:2] in (b"D ", b"R ") or text in (b"D", b"R")
    return starts_like_record and _PRINTABLE.fullmatch(text) is not None
