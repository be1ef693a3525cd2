"""SMTP edge cases against a real server: injection, smuggling, limits, timeouts, TLS floors.

Each test speaks raw bytes (mailseal.testing.dialogue) and asserts Postfix's
reply text and what reached, or did not reach, the Maildir.
"""

import ssl
import time

import pytest
from raw_smtp import Dialogue, client_context

from mailseal.testing.server import Instance, Servers

RCPT = "postmaster@example.test"


def open_transaction(smtp: Dialogue) -> None:
    assert smtp.reply().code == 220
    assert smtp.command("EHLO client.example.net").code == 250
    assert smtp.command("MAIL FROM:<s@client.example.net>").code == 250
    assert smtp.command(f"RCPT TO:<{RCPT}>").code == 250


def test_starttls_injection_drops_the_client_by_default(server: Instance) -> None:
    # Postfix 3.9+ (smtpd_forbid_unauth_pipelining = yes): STARTTLS ends a
    # pipelining group, so plaintext after it ends the session before any TLS.
    with Dialogue(server.ports.smtp) as smtp:
        smtp.reply()
        smtp.command("EHLO client.example.net")
        smtp.send(b"STARTTLS\r\nMAIL FROM:<evil@attacker.test>\r\n")
        assert smtp.reply().text == "554 5.5.0 Error: SMTP protocol synchronization"
        assert smtp.closed()
    server.process.wait_log(r"improper command pipelining after STARTTLS from \S+\[127\.0\.0\.1\]")


def test_starttls_injection_is_discarded_when_pipelining_is_tolerated(servers: Servers) -> None:
    instance = servers.start("smtpd_forbid_unauth_pipelining = no")
    with Dialogue(instance.ports.smtp) as smtp:
        smtp.reply()
        smtp.command("EHLO client.example.net")
        # The classic CVE-2011-0411 attack: plaintext commands in the STARTTLS packet.
        smtp.send(b"STARTTLS\r\nMAIL FROM:<evil@attacker.test>\r\n")
        assert smtp.reply().text == "220 2.0.0 Ready to start TLS"
        smtp.starttls(client_context())
        # Had the injected MAIL run inside TLS, RCPT would be accepted.
        assert smtp.command(f"RCPT TO:<{RCPT}>").text == "503 5.5.1 Error: need MAIL command"
        assert smtp.command("STARTTLS").text == "554 5.5.1 Error: TLS already active"
    instance.process.wait_log(r"discarding \d+ bytes of plaintext pipelined after STARTTLS")


def test_session_state_resets_after_starttls(server: Instance) -> None:
    with Dialogue(server.ports.smtp) as smtp:
        smtp.reply()
        smtp.command("EHLO client.example.net")
        assert smtp.command("STARTTLS").code == 220
        smtp.starttls(client_context())
        ehlo = smtp.command("EHLO client.example.net")
        assert "STARTTLS" not in ehlo.lines
        assert smtp.command("MAIL FROM:<a@client.example.net>").code == 250


@pytest.mark.parametrize(
    "smuggle",
    [b"\n.\r\n", b"\r\n.\n", b"\n.\n", b"\r.\r\n"],
    ids=["LF.CRLF", "CRLF.LF", "LF.LF", "CR.CRLF"],
)
def test_smtp_smuggling_does_not_split_the_message(server: Instance, smuggle: bytes) -> None:
    smuggled = (
        b"MAIL FROM:<admin@example.test>\r\nRCPT TO:<" + RCPT.encode() + b">\r\nDATA\r\n"
        b"Subject: smuggled\r\n\r\nforged\r\n"
    )
    with Dialogue(server.ports.smtp) as smtp:
        open_transaction(smtp)
        assert smtp.command("DATA").code == 354
        smtp.send(b"Subject: outer\r\n\r\nfirst part" + smuggle + smuggled + b"\r\n.\r\n")
        assert smtp.reply().text.startswith("250 2.0.0 Ok: queued as ")
        assert smtp.command("QUIT").code == 221
    time.sleep(0.5)
    files = server.process.wait_delivered(1)
    assert len(files) == 1  # one message, never two
    content = files[0].read_bytes()
    assert b"Subject: outer" in content
    assert b"forged" in content  # still inside the first message


def test_message_size_limit_with_and_without_size(servers: Servers) -> None:
    instance = servers.start("message_size_limit = 2000")
    with Dialogue(instance.ports.smtp) as smtp:
        smtp.reply()
        smtp.command("EHLO client.example.net")
        big = smtp.command("MAIL FROM:<s@client.example.net> SIZE=5000")
        assert big.text == "552 5.3.4 Message size exceeds fixed limit"
        assert smtp.command("MAIL FROM:<s@client.example.net> SIZE=100").code == 250
        smtp.command(f"RCPT TO:<{RCPT}>")
        assert smtp.command("DATA").code == 354
        smtp.send(b"Subject: big\r\n\r\n" + b"x" * 78 + b"\r\n" * 1 + (b"y" * 78 + b"\r\n") * 40)
        smtp.send(b".\r\n")
        assert smtp.reply().text == "552 5.3.4 Error: message file too big"
        assert smtp.command("NOOP").code == 250  # still in sync after the oversized message
    assert instance.process.delivered() == []


def test_recipient_limit(servers: Servers) -> None:
    instance = servers.start("smtpd_recipient_limit = 2")
    with Dialogue(instance.ports.smtp) as smtp:
        open_transaction(smtp)
        assert smtp.command(f"RCPT TO:<{RCPT}>").code == 250
        assert smtp.command(f"RCPT TO:<{RCPT}>").text == "452 4.5.3 Error: too many recipients"


def test_hard_error_limit_disconnects(servers: Servers) -> None:
    instance = servers.start("smtpd_hard_error_limit = 3\nsmtpd_soft_error_limit = 10")
    with Dialogue(instance.ports.smtp) as smtp:
        smtp.reply()
        assert smtp.command("FOO").text == "500 5.5.2 Error: command not recognized"
        assert smtp.command("BAR").code == 500
        assert smtp.command("BAZ").code == 500  # the third error, answered ...
        final = smtp.reply()  # ... and then the hang-up
        assert final.code == 421
        assert final.text.endswith("Error: too many errors")
        assert smtp.closed()


def test_soft_error_limit_tarpits(servers: Servers) -> None:
    instance = servers.start(
        "smtpd_soft_error_limit = 1\nsmtpd_error_sleep_time = 1s\nsmtpd_hard_error_limit = 10"
    )
    with Dialogue(instance.ports.smtp) as smtp:
        smtp.reply()
        smtp.command("FOO")
        smtp.command("FOO")
        started = time.monotonic()
        smtp.command("FOO")
        assert time.monotonic() - started >= 0.9


def test_idle_client_times_out(servers: Servers) -> None:
    instance = servers.start("smtpd_timeout = 1s")
    with Dialogue(instance.ports.smtp) as smtp:
        smtp.reply()
        smtp.command("EHLO client.example.net")
        reply = smtp.reply()
        assert reply.code == 421
        assert reply.text.endswith("Error: timeout exceeded")
        assert smtp.closed()
    instance.process.wait_log(r"timeout after EHLO from \S+\[127\.0\.0\.1\]")


def test_trickling_client_cannot_outlast_the_request_deadline(servers: Servers) -> None:
    instance = servers.start("smtpd_timeout = 2s")
    with Dialogue(instance.ports.smtp) as smtp:
        smtp.reply()
        started = time.monotonic()
        closed = False
        for byte in b"NOOP NOOP NOOP NOOP NOOP NOOP NOOP":
            try:
                smtp.send(bytes([byte]))
            except OSError:
                closed = True
                break
            time.sleep(0.25)
            if time.monotonic() - started > 6:
                break
        assert closed or smtp.closed(3)
        assert time.monotonic() - started < 6


def test_command_too_long_is_rejected_not_truncated(server: Instance) -> None:
    with Dialogue(server.ports.smtp) as smtp:
        smtp.reply()
        smtp.command("EHLO client.example.net")
        reply = smtp.command("MAIL FROM:<" + "a" * 3000 + "@example.test>")
        assert reply.text == "500 5.5.2 Error: command too long"
        assert smtp.command(f"RCPT TO:<{RCPT}>").text == "503 5.5.1 Error: need MAIL command"


def test_nul_in_command_is_rejected(server: Instance) -> None:
    with Dialogue(server.ports.smtp) as smtp:
        smtp.reply()
        smtp.send(b"EHLO cli\x00ent\r\n")
        assert smtp.reply().code // 100 == 5


def test_unauthorized_pipelining_disconnects(server: Instance) -> None:
    with Dialogue(server.ports.smtp) as smtp:
        smtp.reply()
        # Nothing may follow EHLO before its reply (RFC 2920: EHLO ends a group).
        smtp.send(b"EHLO client.example.net\r\nMAIL FROM:<s@client.example.net>\r\n")
        replies = [smtp.reply()]
        while replies[-1].code == 250 and not replies[-1].text.startswith("250 2"):
            replies.append(smtp.reply())
            if len(replies) > 3:
                break
        assert any(r.code == 554 for r in replies), replies
        assert smtp.closed()
    server.process.wait_log(r"improper command pipelining after EHLO from \S+\[127\.0\.0\.1\]")


def test_content_before_354_is_rejected(server: Instance) -> None:
    with Dialogue(server.ports.smtp) as smtp:
        open_transaction(smtp)
        smtp.send(b"DATA\r\nSubject: early\r\n\r\nbody\r\n.\r\n")
        assert smtp.reply().code == 554
        assert smtp.closed()
    time.sleep(0.3)
    assert server.process.delivered() == []


def test_pregreet_talker_is_dropped(servers: Servers) -> None:
    instance = servers.start("smtpd_pregreet_wait = 1s\nsmtpd_pregreet_exclusions =")
    with Dialogue(instance.ports.smtp) as smtp:
        smtp.send(b"EHLO spambot.example\r\n")
        assert smtp.reply().code == 554
        assert smtp.closed()
    instance.process.wait_log(r"improper command pipelining after CONNECT from \S+\[127\.0\.0\.1\]")
    with Dialogue(instance.ports.smtp) as polite:
        assert polite.reply().code == 220  # a client that waits gets the banner


def test_connection_rate_limit(servers: Servers) -> None:
    instance = servers.start(
        "smtpd_client_connection_rate_limit = 2\nsmtpd_client_event_limit_exceptions ="
    )
    for _ in range(2):
        with Dialogue(instance.ports.smtp) as smtp:
            assert smtp.reply().code == 220
    with Dialogue(instance.ports.smtp) as smtp:
        reply = smtp.reply()
        assert reply.code == 421
        assert "too many connections from 127.0.0.1" in reply.text
    instance.process.wait_log(r"warning: Connection rate limit exceeded: 3 from \S+\[127\.0\.0\.1")


def test_helo_required(servers: Servers) -> None:
    instance = servers.start("smtpd_helo_required = yes")
    with Dialogue(instance.ports.smtp) as smtp:
        smtp.reply()
        reply = smtp.command("MAIL FROM:<s@client.example.net>")
        assert reply.text == "503 5.5.1 Error: send HELO/EHLO first"


def test_encrypt_level_requires_starttls(servers: Servers) -> None:
    instance = servers.start("smtpd_tls_security_level = encrypt")
    with Dialogue(instance.ports.smtp) as smtp:
        smtp.reply()
        smtp.command("EHLO client.example.net")
        reply = smtp.command("MAIL FROM:<s@client.example.net>")
        assert reply.text == "530 5.7.0 Must issue a STARTTLS command first"


def test_level_none_does_not_offer_starttls(servers: Servers) -> None:
    instance = servers.start("smtpd_tls_security_level = none")
    with Dialogue(instance.ports.smtp) as smtp:
        smtp.reply()
        assert "STARTTLS" not in smtp.command("EHLO client.example.net").lines


def test_broken_certificate_answers_454_and_keeps_serving(servers: Servers) -> None:
    instance = servers.start("smtpd_tls_cert_file = /nonexistent/cert.pem")
    with Dialogue(instance.ports.smtp) as smtp:
        smtp.reply()
        smtp.command("EHLO client.example.net")
        reply = smtp.command("STARTTLS")
        assert reply.text == "454 4.7.0 TLS not available due to local problem"
        assert smtp.command("MAIL FROM:<s@client.example.net>").code == 250


def test_failed_handshake_is_logged_and_server_stays_up(server: Instance) -> None:
    with Dialogue(server.ports.smtp) as smtp:
        smtp.reply()
        smtp.command("EHLO client.example.net")
        assert smtp.command("STARTTLS").code == 220
        smtp.send(b"this is not a TLS ClientHello\r\n\r\n")
        assert smtp.closed()
    server.process.wait_log(r"lost connection after STARTTLS from \S+\[127\.0\.0\.1\]")
    with Dialogue(server.ports.smtp) as smtp:
        assert smtp.reply().code == 220


@pytest.mark.parametrize("version", [ssl.TLSVersion.TLSv1, ssl.TLSVersion.TLSv1_1])
def test_seed_protocols_refuse_old_tls(servers: Servers, version: ssl.TLSVersion) -> None:
    instance = servers.start(
        "smtpd_tls_protocols = !SSLv2, !SSLv3, !TLSv1, !TLSv1.1\n"
        "smtpd_tls_mandatory_protocols = !SSLv2, !SSLv3, !TLSv1, !TLSv1.1"
    )
    old = client_context(minimum=version, maximum=version, ciphers="DEFAULT:@SECLEVEL=0")
    with Dialogue(instance.ports.smtp) as smtp:
        smtp.reply()
        smtp.command("EHLO client.example.net")
        assert smtp.command("STARTTLS").code == 220
        with pytest.raises((ssl.SSLError, ConnectionError, OSError)):
            smtp.starttls(old)
    for good in (ssl.TLSVersion.TLSv1_2, ssl.TLSVersion.TLSv1_3):
        with Dialogue(instance.ports.smtp) as smtp:
            smtp.reply()
            smtp.command("EHLO client.example.net")
            smtp.command("STARTTLS")
            smtp.starttls(client_context(minimum=good, maximum=good))
            assert smtp.command("NOOP").code == 250
