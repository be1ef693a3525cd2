"""SMTP AUTH for one smtpd session: the backend exchange, the rate limit, the log lines.

The SMTP core (:mod:`mailseal.smtp.server`) parses AUTH, base64 and "*"; it asks with
``AuthRequest``/``AuthResponse`` and this module answers from the service's SASL backend
(:mod:`mailseal.services.sasl`), as Postfix's smtpd_sasl_glue.c does with its xsasl
plug-ins:

- ``smtpd_client_auth_rate_limit``: AUTH commands per client address and
  ``anvil_rate_time_unit``; past it, "450 4.7.1 Error: too many AUTH commands from ADDR"
  and the warning "AUTH command rate limit exceeded: N from host[addr] for service S"
  (``smtpd_client_event_limit_exceptions`` are exempt);
- a failure is logged as Postfix 3.5+ logs it, the line fail2ban's postfix filter reads:
  ``warning: host[addr]: SASL PLAIN authentication failed: REASON, sasl_username=USER``;
  a client's "*" as ``SASL LOGIN authentication aborted``;
- the mechanisms offered: the backend's, less what ``smtpd_sasl_security_options``
  (``smtpd_sasl_tls_security_options`` once TLS is on) forbid, and none at all for
  ``smtpd_sasl_exceptions_networks``.

Passwords never reach a log line: only the mechanism, the reason and the user name.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass, replace

from mailseal.log import format as fmt
from mailseal.net.connection import Connection
from mailseal.services.anvil import RateCounter
from mailseal.services.networks import NetworkList
from mailseal.services.sasl.backend import (
    Accepted,
    Continue,
    Rejected,
    SaslBackend,
    SaslExchange,
    SaslPeer,
)
from mailseal.smtp import events as ev
from mailseal.smtp import reply as replies
from mailseal.smtp.server import SmtpServer
from mailseal.smtp.settings import ServerSettings

__all__ = ["SaslService", "SessionAuth", "offer_auth", "offered_mechanisms"]

# Mechanism properties, as Cyrus and Dovecot describe theirs (security options of
# postconf(5): noplaintext, noactive, nodictionary, noanonymous, mutual_auth).
_PROPERTIES = {
    "PLAIN": frozenset({"plaintext", "dictionary"}),
    "LOGIN": frozenset({"plaintext", "dictionary"}),
    "SCRAM-SHA-256": frozenset({"dictionary", "mutual_auth"}),
    "SCRAM-SHA-1": frozenset({"dictionary", "mutual_auth"}),
    "CRAM-MD5": frozenset({"dictionary"}),
    "DIGEST-MD5": frozenset({"dictionary", "mutual_auth"}),
    "ANONYMOUS": frozenset({"anonymous"}),
    "EXTERNAL": frozenset({"external"}),
}
_CLOSING: set[asyncio.Task[None]] = set()  # strong references until each close finishes
_FORBIDS = {"noplaintext": "plaintext", "nodictionary": "dictionary", "noanonymous": "anonymous"}


def offered_mechanisms(mechanisms: tuple[str, ...], options: tuple[str, ...]) -> tuple[str, ...]:
    """``mechanisms`` less those the security options forbid; EXTERNAL never (Postfix's filter)."""
    forbidden = {_FORBIDS[o] for o in (w.lower() for w in options) if o in _FORBIDS}
    forbidden.add("external")
    wanted_mutual = "mutual_auth" in (w.lower() for w in options)
    return tuple(
        m
        for m in mechanisms
        if not forbidden & _PROPERTIES.get(m, frozenset())
        and (not wanted_mutual or "mutual_auth" in _PROPERTIES.get(m, frozenset()))
    )


@dataclass(frozen=True)
class SaslService:
    """The SASL part of one smtpd service (``None`` on the service when AUTH is off)."""

    backend: SaslBackend
    service_name: str  # smtpd_sasl_service, for the backend ("smtp")
    security_options: tuple[str, ...]
    tls_security_options: tuple[str, ...]
    exceptions: NetworkList
    rate_limit: int  # smtpd_client_auth_rate_limit; 0 = none
    authenticated_header: bool

    async def mechanisms(self, addr: str, *, tls: bool) -> tuple[str, ...]:
        """What to offer a client at ``addr`` (see the module docstring)."""
        if self.exceptions.matches(addr):
            return ()
        options = self.tls_security_options if tls else self.security_options
        return offered_mechanisms(await self.backend.mechanisms(), options)

    def close_backend(self) -> None:
        """Close the backend (a reload retired the service): in the background if async."""
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return  # no loop: nothing is connected either
        task = loop.create_task(self.backend.aclose())
        _CLOSING.add(task)
        task.add_done_callback(_CLOSING.discard)


class SessionAuth:
    """Answers one session's AUTH requests (see the module docstring)."""

    def __init__(
        self,
        sasl: SaslService,
        *,
        rates: RateCounter,
        rate_exempt: bool,
        service: str,
        host: str,
        peer: SaslPeer,
        warning: Callable[[str], None],
    ) -> None:
        self._sasl = sasl
        self._rates = rates
        self._rate_exempt = rate_exempt
        self._service = service
        self._host = host
        self._peer = peer
        self._warning = warning
        self._exchange: SaslExchange | None = None

    async def handle(self, core: SmtpServer, event: ev.Event) -> None:
        match event:
            case ev.AuthRequest(mechanism=mechanism, response=response):
                refusal = self._rate_refusal()
                if refusal is not None:
                    core.answer(refusal)
                    return
                self.close()
                peer = replace(self._peer, tls=core.tls_active)
                self._exchange = self._sasl.backend.exchange(mechanism, peer)
                await self._step(core, mechanism, response)
            case ev.AuthResponse(mechanism=mechanism, response=response):
                await self._step(core, mechanism, response)
            case ev.AuthAborted(mechanism=mechanism, reason=reason):
                self.close()
                addr = self._peer.remote_addr
                if reason:
                    self._warning(fmt.sasl_failed(self._host, addr, mechanism, reason, None))
                else:
                    self._warning(fmt.sasl_aborted(self._host, addr, mechanism))

    def close(self) -> None:
        """Abandon an exchange in progress (the session ends, or a new one starts)."""
        if self._exchange is not None:
            self._exchange.close()
            self._exchange = None

    def _rate_refusal(self) -> replies.Reply | None:
        limit = self._sasl.rate_limit
        if limit <= 0 or self._rate_exempt:
            return None
        addr = self._peer.remote_addr
        rate = self._rates.hit(f"auth {addr}", time.monotonic())
        if rate <= limit:
            return None
        namaddr = fmt.host_addr(self._host, addr)
        self._warning(
            f"AUTH command rate limit exceeded: {rate} from {namaddr} for service {self._service}"
        )
        return replies.auth_rate_limited(addr)

    async def _step(self, core: SmtpServer, mechanism: str, response: bytes | None) -> None:
        exchange = self._exchange
        if exchange is None:  # cannot happen: the core asks only inside an exchange
            core.answer(replies.auth_failed("authentication failure"))
            return
        result = await exchange.step(response)
        match result:
            case Continue(challenge=challenge):
                core.auth_challenge(challenge)
            case Accepted(username=username):
                self._exchange = None
                core.auth_success(username)
            case Rejected(reason=reason, username=username, temporary=temporary):
                self._exchange = None
                addr = self._peer.remote_addr
                self._warning(fmt.sasl_failed(self._host, addr, mechanism, reason, username))
                if temporary:
                    core.answer(replies.auth_temporary_failure(reason))
                else:
                    core.answer(replies.auth_failed(reason))


async def offer_auth(
    sasl: SaslService,
    settings: ServerSettings,
    conn: Connection,
    *,
    rates: RateCounter,
    rate_exempt: bool,
    service: str,
    host: str,
    warning: Callable[[str], None],
) -> tuple[tuple[str, ...], SessionAuth]:
    """The mechanisms to offer the session (``settings`` before AUTH), and its AUTH driver."""
    # TLS is certain from the start in wrapper mode; with TLS required or
    # smtpd_tls_auth_only no client can AUTH before it: the TLS options apply.
    tls = settings.tls_active or settings.tls_required or settings.auth_tls_only
    addr = conn.peer[0]
    mechanisms = await sasl.mechanisms(addr, tls=tls)
    auth = SessionAuth(
        sasl,
        rates=rates,
        rate_exempt=rate_exempt,
        service=service,
        host=host,
        peer=SaslPeer(
            service=sasl.service_name,
            local_addr=conn.local[0],
            local_port=conn.local[1],
            remote_addr=addr,
            remote_port=conn.peer[1],
            tls=settings.tls_active,
        ),
        warning=warning,
    )
    return mechanisms, auth
