"""Headers that local delivery prepends, and the Delivered-To: mail-loop check.

Postfix's local(8) and virtual(8) prepend, in this order (``mail_copy.c``)::

    Return-Path: <sender>
    X-Original-To: original recipient      (only when there is one)
    Delivered-To: final recipient

Addresses are in internal (unquoted) form, as the queue keeps them; the local part is
quoted for the header as RFC 5322 requires (Postfix's ``quote_822_local``, 8-bit clean).
A message that already carries ``Delivered-To:`` with the recipient is looping, and
Postfix bounces it with 5.4.6 "mail forwarding loop for ADDRESS" (``delivered_hdr.c``:
only the primary header block is read, addresses compared without case).
"""

from __future__ import annotations

import re
from collections.abc import Iterator

__all__ = [
    "LOOP_DSN",
    "delivery_headers",
    "has_delivered_to",
    "loop_reason",
    "quote_822_local",
]

LOOP_DSN = "5.4.6"
# Postfix stops collecting Delivered-To: addresses after this many (delivered_hdr.c).
_DELIVERED_LIMIT = 1000
# RFC 5322 field name (printable ASCII but ":"), optional blanks before the colon.
_FIELD = re.compile(rb"([\x21-\x39\x3b-\x7e]+)[ \t]*:")
_SPECIALS = frozenset('()<>@,;:\\"[]')


def _is_dot_string(local: str) -> bool:
    if not local or local.startswith(".") or local.endswith(".") or ".." in local:
        return False
    # 8-bit characters are ordinary text (Postfix's QUOTE_FLAG_8BITCLEAN default).
    return not any(c in _SPECIALS or c == " " or ord(c) < 32 or ord(c) == 127 for c in local)


def quote_822_local(address: str) -> str:
    """Quote the local part of ``address`` when it is not an RFC 822 dot-string."""
    start = address.index(":") + 1 if address.startswith("@") and ":" in address else 0
    at = address.rfind("@", start)
    end = len(address) if at < 0 else at
    local = address[start:end]
    if _is_dot_string(local):
        return address
    quoted = "".join("\\" + c if c in '"\\\r' else c for c in local)
    return f'{address[:start]}"{quoted}"{address[end:]}'


def _encode(text: str) -> bytes:
    # Addresses may be UTF-8 (RFC 6531); undecodable bytes were kept as surrogates.
    return text.encode("utf-8", "surrogateescape")


def delivery_headers(
    return_path: str, delivered_to: str, original_to: str | None, *, eol: bytes = b"\n"
) -> bytes:
    """The headers Postfix's local and virtual delivery agents put on top of a message."""
    sender = quote_822_local(return_path) if return_path else ""
    lines = [b"Return-Path: <" + _encode(sender) + b">"]
    if original_to:
        lines.append(b"X-Original-To: " + _encode(quote_822_local(original_to)))
    lines.append(b"Delivered-To: " + _encode(quote_822_local(delivered_to)))
    return b"".join(line + eol for line in lines)


def _header_lines(content: bytes) -> Iterator[bytes]:
    """The lines of the primary header block (continuation lines included)."""
    pos = 0
    while pos < len(content):
        newline = content.find(b"\n", pos)
        end = len(content) if newline < 0 else newline
        line = content[pos:end].removesuffix(b"\r")
        if not line or not (_FIELD.match(line) or line[:1] in b" \t"):
            return
        yield line
        pos = end + 1


def has_delivered_to(content: bytes, address: str) -> bool:
    """Whether the message's header block has ``Delivered-To: address`` (a mail loop)."""
    wanted = quote_822_local(address).lower()
    seen = 0
    for line in _header_lines(content):
        field = _FIELD.match(line)
        if field is None or field[1].lower() != b"delivered-to":
            continue
        value = line[field.end() :].strip(b" \t").decode("utf-8", "surrogateescape")
        if value.lower() == wanted:
            return True
        seen += 1
        if seen >= _DELIVERED_LIMIT:
            break
    return False


def loop_reason(address: str) -> str:
    """Postfix's bounce text for a Delivered-To: loop (DSN :data:`LOOP_DSN`)."""
    return f"mail forwarding loop for {address}"
