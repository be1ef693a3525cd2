"""SCRAM-SHA-256 pieces shared by the server and the client (RFC 5802, RFC 7677).

Message syntax of RFC 5802 section 7 (attribute lists, saslname escaping, printable
nonces) and the key arithmetic of section 3 (signatures, proofs).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac

__all__ = [
    "MECHANISM",
    "auth_message",
    "b64",
    "b64decode",
    "client_proof",
    "escape_saslname",
    "is_printable",
    "parse_attributes",
    "recover_client_key",
    "server_signature",
    "unescape_saslname",
]

MECHANISM = "SCRAM-SHA-256"
DIGEST_SIZE = hashlib.sha256().digest_size


def hmac_sha256(key: bytes, message: bytes) -> bytes:
    """HMAC(key, message) with SHA-256 (RFC 7677 section 2)."""
    return hmac.new(key, message, hashlib.sha256).digest()


def b64(data: bytes) -> str:
    """Standard base64 with padding, as RFC 5802 section 7 writes ``base64``."""
    return base64.b64encode(data).decode("ascii")


def b64decode(text: str) -> bytes | None:
    """Strict base64 (no stray characters), or None."""
    try:
        return base64.b64decode(text.encode("ascii"), validate=True)
    except (binascii.Error, UnicodeEncodeError):
        return None


def is_printable(text: str) -> bool:
    """RFC 5802 ``printable``: %x21-2B / %x2D-7E, at least one character (no comma)."""
    return bool(text) and all("!" <= c <= "~" and c != "," for c in text)


def escape_saslname(name: str) -> str:
    """RFC 5802 section 5.1: ``=`` becomes ``=3D`` and ``,`` becomes ``=2C``."""
    return name.replace("=", "=3D").replace(",", "=2C")


def unescape_saslname(text: str) -> str | None:
    """Undo ``escape_saslname``; None if an ``=`` is not followed by 2C or 3D (MUST fail)."""
    out: list[str] = []
    i = 0
    while i < len(text):
        if text[i] == "=":
            code = text[i + 1 : i + 3]
            if code not in ("2C", "3D"):
                return None
            out.append("," if code == "2C" else "=")
            i += 3
        else:
            out.append(text[i])
            i += 1
    return "".join(out)


def parse_attributes(text: str) -> list[tuple[str, str]] | None:
    """``attr-val *("," attr-val)`` with ``attr-val = ALPHA "=" value``; None if malformed."""
    pairs: list[tuple[str, str]] = []
    for field in text.split(","):
        key, sep, value = field.partition("=")
        if not sep or len(key) != 1 or not ("a" <= key.lower() <= "z"):
            return None
        pairs.append((key, value))
    return pairs


def auth_message(client_first_bare: str, server_first: str, client_final_bare: str) -> bytes:
    """RFC 5802 section 3: ``AuthMessage``."""
    return f"{client_first_bare},{server_first},{client_final_bare}".encode()


def _xor(a: bytes, b: bytes) -> bytes:
    return bytes(x ^ y for x, y in zip(a, b, strict=True))


def client_proof(salted_password: bytes, message: bytes) -> bytes:
    """ClientProof := ClientKey XOR HMAC(H(ClientKey), AuthMessage)."""
    client_key = hmac_sha256(salted_password, b"Client Key")
    stored_key = hashlib.sha256(client_key).digest()
    return _xor(client_key, hmac_sha256(stored_key, message))


def recover_client_key(stored_key: bytes, message: bytes, proof: bytes) -> bytes:
    """The server's side of the proof: ClientKey := ClientProof XOR ClientSignature."""
    return _xor(proof, hmac_sha256(stored_key, message))


def server_signature(server_key: bytes, message: bytes) -> bytes:
    """ServerSignature := HMAC(ServerKey, AuthMessage)."""
    return hmac_sha256(server_key, message)
