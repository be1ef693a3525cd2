"""SMTP server core: BDAT chunks (RFC 3030) with Postfix's replies."""

from __future__ import annotations

from smtp_dialogue import QUEUE_ID, check_splits, run, settings

from mailseal.smtp.events import (
    ConnectionClosing,
    DataRequest,
    Event,
    MessageComplete,
    RcptRequest,
)
from mailseal.smtp.reply import Reply, reply

EHLO = b"EHLO c\r\n"
TX = b"MAIL FROM:<a@b>\r\nRCPT TO:<c@d>\r\n"


def test_chunks_then_last() -> None:
    turns = [EHLO, TX, b"BDAT 5\r\nhello", b"BDAT 8 LAST\r\n world\r\n", b"QUIT\r\n"]
    t = check_splits(turns)
    assert t.replies[-3:] == [
        "250 2.0.0 Ok: 5 bytes",
        f"250 2.0.0 Ok: 13 bytes queued as {QUEUE_ID}",
        "221 2.0.0 Bye",
    ]
    message = t.of_type(MessageComplete)[0]
    assert message.content == b"hello world\r\n"
    assert message.envelope.chunking
    assert t.of_type(DataRequest) == [DataRequest(chunking=True)]
    assert ("bdat", 2, 2) in t.counts


def test_bdat_data_is_raw_but_newlines_normalised() -> None:
    # No dot handling; a CR at the end of one chunk pairs with the LF of the next.
    turns = [EHLO, TX, b"BDAT 5\r\n.\r\nx\r", b"BDAT 4 LAST\r\n\n.\ny"]
    t = check_splits(turns)
    assert t.of_type(MessageComplete)[0].content == b".\r\nx\r\n.\r\ny\r\n"


def test_bdat_zero_last() -> None:
    t = check_splits([EHLO, TX, b"BDAT 4\r\nabcd", b"BDAT 0 LAST\r\n"])
    assert t.of_type(MessageComplete)[0].content == b"abcd\r\n"
    assert t.replies[-1] == f"250 2.0.0 Ok: 6 bytes queued as {QUEUE_ID}"
    empty = check_splits([EHLO, TX, b"BDAT 0 LAST\r\n"])
    assert empty.of_type(MessageComplete)[0].content == b""


def test_bdat_without_mail_consumes_the_chunk() -> None:
    t = check_splits([EHLO, b"BDAT 10\r\nMAIL FROM:", b"BDAT 3 LAST\r\nabc", b"NOOP\r\n"])
    assert t.replies[-3:] == [
        "503 5.5.1 Error: need MAIL command",
        "551 5.0.0 Discarded 3 bytes after earlier error",
        "250 2.0.0 Ok",
    ]
    assert not t.of_type(MessageComplete)


def _reject_all(event: Event) -> Reply | None:
    if isinstance(event, RcptRequest):
        return reply(550, "5.1.1", "<c@d>: Recipient address rejected: no")
    return None


def test_bdat_with_all_recipients_rejected_still_consumes_bytes() -> None:
    turns = [EHLO, TX, b"BDAT 12 LAST\r\nRSET\r\nQUIT\r\n", b"NOOP\r\n"]
    t = check_splits(turns, answer=_reject_all)
    assert t.replies[-2:] == ["554 5.5.1 Error: no valid recipients", "250 2.0.0 Ok"]
    assert not t.closed


def test_commands_inside_a_bdat_sequence() -> None:
    turns = [EHLO, TX, b"BDAT 1\r\nx", b"DATA\r\n", b"MAIL FROM:<e@f>\r\n", b"RCPT TO:<g@h>\r\n"]
    t = check_splits(turns)
    assert t.replies[-3:] == [
        "503 5.5.1 Error: DATA after BDAT",
        "503 5.5.1 Error: MAIL after BDAT",
        "503 5.5.1 Error: RCPT after BDAT",
    ]
    reset = check_splits([EHLO, TX, b"BDAT 1\r\nx", b"RSET\r\n", TX])
    assert reset.replies[-2:] == ["250 2.1.0 Ok", "250 2.1.5 Ok"]


def test_chunk_over_the_size_limit() -> None:
    turns = [EHLO, TX, b"BDAT 20\r\n" + b"z" * 20, b"BDAT 2 LAST\r\nzz", b"NOOP\r\n"]
    t = check_splits(turns, settings(message_size_limit=10))
    assert t.replies[-3:] == [
        "552 5.3.4 Chunk exceeds message size limit",
        "551 5.0.0 Discarded 2 bytes after earlier error",
        "250 2.0.0 Ok",
    ]


def test_bdat_syntax_and_disabled_hang_up() -> None:
    bad = check_splits([EHLO, TX, b"BDAT ten\r\n"])
    assert bad.replies[-1] == "521 5.5.4 Syntax: BDAT count [LAST]"
    assert bad.events[-1] == ConnectionClosing("malformed BDAT command")
    off = check_splits([EHLO, TX, b"BDAT 1 LAST\r\nx"], settings(chunking=False))
    assert off.replies[-1] == "521 5.5.1 Error: command not implemented"
    assert "250 CHUNKING" not in off.replies
    assert off.closed


def test_null_bdat() -> None:
    t = check_splits([EHLO, TX, b"BDAT 0\r\n", b"BDAT 1 LAST\r\nq"])
    assert t.replies[-2:] == [
        "551 5.7.1 Null BDAT request",
        "551 5.0.0 Discarded 1 bytes after earlier error",
    ]


def test_nul_in_a_chunk() -> None:
    t = check_splits([EHLO, TX, b"BDAT 3\r\na\x00b", b"BDAT 1 LAST\r\nc"])
    assert t.replies[-2:] == [
        "550 5.6.0 Error: message content contains a NUL character",
        "551 5.0.0 Discarded 1 bytes after earlier error",
    ]
    last = check_splits([EHLO, TX, b"BDAT 3 LAST\r\na\x00b"])
    assert last.replies[-1] == "550 5.6.0 Error: message content contains a NUL character"


def test_bare_lf_in_a_chunk_rejected_when_forbidden() -> None:
    t = check_splits([EHLO, TX, b"BDAT 4 LAST\r\na\nb\n"], settings(bare_newline="reject"))
    assert t.replies[-1] == "550 5.5.2 mx.example Error: bare <LF> received"
    assert t.closed


def test_refused_first_chunk_is_skipped() -> None:
    def refuse(event: Event) -> Reply | None:
        return (
            reply(451, "4.3.0", "Error: queue file write error")
            if isinstance(event, DataRequest)
            else None
        )

    t = check_splits(
        [EHLO, TX, b"BDAT 4\r\nabcd", b"BDAT 2 LAST\r\nef", b"NOOP\r\n"], answer=refuse
    )
    assert t.replies[-3:] == [
        "451 4.3.0 Error: queue file write error",
        "551 5.0.0 Discarded 2 bytes after earlier error",
        "250 2.0.0 Ok",
    ]


def test_bdat_before_starttls_when_required_skips_the_chunk() -> None:
    config = settings(starttls_offered=True, tls_required=True)
    t = check_splits([EHLO, b"BDAT 6\r\nQUIT\r\n", b"NOOP\r\n"], config)
    assert t.replies[-2:] == ["530 5.7.0 Must issue a STARTTLS command first", "250 2.0.0 Ok"]
    assert not t.closed


def test_last_command_detail_in_a_chunk() -> None:
    t = run([EHLO, TX, b"BDAT 10\r\nabc"])
    assert t.server.last_command_detail == "BDAT (3 bytes)"
