"""The client's contexts and its verdict on real handshakes with a private CA (memory BIOs).

Each test resolves a policy from a configuration, builds the client context
mailseal would use, runs a full OpenSSL handshake against a server context
holding the certificate under test, and judges the result.
"""

from __future__ import annotations

import datetime
import hashlib
import ssl
from pathlib import Path

import pytest
import trustme
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from tls_helpers import LEGACY_OK, handshake, make_config

from mailseal.tls.certs import make_self_signed
from mailseal.tls.client import (
    HOSTNAME_MISMATCH,
    NOT_TRUSTED_BY_POLICY,
    CertFailure,
    ClientTls,
    ClientTlsError,
    ClientTlsOutcome,
    client_tls,
)
from mailseal.tls.client_phrases import established_to, peer_cert_line, verification_failed
from mailseal.tls.outcome import PeerTrust, colon_hex
from mailseal.tls.policy import TlsPolicy, resolve_policy

NEXTHOP = "example.com"
MX = "mx1.example.com"
NOW = datetime.datetime.now(datetime.UTC)


@pytest.fixture(scope="module")
def ca() -> trustme.CA:
    return trustme.CA(organization_name="Example Test CA")


@pytest.fixture
def ca_file(tmp_path: Path, ca: trustme.CA) -> str:
    path = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(path))
    return str(path)


def server_for(
    leaf: trustme.LeafCert, *, seen_sni: list[str | None] | None = None
) -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    leaf.configure_cert(context)
    if seen_sni is not None:

        def remember(_sock: ssl.SSLObject, name: str | None, _ctx: ssl.SSLContext) -> None:
            seen_sni.append(name)

        context.sni_callback = remember
    return context


def setup(level: str, entry: str | None = None, **settings: str) -> ClientTls:
    config = make_config(smtp_tls_security_level=level, **settings)
    table = {NEXTHOP: entry} if entry else {}
    policy = resolve_policy(config, NEXTHOP, port=25, lookup=table.get)
    return client_tls(policy, config)


def deliver(
    tls: ClientTls, server: ssl.SSLContext, *, mx: str = MX, from_dns_mx: bool = True
) -> ClientTlsOutcome:
    sni = tls.server_hostname(nexthop=NEXTHOP, mx_host=mx)
    client_side, _ = handshake(tls.context, server, hostname=sni)
    return tls.judge(client_side, nexthop=NEXTHOP, mx_host=mx, from_dns_mx=from_dns_mx)


# -- verify and secure -------------------------------------------------------------------


def test_ca_signed_right_name_is_verified(ca: trustme.CA, ca_file: str) -> None:
    tls = setup("verify", smtp_tls_CAfile=ca_file)
    result = deliver(tls, server_for(ca.issue_cert(MX)))
    assert result.matched and result.failure is None
    assert result.trust is PeerTrust.VERIFIED
    assert result.outcome.peer_subject_cn == MX
    assert result.outcome.peer_issuer_cn == "Example Test CA"
    line = established_to(result.outcome, MX, "192.0.2.1", 25)
    assert line.startswith(f"Verified TLS connection established to {MX}[192.0.2.1]:25: TLSv1.3")
    assert line.endswith(f"with cipher {result.cipher} ({result.bits}/{result.bits} bits)")


def test_wrong_name_is_untrusted_and_not_matched(ca: trustme.CA, ca_file: str) -> None:
    # As Postfix 3.7 (posttls-finger agrees): the mismatch fails verification.
    tls = setup("verify", smtp_tls_CAfile=ca_file)
    result = deliver(tls, server_for(ca.issue_cert("other.example.net")))
    assert not result.matched
    assert result.trust is PeerTrust.UNTRUSTED
    assert result.failure == CertFailure("server", HOSTNAME_MISMATCH)
    assert result.outcome.peer_subject_cn == "other.example.net"
    assert verification_failed(MX, "192.0.2.1", 25, result.failure) == (
        f"server certificate verification failed for {MX}[192.0.2.1]:25: num=62:hostname mismatch"
    )


def test_expired_certificate_fails_verify(ca: trustme.CA, ca_file: str) -> None:
    leaf = ca.issue_cert(
        MX,
        not_before=NOW - datetime.timedelta(days=30),
        not_after=NOW - datetime.timedelta(days=1),
    )
    result = deliver(setup("verify", smtp_tls_CAfile=ca_file), server_for(leaf))
    assert not result.matched
    assert result.trust is PeerTrust.UNTRUSTED
    assert result.failure == CertFailure("server", "certificate has expired")


def test_unknown_ca_names_the_untrusted_issuer(ca_file: str) -> None:
    stranger = trustme.CA(organization_name="Stranger CA").issue_cert(MX)
    result = deliver(setup("verify", smtp_tls_CAfile=ca_file), server_for(stranger))
    assert not result.matched
    assert result.failure is not None
    assert result.failure.purpose == ""
    assert result.failure.reason.startswith("untrusted issuer /O=Stranger CA/")


def test_intermediate_sent_by_the_server_completes_the_chain(ca: trustme.CA, ca_file: str) -> None:
    leaf = ca.create_child_ca().issue_cert(MX)
    assert len(leaf.cert_chain_pems) == 2
    result = deliver(setup("verify", smtp_tls_CAfile=ca_file), server_for(leaf))
    assert result.matched and result.trust is PeerTrust.VERIFIED


def test_wildcard_covers_one_label_only(ca: trustme.CA, ca_file: str) -> None:
    server = server_for(ca.issue_cert("*.example.com"))
    tls = setup("verify", smtp_tls_CAfile=ca_file)
    assert deliver(tls, server, mx="mx1.example.com").matched
    assert not deliver(tls, server, mx="a.mx1.example.com").matched


def test_secure_never_trusts_a_host_name_from_dns(ca: trustme.CA, ca_file: str) -> None:
    # The MX host lies outside the next-hop domain: only its DNS-given name matches.
    server = server_for(ca.issue_cert("mail.hoster.example"))
    by_hostname = setup("secure", "secure match=hostname", smtp_tls_CAfile=ca_file)
    outcome = deliver(by_hostname, server, mx="mail.hoster.example", from_dns_mx=True)
    assert not outcome.matched
    assert outcome.failure == CertFailure("server", HOSTNAME_MISMATCH)
    # The same name from a [bracketed] next hop (no MX lookup) is acceptable.
    assert deliver(by_hostname, server, mx="mail.hoster.example", from_dns_mx=False).matched
    # verify accepts the DNS-given name: that is its documented weakness.
    loose = setup("verify", smtp_tls_CAfile=ca_file)
    assert deliver(loose, server, mx="mail.hoster.example", from_dns_mx=True).matched


@pytest.mark.parametrize("name", ["example.com", "mx1.example.com", "a.b.example.com"])
def test_secure_accepts_nexthop_and_dot_nexthop(ca: trustme.CA, ca_file: str, name: str) -> None:
    tls = setup("secure", smtp_tls_CAfile=ca_file)
    assert tls.policy.matches == ("nexthop", "dot-nexthop")
    result = deliver(tls, server_for(ca.issue_cert(name)), mx="unrelated.example.net")
    assert result.matched and result.trust is PeerTrust.VERIFIED


def test_secure_refuses_a_sibling_domain(ca: trustme.CA, ca_file: str) -> None:
    tls = setup("secure", smtp_tls_CAfile=ca_file)
    assert not deliver(tls, server_for(ca.issue_cert("example.com.evil.example"))).matched


# -- opportunistic levels ----------------------------------------------------------------


@pytest.mark.parametrize("level", ["may", "encrypt"])
def test_self_signed_is_untrusted_but_acceptable(tmp_path: Path, level: str) -> None:
    server = self_signed_server(tmp_path)
    result = deliver(setup(level), server)
    assert result.matched
    assert result.trust is PeerTrust.UNTRUSTED
    assert result.failure == CertFailure("", "self-signed certificate")


def test_self_signed_fails_verify(tmp_path: Path, ca_file: str) -> None:
    result = deliver(setup("verify", smtp_tls_CAfile=ca_file), self_signed_server(tmp_path))
    assert not result.matched
    assert result.failure == CertFailure("", "self-signed certificate")


def test_may_says_trusted_when_the_chain_verifies(ca: trustme.CA, ca_file: str) -> None:
    server = server_for(ca.issue_cert("somewhere.else.example"))
    trusted = deliver(setup("may", smtp_tls_CAfile=ca_file), server)
    assert trusted.matched and trusted.trust is PeerTrust.TRUSTED
    # Without a CAfile nothing is trusted at may (the system store is for verify/secure).
    assert deliver(setup("may"), server).trust is PeerTrust.UNTRUSTED


def self_signed_server(tmp_path: Path) -> ssl.SSLContext:
    make_self_signed(MX, tmp_path / "self.pem", tmp_path / "self.key")
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(tmp_path / "self.pem", tmp_path / "self.key")
    return context


# -- fingerprint ---------------------------------------------------------------------------


def digests(leaf: trustme.LeafCert) -> tuple[str, str]:
    certificate = x509.load_pem_x509_certificate(leaf.cert_chain_pems[0].bytes())
    der = certificate.public_bytes(serialization.Encoding.DER)
    spki = certificate.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return colon_hex(hashlib.sha256(der).digest()), colon_hex(hashlib.sha256(spki).digest())


def test_fingerprint_matches_the_certificate_digest() -> None:
    leaf = trustme.CA().issue_cert("anything.example")  # no CA needed at all
    cert_digest, _ = digests(leaf)
    result = deliver(setup("fingerprint", f"fingerprint match={cert_digest}"), server_for(leaf))
    assert result.matched and result.trust is PeerTrust.VERIFIED
    assert result.outcome.peer_fingerprint == cert_digest


def test_fingerprint_matches_the_public_key_digest_in_any_case() -> None:
    leaf = trustme.CA().issue_cert("anything.example")
    _, pkey_digest = digests(leaf)
    entry = f"fingerprint match=00:11|{pkey_digest.lower()}"
    result = deliver(setup("fingerprint", entry), server_for(leaf))
    assert result.matched and result.trust is PeerTrust.VERIFIED
    line = peer_cert_line(result.outcome, MX, "192.0.2.1", 25)
    assert line.endswith(f"pkey_fingerprint={pkey_digest}")


def test_fingerprint_mismatch_is_not_matched() -> None:
    leaf = trustme.CA().issue_cert("anything.example")
    other, _ = digests(trustme.CA().issue_cert("anything.example"))
    result = deliver(setup("fingerprint", f"fingerprint match={other}"), server_for(leaf))
    assert not result.matched
    assert result.trust is PeerTrust.UNTRUSTED
    assert result.failure == CertFailure("", NOT_TRUSTED_BY_POLICY)


# -- protocols, SNI, caching -----------------------------------------------------------------


def legacy_server(leaf: trustme.LeafCert, maximum: ssl.TLSVersion) -> ssl.SSLContext:
    context = server_for(leaf)
    context.minimum_version = ssl.TLSVersion.TLSv1
    context.maximum_version = maximum
    context.set_ciphers(LEGACY_OK)
    return context


@pytest.mark.parametrize("old", [ssl.TLSVersion.TLSv1, ssl.TLSVersion.TLSv1_1])
def test_protocols_refuse_old_tls(ca: trustme.CA, old: ssl.TLSVersion) -> None:
    server = legacy_server(ca.issue_cert(MX), old)
    strict = setup("encrypt", smtp_tls_mandatory_protocols=">=TLSv1.2")
    assert strict.context.minimum_version is ssl.TLSVersion.TLSv1_2
    with pytest.raises(ssl.SSLError):
        deliver(strict, server)
    # The same server is reachable when the policy allows it: the setting decides.
    lenient = setup("may", "may protocols=>=TLSv1")
    assert deliver(lenient, server).protocol == old.name.replace("_", ".")


@pytest.mark.parametrize(
    ("servername", "expected"),
    [
        ("hostname", MX),
        ("nexthop", NEXTHOP),
        ("relay.example.org", "relay.example.org"),
        ("", None),
    ],
)
def test_sni_is_sent_as_configured(ca: trustme.CA, servername: str, expected: str | None) -> None:
    seen: list[str | None] = []
    tls = setup("encrypt", smtp_tls_servername=servername)
    deliver(tls, server_for(ca.issue_cert(MX), seen_sni=seen))
    assert seen == [expected]


def test_contexts_are_cached_per_policy_and_settings(ca_file: str) -> None:
    first = setup("verify", smtp_tls_CAfile=ca_file)
    again = setup("verify", smtp_tls_CAfile=ca_file)
    assert first.context is again.context
    other = setup("verify", smtp_tls_CAfile=ca_file, smtp_tls_mandatory_protocols=">=TLSv1.3")
    assert other.context is not first.context
    assert other.context.minimum_version is ssl.TLSVersion.TLSv1_3


def test_bad_settings_are_reported_in_postfix_words(tmp_path: Path) -> None:
    with pytest.raises(ClientTlsError, match='Invalid TLS protocol list "SSLv3"'):
        setup("may", "may protocols=SSLv3")
    with pytest.raises(ClientTlsError, match='invalid cipher grade: "bogus"'):
        setup("may", "may ciphers=bogus")
    missing = str(tmp_path / "missing.pem")
    with pytest.raises(ClientTlsError, match="cannot load Certification Authority data"):
        setup("verify", smtp_tls_CAfile=missing)


def test_client_certificate_is_presented_when_asked(ca: trustme.CA, tmp_path: Path) -> None:
    mine = ca.issue_cert("client.example.com")
    cert, key = tmp_path / "client.pem", tmp_path / "client.key"
    mine.cert_chain_pems[0].write_to_path(str(cert))
    mine.private_key_pem.write_to_path(str(key))
    tls = setup("encrypt", smtp_tls_cert_file=str(cert), smtp_tls_key_file=str(key))
    server = server_for(ca.issue_cert(MX))
    server.verify_mode = ssl.CERT_REQUIRED
    ca.configure_trust(server)
    _, server_side = handshake(tls.context, server, hostname=None)
    peer = server_side.getpeercert()
    assert peer is not None
    assert ("DNS", "client.example.com") in peer["subjectAltName"]


def test_policy_none_has_no_context() -> None:
    config = make_config(smtp_tls_security_level="none")
    policy: TlsPolicy = resolve_policy(config, NEXTHOP, port=25, lookup=lambda _key: None)
    with pytest.raises(ClientTlsError):
        client_tls(policy, config)
