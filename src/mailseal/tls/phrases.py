"""Postfix's exact words about server-side TLS, for the mail log and the Received: header.

Log lines (Postfix 3.7, ``tls_server.c`` and ``tls_misc.c``), without the
``postfix/smtpd[N]:`` prefix that ``log/format`` adds:

* ``setting up TLS connection from host[addr]``                  (loglevel >= 2)
* ``Anonymous TLS connection established from host[addr]: TLSv1.3 with cipher
  TLS_AES_256_GCM_SHA384 (256/256 bits)``                         (loglevel >= 1)
  Postfix 3.4+ may append `` key-exchange X25519 server-signature ...``; Python's
  ``ssl`` does not report the key-exchange group or signature scheme, so we stop
  after the bits, which is what Postfix logs when it lacks them too.
* ``host[addr]: subject_CN=..., issuer=..., fingerprint=..., pkey_fingerprint=...``
  for a client certificate; Postfix logs it under TLS_LOG_VERBOSE|PEERCERT,
  i.e. at loglevel >= 2 (``logs_client_cert``).
* ``SSL_accept error from host[addr]: lost connection`` / ``...: -1`` followed
  by ``warning: TLS library problem: ...``.

Received: header (``smtpd.c``). With ``smtpd_tls_received_header = yes``, Postfix
writes ``(using TLSv1.3 with cipher ... (256/256 bits))`` and one client
certificate comment: ``(Client CN "cn", Issuer "cn" (verified OK|not verified))``,
``(Client did not present a certificate)`` or ``(No client certificate requested)``.
Otherwise we emit the RFC 8314 section 4.3 clause ``tls <IANA cipher suite
name>`` (registered in section 7.4), which belongs among the Received: clauses
after ``with``/``id``/``for`` and before the ``;`` and date; it is omitted when
the cipher has no known IANA name.

Pure text.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from mailseal.tls.iana import iana_cipher_name

if TYPE_CHECKING:
    from mailseal.tls.outcome import TlsOutcome

__all__ = [
    "LOST_CONNECTION",
    "client_cert_line",
    "established_from",
    "handshake_failed",
    "logs_client_cert",
    "received_tls_clause",
    "received_tls_lines",
    "setting_up_from",
    "tls_library_problem",
]

LOST_CONNECTION = "lost connection"


def _namaddr(host: str, addr: str) -> str:
    return f"{host}[{addr}]"


def setting_up_from(host: str, addr: str) -> str:
    """Logged before the server handshake (Postfix: at smtpd_tls_loglevel >= 2)."""
    return f"setting up TLS connection from {_namaddr(host, addr)}"


def established_from(outcome: TlsOutcome, host: str, addr: str, *, sni: str = "") -> str:
    """The loglevel-1 summary; ``sni`` is the accepted SNI name, logged as ``to NAME``."""
    to_sni = f" to {sni}" if sni else ""
    return (
        f"{outcome.trust} TLS connection established from {_namaddr(host, addr)}{to_sni}: "
        f"{outcome.summary()}"
    )


def logs_client_cert(loglevel: int) -> bool:
    """Postfix logs the client certificate line at smtpd_tls_loglevel 2 and above."""
    return loglevel >= 2


def client_cert_line(outcome: TlsOutcome, host: str, addr: str) -> str:
    """The client certificate's names and fingerprints, as tls_server.c logs them."""
    return (
        f"{_namaddr(host, addr)}: subject_CN={outcome.peer_subject_cn}, "
        f"issuer={outcome.peer_issuer_cn}, fingerprint={outcome.peer_fingerprint}, "
        f"pkey_fingerprint={outcome.peer_pkey_fingerprint}"
    )


def handshake_failed(host: str, addr: str, reason: str) -> str:
    """``SSL_accept error from host[addr]: reason`` (reason: ``lost connection`` or ``-1``)."""
    return f"SSL_accept error from {_namaddr(host, addr)}: {reason}"


def tls_library_problem(detail: str) -> str:
    """The warning text Postfix logs for each OpenSSL error behind a failure."""
    return f"TLS library problem: {detail}"


def received_tls_lines(outcome: TlsOutcome, *, ask_ccert: bool) -> tuple[str, ...]:
    """Postfix's Received: comments for a TLS session, one per header line."""
    using = f"(using {outcome.summary()})"
    if outcome.has_peer_certificate:
        verdict = "verified OK" if outcome.is_trusted else "not verified"
        client = (
            f'(Client CN "{outcome.peer_subject_cn}", '
            f'Issuer "{outcome.peer_issuer_cn}" ({verdict}))'
        )
    elif ask_ccert:
        client = "(Client did not present a certificate)"
    else:
        client = "(No client certificate requested)"
    return using, client


def received_tls_clause(
    outcome: TlsOutcome, postfix_style: bool, *, ask_ccert: bool = False
) -> str:
    """The TLS part of our Received: header.

    ``postfix_style`` (``smtpd_tls_received_header = yes``): Postfix's comments,
    folded as Postfix writes them (each on its own line, tab-indented), ready to
    follow ``from host (host [addr])``. Otherwise the RFC 8314 ``tls`` clause,
    or "" when the cipher's IANA name is unknown.
    """
    if postfix_style:
        return "\n\t".join(received_tls_lines(outcome, ask_ccert=ask_ccert))
    name = iana_cipher_name(outcome.cipher)
    return f"tls {name}" if name else ""
