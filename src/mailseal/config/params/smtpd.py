"""Parameters of the SMTP server (``smtpd_*`` and friends), TLS aside, as in postconf(5).

Defaults are Postfix 3.7's except ``smtpd_sasl_type`` (mailseal's built-in
backend) and ``smtpd_forbid_bare_newline`` (``normalize``, the Postfix 3.9+
default that closes SMTP smuggling). TLS is in ``tls_server``; restriction
lists and reply codes are in ``smtpd_access``, inherited here. The obsolete
``smtpd_use_tls`` and ``smtpd_enforce_tls`` are kept so old configurations load.
"""

from __future__ import annotations

from mailseal.config.kinds import (
    BoolKind,
    EnumKind,
    IntKind,
    ListKind,
    SizeKind,
    StrKind,
    TableListKind,
    TableRef,
    TimeKind,
)
from mailseal.config.param import Param
from mailseal.config.params.smtpd_access import SmtpdAccessParams

__all__ = ["SASL_TYPES", "SmtpdParams"]

# "mailseal" is the built-in passwd-file backend; the others are Postfix's plug-ins.
SASL_TYPES = ("mailseal", "cyrus", "dovecot")


class SmtpdParams(SmtpdAccessParams):
    """The SMTP server: session, limits, rates, SASL, proxies, milters, legacy TLS switches."""

    __slots__ = ()

    # -- session -----------------------------------------------------------------------

    smtpd_banner: Param[str] = Param(
        StrKind(nonempty=True),
        "$myhostname ESMTP $mail_name",
        "Text after 220 in the greeting; it must start with the host name.",
    )
    smtpd_timeout: Param[int] = Param(
        TimeKind("s", 1),
        "${stress?{10}:{300}}s",
        "How long to wait for a client command, and to send a reply.",
    )
    smtpd_starttls_timeout: Param[int] = Param(
        TimeKind("s", 1),
        "${stress?{10}:{300}}s",
        "Time limit for the TLS handshake and the TLS shutdown.",
    )
    smtpd_per_request_deadline: Param[bool] = Param(
        BoolKind(),
        "yes",
        "smtpd_timeout bounds a whole request (a command, DATA), not each read (on in mailseal).",
    )
    smtpd_min_data_rate: Param[int] = Param(
        IntKind(1),
        "500",
        "With smtpd_per_request_deadline: bytes per second that extend a DATA deadline.",
    )
    smtpd_pregreet_wait: Param[int] = Param(
        TimeKind("s", 0),
        "1s",
        "mailseal: pause before the greeting and drop clients that talk first (0 = off).",
    )
    smtpd_pregreet_exclusions: Param[tuple[str, ...]] = Param(
        ListKind(),
        "$mynetworks",
        "mailseal: clients that skip the smtpd_pregreet_wait pause.",
    )
    smtpd_peername_lookup: Param[bool] = Param(
        BoolKind(), "yes", "Look up client host names in DNS; no logs every client as unknown."
    )
    smtpd_client_port_logging: Param[bool] = Param(
        BoolKind(), "no", "Log the client's port as well as its name and address."
    )
    smtpd_hide_client_session: Param[bool] = Param(
        BoolKind(), "no", "Leave client name, address and session out of Received: headers."
    )
    disable_vrfy_command: Param[bool] = Param(
        BoolKind(), "no", "Turn off VRFY, which lets clients probe for valid addresses."
    )
    smtpd_noop_commands: Param[tuple[str, ...]] = Param(
        ListKind(), "", "Commands answered with a plain 250 Ok and otherwise ignored."
    )
    smtpd_forbidden_commands: Param[tuple[str, ...]] = Param(
        ListKind(),
        "CONNECT GET POST regexp:{{/^[^A-Z]/ Bogus}}",
        "Commands that end the session at once (web proxies probing an SMTP port).",
    )
    smtpd_discard_ehlo_keywords: Param[tuple[str, ...]] = Param(
        ListKind(), "", "EHLO keywords (e.g. pipelining, chunking) not to announce or accept."
    )
    smtpd_discard_ehlo_keyword_address_maps: Param[tuple[TableRef, ...]] = Param(
        TableListKind(), "", "Per-client smtpd_discard_ehlo_keywords, by client address."
    )
    smtpd_reject_footer: Param[str] = Param(
        StrKind(),
        "",
        "Text appended to every 4xx/5xx reply (e.g. a contact address).",
        raw=True,
    )
    smtpd_reject_footer_maps: Param[tuple[TableRef, ...]] = Param(
        TableListKind(), "", "Per-reply smtpd_reject_footer, keyed by the reply text."
    )
    strict_rfc821_envelopes: Param[bool] = Param(
        BoolKind(), "no", "Require <> around MAIL FROM and RCPT TO addresses, without comments."
    )
    smtpd_delay_open_until_valid_rcpt: Param[bool] = Param(
        BoolKind(), "yes", "Create the queue file only once a recipient is accepted."
    )
    local_header_rewrite_clients: Param[tuple[str, ...]] = Param(
        ListKind(),
        "permit_inet_interfaces",
        "Clients whose incomplete header addresses are completed as if posted locally.",
    )

    # -- line endings (SMTP smuggling) -------------------------------------------------

    smtpd_forbid_bare_newline: Param[str] = Param(
        EnumKind(("normalize", "yes", "reject", "no")),
        "normalize",
        "Bare LF line ends: normalize (yes) treats them as CRLF, reject refuses them.",
    )
    smtpd_forbid_bare_newline_exclusions: Param[tuple[str, ...]] = Param(
        ListKind(), "$mynetworks", "Clients exempt from smtpd_forbid_bare_newline."
    )
    smtpd_forbid_bare_newline_reject_code: Param[int] = Param(
        IntKind(400, 599), "550", "Reply code when smtpd_forbid_bare_newline rejects."
    )
    smtpd_forbid_unauth_pipelining: Param[bool] = Param(
        BoolKind(),
        "yes",
        "Drop clients that pipeline commands before EHLO offered it (Postfix 3.9+ default).",
    )

    # -- size and count limits -------------------------------------------------------------

    message_size_limit: Param[int] = Param(
        SizeKind(), "10240000", "Largest message accepted, in bytes, envelope included; 0: none."
    )
    line_length_limit: Param[int] = Param(
        SizeKind(512), "2048", "Longer lines are split on input and joined again on delivery."
    )
    header_size_limit: Param[int] = Param(
        SizeKind(1), "102400", "Most bytes in one message header; the excess is discarded."
    )
    smtpd_recipient_limit: Param[int] = Param(
        IntKind(1), "1000", "Most recipients accepted per message."
    )
    smtpd_recipient_overshoot_limit: Param[int] = Param(
        IntKind(1), "1000", "Recipients beyond smtpd_recipient_limit before each counts as error."
    )
    smtpd_soft_error_limit: Param[int] = Param(
        IntKind(1), "10", "Client errors after which each reply is delayed."
    )
    smtpd_hard_error_limit: Param[int] = Param(
        IntKind(1), "${stress?{1}:{20}}", "Client errors after which the session is dropped."
    )
    smtpd_error_sleep_time: Param[int] = Param(
        TimeKind("s", 0), "1s", "Delay before replies once the soft error limit is reached."
    )
    smtpd_junk_command_limit: Param[int] = Param(
        IntKind(1),
        "${stress?{1}:{100}}",
        "NOOP, VRFY, ETRN or RSET commands allowed before each counts as an error.",
    )
    smtpd_history_flush_threshold: Param[int] = Param(
        IntKind(1), "100", "Command history lines kept for postmaster notices."
    )

    # -- rate and concurrency limits (anvil) -----------------------------------------------

    smtpd_client_connection_count_limit: Param[int] = Param(
        IntKind(0), "50", "Simultaneous connections per client; 0: no limit."
    )
    smtpd_client_connection_rate_limit: Param[int] = Param(
        IntKind(0), "0", "Connections per client per anvil_rate_time_unit; 0: no limit."
    )
    smtpd_client_message_rate_limit: Param[int] = Param(
        IntKind(0), "0", "Messages per client per anvil_rate_time_unit; 0: no limit."
    )
    smtpd_client_recipient_rate_limit: Param[int] = Param(
        IntKind(0), "0", "Recipients per client per anvil_rate_time_unit; 0: no limit."
    )
    smtpd_client_auth_rate_limit: Param[int] = Param(
        IntKind(0), "0", "AUTH attempts per client per anvil_rate_time_unit; 0: no limit."
    )
    smtpd_client_new_tls_session_rate_limit: Param[int] = Param(
        IntKind(0), "0", "New TLS sessions per client per anvil_rate_time_unit; 0: no limit."
    )
    smtpd_client_event_limit_exceptions: Param[tuple[str, ...]] = Param(
        ListKind(),
        "${smtpd_client_connection_limit_exceptions:$mynetworks}",
        "Clients exempt from the connection, rate and count limits.",
    )
    smtpd_client_connection_limit_exceptions: Param[tuple[str, ...]] = Param(
        ListKind(), "", "Obsolete name of smtpd_client_event_limit_exceptions."
    )
    anvil_rate_time_unit: Param[int] = Param(
        TimeKind("s", 1), "60s", "Time unit of the smtpd_client_*_rate_limit parameters."
    )
    anvil_status_update_time: Param[int] = Param(
        TimeKind("s", 1), "600s", "How often the peak connection and rate figures are logged."
    )

    # -- SASL authentication ---------------------------------------------------------------

    smtpd_sasl_auth_enable: Param[bool] = Param(BoolKind(), "no", "Offer SMTP AUTH to clients.")
    smtpd_sasl_type: Param[str] = Param(
        EnumKind(SASL_TYPES),
        "mailseal",
        "mailseal: built-in passwd-file backend (mailseal's default; Postfix's default is cyrus).",
    )
    smtpd_sasl_path: Param[str] = Param(
        StrKind(), "smtpd", "Backend-specific location: a config name, socket or file."
    )
    smtpd_sasl_passwd_file: Param[str] = Param(
        StrKind(),
        "$config_directory/sasl_passwd",
        "mailseal: the mailseal backend's users, one user:{SCHEME}hash line each (Dovecot format).",
    )
    smtpd_sasl_verify_concurrency: Param[int] = Param(
        IntKind(1),
        "2",
        "mailseal: password checks run at once off the event loop (argon2 is slow on purpose).",
    )
    smtpd_worker_processes: Param[int] = Param(
        IntKind(0),
        "0",
        "mailseal: smtpd processes; 0: one per CPU core (within maxproc), 1: in the master.",
    )
    smtpd_sasl_response_limit: Param[int] = Param(
        IntKind(1), "12288", "Longest SASL response line a client may send, in bytes."
    )
    smtpd_sasl_service: Param[str] = Param(
        StrKind(nonempty=True), "smtp", "Service name passed to the SASL backend."
    )
    smtpd_sasl_security_options: Param[tuple[str, ...]] = Param(
        ListKind(), "noanonymous", "Mechanism properties required without TLS (e.g. noplaintext)."
    )
    smtpd_sasl_tls_security_options: Param[tuple[str, ...]] = Param(
        ListKind(),
        "$smtpd_sasl_security_options",
        "Mechanism properties required once TLS is active.",
    )
    smtpd_sasl_mechanism_filter: Param[tuple[str, ...]] = Param(
        ListKind(), "!external, static:rest", "Which of the backend's mechanisms are offered."
    )
    smtpd_sasl_local_domain: Param[str] = Param(
        StrKind(), "", "Authentication realm added to login names that have none."
    )
    smtpd_sasl_authenticated_header: Param[bool] = Param(
        BoolKind(), "no", "Put the login name in the Received: header."
    )
    smtpd_sasl_exceptions_networks: Param[tuple[str, ...]] = Param(
        ListKind(), "", "Clients that are not offered AUTH."
    )
    smtpd_sender_login_maps: Param[tuple[TableRef, ...]] = Param(
        TableListKind(), "", "Which login names may use which MAIL FROM addresses."
    )
    broken_sasl_auth_clients: Param[bool] = Param(
        BoolKind(), "no", 'Also announce AUTH as "AUTH=", for very old Outlook clients.'
    )

    # -- proxies, XCLIENT, policy services -----------------------------------------------

    smtpd_authorized_xclient_hosts: Param[tuple[str, ...]] = Param(
        ListKind(), "", "Clients (e.g. a front-end proxy) allowed to use XCLIENT."
    )
    smtpd_authorized_xforward_hosts: Param[tuple[str, ...]] = Param(
        ListKind(), "", "Clients (e.g. a content filter) allowed to use XFORWARD."
    )
    smtpd_upstream_proxy_protocol: Param[str] = Param(
        EnumKind(("", "haproxy")), "", "Proxy protocol spoken by a load balancer in front."
    )
    smtpd_upstream_proxy_timeout: Param[int] = Param(
        TimeKind("s", 1), "5s", "Time limit for reading the upstream proxy protocol header."
    )
    smtpd_proxy_filter: Param[str] = Param(
        StrKind(), "", "Before-queue content filter (host:port or unix:path); empty: none."
    )
    smtpd_proxy_ehlo: Param[str] = Param(
        StrKind(), "$myhostname", "EHLO name sent to the before-queue content filter."
    )
    smtpd_proxy_timeout: Param[int] = Param(
        TimeKind("s", 1), "100s", "Time limit for talking to the before-queue content filter."
    )
    smtpd_proxy_options: Param[tuple[str, ...]] = Param(
        ListKind(), "", "Options for the before-queue content filter (speed_adjust)."
    )
    smtpd_policy_service_timeout: Param[int] = Param(
        TimeKind("s", 1), "100s", "Time limit for one policy service query."
    )
    smtpd_policy_service_max_idle: Param[int] = Param(
        TimeKind("s", 1), "300s", "Close an idle policy service connection after this."
    )
    smtpd_policy_service_max_ttl: Param[int] = Param(
        TimeKind("s", 1), "1000s", "Close a policy service connection after this long."
    )
    smtpd_policy_service_try_limit: Param[int] = Param(
        IntKind(1), "2", "Attempts to reach a policy service per query."
    )
    smtpd_policy_service_retry_delay: Param[int] = Param(
        TimeKind("s", 1), "1s", "Pause between attempts to reach a policy service."
    )
    smtpd_policy_service_request_limit: Param[int] = Param(
        IntKind(0), "0", "Queries per policy service connection before reconnecting; 0: none."
    )
    smtpd_policy_service_default_action: Param[str] = Param(
        StrKind(nonempty=True),
        "451 4.3.5 Server configuration problem",
        "Reply when a policy service cannot be reached.",
    )

    # -- milters ---------------------------------------------------------------------

    smtpd_milters: Param[tuple[str, ...]] = Param(
        ListKind(), "", "Mail filters (milters) applied to mail received over SMTP."
    )
    non_smtpd_milters: Param[tuple[str, ...]] = Param(
        ListKind(), "", "Mail filters applied to locally submitted mail."
    )
    smtpd_milter_maps: Param[tuple[TableRef, ...]] = Param(
        TableListKind(), "", "Per-client smtpd_milters, by client address."
    )
    milter_macro_daemon_name: Param[str] = Param(
        StrKind(), "$myhostname", "Value of the {daemon_name} macro (e.g. ORIGINATING)."
    )
    milter_default_action: Param[str] = Param(
        EnumKind(("accept", "reject", "tempfail", "quarantine")),
        "tempfail",
        "What to do when a milter cannot be reached or fails.",
    )
    milter_protocol: Param[str] = Param(
        StrKind(nonempty=True), "6", "Milter protocol version (2, 3, 4 or 6) spoken to filters."
    )
    milter_connect_timeout: Param[int] = Param(
        TimeKind("s", 1), "30s", "Time limit for connecting to a milter."
    )
    milter_command_timeout: Param[int] = Param(
        TimeKind("s", 1), "30s", "Time limit for a milter's reply to one SMTP event."
    )
    milter_content_timeout: Param[int] = Param(
        TimeKind("s", 1), "300s", "Time limit for a milter's reply to message content."
    )

    # -- obsolete TLS switches -----------------------------------------------------------

    smtpd_use_tls: Param[bool] = Param(
        BoolKind(), "no", "Obsolete: used only when smtpd_tls_security_level is empty (may)."
    )
    smtpd_enforce_tls: Param[bool] = Param(
        BoolKind(), "no", "Obsolete: used only when smtpd_tls_security_level is empty (encrypt)."
    )
