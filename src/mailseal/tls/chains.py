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
``KeyChain`` values: one key with its chain, re-encoded as PEM for the SSL context.

Uses ``cryptography``; reads files; no ``ssl``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import dsa, ec, ed448, ed25519, rsa

if TYPE_CHECKING:
    from mailseal.config.model import Config

__all__ = ["ChainError", "KeyChain", "key_algorithm", "load_chain_files", "load_server_chains"]

# One PEM object: label, then base64 body, then the matching END line (RFC 7468).
_PEM_BLOCK = re.compile(rb"-----BEGIN ([A-Z0-9 ]+)-----\r?\n.*?-----END \1-----\r?\n?", re.DOTALL)
_CERT_LABELS = {b"CERTIFICATE", b"TRUSTED CERTIFICATE", b"X509 CERTIFICATE"}
_KEY_LABELS = {b"PRIVATE KEY", b"RSA PRIVATE KEY", b"EC PRIVATE KEY", b"DSA PRIVATE KEY"}
_ENCRYPTED_KEY_LABELS = {b"ENCRYPTED PRIVATE KEY"}

PrivateKey = (
    rsa.RSAPrivateKey
    | ec.EllipticCurvePrivateKey
    | ed25519.Ed25519PrivateKey
    | ed448.Ed448PrivateKey
    | dsa.DSAPrivateKey
)


class ChainError(Exception):
    """A key or certificate that cannot be used; the text is what Postfix would log."""


@dataclass(frozen=True)
class KeyChain:
    """One private key and its certificate chain (leaf first), with where they came from."""

    algorithm: str
    key: PrivateKey
    chain: tuple[x509.Certificate, ...]
    source: str

    def pem(self) -> bytes:
        """Key then chain in PEM, the layout ``SSLContext.load_cert_chain`` reads."""
        key_pem = self.key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        certs = b"".join(c.public_bytes(serialization.Encoding.PEM) for c in self.chain)
        return key_pem + certs


def key_algorithm(key: object) -> str:
    """The name OpenSSL and Postfix use for a key's algorithm."""
    names: tuple[tuple[type, str], ...] = (
        (rsa.RSAPrivateKey, "RSA"),
        (rsa.RSAPublicKey, "RSA"),
        (ec.EllipticCurvePrivateKey, "ECDSA"),
        (ec.EllipticCurvePublicKey, "ECDSA"),
        (ed25519.Ed25519PrivateKey, "Ed25519"),
        (ed25519.Ed25519PublicKey, "Ed25519"),
        (ed448.Ed448PrivateKey, "Ed448"),
        (ed448.Ed448PublicKey, "Ed448"),
        (dsa.DSAPrivateKey, "DSA"),
        (dsa.DSAPublicKey, "DSA"),
    )
    for kind, name in names:
        if isinstance(key, kind):
            return name
    return type(key).__name__


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
    blocks: list[tuple[bytes, bytes, str]] = []
    for path in paths:
        try:
            found = _pem_blocks(path)
        except ChainError as error:
            raise ChainError(f"error opening chain file: {path}: {error}") from None
        blocks.extend((label, body, path) for label, body in found)
    chains: list[KeyChain] = []
    key: PrivateKey | None = None
    certs: list[x509.Certificate] = []
    source = ""
    for index, (label, body, path) in enumerate(blocks, start=1):
        if label in _KEY_LABELS | _ENCRYPTED_KEY_LABELS:
            if key is not None:
                chains.append(_finish(key, certs, source, index))
            key, certs, source = _parse_key(label, body, path, index), [], path
        elif label in _CERT_LABELS:
            if key is None:
                raise ChainError(f"error loading chain from {path}: key not first")
            certs.append(_parse_cert(body, path, index))
    if key is None:
        raise ChainError(f"No private key found in {', '.join(paths)}")
    chains.append(_finish(key, certs, source, len(blocks)))
    return tuple(chains)


def _finish(key: PrivateKey, certs: list[x509.Certificate], path: str, index: int) -> KeyChain:
    if not certs:
        raise ChainError(
            f"error loading certificate chain: key at index {index} in {path} "
            "not followed by a certificate"
        )
    if not _same_public_key(key, certs[0]):
        raise ChainError(
            f"error loading certificate chain: key at index {index} in {path} "
            "does not match the certificate"
        )
    return KeyChain(key_algorithm(key), key, tuple(certs), path)


def _load_pair(label: str, cert_file: str, key_file: str) -> KeyChain:
    cert_problem = f'cannot get {label} certificate from file "{cert_file}": disabling TLS support'
    certs = [
        _parse_cert(body, cert_file, index)
        for index, (kind, body) in enumerate(_blocks_or(cert_file, cert_problem), start=1)
        if kind in _CERT_LABELS
    ]
    if not certs:
        raise ChainError(f"{cert_problem} (no PEM certificate in the file)")
    key_problem = f'cannot get {label} private key from file "{key_file}": disabling TLS support'
    keys = [
        (index, kind, body)
        for index, (kind, body) in enumerate(_blocks_or(key_file, key_problem), start=1)
        if kind in _KEY_LABELS | _ENCRYPTED_KEY_LABELS
    ]
    if not keys:
        raise ChainError(f"{key_problem} (no PEM private key in the file)")
    index, kind, body = keys[0]
    key = _parse_key(kind, body, key_file, index)
    if not _same_public_key(key, certs[0]):
        raise ChainError(
            f"{label} private key in {key_file} does not match public key in {cert_file}: "
            "disabling TLS support"
        )
    return KeyChain(key_algorithm(key), key, tuple(certs), cert_file)


def _blocks_or(path: str, problem: str) -> list[tuple[bytes, bytes]]:
    try:
        return _pem_blocks(path)
    except ChainError as error:
        raise ChainError(f"{problem} ({error})") from None


def _pem_blocks(path: str) -> list[tuple[bytes, bytes]]:
    """Every PEM object in ``path``: (label, whole text); ChainError(reason) if unreadable."""
    try:
        data = Path(path).read_bytes()
    except OSError as error:
        raise ChainError(str(error.strerror or error)) from None
    return [(match.group(1), match.group(0)) for match in _PEM_BLOCK.finditer(data)]


def _parse_cert(body: bytes, path: str, index: int) -> x509.Certificate:
    try:
        return x509.load_pem_x509_certificate(body)
    except ValueError:
        raise ChainError(
            f"error loading certificate (PEM object number {index}) from {path}"
        ) from None


def _parse_key(label: bytes, body: bytes, path: str, index: int) -> PrivateKey:
    # Postfix reads keys without a passphrase (a daemon has nobody to ask).
    detail = " (encrypted keys are not supported)" if label in _ENCRYPTED_KEY_LABELS else ""
    try:
        key = serialization.load_pem_private_key(body, password=None)
    except (ValueError, TypeError):
        raise ChainError(
            f"error loading private key (PEM object number {index}) from {path}{detail}"
        ) from None
    if not isinstance(key, PrivateKey):
        raise ChainError(f"unsupported private key type at index {index} in {path}")
    return key


def _same_public_key(key: PrivateKey, certificate: x509.Certificate) -> bool:
    spki = serialization.PublicFormat.SubjectPublicKeyInfo
    ours = key.public_key().public_bytes(serialization.Encoding.DER, spki)
    theirs = certificate.public_key().public_bytes(serialization.Encoding.DER, spki)
    return ours == theirs
