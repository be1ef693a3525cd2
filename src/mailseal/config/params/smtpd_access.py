"""Parameters of the SMTP server's access control: restriction lists and reply codes.

Defaults are Postfix 3.7's. Restriction lists mix restriction names, their
arguments and lookup tables, so they are plain lists; ``mailseal.smtpd``
interprets them. Reply codes are bounded to 400..599, the only codes that
make sense for a rejection (Postfix itself checks no range).
``SmtpdParams`` (in ``smtpd``) inherits this family.
"""

from __future__ import annotations

from mailseal.config.kinds import BoolKind, EnumKind, IntKind, ListKind, StrKind
from mailseal.config.param import Param

__all__ = ["SmtpdAccessParams"]

# SMTP reply codes for rejections and deferrals: 4xx (try again) or 5xx (permanent).
_REPLY_CODE = IntKind(400, 599)
_TEMPFAIL_ACTIONS = EnumKind(("defer", "defer_if_permit"))


class SmtpdAccessParams:
    """smtpd_*_restrictions, restriction classes, reply codes and tempfail actions."""

    __slots__ = ()

    # -- restriction lists -------------------------------------------------------------

    smtpd_client_restrictions: Param[tuple[str, ...]] = Param(
        ListKind(), "", "Restrictions applied when a client connects."
    )
    smtpd_helo_restrictions: Param[tuple[str, ...]] = Param(
        ListKind(), "", "Restrictions applied to the HELO/EHLO name."
    )
    smtpd_sender_restrictions: Param[tuple[str, ...]] = Param(
        ListKind(), "", "Restrictions applied to the MAIL FROM address."
    )
    smtpd_relay_restrictions: Param[tuple[str, ...]] = Param(
        ListKind(),
        "${{$compatibility_level} <level {1} ? {} : "
        "{permit_mynetworks, permit_sasl_authenticated, defer_unauth_destination}}",
        "Relay control on RCPT TO: who may send to domains this host does not serve.",
    )
    smtpd_recipient_restrictions: Param[tuple[str, ...]] = Param(
        ListKind(), "", "Spam and policy restrictions applied to each RCPT TO address."
    )
    smtpd_relay_before_recipient_restrictions: Param[bool] = Param(
        BoolKind(),
        "${{$compatibility_level} <level {3.6} ? {no} : {yes}}",
        "Evaluate smtpd_relay_restrictions before smtpd_recipient_restrictions.",
    )
    smtpd_data_restrictions: Param[tuple[str, ...]] = Param(
        ListKind(), "", "Restrictions applied to the DATA command."
    )
    smtpd_end_of_data_restrictions: Param[tuple[str, ...]] = Param(
        ListKind(), "", "Restrictions applied once the message content has arrived."
    )
    smtpd_etrn_restrictions: Param[tuple[str, ...]] = Param(
        ListKind(), "", "Restrictions applied to the ETRN command."
    )
    smtpd_restriction_classes: Param[tuple[str, ...]] = Param(
        ListKind(), "", "Names of admin-defined restriction lists usable in access tables."
    )
    smtpd_delay_reject: Param[bool] = Param(
        BoolKind(), "yes", "Wait until RCPT TO before rejecting, so rejects name the recipient."
    )
    smtpd_helo_required: Param[bool] = Param(
        BoolKind(), "no", "Require HELO or EHLO before MAIL FROM."
    )
    smtpd_reject_unlisted_recipient: Param[bool] = Param(
        BoolKind(), "yes", "Reject recipients not listed in this host's recipient tables."
    )
    smtpd_reject_unlisted_sender: Param[bool] = Param(
        BoolKind(), "no", "Reject senders in this host's domains not in its recipient tables."
    )
    smtpd_null_access_lookup_key: Param[str] = Param(
        StrKind(nonempty=True), "<>", "Key that stands for the null sender in access tables."
    )
    smtpd_log_access_permit_actions: Param[tuple[str, ...]] = Param(
        ListKind(), "", "Permit actions that are logged like rejects (e.g. permit_mynetworks)."
    )
    show_user_unknown_table_name: Param[bool] = Param(
        BoolKind(), "yes", 'Name the recipient table in "User unknown" replies.'
    )

    # -- reply codes -----------------------------------------------------------------

    access_map_reject_code: Param[int] = Param(
        _REPLY_CODE, "554", "Reply code when an access table says REJECT."
    )
    access_map_defer_code: Param[int] = Param(
        _REPLY_CODE, "450", "Reply code when an access table says DEFER."
    )
    reject_code: Param[int] = Param(_REPLY_CODE, "554", "Reply code of the reject restriction.")
    defer_code: Param[int] = Param(_REPLY_CODE, "450", "Reply code of the defer restriction.")
    invalid_hostname_reject_code: Param[int] = Param(
        _REPLY_CODE, "501", "Reply code for a syntactically invalid HELO name."
    )
    non_fqdn_reject_code: Param[int] = Param(
        _REPLY_CODE, "504", "Reply code for a HELO name or address that is not fully qualified."
    )
    unknown_client_reject_code: Param[int] = Param(
        _REPLY_CODE, "450", "Reply code for a client without valid reverse DNS."
    )
    unknown_hostname_reject_code: Param[int] = Param(
        _REPLY_CODE, "450", "Reply code for a HELO name without DNS A or MX records."
    )
    unknown_address_reject_code: Param[int] = Param(
        _REPLY_CODE, "450", "Reply code for an address whose domain does not resolve."
    )
    unknown_local_recipient_reject_code: Param[int] = Param(
        _REPLY_CODE, "550", "Reply code for a local recipient missing from local_recipient_maps."
    )
    unknown_relay_recipient_reject_code: Param[int] = Param(
        _REPLY_CODE, "550", "Reply code for a relay recipient missing from relay_recipient_maps."
    )
    unknown_virtual_alias_reject_code: Param[int] = Param(
        _REPLY_CODE, "550", "Reply code for an unknown address in a virtual alias domain."
    )
    unknown_virtual_mailbox_reject_code: Param[int] = Param(
        _REPLY_CODE, "550", "Reply code for an unknown address in a virtual mailbox domain."
    )
    relay_domains_reject_code: Param[int] = Param(
        _REPLY_CODE, "554", "Reply code when relaying is refused."
    )
    maps_rbl_reject_code: Param[int] = Param(
        _REPLY_CODE, "554", "Reply code when a client is listed in a DNS blocklist."
    )
    plaintext_reject_code: Param[int] = Param(
        _REPLY_CODE, "450", "Reply code when a restriction requires TLS that is not in use."
    )
    multi_recipient_bounce_reject_code: Param[int] = Param(
        _REPLY_CODE, "550", "Reply code of reject_multi_recipient_bounce."
    )
    unverified_recipient_reject_code: Param[int] = Param(
        _REPLY_CODE, "450", "Reply code when recipient address verification fails."
    )
    unverified_sender_reject_code: Param[int] = Param(
        _REPLY_CODE, "450", "Reply code when sender address verification fails."
    )
    unverified_recipient_defer_code: Param[int] = Param(
        _REPLY_CODE, "450", "Reply code while recipient address verification is pending."
    )
    unverified_sender_defer_code: Param[int] = Param(
        _REPLY_CODE, "450", "Reply code while sender address verification is pending."
    )

    # -- temporary failures ------------------------------------------------------------

    reject_tempfail_action: Param[str] = Param(
        _TEMPFAIL_ACTIONS,
        "defer_if_permit",
        "When a reject check fails temporarily: defer now, or only if mail would pass.",
    )
    unknown_address_tempfail_action: Param[str] = Param(
        _TEMPFAIL_ACTIONS,
        "$reject_tempfail_action",
        "reject_tempfail_action for reject_unknown_sender/recipient_domain.",
    )
    unknown_helo_hostname_tempfail_action: Param[str] = Param(
        _TEMPFAIL_ACTIONS,
        "$reject_tempfail_action",
        "reject_tempfail_action for reject_unknown_helo_hostname.",
    )
    unverified_recipient_tempfail_action: Param[str] = Param(
        _TEMPFAIL_ACTIONS,
        "$reject_tempfail_action",
        "reject_tempfail_action for reject_unverified_recipient.",
    )
    unverified_sender_tempfail_action: Param[str] = Param(
        _TEMPFAIL_ACTIONS,
        "$reject_tempfail_action",
        "reject_tempfail_action for reject_unverified_sender.",
    )
