"""AUTH in the server core (RFC 4954): offering, the exchange, replies and their order."""

from __future__ import annotations

import base64
from typing import Any

import pytest
from smtp_dialogue import settings

from mailseal.smtp import reply as replies
from mailseal.smtp.events import (
    AuthAborted,
    AuthRequest,
    AuthResponse,
    ConnectionClosing,
    Event,
    MailRequest,
    MessageComplete,
    SmtpUsageError,
    StartTlsRequest,
)
from mailseal.smtp.server import Phase, SmtpServer

MECHS = ("PLAIN", "LOGIN")


def b64(data: bytes) -> bytes:
    return base64.b64encode(data)


class Backend:
    """A stand-in SASL backend: PLAIN with one user, LOGIN asking twice."""

    def __init__(self) -> None:
        self.login_user: bytes | None = None

    def drive(self, server: SmtpServer, event: AuthRequest | AuthResponse) -> None:
        if event.mechanism == "PLAIN":
            if event.response is None:
                server.auth_challenge(b"")
            elif event.response == b"\0alice\0secret":
                server.auth_success("alice")
            else:
                server.answer(replies.auth_failed("authentication failure"))
        elif isinstance(event, AuthRequest):
            self.login_user = None
            server.auth_challenge(b"Username:")
        elif self.login_user is None:
            self.login_user = event.response
            server.auth_challenge(b"Password:")
        elif (self.login_user, event.response) == (b"alice", b"secret"):
            server.auth_success("alice")
        else:
            server.answer(replies.auth_failed("UGFzc3dvcmQ6"))


def converse(turns: list[bytes], **overrides: Any) -> tuple[list[str], list[Event], SmtpServer]:
    values: dict[str, Any] = {"auth_mechanisms": MECHS, **overrides}
    server = SmtpServer(settings(**values))
    server.greet()
    backend = Backend()
    events: list[Event] = []
    out = bytearray(server.data_to_send())
    for turn in turns:
        for i in range(len(turn)):  # one byte at a time: the hardest split
            server.receive_data(turn[i : i + 1])
            while (event := server.next_event()) is not None:
                events.append(event)
                if isinstance(event, AuthRequest | AuthResponse):
                    backend.drive(server, event)
                elif isinstance(event, MessageComplete):
                    server.answer(replies.queued("Q1"))
                elif isinstance(event, StartTlsRequest):
                    server.tls_established()
                elif server.pending is event:
                    server.answer(None)
            out += server.data_to_send()
    lines = [line for line in out.decode().split("\r\n") if line][1:]
    return lines, events, server


def test_plain_with_initial_response() -> None:
    lines, events, server = converse(
        [b"EHLO c\r\n", b"AUTH PLAIN " + b64(b"\0alice\0secret") + b"\r\n"]
    )
    assert "250-AUTH PLAIN LOGIN" in lines
    assert lines[-1] == "235 2.7.0 Authentication successful"
    assert server.authenticated == "alice"
    assert server.auth_mechanism == "PLAIN"
    assert AuthRequest("PLAIN", b"\0alice\0secret") in events
    assert ("auth", 1, 1) in server.command_counts()


def test_plain_without_initial_response_gets_empty_challenge() -> None:
    lines, _, server = converse(
        [b"EHLO c\r\n", b"AUTH plain\r\n", b64(b"\0alice\0secret") + b"\r\n"]
    )
    assert lines[-2:] == ["334 ", "235 2.7.0 Authentication successful"]
    assert server.authenticated == "alice"


def test_login_two_challenges_then_failure_counts_an_error() -> None:
    lines, events, server = converse(
        [b"EHLO c\r\n", b"AUTH LOGIN\r\n", b64(b"alice") + b"\r\n", b64(b"wrong") + b"\r\n"]
    )
    assert lines[-3:] == [
        "334 VXNlcm5hbWU6",
        "334 UGFzc3dvcmQ6",
        "535 5.7.8 Error: authentication failed: UGFzc3dvcmQ6",
    ]
    assert server.authenticated is None
    assert server.error_count == 1
    assert [e for e in events if isinstance(e, AuthResponse)] == [
        AuthResponse("LOGIN", b"alice"),
        AuthResponse("LOGIN", b"wrong"),
    ]
    assert ("auth", 0, 1) in server.command_counts()


def test_empty_initial_response_is_equals_sign() -> None:
    _, events, _ = converse([b"EHLO c\r\n", b"AUTH PLAIN =\r\n"])
    assert AuthRequest("PLAIN", b"") in events


def test_star_cancels() -> None:
    lines, events, server = converse([b"EHLO c\r\n", b"AUTH LOGIN\r\n", b"*\r\n", b"NOOP\r\n"])
    assert lines[-2:] == ["501 5.7.0 Authentication aborted", "250 2.0.0 Ok"]
    assert AuthAborted("LOGIN", "") in events
    assert server.phase is Phase.COMMAND


@pytest.mark.parametrize(
    ("turns", "reply", "reason"),
    [
        (
            [b"AUTH PLAIN !!!\r\n"],
            "501 5.5.2 Error: Invalid base64 data in initial response",
            "Invalid base64 data in initial response",
        ),
        (
            [b"AUTH LOGIN\r\n", b"%%%\r\n"],
            "501 5.5.2 Error: Invalid base64 data in continued response",
            "Invalid base64 data in continued response",
        ),
        (
            [b"AUTH CRAM-MD5\r\n"],
            "535 5.7.8 Error: authentication failed: Invalid authentication mechanism",
            "Invalid authentication mechanism",
        ),
    ],
)
def test_bad_input_ends_the_exchange(turns: list[bytes], reply: str, reason: str) -> None:
    lines, events, server = converse([b"EHLO c\r\n", *turns, b"NOOP\r\n"])
    assert lines[-2:] == [reply, "250 2.0.0 Ok"]
    assert any(isinstance(e, AuthAborted) and e.reason == reason for e in events)
    assert server.authenticated is None


def test_response_limit() -> None:
    lines, events, _ = converse(
        [b"EHLO c\r\n", b"AUTH LOGIN\r\n", b"A" * 200 + b"\r\n", b"NOOP\r\n"],
        auth_response_limit=100,
    )
    assert lines[-2:] == ["500 5.5.6 SASL response limit exceeded", "250 2.0.0 Ok"]
    assert AuthAborted("LOGIN", "SASL response limit exceeded") in events


@pytest.mark.parametrize(
    ("turns", "overrides", "reply"),
    [
        (
            [b"AUTH PLAIN\r\n"],
            {"auth_mechanisms": ()},
            "503 5.5.1 Error: authentication not enabled",
        ),
        ([b"AUTH PLAIN\r\n"], {"helo_required": True}, "503 5.5.1 Error: send HELO/EHLO first"),
        (
            [b"EHLO c\r\n", b"AUTH PLAIN\r\n"],
            {"auth_tls_only": True},
            "504 5.5.4 Encryption required for requested authentication mechanism",
        ),
        ([b"EHLO c\r\n", b"AUTH\r\n"], {}, "501 5.5.4 Syntax: AUTH mechanism"),
        ([b"EHLO c\r\n", b"AUTH PLAIN a b\r\n"], {}, "501 5.5.4 Syntax: AUTH mechanism"),
        (
            [b"EHLO c\r\n", b"MAIL FROM:<a@b>\r\n", b"AUTH PLAIN\r\n"],
            {},
            "503 5.5.1 Error: MAIL transaction in progress",
        ),
        (
            [b"EHLO c\r\n", b"AUTH PLAIN " + b64(b"\0alice\0secret") + b"\r\n", b"AUTH LOGIN\r\n"],
            {},
            "503 5.5.1 Error: already authenticated",
        ),
    ],
)
def test_refusals(turns: list[bytes], overrides: dict[str, Any], reply: str) -> None:
    lines, events, _ = converse(turns, **overrides)
    assert lines[-1] == reply
    # The refused AUTH never reaches the driver (only the earlier, successful one does).
    requests = [e for e in events if isinstance(e, AuthRequest)]
    assert len(requests) == (1 if "already" in reply else 0)


def test_tls_auth_only_hides_auth_until_tls() -> None:
    lines, _, server = converse(
        [b"EHLO c\r\n", b"STARTTLS\r\n", b"EHLO c\r\n"],
        auth_tls_only=True,
        starttls_offered=True,
    )
    first_ehlo = lines[: lines.index("220 2.0.0 Ready to start TLS")]
    second_ehlo = lines[lines.index("220 2.0.0 Ready to start TLS") :]
    assert not any("AUTH" in line for line in first_ehlo)
    assert "250-AUTH PLAIN LOGIN" in second_ehlo
    assert server.tls_active


def test_broken_clients_get_old_keyword_too() -> None:
    lines, _, _ = converse([b"EHLO c\r\n"], auth_broken_clients=True)
    assert lines[lines.index("250-AUTH PLAIN LOGIN") + 1] == "250-AUTH=PLAIN LOGIN"


def test_mail_auth_param_and_message_after_auth() -> None:
    lines, events, server = converse(
        [
            b"EHLO c\r\n",
            b"AUTH PLAIN " + b64(b"\0alice\0secret") + b"\r\n",
            b"MAIL FROM:<alice@example.org> AUTH=<>\r\n",
            b"RCPT TO:<bob@example.net>\r\n",
            b"DATA\r\n",
            b"Subject: x\r\n\r\nhi\r\n.\r\n",
        ]
    )
    assert lines[-1] == "250 2.0.0 Ok: queued as Q1"
    mail = next(e for e in events if isinstance(e, MailRequest))
    assert mail.params["AUTH"] == "<>"
    assert server.authenticated == "alice"


def test_starttls_forgets_authentication() -> None:
    _, _, server = converse(
        [b"EHLO c\r\n", b"AUTH PLAIN " + b64(b"\0alice\0secret") + b"\r\n", b"STARTTLS\r\n"],
        starttls_offered=True,
    )
    assert server.authenticated is None


def test_usage_errors() -> None:
    server = SmtpServer(settings(auth_mechanisms=MECHS))
    server.greet()
    with pytest.raises(SmtpUsageError):
        server.auth_success("x")
    for line in (b"EHLO c\r\n", b"AUTH PLAIN\r\n"):
        server.receive_data(line)
        events = []
        while (event := server.next_event()) is not None:
            events.append(event)
    assert isinstance(events[-1], AuthRequest)
    with pytest.raises(SmtpUsageError):
        server.answer(None)
    with pytest.raises(SmtpUsageError):
        server.answer(replies.OK)


def test_hard_error_limit_applies_to_failed_auth() -> None:
    turn = b"AUTH PLAIN " + b64(b"\0alice\0nope") + b"\r\n"
    lines, events, server = converse([b"EHLO c\r\n"] + [turn] * 4, hard_error_limit=3)
    assert lines.count("535 5.7.8 Error: authentication failed: authentication failure") == 3
    assert lines[-1] == "421 4.7.0 mx.example Error: too many errors"
    assert isinstance(events[-1], ConnectionClosing)
    assert server.closed
