"""What one delivery attempt knows while it sets up sessions, and how a set-up fails.

``Plan`` gathers the settings of one delivery (configuration, log number, next
hop, effective TLS level and context, SMTPUTF8 need); ``SetupFailure`` is a
session that could not be set up, with the flags the connection loop needs;
``ended`` names why a session stopped in the middle of a step, in Postfix's words.
"""

from __future__ import annotations

from dataclasses import dataclass

from mailseal.config.model import Config
from mailseal.delivery.smtp.results import Failure, reply_dsn, reply_text
from mailseal.delivery.smtp.session import SmtpSession
from mailseal.log import smtp_client as words
from mailseal.log.sinks import MailLog
from mailseal.smtp.client_events import ClientEvent, Closed, ProtocolError
from mailseal.tls.client import ClientTls
from mailseal.tls.levels import TlsLevel

__all__ = ["Plan", "SetupFailure", "ended"]


@dataclass(frozen=True)
class Plan:
    """What one delivery needs for each session it sets up."""

    config: Config
    log: MailLog
    program: str
    number: int
    queue_id: str
    nexthop: str
    level: TlsLevel  # effective: dane is used as may
    tls: ClientTls | None  # None: no TLS engine (the level allows plaintext)
    needs_smtputf8: bool

    def info(self, text: str) -> None:
        self.log.info(self.program, self.number, text)

    def warning(self, text: str) -> None:
        self.log.warning(self.program, self.number, text)


@dataclass(frozen=True)
class SetupFailure:
    """A session that could not be set up.

    ``tls_handshake``: an opportunistic TLS failure after which plaintext may be
    tried; ``next_server``: a hard failure that still goes to the next server
    first (SMTPUTF8, as Postfix 3.11 does); ``connected``: false when the TCP
    connection itself failed (then ``relay=none`` and the failure is logged already).
    """

    failure: Failure
    tls_handshake: bool = False
    next_server: bool = False
    connected: bool = True


def ended(session: SmtpSession, events: list[ClientEvent], where: str) -> Failure:
    """The session ended before the step finished: protocol error or lost connection."""
    target = session.target
    for event in events:
        if isinstance(event, ProtocolError):
            text = words.protocol_error(event.reason, target.namaddr, event.detail)
            return Failure("4.5.0", text)
    for event in events:
        if isinstance(event, Closed) and event.reply is not None:
            text = reply_text(event.reply)
            return Failure(reply_dsn(event.reply), words.refused_to_talk(target.namaddr, text))
    return Failure("4.4.2", words.lost_connection(target.namaddr, where))
