"""Receiving mail over real sockets: smtplib with and without STARTTLS, Maildir delivery, logs."""

import email
import re
import smtplib
import ssl
import uuid

import pytest
from raw_smtp import Dialogue, client_context

from mailseal.testing.server import HOSTNAME, Instance, Servers

RCPT = "postmaster@example.test"


def message(subject: str = "hello") -> tuple[str, bytes]:
    msgid = f"<{uuid.uuid4().hex}@client.example.net>"
    body = (
        f"From: sender@client.example.net\r\nTo: {RCPT}\r\nSubject: {subject}\r\n"
        f"Message-ID: {msgid}\r\n\r\nbody line\r\n.leading dot\r\n"
    )
    return msgid, body.encode()


def test_plain_smtp_delivers_to_maildir_with_postfix_logs(server: Instance) -> None:
    msgid, body = message()
    with smtplib.SMTP("127.0.0.1", server.ports.smtp, timeout=10) as client:
        code, banner = client.ehlo("client.example.net")
        assert code == 250
        features = banner.decode().splitlines()
        assert features[0] == HOSTNAME
        for keyword in (
            "PIPELINING",
            "STARTTLS",
            "ENHANCEDSTATUSCODES",
            "8BITMIME",
            "DSN",
            "SMTPUTF8",
            "CHUNKING",
        ):
            assert keyword in features
        assert any(f.startswith("SIZE ") for f in features)
        refused = client.sendmail("sender@client.example.net", [RCPT], body)
        assert refused == {}
    files = server.process.wait_delivered(1)
    delivered = email.message_from_bytes(files[0].read_bytes())
    assert delivered["Message-ID"] == msgid
    assert delivered["Return-Path"] == "<sender@client.example.net>"
    assert delivered["Delivered-To"] == RCPT
    assert "with ESMTP id" in delivered["Received"]
    assert b"\r\n" not in files[0].read_bytes()  # Maildir files use LF
    assert b"\n.leading dot\n" in files[0].read_bytes()  # dot-unstuffed
    log = server.process
    log.wait_log(r"mailseal/smtpd\[\d+\]: connect from \S+\[127\.0\.0\.1\]")
    queue_id = log.wait_log(r": client=\S+\[127\.0\.0\.1\]")[0].split(": ")[1]
    log.wait_log(rf"mailseal/cleanup\[\d+\]: {queue_id}: message-id={msgid}")
    log.wait_log(
        rf"mailseal/qmgr\[\d+\]: {queue_id}: from=<sender@client\.example\.net>, "
        r"size=\d+, nrcpt=1 \(queue active\)"
    )
    log.wait_log(
        rf"mailseal/virtual\[\d+\]: {queue_id}: to=<{RCPT}>, relay=virtual, "
        r"delay=[\d.]+, delays=[\d./]+, dsn=2\.0\.0, status=sent \(delivered to maildir\)"
    )
    log.wait_log(rf"mailseal/qmgr\[\d+\]: {queue_id}: removed")
    log.wait_log(
        r"disconnect from \S+\[127\.0\.0\.1\] ehlo=1 mail=1 rcpt=1 data=1 quit=1 "
        r"commands=5"
    )


def test_starttls_with_verified_certificate_and_tls_in_received(server: Instance) -> None:
    _, body = message("over tls")
    context = ssl.create_default_context(cafile=server.cafile)
    with smtplib.SMTP("127.0.0.1", server.ports.smtp, timeout=10) as client:
        client.ehlo("client.example.net")
        client._host = HOSTNAME  # type: ignore[attr-defined]  # the name to verify
        client.starttls(context=context)
        _, features = client.ehlo("client.example.net")
        assert b"STARTTLS" not in features  # not offered again inside TLS
        client.sendmail("sender@client.example.net", [RCPT], body)
    files = server.process.wait_delivered(1)
    delivered = email.message_from_bytes(files[0].read_bytes())
    assert "with ESMTPS id" in delivered["Received"]
    server.process.wait_log(
        r"Anonymous TLS connection established from \S+\[127\.0\.0\.1\]: "
        r"TLSv1\.[23] with cipher \S+ \(\d+/\d+ bits\)"
    )
    server.process.wait_log(r"disconnect from .* ehlo=2 starttls=1 mail=1 rcpt=1 data=1 quit=1")


def test_received_header_tls_clause_postfix_style(servers: Servers) -> None:
    instance = servers.start("smtpd_tls_received_header = yes")
    _, body = message()
    with smtplib.SMTP("127.0.0.1", instance.ports.smtp, timeout=10) as client:
        client.starttls(context=client_context())
        client.sendmail("s@client.example.net", [RCPT], body)
    delivered = email.message_from_bytes(instance.process.wait_delivered(1)[0].read_bytes())
    received = " ".join(delivered["Received"].split())
    assert "(using TLSv1.3 with cipher TLS_" in received


def test_relay_denied_for_clients_outside_mynetworks(servers: Servers) -> None:
    instance = servers.start(
        "mynetworks = 192.0.2.0/24\n"
        "smtpd_relay_restrictions = permit_mynetworks, reject_unauth_destination"
    )
    with Dialogue(instance.ports.smtp) as smtp:
        assert smtp.reply().code == 220
        assert smtp.command("EHLO client.example.net").code == 250
        assert smtp.command("MAIL FROM:<s@client.example.net>").text == "250 2.1.0 Ok"
        denied = smtp.command("RCPT TO:<victim@elsewhere.test>")
        assert denied.text == "554 5.7.1 <victim@elsewhere.test>: Relay access denied"
        unknown = smtp.command("RCPT TO:<nobody@example.test>")
        assert unknown.text == (
            "550 5.1.1 <nobody@example.test>: Recipient address rejected: "
            "User unknown in virtual mailbox table"
        )
        assert smtp.command("DATA").text == "554 5.5.1 Error: no valid recipients"
        assert smtp.command("QUIT").code == 221
    instance.process.wait_log(
        r"NOQUEUE: reject: RCPT from \S+\[127\.0\.0\.1\]: 554 5\.7\.1 <victim@elsewhere\.test>: "
        r"Relay access denied; from=<s@client\.example\.net> to=<victim@elsewhere\.test> "
        r"proto=ESMTP helo=<client\.example\.net>"
    )
    instance.process.wait_log(r"disconnect from .* rcpt=0/2 data=0/1 quit=1 commands=3/6")


def test_default_relay_restrictions_defer_strangers(servers: Servers) -> None:
    # compatibility_level 3.11: defer_unauth_destination, so a misconfiguration
    # costs a retry, not a bounce (Postfix's default).
    instance = servers.start("mynetworks = 192.0.2.0/24")
    with Dialogue(instance.ports.smtp) as smtp:
        smtp.reply()
        smtp.command("EHLO client.example.net")
        smtp.command("MAIL FROM:<s@client.example.net>")
        denied = smtp.command("RCPT TO:<victim@elsewhere.test>")
        assert denied.text == "454 4.7.1 <victim@elsewhere.test>: Relay access denied"


def test_bdat_chunks_are_delivered(server: Instance) -> None:
    msgid, body = message("chunked")
    first, second = body[:40], body[40:]
    with Dialogue(server.ports.smtp) as smtp:
        smtp.reply()
        smtp.command("EHLO client.example.net")
        smtp.command("MAIL FROM:<s@client.example.net>")
        smtp.command(f"RCPT TO:<{RCPT}>")
        smtp.send(f"BDAT {len(first)}\r\n".encode() + first)
        assert smtp.reply().code == 250
        smtp.send(f"BDAT {len(second)} LAST\r\n".encode() + second)
        assert re.fullmatch(r"250 2\.0\.0 Ok: \d+ bytes queued as [0-9A-F]+", smtp.reply().text)
    delivered = email.message_from_bytes(server.process.wait_delivered(1)[0].read_bytes())
    assert delivered["Message-ID"] == msgid


def test_start_stop_status_reload_commands(server: Instance) -> None:
    from mailseal.testing.process import run_mailseal

    status = run_mailseal("-c", str(server.directory), "status")
    assert status.returncode == 0
    assert f"PID: {server.process.pid}" in status.stderr
    assert run_mailseal("-c", str(server.directory), "reload").returncode == 0
    server.process.wait_log(r"mailseal/master\[\d+\]: reload -- version \S+, configuration ")
    # Still serving after the reload.
    with Dialogue(server.ports.smtp) as smtp:
        assert smtp.reply().code == 220
    assert run_mailseal("-c", str(server.directory), "stop").returncode == 0
    assert server.process.process is not None
    assert server.process.process.wait(20) == 0
    server.process.wait_log(r"terminating on signal 15")
    assert run_mailseal("-c", str(server.directory), "status").returncode == 1


def test_background_start_and_stop(servers: Servers, tmp_path: object) -> None:
    from pathlib import Path

    from mailseal.testing.process import run_mailseal
    from mailseal.testing.server import make_instance

    directory = Path(str(tmp_path)) / "bg"
    ports = make_instance(directory)
    started = run_mailseal("-c", str(directory), "start")
    try:
        assert started.returncode == 0, started.stderr
        with Dialogue(ports.smtp) as smtp:
            assert smtp.reply().text.startswith(f"220 {HOSTNAME} ESMTP")
        again = run_mailseal("-c", str(directory), "start")
        assert again.returncode == 1
        assert "already running" in again.stderr
    finally:
        stopped = run_mailseal("-c", str(directory), "stop")
    assert stopped.returncode == 0, stopped.stderr
    assert run_mailseal("-c", str(directory), "status").returncode == 1


def test_implicit_tls_on_the_smtps_port(server: Instance) -> None:
    with Dialogue(server.ports.smtps) as smtp:
        smtp.starttls(ssl.create_default_context(cafile=server.cafile), HOSTNAME)
        assert smtp.reply().text.startswith(f"220 {HOSTNAME} ESMTP")
        ehlo = smtp.command("EHLO client.example.net")
        assert "STARTTLS" not in ehlo.lines
    server.process.wait_log(
        r"mailseal/submissions/smtpd\[\d+\]: Anonymous TLS connection established from "
        r"\S+\[127\.0\.0\.1\]: TLSv1\.3"
    )


def test_submission_port_requires_starttls(server: Instance) -> None:
    with Dialogue(server.ports.submission) as smtp:
        smtp.reply()
        assert "STARTTLS" in smtp.command("EHLO client.example.net").lines
        reply = smtp.command("MAIL FROM:<user@example.test>")
        assert reply.text == "530 5.7.0 Must issue a STARTTLS command first"


def test_stop_tells_idle_clients_421_and_lets_a_message_finish(server: Instance) -> None:
    idle = Dialogue(server.ports.smtp)
    busy = Dialogue(server.ports.smtp)
    try:
        idle.reply()
        idle.command("EHLO idle.example.net")
        busy.reply()
        busy.command("EHLO busy.example.net")
        busy.command("MAIL FROM:<s@client.example.net>")
        busy.command(f"RCPT TO:<{RCPT}>")
        assert busy.command("DATA").code == 354
        busy.send(b"Subject: in flight\r\n\r\nfirst half\r\n")
        assert server.process.process is not None
        server.process.process.terminate()
        shutdown = idle.reply()
        assert shutdown.code == 421
        busy.send(b"second half\r\n.\r\n")
        assert busy.reply().text.startswith("250 2.0.0 Ok: queued as ")
        assert server.process.process.wait(20) == 0
    finally:
        idle.close()
        busy.close()
    # The queue was left for the next start; it delivers then.
    restarted = server.process.start()
    files = restarted.wait_delivered(1)
    assert b"second half" in files[0].read_bytes()


def test_delivery_as_root_uses_virtual_uid_maps(servers: Servers) -> None:
    import os

    if os.geteuid() != 0:
        pytest.fail("this test needs root (CI runs as root)")
    instance = servers.start("virtual_uid_maps = static:65534\nvirtual_gid_maps = static:65534")
    _, body = message()
    with smtplib.SMTP("127.0.0.1", instance.ports.smtp, timeout=10) as client:
        client.sendmail("s@client.example.net", [RCPT], body)
    path = instance.process.wait_delivered(1)[0]
    assert (path.stat().st_uid, path.stat().st_gid) == (65534, 65534)
    assert path.stat().st_mode & 0o777 == 0o600
