"""The careful reading of the server's keys and chains, with ``cryptography``.

:mod:`mailseal.tls.chains` reads the common configurations without
``cryptography`` (OpenSSL itself checks them), and comes here for everything
else: a file it cannot vouch for, and every problem, whose text must be Postfix's
(tls_certkey.c). Each key and certificate is parsed, the key is matched against
the first certificate of its chain, and the pair is re-encoded as PEM for the
SSL context. Imported only when needed: ``cryptography.x509`` costs a process
about 10 MB of memory.

Reads files; no ``ssl``.
"""

from __future__ import annotations

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import dsa, ec, ed448, ed25519, rsa

from mailseal.tls.chains import (
    CERT_LABELS,
    ENCRYPTED_KEY_LABELS,
    KEY_LABELS,
    ChainError,
    KeyChain,
    PemBlock,
    blocks_or,
    chain_file_blocks,
)

__all__ = ["key_algorithm", "parsed_chain_files", "parsed_pair"]

PrivateKey = (
    rsa.RSAPrivateKey
    | ec.EllipticCurvePrivateKey
    | ed25519.Ed25519PrivateKey
    | ed448.Ed448PrivateKey
    | dsa.DSAPrivateKey
)


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


def parsed_chain_files(paths: tuple[str, ...] | list[str]) -> tuple[KeyChain, ...]:
    """Keys each followed by its chain, from ``paths`` read as one concatenation."""
    blocks = chain_file_blocks(paths)
    chains: list[KeyChain] = []
    key: PrivateKey | None = None
    certs: list[x509.Certificate] = []
    source = ""
    for index, (label, body, path) in enumerate(blocks, start=1):
        if label in KEY_LABELS | ENCRYPTED_KEY_LABELS:
            if key is not None:
                chains.append(_finish(key, certs, source, index))
            key, certs, source = _parse_key(label, body, path, index), [], path
        elif label in CERT_LABELS:
            if key is None:
                raise ChainError(f"error loading chain from {path}: key not first")
            certs.append(_parse_cert(body, path, index))
    if key is None:
        raise ChainError(f"No private key found in {', '.join(paths)}")
    chains.append(_finish(key, certs, source, len(blocks)))
    return tuple(chains)


def parsed_pair(label: str, cert_file: str, key_file: str) -> KeyChain:
    """A legacy ``*_cert_file`` + ``*_key_file`` pair (``label``: RSA or ECDSA)."""
    cert_problem = f'cannot get {label} certificate from file "{cert_file}": disabling TLS support'
    certs = [
        _parse_cert(body, cert_file, index)
        for index, (kind, body) in enumerate(blocks_or(cert_file, cert_problem), start=1)
        if kind in CERT_LABELS
    ]
    if not certs:
        raise ChainError(f"{cert_problem} (no PEM certificate in the file)")
    key_problem = f'cannot get {label} private key from file "{key_file}": disabling TLS support'
    keys: list[tuple[int, PemBlock]] = [
        (index, (kind, body))
        for index, (kind, body) in enumerate(blocks_or(key_file, key_problem), start=1)
        if kind in KEY_LABELS | ENCRYPTED_KEY_LABELS
    ]
    if not keys:
        raise ChainError(f"{key_problem} (no PEM private key in the file)")
    index, (kind, body) = keys[0]
    key = _parse_key(kind, body, key_file, index)
    if not _same_public_key(key, certs[0]):
        raise ChainError(
            f"{label} private key in {key_file} does not match public key in {cert_file}: "
            "disabling TLS support"
        )
    return _key_chain(key, certs, cert_file)


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
    return _key_chain(key, certs, path)


def _key_chain(key: PrivateKey, certs: list[x509.Certificate], source: str) -> KeyChain:
    """Key then chain in PEM, the layout ``SSLContext.load_cert_chain`` reads."""
    key_pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    chain_pem = b"".join(c.public_bytes(serialization.Encoding.PEM) for c in certs)
    return KeyChain(key_algorithm(key), key_pem + chain_pem, source)


def _parse_cert(body: bytes, path: str, index: int) -> x509.Certificate:
    try:
        return x509.load_pem_x509_certificate(body)
    except ValueError:
        raise ChainError(
            f"error loading certificate (PEM object number {index}) from {path}"
        ) from None


def _parse_key(label: bytes, body: bytes, path: str, index: int) -> PrivateKey:
    # Postfix reads keys without a passphrase (a daemon has nobody to ask).
    detail = " (encrypted keys are not supported)" if label in ENCRYPTED_KEY_LABELS else ""
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
