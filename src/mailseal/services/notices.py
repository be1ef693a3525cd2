"""Delivery status notifications queued by the queue manager: bounces and delay warnings.

What bounce(8) and qmgr do with :mod:`mailseal.services.dsn`: pick who is told
(:func:`~mailseal.services.dsn.route_notice`: the sender from ``<>``; for mail from
``<>`` the postmaster from ``double_bounce_sender``, as ``notify_classes`` allows), keep
the recipients whose RFC 3461 NOTIFY asks for it, build the RFC 3464 message and queue
it like any other mail, then log Postfix's line::

    QUEUEID: sender non-delivery notification: NEWID
    QUEUEID: sender delay notification: NEWID
    QUEUEID: postmaster non-delivery notification: NEWID

Reads: myhostname, mail_name, bounce_size_limit, double_bounce_sender,
2bounce_notice_recipient, delay_notice_recipient, notify_classes, delay_warning_time,
maximal_queue_lifetime.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass

from mailseal.config.model import Config
from mailseal.queue.body import HEADER_SCAN
from mailseal.queue.envelope import Envelope, Recipient
from mailseal.queue.ids import new_queue_id
from mailseal.queue.store import QueuedMessage, QueueStore
from mailseal.services.delivery_outcome import Outcome
from mailseal.services.dsn import DsnRecipient, NoticeKind, build_bounce, needs_notice, route_notice

__all__ = ["Failure", "queue_notice"]


@dataclass(frozen=True)
class Failure:
    """A recipient the notice is about, with the attempt that decided it."""

    recipient: Recipient
    outcome: Outcome


def _utc(timestamp: float) -> dt.datetime:
    return dt.datetime.fromtimestamp(timestamp, dt.UTC)


def _dsn_recipient(failure: Failure, kind: NoticeKind, now: float) -> DsnRecipient:
    outcome = failure.outcome
    recipient = failure.recipient
    status = outcome.dsn
    if kind == "failure" and not status.startswith("5") and not status.startswith("4"):
        status = "5.0.0"
    return DsnRecipient(
        address=outcome.address,
        original=recipient.orcpt or None,
        action="failed" if kind == "failure" else "delayed",
        status=status,
        diagnostic=outcome.diagnostic,
        remote_mta=outcome.remote_mta,
        reason=outcome.reason,
        last_attempt=_utc(now),
        expanded_from=recipient.address if recipient.address != outcome.address else None,
    )


def queue_notice(
    config: Config,
    store: QueueStore,
    message: QueuedMessage,
    failures: Sequence[Failure],
    *,
    kind: NoticeKind,
    now: float,
) -> tuple[str, str] | None:
    """Queue the notice about ``failures``; ``(new queue id, log line)`` or None if nobody."""
    envelope = message.envelope
    hostname = config.myhostname
    double_bounce = f"{config.double_bounce_sender}@{hostname}"
    postmaster = str(
        config.value_of(
            "2bounce_notice_recipient" if kind == "failure" else "delay_notice_recipient"
        )
    )
    destination = route_notice(
        kind,
        envelope.sender,
        double_bounce_address=double_bounce,
        postmaster_recipient=postmaster,
        notify_classes=config.notify_classes,
    )
    if not destination.recipient:
        return None
    chosen = [
        f
        for f in failures
        if destination.postmaster_copy or needs_notice(kind, f.recipient.notify or None)
    ]
    if not chosen:
        return None
    queue_id = new_queue_id()
    content = build_bounce(
        kind=kind,
        reporting_mta=hostname,
        queue_id=message.queue_id,
        sender=envelope.sender,
        arrival=_utc(envelope.arrival_time),
        now=_utc(now),
        recipients=[_dsn_recipient(f, kind, now) for f in chosen],
        original=_original(message, config.bounce_size_limit),
        ret=None if destination.postmaster_copy else (envelope.ret or None),
        envid=envelope.envid or None,
        message_id=f"<{queue_id}@{hostname}>",
        size_limit=config.bounce_size_limit,
        delay_warning_time=config.delay_warning_time or None,
        maximal_queue_lifetime=config.maximal_queue_lifetime,
        postmaster_copy_to=destination.recipient if destination.postmaster_copy else None,
        smtputf8=envelope.smtputf8,
        mail_name=config.mail_name,
    )
    notice = Envelope(
        sender=destination.envelope_sender,
        recipients=(Recipient(destination.recipient, destination.recipient),),
        arrival_time=now,
        client_name="localhost",
        client_addr="127.0.0.1",
        protocol="local",
        message_id=f"<{queue_id}@{hostname}>",
        smtputf8=envelope.smtputf8,
    )
    store.enqueue(notice, content, queue_id)
    who = "postmaster" if destination.postmaster_copy else "sender"
    what = "non-delivery" if kind == "failure" else "delay"
    return queue_id, f"{message.queue_id}: {who} {what} notification: {queue_id}"


def _original(message: QueuedMessage, size_limit: int) -> bytes:
    """The content a notice returns: all of it, or, past ``bounce_size_limit``, its start.

    Past the limit only the headers are returned, and they are at the start: a large
    message is not read into memory just to be cut.
    """
    if size_limit <= 0 or message.size <= size_limit:
        return message.content
    # Still longer than the limit, so the notice returns headers only, as before.
    return message.body.head(max(size_limit + 1, HEADER_SCAN))
