"""The transports the queue manager runs itself: local(8)/virtual(8) Maildirs, discard, error.

- ``local`` and ``virtual`` deliver to the recipient's Maildir (``Delivered-To:``
  and ``Return-Path:`` prepended, a ``Delivered-To:`` loop refused with 5.4.6, as
  local(8) does), as the mailbox owner when running as root;
- ``discard`` reports success with its next hop as the reason (discard(8));
- ``error`` and ``retry`` bounce or defer with the status their next hop may
  start with (error(8): ``error:5.1.1 User unknown``);
- any other transport (lmtp, pipe, ...) has no agent here: the mail waits, deferred.

Runs in the queue manager's worker threads. Reads: enable_original_recipient, myhostname.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from mailseal.config.model import Config
from mailseal.delivery.headers import delivery_headers, has_delivered_to
from mailseal.delivery.maildir import (
    MaildirError,
    StagedMessage,
    complete_alone,
    stage_in_maildir,
)
from mailseal.queue.body import HEADER_SCAN
from mailseal.queue.envelope import Recipient
from mailseal.queue.store import QueuedMessage
from mailseal.services.delivery_outcome import Outcome
from mailseal.services.recipients import Destination, Verdict

__all__ = [
    "MAILDIR_TRANSPORTS",
    "MaildirJob",
    "deliver_local",
    "other_transport",
    "outcome_from_verdict",
    "plan_local",
]

MAILDIR_TRANSPORTS = ("local", "virtual")
_DSN = re.compile(r"[245]\.\d{1,3}\.\d{1,3}")


def deliver_local(
    config: Config,
    message: QueuedMessage,
    recipient: Recipient,
    dest: Destination,
    *,
    as_root: bool,
) -> Outcome:
    """Deliver one recipient of ``message`` by a transport that is not smtp."""
    planned = plan_local(config, message, recipient, dest, as_root=as_root)
    if isinstance(planned, Outcome):
        return planned
    try:
        planned.deliver(message)
    except MaildirError as error:
        return planned.failed(error)
    return planned.delivered()


@dataclass(frozen=True)
class MaildirJob:
    """A Maildir delivery decided on but not made: where to, and with which headers."""

    dest: Destination
    mailbox: Path
    prepend: bytes
    uid: int | None
    gid: int | None
    hostname: str

    def deliver(self, message: QueuedMessage) -> None:
        """Deliver now, synced; raise MaildirError on failure."""
        complete_alone(self.stage(message))

    def stage(self, message: QueuedMessage) -> StagedMessage:
        """Write to tmp/ for a group commit (delivery.maildir_batch); raise MaildirError."""
        return stage_in_maildir(
            self.mailbox,
            message.body,
            prepend=self.prepend,
            uid=self.uid,
            gid=self.gid,
            hostname=self.hostname,
        )

    def delivered(self) -> Outcome:
        return Outcome(
            "sent", "2.0.0", "delivered to maildir", self.dest.transport, self.dest.address
        )

    def failed(self, error: MaildirError) -> Outcome:
        status = "deferred" if error.temporary else "bounced"
        return Outcome(status, error.dsn, error.text, self.dest.transport, self.dest.address)


def plan_local(
    config: Config,
    message: QueuedMessage,
    recipient: Recipient,
    dest: Destination,
    *,
    as_root: bool,
) -> Outcome | MaildirJob:
    """A Maildir delivery to make, or the outcome when there is nothing to write."""
    if dest.transport not in MAILDIR_TRANSPORTS:
        return other_transport(dest)
    if dest.mailbox is None:
        return Outcome(
            "bounced", "5.3.0", "no Maildir for this recipient", dest.transport, dest.address
        )
    if has_delivered_to(message.body.head(HEADER_SCAN), dest.address):
        reason = f"mail forwarding loop for {dest.address}"
        return Outcome("bounced", "5.4.6", reason, dest.transport, dest.address)
    original = recipient.original if config.enable_original_recipient else None
    return MaildirJob(
        dest=dest,
        mailbox=Path(dest.mailbox),
        prepend=delivery_headers(message.envelope.sender, dest.address, original),
        uid=dest.uid if as_root else None,
        gid=dest.gid if as_root else None,
        hostname=config.myhostname,
    )


def other_transport(dest: Destination) -> Outcome:
    """discard(8) and error(8); anything else needs an agent mailseal does not have."""
    if dest.transport == "discard":
        return Outcome("sent", "2.0.0", dest.nexthop or "discarded", "none", dest.address)
    if dest.transport in ("error", "retry"):
        # error(8)'s nexthop may start with the status: "5.1.1 User unknown ...".
        dsn, _, text = (dest.nexthop or "mail delivery error").partition(" ")
        if not _DSN.fullmatch(dsn):
            dsn, text = ("4.0.0" if dest.transport == "retry" else "5.0.0"), dest.nexthop
        status = "deferred" if dsn.startswith("4") else "bounced"
        return Outcome(status, dsn, text or "mail delivery error", "none", dest.address)
    # A transport mailseal has no agent for (lmtp, pipe...): wait for the admin.
    reason = f"mail transport unavailable: {dest.transport}"
    return Outcome("deferred", "4.3.0", reason, "none", dest.address)


def outcome_from_verdict(verdict: Verdict, address: str) -> Outcome:
    """A lookup's refusal (unknown user, ...) as a delivery outcome."""
    status = "deferred" if 400 <= verdict.code < 500 else "bounced"
    return Outcome(status, verdict.enhanced, verdict.text, "none", address)
