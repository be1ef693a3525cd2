"""One ``mailseal tls-finger`` probe: connect, greet, STARTTLS, judge the server, QUIT.

The dialogue is posttls-finger(1)'s ``doproto()``: greeting, EHLO, STARTTLS when
the server announces it (or TLS first in wrapper mode, RFC 8314), EHLO again over
TLS, QUIT. The SMTP side is the sans-IO client core (``mailseal.smtp.client``);
the TLS side is the smtp client's own: ``mailseal.tls.client`` builds the context
and judges the handshake, ``mailseal.tls.client_phrases`` words the lines.

The targets are tried in order until one accepts the TCP connection; what
happens on that connection is the answer (posttls-finger stops there too). The
``Verdict`` says whether the requested level was met:

* ``none``, ``may``: the session completed (in plaintext if STARTTLS was not
  offered or was refused at ``may``); a failed handshake is *not met*, since a
  mail client would have had to retry without TLS;
* ``encrypt``: TLS was established;
* ``fingerprint``, ``verify``, ``secure``: TLS, and the certificate matched.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Sequence
from dataclasses import dataclass

from cryptography import x509

from mailseal.cli.tls_finger_dest import Destination, Target
from mailseal.cli.tls_finger_report import ChatLog, Printer
from mailseal.cli.tls_finger_wire import Wire, open_wire
from mailseal.smtp.client import ClientSettings, Phase, SmtpClient
from mailseal.smtp.client_capabilities import Capabilities
from mailseal.smtp.client_events import ClientEvent, Closed, Greeting, Helo, ProtocolError, StartTls
from mailseal.tls import client_phrases as phrases
from mailseal.tls.client import ClientTls, ClientTlsOutcome, peer_chain
from mailseal.tls.levels import TlsLevel
from mailseal.tls.outcome import handshake_failure

__all__ = ["SessionPlan", "Verdict", "finger"]

_SETTLED = (Phase.READY, Phase.STARTTLS, Phase.QUIT, Phase.CLOSED)


@dataclass(frozen=True)
class SessionPlan:
    """What one probe needs; ``tls`` is None only at level ``none``."""

    destination: Destination
    level: TlsLevel
    tls: ClientTls | None
    helo_name: str
    connect_timeout: float
    command_timeout: float
    wrapper: bool = False
    chat: bool = True


@dataclass(frozen=True)
class Verdict:
    """Whether the level was met, why not, and the certificates the server sent."""

    met: bool
    reason: str = ""
    chain: tuple[x509.Certificate, ...] = ()


class _Stop(Exception):  # noqa: N818 - ends the dialogue, with the reason for the verdict
    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


async def finger(plan: SessionPlan, targets: Sequence[Target], out: Printer) -> Verdict:
    """Try ``targets`` in order; probe the first that accepts a connection."""
    port = plan.destination.port
    why = "no address to connect to"
    for target in targets:
        try:
            wire = await open_wire(target.address, port, plan.connect_timeout)
        except (OSError, TimeoutError) as error:
            errno = getattr(error, "errno", None)
            text = os.strerror(errno) if errno else ""
            why = f"connect to {target.host}[{target.address}]:{port}: "
            why += text or "Connection timed out"
            out(f"Failed to establish session to {plan.destination.text} via {target.host}: {why}")
            continue
        if plan.chat:
            out(f"Connected to {phrases.namaddrport(target.host, target.address, port)}")
        try:
            return await _Session(plan, target, wire, out).run()
        finally:
            wire.abort()
    return Verdict(False, why)


class _Session:
    """The dialogue on one connection."""

    def __init__(self, plan: SessionPlan, target: Target, wire: Wire, out: Printer) -> None:
        self.plan = plan
        self.target = target
        self.wire = wire
        self.out = out
        self.chat = ChatLog(out, enabled=plan.chat)
        self.client = SmtpClient(ClientSettings(helo_name=plan.helo_name))
        self.port = plan.destination.port
        self.judged: ClientTlsOutcome | None = None
        self.chain: tuple[x509.Certificate, ...] = ()
        self.namaddr = phrases.namaddrport(target.host, target.address, self.port)

    async def run(self) -> Verdict:
        try:
            if self.plan.wrapper:
                await self._handshake()
            await self._greet()
            capabilities = await self._ehlo()
            if not self.plan.wrapper and await self._starttls(capabilities):
                await self._handshake()
                self.client.tls_established()
                await self._ehlo()
            if self.judged is not None and not self.judged.outcome.has_peer_certificate:
                self.out("Server is anonymous")
            await self._quit()
        except _Stop as stop:
            return Verdict(False, stop.reason, self.chain)
        return self._verdict()

    def _verdict(self) -> Verdict:
        level, judged = self.plan.level, self.judged
        if judged is None:
            if level.requires_tls:
                return Verdict(False, phrases.CANNOT_START_TLS.text, self.chain)
            return Verdict(True)
        if level.checks_certificate and not judged.matched:
            reason = phrases.NOT_VERIFIED.text
            if judged.failure is not None:
                reason += f": {judged.failure.reason}"
            return Verdict(False, reason, self.chain)
        return Verdict(True, "", self.chain)

    # -- the SMTP dialogue ------------------------------------------------------------

    def _flush(self) -> None:
        data = self.client.data_to_send()
        if data:
            self.chat.sent(data)
            try:
                self.wire.write(data)
            except ConnectionError:
                self.client.receive_data(b"")  # the core reports it as Closed

    async def _exchange(self, doing: str) -> list[ClientEvent]:
        """Send what the core has to send and read until the operation is over."""
        events: list[ClientEvent] = []
        self._flush()
        while True:
            events.extend(self._pending_events())
            if self.client.phase in _SETTLED:
                return events
            try:
                data = await self.wire.read(self.plan.command_timeout)
            except TimeoutError:
                raise _Stop(f"timeout while {doing}") from None
            self.chat.received(data)
            self.client.receive_data(data)
            self._flush()

    def _ended(self, events: list[ClientEvent], doing: str) -> _Stop:
        """Why the dialogue ended without the reply we waited for."""
        for event in events:
            if isinstance(event, ProtocolError):
                return _Stop(f"{event.reason} from {self.namaddr}: {event.detail}")
            if isinstance(event, Closed) and event.reply is not None:
                return _Stop(f"{self.namaddr} said: {event.reply.text}")
        return _Stop(f"lost connection while {doing}")

    def _pending_events(self) -> list[ClientEvent]:
        events: list[ClientEvent] = []
        while (event := self.client.next_event()) is not None:
            events.append(event)
        return events

    def _stop(self, message: str) -> _Stop:
        self.out(message)
        return _Stop(message)

    async def _greet(self) -> None:
        doing = "reading server greeting"
        events = await self._exchange(doing)
        found = [e for e in events if isinstance(e, Greeting)]
        if not found:
            raise self._ended(events, doing)
        if found[0].reply.code // 100 != 2:
            raise self._stop(f"SMTP service not available: {found[0].reply.text}")

    async def _ehlo(self) -> Capabilities:
        doing = "sending EHLO"
        self.client.ehlo()
        events = await self._exchange(doing)
        found = [e for e in events if isinstance(e, Helo)]
        if not found:
            raise self._ended(events, doing)
        helo = found[0]
        if helo.reply.code // 100 != 2:
            verb = "EHLO" if helo.extended else "HELO"
            raise self._stop(f"{verb} rejected: {helo.reply.text}")
        return helo.capabilities

    async def _starttls(self, capabilities: Capabilities) -> bool:
        """STARTTLS if the level and the server allow; True when the server said 220."""
        level, target = self.plan.level, self.target
        if level is TlsLevel.NONE:
            return False
        if not capabilities.has("STARTTLS"):
            if level.requires_tls:
                reason = phrases.tls_required_not_offered(target.host, target.address)
                raise _Stop(reason.text)
            self.out("Server does not offer STARTTLS")
            return False
        doing = "sending STARTTLS"
        self.client.starttls()
        events = await self._exchange(doing)
        found = [e for e in events if isinstance(e, StartTls)]
        if not found:
            raise self._ended(events, doing)
        reply = found[0].reply
        if reply.code != 220:
            self.out(f"STARTTLS rejected: {reply.text}")
            if level.requires_tls:
                status = reply.enhanced or f"{reply.code // 100}.0.0"
                reason = phrases.refused_starttls(target.host, target.address, status, reply.text)
                raise _Stop(reason.text)
            return False
        # Plaintext that came after the 220 goes to the core, which refuses it (it
        # may have done so already, when the bytes came with the 220).
        late = self.wire.take_buffered()
        if late:
            self.client.receive_data(late)
            events += self._pending_events()
        if self.client.closed:
            raise self._ended(events, doing)
        self.chat.reset()
        return True

    async def _quit(self) -> None:
        """QUIT; a failure here is only worth a warning (posttls-finger does the same)."""
        self.client.quit()
        try:
            events = await self._exchange("sending QUIT command")
        except _Stop as stop:
            self.out(f"warning: {stop.reason}")
            return
        if self.client.closed and not any(isinstance(e, Closed) for e in events):
            self.out(f"warning: {self._ended(events, 'sending QUIT command').reason}")

    # -- TLS --------------------------------------------------------------------------

    async def _handshake(self) -> None:
        tls, target = self.plan.tls, self.target
        assert tls is not None  # the plan has no context only at level none
        nexthop = self.plan.destination.host
        sni = tls.server_hostname(nexthop=nexthop, mx_host=target.host)
        try:
            ssl_object = await asyncio.wait_for(
                self.wire.start_tls(tls.context, sni, self.plan.command_timeout),
                self.plan.command_timeout + 1,
            )
        except (OSError, EOFError, TimeoutError) as error:  # ssl.SSLError is an OSError
            failure = handshake_failure(error)
            reason = "timeout" if isinstance(error, TimeoutError) else failure.reason
            self.out(phrases.handshake_failed_to(target.host, target.address, self.port, reason))
            if failure.library_detail:
                self.out(f"warning: TLS library problem: {failure.library_detail}")
            raise _Stop(phrases.CANNOT_START_TLS.text) from None
        self.chain = peer_chain(ssl_object)
        self.judged = tls.judge(
            ssl_object, nexthop=nexthop, mx_host=target.host, from_dns_mx=target.from_dns_mx
        )
        self._log_tls(self.judged)

    def _log_tls(self, judged: ClientTlsOutcome) -> None:
        """The lines tls_client.c logs at posttls-finger's default ``-L routine,certmatch``."""
        host, address, port, level = (
            self.target.host,
            self.target.address,
            self.port,
            self.plan.level,
        )
        if judged.failure is not None and phrases.logs_verification_failure(level, 1):
            self.out(phrases.verification_failed(host, address, port, judged.failure))
        if judged.matched and level.requires_pkix:
            self.out(f"{self.namaddr}: matched peername: {judged.outcome.peer_subject_cn}")
        if judged.outcome.has_peer_certificate:
            self.out(phrases.peer_cert_line(judged.outcome, host, address, port))
        self.out(phrases.established_to(judged.outcome, host, address, port))
