"""Log lines in Postfix's shapes: what pflogsumm and fail2ban parse."""

import re

import pytest

from mailseal.log import format as fmt

# pflogsumm's and fail2ban's own patterns (simplified to the parts that matter).
PFLOGSUMM_DELIVERY = re.compile(
    r"^[0-9A-F]+: to=<[^>]*>,(?: orig_to=<[^>]*>,)? relay=[^,]+, delay=[\d.]+, "
    r"delays=[\d./]+, dsn=\d\.\d+\.\d+, status=(sent|deferred|bounced) \(.*\)$"
)
FAIL2BAN_RELAY = re.compile(
    r"^NOQUEUE: reject: RCPT from \S+\[(?P<host>[^\]]+)\]: 554 5\.7\.1 .*Relay access denied"
)


def test_connect_and_disconnect_counts() -> None:
    assert fmt.connect_from("localhost", "127.0.0.1") == "connect from localhost[127.0.0.1]"
    counts = [("ehlo", 1, 1), ("starttls", 1, 1), ("mail", 1, 1), ("rcpt", 0, 1), ("quit", 1, 1)]
    assert fmt.disconnect_from("", "192.0.2.1", counts) == (
        "disconnect from unknown[192.0.2.1] ehlo=1 starttls=1 mail=1 rcpt=0/1 quit=1 commands=4/5"
    )


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (0.0, "0"),
        (0.004, "0"),
        (0.005, "0.01"),
        (0.123, "0.12"),
        (0.5, "0.5"),
        (1.27, "1.3"),
        (1.0, "1"),
        (9.94, "9.9"),
        (12.3, "12"),
        (359.6, "360"),
    ],
)
def test_delays_have_two_significant_digits(seconds: float, text: str) -> None:
    assert fmt.format_delay(seconds) == text


def test_delivery_line_matches_pflogsumm() -> None:
    times = fmt.DeliveryTimes(0.25, 0.1, 0.01, 0.0, 0.14)
    line = fmt.recipient_status(
        "4F2A1B3C9D",
        "user@example.test",
        original="alias@example.test",
        relay="virtual",
        times=times,
        dsn="2.0.0",
        status="sent",
        reason="delivered to maildir",
    )
    assert line == (
        "4F2A1B3C9D: to=<user@example.test>, orig_to=<alias@example.test>, relay=virtual, "
        "delay=0.25, delays=0.1/0.01/0/0.14, dsn=2.0.0, status=sent (delivered to maildir)"
    )
    assert PFLOGSUMM_DELIVERY.match(line)


def test_orig_to_only_when_it_differs() -> None:
    times = fmt.DeliveryTimes(0, 0, 0, 0, 0)
    line = fmt.recipient_status(
        "ABC",
        "u@x",
        original="U@X",
        relay="local",
        times=times,
        dsn="2.0.0",
        status="sent",
        reason="delivered to maildir",
    )
    assert "orig_to" not in line


def test_noqueue_reject_matches_fail2ban() -> None:
    line = fmt.noqueue(
        "reject",
        "RCPT",
        "unknown",
        "192.0.2.7",
        "554 5.7.1 <a@elsewhere.test>: Relay access denied",
        sender="s@x.test",
        recipient="a@elsewhere.test",
        proto="ESMTP",
        helo="spam",
    )
    assert line == (
        "NOQUEUE: reject: RCPT from unknown[192.0.2.7]: 554 5.7.1 <a@elsewhere.test>: "
        "Relay access denied; from=<s@x.test> to=<a@elsewhere.test> proto=ESMTP helo=<spam>"
    )
    match = FAIL2BAN_RELAY.match(line)
    assert match is not None and match["host"] == "192.0.2.7"


def test_queue_lines() -> None:
    assert fmt.client("ABC123", "h", "1.2.3.4") == "ABC123: client=h[1.2.3.4]"
    assert fmt.qmgr_from("ABC123", "", 512, 2) == (
        "ABC123: from=<>, size=512, nrcpt=2 (queue active)"
    )
    assert fmt.queue_removed("ABC123") == "ABC123: removed"
    assert fmt.lost_connection("DATA (12 bytes)", "h", "::1") == (
        "lost connection after DATA (12 bytes) from h[::1]"
    )
