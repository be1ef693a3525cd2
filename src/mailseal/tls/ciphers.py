"""Cipher strings and protocol windows from Postfix's TLS parameters (pure text work).

Postfix names a cipher *grade* (``smtpd_tls_ciphers``, ``smtpd_tls_mandatory_ciphers``:
high, medium, low, export, null), looks up the OpenSSL cipher string behind it
(``tls_high_cipherlist`` ...), and appends every exclusion as ``:!NAME``
(``tls_misc.c`` tls_set_ciphers). An exclusion may not start with one of
OpenSSL's operators ``! + - @``: Postfix refuses such a list and so do we.
The TLS 1.3 cipher suites are not touched (OpenSSL's defaults), as in Postfix.

Protocols: ``TlsProtocolRange.allowed()`` gives the names left by ``!NAME`` and
``>=NAME`` syntax. SSLv2 and SSLv3 are never enabled, whatever the text. OpenSSL
takes a minimum and a maximum version, so a hole (``!TLSv1.2`` with TLSv1.1 and
TLSv1.3 allowed) cannot be expressed; OpenSSL's own SSL_OP_NO_* handling would
silently keep the *lower* block. We keep the highest contiguous block instead
(never enabling a version the admin excluded, and keeping the strongest ones)
and report what was dropped so the caller can warn.

Pure: no ``ssl`` import; ``mailseal.tls.context`` turns a window into versions.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from mailseal.config.kinds import TlsProtocolRange
    from mailseal.config.model import Config

__all__ = [
    "CIPHER_GRADES",
    "TLS_VERSIONS",
    "ProtocolWindow",
    "cipher_string",
    "grade_cipherlist",
    "protocol_window",
    "split_exclusions",
]

CIPHER_GRADES: tuple[str, ...] = ("high", "medium", "low", "export", "null")

# The versions OpenSSL can still negotiate, oldest first (SSLv2/SSLv3 are never offered).
TLS_VERSIONS: tuple[str, ...] = ("TLSv1", "TLSv1.1", "TLSv1.2", "TLSv1.3")

# tls_misc.c: an exclusion that starts with an OpenSSL operator would change the list's meaning.
_OPERATORS = "!+-@"


def grade_cipherlist(config: Config, grade: str) -> str:
    """The OpenSSL cipher string of a Postfix grade (``tls_<grade>_cipherlist``)."""
    lists = {
        "high": config.tls_high_cipherlist,
        "medium": config.tls_medium_cipherlist,
        "low": config.tls_low_cipherlist,
        "export": config.tls_export_cipherlist,
        "null": config.tls_null_cipherlist,
    }
    try:
        return lists[grade.lower()]
    except KeyError:
        raise ValueError(f'invalid cipher grade: "{grade}"') from None


def split_exclusions(exclusions: Sequence[str]) -> tuple[str, ...]:
    """Postfix splits exclusions on white space, commas and colons (tls_set_ciphers)."""
    names: list[str] = []
    for item in exclusions:
        names.extend(token for token in item.replace(":", " ").replace(",", " ").split())
    return tuple(names)


def cipher_string(config: Config, prefix: str, grade: str, exclusions: Sequence[str]) -> str:
    """The OpenSSL cipher string for ``grade`` minus ``exclusions``, as Postfix builds it.

    ``prefix`` names the parameter family (``smtpd``, ``smtp``) for error texts.
    Raises ``ValueError`` with Postfix's wording for an unknown grade or an
    exclusion that begins with an OpenSSL operator.
    """
    try:
        text = grade_cipherlist(config, grade)
    except ValueError as error:
        raise ValueError(f"{prefix}_tls_ciphers: {error}") from None
    for name in split_exclusions(exclusions):
        if name[0] in _OPERATORS:
            raise ValueError(
                f"{prefix}_tls_exclude_ciphers: invalid unary '{_OPERATORS}' "
                f'in cipher exclusion: "{name}"'
            )
        text += f":!{name}"
    return text


@dataclass(frozen=True)
class ProtocolWindow:
    """The contiguous TLS versions to enable, and allowed versions left out to make it so."""

    lowest: str
    highest: str
    dropped: tuple[str, ...] = ()

    @property
    def names(self) -> tuple[str, ...]:
        low, high = TLS_VERSIONS.index(self.lowest), TLS_VERSIONS.index(self.highest)
        return TLS_VERSIONS[low : high + 1]


def protocol_window(allowed: TlsProtocolRange) -> ProtocolWindow:
    """The highest contiguous block of allowed TLS versions (SSLv2/SSLv3 never).

    Raises ``ValueError`` when no TLS version is left (e.g. only ``SSLv3``).
    """
    names = [name for name in allowed.allowed() if name in TLS_VERSIONS]
    if not names:
        raise ValueError("no TLS protocol version left")
    # Walk down from the newest allowed version while the versions stay adjacent.
    block = [names[-1]]
    for name in reversed(names[:-1]):
        if TLS_VERSIONS.index(name) != TLS_VERSIONS.index(block[-1]) - 1:
            break
        block.append(name)
    dropped = tuple(name for name in names if name not in block)
    return ProtocolWindow(lowest=block[-1], highest=block[0], dropped=dropped)
