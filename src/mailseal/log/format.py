"""Mail-log lines in Postfix's exact shapes: the only code that renders them.

pflogsumm, fail2ban's postfix filters, Logwatch and postfix_exporter parse
these lines with regular expressions, so the wording, punctuation and field
order follow Postfix 3.x (smtpd.c, qmgr, log_adhoc.c, cleanup) byte for byte.
Each function returns the message part; :mod:`mailseal.log.sinks` adds the
timestamp, host and ``program[pid]:`` prefix.

Pure: no I/O, no clock.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

__all__ = [
    "DeliveryTimes",
    "client",
    "connect_from",
    "disconnect_from",
    "expired",
    "format_delay",
    "host_addr",
    "lost_connection",
    "message_id",
    "noqueue",
    "qmgr_from",
    "queue_removed",
    "recipient_status",
    "sasl_aborted",
    "sasl_failed",
    "timeout_after",
]


def host_addr(host: str, addr: str) -> str:
    """Postfix's ``host[addr]`` client form; an unknown name is ``unknown``."""
    return f"{host or 'unknown'}[{addr}]"


def connect_from(host: str, addr: str) -> str:
    return f"connect from {host_addr(host, addr)}"


def disconnect_from(host: str, addr: str, counts: Sequence[tuple[str, int, int]]) -> str:
    """``disconnect from h[a] ehlo=1 mail=1 rcpt=0/1 ... commands=2/3`` (Postfix 3.0+).

    Each command shows ``ok/total`` when some failed, else just the total; the
    ``commands=`` sum follows the same rule.
    """
    fields = [_count(name, ok, total) for name, ok, total in counts]
    ok_sum = sum(ok for _, ok, _ in counts)
    total_sum = sum(total for _, _, total in counts)
    fields.append(_count("commands", ok_sum, total_sum))
    return f"disconnect from {host_addr(host, addr)} " + " ".join(fields)


def _count(name: str, ok: int, total: int) -> str:
    return f"{name}={total}" if ok == total else f"{name}={ok}/{total}"


def lost_connection(after: str, host: str, addr: str) -> str:
    """``lost connection after DATA (123 bytes) from h[a]``."""
    return f"lost connection after {after} from {host_addr(host, addr)}"


def timeout_after(after: str, host: str, addr: str) -> str:
    return f"timeout after {after} from {host_addr(host, addr)}"


def client(queue_id: str, host: str, addr: str, sasl: tuple[str, str] | None = None) -> str:
    """``ID: client=h[a]``, with ``sasl_method=``/``sasl_username=`` after AUTH."""
    line = f"{queue_id}: client={host_addr(host, addr)}"
    if sasl is not None:
        method, username = sasl
        line += f", sasl_method={method}, sasl_username={username}"
    return line


def sasl_failed(host: str, addr: str, mechanism: str, reason: str, username: str | None) -> str:
    """``h[a]: SASL PLAIN authentication failed: REASON, sasl_username=USER`` (a warning).

    Postfix 3.5+'s shape (smtpd_sasl_glue.c), which fail2ban's postfix filter in auth
    mode matches for LOGIN, PLAIN, CRAM-MD5 and DIGEST-MD5; mechanism and user name are
    cut at 100 characters as Postfix does, and never contain the password.
    """
    return (
        f"{host_addr(host, addr)}: SASL {mechanism[:100]} authentication failed: "
        f"{reason or '(reason unavailable)'}, sasl_username={(username or '(unavailable)')[:100]}"
    )


def sasl_aborted(host: str, addr: str, mechanism: str) -> str:
    """``h[a]: SASL LOGIN authentication aborted``: the client sent ``*`` (a warning)."""
    return f"{host_addr(host, addr)}: SASL {mechanism[:100]} authentication aborted"


def message_id(queue_id: str, msgid: str) -> str:
    """cleanup's ``ID: message-id=<...>`` (the header value is logged as written)."""
    return f"{queue_id}: message-id={msgid}"


def qmgr_from(queue_id: str, sender: str, size: int, nrcpt: int) -> str:
    return f"{queue_id}: from=<{sender}>, size={size}, nrcpt={nrcpt} (queue active)"


def expired(queue_id: str, sender: str) -> str:
    """qmgr's ``ID: from=<s>, status=expired, returned to sender`` (maximal_queue_lifetime)."""
    return f"{queue_id}: from=<{sender}>, status=expired, returned to sender"


def queue_removed(queue_id: str) -> str:
    return f"{queue_id}: removed"


def noqueue(
    action: str,
    stage: str,
    host: str,
    addr: str,
    reply: str,
    *,
    sender: str | None,
    recipient: str | None,
    proto: str,
    helo: str | None,
    queue_id: str | None = None,
) -> str:
    """``NOQUEUE: reject: RCPT from h[a]: 554 5.7.1 ...; from=<s> to=<r> proto=ESMTP helo=<h>``.

    ``action`` is ``reject``, ``defer`` (Postfix logs 4xx as ``reject`` too) or
    ``reject_warning``; ``stage`` the command (``RCPT``, ``MAIL``, ``DATA``...).
    Once a recipient was accepted the message has a queue ID, which replaces
    ``NOQUEUE``.
    """
    line = f"{queue_id or 'NOQUEUE'}: {action}: {stage} from {host_addr(host, addr)}: {reply};"
    if sender is not None:
        line += f" from=<{sender}>"
    if recipient is not None:
        line += f" to=<{recipient}>"
    line += f" proto={proto}"
    if helo is not None:
        line += f" helo=<{helo}>"
    return line


@dataclass(frozen=True)
class DeliveryTimes:
    """The four ``delays=a/b/c/d`` stages of log_adhoc.c, in seconds.

    before_qmgr: arrival to the active queue; in_qmgr: active queue to the
    delivery agent; setup: connection set-up; transmission: delivery itself.
    """

    total: float
    before_qmgr: float
    in_qmgr: float
    setup: float
    transmission: float


def format_delay(seconds: float) -> str:
    """Postfix's format_tv with 2 significant digits and 10 ms resolution.

    ``0.0042`` -> ``0``, ``0.123`` -> ``0.12``, ``1.27`` -> ``1.3``, ``12.3`` -> ``12``.
    """
    if seconds < 0.005:
        return "0"
    if seconds >= 10:
        return str(round(seconds))
    decimals = 1 if seconds >= 1 else 2
    text = f"{seconds:.{decimals}f}"
    return text.rstrip("0").rstrip(".") if "." in text else text


def recipient_status(
    queue_id: str,
    recipient: str,
    *,
    original: str,
    relay: str,
    times: DeliveryTimes,
    dsn: str,
    status: str,
    reason: str,
    tls: str = "",
    conn_use: int = 0,
) -> str:
    """``ID: to=<r>, orig_to=<o>, relay=R, delay=D, delays=a/b/c/d, dsn=X, status=S (reason)``.

    ``conn_use`` is which use of a cached SMTP session this delivery was (1 for a
    new connection): from the second use on, log_adhoc.c adds ``conn_use=N`` right
    after ``relay=``, where pflogsumm and other parsers expect it. ``tls``
    (smtp_log_tls_field) adds Postfix 3.11's ``tls=LEVEL`` after ``delays=``.
    """
    line = f"{queue_id}: to=<{recipient}>"
    if original and original.lower() != recipient.lower():
        line += f", orig_to=<{original}>"
    reuse = f", conn_use={conn_use}" if conn_use > 1 else ""
    stages = "/".join(
        format_delay(t) for t in (times.before_qmgr, times.in_qmgr, times.setup, times.transmission)
    )
    tls_field = f", tls={tls}" if tls else ""
    return (
        f"{line}, relay={relay}{reuse}, delay={format_delay(times.total)}, "
        f"delays={stages}{tls_field}, "
        f"dsn={dsn}, status={status} ({reason})"
    )
