"""Postfix's exact log and Received: wording for server-side TLS."""

import shutil
import subprocess

import pytest

from mailseal.tls.iana import iana_cipher_name
from mailseal.tls.outcome import PeerTrust, TlsOutcome
from mailseal.tls.phrases import (
    client_cert_line,
    established_from,
    handshake_failed,
    logs_client_cert,
    received_tls_clause,
    received_tls_lines,
    setting_up_from,
    tls_library_problem,
)

ANON = TlsOutcome("TLSv1.3", "TLS_AES_256_GCM_SHA384", 256, 256, PeerTrust.ANONYMOUS)
CLIENT = TlsOutcome(
    "TLSv1.2",
    "ECDHE-RSA-AES128-GCM-SHA256",
    128,
    128,
    PeerTrust.TRUSTED,
    peer_subject_cn="laptop.example.com",
    peer_issuer_cn="Example CA",
    peer_fingerprint="AB:CD",
    peer_pkey_fingerprint="01:23",
)


def test_setting_up() -> None:
    assert setting_up_from("mx.example.net", "192.0.2.1") == (
        "setting up TLS connection from mx.example.net[192.0.2.1]"
    )


def test_established() -> None:
    assert established_from(ANON, "unknown", "2001:db8::1") == (
        "Anonymous TLS connection established from unknown[2001:db8::1]: "
        "TLSv1.3 with cipher TLS_AES_256_GCM_SHA384 (256/256 bits)"
    )
    assert established_from(CLIENT, "a.example", "192.0.2.7", sni="mail.example.com") == (
        "Trusted TLS connection established from a.example[192.0.2.7] to mail.example.com: "
        "TLSv1.2 with cipher ECDHE-RSA-AES128-GCM-SHA256 (128/128 bits)"
    )


def test_client_certificate_line() -> None:
    assert client_cert_line(CLIENT, "a.example", "192.0.2.7") == (
        "a.example[192.0.2.7]: subject_CN=laptop.example.com, issuer=Example CA, "
        "fingerprint=AB:CD, pkey_fingerprint=01:23"
    )
    assert [logs_client_cert(level) for level in range(4)] == [False, False, True, True]


def test_handshake_failures() -> None:
    assert handshake_failed("unknown", "192.0.2.9", "lost connection") == (
        "SSL_accept error from unknown[192.0.2.9]: lost connection"
    )
    assert handshake_failed("unknown", "192.0.2.9", "-1") == (
        "SSL_accept error from unknown[192.0.2.9]: -1"
    )
    assert tls_library_problem("error:SSL routines::unsupported protocol") == (
        "TLS library problem: error:SSL routines::unsupported protocol"
    )


def test_received_postfix_style() -> None:
    assert received_tls_clause(ANON, postfix_style=True) == (
        "(using TLSv1.3 with cipher TLS_AES_256_GCM_SHA384 (256/256 bits))\n"
        "\t(No client certificate requested)"
    )
    assert received_tls_lines(ANON, ask_ccert=True)[1] == "(Client did not present a certificate)"
    assert received_tls_lines(CLIENT, ask_ccert=True)[1] == (
        '(Client CN "laptop.example.com", Issuer "Example CA" (verified OK))'
    )
    untrusted = TlsOutcome(
        "TLSv1.3",
        "TLS_AES_128_GCM_SHA256",
        128,
        128,
        PeerTrust.UNTRUSTED,
        peer_subject_cn="x",
        peer_issuer_cn="y",
    )
    assert received_tls_lines(untrusted, ask_ccert=True)[1] == (
        '(Client CN "x", Issuer "y" (not verified))'
    )


def test_received_rfc8314_clause() -> None:
    assert received_tls_clause(ANON, postfix_style=False) == "tls TLS_AES_256_GCM_SHA384"
    assert received_tls_clause(CLIENT, postfix_style=False) == (
        "tls TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256"
    )
    unknown = TlsOutcome("TLSv1.2", "GOST2012-KUZNYECHIK", 256, 256, PeerTrust.ANONYMOUS)
    assert received_tls_clause(unknown, postfix_style=False) == ""


@pytest.mark.interop
def test_iana_names_agree_with_openssl() -> None:
    openssl = shutil.which("openssl")
    if openssl is None:
        pytest.skip("openssl(1) is not installed")
    listing = subprocess.run(
        [openssl, "ciphers", "-stdname", "ALL:COMPLEMENTOFALL:@SECLEVEL=0"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    checked = 0
    for line in listing.splitlines():
        standard, _, openssl_name, *_ = line.split()
        if "PSK" in openssl_name or "SRP" in openssl_name:
            continue
        assert iana_cipher_name(openssl_name) == standard
        checked += 1
    assert checked > 40
