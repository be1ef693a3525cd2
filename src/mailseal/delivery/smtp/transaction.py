"""One mail transaction over a ready session: MAIL, RCPT..., DATA (smtp_proto.c smtp_loop).

Envelope parameters: SMTPUTF8 (RFC 6531), RET and ENVID (RFC 3461) from the
envelope, NOTIFY and ORCPT per recipient (ORCPT made from the original address
when the client gave none, as Postfix does); the core sends only what the server
announced, and computes SIZE and BODY itself. PIPELINING is the core's.

Each reply decides what it answers, in Postfix's words: a refused MAIL or DATA,
or the end-of-data reply, decides every recipient still in play
(``(in reply to MAIL FROM command)``, ``DATA command``, ``end of DATA
command``); a refused RCPT decides that recipient (``RCPT TO command``).
Time limits: ``smtp_mail_timeout``, ``smtp_rcpt_timeout``,
``smtp_data_init_timeout``, ``smtp_data_xfer_timeout`` (each piece of content
written), ``smtp_data_done_timeout``; ``smtp_rset_timeout`` for the RSET that
makes an aborted session fit for reuse.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from mailseal.delivery.smtp.plan import Plan, ended
from mailseal.delivery.smtp.request import SmtpRequest
from mailseal.delivery.smtp.results import Failure, reply_failure
from mailseal.delivery.smtp.session import SessionTimeoutError, SmtpSession, Stage
from mailseal.log import smtp_client as words
from mailseal.queue.body import BodyReadError
from mailseal.queue.envelope import Envelope, Recipient
from mailseal.smtp.client_events import (
    ClientEvent,
    Closed,
    DataStart,
    MailFrom,
    MessageSent,
    RcptTo,
    Rset,
    SmtpClientUsageError,
)
from mailseal.smtp.reply import Reply

__all__ = ["Transfer", "transmit", "xtext"]

_COMMANDS = {
    "sending MAIL FROM": "MAIL FROM command",
    "sending RCPT TO": "RCPT TO command",
    "sending DATA command": "DATA command",
}
_END_OF_DATA = "sending end of data -- message may be sent more than once"


@dataclass
class Transfer:
    """What one transaction decided: replies for the sent, failures for the others."""

    sent: dict[int, Reply] = field(default_factory=dict)
    failed: list[tuple[list[int], Failure]] = field(default_factory=list)
    reusable: bool = False


def xtext(text: str) -> str:
    """RFC 3461 section 4: ``+HH`` for "+", "=", controls, space and non-ASCII (UTF-8)."""
    out = []
    for byte in text.encode("utf-8"):
        char = chr(byte)
        out.append(char if 33 <= byte <= 126 and char not in "+=" else f"+{byte:02X}")
    return "".join(out)


def mail_params(envelope: Envelope) -> dict[str, str]:
    params: dict[str, str] = {}
    if envelope.smtputf8:
        params["SMTPUTF8"] = ""
    if envelope.ret:
        params["RET"] = envelope.ret
    if envelope.envid:
        params["ENVID"] = envelope.envid  # kept xtext-encoded as received
    return params


def rcpt_params(recipient: Recipient) -> dict[str, str]:
    params: dict[str, str] = {}
    if recipient.notify:
        params["NOTIFY"] = recipient.notify
    if recipient.orcpt:
        params["ORCPT"] = recipient.orcpt
    elif recipient.original:
        params["ORCPT"] = "rfc822;" + xtext(recipient.original)
    return params


def _stage(plan: Plan, count: int) -> Callable[[list[ClientEvent]], Stage]:
    """The step waited for, from the events so far (MAIL, RCPT..., DATA, end of data)."""
    config = plan.config

    def stage(events: list[ClientEvent]) -> Stage:
        if not any(isinstance(e, MailFrom) for e in events):
            return Stage("sending MAIL FROM", config.smtp_mail_timeout)
        data = next((e for e in events if isinstance(e, DataStart)), None)
        if data is not None and data.reply.code == 354:
            return Stage(
                _END_OF_DATA,
                config.smtp_data_done_timeout,
                "sending message body",
                config.smtp_data_xfer_timeout,
            )
        if sum(isinstance(e, RcptTo) for e in events) < count:
            return Stage("sending RCPT TO", config.smtp_rcpt_timeout)
        return Stage("sending DATA command", config.smtp_data_init_timeout)

    return stage


async def transmit(
    plan: Plan, session: SmtpSession, request: SmtpRequest, indices: list[int]
) -> Transfer:
    """Send the message to the recipients ``indices`` of ``request``; never raises."""
    target = session.target
    recipients = [request.recipients[i] for i in indices]
    transfer = Transfer()
    if not session.client.ready:  # the server hung up right after the last reply
        transfer.failed.append((list(indices), ended(session, [], "sending MAIL FROM")))
        return transfer
    try:
        session.client.send_mail(
            request.sender,
            [r.address for r in recipients],
            request.content,
            sender_params=mail_params(request.envelope),
            recipient_params=[rcpt_params(r) for r in recipients],
        )
    except SmtpClientUsageError:
        # An address that cannot go into a command line; Postfix's SMTP_ERR_DATA text.
        reason = f"local data error while talking to {target.namaddr}"
        transfer.failed.append((list(indices), Failure("4.3.0", reason)))
        return transfer
    session.uses += 1
    stage = _stage(plan, len(indices))
    try:
        events = await session.exchange(stage)
    except SessionTimeoutError as timeout:
        session.abort()
        failure = Failure("4.4.2", words.timed_out(target.namaddr, timeout.where))
        transfer.failed.append((list(indices), failure))
        return transfer
    except BodyReadError as error:
        # A large message is read from its queue file as it is sent: the server must
        # not take what was cut short as a whole message, so the session is dropped.
        session.abort()
        transfer.failed.append((list(indices), Failure("4.3.0", str(error))))
        return transfer
    _decide(session, request, indices, events, transfer)
    left = [i for i in indices if i not in transfer.sent and not _has(transfer, i)]
    if left:
        transfer.failed.append((left, _leftover(plan, session, events, stage(events).where)))
    completed = any(isinstance(e, MessageSent) and not e.local for e in events)
    transfer.reusable = session.usable and (completed or await _reset(plan, session))
    return transfer


def _has(transfer: Transfer, index: int) -> bool:
    return any(index in group for group, _ in transfer.failed)


def _decide(
    session: SmtpSession,
    request: SmtpRequest,
    indices: list[int],
    events: list[ClientEvent],
    transfer: Transfer,
) -> None:
    """Map each reply to the recipients it decides."""
    target = session.target
    accepted: list[int] = []
    for event in events:
        if isinstance(event, MailFrom) and event.reply.code // 100 != 2:
            failure = reply_failure(event.reply, target, "MAIL FROM command")
            transfer.failed.append((list(indices), failure))
        elif isinstance(event, RcptTo):
            index = indices[event.index]
            if event.reply.code // 100 == 2:
                accepted.append(index)
            else:
                failure = reply_failure(event.reply, target, "RCPT TO command")
                transfer.failed.append(([index], failure))
        elif isinstance(event, DataStart) and event.reply.code != 354:
            transfer.failed.append((accepted, reply_failure(event.reply, target, "DATA command")))
        elif isinstance(event, MessageSent):
            _ended_data(session, request, event, accepted or list(indices), transfer)


def _ended_data(
    session: SmtpSession,
    request: SmtpRequest,
    event: MessageSent,
    accepted: list[int],
    transfer: Transfer,
) -> None:
    target = session.target
    if event.local:
        limit = session.client.capabilities.size or 0
        reason = words.size_exceeded(request.size, limit, target.namaddr)
        transfer.failed.append((accepted, Failure("5.3.4", reason)))
    elif event.reply.code // 100 == 2:
        transfer.sent.update(dict.fromkeys(accepted, event.reply))
    else:
        failure = reply_failure(event.reply, target, "end of DATA command")
        transfer.failed.append((accepted, failure))


def _leftover(plan: Plan, session: SmtpSession, events: list[ClientEvent], where: str) -> Failure:
    """Recipients no reply decided: the session ended (421, lost connection, garbage)."""
    closed = next((e for e in events if isinstance(e, Closed) and e.reply is not None), None)
    if closed is not None and closed.reply is not None:
        command = _COMMANDS.get(where, "end of DATA command")
        return reply_failure(closed.reply, session.target, command)
    return ended(session, events, where)


async def _reset(plan: Plan, session: SmtpSession) -> bool:
    """RSET after an aborted transaction, so the session can carry the next one."""
    if not session.usable:
        return False
    session.client.rset()
    timeout = plan.config.smtp_rset_timeout
    try:
        events = await session.exchange(lambda _: Stage("sending final RSET", timeout))
    except SessionTimeoutError:
        session.abort()
        return False
    answer = next((e for e in events if isinstance(e, Rset)), None)
    return answer is not None and answer.reply.code // 100 == 2 and session.usable
