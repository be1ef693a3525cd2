"""Stored SCRAM-SHA-256 credentials (RFC 5802 section 3, RFC 7677), in Dovecot's text form.

A SCRAM server never needs the password: it keeps the salt, the iteration count and two
keys derived from the salted password. Dovecot writes them as
``{SCRAM-SHA-256}<iterations>,<salt>,<StoredKey>,<ServerKey>`` (base64 fields), which is
what ``doveadm pw -s SCRAM-SHA-256`` prints, so the same text works in both.

The salt is an argument: the SMTP core is sans-IO and takes its randomness from the
caller (``secrets.token_bytes(16)``).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
from dataclasses import dataclass

__all__ = ["SCRAM_PREFIX", "ScramCredentials"]

SCRAM_PREFIX = "{SCRAM-SHA-256}"
# RFC 7677 section 4 asks for at least 4096; Dovecot's default is 4096 too.
DEFAULT_ITERATIONS = 4096


def _hmac(key: bytes, message: bytes) -> bytes:
    return hmac.new(key, message, hashlib.sha256).digest()


@dataclass(frozen=True)
class ScramCredentials:
    """Salt, iteration count, StoredKey and ServerKey of one user."""

    iterations: int
    salt: bytes
    stored_key: bytes
    server_key: bytes

    @classmethod
    def derive(
        cls, password: str, salt: bytes, iterations: int = DEFAULT_ITERATIONS
    ) -> ScramCredentials:
        """The credentials for ``password`` (RFC 5802 section 3: SaltedPassword := Hi(...))."""
        salted = hashlib.pbkdf2_hmac("sha256", password.encode("utf-8"), salt, iterations)
        client_key = _hmac(salted, b"Client Key")
        return cls(
            iterations=iterations,
            salt=salt,
            stored_key=hashlib.sha256(client_key).digest(),
            server_key=_hmac(salted, b"Server Key"),
        )

    def to_text(self) -> str:
        """Dovecot's form: ``{SCRAM-SHA-256}4096,salt,StoredKey,ServerKey``."""
        fields = (self.salt, self.stored_key, self.server_key)
        encoded = ",".join(base64.b64encode(f).decode("ascii") for f in fields)
        return f"{SCRAM_PREFIX}{self.iterations},{encoded}"

    @classmethod
    def from_text(cls, text: str) -> ScramCredentials:
        """Parse Dovecot's form; ``ValueError`` says what is wrong."""
        if not text.startswith(SCRAM_PREFIX):
            raise ValueError(f"SCRAM credentials must start with {SCRAM_PREFIX}")
        parts = text[len(SCRAM_PREFIX) :].split(",")
        if len(parts) != 4 or not parts[0].isdigit():
            raise ValueError("SCRAM credentials must be iterations,salt,StoredKey,ServerKey")
        try:
            salt, stored, server = (base64.b64decode(p, validate=True) for p in parts[1:])
        except binascii.Error:
            raise ValueError("SCRAM credentials hold invalid base64") from None
        if len(stored) != 32 or len(server) != 32 or not salt:
            raise ValueError("SCRAM-SHA-256 keys must be 32 bytes and the salt non-empty")
        return cls(int(parts[0]), salt, stored, server)

    def matches(self, password: str) -> bool:
        """Whether ``password`` derives these keys (constant-time comparison)."""
        other = ScramCredentials.derive(password, self.salt, self.iterations)
        return hmac.compare_digest(other.stored_key, self.stored_key) and hmac.compare_digest(
            other.server_key, self.server_key
        )
