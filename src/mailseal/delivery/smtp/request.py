"""What the queue manager hands the SMTP client, and what it gets back per recipient.

``RecipientResult`` carries what Postfix's smtp(8) reports to the queue manager
for each recipient (``deliver_completed``/``defer_append``/``bounce_append``):
the status, the RFC 3463 code, the text between the parentheses of
``status=...`` (Postfix's words), ``relay=``, the set-up and transmission parts
of ``delays=``, and the Remote-MTA and Diagnostic-Code of an RFC 3464 report.
"""

from __future__ import annotations

from dataclasses import dataclass

from mailseal.queue.envelope import Envelope, Recipient
from mailseal.smtp.client_content import StreamedContent

__all__ = ["RecipientResult", "SmtpRequest"]


@dataclass(frozen=True)
class SmtpRequest:
    """One delivery: a message and some of its recipients, all for one next hop."""

    queue_id: str
    nexthop: str  # "example.com", "example.com:2525", "[mx.example.com]", "[192.0.2.1]:587"
    sender: str  # "" is the null sender
    recipients: tuple[Recipient, ...]
    # The queued message, CRLF line ends; a large one is read from its queue file.
    content: bytes | StreamedContent
    envelope: Envelope

    @property
    def size(self) -> int:
        """The message size in octets (as queued)."""
        return len(self.content) if isinstance(self.content, bytes) else self.content.size

    @property
    def headers(self) -> bytes:
        """The header block (up to the empty line), CRLF line ends.

        Of a streamed message, only its first piece is read (the headers are there).
        """
        content = self.content
        text = content if isinstance(content, bytes) else next(iter(content.pieces()), b"")
        end = text.find(b"\r\n\r\n")
        return text if end < 0 else text[:end]


@dataclass(frozen=True)
class RecipientResult:
    """The outcome for one recipient of a :class:`SmtpRequest`."""

    recipient: Recipient
    status: str  # "sent" | "deferred" | "bounced"
    dsn: str  # "2.0.0", "4.4.1", "5.1.1"...
    reason: str  # Postfix's text, e.g. "250 2.0.0 Ok: queued as 4XyZ"
    relay: str  # "mx.example[192.0.2.1]:25" or "none"
    setup: float  # seconds: DNS, connect, greeting, TLS, AUTH (delays= third field)
    transmission: float  # seconds: the mail transaction (delays= fourth field)
    remote_mta: str | None  # the server's host name, for the DSN Remote-MTA
    diagnostic: str | None  # the server's reply, for the DSN Diagnostic-Code
    tls_level: str  # the TLS security level in effect ("none", "may", "encrypt"...)
    number: int  # the smtp "process" number the lines of this delivery were logged under
    conn_use: int = 0  # the session's use count (log_adhoc.c's conn_use=, from 2 on)
