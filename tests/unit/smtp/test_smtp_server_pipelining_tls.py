"""SMTP server core: RFC 2920 pipelining rules, STARTTLS (RFC 3207) and CVE-2011-0411."""

from __future__ import annotations

import pytest
from smtp_dialogue import EHLO_REPLY, QUEUE_ID, check_splits, run, settings

from mailseal.smtp.events import (
    ConnectionClosing,
    Hello,
    MailRequest,
    MessageComplete,
    ProtocolViolation,
    SmtpUsageError,
    StartTlsRequest,
)
from mailseal.smtp.server import Phase, SmtpServer

EHLO = b"EHLO c\r\n"
SYNC = "554 5.5.0 Error: SMTP protocol synchronization"


def test_pipelined_group_after_ehlo_is_fine() -> None:
    group = b"MAIL FROM:<a@b>\r\nRCPT TO:<c@d>\r\nRCPT TO:<e@f>\r\nDATA\r\n"
    t = check_splits([EHLO, group, b"x\r\n.\r\n", b"QUIT\r\n"])
    assert t.replies[-6:] == [
        "250 2.1.0 Ok",
        "250 2.1.5 Ok",
        "250 2.1.5 Ok",
        "354 End data with <CR><LF>.<CR><LF>",
        f"250 2.0.0 Ok: queued as {QUEUE_ID}",
        "221 2.0.0 Bye",
    ]
    assert not t.of_type(ProtocolViolation)


@pytest.mark.parametrize(
    ("turns", "after"),
    [
        ([b"EHLO c\r\nMAIL FROM:<a@b>\r\n"], "EHLO"),
        ([EHLO, b"NOOP\r\nNOOP\r\n"], "NOOP"),
        ([EHLO, b"MAIL FROM:<a@b>\r\nRCPT TO:<c@d>\r\nDATA\r\nSubject: early\r\n"], "DATA"),
        ([EHLO, b"VRFY x\r\nQUIT\r\n"], "VRFY"),
        ([b"HELO c\r\n", b"MAIL FROM:<a@b>\r\nRCPT TO:<c@d>\r\n"], "MAIL"),
        ([b"MAIL FROM:<a@b>\r\nQUIT\r\n"], "MAIL"),
    ],
)
def test_unauthorised_pipelining_is_refused(turns: list[bytes], after: str) -> None:
    t = run(turns)
    assert t.replies[-1] == SYNC
    violation = t.of_type(ProtocolViolation)[0]
    assert violation.reason == f"improper command pipelining after {after}"
    assert t.events[-1] == ConnectionClosing("improper command pipelining")
    assert not t.of_type(MessageComplete)


def test_violating_command_is_not_executed() -> None:
    t = run([EHLO, b"MAIL FROM:<a@b>\r\nRCPT TO:<c@d>\r\nDATA\r\nearly\r\n.\r\n"])
    assert "354 End data with <CR><LF>.<CR><LF>" not in t.replies
    assert ("data", 0, 1) in t.counts


def test_violation_detail_is_escaped() -> None:
    t = run([b"EHLO c\r\nX\\\t\x01"])
    assert t.of_type(ProtocolViolation)[0].detail == "X\\\\\\t\\001"


def test_pipelining_allowed_when_not_forbidden() -> None:
    t = run([b"EHLO c\r\nNOOP\r\nQUIT\r\n"], settings(forbid_unauth_pipelining=False))
    assert t.replies == [*EHLO_REPLY, "250 2.0.0 Ok", "221 2.0.0 Bye"]
    # Still noticed once, for the log.
    assert [v.reason for v in t.of_type(ProtocolViolation)] == [
        "improper command pipelining after EHLO"
    ]


def test_without_pipelining_keyword_every_command_is_alone() -> None:
    config = settings(discard_ehlo_keywords=frozenset({"PIPELINING"}))
    t = run([EHLO, b"MAIL FROM:<a@b>\r\nRCPT TO:<c@d>\r\n"], config)
    assert t.replies[-1] == SYNC
    assert "250-PIPELINING" not in t.replies


def test_starttls_injection_is_discarded() -> None:
    config = settings(starttls_offered=True, forbid_unauth_pipelining=False)
    t = run([EHLO, b"STARTTLS\r\nMAIL FROM:<evil@x>\r\n", EHLO], config)
    assert t.of_type(StartTlsRequest) == [StartTlsRequest(b"MAIL FROM:<evil@x>\r\n")]
    assert not t.of_type(MailRequest)
    assert "220 2.0.0 Ready to start TLS" in t.replies
    # After the handshake: a fresh session, STARTTLS no longer offered.
    assert t.of_type(Hello) == [Hello("c", True), Hello("c", True)]
    assert t.server.tls_active
    assert "250-STARTTLS" in t.replies[:10]
    assert t.replies[-9:] == EHLO_REPLY


def test_starttls_injection_refused_when_pipelining_forbidden() -> None:
    t = run([EHLO, b"STARTTLS\r\nMAIL FROM:<evil@x>\r\n"], settings(starttls_offered=True))
    assert t.replies[-1] == SYNC
    assert not t.of_type(StartTlsRequest)
    assert not t.of_type(MailRequest)


def test_starttls_resets_the_session() -> None:
    config = settings(starttls_offered=True)
    t = check_splits([EHLO, b"STARTTLS\r\n", b"MAIL FROM:<a@b>\r\n"], config)
    assert t.replies[-1] == "250 2.1.0 Ok"  # helo_required is off
    assert t.server.helo_name is None
    assert not t.server.extended
    strict = run(
        [EHLO, b"STARTTLS\r\n", b"MAIL FROM:<a@b>\r\n"],
        settings(starttls_offered=True, helo_required=True),
    )
    assert strict.replies[-1] == "503 5.5.1 Error: send HELO/EHLO first"


def test_plaintext_ignored_until_handshake() -> None:
    server = SmtpServer(settings(starttls_offered=True))
    server.greet()
    server.receive_data(EHLO)
    while server.next_event() is not None:
        pass
    server.receive_data(b"STARTTLS\r\n")
    assert server.next_event() == StartTlsRequest(b"")
    assert server.phase is Phase.STARTTLS
    server.receive_data(b"MAIL FROM:<a@b>\r\n")
    assert server.next_event() is None
    server.tls_established()
    assert server.next_event() is None
    assert server.data_to_send().endswith(b"220 2.0.0 Ready to start TLS\r\n")


@pytest.mark.parametrize(
    ("config", "turns", "expected"),
    [
        ({"starttls_offered": True}, [b"STARTTLS now\r\n"], "501 5.5.4 Syntax: STARTTLS"),
        (
            {"starttls_offered": True},
            [b"MAIL FROM:<a@b>\r\n", b"STARTTLS\r\n"],
            "503 5.5.1 Error: MAIL transaction in progress",
        ),
        ({"tls_active": True}, [b"STARTTLS\r\n"], "554 5.5.1 Error: TLS already active"),
        (
            {"starttls_offered": True, "tls_local_problem": True},
            [b"STARTTLS\r\n"],
            "454 4.7.0 TLS not available due to local problem",
        ),
        ({}, [b"STARTTLS\r\n"], "502 5.5.1 Error: command not implemented"),
    ],
)
def test_starttls_errors(config: dict[str, bool], turns: list[bytes], expected: str) -> None:
    t = check_splits([EHLO, *turns], settings(**config))
    assert t.replies[-1] == expected
    assert not t.of_type(StartTlsRequest)


def test_local_problem_is_not_advertised() -> None:
    t = run([EHLO], settings(starttls_offered=True, tls_local_problem=True))
    assert "250-STARTTLS" not in t.replies


def test_tls_required_refuses_mail_before_starttls() -> None:
    config = settings(starttls_offered=True, tls_required=True)
    t = check_splits([EHLO, b"MAIL FROM:<a@b>\r\n", b"NOOP\r\n", b"RSET\r\n"], config)
    assert t.replies[-3:] == [
        "530 5.7.0 Must issue a STARTTLS command first",
        "250 2.0.0 Ok",
        "530 5.7.0 Must issue a STARTTLS command first",
    ]
    after = check_splits([EHLO, b"STARTTLS\r\n", EHLO, b"MAIL FROM:<a@b>\r\n"], config)
    assert after.replies[-1] == "250 2.1.0 Ok"


def test_wrapper_mode_starts_with_tls() -> None:
    t = check_splits([EHLO], settings(tls_active=True, starttls_offered=True, tls_required=True))
    assert "250-STARTTLS" not in t.replies
    assert t.server.tls_active


def test_usage_errors() -> None:
    server = SmtpServer(settings())
    server.greet()
    with pytest.raises(SmtpUsageError):
        server.greet()
    with pytest.raises(SmtpUsageError):
        server.answer()
    with pytest.raises(SmtpUsageError):
        server.tls_established()
    server.receive_data(b"EHLO c\r\n")
    server.next_event()
    server.receive_data(b"MAIL FROM:<a@b>\r\n")
    assert isinstance(server.next_event(), MailRequest)
    assert server.next_event() is None  # waiting for answer()
    server.answer()
    server.receive_data(b"RCPT TO:<c@d>\r\n")
    server.next_event()
    server.answer()
    server.receive_data(b"DATA\r\n")
    server.next_event()
    with pytest.raises(SmtpUsageError):
        server.answer(MailRequest)  # type: ignore[arg-type]
    server.answer()
    server.receive_data(b".\r\n")
    assert isinstance(server.next_event(), MessageComplete)
    with pytest.raises(SmtpUsageError):
        server.answer(None)
    assert server.pending is not None  # still waiting after the refused answer


def test_after_close_everything_is_inert() -> None:
    t = run([b"QUIT\r\n", b"NOOP\r\n"], eof=True)
    assert t.replies == ["221 2.0.0 Bye"]
    server = t.server
    server.answer()
    server.timeout()
    server.tls_established()
    server.receive_data(b"NOOP\r\n")
    assert server.next_event() is None
    assert server.data_to_send() == b""
