"""Client SASL mechanisms for SMTP AUTH (relayhost login, and tests of our server).

PLAIN (RFC 4616), LOGIN (draft-murchison-sasl-login) and SCRAM-SHA-256 (RFC 5802,
RFC 7677, without channel binding). Like the server side these are sans-IO: the SMTP
client base64-encodes what ``initial()`` and ``respond()`` return and decodes each 334
challenge before passing it in. The client nonce comes from the caller.

A SCRAM client also authenticates the server: ``done`` turns true only after a correct
``v=`` server signature, and a wrong one raises ``SaslClientError``. A caller that sees
235 while ``done`` is still false must treat the server as not authenticated.
"""

from __future__ import annotations

import hashlib
import hmac
from abc import ABC, abstractmethod
from enum import Enum, auto
from typing import ClassVar

from mailseal.smtp.sasl import scram_common as sc

__all__ = [
    "ClientMechanism",
    "LoginClient",
    "PlainClient",
    "SaslClientError",
    "ScramSha256Client",
    "client_mechanism",
]

# A server could ask for any iteration count; beyond this one it is stalling us
# (Dovecot's default and RFC 7677's floor are 4096).
MAX_ITERATIONS = 1_000_000


class SaslClientError(Exception):
    """The server's challenge is malformed or proves the server does not know the user."""


class ClientMechanism(ABC):
    """One client-side exchange: ``initial()``, then ``respond()`` to each challenge."""

    name: ClassVar[str]

    @abstractmethod
    def initial(self) -> bytes | None:
        """The initial response for the AUTH line, or None to wait for a challenge."""

    @abstractmethod
    def respond(self, challenge: bytes) -> bytes:
        """The answer to one decoded 334 challenge."""

    @property
    @abstractmethod
    def done(self) -> bool:
        """Whether this side has finished (for SCRAM: the server is verified)."""


def _no_nul(*values: str) -> None:
    if any("\0" in v for v in values):
        raise ValueError("SASL user names and passwords cannot contain NUL")


class PlainClient(ClientMechanism):
    """RFC 4616: ``NUL authcid NUL passwd`` (no authzid), sent once."""

    name = "PLAIN"

    def __init__(self, username: str, password: str) -> None:
        _no_nul(username, password)
        self._message = b"\0" + username.encode() + b"\0" + password.encode()
        self._sent = False

    def initial(self) -> bytes | None:
        return self._take()

    def respond(self, challenge: bytes) -> bytes:
        # RFC 4954 section 4: without an initial response the server sends an empty 334.
        if challenge:
            raise SaslClientError("PLAIN server sent a non-empty challenge")
        return self._take()

    @property
    def done(self) -> bool:
        return self._sent

    def _take(self) -> bytes:
        if self._sent:
            raise SaslClientError("PLAIN server asked again after the credentials")
        self._sent = True
        return self._message


class LoginClient(ClientMechanism):
    """draft-murchison-sasl-login: the user name, then the password, on request.

    The prompts' wording varies between servers, so only their order counts.
    """

    name = "LOGIN"

    def __init__(self, username: str, password: str) -> None:
        _no_nul(username, password)
        self._answers = [username.encode(), password.encode()]

    def initial(self) -> bytes | None:
        # Many servers do not accept LOGIN with an initial response; wait for Username:.
        return None

    def respond(self, challenge: bytes) -> bytes:
        if not self._answers:
            raise SaslClientError("LOGIN server asked more than user name and password")
        return self._answers.pop(0)

    @property
    def done(self) -> bool:
        return not self._answers


class _ScramState(Enum):
    START = auto()
    SENT_FIRST = auto()
    SENT_FINAL = auto()
    VERIFIED = auto()


class ScramSha256Client(ClientMechanism):
    """RFC 5802 client; ``nonce`` is the client's random printable part (no comma)."""

    name = sc.MECHANISM
    GS2_HEADER = "n,,"  # no channel binding, no authzid

    def __init__(self, username: str, password: str, nonce: str) -> None:
        _no_nul(username, password)
        if not sc.is_printable(nonce):
            raise ValueError("SCRAM client nonce must be printable ASCII without ','")
        self._password = password
        self._nonce = nonce
        self._first_bare = f"n={sc.escape_saslname(username)},r={nonce}"
        self._state = _ScramState.START
        self._expected_signature = b""

    def initial(self) -> bytes | None:
        return self._client_first()

    def respond(self, challenge: bytes) -> bytes:
        match self._state:
            case _ScramState.START if not challenge:
                return self._client_first()
            case _ScramState.SENT_FIRST:
                return self._client_final(challenge)
            case _ScramState.SENT_FINAL:
                self._verify(challenge)
                return b""
            case _:
                raise SaslClientError("unexpected SCRAM-SHA-256 challenge")

    @property
    def done(self) -> bool:
        return self._state is _ScramState.VERIFIED

    def _client_first(self) -> bytes:
        if self._state is not _ScramState.START:
            raise SaslClientError("SCRAM-SHA-256 client-first already sent")
        self._state = _ScramState.SENT_FIRST
        return (self.GS2_HEADER + self._first_bare).encode()

    def _client_final(self, challenge: bytes) -> bytes:
        """Answer server-first (``r=nonce,s=salt,i=iterations``) with our proof."""
        server_first, nonce, salt, iterations = _parse_server_first(challenge)
        if not nonce.startswith(self._nonce) or len(nonce) == len(self._nonce):
            raise SaslClientError("SCRAM-SHA-256 server nonce does not extend ours")
        salted = hashlib.pbkdf2_hmac("sha256", self._password.encode(), salt, iterations)
        without_proof = f"c={sc.b64(self.GS2_HEADER.encode())},r={nonce}"
        message = sc.auth_message(self._first_bare, server_first, without_proof)
        proof = sc.client_proof(salted, message)
        server_key = sc.hmac_sha256(salted, b"Server Key")
        self._expected_signature = sc.server_signature(server_key, message)
        self._state = _ScramState.SENT_FINAL
        return f"{without_proof},p={sc.b64(proof)}".encode()

    def _verify(self, challenge: bytes) -> None:
        """Check server-final: ``v=ServerSignature`` or ``e=error`` (RFC 5802 section 7)."""
        text = challenge.decode("utf-8", errors="replace")
        attrs = sc.parse_attributes(text) or [("", "")]
        key, value = attrs[0]
        if key == "e":
            raise SaslClientError(f"SCRAM-SHA-256 server error: {value}")
        signature = sc.b64decode(value) if key == "v" else None
        if signature is None:
            raise SaslClientError("malformed SCRAM-SHA-256 server-final message")
        if not hmac.compare_digest(signature, self._expected_signature):
            raise SaslClientError("SCRAM-SHA-256 server signature is wrong")
        self._state = _ScramState.VERIFIED


def _parse_server_first(challenge: bytes) -> tuple[str, str, bytes, int]:
    """RFC 5802 section 7 server-first; returns (text, nonce, salt, iterations)."""
    try:
        text = challenge.decode("ascii")
    except UnicodeDecodeError:
        raise SaslClientError("SCRAM-SHA-256 server-first is not ASCII") from None
    attrs = sc.parse_attributes(text)
    if attrs is None or len(attrs) < 3 or attrs[0][0] == "m":
        raise SaslClientError("malformed or unsupported SCRAM-SHA-256 server-first message")
    (r_key, nonce), (s_key, salt_text), (i_key, iter_text) = attrs[:3]
    salt = sc.b64decode(salt_text) if s_key == "s" else None
    if r_key != "r" or not sc.is_printable(nonce) or not salt:
        raise SaslClientError("malformed SCRAM-SHA-256 server-first message")
    if i_key != "i" or not iter_text.isascii() or not iter_text.isdigit():
        raise SaslClientError("malformed SCRAM-SHA-256 iteration count")
    # Check the length first: int() refuses over 4300 digits with a ValueError.
    iterations = int(iter_text) if len(iter_text) <= 7 else MAX_ITERATIONS + 1
    if not 1 <= iterations <= MAX_ITERATIONS:
        raise SaslClientError(f"SCRAM-SHA-256 iteration count {iterations} out of range")
    return text, nonce, salt, iterations


def client_mechanism(name: str, username: str, password: str, nonce: str) -> ClientMechanism | None:
    """A client for ``name`` (any case), or None if we cannot speak it.

    ``nonce`` is a random printable string (no comma), used only by SCRAM.
    """
    match name.upper():
        case "PLAIN":
            return PlainClient(username, password)
        case "LOGIN":
            return LoginClient(username, password)
        case "SCRAM-SHA-256":
            return ScramSha256Client(username, password, nonce)
        case _:
            return None
