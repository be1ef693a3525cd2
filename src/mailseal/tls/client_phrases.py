"""Postfix's exact words about client-side TLS (``postfix/smtp``), for the log and for DSNs.

Log lines (tls_client.c, tls_verify.c, smtp_proto.c), without the
``postfix/smtp[N]:`` prefix; ``host[addr]:port`` is Postfix's ``namaddrport``:

* ``setting up TLS connection to host[addr]:port``                    (loglevel >= 2)
* ``Verified TLS connection established to host[addr]:port: TLSv1.3 with cipher
  TLS_AES_256_GCM_SHA384 (256/256 bits)``                              (loglevel >= 1)
* ``host[addr]:port: subject_CN=..., issuer_CN=..., fingerprint=..., pkey_fingerprint=...``
* ``server certificate verification failed for host[addr]:port: certificate has expired``
  and the other tls_log_verify_error() forms (``CertFailure``)
* ``SSL_connect error to host[addr]:port: lost connection`` (or ``-1``, followed by
  ``warning: TLS library problem: ...``)
* ``Host offered STARTTLS: [host]`` (``smtp_tls_note_starttls_offer``, level none)

Delivery status texts (``DeferReason``): what smtp_proto.c puts in the DSN and
the ``status=deferred (...)`` line: ``4.7.4 TLS is required, but was not offered
by host host[addr]``, ``4.7.5 Server certificate not verified``, ``4.7.5 Cannot
start TLS: handshake failure``, ``4.7.0 client TLS configuration problem``...

DANE is not implemented; ``dane_unavailable`` is mailseal's own line for it.
Pure text.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from mailseal.tls.levels import TlsLevel

if TYPE_CHECKING:
    from mailseal.tls.client import CertFailure
    from mailseal.tls.outcome import TlsOutcome

__all__ = [
    "CANNOT_START_TLS",
    "CONFIG_PROBLEM",
    "ENGINE_UNAVAILABLE",
    "NOT_VERIFIED",
    "DeferReason",
    "aborting_tls_session",
    "dane_unavailable",
    "established_to",
    "handshake_failed_to",
    "logs_verification_failure",
    "namaddrport",
    "offered_starttls",
    "peer_cert_line",
    "refused_starttls",
    "setting_up_to",
    "tls_required_not_offered",
    "verification_failed",
]


@dataclass(frozen=True)
class DeferReason:
    """An enhanced status code and Postfix's text for a TLS delivery failure."""

    status: str
    text: str


NOT_VERIFIED = DeferReason("4.7.5", "Server certificate not verified")
CANNOT_START_TLS = DeferReason("4.7.5", "Cannot start TLS: handshake failure")
ENGINE_UNAVAILABLE = DeferReason("4.7.5", "TLS is required, but our TLS engine is unavailable")
# smtp_proto.c answers a policy that cannot be used after the greeting with 4.7.0.
CONFIG_PROBLEM = DeferReason("4.7.0", "client TLS configuration problem")


def namaddrport(host: str, addr: str, port: int) -> str:
    return f"{host}[{addr}]:{port}"


def setting_up_to(host: str, addr: str, port: int) -> str:
    """Logged before the client handshake (Postfix: at smtp_tls_loglevel >= 2)."""
    return f"setting up TLS connection to {namaddrport(host, addr, port)}"


def established_to(outcome: TlsOutcome, host: str, addr: str, port: int) -> str:
    """The loglevel-1 summary; the same shape as the server's ``established from`` line."""
    return (
        f"{outcome.trust} TLS connection established to {namaddrport(host, addr, port)}: "
        f"{outcome.summary()}"
    )


def peer_cert_line(outcome: TlsOutcome, host: str, addr: str, port: int) -> str:
    """The server certificate's names and fingerprints (loglevel >= 2), as tls_client.c logs."""
    return (
        f"{namaddrport(host, addr, port)}: subject_CN={outcome.peer_subject_cn}, "
        f"issuer_CN={outcome.peer_issuer_cn}, fingerprint={outcome.peer_fingerprint}, "
        f"pkey_fingerprint={outcome.peer_pkey_fingerprint}"
    )


def verification_failed(host: str, addr: str, port: int, failure: CertFailure) -> str:
    """tls_log_verify_error(): ``[server |CA ]certificate verification failed for ...: why``."""
    purpose = f"{failure.purpose} " if failure.purpose else ""
    return (
        f"{purpose}certificate verification failed for {namaddrport(host, addr, port)}: "
        f"{failure.reason}"
    )


def logs_verification_failure(level: TlsLevel, loglevel: int) -> bool:
    """Whether to log ``verification_failed``: always when the level checks a certificate.

    Postfix adds TLS_LOG_UNTRUSTED at verify and secure, and a fingerprint
    mismatch is reported the same way; at opportunistic levels the reason is
    logged only at ``smtp_tls_loglevel >= 2`` (mailseal's choice: it is noise there).
    """
    return (level.checks_certificate and not level.is_dane_based) or loglevel >= 2


def handshake_failed_to(host: str, addr: str, port: int, reason: str) -> str:
    """``SSL_connect error to host[addr]:port: reason`` (``lost connection`` or ``-1``)."""
    return f"SSL_connect error to {namaddrport(host, addr, port)}: {reason}"


def aborting_tls_session(host: str, addr: str, port: int, why: str) -> str:
    """tls_client.c when the protocol or cipher settings cannot be applied."""
    return f"{namaddrport(host, addr, port)}: {why}: aborting TLS session"


def offered_starttls(host: str) -> str:
    """smtp_tls_note_starttls_offer: a server offered STARTTLS while the level is ``none``."""
    return f"Host offered STARTTLS: [{host}]"


def tls_required_not_offered(host: str, addr: str) -> DeferReason:
    """The server did not announce STARTTLS although the level requires TLS."""
    return DeferReason("4.7.4", f"TLS is required, but was not offered by host {host}[{addr}]")


def refused_starttls(host: str, addr: str, status: str, reply: str) -> DeferReason:
    """STARTTLS was announced but refused; the server's reply (one line) is quoted.

    ``status`` is the enhanced status taken from the server's reply, as Postfix does.
    """
    return DeferReason(
        status, f"TLS is required, but host {host}[{addr}] refused to start TLS: {reply}"
    )


def dane_unavailable(nexthop: str, level: TlsLevel) -> str:
    """mailseal's warning: DANE (RFC 7672) is not implemented yet.

    ``dane`` then works as ``may`` (no downgrade of a DANE-validated promise is
    possible: we never learned one); ``dane-only`` defers the mail with ``CONFIG_PROBLEM``.
    """
    effect = "using security level may" if level is TlsLevel.DANE else "deferring delivery"
    return f"{nexthop}: {level.value} configured, but DANE is not available in mailseal: {effect}"
