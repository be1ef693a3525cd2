"""The AUTH exchange of the SMTP client (RFC 4954), over any SASL client mechanism.

The initial response goes on the AUTH line when the line fits in 512 octets (RFC 5321
section 4.5.3.1.4, the command length every server accepts; an empty one is "=",
RFC 4954 section 4); otherwise the client waits for the server's empty 334 and sends
it then. Each 334 challenge is base64-decoded for the mechanism and its answer
base64-encoded back. The client cancels with "*" (and the server's 501 ends the
exchange) when a challenge is not valid base64, when the mechanism refuses a
challenge (raises), or after 100 challenges (Postfix's "authentication protocol
loop" limit in smtp_sasl_authenticate()).
"""

from __future__ import annotations

import base64
import binascii
import re
from typing import Protocol

from mailseal.smtp.client_channel import Channel, Expect
from mailseal.smtp.client_events import Auth, SmtpClientUsageError
from mailseal.smtp.reply import Reply

__all__ = ["AuthExchange", "ClientMechanism"]

_MAX_COMMAND = 512
_MAX_CHALLENGES = 100
# RFC 4422 section 3.1: mechanism names are 1-20 of A-Z, 0-9, "-" and "_".
_MECHANISM_NAME = re.compile(r"[A-Z0-9_-]{1,20}")


class ClientMechanism(Protocol):
    """The shape of a SASL client mechanism (``mailseal.smtp.sasl.client`` has them)."""

    @property
    def name(self) -> str: ...

    def initial(self) -> bytes | None: ...

    def respond(self, challenge: bytes) -> bytes: ...

    @property
    def done(self) -> bool: ...


class AuthExchange:
    """One AUTH command and its challenges; ends with an ``Auth`` event."""

    def __init__(self, channel: Channel, mechanism: ClientMechanism) -> None:
        name = mechanism.name
        if not _MECHANISM_NAME.fullmatch(name):
            raise SmtpClientUsageError(f"bad SASL mechanism name: {name!r}")
        self._channel = channel
        self._mechanism = mechanism
        self._name = name
        self._deferred_initial: str | None = None
        self._challenges = 0
        self._error = ""
        # Asked here, before the client counts as busy, so that a mechanism that
        # raises leaves the client as it was.
        self._line = f"AUTH {name}"
        initial = mechanism.initial()
        if initial is not None:
            encoded = base64.b64encode(initial).decode("ascii") or "="
            if len(self._line) + 1 + len(encoded) + 2 <= _MAX_COMMAND:
                self._line += " " + encoded
            else:
                self._deferred_initial = encoded

    def start(self) -> None:
        self._channel.command(self._line, Expect.AUTH, self._on_reply)

    def _on_reply(self, reply: Reply) -> None:
        if reply.code != 334:
            complete = reply.code // 100 == 2 and self._mechanism.done
            self._channel.emit(Auth(reply, self._name, complete))
            self._channel.finish()
            return
        self._challenges += 1
        if self._challenges > _MAX_CHALLENGES:
            self._cancel("authentication protocol loop")
            return
        if self._deferred_initial is not None:
            # RFC 4954 section 4: the empty 334 asks for the initial response.
            answer, self._deferred_initial = self._deferred_initial, None
            self._channel.command(answer, Expect.AUTH, self._on_reply)
            return
        try:
            challenge = base64.b64decode("".join(reply.lines), validate=True)
        except binascii.Error:
            self._cancel("malformed base64 in server challenge")
            return
        try:
            response = self._mechanism.respond(challenge)
        except Exception as exc:  # any refusal by the mechanism cancels
            self._cancel(str(exc) or type(exc).__name__)
            return
        self._channel.command(
            base64.b64encode(response).decode("ascii"), Expect.AUTH, self._on_reply
        )

    def _cancel(self, why: str) -> None:
        self._error = why
        self._channel.command("*", Expect.AUTH_CANCEL, self._on_cancelled)

    def _on_cancelled(self, reply: Reply) -> None:
        self._channel.emit(Auth(reply, self._name, complete=False, error=self._error))
        self._channel.finish()
