"""The smtp agent against scripted servers and real mailseal receivers: what each reply means.

Every delivery is real SMTP over loopback sockets. Outcomes are checked as
Postfix's smtp(8) reports them: status, DSN code, the reason text and the lines
logged under the delivery's smtp number.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from smtp_agent_scripted import ScriptedServer
from smtp_agent_support import Sender, agent_config, request

from mailseal.testing.dns_stub import DnsStub
from mailseal.testing.server import Instance

DnsFactory = Callable[[str], DnsStub]


@pytest.fixture
def sender_for(tmp_path: Path) -> Iterator[Callable[..., Sender]]:
    made: list[Sender] = []

    def make(**settings: str) -> Sender:
        sender = Sender(agent_config(tmp_path, **settings))
        made.append(sender)
        return sender

    yield make
    for sender in made:
        sender.close()


def dns_settings(stub: DnsStub, port: int) -> dict[str, str]:
    host, dns_port = stub.address
    return {"dns_servers": f"[{host}]:{dns_port}", "smtp_tcp_port": str(port)}


def test_second_mx_takes_the_mail_when_the_first_refuses_connections(
    server: Instance, dns: DnsFactory, sender_for: Callable[..., Sender]
) -> None:
    stub = dns(
        "example.test. 60 IN MX 10 mx1.example.test.\n"
        "example.test. 60 IN MX 20 mx2.example.test.\n"
        "mx1.example.test. 60 IN A 127.0.0.2\n"  # nothing listens there: refused
        "mx2.example.test. 60 IN A 127.0.0.1\n"
    )
    sender = sender_for(**dns_settings(stub, server.ports.smtp))
    [result] = sender.deliver(request("example.test"))
    port = server.ports.smtp
    assert (result.status, result.dsn) == ("sent", "2.0.0")
    assert result.relay == f"mx2.example.test[127.0.0.1]:{port}"
    assert result.remote_mta == "mx2.example.test"
    assert result.reason.startswith("250 2.0.0 Ok: queued as ")
    assert f"connect to mx1.example.test[127.0.0.2]:{port}: Connection refused" in sender.log()
    server.process.wait_delivered(1)


def test_one_recipient_refused_one_accepted(
    server: Instance, sender_for: Callable[..., Sender]
) -> None:
    sender = sender_for()
    nexthop = f"[127.0.0.1]:{server.ports.smtp}"
    good, bad = sender.deliver(request(nexthop, "postmaster@example.test", "nobody@example.test"))
    assert (good.status, good.dsn) == ("sent", "2.0.0")
    assert (bad.status, bad.dsn) == ("bounced", "5.1.1")
    assert bad.reason.startswith("host 127.0.0.1[127.0.0.1] said: 550 5.1.1 <nobody@example.test>")
    assert bad.reason.endswith("(in reply to RCPT TO command)")
    assert bad.diagnostic is not None and bad.diagnostic.startswith("550 5.1.1 ")
    assert bad.relay == good.relay == f"127.0.0.1[127.0.0.1]:{server.ports.smtp}"
    assert server.process.wait_delivered(1)


def test_temporary_rcpt_refusal_defers(sender_for: Callable[..., Sender]) -> None:
    with ScriptedServer(
        rcpt={"later@example.test": "450 4.2.0 <later@example.test>: busy"}
    ) as peer:
        sender = sender_for()
        now, later = sender.deliver(
            request(f"[127.0.0.1]:{peer.port}", "now@example.test", "later@example.test")
        )
    assert (now.status, later.status, later.dsn) == ("sent", "deferred", "4.2.0")
    assert later.reason == (
        "host 127.0.0.1[127.0.0.1] said: 450 4.2.0 <later@example.test>: busy "
        "(in reply to RCPT TO command)"
    )
    assert len(peer.messages) == 1


def test_soft_failure_at_first_mx_moves_recipients_to_the_second(
    dns: DnsFactory, sender_for: Callable[..., Sender]
) -> None:
    with (
        ScriptedServer(host="127.0.0.1", replies={"MAIL": "451 4.3.0 try later"}) as first,
        ScriptedServer(host="127.0.0.2", port=first.port) as second,
    ):
        stub = dns(
            "two.test. 60 IN MX 10 a.two.test.\n"
            "two.test. 60 IN MX 20 b.two.test.\n"
            "a.two.test. 60 IN A 127.0.0.1\n"
            "b.two.test. 60 IN A 127.0.0.2\n"
        )
        sender = sender_for(**dns_settings(stub, first.port))
        [result] = sender.deliver(request("two.test", "u@two.test", queue_id="4SoftMx"))
    assert result.status == "sent"
    assert result.relay == f"b.two.test[127.0.0.2]:{first.port}"
    assert (
        "4SoftMx: host a.two.test[127.0.0.1] said: 451 4.3.0 try later "
        "(in reply to MAIL FROM command)" in sender.log()
    )
    assert first.messages == [] and len(second.messages) == 1


def test_greeting_554_is_skipped_as_temporary(sender_for: Callable[..., Sender]) -> None:
    with ScriptedServer(greeting="554 5.7.1 go away") as peer:
        [result] = sender_for().deliver(request(f"[127.0.0.1]:{peer.port}"))
    assert (result.status, result.dsn) == ("deferred", "4.7.1")
    assert result.reason == "host 127.0.0.1[127.0.0.1] refused to talk to me: 554 5.7.1 go away"


def test_greeting_554_bounces_without_skip(sender_for: Callable[..., Sender]) -> None:
    with ScriptedServer(greeting="554 5.7.1 go away") as peer:
        sender = sender_for(smtp_skip_5xx_greeting="no")
        [result] = sender.deliver(request(f"[127.0.0.1]:{peer.port}"))
    assert (result.status, result.dsn) == ("bounced", "5.7.1")


def test_silent_server_times_out(sender_for: Callable[..., Sender]) -> None:
    with ScriptedServer(silent=True) as peer:
        sender = sender_for(smtp_helo_timeout="1s")
        [result] = sender.deliver(request(f"[127.0.0.1]:{peer.port}"))
    assert (result.status, result.dsn) == ("deferred", "4.4.2")
    assert result.reason == (
        "conversation with 127.0.0.1[127.0.0.1] timed out while receiving the initial server "
        "greeting"
    )


def test_message_over_the_size_limit_bounces(sender_for: Callable[..., Sender]) -> None:
    with ScriptedServer(capabilities=("SIZE 100", "PIPELINING")) as peer:
        [result] = sender_for().deliver(request(f"[127.0.0.1]:{peer.port}"))
    assert (result.status, result.dsn) == ("bounced", "5.3.4")
    assert "exceeds size limit 100 of server 127.0.0.1[127.0.0.1]" in result.reason
    assert not any(c.startswith("MAIL") for c in peer.commands)


def test_utf8_mail_needs_smtputf8(sender_for: Callable[..., Sender]) -> None:
    with ScriptedServer() as peer:
        req = request(f"[127.0.0.1]:{peer.port}", "jösé@example.test", smtputf8=True)
        [result] = sender_for().deliver(req)
    assert (result.status, result.dsn) == ("bounced", "5.6.7")
    assert result.reason == (
        "SMTPUTF8 is required, but was not offered by host 127.0.0.1[127.0.0.1]"
    )
    assert peer.messages == []


def test_dsn_parameters_are_sent_when_offered(sender_for: Callable[..., Sender]) -> None:
    with ScriptedServer() as peer:
        [result] = sender_for().deliver(request(f"[127.0.0.1]:{peer.port}", "a+b@example.test"))
    assert result.status == "sent"
    assert "RCPT TO:<a+b@example.test> ORCPT=rfc822;a+2Bb@example.test" in peer.commands


def test_null_mx_bounces(dns: DnsFactory, sender_for: Callable[..., Sender]) -> None:
    stub = dns("nullmx.test. 60 IN MX 0 .\n")
    [result] = sender_for(**dns_settings(stub, 25)).deliver(request("nullmx.test", "u@nullmx.test"))
    assert (result.status, result.dsn, result.relay) == ("bounced", "5.1.0", "none")
    assert result.reason == "Domain nullmx.test does not accept mail (nullMX)"


def test_servfail_defers(dns: DnsFactory, sender_for: Callable[..., Sender]) -> None:
    stub = dns("ok.test. 60 IN A 127.0.0.1\n;; SERVFAIL broken.test.\n")
    [result] = sender_for(**dns_settings(stub, 25)).deliver(request("broken.test", "u@broken.test"))
    assert (result.status, result.dsn) == ("deferred", "4.4.3")
    assert result.reason == (
        "Host or domain name not found. Name service error for name=broken.test type=MX: "
        "Host not found, try again"
    )


def test_bad_nexthop_port_defers(sender_for: Callable[..., Sender]) -> None:
    [result] = sender_for().deliver(request("[127.0.0.1]:no-such-service-x"))
    assert (result.status, result.dsn) == ("deferred", "4.3.5")
    assert result.reason == "unknown service: no-such-service-x/tcp"


def test_connection_is_reused_for_the_next_delivery(
    server: Instance, sender_for: Callable[..., Sender]
) -> None:
    sender = sender_for(smtp_connection_cache_time_limit="10s")
    nexthop = f"[127.0.0.1]:{server.ports.smtp}"
    first = sender.deliver(request(nexthop, queue_id="4Reuse1"))
    second = sender.deliver(request(nexthop, queue_id="4Reuse2"))
    assert [r.status for r in first + second] == ["sent", "sent"]
    assert first[0].number != second[0].number
    # log_adhoc.c's conn_use=: 1 for a new session (not logged), 2 for its second use.
    assert [r.conn_use for r in first + second] == [1, 2]
    server.process.wait_delivered(2)
    assert server.process.maillog().count(": connect from localhost[127.0.0.1]") == 1


def test_no_reuse_without_the_cache(server: Instance, sender_for: Callable[..., Sender]) -> None:
    sender = sender_for(smtp_connection_cache_on_demand="no")
    nexthop = f"[127.0.0.1]:{server.ports.smtp}"
    for queue_id in ("4Fresh1", "4Fresh2"):
        assert sender.deliver(request(nexthop, queue_id=queue_id))[0].status == "sent"
    server.process.wait_delivered(2)
    server.process.wait_log(r"disconnect from localhost\[127\.0\.0\.1\]", count=2)
    assert server.process.maillog().count(": connect from localhost[127.0.0.1]") == 2


def test_421_during_the_transaction_defers_everyone(sender_for: Callable[..., Sender]) -> None:
    with ScriptedServer(replies={"RCPT": "421 4.7.0 closing"}) as peer:
        sender = sender_for()
        results = sender.deliver(request(f"[127.0.0.1]:{peer.port}", "a@x.example", "b@x.example"))
    assert [(r.status, r.dsn) for r in results] == [("deferred", "4.7.0")] * 2
    assert results[0].reason == (
        "host 127.0.0.1[127.0.0.1] said: 421 4.7.0 closing (in reply to RCPT TO command)"
    )
    assert peer.messages == []


def test_server_that_hangs_up_after_its_greeting(sender_for: Callable[..., Sender]) -> None:
    with ScriptedServer(greeting="220 bye now", replies={}, capabilities=()) as peer:
        peer.hang_up_after_greeting = True
        [result] = sender_for().deliver(request(f"[127.0.0.1]:{peer.port}"))
    assert (result.status, result.dsn) == ("deferred", "4.4.2")
    assert result.reason == (
        "lost connection with 127.0.0.1[127.0.0.1] while performing the EHLO handshake"
    )


def test_a_dead_cached_session_is_replaced_transparently(
    sender_for: Callable[..., Sender],
) -> None:
    with ScriptedServer() as peer:
        sender = sender_for(smtp_connection_cache_time_limit="10s")
        nexthop = f"[127.0.0.1]:{peer.port}"
        assert sender.deliver(request(nexthop, queue_id="4Cached1"))[0].status == "sent"
        peer.drop_connections()
        [again] = sender.deliver(request(nexthop, queue_id="4Cached2"))
        assert sender.deliver(request(nexthop, queue_id="4Cached3"))[0].status == "sent"
    assert again.status == "sent"
    assert peer.connections == 2  # the second and third deliveries shared one session
    # The probe of the dead session reached no one; the one before the third delivery did.
    assert peer.commands.count("RSET") == 1
    assert len(peer.messages) == 3
