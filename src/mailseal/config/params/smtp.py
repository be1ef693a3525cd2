"""Parameters of the SMTP client (``smtp_*``), TLS aside, as in postconf(5).

Defaults are Postfix 3.7's. TLS is in ``tls_client``; the obsolete
``smtp_use_tls`` and ``smtp_enforce_tls`` are kept here so old configurations
load. The LMTP client's ``lmtp_*`` twins are not declared.
"""

from __future__ import annotations

from mailseal.config.kinds import (
    BoolKind,
    EnumKind,
    IntKind,
    ListKind,
    StrKind,
    TableListKind,
    TableRef,
    TimeKind,
)
from mailseal.config.param import Param

__all__ = ["SmtpParams"]


class SmtpParams:
    """The SMTP client: timeouts, DNS and addresses, SASL, connection reuse, workarounds."""

    __slots__ = ()

    # -- timeouts --------------------------------------------------------------------

    smtp_connect_timeout: Param[int] = Param(
        TimeKind("s", 0), "30s", "Time limit for a TCP connection; 0 uses the system's limit."
    )
    smtp_helo_timeout: Param[int] = Param(
        TimeKind("s", 1), "300s", "Time limit for the greeting and the EHLO/HELO reply."
    )
    smtp_mail_timeout: Param[int] = Param(
        TimeKind("s", 1), "300s", "Time limit for the MAIL FROM reply."
    )
    smtp_rcpt_timeout: Param[int] = Param(
        TimeKind("s", 1), "300s", "Time limit for each RCPT TO reply."
    )
    smtp_data_init_timeout: Param[int] = Param(
        TimeKind("s", 1), "120s", "Time limit for the DATA reply."
    )
    smtp_data_xfer_timeout: Param[int] = Param(
        TimeKind("s", 1), "180s", "Time limit for sending each piece of message content."
    )
    smtp_data_done_timeout: Param[int] = Param(
        TimeKind("s", 1), "600s", "Time limit for the reply after the final dot."
    )
    smtp_quit_timeout: Param[int] = Param(
        TimeKind("s", 1), "300s", "Time limit for the QUIT reply."
    )
    smtp_rset_timeout: Param[int] = Param(
        TimeKind("s", 1), "20s", "Time limit for the RSET reply when a connection is reused."
    )
    smtp_starttls_timeout: Param[int] = Param(
        TimeKind("s", 1), "300s", "Time limit for the TLS handshake and the TLS shutdown."
    )

    # -- DNS, addresses and greeting ---------------------------------------------------------

    smtp_host_lookup: Param[tuple[str, ...]] = Param(
        ListKind(), "dns", "How to find server addresses: dns, native (system resolver), or both."
    )
    smtp_dns_support_level: Param[str] = Param(
        EnumKind(("", "disabled", "enabled", "dnssec")),
        "",
        "DNS use: disabled, enabled, or dnssec (needed for DANE); empty: see disable_dns_lookups.",
    )
    disable_dns_lookups: Param[bool] = Param(
        BoolKind(), "no", "Obsolete: turn off DNS when smtp_dns_support_level is empty."
    )
    ignore_mx_lookup_error: Param[bool] = Param(
        BoolKind(), "no", "On MX lookup failure, try the domain's own address instead of waiting."
    )
    smtp_defer_if_no_mx_address_found: Param[bool] = Param(
        BoolKind(), "no", "Defer, rather than fall back, when no MX host has an address."
    )
    smtp_mx_address_limit: Param[int] = Param(
        IntKind(0), "5", "Most MX addresses tried per delivery; 0: no limit."
    )
    smtp_mx_session_limit: Param[int] = Param(
        IntKind(0), "2", "Most successful SMTP sessions per delivery; 0: no limit."
    )
    smtp_address_preference: Param[str] = Param(
        EnumKind(("any", "ipv4", "ipv6")),
        "any",
        "Address family tried first among equally preferred MX hosts.",
    )
    smtp_balance_inet_protocols: Param[bool] = Param(
        BoolKind(), "yes", "Mix IPv4 and IPv6 addresses so that one family cannot block delivery."
    )
    smtp_randomize_addresses: Param[bool] = Param(
        BoolKind(), "yes", "Shuffle equally preferred server addresses."
    )
    smtp_bind_address: Param[str] = Param(
        StrKind(), "", "Local IPv4 address for outgoing connections; empty lets the OS choose."
    )
    smtp_bind_address6: Param[str] = Param(
        StrKind(), "", "Local IPv6 address for outgoing connections; empty lets the OS choose."
    )
    smtp_bind_address_enforce: Param[bool] = Param(
        BoolKind(), "no", "Defer delivery when the bind address cannot be used."
    )
    dns_servers: Param[tuple[str, ...]] = Param(
        ListKind(),
        "",
        "mailseal: DNS servers to ask (addr, [addr]:port); empty uses /etc/resolv.conf.",
    )
    smtp_log_tls_field: Param[bool] = Param(
        BoolKind(),
        "no",
        "mailseal: add Postfix 3.11's tls=LEVEL field to delivery lines (not in pflogsumm 1.1.5).",
    )
    smtp_tcp_port: Param[str] = Param(
        StrKind(nonempty=True), "smtp", "Default server port (name or number) for deliveries."
    )
    smtp_helo_name: Param[str] = Param(
        StrKind(nonempty=True), "$myhostname", "Name sent in EHLO or HELO."
    )
    smtp_always_send_ehlo: Param[bool] = Param(
        BoolKind(), "yes", "Always greet with EHLO, even when the banner does not say ESMTP."
    )
    smtp_never_send_ehlo: Param[bool] = Param(
        BoolKind(), "no", "Always greet with HELO (no ESMTP extensions, no STARTTLS)."
    )
    smtp_skip_5xx_greeting: Param[bool] = Param(
        BoolKind(), "yes", "On a 5xx greeting, try the next server instead of bouncing."
    )
    smtp_skip_quit_response: Param[bool] = Param(
        BoolKind(), "yes", "Do not wait for the reply to QUIT."
    )
    smtp_quote_rfc821_envelope: Param[bool] = Param(
        BoolKind(), "yes", "Quote MAIL FROM and RCPT TO addresses that need it."
    )
    smtp_line_length_limit: Param[int] = Param(
        IntKind(0), "998", "Longer lines are folded when sent; 0: no limit."
    )
    smtp_discard_ehlo_keywords: Param[tuple[str, ...]] = Param(
        ListKind(), "", "EHLO keywords of the server to ignore (e.g. pipelining)."
    )
    smtp_discard_ehlo_keyword_address_maps: Param[tuple[TableRef, ...]] = Param(
        TableListKind(), "", "Per-server smtp_discard_ehlo_keywords, by server address."
    )
    smtp_generic_maps: Param[tuple[TableRef, ...]] = Param(
        TableListKind(), "", "Rewrite internal addresses into valid Internet ones on the way out."
    )
    smtp_send_xforward_command: Param[bool] = Param(
        BoolKind(), "no", "Send the original client's details with XFORWARD when offered."
    )
    smtp_address_verify_target: Param[str] = Param(
        EnumKind(("rcpt", "data")), "rcpt", "Stage at which address verification probes stop."
    )

    # -- SASL authentication -------------------------------------------------------------

    smtp_sasl_auth_enable: Param[bool] = Param(
        BoolKind(), "no", "Log in to servers that offer AUTH, using smtp_sasl_password_maps."
    )
    smtp_sasl_password_maps: Param[tuple[TableRef, ...]] = Param(
        TableListKind(), "", "Login name and password per destination (user:password)."
    )
    smtp_sasl_security_options: Param[tuple[str, ...]] = Param(
        ListKind(),
        "noplaintext, noanonymous",
        "Mechanism properties required without TLS.",
    )
    smtp_sasl_tls_security_options: Param[tuple[str, ...]] = Param(
        ListKind(),
        "$smtp_sasl_security_options",
        "Mechanism properties required once TLS is active.",
    )
    smtp_sasl_tls_verified_security_options: Param[tuple[str, ...]] = Param(
        ListKind(),
        "$smtp_sasl_tls_security_options",
        "Mechanism properties required over TLS with a verified server certificate.",
    )
    smtp_sasl_mechanism_filter: Param[tuple[str, ...]] = Param(
        ListKind(), "", "Which of the server's AUTH mechanisms may be used; empty: all."
    )
    smtp_sender_dependent_authentication: Param[bool] = Param(
        BoolKind(), "no", "Look up smtp_sasl_password_maps by sender address first."
    )
    smtp_sasl_auth_soft_bounce: Param[bool] = Param(
        BoolKind(), "yes", "Defer, rather than bounce, mail when AUTH fails."
    )
    smtp_sasl_auth_cache_name: Param[str] = Param(
        StrKind(), "", "Table remembering failed logins so they are not retried; empty: none."
    )
    smtp_sasl_auth_cache_time: Param[int] = Param(
        TimeKind("d", 0), "90d", "How long a failed login stays in smtp_sasl_auth_cache_name."
    )

    # -- connection reuse ------------------------------------------------------------

    smtp_connection_cache_on_demand: Param[bool] = Param(
        BoolKind(), "yes", "Keep connections open to destinations with a backlog."
    )
    smtp_connection_cache_destinations: Param[tuple[str, ...]] = Param(
        ListKind(), "", "Destinations whose connections are always kept open for reuse."
    )
    smtp_connection_cache_time_limit: Param[int] = Param(
        TimeKind("s", 1), "2s", "How long an unused cached connection stays open."
    )
    smtp_connection_reuse_time_limit: Param[int] = Param(
        TimeKind("s", 1), "300s", "How long one connection may be reused."
    )
    smtp_connection_reuse_count_limit: Param[int] = Param(
        IntKind(0), "0", "How many times one connection may be reused; 0: no limit."
    )

    # -- firewall workarounds --------------------------------------------------------

    smtp_pix_workarounds: Param[tuple[str, ...]] = Param(
        ListKind(),
        "disable_esmtp,delay_dotcrlf",
        "Workarounds for servers behind a Cisco PIX firewall's SMTP fixup.",
    )
    smtp_pix_workaround_maps: Param[tuple[TableRef, ...]] = Param(
        TableListKind(), "", "Per-destination smtp_pix_workarounds."
    )
    smtp_pix_workaround_threshold_time: Param[int] = Param(
        TimeKind("s", 0), "500s", "Queue age from which the PIX workarounds apply."
    )
    smtp_pix_workaround_delay_time: Param[int] = Param(
        TimeKind("s", 1), "10s", "Pause before the final dot with the delay_dotcrlf workaround."
    )

    # -- obsolete TLS switches -----------------------------------------------------------

    smtp_use_tls: Param[bool] = Param(
        BoolKind(), "no", "Obsolete: used only when smtp_tls_security_level is empty (may)."
    )
    smtp_enforce_tls: Param[bool] = Param(
        BoolKind(), "no", "Obsolete: used only when smtp_tls_security_level is empty (encrypt)."
    )
