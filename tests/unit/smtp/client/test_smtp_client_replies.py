"""SMTP client core: reading replies (RFC 5321 4.2, RFC 2034), malformed and endless ones."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from smtp_client_script import GREETING, Step, check_splits, ehlo, run
from smtp_client_script import settings as client_settings

from mailseal.smtp.client import SmtpClient
from mailseal.smtp.client_events import Greeting, Helo, Noop, ProtocolError
from mailseal.smtp.client_replies import MalformedReplyError, ReplyReader
from mailseal.smtp.reply import Reply

ENHANCED_EHLO = b"250-mx\r\n250 ENHANCEDSTATUSCODES\r\n"


def read_all(data: bytes, *, enhanced: bool = False, lines: int = 100) -> list[Reply]:
    reader = ReplyReader(max_line_length=512, max_lines=lines)
    buf = bytearray(data)
    out = []
    while (reply := reader.read(buf, enhanced=enhanced)) is not None:
        out.append(reply)
    return out


def test_multiline_and_bare_code_lines() -> None:
    assert read_all(b"250-first\r\n250-\r\n250\r\n") == [Reply(250, "", ("first", "", ""))]
    assert read_all(b"250 \r\n") == [Reply(250, "", ("",))]
    # A bare LF ends a line too (Postfix's smtp_get() reads it).
    assert read_all(b"250-a\n250 b\n") == [Reply(250, "", ("a", "b"))]


def test_enhanced_codes_only_when_asked_and_matching_class() -> None:
    data = b"550-5.1.1 first\r\n550 5.1.1 second\r\n"
    assert read_all(data, enhanced=True) == [Reply(550, "5.1.1", ("first", "second"))]
    assert read_all(data) == [Reply(550, "", ("5.1.1 first", "5.1.1 second"))]
    assert read_all(b"250 5.1.1 odd\r\n", enhanced=True) == [Reply(250, "", ("5.1.1 odd",))]
    assert read_all(b"250 2.0.0\r\n", enhanced=True) == [Reply(250, "2.0.0", ("",))]
    assert read_all(b"250 2.0.0x\r\n", enhanced=True) == [Reply(250, "", ("2.0.0x",))]


def test_unprintable_characters_are_censored() -> None:
    assert read_all(b"250 a\rb\x00c\td\xc3\xa9\xff\r\n") == [
        Reply(250, "", ("a?b?c\td\u00e9\ufffd",))
    ]


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"25 short\r\n", "non-SMTP response"),
        (b"2500 long\r\n", "non-SMTP response"),
        (b"250_x\r\n", "non-SMTP response"),
        (b"abc def\r\n", "non-SMTP response"),
        (b"\r\n", "non-SMTP response"),
        (b"199 low\r\n", "reply code out of range"),
        (b"600 high\r\n", "reply code out of range"),
        (b"250-a\r\n550 b\r\n", "reply code changed within a reply"),
    ],
)
def test_malformed_replies(data: bytes, reason: str) -> None:
    with pytest.raises(MalformedReplyError) as info:
        read_all(data)
    assert info.value.reason == reason
    t = check_splits([data])
    assert len(t.events) == 1
    assert isinstance(t.events[0], ProtocolError)
    assert t.events[0].reason == reason
    assert t.client.closed


def test_malformed_reply_after_a_command() -> None:
    t = run([GREETING, lambda c: c.noop(), b"250-ok\r\n251 changed\r\n"])
    assert [type(e) for e in t.events] == [Greeting, ProtocolError]


def test_overlong_line_is_refused_without_waiting_for_its_end() -> None:
    config = client_settings(max_line_length=600)
    client = SmtpClient(config)
    client.receive_data(b"220 " + b"x" * 596 + b"\r")  # 601 bytes: one CR short, still fine
    assert client.next_event() is None
    client.receive_data(b"y")
    event = client.next_event()
    assert isinstance(event, ProtocolError)
    assert event.reason == "response longer than 600"
    assert client.closed


def test_overlong_complete_line() -> None:
    t = run([b"220 " + b"x" * 3000 + b"\r\n"])
    assert t.events[0] == ProtocolError("response longer than 2048", "220 " + "x" * 26 + "...")


def test_endless_continuation_lines_are_bounded() -> None:
    client = SmtpClient(client_settings(max_reply_lines=10))
    for _ in range(10):
        client.receive_data(b"220-more\r\n")
        assert client.next_event() is None
    client.receive_data(b"220-more\r\n")
    event = client.next_event()
    assert isinstance(event, ProtocolError)
    assert event.reason == "reply longer than 10 lines"
    client.receive_data(b"220-more\r\n" * 1000)  # ignored once closed
    assert client.next_event() is None


def test_exactly_max_lines_is_fine() -> None:
    client = SmtpClient(client_settings(max_reply_lines=3))
    client.receive_data(b"220-a\r\n220-b\r\n220 c\r\n")
    assert client.next_event() == Greeting(Reply(220, "", ("a", "b", "c")))


def test_enhanced_codes_after_ehlo_but_not_in_it() -> None:
    steps: list[Step] = [
        b"220 2.0.0 mx ready\r\n",
        ehlo,
        b"250-2.0.0 mx\r\n250 ENHANCEDSTATUSCODES\r\n",
        lambda c: c.noop(),
        b"250 2.0.0 Ok\r\n",
    ]
    t = check_splits(steps)
    greeting, helo, noop = t.events
    assert greeting == Greeting(Reply(220, "", ("2.0.0 mx ready",)))
    assert isinstance(helo, Helo) and helo.reply.lines[0] == "2.0.0 mx"
    assert noop == Noop(Reply(250, "2.0.0", ("Ok",)))


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=300), st.lists(st.integers(0, 300), max_size=5))
def test_any_bytes_give_events_never_exceptions(data: bytes, cuts: list[int]) -> None:
    client = SmtpClient(client_settings())
    pieces, last = [], 0
    for cut in sorted(cuts):
        pieces.append(data[last:cut])
        last = cut
    pieces.append(data[last:])
    for piece in [*pieces, b""]:
        client.receive_data(piece)
        while client.next_event() is not None:
            pass
        if client.ready:
            client.noop()
    assert client.closed
