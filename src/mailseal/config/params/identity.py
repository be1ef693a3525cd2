"""Parameters naming this host and its networks, and routing mail by address class.

Defaults are Postfix 3.7's, with two exceptions: ``myorigin`` is
``$myhostname`` (Postfix's default too, minus Debian's /etc/mailname), and
``mynetworks`` is the loopback networks, because mailseal does not enumerate
the host's interfaces the way Postfix computes that default from
``mynetworks_style``. ``myhostname`` and ``mydomain`` are computed exactly as
Postfix's mail_params.c computes them. Local and virtual delivery parameters
are in ``delivery``.
"""

from __future__ import annotations

from collections.abc import Callable

from mailseal.config.facts import SystemFacts
from mailseal.config.kinds import BoolKind, EnumKind, ListKind, StrKind, TableListKind, TableRef
from mailseal.config.param import Computed, Param
from mailseal.config.params.delivery import DeliveryParams

__all__ = ["IdentityParams"]

# The domain Postfix falls back on when the host name has no usable domain part.
_FALLBACK_DOMAIN = "localdomain"


def _myhostname(facts: SystemFacts, expanded: Callable[[str], str]) -> str:
    """The host name, made fully qualified with the fallback domain when it has no dot."""
    if "." in facts.hostname:
        return facts.hostname
    return f"{facts.hostname}.{_FALLBACK_DOMAIN}"


def _mydomain(facts: SystemFacts, expanded: Callable[[str], str]) -> str:
    """Postfix's check_mydomainname(): myhostname minus its first label, if two dots remain."""
    hostname = expanded("myhostname")
    dot = hostname.find(".")
    if dot < 0 or "." not in hostname[dot + 1 :]:
        return _FALLBACK_DOMAIN
    return hostname[dot + 1 :]


class IdentityParams(DeliveryParams):
    """Host and domain names, trusted networks, listening addresses, routing, rewriting."""

    __slots__ = ()

    # -- names -----------------------------------------------------------------------

    myhostname: Param[str] = Param(
        StrKind(nonempty=True),
        Computed("the host name, plus .localdomain when it has no dot", _myhostname),
        "Fully qualified name of this host, used in the banner, HELO and Received: headers.",
    )
    mydomain: Param[str] = Param(
        StrKind(nonempty=True),
        Computed("myhostname without its first label, else localdomain", _mydomain),
        "Domain of this host; the basis of several other defaults.",
    )
    myorigin: Param[str] = Param(
        StrKind(nonempty=True),
        "$myhostname",
        "Domain appended to locally posted addresses that have none.",
    )
    mydestination: Param[tuple[str, ...]] = Param(
        ListKind(),
        "$myhostname, localhost.$mydomain, localhost",
        "Domains (or tables of them) this host delivers locally, via local_transport.",
    )

    # -- networks and listening addresses -------------------------------------------------

    mynetworks: Param[tuple[str, ...]] = Param(
        ListKind(),
        "127.0.0.0/8 [::ffff:127.0.0.0]/104 [::1]/128",
        "Trusted client networks; loopback by default (mailseal does not scan interfaces).",
    )
    mynetworks_style: Param[str] = Param(
        EnumKind(("class", "subnet", "host")),
        "${{$compatibility_level} <level {2} ? {subnet} : {host}}",
        "How Postfix would derive mynetworks; mailseal's default mynetworks ignores it.",
    )
    inet_interfaces: Param[tuple[str, ...]] = Param(
        ListKind(),
        "all",
        "Addresses to receive mail on: all, loopback-only, or a list of IP addresses.",
    )
    inet_protocols: Param[tuple[str, ...]] = Param(
        ListKind(), "all", "IP versions to use: all, ipv4, ipv6, or ipv4 and ipv6."
    )
    proxy_interfaces: Param[tuple[str, ...]] = Param(
        ListKind(), "", "Addresses that reach this host through a proxy or NAT device."
    )
    permit_mx_backup_networks: Param[tuple[str, ...]] = Param(
        ListKind(), "", "Networks whose primary MX hosts permit_mx_backup will relay for."
    )
    parent_domain_matches_subdomains: Param[tuple[str, ...]] = Param(
        ListKind(),
        "debug_peer_list,fast_flush_domains,mynetworks,permit_mx_backup_networks,"
        "qmqpd_authorized_clients,relay_domains,smtpd_access_maps",
        "Features where a domain pattern also matches its subdomains without a leading dot.",
    )

    # -- routing ---------------------------------------------------------------------

    relayhost: Param[str] = Param(
        StrKind(), "", "Smart host for mail to remote domains ([host]:port); empty uses DNS MX."
    )
    relay_domains: Param[tuple[str, ...]] = Param(
        ListKind(),
        "${{$compatibility_level} <level {2} ? {$mydestination} : {}}",
        "Remote domains (or tables of them) this host accepts mail for and relays.",
    )
    relay_transport: Param[str] = Param(
        StrKind(nonempty=True), "relay", "Transport[:nexthop] for mail to relay_domains."
    )
    default_transport: Param[str] = Param(
        StrKind(nonempty=True), "smtp", "Transport[:nexthop] for mail to all other remote domains."
    )
    local_transport: Param[str] = Param(
        StrKind(nonempty=True), "local:$myhostname", "Transport[:nexthop] for mydestination mail."
    )
    virtual_transport: Param[str] = Param(
        StrKind(nonempty=True),
        "virtual",
        "Transport[:nexthop] for mail to virtual_mailbox_domains.",
    )
    fallback_transport: Param[str] = Param(
        StrKind(), "", "Transport for local recipients unknown to the local delivery agent."
    )
    fallback_transport_maps: Param[tuple[TableRef, ...]] = Param(
        TableListKind(), "", "Per-recipient fallback_transport overrides."
    )
    transport_maps: Param[tuple[TableRef, ...]] = Param(
        TableListKind(), "", "Tables mapping domains or addresses to transport:nexthop."
    )
    sender_dependent_relayhost_maps: Param[tuple[TableRef, ...]] = Param(
        TableListKind(), "", "Per-sender relayhost overrides."
    )
    sender_dependent_default_transport_maps: Param[tuple[TableRef, ...]] = Param(
        TableListKind(), "", "Per-sender default_transport overrides."
    )
    relocated_maps: Param[tuple[TableRef, ...]] = Param(
        TableListKind(), "", "Tables of moved users, bounced with their new address."
    )
    relay_recipient_maps: Param[tuple[TableRef, ...]] = Param(
        TableListKind(), "", "Valid recipients in relay_domains; empty accepts every address."
    )

    # -- address rewriting -------------------------------------------------------------

    append_dot_mydomain: Param[bool] = Param(
        BoolKind(),
        "${{$compatibility_level} <level {1} ? {yes} : {no}}",
        'Rewrite "user@host" as "user@host.$mydomain" (the MUA\'s job; off by default).',
    )
    append_at_myorigin: Param[bool] = Param(
        BoolKind(), "yes", 'Rewrite a bare "user" as "user@$myorigin" (leave this on).'
    )
    remote_header_rewrite_domain: Param[str] = Param(
        StrKind(),
        "",
        "Domain for incomplete header addresses from remote clients; empty leaves them.",
    )
    swap_bangpath: Param[bool] = Param(
        BoolKind(), "yes", 'Rewrite UUCP-style "site!user" as "user@site".'
    )
    allow_percent_hack: Param[bool] = Param(
        BoolKind(), "yes", 'Rewrite "user%domain" as "user@domain".'
    )
    recipient_delimiter: Param[str] = Param(
        StrKind(), "", 'Characters separating a user from an address extension ("user+ext").'
    )
    propagate_unmatched_extensions: Param[tuple[str, ...]] = Param(
        ListKind(),
        "canonical, virtual",
        "Lookups after which an address extension is kept on the rewritten address.",
    )
    canonical_maps: Param[tuple[TableRef, ...]] = Param(
        TableListKind(), "", "Address rewriting tables for senders and recipients."
    )
    sender_canonical_maps: Param[tuple[TableRef, ...]] = Param(
        TableListKind(), "", "Address rewriting tables for senders only."
    )
    recipient_canonical_maps: Param[tuple[TableRef, ...]] = Param(
        TableListKind(), "", "Address rewriting tables for recipients only."
    )
    canonical_classes: Param[tuple[str, ...]] = Param(
        ListKind(),
        "envelope_sender, envelope_recipient, header_sender, header_recipient",
        "Addresses that canonical_maps applies to.",
    )
    sender_canonical_classes: Param[tuple[str, ...]] = Param(
        ListKind(),
        "envelope_sender, header_sender",
        "Addresses that sender_canonical_maps applies to.",
    )
    recipient_canonical_classes: Param[tuple[str, ...]] = Param(
        ListKind(),
        "envelope_recipient, header_recipient",
        "Addresses that recipient_canonical_maps applies to.",
    )
    masquerade_domains: Param[tuple[str, ...]] = Param(
        ListKind(), "", "Domains that hide their subdomains (a.b.example.com becomes example.com)."
    )
    masquerade_classes: Param[tuple[str, ...]] = Param(
        ListKind(),
        "envelope_sender, header_sender, header_recipient",
        "Addresses that masquerading applies to.",
    )
    masquerade_exceptions: Param[tuple[str, ...]] = Param(
        ListKind(), "", "User names that are never masqueraded (e.g. root)."
    )
    smtputf8_enable: Param[bool] = Param(
        BoolKind(),
        "${{$compatibility_level} <level {1} ? {no} : {yes}}",
        "Support internationalized (UTF-8) addresses and headers, RFC 6531.",
    )

    # -- copies ------------------------------------------------------------------------

    always_bcc: Param[str] = Param(StrKind(), "", "Address that receives a copy of every message.")
    sender_bcc_maps: Param[tuple[TableRef, ...]] = Param(
        TableListKind(), "", "Per-sender address that receives a copy of the message."
    )
    recipient_bcc_maps: Param[tuple[TableRef, ...]] = Param(
        TableListKind(), "", "Per-recipient address that receives a copy of the message."
    )
