"""Cipher strings from grades and exclusions; protocol windows from Postfix protocol lists."""

import ssl

import pytest
from tls_helpers import make_config

from mailseal.config.kinds import ProtocolsKind
from mailseal.tls.ciphers import (
    ProtocolWindow,
    cipher_string,
    protocol_window,
    split_exclusions,
)
from mailseal.tls.context import protocol_bounds

SEED_EXCLUSIONS = ("MD5", "DES", "ADH", "RC4", "PSD", "SRP", "3DES", "eNULL", "aNULL")


def test_grade_with_seed_exclusions_is_postfix_text() -> None:
    text = cipher_string(make_config(), "smtpd", "high", SEED_EXCLUSIONS)
    assert text == ("aNULL:-aNULL:HIGH:@STRENGTH:!MD5:!DES:!ADH:!RC4:!PSD:!SRP:!3DES:!eNULL:!aNULL")


@pytest.mark.parametrize("grade", ["high", "medium", "low", "export", "null"])
def test_each_grade_uses_its_cipherlist_parameter(grade: str) -> None:
    config = make_config(**{f"tls_{grade}_cipherlist": f"{grade.upper()}-LIST"})
    assert cipher_string(config, "smtpd", grade, ()) == f"{grade.upper()}-LIST"


def test_unknown_grade_is_refused() -> None:
    with pytest.raises(ValueError, match='smtpd_tls_ciphers: invalid cipher grade: "strong"'):
        cipher_string(make_config(), "smtpd", "strong", ())


@pytest.mark.parametrize("bad", ["!RC4", "+RC4", "-RC4", "@STRENGTH"])
def test_exclusion_with_an_operator_is_refused(bad: str) -> None:
    with pytest.raises(ValueError, match="invalid unary '!\\+-@' in cipher exclusion"):
        cipher_string(make_config(), "smtpd", "medium", ("MD5", bad))


def test_exclusions_split_like_postfix() -> None:
    assert split_exclusions(("MD5:RC4", "aNULL, eNULL", " 3DES ")) == (
        "MD5",
        "RC4",
        "aNULL",
        "eNULL",
        "3DES",
    )


def window(text: str) -> ProtocolWindow:
    return protocol_window(ProtocolsKind().parse(text))


@pytest.mark.parametrize(
    ("text", "lowest", "highest", "dropped"),
    [
        ("!SSLv2, !SSLv3, !TLSv1", "TLSv1.1", "TLSv1.3", ()),
        ("!SSLv2, !SSLv3, !TLSv1, !TLSv1.1", "TLSv1.2", "TLSv1.3", ()),
        (">=TLSv1.2", "TLSv1.2", "TLSv1.3", ()),
        (">=TLSv1.3", "TLSv1.3", "TLSv1.3", ()),
        (">=TLSv1", "TLSv1", "TLSv1.3", ()),
        # SSLv3 is never enabled, even when allowed.
        (">=SSLv3", "TLSv1", "TLSv1.3", ()),
        ("<=TLSv1.2", "TLSv1", "TLSv1.2", ()),
        # A hole: keep the highest contiguous block, report what was left out.
        ("!TLSv1.2", "TLSv1.3", "TLSv1.3", ("TLSv1", "TLSv1.1")),
        ("!SSLv2, !SSLv3, !TLSv1.1", "TLSv1.2", "TLSv1.3", ("TLSv1",)),
        ("TLSv1 TLSv1.2", "TLSv1.2", "TLSv1.2", ("TLSv1",)),
    ],
)
def test_protocol_window(text: str, lowest: str, highest: str, dropped: tuple[str, ...]) -> None:
    assert window(text) == ProtocolWindow(lowest, highest, dropped)


def test_window_names() -> None:
    assert window(">=TLSv1.1").names == ("TLSv1.1", "TLSv1.2", "TLSv1.3")


def test_only_ssl_protocols_leave_nothing() -> None:
    with pytest.raises(ValueError, match="no TLS protocol version left"):
        window("SSLv3")


def test_protocol_bounds_are_openssl_versions() -> None:
    assert protocol_bounds(ProtocolsKind().parse("!SSLv2, !SSLv3, !TLSv1")) == (
        ssl.TLSVersion.TLSv1_1,
        ssl.TLSVersion.TLSv1_3,
    )
    assert protocol_bounds(ProtocolsKind().parse(">=TLSv1.3")) == (
        ssl.TLSVersion.TLSv1_3,
        ssl.TLSVersion.TLSv1_3,
    )
