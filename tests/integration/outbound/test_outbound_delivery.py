"""Instance A relays to instance B over real SMTP: MX lookups, STARTTLS levels, retries, bounces.

A finds B through a stub DNS server (``dns_servers``) and connects to B's port with
``smtp_tcp_port``, as Postfix's smtp client would to port 25. Mail enters A on its
port-25 service from loopback (``$mynetworks`` may relay) or by authenticated
submission; what B's Maildir, B's Received header and both logs show is checked.
"""

import email
import email.policy
import smtplib
import socket
import ssl
import time
from email.message import EmailMessage, Message

from outbound_net import Network

from mailseal.testing.dns_stub import DnsStub
from mailseal.testing.process import run_mailseal
from mailseal.testing.server import Instance

LOCAL_SENDER = "postmaster@example.test"  # a mailbox on A, where bounces land


def outbound(zones: DnsStub, port: int, extra: str = "") -> str:
    host, dns_port = zones.address
    return f"dns_servers = {host}:{dns_port}\nsmtp_tcp_port = {port}\n{extra}"


def submit(instance: Instance, recipient: str, subject: str = "hello") -> None:
    with smtplib.SMTP("127.0.0.1", instance.ports.smtp, timeout=10) as client:
        refused = client.sendmail(
            LOCAL_SENDER,
            [recipient],
            f"From: {LOCAL_SENDER}\r\nTo: {recipient}\r\nSubject: {subject}\r\n\r\nbody\r\n",
        )
        assert refused == {}


def start_pair(
    network: Network, zones: DnsStub, a_extra: str = "", b_extra: str = ""
) -> tuple[Instance, Instance]:
    b = network.start(network.prepare("b", "mx.b.test", b_extra))
    a = network.start(
        network.prepare("a", "mail.example.test", outbound(zones, b.ports.smtp, a_extra))
    )
    return a, b


def test_mx_lookup_and_opportunistic_starttls(network: Network, zones: DnsStub) -> None:
    a, b = start_pair(network, zones)
    submit(a, "postmaster@b.test")
    delivered = b.process.wait_delivered(1, domain="b.test", timeout=20)
    received = email.message_from_bytes(delivered[0].read_bytes()).get_all("Received")
    assert received is not None
    assert " with ESMTPS id " in " ".join(received[0].split())
    port = b.ports.smtp
    a.process.wait_log(
        rf"mailseal/smtp\[\d+\]: Untrusted TLS connection established to "
        rf"mx\.b\.test\[127\.0\.0\.1\]:{port}: TLSv1\.3 with cipher \S+ \(\d+/\d+ bits\)"
    )
    line = a.process.wait_log(r"mailseal/smtp\[\d+\]: \w+: to=<postmaster@b\.test>")[0]
    assert f"relay=mx.b.test[127.0.0.1]:{port}, delay=" in line
    assert "dsn=2.0.0, status=sent (250 2.0.0 Ok: queued as " in line
    b.process.wait_log(r"Anonymous TLS connection established from \S+\[127\.0\.0\.1\]")


def test_encrypt_never_falls_back_to_plaintext(network: Network, zones: DnsStub) -> None:
    a, b = start_pair(
        network,
        zones,
        a_extra="smtp_tls_security_level = encrypt\n",
        b_extra="smtpd_tls_security_level = none\n",
    )
    submit(a, "postmaster@b.test")
    line = a.process.wait_log(r": to=<postmaster@b\.test>, .*status=deferred", timeout=20)[0]
    assert "dsn=4.7.4" in line
    assert "(TLS is required, but was not offered by host mx.b.test[127.0.0.1])" in line
    time.sleep(0.5)
    assert b.process.delivered(domain="b.test") == []
    assert "client=" not in b.process.maillog()  # no transaction was even started


def test_second_mx_when_the_first_is_down(network: Network, zones: DnsStub) -> None:
    a, b = start_pair(network, zones)
    submit(a, "postmaster@two.test")
    # two.test's first MX (127.0.0.9) refuses connections; the second is B, whose smtpd
    # does not take mail for two.test: what matters here is which host A talked to.
    line = a.process.wait_log(r": to=<postmaster@two\.test>, ", timeout=20)[0]
    assert f"relay=mx.b.test[127.0.0.1]:{b.ports.smtp}" in line


def test_retry_once_the_destination_is_up(network: Network, zones: DnsStub) -> None:
    b = network.prepare("b", "mx.b.test")
    a = network.start(
        network.prepare(
            "a",
            "mail.example.test",
            outbound(
                zones,
                b.ports.smtp,
                "minimal_backoff_time = 1s\nmaximal_backoff_time = 2s\nqueue_run_delay = 1s\n",
            ),
        )
    )
    submit(a, "postmaster@b.test")
    deferred = a.process.wait_log(r": to=<postmaster@b\.test>, .*status=deferred", timeout=20)
    assert f"connect to mx.b.test[127.0.0.1]:{b.ports.smtp}: Connection refused" in deferred[0]
    network.start(b)
    b.process.wait_delivered(1, domain="b.test", timeout=30)
    a.process.wait_log(r": to=<postmaster@b\.test>, .*status=sent", timeout=10)


def status_blocks(part: Message) -> list[Message]:
    """The header blocks of a message/delivery-status part (per message, per recipient)."""
    payload = part.get_payload()
    assert isinstance(payload, list)
    return [block for block in payload if isinstance(block, Message)]


def dsn_of(path_bytes: bytes) -> EmailMessage:
    message = email.message_from_bytes(path_bytes, policy=email.policy.default)
    assert isinstance(message, EmailMessage)
    assert message.get_content_type() == "multipart/report"
    assert message.get_param("report-type") == "delivery-status"
    return message


def test_expired_mail_bounces_to_the_sender(network: Network, zones: DnsStub) -> None:
    b = network.prepare("b", "mx.b.test")  # never started: every attempt is refused
    a = network.start(
        network.prepare(
            "a",
            "mail.example.test",
            outbound(
                zones,
                b.ports.smtp,
                "minimal_backoff_time = 1s\nmaximal_backoff_time = 1s\nqueue_run_delay = 1s\n"
                "maximal_queue_lifetime = 3s\nbounce_queue_lifetime = 3s\n",
            ),
        )
    )
    submit(a, "postmaster@down.test", subject="doomed")
    bounce = a.process.wait_delivered(1, timeout=30)[0]
    report = dsn_of(bounce.read_bytes())
    assert report["Subject"] == "Undelivered Mail Returned to Sender"
    assert report["To"] == LOCAL_SENDER
    parts = list(report.iter_parts())
    assert [p.get_content_type() for p in parts] == [
        "text/plain",
        "message/delivery-status",
        "message/rfc822",
    ]
    recipient_block = status_blocks(parts[1])[1]
    assert recipient_block["Final-Recipient"] == "rfc822; postmaster@down.test"
    assert recipient_block["Action"] == "failed"
    assert recipient_block["Status"].startswith("4.")
    assert "Connection refused" in str(recipient_block["Diagnostic-Code"]) or "refused" in (
        parts[0].get_content()
    )
    a.process.wait_log(r"status=expired, returned to sender")
    a.process.wait_log(r"mailseal/bounce\[\d+\]: \w+: sender non-delivery notification: \w+")


def test_null_mx_bounces_at_once(network: Network, zones: DnsStub) -> None:
    a, _ = start_pair(network, zones)
    submit(a, "someone@nullmx.test")
    line = a.process.wait_log(r": to=<someone@nullmx\.test>, .*status=bounced", timeout=20)[0]
    assert "dsn=5.1.0" in line
    assert "does not accept mail (nullMX)" in line
    report = dsn_of(a.process.wait_delivered(1, timeout=20)[0].read_bytes())
    assert status_blocks(list(report.iter_parts())[1])[1]["Status"] == "5.1.0"


def test_servfail_defers(network: Network, zones: DnsStub) -> None:
    a, _ = start_pair(network, zones)
    submit(a, "someone@broken.test")
    line = a.process.wait_log(r": to=<someone@broken\.test>, .*status=deferred", timeout=20)[0]
    assert "type=MX: Host not found, try again" in line


def test_authenticated_submission_leaves_through_the_smtp_client(
    network: Network, zones: DnsStub
) -> None:
    a, b = start_pair(network, zones)
    result = run_mailseal("-c", str(a.directory), "passwd", "alice@example.test", stdin="pw\n")
    assert result.returncode == 0, result.stderr
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE  # A's self-signed certificate
    with smtplib.SMTP_SSL("127.0.0.1", a.ports.smtps, timeout=10, context=context) as client:
        client.login("alice@example.test", "pw")
        client.sendmail("alice@example.test", ["postmaster@b.test"], b"Subject: out\r\n\r\nx\r\n")
    b.process.wait_delivered(1, domain="b.test", timeout=20)


def test_one_delay_warning_then_still_retried(network: Network, zones: DnsStub) -> None:
    b = network.prepare("b", "mx.b.test")  # never started: every attempt is refused
    a = network.start(
        network.prepare(
            "a",
            "mail.example.test",
            outbound(
                zones,
                b.ports.smtp,
                "minimal_backoff_time = 1s\nmaximal_backoff_time = 1s\nqueue_run_delay = 1s\n"
                "delay_warning_time = 2s\n",
            ),
        )
    )
    submit(a, "postmaster@down.test", subject="slow")
    warning = a.process.wait_delivered(1, timeout=30)[0]
    report = dsn_of(warning.read_bytes())
    assert report["Subject"] == "Delayed Mail (still being retried)"
    parts = list(report.iter_parts())
    assert [p.get_content_type() for p in parts][1:] == [
        "message/delivery-status",
        "text/rfc822-headers",  # delay notices return headers only, as Postfix's
    ]
    block = status_blocks(parts[1])[1]
    assert block["Action"] == "delayed"
    assert block["Will-Retry-Until"]
    a.process.wait_log(r"mailseal/bounce\[\d+\]: \w+: sender delay notification: \w+")
    # Later attempts keep failing, but the warning is sent once (the W queue record).
    a.process.wait_log(r": to=<postmaster@down\.test>, .*status=deferred", count=4, timeout=30)
    assert len(a.process.delivered()) == 1


def test_notify_never_suppresses_the_bounce(network: Network, zones: DnsStub) -> None:
    a, _ = start_pair(network, zones)
    with smtplib.SMTP("127.0.0.1", a.ports.smtp, timeout=10) as client:
        client.ehlo("client.example")
        client.mail(LOCAL_SENDER)
        assert client.rcpt("someone@nullmx.test", ["NOTIFY=NEVER"])[0] == 250
        client.rcpt("other@nullmx.test")
        code, _ = client.data(b"Subject: x\r\n\r\nbody\r\n")
        assert code == 250
    a.process.wait_log(r": to=<someone@nullmx\.test>, .*status=bounced", timeout=20)
    a.process.wait_log(r": to=<other@nullmx\.test>, .*status=bounced", timeout=20)
    report = dsn_of(a.process.wait_delivered(1, timeout=20)[0].read_bytes())
    finals = [b["Final-Recipient"] for b in status_blocks(list(report.iter_parts())[1])[1:]]
    assert finals == ["rfc822; other@nullmx.test"]  # NOTIFY=NEVER is left out


def test_stop_cuts_a_hanging_delivery_and_the_next_start_retries(network: Network) -> None:
    # A server that accepts the TCP connection and never greets: smtp_helo_timeout is
    # minutes. A stop must not wait for it, and the message must survive in the queue.
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        port = silent.getsockname()[1]
        a = network.start(
            network.prepare("a", "mail.example.test", f"relayhost = [127.0.0.1]:{port}\n")
        )
        submit(a, "someone@far-away.example")
        a.process.wait_log(r"\w+: from=<postmaster@example\.test>, .*\(queue active\)")
        time.sleep(0.5)  # the smtp client is connected and waiting for the greeting
        started = time.monotonic()
        assert a.process.stop() == 0
        assert time.monotonic() - started < 8
    active = list((a.directory / "queue" / "active").iterdir())
    assert len(active) == 1
    assert "delivery error" not in a.process.maillog()


def test_one_message_for_a_local_and_a_remote_recipient(network: Network, zones: DnsStub) -> None:
    """The queue manager's local lane leaves a message with an smtp destination to a
    pool thread, untouched: each recipient is delivered once, ``from=`` logged once."""
    a, b = start_pair(network, zones)
    with smtplib.SMTP("127.0.0.1", a.ports.smtp, timeout=10) as client:
        refused = client.sendmail(
            LOCAL_SENDER,
            [LOCAL_SENDER, "postmaster@b.test"],
            f"From: {LOCAL_SENDER}\r\nSubject: both\r\n\r\nbody\r\n",
        )
        assert refused == {}
    b.process.wait_delivered(1, domain="b.test", timeout=20)
    local = a.process.wait_delivered(1, timeout=20)
    assert email.message_from_bytes(local[0].read_bytes())["Subject"] == "both"
    removed = a.process.wait_log(r"mailseal/qmgr\[\d+\]: (\w+): removed")[0]
    queue_id = removed.split(": ")[1]
    log = a.process.maillog()
    assert log.count(f"{queue_id}: from=<{LOCAL_SENDER}>") == 1
    assert log.count(f"{queue_id}: to=<{LOCAL_SENDER}>") == 1
    assert log.count(f"{queue_id}: to=<postmaster@b.test>") == 1
    assert log.count("status=sent") == 2
