"""TLS security levels, ordered, with the questions Postfix asks of them (``tls_level.c``).

One enum for both directions. The server knows only ``none``, ``may`` and
``encrypt`` (``smtpd_tls_security_level``); the client knows them all
(``smtp_tls_security_level``, policy maps, DANE). Code asks by name
(``level.requires_tls``), never by comparing strings.

``server_level`` applies Postfix's rule for the SMTP server: an explicit
``smtpd_tls_security_level`` wins; when it is empty the obsolete
``smtpd_enforce_tls`` (encrypt) and ``smtpd_use_tls`` (may) decide; and
``smtpd_tls_wrappermode`` (implicit TLS, RFC 8314 port 465) always means
encrypt, as in Postfix's smtpd.c.

Pure: imports only the standard library and ``mailseal.config``.
"""

from __future__ import annotations

from enum import Enum
from functools import total_ordering
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from mailseal.config.model import Config

__all__ = ["TlsLevel", "server_level"]


@total_ordering
class TlsLevel(Enum):
    """A TLS security level; members compare in the order declared (none lowest)."""

    NONE = "none"
    MAY = "may"
    ENCRYPT = "encrypt"
    FINGERPRINT = "fingerprint"
    VERIFY = "verify"
    SECURE = "secure"
    DANE = "dane"
    DANE_ONLY = "dane-only"

    @classmethod
    def parse(cls, text: str) -> TlsLevel:
        """The level Postfix names ``text`` (any case); empty text is ``none``.

        An empty level means "not configured": callers that must honour the
        obsolete switches first (``server_level``) check for it before parsing.
        """
        name = text.strip().lower()
        if not name:
            return cls.NONE
        try:
            return cls(name)
        except ValueError:
            raise ValueError(f'invalid TLS security level "{text.strip()}"') from None

    @property
    def rank(self) -> int:
        return _RANK[self]

    def __lt__(self, other: object) -> bool:
        if not isinstance(other, TlsLevel):
            return NotImplemented
        return self.rank < other.rank

    @property
    def is_opportunistic(self) -> bool:
        """TLS if possible, plaintext otherwise (Postfix TLS_OPPORTUNISTIC: may, dane).

        ``dane`` is opportunistic only until policy resolution finds usable
        TLSA records; then it is enforced.
        """
        return self in (TlsLevel.MAY, TlsLevel.DANE)

    @property
    def requires_tls(self) -> bool:
        """No plaintext fallback once this level is in effect (Postfix TLS_REQUIRED)."""
        return self >= TlsLevel.ENCRYPT

    @property
    def checks_certificate(self) -> bool:
        """The peer certificate must match something (Postfix TLS_MUST_MATCH)."""
        return self >= TlsLevel.FINGERPRINT

    @property
    def is_dane_based(self) -> bool:
        """Authentication comes from TLSA records (RFC 7672)."""
        return self in (TlsLevel.DANE, TlsLevel.DANE_ONLY)

    @property
    def requires_pkix(self) -> bool:
        """The peer must present a certificate trusted by a CA (verify, secure)."""
        return self in (TlsLevel.VERIFY, TlsLevel.SECURE)


_RANK: dict[TlsLevel, int] = {level: index for index, level in enumerate(TlsLevel)}


def server_level(config: Config) -> TlsLevel:
    """The SMTP server's level: Postfix smtpd.c's reading of its TLS parameters."""
    if config.smtpd_tls_wrappermode:
        return TlsLevel.ENCRYPT
    if config.smtpd_tls_security_level:
        return TlsLevel.parse(config.smtpd_tls_security_level)
    if config.smtpd_enforce_tls:
        return TlsLevel.ENCRYPT
    if config.smtpd_use_tls:
        return TlsLevel.MAY
    return TlsLevel.NONE
