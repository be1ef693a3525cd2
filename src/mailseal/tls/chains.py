"""The server's keys and certificate chains, read from the files Postfix names.

Two configurations, as in postconf(5):

* ``smtpd_tls_chain_files`` (Postfix 3.4+): PEM files, read as one concatenation,
  holding each private key directly followed by its certificate and then the
  issuer certificates; several key types (RSA, ECDSA, Ed25519 ...) may follow
  each other. When set, the legacy parameters below are ignored.
* the legacy pairs: ``smtpd_tls_cert_file`` + ``smtpd_tls_key_file`` (the key
  defaults to the certificate file, so both may live in one file) and
  ``smtpd_tls_eccert_file`` + ``smtpd_tls_eckey_file``. DSA (``dcert``) is
  obsolete and ignored.

Every problem is a ``ChainError`` whose text is Postfix's log wording (tls_certkey.c),
so the caller can log it and keep serving without TLS. The result is a list of
``KeyChain`` values: one key with its chain, as PEM for the SSL context.

Two readings, one result. The quick one takes the PEM objects as they are
(plain ``CERTIFICATE`` and unencrypted ``PRIVATE KEY`` / ``RSA PRIVATE KEY`` /
``EC PRIVATE KEY`` objects, the key type read from the PKCS#8 header) and lets
OpenSSL check each key against its certificate, as Postfix does. Anything else,
and every problem, goes to :mod:`mailseal.tls.chains_parsed`, which parses with
``cryptography`` and words the problem. The quick reading keeps
``cryptography.x509`` (about 10 MB) out of every smtpd process.
"""

from __future__ import annotations

import base64
import binascii
import re
import ssl
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from mailseal.tls.context import install_chain

if TYPE_CHECKING:
    from mailseal.config.model import Config

__all__ = [
    "CERT_LABELS",
    "ENCRYPTED_KEY_LABELS",
    "KEY_LABELS",
    "ChainError",
    "KeyChain",
    "PemBlock",
    "blocks_or",
    "chain_file_blocks",
    "load_chain_files",
    "load_server_chains",
]

# One PEM object: label, then base64 body, then the matching END line (RFC 7468).
_PEM_BLOCK = re.compile(rb"-----BEGIN ([A-Z0-9 ]+)-----\r?\n.*?-----END \1-----\r?\n?", re.DOTALL)
CERT_LABELS = frozenset({b"CERTIFICATE", b"TRUSTED CERTIFICATE", b"X509 CERTIFICATE"})
KEY_LABELS = frozenset({b"PRIVATE KEY", b"RSA PRIVATE KEY", b"EC PRIVATE KEY", b"DSA PRIVATE KEY"})
ENCRYPTED_KEY_LABELS = frozenset({b"ENCRYPTED PRIVATE KEY"})

# The key types the quick reading names without parsing: by label, or by the
# algorithm OID of a PKCS#8 PrivateKeyInfo (RFC 5208 section 5; DER bytes of the OID).
_KEY_TYPE_BY_LABEL = {b"RSA PRIVATE KEY": "RSA", b"EC PRIVATE KEY": "ECDSA"}
_KEY_TYPE_BY_OID = {
    bytes.fromhex("2a864886f70d010101"): "RSA",  # 1.2.840.113549.1.1.1 rsaEncryption
    bytes.fromhex("2a8648ce3d0201"): "ECDSA",  # 1.2.840.10045.2.1 id-ecPublicKey
    bytes.fromhex("2b6570"): "Ed25519",  # 1.3.101.112 (RFC 8410)
    bytes.fromhex("2b6571"): "Ed448",  # 1.3.101.113 (RFC 8410)
}

PemBlock = tuple[bytes, bytes]  # (label, the whole PEM text of the object)


class ChainError(Exception):
    """A key or certificate that cannot be used; the text is what Postfix would log."""


@dataclass(frozen=True)
class KeyChain:
    """One private key and its certificate chain (leaf first), with where they came from.

    ``algorithm`` is OpenSSL's and Postfix's name of the key type (RSA, ECDSA,
    Ed25519, Ed448, DSA); ``pem_data`` the key, then the chain, in PEM.
    """

    algorithm: str
    pem_data: bytes
    source: str

    def pem(self) -> bytes:
        """Key then chain in PEM, the layout ``SSLContext.load_cert_chain`` reads."""
        return self.pem_data


def load_server_chains(config: Config) -> tuple[KeyChain, ...]:
    """All keys with chains the SMTP server is configured with (may be empty)."""
    if config.smtpd_tls_chain_files:
        return load_chain_files(config.smtpd_tls_chain_files)
    chains: list[KeyChain] = []
    pairs = (
        ("RSA", config.smtpd_tls_cert_file, config.smtpd_tls_key_file),
        ("ECDSA", config.smtpd_tls_eccert_file, config.smtpd_tls_eckey_file),
    )
    for label, cert_file, key_file in pairs:
        if cert_file:
            chains.append(_load_pair(label, cert_file, key_file or cert_file))
    return tuple(chains)


def load_chain_files(paths: tuple[str, ...] | list[str]) -> tuple[KeyChain, ...]:
    """Keys each followed by its chain, from ``paths`` read as one concatenation."""
    quick = _quick_chain_files(paths)
    if quick is not None:
        return quick
    from mailseal.tls.chains_parsed import parsed_chain_files

    return parsed_chain_files(paths)


def _load_pair(label: str, cert_file: str, key_file: str) -> KeyChain:
    quick = _quick_pair(cert_file, key_file)
    if quick is not None:
        return quick
    from mailseal.tls.chains_parsed import parsed_pair

    return parsed_pair(label, cert_file, key_file)


# -- reading PEM objects ------------------------------------------------------------------


def chain_file_blocks(paths: tuple[str, ...] | list[str]) -> list[tuple[bytes, bytes, str]]:
    """Every PEM object of ``paths`` in order: (label, text, path); ChainError if unreadable."""
    blocks: list[tuple[bytes, bytes, str]] = []
    for path in paths:
        try:
            found = _pem_blocks(path)
        except ChainError as error:
            raise ChainError(f"error opening chain file: {path}: {error}") from None
        blocks.extend((label, body, path) for label, body in found)
    return blocks


def blocks_or(path: str, problem: str) -> list[PemBlock]:
    """The PEM objects of ``path``; ChainError("``problem`` (reason)") if unreadable."""
    try:
        return _pem_blocks(path)
    except ChainError as error:
        raise ChainError(f"{problem} ({error})") from None


def _pem_blocks(path: str) -> list[PemBlock]:
    """Every PEM object in ``path``: (label, whole text); ChainError(reason) if unreadable."""
    try:
        data = Path(path).read_bytes()
    except OSError as error:
        raise ChainError(str(error.strerror or error)) from None
    return [(match.group(1), match.group(0)) for match in _PEM_BLOCK.finditer(data)]


# -- the quick reading: None sends the caller to the careful one ---------------------------


def _quick_chain_files(paths: tuple[str, ...] | list[str]) -> tuple[KeyChain, ...] | None:
    try:
        blocks = chain_file_blocks(paths)
    except ChainError:
        return None
    groups: list[tuple[PemBlock, list[bytes], str]] = []
    for label, body, path in blocks:
        if label in KEY_LABELS | ENCRYPTED_KEY_LABELS:
            groups.append(((label, body), [], path))
        elif label in CERT_LABELS:
            if not groups:
                return None  # "key not first"
            groups[-1][1].append(body)
    chains = [_vouched(key, certs, source) for key, certs, source in groups]
    if not chains or any(chain is None for chain in chains):
        return None
    return tuple(chain for chain in chains if chain is not None)


def _quick_pair(cert_file: str, key_file: str) -> KeyChain | None:
    try:
        certs = [body for label, body in _pem_blocks(cert_file) if label in CERT_LABELS]
        keys = [
            block
            for block in _pem_blocks(key_file)
            if block[0] in KEY_LABELS | ENCRYPTED_KEY_LABELS
        ]
    except ChainError:
        return None
    if not keys:
        return None
    return _vouched(keys[0], certs, cert_file)


def _vouched(key: PemBlock, certs: list[bytes], source: str) -> KeyChain | None:
    """The chain, if it is plain PEM of a known key type and OpenSSL takes it."""
    label, body = key
    if not certs or any(not cert.startswith(b"-----BEGIN CERTIFICATE-----") for cert in certs):
        return None
    algorithm = _KEY_TYPE_BY_LABEL.get(label)
    der = _pem_der(body)
    if der is None:
        return None  # headers (an encrypted key) or bad base64
    if label == b"PRIVATE KEY":
        algorithm = _KEY_TYPE_BY_OID.get(_pkcs8_algorithm(der) or b"")
    if algorithm is None:
        return None
    data = b"".join(block if block.endswith(b"\n") else block + b"\n" for block in (body, *certs))
    chain = KeyChain(algorithm, data, source)
    try:
        # OpenSSL checks the key against the leaf (SSL_CTX_check_private_key).
        install_chain(ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER), chain)
    except (ssl.SSLError, OSError, ValueError):
        return None
    return chain


def _pem_der(block: bytes) -> bytes | None:
    """The DER inside one PEM object; None if it carries headers or is not base64."""
    lines = block.strip().splitlines()[1:-1]
    if any(b":" in line for line in lines):
        return None  # RFC 1421 headers: Proc-Type / DEK-Info of an encrypted key
    try:
        return base64.b64decode(b"".join(line.strip() for line in lines), validate=True)
    except (binascii.Error, ValueError):
        return None


def _pkcs8_algorithm(der: bytes) -> bytes | None:
    """The algorithm OID of a PKCS#8 PrivateKeyInfo: SEQUENCE { INTEGER, SEQUENCE { OID ..."""
    outer = _der_item(der, 0, 0x30)
    version = _der_item(der, outer[0], 0x02) if outer else None
    algorithm = _der_item(der, version[1], 0x30) if version else None
    oid = _der_item(der, algorithm[0], 0x06) if algorithm else None
    return der[oid[0] : oid[1]] if oid else None


def _der_item(der: bytes, at: int, tag: int) -> tuple[int, int] | None:
    """(start, end) of the contents of the DER item at ``at`` if its tag is ``tag``."""
    if at + 2 > len(der) or der[at] != tag:
        return None
    length, at = der[at + 1], at + 2
    if length & 0x80:
        count = length & 0x7F
        if not 0 < count <= 4 or at + count > len(der):
            return None
        length, at = int.from_bytes(der[at : at + count], "big"), at + count
    return (at, at + length) if at + length <= len(der) else None
