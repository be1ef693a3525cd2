"""Client SASL mechanisms: against our servers, and against wrong or hostile servers."""

from __future__ import annotations

import base64

import pytest
from sasl_drive import drive

from mailseal.smtp.sasl.client import (
    LoginClient,
    PlainClient,
    SaslClientError,
    ScramSha256Client,
    client_mechanism,
)
from mailseal.smtp.sasl.credentials import ScramCredentials
from mailseal.smtp.sasl.mechanisms import (
    SERVER_MECHANISMS,
    Challenge,
    Failure,
    Success,
    VerifyPassword,
    server_mechanism,
)

CREDS = ScramCredentials.derive("pw", b"sixteen byte slt")


@pytest.mark.parametrize("name", SERVER_MECHANISMS)
@pytest.mark.parametrize("use_initial", [True, False])
def test_every_client_against_its_server(name: str, use_initial: bool) -> None:
    client = client_mechanism(name.lower(), "me@example.org", "pw", "cnonce")
    server = server_mechanism(name, "snonce")
    assert client is not None
    assert server is not None
    assert client.name == server.name == name
    final, _ = drive(server, client, {"me@example.org": CREDS}.get, use_initial=use_initial)
    assert final in (Success("me@example.org"), VerifyPassword("me@example.org", "pw"))
    assert client.done


def test_client_registry_knows_only_our_mechanisms() -> None:
    assert client_mechanism("CRAM-MD5", "u", "p", "n") is None
    assert isinstance(client_mechanism("plain", "u", "p", "n"), PlainClient)
    assert isinstance(client_mechanism("LOGIN", "u", "p", "n"), LoginClient)
    assert isinstance(client_mechanism("Scram-Sha-256", "u", "p", "n"), ScramSha256Client)


def test_plain_message_and_misuse() -> None:
    client = PlainClient("u", "p")
    assert not client.done
    assert client.initial() == b"\0u\0p"
    assert client.done
    with pytest.raises(SaslClientError):
        client.respond(b"")
    with pytest.raises(SaslClientError):
        PlainClient("u", "p").respond(b"unexpected")


def test_login_answers_in_order_whatever_the_prompts_say() -> None:
    client = LoginClient("u", "p")
    assert client.initial() is None
    assert client.respond(b"VXNlcm5hbWU6") == b"u"
    assert not client.done
    assert client.respond(b"") == b"p"
    assert client.done
    with pytest.raises(SaslClientError):
        client.respond(b"Password:")


@pytest.mark.parametrize("mechanism", ["PLAIN", "LOGIN", "SCRAM-SHA-256"])
def test_nul_in_credentials_is_refused(mechanism: str) -> None:
    with pytest.raises(ValueError, match="NUL"):
        client_mechanism(mechanism, "u\0x", "p", "n")
    with pytest.raises(ValueError, match="NUL"):
        client_mechanism(mechanism, "u", "p\0x", "n")


def test_scram_client_nonce_must_be_printable() -> None:
    with pytest.raises(ValueError, match="nonce"):
        ScramSha256Client("u", "p", "a,b")


def _scram_at_server_final() -> tuple[ScramSha256Client, bytes]:
    """A client that has sent client-final to our server, and the server's right v=."""
    client = ScramSha256Client("u", "pw", "cn")
    server = server_mechanism("SCRAM-SHA-256", "sn")
    assert server is not None
    server.start(client.initial())
    server_first = server.credentials(CREDS)
    assert isinstance(server_first, Challenge)
    server_final = server.respond(client.respond(server_first.data))
    assert isinstance(server_final, Challenge)
    return client, server_final.data


def test_scram_client_accepts_the_right_server_signature() -> None:
    client, server_final = _scram_at_server_final()
    assert client.respond(server_final) == b""
    assert client.done
    with pytest.raises(SaslClientError):
        client.respond(b"")


@pytest.mark.parametrize(
    ("server_final", "match"),
    [
        (b"v=" + base64.b64encode(bytes(32)), "signature is wrong"),
        (b"e=invalid-proof", "server error: invalid-proof"),
        (b"v=not base64", "malformed"),
        (b"x=abc", "malformed"),
        (b"", "malformed"),
    ],
)
def test_scram_client_rejects_a_wrong_server_final(server_final: bytes, match: str) -> None:
    client, _ = _scram_at_server_final()
    with pytest.raises(SaslClientError, match=match):
        client.respond(server_final)
    assert not client.done


@pytest.mark.parametrize(
    ("server_first", "match"),
    [
        (b"r=cnXY,s=c2FsdA==,i=4096", "nonce does not extend ours"),
        (b"r=other,s=c2FsdA==,i=4096", "nonce does not extend ours"),
        (b"r=cn,s=c2FsdA==,i=4096", "nonce does not extend ours"),
        (b"m=x,r=cnonceX,s=c2FsdA==,i=4096", "malformed"),
        (b"r=cnonceX,s=!!,i=4096", "malformed"),
        (b"r=cnonceX,s=,i=4096", "malformed"),
        (b"r=cnonceX,s=c2FsdA==", "malformed"),
        (b"r=cnonceX,s=c2FsdA==,i=-1", "iteration count"),
        (b"r=cnonceX,s=c2FsdA==,i=0", "out of range"),
        (b"r=cnonceX,s=c2FsdA==,i=" + b"9" * 5000, "out of range"),
        (b"r=cnonceX,s=c2FsdA==,i=\xd9\xa3", "not ASCII"),
    ],
)
def test_scram_client_rejects_a_bad_server_first(server_first: bytes, match: str) -> None:
    client = ScramSha256Client("u", "pw", "cnonce" if b"cnonce" in server_first else "cnXYZ")
    client.initial()
    with pytest.raises(SaslClientError, match=match):
        client.respond(server_first)


def test_scram_client_refuses_a_nonempty_first_challenge() -> None:
    with pytest.raises(SaslClientError):
        ScramSha256Client("u", "pw", "c").respond(b"r=x")


def test_scram_server_failure_leaves_client_unverified() -> None:
    client = ScramSha256Client("u", "wrong", "c")
    server = server_mechanism("SCRAM-SHA-256", "s")
    assert server is not None
    final, _ = drive(server, client, {"u": CREDS}.get)
    assert isinstance(final, Failure)
    assert not client.done
