"""Debian's Postfix 3.7, as a sending peer, relays through mailseal's smtpd over STARTTLS.

A private Postfix instance (``mailseal.testing.postfix``: its own config, queue
and log under tmp_path, no listener) takes one message through its sendmail
and its smtp client relays it to ``[127.0.0.1]:<mailseal smtp port>``. Both
logs and the Maildir are checked, as an admin would check them.
"""

import email
import os
import re
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from mailseal.testing.postfix import MASTER, PostfixError, PostfixSender
from mailseal.testing.server import MailsealProcess, free_port, make_instance

pytestmark = pytest.mark.interop

SENDER = "relay-test@postfix-sender.test"
RCPT = "postmaster@example.test"


@pytest.fixture(autouse=True)
def _need_postfix() -> None:
    if not Path(MASTER).exists():
        pytest.fail("Postfix is not installed: run ./dev test (it installs debian-packages.txt)")


@pytest.fixture
def mailseal(tmp_path: Path) -> Iterator[tuple[MailsealProcess, int]]:
    ports = make_instance(tmp_path / "mailseal")
    with MailsealProcess(tmp_path / "mailseal") as server:
        yield server, ports.smtp


def group_is_gone(pid: int) -> bool:
    try:
        os.killpg(pid, 0)
    except ProcessLookupError:
        return True
    return False


@pytest.mark.parametrize("tls_level", ["may", "encrypt"])
def test_postfix_relays_over_starttls_into_the_maildir(
    tmp_path: Path, mailseal: tuple[MailsealProcess, int], tls_level: str
) -> None:
    server, port = mailseal
    message_id = f"<{uuid.uuid4().hex}@postfix-sender.test>"
    message = (
        f"From: {SENDER}\r\nTo: {RCPT}\r\nSubject: relayed by Postfix ({tls_level})\r\n"
        f"Message-ID: {message_id}\r\n\r\nHello from Postfix.\r\n"
    ).encode()
    relayhost = f"[127.0.0.1]:{port}"
    with PostfixSender(tmp_path / "postfix", relayhost, tls_level=tls_level) as postfix:
        postfix.send(SENDER, RCPT, message)
        # mailseal's certificate is self-signed and Postfix has no CA file: Untrusted.
        postfix.wait_log(
            rf"(Trusted|Untrusted|Anonymous) TLS connection established to "
            rf"127\.0\.0\.1\[127\.0\.0\.1\]:{port}: TLSv1\.[23]"
        )
        sent = postfix.wait_log(r"status=sent \(250 2\.0\.0 Ok: queued as \w+\)")
        assert f"relay=127.0.0.1[127.0.0.1]:{port}," in sent[0]
    queued = re.search(r"queued as (\w+)\)", sent[0])
    assert queued is not None

    delivered = [email.message_from_bytes(path.read_bytes()) for path in server.wait_delivered(1)]
    ours = [msg for msg in delivered if msg["Message-ID"] == message_id]
    assert len(ours) == 1, [msg["Message-ID"] for msg in delivered]
    # The topmost Received: is mailseal's own; Postfix's pickup one says "from userid".
    received = " ".join(str(ours[0].get_all("Received", [""])[0]).split())
    assert "postfix-sender.test" in received
    # mailseal's queue id in its Received: is the one it answered Postfix with.
    assert f"with ESMTPS id {queued.group(1)}" in received
    server.wait_log(r"TLS connection established from \S*\[127\.0\.0\.1\]")


def test_postfix_sender_listens_nowhere_and_stops_by_its_master(tmp_path: Path) -> None:
    sender = PostfixSender(tmp_path / "postfix", "[127.0.0.1]:9")
    pid = 0
    with pytest.raises(RuntimeError, match="test body failed"), sender:
        assert sender.master_pid is not None
        pid = sender.master_pid
        services = subprocess.run(
            ["/usr/sbin/postconf", "-c", str(sender.config_directory), "-M"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.splitlines()
        assert any(line.split()[:2] == ["smtp", "unix"] for line in services)
        assert not [line for line in services if line.split()[1] in ("inet", "pass")]
        assert "daemon started -- version 3." in sender.maillog()
        raise RuntimeError("test body failed")
    # The exception in the body still stopped the master and every daemon it forked.
    assert group_is_gone(pid)
    assert sender.master_pid is None
    sender.stop()  # idempotent


def test_postfix_sender_defers_and_flush_retries_when_nothing_listens(tmp_path: Path) -> None:
    port = free_port()
    with PostfixSender(tmp_path / "postfix", f"[127.0.0.1]:{port}") as sender:
        sender.send(SENDER, RCPT, b"Subject: nobody home\r\n\r\nbody\r\n")
        refused = (
            rf"status=deferred \(connect to 127\.0\.0\.1\[127\.0\.0\.1\]:{port}: "
            r"Connection refused\)"
        )
        sender.wait_log(refused)
        sender.flush()
        assert len(sender.wait_log(refused, count=2)) >= 2


def test_postfix_sender_refuses_a_config_postfix_check_warns_about(tmp_path: Path) -> None:
    sender = PostfixSender(tmp_path / "postfix", "[127.0.0.1]:9", extra_main_cf="bogus_name = 1")
    with pytest.raises(PostfixError, match=r"unused parameter: bogus_name=1"):
        sender.start()
    assert sender.master_pid is None
    assert not (sender.queue_directory / "pid" / "master.pid").exists()
