"""Bounce, delay and success notices as RFC 3464 delivery status notifications.

What Postfix's bounce(8) writes, built as a pure function of the caller's facts (clock,
identity, queue data): a ``multipart/report; report-type=delivery-status`` message
(RFC 6522) with three parts, as the default templates of ``bounce.cf.default`` shape them:

1. ``text/plain``: the template text ("This is the mail system at host ...") and one
   ``<address>: reason`` line per recipient;
2. ``message/delivery-status`` (RFC 3464 section 2): the per-message fields
   (Reporting-MTA, Original-Envelope-Id, X-Postfix-Queue-ID, X-Postfix-Sender,
   Arrival-Date), then one block per recipient (Final-Recipient, Original-Recipient,
   Action, Status, Remote-MTA, Diagnostic-Code, Last-Attempt-Date, Will-Retry-Until);
   ``message/global-delivery-status`` for SMTPUTF8 mail (RFC 6533);
3. the original: ``message/rfc822`` in full, or ``text/rfc822-headers`` for ``RET=HDRS``
   (RFC 3461 section 4.3), past ``bounce_size_limit``, and always for delay and success
   notices (Postfix returns only headers with those). 8-bit content travels as
   ``Content-Transfer-Encoding: 8bit``, the only other encoding RFC 2046 section 5.2.1
   allows for a message/* part.

Who gets a notice, and when, is decided in :mod:`mailseal.services.dsn_policy` (its names
are re-exported here, so callers import one module).

Parameters the caller passes in: myhostname (``reporting_mta``), bounce_size_limit,
delay_warning_time, maximal_queue_lifetime, enable_threaded_bounces.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from mailseal.delivery.headers import quote_822_local
from mailseal.services.cleanup import find_message_id
from mailseal.services.dsn_policy import (
    NoticeDestination,
    NoticeKind,
    NoticeRoute,
    delay_warning_due,
    needs_notice,
    route_notice,
    should_bounce,
)
from mailseal.services.dsn_render import (
    crlf_lines,
    dsn_date,
    fold,
    header_block,
    mask,
    typed,
    unique_boundary,
    wrap,
    xtext_text,
)

__all__ = [
    "DsnRecipient",
    "NoticeDestination",
    "NoticeKind",
    "NoticeRoute",
    "build_bounce",
    "delay_warning_due",
    "needs_notice",
    "route_notice",
    "should_bounce",
]

# RFC 3464 section 2.3.3 action values; section 2.3.4 / RFC 3463 status codes.
_ACTIONS = frozenset({"failed", "delayed", "delivered", "relayed", "expanded"})
_STATUS = re.compile(r"[245]\.\d{1,3}\.\d{1,3}")
# Postfix's bounce templates (bounce.cf.default): From, Subject, Postmaster-Subject.
_SUBJECT = {
    "failure": ("Undelivered Mail Returned to Sender", "Postmaster Copy: Undelivered Mail"),
    "delay": ("Delayed Mail (still being retried)", "Postmaster Warning: Delayed Mail"),
    "success": ("Successful Mail Delivery Report", "Successful Mail Delivery Report"),
}
_POLITE = [
    "",
    "For further assistance, please send mail to {postmaster}.",
    "",
    "If you do so, please include this problem report. You can",
    "delete your own text from the attached returned message.",
]
_TEMPLATE = {
    "failure": [
        "I'm sorry to have to inform you that your message could not",
        "be delivered to one or more recipients. It's attached below.",
        *_POLITE,
    ],
    "delay": [
        "#" * 68,
        "# THIS IS A WARNING ONLY.  YOU DO NOT NEED TO RESEND YOUR MESSAGE. #",
        "#" * 68,
        "",
        "Your message could not be delivered for more than {hours} hour(s).",
        "It will be retried until it is {days} day(s) old.",
        *_POLITE,
    ],
    "success": [
        "Your message was successfully delivered to the destination(s)",
        "listed below. If the message was delivered to mailbox you will",
        "receive no further notifications. Otherwise you may still receive",
        "notifications of mail delivery errors from other systems.",
    ],
}
_SIGNATURE = "                   The mail system"
_CRLF = b"\r\n"


@dataclass(frozen=True)
class DsnRecipient:
    """One recipient's line in a notice.

    ``original`` is the RFC 3461 ORCPT value as received (``rfc822;u@d``, xtext);
    ``diagnostic`` the remote reply (shown as ``Diagnostic-Code: smtp; ...``; without one
    Postfix shows ``X-Postfix; reason``); ``remote_mta`` a host name (``dns; host``);
    ``reason`` Postfix's human text for the notification; ``expanded_from`` the address
    before alias expansion (the text's "(expanded from <...>)" and, without ORCPT, the
    Original-Recipient field, as Postfix does).
    """

    address: str
    original: str | None
    action: str
    status: str
    diagnostic: str | None
    remote_mta: str | None
    reason: str
    last_attempt: datetime | None = None
    will_retry_until: datetime | None = None
    expanded_from: str | None = None

    def __post_init__(self) -> None:
        if self.action not in _ACTIONS:
            raise ValueError(f"DSN action {self.action!r} is not one of RFC 3464's")
        if _STATUS.fullmatch(self.status) is None:
            raise ValueError(f"DSN status {self.status!r} is not class.subject.detail")


@dataclass(frozen=True)
class _Notice:
    """The facts one notice is built from (the arguments of :func:`build_bounce`)."""

    kind: NoticeKind
    host: str
    queue_id: str
    sender: str
    arrival: datetime
    now: datetime
    recipients: Sequence[DsnRecipient]
    envid: str | None
    postmaster: str
    smtputf8: bool
    mail_name: str
    hours: int
    days: int
    retry_until: datetime


def build_bounce(
    *,
    kind: NoticeKind,
    reporting_mta: str,
    queue_id: str,
    sender: str,
    arrival: datetime,
    now: datetime,
    recipients: Sequence[DsnRecipient],
    original: bytes,
    ret: str | None,
    envid: str | None,
    message_id: str,
    postmaster: str = "postmaster",
    size_limit: int = 50000,
    delay_warning_time: int | None = None,
    maximal_queue_lifetime: int = 5 * 86400,
    postmaster_copy_to: str | None = None,
    threaded: bool = False,
    smtputf8: bool = False,
    mail_name: str = "Postfix",
) -> bytes:
    """The whole notice message, CRLF line ends, ready to be queued from ``<>``.

    ``original`` is the queued content; ``ret`` and ``envid`` are the envelope's RET and
    ENVID (xtext, as received; None or "" when absent); ``message_id`` the notice's own
    (with or without angle brackets). ``delay_warning_time`` / ``maximal_queue_lifetime``
    (seconds) fill the delay text; without the first, the message's age is shown.
    ``postmaster_copy_to`` makes the postmaster variant (double bounce): addressed there,
    Postfix's "Postmaster Copy" subject, ``Auto-Submitted: auto-generated``, no template
    text. ``threaded`` (enable_threaded_bounces) adds References:/In-Reply-To:.
    A notice to the null sender is refused (ValueError): see :func:`route_notice`.
    """
    if not recipients:
        raise ValueError("a delivery status notification needs at least one recipient")
    if postmaster_copy_to is None and not should_bounce(sender):
        # RFC 5321 section 4.5.5: use route_notice() to find the postmaster instead.
        raise ValueError("no notice is ever sent to the null sender")
    age = delay_warning_time if delay_warning_time is not None else (now - arrival).total_seconds()
    notice = _Notice(
        kind=kind,
        host=mask(reporting_mta),
        queue_id=mask(queue_id),
        sender=mask(sender),
        arrival=arrival,
        now=now,
        recipients=recipients,
        envid=xtext_text(envid) if envid else None,
        postmaster=mask(postmaster),
        smtputf8=smtputf8,
        mail_name=mask(mail_name),
        hours=int(age) // 3600,
        days=maximal_queue_lifetime // 86400,
        retry_until=arrival + timedelta(seconds=maximal_queue_lifetime),
    )
    # Postfix returns only headers with delay and success notices, and with large mail
    # ("when truncating a large message, don't damage the MIME structure").
    headers_only = (
        kind != "failure" or (ret or "").upper() == "HDRS" or 0 < size_limit < len(original)
    )
    boundary = unique_boundary(f"{notice.queue_id}.{int(now.timestamp())}/{notice.host}", original)
    body = _body(notice, boundary, original, headers_only, postmaster_copy_to is not None)
    head = _top_headers(
        notice,
        postmaster_copy_to,
        message_id,
        boundary,
        eight_bit=not body.isascii(),
        threaded_original=original if threaded else None,
    )
    return head + body


def _body(
    notice: _Notice, boundary: str, original: bytes, headers_only: bool, postmaster_copy: bool
) -> bytes:
    """The three parts of the report and the closing boundary."""
    text = _encode(_notification(notice, postmaster_copy))
    status = _encode(_status_report(notice))
    returned = _returned_original(notice.sender, original, headers_only)
    description = _original_description(notice.kind, headers_only)
    return b"".join(
        [
            _part_head(boundary, "Notification", _text_type(text), text),
            text,
            _part_head(boundary, "Delivery report", _status_type(notice), status),
            status,
            _part_head(boundary, description, _original_type(headers_only, notice), returned),
            returned,
            _CRLF + b"--" + boundary.encode("ascii") + b"--" + _CRLF,
        ]
    )


def _encode(lines: list[str]) -> bytes:
    return b"".join(line.encode("utf-8") + _CRLF for line in lines)


def _top_headers(
    notice: _Notice,
    postmaster_copy_to: str | None,
    message_id: str,
    boundary: str,
    *,
    eight_bit: bool,
    threaded_original: bytes | None,
) -> bytes:
    """The notice's own header, in Postfix's order, then the MIME preamble."""
    copy = postmaster_copy_to is not None
    subject, postmaster_subject = _SUBJECT[notice.kind]
    to = mask(postmaster_copy_to) if postmaster_copy_to is not None else notice.sender
    lines = [
        f"From: MAILER-DAEMON@{notice.host} (Mail Delivery System)",
        f"Subject: {postmaster_subject if copy else subject}",
        f"To: {quote_822_local(to)}",
    ]
    original_id = mask(find_message_id(threaded_original)) if threaded_original else ""
    if original_id:
        lines += [f"References: {original_id}", f"In-Reply-To: {original_id}"]
    lines += [
        # RFC 3834 section 5: replies to the sender are auto-replied, the rest generated.
        f"Auto-Submitted: {'auto-generated' if copy else 'auto-replied'}",
        f"Date: {dsn_date(notice.now)}",
        f"Message-Id: <{mask(message_id).strip().strip('<>')}>",
        "MIME-Version: 1.0",
        "Content-Type: multipart/report; report-type=delivery-status;",
        f'\tboundary="{boundary}"',
        f"Content-Transfer-Encoding: {'8bit' if eight_bit else '7bit'}",
        "",
        "This is a MIME-encapsulated message.",
    ]
    return _encode(lines)


def _notification(notice: _Notice, postmaster_copy: bool) -> list[str]:
    """Part 1: the template text (not in postmaster copies), then one line per recipient."""
    lines: list[str] = []
    if not postmaster_copy:
        lines += [f"This is the mail system at host {notice.host}.", ""]
        lines += [
            line.format(postmaster=notice.postmaster, hours=notice.hours, days=notice.days)
            for line in _TEMPLATE[notice.kind]
        ]
        lines += ["", _SIGNATURE]
    for rcpt in notice.recipients:
        who = f"<{mask(rcpt.address)}>"
        if rcpt.expanded_from:
            who += f" (expanded from <{mask(rcpt.expanded_from)}>)"
        lines += ["", *wrap(f"{who}: {mask(rcpt.reason)}")]
    return lines


def _address_type(notice: _Notice, address: str) -> str:
    """RFC 6533 section 3: ``utf-8`` for a non-ASCII address of SMTPUTF8 mail."""
    return "utf-8" if notice.smtputf8 and not address.isascii() else "rfc822"


def _status_report(notice: _Notice) -> list[str]:
    """Part 2: the message/delivery-status fields (RFC 3464 sections 2.2 and 2.3)."""
    lines = [f"Reporting-MTA: dns; {notice.host}"]
    if notice.envid:
        lines.append(f"Original-Envelope-Id: {notice.envid}")
    lines.append(f"X-{notice.mail_name}-Queue-ID: {notice.queue_id}")
    if notice.sender:
        kind = _address_type(notice, notice.sender)
        lines.append(f"X-{notice.mail_name}-Sender: {kind}; {notice.sender}")
    lines.append(f"Arrival-Date: {dsn_date(notice.arrival)}")
    for rcpt in notice.recipients:
        lines += ["", *_recipient_fields(notice, rcpt)]
    return lines


def _recipient_fields(notice: _Notice, rcpt: DsnRecipient) -> list[str]:
    """One per-recipient block, in Postfix's field order."""
    address = mask(rcpt.address)
    lines = [f"Final-Recipient: {_address_type(notice, address)}; {address}"]
    if rcpt.original:
        lines.append(f"Original-Recipient: {xtext_text(rcpt.original)}")
    elif rcpt.expanded_from:
        before = mask(rcpt.expanded_from)
        lines.append(f"Original-Recipient: {_address_type(notice, before)}; {before}")
    lines += [f"Action: {rcpt.action}", f"Status: {rcpt.status}"]
    if rcpt.remote_mta:
        lines += fold(f"Remote-MTA: {typed(rcpt.remote_mta, 'dns')}")
    if rcpt.diagnostic:
        lines += fold(f"Diagnostic-Code: {typed(rcpt.diagnostic, 'smtp')}")
    else:
        lines += fold(f"Diagnostic-Code: X-{notice.mail_name}; {mask(rcpt.reason)}")
    if rcpt.last_attempt is not None:
        lines.append(f"Last-Attempt-Date: {dsn_date(rcpt.last_attempt)}")
    if notice.kind == "delay":
        lines.append(f"Will-Retry-Until: {dsn_date(rcpt.will_retry_until or notice.retry_until)}")
    return lines


def _returned_original(sender: str, original: bytes, headers_only: bool) -> bytes:
    """Part 3's body: Return-Path: (cleanup removed it) and the original, CRLF-terminated."""
    lines = crlf_lines(original)
    if headers_only:
        lines = header_block(lines)
    head = f"Return-Path: <{sender}>".encode()
    return b"".join(line + _CRLF for line in [head, *lines])


def _part_head(boundary: str, description: str, content_type: str, body: bytes) -> bytes:
    """A MIME part's boundary line and header; 8bit only when the body needs it."""
    lines = [
        "",
        f"--{boundary}",
        f"Content-Description: {description}",
        f"Content-Type: {content_type}",
    ]
    if not body.isascii():
        lines.append("Content-Transfer-Encoding: 8bit")
    return _encode([*lines, ""])


def _text_type(text: bytes) -> str:
    return "text/plain; charset=" + ("us-ascii" if text.isascii() else "utf-8")


def _status_type(notice: _Notice) -> str:
    return "message/global-delivery-status" if notice.smtputf8 else "message/delivery-status"


def _original_type(headers_only: bool, notice: _Notice) -> str:
    """RFC 6522 text/rfc822-headers or message/rfc822; RFC 6532's global forms."""
    if notice.smtputf8:
        return "message/global-headers" if headers_only else "message/global"
    return "text/rfc822-headers" if headers_only else "message/rfc822"


def _original_description(kind: NoticeKind, headers_only: bool) -> str:
    prefix = "" if kind == "success" else "Undelivered "
    return prefix + ("Message Headers" if headers_only else "Message")
