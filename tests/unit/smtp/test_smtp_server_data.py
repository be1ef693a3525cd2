"""SMTP server core: DATA content, end-of-data detection, smuggling, sizes, NUL, bare LF."""

from __future__ import annotations

import pytest
from smtp_dialogue import QUEUE_ID, check_splits, run, settings

from mailseal.smtp.content import PARTIAL_LINE
from mailseal.smtp.events import (
    ConnectionClosing,
    DataRequest,
    Event,
    MessageComplete,
    ProtocolViolation,
)
from mailseal.smtp.reply import Reply, reply
from mailseal.smtp.server import Phase

OPEN = [b"EHLO c\r\n", b"MAIL FROM:<a@b>\r\nRCPT TO:<c@d>\r\nDATA\r\n"]


def _content(body: bytes, **config: object) -> bytes:
    t = check_splits([*OPEN, body, b"QUIT\r\n"], settings(**config))
    messages = t.of_type(MessageComplete)
    assert len(messages) == 1, t.replies
    content: bytes = messages[0].content
    return content


def test_dot_unstuffing() -> None:
    body = b"..leading\r\n...two\r\nmid.dle\r\n.\r\n"
    assert _content(body) == b".leading\r\n..two\r\nmid.dle\r\n"


def test_empty_message() -> None:
    assert _content(b".\r\n") == b""


@pytest.mark.parametrize(
    "smuggled",
    [b"\n.\r\n", b"\r\n.\n", b"\n.\n", b"\r.\r\n", b"\r\n.\r", b"\r\n.\rMAIL"],
)
def test_smuggling_variants_do_not_end_data(smuggled: bytes) -> None:
    body = b"a" + smuggled + b"MAIL FROM:<evil@x>\r\nRCPT TO:<v@y>\r\nDATA\r\nevil\r\n.\r\n"
    t = check_splits([*OPEN, body, b"QUIT\r\n"])
    messages = t.of_type(MessageComplete)
    assert len(messages) == 1
    content = messages[0].content
    assert b"MAIL FROM:<evil@x>\r\n" in content
    # No bare LF reaches the content under the default "normalize".
    assert content.replace(b"\r\n", b"").count(b"\n") == 0
    assert t.replies[-2:] == [f"250 2.0.0 Ok: queued as {QUEUE_ID}", "221 2.0.0 Bye"]


def test_bare_lf_lines_are_normalised() -> None:
    assert _content(b"one\ntwo\r\n.\nthree\r\n.\r\n") == b"one\r\ntwo\r\n\r\nthree\r\n"


def test_bare_cr_is_kept_inside_a_line() -> None:
    assert _content(b"a\rb\r\n\r\r\n.\r\n") == b"a\rb\r\n\r\r\n"


def test_bare_newline_no_still_needs_crlf_dot_crlf() -> None:
    assert _content(b"x\n.\ny\r\n.\r\n", bare_newline="no") == b"x\r\n\r\ny\r\n"


def test_bare_newline_yes_is_an_alias_for_normalize() -> None:
    # Postfix >= 3.9 (3.8.5, 3.7.10): "yes" normalises; only "reject" refuses.
    assert _content(b"x\ny\r\n.\r\n", bare_newline="yes") == b"x\r\ny\r\n"


def test_bare_newline_reject_rejects_in_content() -> None:
    config = settings(bare_newline="reject")
    t = check_splits([*OPEN, b"ok\r\nbad\n"], config)
    assert t.replies[-1] == "550 5.5.2 mx.example Error: bare <LF> received"
    assert t.events[-1] == ConnectionClosing("bare <LF> received")
    assert not t.of_type(MessageComplete)


def test_bare_newline_reject_rejects_commands_with_custom_code() -> None:
    t = check_splits([b"EHLO c\n"], settings(bare_newline="reject", bare_newline_reject_code=521))
    assert t.replies == ["521 5.5.2 mx.example Error: bare <LF> received"]
    assert t.closed


def test_bare_lf_ends_commands_when_normalising() -> None:
    t = check_splits([b"NOOP\n"])
    assert t.replies == ["250 2.0.0 Ok"]


def test_data_line_with_bare_lf_then_dot_is_not_an_end() -> None:
    # "DATA\n.\r\n" is "\n.\r\n" on the wire: the dot line is content.
    t = run([b"EHLO c\r\n", b"MAIL FROM:<a@b>\r\nRCPT TO:<c@d>\r\nDATA\n", b".\r\nx\r\n.\r\n"])
    assert t.of_type(MessageComplete)[0].content == b"\r\nx\r\n"


def test_long_lines_are_kept_intact() -> None:
    line = b"x" * (PARTIAL_LINE * 2 + 17)
    t = run([*OPEN, [line[:1000], line[1000:], b".y\r\n.\r\n"]])
    assert t.of_type(MessageComplete)[0].content == line + b".y\r\n"


def test_long_line_starting_with_dot_is_unstuffed_once() -> None:
    line = b"." + b"z" * (PARTIAL_LINE + 5)
    t = run([*OPEN, [line, b"\r\n.\r\n"]])
    assert t.of_type(MessageComplete)[0].content == line[1:] + b"\r\n"


def test_size_limit_reads_to_the_end_then_552() -> None:
    body = b"0123456789\r\n" * 5 + b".\r\n"
    t = check_splits([*OPEN, body, b"NOOP\r\n"], settings(message_size_limit=30))
    assert t.replies[-2:] == ["552 5.3.4 Error: message file too big", "250 2.0.0 Ok"]
    assert not t.of_type(MessageComplete)
    assert t.server.phase is Phase.COMMAND
    # The transaction is over: a new MAIL is not nested.
    again = run([*OPEN, body, b"MAIL FROM:<a@b>\r\n"], settings(message_size_limit=30))
    assert again.replies[-1] == "250 2.1.0 Ok"


def test_size_limit_exact_fit() -> None:
    assert _content(b"12345678\r\n.\r\n", message_size_limit=10) == b"12345678\r\n"


def test_size_declared_then_exceeded() -> None:
    turns = [
        b"EHLO c\r\n",
        b"MAIL FROM:<a@b> SIZE=5\r\nRCPT TO:<c@d>\r\nDATA\r\n",
        b"far more than twenty bytes\r\n.\r\n",
    ]
    t = check_splits(turns, settings(message_size_limit=20))
    assert t.replies[-1] == "552 5.3.4 Error: message file too big"


def test_unlimited_size() -> None:
    body = b"y" * 5000 + b"\r\n.\r\n"
    t = run([*OPEN, body], settings(message_size_limit=0))
    assert t.of_type(MessageComplete)[0].envelope.size == 5002


def test_nul_in_content_is_refused() -> None:
    t = check_splits([*OPEN, b"a\x00b\r\n.\r\n", b"NOOP\r\n"])
    assert t.replies[-2:] == [
        "550 5.6.0 Error: message content contains a NUL character",
        "250 2.0.0 Ok",
    ]
    assert not t.of_type(MessageComplete)
    assert ProtocolViolation("NUL character in message content", "") in t.events
    assert ("data", 0, 1) in t.counts


def test_last_command_detail_while_reading_data() -> None:
    t = run([*OPEN, b"abc\r\nde"])
    assert t.server.last_command == "DATA"
    assert t.server.last_command_detail == "DATA (7 bytes)"
    done = run([*OPEN, b".\r\n"])
    assert done.server.last_command == "END-OF-MESSAGE"


def test_eof_in_data() -> None:
    t = run([*OPEN, b"partial"], eof=True)
    assert t.events[-1] == ConnectionClosing("lost connection")
    assert t.server.last_command_detail == "DATA"


def test_data_refused_by_driver_keeps_transaction() -> None:
    def refuse(event: Event) -> Reply | None:
        return reply(554, "5.7.1", "Error: no thanks") if isinstance(event, DataRequest) else None

    t = check_splits([*OPEN, b"RSET\r\n"], answer=refuse)
    assert t.replies[-2:] == ["554 5.7.1 Error: no thanks", "250 2.0.0 Ok"]
