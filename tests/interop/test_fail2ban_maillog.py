"""fail2ban reads the mail log a running mailseal wrote about real failed logins (issue #4).

A ``mailseal init`` instance made to log like Postfix (``syslog_name = postfix``
in main.cf; master.cf's per-service ``syslog_name`` becomes ``postfix/submission``
and ``postfix/smtps``), then wrong passwords over real connections: PLAIN and
LOGIN on the submission port after STARTTLS and on the implicit-TLS port, and
SCRAM-SHA-256. Debian's fail2ban-regex must then count, in that very file,
exactly the PLAIN and LOGIN failures with the stock ``postfix[mode=auth]``
filter (it does not know SCRAM), and every failure with
``contrib/fail2ban/filter.d/mailseal-sasl.conf``. tests/interop/test_fail2ban_filters.py
covers each line shape; this one covers the whole path from a client to a ban.
"""

import base64
import re
import secrets
import shutil
import smtplib
import subprocess
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest

from mailseal.smtp.sasl.client import client_mechanism
from mailseal.testing.process import run_mailseal
from mailseal.testing.server import MailsealProcess, Ports, make_instance

pytestmark = pytest.mark.interop

REPO = Path(__file__).resolve().parents[2]
CONTRIB_FILTER = "contrib/fail2ban/filter.d/mailseal-sasl.conf"  # relative: run from REPO
STOCK_AUTH = "postfix[mode=auth]"
USER, PASSWORD = "dave@example.test", "the right one"
FAILED = 535
# (port, mechanism) of each wrong-password attempt the test makes.
ATTEMPTS = (
    ("submission", "PLAIN"),
    ("submission", "PLAIN"),
    ("smtps", "PLAIN"),
    ("submission", "LOGIN"),
    ("smtps", "LOGIN"),
    ("submission", "SCRAM-SHA-256"),
    ("smtps", "SCRAM-SHA-256"),
)


def need(tool: str) -> str:
    path = shutil.which(tool)
    if path is None:
        pytest.fail(f"{tool} is not installed: run ./dev test (it installs debian-packages.txt)")
    return path


def postfix_names(directory: Path) -> None:
    """main.cf and every master.cf ``-o syslog_name=`` say postfix, as in a Postfix setup."""
    with (directory / "main.cf").open("a", encoding="utf-8") as main_cf:
        main_cf.write("syslog_name = postfix\n")
    master = directory / "master.cf"
    names = {"mailseal/submission": "postfix/submission", "mailseal/submissions": "postfix/smtps"}
    text, count = re.subn(
        r"-o syslog_name=(\S+)", lambda m: f"-o syslog_name={names[m.group(1)]}", master.read_text()
    )
    assert count == 2
    master.write_text(text)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[MailsealProcess, Ports]]:
    directory = tmp_path_factory.mktemp("f2b") / "mailseal"
    ports = make_instance(directory)
    postfix_names(directory)
    added = run_mailseal("-c", str(directory), "passwd", USER, stdin=PASSWORD + "\n")
    assert added.returncode == 0, added.stderr
    process = MailsealProcess(directory).start()
    yield process, ports
    process.stop()


def connect(ports: Ports, port: str) -> smtplib.SMTP:
    """A session ready for AUTH: STARTTLS on submission, TLS from the start on smtps."""
    client: smtplib.SMTP
    if port == "smtps":
        client = smtplib.SMTP_SSL("127.0.0.1", ports.smtps, timeout=20)
    else:
        client = smtplib.SMTP("127.0.0.1", ports.submission, timeout=20)
        client.ehlo("laptop.example.net")
        client.starttls()
    client.ehlo("laptop.example.net")
    return client


def authenticate(client: smtplib.SMTP, mechanism: str, password: str) -> int:
    """One AUTH exchange with our client mechanisms, each step a raw command; the final code."""
    machine = client_mechanism(mechanism, USER, password, secrets.token_urlsafe(18))
    assert machine is not None
    initial = machine.initial()
    line = f"AUTH {mechanism}"
    if initial is not None:
        line += " " + (base64.b64encode(initial).decode() if initial else "=")
    code, text = client.docmd(line)
    while code == 334:
        answer = machine.respond(base64.b64decode(text))
        code, text = client.docmd(base64.b64encode(answer).decode())
    return code


def fail2ban_matches(log: Path, filter_spec: str) -> list[tuple[str, str]]:
    """(banned address, matched line) for each line ``filter_spec`` matches in ``log``."""
    result = subprocess.run(
        [
            need("fail2ban-regex"),
            "--config",
            "/etc/fail2ban",
            "-o",
            "<ip> | <msg>",
            str(log),
            filter_spec,
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    rows = [row.split(" | ", 1) for row in result.stdout.splitlines() if " | " in row]
    return [(ip, line) for ip, line in rows]


def test_fail2ban_counts_the_failed_logins_in_our_maillog(
    server: tuple[MailsealProcess, Ports],
) -> None:
    process, ports = server
    for port, mechanism in ATTEMPTS:
        with connect(ports, port) as client:
            assert authenticate(client, mechanism, "guessed wrong") == FAILED
    with connect(ports, "submission") as client:  # and one login that works: no line for it
        assert authenticate(client, "PLAIN", PASSWORD) == 235
    wanted = Counter(mechanism for _, mechanism in ATTEMPTS)
    failed = process.wait_log(r"SASL \S+ authentication failed", count=len(ATTEMPTS))
    assert Counter(re.findall(r"SASL (\S+) authentication failed", "\n".join(failed))) == wanted
    assert all(re.search(r" postfix/(submission|smtps)/smtpd\[\d+\]: warning: ", f) for f in failed)
    log = process.directory / "log" / "maillog"

    stock = fail2ban_matches(log, STOCK_AUTH)
    assert len(stock) == wanted["PLAIN"] + wanted["LOGIN"], stock
    assert {ip for ip, _ in stock} == {"127.0.0.1"}
    assert not any("SCRAM" in line for _, line in stock)

    ours = fail2ban_matches(log, CONTRIB_FILTER)
    assert len(ours) == len(ATTEMPTS), ours
    assert {ip for ip, _ in ours} == {"127.0.0.1"}
    scram = sum("SASL SCRAM-SHA-256 authentication failed" in line for _, line in ours)
    assert scram == wanted["SCRAM-SHA-256"]
