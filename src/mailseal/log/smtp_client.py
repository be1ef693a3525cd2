"""The SMTP client's (smtp(8)) log lines and delivery status texts, in Postfix's words.

From Postfix 3.7's ``smtp_connect.c``, ``smtp_proto.c``, ``smtp_trouble.c`` and
``smtp_sasl_glue.c``. ``namaddr`` is Postfix's ``host[addr]``; ``namaddrport``
adds ``:port``. The same text is often both an info line (a server skipped
for a backup MX) and the ``status=deferred (...)`` reason (the last server),
so each function returns only the text. TLS phrases live in
:mod:`mailseal.tls.client_phrases`. Pure: no I/O.
"""

from __future__ import annotations

__all__ = [
    "SERVER_UNAVAILABLE",
    "cleartext_fallback",
    "connect_failed",
    "loops_back",
    "lost_connection",
    "namaddr",
    "namaddrport",
    "protocol_error",
    "refused_to_talk",
    "said",
    "sasl_cannot_authenticate",
    "sasl_failed",
    "sasl_no_mechanisms",
    "size_exceeded",
    "skipping",
    "smtputf8_required",
    "timed_out",
]

# smtp_connect.c: recipients left over and no error recorded (every address skipped).
SERVER_UNAVAILABLE = "server unavailable or unable to receive mail"


def namaddr(host: str, addr: str) -> str:
    return f"{host}[{addr}]"


def namaddrport(host: str, addr: str, port: int) -> str:
    return f"{host}[{addr}]:{port}"


def connect_failed(host: str, addr: str, port: int, why: str) -> str:
    """``connect to host[addr]:port: Connection refused`` (an info line, and the reason)."""
    return f"connect to {namaddrport(host, addr, port)}: {why}"


def skipping(queue_id: str, reason: str) -> str:
    """smtp_trouble.c: a soft error on a server that is not the last one: ``ID: reason``."""
    return f"{queue_id}: {reason}"


def lost_connection(server: str, where: str) -> str:
    """``lost connection with host[addr] while sending RCPT TO`` (4.4.2)."""
    return f"lost connection with {server} while {where}"


def timed_out(server: str, where: str) -> str:
    """``conversation with host[addr] timed out while receiving the initial server greeting``."""
    return f"conversation with {server} timed out while {where}"


def said(server: str, reply: str, command: str) -> str:
    """``host h[a] said: 550 5.1.1 ... (in reply to RCPT TO command)``."""
    return f"host {server} said: {reply} (in reply to {command})"


def refused_to_talk(server: str, reply: str) -> str:
    """A greeting or HELO/EHLO refusal: ``host h[a] refused to talk to me: 554 ...``."""
    return f"host {server} refused to talk to me: {reply}"


def loops_back(nexthop: str) -> str:
    """The server greeted with our own ``myhostname`` on port 25."""
    return f"mail for {nexthop} loops back to myself"


def size_exceeded(size: int, limit: int, server: str) -> str:
    """The message is larger than the server's EHLO SIZE (RFC 1870), 5.3.4."""
    return f"message size {size} exceeds size limit {limit} of server {server}"


def smtputf8_required(server: str) -> str:
    """The message needs SMTPUTF8 (RFC 6531) and the server does not offer it, 5.6.7."""
    return f"SMTPUTF8 is required, but was not offered by host {server}"


def sasl_failed(server: str, reply: str) -> str:
    """``SASL authentication failed; server h[a] said: 535 5.7.8 ...``."""
    return f"SASL authentication failed; server {server} said: {reply}"


def sasl_cannot_authenticate(server: str, why: str) -> str:
    """Our side gave up the exchange (bad challenge, protocol loop), 4.7.0."""
    return f"SASL authentication failed; cannot authenticate to server {server}: {why}"


def sasl_no_mechanisms(server: str) -> str:
    """No offered mechanism passes smtp_sasl_*security_options and the filter, 4.7.0."""
    return (
        f"SASL authentication failed: server {server} offered no compatible "
        "authentication mechanisms for this type of connection security"
    )


def cleartext_fallback(server_port: str) -> str:
    """Postfix 3.10's warning when opportunistic TLS gives way to plaintext (a warning line)."""
    return f"{server_port}: cleartext fallback, TLS handshake failed"


def protocol_error(reason: str, server: str, detail: str) -> str:
    """The server's bytes were not SMTP: ``non-SMTP response from h[a]: ...`` (mailseal's)."""
    return f"{reason} from {server}: {detail}" if detail else f"{reason} from {server}"
