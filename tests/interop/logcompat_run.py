"""Shared pieces of the log-compatibility interop tests (pflogsumm, fail2ban's reject filters).

A mailseal instance made to log as Postfix does (``syslog_name = postfix`` and
master.cf's per-service names ``postfix/submission`` and ``postfix/smtps``, the
two that pflogsumm 1.1.5 and fail2ban's ``postfix`` filter know), SMTP clients
that speak from a chosen loopback address (so each kind of failure has its own
client IP in the log), and the Debian tools run on the maillog file.
"""

from __future__ import annotations

import re
import shutil
import smtplib
import socket
import ssl
import subprocess
import time
from collections.abc import Sequence
from dataclasses import dataclass
from enum import Enum
from pathlib import Path

import pytest

__all__ = [
    "Client",
    "Security",
    "connect",
    "fail2ban_matches",
    "need",
    "postfix_names",
    "raw_session",
    "run_tool",
    "send",
]

REPO = Path(__file__).resolve().parents[2]
# master.cf service names -> the names Postfix's own master.cf gives them and pflogsumm
# 1.1.5 recognises ("postfix/submissions", Postfix 3.5+'s name for port 465, it does not).
_SERVICE_NAMES = {
    "mailseal/submission": "postfix/submission",
    "mailseal/submissions": "postfix/smtps",
}


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
    text, count = re.subn(
        r"-o syslog_name=(\S+)",
        lambda m: f"-o syslog_name={_SERVICE_NAMES[m.group(1)]}",
        master.read_text(encoding="utf-8"),
    )
    assert count == len(_SERVICE_NAMES)
    master.write_text(text, encoding="utf-8")


def run_tool(*argv: str, cwd: Path = REPO) -> str:
    """Run an installed tool to completion (bounded); its stdout, failing the test on error."""
    result = subprocess.run(
        [need(argv[0]), *argv[1:]],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


def fail2ban_matches(log: Path, filter_spec: str) -> list[tuple[str, str]]:
    """(banned address, matched line) for each line ``filter_spec`` matches in ``log``."""
    out = run_tool(
        "fail2ban-regex", "--config", "/etc/fail2ban", "-o", "<ip> | <msg>", str(log), filter_spec
    )
    rows = [row.split(" | ", 1) for row in out.splitlines() if " | " in row]
    return [(ip, line) for ip, line in rows]


class Security(Enum):
    """How a client session protects itself."""

    PLAIN = "plain"
    STARTTLS = "starttls"
    IMPLICIT = "implicit"  # TLS from the first byte (the smtps service)


@dataclass(frozen=True)
class Client:
    """Who speaks: source address, EHLO name, protection, and an optional SASL login."""

    source: str = "127.0.0.1"
    helo: str = "client.example.net"
    security: Security = Security.PLAIN
    login: tuple[str, str] | None = None


def _no_verify() -> ssl.SSLContext:
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE  # the instance's self-signed certificate
    return context


def connect(client: Client, port: int) -> smtplib.SMTP:
    """A session after EHLO (and STARTTLS, EHLO again, and AUTH, as ``client`` says)."""
    source = (client.source, 0)
    session: smtplib.SMTP
    if client.security is Security.IMPLICIT:
        session = smtplib.SMTP_SSL(
            "127.0.0.1", port, timeout=20, source_address=source, context=_no_verify()
        )
    else:
        session = smtplib.SMTP("127.0.0.1", port, timeout=20, source_address=source)
    session.ehlo(client.helo)
    if client.security is Security.STARTTLS:
        session.starttls(context=_no_verify())
        session.ehlo(client.helo)
    if client.login is not None:
        session.login(*client.login)
    return session


def send(
    client: Client, port: int, sender: str, recipients: list[str], data: bytes
) -> tuple[list[str], str | None]:
    """One transaction: (the recipients accepted, the queue ID of the 250 reply or None)."""
    with connect(client, port) as session:
        session.mail(sender)
        accepted = [r for r in recipients if session.rcpt(r)[0] == 250]
        if not accepted:
            session.rset()
            return accepted, None
        code, text = session.data(data)
        assert code == 250, text
        queued = re.search(rb"queued as (\w+)", text)
        assert queued is not None, text
        return accepted, queued.group(1).decode()


def raw_session(
    port: int, source: str, steps: Sequence[tuple[bytes, float]], *, greet: bool = True
) -> bytes:
    """Connect from ``source``, (read the greeting,) then per step: send, read for a while.

    A step's time is how long to read the replies (0: none); the socket is closed
    right after the last step, as a client that does not wait for the last reply does.
    """
    received = b""
    with socket.create_connection(("127.0.0.1", port), 20, source_address=(source, 0)) as sock:
        if greet:
            received += sock.recv(4096)
        for data, linger in steps:
            sock.sendall(data)
            received += _read_for(sock, linger)
    return received


def _read_for(sock: socket.socket, seconds: float) -> bytes:
    received = b""
    deadline = time.monotonic() + seconds
    while (left := deadline - time.monotonic()) > 0:
        sock.settimeout(left)
        try:
            chunk = sock.recv(4096)
        except TimeoutError:
            break
        if not chunk:
            break
        received += chunk
    return received
