"""The server side of a TLS handshake in smtpd: STARTTLS or wrapper mode, logged as Postfix.

Postfix's lines (tls_server.c, smtpd.c): "setting up TLS connection from h[a]"
(``smtpd_tls_loglevel`` >= 2), "SSL_accept error from h[a]: -1" and "warning: TLS
library problem: ..." on failure followed by "lost connection after STARTTLS" (or
after CONNECT in wrapper mode), the client certificate line at level 2, and
"Anonymous/Untrusted/Trusted TLS connection established from h[a]: ..." at level 1.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from mailseal.log import format as fmt
from mailseal.net.connection import Connection, HandshakeError
from mailseal.services.smtpd_service import SmtpdService
from mailseal.tls import phrases
from mailseal.tls.outcome import TlsOutcome, handshake_failure

__all__ = ["SessionLog", "server_handshake"]


@dataclass(frozen=True)
class SessionLog:
    """Who the client is, and where a session's info and warning lines go."""

    host: str
    addr: str
    info: Callable[[str], None]
    warning: Callable[[str], None]


async def server_handshake(
    conn: Connection, service: SmtpdService, log: SessionLog, *, already_discarded: bytes
) -> TlsOutcome | None:
    """Handshake and judge the session; ``None`` when it failed (and was logged)."""
    tls = service.tls
    if tls.context is None:
        return None
    host, addr = log.host, log.addr
    if tls.loglevel >= 2:
        log.info(phrases.setting_up_from(host, addr))
    try:
        late = await conn.start_tls(tls.context, service.limits.starttls_timeout)
    except HandshakeError as error:
        if error.cause is None:
            log.info(phrases.handshake_failed(host, addr, error.reason))
        else:
            failure = handshake_failure(error.cause)
            if failure.library_detail:
                log.warning(phrases.tls_library_problem(failure.library_detail))
            log.info(phrases.handshake_failed(host, addr, failure.reason))
        after = "STARTTLS" if not service.wrapper_mode else "CONNECT"
        log.info(fmt.lost_connection(after, host, addr))
        return None
    if late and not already_discarded:
        log.warning(
            f"{fmt.host_addr(host, addr)}: discarding {len(late)} bytes of plaintext "
            "pipelined after STARTTLS"
        )
    ssl_object = conn.ssl_object
    if ssl_object is None:
        return None
    outcome = tls.judge(ssl_object)
    if phrases.logs_client_cert(tls.loglevel) and outcome.peer_fingerprint:
        log.info(phrases.client_cert_line(outcome, host, addr))
    if tls.loglevel >= 1:
        log.info(phrases.established_from(outcome, host, addr))
    return outcome
