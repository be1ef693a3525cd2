r"""Dovecot's client authentication protocol, sans-IO: the lines we send and parse.

The protocol (Dovecot's "auth protocol" documentation; Postfix's
xsasl_dovecot_server.c speaks it for ``smtpd_sasl_type = dovecot``) is line based,
TAB separated, with values escaped by ``\001`` (``str_tabescape``). The client says
``VERSION 1 2`` and ``CPID <pid>``; the server answers ``VERSION``, one ``MECH`` line per
mechanism with its security properties, ``SPID``, ``CUID``, ``COOKIE`` and ``DONE``. Then
``AUTH``/``CONT`` requests are answered with ``OK``/``CONT``/``FAIL`` carrying the
request id, so many exchanges share one connection.

Mechanisms are filtered as Postfix does: ``private`` ones are never offered, and
``smtpd_sasl_security_options`` (``noplaintext``, ``noactive``, ``nodictionary``,
``noanonymous``, ``forward_secrecy``, ``mutual_auth``) is matched against the
properties Dovecot announces.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Iterable
from dataclasses import dataclass, field

from mailseal.services.sasl.backend import Accepted, Continue, Rejected, SaslPeer, SaslResult

__all__ = [
    "BACKEND_ERROR",
    "DEFAULT_FAIL_REASON",
    "MAJOR_VERSION",
    "MINOR_VERSION",
    "AuthRequest",
    "HandshakeError",
    "HandshakeParser",
    "Mechanism",
    "Reply",
    "ServerHello",
    "cancel_line",
    "cont_line",
    "filter_mechanisms",
    "handshake_lines",
    "parse_reply",
    "parse_security_options",
    "printable",
    "tab_escape",
    "tab_unescape",
]

# Major versions are incompatible; minor ones are ignored (xsasl_dovecot_server.c).
MAJOR_VERSION = 1
MINOR_VERSION = 2

# Postfix's reply texts (xsasl_dovecot_server.c).
BACKEND_ERROR = "Authentication backend error"
DEFAULT_FAIL_REASON = "authentication failure"

_ESCAPES = {"\001": "\0011", "\t": "\001t", "\r": "\001r", "\n": "\001n"}
_UNESCAPES = {"1": "\001", "t": "\t", "r": "\r", "n": "\n", "0": "\0"}
_ESCAPED = re.compile("[\001\t\r\n]")

# main.cf security option -> the Dovecot property it forbids or requires.
_NEGATIVE_OPTIONS = {
    "noplaintext": "plaintext",
    "noactive": "active",
    "nodictionary": "dictionary",
    "noanonymous": "anonymous",
}
_POSITIVE_OPTIONS = {"forward_secrecy": "forward-secrecy", "mutual_auth": "mutual-auth"}


def tab_escape(value: str) -> str:
    """Escape a value for the protocol as Dovecot's ``str_tabescape`` does."""
    return _ESCAPED.sub(lambda match: _ESCAPES[match.group()], value)


def tab_unescape(value: str) -> str:
    r"""Undo ``tab_escape``; an unknown escape keeps the character after ``\001``."""
    if "\001" not in value:
        return value
    out: list[str] = []
    chars = iter(value)
    for char in chars:
        if char == "\001":
            following = next(chars, "")
            out.append(_UNESCAPES.get(following, following))
        else:
            out.append(char)
    return "".join(out)


def printable(value: str) -> str:
    """Postfix's ``printable(s, '?')``: what we log and reply never holds control bytes."""
    return "".join(char if char.isprintable() else "?" for char in value)


def parse_security_options(text: str) -> frozenset[str]:
    """Parse ``smtpd_sasl_security_options`` (comma or space separated, any case).

    An unknown option is a ``ValueError``: Postfix makes it fatal.
    """
    options = frozenset(word.lower() for word in re.split(r"[\s,]+", text) if word)
    unknown = options - _NEGATIVE_OPTIONS.keys() - _POSITIVE_OPTIONS.keys()
    if unknown:
        raise ValueError(f"unknown SASL security option: {sorted(unknown)[0]}")
    return options


@dataclass(frozen=True)
class Mechanism:
    """One ``MECH`` line: the name and its lower-case properties."""

    name: str
    properties: frozenset[str]

    @property
    def is_private(self) -> bool:
        """Dovecot's internal mechanisms are never offered to clients."""
        return "private" in self.properties


def filter_mechanisms(mechanisms: Iterable[Mechanism], options: frozenset[str]) -> tuple[str, ...]:
    """The names a session may offer: not private, matching the security options."""
    required = {_POSITIVE_OPTIONS[o] for o in options if o in _POSITIVE_OPTIONS}
    forbidden = {_NEGATIVE_OPTIONS[o] for o in options if o in _NEGATIVE_OPTIONS}
    return tuple(
        mech.name
        for mech in mechanisms
        if not mech.is_private and required <= mech.properties and not forbidden & mech.properties
    )


def handshake_lines(pid: int) -> bytes:
    """What the client sends first: its protocol version and process id."""
    return f"VERSION\t{MAJOR_VERSION}\t{MINOR_VERSION}\nCPID\t{pid}\n".encode("ascii")


class HandshakeError(Exception):
    """The server's handshake is unusable; the message is Postfix's warning text."""


@dataclass(frozen=True)
class ServerHello:
    """What the server said before ``DONE``."""

    minor_version: int
    mechanisms: tuple[Mechanism, ...]


@dataclass
class HandshakeParser:
    """Accumulates the server's handshake lines until ``DONE``."""

    minor_version: int | None = None
    mechanisms: list[Mechanism] = field(default_factory=list)

    def feed(self, line: str) -> ServerHello | None:
        """Take one line (without its newline); the hello once ``DONE`` arrives."""
        command, _, rest = line.partition("\t")
        args = rest.split("\t") if rest else []
        if command == "VERSION":
            self._version(args)
        elif command == "MECH" and args:
            props = frozenset(tab_unescape(arg).lower() for arg in args[1:])
            self.mechanisms.append(Mechanism(tab_unescape(args[0]).upper(), props))
        elif command == "SPID" and not self.mechanisms:
            # auth-master and auth-userdb sockets send VERSION and SPID but no MECH.
            raise HandshakeError(
                "SASL: Connected to wrong auth socket (auth-master instead of auth-client)"
            )
        elif command == "DONE":
            if self.minor_version is None:
                raise HandshakeError("SASL: Protocol version error")
            return ServerHello(self.minor_version, tuple(self.mechanisms))
        # CUID, COOKIE and anything newer are not needed for nologin requests.
        return None

    def _version(self, args: list[str]) -> None:
        if len(args) < 2 or not args[0].isdigit() or not args[1].isdigit():
            raise HandshakeError("SASL: Protocol version error")
        major = int(args[0])
        if major != MAJOR_VERSION:
            raise HandshakeError(f"SASL: Protocol version mismatch ({major} vs. {MAJOR_VERSION})")
        self.minor_version = int(args[1])


@dataclass(frozen=True)
class AuthRequest:
    """One ``AUTH`` line: starts request ``request_id`` (``nologin``: no IMAP login follows)."""

    request_id: int
    mechanism: str
    peer: SaslPeer
    initial_response: bytes | None

    def encode(self) -> bytes:
        """The line to send, newline included."""
        peer = self.peer
        fields = [
            "AUTH",
            str(self.request_id),
            tab_escape(self.mechanism),
            f"service={tab_escape(peer.service)}",
            "nologin",
            f"lip={tab_escape(peer.local_addr)}",
            f"lport={peer.local_port}",
            f"rip={tab_escape(peer.remote_addr)}",
            f"rport={peer.remote_port}",
        ]
        if peer.tls:
            fields.append("secured")
        if self.initial_response is not None:
            # An empty initial response ("=" on the AUTH line) is an empty resp=.
            fields.append("resp=" + base64.b64encode(self.initial_response).decode("ascii"))
        return ("\t".join(fields) + "\n").encode("utf-8")


def cont_line(request_id: int, response: bytes) -> bytes:
    """The client's next response for request ``request_id``."""
    return f"CONT\t{request_id}\t{base64.b64encode(response).decode('ascii')}\n".encode("ascii")


def cancel_line(request_id: int) -> bytes:
    """Tell the server to forget request ``request_id`` (the client went away)."""
    return f"CANCEL\t{request_id}\n".encode("ascii")


@dataclass(frozen=True)
class Reply:
    """A server reply to request ``request_id``; ``problem`` is a warning to log, if any."""

    request_id: int
    result: SaslResult
    problem: str | None = None


def parse_reply(line: str) -> Reply | None:
    """Parse one server line (without its newline) into a ``Reply``.

    ``None`` for lines that are not replies (Postfix ignores unknown commands too).
    """
    command, _, rest = line.partition("\t")
    id_text, tab, rest = rest.partition("\t")
    if command not in ("OK", "CONT", "FAIL") or not id_text.isdigit():
        return None
    request_id = int(id_text)
    if command == "CONT":
        # "CONT\t<id>\t" is an empty challenge; without the field it is an error.
        return _continue(request_id, rest if tab else None)
    args = _arguments(rest)
    user = args.get("user")
    if command == "OK":
        if user is None:
            problem = "missing Dovecot server OK username field"
            return Reply(request_id, Rejected(BACKEND_ERROR, None, temporary=True), problem)
        return Reply(request_id, Accepted(user))
    reason = args.get("reason") or DEFAULT_FAIL_REASON
    # Older servers flag a backend failure with "temp", Dovecot 2.3 with code=temp_fail.
    temporary = "temp" in args or args.get("code") == "temp_fail"
    return Reply(request_id, Rejected(reason, user, temporary=temporary))


def _continue(request_id: int, data: str | None) -> Reply:
    if data is None:
        problem = "missing Dovecot server CONT reply field"
    else:
        try:
            return Reply(request_id, Continue(base64.b64decode(data, validate=True)))
        except binascii.Error:
            problem = "invalid base64 in Dovecot server CONT reply field"
    return Reply(request_id, Rejected(BACKEND_ERROR, None, temporary=True), problem)


def _arguments(rest: str) -> dict[str, str]:
    """``key=value`` and bare flags (value ``""``) of an OK or FAIL line, unescaped."""
    args: dict[str, str] = {}
    for arg in rest.split("\t") if rest else []:
        key, _, value = arg.partition("=")
        args.setdefault(key, printable(tab_unescape(value)))
    return args
