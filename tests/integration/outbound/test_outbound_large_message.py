"""A large message relayed by A to B: sent from A's queue file a piece at a time, intact."""

import smtplib

from outbound_net import Network
from test_outbound_delivery import LOCAL_SENDER, start_pair

from mailseal.testing.dns_stub import DnsStub


def test_a_3_mb_message_is_relayed_intact_over_starttls(network: Network, zones: DnsStub) -> None:
    limit = "message_size_limit = 20000000"
    a, b = start_pair(network, zones, limit, limit)
    line = "0123456789" * 7 + "\u00e9t\u00e9\r\n"
    lines = [("." if n % 7 == 0 else "") + f"{n:07d} {line}" for n in range(3 * 2**20 // 90)]
    body = "".join(lines)
    head = f"From: {LOCAL_SENDER}\r\nTo: postmaster@b.test\r\nSubject: large\r\n"
    head += "MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n"
    head += "Content-Transfer-Encoding: 8bit\r\n\r\n"
    with smtplib.SMTP("127.0.0.1", a.ports.smtp, timeout=30) as client:
        client.ehlo("client.example.net")
        refused = client.sendmail(
            LOCAL_SENDER, ["postmaster@b.test"], (head + body).encode(), ["BODY=8BITMIME"]
        )
        assert refused == {}
    (delivered,) = b.process.wait_delivered(1, domain="b.test", timeout=60)
    text = delivered.read_bytes()
    # Every line arrived once, dot-stuffing undone, 8-bit octets untouched.
    assert text.endswith(body.replace("\r\n", "\n").encode())
    line = a.process.wait_log(r"mailseal/smtp\[\d+\]: \w+: to=<postmaster@b\.test>")[0]
    assert "status=sent (250 2.0.0 Ok: queued as " in line
    b.process.wait_log(r"Anonymous TLS connection established from \S+\[127\.0\.0\.1\]")
    qmgr = b.process.wait_log(r"mailseal/qmgr\[\d+\]: \w+: from=<postmaster@example\.test>")[0]
    assert int(qmgr.split("size=")[1].split(",")[0]) > len(body)
