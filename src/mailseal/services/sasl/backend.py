"""The interface every SASL server backend implements (smtpd_sasl_type), RFC 4954.

The SMTP side owns the AUTH command, the base64 coding of RFC 4954 section 4 and the
replies; a backend sees raw bytes and answers each client response with one
``SaslResult``. Postfix's reply shapes (smtpd_sasl_glue.c), which the caller renders:

- ``Continue(challenge)``: ``334 base64(challenge)``;
- ``Accepted(username)``: ``235 2.7.0 Authentication successful``;
- ``Rejected(reason, ...)``: ``535 5.7.8 Error: authentication failed: <reason>``, or,
  when ``temporary`` (backend unreachable, protocol error),
  ``454 4.7.0 Temporary authentication failure: <reason>``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

__all__ = [
    "Accepted",
    "Continue",
    "Rejected",
    "SaslBackend",
    "SaslExchange",
    "SaslPeer",
    "SaslResult",
]


@dataclass(frozen=True)
class Continue:
    """The exchange goes on: send ``334 base64(challenge)`` and wait for the response."""

    challenge: bytes


@dataclass(frozen=True)
class Accepted:
    """Authentication succeeded as ``username`` (the name the backend vouches for)."""

    username: str


@dataclass(frozen=True)
class Rejected:
    """Authentication failed.

    ``reason`` is the text for the reply and the log; ``username`` is the name the
    backend saw, if any (for the log's ``sasl_username=``); ``temporary`` marks a
    failure of the backend rather than of the client's credentials (454, not 535).
    """

    reason: str
    username: str | None
    temporary: bool = False


SaslResult = Continue | Accepted | Rejected


@dataclass(frozen=True)
class SaslPeer:
    """What a backend may know about the SMTP session that authenticates."""

    service: str  # smtpd_sasl_service ("smtp")
    local_addr: str
    local_port: int
    remote_addr: str
    remote_port: int
    tls: bool  # the session is encrypted (Dovecot's "secured")


class SaslExchange(Protocol):
    """One authentication attempt with one mechanism."""

    async def step(self, response: bytes | None) -> SaslResult:
        """Feed the next client response; return what to answer.

        The first call carries the initial response of the AUTH line (``None`` when
        there is none, ``b""`` for ``=``); each later call one client response line.
        Bytes are raw: base64 is done by the SMTP core. After an ``Accepted`` or a
        ``Rejected`` the exchange is over.
        """
        ...

    def close(self) -> None:
        """Abandon the exchange (client aborted with ``*`` or disconnected); idempotent."""
        ...


class SaslBackend(Protocol):
    """A source of SASL mechanisms and exchanges, shared by all sessions of a service."""

    async def mechanisms(self) -> tuple[str, ...]:
        """The upper-case mechanism names to advertise in EHLO (may be empty)."""
        ...

    def exchange(self, mechanism: str, peer: SaslPeer) -> SaslExchange:
        """Start an exchange for ``mechanism`` (nothing is sent until the first step)."""
        ...

    async def aclose(self) -> None:
        """Release the backend's resources (connections, files)."""
        ...
