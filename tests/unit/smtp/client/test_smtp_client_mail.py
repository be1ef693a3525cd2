"""SMTP client core: mail transactions with and without PIPELINING, refusals, SIZE, BDAT."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import pytest
from hypothesis import given
from hypothesis import settings as hsettings
from hypothesis import strategies as st
from smtp_client_script import (
    EHLO_PIPELINING,
    EHLO_PLAIN,
    GREETING,
    Step,
    check_splits,
    drain,
    ehlo,
    run,
    settings,
)

from mailseal.smtp.client import SmtpClient
from mailseal.smtp.client_events import (
    Closed,
    DataStart,
    Greeting,
    Helo,
    MailFrom,
    MessageSent,
    ProtocolError,
    RcptTo,
    SmtpClientUsageError,
)
from mailseal.smtp.reply import Reply

MAIL_OK = b"250 2.1.0 Ok\r\n"
RCPT_OK = b"250 2.1.5 Ok\r\n"
RCPT_NO = b"550 5.1.1 <b@y>: Recipient address rejected: User unknown\r\n"
GO_AHEAD = b"354 End data with <CR><LF>.<CR><LF>\r\n"
QUEUED = b"250 2.0.0 Ok: queued as 4XyZ1\r\n"
CONTENT = b"Subject: hi\r\n\r\nhello\r\n"


def send(
    content: bytes = CONTENT,
    recipients: tuple[str, ...] = ("a@y", "b@y"),
    sender_params: Mapping[str, str] | None = None,
    recipient_params: Sequence[Mapping[str, str]] | None = None,
) -> Callable[[SmtpClient], None]:
    def op(client: SmtpClient) -> None:
        client.send_mail(
            "s@x",
            recipients,
            content,
            sender_params=sender_params,
            recipient_params=recipient_params,
        )

    return op


def session(ehlo_reply: bytes, *rest: Step) -> list[Step]:
    return [GREETING, ehlo, ehlo_reply, *rest]


def test_pipelined_send_writes_envelope_in_one_go() -> None:
    t = check_splits(
        session(EHLO_PIPELINING, send(), MAIL_OK + RCPT_OK + RCPT_OK + GO_AHEAD, QUEUED)
    )
    assert t.sent.split(b"\r\n", 1)[1] == (
        b"MAIL FROM:<s@x> SIZE=22\r\n"
        b"RCPT TO:<a@y>\r\n"
        b"RCPT TO:<b@y>\r\n"
        b"DATA\r\n" + CONTENT + b".\r\n"
    )
    assert t.events[2:] == [
        MailFrom(Reply(250, "2.1.0", ("Ok",))),
        RcptTo(0, "a@y", Reply(250, "2.1.5", ("Ok",))),
        RcptTo(1, "b@y", Reply(250, "2.1.5", ("Ok",))),
        DataStart(Reply(354, "", ("End data with <CR><LF>.<CR><LF>",))),
        MessageSent(Reply(250, "2.0.0", ("Ok: queued as 4XyZ1",))),
    ]
    assert t.client.ready


def test_pipelined_commands_leave_before_any_reply() -> None:
    t = run(session(EHLO_PIPELINING, send()))
    assert t.lines[1:] == [
        b"MAIL FROM:<s@x> SIZE=22\r\n",
        b"RCPT TO:<a@y>\r\n",
        b"RCPT TO:<b@y>\r\n",
        b"DATA\r\n",
    ]
    assert not t.client.ready


def test_unpipelined_send_waits_for_each_reply() -> None:
    client_steps: list[Step] = session(EHLO_PLAIN, send())
    t = run(client_steps)
    assert t.lines[1:] == [b"MAIL FROM:<s@x> SIZE=22\r\n"]
    t = run([*client_steps, MAIL_OK])
    assert t.lines[-1] == b"RCPT TO:<a@y>\r\n"
    t = run([*client_steps, MAIL_OK, RCPT_OK])
    assert t.lines[-1] == b"RCPT TO:<b@y>\r\n"
    t = run([*client_steps, MAIL_OK, RCPT_OK, RCPT_OK])
    assert t.lines[-1] == b"DATA\r\n"
    t = check_splits([*client_steps, MAIL_OK, RCPT_OK, RCPT_OK, GO_AHEAD, QUEUED])
    assert t.sent.endswith(b"DATA\r\n" + CONTENT + b".\r\n")
    assert [type(e) for e in t.events[2:]] == [MailFrom, RcptTo, RcptTo, DataStart, MessageSent]


def test_per_recipient_refusals() -> None:
    t = check_splits(
        session(
            EHLO_PIPELINING,
            send(recipients=("a@y", "b@y", "c@y")),
            MAIL_OK + RCPT_OK + RCPT_NO + RCPT_OK + GO_AHEAD,
            QUEUED,
        )
    )
    rcpts = t.of_type(RcptTo)
    assert [(r.index, r.recipient, r.reply.code) for r in rcpts] == [
        (0, "a@y", 250),
        (1, "b@y", 550),
        (2, "c@y", 250),
    ]
    assert rcpts[1].reply == Reply(
        550, "5.1.1", ("<b@y>: Recipient address rejected: User unknown",)
    )
    assert t.of_type(MessageSent)[0].reply.code == 250


def test_mail_refused_pipelined_consumes_the_other_replies() -> None:
    refusal = b"553 5.7.1 <s@x>: Sender address rejected\r\n"
    need_mail = b"503 5.5.1 Error: need MAIL command\r\n"
    t = check_splits(session(EHLO_PIPELINING, send(), refusal + need_mail + need_mail + need_mail))
    assert t.events[2:] == [MailFrom(Reply(553, "5.7.1", ("<s@x>: Sender address rejected",)))]
    assert t.sent.endswith(b"DATA\r\n")  # no content, no RSET
    assert t.client.ready


def test_mail_refused_unpipelined_sends_nothing_more() -> None:
    t = check_splits(session(EHLO_PLAIN, send(), b"452 4.3.1 Insufficient system storage\r\n"))
    assert t.lines[-1].startswith(b"MAIL FROM:")
    assert [type(e) for e in t.events[2:]] == [MailFrom]
    assert t.client.ready


def test_all_recipients_refused_pipelined() -> None:
    no_valid = b"554 5.5.1 Error: no valid recipients\r\n"
    t = check_splits(session(EHLO_PIPELINING, send(), MAIL_OK + RCPT_NO + RCPT_NO + no_valid))
    assert [type(e) for e in t.events[2:]] == [MailFrom, RcptTo, RcptTo]
    assert t.sent.endswith(b"DATA\r\n")
    assert t.client.ready


def test_all_recipients_refused_but_data_gets_354_sends_lone_dot() -> None:
    # Postfix's smtp_loop(): "Otherwise, just send "." as per RFC 2197."
    t = check_splits(
        session(EHLO_PIPELINING, send(), MAIL_OK + RCPT_NO + RCPT_NO + GO_AHEAD, QUEUED)
    )
    assert t.sent.endswith(b"DATA\r\n.\r\n")
    assert [type(e) for e in t.events[2:]] == [MailFrom, RcptTo, RcptTo]
    assert t.client.ready


def test_all_recipients_refused_unpipelined_sends_no_data() -> None:
    t = run(session(EHLO_PLAIN, send(), MAIL_OK, RCPT_NO, RCPT_NO))
    assert t.lines[-1] == b"RCPT TO:<b@y>\r\n"
    assert t.client.ready


def test_data_refused() -> None:
    t = check_splits(
        session(EHLO_PIPELINING, send(), MAIL_OK + RCPT_OK + RCPT_OK + b"451 4.3.0 later\r\n")
    )
    assert t.events[-1] == DataStart(Reply(451, "4.3.0", ("later",)))
    assert t.sent.endswith(b"DATA\r\n")
    assert t.client.ready


def test_message_refused_after_dot() -> None:
    t = run(
        session(
            EHLO_PIPELINING,
            send(),
            MAIL_OK + RCPT_OK + RCPT_OK + GO_AHEAD,
            b"554 5.7.1 spam\r\n",
        )
    )
    assert t.events[-1] == MessageSent(Reply(554, "5.7.1", ("spam",)))


def test_size_limit_exceeded_is_local() -> None:
    small = b"250-mx\r\n250-PIPELINING\r\n250 SIZE 10\r\n"
    t = run(session(small, send()))
    assert t.sent == b"EHLO client.example\r\n"
    assert t.events[-1] == MessageSent(
        Reply(552, "5.3.4", ("message size 22 exceeds size limit 10",)), local=True
    )
    assert t.client.ready


def test_size_zero_means_no_limit_and_absent_means_no_param() -> None:
    t = run(session(b"250-mx\r\n250 SIZE 0\r\n", send(b"x" * 100)))
    assert t.lines[1] == b"MAIL FROM:<s@x> SIZE=102\r\n"
    t = run(session(b"250-mx\r\n250 PIPELINING\r\n", send()))
    assert t.lines[1] == b"MAIL FROM:<s@x>\r\n"


def test_body_8bitmime_and_params() -> None:
    caps = b"250-mx\r\n250-8BITMIME\r\n250-SMTPUTF8\r\n250 DSN\r\n"
    t = run(
        session(
            caps,
            send(
                "caf\xc3\xa9\n".encode("latin-1"),
                recipients=("a@y",),
                sender_params={"SMTPUTF8": "", "RET": "HDRS", "ENVID": "abc"},
                recipient_params=[{"NOTIFY": "FAILURE", "ORCPT": "rfc822;a@y"}],
            ),
        )
    )
    assert t.lines[1] == b"MAIL FROM:<s@x> BODY=8BITMIME SMTPUTF8 RET=HDRS ENVID=abc\r\n"
    t = run(session(caps, send(recipients=("a@y",)), MAIL_OK))
    assert t.lines[-1] == b"RCPT TO:<a@y>\r\n"


def test_params_of_unannounced_extensions_are_left_out() -> None:
    t = run(
        session(
            b"250 mx\r\n",
            send(
                "\u00e9".encode(),
                recipients=("a@y",),
                sender_params={"SMTPUTF8": "", "RET": "FULL", "X-MINE": "1"},
            ),
        )
    )
    assert t.lines[1] == b"MAIL FROM:<s@x> X-MINE=1\r\n"


def test_smtputf8_implies_8bitmime_for_body() -> None:
    t = run(session(b"250-mx\r\n250 SMTPUTF8\r\n", send("\u00e9".encode())))
    assert t.lines[1] == b"MAIL FROM:<s@x> BODY=8BITMIME\r\n"


@pytest.mark.parametrize(
    ("sender", "recipients", "kw"),
    [
        ("s@x>\r\nRSET", ("a@y",), {}),
        ("s@x", ("a@y\nDATA",), {}),
        ("s@x", (), {}),
        ("s@x", ("a@y",), {"sender_params": {"SIZE": "1"}}),
        ("s@x", ("a@y",), {"sender_params": {"RET": "A B"}}),
        ("s@x", ("a@y",), {"sender_params": {"K\r\n": "1"}}),
        ("s@x", ("a@y", "b@y"), {"recipient_params": [{}]}),
    ],
)
def test_bad_send_mail_arguments(
    sender: str, recipients: tuple[str, ...], kw: dict[str, Any]
) -> None:
    t = run(session(EHLO_PIPELINING))
    with pytest.raises(SmtpClientUsageError):
        t.client.send_mail(sender, recipients, CONTENT, **kw)
    assert t.client.ready
    assert t.client.data_to_send() == b""


def test_421_in_the_middle_of_a_pipeline() -> None:
    t = check_splits(
        session(EHLO_PIPELINING, send(), MAIL_OK + b"421 4.4.2 mx Error: timeout exceeded\r\n")
    )
    assert t.events[2:] == [
        MailFrom(Reply(250, "2.1.0", ("Ok",))),
        RcptTo(0, "a@y", Reply(421, "4.4.2", ("mx Error: timeout exceeded",))),
        Closed(Reply(421, "4.4.2", ("mx Error: timeout exceeded",))),
    ]
    assert t.client.closed


def test_421_unpipelined_sends_nothing_after_it() -> None:
    t = run(session(EHLO_PLAIN, send(), b"421 4.3.2 bye\r\n"))
    assert t.lines[-1].startswith(b"MAIL FROM:")
    assert isinstance(t.events[-1], Closed)


def test_connection_lost_mid_transaction() -> None:
    t = run(session(EHLO_PIPELINING, send(), MAIL_OK + b"250 2.1", b""))
    assert t.events[-1] == Closed(None)
    assert [type(e) for e in t.events] == [Greeting, Helo, MailFrom, Closed]


def test_reply_codes_the_command_cannot_get() -> None:
    t = run(session(EHLO_PIPELINING, send(), b"354 go on\r\n"))
    assert t.events[-1] == ProtocolError(
        "unexpected reply code", "354 go on (in reply to MAIL FROM command)"
    )
    t = run(session(EHLO_PIPELINING, send(), MAIL_OK + RCPT_OK + RCPT_OK + b"250 2.0.0 Ok\r\n"))
    assert isinstance(t.events[-1], ProtocolError)
    assert "DATA command" in t.events[-1].detail
    assert t.client.data_to_send() == b""


# BDAT (RFC 3030).

EHLO_CHUNKING = (
    b"250-mx\r\n250-PIPELINING\r\n250-SIZE\r\n250-ENHANCEDSTATUSCODES\r\n250 CHUNKING\r\n"
)
EHLO_CHUNKING_ONLY = b"250-mx\r\n250-ENHANCEDSTATUSCODES\r\n250 CHUNKING\r\n"


def test_bdat_pipelined_chunks() -> None:
    content = b"a\nb\n.c\r" + b"x" * 10
    normal = b"a\r\nb\r\n.c\r\n" + b"x" * 10 + b"\r\n"
    steps = session(
        EHLO_CHUNKING,
        send(content),
        MAIL_OK + RCPT_OK + RCPT_OK + b"250 2.0.0 Ok: 8 bytes\r\n" + b"250 2.0.0 Ok: 8 bytes\r\n",
        b"250 2.0.0 Ok: 23 bytes queued as X\r\n",
    )
    t = check_splits(steps, settings(prefer_bdat=True, chunk_size=8))
    assert t.sent.split(b"\r\n", 1)[1] == (
        f"MAIL FROM:<s@x> SIZE={len(normal)}\r\n".encode()
        + b"RCPT TO:<a@y>\r\nRCPT TO:<b@y>\r\n"
        + b"BDAT 8\r\n"
        + normal[:8]
        + b"BDAT 8\r\n"
        + normal[8:16]
        + b"BDAT 6 LAST\r\n"
        + normal[16:]
    )
    assert [type(e) for e in t.events[2:]] == [MailFrom, RcptTo, RcptTo, MessageSent]
    assert t.events[-1] == MessageSent(Reply(250, "2.0.0", ("Ok: 23 bytes queued as X",)))
    assert t.client.ready


def test_bdat_unpipelined_one_chunk_at_a_time() -> None:
    config = settings(prefer_bdat=True, chunk_size=4)
    base: list[Step] = session(EHLO_CHUNKING_ONLY, send(b"12345678", recipients=("a@y",)))
    t = run([*base, MAIL_OK, RCPT_OK], config)
    assert t.sent.endswith(b"RCPT TO:<a@y>\r\nBDAT 4\r\n1234")
    t = run([*base, MAIL_OK, RCPT_OK, b"250 2.0.0 Ok: 4 bytes\r\n"], config)
    assert t.sent.endswith(b"BDAT 4\r\n1234BDAT 4\r\n5678")
    ok = b"250 2.0.0 Ok: 4 bytes\r\n"
    t = check_splits(
        [*base, MAIL_OK, RCPT_OK, ok, ok, b"250 2.0.0 Ok: 10 bytes queued\r\n"], config
    )
    assert t.sent.endswith(b"BDAT 4\r\n5678BDAT 2 LAST\r\n\r\n")
    assert t.events[-1] == MessageSent(Reply(250, "2.0.0", ("Ok: 10 bytes queued",)))


def test_bdat_unpipelined_stops_at_refused_chunk() -> None:
    config = settings(prefer_bdat=True, chunk_size=4)
    t = run(
        session(
            EHLO_CHUNKING_ONLY,
            send(b"12345678", recipients=("a@y",)),
            MAIL_OK,
            RCPT_OK,
            b"552 5.3.4 Chunk exceeds message size limit\r\n",
        ),
        config,
    )
    assert t.sent.endswith(b"BDAT 4\r\n1234")
    assert t.events[-1] == MessageSent(Reply(552, "5.3.4", ("Chunk exceeds message size limit",)))
    assert t.client.ready


def test_bdat_pipelined_first_refusal_decides() -> None:
    config = settings(prefer_bdat=True, chunk_size=4)
    t = run(
        session(
            EHLO_CHUNKING,
            send(b"1234567", recipients=("a@y",)),
            MAIL_OK
            + RCPT_OK
            + b"452 4.3.1 Insufficient system storage\r\n"
            + b"551 5.0.0 Discarded 4 bytes after earlier error\r\n",
            b"551 5.0.0 Discarded 1 bytes after earlier error\r\n",
        ),
        config,
    )
    assert t.sent.endswith(b"BDAT 4\r\n1234BDAT 4\r\n567\rBDAT 1 LAST\r\n\n")
    assert t.events[-1] == MessageSent(Reply(452, "4.3.1", ("Insufficient system storage",)))
    assert t.client.ready


def test_bdat_all_refused_pipelined_is_silent() -> None:
    config = settings(prefer_bdat=True)
    no = b"554 5.5.1 Error: no valid recipients\r\n"
    t = run(session(EHLO_CHUNKING, send(b"", recipients=("a@y",)), MAIL_OK + RCPT_NO + no), config)
    assert t.sent.endswith(b"RCPT TO:<a@y>\r\nBDAT 0 LAST\r\n")
    assert [type(e) for e in t.events[2:]] == [MailFrom, RcptTo]
    assert t.client.ready


def test_bdat_needs_chunking_offered() -> None:
    t = run(
        session(EHLO_PIPELINING.replace(b"CHUNKING", b"VRFY"), send()), settings(prefer_bdat=True)
    )
    assert t.lines[-1] == b"DATA\r\n"


REPLY_CHOICES = [
    b"250 2.0.0 Ok\r\n",
    b"354 go\r\n",
    b"334 \r\n",
    b"421 4.3.2 bye\r\n",
    b"452 4.5.3 too many\r\n",
    b"550 5.1.1 no\r\n",
    b"250-multi\r\n250 line\r\n",
    b"garbage\r\n",
]


@hsettings(max_examples=300, deadline=None)
@given(
    st.booleans(),
    st.booleans(),
    st.lists(st.sampled_from(REPLY_CHOICES), max_size=12),
)
def test_random_replies_during_a_transaction_never_raise(
    pipelined: bool, prefer_bdat: bool, replies: list[bytes]
) -> None:
    caps = EHLO_CHUNKING if pipelined else EHLO_CHUNKING_ONLY
    config = settings(prefer_bdat=prefer_bdat, chunk_size=3)
    t = run(session(caps, send(b"0123456789")), config)
    client = t.client
    for data in replies:
        client.receive_data(data)
        events = drain(client)
        if client.closed:
            assert isinstance(events[-1], (Closed, ProtocolError))
            break
        if client.ready:
            client.noop()  # the next operation can always start
        client.data_to_send()
