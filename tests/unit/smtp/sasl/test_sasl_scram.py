"""SCRAM-SHA-256 server (RFC 5802, RFC 7677): test vector, Dovecot credentials, failures."""

from __future__ import annotations

import base64

import pytest
from sasl_drive import drive

from mailseal.smtp.sasl.client import ScramSha256Client
from mailseal.smtp.sasl.credentials import ScramCredentials
from mailseal.smtp.sasl.mechanisms import (
    Challenge,
    Failure,
    NeedCredentials,
    SaslUsageError,
    ScramSha256Server,
    Success,
)

# RFC 7677 section 3.
RFC_CNONCE = "rOprNGfwEbeRWgbNEkqO"
RFC_SNONCE = "%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0"
RFC_NONCE = RFC_CNONCE + RFC_SNONCE
RFC_SALT = base64.b64decode("W22ZaJ0SNY7soEsUEjb6gQ==")
RFC_CLIENT_FIRST = b"n,,n=user,r=rOprNGfwEbeRWgbNEkqO"
RFC_SERVER_FIRST = (
    b"r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096"
)
RFC_CLIENT_FINAL = (
    b"c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,"
    b"p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ="
)
RFC_SERVER_FINAL = b"v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4="
RFC_CREDS = ScramCredentials.derive("pencil", RFC_SALT, 4096)

# Printed by `doveadm pw -s SCRAM-SHA-256 -p secret`.
DOVECOT = (
    "{SCRAM-SHA-256}4096,PIMHp2wRXFKI3duQY78+EQ==,"
    "9MiDwCAxevwskC7IrKyUEh331JlvQ5afYf6yplxukDQ=,"
    "szAlltAnwih8OgOQI9QHGhL1tPBWzxY0dItK5/i3y1Q="
)


def _at_client_final(
    client_first: bytes = RFC_CLIENT_FIRST, creds: ScramCredentials | None = RFC_CREDS
) -> ScramSha256Server:
    server = ScramSha256Server(RFC_SNONCE)
    assert isinstance(server.start(client_first), NeedCredentials)
    assert isinstance(server.credentials(creds), Challenge)
    return server


def test_rfc7677_vector_server_side() -> None:
    server = ScramSha256Server(RFC_SNONCE)
    assert server.start(None) == Challenge(b"")
    assert server.respond(RFC_CLIENT_FIRST) == NeedCredentials("user")
    assert server.credentials(RFC_CREDS) == Challenge(RFC_SERVER_FIRST)
    assert server.respond(RFC_CLIENT_FINAL) == Challenge(RFC_SERVER_FINAL)
    assert server.respond(b"") == Success("user")


def test_rfc7677_vector_client_side() -> None:
    client = ScramSha256Client("user", "pencil", RFC_CNONCE)
    assert client.initial() == RFC_CLIENT_FIRST
    assert client.respond(RFC_SERVER_FIRST) == RFC_CLIENT_FINAL
    assert not client.done
    assert client.respond(RFC_SERVER_FINAL) == b""
    assert client.done


@pytest.mark.parametrize(("password", "ok"), [("secret", True), ("wrong", False), ("", False)])
def test_dovecot_credentials(password: str, ok: bool) -> None:
    creds = ScramCredentials.from_text(DOVECOT)
    client = ScramSha256Client("dove", password, "clientnonce123")
    final, steps = drive(ScramSha256Server("servernonce456"), client, {"dove": creds}.get)
    if ok:
        assert final == Success("dove")
        assert client.done
    else:
        assert final == Failure("authentication failure", "dove")
        assert not client.done
    assert steps[0] == NeedCredentials("dove")


@pytest.mark.parametrize("use_initial", [True, False])
@pytest.mark.parametrize("username", ["user", "a,b=c", "jörg"])
def test_round_trip_with_derived_credentials(use_initial: bool, username: str) -> None:
    creds = ScramCredentials.derive("pässword", b"0123456789abcdef")
    client = ScramSha256Client(username, "pässword", "abc")
    lookup = {username: creds}.get
    final, _ = drive(ScramSha256Server("xyz"), client, lookup, use_initial=use_initial)
    assert final == Success(username)
    assert client.done


def test_wrong_password_fails_at_the_proof() -> None:
    creds = ScramCredentials.derive("right", b"salt")
    final, steps = drive(
        ScramSha256Server("s"), ScramSha256Client("u", "wrong", "c"), {"u": creds}.get
    )
    assert final == Failure("authentication failure", "u")
    assert [type(s) for s in steps] == [NeedCredentials, Challenge, Failure]


def test_unknown_user_fails_only_at_the_proof_with_a_plausible_server_first() -> None:
    final, steps = drive(ScramSha256Server("snonce"), ScramSha256Client("ghost", "pw", "cn"))
    assert final == Failure("authentication failure", "ghost")
    assert [type(s) for s in steps] == [NeedCredentials, Challenge, Failure]
    server_first = steps[1]
    assert isinstance(server_first, Challenge)
    r, s, i = server_first.data.decode().split(",")
    assert r == "r=cnsnonce"
    assert len(base64.b64decode(s.removeprefix("s="), validate=True)) == 16
    assert i == "i=4096"


def test_unknown_user_with_the_right_fake_keys_still_fails() -> None:
    # Even a client that somehow proves the fake keys is refused: the user does not exist.
    server = _at_client_final(creds=None)
    assert server.respond(RFC_CLIENT_FINAL) == Failure("authentication failure", "user")


def _fake_salt(server: ScramSha256Server, user: str) -> bytes:
    server.start(f"n,,n={user},r=c".encode())
    step = server.credentials(None)
    assert isinstance(step, Challenge)
    return base64.b64decode(step.data.split(b",")[1].removeprefix(b"s="))


def test_fake_salt_is_stable_per_user_with_a_secret() -> None:
    salts = {_fake_salt(ScramSha256Server(n, secret=b"k"), "ghost") for n in ("n1", "n2")}
    assert len(salts) == 1
    assert _fake_salt(ScramSha256Server("n1", secret=b"k"), "other") not in salts
    assert _fake_salt(ScramSha256Server("n1", secret=b"k2"), "ghost") not in salts


def test_y_flag_and_own_authzid_are_accepted() -> None:
    creds = ScramCredentials.derive("pw", b"salt")
    for gs2 in ("y,,", "n,a=u,"):
        client = ScramSha256Client("u", "pw", "c")
        client.GS2_HEADER = gs2  # c= in client-final then carries this header too
        server = ScramSha256Server("s")
        assert server.start(client.initial() or b"") == NeedCredentials("u")
        server_first = server.credentials(creds)
        assert isinstance(server_first, Challenge)
        final = client.respond(server_first.data)
        assert final.startswith(b"c=" + base64.b64encode(gs2.encode()) + b",")
        assert isinstance(server.respond(final), Challenge)
        assert server.respond(b"") == Success("u")


@pytest.mark.parametrize(
    ("client_first", "expected"),
    [
        (b"", Failure("Invalid initial client message")),
        (b"n,,", Failure("Invalid initial client message")),
        (b"n,,n=user", Failure("Invalid initial client message")),
        (b"n,,n=\xff,r=c", Failure("Invalid initial client message")),
        (b"n,,n=us\0er,r=c", Failure("Invalid initial client message")),
        (b"p=tls-unique,,n=user,r=c", Failure("Channel binding not supported")),
        (b"x,,n=user,r=c", Failure("Invalid GS2 header")),
        (b"n,b=x,n=user,r=c", Failure("Invalid authzid field")),
        (b"n,a=x=41,n=user,r=c", Failure("authzid escaping is invalid")),
        (b"n,a=admin,n=user,r=c", Failure("authzid not supported", "user")),
        (b"n,,m=ext,n=user,r=c", Failure("Mandatory extension(s) not supported")),
        (b"n,,n=,r=c", Failure("Invalid username field")),
        (b"n,,n=a=2x,r=c", Failure("Invalid username field")),
        (b"n,,u=user,r=c", Failure("Invalid username field")),
        (b"n,,n=user,x=c", Failure("Invalid client nonce", "user")),
        (b"n,,n=user,r=", Failure("Invalid client nonce", "user")),
        (b"n,,n=user,r=\x7f", Failure("Invalid client nonce", "user")),
        (b"n,,n=user,,r=c", Failure("Invalid initial client message")),
    ],
)
def test_malformed_client_first(client_first: bytes, expected: Failure) -> None:
    assert ScramSha256Server("s").start(client_first) == expected


def test_escaped_user_name() -> None:
    assert ScramSha256Server("s").start(b"n,,n=a=2Cb=3Dc,r=x") == NeedCredentials("a,b=c")


INVALID_FINAL = "Invalid final client message"
PROOF = "p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ="


@pytest.mark.parametrize(
    ("client_final", "reason"),
    [
        (b"", INVALID_FINAL),
        (b"c=biws", INVALID_FINAL),
        (b"c=biws,r=" + RFC_NONCE.encode() + b"\xff," + PROOF.encode(), INVALID_FINAL),
        (b"c=biws,r=" + RFC_NONCE.encode() + b",\xff", INVALID_FINAL),
        (f"c=eSws,r={RFC_NONCE},{PROOF}".encode(), "Invalid channel binding data"),
        (f"c=biws!,r={RFC_NONCE},{PROOF}".encode(), "Invalid channel binding data"),
        (f"x=biws,r={RFC_NONCE},{PROOF}".encode(), "Invalid channel binding data"),
        (f"c=biws,r={RFC_CNONCE},{PROOF}".encode(), "Wrong nonce"),
        (f"c=biws,r={RFC_NONCE}x,{PROOF}".encode(), "Wrong nonce"),
        (f"c=biws,r={RFC_NONCE},{PROOF.replace('p=', 'q=')}".encode(), "Invalid ClientProof"),
        (f"c=biws,r={RFC_NONCE},p=not base64".encode(), "Invalid ClientProof"),
        (f"c=biws,r={RFC_NONCE},p=AAAA".encode(), "Invalid ClientProof length"),
        (f"c=biws,r={RFC_NONCE},p={'A' * 43}".encode(), "Invalid ClientProof"),
        (f"c=biws,r={RFC_NONCE},p={'A' * 44}==".encode(), "Invalid ClientProof length"),
        (f"c=biws,r={RFC_NONCE},p={'A' * 43}=".encode(), "authentication failure"),
    ],
)
def test_malformed_client_final(client_final: bytes, reason: str) -> None:
    assert _at_client_final().respond(client_final) == Failure(reason, "user")


def test_extensions_in_client_final_are_ignored_but_signed() -> None:
    # The extension is part of AuthMessage, so the RFC proof no longer matches.
    with_ext = RFC_CLIENT_FINAL.replace(b",p=", b",x=ext,p=")
    assert _at_client_final().respond(with_ext) == Failure("authentication failure", "user")


def test_anything_but_an_empty_answer_after_server_final_fails() -> None:
    server = _at_client_final()
    assert server.respond(RFC_CLIENT_FINAL) == Challenge(RFC_SERVER_FINAL)
    assert server.respond(b"v=again") == Failure(
        "Unexpected data after server-final message", "user"
    )


def test_extensions_in_client_first_are_ignored() -> None:
    step = ScramSha256Server("s").start(b"n,,n=u,r=c,x=ext,y=more=stuff")
    assert step == NeedCredentials("u")


def test_usage_errors() -> None:
    server = ScramSha256Server(RFC_SNONCE)
    with pytest.raises(SaslUsageError):
        server.credentials(None)
    server.start(RFC_CLIENT_FIRST)
    with pytest.raises(SaslUsageError, match="waiting for credentials"):
        server.respond(RFC_CLIENT_FINAL)
    server.credentials(RFC_CREDS)
    with pytest.raises(SaslUsageError):
        server.credentials(RFC_CREDS)
    server.respond(RFC_CLIENT_FINAL)
    assert server.respond(b"") == Success("user")
    with pytest.raises(SaslUsageError):
        server.respond(b"")


@pytest.mark.parametrize("nonce", ["", "a,b", "caf\u00e9", "sp ace"])
def test_server_nonce_must_be_printable(nonce: str) -> None:
    with pytest.raises(ValueError, match="nonce"):
        ScramSha256Server(nonce)
