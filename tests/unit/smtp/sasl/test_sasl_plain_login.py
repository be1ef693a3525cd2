"""PLAIN (RFC 4616) and LOGIN (draft-murchison-sasl-login) server mechanisms."""

from __future__ import annotations

import pytest
from sasl_drive import drive

from mailseal.smtp.sasl.client import LoginClient, PlainClient
from mailseal.smtp.sasl.credentials import ScramCredentials
from mailseal.smtp.sasl.mechanisms import (
    SERVER_MECHANISMS,
    Challenge,
    Failure,
    LoginServer,
    PlainServer,
    SaslUsageError,
    ScramSha256Server,
    VerifyPassword,
    server_mechanism,
)

USERS = [("alice", "s3cret"), ("jörg@example.org", "pässwörd with spaces"), ("a", "=,\x01")]


@pytest.mark.parametrize(("username", "password"), USERS)
@pytest.mark.parametrize("use_initial", [True, False])
def test_plain_round_trip_carries_exactly_what_was_sent(
    username: str, password: str, use_initial: bool
) -> None:
    final, steps = drive(PlainServer(), PlainClient(username, password), use_initial=use_initial)
    assert final == VerifyPassword(username, password)
    assert steps[0] == (final if use_initial else Challenge(b""))


@pytest.mark.parametrize(("username", "password"), USERS)
@pytest.mark.parametrize("use_initial", [True, False])
def test_login_round_trip_carries_exactly_what_was_sent(
    username: str, password: str, use_initial: bool
) -> None:
    client = LoginClient(username, password)
    final, steps = drive(LoginServer(), client, use_initial=use_initial)
    assert final == VerifyPassword(username, password)
    assert steps[:2] == [Challenge(b"Username:"), Challenge(b"Password:")]
    assert client.done


def test_login_initial_response_is_the_user_name() -> None:
    server = LoginServer()
    assert server.start(b"bob") == Challenge(b"Password:")
    assert server.respond(b"pw") == VerifyPassword("bob", "pw")


def test_plain_accepts_authzid_equal_to_authcid() -> None:
    assert PlainServer().start(b"bob\0bob\0pw") == VerifyPassword("bob", "pw")


@pytest.mark.parametrize(
    ("message", "expected"),
    [
        (b"", Failure("Invalid PLAIN message")),
        (b"bob\0pw", Failure("Invalid PLAIN message")),
        (b"\0bob\0pw\0", Failure("Invalid PLAIN message")),
        (b"\0\0pw", Failure("Invalid PLAIN message")),
        (b"\0bob\0", Failure("Invalid PLAIN message", "bob")),
        (b"\0\xff\0pw", Failure("Invalid PLAIN message")),
        (b"\0bob\0\xc3", Failure("Invalid PLAIN message", "bob")),
        (b"\xff\0bob\0pw", Failure("Invalid PLAIN message", "bob")),
        (b"root\0bob\0pw", Failure("authzid not supported", "bob")),
    ],
)
def test_plain_malformed_fails(message: bytes, expected: Failure) -> None:
    assert PlainServer().start(message) == expected
    server = PlainServer()
    assert server.start(None) == Challenge(b"")
    assert server.respond(message) == expected


def test_plain_failure_reason_never_holds_the_password() -> None:
    step = PlainServer().start(b"root\0bob\0hunter2")
    assert isinstance(step, Failure)
    assert "hunter2" not in repr(step)
    assert "hunter2" not in repr(VerifyPassword("bob", "hunter2"))


@pytest.mark.parametrize(
    ("initial", "answers", "expected"),
    [
        (b"", [], Failure("Invalid username")),
        (None, [b"\xff"], Failure("Invalid username")),
        (None, [b"a\0b"], Failure("Invalid username")),
        (b"bob", [b""], Failure("Invalid password", "bob")),
        (b"bob", [b"\xfe\xff"], Failure("Invalid password", "bob")),
        (b"bob", [b"p\0w"], Failure("Invalid password", "bob")),
    ],
)
def test_login_malformed_fails(
    initial: bytes | None, answers: list[bytes], expected: Failure
) -> None:
    server = LoginServer()
    step = server.start(initial)
    for answer in answers:
        assert isinstance(step, Challenge)
        step = server.respond(answer)
    assert step == expected


@pytest.mark.parametrize("mechanism", [PlainServer, LoginServer])
def test_usage_errors(mechanism: type[PlainServer | LoginServer]) -> None:
    server = mechanism()
    with pytest.raises(SaslUsageError):
        server.respond(b"x")
    server.start(b"\0u\0p" if mechanism is PlainServer else None)
    with pytest.raises(SaslUsageError):
        server.start(None)
    with pytest.raises(SaslUsageError):
        server.credentials(None)
    if mechanism is LoginServer:
        server.respond(b"u")
        server.respond(b"p")
    with pytest.raises(SaslUsageError, match="after the exchange ended"):
        server.respond(b"again")


def test_failure_is_final_too() -> None:
    server = PlainServer()
    assert isinstance(server.start(b"junk"), Failure)
    with pytest.raises(SaslUsageError):
        server.respond(b"\0u\0p")


def test_registry() -> None:
    assert SERVER_MECHANISMS == ("PLAIN", "LOGIN", "SCRAM-SHA-256")
    assert isinstance(server_mechanism("plain", "n"), PlainServer)
    assert isinstance(server_mechanism("Login", "n"), LoginServer)
    scram = server_mechanism("scram-sha-256", "nonce")
    assert isinstance(scram, ScramSha256Server)
    for name in SERVER_MECHANISMS:
        mechanism = server_mechanism(name, "x")
        assert mechanism is not None
        assert mechanism.name == name
    assert server_mechanism("CRAM-MD5", "n") is None
    assert server_mechanism("SCRAM-SHA-1", "n") is None
    with pytest.raises(ValueError, match="nonce"):
        server_mechanism("SCRAM-SHA-256", "has,comma")


def test_scram_credentials_is_a_usage_error_elsewhere() -> None:
    server = PlainServer()
    server.start(None)
    with pytest.raises(SaslUsageError):
        server.credentials(ScramCredentials.derive("x", b"salt", 1))
