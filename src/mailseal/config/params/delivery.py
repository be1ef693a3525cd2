"""Parameters of final delivery: aliases, local mailboxes and virtual mailboxes.

Defaults are Postfix 3.7's. ``IdentityParams`` (in ``identity``) inherits this
family so that ``Config`` needs only the one base class for both.
``mailbox_command``, ``luser_relay`` and ``forward_path`` are raw: their ``$``
forms (``$user``, ``$home``, ``$recipient``...) are expanded per delivery.
"""

from __future__ import annotations

from mailseal.config.kinds import (
    BoolKind,
    IntKind,
    ListKind,
    SizeKind,
    StrKind,
    TableListKind,
    TableRef,
    TimeKind,
)
from mailseal.config.param import Param

__all__ = ["DeliveryParams"]


class DeliveryParams:
    """Aliases, local(8)-style mailbox delivery and virtual(8)-style mailbox hosting."""

    __slots__ = ()

    # -- recipients and aliases ----------------------------------------------------------

    local_recipient_maps: Param[tuple[TableRef, ...]] = Param(
        TableListKind(),
        "proxy:unix:passwd.byname $alias_maps",
        "Valid local recipients; mail to others is rejected. Empty accepts everyone.",
    )
    alias_maps: Param[tuple[TableRef, ...]] = Param(
        TableListKind(),
        "hash:/etc/aliases, nis:mail.aliases",
        "Alias tables used for local delivery.",
    )
    alias_database: Param[tuple[TableRef, ...]] = Param(
        TableListKind(),
        "hash:/etc/aliases",
        "Alias tables that the newaliases command rebuilds.",
    )
    owner_request_special: Param[bool] = Param(
        BoolKind(),
        "yes",
        "Treat owner-list and list-request aliases specially, as mailing lists need.",
    )
    expand_owner_alias: Param[bool] = Param(
        BoolKind(), "no", "Send bounces for an alias with an owner-alias to that owner's members."
    )
    allow_mail_to_commands: Param[tuple[str, ...]] = Param(
        ListKind(),
        "alias, forward",
        'Where "|command" deliveries are allowed: alias, forward, include.',
    )
    allow_mail_to_files: Param[tuple[str, ...]] = Param(
        ListKind(),
        "alias, forward",
        'Where "/file" deliveries are allowed: alias, forward, include.',
    )
    forward_path: Param[tuple[str, ...]] = Param(
        ListKind(),
        "$home/.forward${recipient_delimiter}${extension}, $home/.forward",
        "Where to look for a user's .forward file ($home, $user, $extension...).",
        raw=True,
    )
    luser_relay: Param[str] = Param(
        StrKind(),
        "",
        "Catch-all address for unknown local users ($user, $domain...); empty bounces.",
        raw=True,
    )

    # -- local mailboxes ---------------------------------------------------------------

    home_mailbox: Param[str] = Param(
        StrKind(),
        "",
        'Mailbox file relative to the home directory; end it with "/" for Maildir.',
    )
    mail_spool_directory: Param[str] = Param(
        StrKind(), "/var/mail", 'Directory of UNIX mailboxes; end it with "/" for Maildir.'
    )
    mailbox_command: Param[str] = Param(
        StrKind(),
        "",
        "Command that delivers to the mailbox instead (e.g. an LDA); runs as the user.",
        raw=True,
    )
    mailbox_command_maps: Param[tuple[TableRef, ...]] = Param(
        TableListKind(), "", "Per-user mailbox_command overrides."
    )
    mailbox_transport: Param[str] = Param(
        StrKind(), "", "Transport that takes over mailbox delivery for every local user."
    )
    mailbox_transport_maps: Param[tuple[TableRef, ...]] = Param(
        TableListKind(), "", "Per-user mailbox_transport overrides."
    )
    mailbox_size_limit: Param[int] = Param(
        SizeKind(), "51200000", "Largest mailbox or file written by local delivery; 0: no limit."
    )
    mailbox_delivery_lock: Param[tuple[str, ...]] = Param(
        ListKind(), "fcntl, dotlock", "Locks taken on a UNIX mailbox before delivery."
    )
    command_time_limit: Param[int] = Param(
        TimeKind("s", 1), "1000s", "Longest run time of a command that mail is delivered to."
    )
    local_command_shell: Param[str] = Param(
        StrKind(), "", "Shell that runs delivery commands; empty runs simple ones directly."
    )
    require_home_directory: Param[bool] = Param(
        BoolKind(), "no", "Defer delivery while a user's home directory is missing."
    )
    prepend_delivered_header: Param[tuple[str, ...]] = Param(
        ListKind(),
        "command, file, forward",
        "Deliveries that get a Delivered-To: header (command, file, forward).",
    )
    frozen_delivered_to: Param[bool] = Param(
        BoolKind(), "yes", "Record the Delivered-To: address once, before .forward expansion."
    )
    strict_mailbox_ownership: Param[bool] = Param(
        BoolKind(), "yes", "Defer delivery to a mailbox file that the user does not own."
    )

    # -- virtual domains ---------------------------------------------------------------

    virtual_alias_maps: Param[tuple[TableRef, ...]] = Param(
        TableListKind(),
        "$virtual_maps",
        "Tables that redirect addresses, in any domain, to other addresses.",
    )
    virtual_maps: Param[tuple[TableRef, ...]] = Param(
        TableListKind(), "", "Obsolete name of virtual_alias_maps (Postfix before 2.0)."
    )
    virtual_alias_domains: Param[tuple[str, ...]] = Param(
        ListKind(),
        "$virtual_alias_maps",
        "Domains whose every address is an alias to another address.",
    )
    virtual_alias_expansion_limit: Param[int] = Param(
        IntKind(1), "1000", "Most addresses one address may expand to through virtual aliases."
    )
    virtual_alias_recursion_limit: Param[int] = Param(
        IntKind(1), "1000", "Deepest nesting of virtual alias expansion."
    )
    virtual_mailbox_domains: Param[tuple[str, ...]] = Param(
        ListKind(),
        "$virtual_mailbox_maps",
        "Domains hosted in virtual mailboxes, delivered via virtual_transport.",
    )
    virtual_mailbox_maps: Param[tuple[TableRef, ...]] = Param(
        TableListKind(),
        "",
        "Valid virtual mailbox addresses and their mailbox paths under virtual_mailbox_base.",
    )
    virtual_mailbox_base: Param[str] = Param(
        StrKind(), "", "Directory that virtual_mailbox_maps paths are relative to."
    )
    virtual_mailbox_limit: Param[int] = Param(
        SizeKind(), "51200000", "Largest virtual mailbox or maildir file; 0: no limit."
    )
    virtual_mailbox_lock: Param[tuple[str, ...]] = Param(
        ListKind(), "fcntl, dotlock", "Locks taken on a virtual mailbox file before delivery."
    )
    virtual_minimum_uid: Param[int] = Param(
        IntKind(1), "100", "Lowest user ID virtual_uid_maps may return; lower ones defer mail."
    )
    virtual_uid_maps: Param[tuple[TableRef, ...]] = Param(
        TableListKind(), "", "User ID that owns each virtual mailbox."
    )
    virtual_gid_maps: Param[tuple[TableRef, ...]] = Param(
        TableListKind(), "", "Group ID that owns each virtual mailbox."
    )
