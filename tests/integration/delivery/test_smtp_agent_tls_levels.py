"""The truth table: sender TLS level x what the receiving mailseal offers, over real TLS.

Receivers (real ``mailseal`` processes): no STARTTLS; STARTTLS with ``mailseal
init``'s self-signed certificate; a certificate from a private CA (trustme) for
the right name, for a wrong name, and expired. The sender trusts the CA
(``smtp_tls_CAfile``) and reaches each receiver as ``[mx.example.test]:PORT``
through a stub DNS server. A sent message must carry the TLS the level asked for
(the receiver's Received: header says ESMTPS); a deferred one must never reach
the receiver at all.
"""

from __future__ import annotations

import datetime
import hashlib
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import trustme
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding
from smtp_agent_support import Sender, agent_config, request

from mailseal.delivery.smtp import RecipientResult
from mailseal.testing.dns_stub import DnsStub
from mailseal.testing.server import Instance, Servers

MX = "mx.example.test"
NOW = datetime.datetime.now(datetime.UTC)


def _write_leaf(directory: Path, name: str, leaf: trustme.LeafCert) -> str:
    cert, key = directory / f"{name}.crt", directory / f"{name}.key"
    leaf.cert_chain_pems[0].write_to_path(str(cert))
    leaf.private_key_pem.write_to_path(str(key))
    return f"smtpd_tls_cert_file = {cert}\nsmtpd_tls_key_file = {key}\n"


@pytest.fixture(scope="module")
def world(
    tmp_path_factory: pytest.TempPathFactory, ca: trustme.CA
) -> Iterator[tuple[dict[str, Instance], DnsStub, Path, str]]:
    root = tmp_path_factory.mktemp("tls-levels")
    certs = root / "certs"
    certs.mkdir()
    right = ca.issue_cert(MX)
    receivers = {
        "plain": "smtpd_tls_security_level = none\n",
        "selfsigned": "",
        "ca_right": _write_leaf(certs, "right", right),
        "ca_wrong": _write_leaf(certs, "wrong", ca.issue_cert("other.example.net")),
        "expired": _write_leaf(
            certs,
            "expired",
            ca.issue_cert(
                MX,
                not_before=NOW - datetime.timedelta(days=30),
                not_after=NOW - datetime.timedelta(days=1),
            ),
        ),
    }
    ca_file = root / "ca.pem"
    ca.cert_pem.write_to_path(str(ca_file))
    leaf = x509.load_pem_x509_certificate(right.cert_chain_pems[0].bytes())
    digest = hashlib.sha256(leaf.public_bytes(Encoding.DER)).hexdigest().upper()
    fingerprint = ":".join(digest[i : i + 2] for i in range(0, len(digest), 2))
    servers = Servers(root)
    stub = DnsStub.from_text(f"{MX}. 60 IN A 127.0.0.1\n")
    stub.start()
    try:
        started = {name: servers.start(extra, name=name) for name, extra in receivers.items()}
        yield started, stub, ca_file, fingerprint
    finally:
        servers.stop_all()
        stub.stop()


def deliver(
    world: tuple[dict[str, Instance], DnsStub, Path, str], tmp_path: Path, receiver: str, level: str
) -> tuple[RecipientResult, Sender, Instance, bytes]:
    instances, stub, ca_file, fingerprint = world
    host, port = stub.address
    config = agent_config(
        tmp_path,
        smtp_tls_security_level=level,
        smtp_tls_CAfile=str(ca_file),
        smtp_tls_fingerprint_digest="sha256",
        smtp_tls_fingerprint_cert_match=fingerprint,
        smtp_tls_note_starttls_offer="yes",
        dns_servers=f"[{host}]:{port}",
    )
    sender = Sender(config)
    instance = instances[receiver]
    subject = f"case {level} {receiver} {time.monotonic_ns()}".encode()
    content = b"Subject: " + subject + b"\r\nFrom: s@client.example\r\n\r\nbody\r\n"
    try:
        [result] = sender.deliver(request(f"[{MX}]:{instance.ports.smtp}", content=content))
    finally:
        sender.close()
    return result, sender, instance, subject


def delivered_copy(instance: Instance, subject: bytes, timeout: float = 10.0) -> bytes:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for path in instance.process.delivered():
            data = path.read_bytes()
            if subject in data:
                return data
        time.sleep(0.05)
    raise AssertionError(f"{subject!r} not delivered:\n{instance.process.maillog()}")


SENT = [
    ("none", "plain", None),
    ("none", "selfsigned", None),
    ("may", "plain", None),
    ("may", "selfsigned", "Untrusted"),
    ("may", "ca_right", "Trusted"),
    ("may", "ca_wrong", "Trusted"),
    ("may", "expired", "Untrusted"),
    ("encrypt", "selfsigned", "Untrusted"),
    ("encrypt", "ca_right", "Trusted"),
    ("dane", "ca_right", "Trusted"),
    ("fingerprint", "ca_right", "Verified"),
    ("verify", "ca_right", "Verified"),
    ("secure", "ca_right", "Verified"),
]


@pytest.mark.parametrize(("level", "receiver", "trust"), SENT)
def test_sent(
    world: tuple[dict[str, Instance], DnsStub, Path, str],
    tmp_path: Path,
    level: str,
    receiver: str,
    trust: str | None,
) -> None:
    result, sender, instance, subject = deliver(world, tmp_path, receiver, level)
    assert (result.status, result.dsn) == ("sent", "2.0.0"), result.reason
    copy = delivered_copy(instance, subject)
    port = instance.ports.smtp
    if trust is None:
        assert b"with ESMTP id" in copy and b"ESMTPS" not in copy
        assert "TLS connection established" not in sender.log()
        assert result.tls_level == level
    else:
        assert b"with ESMTPS id" in copy
        line = f"{trust} TLS connection established to {MX}[127.0.0.1]:{port}: TLSv1.3"
        assert line in sender.log()
        assert result.tls_level == ("may" if level == "dane" else level)
    if level == "none" and receiver == "selfsigned":
        assert f"Host offered STARTTLS: [{MX}]" in sender.log()
    if level == "dane":
        assert "DANE is not available in mailseal: using security level may" in sender.log()


NOT_OFFERED = f"TLS is required, but was not offered by host {MX}[127.0.0.1]"
NOT_VERIFIED = "Server certificate not verified"
MISMATCH = "num=62:hostname mismatch"
DEFERRED = [
    ("encrypt", "plain", "4.7.4", NOT_OFFERED, None),
    ("verify", "plain", "4.7.4", NOT_OFFERED, None),
    ("fingerprint", "selfsigned", "4.7.5", NOT_VERIFIED, "not trusted by local or TLSA policy"),
    ("verify", "selfsigned", "4.7.5", NOT_VERIFIED, "self-signed certificate"),
    ("verify", "ca_wrong", "4.7.5", NOT_VERIFIED, MISMATCH),
    ("verify", "expired", "4.7.5", NOT_VERIFIED, "certificate has expired"),
    ("secure", "ca_wrong", "4.7.5", NOT_VERIFIED, MISMATCH),
    ("dane-only", "ca_right", "4.7.0", "client TLS configuration problem", None),
]


@pytest.mark.parametrize(("level", "receiver", "dsn", "reason", "logged"), DEFERRED)
def test_deferred_never_in_plaintext(
    world: tuple[dict[str, Instance], DnsStub, Path, str],
    tmp_path: Path,
    level: str,
    receiver: str,
    dsn: str,
    reason: str,
    logged: str | None,
) -> None:
    before = world[0][receiver].process.maillog().count(": client=")
    result, sender, instance, subject = deliver(world, tmp_path, receiver, level)
    assert (result.status, result.dsn, result.reason) == ("deferred", dsn, reason)
    if logged is not None:
        where = f"{MX}[127.0.0.1]:{instance.ports.smtp}"
        assert f"certificate verification failed for {where}: {logged}" in sender.log()
    # Nothing was queued by the receiver: no MAIL FROM ever crossed.
    time.sleep(0.2)
    assert instance.process.maillog().count(": client=") == before
    assert not any(subject in p.read_bytes() for p in instance.process.delivered())
