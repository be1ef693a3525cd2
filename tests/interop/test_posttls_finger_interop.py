"""Debian's posttls-finger and ``mailseal tls-finger`` probe the same mailseal server.

Both must see the same session: protocol, cipher and bits, the trust word (also on
a name mismatch at verify/secure, where both say *Untrusted*), the same
``num=62:hostname mismatch`` line, and the same certificate line (subject CN,
issuer CN, certificate and public-key SHA-256 fingerprints).
"""

import re
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import trustme

from mailseal.testing.process import run_mailseal
from mailseal.testing.server import Instance, Servers

pytestmark = pytest.mark.interop

MX_NAME = "mx.example.test"
_ESTABLISHED = re.compile(
    r"(?P<trust>\w+) TLS connection established to (?P<peer>\S+): (?P<protocol>\S+) "
    r"with cipher (?P<cipher>\S+) \((?P<bits>\d+/\d+) bits\)"
)
_PEER_CERT = re.compile(
    r"\S+: subject_CN=.*, fingerprint=[0-9A-F:]+, pkey_fingerprint=[0-9A-F:]+$", re.MULTILINE
)
_VERIFY_FAILED = re.compile(r"certificate verification failed for \S+: .*$", re.MULTILINE)


@dataclass(frozen=True)
class Session:
    """What one tool reported about the TLS session."""

    trust: str
    protocol: str
    cipher: str
    bits: str
    peer_cert: str
    verify_failed: str


def parse(output: str) -> Session:
    established = _ESTABLISHED.search(output)
    assert established is not None, output
    peer = _PEER_CERT.search(output)
    failed = _VERIFY_FAILED.search(output)
    return Session(
        established["trust"],
        established["protocol"],
        established["cipher"],
        established["bits"],
        peer.group(0) if peer else "",
        failed.group(0) if failed else "",
    )


def posttls_finger(*argv: str) -> str:
    tool = shutil.which("posttls-finger") or "/usr/sbin/posttls-finger"
    if not Path(tool).exists():
        pytest.fail("posttls-finger is not installed: run ./dev test (it installs postfix)")
    result = subprocess.run([tool, *argv], capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode == 0, result.stderr
    # posttls-finger logs to stderr when it is not a terminal; take both.
    return result.stdout + result.stderr


def tls_finger(*argv: str) -> tuple[int, str]:
    result = run_mailseal("tls-finger", "-t", "20", "-T", "20", *argv)
    assert "Traceback" not in result.stderr, result.stderr
    return result.returncode, result.stdout


@dataclass(frozen=True)
class Signed:
    server: Instance
    cafile: Path


@pytest.fixture(scope="module")
def signed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Signed]:
    directory = tmp_path_factory.mktemp("posttls")
    ca = trustme.CA()
    leaf = ca.issue_cert(MX_NAME, common_name=MX_NAME)
    cafile, cert, key = directory / "ca.pem", directory / "mx.crt", directory / "mx.key"
    ca.cert_pem.write_to_path(str(cafile))
    leaf.cert_chain_pems[0].write_to_path(str(cert))
    leaf.private_key_pem.write_to_path(str(key))
    servers = Servers(directory)
    instance = servers.start(f"smtpd_tls_cert_file = {cert}\nsmtpd_tls_key_file = {key}")
    yield Signed(instance, cafile)
    servers.stop_all()


def test_both_see_the_same_opportunistic_session(signed: Signed) -> None:
    destination = f"[127.0.0.1]:{signed.server.ports.smtp}"
    theirs = parse(posttls_finger("-c", "-l", "may", destination))
    status, output = tls_finger("--no-chat", "-l", "may", destination)
    ours = parse(output)
    assert status == 0
    assert ours == theirs
    assert (ours.trust, ours.protocol) == ("Untrusted", "TLSv1.3")


def test_both_verify_with_the_ca_and_the_name(signed: Signed) -> None:
    destination = f"[127.0.0.1]:{signed.server.ports.smtp}"
    cafile = str(signed.cafile)
    theirs = parse(posttls_finger("-c", "-l", "secure", "-F", cafile, destination, MX_NAME))
    status, output = tls_finger("--no-chat", "-l", "secure", "-F", cafile, destination, MX_NAME)
    ours = parse(output)
    assert status == 0
    assert ours == theirs
    assert ours.trust == "Verified"
    assert ours.verify_failed == ""


def test_both_agree_on_tls12_when_the_protocols_are_limited(signed: Signed) -> None:
    destination = f"[127.0.0.1]:{signed.server.ports.smtp}"
    theirs = parse(posttls_finger("-c", "-l", "encrypt", "-p", "<=TLSv1.2", destination))
    status, output = tls_finger("--no-chat", "-l", "encrypt", "-p", "<=TLSv1.2", destination)
    ours = parse(output)
    assert status == 0
    assert ours == theirs
    assert ours.protocol == "TLSv1.2"


def test_both_see_the_same_wrapper_mode_session(signed: Signed) -> None:
    destination = f"[127.0.0.1]:{signed.server.ports.smtps}"
    cafile = str(signed.cafile)
    theirs = parse(posttls_finger("-c", "-w", "-l", "secure", "-F", cafile, destination, MX_NAME))
    status, output = tls_finger(
        "--no-chat", "-w", "-l", "secure", "-F", cafile, destination, MX_NAME
    )
    assert status == 0
    assert parse(output) == theirs


def test_both_report_the_name_mismatch_the_same_way(signed: Signed) -> None:
    destination = f"[127.0.0.1]:{signed.server.ports.smtp}"
    cafile = str(signed.cafile)
    theirs = parse(posttls_finger("-c", "-l", "verify", "-F", cafile, destination, "wrong.test"))
    status, output = tls_finger(
        "--no-chat", "-l", "verify", "-F", cafile, destination, "wrong.test"
    )
    ours = parse(output)
    assert status == 1
    assert ours.verify_failed == theirs.verify_failed
    assert ours.verify_failed.endswith(": num=62:hostname mismatch")
    assert (ours.trust, ours.protocol, ours.cipher, ours.peer_cert) == (
        theirs.trust,
        theirs.protocol,
        theirs.cipher,
        theirs.peer_cert,
    )
