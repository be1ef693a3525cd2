"""Password hashes in Dovecot's ``{SCHEME}hash`` form: checking them, and making new ones.

The users file (``smtpd_sasl_passwd_file``) is in Dovecot's passwd-file format,
so the hashes are Dovecot's too; each scheme below reads what
``doveadm pw -s SCHEME`` writes:

* ``{ARGON2ID}$argon2id$v=19$m=65536,t=3,p=1$salt$hash`` (and ``{ARGON2I}``): argon2-cffi;
* ``{BLF-CRYPT}$2y$05$...``: bcrypt (``$2a$``, ``$2b$`` and ``$2y$`` are the same hash);
* ``{SHA512-CRYPT}$6$[rounds=N$]salt$hash`` and ``{SHA256-CRYPT}$5$...``: see ``shacrypt``;
* ``{SCRAM-SHA-256}iter,salt,StoredKey,ServerKey`` (RFC 7677): the SCRAM keys, which
  can check a plain password too;
* ``{CRYPT}`` and a password with no ``{SCHEME}`` (Dovecot's default scheme for
  passwd-file is CRYPT): one of the crypt(3) forms above, told apart by its prefix;
* ``{PLAIN}`` (and Dovecot's names for it, ``{CLEAR}``, ``{CLEARTEXT}``).

Anything else raises ``UnsupportedHash``: the caller logs it and fails the login.
"""

from __future__ import annotations

import hmac
import re
from collections.abc import Callable

import argon2
import bcrypt

from mailseal.services.sasl.shacrypt import ShaCryptError, verify_sha_crypt
from mailseal.smtp.sasl.credentials import SCRAM_PREFIX, ScramCredentials

__all__ = ["SCHEMES", "UnsupportedHash", "hash_password", "verify_password"]

# Dovecot's own default cost for ARGON2ID (m=64 MiB, t=3, p=1), so our hashes look exactly
# like ``doveadm pw -s ARGON2ID`` output. Not argon2-cffi's RFC 9106 low-memory profile:
# that one has p=4, and Dovecot checks Argon2 with libsodium, which only accepts p=1.
_HASHER = argon2.PasswordHasher(
    time_cost=3, memory_cost=65536, parallelism=1, hash_len=32, salt_len=16
)
# crypt_blowfish (Dovecot's bcrypt) reads only the first 72 bytes of a password;
# the bcrypt package refuses longer ones instead, so we cut them the same way.
_BCRYPT_MAX = 72
_BCRYPT = re.compile(r"\$2[aby]\$[0-9]{2}\$[./A-Za-z0-9]{53}")


class UnsupportedHash(ValueError):  # noqa: N818 - the name the callers were promised
    """A stored password whose scheme we do not know or whose hash is malformed."""


def _split(stored: str) -> tuple[str, str]:
    """``{SCHEME}rest`` -> (``SCHEME``, ``rest``); no prefix means ``CRYPT``."""
    if not stored.startswith("{"):
        return "CRYPT", stored
    end = stored.find("}")
    if end < 0:
        raise UnsupportedHash("password scheme has no closing '}'")
    return stored[1:end].upper(), stored[end + 1 :]


def _argon2(prefix: str) -> Callable[[str, str], bool]:
    def verify(hashed: str, password: str) -> bool:
        if not hashed.startswith(prefix):
            raise UnsupportedHash(f"Argon2 hash must start with {prefix}")
        try:
            return _HASHER.verify(hashed, password)
        except argon2.exceptions.VerifyMismatchError:
            return False
        except (argon2.exceptions.InvalidHashError, argon2.exceptions.VerificationError):
            raise UnsupportedHash("malformed Argon2 hash") from None

    return verify


def _bcrypt(hashed: str, password: str) -> bool:
    if _BCRYPT.fullmatch(hashed) is None:
        raise UnsupportedHash("malformed BLF-CRYPT hash (want $2y$NN$ and 53 characters)")
    secret = password.encode("utf-8")[:_BCRYPT_MAX]
    if b"\0" in secret:  # bcrypt stops at NUL; no SASL password holds one
        return False
    return bcrypt.checkpw(secret, hashed.encode("ascii"))


def _sha_crypt(prefix: str) -> Callable[[str, str], bool]:
    def verify(hashed: str, password: str) -> bool:
        if not hashed.startswith(prefix):
            raise UnsupportedHash(f"SHA-crypt hash must start with {prefix}")
        try:
            return verify_sha_crypt(hashed, password)
        except ShaCryptError as error:
            raise UnsupportedHash(str(error)) from None

    return verify


def _scram(hashed: str, password: str) -> bool:
    try:
        credentials = ScramCredentials.from_text(SCRAM_PREFIX + hashed)
    except ValueError as error:
        raise UnsupportedHash(str(error)) from None
    return credentials.matches(password)


def _plain(hashed: str, password: str) -> bool:
    return hmac.compare_digest(hashed.encode("utf-8"), password.encode("utf-8"))


def _crypt(hashed: str, password: str) -> bool:
    """Dovecot's CRYPT: whichever crypt(3) form the hash is, by its prefix."""
    for prefix, verify in _CRYPT_FORMS:
        if hashed.startswith(prefix):
            return verify(hashed, password)
    raise UnsupportedHash("CRYPT hash is none of $argon2id$, $argon2i$, $2y$, $6$, $5$")


_CRYPT_FORMS: tuple[tuple[str, Callable[[str, str], bool]], ...] = (
    ("$argon2id$", _argon2("$argon2id$")),
    ("$argon2i$", _argon2("$argon2i$")),
    ("$2", _bcrypt),
    ("$6$", _sha_crypt("$6$")),
    ("$5$", _sha_crypt("$5$")),
)

_VERIFIERS: dict[str, Callable[[str, str], bool]] = {
    "ARGON2ID": _argon2("$argon2id$"),
    "ARGON2I": _argon2("$argon2i$"),
    "BLF-CRYPT": _bcrypt,
    "SHA512-CRYPT": _sha_crypt("$6$"),
    "SHA256-CRYPT": _sha_crypt("$5$"),
    "SCRAM-SHA-256": _scram,
    "CRYPT": _crypt,
    "PLAIN": _plain,
    "CLEAR": _plain,
    "CLEARTEXT": _plain,
}

SCHEMES: tuple[str, ...] = tuple(_VERIFIERS)


def verify_password(stored: str, password: str) -> bool:
    """Whether ``password`` matches ``stored`` (``{SCHEME}hash``), compared in constant time.

    Raises ``UnsupportedHash`` for an unknown scheme or a malformed hash, never
    merely because the password is wrong.
    """
    scheme, hashed = _split(stored)
    verify = _VERIFIERS.get(scheme)
    if verify is None:
        raise UnsupportedHash(f"unsupported password scheme {{{scheme}}}")
    if not hashed:
        raise UnsupportedHash(f"empty {{{scheme}}} password")
    return verify(hashed, password)


def hash_password(password: str) -> str:
    """A new ``{ARGON2ID}$argon2id$v=19$m=65536,t=3,p=1$...`` hash with a random salt."""
    return "{ARGON2ID}" + _HASHER.hash(password)
