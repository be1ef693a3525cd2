"""Parameters of the queue: retries, lifetimes, delivery concurrency, bounces, notices.

Defaults are Postfix 3.7's. Of the per-transport overrides
(``transport_destination_concurrency_limit`` and the like) only those of the
stock ``smtp``, ``relay``, ``local`` and ``virtual`` transports are declared.
``2bounce_notice_recipient`` cannot be written as a class attribute (a Python
name cannot start with a digit), so it is attached after the class; read it
with ``config.value_of("2bounce_notice_recipient")``.
"""

from __future__ import annotations

from mailseal.config.kinds import BoolKind, IntKind, ListKind, SizeKind, StrKind, TimeKind
from mailseal.config.param import Param

__all__ = ["QueueParams"]


class QueueParams:
    """Queue scanning, retry and lifetime, delivery concurrency, bounces, postmaster notices."""

    __slots__ = ()

    # -- retries and lifetimes ---------------------------------------------------------

    queue_run_delay: Param[int] = Param(
        TimeKind("s", 1), "300s", "How often the deferred queue is scanned."
    )
    minimal_backoff_time: Param[int] = Param(
        TimeKind("s", 1), "300s", "Shortest wait before a deferred message is retried."
    )
    maximal_backoff_time: Param[int] = Param(
        TimeKind("s", 1), "4000s", "Longest wait before a deferred message is retried."
    )
    maximal_queue_lifetime: Param[int] = Param(
        TimeKind("d", 0), "5d", "How long a deferred message is retried before it bounces."
    )
    bounce_queue_lifetime: Param[int] = Param(
        TimeKind("d", 0), "5d", "How long an undeliverable bounce is retried before it is dropped."
    )
    delay_warning_time: Param[int] = Param(
        TimeKind("h", 0), "0h", "Warn the sender of mail delayed this long; 0: never warn."
    )
    confirm_delay_cleared: Param[bool] = Param(
        BoolKind(), "no", "Tell the sender when mail that was reported delayed is delivered."
    )
    transport_retry_time: Param[int] = Param(
        TimeKind("s", 1), "60s", "Pause before trying a failed delivery transport again."
    )
    defer_transports: Param[tuple[str, ...]] = Param(
        ListKind(), "", "Transports that deliver only on an explicit flush (sendmail -q)."
    )
    soft_bounce: Param[bool] = Param(
        BoolKind(), "no", "Safety net: turn permanent failures into deferrals (for testing)."
    )
    content_filter: Param[str] = Param(
        StrKind(), "", "Transport:nexthop of an after-queue content filter; empty: none."
    )

    # -- queue manager limits ------------------------------------------------------------

    qmgr_message_active_limit: Param[int] = Param(
        IntKind(1), "20000", "Most messages in the active queue."
    )
    qmgr_message_recipient_limit: Param[int] = Param(
        IntKind(1), "20000", "Most recipients held in memory across all messages."
    )
    qmgr_message_recipient_minimum: Param[int] = Param(
        IntKind(1), "10", "Recipients held in memory per message, whatever the other limits."
    )
    qmgr_clog_warn_time: Param[int] = Param(
        TimeKind("s", 0), "300s", "Least time between warnings about a congested queue; 0: none."
    )
    hopcount_limit: Param[int] = Param(
        IntKind(1), "50", "Received: headers after which a message is bounced as looping."
    )
    duplicate_filter_limit: Param[int] = Param(
        IntKind(0), "1000", "Addresses remembered to drop duplicates during alias expansion."
    )

    # -- delivery concurrency and batching -------------------------------------------------

    initial_destination_concurrency: Param[int] = Param(
        IntKind(1), "5", "Parallel deliveries to a destination before feedback adjusts it."
    )
    default_destination_concurrency_limit: Param[int] = Param(
        IntKind(0), "20", "Most parallel deliveries to one destination."
    )
    default_destination_recipient_limit: Param[int] = Param(
        IntKind(0), "50", "Most recipients per delivery; 1 makes each recipient a destination."
    )
    default_recipient_limit: Param[int] = Param(
        IntKind(0), "20000", "Most in-memory recipients per transport."
    )
    default_extra_recipient_limit: Param[int] = Param(
        IntKind(0), "1000", "Extra in-memory recipients per transport for messages in backlog."
    )
    default_destination_rate_delay: Param[int] = Param(
        TimeKind("s", 0), "0s", "Pause between deliveries to one destination; 0: no pause."
    )
    default_transport_rate_delay: Param[int] = Param(
        TimeKind("s", 0), "0s", "Pause between deliveries over one transport; 0: no pause."
    )
    default_destination_concurrency_failed_cohort_limit: Param[int] = Param(
        IntKind(0), "1", "Failed batches after which a destination is held as unavailable."
    )
    default_destination_concurrency_positive_feedback: Param[str] = Param(
        StrKind(nonempty=True), "1", "Concurrency increase after success: 1 or 1/concurrency."
    )
    default_destination_concurrency_negative_feedback: Param[str] = Param(
        StrKind(nonempty=True), "1", "Concurrency decrease after failure: 1 or 1/concurrency."
    )
    smtp_destination_concurrency_limit: Param[int] = Param(
        IntKind(0),
        "$default_destination_concurrency_limit",
        "Most parallel smtp deliveries to one destination.",
    )
    smtp_destination_recipient_limit: Param[int] = Param(
        IntKind(0),
        "$default_destination_recipient_limit",
        "Most recipients per smtp delivery.",
    )
    relay_destination_concurrency_limit: Param[int] = Param(
        IntKind(0),
        "$default_destination_concurrency_limit",
        "Most parallel relay deliveries to one destination.",
    )
    relay_destination_recipient_limit: Param[int] = Param(
        IntKind(0),
        "$default_destination_recipient_limit",
        "Most recipients per relay delivery.",
    )
    local_destination_concurrency_limit: Param[int] = Param(
        IntKind(0), "2", "Most parallel local deliveries to one recipient."
    )
    local_destination_recipient_limit: Param[int] = Param(
        IntKind(0), "1", "Most recipients per local delivery (1: each user separately)."
    )
    virtual_destination_concurrency_limit: Param[int] = Param(
        IntKind(0),
        "$default_destination_concurrency_limit",
        "Most parallel virtual mailbox deliveries to one destination.",
    )
    virtual_destination_recipient_limit: Param[int] = Param(
        IntKind(0),
        "$default_destination_recipient_limit",
        "Most recipients per virtual mailbox delivery.",
    )

    # -- bounces and notices ---------------------------------------------------------

    bounce_size_limit: Param[int] = Param(
        SizeKind(1), "50000", "Most bytes of the original message returned in a bounce."
    )
    bounce_template_file: Param[str] = Param(
        StrKind(), "", "File with custom bounce and delay message texts; empty: built in."
    )
    enable_threaded_bounces: Param[bool] = Param(
        BoolKind(), "no", "Send bounces as replies, threaded with the original message."
    )
    notify_classes: Param[tuple[str, ...]] = Param(
        ListKind(),
        "resource, software",
        "Problems reported to the postmaster: bounce, delay, policy, protocol, resource...",
    )
    bounce_notice_recipient: Param[str] = Param(
        StrKind(nonempty=True), "postmaster", "Who gets postmaster copies of bounces."
    )
    delay_notice_recipient: Param[str] = Param(
        StrKind(nonempty=True), "postmaster", "Who gets postmaster copies of delay warnings."
    )
    error_notice_recipient: Param[str] = Param(
        StrKind(nonempty=True),
        "postmaster",
        "Who gets notices of protocol, policy, resource and software problems.",
    )
    double_bounce_sender: Param[str] = Param(
        StrKind(nonempty=True),
        "double-bounce",
        "Sender of bounces about bounces; mail to it is discarded.",
    )
    empty_address_recipient: Param[str] = Param(
        StrKind(nonempty=True),
        "MAILER-DAEMON",
        "Where mail for the null (empty) address is delivered.",
    )
    enable_original_recipient: Param[bool] = Param(
        BoolKind(), "yes", "Keep the original recipient address for delivery status reports."
    )


def _attach(owner: type, name: str, param: Param[str]) -> None:
    """Declare a parameter whose Postfix name is not a Python identifier."""
    setattr(owner, name, param)
    param.__set_name__(owner, name)


_attach(
    QueueParams,
    "2bounce_notice_recipient",
    Param(StrKind(), "postmaster", "Who gets the notice when a bounce itself cannot be delivered."),
)
