"""The receiving-peer fixtures themselves: Debian's Postfix smtpd and smtp-sink, fed by smtplib.

Before mailseal's smtp client is judged against them, these tests show that the
peers behave as the outbound tests assume: PostfixReceiver delivers to its
Maildir in plaintext and over STARTTLS (and says so in its log and Received:
header), offers no STARTTLS at level none, listens on 127.0.0.1:port only and
stops by its master PID; SmtpSink dumps each transaction and never offers STARTTLS.
"""

import email
import os
import smtplib
import socket
import ssl
import subprocess
from pathlib import Path

import pytest
import trustme

from mailseal.testing.postfix import MASTER
from mailseal.testing.postfix_receiver import NOBODY, PostfixReceiver
from mailseal.testing.server import free_port
from mailseal.testing.smtp_sink import SMTP_SINK, SmtpSink

pytestmark = pytest.mark.interop

RECEIVER_HOST = "postfix-receiver.test"
DOMAIN = "receiver.test"
SENDER = "client@client.test"
RCPT = f"someone@{DOMAIN}"
TIMEOUT = 30.0


@pytest.fixture(autouse=True)
def _need_postfix() -> None:
    if not (Path(MASTER).exists() and Path(SMTP_SINK).exists()):
        pytest.fail("Postfix is not installed: run ./dev test (it installs debian-packages.txt)")


@pytest.fixture
def cert(tmp_path: Path) -> tuple[Path, Path]:
    """A certificate for the receiver's host name and its key (trustme's private CA)."""
    issued = trustme.CA().issue_cert(RECEIVER_HOST)
    cert_file, key_file = tmp_path / "receiver.crt", tmp_path / "receiver.key"
    issued.cert_chain_pems[0].write_to_path(str(cert_file))
    issued.private_key_pem.write_to_path(str(key_file))
    return cert_file, key_file


def receiver(tmp_path: Path, cert: tuple[Path, Path], tls_level: str = "may") -> PostfixReceiver:
    return PostfixReceiver(
        tmp_path / "postfix",
        port=free_port(),
        hostname=RECEIVER_HOST,
        domain=DOMAIN,
        cert_file=cert[0],
        key_file=cert[1],
        tls_level=tls_level,
    )


def message(subject: str) -> bytes:
    return f"From: {SENDER}\r\nTo: {RCPT}\r\nSubject: {subject}\r\n\r\nbody\r\n.dot\r\n".encode()


def send(port: int, subject: str, *, starttls: bool) -> dict[str, str]:
    """Deliver one message with smtplib; the EHLO keywords the server offered in plaintext."""
    with smtplib.SMTP("127.0.0.1", port, local_hostname="client.test", timeout=TIMEOUT) as client:
        client.ehlo()
        features = dict(client.esmtp_features)
        if starttls:
            # The receiver's CA is not ours to trust here: this is opportunistic TLS.
            context = ssl.create_default_context()
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
            client.starttls(context=context)
            client.ehlo()
        refused = client.sendmail(SENDER, [RCPT], message(subject))
        assert refused == {}
    return features


def test_postfix_receiver_takes_plaintext_mail_into_its_maildir(
    tmp_path: Path, cert: tuple[Path, Path]
) -> None:
    with receiver(tmp_path, cert) as postfix:
        features = send(postfix.port, "plain", starttls=False)
        assert "starttls" in features
        files = postfix.wait_delivered(1, TIMEOUT)
        postfix.wait_log(rf"to=<{RCPT}>, relay=virtual, .*status=sent \(delivered to maildir\)")
        assert "TLS connection established" not in postfix.maillog()
        # virtual(8) wrote it as the mailbox owner (nobody), not as root.
        assert files[0].stat().st_uid == NOBODY
    delivered = email.message_from_bytes(files[0].read_bytes())
    assert delivered["Subject"] == "plain"
    assert delivered["Delivered-To"] == RCPT
    received = " ".join(str(delivered["Received"]).split())
    assert f"by {RECEIVER_HOST} (Postfix) with ESMTP id" in received
    assert delivered.get_payload() == "body\n.dot\n"
    # stop() brought the Maildir home: the paths stay valid after the run.
    assert files[0].is_file()
    assert not postfix.mail_directory.is_symlink()


def test_postfix_receiver_over_starttls_logs_and_stamps_the_tls(
    tmp_path: Path, cert: tuple[Path, Path]
) -> None:
    with receiver(tmp_path, cert) as postfix:
        send(postfix.port, "tls", starttls=True)
        files = postfix.wait_delivered(1, TIMEOUT)
        established = postfix.wait_log(
            r"smtpd\[\d+\]: Anonymous TLS connection established from "
            r"localhost\[127\.0\.0\.1\]: TLSv1\.3 with cipher "
        )
    assert len(established) == 1
    delivered = email.message_from_bytes(files[0].read_bytes())
    received = " ".join(str(delivered["Received"]).split())
    assert "(using TLSv1.3 with cipher " in received
    assert f"by {RECEIVER_HOST} (Postfix) with ESMTPS id" in received


def test_postfix_receiver_at_level_none_offers_no_starttls(
    tmp_path: Path, cert: tuple[Path, Path]
) -> None:
    with receiver(tmp_path, cert, tls_level="none") as postfix:
        features = send(postfix.port, "no tls", starttls=False)
        assert "starttls" not in features
        assert "pipelining" in features
        postfix.wait_delivered(1, TIMEOUT)


def test_postfix_receiver_listens_only_on_its_port_and_stops_by_its_master(
    tmp_path: Path, cert: tuple[Path, Path]
) -> None:
    postfix = receiver(tmp_path, cert)
    with postfix:
        pid = postfix.master_pid
        assert pid is not None
        services = subprocess.run(
            ["/usr/sbin/postconf", "-c", str(postfix.config_directory), "-M"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.splitlines()
        listeners = [line.split()[0] for line in services if line.split()[1] in ("inet", "pass")]
        assert listeners == [f"127.0.0.1:{postfix.port}"]
        # Another loopback address, same port: refused, so the bind is 127.0.0.1 only.
        with pytest.raises(ConnectionRefusedError):
            socket.create_connection(("127.0.0.2", postfix.port), timeout=5).close()
        with socket.create_connection(("127.0.0.1", postfix.port), timeout=5) as sock:
            assert sock.recv(100).startswith(f"220 {RECEIVER_HOST} ESMTP".encode())
    with pytest.raises(ProcessLookupError):
        os.killpg(pid, 0)
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", postfix.port), timeout=5).close()


def test_postfix_receiver_keeps_its_maildir_across_a_restart(
    tmp_path: Path, cert: tuple[Path, Path]
) -> None:
    postfix = receiver(tmp_path, cert)
    with postfix:
        send(postfix.port, "first", starttls=False)
        first = postfix.wait_delivered(1, TIMEOUT)
    with postfix:
        send(postfix.port, "second", starttls=False)
        both = postfix.wait_delivered(2, TIMEOUT)
    assert both[0] == first[0]
    subjects = [email.message_from_bytes(path.read_bytes())["Subject"] for path in both]
    assert subjects == ["first", "second"]


def test_postfix_receiver_refuses_tls_without_a_certificate(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="needs cert_file and key_file"):
        PostfixReceiver(tmp_path / "postfix", port=free_port(), tls_level="may")


def test_smtp_sink_dumps_each_message_and_offers_no_starttls(tmp_path: Path) -> None:
    with SmtpSink(free_port(), tmp_path / "sink") as sink:
        features = send(sink.port, "sunk", starttls=False)
        assert "starttls" not in features
        # What smtp-sink does advertise (its ehlo_response), so mailseal has ESMTP to use.
        assert {"pipelining", "8bitmime", "enhancedstatuscodes"} <= set(features)
        dumped = sink.wait_messages(1, TIMEOUT)
    assert len(dumped) == 1
    head, _, content = dumped[0].partition(b"\n\tby smtp-sink.test (smtp-sink) with ESMTP id ")
    assert b"X-Client-Addr: 127.0.0.1\n" in head
    assert b"X-Helo-Args: client.test\n" in head
    assert f"X-Mail-Args: <{SENDER}>\n".encode() in head
    assert f"X-Rcpt-Args: <{RCPT}>\n".encode() in head
    # The message as sent, dot-stuffing undone, LF line ends, then the empty line.
    assert content.endswith(b"\nSubject: sunk\n\nbody\n.dot\n\n")


def test_smtp_sink_stops_by_its_pid(tmp_path: Path) -> None:
    sink = SmtpSink(free_port(), tmp_path / "sink").start()
    pid = sink.pid
    assert pid is not None
    assert Path(f"/proc/{pid}/exe").readlink() == Path(SMTP_SINK)
    sink.stop()
    assert sink.pid is None
    assert not Path(f"/proc/{pid}").exists()
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", sink.port), timeout=5).close()
    sink.stop()  # idempotent
