r"""Message content on the wire: CRLF lines, dot-stuffing for DATA, chunks for BDAT.

Every line ending becomes CRLF before anything else (RFC 5321 section 2.3.8: a bare CR
or LF is not a line ending in SMTP, and a bare LF on the wire is what SMTP smuggling,
CVE-2023-51764, feeds on): ``\r\n`` stays, and a lone ``\n`` or ``\r`` becomes
``\r\n``. Content that does not end with CRLF gets one, so the end of data is
unambiguous. The message size of RFC 1870 (MAIL FROM ``SIZE=``) is the size of that
normalised content: CRLFs counted, the stuffed dots and the final dot not.

DATA (section 4.5.2): a line that starts with "." gets a second one, and
``.\r\n`` ends the data. BDAT (RFC 3030): the normalised octets as they are, in
chunks, the last one marked ``LAST``; empty content is ``BDAT 0 LAST``.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass

__all__ = [
    "CHUNK_SIZE",
    "StreamedContent",
    "bdat_chunks",
    "dot_stuff",
    "dot_stuff_stream",
    "has_8bit",
    "normalise",
]

# RFC 3030 sets no chunk size; 64 KiB keeps each BDAT command's octets in few TCP
# segments without holding the whole message in one command.
CHUNK_SIZE = 65536

_LINE_END = re.compile(rb"\r\n|\r|\n")


@dataclass(frozen=True)
class StreamedContent:
    """A message too large to hold in memory, read a piece at a time as it is sent.

    ``pieces()`` starts a new read of the content each time (the driver's file).
    ``size`` is the octet count as stored, what MAIL FROM SIZE= announces (Postfix
    announces its queue file's count too); ``eight_bit`` is whether any octet has
    the high bit set, which the driver found by reading it once. Streamed content
    always goes with DATA, never BDAT (Postfix's client does not use BDAT either).
    """

    size: int
    eight_bit: bool
    pieces: Callable[[], Iterable[bytes]]


def normalise(content: bytes) -> bytes:
    """Every line ending CRLF, and a final CRLF unless the content is empty."""
    text = _crlf(content)
    if text and not text.endswith(b"\r\n"):
        text += b"\r\n"
    return text


def _crlf(content: bytes) -> bytes:
    """Every line ending CRLF (no final one added)."""
    if content.count(b"\n") == content.count(b"\r") == content.count(b"\r\n"):
        return content  # already CRLF throughout (queued content is): no regex pass
    return _LINE_END.sub(b"\r\n", content)


def has_8bit(content: bytes) -> bool:
    """Whether any octet has the high bit set (RFC 6152: needs BODY=8BITMIME)."""
    return not content.isascii()


def dot_stuff(normalised: bytes) -> bytes:
    """The DATA stream after 354: stuffed lines, then the terminating dot line."""
    stuffed = normalised.replace(b"\r\n.", b"\r\n..")
    if stuffed.startswith(b"."):
        stuffed = b"." + stuffed
    return stuffed + b".\r\n"


def bdat_chunks(normalised: bytes, chunk_size: int = CHUNK_SIZE) -> list[bytes]:
    """Each BDAT command with its octets, ready for the wire; the last says LAST."""
    if chunk_size < 1:
        raise ValueError("chunk size must be positive")
    pieces = [normalised[i : i + chunk_size] for i in range(0, len(normalised), chunk_size)]
    if not pieces:
        pieces = [b""]
    last = len(pieces) - 1
    return [
        f"BDAT {len(piece)}{' LAST' if i == last else ''}\r\n".encode("ascii") + piece
        for i, piece in enumerate(pieces)
    ]


def dot_stuff_stream(pieces: Iterable[bytes]) -> Iterator[bytes]:
    """:func:`dot_stuff` of :func:`normalise` of the joined pieces, a piece at a time."""
    carry = b""  # a CR that may be the first half of a CRLF split between pieces
    line_start = True
    wrote = False
    for piece in pieces:
        data = carry + piece if carry else piece
        carry = b"\r" if data.endswith(b"\r") else b""
        text = _crlf(data[:-1] if carry else data)
        if not text:
            continue
        stuffed = text.replace(b"\r\n.", b"\r\n..")
        if line_start and stuffed.startswith(b"."):
            stuffed = b"." + stuffed
        line_start = stuffed.endswith(b"\r\n")
        wrote = True
        yield stuffed
    if carry:
        line_start, wrote = True, True
        yield b"\r\n"
    yield (b"\r\n" if wrote and not line_start else b"") + b".\r\n"
