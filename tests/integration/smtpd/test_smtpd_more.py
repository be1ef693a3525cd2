"""Handshake deadlines, alias expansion, corrupt queue files, client certificates."""

import email
import smtplib
import ssl
import time
from pathlib import Path

import trustme

from mailseal.testing.dialogue import Dialogue
from mailseal.testing.server import HOSTNAME, MailsealProcess, Servers, make_instance

RCPT = "postmaster@example.test"


def test_silent_client_after_starttls_is_cut_off_by_starttls_timeout(servers: Servers) -> None:
    instance = servers.start("smtpd_starttls_timeout = 1s")
    with Dialogue(instance.ports.smtp) as smtp:
        smtp.reply()
        smtp.command("EHLO client.example.net")
        assert smtp.command("STARTTLS").code == 220
        started = time.monotonic()
        assert smtp.closed(10)  # no ClientHello: the server gives up
        assert time.monotonic() - started < 5
    instance.process.wait_log(r"lost connection after STARTTLS from \S+\[127\.0\.0\.1\]")
    with Dialogue(instance.ports.smtps) as smtp:
        started = time.monotonic()
        assert smtp.closed(10)  # implicit TLS: the same deadline before the greeting
        assert time.monotonic() - started < 5


def test_virtual_alias_is_expanded_and_logged_with_orig_to(servers: Servers) -> None:
    instance = servers.start(
        "virtual_alias_maps = inline:{ abuse@example.test=postmaster@example.test }"
    )
    body = b"Subject: alias\r\nMessage-ID: <alias@test>\r\n\r\nhi\r\n"
    with smtplib.SMTP("127.0.0.1", instance.ports.smtp, timeout=10) as client:
        client.sendmail("s@client.example.net", ["abuse@example.test"], body)
    delivered = email.message_from_bytes(instance.process.wait_delivered(1)[0].read_bytes())
    assert delivered["X-Original-To"] == "abuse@example.test"
    assert delivered["Delivered-To"] == RCPT
    instance.process.wait_log(
        rf"to=<{RCPT}>, orig_to=<abuse@example\.test>, relay=virtual, .*status=sent"
    )


def test_torn_queue_file_goes_to_corrupt_and_the_rest_is_delivered(tmp_path: Path) -> None:
    directory = tmp_path / "mailseal"
    ports = make_instance(directory)
    server = MailsealProcess(directory).start()
    body = b"Subject: good\r\nMessage-ID: <good@test>\r\n\r\nhi\r\n"
    with smtplib.SMTP("127.0.0.1", ports.smtp, timeout=10) as client:
        client.sendmail("s@client.example.net", [RCPT], body)
    server.wait_delivered(1)
    server.stop()
    active = directory / "queue" / "active"
    active.mkdir(exist_ok=True)
    (active / "ABCDEF012345").write_bytes(b"MAILSEAL-QUEUE torn in the middle of a wri")
    restarted = MailsealProcess(directory).start()
    try:
        restarted.wait_log(r"ABCDEF012345.*corrupt")
        assert (directory / "queue" / "corrupt" / "ABCDEF012345").exists()
        assert not (active / "ABCDEF012345").exists()
        assert len(restarted.delivered()) == 1  # nothing half-delivered
    finally:
        restarted.stop()


def test_trusted_client_certificate_is_logged(servers: Servers, tmp_path: Path) -> None:
    ca = trustme.CA()
    client_cert = ca.issue_cert("client.example.net")
    cafile = tmp_path / "clients-ca.pem"
    ca.cert_pem.write_to_path(str(cafile))
    instance = servers.start(
        "smtpd_tls_security_level = encrypt\n"
        "smtpd_tls_ask_ccert = yes\n"
        f"smtpd_tls_CAfile = {cafile}\n"
        "smtpd_tls_loglevel = 2"
    )
    context = ssl.create_default_context(cafile=instance.cafile)
    client_cert.configure_cert(context)
    with Dialogue(instance.ports.smtp) as smtp:
        smtp.reply()
        smtp.command("EHLO client.example.net")
        smtp.command("STARTTLS")
        smtp.starttls(context, HOSTNAME)
        assert smtp.command("EHLO client.example.net").code == 250
    instance.process.wait_log(
        r"Trusted TLS connection established from \S+\[127\.0\.0\.1\]: TLSv1\.3"
    )
    # smtpd_tls_loglevel 2: the client certificate, with the SHA-256 fingerprint.
    instance.process.wait_log(
        r"\S+\[127\.0\.0\.1\]: subject_CN=.*, issuer=trustme.*, "
        r"fingerprint=([0-9A-F]{2}:){31}[0-9A-F]{2}, pkey_fingerprint="
    )


def test_port_in_use_is_a_clear_error(servers: Servers, tmp_path: Path) -> None:
    import shutil

    from mailseal.testing.process import run_mailseal

    first = servers.start()
    second = tmp_path / "second"
    shutil.copytree(first.directory, second, ignore=shutil.ignore_patterns("queue", "log"))
    main_cf = second / "main.cf"
    main_cf.write_text(main_cf.read_text().replace(str(first.directory), str(second)))
    result = run_mailseal("-c", str(second), "start")
    assert result.returncode == 1
    assert "mailseal: fatal:" in result.stderr
    assert "Traceback" not in result.stderr
