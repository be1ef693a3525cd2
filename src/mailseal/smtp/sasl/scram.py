"""SCRAM-SHA-256 server (RFC 5802, RFC 7677) without channel binding.

The exchange: client-first -> ``NeedCredentials`` (the caller looks the user up) ->
server-first challenge -> client-final, whose proof is checked against the stored keys
-> ``v=ServerSignature`` challenge -> the client's empty answer -> ``Success``.

We never advertise ``SCRAM-SHA-256-PLUS``, so a client asking for channel binding
(``p=``) is refused and ``y`` is accepted (RFC 5802 section 6). Reasons follow Dovecot's
wording, which is what Postfix relays from its usual SASL back-end.

An unknown user gets fake credentials made from the user name and a key (the caller's
secret, else the server nonce), and fails only at the proof, so the exchange does not
tell an attacker which user names exist (RFC 5802 section 9, RFC 7677 section 4). With
a per-process secret the fake salt is also stable across sessions, as a real one is.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass
from enum import Enum

from mailseal.smtp.sasl import scram_common as sc
from mailseal.smtp.sasl.credentials import ScramCredentials
from mailseal.smtp.sasl.steps import (
    Challenge,
    Failure,
    NeedCredentials,
    SaslUsageError,
    ServerMechanism,
    Step,
    Success,
)

__all__ = ["ScramSha256Server"]

# Same shape as Dovecot's real credentials: a 16-byte salt and its default 4096 rounds.
FAKE_SALT_SIZE = 16
FAKE_ITERATIONS = 4096
INVALID_FIRST = "Invalid initial client message"
AUTH_FAILURE = "authentication failure"


class _State(Enum):
    WANT_CLIENT_FIRST = "want client-first"
    WANT_CREDENTIALS = "want credentials"
    WANT_CLIENT_FINAL = "want client-final"
    WANT_ACK = "want empty answer to server-final"


@dataclass(frozen=True)
class _ClientFirst:
    gs2_header: str
    bare: str
    username: str
    nonce: str


class _InvalidMessageError(Exception):
    """A malformed client message; carries the Failure to answer with."""

    def __init__(self, reason: str, username: str | None = None) -> None:
        super().__init__(reason)
        self.failure = Failure(reason, username)


def _check_gs2(flag: str, authzid: str) -> None:
    """The GS2 header of client-first (RFC 5802 section 7, RFC 5801 section 4)."""
    if flag.startswith("p="):
        raise _InvalidMessageError("Channel binding not supported")
    if flag not in ("n", "y"):
        raise _InvalidMessageError("Invalid GS2 header")
    if authzid and not authzid.startswith("a="):
        raise _InvalidMessageError("Invalid authzid field")
    if authzid and not sc.unescape_saslname(authzid[2:]):
        raise _InvalidMessageError("authzid escaping is invalid")


def _decode(data: bytes, reason: str, username: str | None = None) -> str:
    """UTF-8 text without NUL (RFC 5802 section 7 never allows one)."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise _InvalidMessageError(reason, username) from None
    if "\0" in text:
        raise _InvalidMessageError(reason, username)
    return text


def _parse_client_first(data: bytes) -> _ClientFirst:
    """RFC 5802 section 7: ``gs2-header client-first-message-bare``."""
    parts = _decode(data, INVALID_FIRST).split(",", 2)
    if len(parts) != 3:
        raise _InvalidMessageError(INVALID_FIRST)
    flag, authzid, bare = parts
    _check_gs2(flag, authzid)
    attrs = sc.parse_attributes(bare)
    if attrs is None or len(attrs) < 2:
        raise _InvalidMessageError(INVALID_FIRST)
    (user_key, user_value), (nonce_key, nonce) = attrs[:2]
    if user_key == "m":
        raise _InvalidMessageError("Mandatory extension(s) not supported")
    username = sc.unescape_saslname(user_value) if user_key == "n" else None
    if not username:
        raise _InvalidMessageError("Invalid username field")
    if nonce_key != "r" or not sc.is_printable(nonce):
        raise _InvalidMessageError("Invalid client nonce", username)
    # Proxy authorization is not supported: an authzid may only name the user itself.
    if authzid and sc.unescape_saslname(authzid[2:]) != username:
        raise _InvalidMessageError("authzid not supported", username)
    # Later attributes are extensions, which RFC 5802 section 5.1 says to ignore.
    return _ClientFirst(f"{flag},{authzid},", bare, username, nonce)


def _parse_client_final(data: bytes, first: _ClientFirst, nonce: str) -> tuple[str, bytes]:
    """RFC 5802 section 7: ``c=...,r=...[,extensions],p=...``.

    Returns client-final-message-without-proof and the proof.
    """
    user = first.username
    text = _decode(data, "Invalid final client message", user)
    without_proof, _, proof_field = text.rpartition(",")
    fields = without_proof.split(",")
    if len(fields) < 2:
        raise _InvalidMessageError("Invalid final client message", user)
    # c= is base64 of the GS2 header alone: no channel-binding data without -PLUS.
    cbind = sc.b64decode(fields[0][2:]) if fields[0].startswith("c=") else None
    if cbind != first.gs2_header.encode():
        raise _InvalidMessageError("Invalid channel binding data", user)
    if fields[1] != f"r={nonce}":
        raise _InvalidMessageError("Wrong nonce", user)
    proof = sc.b64decode(proof_field[2:]) if proof_field.startswith("p=") else None
    if proof is None:
        raise _InvalidMessageError("Invalid ClientProof", user)
    if len(proof) != sc.DIGEST_SIZE:
        raise _InvalidMessageError("Invalid ClientProof length", user)
    return without_proof, proof


def _fake_credentials(username: str, key: bytes) -> ScramCredentials:
    """Plausible credentials for a user who does not exist; nobody can prove them."""
    seed = hmac.new(key, b"mailseal SCRAM fake\0" + username.encode(), hashlib.sha256).digest()
    return ScramCredentials(
        iterations=FAKE_ITERATIONS,
        salt=seed[:FAKE_SALT_SIZE],
        stored_key=sc.hmac_sha256(seed, b"StoredKey"),
        server_key=sc.hmac_sha256(seed, b"ServerKey"),
    )


class ScramSha256Server(ServerMechanism):
    """One SCRAM-SHA-256 exchange; ``nonce`` is the server's random printable part."""

    name = sc.MECHANISM

    def __init__(self, nonce: str, *, secret: bytes | None = None) -> None:
        super().__init__()
        if not sc.is_printable(nonce):
            raise ValueError("SCRAM server nonce must be printable ASCII without ','")
        self._snonce = nonce
        self._fake_key = secret if secret is not None else nonce.encode("ascii")
        self._state = _State.WANT_CLIENT_FIRST
        self._first: _ClientFirst | None = None
        self._creds: ScramCredentials | None = None
        self._known = False
        self._server_first = ""

    def _start(self, initial: bytes | None) -> Step:
        if initial is None:
            return Challenge(b"")
        return self._respond(initial)

    def _respond(self, data: bytes) -> Step:
        match self._state:
            case _State.WANT_CLIENT_FIRST:
                return self._client_first(data)
            case _State.WANT_CLIENT_FINAL:
                return self._client_final(data)
            case _State.WANT_ACK:
                if data:
                    return Failure("Unexpected data after server-final message", self._user)
                return Success(self._user)
            case _State.WANT_CREDENTIALS:
                raise SaslUsageError("SCRAM-SHA-256: respond() while waiting for credentials")

    @property
    def _user(self) -> str:
        if self._first is None:
            raise SaslUsageError("SCRAM-SHA-256: no client-first message yet")
        return self._first.username

    def _client_first(self, data: bytes) -> Step:
        try:
            parsed = _parse_client_first(data)
        except _InvalidMessageError as error:
            return error.failure
        self._first = parsed
        self._state = _State.WANT_CREDENTIALS
        return NeedCredentials(parsed.username)

    def _credentials(self, creds: ScramCredentials | None) -> Step:
        if self._state is not _State.WANT_CREDENTIALS or self._first is None:
            raise SaslUsageError("SCRAM-SHA-256: credentials() not after NeedCredentials")
        self._known = creds is not None
        if creds is None:
            creds = _fake_credentials(self._first.username, self._fake_key)
        self._creds = creds
        self._server_first = (
            f"r={self._first.nonce}{self._snonce},"
            f"s={sc.b64(self._creds.salt)},i={self._creds.iterations}"
        )
        self._state = _State.WANT_CLIENT_FINAL
        return Challenge(self._server_first.encode("ascii"))

    def _client_final(self, data: bytes) -> Step:
        """Check client-final and its proof; answer with ``v=ServerSignature``."""
        if self._first is None or self._creds is None:
            raise SaslUsageError("SCRAM-SHA-256: client-final before credentials")
        user = self._first.username
        try:
            without_proof, proof = _parse_client_final(
                data, self._first, self._first.nonce + self._snonce
            )
        except _InvalidMessageError as error:
            return error.failure
        message = sc.auth_message(self._first.bare, self._server_first, without_proof)
        client_key = sc.recover_client_key(self._creds.stored_key, message, proof)
        proved = hmac.compare_digest(hashlib.sha256(client_key).digest(), self._creds.stored_key)
        if not (proved and self._known):
            return Failure(AUTH_FAILURE, user)
        self._state = _State.WANT_ACK
        signature = sc.server_signature(self._creds.server_key, message)
        return Challenge(b"v=" + sc.b64(signature).encode("ascii"))
