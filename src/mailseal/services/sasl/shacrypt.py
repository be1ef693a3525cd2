"""SHA-crypt (``$5$``, ``$6$``), per Ulrich Drepper's "Unix crypt using SHA-256 and SHA-512".

Dovecot's ``{SHA512-CRYPT}`` and ``{SHA256-CRYPT}`` schemes are these strings
(``$6$salt$hash``, ``$6$rounds=N$salt$hash``). Python's ``crypt`` module is
deprecated and gone in 3.13, so the algorithm is written out here over hashlib.
It is only ever used to *check* imported hashes: new ones are Argon2id.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Callable
from dataclasses import dataclass

__all__ = ["ShaCryptError", "sha_crypt", "verify_sha_crypt"]

# The spec's limits: the salt is cut to 16 characters, rounds are clamped to this range.
SALT_MAX = 16
ROUNDS_DEFAULT = 5000
ROUNDS_MIN = 1000
ROUNDS_MAX = 999_999_999

_B64 = "./0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"


@dataclass(frozen=True)
class _Variant:
    """What differs between ``$5$`` and ``$6$``: the hash and the output byte order."""

    digest: Callable[[bytes], bytes]
    # Triples of digest byte indexes, each encoded as 4 characters (high byte first),
    # then the leftover bytes as a shorter group (the spec's b64_from_24bit calls).
    order: tuple[tuple[int, ...], ...]
    length: int  # characters in the encoded hash


def _sha256(data: bytes) -> bytes:
    return hashlib.sha256(data).digest()


def _sha512(data: bytes) -> bytes:
    return hashlib.sha512(data).digest()


_VARIANTS = {
    "5": _Variant(
        _sha256,
        (
            (0, 10, 20), (21, 1, 11), (12, 22, 2), (3, 13, 23), (24, 4, 14),
            (15, 25, 5), (6, 16, 26), (27, 7, 17), (18, 28, 8), (9, 19, 29),
            (31, 30),
        ),
        43,
    ),
    "6": _Variant(
        _sha512,
        (
            (0, 21, 42), (22, 43, 1), (44, 2, 23), (3, 24, 45), (25, 46, 4),
            (47, 5, 26), (6, 27, 48), (28, 49, 7), (50, 8, 29), (9, 30, 51),
            (31, 52, 10), (53, 11, 32), (12, 33, 54), (34, 55, 13), (56, 14, 35),
            (15, 36, 57), (37, 58, 16), (59, 17, 38), (18, 39, 60), (40, 61, 19),
            (62, 20, 41), (63,),
        ),
        86,
    ),
}  # fmt: skip

_HASH = re.compile(r"\$([56])\$(?:rounds=([0-9]+)\$)?([^$:\n]{0,16})\$([./0-9A-Za-z]+)")


class ShaCryptError(ValueError):
    """A string that is not a well-formed SHA-crypt hash."""


def _repeat(block: bytes, length: int) -> bytes:
    """``block`` repeated and cut to ``length`` bytes (the spec's steps 16 and 20)."""
    return (block * (length // len(block) + 1))[:length]


def _encode(digest: bytes, variant: _Variant) -> str:
    out = []
    for group in variant.order:
        value = 0
        for index in group:
            value = (value << 8) | digest[index]
        # A triple gives 4 characters; the leftover 2 bytes give 3, 1 byte gives 2.
        for _ in range(len(group) + 1):
            out.append(_B64[value & 0x3F])
            value >>= 6
    return "".join(out)


def _digest(password: bytes, salt: bytes, rounds: int, variant: _Variant) -> bytes:
    """Steps 1-21 of the spec: the final digest before encoding."""
    h = variant.digest
    alternate = h(password + salt + password)
    data = password + salt + _repeat(alternate, len(password))
    length = len(password)
    while length:  # one block per bit of the password length, low bit first
        data += alternate if length & 1 else password
        length >>= 1
    current = h(data)
    p_bytes = _repeat(h(password * len(password)), len(password))
    s_bytes = _repeat(h(salt * (16 + current[0])), len(salt))
    for i in range(rounds):
        block = p_bytes if i & 1 else current
        if i % 3:
            block += s_bytes
        if i % 7:
            block += p_bytes
        block += current if i & 1 else p_bytes
        current = h(block)
    return current


def sha_crypt(password: str, setting: str) -> str:
    """crypt(3) for ``$5$[rounds=N$]salt`` or ``$6$...``, following the spec exactly.

    As the spec says, the salt is cut to 16 characters and rounds are clamped
    to 1000..999999999; ``rounds=`` appears in the result only when given.
    """
    match = re.fullmatch(r"\$([56])\$(?:rounds=([0-9]+)\$)?([^$]*)(?:\$.*)?", setting)
    if match is None:
        raise ShaCryptError("not a $5$ or $6$ setting")
    variant = _VARIANTS[match.group(1)]
    rounds_text = match.group(2)
    rounds = ROUNDS_DEFAULT if rounds_text is None else int(rounds_text)
    rounds = min(max(rounds, ROUNDS_MIN), ROUNDS_MAX)
    salt = match.group(3)[:SALT_MAX]
    digest = _digest(password.encode("utf-8"), salt.encode("utf-8"), rounds, variant)
    prefix = f"${match.group(1)}$" + ("" if rounds_text is None else f"rounds={rounds}$")
    return f"{prefix}{salt}${_encode(digest, variant)}"


def verify_sha_crypt(stored: str, password: str) -> bool:
    """Whether ``password`` hashes to ``stored`` (compared in constant time).

    ``stored`` must be a canonical hash: rounds in range and a hash of the
    right length. libxcrypt (which Dovecot uses on Debian) refuses rounds out
    of range rather than clamping them, so a hash such as ``rounds=10`` is
    malformed here too.
    """
    match = _HASH.fullmatch(stored)
    if match is None:
        raise ShaCryptError("malformed SHA-crypt hash")
    variant = _VARIANTS[match.group(1)]
    if len(match.group(4)) != variant.length:
        raise ShaCryptError("SHA-crypt hash has the wrong length")
    rounds_text = match.group(2)
    if rounds_text is not None and not ROUNDS_MIN <= int(rounds_text) <= ROUNDS_MAX:
        raise ShaCryptError(f"SHA-crypt rounds must be {ROUNDS_MIN}..{ROUNDS_MAX}")
    computed = sha_crypt(password, stored)
    return hmac.compare_digest(computed.encode("utf-8"), stored.encode("utf-8"))
