"""What Postfix's cleanup(8) does to a message on its way into the queue (the parts we do).

- the ``Received:`` header smtpd(8) writes first (RFC 5321 section 4.4), with
  the ``with`` protocol of RFC 3848 (SMTP, ESMTP, ESMTPS, ESMTPA, ESMTPSA) and,
  when TLS was used, Postfix's ``(using ...)`` comments with
  ``smtpd_tls_received_header = yes``, else RFC 8314's ``tls`` clause;
- the ``Message-ID:`` value cleanup logs (``ID: message-id=<...>``).

Reads: myhostname, mail_name, smtpd_tls_received_header.
"""

from __future__ import annotations

import email.utils
import functools
import re
from dataclasses import dataclass

__all__ = ["ReceivedFacts", "find_message_id", "received_header", "with_protocol"]

# Header folding: Postfix folds Received: with a TAB on each continuation line.
_FOLD = "\r\n\t"
_MESSAGE_ID = re.compile(
    rb"^message-id:[ \t]*([^\r\n]*(?:\r\n[ \t][^\r\n]*)*)", re.IGNORECASE | re.MULTILINE
)


def with_protocol(*, extended: bool, tls: bool, authenticated: bool) -> str:
    """RFC 3848's ``with`` keyword: ESMTP plus S for TLS and A for AUTH; SMTP after HELO."""
    if not extended:
        return "SMTP"
    return "ESMTP" + ("S" if tls else "") + ("A" if authenticated else "")


@dataclass(frozen=True)
class ReceivedFacts:
    helo: str
    client_name: str
    client_addr: str
    by_host: str
    product: str
    protocol: str
    queue_id: str
    recipients: tuple[str, ...]
    when: float
    tls_comments: tuple[str, ...] = ()  # Postfix style: "(using TLSv1.3 with cipher ...)"
    tls_clause: str = ""  # RFC 8314 section 4.3: "tls TLS_AES_256_GCM_SHA384"
    sasl_username: str = ""  # only with smtpd_sasl_authenticated_header = yes


def received_header(facts: ReceivedFacts) -> bytes:
    """The whole ``Received:`` header, CRLF-terminated, folded as Postfix folds it.

    ``for <rcpt>`` appears only for a single recipient (Postfix does the same,
    so a message to many does not reveal the list).
    """
    name = facts.client_name or "unknown"
    address = f"IPv6:{facts.client_addr}" if ":" in facts.client_addr else facts.client_addr
    parts = [f"Received: from {facts.helo or name} ({name} [{address}])", *facts.tls_comments]
    if facts.sasl_username:
        parts.append(f"(Authenticated sender: {facts.sasl_username})")
    parts.append(f"by {facts.by_host} ({facts.product}) with {facts.protocol} id {facts.queue_id}")
    if len(facts.recipients) == 1:
        parts.append(f"for <{facts.recipients[0]}>")
    if facts.tls_clause:  # an Additional-Registered-Clause: after For (RFC 5321 4.4)
        parts.append(facts.tls_clause)
    parts[-1] += "; " + _received_date(int(facts.when))
    return (_FOLD.join(parts) + "\r\n").encode("utf-8", "surrogateescape")


@functools.lru_cache(maxsize=4)
def _received_date(when: int) -> str:
    """The RFC 5322 date of a Received: header; one second's messages share it."""
    return email.utils.formatdate(when, localtime=True)


def find_message_id(content: bytes) -> str:
    """The Message-ID header value of the header block, unfolded; "" when there is none."""
    end = content.find(b"\r\n\r\n")
    headers = content if end < 0 else content[: end + 2]
    if not headers.startswith(b"\r\n"):
        headers = b"\r\n" + headers
    match = _MESSAGE_ID.search(headers)
    if match is None:
        return ""
    value = re.sub(rb"\r\n[ \t]+", b" ", match.group(1)).strip()
    return value.decode("utf-8", "replace")
