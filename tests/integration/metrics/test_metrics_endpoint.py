"""/metrics and the JSON log of a real running instance, after mail the test sent itself.

One instance with ``metrics_listen_address`` and ``maillog_json_file`` on: mail over
plain SMTP and STARTTLS, a rejected recipient, a deferred message (the relayhost is a
closed loopback port), a failed and a successful AUTH on submission. The scrape must
show exactly those events, with the labels the test knows; the queue gauge sees the
deferred file; the certificate gauge follows a new certificate after a reload; and
every text log line has its JSON twin.
"""

import collections
import datetime as dt
import json
import re
import signal
import smtplib
import ssl
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
import trustme
from cryptography import x509
from prometheus_client.parser import text_string_to_metric_families

from mailseal.testing.process import run_mailseal
from mailseal.testing.server import Instance, MailsealProcess, Servers, free_port, make_instance

USER, PASSWORD = "alice@example.test", "correct horse battery staple"
LOCAL = "postmaster@example.test"
FOREIGN = "friend@far-away.example"
TEXT_LINE = re.compile(r"^\w{3} [ \d]\d \d\d:\d\d:\d\d \S+ (\S+)\[(\d+)\]: (.*)$")

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def scrape(port: int) -> Samples:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as response:
        assert response.status == 200
        assert response.headers["Content-Type"].startswith("text/plain; version=0.0.4")
        text = response.read().decode()
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def value(samples: Samples, name: str, **labels: str) -> float | None:
    return samples.get((name, frozenset(labels.items())))


def eventually(port: int, check: Callable[[Samples], bool], timeout: float = 15.0) -> Samples:
    deadline = time.monotonic() + timeout
    while True:
        samples = scrape(port)
        if check(samples) or time.monotonic() > deadline:
            return samples
        time.sleep(0.1)


@dataclass
class Metered:
    instance: Instance
    port: int
    json_path: Path


@pytest.fixture
def metered(servers: Servers) -> Metered:
    port = free_port()
    json_path = servers.root / "mailseal" / "log" / "maillog.json"
    instance = servers.start(
        f"metrics_listen_address = 127.0.0.1:{port}\n"
        f"maillog_json_file = {json_path}\n"
        "relayhost = [127.0.0.1]:9\n"  # closed: outbound mail is deferred at once
    )
    result = run_mailseal("-c", str(instance.directory), "passwd", USER, stdin=PASSWORD + "\n")
    assert result.returncode == 0, result.stderr
    return Metered(instance, port, json_path)


def no_verify() -> ssl.SSLContext:
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    return context


def send_traffic(instance: Instance) -> tuple[str, ...]:
    """The test's traffic; returns the TLS cipher (name, protocol, bits) of the STARTTLS session."""
    body = b"Subject: metered\r\n\r\nhello\r\n"
    with smtplib.SMTP("127.0.0.1", instance.ports.smtp, timeout=10) as plain:
        assert plain.sendmail("a@client.example", [LOCAL], body) == {}
    with smtplib.SMTP("127.0.0.1", instance.ports.smtp, timeout=10) as secure:
        secure.starttls(context=no_verify())
        cipher = secure.sock.cipher()  # type: ignore[union-attr]
        assert secure.sendmail("a@client.example", [FOREIGN], body) == {}
    with smtplib.SMTP("127.0.0.1", instance.ports.smtp, timeout=10) as rejected:
        rejected.ehlo()
        rejected.mail("a@client.example")
        code, _ = rejected.rcpt("nobody@example.test")
        assert code == 550
    with smtplib.SMTP("127.0.0.1", instance.ports.submission, timeout=10) as submit:
        submit.starttls(context=no_verify())
        submit.ehlo()
        submit.user, submit.password = USER, "wrong password"
        with pytest.raises(smtplib.SMTPAuthenticationError):
            submit.auth("PLAIN", submit.auth_plain)
        submit.password = PASSWORD
        assert submit.auth("PLAIN", submit.auth_plain)[0] == 235
        assert submit.sendmail(USER, [LOCAL], body) == {}
    return (str(cipher[0]), str(cipher[1]), str(cipher[2]))


def test_metrics_and_json_log_of_real_traffic(metered: Metered) -> None:
    """One instance (starting one is slow), both views of the same traffic."""
    tls = send_traffic(metered.instance)
    log = metered.instance.process
    log.wait_delivered(2)
    log.wait_log(r"smtp\[\d+\]: \S+: to=<friend@far-away\.example>, .*status=deferred")
    log.wait_log(r"disconnect from", count=4)
    check_scrape(metered, tls)
    check_reload(metered)
    log.stop()  # nothing more is logged: the two files are complete
    check_json(metered)


def check_scrape(metered: Metered, tls: tuple[str, ...]) -> None:
    cipher, protocol, bits = tls
    port = metered.port
    samples = eventually(port, lambda s: value(s, "mailseal_queue_messages", queue="deferred") == 1)

    def v(name: str, **labels: str) -> float | None:
        return value(samples, f"mailseal_{name}", **labels)

    assert v("up") == 1
    assert v("smtpd_connects_total", service="smtpd") == 3
    assert v("smtpd_connects_total", service="submission/smtpd") == 1
    assert v("smtpd_sessions_total", service="smtpd", tls="none") == 2
    assert v("smtpd_sessions_total", service="smtpd", tls="Anonymous") == 1
    assert v("smtpd_sessions_total", service="submission/smtpd", tls="Anonymous") == 1
    trust = {"trust": "Anonymous", "protocol": protocol, "cipher": cipher}
    assert v("smtpd_tls_connections_total", service="smtpd", secret_bits=bits,
             algorithm_bits=bits, **trust) == 1  # fmt: skip
    assert v("smtpd_messages_rejected_total", service="smtpd", stage="RCPT", code="550") == 1
    svc = "submission/smtpd"
    assert v("smtpd_sasl_authentication_failures_total", service=svc, mechanism="PLAIN") == 1
    assert v("smtpd_sasl_authentication_successes_total", service=svc, mechanism="PLAIN") == 1
    assert v("smtpd_messages_processed_total", service="smtpd", sasl_method="") == 2
    assert v("smtpd_messages_processed_total", service=svc, sasl_method="PLAIN") == 1
    assert v("delivery_recipients_total", transport="virtual", status="sent") == 2
    assert v("delivery_recipients_total", transport="smtp", status="deferred") == 1
    assert v("delivery_delay_seconds_count", transport="smtp", status="deferred") == 1
    assert v("qmgr_messages_inserted_recipients_count") == 3
    assert v("queue_messages", queue="deferred") == 1
    assert v("queue_messages", queue="active") == 0


def check_reload(metered: Metered) -> None:
    instance, port, log = metered.instance, metered.port, metered.instance.process
    samples = scrape(port)

    def v(name: str, **labels: str) -> float | None:
        return value(samples, f"mailseal_{name}", **labels)

    # The certificate gauge is the served certificate's notAfter; a reload re-reads it.
    cert_file = str(instance.directory / "tls" / "server.crt")
    served = x509.load_pem_x509_certificate(Path(cert_file).read_bytes())
    expiry = "tls_certificate_expiry_timestamp_seconds"
    for service in (str(instance.ports.smtp), str(instance.ports.submission)):
        assert v(expiry, service=service, file=cert_file) == served.not_valid_after_utc.timestamp()
    renewed = dt.datetime(2033, 3, 3, 3, 3, 3, tzinfo=dt.UTC)
    leaf = trustme.CA().issue_cert("mail.example.test", not_after=renewed)
    leaf.private_key_pem.write_to_path(str(instance.directory / "tls" / "server.key"))
    leaf.cert_chain_pems[0].write_to_path(cert_file)
    assert log.process is not None
    log.process.send_signal(signal.SIGHUP)  # by PID
    log.wait_log(r"master\[\d+\]: reload -- version")
    after = scrape(port)
    got = value(after, f"mailseal_{expiry}", service=str(instance.ports.smtp), file=cert_file)
    assert got == renewed.timestamp()
    assert value(after, "mailseal_smtpd_connects_total", service="smtpd") == 3  # not reset


def check_json(metered: Metered) -> None:
    text = metered.instance.process.maillog().splitlines()
    # The master starts its companions before it logs anything: every line has a twin
    # ("daemon started" included). Worker threads may interleave the two files' order.
    expected: collections.Counter[tuple[str, int, str]] = collections.Counter()
    for line in text:
        match = TEXT_LINE.match(line)
        assert match is not None, line
        expected[match[1], int(match[2]), match[3]] += 1
    records = [json.loads(line) for line in metered.json_path.read_text().splitlines()]
    got = collections.Counter((r["program"], r["pid"], r["message"]) for r in records)
    assert got == expected
    assert {r["severity"] for r in records} <= {"info", "warning", "error"}
    assert all(dt.datetime.fromisoformat(r["time"]).utcoffset() is not None for r in records)

    deferred = next(r for r in records if r.get("status") == "deferred")
    assert deferred["program"] == "mailseal/smtp"
    assert deferred["to"] == FOREIGN
    assert deferred["relay"] == "none"
    assert deferred["dsn"] == "4.4.1"
    assert deferred["status_detail"] == "connect to 127.0.0.1[127.0.0.1]:9: Connection refused"
    assert isinstance(deferred["delay"], float)
    assert re.fullmatch(r"[\d.]+/[\d.]+/[\d.]+/[\d.]+", deferred["delays"])
    sent = [r for r in records if r.get("status") == "sent"]
    assert [(r["program"], r["to"], r["relay"], r["dsn"]) for r in sent] == [
        ("mailseal/virtual", LOCAL, "virtual", "2.0.0")
    ] * 2
    assert all(r["queue_id"] and r["status_detail"] == "delivered to maildir" for r in sent)
    reject = next(r for r in records if r.get("action") == "reject")
    assert (reject["stage"], reject["reject_code"], reject["to"]) == (
        "RCPT",
        550,
        "nobody@example.test",
    )
    assert reject["client_address"] == "127.0.0.1"
    auth = next(r for r in records if r.get("sasl_username") == USER and "queue_id" in r)
    assert auth["sasl_method"] == "PLAIN"
    assert (metered.json_path.stat().st_mode & 0o777) & ~0o640 == 0


def test_other_paths_and_methods(metered: Metered) -> None:
    base = f"http://127.0.0.1:{metered.port}"
    for path, code in (("/", 404), ("/metrics/x", 404), ("/favicon.ico", 404)):
        with pytest.raises(urllib.error.HTTPError) as error:
            urllib.request.urlopen(base + path, timeout=10)
        assert error.value.code == code
    post = urllib.request.Request(base + "/metrics", data=b"x", method="POST")
    with pytest.raises(urllib.error.HTTPError) as error:
        urllib.request.urlopen(post, timeout=10)
    assert error.value.code == 405
    assert error.value.headers["Allow"] == "GET, HEAD"
    head = urllib.request.Request(base + "/metrics?x=1", method="HEAD")
    with urllib.request.urlopen(head, timeout=10) as response:
        assert response.status == 200
        assert response.read() == b""


def listening_ports(pid: int) -> set[int]:
    """TCP ports in LISTEN state held by the process ``pid`` (from /proc)."""
    inodes = set()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        try:
            target = fd.readlink()
        except OSError:
            continue
        if str(target).startswith("socket:["):
            inodes.add(str(target)[8:-1])
    ports = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for row in Path(table).read_text().splitlines()[1:]:
            fields = row.split()
            if fields[3] == "0A" and fields[9] in inodes:
                ports.add(int(fields[1].rsplit(":", 1)[1], 16))
    return ports


def test_off_by_default(server: Instance) -> None:
    assert server.process.process is not None
    ports = server.ports
    assert listening_ports(server.process.process.pid) == {
        ports.smtp,
        ports.submission,
        ports.smtps,
    }
    assert not list((server.directory / "log").glob("*.json"))


def test_a_bad_address_stops_the_start(tmp_path: Path) -> None:
    directory = tmp_path / "bad"
    make_instance(directory, "metrics_listen_address = 127.0.0.1\n")
    process = MailsealProcess(directory)
    with pytest.raises(RuntimeError) as error:
        process.start()
    process.stop()
    assert "cannot start: metrics_listen_address = 127.0.0.1: expected host:port" in str(
        error.value
    )
