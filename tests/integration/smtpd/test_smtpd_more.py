"""Handshake deadlines, alias expansion, corrupt queue files, client certificates."""

import email
import smtplib
import ssl
import time
from pathlib import Path

import trustme
from raw_smtp import Dialogue, client_context

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
    instance.process.wait_log(
        r"submissions/smtpd\[\d+\]: SSL_accept error from \S+\[127\.0\.0\.1\]: lost connection"
    )
    instance.process.wait_log(r"lost connection after CONNECT from \S+\[127\.0\.0\.1\]")


def test_plaintext_on_the_implicit_tls_port_fails_the_handshake_and_is_logged(
    servers: Servers,
) -> None:
    """Wrapper mode's first transport is a TLS one: plaintext is a failed ClientHello."""
    instance = servers.start()
    with Dialogue(instance.ports.smtps) as smtp:
        smtp.send("EHLO client.example.net\r\n")
        assert smtp.closed(10)
    instance.process.wait_log(
        r"submissions/smtpd\[\d+\]: SSL_accept error from \S+\[127\.0\.0\.1\]: -1$"
    )
    instance.process.wait_log(r"warning: TLS library problem: .*wrong version number")
    instance.process.wait_log(r"lost connection after CONNECT from \S+\[127\.0\.0\.1\]")
    for _ in range(2):  # the workers serve the next clients as before
        with Dialogue(instance.ports.smtps) as smtp:
            smtp.starttls(client_context(), server_hostname="mail.example.test")
            assert smtp.reply().code == 220


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


def test_rsa_and_ecdsa_certificates_are_both_served(servers: Servers, tmp_path: Path) -> None:
    rsa_ca = trustme.CA(key_type=trustme.KeyType.RSA)
    ec_ca = trustme.CA(key_type=trustme.KeyType.ECDSA)
    files = {}
    for name, ca, key_type in (
        ("rsa", rsa_ca, trustme.KeyType.RSA),
        ("ec", ec_ca, trustme.KeyType.ECDSA),
    ):
        leaf = ca.issue_cert(HOSTNAME, key_type=key_type)
        files[name] = (tmp_path / f"{name}.crt", tmp_path / f"{name}.key", tmp_path / f"{name}-ca")
        leaf.cert_chain_pems[0].write_to_path(str(files[name][0]))
        leaf.private_key_pem.write_to_path(str(files[name][1]))
        ca.cert_pem.write_to_path(str(files[name][2]))
    instance = servers.start(
        f"smtpd_tls_cert_file = {files['rsa'][0]}\nsmtpd_tls_key_file = {files['rsa'][1]}\n"
        f"smtpd_tls_eccert_file = {files['ec'][0]}\nsmtpd_tls_eckey_file = {files['ec'][1]}"
    )
    for name, cipher in (
        ("rsa", "ECDHE-RSA-AES128-GCM-SHA256"),
        ("ec", "ECDHE-ECDSA-AES128-GCM-SHA256"),
    ):
        # TLS 1.2 with one cipher suite: the suite fixes the certificate type, and
        # verification against only that CA proves which certificate was served.
        context = ssl.create_default_context(cafile=str(files[name][2]))
        context.maximum_version = ssl.TLSVersion.TLSv1_2
        context.set_ciphers(cipher)
        with Dialogue(instance.ports.smtp) as smtp:
            smtp.reply()
            smtp.command("EHLO client.example.net")
            smtp.command("STARTTLS")
            smtp.starttls(context, HOSTNAME)
            assert smtp.command("NOOP").code == 250


def test_tls_loglevel_0_logs_no_tls_lines(servers: Servers) -> None:
    instance = servers.start("smtpd_tls_loglevel = 0")
    with Dialogue(instance.ports.smtp) as smtp:
        smtp.reply()
        smtp.command("EHLO client.example.net")
        smtp.command("STARTTLS")
        smtp.starttls(client_context())
        assert smtp.command("QUIT").code == 221
    instance.process.wait_log(r"disconnect from .* starttls=1")
    assert "TLS connection established" not in instance.process.maillog()


def test_mail_for_other_domains_waits_in_deferred_when_dns_fails(servers: Servers) -> None:
    # The harness's dns_servers answers nothing: the MX lookup fails temporarily.
    instance = servers.start("minimal_backoff_time = 300s")
    body = b"Subject: outbound\r\nMessage-ID: <out@test>\r\n\r\nhi\r\n"
    with smtplib.SMTP("127.0.0.1", instance.ports.smtp, timeout=10) as client:
        client.sendmail("s@example.test", ["someone@elsewhere.test"], body)  # mynetworks relays
    line = instance.process.wait_log(
        r"smtp\[\d+\]: \w+: to=<someone@elsewhere\.test>, relay=none, .*dsn=4\.4\.3, "
        r"status=deferred \(Host or domain name not found\. Name service error for "
        r"name=elsewhere\.test type=MX: Host not found, try again\)",
        timeout=30,
    )[0]
    queue_id = line.split(": ")[1]
    deferred = instance.directory / "queue" / "deferred" / queue_id
    deadline = time.monotonic() + 10
    while not deferred.exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert deferred.exists()
    assert deferred.stat().st_mtime > time.time() + 200  # next attempt: minimal_backoff_time


def test_connection_count_limit(servers: Servers) -> None:
    instance = servers.start(
        "smtpd_client_connection_count_limit = 2\nsmtpd_client_event_limit_exceptions ="
    )
    first, second = Dialogue(instance.ports.smtp), Dialogue(instance.ports.smtp)
    try:
        assert first.reply().code == 220
        assert second.reply().code == 220
        with Dialogue(instance.ports.smtp) as third:
            reply = third.reply()
            assert reply.code == 421
            assert "too many connections from 127.0.0.1" in reply.text
    finally:
        first.close()
        second.close()
    instance.process.wait_log(r"warning: Connection concurrency limit exceeded: 3 from ")
    time.sleep(0.5)
    with Dialogue(instance.ports.smtp) as again:  # the count went down with the sessions
        assert again.reply().code == 220


def test_reload_applies_new_tables_to_new_sessions_and_deliveries(servers: Servers) -> None:
    from mailseal.testing.process import run_mailseal

    instance = servers.start()
    newcomer = "newcomer@example.test"
    with Dialogue(instance.ports.smtp) as smtp:
        smtp.reply()
        smtp.command("EHLO client.example.net")
        smtp.command("MAIL FROM:<s@client.example.net>")
        assert smtp.command(f"RCPT TO:<{newcomer}>").code == 550
    with (instance.directory / "vmailbox").open("a") as vmailbox:
        vmailbox.write(f"{newcomer}  example.test/newcomer/\n")
    assert run_mailseal("-c", str(instance.directory), "reload").returncode == 0
    instance.process.wait_log(r"reload -- version")
    body = b"Subject: welcome\r\nMessage-ID: <welcome@test>\r\n\r\nhi\r\n"
    with smtplib.SMTP("127.0.0.1", instance.ports.smtp, timeout=10) as client:
        client.sendmail("s@client.example.net", [newcomer], body)
    files = instance.process.wait_delivered(1, user="newcomer")
    assert b"Subject: welcome" in files[0].read_bytes()


def test_smtputf8_sender_is_accepted_only_when_declared(servers: Servers) -> None:
    instance = servers.start()
    sender = "josé@exämple.net"
    body = f"Subject: ünïcode\r\nFrom: {sender}\r\n\r\nhéllo\r\n".encode()
    with Dialogue(instance.ports.smtp) as smtp:
        smtp.reply()
        smtp.command("EHLO client.example.net")
        refused = smtp.command(f"MAIL FROM:<{sender}>")
        assert refused.text == "553 5.6.7 Must declare SMTPUTF8 to send unicode address"
    with smtplib.SMTP("127.0.0.1", instance.ports.smtp, timeout=10) as client:
        assert client.sendmail(sender, [RCPT], body, mail_options=["SMTPUTF8"]) == {}
    delivered = instance.process.wait_delivered(1)[0].read_bytes()
    assert "Return-Path: <josé@exämple.net>".encode() in delivered
    instance.process.wait_log("from=<josé@exämple.net>, size=")


def test_delay_reject_no_refuses_at_connect(servers: Servers) -> None:
    instance = servers.start(
        "smtpd_delay_reject = no\nsmtpd_client_restrictions = permit_mynetworks, reject\n"
        "mynetworks = 192.0.2.0/24"
    )
    with Dialogue(instance.ports.smtp) as smtp:
        greeting = smtp.reply()
        assert greeting.code == 554
        assert greeting.text.endswith("Client host rejected: Access denied")
        denied = smtp.command("EHLO client.example.net")
        assert denied.text.startswith("503 5.7.0 Error: access denied for ")
        assert smtp.command("QUIT").code == 221
    instance.process.wait_log(
        r"NOQUEUE: reject: CONNECT from \S+\[127\.0\.0\.1\]: 554 5\.7\.1 .*Client host rejected"
    )


def test_unusable_directories_are_one_line_errors(tmp_path: Path) -> None:
    from mailseal.testing.process import run_mailseal

    directory = tmp_path / "mailseal"
    make_instance(directory, "maillog_file = /proc/no-such-dir/maillog")
    result = run_mailseal("-c", str(directory), "start-fg")
    assert result.returncode == 1
    assert result.stderr.startswith("mailseal: fatal: ")
    assert "/proc/no-such-dir" in result.stderr
    assert "Traceback" not in result.stderr
