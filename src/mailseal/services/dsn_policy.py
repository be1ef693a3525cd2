"""Who is told about a message's delivery, and when: the decisions around bounce(8).

- RFC 3461 section 4.1 NOTIFY per recipient (:func:`needs_notice`): NEVER, or a list of
  SUCCESS, FAILURE, DELAY; without NOTIFY Postfix reports failures and delays;
- the null sender never gets a notice (RFC 5321 section 4.5.5, :func:`should_bounce`);
- :func:`route_notice` is Postfix's ``bounce_notify_service.c`` / ``bounce_warn_service.c``
  choice: a notice to the sender comes from ``<>``; a notice about mail from ``<>`` (a
  failed bounce) goes to the postmaster from ``double_bounce_sender``, when
  ``notify_classes`` asks for it; a notice about a double bounce is never sent;
- :func:`delay_warning_due` is qmgr's one-warning rule for ``delay_warning_time``.

Parameters the caller passes in: notify_classes, double_bounce_sender (qualified),
2bounce_notice_recipient, delay_notice_recipient, delay_warning_time.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import Enum
from typing import Literal

__all__ = [
    "NoticeDestination",
    "NoticeKind",
    "NoticeRoute",
    "delay_warning_due",
    "needs_notice",
    "route_notice",
    "should_bounce",
]

NoticeKind = Literal["failure", "delay", "success"]

# RFC 3461 section 4.1: the NOTIFY keywords a recipient may ask for.
_NOTIFY_KEYWORD: dict[str, str] = {"failure": "FAILURE", "delay": "DELAY", "success": "SUCCESS"}


class NoticeRoute(Enum):
    """Where a notice about a message goes (Postfix's bounce_notify_service.c)."""

    SENDER = "sender"  # a single bounce: from <>, to the envelope sender
    POSTMASTER = "postmaster"  # the sender was <>: from double_bounce_sender to postmaster
    DISCARD = "discard"  # nobody may be told (a failed double bounce, or not configured)


@dataclass(frozen=True)
class NoticeDestination:
    """The envelope of a notice; ``postmaster_copy`` selects the postmaster wording."""

    route: NoticeRoute
    envelope_sender: str = ""
    recipient: str = ""

    @property
    def postmaster_copy(self) -> bool:
        return self.route is NoticeRoute.POSTMASTER


def should_bounce(sender: str) -> bool:
    """False for the null sender: a notice is never sent about a notice (RFC 5321 4.5.5).

    ``MAILER-DAEMON`` as a real sender address is mail like any other; Postfix does not
    treat it specially either.
    """
    return sender.strip("<>") != ""


def route_notice(
    kind: NoticeKind,
    sender: str,
    *,
    double_bounce_address: str,
    postmaster_recipient: str,
    notify_classes: Collection[str],
) -> NoticeDestination:
    """Who gets the failure or delay notice about a message from ``sender``.

    ``double_bounce_address`` is ``double_bounce_sender@myhostname``;
    ``postmaster_recipient`` is ``2bounce_notice_recipient`` for failures and
    ``delay_notice_recipient`` for delays. A notice about a notice (sender ``<>``) goes
    to that postmaster only when ``notify_classes`` has ``bounce``/``2bounce`` (failures)
    or ``delay`` (delays), as in Postfix; a notice about a double bounce is never sent
    (Postfix logs "undeliverable postmaster notification discarded").
    """
    if sender.lower() == double_bounce_address.lower():
        return NoticeDestination(NoticeRoute.DISCARD)
    if should_bounce(sender):
        return NoticeDestination(NoticeRoute.SENDER, "", sender)
    classes = {name.lower() for name in notify_classes}
    wanted = {"bounce", "2bounce"} if kind == "failure" else {kind}
    if classes & wanted:
        return NoticeDestination(
            NoticeRoute.POSTMASTER, double_bounce_address, postmaster_recipient
        )
    return NoticeDestination(NoticeRoute.DISCARD)


def needs_notice(kind: NoticeKind, recipient_notify: str | None) -> bool:
    """Does the recipient's RFC 3461 NOTIFY (section 4.1) ask for a notice of ``kind``?

    Without NOTIFY (None or ""), failures and delays are reported and successes are not:
    Postfix's compatibility rule (RFC 3461 section 4.1 leaves DELAY to the MTA).
    """
    if not recipient_notify:
        return kind != "success"
    keywords = {word.strip().upper() for word in recipient_notify.split(",")}
    if "NEVER" in keywords:
        return False
    return _NOTIFY_KEYWORD[kind] in keywords


def delay_warning_due(
    arrival: datetime, now: datetime, delay_warning_time: timedelta | int, already_warned: bool
) -> bool:
    """Postfix's qmgr rule: one warning once the message is ``delay_warning_time`` old.

    ``delay_warning_time`` is a timedelta or seconds (the Config value); zero disables
    warnings, as ``delay_warning_time = 0h`` (the default) does.
    """
    if isinstance(delay_warning_time, int):
        delay_warning_time = timedelta(seconds=delay_warning_time)
    if already_warned or delay_warning_time <= timedelta(0):
        return False
    return now - arrival >= delay_warning_time
