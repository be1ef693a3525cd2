"""Large messages over real sockets: spooled to disk as they arrive, delivered from the file."""

from __future__ import annotations

import os
import signal
import time

from raw_smtp import Dialogue

from mailseal.testing.server import Instance, Servers

RCPT = "postmaster@example.test"
LINE = b"0123456789" * 7 + b"abcdef\r\n"


def _incoming(instance: Instance) -> list[str]:
    return os.listdir(instance.directory / "queue" / "incoming")


def _wait_incoming_empty(instance: Instance, timeout: float = 10.0) -> list[str]:
    deadline = time.monotonic() + timeout
    while (left := _incoming(instance)) and time.monotonic() < deadline:
        time.sleep(0.05)
    return left


def _open_data(smtp: Dialogue) -> None:
    smtp.reply()
    smtp.command("EHLO client.example.net")
    assert smtp.command("MAIL FROM:<s@client.example.net>").code == 250
    assert smtp.command(f"RCPT TO:<{RCPT}>").code == 250
    assert smtp.command("DATA").code == 354


def test_a_5_mb_message_is_spooled_queued_and_delivered_intact(servers: Servers) -> None:
    instance = servers.start("message_size_limit = 20000000")
    body = b"Subject: large\r\nMessage-ID: <big@client.example.net>\r\n\r\n"
    body += b"".join(b".%06d " % n + LINE for n in range(5 * 2**20 // len(LINE)))
    wire = body.replace(b"\r\n.", b"\r\n..")
    with Dialogue(instance.ports.smtp) as smtp:
        _open_data(smtp)
        for start in range(0, len(wire), 1 << 20):
            smtp.send(wire[start : start + (1 << 20)])
        smtp.send(b".\r\n")
        assert smtp.reply().code == 250
        smtp.command("QUIT")
    (delivered,) = instance.process.wait_delivered(1, timeout=30)
    text = delivered.read_bytes()
    assert text.endswith(body.replace(b"\r\n", b"\n")[-200_000:])
    assert text.count(b"\n.0") == 5 * 2**20 // len(LINE)  # unstuffed once, every line
    assert b"Message-ID: <big@client.example.net>" in text
    instance.process.wait_log(r"mailseal/cleanup\[\d+\]: \w+: message-id=<big@client")
    assert _wait_incoming_empty(instance) == []


def test_an_abandoned_large_message_leaves_no_spool(servers: Servers) -> None:
    instance = servers.start("message_size_limit = 20000000")
    with Dialogue(instance.ports.smtp) as smtp:
        _open_data(smtp)
        smtp.send(b"Subject: gone\r\n\r\n" + LINE * 20000)  # 1.6 MB: spilled
        deadline = time.monotonic() + 10
        while not any("spool" in n for n in _incoming(instance)):
            assert time.monotonic() < deadline, "the content never reached a spool file"
            time.sleep(0.05)
    instance.process.wait_log(r"lost connection after DATA .*from \S+\[127\.0\.0\.1\]")
    assert _wait_incoming_empty(instance) == []
    assert instance.process.delivered() == []


def test_a_large_message_over_the_limit_is_refused_and_its_spool_removed(
    servers: Servers,
) -> None:
    instance = servers.start("message_size_limit = 1000000")
    with Dialogue(instance.ports.smtp) as smtp:
        _open_data(smtp)
        smtp.send(b"Subject: too big\r\n\r\n" + LINE * 20000)
        smtp.send(b".\r\n")
        assert smtp.reply().text == "552 5.3.4 Error: message file too big"
        assert _wait_incoming_empty(instance) == []
        assert smtp.command("NOOP").code == 250
    assert instance.process.delivered() == []


def test_big_messages_through_bdat(servers: Servers) -> None:
    instance = servers.start("message_size_limit = 20000000")
    chunk = b"Subject: chunks\r\n\r\n" + LINE * 10000
    with Dialogue(instance.ports.smtp) as smtp:
        smtp.reply()
        smtp.command("EHLO client.example.net")
        smtp.command("MAIL FROM:<s@client.example.net>")
        smtp.command(f"RCPT TO:<{RCPT}>")
        for _ in range(3):
            smtp.send(b"BDAT %d\r\n" % len(chunk) + chunk)
            assert smtp.reply().code == 250
        last = smtp.command("BDAT 0 LAST")
        assert last.code == 250
        assert f"{len(chunk) * 3} bytes queued" in last.text
    (delivered,) = instance.process.wait_delivered(1, timeout=30)
    assert delivered.read_bytes().endswith(chunk.replace(b"\r\n", b"\n") * 3)


def test_a_worker_killed_mid_data_leaves_no_spool(servers: Servers) -> None:
    instance = servers.start("message_size_limit = 20000000\nsmtpd_worker_processes = 2")
    with Dialogue(instance.ports.smtp) as smtp:
        _open_data(smtp)
        smtp.send(b"Subject: doomed\r\n\r\n" + LINE * 20000)
        deadline = time.monotonic() + 10
        while not (spools := [n for n in _incoming(instance) if "spool" in n]):
            assert time.monotonic() < deadline, "the content never reached a spool file"
            time.sleep(0.05)
        worker = int(spools[0].split("-")[2])  # tmp-spool-PID-QUEUEID
        assert worker != instance.process.pid
        os.kill(worker, signal.SIGKILL)
        instance.process.wait_log(rf"pid {worker} exit status")
    assert _wait_incoming_empty(instance) == []
    assert instance.process.delivered() == []
