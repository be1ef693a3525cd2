"""Submission (587, STARTTLS required) and submissions (465, implicit TLS) with SASL AUTH.

The instance is ``mailseal init``'s: its master.cf has both services with
``smtpd_sasl_auth_enable = yes``; users are added with ``mailseal passwd``, as an
admin would. Every exchange is real TLS over loopback.
"""

import base64
import email
import re
import secrets
import smtplib
import ssl
from pathlib import Path

import pytest
from raw_smtp import Dialogue, client_context

from mailseal.smtp.sasl.client import client_mechanism
from mailseal.testing.process import run_mailseal
from mailseal.testing.server import Instance, Servers

USER, PASSWORD = "alice@example.test", "correct horse battery staple"
FOREIGN = "friend@far-away.example"
LOCAL = "postmaster@example.test"


def add_user(directory: Path, user: str = USER, password: str = PASSWORD) -> None:
    result = run_mailseal("-c", str(directory), "passwd", user, stdin=password + "\n")
    assert result.returncode == 0, result.stderr


@pytest.fixture
def submit(servers: Servers) -> Instance:
    instance = servers.start(
        "smtpd_sasl_authenticated_header = yes\n"
        "smtpd_sender_login_maps = inline:{ alice@example.test=alice@example.test }\n"
        "smtpd_sender_restrictions = reject_sender_login_mismatch\n"
        # Outbound mail goes to a closed loopback port: it is deferred at once.
        "relayhost = [127.0.0.1]:9\n"
    )
    add_user(instance.directory)
    return instance


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def ehlo_keywords(smtp: Dialogue) -> list[str]:
    reply = smtp.command("EHLO client.example")
    assert reply.code == 250
    return list(reply.lines[1:])


def starttls(smtp: Dialogue) -> None:
    assert smtp.command("STARTTLS").code == 220
    smtp.starttls(client_context())


def sasl(smtp: Dialogue, mechanism: str, user: str, password: str) -> str:
    """Run one AUTH exchange with our client mechanisms; the final reply's text."""
    client = client_mechanism(mechanism, user, password, secrets.token_urlsafe(18))
    assert client is not None
    initial = client.initial()
    line = f"AUTH {mechanism}" + (
        f" {b64(initial) if initial else '='}" if initial is not None else ""
    )
    reply = smtp.command(line)
    while reply.code == 334:
        challenge = base64.b64decode(reply.lines[0])
        reply = smtp.command(b64(client.respond(challenge)))
    return reply.text


def test_587_needs_tls_before_auth_and_mail(submit: Instance) -> None:
    with Dialogue(submit.ports.submission) as smtp:
        smtp.reply()
        keywords = ehlo_keywords(smtp)
        assert "STARTTLS" in keywords
        assert not any(k.startswith("AUTH") for k in keywords)
        assert (
            smtp.command(f"MAIL FROM:<{USER}>").text
            == "530 5.7.0 Must issue a STARTTLS command first"
        )
        assert smtp.command("AUTH PLAIN").text == "530 5.7.0 Must issue a STARTTLS command first"
        starttls(smtp)
        assert "AUTH PLAIN LOGIN SCRAM-SHA-256" in ehlo_keywords(smtp)


@pytest.mark.parametrize("mechanism", ["PLAIN", "LOGIN", "SCRAM-SHA-256"])
def test_mechanisms_right_and_wrong_password(submit: Instance, mechanism: str) -> None:
    with Dialogue(submit.ports.submission) as smtp:
        smtp.reply()
        ehlo_keywords(smtp)
        starttls(smtp)
        ehlo_keywords(smtp)
        assert sasl(smtp, mechanism, USER, "wrong password") == (
            "535 5.7.8 Error: authentication failed: authentication failure"
        )
        assert sasl(smtp, mechanism, USER, PASSWORD) == "235 2.7.0 Authentication successful"
        assert sasl(smtp, mechanism, USER, PASSWORD) == "503 5.5.1 Error: already authenticated"
    line = submit.process.wait_log(rf"SASL {mechanism} authentication failed")[0]
    assert re.search(
        rf": warning: \S+\[127\.0\.0\.1\]: SASL {mechanism} authentication failed: ", line
    )
    assert line.endswith(f"authentication failure, sasl_username={USER}")
    assert "mailseal/submission/smtpd[" in line
    assert "wrong password" not in submit.process.maillog()


def test_relay_only_after_auth_and_queued_for_the_outbound_transport(submit: Instance) -> None:
    with Dialogue(submit.ports.submission) as smtp:
        smtp.reply()
        ehlo_keywords(smtp)
        starttls(smtp)
        ehlo_keywords(smtp)
        assert smtp.command(f"MAIL FROM:<{USER}>").code == 250
        # Delayed reject (smtpd_delay_reject = yes): the client restrictions bite at RCPT.
        assert re.fullmatch(
            r"554 5\.7\.1 <\S+\[127\.0\.0\.1\]>: Client host rejected: Access denied",
            smtp.command(f"RCPT TO:<{FOREIGN}>").text,
        )
        assert smtp.command("RSET").code == 250
        assert sasl(smtp, "PLAIN", USER, PASSWORD).startswith("235 ")
        assert smtp.command(f"MAIL FROM:<{USER}> AUTH=<>").code == 250
        assert smtp.command(f"RCPT TO:<{FOREIGN}>").code == 250
        assert smtp.command("DATA").code == 354
        reply = smtp.command("Subject: out\r\n\r\nto the world\r\n.")
        assert reply.code == 250
    queue_id = reply.lines[0].rsplit(" ", 1)[1]
    log = submit.process
    client_line = log.wait_log(rf"{queue_id}: client=")[0]
    assert client_line.endswith(f"[127.0.0.1], sasl_method=PLAIN, sasl_username={USER}")
    # It goes to the queue for the smtp client; the relayhost is down, so it waits.
    log.wait_log(
        rf"smtp\[\d+\]: {queue_id}: to=<{FOREIGN}>, relay=none, .*status=deferred "
        r"\(connect to 127\.0\.0\.1\[127\.0\.0\.1\]:9: Connection refused\)"
    )
    assert (submit.directory / "queue" / "deferred" / queue_id).exists() or any(
        p.name == queue_id for p in (submit.directory / "queue").rglob(queue_id)
    )


def test_465_speaks_tls_at_once_and_offers_auth(submit: Instance) -> None:
    with Dialogue(submit.ports.smtps) as smtp:
        smtp.starttls(client_context(submit.cafile), server_hostname="mail.example.test")
        assert smtp.reply().code == 220
        keywords = ehlo_keywords(smtp)
        assert "AUTH PLAIN LOGIN SCRAM-SHA-256" in keywords
        assert "STARTTLS" not in keywords
        assert sasl(smtp, "SCRAM-SHA-256", USER, PASSWORD) == "235 2.7.0 Authentication successful"


def test_smtplib_login_and_authenticated_received_header(submit: Instance) -> None:
    context = ssl.create_default_context(cafile=submit.cafile)
    context.check_hostname = False  # we connect by IP; the chain is still verified
    with smtplib.SMTP("127.0.0.1", submit.ports.submission, timeout=10) as client:
        client.starttls(context=context)
        client.login(USER, PASSWORD)
        refused = client.sendmail(USER, [LOCAL], b"Subject: mine\r\n\r\nhello\r\n")
        assert refused == {}
    delivered = email.message_from_bytes(submit.process.wait_delivered(1)[0].read_bytes())
    received = " ".join(delivered["Received"].split())
    assert f"(Authenticated sender: {USER})" in received
    assert " with ESMTPSA id " in received


def test_sender_login_mismatch(submit: Instance) -> None:
    with smtplib.SMTP_SSL(
        "127.0.0.1", submit.ports.smtps, timeout=10, context=client_context()
    ) as client:
        client.login(USER, PASSWORD)
        with pytest.raises(smtplib.SMTPRecipientsRefused) as refused:
            client.sendmail("boss@example.test", [LOCAL], b"Subject: forged\r\n\r\nx\r\n")
    code, text = refused.value.recipients[LOCAL]
    assert (code, text.decode()) == (
        553,
        "5.7.1 <boss@example.test>: Sender address rejected: not owned by user " + USER,
    )


def test_auth_rate_limit_and_hard_error_limit(servers: Servers) -> None:
    instance = servers.start(
        "smtpd_client_auth_rate_limit = 3\nsmtpd_hard_error_limit = 5\n"
        # The default exceptions are $mynetworks, which holds the loopback test client.
        "smtpd_client_event_limit_exceptions =\n"
    )
    add_user(instance.directory)
    with Dialogue(instance.ports.smtps) as smtp:
        smtp.starttls(client_context())
        smtp.reply()
        ehlo_keywords(smtp)
        replies = [sasl(smtp, "PLAIN", USER, "nope") for _ in range(5)]
        assert replies[:3] == ["535 5.7.8 Error: authentication failed: authentication failure"] * 3
        assert replies[3:] == ["450 4.7.1 Error: too many AUTH commands from 127.0.0.1"] * 2
        # Five errors: the next command ends the session (smtpd_hard_error_limit).
        assert smtp.command("NOOP").text.startswith("421 4.7.0 ")
    instance.process.wait_log(
        r"warning: AUTH command rate limit exceeded: 4 from \S+\[127\.0\.0\.1\] "
        r"for service \d+"
    )
