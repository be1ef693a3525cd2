r"""Message content framing: the DATA stream (RFC 5321 sections 3.3, 4.5.2) and BDAT chunks.

End of data is recognised *only* as CRLF "." CRLF, where the CRLF before the dot ends a
line that itself ended in CRLF. ``\\n.\\r\\n``, ``\\r\\n.\\n``, ``\\n.\\n`` and
``\\r.\\r\\n`` never end the data, whatever ``smtpd_forbid_bare_newline`` says
(CVE-2023-51764, SMTP smuggling); on this point mailseal is stricter than Postfix's
``no``, which keeps the pre-3.9 behaviour.

Line endings, per ``smtpd_forbid_bare_newline``:

- ``normalize`` (Postfix 3.9 default; ``yes`` is its alias) and ``no``: a bare LF ends a
  line and is stored as CRLF, so a bare LF never reaches the stored content.
- ``reject``: a bare LF is a protocol error (the caller replies and disconnects).

A bare CR is not a line ending in SMTP (RFC 5321 section 2.3.8) and Postfix keeps it as
a character of the line; so do we: it is stored as is and never ends the data.

Dot-unstuffing removes the first "." of every line (section 4.5.2). Lines may be of any
length: a line with no LF yet is taken in pieces once it passes ``PARTIAL_LINE``.
Past ``message_size_limit`` the content is counted but no longer kept, and reading goes
on to the final dot so the session stays in step (Postfix's cleanup does the same).
A NUL byte marks the message for rejection: it is never stored silently.

Content past ``SPILL_THRESHOLD`` bytes is not kept in memory: the sink hands it to a
:class:`Spill` that the driver supplies (a file in the queue's incoming/ directory),
so a 50 MB message costs the server a read buffer, not 50 MB. The first
``HEAD_KEEP`` bytes stay in memory either way, for the header checks after DATA.

BDAT chunks (RFC 3030) are raw octets: no dot handling, but the same newline rules,
with a CR that ends one chunk paired with an LF that starts the next.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from enum import Enum
from typing import Protocol

__all__ = [
    "HEAD_KEEP",
    "PARTIAL_LINE",
    "SPILL_THRESHOLD",
    "ChunkAssembler",
    "ChunkReader",
    "ContentSink",
    "DataReader",
    "Outcome",
    "Spill",
    "SpillFactory",
]

# A line without LF longer than this is consumed in pieces instead of buffered whole.
PARTIAL_LINE = 65536
_BARE_LF = re.compile(rb"(?<!\r)\n")
_END_OF_DATA = b"\r\n.\r\n"
# Content beyond this many bytes goes to the driver's Spill instead of memory.
SPILL_THRESHOLD = 256 * 1024
# A spilled message keeps this much of its start in memory (Message-ID:, Received: checks).
HEAD_KEEP = 64 * 1024


class Spill(Protocol):
    """Where a sink puts content that is too large to keep in memory (the driver's file).

    ``write`` must not raise: a failure is remembered by the spill and reported when
    the driver queues the message (a 4xx), so the session stays in step.
    """

    def write(self, data: bytes) -> None: ...

    def discard(self) -> None: ...


SpillFactory = Callable[[], Spill]


class Outcome(Enum):
    """What a reader did with the bytes it was given."""

    NEED_MORE = "need more"
    DONE = "done"
    BARE_LF = "bare LF"


class ContentSink:
    """Collects normalised content: counts every byte, keeps them while within the limit.

    With a ``spill`` factory, content past ``threshold`` bytes goes to the spill it
    makes, and only the first :data:`HEAD_KEEP` bytes stay in :attr:`content`.
    """

    def __init__(
        self,
        size_limit: int,
        spill: SpillFactory | None = None,
        *,
        threshold: int = SPILL_THRESHOLD,
    ) -> None:
        self._limit = size_limit
        # Pieces, joined once at the end: each piece is copied once, not twice.
        self._pieces: list[bytes] = []
        self._kept = 0
        self._make_spill = spill
        self._threshold = threshold
        self.spill: Spill | None = None
        self.size = 0
        self.too_big = False
        self.has_nul = False
        self.ends_with_lf = False

    def add(self, piece: bytes) -> None:
        if not piece:
            return
        self.size += len(piece)
        self.ends_with_lf = piece.endswith(b"\n")
        if b"\x00" in piece:
            self.has_nul = True
            self._drop()
        if self._limit and self.size > self._limit:
            # Keep counting, stop storing: the reply comes at the end (RFC 1870 sec. 6.2).
            self.too_big = True
            self._drop()
        elif self.too_big or self.has_nul:
            return
        elif self.spill is not None:
            self.spill.write(piece)
            if self._kept < HEAD_KEEP:
                self._keep(piece[: HEAD_KEEP - self._kept])
        else:
            self._keep(piece)
            if self._make_spill is not None and self._kept > self._threshold:
                self.spill = self._make_spill()
                kept = b"".join(self._pieces)
                self.spill.write(kept)
                self._pieces = [kept[:HEAD_KEEP]]
                self._kept = len(self._pieces[0])

    def _keep(self, piece: bytes) -> None:
        self._pieces.append(piece)
        self._kept += len(piece)

    def _drop(self) -> None:
        """The content will be refused: free what is kept, in memory and on disk."""
        self._pieces = []
        self._kept = 0
        if self.spill is not None:
            self.spill.discard()
            self.spill = None

    @property
    def content(self) -> bytes:
        """All of the content, or its first :data:`HEAD_KEEP` bytes once it spilled."""
        if len(self._pieces) > 1:
            self._pieces = [b"".join(self._pieces)]
        return self._pieces[0] if self._pieces else b""


def _normalise(prev: bytes, raw: bytes, reject: bool) -> bytes | None:
    """Bare LF -> CRLF, or ``None`` when ``reject`` and ``raw`` holds a bare LF.

    ``prev`` is the raw byte before ``raw``; only a CR there changes anything.
    """
    if raw.count(b"\n") == raw.count(b"\r\n"):
        return raw  # every LF has its CR (the usual case): two C scans, no regex
    lead = prev if prev == b"\r" else b""
    text = lead + raw
    if reject:
        return None if _BARE_LF.search(text) else raw
    return _BARE_LF.sub(b"\r\n", text)[len(lead) :]


class DataReader:
    """Reads the content after ``354`` up to and including the terminating dot."""

    def __init__(self, sink: ContentSink, *, reject_bare_lf: bool, after_crlf: bool) -> None:
        self.sink = sink
        self._reject = reject_bare_lf
        # The last raw bytes consumed: the DATA line's own ending counts, so that
        # "DATA\n.\r\n" is not an end of data either.
        self._tail = b"\r\n" if after_crlf else b"\n"
        self._scanned = 0
        self.raw_size = 0

    def feed(self, buf: bytearray) -> Outcome:
        """Consume what can be consumed from ``buf``; DONE once the final dot is read."""
        # Complete lines are consumed at once, so between calls ``buf`` holds part of one
        # line. Remembering how much of it has no LF keeps a client that trickles a long
        # line byte by byte from costing quadratic time.
        if buf.find(b"\n", self._scanned) < 0:
            self._scanned = len(buf)
            if len(buf) <= PARTIAL_LINE:
                return Outcome.NEED_MORE
        self._scanned = 0
        found, dotted = self._scan(buf)
        if found >= 0:
            end = found + 2 - len(self._tail)
            ok = self._take(_cut(buf, end), dotted)
            del buf[:3]
            self.raw_size += 3
            return Outcome.DONE if ok else Outcome.BARE_LF
        last_lf = buf.rfind(b"\n")
        if last_lf >= 0:
            end = last_lf + 1
        elif len(buf) > PARTIAL_LINE:
            # Keep the last byte back: it may be the CR of a CRLF still in flight.
            end = len(buf) - 1
        else:
            return Outcome.NEED_MORE
        return Outcome.NEED_MORE if self._take(_cut(buf, end), dotted) else Outcome.BARE_LF

    def _scan(self, buf: bytearray) -> tuple[int, bool]:
        """Where CRLF "." CRLF starts in ``tail + buf`` (-1: nowhere), and any dot lines.

        The flag says whether a line inside ``buf`` before that starts with a dot, so
        unstuffing has work to do. One pass for both: the end of data is the first
        LF "." that is also CR LF "." CR LF.
        """
        # A match that starts in the tail ends within the first 4 bytes of buf.
        found = (self._tail + buf[:4]).find(_END_OF_DATA)
        if 0 <= found < len(self._tail):
            return found, False
        dotted = False
        pos = buf.find(b"\n.")
        while pos >= 0:
            if pos >= 1 and buf[pos - 1] == 0x0D and buf[pos + 2 : pos + 4] == b"\r\n":
                return pos - 1 + len(self._tail), dotted
            dotted = True
            pos = buf.find(b"\n.", pos + 2)
        return -1, dotted

    def _take(self, raw: bytes, dotted: bool) -> bool:
        if not raw:
            return True
        prev = self._tail[-1:]
        self._tail = raw[-2:] if len(raw) > 1 else (self._tail + raw)[-2:]
        self.raw_size += len(raw)
        body = raw[1:] if prev == b"\n" and raw.startswith(b".") else raw
        if dotted:
            body = body.replace(b"\n.", b"\n")
        # body[0] is raw[0] or raw[1]; either way only a CR before it matters.
        text = _normalise(prev, body, self._reject)
        if text is None:
            return False
        self.sink.add(text)
        return True


def _cut(buf: bytearray, end: int) -> bytes:
    """Remove and return ``buf[:end]``, copied once."""
    with memoryview(buf) as view:
        region = view[:end].tobytes()
    del buf[:end]
    return region


class ChunkAssembler:
    """Joins the BDAT chunks of one message into a sink, with the newline rules."""

    def __init__(self, sink: ContentSink, *, reject_bare_lf: bool) -> None:
        self.sink = sink
        self._reject = reject_bare_lf
        self._carry_cr = False

    def add(self, piece: bytes) -> bool:
        """Add raw chunk bytes; ``False`` on a bare LF when those are rejected."""
        data = (b"\r" if self._carry_cr else b"") + piece
        # A CR at the end may pair with an LF at the start of the next piece.
        self._carry_cr = data.endswith(b"\r")
        if self._carry_cr:
            data = data[:-1]
        text = _normalise(b"", data, self._reject)
        if text is None:
            return False
        self.sink.add(text)
        return True

    def finish(self) -> None:
        """End of the last chunk: flush a pending CR and end the last line with CRLF."""
        if self._carry_cr:
            self._carry_cr = False
            self.sink.add(b"\r")
        if self.sink.size and not self.sink.ends_with_lf:
            self.sink.add(b"\r\n")


class ChunkReader:
    """Reads exactly ``size`` octets of one BDAT chunk, into an assembler or nowhere."""

    def __init__(self, size: int, assembler: ChunkAssembler | None) -> None:
        self.size = size
        self.remaining = size
        self.assembler = assembler

    def feed(self, buf: bytearray) -> Outcome:
        take = min(self.remaining, len(buf))
        piece = bytes(buf[:take])
        del buf[:take]
        self.remaining -= take
        if self.assembler is not None and not self.assembler.add(piece):
            return Outcome.BARE_LF
        return Outcome.DONE if self.remaining == 0 else Outcome.NEED_MORE
