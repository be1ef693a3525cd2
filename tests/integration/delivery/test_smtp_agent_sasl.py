"""Relaying through a smarthost with SASL AUTH after STARTTLS: a mailseal submission service.

The receiving instance is ``mailseal init``'s: port 587 needs STARTTLS, then
AUTH. The user is added with ``mailseal passwd`` as an admin would. The sender
finds the login in ``smtp_sasl_password_maps`` under the next hop as written.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from smtp_agent_support import Sender, agent_config, request

from mailseal.testing.process import run_mailseal
from mailseal.testing.server import Instance, Servers

USER, PASSWORD = "alice@example.test", "correct horse battery staple"


@pytest.fixture
def smarthost(servers: Servers) -> Instance:
    instance = servers.start()
    result = run_mailseal("-c", str(instance.directory), "passwd", USER, stdin=PASSWORD + "\n")
    assert result.returncode == 0, result.stderr
    return instance


def relay(smarthost: Instance, tmp_path: Path, password: str, **settings: str) -> Sender:
    nexthop = f"[127.0.0.1]:{smarthost.ports.submission}"
    table = tmp_path / "sasl_passwd"
    table.write_text(f"{nexthop} {USER}:{password}\n")
    config = agent_config(
        tmp_path,
        smtp_tls_security_level="encrypt",
        smtp_sasl_auth_enable="yes",
        smtp_sasl_password_maps=f"texthash:{table}",
        **settings,
    )
    return Sender(config)


@pytest.mark.parametrize(
    ("settings", "mechanism"),
    [
        (
            {
                "smtp_sasl_tls_security_options": "noanonymous",
                "smtp_sasl_mechanism_filter": "plain",
            },
            "PLAIN",
        ),
        (
            {
                "smtp_sasl_tls_security_options": "noanonymous",
                "smtp_sasl_mechanism_filter": "login",
            },
            "LOGIN",
        ),
        ({}, "SCRAM-SHA-256"),
    ],
)
def test_auth_after_starttls(
    smarthost: Instance, tmp_path: Path, settings: dict[str, str], mechanism: str
) -> None:
    sender = relay(smarthost, tmp_path, PASSWORD, **settings)
    try:
        [result] = sender.deliver(request(f"[127.0.0.1]:{smarthost.ports.submission}"))
    finally:
        sender.close()
    assert (result.status, result.dsn, result.tls_level) == ("sent", "2.0.0", "encrypt")
    smarthost.process.wait_log(f"sasl_method={mechanism}, sasl_username={USER}")
    assert smarthost.process.wait_delivered(1)


def test_wrong_password_is_a_soft_bounce(smarthost: Instance, tmp_path: Path) -> None:
    sender = relay(
        smarthost,
        tmp_path,
        "wrong password",
        smtp_sasl_tls_security_options="noanonymous",
        smtp_sasl_mechanism_filter="plain",
    )
    try:
        [result] = sender.deliver(request(f"[127.0.0.1]:{smarthost.ports.submission}"))
    finally:
        sender.close()
    assert (result.status, result.dsn) == ("deferred", "4.7.8")
    assert result.reason.startswith(
        "SASL authentication failed; server 127.0.0.1[127.0.0.1] said: 535 5.7.8 "
    )
    assert smarthost.process.delivered() == []


def test_default_security_options_refuse_plaintext_mechanisms(
    smarthost: Instance, tmp_path: Path
) -> None:
    sender = relay(smarthost, tmp_path, PASSWORD, smtp_sasl_mechanism_filter="plain, login")
    try:
        [result] = sender.deliver(request(f"[127.0.0.1]:{smarthost.ports.submission}"))
    finally:
        sender.close()
    assert (result.status, result.dsn) == ("deferred", "4.7.0")
    assert result.reason == (
        "SASL authentication failed: server 127.0.0.1[127.0.0.1] offered no compatible "
        "authentication mechanisms for this type of connection security"
    )
