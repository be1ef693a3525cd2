"""mailseal's smtpd authenticates against Debian's real Dovecot (``smtpd_sasl_type = dovecot``).

A private Dovecot (``mailseal.testing.dovecot``: its auth client socket is its
only way in) and a ``mailseal init`` instance whose main.cf points
``smtpd_sasl_path`` at that socket by absolute path. Every exchange runs over
the submission port after a real STARTTLS, as a mail client's would.
"""

import base64
import re
import secrets
import smtplib
import ssl
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from mailseal.smtp.sasl.client import client_mechanism
from mailseal.testing.dovecot import DOVECOT, DovecotAuthServer
from mailseal.testing.server import Instance, Servers

pytestmark = pytest.mark.interop

USER, PASSWORD = "carol@example.test", "dovecot knows this one"
WRONG = "not the password"
# Dovecot's list, in its order: SCRAM-SHA-1 is one mailseal's own backend lacks, so
# seeing it in EHLO shows the list came from Dovecot.
MECHANISMS = ("plain", "login", "scram-sha-1", "scram-sha-256")
FAILED = "535 5.7.8 Error: authentication failed: authentication failure"


@dataclass(frozen=True)
class Pair:
    dovecot: DovecotAuthServer
    mailseal: Instance


@pytest.fixture(autouse=True)
def _need_dovecot() -> None:
    if not Path(DOVECOT).exists():
        pytest.fail("Dovecot is not installed: run ./dev test (it installs debian-packages.txt)")


def start_pair(root: Path) -> tuple[Pair, Servers]:
    # A short work directory: Dovecot's sockets must fit in sun_path.
    dovecot = DovecotAuthServer(root / "dc", {USER: PASSWORD}, MECHANISMS).start()
    servers = Servers(root)
    try:
        instance = servers.start(
            f"smtpd_sasl_type = dovecot\nsmtpd_sasl_path = {dovecot.socket_path}\n"
        )
    except BaseException:
        dovecot.stop()
        raise
    return Pair(dovecot, instance), servers


@pytest.fixture(scope="module")
def pair(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Pair]:
    started, servers = start_pair(tmp_path_factory.mktemp("dsm"))
    yield started
    servers.stop_all()
    started.dovecot.stop()


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def submission(instance: Instance, before_tls: list[str] | None = None) -> smtplib.SMTP:
    """Connected to the submission port, STARTTLS done (the certificate verified), EHLO'd.

    ``before_tls`` receives the mechanisms offered before STARTTLS.
    """
    context = ssl.create_default_context(cafile=instance.cafile)
    context.check_hostname = False  # we connect by IP; the chain is still verified
    client = smtplib.SMTP("127.0.0.1", instance.ports.submission, timeout=20)
    client.ehlo("laptop.example.net")
    if before_tls is not None:
        before_tls += mechanisms(client)
    client.starttls(context=context)
    client.ehlo("laptop.example.net")
    return client


def mechanisms(client: smtplib.SMTP) -> list[str]:
    """The AUTH keyword's mechanisms in the last EHLO reply."""
    return client.esmtp_features.get("auth", "").split()


def command(client: smtplib.SMTP, line: str) -> tuple[int, str]:
    code, text = client.docmd(line)
    return code, text.decode()


def sasl(client: smtplib.SMTP, mechanism: str, user: str, password: str) -> str:
    """One AUTH exchange driven by our client mechanisms; the final reply's first line."""
    machine = client_mechanism(mechanism, user, password, secrets.token_urlsafe(18))
    assert machine is not None
    initial = machine.initial()
    line = f"AUTH {mechanism}"
    if initial is not None:
        line += f" {b64(initial) if initial else '='}"
    code, text = command(client, line)
    while code == 334:
        code, text = command(client, b64(machine.respond(base64.b64decode(text))))
    return f"{code} {text.splitlines()[0]}"


def test_ehlo_offers_dovecots_mechanisms_after_starttls(pair: Pair) -> None:
    before_tls: list[str] = []
    with submission(pair.mailseal, before_tls) as client:
        assert before_tls == []  # smtpd_tls_auth_only = yes (init's main.cf)
        assert mechanisms(client) == ["PLAIN", "LOGIN", "SCRAM-SHA-1", "SCRAM-SHA-256"]


@pytest.mark.parametrize("mechanism", ["PLAIN", "LOGIN"])
def test_plaintext_mechanisms_right_and_wrong_password(pair: Pair, mechanism: str) -> None:
    with submission(pair.mailseal) as client:
        assert sasl(client, mechanism, USER, WRONG) == FAILED
        assert sasl(client, mechanism, USER, PASSWORD) == "235 2.7.0 Authentication successful"
    log = pair.mailseal.process
    line = log.wait_log(rf"SASL {mechanism} authentication failed")[0]
    assert re.search(
        r"mailseal/submission/smtpd\[\d+\]: warning: \S+\[127\.0\.0\.1\]: "
        rf"SASL {mechanism} authentication failed: authentication failure, "
        rf"sasl_username={re.escape(USER)}$",
        line,
    ), line
    assert WRONG not in log.maillog() and PASSWORD not in log.maillog()


def test_scram_sha_256_through_dovecot(pair: Pair) -> None:
    with submission(pair.mailseal) as client:
        assert sasl(client, "SCRAM-SHA-256", USER, WRONG) == FAILED
        assert sasl(client, "SCRAM-SHA-256", USER, PASSWORD) == (
            "235 2.7.0 Authentication successful"
        )
        # Authenticated: relaying is allowed (permit_sasl_authenticated).
        assert client.mail(USER)[0] == 250
        assert client.rcpt("friend@far-away.example")[0] == 250
    pair.mailseal.process.wait_log(r"SASL SCRAM-SHA-256 authentication failed")


def test_stopped_dovecot_is_a_temporary_failure_then_recovers(tmp_path: Path) -> None:
    started, servers = start_pair(tmp_path)
    try:
        with submission(started.mailseal) as client:
            assert "PLAIN" in mechanisms(client)
            started.dovecot.stop()
            reply = sasl(client, "PLAIN", USER, PASSWORD)
            assert re.fullmatch(
                r"454 4\.7\.0 Temporary authentication failure: "
                r"(Connection lost to|Can't connect to) authentication server",
                reply,
            ), reply
        started.mailseal.process.wait_log(r"warning: .*SASL PLAIN authentication failed: ")
        # A session that starts while Dovecot is down still sees the mechanisms last
        # offered, and its login fails temporarily rather than "not enabled".
        with submission(started.mailseal) as client:
            assert "PLAIN" in mechanisms(client)
            reply = sasl(client, "PLAIN", USER, PASSWORD)
            assert reply.startswith("454 4.7.0 Temporary authentication failure: "), reply
        started.mailseal.process.wait_log(r"warning: SASL: Connect to Dovecot auth socket ")
        started.dovecot.start()
        with submission(started.mailseal) as client:
            assert sasl(client, "PLAIN", USER, PASSWORD) == "235 2.7.0 Authentication successful"
    finally:
        servers.stop_all()
        started.dovecot.stop()
