"""Replies to outcomes in Postfix's words, the recipient ledger, and the small pure helpers."""

import pytest

from mailseal.config.tables import open_table
from mailseal.delivery.smtp.agent import needs_smtputf8
from mailseal.delivery.smtp.nexthop import Target
from mailseal.delivery.smtp.request import SmtpRequest
from mailseal.delivery.smtp.results import (
    Failure,
    Ledger,
    Timing,
    reply_dsn,
    reply_failure,
    reply_text,
    soften,
)
from mailseal.delivery.smtp.sasl import Credentials, choose_mechanism, find_credentials
from mailseal.delivery.smtp.tls_memory import TlsFailureMemory
from mailseal.delivery.smtp.transaction import mail_params, rcpt_params, xtext
from mailseal.queue.envelope import Envelope, Recipient
from mailseal.smtp.reply import Reply

MX = Target("mx.example.com", "192.0.2.1", 25, from_dns_mx=True, best_mx=True)


def test_reply_text_and_code_as_postfix_shows_them() -> None:
    reply = Reply(550, "5.1.1", ("The account does not exist.", "See https://x.example/"))
    assert reply_text(reply) == (
        "550-5.1.1 The account does not exist. 550 5.1.1 See https://x.example/"
    )
    assert reply_dsn(reply) == "5.1.1"
    # No ENHANCEDSTATUSCODES, but the text starts with a code of the right class.
    assert reply_dsn(Reply(554, "", ("5.7.1 go away",))) == "5.7.1"
    assert reply_dsn(Reply(554, "", ("4.7.1 wrong class",))) == "5.0.0"
    assert reply_dsn(Reply(421, "", ("mx.example.com closing",))) == "4.0.0"


def test_reply_failure_reason() -> None:
    failure = reply_failure(Reply(550, "5.1.1", ("<u@d>: User unknown",)), MX, "RCPT TO command")
    assert failure == Failure(
        "5.1.1",
        "host mx.example.com[192.0.2.1] said: 550 5.1.1 <u@d>: User unknown "
        "(in reply to RCPT TO command)",
        "mx.example.com",
        "550 5.1.1 <u@d>: User unknown",
    )
    assert not failure.soft
    assert soften(failure).dsn == "4.1.1" and soften(failure).soft


def test_a_positive_reply_where_a_refusal_is_due_is_a_protocol_error() -> None:
    failure = reply_failure(Reply(354, "", ("go ahead",)), MX, "RCPT TO command")
    assert failure.dsn == "5.5.0"
    assert failure.reason.startswith("Protocol error: host mx.example.com[192.0.2.1] said: 354")


def _request(
    *addresses: str, smtputf8: bool = False, content: bytes = b"S: x\r\n\r\nb\r\n"
) -> SmtpRequest:
    rcpts = tuple(Recipient(a, a) for a in addresses)
    envelope = Envelope("s@x.example", rcpts, 0.0, smtputf8=smtputf8)
    return SmtpRequest("4ID", "example.com", "s@x.example", rcpts, content, envelope)


def test_ledger_keeps_request_order_and_refuses_double_results() -> None:
    ledger = Ledger(_request("a@x", "b@x", "c@x"), number=7)
    timing = Timing(0.5, 0.25)
    ledger.sent(1, MX, Reply(250, "2.0.0", ("Ok: queued as Q",)), timing, "may")
    ledger.failed([0, 2], Failure("4.4.1", "connect to ..."), "none", timing, "may")
    assert ledger.pending == []
    a, b, c = ledger.results()
    assert (a.status, b.status, c.status) == ("deferred", "sent", "deferred")
    assert b.reason == "250 2.0.0 Ok: queued as Q" and b.relay == "mx.example.com[192.0.2.1]:25"
    assert (b.number, b.setup, b.transmission) == (7, 0.5, 0.25)
    with pytest.raises(RuntimeError):
        ledger.failed([1], Failure("5.0.0", "x"), "none", timing, "may")
    unfinished = Ledger(_request("a@x"), number=1)
    with pytest.raises(RuntimeError):
        unfinished.results()


def test_envelope_parameters() -> None:
    assert xtext("a+b=c d@é") == "a+2Bb+3Dc+20d@+C3+A9"
    envelope = Envelope("s@x", (), 0.0, envid="ID+2B1", ret="HDRS", smtputf8=True)
    assert mail_params(envelope) == {"SMTPUTF8": "", "RET": "HDRS", "ENVID": "ID+2B1"}
    assert rcpt_params(Recipient("a@x", "orig@x", notify="SUCCESS,DELAY")) == {
        "NOTIFY": "SUCCESS,DELAY",
        "ORCPT": "rfc822;orig@x",
    }
    assert rcpt_params(Recipient("a@x", "", orcpt="rfc822;given@x")) == {"ORCPT": "rfc822;given@x"}


def test_smtputf8_is_needed_only_when_used() -> None:
    assert not needs_smtputf8(_request("a@x.example", smtputf8=True))
    assert needs_smtputf8(_request("jösé@x.example", smtputf8=True))
    assert needs_smtputf8(_request("a@x", smtputf8=True, content="Subject: é\r\n\r\nb".encode()))
    assert not needs_smtputf8(_request("jösé@x.example", smtputf8=False))


@pytest.mark.parametrize(
    ("offered", "options", "wanted", "expected"),
    [
        (("PLAIN", "LOGIN", "SCRAM-SHA-256"), ("noplaintext", "noanonymous"), (), "SCRAM-SHA-256"),
        (("PLAIN", "LOGIN"), ("noplaintext", "noanonymous"), (), None),
        (("PLAIN", "LOGIN"), ("noanonymous",), (), "PLAIN"),
        (("LOGIN", "PLAIN", "SCRAM-SHA-256"), ("noanonymous",), ("login",), "LOGIN"),
        (("SCRAM-SHA-256",), ("nodictionary",), (), None),
        (("CRAM-MD5", "GSSAPI"), (), (), None),
    ],
)
def test_mechanism_choice(
    offered: tuple[str, ...],
    options: tuple[str, ...],
    wanted: tuple[str, ...],
    expected: str | None,
) -> None:
    assert choose_mechanism(offered, mechanism_filter=wanted, options=options) == expected


def test_password_lookup_order() -> None:
    table = open_table(
        "inline:{ mx.example.com=host:pw1, [relay.example]:587=dest:pw2, s@x.example=sender:pw3 }"
    )

    def find(sender: str, host: str, nexthop: str, sender_dependent: bool) -> Credentials | None:
        return find_credentials(
            [table], sender=sender, host=host, nexthop=nexthop, sender_dependent=sender_dependent
        )

    by_host = find(sender="s@x.example", host="mx.example.com", nexthop="x", sender_dependent=False)
    assert by_host is not None and (by_host.username, by_host.password) == ("host", "pw1")
    by_dest = find(
        sender="", host="relay.example", nexthop="[relay.example]:587", sender_dependent=True
    )
    assert by_dest is not None and by_dest.username == "dest"
    by_sender = find(
        sender="s@x.example", host="mx.example.com", nexthop="x", sender_dependent=True
    )
    assert by_sender is not None and by_sender.username == "sender"
    assert "pw3" not in repr(by_sender)
    assert find(sender="", host="other", nexthop="other", sender_dependent=False) is None


def test_tls_failure_memory_forgets_in_time() -> None:
    now = [1000.0]
    memory = TlsFailureMemory(ttl=60.0, limit=2, clock=lambda: now[0])
    memory.remember("MX.example", "192.0.2.1", 25)
    assert memory.failed_recently("mx.example", "192.0.2.1", 25)
    assert not memory.failed_recently("mx.example", "192.0.2.1", 587)
    now[0] += 61
    assert not memory.failed_recently("mx.example", "192.0.2.1", 25)
    for n in range(3):
        memory.remember(f"h{n}", "192.0.2.9", 25)
    assert len(memory) == 2 and not memory.failed_recently("h0", "192.0.2.9", 25)
    memory.forget("h2", "192.0.2.9", 25)
    assert not memory.failed_recently("h2", "192.0.2.9", 25)
