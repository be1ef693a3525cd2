"""STARTTLS as the client (RFC 3207) per the next hop's TLS security level (smtp_proto.c).

After the first EHLO: decide whether to send STARTTLS, handshake, judge the
certificate (:meth:`mailseal.tls.client.ClientTls.judge`), and log as Postfix's
tls_client.c does at ``smtp_tls_loglevel`` 1 (``Untrusted TLS connection
established to h[a]:p: TLSv1.3 with cipher ...``) and 2 (``setting up TLS
connection to ...`` and the certificate line). A level that requires TLS never
lets the session continue in plaintext: every path that does not end in a
satisfying handshake returns a failure.

Bytes that arrive after the server's ``220`` and before our ClientHello are a
protocol violation (RFC 3207 section 5, a STARTTLS-stripping or injecting
middlebox): the core turns them into a protocol error and the session counts as
a failed handshake, never as plaintext permission.
"""

from __future__ import annotations

from enum import Enum

from mailseal.delivery.smtp.plan import Plan, SetupFailure, ended
from mailseal.delivery.smtp.results import Failure, reply_dsn, reply_text
from mailseal.delivery.smtp.session import SmtpSession, Stage
from mailseal.delivery.smtp.tls_memory import TlsFailureMemory
from mailseal.log import smtp_client as words
from mailseal.net.connection import HandshakeError
from mailseal.smtp.client_events import StartTls
from mailseal.smtp.reply import Reply
from mailseal.tls import client_phrases as phrases
from mailseal.tls.client import ClientTls
from mailseal.tls.levels import TlsLevel
from mailseal.tls.outcome import PeerTrust

__all__ = ["TlsStep", "secure"]

_STARTTLS = "receiving the STARTTLS response"


class TlsStep(Enum):
    """How the session goes on after the TLS decision."""

    PLAINTEXT = "plaintext"  # allowed by the level (none, may)
    ESTABLISHED = "established"  # the caller sends EHLO again (RFC 3207 section 4.2)


def _fail(reason: phrases.DeferReason, *, handshake: bool = False) -> SetupFailure:
    return SetupFailure(Failure(reason.status, reason.text), tls_handshake=handshake)


def _decide(plan: Plan, session: SmtpSession, *, plaintext: bool) -> TlsStep | SetupFailure | None:
    """Plaintext, a failure, or None: send STARTTLS."""
    target = session.target
    offered = session.client.capabilities.starttls
    level = plan.level
    if offered and level is TlsLevel.NONE and plan.config.smtp_tls_note_starttls_offer:
        plan.info(phrases.offered_starttls(target.host))
    if level is TlsLevel.NONE or (plaintext and level.is_opportunistic):
        if offered and level is not TlsLevel.NONE:
            plan.warning(words.cleartext_fallback(target.namaddrport))
        return TlsStep.PLAINTEXT
    required = level.requires_tls and not level.is_opportunistic
    if not offered:
        if required:
            return _fail(phrases.tls_required_not_offered(target.host, target.addr))
        return TlsStep.PLAINTEXT
    if plan.tls is None:
        return _fail(phrases.ENGINE_UNAVAILABLE) if required else TlsStep.PLAINTEXT
    return None


async def secure(
    plan: Plan, session: SmtpSession, *, plaintext: bool, memory: TlsFailureMemory
) -> TlsStep | SetupFailure:
    """STARTTLS when the level wants it and the server offers it; never plaintext when required."""
    decision = _decide(plan, session, plaintext=plaintext)
    if decision is not None or plan.tls is None:
        return decision or TlsStep.PLAINTEXT
    if not session.client.ready:  # the server hung up right after its EHLO reply
        return SetupFailure(ended(session, [], _STARTTLS))
    session.client.starttls()
    timeout = plan.config.smtp_starttls_timeout
    events = await session.exchange(lambda _: Stage(_STARTTLS, timeout))
    answer = next((e for e in events if isinstance(e, StartTls)), None)
    if answer is None:
        return SetupFailure(ended(session, events, _STARTTLS))
    if answer.reply.code != 220:
        return _refused(plan, session, answer.reply)
    return await _handshake(plan, session, plan.tls, memory)


def _refused(plan: Plan, session: SmtpSession, reply: Reply) -> TlsStep | SetupFailure:
    """STARTTLS refused: plaintext at ``may`` (as Postfix), a failure when TLS is required."""
    if plan.level.is_opportunistic:
        return TlsStep.PLAINTEXT
    target = session.target
    text = reply_text(reply)
    refused = phrases.refused_starttls(target.host, target.addr, reply_dsn(reply), text)
    return SetupFailure(Failure(refused.status, refused.text, target.host, text))


async def _handshake(
    plan: Plan, session: SmtpSession, tls: ClientTls, memory: TlsFailureMemory
) -> TlsStep | SetupFailure:
    config = plan.config
    target = session.target
    host, addr, port = target.host, target.addr, target.port
    loglevel = config.smtp_tls_loglevel
    if loglevel >= 2:
        plan.info(phrases.setting_up_to(host, addr, port))
    early = session.connection.take_buffered()
    if early:
        session.client.receive_data(early)  # the core reports the injection attempt
        plan.warning(f"{target.namaddrport}: plaintext data received after the STARTTLS reply")
        return _failed_handshake(plan, session, memory)
    sni = tls.server_hostname(nexthop=plan.nexthop, mx_host=host)
    try:
        await session.connection.start_tls_client(tls, sni, config.smtp_starttls_timeout)
    except HandshakeError as error:
        plan.info(phrases.handshake_failed_to(host, addr, port, error.reason))
        return _failed_handshake(plan, session, memory)
    ssl_object = session.connection.ssl_object
    if ssl_object is None:
        return _failed_handshake(plan, session, memory)
    verdict = tls.judge(
        ssl_object, nexthop=plan.nexthop, mx_host=host, from_dns_mx=target.from_dns_mx
    )
    if verdict.failure is not None and phrases.logs_verification_failure(plan.level, loglevel):
        plan.info(phrases.verification_failed(host, addr, port, verdict.failure))
    if loglevel >= 1:
        plan.info(phrases.established_to(verdict.outcome, host, addr, port))
    if loglevel >= 2 and verdict.outcome.peer_fingerprint:
        plan.info(phrases.peer_cert_line(verdict.outcome, host, addr, port))
    must_match = plan.level.checks_certificate and not plan.level.is_dane_based
    if must_match and not verdict.matched:
        session.tls_level = plan.level.value
        return _fail(phrases.NOT_VERIFIED)
    memory.forget(host, addr, port)
    session.client.tls_established()
    session.tls_level = plan.level.value
    session.verified = verdict.trust is PeerTrust.VERIFIED
    return TlsStep.ESTABLISHED


def _failed_handshake(plan: Plan, session: SmtpSession, memory: TlsFailureMemory) -> SetupFailure:
    """The peer is in an unknown state: no more I/O on this connection (Postfix: forbidden)."""
    target = session.target
    session.abort()
    if plan.level.is_opportunistic:
        memory.remember(target.host, target.addr, target.port)
    return _fail(phrases.CANNOT_START_TLS, handshake=plan.level.is_opportunistic)
