"""What the SMTP server core tells its driver: requests to answer and notices to log.

A *request* (``MailRequest``, ``RcptRequest``, ``DataRequest``, ``MessageComplete``,
``VrfyRequest``, ``AuthRequest``, ``AuthResponse``) stops the core until the driver
calls ``SmtpServer.answer()`` (or, for AUTH, ``auth_challenge``/``auth_success``); the
answer decides the reply. A *notice* needs no answer: the core has already queued its
reply, if any. Every event is a frozen value.

ESMTP parameters are kept as the client sent them, with upper-cased keywords: SIZE and
BODY (RFC 1870, RFC 6152), SMTPUTF8 (RFC 6531, value ""), RET and ENVID (RFC 3461,
ENVID still xtext-encoded), AUTH (RFC 4954, xtext), NOTIFY and ORCPT (RFC 3461).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from mailseal.smtp.content import Spill

__all__ = [
    "AuthAborted",
    "AuthRequest",
    "AuthResponse",
    "ConnectionClosing",
    "DataRequest",
    "Envelope",
    "EnvelopeRecipient",
    "Event",
    "Hello",
    "MailRequest",
    "MessageComplete",
    "ProtocolViolation",
    "RcptRequest",
    "Request",
    "Reset",
    "SmtpUsageError",
    "StartTlsRequest",
    "VrfyRequest",
]


class SmtpUsageError(Exception):
    """The driver used the core wrongly (answer with nothing pending, greet twice...)."""


@dataclass(frozen=True)
class EnvelopeRecipient:
    """A recipient the driver accepted, with its RCPT parameters (NOTIFY, ORCPT)."""

    address: str
    params: Mapping[str, str]


@dataclass(frozen=True)
class Envelope:
    """The envelope of a complete message (RFC 5321 section 2.3.1).

    ``sender`` is "" for the null reverse-path ``<>``. Addresses are in internal form:
    source routes removed and a quoted local part unquoted, as Postfix stores them.
    """

    sender: str
    sender_params: Mapping[str, str]
    recipients: tuple[EnvelopeRecipient, ...]
    helo: str
    extended: bool
    chunking: bool
    size: int


@dataclass(frozen=True)
class Hello:
    """Notice: EHLO (``extended``) or HELO, already answered 250 by the core."""

    name: str
    extended: bool


@dataclass(frozen=True)
class MailRequest:
    """Request: MAIL FROM. Answer ``None`` for ``250 2.1.0 Ok`` or a rejecting reply."""

    sender: str
    params: Mapping[str, str]


@dataclass(frozen=True)
class RcptRequest:
    """Request: RCPT TO. Answer ``None`` for ``250 2.1.5 Ok`` or a rejecting reply."""

    recipient: str
    params: Mapping[str, str]


@dataclass(frozen=True)
class DataRequest:
    """Request: DATA, or the first BDAT of a message, is about to start.

    ``None`` lets it proceed (354 for DATA; for BDAT the chunk is read); a negative
    reply refuses it (for BDAT the chunk is still read and thrown away).
    """

    chunking: bool


@dataclass(frozen=True)
class MessageComplete:
    """Request: the message is in. Answer ``queued(id)`` once it is safely stored, or an error.

    ``content`` is dot-unstuffed and every line ends in CRLF. When the message was too
    large to keep in memory, ``spill`` (the driver's own object, see
    :class:`~mailseal.smtp.content.Spill`) holds all of it and ``content`` only its
    first :data:`~mailseal.smtp.content.HEAD_KEEP` bytes.
    """

    envelope: Envelope
    content: bytes
    spill: Spill | None = None


@dataclass(frozen=True)
class VrfyRequest:
    """Request: VRFY (only when enabled). ``None`` answers ``252 2.0.0 ARG``."""

    argument: str


@dataclass(frozen=True)
class AuthRequest:
    """Request: ``AUTH <mechanism> [initial-response]`` (RFC 4954 section 4).

    ``mechanism`` is upper-case and one of the offered ones; ``response`` is the decoded
    initial response, ``None`` when the line had none and ``b""`` for "=". Answer with
    ``SmtpServer.auth_challenge(data)`` to go on, ``SmtpServer.auth_success(user)``, or
    ``answer(reply)`` with a failure reply (535, 454...).
    """

    mechanism: str
    response: bytes | None


@dataclass(frozen=True)
class AuthResponse:
    """Request: the client's (decoded) answer to the last challenge; answered as AuthRequest."""

    mechanism: str
    response: bytes


@dataclass(frozen=True)
class AuthAborted:
    """Notice: an AUTH exchange ended in the core, its reply already queued.

    ``reason`` is "" when the client cancelled with "*" (Postfix logs "SASL X
    authentication aborted"); otherwise Postfix's failure reason ("Invalid
    authentication mechanism", "Invalid base64 data in continued response", "SASL
    response limit exceeded"), logged as an authentication failure. A driver that
    started a backend exchange for it abandons that exchange now.
    """

    mechanism: str
    reason: str


@dataclass(frozen=True)
class StartTlsRequest:
    """Notice: ``220 2.0.0 Ready to start TLS`` is queued.

    ``discarded`` holds the plaintext bytes that followed the STARTTLS line, thrown
    away (CVE-2011-0411). The driver flushes the reply, performs the handshake and
    calls ``tls_established()``, or closes the connection when the handshake fails.
    """

    discarded: bytes


@dataclass(frozen=True)
class Reset:
    """Notice: the mail transaction was reset (RSET, or EHLO/HELO during a transaction)."""


@dataclass(frozen=True)
class ProtocolViolation:
    """Notice for the log; any reply is already queued.

    Log it as ``f"{reason} from {client}: {detail}"``, which gives Postfix's
    ``improper command pipelining after DATA from host[addr]: ...``.
    """

    reason: str
    detail: str


@dataclass(frozen=True)
class ConnectionClosing:
    """Notice: the final reply (if any) is queued; flush it and close. Later calls are inert.

    ``reason`` is Postfix's: "quit", "lost connection", "timeout", "too many errors"...
    """

    reason: str


Request = (
    MailRequest
    | RcptRequest
    | DataRequest
    | MessageComplete
    | VrfyRequest
    | AuthRequest
    | AuthResponse
)
Event = (
    Hello
    | AuthRequest
    | AuthResponse
    | AuthAborted
    | MailRequest
    | RcptRequest
    | DataRequest
    | MessageComplete
    | VrfyRequest
    | StartTlsRequest
    | Reset
    | ProtocolViolation
    | ConnectionClosing
)
