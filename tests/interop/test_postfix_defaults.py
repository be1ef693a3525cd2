"""Every parameter mailseal shares with Postfix has Postfix's default, unless listed here.

Compared with ``postconf -d`` of Debian's Postfix, parameter by parameter. The
deliberate differences are listed with their reason; anything else that differs
is a bug in the parameter table.
"""

import shutil
import subprocess
from pathlib import Path

import pytest

from mailseal.config.facts import SystemFacts
from mailseal.config.model import PARAMS, Config, default_text

pytestmark = pytest.mark.interop

POSTCONF = "/usr/sbin/postconf"

DELIBERATE = {
    # mailseal's own installation, not Postfix's.
    "config_directory": "mailseal's directory (computed from -c)",
    "daemon_directory": "mailseal's directory",
    "data_directory": "mailseal's directory",
    "queue_directory": "mailseal's directory",
    "meta_directory": "mailseal's directory ($config_directory)",
    "sample_directory": "mailseal's directory ($config_directory)",
    "readme_directory": "mailseal installs no README files",
    "html_directory": "mailseal installs no HTML files",
    "mail_name": "the product's name",
    "syslog_name": "log lines start with mailseal/ unless set to postfix",
    "mail_owner": "mailseal's account",
    "setgid_group": "mailseal's group",
    # Newer, safer defaults.
    "compatibility_level": "new installations get current Postfix (3.11) defaults",
    "smtp_tls_security_level": "Postfix 3.11: may at compatibility level 3.11",
    "smtpd_forbid_bare_newline": "Postfix 3.9+ default (SMTP smuggling defence)",
    "smtpd_forbid_unauth_pipelining": "Postfix 3.9+ default",
    "smtpd_per_request_deadline": "a trickling client cannot hold a session past smtpd_timeout",
    "mynetworks": "loopback only: mailseal does not enumerate interfaces",
    "smtpd_sasl_type": "mailseal's built-in passwd-file backend",
}


def postfix_defaults(tmp_path: Path) -> dict[str, str]:
    if not Path(POSTCONF).exists():
        pytest.fail("Postfix's postconf is not installed: run ./dev test (it installs postfix)")
    (tmp_path / "main.cf").write_text("")
    # With the stock services, Postfix also lists per-transport parameters (relay_...).
    shutil.copy("/usr/share/postfix/master.cf.dist", tmp_path / "master.cf")
    output = subprocess.run(
        [POSTCONF, "-c", str(tmp_path), "-d"], capture_output=True, text=True, check=True
    ).stdout
    pairs = (line.partition(" =") for line in output.splitlines())
    return {name: value.strip() for name, _, value in pairs}


def test_shared_defaults_equal_postfix_defaults(tmp_path: Path) -> None:
    theirs = postfix_defaults(tmp_path)
    config = Config({}, SystemFacts(hostname="vm", config_directory=str(tmp_path)))
    differences = {
        name: (default_text(param, config.facts, config.expanded), theirs[name])
        for name, param in PARAMS.items()
        if name in theirs and name not in DELIBERATE and name != "myhostname"
        if default_text(param, config.facts, config.expanded) != theirs[name]
    }
    assert differences == {}


def test_deliberate_differences_still_differ(tmp_path: Path) -> None:
    # A listed difference that no longer differs should leave the list.
    theirs = postfix_defaults(tmp_path)
    config = Config({}, SystemFacts(hostname="vm", config_directory="/etc/mailseal"))
    same = [
        name
        for name in DELIBERATE
        if default_text(PARAMS[name], config.facts, config.expanded) == theirs.get(name)
    ]
    assert same == []


def test_most_of_the_table_is_postfix(tmp_path: Path) -> None:
    theirs = postfix_defaults(tmp_path)
    ours_only = sorted(set(PARAMS) - set(theirs))
    assert ours_only == [
        "dns_servers",  # mailseal: where the smtp client asks DNS (tests point it at a stub)
        "event_loop",  # mailseal: uvloop or asyncio's own loop
        "maillog_json_file",  # mailseal: structured log sink
        "metrics_listen_address",  # mailseal: Prometheus listener
        "smtp_log_tls_field",  # Postfix 3.11's tls= field, opt-in
        "smtpd_client_connection_limit_exceptions",  # obsolete name, still in old configs
        "smtpd_hide_client_session",  # Postfix 3.8+
        "smtpd_pregreet_exclusions",  # mailseal's pre-greeting test (postscreen's, in smtpd)
        "smtpd_pregreet_wait",
        "smtpd_sasl_passwd_file",  # mailseal's built-in SASL backend
        "smtpd_sasl_verify_concurrency",
        "smtpd_worker_processes",  # mailseal: smtpd processes the master hands connections to
        "virtual_maps",  # obsolete name, still in old configs
    ]
