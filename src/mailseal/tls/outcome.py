"""Judging a finished TLS handshake: one ``TlsOutcome`` for logs, Received: and policy.

The trust words are Postfix's (``tls_misc.c`` tls_log_summary): *Anonymous*
(no peer certificate), *Untrusted* (a certificate that did not verify),
*Trusted* (verified by a CA) and *Verified* (trusted and matching the expected
name or fingerprint; client side only). Fingerprints use
``smtpd_tls_fingerprint_digest`` over the certificate's DER form, and the public
key fingerprint is the same digest over the DER SubjectPublicKeyInfo, both in
Postfix's upper-case colon form (``tls_fprint.c``).

Server view: Python's ``ssl`` has no verification callback, so a client
certificate that fails verification fails the handshake itself (see
``mailseal.tls.server``). A handshake that finished with a client certificate
under a configured CA therefore means the certificate verified: *Trusted*.

``handshake_failure`` turns the exception of a failed handshake into Postfix's
reason words for ``SSL_accept error from ...`` and the library detail.
"""

from __future__ import annotations

import hashlib
import re
import ssl
import weakref
from dataclasses import dataclass
from enum import StrEnum
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from cryptography import x509

__all__ = [
    "HandshakeFailure",
    "PeerTrust",
    "TlsOutcome",
    "colon_hex",
    "handshake_failure",
    "judge_server_side",
]


class PeerTrust(StrEnum):
    """What the peer's certificate proved, in Postfix's log words."""

    ANONYMOUS = "Anonymous"
    UNTRUSTED = "Untrusted"
    TRUSTED = "Trusted"
    VERIFIED = "Verified"


@dataclass(frozen=True)
class TlsOutcome:
    """Protocol, cipher and peer certificate facts of one established TLS session."""

    protocol: str
    cipher: str
    bits: int
    alg_bits: int
    trust: PeerTrust
    peer_subject_cn: str = ""
    peer_issuer_cn: str = ""
    peer_fingerprint: str = ""
    peer_pkey_fingerprint: str = ""

    def summary(self) -> str:
        """``TLSv1.3 with cipher TLS_AES_256_GCM_SHA384 (256/256 bits)``, as Postfix logs it."""
        return f"{self.protocol} with cipher {self.cipher} ({self.bits}/{self.alg_bits} bits)"

    @property
    def has_peer_certificate(self) -> bool:
        return self.trust is not PeerTrust.ANONYMOUS

    @property
    def is_trusted(self) -> bool:
        """Postfix TLS_CERT_IS_TRUSTED: a CA vouched for the peer (Trusted or Verified)."""
        return self.trust in (PeerTrust.TRUSTED, PeerTrust.VERIFIED)


def colon_hex(digest: bytes) -> str:
    """Postfix's fingerprint text: upper-case hex bytes joined by colons."""
    return ":".join(f"{byte:02X}" for byte in digest)


def judge_server_side(
    ssl_object: ssl.SSLObject | ssl.SSLSocket, *, digest: str = "sha256", ca_configured: bool
) -> TlsOutcome:
    """The outcome of a handshake the server side finished on ``ssl_object``.

    ``ca_configured``: the context asked for client certificates and holds CAs
    to verify them; a certificate seen without that is reported *Untrusted*.
    """
    name, _, bits = ssl_object.cipher() or ("", "", 0)
    protocol = ssl_object.version() or ""
    alg_bits = _alg_bits(ssl_object.context, name, bits)
    der = ssl_object.getpeercert(binary_form=True)
    if not der:
        return TlsOutcome(protocol, name, bits, alg_bits, PeerTrust.ANONYMOUS)
    # Imported only when a peer shows a certificate: cryptography.x509 costs
    # about 10 MB in every process, and most SMTP clients show none.
    from cryptography import x509
    from cryptography.hazmat.primitives import serialization
    from cryptography.x509.oid import NameOID

    certificate = x509.load_der_x509_certificate(der)
    spki = certificate.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return TlsOutcome(
        protocol,
        name,
        bits,
        alg_bits,
        PeerTrust.TRUSTED if ca_configured else PeerTrust.UNTRUSTED,
        peer_subject_cn=_name_text(certificate.subject, NameOID.COMMON_NAME),
        peer_issuer_cn=_issuer_text(certificate.issuer),
        peer_fingerprint=colon_hex(hashlib.new(digest, der).digest()),
        peer_pkey_fingerprint=colon_hex(hashlib.new(digest, spki).digest()),
    )


def _alg_bits(context: ssl.SSLContext, cipher: str, bits: int) -> int:
    # SSL_CIPHER_get_bits gives both numbers; Python only the first, so look the
    # cipher up among the context's (they differ only for export-grade ciphers).
    # get_ciphers() costs about a millisecond: once per context, not per session.
    table = _ALG_BITS.get(context)
    if table is None:
        table = {
            str(entry["name"]): int(entry.get("alg_bits", 0))
            for entry in context.get_ciphers()
            if "name" in entry
        }
        _ALG_BITS[context] = table
    return table.get(cipher) or bits


_ALG_BITS: weakref.WeakKeyDictionary[ssl.SSLContext, dict[str, int]] = weakref.WeakKeyDictionary()


def _name_text(name: x509.Name, oid: x509.ObjectIdentifier) -> str:
    attributes = name.get_attributes_for_oid(oid)
    if not attributes:
        return ""
    value = attributes[0].value
    return value if isinstance(value, str) else value.decode("utf-8", "replace")


def _issuer_text(issuer: x509.Name) -> str:
    """The issuer's CN, else its organization (Postfix tls_issuer_CN)."""
    from cryptography.x509.oid import NameOID

    return _name_text(issuer, NameOID.COMMON_NAME) or _name_text(issuer, NameOID.ORGANIZATION_NAME)


@dataclass(frozen=True)
class HandshakeFailure:
    """Why a handshake failed: Postfix's SSL_accept reason, and any TLS library detail."""

    reason: str
    library_detail: str | None = None


# Python appends where in _ssl.c it raised; that is no help to an admin.
_SOURCE_SUFFIX = re.compile(r"\s*\(_ssl\.c:\d+\)$")
_BRACKET_PREFIX = re.compile(r"^\[[^\]]*\]\s*")


def handshake_failure(error: BaseException) -> HandshakeFailure:
    """Postfix's words for a failed SSL_accept (tls_server.c).

    The peer went away: ``lost connection``. An OpenSSL error: the return code
    ``-1`` plus the library's message, which Postfix logs as a separate
    ``TLS library problem`` warning.
    """
    if isinstance(error, ssl.SSLEOFError | ssl.SSLZeroReturnError | ConnectionError | EOFError):
        return HandshakeFailure("lost connection")
    if isinstance(error, ssl.SSLError):
        message = _BRACKET_PREFIX.sub("", _SOURCE_SUFFIX.sub("", str(error.args[-1])))
        library = getattr(error, "library", None) or "SSL"
        return HandshakeFailure("-1", f"error:{library} routines::{message}")
    return HandshakeFailure(str(error) or type(error).__name__)
