"""Debian's fail2ban reads mailseal's AUTH-failure lines (issue #4).

Every line is written by mailseal itself: a ``FileSink`` (the ``maillog_file``
sink) behind a ``MailLog``, fed by ``mailseal.log.format``. fail2ban-regex
then runs on that file with the stock ``postfix[mode=auth]`` filter and with
``contrib/fail2ban/filter.d/mailseal-sasl.conf``; ``-o '<ip> | <msg>'``
prints one row per matched line, so each test checks exactly which lines
matched and which address each one would ban.
"""

import shutil
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import pytest

from mailseal.log import format as fmt
from mailseal.log.sinks import FileSink, MailLog, session_numbers

pytestmark = pytest.mark.interop

REPO = Path(__file__).resolve().parents[2]
CONTRIB = REPO / "contrib" / "fail2ban"
# Relative on purpose: the README's command, run from the root of a checkout.
CONTRIB_FILTER = "contrib/fail2ban/filter.d/mailseal-sasl.conf"
STOCK_AUTH = "postfix[mode=auth]"
FAILURE = "authentication failure"

# (host, addr) pairs as smtpd logs them: unknown and named clients, IPv4 and IPv6.
CLIENTS = (
    ("", "192.0.2.10"),
    ("client.example.net", "198.51.100.20"),
    ("", "2001:db8::30"),
    ("v6.example.net", "2001:db8:1::40"),
)
POSTFIX_NAMES = ("postfix", "postfix/submission", "postfix/smtps")
MAILSEAL_NAMES = ("mailseal", "mailseal/submission", "mailseal/submissions")


@dataclass(frozen=True)
class Logged:
    """One smtpd log call: the service's syslog_name, the message, warning or info."""

    syslog_name: str
    message: str
    warning: bool = True


def write_maillog(path: Path, entries: Sequence[Logged]) -> list[str]:
    """Log the entries the way mailseal's smtpd does; return the file's lines in order."""
    log = MailLog(FileSink(path, "mx.example.test"), "mailseal")
    numbers = session_numbers()
    for entry in entries:
        program = log.program("smtpd", entry.syslog_name)
        if entry.warning:
            log.warning(program, next(numbers), entry.message)
        else:
            log.info(program, next(numbers), entry.message)
    log.close()
    lines = path.read_text(encoding="utf-8").splitlines()
    assert len(lines) == len(entries)
    return lines


def need(tool: str) -> str:
    path = shutil.which(tool)
    if path is None:
        pytest.fail(f"{tool} is not installed: run ./dev test (it installs debian-packages.txt)")
    return path


def fail2ban_regex(*args: str) -> str:
    result = subprocess.run(
        [need("fail2ban-regex"), *args],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


def matches(log: Path, filter_spec: str) -> dict[str, str]:
    """Matched line -> the address fail2ban would ban."""
    out = fail2ban_regex("--config", "/etc/fail2ban", "-o", "<ip> | <msg>", str(log), filter_spec)
    rows = [row.split(" | ", 1) for row in out.splitlines() if " | " in row]
    return {line: ip for ip, line in rows}


def failures(names: Sequence[str], mechanisms: Sequence[str]) -> list[tuple[Logged, str]]:
    """``SASL <mech> authentication failed`` for every name, mechanism and client."""
    return [
        (Logged(name, fmt.sasl_failed(host, addr, mech, FAILURE, f"user{i}")), addr)
        for name in names
        for mech in mechanisms
        for i, (host, addr) in enumerate(CLIENTS)
    ]


def expected(lines: Sequence[str], cases: Sequence[tuple[Logged, str | None]]) -> dict[str, str]:
    return {line: ip for line, (_, ip) in zip(lines, cases, strict=True) if ip is not None}


def test_stock_postfix_auth_filter_bans_plain_and_login_but_not_scram(tmp_path: Path) -> None:
    hits = failures(POSTFIX_NAMES, ("PLAIN", "LOGIN"))
    # Why contrib/ has a filter: the stock regex lists its mechanisms and its
    # daemon pattern wants "postfix", so these go unnoticed.
    unseen = failures(POSTFIX_NAMES, ("SCRAM-SHA-256",)) + failures(("mailseal",), ("PLAIN",))
    misses: list[tuple[Logged, str | None]] = [(logged, None) for logged, _ in unseen]
    cases = [*hits, *misses]
    log = tmp_path / "maillog"
    lines = write_maillog(log, [logged for logged, _ in cases])
    assert matches(log, STOCK_AUTH) == expected(lines, cases)


def test_contrib_filter_bans_every_mechanism_and_program_name(tmp_path: Path) -> None:
    mechanisms = ("PLAIN", "LOGIN", "SCRAM-SHA-256", "SCRAM-SHA-1", "CRAM-MD5")
    cases: list[tuple[Logged, str | None]] = [
        *failures((*MAILSEAL_NAMES, *POSTFIX_NAMES), mechanisms),
        (
            Logged("mailseal/submission", fmt.sasl_failed("", "192.0.2.50", "PLAIN", "", None)),
            "192.0.2.50",
        ),
        (
            Logged("mailseal", fmt.sasl_aborted("bot.example.net", "2001:db8::60", "LOGIN")),
            "2001:db8::60",
        ),
        # smtpd.c's wording; mailseal has no format function for it yet.
        (
            Logged(
                "mailseal/submission",
                "AUTH command rate limit exceeded: 11 from "
                f"{fmt.host_addr('', '192.0.2.70')} for service submission",
            ),
            "192.0.2.70",
        ),
    ]
    log = tmp_path / "maillog"
    lines = write_maillog(log, [logged for logged, _ in cases])
    assert matches(log, CONTRIB_FILTER) == expected(lines, cases)


def test_contrib_filter_leaves_other_smtpd_lines_alone(tmp_path: Path) -> None:
    host, addr = "client.example.net", "192.0.2.80"
    quiet = [
        Logged("mailseal", fmt.connect_from(host, addr), warning=False),
        Logged("mailseal/submission", fmt.client("4XyZ1", host, addr, ("PLAIN", "alice")), False),
        Logged(
            "mailseal", fmt.disconnect_from(host, addr, [("ehlo", 1, 1), ("auth", 0, 1)]), False
        ),
        Logged(
            "mailseal", fmt.disconnect_from(host, addr, [("ehlo", 1, 1), ("auth", 1, 1)]), False
        ),
        Logged("mailseal", fmt.lost_connection("AUTH", host, addr), warning=False),
        # Not the client's fault: the stock filter skips these too.
        Logged(
            "mailseal",
            fmt.sasl_failed(
                host, addr, "PLAIN", "Connection lost to authentication server", "alice"
            ),
        ),
        Logged(
            "mailseal",
            fmt.sasl_failed(host, addr, "PLAIN", "Invalid authentication mechanism", None),
        ),
        Logged(
            "mailseal",
            f"Connection rate limit exceeded: 99 from {fmt.host_addr(host, addr)} for service smtp",
        ),
    ]
    # One real failure last, so an empty result cannot come from a filter that matches nothing.
    control = fmt.sasl_failed(host, addr, "SCRAM-SHA-256", FAILURE, "alice")
    log = tmp_path / "maillog"
    lines = write_maillog(log, [*quiet, Logged("mailseal", control)])
    # A hand-typed line mailseal does not write: an IMAP server's successful login.
    with log.open("a", encoding="utf-8") as stream:
        stream.write(
            "Nov  9 23:03:17 mx dovecot: imap-login: Login: user=<alice>, rip=192.0.2.80\n"
        )
    assert matches(log, CONTRIB_FILTER) == {lines[-1]: addr}


def test_readme_invocation_counts_the_failures(tmp_path: Path) -> None:
    log = tmp_path / "maillog"
    write_maillog(
        log,
        [
            Logged("mailseal", fmt.connect_from("", "192.0.2.90"), warning=False),
            Logged("mailseal", fmt.sasl_failed("", "192.0.2.90", "SCRAM-SHA-256", FAILURE, "bob")),
            Logged("mailseal", fmt.sasl_failed("", "192.0.2.90", "PLAIN", FAILURE, "bob")),
        ],
    )
    out = fail2ban_regex(str(log), CONTRIB_FILTER)
    assert "Lines: 3 lines, 0 ignored, 2 matched, 1 missed" in out


def test_sample_jail_loads_with_the_filter(tmp_path: Path) -> None:
    """fail2ban-client accepts the sample jail, switched on, beside Debian's stock config."""
    etc = tmp_path / "fail2ban"
    shutil.copytree("/etc/fail2ban", etc, ignore=shutil.ignore_patterns("jail.d"))
    (etc / "jail.d").mkdir()
    shutil.copy(CONTRIB / "filter.d" / "mailseal-sasl.conf", etc / "filter.d")
    log = tmp_path / "maillog"
    log.touch()
    jail = (CONTRIB / "jail.d" / "mailseal.conf").read_text(encoding="utf-8")
    assert "enabled  = false" in jail  # the sample ships switched off
    jail = jail.replace("enabled  = false", "enabled  = true")
    jail = jail.replace("/var/lib/mailseal/log/maillog", str(log))
    (etc / "jail.d" / "mailseal.conf").write_text(jail, encoding="utf-8")
    result = subprocess.run(
        [need("fail2ban-client"), "-c", str(etc), "-d"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "['add', 'mailseal-sasl', 'auto']" in result.stdout
    assert f"['set', 'mailseal-sasl', 'addlogpath', '{log}', 'head']" in result.stdout
    assert "SASL [\\\\w-]+ authentication" in result.stdout
