"""SMTP client core: greeting, EHLO/HELO, capabilities, STARTTLS, RSET/NOOP/QUIT, closing."""

from __future__ import annotations

import pytest
from smtp_client_script import (
    EHLO_PIPELINING,
    GREETING,
    Step,
    check_splits,
    ehlo,
    run,
    settings,
)

from mailseal.smtp.client import Phase, SmtpClient
from mailseal.smtp.client_capabilities import Capabilities
from mailseal.smtp.client_events import (
    Closed,
    Greeting,
    Helo,
    Noop,
    ProtocolError,
    Quit,
    Rset,
    SmtpClientUsageError,
    StartTls,
)
from mailseal.smtp.reply import Reply


def test_greeting_then_ehlo_capabilities() -> None:
    t = check_splits([GREETING, ehlo, EHLO_PIPELINING])
    assert t.sent == b"EHLO client.example\r\n"
    greeting, helo = t.events
    assert greeting == Greeting(Reply(220, "", ("mx.example ESMTP",)))
    assert isinstance(helo, Helo)
    assert helo.extended
    assert helo.reply.lines[0] == "mx.example"
    caps = helo.capabilities
    assert caps.pipelining and caps.chunking and caps.eightbitmime and caps.dsn
    assert caps.enhanced_status_codes
    assert not caps.starttls and not caps.smtputf8
    assert caps.size == 10240000
    assert caps.has("size") and not caps.has("VRFY")
    assert t.client.ready and t.client.extended
    assert t.client.capabilities == caps


def test_capability_parsing_auth_forms_and_size() -> None:
    reply = Reply(
        250,
        "",
        ("mx", "AUTH PLAIN login", "AUTH=LOGIN CRAM-MD5", "SIZE", "x-weird_kw", "STARTTLS"),
    )
    caps = Capabilities.from_ehlo(reply)
    assert caps.auth_mechanisms == ("PLAIN", "LOGIN", "CRAM-MD5")
    assert caps.size == 0
    assert caps.starttls
    assert not caps.has("X-WEIRD_KW")  # not an ehlo-keyword
    assert Capabilities.from_ehlo(Reply(250, "", ("mx", "SIZE 0"))).size == 0
    assert Capabilities.from_ehlo(Reply(250, "", ("mx", "SIZE lots"))).size == 0
    assert Capabilities.from_ehlo(Reply(250, "", ("mx", "PIPELINING"))).size is None
    assert Capabilities().auth_mechanisms == ()


def test_helo_fallback_after_502() -> None:
    t = check_splits(
        [GREETING, ehlo, b"502 5.5.2 Error: command not recognized\r\n", b"250 mx.example\r\n"]
    )
    assert t.sent == b"EHLO client.example\r\nHELO client.example\r\n"
    helo = t.of_type(Helo)[0]
    assert helo == Helo(
        Reply(250, "", ("mx.example",)),
        extended=False,
        capabilities=Capabilities(),
        refused_ehlo=Reply(502, "", ("5.5.2 Error: command not recognized",)),
    )
    assert not t.client.extended


def test_helo_fallback_refused_too() -> None:
    t = run([GREETING, ehlo, b"500 no\r\n", b"501 nope\r\n"])
    helo = t.of_type(Helo)[0]
    assert helo.reply.code == 501 and not helo.extended
    assert t.client.ready


def test_helo_only() -> None:
    t = run([GREETING, lambda c: c.helo(), b"250 mx.example\r\n"])
    assert t.sent == b"HELO client.example\r\n"
    assert t.of_type(Helo)[0].extended is False


def test_ehlo_421_closes_without_helo() -> None:
    t = run([GREETING, ehlo, b"421 4.3.2 Service shutting down\r\n"])
    assert t.sent == b"EHLO client.example\r\n"
    assert isinstance(t.events[-1], Closed)
    assert t.events[-1].reply is not None and t.events[-1].reply.code == 421
    assert isinstance(t.events[-2], Helo)
    assert t.client.closed


def test_starttls_then_ehlo_again() -> None:
    ehlo_tls = b"250-mx.example\r\n250-PIPELINING\r\n250 STARTTLS\r\n"
    ehlo_after = b"250-mx.example\r\n250-PIPELINING\r\n250 AUTH PLAIN\r\n"
    steps: list[Step] = [
        GREETING,
        ehlo,
        ehlo_tls,
        lambda c: c.starttls(),
        b"220 2.0.0 Ready to start TLS\r\n",
        lambda c: c.tls_established(),
        ehlo,
        ehlo_after,
    ]
    t = check_splits(steps)
    assert t.sent == b"EHLO client.example\r\nSTARTTLS\r\nEHLO client.example\r\n"
    starttls = t.of_type(StartTls)[0]
    assert starttls.reply.code == 220
    helos = t.of_type(Helo)
    assert helos[0].capabilities.starttls
    assert helos[1].capabilities.auth_mechanisms == ("PLAIN",)
    assert t.client.tls_active


def test_tls_established_forgets_capabilities() -> None:
    t = run([GREETING, ehlo, b"250-mx\r\n250 STARTTLS\r\n", lambda c: c.starttls(), b"220 go\r\n"])
    client = t.client
    assert client.phase is Phase.STARTTLS
    assert not client.ready
    with pytest.raises(SmtpClientUsageError):
        client.ehlo()
    client.tls_established()
    assert client.capabilities == Capabilities()
    assert client.ready
    with pytest.raises(SmtpClientUsageError):
        client.starttls()


def test_plaintext_after_starttls_220_is_refused() -> None:
    # Injected bytes behind the 220 must never be read as if they came over TLS.
    start: list[Step] = [GREETING, ehlo, b"250-mx\r\n250 STARTTLS\r\n", lambda c: c.starttls()]
    t = run([*start, b"220 go\r\n250 injected\r\n"])
    assert isinstance(t.events[-1], ProtocolError)
    assert t.events[-1].reason == "unexpected plaintext after STARTTLS reply"
    assert t.client.closed
    later = run([GREETING, ehlo, b"250-mx\r\n250 STARTTLS\r\n", lambda c: c.starttls()])
    later.client.receive_data(b"220 go\r\n")
    later.client.receive_data(b"x")
    events = []
    while (e := later.client.next_event()) is not None:
        events.append(e)
    assert isinstance(events[-1], ProtocolError)


def test_starttls_refused_stays_plaintext() -> None:
    t = run([GREETING, ehlo, b"250 mx\r\n", lambda c: c.starttls(), b"454 4.7.0 no TLS\r\n"])
    assert t.of_type(StartTls)[0].reply.code == 454
    assert t.client.ready and not t.client.tls_active
    with pytest.raises(SmtpClientUsageError):
        t.client.tls_established()


def test_rset_noop_quit_then_close() -> None:
    steps: list[Step] = [
        GREETING,
        lambda c: c.rset(),
        b"250 2.0.0 Ok\r\n",
        lambda c: c.noop(),
        b"250 2.0.0 Ok\r\n",
        lambda c: c.quit(),
        b"221 2.0.0 Bye\r\n",
        b"",
    ]
    t = check_splits(steps)
    assert t.sent == b"RSET\r\nNOOP\r\nQUIT\r\n"
    assert [type(e) for e in t.events] == [Greeting, Rset, Noop, Quit, Closed]
    assert t.events[-1] == Closed(None)
    assert t.client.closed


def test_no_operation_after_quit() -> None:
    t = run([GREETING, lambda c: c.quit(), b"221 Bye\r\n"])
    assert t.client.phase is Phase.QUIT
    with pytest.raises(SmtpClientUsageError):
        t.client.noop()


def test_operations_need_ready() -> None:
    client = SmtpClient(settings())
    with pytest.raises(SmtpClientUsageError, match="waiting for the greeting"):
        client.ehlo()
    client.receive_data(GREETING)
    client.noop()
    with pytest.raises(SmtpClientUsageError, match="operation in progress"):
        client.rset()


def test_greeting_refused_with_554_allows_quit() -> None:
    t = run([b"554 5.7.1 go away\r\n", lambda c: c.quit(), b"221 Bye\r\n"])
    assert t.of_type(Greeting)[0].reply.code == 554
    assert t.sent == b"QUIT\r\n"


def test_greeting_421_closes() -> None:
    t = run([b"421 4.3.2 busy\r\n"])
    assert [type(e) for e in t.events] == [Greeting, Closed]
    with pytest.raises(SmtpClientUsageError):
        t.client.noop()


def test_pre_greeting_garbage_is_a_protocol_error() -> None:
    t = check_splits([b"hello there\r\n"])
    assert t.events == [ProtocolError("non-SMTP response", "hello there")]
    assert t.client.closed


def test_reply_without_a_command_is_a_protocol_error() -> None:
    t = check_splits([GREETING + b"250 extra\r\n"])
    assert isinstance(t.events[0], Greeting)
    assert t.events[1] == ProtocolError("unexpected data without a command", "250 extra")


def test_extra_reply_after_a_command() -> None:
    t = run([GREETING, lambda c: c.noop(), b"250 ok\r\n250 again\r\n"])
    assert [type(e) for e in t.events] == [Greeting, Noop, ProtocolError]


def test_closed_client_ignores_input_and_sends_nothing() -> None:
    t = run([GREETING, lambda c: c.noop(), b"", b"250 late\r\n"])
    assert t.events[-1] == Closed(None)
    assert t.sent == b"NOOP\r\n"
    assert t.client.data_to_send() == b""


def test_bad_settings() -> None:
    with pytest.raises(ValueError, match="HELO name"):
        settings(helo_name="a b")
    with pytest.raises(ValueError, match="HELO name"):
        settings(helo_name="a\r\nRSET")
    with pytest.raises(ValueError):
        settings(max_line_length=100)
