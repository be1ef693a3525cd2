"""A STARTTLS-stripping peer: it offers STARTTLS, answers 220, then hangs up or sends plaintext.

At ``may`` the mail goes to the next MX, or (message old enough, or the failure
remembered) to the same server in plaintext, as Postfix does; at every level
that requires TLS it is deferred and never sent in plaintext, whatever its age.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import trustme
from smtp_agent_scripted import ScriptedServer
from smtp_agent_support import Sender, agent_config, request

from mailseal.testing.dns_stub import DnsStub

HANDSHAKE = "Cannot start TLS: handshake failure"
DAY = 86400.0


@pytest.fixture(params=["close", "garbage"])
def stripper(request: pytest.FixtureRequest) -> Iterator[ScriptedServer]:
    with ScriptedServer(starttls=request.param) as peer:
        yield peer


@pytest.fixture
def make_sender(tmp_path: Path, ca: trustme.CA) -> Iterator[Callable[..., Sender]]:
    made: list[Sender] = []
    ca_file = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(ca_file))

    def make(**settings: str) -> Sender:
        sender = Sender(agent_config(tmp_path, smtp_tls_CAfile=str(ca_file), **settings))
        made.append(sender)
        return sender

    yield make
    for sender in made:
        sender.close()


@pytest.mark.parametrize("level", ["encrypt", "fingerprint", "verify", "secure"])
def test_required_tls_is_deferred_and_never_plaintext(
    stripper: ScriptedServer, make_sender: Callable[..., Sender], level: str
) -> None:
    sender = make_sender(smtp_tls_security_level=level, smtp_tls_fingerprint_cert_match="AA:BB")
    nexthop = f"[127.0.0.1]:{stripper.port}"
    for age in (0.0, DAY):  # an old message gets no plaintext retry either
        [result] = sender.deliver(request(nexthop, age=age))
        assert (result.status, result.dsn, result.reason) == ("deferred", "4.7.5", HANDSHAKE)
    assert stripper.connections == 2
    assert not any(c.upper().startswith(("MAIL", "RCPT", "DATA")) for c in stripper.commands)
    assert stripper.messages == []


def test_may_defers_a_new_message_then_remembers(
    stripper: ScriptedServer, make_sender: Callable[..., Sender]
) -> None:
    sender = make_sender(smtp_tls_security_level="may")
    nexthop = f"[127.0.0.1]:{stripper.port}"
    [first] = sender.deliver(request(nexthop, queue_id="4First"))
    assert (first.status, first.dsn, first.reason) == ("deferred", "4.7.5", HANDSHAKE)
    assert stripper.messages == []
    [second] = sender.deliver(request(nexthop, queue_id="4Second"))
    assert (second.status, second.tls_level) == ("sent", "none")
    assert len(stripper.messages) == 1
    assert f"127.0.0.1[127.0.0.1]:{stripper.port}: cleartext fallback" in sender.log()


def test_may_retries_an_old_message_in_plaintext_at_once(
    stripper: ScriptedServer, make_sender: Callable[..., Sender]
) -> None:
    sender = make_sender(smtp_tls_security_level="may")
    [result] = sender.deliver(request(f"[127.0.0.1]:{stripper.port}", age=DAY, queue_id="4Old"))
    assert result.status == "sent"
    assert stripper.connections == 2
    assert len(stripper.messages) == 1
    assert f"4Old: {HANDSHAKE}" in sender.log()


def test_may_next_mx_after_a_stripped_first(
    make_sender: Callable[..., Sender], dns: Callable[[str], DnsStub]
) -> None:
    with (
        ScriptedServer(host="127.0.0.2", starttls="close") as first,
        ScriptedServer(host="127.0.0.1", port=first.port) as second,
    ):
        stub = dns(
            "strip.test. 60 IN MX 10 a.strip.test.\n"
            "strip.test. 60 IN MX 20 b.strip.test.\n"
            "a.strip.test. 60 IN A 127.0.0.2\n"
            "b.strip.test. 60 IN A 127.0.0.1\n"
        )
        host, port = stub.address
        sender = make_sender(
            smtp_tls_security_level="may",
            dns_servers=f"[{host}]:{port}",
            smtp_tcp_port=str(first.port),
        )
        [result] = sender.deliver(request("strip.test", "u@strip.test", queue_id="4Next"))
    assert result.status == "sent"
    assert result.relay == f"b.strip.test[127.0.0.1]:{first.port}"
    assert first.messages == [] and len(second.messages) == 1
    assert f"4Next: {HANDSHAKE}" in sender.log()
