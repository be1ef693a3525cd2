"""SMTP server core: whole dialogues with exact replies, each fed every which way."""

from __future__ import annotations

import pytest
from smtp_dialogue import EHLO_REPLY, GREETING, QUEUE_ID, check_splits, run, settings

from mailseal.smtp.events import (
    ConnectionClosing,
    DataRequest,
    Event,
    Hello,
    MailRequest,
    MessageComplete,
    ProtocolViolation,
    RcptRequest,
    Reset,
    VrfyRequest,
)
from mailseal.smtp.reply import Reply, relay_denied, reply, user_unknown
from mailseal.smtp.server import SmtpServer

EHLO = b"EHLO client.example\r\n"
TX = b"MAIL FROM:<a@example.org>\r\nRCPT TO:<b@example.net>\r\nDATA\r\n"


def test_full_transaction_exact_bytes() -> None:
    t = check_splits([EHLO, TX, b"Subject: hi\r\n\r\nbody\r\n.\r\n", b"QUIT\r\n"])
    assert t.output == GREETING + b"".join(
        line.encode() + b"\r\n"
        for line in [
            *EHLO_REPLY,
            "250 2.1.0 Ok",
            "250 2.1.5 Ok",
            "354 End data with <CR><LF>.<CR><LF>",
            f"250 2.0.0 Ok: queued as {QUEUE_ID}",
            "221 2.0.0 Bye",
        ]
    )
    message = t.of_type(MessageComplete)[0]
    assert message.content == b"Subject: hi\r\n\r\nbody\r\n"
    env = message.envelope
    assert (env.sender, env.helo, env.extended, env.chunking, env.size) == (
        "a@example.org",
        "client.example",
        True,
        False,
        len(message.content),
    )
    assert [r.address for r in env.recipients] == ["b@example.net"]
    assert t.of_type(ConnectionClosing) == [ConnectionClosing("quit")]
    assert t.counts == [
        ("ehlo", 1, 1),
        ("mail", 1, 1),
        ("rcpt", 1, 1),
        ("data", 1, 1),
        ("quit", 1, 1),
    ]
    assert t.server.last_command == "QUIT"


def test_event_order_of_a_transaction() -> None:
    t = run([EHLO, TX, b".\r\n"])
    kinds = [type(e) for e in t.events]
    assert kinds == [Hello, MailRequest, RcptRequest, DataRequest, MessageComplete]


def test_helo_reply_and_no_extensions() -> None:
    t = check_splits([b"HELO client\r\n", b"QUIT\r\n"])
    assert t.replies == ["250 mx.example", "221 2.0.0 Bye"]
    assert t.of_type(Hello) == [Hello("client", False)]


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        (b"EHLO\r\n", "501 Syntax: EHLO hostname"),
        (b"HELO   \r\n", "501 Syntax: HELO hostname"),
        (b"MAIL FROM:<a@b>\r\n", "503 5.5.1 Error: send HELO/EHLO first"),
    ],
)
def test_hello_syntax_and_required(line: bytes, expected: str) -> None:
    t = check_splits([line], settings(helo_required=True))
    assert t.replies == [expected]


def test_multiline_banner() -> None:
    server = SmtpServer(settings(banner="mx.example ESMTP\nsecond line"))
    server.greet()
    assert server.data_to_send() == b"220-mx.example ESMTP\r\n220 second line\r\n"


def test_ehlo_keywords_follow_settings() -> None:
    config = settings(
        message_size_limit=0,
        disable_vrfy=True,
        starttls_offered=True,
        auth_mechanisms=("PLAIN", "LOGIN"),
        discard_ehlo_keywords=frozenset({"dsn", "CHUNKING"}),
    )
    t = check_splits([EHLO], config)
    assert t.replies == [
        "250-mx.example",
        "250-PIPELINING",
        "250-SIZE",
        "250-STARTTLS",
        "250-AUTH PLAIN LOGIN",
        "250-ENHANCEDSTATUSCODES",
        "250-8BITMIME",
        "250 SMTPUTF8",
    ]


@pytest.mark.parametrize(
    ("turns", "expected"),
    [
        ([b"RCPT TO:<b@c>\r\n"], "503 5.5.1 Error: need MAIL command"),
        ([b"DATA\r\n"], "503 5.5.1 Error: need RCPT command"),
        ([b"MAIL FROM:<a@b>\r\n", b"MAIL FROM:<a@b>\r\n"], "503 5.5.1 Error: nested MAIL command"),
        ([b"MAIL FROM:<a@b>\r\n", b"DATA\r\n"], "554 5.5.1 Error: no valid recipients"),
        ([b"MAIL FROM:<a@b>\r\n", b"RCPT TO:<b@c>\r\n", b"DATA x\r\n"], "501 5.5.4 Syntax: DATA"),
        ([b"MAIL TO:<a@b>\r\n"], "501 5.5.4 Syntax: MAIL FROM:<address>"),
        ([b"MAIL FROM:\r\n"], "501 5.5.4 Syntax: MAIL FROM:<address>"),
        ([b"MAIL FROM:<a b@c>\r\n"], "501 5.1.7 Bad sender address syntax"),
        ([b"MAIL FROM:<a@b>\r\n", b"RCPT TO:<>\r\n"], "501 5.1.3 Bad recipient address syntax"),
        ([b"MAIL FROM:<a@b>\r\n", b"RCPT <b@c>\r\n"], "501 5.5.4 Syntax: RCPT TO:<address>"),
        ([b"MAIL FROM:<a@b> SIZE=1x\r\n"], "501 5.5.4 Bad message size syntax"),
        ([b"MAIL FROM:<a@b> SIZE=10240001\r\n"], "552 5.3.4 Message size exceeds fixed limit"),
        ([b"MAIL FROM:<a@b> BODY=BINARYMIME\r\n"], "555 5.5.4 Unsupported option: BODY=BINARYMIME"),
        ([b"MAIL FROM:<a@b> FOO=bar\r\n"], "555 5.5.4 Unsupported option: FOO=bar"),
        ([b"MAIL FROM:<a@b> RET=ALL\r\n"], "501 5.5.4 Bad RET parameter syntax"),
        ([b"MAIL FROM:<a@b> ENVID=a+zz\r\n"], "501 5.5.4 Bad ENVID parameter syntax"),
        ([b"MAIL FROM:<a@b> AUTH=<>\r\n"], "503 5.5.4 Error: authentication disabled"),
        (
            [b"MAIL FROM:<\xc3\xa9@b>\r\n"],
            "553 5.6.7 Must declare SMTPUTF8 to send unicode address",
        ),
        ([b"RSET x\r\n"], "501 5.5.4 Syntax: RSET"),
        ([b"VRFY\r\n"], "501 5.5.4 Syntax: VRFY address [SMTPUTF8]"),
        ([b"AUTH PLAIN\r\n"], "503 5.5.1 Error: authentication not enabled"),
        ([b"ETRN example.org\r\n"], "500 5.5.2 Error: command not recognized"),
        ([b"EXPN list\r\n"], "500 5.5.2 Error: command not recognized"),
        ([b"\r\n"], "500 5.5.2 Error: bad syntax"),
        ([b"NOOP \xff\r\n"], "500 5.5.2 Error: bad UTF-8 syntax"),
        ([b"STARTTLS\r\n"], "502 5.5.1 Error: command not implemented"),
    ],
)
def test_error_replies(turns: list[bytes], expected: str) -> None:
    t = check_splits([EHLO, *turns])
    assert t.replies[-1] == expected
    assert t.server.error_count == 1
    assert not t.closed


def test_rcpt_params_errors() -> None:
    mail = b"MAIL FROM:<a@b>\r\n"
    cases = {
        b"RCPT TO:<b@c> NOTIFY=NEVER,SUCCESS\r\n": "501 5.5.4 Error: Bad NOTIFY parameter syntax",
        b"RCPT TO:<b@c> ORCPT=rfc822\r\n": "501 5.5.4 Error: Bad ORCPT parameter syntax",
        b"RCPT TO:<b@c> FOO\r\n": "555 5.5.4 Unsupported option: FOO",
        b"RCPT TO:<\xc3\xa9@c>\r\n": "553 5.6.7 Must declare SMTPUTF8 to send unicode address",
    }
    for line, expected in cases.items():
        assert check_splits([EHLO, mail, line]).replies[-1] == expected


def test_dsn_disabled() -> None:
    t = run([EHLO, b"MAIL FROM:<a@b> RET=HDRS\r\n"], settings(dsn=False))
    assert t.replies[-1] == "501 5.7.1 DSN support is disabled"
    assert "250-DSN" not in t.replies


def test_dsn_and_utf8_params_are_kept() -> None:
    turns = [
        EHLO,
        b"MAIL FROM:<\xc3\xa9@b.example> RET=HDRS ENVID=QQ+2Bx SMTPUTF8 BODY=8BITMIME SIZE=10\r\n",
        b"RCPT TO:<d@e> NOTIFY=SUCCESS,DELAY ORCPT=rfc822;d+40e\r\n",
        b"RCPT TO:<\xc3\xbc@e> notify=never\r\n",
        b"DATA\r\n",
        b"x\r\n.\r\n",
    ]
    env = check_splits(turns).of_type(MessageComplete)[0].envelope
    assert env.sender == "\u00e9@b.example"
    assert dict(env.sender_params) == {
        "RET": "HDRS",
        "ENVID": "QQ+2Bx",
        "SMTPUTF8": "",
        "BODY": "8BITMIME",
        "SIZE": "10",
    }
    assert [(r.address, dict(r.params)) for r in env.recipients] == [
        ("d@e", {"NOTIFY": "SUCCESS,DELAY", "ORCPT": "rfc822;d+40e"}),
        ("\u00fc@e", {"NOTIFY": "never"}),
    ]


def test_address_forms_are_normalised() -> None:
    turns = [
        EHLO,
        b"MAIL FROM: <@relay.example,@r2.example:a@b.example>\r\n",
        b'RCPT TO:<"john doe"@c.example>\r\n',
        b"RCPT TO:bare@d.example\r\n",
        b"RCPT TO:<postmaster>\r\n",
    ]
    t = check_splits(turns)
    assert [e.sender for e in t.of_type(MailRequest)] == ["a@b.example"]
    assert [e.recipient for e in t.of_type(RcptRequest)] == [
        "john doe@c.example",
        "bare@d.example",
        "postmaster",
    ]


def test_null_sender() -> None:
    t = check_splits([EHLO, b"MAIL FROM:<>\r\n"])
    assert t.of_type(MailRequest)[0].sender == ""
    assert t.replies[-1] == "250 2.1.0 Ok"


def _reject_second_recipient(event: Event) -> Reply | None:
    if isinstance(event, RcptRequest) and event.recipient.startswith("x"):
        return user_unknown(event.recipient, "virtual mailbox table")
    if isinstance(event, MessageComplete):
        return reply(250, "2.0.0", f"Ok: queued as {QUEUE_ID}")
    return None


def test_driver_rejections_and_envelope() -> None:
    turns = [EHLO, b"MAIL FROM:<a@b>\r\nRCPT TO:<ok@c>\r\nRCPT TO:<x@c>\r\nDATA\r\n", b".\r\n"]
    t = check_splits(turns, answer=_reject_second_recipient)
    assert t.replies[10:12] == [
        "250 2.1.5 Ok",
        "550 5.1.1 <x@c>: Recipient address rejected: User unknown in virtual mailbox table",
    ]
    env = t.of_type(MessageComplete)[0].envelope
    assert [r.address for r in env.recipients] == ["ok@c"]
    assert ("rcpt", 1, 2) in t.counts
    # A delivered message forgives earlier errors (Postfix).
    assert t.server.error_count == 0


def test_relay_denied_text() -> None:
    assert relay_denied("x@y").encode() == b"554 5.7.1 <x@y>: Relay access denied\r\n"


def test_rset_and_ehlo_reset_the_transaction() -> None:
    t = check_splits([EHLO, b"MAIL FROM:<a@b>\r\n", b"RSET\r\n", b"MAIL FROM:<c@d>\r\n", EHLO])
    assert t.replies[9:12] == ["250 2.1.0 Ok", "250 2.0.0 Ok", "250 2.1.0 Ok"]
    assert t.of_type(Reset) == [Reset(), Reset()]
    after = run([EHLO, b"MAIL FROM:<a@b>\r\n", EHLO, b"RCPT TO:<b@c>\r\n"])
    assert after.replies[-1] == "503 5.5.1 Error: need MAIL command"


def test_vrfy_request_and_disabled() -> None:
    t = check_splits([EHLO, b"VRFY someone\r\n"])
    assert t.of_type(VrfyRequest) == [VrfyRequest("someone")]
    assert t.replies[-1] == "252 2.0.0 someone"
    off = check_splits([EHLO, b"VRFY someone\r\n"], settings(disable_vrfy=True))
    assert off.replies[-1] == "502 5.5.1 VRFY command is disabled"
    assert "250-VRFY" not in off.replies


def test_recipient_limit() -> None:
    turns = [EHLO, b"MAIL FROM:<a@b>\r\n", b"RCPT TO:<1@c>\r\n", b"RCPT TO:<2@c>\r\n"]
    t = check_splits(turns, settings(recipient_limit=1))
    assert t.replies[-2:] == ["250 2.1.5 Ok", "452 4.5.3 Error: too many recipients"]
    assert len(t.of_type(RcptRequest)) == 1


def test_hard_error_limit_closes_after_the_last_error() -> None:
    turns = [b"FOO\r\n", b"BAR\r\n", b"BAZ\r\n"]
    t = check_splits(turns, settings(hard_error_limit=3))
    assert t.replies == [
        "500 5.5.2 Error: command not recognized",
        "500 5.5.2 Error: command not recognized",
        "500 5.5.2 Error: command not recognized",
        "421 4.7.0 mx.example Error: too many errors",
    ]
    assert t.of_type(ConnectionClosing) == [ConnectionClosing("too many errors")]
    assert t.counts == [("unknown", 0, 3)]


def test_junk_commands_count_errors_past_the_limit() -> None:
    t = run([b"NOOP\r\n"] * 4, settings(junk_command_limit=2))
    assert t.replies == ["250 2.0.0 Ok"] * 4
    assert t.server.error_count == 1


def test_command_too_long_is_refused_whole() -> None:
    long_line = b"MAIL FROM:<" + b"a" * 60 + b"@b>\r\n"
    t = check_splits([EHLO, long_line, b"NOOP\r\n"], settings(line_length_limit=40))
    assert t.replies[-2:] == ["500 5.5.2 Error: command too long", "250 2.0.0 Ok"]
    assert not t.of_type(MailRequest)
    assert ProtocolViolation("command too long", "longer than 40 bytes") in t.events


def test_limit_is_inclusive() -> None:
    t = check_splits([b"NOOP " + b"x" * 35 + b"\r\n"], settings(line_length_limit=40))
    assert t.replies == ["250 2.0.0 Ok"]


def test_nul_in_command() -> None:
    t = check_splits([b"NOOP a\x00b\r\n", b"RSET\x01\r\n"])
    assert t.replies == ["500 5.5.2 Error: bad syntax"] * 2
    assert t.of_type(ProtocolViolation)[0].reason == "NUL character in command"


@pytest.mark.parametrize(
    "line", [b"GET / HTTP/1.0\r\n", b"Host: x\r\n", b"<html>\r\n", b"POST\r\n"]
)
def test_non_smtp_commands_hang_up(line: bytes) -> None:
    t = check_splits([line])
    assert t.replies == ["221 2.7.0 Error: I can break rules, too. Goodbye."]
    assert t.closed


def test_eof_is_lost_connection_with_last_command() -> None:
    t = run([EHLO, b"MAIL FROM:<a@b>\r\nRCP"], eof=True)
    assert t.events[-1] == ConnectionClosing("lost connection")
    assert t.server.last_command == "MAIL"
    fresh = run([], eof=True)
    assert fresh.server.last_command == "CONNECT"
    assert fresh.closed


def test_timeout_and_shutdown_replies() -> None:
    server = SmtpServer(settings())
    server.timeout()
    assert server.data_to_send() == b"421 4.4.2 mx.example Error: timeout exceeded\r\n"
    assert server.next_event() == ConnectionClosing("timeout")
    assert server.next_event() is None
    other = SmtpServer(settings())
    other.shutdown()
    assert other.data_to_send() == b"421 4.3.2 mx.example Service shutting down\r\n"
    assert other.closed


def test_enhanced_codes_can_be_discarded() -> None:
    config = settings(discard_ehlo_keywords=frozenset({"ENHANCEDSTATUSCODES"}))
    t = run([EHLO, b"MAIL FROM:<a@b>\r\n"], config)
    assert t.replies[-1] == "250 Ok"


def test_access_denied_at_connect_answers_503_to_all_but_quit() -> None:
    from mailseal.smtp.reply import reply as make_reply
    from mailseal.smtp.server import ServerSettings, SmtpServer

    denied = make_reply(554, "5.7.1", "<unknown[192.0.2.1]>: Client host rejected: Access denied")
    server = SmtpServer(
        ServerSettings(
            hostname="mx.example",
            banner="mx.example ESMTP",
            access_denied=denied,
            client="unknown[192.0.2.1]",
        )
    )
    server.greet()
    assert server.data_to_send() == (
        b"554 5.7.1 <unknown[192.0.2.1]>: Client host rejected: Access denied\r\n"
    )
    server.receive_data(b"EHLO client\r\n")
    while server.next_event() is not None:
        pass
    assert server.data_to_send() == b"503 5.7.0 Error: access denied for unknown[192.0.2.1]\r\n"
    server.receive_data(b"QUIT\r\n")
    while server.next_event() is not None:
        pass
    assert server.data_to_send() == b"221 2.0.0 Bye\r\n"
    assert server.closed
