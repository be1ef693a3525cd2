"""TLS security levels: Postfix's names, their order, the predicates, the server's level."""

import pytest
from tls_helpers import make_config

from mailseal.tls.levels import TlsLevel, server_level

ORDER = [
    TlsLevel.NONE,
    TlsLevel.MAY,
    TlsLevel.ENCRYPT,
    TlsLevel.FINGERPRINT,
    TlsLevel.VERIFY,
    TlsLevel.SECURE,
    TlsLevel.DANE,
    TlsLevel.DANE_ONLY,
]


def test_levels_are_ordered_as_declared() -> None:
    shuffled = [ORDER[i] for i in (5, 0, 7, 2, 1, 6, 3, 4)]
    assert sorted(shuffled) == ORDER
    assert TlsLevel.MAY < TlsLevel.ENCRYPT <= TlsLevel.ENCRYPT < TlsLevel.DANE_ONLY
    assert max(TlsLevel.VERIFY, TlsLevel.MAY) is TlsLevel.VERIFY


@pytest.mark.parametrize(
    ("text", "level"),
    [
        ("none", TlsLevel.NONE),
        ("may", TlsLevel.MAY),
        (" Encrypt ", TlsLevel.ENCRYPT),
        ("fingerprint", TlsLevel.FINGERPRINT),
        ("verify", TlsLevel.VERIFY),
        ("secure", TlsLevel.SECURE),
        ("dane", TlsLevel.DANE),
        ("DANE-ONLY", TlsLevel.DANE_ONLY),
        ("", TlsLevel.NONE),
    ],
)
def test_parse_accepts_postfix_names(text: str, level: TlsLevel) -> None:
    assert TlsLevel.parse(text) is level


def test_parse_rejects_unknown_names() -> None:
    with pytest.raises(ValueError, match='invalid TLS security level "opportunistic"'):
        TlsLevel.parse("opportunistic")


# level: (is_opportunistic, requires_tls, checks_certificate), as Postfix's tls.h macros.
PREDICATES = {
    TlsLevel.NONE: (False, False, False),
    TlsLevel.MAY: (True, False, False),
    TlsLevel.ENCRYPT: (False, True, False),
    TlsLevel.FINGERPRINT: (False, True, True),
    TlsLevel.VERIFY: (False, True, True),
    TlsLevel.SECURE: (False, True, True),
    TlsLevel.DANE: (True, True, True),
    TlsLevel.DANE_ONLY: (False, True, True),
}


@pytest.mark.parametrize("level", list(TlsLevel))
def test_predicates(level: TlsLevel) -> None:
    assert (level.is_opportunistic, level.requires_tls, level.checks_certificate) == PREDICATES[
        level
    ]
    assert level.is_dane_based is (level in (TlsLevel.DANE, TlsLevel.DANE_ONLY))
    assert level.requires_pkix is (level in (TlsLevel.VERIFY, TlsLevel.SECURE))


@pytest.mark.parametrize(
    ("settings", "level"),
    [
        ({}, TlsLevel.NONE),
        ({"smtpd_use_tls": "yes"}, TlsLevel.MAY),
        ({"smtpd_enforce_tls": "yes"}, TlsLevel.ENCRYPT),
        ({"smtpd_use_tls": "yes", "smtpd_enforce_tls": "yes"}, TlsLevel.ENCRYPT),
        # An explicit level wins over the obsolete switches.
        ({"smtpd_tls_security_level": "none", "smtpd_enforce_tls": "yes"}, TlsLevel.NONE),
        ({"smtpd_tls_security_level": "may", "smtpd_enforce_tls": "yes"}, TlsLevel.MAY),
        ({"smtpd_tls_security_level": "encrypt"}, TlsLevel.ENCRYPT),
        # Implicit TLS (port 465) is always mandatory TLS.
        ({"smtpd_tls_wrappermode": "yes"}, TlsLevel.ENCRYPT),
        ({"smtpd_tls_wrappermode": "yes", "smtpd_tls_security_level": "may"}, TlsLevel.ENCRYPT),
    ],
)
def test_server_level_follows_postfix(settings: dict[str, str], level: TlsLevel) -> None:
    assert server_level(make_config(**settings)) is level
