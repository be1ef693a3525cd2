"""Certificates and keys on disk: make a self-signed pair, and inspect a configured pair.

``make_self_signed`` writes what ``mailseal init`` needs to start with TLS on a
fresh machine: an RSA-2048 key (mode 0600, written atomically so it is never
briefly world-readable) and a certificate for the host name with a matching
subjectAltName (RFC 6125 clients check SAN, not CN). ``inspect_pair`` answers
what ``mailseal check`` asks about ``smtpd_tls_cert_file`` / ``key_file``:
readable? PEM? does the key match? is the key private to its owner? expired?

Uses ``cryptography``, imported by the functions that need it: ``name_matches``
(which the TLS policy uses in every process) must not cost a process the 10 MB
of ``cryptography.x509``. The ``ssl`` module is not needed here.
"""

from __future__ import annotations

import datetime
import functools
import os
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from cryptography import x509
    from cryptography.hazmat.primitives import serialization

__all__ = [
    "PairReport",
    "certificate_names",
    "inspect_pair",
    "make_self_signed",
    "name_matches",
    "name_oneline",
]

# RSA-2048 for the widest interoperability with other MTAs (the seed tutorial's
# reasoning); 825 days is the longest validity still common in client policies.
_RSA_BITS = 2048
_VALID_DAYS = 825


def make_self_signed(hostname: str, cert_path: Path, key_path: Path) -> None:
    """Write a new RSA-2048 key (0600) and a self-signed certificate for ``hostname``."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import rsa
    from cryptography.x509.oid import NameOID

    key = rsa.generate_private_key(public_exponent=65537, key_size=_RSA_BITS)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, hostname)])
    now = datetime.datetime.now(datetime.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=_VALID_DAYS))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(hostname)]), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]), critical=False
        )
        .sign(key, hashes.SHA256())
    )
    key_pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    _write_new(key_path, key_pem, 0o600)
    _write_new(cert_path, certificate.public_bytes(serialization.Encoding.PEM), 0o644)


@dataclass(frozen=True)
class PairReport:
    """What is wrong (``errors``) or worth knowing (``warnings``) about a cert/key pair."""

    errors: tuple[str, ...]
    warnings: tuple[str, ...]
    subject: str = ""
    not_after: datetime.datetime | None = None
    names: tuple[str, ...] = ()


def inspect_pair(cert_path: str, key_path: str, *, now: datetime.datetime) -> PairReport:
    """Check that both files load, the key matches the first certificate, and more."""
    errors: list[str] = []
    warnings: list[str] = []
    certificate = _load_certificate(cert_path, errors)
    if certificate is None and key_path == cert_path:
        return PairReport(tuple(errors), ())  # one unreadable file, one message
    key = _load_key(key_path, errors)
    if key is not None:
        mode = Path(key_path).stat().st_mode
        if mode & (stat.S_IRWXG | stat.S_IRWXO):
            warnings.append(
                f"private key file {key_path} is readable by group or others "
                f"(mode {mode & 0o777:04o}); use chmod 600"
            )
    if certificate is None:
        return PairReport(tuple(errors), tuple(warnings))
    if key is not None and not _same_public_key(certificate, key):
        errors.append(f"private key {key_path} does not match the certificate in {cert_path}")
    if certificate.not_valid_after_utc < now:
        errors.append(f"certificate in {cert_path} expired on {certificate.not_valid_after_utc}")
    return PairReport(
        tuple(errors),
        tuple(warnings),
        certificate.subject.rfc4514_string(),
        certificate.not_valid_after_utc,
        certificate_names(certificate),
    )


def certificate_names(certificate: x509.Certificate) -> tuple[str, ...]:
    """The DNS names a certificate is for: its subjectAltName, else its CN (RFC 6125 6.4.4)."""
    from cryptography import x509
    from cryptography.x509.oid import NameOID

    try:
        san = certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName)
    except x509.ExtensionNotFound:
        common = certificate.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
        return tuple(str(attribute.value) for attribute in common)
    return tuple(san.value.get_values_for_type(x509.DNSName))


def name_matches(pattern: str, hostname: str) -> bool:
    """RFC 6125 6.4.3: exact match, or ``*`` as the whole leftmost label (``*.example.com``)."""
    pattern, hostname = pattern.lower().rstrip("."), hostname.lower().rstrip(".")
    if not pattern.startswith("*."):
        return pattern == hostname
    first, dot, rest = hostname.partition(".")
    return bool(first) and bool(dot) and rest == pattern[2:] and "." in rest


def _load_certificate(path: str, errors: list[str]) -> x509.Certificate | None:
    from cryptography import x509

    try:
        chain = x509.load_pem_x509_certificates(Path(path).read_bytes())
    except OSError as error:
        errors.append(f"cannot read certificate file {path}: {error.strerror or error}")
        return None
    except ValueError:
        errors.append(f"no PEM certificate found in {path}")
        return None
    return chain[0]


def _load_key(path: str, errors: list[str]) -> serialization.SSHPrivateKeyTypes | None:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec, rsa

    try:
        data = Path(path).read_bytes()
    except OSError as error:
        errors.append(f"cannot read private key file {path}: {error.strerror or error}")
        return None
    try:
        key = serialization.load_pem_private_key(data, password=None)
    except (ValueError, TypeError) as error:
        errors.append(f"no usable unencrypted PEM private key in {path}: {error}")
        return None
    if not isinstance(key, rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey):
        errors.append(f"private key in {path} is neither RSA nor ECDSA")
        return None
    return key


def _same_public_key(certificate: x509.Certificate, key: serialization.SSHPrivateKeyTypes) -> bool:
    from cryptography.hazmat.primitives import serialization

    spki = serialization.PublicFormat.SubjectPublicKeyInfo
    ours = key.public_key().public_bytes(serialization.Encoding.DER, spki)
    theirs = certificate.public_key().public_bytes(serialization.Encoding.DER, spki)
    return ours == theirs


def _write_new(path: Path, data: bytes, mode: int) -> None:
    """Create ``path`` with ``mode`` from the first byte on (O_EXCL: never overwrite)."""
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    with os.fdopen(descriptor, "wb") as stream:
        stream.write(data)
        stream.flush()
        os.fsync(stream.fileno())


@functools.cache
def _short_names() -> dict[x509.ObjectIdentifier, str]:
    from cryptography.x509.oid import NameOID

    return {
        NameOID.COMMON_NAME: "CN",
        NameOID.COUNTRY_NAME: "C",
        NameOID.ORGANIZATION_NAME: "O",
        NameOID.ORGANIZATIONAL_UNIT_NAME: "OU",
        NameOID.LOCALITY_NAME: "L",
        NameOID.STATE_OR_PROVINCE_NAME: "ST",
        NameOID.EMAIL_ADDRESS: "emailAddress",
        NameOID.DOMAIN_COMPONENT: "DC",
    }


def name_oneline(name: x509.Name) -> str:
    """OpenSSL's X509_NAME_oneline(): ``/C=US/O=Example/CN=Example CA``."""
    short_names = _short_names()
    parts = []
    for attribute in name:
        label = short_names.get(attribute.oid, attribute.rfc4514_attribute_name)
        value = attribute.value
        parts.append(f"/{label}={value if isinstance(value, str) else value.hex()}")
    return "".join(parts)
