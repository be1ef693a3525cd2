"""What ``mailseal tls-finger`` prints besides the TLS log lines: the chat and the chain.

* ``ChatLog``: the SMTP dialogue as posttls-finger(1) shows it, ``> COMMAND`` for
  each line we send and ``< reply`` for each line received, with unprintable
  characters shown as ``?`` (Postfix's response() does the same);
* ``chain_lines``: the certificates the server sent, leaf first, in the shape of
  posttls-finger's ``-C`` output (``%2d subject:``, ``issuer:``, ``cert digest=``,
  ``pkey digest=``) plus the subjectAltNames and the validity period, and the PEM
  text with ``-C``. Digests use ``smtp_tls_fingerprint_digest`` (``-d``), in
  Postfix's colon form, so a value can be pasted into a fingerprint match.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Sequence

from cryptography import x509
from cryptography.hazmat.primitives import serialization

from mailseal.tls.certs import name_oneline
from mailseal.tls.outcome import colon_hex

__all__ = ["ChatLog", "Printer", "chain_lines", "oneline"]

Printer = Callable[[str], None]

_UNPRINTABLE = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")
# A line longer than this is shown in pieces; the SMTP core rejects it anyway
# (its limit is Postfix's line_length_limit, 2048).
_MAX_SHOWN = 4096
_TIME = "%Y-%m-%d %H:%M:%S UTC"


def _censor(raw: bytes) -> str:
    return _UNPRINTABLE.sub("?", raw.decode("utf-8", "replace"))


class ChatLog:
    """Shows the SMTP dialogue line by line (nothing when ``enabled`` is false: ``--no-chat``)."""

    def __init__(self, out: Printer, *, enabled: bool) -> None:
        self._out = out
        self._enabled = enabled
        self._partial = bytearray()

    def sent(self, data: bytes) -> None:
        if self._enabled:
            for line in data.split(b"\r\n")[:-1]:
                self._out(f"> {_censor(line)}")

    def received(self, data: bytes) -> None:
        if not self._enabled:
            return
        self._partial += data
        while (end := self._partial.find(b"\n")) >= 0 or len(self._partial) > _MAX_SHOWN:
            cut = end if end >= 0 else _MAX_SHOWN
            line = bytes(self._partial[:cut]).removesuffix(b"\r")
            del self._partial[: cut + 1 if end >= 0 else cut]
            self._out(f"< {_censor(line)}")

    def reset(self) -> None:
        """Forget a partial line (the plaintext stream ended at the TLS upgrade)."""
        self._partial.clear()


def oneline(name: x509.Name) -> str:
    """OpenSSL's X509_NAME_oneline() form: ``/C=US/O=Example/CN=mx.example``."""
    return name_oneline(name)


def _alt_names(certificate: x509.Certificate) -> list[str]:
    """The subjectAltName entries as ``openssl x509 -text`` labels them."""
    try:
        san = certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except (x509.ExtensionNotFound, ValueError):
        return []
    shown = [f"DNS:{name}" for name in san.get_values_for_type(x509.DNSName)]
    shown += [f"IP Address:{ip}" for ip in san.get_values_for_type(x509.IPAddress)]
    shown += [f"email:{mail}" for mail in san.get_values_for_type(x509.RFC822Name)]
    shown += [f"URI:{uri}" for uri in san.get_values_for_type(x509.UniformResourceIdentifier)]
    return shown


def _digests(certificate: x509.Certificate, digest: str) -> tuple[str, str]:
    der = certificate.public_bytes(serialization.Encoding.DER)
    spki = certificate.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return colon_hex(hashlib.new(digest, der).digest()), colon_hex(
        hashlib.new(digest, spki).digest()
    )


def chain_lines(chain: Sequence[x509.Certificate], digest: str, *, pem: bool) -> list[str]:
    """The chain section: one block per certificate, leaf first."""
    lines = ["---", f"Certificate chain ({digest} digests)"]
    for index, certificate in enumerate(chain):
        cert_digest, pkey_digest = _digests(certificate, digest)
        lines.append(f"{index:2d} subject: {oneline(certificate.subject)}")
        lines.append(f"    issuer: {oneline(certificate.issuer)}")
        names = _alt_names(certificate)
        if names:
            lines.append(f"    subjectAltName: {', '.join(names)}")
        lines.append(f"    notBefore: {certificate.not_valid_before_utc.strftime(_TIME)}")
        lines.append(f"    notAfter: {certificate.not_valid_after_utc.strftime(_TIME)}")
        lines.append(f"   cert digest={cert_digest}")
        lines.append(f"   pkey digest={pkey_digest}")
        if pem:
            text = certificate.public_bytes(serialization.Encoding.PEM).decode("ascii")
            lines.extend(text.splitlines())
    lines.append("---")
    return lines
