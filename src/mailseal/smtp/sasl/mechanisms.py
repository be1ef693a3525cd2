"""Server SASL mechanisms for SMTP AUTH: PLAIN, LOGIN, and the registry by name.

PLAIN is RFC 4616 (``authzid NUL authcid NUL passwd``); LOGIN is
draft-murchison-sasl-login (user name and password each in answer to a challenge);
SCRAM-SHA-256 (RFC 5802, RFC 7677) lives in ``scram.py``. Step results and the shared
step machine are in ``steps.py`` and re-exported here. The AUTH line's base64 is the SMTP
core's business (RFC 4954 section 4): mechanisms see raw bytes.
"""

from __future__ import annotations

from enum import Enum, auto

from mailseal.smtp.sasl.scram import ScramSha256Server
from mailseal.smtp.sasl.steps import (
    Challenge,
    Failure,
    NeedCredentials,
    SaslUsageError,
    ServerMechanism,
    Step,
    Success,
    VerifyPassword,
)

__all__ = [
    "SERVER_MECHANISMS",
    "Challenge",
    "Failure",
    "LoginServer",
    "NeedCredentials",
    "PlainServer",
    "SaslUsageError",
    "ScramSha256Server",
    "ServerMechanism",
    "Step",
    "Success",
    "VerifyPassword",
    "server_mechanism",
]

# The order is the order of preference: it is what EHLO's AUTH keyword lists.
SERVER_MECHANISMS = ("PLAIN", "LOGIN", "SCRAM-SHA-256")

INVALID_PLAIN = "Invalid PLAIN message"
# We never act on behalf of another user (RFC 4616 section 2: the server decides).
AUTHZID_NOT_SUPPORTED = "authzid not supported"


def _utf8(data: bytes) -> str | None:
    """``data`` as text, or None if it is not UTF-8 or holds a NUL."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        return None
    return None if "\0" in text else text


class PlainServer(ServerMechanism):
    """RFC 4616: one message ``authzid NUL authcid NUL passwd``, all UTF-8."""

    name = "PLAIN"

    def _start(self, initial: bytes | None) -> Step:
        if initial is None:
            # RFC 4954 section 4: no initial response, so ask with an empty challenge.
            return Challenge(b"")
        return self._message(initial)

    def _respond(self, data: bytes) -> Step:
        return self._message(data)

    @staticmethod
    def _message(data: bytes) -> Step:
        parts = data.split(b"\0")
        if len(parts) != 3:
            return Failure(INVALID_PLAIN)
        authzid, authcid, password = (_utf8(p) for p in parts)
        if not authcid:
            return Failure(INVALID_PLAIN)
        if not password or authzid is None:
            return Failure(INVALID_PLAIN, authcid)
        if authzid and authzid != authcid:
            return Failure(AUTHZID_NOT_SUPPORTED, authcid)
        return VerifyPassword(authcid, password)


class _LoginState(Enum):
    WANT_USERNAME = auto()
    WANT_PASSWORD = auto()


class LoginServer(ServerMechanism):
    """draft-murchison-sasl-login: ``Username:``, then ``Password:``."""

    name = "LOGIN"
    USERNAME_PROMPT = b"Username:"
    PASSWORD_PROMPT = b"Password:"

    def __init__(self) -> None:
        super().__init__()
        self._state = _LoginState.WANT_USERNAME
        self._username = ""

    def _start(self, initial: bytes | None) -> Step:
        if initial is None:
            return Challenge(self.USERNAME_PROMPT)
        # The draft (section 2.1) lets the initial response carry the user name.
        return self._respond(initial)

    def _respond(self, data: bytes) -> Step:
        text = _utf8(data)
        if self._state is _LoginState.WANT_USERNAME:
            if not text:
                return Failure("Invalid username")
            self._username = text
            self._state = _LoginState.WANT_PASSWORD
            return Challenge(self.PASSWORD_PROMPT)
        if not text:
            return Failure("Invalid password", self._username)
        return VerifyPassword(self._username, text)


def server_mechanism(
    name: str, nonce: str, *, secret: bytes | None = None
) -> ServerMechanism | None:
    """A fresh server mechanism for ``name`` (any case), or None if we do not offer it.

    ``nonce`` is a random printable string (no comma) from the caller, used by SCRAM as
    its server nonce. ``secret`` (optional, per process) makes SCRAM's fake salt for
    unknown users stable across sessions; see ``ScramSha256Server``.
    """
    match name.upper():
        case "PLAIN":
            return PlainServer()
        case "LOGIN":
            return LoginServer()
        case "SCRAM-SHA-256":
            return ScramSha256Server(nonce, secret=secret)
        case _:
            return None
