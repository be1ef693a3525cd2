"""Judging finished handshakes: summary text, bits, trust words, fingerprints, failures."""

import hashlib
import re
import ssl
from pathlib import Path

import pytest
import trustme
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from tls_helpers import SEED_TLS, client_context, handshake, make_config, write_leaf

from mailseal.tls.outcome import (
    HandshakeFailure,
    PeerTrust,
    TlsOutcome,
    colon_hex,
    handshake_failure,
    judge_server_side,
)
from mailseal.tls.server import build_server_tls

V = ssl.TLSVersion


@pytest.fixture(scope="module")
def ca() -> trustme.CA:
    return trustme.CA()


@pytest.fixture
def server(tmp_path: Path, ca: trustme.CA) -> ssl.SSLContext:
    leaf = ca.issue_cert("mail.example.com", key_type=trustme.KeyType.RSA)
    config = make_config(
        **SEED_TLS, smtpd_tls_cert_file=str(write_leaf(tmp_path, "s", leaf, key_inside=True))
    )
    context = build_server_tls(config).context
    assert context is not None
    return context


def test_summary_is_postfix_text() -> None:
    outcome = TlsOutcome("TLSv1.3", "TLS_AES_256_GCM_SHA384", 256, 256, PeerTrust.ANONYMOUS)
    assert outcome.summary() == "TLSv1.3 with cipher TLS_AES_256_GCM_SHA384 (256/256 bits)"
    assert not outcome.has_peer_certificate
    assert not outcome.is_trusted


def test_trust_words() -> None:
    assert [str(trust) for trust in PeerTrust] == ["Anonymous", "Untrusted", "Trusted", "Verified"]


def test_anonymous_tls13_session(server: ssl.SSLContext, ca: trustme.CA) -> None:
    _, server_side = handshake(client_context(ca), server)
    outcome = judge_server_side(server_side, ca_configured=False)
    assert outcome == TlsOutcome("TLSv1.3", "TLS_AES_256_GCM_SHA384", 256, 256, PeerTrust.ANONYMOUS)


def test_tls12_session_with_aes128(server: ssl.SSLContext, ca: trustme.CA) -> None:
    client = client_context(ca, maximum=V.TLSv1_2, ciphers="ECDHE-RSA-AES128-GCM-SHA256")
    _, server_side = handshake(client, server)
    outcome = judge_server_side(server_side, ca_configured=False)
    assert outcome.summary() == "TLSv1.2 with cipher ECDHE-RSA-AES128-GCM-SHA256 (128/128 bits)"


def test_certificate_names_and_fingerprints(tmp_path: Path, ca: trustme.CA) -> None:
    leaf = ca.issue_cert("mail.example.com")
    ca.cert_pem.write_to_path(str(tmp_path / "ca.pem"))
    config = make_config(
        **{
            **SEED_TLS,
            "smtpd_tls_security_level": "encrypt",
            "smtpd_tls_cert_file": str(write_leaf(tmp_path, "s", leaf, key_inside=True)),
            "smtpd_tls_CAfile": str(tmp_path / "ca.pem"),
            "smtpd_tls_ask_ccert": "yes",
            "smtpd_tls_fingerprint_digest": "md5",
        }
    )
    server = build_server_tls(config)
    assert server.context is not None
    client_leaf = ca.issue_cert("laptop.example.com", common_name="Laptop One")
    _, server_side = handshake(client_context(cert=client_leaf), server.context)

    trusted = server.judge(server_side)
    der = x509.load_pem_x509_certificate(client_leaf.cert_chain_pems[0].bytes()).public_bytes(
        serialization.Encoding.DER
    )
    assert trusted.trust is PeerTrust.TRUSTED and trusted.is_trusted
    assert trusted.peer_subject_cn == "Laptop One"
    assert trusted.peer_fingerprint == colon_hex(hashlib.md5(der).digest())
    assert re.fullmatch(r"([0-9A-F]{2}:){15}[0-9A-F]{2}", trusted.peer_fingerprint)
    # The same session judged without a CA behind it: the certificate proves nothing.
    untrusted = judge_server_side(server_side, digest="sha256", ca_configured=False)
    assert untrusted.trust is PeerTrust.UNTRUSTED and not untrusted.is_trusted
    assert untrusted.peer_fingerprint == colon_hex(hashlib.sha256(der).digest())


def test_colon_hex() -> None:
    assert colon_hex(bytes([0, 0xAB, 0x0F])) == "00:AB:0F"


def test_failure_of_a_refused_protocol(server: ssl.SSLContext) -> None:
    old = client_context(minimum=V.TLSv1, maximum=V.TLSv1, ciphers="ALL:@SECLEVEL=0")
    with pytest.raises(ssl.SSLError) as caught:
        handshake(old, server)
    failure = handshake_failure(caught.value)
    assert failure.reason == "-1"
    assert failure.library_detail is not None
    assert failure.library_detail.startswith("error:SSL routines::")
    assert "_ssl.c" not in failure.library_detail


@pytest.mark.parametrize(
    "error",
    [
        ssl.SSLEOFError(8, "EOF occurred"),
        ssl.SSLZeroReturnError(6, "closed"),
        ConnectionResetError(),
    ],
)
def test_peer_going_away_is_lost_connection(error: BaseException) -> None:
    assert handshake_failure(error) == HandshakeFailure("lost connection")


def test_other_errors_keep_their_text() -> None:
    assert handshake_failure(TimeoutError("timed out")) == HandshakeFailure("timed out")
