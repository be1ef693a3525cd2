"""What the SMTP client core tells its driver: one event per server reply that matters.

Each operation of :class:`mailseal.smtp.client.SmtpClient` ends in the events listed
below; every event is a frozen value holding the server's ``Reply`` (RFC 5321 section
4.2). ``ProtocolError`` and ``Closed`` end the session: after either, the client is
closed and ignores further input.

Which events a ``send_mail`` yields, the same with or without PIPELINING:

- SIZE limit of the server smaller than the message: ``MessageSent`` only, made
  locally (``local=True``), nothing sent (Postfix's smtp_xfer() does the same).
- MAIL refused: ``MailFrom`` only (the replies to pipelined RCPT/DATA are read and
  dropped, as Postfix does: "all recipients are dead already").
- every RCPT refused: ``MailFrom``, one ``RcptTo`` per recipient; no content is sent.
- DATA refused: ``MailFrom``, ``RcptTo``..., ``DataStart`` with the refusal.
- sent: ``MailFrom``, ``RcptTo``..., ``DataStart`` (354; DATA only), ``MessageSent``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from mailseal.smtp.client_capabilities import Capabilities
from mailseal.smtp.reply import Reply

__all__ = [
    "Auth",
    "ClientEvent",
    "Closed",
    "DataStart",
    "Greeting",
    "Helo",
    "MailFrom",
    "MessageSent",
    "Noop",
    "ProtocolError",
    "Quit",
    "RcptTo",
    "Rset",
    "SmtpClientUsageError",
    "StartTls",
]


class SmtpClientUsageError(Exception):
    """The driver used the client wrongly (an operation while another runs, bad input)."""


@dataclass(frozen=True)
class Greeting:
    """The server's greeting: 220, or 554/421 when it will not talk (RFC 5321 3.1)."""

    reply: Reply


@dataclass(frozen=True)
class Helo:
    """The EHLO reply (``extended``), or the HELO reply after EHLO was refused.

    ``refused_ehlo`` keeps the EHLO refusal that made the client fall back to HELO.
    After HELO the capabilities are empty.
    """

    reply: Reply
    extended: bool
    capabilities: Capabilities
    refused_ehlo: Reply | None = None


@dataclass(frozen=True)
class StartTls:
    """The STARTTLS reply. On 220 the driver handshakes and calls ``tls_established()``."""

    reply: Reply


@dataclass(frozen=True)
class Auth:
    """The end of an AUTH exchange (RFC 4954): 235, a refusal, or the reply to our ``*``.

    ``complete`` is the mechanism's ``done`` after a 2xx: a SCRAM client sets it only
    once the server proved it knows the password, so 235 with ``complete=False`` must
    not count as authenticated. ``error`` says why the client cancelled with ``*``
    (a challenge that is not base64, the mechanism refusing it, a protocol loop).
    """

    reply: Reply
    mechanism: str
    complete: bool
    error: str = ""

    @property
    def is_success(self) -> bool:
        """235-class reply, nothing cancelled, the mechanism satisfied."""
        return self.reply.code // 100 == 2 and self.complete and not self.error


@dataclass(frozen=True)
class MailFrom:
    """The reply to MAIL FROM."""

    reply: Reply


@dataclass(frozen=True)
class RcptTo:
    """The reply to the RCPT TO of ``recipients[index]``."""

    index: int
    recipient: str
    reply: Reply


@dataclass(frozen=True)
class DataStart:
    """The reply to DATA: 354, or the refusal (only when a recipient was accepted)."""

    reply: Reply


@dataclass(frozen=True)
class MessageSent:
    """The final reply after the dot or after ``BDAT n LAST`` (or the first failed chunk).

    ``local`` marks a reply the client made itself without sending anything (message
    larger than the server's SIZE limit; RFC 1870 section 6).
    """

    reply: Reply
    local: bool = False


@dataclass(frozen=True)
class Rset:
    """The reply to RSET."""

    reply: Reply


@dataclass(frozen=True)
class Noop:
    """The reply to NOOP."""

    reply: Reply


@dataclass(frozen=True)
class Quit:
    """The reply to QUIT; the server closes next."""

    reply: Reply


@dataclass(frozen=True)
class ProtocolError:
    """The server broke the protocol; the client is closed. The driver drops the connection.

    Log as ``f"{reason} from {server}: {detail}"``, which gives Postfix's
    ``non-SMTP response from host[addr]: ...``.
    """

    reason: str
    detail: str = ""


@dataclass(frozen=True)
class Closed:
    """The session is over: the server closed (``reply`` None) or announced it with 421.

    After a 421 the event of the pending command comes first and carries the 421 too;
    any command that was pipelined behind it gets no event.
    """

    reply: Reply | None = field(default=None)


ClientEvent = (
    Greeting
    | Helo
    | StartTls
    | Auth
    | MailFrom
    | RcptTo
    | DataStart
    | MessageSent
    | Rset
    | Noop
    | Quit
    | ProtocolError
    | Closed
)
