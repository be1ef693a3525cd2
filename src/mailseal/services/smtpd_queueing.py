"""What smtpd writes to the queue for one message: the envelope and the content.

The content gets the ``Received:`` header first (RFC 5321 section 4.4), with
Postfix's TLS comments or RFC 8314's ``tls`` clause (see
:mod:`mailseal.services.cleanup`); the envelope keeps the DSN parameters
(RFC 3461: ENVID, RET, NOTIFY, ORCPT), BODY and SMTPUTF8, and the client facts
the queue manager logs.
"""

from __future__ import annotations

from dataclasses import dataclass

from mailseal.queue.envelope import Envelope, Recipient
from mailseal.queue.spool import PrefixedContent, SpoolFile
from mailseal.services.cleanup import (
    ReceivedFacts,
    find_message_id,
    received_header,
    with_protocol,
)
from mailseal.services.smtpd_service import SmtpdService
from mailseal.smtp import events as ev
from mailseal.tls import phrases
from mailseal.tls.outcome import TlsOutcome

__all__ = ["QueueClient", "queue_entry"]


@dataclass(frozen=True)
class QueueClient:
    """The session facts a queued message records."""

    name: str
    addr: str
    helo: str
    tls_active: bool
    sasl_username: str | None = None  # after a successful AUTH


def queue_entry(
    service: SmtpdService,
    client: QueueClient,
    tls: TlsOutcome | None,
    envelope: ev.Envelope,
    content: bytes,
    *,
    queue_id: str,
    now: float,
    spool: SpoolFile | None = None,
) -> tuple[Envelope, PrefixedContent]:
    """The queue envelope and the content with our Received: header in front.

    With a ``spool`` the content is in that file and ``content`` is only its start
    (enough for the Message-ID: of all but freakish header blocks).
    """
    header = received_header(
        ReceivedFacts(
            helo=client.helo,
            client_name=client.name,
            client_addr=client.addr,
            by_host=service.hostname,
            product=service.product,
            protocol=with_protocol(
                extended=envelope.extended,
                tls=client.tls_active,
                authenticated=client.sasl_username is not None,
            ),
            queue_id=queue_id,
            recipients=tuple(r.address for r in envelope.recipients),
            when=now,
            tls_comments=_tls_comments(service, tls),
            tls_clause=_tls_clause(service, tls),
            sasl_username=_authenticated_sender(service, client),
        )
    )
    params = envelope.sender_params
    queued = Envelope(
        sender=envelope.sender,
        recipients=tuple(
            Recipient(
                address=r.address,
                original=r.address,
                notify=r.params.get("NOTIFY", ""),
                orcpt=r.params.get("ORCPT", ""),
            )
            for r in envelope.recipients
        ),
        arrival_time=now,
        client_name=client.name,
        client_addr=client.addr,
        helo=client.helo,
        protocol="ESMTP" if envelope.extended else "SMTP",
        envid=params.get("ENVID", ""),
        ret=params.get("RET", ""),
        body=params.get("BODY", ""),
        smtputf8="SMTPUTF8" in params,
        message_id=find_message_id(content),
    )
    return queued, PrefixedContent(header, content if spool is None else spool)


def _authenticated_sender(service: SmtpdService, client: QueueClient) -> str:
    """The user name for "(Authenticated sender: ...)", with smtpd_sasl_authenticated_header."""
    if service.sasl is None or not service.sasl.authenticated_header:
        return ""
    return client.sasl_username or ""


def _tls_comments(service: SmtpdService, tls: TlsOutcome | None) -> tuple[str, ...]:
    """Postfix's ``(using ...)`` comments, with ``smtpd_tls_received_header = yes``."""
    if tls is None or not service.received_tls_postfix_style:
        return ()
    return phrases.received_tls_lines(tls, ask_ccert=service.tls.ask_ccert)


def _tls_clause(service: SmtpdService, tls: TlsOutcome | None) -> str:
    """RFC 8314's ``tls CIPHER`` clause otherwise."""
    if tls is None or service.received_tls_postfix_style:
        return ""
    return phrases.received_tls_clause(tls, postfix_style=False)
