"""Client certificates: when they are asked for, what happens with each kind of client.

Python's ``ssl`` aborts a handshake whose client certificate does not verify, so
the server asks only where that cannot lose mail; these handshakes show it.
"""

import hashlib
import ssl
from pathlib import Path

import pytest
import trustme
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from tls_helpers import SEED_TLS, client_context, handshake, make_config, write_leaf

from mailseal.tls.outcome import PeerTrust, colon_hex
from mailseal.tls.server import ServerTls, build_server_tls


@pytest.fixture(scope="module")
def ca() -> trustme.CA:
    return trustme.CA(organization_name="Example Clients CA")


@pytest.fixture(scope="module")
def stranger() -> trustme.LeafCert:
    """A client certificate from a CA the server has never heard of."""
    return trustme.CA().issue_cert("relay.elsewhere.example")


@pytest.fixture
def settings(tmp_path: Path, ca: trustme.CA) -> dict[str, str]:
    leaf = ca.issue_cert("mail.example.com")
    ca.cert_pem.write_to_path(str(tmp_path / "ca.pem"))
    return {
        **SEED_TLS,
        "smtpd_tls_cert_file": str(write_leaf(tmp_path, "server", leaf, key_inside=True)),
        "smtpd_tls_CAfile": str(tmp_path / "ca.pem"),
        "smtpd_tls_ask_ccert": "yes",
    }


def build(settings: dict[str, str], **more: str) -> ServerTls:
    server = build_server_tls(make_config(**{**settings, **more}))
    assert server.problem is None, server.problem
    assert server.context is not None
    return server


def test_not_asked_at_may_so_strangers_still_deliver(
    settings: dict[str, str], stranger: trustme.LeafCert
) -> None:
    server = build(settings)
    assert not server.ask_ccert
    assert server.context is not None
    assert server.context.verify_mode is ssl.CERT_NONE
    assert any('ignored at TLS level "may"' in w for w in server.warnings)
    _, server_side = handshake(client_context(cert=stranger), server.context)
    assert server.judge(server_side).trust is PeerTrust.ANONYMOUS


def test_not_asked_without_a_ca(settings: dict[str, str], stranger: trustme.LeafCert) -> None:
    server = build(settings, smtpd_tls_security_level="encrypt", smtpd_tls_CAfile="")
    assert not server.ask_ccert
    assert any("no smtpd_tls_CAfile or smtpd_tls_CApath" in w for w in server.warnings)
    assert server.context is not None
    handshake(client_context(cert=stranger), server.context)


def test_asked_at_encrypt_with_a_ca(settings: dict[str, str], ca: trustme.CA) -> None:
    server = build(settings, smtpd_tls_security_level="encrypt")
    assert server.ask_ccert and server.ca_configured
    assert server.context is not None
    assert server.context.verify_mode is ssl.CERT_OPTIONAL
    # Anonymous ciphers cannot carry a client certificate: Postfix excludes them.
    assert not [e for e in server.context.get_ciphers() if "Au=None" in str(e["description"])]

    client_leaf = ca.issue_cert("laptop.example.com")
    _, server_side = handshake(client_context(cert=client_leaf), server.context)
    outcome = server.judge(server_side)
    der = x509.load_pem_x509_certificate(client_leaf.cert_chain_pems[0].bytes())
    spki = der.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    raw = der.public_bytes(serialization.Encoding.DER)
    assert outcome.trust is PeerTrust.TRUSTED
    assert outcome.peer_subject_cn == ""  # trustme puts names in the SAN only
    assert outcome.peer_issuer_cn.startswith("Example Clients CA")
    assert outcome.peer_fingerprint == colon_hex(hashlib.sha256(raw).digest())
    assert outcome.peer_pkey_fingerprint == colon_hex(hashlib.sha256(spki).digest())


def test_asked_client_without_certificate_is_anonymous(settings: dict[str, str]) -> None:
    server = build(settings, smtpd_tls_security_level="encrypt")
    assert server.context is not None
    _, server_side = handshake(client_context(), server.context)
    assert server.judge(server_side).trust is PeerTrust.ANONYMOUS


def test_asked_stranger_fails_the_handshake_documented_limit(
    settings: dict[str, str], stranger: trustme.LeafCert
) -> None:
    server = build(settings, smtpd_tls_security_level="encrypt")
    assert any("fails the TLS handshake" in w for w in server.warnings)
    assert server.context is not None
    with pytest.raises(ssl.SSLError, match="certificate verify failed"):
        handshake(client_context(cert=stranger), server.context)


def test_required_at_encrypt(settings: dict[str, str], ca: trustme.CA) -> None:
    server = build(settings, smtpd_tls_security_level="encrypt", smtpd_tls_req_ccert="yes")
    assert server.context is not None
    assert server.context.verify_mode is ssl.CERT_REQUIRED
    with pytest.raises(ssl.SSLError):
        handshake(client_context(), server.context)
    _, server_side = handshake(client_context(cert=ca.issue_cert("a.example")), server.context)
    assert server.judge(server_side).trust is PeerTrust.TRUSTED


def test_required_only_when_tls_is(settings: dict[str, str]) -> None:
    server = build(settings, smtpd_tls_req_ccert="yes")
    assert server.context is not None
    assert server.context.verify_mode is ssl.CERT_NONE
    assert "Can't require client certs unless TLS is required" in server.warnings


def test_unusable_ca_file_is_a_problem(settings: dict[str, str], tmp_path: Path) -> None:
    bad = tmp_path / "bad-ca.pem"
    bad.write_text("no certificates here\n")
    config = make_config(
        **{**settings, "smtpd_tls_security_level": "encrypt", "smtpd_tls_CAfile": str(bad)}
    )
    server = build_server_tls(config)
    assert server.context is None
    assert server.problem is not None
    assert server.problem.startswith(
        f"cannot load Certification Authority data, CAfile={bad}: disabling TLS support"
    )
