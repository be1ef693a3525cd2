"""pflogsumm (Debian's 1.1.5) reads a mailseal log as a Postfix log: its counts are the run's.

Two instances logging as Postfix (``syslog_name = postfix``): A (mail.example.test)
relays to B (mx.b.test, found through a stub DNS server) and delivers its own
domain to Maildirs. Clients send eight messages to A, over plain SMTP, STARTTLS,
authenticated submission (STARTTLS) and implicit TLS; they go to A's Maildir, to
B, to a host that is down (deferred), to an unknown user at B (bounced, and the
bounce is delivered back to the sender at A); three recipients are refused at
RCPT (relay access, unknown virtual and local users) and one non-FQDN HELO draws
a ``reject_warning``. pflogsumm's Grand Totals, smtpd statistics and
per-domain delivery summary must equal what the test knows it did, and the
``size=`` of each message must be its content as it arrived (with the Received:
header A added, CRLF line ends), read back from where each copy ended up.

A second test feeds lines rendered by ``mailseal.log.format`` directly to
pflogsumm for the fields a short run does not reliably produce (``conn_use=``,
``orig_to=``).
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from logcompat_run import Client, Security, postfix_names, run_tool, send

from mailseal.log import format as fmt
from mailseal.queue.store import QueueName, QueueStore
from mailseal.testing.dns_stub import DnsStub
from mailseal.testing.process import run_mailseal
from mailseal.testing.server import MailsealProcess, Ports, make_instance

pytestmark = pytest.mark.interop

ZONES = """
b.test.          60 IN MX 10 mx.b.test.
mx.b.test.       60 IN A  127.0.0.1
down.test.       60 IN MX 10 mx.down.test.
mx.down.test.    60 IN A  127.0.0.9
"""
TRUSTED = "127.0.0.2"  # A's $mynetworks: may relay without AUTH
STRANGER = "127.0.0.1"  # not in $mynetworks: relaying needs AUTH
LOCAL = "postmaster@example.test"
REMOTE = "postmaster@b.test"
ALICE = ("alice@example.test", "alice's password")
CAROL = "carol@client.example.net"
# Headers that the Maildir delivery puts above the message content (Postfix's too).
_DELIVERY_HEADERS = ("return-path", "x-original-to", "delivered-to")


@dataclass
class Run:
    """What the test did, and the two instances it did it with."""

    a: MailsealProcess
    b: MailsealProcess
    sent: dict[str, bytes] = field(default_factory=dict)  # A's queue ID -> DATA as sent
    deferred: str = ""  # queue ID of the message for the host that is down
    bounced: str = ""  # queue ID of the message B refused


def _message(sender: str, recipients: list[str], tag: str) -> bytes:
    return (
        f"From: <{sender}>\r\nTo: {', '.join(recipients)}\r\nSubject: {tag}\r\n"
        f"Message-ID: <{tag}@client.example.net>\r\n\r\nThis is message {tag}.\r\n"
    ).encode()


def _start_pair(root: Path, stub: DnsStub) -> tuple[MailsealProcess, Ports, MailsealProcess]:
    b_dir, a_dir = root / "b", root / "a"
    b_ports = make_instance(b_dir, "smtpd_pregreet_wait = 0\n", hostname="mx.b.test")
    host, port = stub.address
    a_ports = make_instance(
        a_dir,
        f"dns_servers = {host}:{port}\nsmtp_tcp_port = {b_ports.smtp}\n"
        f"mynetworks = {TRUSTED}/32\nsmtpd_pregreet_wait = 0\n"
        "local_recipient_maps = inline:{root=yes}\n"
        "smtpd_helo_restrictions = warn_if_reject reject_non_fqdn_helo_hostname\n",
        hostname="mail.example.test",
    )
    for directory in (a_dir, b_dir):
        postfix_names(directory)
    added = run_mailseal("-c", str(a_dir), "passwd", ALICE[0], stdin=ALICE[1] + "\n")
    assert added.returncode == 0, added.stderr
    b = MailsealProcess(b_dir).start()
    try:
        a = MailsealProcess(a_dir).start()
    except BaseException:
        b.stop()
        raise
    return a, a_ports, b


def _traffic(run: Run, ports: Ports) -> None:
    """The eight messages and three refused recipients the counts are made of."""
    trusted = Client(TRUSTED)
    trusted_tls = Client(TRUSTED, security=Security.STARTTLS)
    submission = Client(STRANGER, "laptop.example.net", Security.STARTTLS, ALICE)
    smtps = Client(STRANGER, "laptop.example.net", Security.IMPLICIT, ALICE)
    jobs: list[tuple[str, Client, int, str, list[str]]] = [
        ("local", trusted, ports.smtp, LOCAL, [LOCAL]),
        ("relayed", trusted_tls, ports.smtp, LOCAL, [REMOTE]),
        ("refused-by-b", trusted, ports.smtp, LOCAL, ["nobody@b.test"]),
        ("host-down", trusted_tls, ports.smtp, LOCAL, ["someone@down.test"]),
        ("submitted", submission, ports.submission, ALICE[0], [REMOTE]),
        ("smtps-two", smtps, ports.smtps, ALICE[0], [LOCAL, REMOTE]),
        ("helo-warning", Client(STRANGER, "nofqdn"), ports.smtp, CAROL, [LOCAL]),
    ]
    for tag, client, port, sender, recipients in jobs:
        data = _message(sender, recipients, tag)
        accepted, queue_id = send(client, port, sender, recipients, data)
        assert accepted == recipients and queue_id is not None, tag
        run.sent[queue_id] = data
        run.deferred = queue_id if tag == "host-down" else run.deferred
        run.bounced = queue_id if tag == "refused-by-b" else run.bounced
    # Three refused at RCPT (relay access, unknown virtual user, unknown local user),
    # then one accepted in the same transaction.
    refused = ["x@elsewhere.test", "nobody@example.test", "nobody@mail.example.test"]
    data = _message(LOCAL, [LOCAL], "after-rejects")
    accepted, queue_id = send(Client(STRANGER), ports.smtp, LOCAL, [*refused, LOCAL], data)
    assert accepted == [LOCAL] and queue_id is not None
    run.sent[queue_id] = data


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Run]:
    root = tmp_path_factory.mktemp("pflogsumm")
    with DnsStub.from_text(ZONES) as stub:
        a, ports, b = _start_pair(root, stub)
        try:
            done = Run(a, b)
            _traffic(done, ports)
            # 8 deliveries (one message has two recipients, plus the bounce), 1 bounce,
            # 1 deferral; every file but the deferred one removed; 3 deliveries at B.
            a.wait_log(r"\]: \w+: to=<.*, status=sent ", count=8, timeout=30)
            a.wait_log(r", status=bounced ", timeout=30)
            a.wait_log(r", status=deferred ", timeout=30)
            a.wait_log(r"\]: \w+: removed$", count=8, timeout=30)
            b.wait_log(r"\]: \w+: removed$", count=3, timeout=30)
            a.stop()  # A's cached sessions to B end now: B logs their disconnects
            connects = len(re.findall(r": connect from ", b.maillog()))
            b.wait_log(r": disconnect from ", count=connects, timeout=30)
            b.stop()
            yield done
        finally:
            a.stop()
            b.stop()


# -- reading pflogsumm's report ------------------------------------------------------------

_COUNT_LINE = re.compile(r"^\s*(\d+)([km]?)\s{2,}([a-z][a-z /.]*?)(?:\s+\(.*\))?\s*$")


def pflogsumm(log: Path) -> str:
    """The whole report over the whole file (no -d), with smtpd statistics."""
    return run_tool("pflogsumm", "--smtpd-stats", "--verbose-msg-detail", str(log))


def grand_totals(report: str) -> dict[str, int]:
    """``label -> count`` from the Grand Totals and smtpd sections; ``deferrals`` too."""
    section = report.split("Grand Totals", 1)[1].split("Per-Hour Traffic Summary", 1)[0]
    totals: dict[str, int] = {}
    for line in section.splitlines():
        if (found := _COUNT_LINE.match(line)) is not None:
            assert found.group(2) == "", line  # no k/m rounding at these sizes
            totals[found.group(3)] = int(found.group(1))
    deferrals = re.search(r"deferred\s+\((\d+)\s+deferrals\)", section)
    totals["deferrals"] = int(deferrals.group(1)) if deferrals else 0
    return totals


def section(report: str, title: str) -> str:
    """The text of one report section (up to the next blank-line-separated title)."""
    start = report.index(title)
    rest = report[start:].split("\n\n", 1)
    return rest[0]


def delivery_by_domain(report: str) -> dict[str, tuple[int, int, int]]:
    """``domain -> (sent count, bytes, defers)`` from "Host/Domain Summary: Message Delivery"."""
    rows = re.findall(
        r"^\s+(\d+)\s+(\d+)\s+(\d+)\s+\S+ \w\s+\S+ \w\s+(\S+)$",
        section(report, "Host/Domain Summary: Message Delivery"),
        re.MULTILINE,
    )
    return {domain: (int(sent), int(size), int(defers)) for sent, size, defers, domain in rows}


# -- what the test knows independently of the log -------------------------------------------


def _drop_header_fields(raw: bytes, names: tuple[str, ...], received: int) -> bytes:
    """``raw`` without its leading ``names`` fields, then without ``received`` Received: fields."""
    lines = raw.split(b"\n")
    while lines:
        name = lines[0].split(b":", 1)[0].decode(errors="replace").lower()
        if name in names or (name == "received" and received > 0):
            received -= name == "received"
            del lines[0]
            while lines and lines[0][:1] in (b" ", b"\t"):
                del lines[0]  # the field's continuation lines
            continue
        break
    return b"\n".join(lines)


def _crlf(content: bytes) -> bytes:
    return content.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")


def _first_queue_id(content: bytes) -> str | None:
    """The ID in the topmost Received: header (``with ESMTP id QID``), if there is one."""
    found = re.match(rb"Received: (?:[^\r\n]|\r\n[ \t])*?\bid (\w+)", content)
    return found.group(1).decode() if found else None


def _bounced_original(bounce: bytes) -> bytes:
    """The message/rfc822 part of a bounce: the returned message, without its Return-Path."""
    boundary = re.search(rb'boundary="([^"]+)"', bounce)
    assert boundary is not None
    part = bounce.split(b"Content-Type: message/rfc822\n\n", 1)[1]
    part = part.split(b"\n--" + boundary.group(1) + b"--", 1)[0]
    return _drop_header_fields(part, ("return-path",), 0)


def contents(run: Run) -> dict[str, bytes]:
    """A's queue ID -> the message content as A queued it, read back from where it went."""
    found: dict[str, bytes] = {}
    for path in run.a.delivered():  # A's own Maildir: its Received: header is on top
        content = _crlf(_drop_header_fields(path.read_bytes(), _DELIVERY_HEADERS, 0))
        queue_id = _first_queue_id(content)
        if queue_id is None:  # the bounce: no Received: (made by A itself)
            found["bounce"] = content
            found["returned"] = _crlf(_bounced_original(content.replace(b"\r\n", b"\n")))
        else:
            assert found.setdefault(queue_id, content) == content
    for path in run.b.delivered(domain="b.test"):  # B's copies: B's Received: first
        content = _crlf(_drop_header_fields(path.read_bytes(), _DELIVERY_HEADERS, 1))
        queue_id = _first_queue_id(content)
        assert queue_id is not None
        assert found.setdefault(queue_id, content) == content  # as A queued it
    found[run.bounced] = found.pop("returned")
    store = QueueStore(run.a.directory / "queue")
    found[run.deferred] = store.read(run.deferred, QueueName.DEFERRED).content
    return found


def logged_sizes(log: str) -> dict[str, tuple[str, int]]:
    """``queue ID -> (sender, size)`` from the qmgr ``from=<s>, size=N`` lines."""
    rows = re.findall(r"qmgr\[\d+\]: (\w+): from=<([^>]*)>, size=(\d+), ", log)
    return {queue_id: (sender, int(size)) for queue_id, sender, size in rows}


# -- the tests ----------------------------------------------------------------------------


def test_size_is_the_content_as_received(run: Run) -> None:
    log = run.a.maillog()
    copies = contents(run)
    sizes = logged_sizes(log)
    bounce_id = re.findall(r"sender non-delivery notification: (\w+)", log)
    assert len(bounce_id) == 1 and run.sent.keys() | bounce_id == sizes.keys()
    copies[bounce_id[0]] = copies.pop("bounce")
    for queue_id, data in run.sent.items():
        content = copies[queue_id]
        assert content.startswith(b"Received: from ") and content.endswith(data), queue_id
        assert sizes[queue_id][1] == len(content), queue_id
    assert sizes[bounce_id[0]] == ("", len(copies[bounce_id[0]]))


def test_grand_totals_of_the_relaying_instance(run: Run) -> None:
    log = run.a.maillog()
    sizes = {queue_id: size for queue_id, (_, size) in logged_sizes(log).items()}
    received = sum(sizes[queue_id] for queue_id in run.sent)
    # Each recipient delivered counts its message's size once (pflogsumm sums per line).
    sent_ids = re.findall(r"\]: (\w+): to=<[^>]*>, .*, status=sent ", log)
    report = pflogsumm(run.a.directory / "log" / "maillog")
    totals = grand_totals(report)
    totals.pop("avg. connect time")  # seconds: depends on the machine
    assert totals == {
        "received": 8,
        "delivered": 8,  # 4 local + 3 at B + the bounce, back to its sender
        "forwarded": 0,
        "deferred": 1,
        "deferrals": 1,
        "bounced": 1,
        "rejected": 3,
        "reject warnings": 1,
        "held": 0,
        "discarded": 0,
        "bytes received": received,
        "bytes delivered": sum(sizes[queue_id] for queue_id in sent_ids),
        "senders": 3,  # postmaster@example.test, alice@example.test, carol@client.example.net
        "sending hosts/domains": 2,
        "recipients": 2,  # postmaster@example.test, postmaster@b.test
        "recipient hosts/domains": 2,
        "connections": 8,  # one smtpd session per transaction, each paired by its [N]
        "hosts/domains": 2,  # unknown[127.0.0.2] and localhost[127.0.0.1]
    }, report
    assert len(sent_ids) == 8
    assert "Messages with no size data" not in report  # every delivery found its from= line
    # TLS: STARTTLS twice on port 25, on submission, and implicit TLS on smtps.
    assert len(re.findall(r"TLS connection established from ", log)) == 4
    assert re.search(r"postfix/smtp\[\d+\]: \w+ TLS connection established to mx\.b\.test", log)


def test_per_domain_delivery_and_detail_sections(run: Run) -> None:
    log = run.a.maillog()
    sizes = {queue_id: size for queue_id, (_, size) in logged_sizes(log).items()}
    report = pflogsumm(run.a.directory / "log" / "maillog")
    by_domain: Counter[str] = Counter()
    for queue_id, domain in re.findall(r"\]: (\w+): to=<[^@>]*@([^>]*)>, .*, status=sent ", log):
        by_domain[domain] += sizes[queue_id]
    assert delivery_by_domain(report) == {
        "example.test": (5, by_domain["example.test"], 0),
        "b.test": (3, by_domain["b.test"], 0),
        "down.test": (0, 0, 1),
    }
    senders = section(report, "Senders by message count")
    assert re.search(r"^\s+5\s+postmaster@example\.test$", senders, re.MULTILINE)
    assert re.search(r"^\s+2\s+alice@example\.test$", senders, re.MULTILINE)
    assert re.search(r"^\s+1\s+carol@client\.example\.net$", senders, re.MULTILINE)
    rejects = section(report, "message reject detail")
    assert "<x@elsewhere.test>: Relay access denied" in rejects
    assert "User unknown in virtual mailbox table" in rejects
    assert "User unknown in local recipient table" in rejects
    warnings = section(report, "message reject warning detail")
    assert "Helo command rejected: need fully-qualified hostname" in warnings
    assert "Connection refused" in section(report, "message deferral detail")
    assert "User unknown in virtual mailbox table" in section(report, "message bounce detail")
    assert "Warnings: none" in report and "Fatal Errors: none" in report


def test_grand_totals_of_the_receiving_instance(run: Run) -> None:
    log = run.b.maillog()
    sizes = {queue_id: size for queue_id, (_, size) in logged_sizes(log).items()}
    totals = grand_totals(pflogsumm(run.b.directory / "log" / "maillog"))
    connects = len(re.findall(r": connect from localhost\[127\.0\.0\.1\]$", log, re.MULTILINE))
    assert connects >= 1
    assert {k: totals[k] for k in ("received", "delivered", "deferred", "bounced", "rejected")} == {
        "received": 3,  # the relayed, submitted and smtps messages; B refused nobody@b.test
        "delivered": 3,
        "deferred": 0,
        "bounced": 0,
        "rejected": 1,
    }
    assert totals["bytes received"] == totals["bytes delivered"] == sum(sizes.values())
    assert totals["connections"] == connects  # every session of A's client, paired


# -- lines from the formatter, straight to pflogsumm ------------------------------------


def _line(second: int, program: str, number: int, message: str) -> str:
    return f"Jan  5 10:00:{second:02d} mail postfix/{program}[{number}]: {message}"


def test_formatter_fields_that_runs_rarely_show(tmp_path: Path) -> None:
    times = fmt.DeliveryTimes(1.2, 0.1, 0, 0.5, 0.6)

    def sent(recipient: str, original: str, conn_use: int) -> str:
        return fmt.recipient_status(
            "4A1",
            recipient,
            original=original,
            relay="mx.b.test[192.0.2.1]:25",
            times=times,
            dsn="2.0.0",
            status="sent",
            reason="250 2.0.0 Ok: queued as 1A",
            conn_use=conn_use,
        )

    client = ("client.example.net", "192.0.2.9")
    lines = [
        _line(0, "smtpd", 7, fmt.connect_from(*client)),
        _line(1, "smtpd", 7, fmt.client("4A1", *client)),
        _line(2, "qmgr", 1, fmt.qmgr_from("4A1", "s@example.net", 1234, 3)),
        # A new connection, a reused one (conn_use=2), an alias expansion (orig_to=).
        _line(3, "smtp", 8, sent("a@b.test", "a@b.test", 1)),
        _line(3, "smtp", 8, sent("b@b.test", "b@b.test", 2)),
        _line(3, "smtp", 8, sent("c@b.test", "alias@example.net", 3)),
        _line(4, "qmgr", 1, fmt.queue_removed("4A1")),
        _line(5, "smtpd", 7, fmt.disconnect_from(*client, [("ehlo", 1, 1), ("mail", 1, 1)])),
    ]
    assert ", relay=mx.b.test[192.0.2.1]:25, delay=1.2, " in lines[3]
    assert ", relay=mx.b.test[192.0.2.1]:25, conn_use=2, delay=1.2, " in lines[4]
    assert ", orig_to=<alias@example.net>, relay=" in lines[5]
    log = tmp_path / "maillog"
    log.write_text("\n".join(lines) + "\n", encoding="utf-8")
    report = pflogsumm(log)
    totals = grand_totals(report)
    assert (totals["received"], totals["delivered"], totals["connections"]) == (1, 3, 1)
    assert (totals["bytes received"], totals["bytes delivered"]) == (1234, 3 * 1234)
    assert delivery_by_domain(report) == {"b.test": (3, 3 * 1234, 0)}
