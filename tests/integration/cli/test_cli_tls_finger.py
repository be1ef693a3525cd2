"""``mailseal tls-finger`` against real mailseal servers, a stub DNS server and scripted peers.

Most probes run the sub-command's ``run()`` in this process through a small
argparse harness (fast, and the output is captured); one runs the real
``mailseal tls-finger`` command. Servers get a certificate for ``mx.example.test``
from a test CA made with trustme.
"""

import argparse
import socket
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import trustme
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization

from mailseal.cli import tls_finger
from mailseal.cli.tls_finger_dest import parse_destination, parse_nameserver
from mailseal.cli.tls_finger_report import ChatLog
from mailseal.testing.dns_stub import DnsStub
from mailseal.testing.process import run_mailseal
from mailseal.testing.server import Instance, Servers

MX_NAME = "mx.example.test"
# A configuration directory without main.cf: every parameter at its default.
NO_CONFIG = "/nonexistent/mailseal-tls-finger-test"


@dataclass(frozen=True)
class Pki:
    cafile: Path
    cert_file: Path
    key_file: Path
    fingerprint: str
    pkey_fingerprint: str

    @property
    def main_cf(self) -> str:
        return f"smtpd_tls_cert_file = {self.cert_file}\nsmtpd_tls_key_file = {self.key_file}"


def colon_hex(digest: bytes) -> str:
    return ":".join(f"{byte:02X}" for byte in digest)


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    directory = tmp_path_factory.mktemp("pki")
    ca = trustme.CA()
    leaf = ca.issue_cert(MX_NAME, common_name=MX_NAME)
    paths = Pki(directory / "ca.pem", directory / "mx.crt", directory / "mx.key", "", "")
    ca.cert_pem.write_to_path(str(paths.cafile))
    leaf.cert_chain_pems[0].write_to_path(str(paths.cert_file))
    leaf.private_key_pem.write_to_path(str(paths.key_file))
    certificate = x509.load_pem_x509_certificate(leaf.cert_chain_pems[0].bytes())
    spki = certificate.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    digest = hashes.Hash(hashes.SHA256())
    digest.update(spki)
    return Pki(
        paths.cafile,
        paths.cert_file,
        paths.key_file,
        colon_hex(certificate.fingerprint(hashes.SHA256())),
        colon_hex(digest.finalize()),
    )


@pytest.fixture(scope="module")
def module_servers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Servers]:
    started = Servers(tmp_path_factory.mktemp("servers"))
    yield started
    started.stop_all()


@pytest.fixture(scope="module")
def server(module_servers: Servers, pki: Pki) -> Instance:
    """One mailseal with the CA-signed certificate, shared by the read-only probes."""
    return module_servers.start(pki.main_cf, name="signed")


def run_finger(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    """Run ``tls-finger ARGV`` in this process: the exit status, stdout and stderr."""
    parser = argparse.ArgumentParser(prog="mailseal")
    tls_finger.register(parser.add_subparsers(dest="command", required=True))
    namespace = parser.parse_args(["tls-finger", "-t", "10", "-T", "10", *argv])
    namespace.config_dir = NO_CONFIG
    status: int = namespace.handler(namespace)
    captured = capsys.readouterr()
    return status, captured.out, captured.err


def finger(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str]:
    status, out, _ = run_finger(capsys, *argv)
    return status, out


def last_line(output: str) -> str:
    return output.rstrip("\n").splitlines()[-1]


# -- levels against a real server ----------------------------------------------------------


def test_may_reports_the_dialogue_and_an_untrusted_session(
    capsys: pytest.CaptureFixture[str], server: Instance, pki: Pki
) -> None:
    port = server.ports.smtp
    status, out = finger(capsys, "-l", "may", f"[127.0.0.1]:{port}")
    assert status == 0
    namaddr = f"127.0.0.1[127.0.0.1]:{port}"
    lines = out.splitlines()
    assert lines[0] == f"tls-finger: Connected to {namaddr}"
    assert lines[1] == "tls-finger: < 220 mail.example.test ESMTP mailseal"
    assert lines[2].startswith("tls-finger: > EHLO ")
    assert "tls-finger: < 250-STARTTLS" in lines
    assert "tls-finger: > STARTTLS" in lines
    assert "tls-finger: < 220 2.0.0 Ready to start TLS" in lines
    assert (
        f"tls-finger: {namaddr}: subject_CN={MX_NAME}, issuer_CN=trustme v1.2.1, "
        f"fingerprint={pki.fingerprint}, pkey_fingerprint={pki.pkey_fingerprint}"
    ) in lines
    assert any(
        line.startswith(f"tls-finger: Untrusted TLS connection established to {namaddr}: TLSv1.3")
        for line in lines
    )
    # EHLO again over TLS (STARTTLS is no longer offered), then QUIT.
    assert lines.count("tls-finger: < 250-STARTTLS") == 1
    assert lines.index("tls-finger: > QUIT") > lines.index("tls-finger: > STARTTLS")
    assert "tls-finger: < 221 2.0.0 Bye" in lines
    # The chain section: the leaf with its names, validity and both digests.
    assert "Certificate chain (sha256 digests)" in lines
    assert any(line.startswith(" 0 subject: /O=trustme") and MX_NAME in line for line in lines)
    assert f"    subjectAltName: DNS:{MX_NAME}" in lines
    assert "    notAfter: 3000-01-01 00:00:00 UTC" in lines
    assert f"   cert digest={pki.fingerprint}" in lines
    assert f"   pkey digest={pki.pkey_fingerprint}" in lines
    assert last_line(out) == "tls-finger: level may: met"


def test_secure_with_the_ca_and_the_right_name_is_verified(
    capsys: pytest.CaptureFixture[str], server: Instance, pki: Pki
) -> None:
    port = server.ports.smtp
    namaddr = f"127.0.0.1[127.0.0.1]:{port}"
    status, out = finger(
        capsys, "--no-chat", "-l", "secure", "-P", str(pki.cafile), f"[127.0.0.1]:{port}", MX_NAME
    )
    assert status == 0, out
    assert f"tls-finger: {namaddr}: matched peername: {MX_NAME}" in out
    assert f"tls-finger: Verified TLS connection established to {namaddr}: TLSv1.3" in out
    assert "tls-finger: < " not in out  # --no-chat: no SMTP dialogue
    assert last_line(out) == "tls-finger: level secure: met"


def test_secure_with_the_wrong_name_is_not_met_with_the_reason(
    capsys: pytest.CaptureFixture[str], server: Instance, pki: Pki
) -> None:
    port = server.ports.smtp
    namaddr = f"127.0.0.1[127.0.0.1]:{port}"
    status, out = finger(
        capsys, "-l", "secure", "-F", str(pki.cafile), "-H", "other.example", f"[127.0.0.1]:{port}"
    )
    assert status == 1
    assert (
        f"tls-finger: server certificate verification failed for {namaddr}: "
        "num=62:hostname mismatch"
    ) in out
    assert "matched peername" not in out
    assert last_line(out) == (
        "tls-finger: level secure: not met "
        "(Server certificate not verified: num=62:hostname mismatch)"
    )


def test_secure_without_the_ca_names_the_untrusted_issuer(
    capsys: pytest.CaptureFixture[str], server: Instance
) -> None:
    status, out = finger(capsys, "-l", "verify", f"[127.0.0.1]:{server.ports.smtp}", MX_NAME)
    assert status == 1
    assert "untrusted issuer /O=trustme v1.2.1/OU=Testing CA" in last_line(out)


@pytest.mark.parametrize("which", ["fingerprint", "pkey_fingerprint"])
def test_fingerprint_level_matches_the_certificate_or_key_digest(
    capsys: pytest.CaptureFixture[str], server: Instance, pki: Pki, which: str
) -> None:
    wanted = pki.fingerprint if which == "fingerprint" else pki.pkey_fingerprint
    destination = f"[127.0.0.1]:{server.ports.smtp}"
    status, out = finger(
        capsys, "--no-chat", "-C", "-l", "fingerprint", destination, wanted.lower()
    )
    assert status == 0, out
    assert "-----BEGIN CERTIFICATE-----" in out  # -C: the chain in PEM form too
    assert "tls-finger: Verified TLS connection established to" in out
    assert last_line(out) == "tls-finger: level fingerprint: met"


def test_fingerprint_level_with_a_wrong_digest_is_not_met(
    capsys: pytest.CaptureFixture[str], server: Instance
) -> None:
    wrong = ":".join(["AB"] * 32)
    destination = f"[127.0.0.1]:{server.ports.smtp}"
    status, out = finger(capsys, "--no-chat", "-l", "fingerprint", "-f", wrong, destination)
    assert status == 1
    assert "tls-finger: Untrusted TLS connection established to" in out
    assert last_line(out) == (
        "tls-finger: level fingerprint: not met "
        "(Server certificate not verified: not trusted by local or TLSA policy)"
    )


def test_protocols_option_limits_the_handshake_to_tls12(
    capsys: pytest.CaptureFixture[str], server: Instance
) -> None:
    destination = f"[127.0.0.1]:{server.ports.smtp}"
    status, out = finger(capsys, "--no-chat", "-l", "encrypt", "-p", "<=TLSv1.2", destination)
    assert status == 0
    assert "TLS connection established to 127.0.0.1[127.0.0.1]" in out
    assert ": TLSv1.2 with cipher " in out


def test_smtps_handshakes_before_the_greeting(
    capsys: pytest.CaptureFixture[str], server: Instance, pki: Pki
) -> None:
    port = server.ports.smtps
    status, out = finger(
        capsys, "--smtps", "-l", "secure", "-F", str(pki.cafile), f"[127.0.0.1]:{port}", MX_NAME
    )
    assert status == 0, out
    lines = out.splitlines()
    established = next(i for i, line in enumerate(lines) if "TLS connection established" in line)
    assert lines[established].startswith("tls-finger: Verified TLS connection established")
    assert lines.index("tls-finger: < 220 mail.example.test ESMTP mailseal") > established
    assert "tls-finger: > STARTTLS" not in lines
    assert last_line(out) == "tls-finger: level secure: met"


def test_the_real_command_prints_the_report_and_exits_with_the_verdict(
    server: Instance, pki: Pki
) -> None:
    result = run_mailseal(
        "tls-finger", "-l", "secure", "-F", str(pki.cafile), "-t", "10", "-T", "10",
        f"[127.0.0.1]:{server.ports.smtp}", MX_NAME,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "tls-finger: Verified TLS connection established to" in result.stdout
    assert result.stdout.rstrip().endswith("tls-finger: level secure: met")


# -- a server without TLS ------------------------------------------------------------------


@pytest.fixture(scope="module")
def plain_server(module_servers: Servers) -> Instance:
    return module_servers.start("smtpd_tls_security_level = none", name="plain")


def test_no_starttls_is_met_at_may(
    capsys: pytest.CaptureFixture[str], plain_server: Instance
) -> None:
    status, out = finger(capsys, "-l", "may", f"[127.0.0.1]:{plain_server.ports.smtp}")
    assert status == 0
    assert "STARTTLS" not in out.replace("Server does not offer STARTTLS", "")
    assert "tls-finger: Server does not offer STARTTLS" in out
    assert "Certificate chain" not in out
    assert last_line(out) == "tls-finger: level may: met"


def test_no_starttls_is_not_met_at_encrypt(
    capsys: pytest.CaptureFixture[str], plain_server: Instance
) -> None:
    status, out = finger(capsys, "-l", "encrypt", f"[127.0.0.1]:{plain_server.ports.smtp}")
    assert status == 1
    assert last_line(out) == (
        "tls-finger: level encrypt: not met "
        "(TLS is required, but was not offered by host 127.0.0.1[127.0.0.1])"
    )


# -- MX lookups through the stub DNS server ------------------------------------------------


def test_mx_lookup_tries_the_hosts_in_order_and_matches_the_nexthop(
    capsys: pytest.CaptureFixture[str], server: Instance, pki: Pki
) -> None:
    zones = (
        "example.test.       60 IN MX 10 dead.example.test.\n"
        f"example.test.       60 IN MX 20 {MX_NAME}.\n"
        "dead.example.test.  60 IN A 127.0.0.3\n"
        f"{MX_NAME}.          60 IN A 127.0.0.1\n"
    )
    port = server.ports.smtp
    with DnsStub.from_text(zones) as stub:
        dns = f"{stub.address[0]}:{stub.address[1]}"
        # secure's default match is nexthop:dot-nexthop: mx.example.test is below example.test.
        status, out = finger(
            capsys, "--dns-server", dns, "-l", "secure", "-F", str(pki.cafile),
            f"example.test:{port}",
        )  # fmt: skip
        lines = out.splitlines()
        assert lines[0] == (
            f"tls-finger: Failed to establish session to example.test:{port} via "
            f"dead.example.test: connect to dead.example.test[127.0.0.3]:{port}: "
            "Connection refused"
        )
        assert lines[1] == f"tls-finger: Connected to {MX_NAME}[127.0.0.1]:{port}"
        assert f"Verified TLS connection established to {MX_NAME}[127.0.0.1]:{port}" in out
        assert status == 0
        # -m 1: only the first address is tried.
        status, out = finger(
            capsys, "--dns-server", dns, "-m", "1", "-l", "may", f"example.test:{port}"
        )
        assert status == 1
        assert "Connected to" not in out
        assert "not met (connect to dead.example.test[127.0.0.3]" in last_line(out)


def test_unknown_domain_is_a_lookup_failure(capsys: pytest.CaptureFixture[str]) -> None:
    with DnsStub.from_text("example.test. 60 IN A 127.0.0.1\n") as stub:
        dns = f"[{stub.address[0]}]:{stub.address[1]}"
        status, out = finger(capsys, "--dns-server", dns, "-l", "may", "nowhere.test")
    assert status == 1
    assert out.splitlines()[0].startswith(
        "tls-finger: Destination address lookup failed: Host or domain name not found. "
        "Name service error for name=nowhere.test type="
    )
    assert "level may: not met (Destination address lookup failed:" in last_line(out)


# -- misbehaving servers (a scripted peer on a loopback socket) -----------------------------


class ScriptedPeer:
    """Accepts one connection and answers each command from a fixed script, then closes."""

    def __init__(self, greeting: bytes, answers: dict[str, bytes]) -> None:
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.listener.settimeout(10)
        self.port = self.listener.getsockname()[1]
        self.greeting = greeting
        self.answers = answers
        self.thread = threading.Thread(target=self._serve, daemon=True)

    def _serve(self) -> None:
        try:
            connection, _ = self.listener.accept()
        except OSError:
            return
        with connection:
            connection.settimeout(10)
            connection.sendall(self.greeting)
            stream = connection.makefile("rb")
            for raw in stream:
                verb = raw.decode("ascii", "replace").split()[0].upper() if raw.strip() else ""
                answer = self.answers.get(verb)
                if answer is None:
                    return
                connection.sendall(answer)

    def __enter__(self) -> "ScriptedPeer":
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.listener.close()
        self.thread.join(10)


EHLO_WITH_STARTTLS = b"250-peer.example\r\n250 STARTTLS\r\n"


def test_plaintext_after_the_starttls_reply_is_refused(capsys: pytest.CaptureFixture[str]) -> None:
    # The 220 and an injected reply arrive together (CVE-2011-0411 in reverse).
    script = {"EHLO": EHLO_WITH_STARTTLS, "STARTTLS": b"220 go ahead\r\n250 injected\r\n"}
    with ScriptedPeer(b"220 peer.example ESMTP\r\n", script) as peer:
        status, out = finger(capsys, "-l", "may", f"[127.0.0.1]:{peer.port}")
    assert status == 1
    assert "TLS connection established" not in out
    assert "not met (unexpected plaintext after STARTTLS reply from" in last_line(out)


def test_a_failed_handshake_is_reported_as_postfix_words_it(
    capsys: pytest.CaptureFixture[str],
) -> None:
    script = {"EHLO": EHLO_WITH_STARTTLS, "STARTTLS": b"220 go ahead\r\n"}
    with ScriptedPeer(b"220 peer.example ESMTP\r\n", script) as peer:
        # The peer reads the ClientHello as a command line it has no answer for, and closes.
        status, out = finger(capsys, "-l", "may", f"[127.0.0.1]:{peer.port}")
    assert status == 1
    assert f"tls-finger: SSL_connect error to 127.0.0.1[127.0.0.1]:{peer.port}: " in out
    assert last_line(out) == "tls-finger: level may: not met (Cannot start TLS: handshake failure)"


def test_a_refusing_greeting_is_not_met(capsys: pytest.CaptureFixture[str]) -> None:
    with ScriptedPeer(b"554 5.3.2 not today\r\n", {"QUIT": b"221 bye\r\n"}) as peer:
        status, out = finger(capsys, "-l", "may", f"[127.0.0.1]:{peer.port}")
    assert status == 1
    assert "tls-finger: < 554 5.3.2 not today" in out
    assert last_line(out) == (
        "tls-finger: level may: not met (SMTP service not available: 554 5.3.2 not today)"
    )


def test_starttls_refused_is_plaintext_at_may_and_not_met_at_encrypt(
    capsys: pytest.CaptureFixture[str],
) -> None:
    script = {
        "EHLO": EHLO_WITH_STARTTLS,
        "STARTTLS": b"454 4.7.0 TLS not available due to local problem\r\n",
        "QUIT": b"221 2.0.0 Bye\r\n",
    }
    with ScriptedPeer(b"220 peer.example ESMTP\r\n", script) as peer:
        destination = f"[127.0.0.1]:{peer.port}"
        status, out = finger(capsys, "-o", "smtp_helo_name=probe.test", "-l", "may", destination)
    assert status == 0
    assert "tls-finger: > EHLO probe.test" in out
    assert "tls-finger: STARTTLS rejected: 454 4.7.0 TLS not available due to local problem" in out
    with ScriptedPeer(b"220 peer.example ESMTP\r\n", script) as peer:
        status, out = finger(capsys, "-l", "encrypt", f"[127.0.0.1]:{peer.port}")
    assert status == 1
    assert last_line(out) == (
        "tls-finger: level encrypt: not met (TLS is required, but host 127.0.0.1[127.0.0.1] "
        "refused to start TLS: 454 4.7.0 TLS not available due to local problem)"
    )


# -- usage errors: exit status 2 -----------------------------------------------------------


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["[127.0.0.1"], 'missing "]" in server description'),
        (["127.0.0.1:99999"], "bad network port: 99999"),
        (["-w", "-l", "none", "[127.0.0.1]:465"], "wrapper mode"),
        (["-p", ">=TLSv9", "[127.0.0.1]"], "smtp_tls_mandatory_protocols"),
        (["--dns-server", "dns.example", "example.test"], "bad DNS server address"),
        (["-o", "no_such_parameter=1", "example.test"], "unknown parameter"),
        (["-l", "fingerprint", "[127.0.0.1]"], "no fingerprints to match"),
    ],
)
def test_usage_errors_exit_2(
    capsys: pytest.CaptureFixture[str], argv: list[str], message: str
) -> None:
    status, out, err = run_finger(capsys, *argv)
    assert status == 2
    assert out == ""
    assert err.startswith("tls-finger: fatal: ")
    assert message in err


def test_a_level_argparse_does_not_know_exits_2(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as stopped:
        finger(capsys, "-l", "dane", "example.test")
    assert stopped.value.code == 2


# -- the pure parts ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "host", "port", "mx"),
    [
        ("example.com", "example.com", 25, True),
        ("inet:example.com:587", "example.com", 587, True),
        ("[mx.example.com]", "mx.example.com", 25, False),
        ("[mx.example.com]:submission", "mx.example.com", 587, False),
        ("[ipv6:2001:db8::1]:2525", "2001:db8::1", 2525, False),
        ("192.0.2.1:26", "192.0.2.1", 26, False),
    ],
)
def test_destinations_parse_like_posttls_finger(text: str, host: str, port: int, mx: bool) -> None:
    destination = parse_destination(text, 25)
    assert (destination.host, destination.port, destination.uses_mx) == (host, port, mx)


def test_nameservers_parse() -> None:
    assert parse_nameserver("127.0.0.1:5353") == ("127.0.0.1", 5353)
    assert parse_nameserver("[::1]:53") == ("::1", 53)
    assert parse_nameserver("192.0.2.53") == ("192.0.2.53", 53)


def test_chat_log_shows_whole_lines_and_censors_control_characters() -> None:
    shown: list[str] = []
    chat = ChatLog(shown.append, enabled=True)
    chat.received(b"250-first\r\n250 sec")
    chat.received(b"ond\x07\r\n")
    chat.sent(b"EHLO a\r\nQUIT\r\n")
    assert shown == ["< 250-first", "< 250 second?", "> EHLO a", "> QUIT"]
