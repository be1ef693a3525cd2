"""Who gets a greeting: smtpd's connection limits and the pre-greeting test.

- ``smtpd_client_connection_count_limit`` and ``smtpd_client_connection_rate_limit``,
  counted as anvil(8) counts them (``smtpd_client_event_limit_exceptions`` exempt):
  "421 4.7.0 HOST Error: too many connections from ADDR" and the warning
  "Connection concurrency|rate limit exceeded: N from host[addr] for service S";
- the pre-greeting pause (``smtpd_pregreet_wait``, mailseal's; postscreen's test done in
  smtpd): a client that talks before the banner gets Postfix's "554 5.5.0 Error: SMTP
  protocol synchronization" and is dropped, except in wrapper mode (the client speaks
  TLS first) and for ``smtpd_pregreet_exclusions``.
"""

from __future__ import annotations

import time

from mailseal.log import format as fmt
from mailseal.net.connection import Connection, ConnectionLostError
from mailseal.services.smtpd_service import SmtpdService, SmtpdShared
from mailseal.services.smtpd_tls import SessionLog
from mailseal.smtp.commands import escape
from mailseal.smtp.reply import PROTOCOL_SYNC, reply

__all__ = ["admit"]


async def admit(
    conn: Connection, service: SmtpdService, shared: SmtpdShared, log: SessionLog
) -> bool:
    """Connection limits, then the pre-greeting test; False when the session is over."""
    if not await _within_client_limits(conn, service, shared, log):
        return False
    limits = service.limits
    if (
        limits.pregreet_wait <= 0
        or service.wrapper_mode  # with implicit TLS the client speaks first
        or service.pregreet_exclusions.matches(log.addr)
    ):
        return True
    try:
        early = await conn.read(limits.pregreet_wait)
    except TimeoutError:
        return True
    if not early:
        log.info(fmt.lost_connection("CONNECT", log.host, log.addr))
        return False
    log.info(
        f"improper command pipelining after CONNECT from {fmt.host_addr(log.host, log.addr)}: "
        f"{escape(early[:100])}"
    )
    await _send(conn, PROTOCOL_SYNC.encode())
    return False


async def _within_client_limits(
    conn: Connection, service: SmtpdService, shared: SmtpdShared, log: SessionLog
) -> bool:
    limits = service.limits
    addr = log.addr
    if service.rate_exceptions.matches(addr):
        return True
    concurrent = shared.per_client.get(addr, 0)
    if 0 < limits.connection_count_limit < concurrent:
        exceeded = f"Connection concurrency limit exceeded: {concurrent}"
    elif (
        limits.connection_rate_limit > 0
        and (rate := shared.rates.hit(addr, time.monotonic())) > limits.connection_rate_limit
    ):
        exceeded = f"Connection rate limit exceeded: {rate}"
    else:
        return True
    namaddr = fmt.host_addr(log.host, addr)
    log.warning(f"{exceeded} from {namaddr} for service {service.name}")
    text = f"Error: too many connections from {addr}"
    await _send(conn, reply(421, "4.7.0", f"{service.hostname} {text}").encode())
    return False


async def _send(conn: Connection, data: bytes) -> None:
    try:
        conn.write(data)
        await conn.drain()
    except ConnectionLostError:
        return
