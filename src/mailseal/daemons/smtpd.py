"""smtpd's composition root: one master.cf smtpd service turned into running parts.

From a service's frozen Config this builds the protocol settings of the
sans-IO core, the TLS context (:func:`mailseal.tls.server.build_server_tls`),
the restriction lists and recipient checks, and the listening addresses
(master(5): ``[host:]port`` or a service name via ``known_tcp_ports`` and
services(5); no host means every ``inet_interfaces`` address).
"""

from __future__ import annotations

import socket
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from mailseal.config.errors import ConfigError
from mailseal.config.mastercf import MasterService, inet_port, known_port
from mailseal.config.model import Config
from mailseal.services.addresses import Addressing
from mailseal.services.networks import my_networks, network_list
from mailseal.services.recipients import Recipients
from mailseal.services.restrictions import Restrictions
from mailseal.services.sasl.backend import SaslBackend
from mailseal.services.sasl.dovecot import DovecotBackend
from mailseal.services.sasl.local import LocalBackend
from mailseal.services.smtpd_auth import SaslService
from mailseal.services.smtpd_service import SessionLimits, SmtpdService
from mailseal.smtp.server import ServerSettings
from mailseal.tls.levels import TlsLevel, server_level
from mailseal.tls.server import build_server_tls

__all__ = ["ListenAddress", "build_service", "listen_addresses"]


@dataclass(frozen=True)
class ListenAddress:
    host: str | None  # None: every address
    port: int


def listen_addresses(service: MasterService, config: Config) -> list[ListenAddress]:
    """Where ``service`` listens; raises ValueError with Postfix-like text."""
    host, port_text = inet_port(service.name)
    port = _port_number(port_text, config)
    if host is not None:
        return [ListenAddress(host, port)]
    interfaces = [i.lower() for i in config.inet_interfaces]
    if not interfaces or "all" in interfaces:
        return [ListenAddress(None, port)]
    hosts: list[str] = []
    for item in interfaces:
        if item == "loopback-only":
            hosts += ["127.0.0.1", "::1"]
        else:
            hosts.append(item.strip("[]"))
    return [ListenAddress(h, port) for h in dict.fromkeys(hosts)]


def _port_number(text: str, config: Config) -> int:
    if text.isdigit():
        return int(text)
    known = known_port(text, config.known_tcp_ports)
    if known is not None and known.isdigit():
        return int(known)
    try:
        return socket.getservbyname(text, "tcp")
    except OSError:
        raise ValueError(f"unknown service: {text}/tcp") from None


def build_sasl(config: Config, warn: Callable[[str], None] | None = None) -> SaslService | None:
    """The service's SASL backend, or ``None`` when ``smtpd_sasl_auth_enable = no``.

    ``smtpd_sasl_type``: ``mailseal`` reads ``smtpd_sasl_passwd_file``; ``dovecot``
    talks to the auth socket at ``smtpd_sasl_path`` (relative to the queue directory,
    as in Postfix: ``private/auth``). ``warn`` receives the backend's runtime warnings.
    """
    if not config.smtpd_sasl_auth_enable:
        return None
    backend: SaslBackend
    if config.smtpd_sasl_type == "dovecot":
        path = Path(config.queue_directory) / config.smtpd_sasl_path
        backend = DovecotBackend(
            str(path),
            security_options=", ".join(config.smtpd_sasl_security_options) or "noanonymous",
            warn=warn,
        )
    elif config.smtpd_sasl_type == "mailseal":
        backend = LocalBackend(
            config.smtpd_sasl_passwd_file,
            concurrency=config.smtpd_sasl_verify_concurrency,
            warn=warn,
        )
    else:
        # Postfix's text; mailseal has no Cyrus SASL plug-in.
        setting = config.setting("smtpd_sasl_type")
        raise ConfigError(
            f"unsupported SASL server implementation: {config.smtpd_sasl_type}",
            setting.location if setting is not None else None,
        )
    return SaslService(
        backend=backend,
        service_name=config.smtpd_sasl_service,
        security_options=config.smtpd_sasl_security_options,
        tls_security_options=config.smtpd_sasl_tls_security_options,
        exceptions=network_list(config, config.smtpd_sasl_exceptions_networks),
        rate_limit=config.smtpd_client_auth_rate_limit,
        authenticated_header=config.smtpd_sasl_authenticated_header,
    )


def build_service(
    service: MasterService, config: Config, warn: Callable[[str], None] | None = None
) -> SmtpdService:
    """Everything a session of ``service`` needs (built again on reload)."""
    wrapper = config.smtpd_tls_wrappermode
    level = server_level(config)
    if wrapper and level is TlsLevel.NONE:
        level = TlsLevel.ENCRYPT  # wrapper mode means TLS, whatever the level says
    tls = build_server_tls(config, mandatory=level.requires_tls)
    addressing = Addressing(config)
    recipients = Recipients(config, addressing)
    mynetworks = my_networks(config)
    restrictions = Restrictions(config, addressing, recipients, mynetworks)
    settings = ServerSettings(
        hostname=config.myhostname,
        banner=config.smtpd_banner,
        line_length_limit=config.line_length_limit,
        message_size_limit=config.message_size_limit,
        recipient_limit=config.smtpd_recipient_limit,
        hard_error_limit=config.smtpd_hard_error_limit,
        junk_command_limit=config.smtpd_junk_command_limit,
        disable_vrfy=config.disable_vrfy_command,
        helo_required=config.smtpd_helo_required,
        starttls_offered=tls.context is not None and level is not TlsLevel.NONE and not wrapper,
        tls_required=level.requires_tls,
        tls_local_problem=tls.problem is not None and level is not TlsLevel.NONE,
        bare_newline=config.smtpd_forbid_bare_newline,
        bare_newline_reject_code=config.smtpd_forbid_bare_newline_reject_code,
        forbid_unauth_pipelining=config.smtpd_forbid_unauth_pipelining,
        smtputf8=config.smtputf8_enable,
        discard_ehlo_keywords=frozenset(k.upper() for k in config.smtpd_discard_ehlo_keywords),
        # The mechanisms themselves are asked per session (a Dovecot may change them).
        auth_tls_only=config.smtpd_tls_auth_only,
        auth_response_limit=config.smtpd_sasl_response_limit,
        auth_broken_clients=config.broken_sasl_auth_clients,
    )
    limits = SessionLimits(
        timeout=float(config.smtpd_timeout),
        starttls_timeout=float(config.smtpd_starttls_timeout),
        per_request_deadline=config.smtpd_per_request_deadline,
        min_data_rate=config.smtpd_min_data_rate,
        soft_error_limit=config.smtpd_soft_error_limit,
        error_sleep_time=float(config.smtpd_error_sleep_time),
        pregreet_wait=float(config.smtpd_pregreet_wait),
        connection_rate_limit=config.smtpd_client_connection_rate_limit,
        connection_count_limit=config.smtpd_client_connection_count_limit,
    )
    found = (
        *addressing.warnings,
        *recipients.warnings,
        *restrictions.warnings,
        *mynetworks.warnings,
    )
    return SmtpdService(
        name=service.name,
        warnings=(*tls.warnings, *dict.fromkeys(str(w) for w in found)),
        program=f"{config.syslog_name}/smtpd",
        hostname=config.myhostname,
        product=config.mail_name,
        settings=settings,
        tls=tls,
        wrapper_mode=wrapper,
        received_tls_postfix_style=config.smtpd_tls_received_header,
        limits=limits,
        restrictions=restrictions,
        recipients=recipients,
        bare_newline_exclusions=network_list(config, config.smtpd_forbid_bare_newline_exclusions),
        pregreet_exclusions=network_list(config, config.smtpd_pregreet_exclusions),
        rate_exceptions=network_list(config, config.smtpd_client_event_limit_exceptions),
        peername_lookup=config.smtpd_peername_lookup,
        addressing=addressing,
        sasl=build_sasl(config, warn),
    )
