"""Text pieces of a delivery status notification: lines, dates, folding, the returned original.

Helpers for :mod:`mailseal.services.dsn`, kept apart so that module holds the policy
(who is told what) and this one the bytes. Everything here is pure and line-oriented:
the result is joined with CRLF (RFC 5322 section 2.1), no bare CR or LF ever leaves.

- Postfix's ``line_wrap`` for the human-readable lines: wrapped at column 79,
  continuation lines indented by 4 blanks (``bounce_notify_util.c``); the fields of
  message/delivery-status are folded at the same column but with the one blank they
  were cut at, so unfolding (RFC 5322 section 2.2.3) gives the exact text back;
- control characters in texts that came from the network (remote replies, addresses) are
  masked with ``?`` the way Postfix's ``printable()`` masks them in the bounce log;
- the returned original: line ends made CRLF, headers only (Postfix's ``is_header`` loop)
  when ``RET=HDRS``, for delay and success notices, or past ``bounce_size_limit``.
"""

from __future__ import annotations

import email.utils
import re
from datetime import UTC, datetime

from mailseal.smtp.addresses import xtext_decode

__all__ = [
    "crlf_lines",
    "dsn_date",
    "fold",
    "header_block",
    "mask",
    "typed",
    "unique_boundary",
    "wrap",
    "xtext_text",
]

# bounce_notify_util.c: LENGTH 79, INDENT 4.
WRAP_WIDTH = 79
WRAP_INDENT = 4
# RFC 5322 field name: printable ASCII but ":", blanks allowed before the colon.
_FIELD = re.compile(rb"[\x21-\x39\x3b-\x7e]+[ \t]*:")
# RFC 2046 section 5.1.1 bchars, less the blank (Postfix's boundaries never have one).
_NOT_BCHAR = re.compile(r"[^0-9A-Za-z'()+_,\-./:=?]")
_LINE_END = re.compile(rb"\r\n|\r|\n")
# "smtp; 550 ...", "X-Postfix; ...", "dns; host": a value that already names its type.
_TYPED = re.compile(r"[A-Za-z][A-Za-z0-9-]*;[ \t]")


def mask(text: str) -> str:
    """Replace control characters (and undecodable bytes) with ``?``; tabs become blanks.

    The texts come from remote servers and envelopes; a CR or LF in them would otherwise
    end a header line or forge a MIME boundary.
    """
    out = []
    for ch in text.replace("\t", " "):
        code = ord(ch)
        bad = code < 0x20 or code == 0x7F or 0xD800 <= code <= 0xDFFF
        out.append("?" if bad else ch)
    return "".join(out)


def typed(value: str, default_type: str) -> str:
    """``type; value`` (RFC 3464 section 2.1.2 typed fields) unless it already is typed."""
    value = mask(value).strip()
    if _TYPED.match(value):
        return value
    return f"{default_type}; {value}"


def xtext_text(value: str) -> str:
    """An RFC 3461 xtext value (ENVID, ORCPT) as the text a DSN shows (section 4)."""
    return mask(xtext_decode(value)).strip()


def dsn_date(when: datetime) -> str:
    """RFC 5322 date-time for Arrival-Date:, Date: and friends; a naive value is UTC."""
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return email.utils.format_datetime(when)


def wrap(text: str, width: int = WRAP_WIDTH, indent: int = WRAP_INDENT) -> list[str]:
    """Postfix's ``line_wrap``: break at blanks before ``width``, indent what follows.

    A word longer than the line is kept whole (a reply text must not be cut inside a
    word); continuation lines always start with blanks, so a wrapped header field is a
    folded one.
    """
    current = text.strip()
    prefix = ""
    lines: list[str] = []
    while len(prefix) + len(current) > width:
        limit = width - len(prefix)
        cut = current.rfind(" ", 0, limit + 1)
        if cut <= 0:
            cut = current.find(" ", limit)
            if cut < 0:
                break
        lines.append(prefix + current[:cut].rstrip())
        current = current[cut:].lstrip()
        prefix = " " * indent
    lines.append(prefix + current)
    return lines


def fold(field: str, width: int = WRAP_WIDTH) -> list[str]:
    """An RFC 5322 section 2.2.3 fold of a header field: unfolding gives ``field`` back.

    Like :func:`wrap`, but each continuation starts with the blank it was cut at, so a
    Diagnostic-Code reads the same to a program after unfolding.
    """
    current = field.strip()
    lines: list[str] = []
    while len(current) > width:
        cut = current.rfind(" ", 1, width + 1)
        if cut <= 0:
            cut = current.find(" ", width)
            if cut < 0:
                break
        lines.append(current[:cut])
        current = current[cut:]
    lines.append(current)
    return lines


def crlf_lines(content: bytes) -> list[bytes]:
    """The lines of ``content`` without their ends, whatever the ends were (CRLF, LF, CR).

    A final line end does not make an extra empty line.
    """
    lines = _LINE_END.split(content)
    if lines and lines[-1] == b"":
        lines.pop()
    return lines


def header_block(lines: list[bytes]) -> list[bytes]:
    """The primary header lines: stop at the first line that is no header nor folding."""
    kept: list[bytes] = []
    for line in lines:
        folded = line[:1] in (b" ", b"\t") and bool(kept)
        if not folded and _FIELD.match(line) is None:
            break
        kept.append(line)
    return kept


def unique_boundary(base: str, content: bytes) -> str:
    """Postfix's boundary ``queue_id.time/host``, made longer until ``content`` lacks it.

    Characters RFC 2046 section 5.1.1 does not allow in a boundary become ``_`` and the
    base is cut so the result stays within its 70 characters.
    """
    base = _NOT_BCHAR.sub("_", base)[:60]
    boundary = base
    serial = 0
    while b"--" + boundary.encode("ascii") in content:
        serial += 1
        boundary = f"{base}.{serial}"
    return boundary
