"""SMTP client core: AUTH (RFC 4954) with fake SASL mechanisms."""

from __future__ import annotations

import base64
from collections.abc import Callable
from dataclasses import dataclass, field

import pytest
from smtp_client_script import GREETING, Step, check_splits, ehlo, run

from mailseal.smtp.client import ClientMechanism, SmtpClient
from mailseal.smtp.client_events import Auth, ProtocolError, SmtpClientUsageError
from mailseal.smtp.reply import Reply

EHLO_AUTH = b"250-mx\r\n250-AUTH PLAIN LOGIN\r\n250 ENHANCEDSTATUSCODES\r\n"
AUTH_OK = b"235 2.7.0 Authentication successful\r\n"


def b64(data: bytes) -> bytes:
    return base64.b64encode(data)


@dataclass
class FakePlain:
    name: str = "PLAIN"
    message: bytes = b"\0user\0secret"
    done: bool = False

    def initial(self) -> bytes | None:
        self.done = True
        return self.message

    def respond(self, challenge: bytes) -> bytes:
        raise ValueError("PLAIN server sent a challenge")


@dataclass
class FakeLogin:
    name: str = "LOGIN"
    answers: list[bytes] = field(default_factory=lambda: [b"user", b"secret"])
    seen: list[bytes] = field(default_factory=list)

    def initial(self) -> bytes | None:
        return None

    def respond(self, challenge: bytes) -> bytes:
        self.seen.append(challenge)
        if not self.answers:
            raise ValueError("LOGIN server asked more than user name and password")
        return self.answers.pop(0)

    @property
    def done(self) -> bool:
        return not self.answers


def auth_with(mechanism: ClientMechanism) -> Callable[[SmtpClient], None]:
    def op(client: SmtpClient) -> None:
        client.auth(mechanism)

    return op


def test_plain_initial_response_on_the_auth_line() -> None:
    t = check_splits([GREETING, ehlo, EHLO_AUTH, auth_with(FakePlain()), AUTH_OK])
    assert t.lines[-1] == b"AUTH PLAIN " + b64(b"\0user\0secret") + b"\r\n"
    event = t.events[-1]
    assert event == Auth(Reply(235, "2.7.0", ("Authentication successful",)), "PLAIN", True)
    assert isinstance(event, Auth) and event.is_success
    assert t.client.ready


def test_login_exchange() -> None:
    mechanism = FakeLogin()
    steps: list[Step] = [
        GREETING,
        ehlo,
        EHLO_AUTH,
        auth_with(mechanism),
        b"334 " + b64(b"Username:") + b"\r\n",
        b"334 " + b64(b"Password:") + b"\r\n",
        AUTH_OK,
    ]
    t = run(steps)
    assert t.lines[-3:] == [b"AUTH LOGIN\r\n", b64(b"user") + b"\r\n", b64(b"secret") + b"\r\n"]
    assert mechanism.seen == [b"Username:", b"Password:"]
    event = t.events[-1]
    assert isinstance(event, Auth) and event.is_success


def test_auth_refused() -> None:
    t = run([GREETING, ehlo, EHLO_AUTH, auth_with(FakePlain()), b"535 5.7.8 bad creds\r\n"])
    event = t.events[-1]
    assert event == Auth(Reply(535, "5.7.8", ("bad creds",)), "PLAIN", False)
    assert isinstance(event, Auth) and not event.is_success


def test_invalid_base64_challenge_is_cancelled() -> None:
    steps: list[Step] = [GREETING, ehlo, EHLO_AUTH, auth_with(FakeLogin()), b"334 not*base64\r\n"]
    t = run(steps)
    assert t.lines[-1] == b"*\r\n"
    assert not t.events[-1:] or not isinstance(t.events[-1], Auth)
    t = run([*steps, b"501 5.7.0 Authentication aborted\r\n"])
    assert t.events[-1] == Auth(
        Reply(501, "5.7.0", ("Authentication aborted",)),
        "LOGIN",
        complete=False,
        error="malformed base64 in server challenge",
    )
    assert t.client.ready


def test_mechanism_refusing_a_challenge_cancels() -> None:
    steps: list[Step] = [
        GREETING,
        ehlo,
        EHLO_AUTH,
        auth_with(FakePlain()),
        b"334 " + b64(b"what?") + b"\r\n",
        b"501 5.7.0 Authentication aborted\r\n",
    ]
    t = run(steps)
    assert t.lines[-1] == b"*\r\n"
    event = t.events[-1]
    assert isinstance(event, Auth)
    assert event.error == "PLAIN server sent a challenge"
    assert not event.is_success


def test_235_before_the_mechanism_is_done_is_not_success() -> None:
    # A SCRAM server that says 235 without proving itself (no v= challenge).
    mechanism = FakeLogin()
    t = run([GREETING, ehlo, EHLO_AUTH, auth_with(mechanism), AUTH_OK])
    event = t.events[-1]
    assert isinstance(event, Auth)
    assert event.reply.code == 235 and not event.complete and not event.is_success


def test_long_initial_response_waits_for_the_empty_challenge() -> None:
    mechanism = FakePlain(message=b"x" * 600)
    steps: list[Step] = [GREETING, ehlo, EHLO_AUTH, auth_with(mechanism), b"334 \r\n", AUTH_OK]
    t = run(steps)
    assert t.lines[-2:] == [b"AUTH PLAIN\r\n", b64(b"x" * 600) + b"\r\n"]
    event = t.events[-1]
    assert isinstance(event, Auth) and event.is_success


def test_empty_initial_response_is_an_equals_sign() -> None:
    t = run([GREETING, ehlo, EHLO_AUTH, auth_with(FakePlain(message=b""))])
    assert t.lines[-1] == b"AUTH PLAIN =\r\n"


def test_endless_challenges_are_cancelled() -> None:
    mechanism = FakeLogin(answers=[b"x"] * 1000)
    steps: list[Step] = [GREETING, ehlo, EHLO_AUTH, auth_with(mechanism), *[b"334 \r\n"] * 101]
    t = run(steps)
    assert t.lines[-1] == b"*\r\n"
    assert len(mechanism.seen) == 100
    t = run([*steps, b"501 aborted\r\n"])
    event = t.events[-1]
    assert isinstance(event, Auth) and event.error == "authentication protocol loop"


def test_334_to_the_cancel_is_a_protocol_error() -> None:
    steps: list[Step] = [
        GREETING,
        ehlo,
        EHLO_AUTH,
        auth_with(FakeLogin()),
        b"334 !!\r\n",
        b"334 again\r\n",
    ]
    t = run(steps)
    assert isinstance(t.events[-1], ProtocolError)


def test_bad_mechanism_name_is_refused_before_anything_is_sent() -> None:
    t = run([GREETING, ehlo, EHLO_AUTH])
    with pytest.raises(SmtpClientUsageError):
        t.client.auth(FakePlain(name="PLAIN\r\nQUIT"))
    assert t.client.ready
    assert t.client.data_to_send() == b""
