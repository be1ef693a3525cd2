"""mailseal's smtp client delivers to Debian's Postfix smtpd and to smtp-sink (issue #5 interop).

The full path: a mailseal instance takes a message on its port-25 service from
loopback (``$mynetworks`` may relay) for a domain it does not serve, and its
queue manager hands it to the smtp client with ``relayhost = [127.0.0.1]:PORT``,
where the peer listens. What the peer's Maildir, dump file and log show, and
what mailseal's own log says, are checked as an admin would check them:

- PostfixReceiver with TLS offered: mail arrives over STARTTLS at levels may and
  encrypt (Postfix logs "Anonymous TLS connection established from ...",
  stamps "with ESMTPS"), mailseal logs "Untrusted" (or "Trusted" once the
  receiver's CA is in ``smtp_tls_CAfile``) and ``status=sent (250 2.0.0 Ok:
  queued as <Postfix's queue id>)``.
- PostfixReceiver without TLS, mailseal at encrypt: deferred with Postfix's text
  "TLS is required, but was not offered by host", and Postfix gets no mail.
- smtp-sink (no STARTTLS at all), mailseal at may: delivered in plaintext.

The same three cases are also run with ``SmtpAgent`` in-process (no queue
manager), so a failure says whether the client or its wiring is at fault.
"""

import asyncio
import email
import re
import smtplib
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import trustme

from mailseal.config.errors import Setting
from mailseal.config.facts import SystemFacts
from mailseal.config.model import Config
from mailseal.delivery.smtp import RecipientResult, SmtpAgent, SmtpRequest
from mailseal.log.sinks import FileSink, MailLog, session_numbers
from mailseal.queue.envelope import Envelope, Recipient
from mailseal.testing.postfix import MASTER
from mailseal.testing.postfix_receiver import PostfixReceiver
from mailseal.testing.server import Instance, Servers, free_port
from mailseal.testing.smtp_sink import SMTP_SINK, SmtpSink

pytestmark = pytest.mark.interop

MAILSEAL_HOST = "mail.example.test"
SENDER = "postmaster@example.test"  # a mailbox on the mailseal instance (bounces land there)
RECEIVER_HOST = "postfix-receiver.test"
RECEIVER_DOMAIN = "receiver.test"
SINK_DOMAIN = "sink.test"
TIMEOUT = 30.0
# An established session with its cipher, as Postfix's tls_client_start logs it.
TLS_DETAILS = r"TLSv1\.3 with cipher \S+ \(\d+/\d+ bits\)"


@dataclass(frozen=True)
class Ca:
    """trustme's private CA and the receiver's certificate it issued, as files."""

    ca_file: Path
    cert_file: Path
    key_file: Path


@pytest.fixture(autouse=True)
def _need_postfix() -> None:
    if not (Path(MASTER).exists() and Path(SMTP_SINK).exists()):
        pytest.fail("Postfix is not installed: run ./dev test (it installs debian-packages.txt)")


@pytest.fixture
def ca(tmp_path: Path) -> Ca:
    authority = trustme.CA()
    issued = authority.issue_cert(RECEIVER_HOST)
    files = Ca(tmp_path / "ca.pem", tmp_path / "receiver.crt", tmp_path / "receiver.key")
    authority.cert_pem.write_to_path(str(files.ca_file))
    issued.cert_chain_pems[0].write_to_path(str(files.cert_file))
    issued.private_key_pem.write_to_path(str(files.key_file))
    return files


@pytest.fixture
def servers(tmp_path: Path) -> Iterator[Servers]:
    started = Servers(tmp_path / "mailseal")
    yield started
    started.stop_all()


def receiver(tmp_path: Path, ca: Ca, tls_level: str) -> PostfixReceiver:
    return PostfixReceiver(
        tmp_path / "postfix",
        port=free_port(),
        hostname=RECEIVER_HOST,
        domain=RECEIVER_DOMAIN,
        cert_file=ca.cert_file,
        key_file=ca.key_file,
        tls_level=tls_level,
    )


def message(recipient: str, subject: str) -> bytes:
    return (
        f"From: {SENDER}\r\nTo: {recipient}\r\nSubject: {subject}\r\n"
        f"Message-ID: <{subject.replace(' ', '.')}@example.test>\r\n\r\n"
        "Hello from mailseal.\r\n.a line with a leading dot\r\n"
    ).encode()


def relaying_mailseal(servers: Servers, port: int, tls_level: str, extra: str = "") -> Instance:
    """A mailseal instance whose smtp client sends everything not its own to 127.0.0.1:port."""
    return servers.start(
        f"relayhost = [127.0.0.1]:{port}\nsmtp_tls_security_level = {tls_level}\n{extra}"
    )


def submit(instance: Instance, recipient: str, subject: str) -> None:
    """Mail enters mailseal on its port-25 service, from loopback (in $mynetworks)."""
    with smtplib.SMTP("127.0.0.1", instance.ports.smtp, timeout=TIMEOUT) as client:
        assert client.sendmail(SENDER, [recipient], message(recipient, subject)) == {}


def status_line(instance: Instance, recipient: str, status: str) -> str:
    return instance.process.wait_log(
        rf"mailseal/smtp\[\d+\]: \w+: to=<{re.escape(recipient)}>, .*status={status} ",
        timeout=TIMEOUT,
    )[0]


# -- the full path: smtpd -> queue -> qmgr -> smtp client -> peer -------------------


@pytest.mark.parametrize(
    ("tls_level", "trust_ca", "trust"),
    [("may", False, "Untrusted"), ("encrypt", True, "Trusted")],
)
def test_mailseal_relays_to_postfix_over_starttls(
    tmp_path: Path, ca: Ca, servers: Servers, tls_level: str, trust_ca: bool, trust: str
) -> None:
    rcpt = f"someone@{RECEIVER_DOMAIN}"
    with receiver(tmp_path, ca, "may") as postfix:
        extra = f"smtp_tls_CAfile = {ca.ca_file}" if trust_ca else ""
        mailseal = relaying_mailseal(servers, postfix.port, tls_level, extra)
        submit(mailseal, rcpt, f"to postfix at {tls_level}")
        sent = status_line(mailseal, rcpt, "sent")
        postfix.wait_log(
            rf"smtpd\[\d+\]: Anonymous TLS connection established from "
            rf"localhost\[127\.0\.0\.1\]: {TLS_DETAILS}",
        )
        files = postfix.wait_delivered(1, TIMEOUT)
        mailseal.process.wait_log(
            rf"mailseal/smtp\[\d+\]: {trust} TLS connection established to "
            rf"127\.0\.0\.1\[127\.0\.0\.1\]:{postfix.port}: {TLS_DETAILS}"
        )
    assert f"relay=127.0.0.1[127.0.0.1]:{postfix.port}, delay=" in sent
    queued = re.search(r"dsn=2\.0\.0, status=sent \(250 2\.0\.0 Ok: queued as (\w+)\)$", sent)
    assert queued is not None, sent
    # Postfix's queue id in mailseal's log is the one Postfix gave this very message.
    assert f"{queued.group(1)}: client=localhost[127.0.0.1]" in postfix.maillog()

    delivered = email.message_from_bytes(files[0].read_bytes())
    assert delivered["Subject"] == f"to postfix at {tls_level}"
    assert delivered.get_payload() == "Hello from mailseal.\n.a line with a leading dot\n"
    received = [" ".join(str(value).split()) for value in delivered.get_all("Received", [])]
    # Postfix's own (topmost): mailseal's EHLO name, TLS, ESMTPS and the queue id it answered.
    assert received[0].startswith(f"from {MAILSEAL_HOST} (localhost [127.0.0.1])")
    assert "(using TLSv1.3 with cipher " in received[0]
    assert f"by {RECEIVER_HOST} (Postfix) with ESMTPS id {queued.group(1)}" in received[0]
    # mailseal's, below it: the message went through mailseal's queue on the way.
    assert f"by {MAILSEAL_HOST}" in received[1]


def test_mailseal_at_encrypt_defers_when_postfix_offers_no_tls(
    tmp_path: Path, ca: Ca, servers: Servers
) -> None:
    rcpt = f"someone@{RECEIVER_DOMAIN}"
    with receiver(tmp_path, ca, "none") as postfix:
        mailseal = relaying_mailseal(servers, postfix.port, "encrypt")
        submit(mailseal, rcpt, "encrypt without tls")
        deferred = status_line(mailseal, rcpt, "deferred")
        # mailseal reached Postfix, saw no STARTTLS and left without a transaction.
        goodbye = postfix.wait_log(r"smtpd\[\d+\]: disconnect from localhost\[127\.0\.0\.1\]")
        time.sleep(0.5)  # a delivery that wrongly went ahead would be in the Maildir by now
        assert postfix.maildir_messages() == []
        assert "client=localhost[127.0.0.1]" not in postfix.maillog()
    assert "mail=" not in goodbye[0]
    assert f"relay=127.0.0.1[127.0.0.1]:{postfix.port}, delay=" in deferred
    assert (
        "dsn=4.7.4, status=deferred (TLS is required, but was not offered by host "
        "127.0.0.1[127.0.0.1])"
    ) in deferred


def test_mailseal_at_may_sends_plaintext_to_smtp_sink(tmp_path: Path, servers: Servers) -> None:
    rcpt = f"someone@{SINK_DOMAIN}"
    with SmtpSink(free_port(), tmp_path / "sink") as sink:
        mailseal = relaying_mailseal(servers, sink.port, "may")
        submit(mailseal, rcpt, "to smtp-sink")
        sent = status_line(mailseal, rcpt, "sent")
        dumped = sink.wait_messages(1, TIMEOUT)
    assert f"relay=127.0.0.1[127.0.0.1]:{sink.port}, delay=" in sent
    assert "dsn=2.0.0, status=sent (250 2.0.0 Ok)" in sent
    assert "TLS connection established" not in mailseal.process.maillog()
    assert f"X-Helo-Args: {MAILSEAL_HOST}\n".encode() in dumped[0]
    assert f"X-Mail-Args: <{SENDER}>".encode() in dumped[0]
    assert f"X-Rcpt-Args: <{rcpt}>".encode() in dumped[0]
    assert b"\nSubject: to smtp-sink\n" in dumped[0]
    assert dumped[0].endswith(b"\nHello from mailseal.\n.a line with a leading dot\n\n")


# -- the same peers, SmtpAgent in-process -------------------------------------------


def deliver_in_process(
    workdir: Path, port: int, recipient: str, settings: dict[str, str]
) -> tuple[RecipientResult, str]:
    """One SmtpAgent delivery to ``[127.0.0.1]:port``; its result and what it logged."""
    workdir.mkdir(parents=True, exist_ok=True)
    facts = SystemFacts(hostname=MAILSEAL_HOST, config_directory=str(workdir))
    values = {"myhostname": MAILSEAL_HOST, "smtp_tls_loglevel": "1", **settings}
    config = Config({name: Setting(value) for name, value in values.items()}, facts)
    log_file = workdir / "maillog"
    log = MailLog(FileSink(log_file, MAILSEAL_HOST), "mailseal")
    target = Recipient(recipient, recipient)
    request = SmtpRequest(
        queue_id="4AbCdEfGhJ",
        nexthop=f"[127.0.0.1]:{port}",
        sender=SENDER,
        recipients=(target,),
        content=message(recipient, "in process"),
        envelope=Envelope(SENDER, (target,), arrival_time=time.time()),
    )

    async def run() -> list[RecipientResult]:
        agent = SmtpAgent(config, log, session_numbers())
        try:
            return await asyncio.wait_for(agent.deliver(request), TIMEOUT)
        finally:
            await asyncio.wait_for(agent.aclose(), TIMEOUT)

    try:
        results = asyncio.run(run())
    finally:
        log.close()
    assert [result.recipient for result in results] == [target]
    return results[0], log_file.read_text(encoding="utf-8")


def test_agent_in_process_to_postfix_over_starttls(tmp_path: Path, ca: Ca) -> None:
    rcpt = f"someone@{RECEIVER_DOMAIN}"
    with receiver(tmp_path, ca, "may") as postfix:
        result, log = deliver_in_process(
            tmp_path / "agent", postfix.port, rcpt, {"smtp_tls_security_level": "may"}
        )
        files = postfix.wait_delivered(1, TIMEOUT)
        postfix.wait_log(r"Anonymous TLS connection established from localhost\[127\.0\.0\.1\]")
    assert (result.status, result.dsn, result.tls_level) == ("sent", "2.0.0", "may")
    assert result.relay == f"127.0.0.1[127.0.0.1]:{postfix.port}"
    assert re.fullmatch(r"250 2\.0\.0 Ok: queued as \w+", result.reason), result.reason
    assert re.search(
        rf"mailseal/smtp\[{result.number}\]: Untrusted TLS connection established to "
        rf"127\.0\.0\.1\[127\.0\.0\.1\]:{postfix.port}: {TLS_DETAILS}",
        log,
    ), log
    received = " ".join(str(email.message_from_bytes(files[0].read_bytes())["Received"]).split())
    assert f"with ESMTPS id {result.reason.rsplit(' ', 1)[1]}" in received


def test_agent_in_process_at_encrypt_defers_without_tls(tmp_path: Path, ca: Ca) -> None:
    rcpt = f"someone@{RECEIVER_DOMAIN}"
    with receiver(tmp_path, ca, "none") as postfix:
        result, _ = deliver_in_process(
            tmp_path / "agent", postfix.port, rcpt, {"smtp_tls_security_level": "encrypt"}
        )
        postfix.wait_log(r"disconnect from localhost\[127\.0\.0\.1\]")
        assert postfix.maildir_messages() == []
    assert (result.status, result.dsn, result.tls_level) == ("deferred", "4.7.4", "encrypt")
    assert result.reason == "TLS is required, but was not offered by host 127.0.0.1[127.0.0.1]"


def test_agent_in_process_to_smtp_sink_in_plaintext(tmp_path: Path) -> None:
    rcpt = f"someone@{SINK_DOMAIN}"
    with SmtpSink(free_port(), tmp_path / "sink") as sink:
        result, log = deliver_in_process(
            tmp_path / "agent", sink.port, rcpt, {"smtp_tls_security_level": "may"}
        )
        dumped = sink.wait_messages(1, TIMEOUT)
    assert (result.status, result.dsn, result.reason) == ("sent", "2.0.0", "250 2.0.0 Ok")
    assert result.relay == f"127.0.0.1[127.0.0.1]:{sink.port}"
    assert "TLS connection established" not in log
    assert f"X-Rcpt-Args: <{rcpt}>".encode() in dumped[0]
    assert dumped[0].endswith(b"\nHello from mailseal.\n.a line with a leading dot\n\n")
