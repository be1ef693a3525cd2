"""What a server SASL mechanism answers at each step, and the step machine they share.

A mechanism never touches the wire: the SMTP core decodes each AUTH response from base64
(RFC 4954 section 4) and hands the raw bytes in; the mechanism answers with one ``Step``.
``Challenge`` becomes ``334 base64(data)``; ``VerifyPassword`` and ``NeedCredentials`` ask
the caller to consult its password store; ``Success`` and ``Failure`` end the exchange
(``235`` or ``535 5.7.8 Error: authentication failed: <reason>``).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from enum import Enum
from typing import ClassVar

from mailseal.smtp.sasl.credentials import ScramCredentials

__all__ = [
    "Challenge",
    "Failure",
    "NeedCredentials",
    "SaslUsageError",
    "ServerMechanism",
    "Step",
    "Success",
    "VerifyPassword",
]


@dataclass(frozen=True)
class Challenge:
    """Send ``334 base64(data)`` and feed the client's answer to ``respond``."""

    data: bytes


@dataclass(frozen=True)
class VerifyPassword:
    """PLAIN or LOGIN finished: the caller checks ``password`` for ``username``."""

    username: str
    password: str

    def __repr__(self) -> str:
        # Keep passwords out of logs and test failure output.
        return f"VerifyPassword(username={self.username!r}, password=<hidden>)"


@dataclass(frozen=True)
class NeedCredentials:
    """SCRAM: the caller looks up ``username`` and calls ``credentials(...)``."""

    username: str


@dataclass(frozen=True)
class Success:
    """SCRAM finished and the client's proof was right."""

    username: str


@dataclass(frozen=True)
class Failure:
    """The exchange failed; ``reason`` is short text for the 535 reply (never a password)."""

    reason: str
    username: str | None = None


Step = Challenge | VerifyPassword | NeedCredentials | Success | Failure
FINAL_STEPS = (VerifyPassword, Success, Failure)


class SaslUsageError(RuntimeError):
    """The caller drove a mechanism out of order (a bug in the caller, not the client)."""


class _Phase(Enum):
    NEW = "new"
    RUNNING = "running"
    FINISHED = "finished"


class ServerMechanism(ABC):
    """One server-side exchange. Subclasses implement ``_start`` and ``_respond``.

    The public methods keep the order right: one ``start``, then ``respond`` (and, for
    SCRAM, ``credentials``) until a final step; anything after that is a usage error.
    """

    name: ClassVar[str]

    def __init__(self) -> None:
        self._phase = _Phase.NEW

    def start(self, initial: bytes | None) -> Step:
        """Begin; ``initial`` is the AUTH line's initial response (``b""`` for ``=``)."""
        if self._phase is not _Phase.NEW:
            raise SaslUsageError(f"{self.name}: start() called twice")
        self._phase = _Phase.RUNNING
        return self._record(self._start(initial))

    def respond(self, data: bytes) -> Step:
        """The client's next response, already decoded from base64."""
        self._require_running("respond")
        return self._record(self._respond(data))

    def credentials(self, creds: ScramCredentials | None) -> Step:
        """The looked-up credentials after ``NeedCredentials`` (``None``: no such user)."""
        self._require_running("credentials")
        return self._record(self._credentials(creds))

    def _credentials(self, creds: ScramCredentials | None) -> Step:
        raise SaslUsageError(f"{self.name} does not look up stored credentials")

    @abstractmethod
    def _start(self, initial: bytes | None) -> Step: ...

    @abstractmethod
    def _respond(self, data: bytes) -> Step: ...

    def _require_running(self, what: str) -> None:
        if self._phase is _Phase.NEW:
            raise SaslUsageError(f"{self.name}: {what}() before start()")
        if self._phase is _Phase.FINISHED:
            raise SaslUsageError(f"{self.name}: {what}() after the exchange ended")

    def _record(self, step: Step) -> Step:
        if isinstance(step, FINAL_STEPS):
            self._phase = _Phase.FINISHED
        return step
