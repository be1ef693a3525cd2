"""One SMTP client session: the sans-IO core driven over a client connection, every wait bounded.

``exchange(stage)`` writes what the core queued, then reads until the
operation ends (the core is ready again, closed, waiting for the TLS
handshake, or past QUIT), returning the events. ``stage(events)`` names the
step being waited for and its time limit (``smtp_*_timeout``), Postfix's
"while ..." phrase included, so a timeout can be reported in Postfix's words.
The deadline restarts only when an event arrives, so a server that trickles
bytes cannot stretch one step forever (the core bounds a reply's size too).
Large writes (the message) go out in pieces, each drained within its limit.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass

from mailseal.delivery.smtp.connection import ClientConnection
from mailseal.delivery.smtp.nexthop import Target
from mailseal.net.connection import ConnectionLostError
from mailseal.smtp.client import Phase, SmtpClient
from mailseal.smtp.client_events import ClientEvent

__all__ = ["SessionTimeoutError", "SmtpSession", "Stage"]

_WRITE_PIECE = 64 * 1024


class SessionTimeoutError(Exception):
    """A step did not finish in time; ``where`` is Postfix's "while ..." phrase."""

    def __init__(self, where: str) -> None:
        super().__init__(where)
        self.where = where


@dataclass(frozen=True)
class Stage:
    """The step being waited for: its phrase and limit, and those of writing during it."""

    where: str
    timeout: float
    write_where: str = ""
    write_timeout: float = 0.0


class SmtpSession:
    """A connected server, its protocol state, and what is known about it."""

    def __init__(self, connection: ClientConnection, client: SmtpClient, target: Target) -> None:
        self.connection = connection
        self.client = client
        self.target = target
        self.created = time.monotonic()
        self.uses = 0
        self.tls_level = "none"  # the security level this session satisfied
        self.verified = False  # the certificate satisfied a level that checks it
        self.authenticated = False

    @property
    def usable(self) -> bool:
        """Ready for another operation over a live connection."""
        return self.client.ready and not self.connection.is_closed

    async def exchange(self, stage: Callable[[list[ClientEvent]], Stage]) -> list[ClientEvent]:
        """Run the operation just started on the client to its end; raises SessionTimeoutError."""
        events: list[ClientEvent] = []
        loop = asyncio.get_running_loop()
        deadline = 0.0
        seen = -1
        while True:
            while (event := self.client.next_event()) is not None:
                events.append(event)
            current = stage(events)
            await self._flush(current)
            if self._finished():
                return events
            if len(events) != seen:  # progress: a new step, a new limit
                seen, deadline = len(events), loop.time() + current.timeout
            remaining = deadline - loop.time()
            if remaining <= 0:
                raise SessionTimeoutError(current.where)
            try:
                data = await self.connection.read(remaining)
            except TimeoutError:
                raise SessionTimeoutError(current.where) from None
            self.client.receive_data(data)

    def _finished(self) -> bool:
        phase = self.client.phase
        # Events may still be queued after a write failure closed the client.
        return phase in (Phase.READY, Phase.CLOSED, Phase.STARTTLS, Phase.QUIT)

    async def _flush(self, stage: Stage) -> None:
        where = stage.write_where or stage.where
        timeout = stage.write_timeout or stage.timeout
        try:
            # A streamed body comes a piece at a time: each is written and drained
            # before the next is read from the queue file.
            while data := self.client.data_to_send():
                for start in range(0, len(data), _WRITE_PIECE):
                    self.connection.write(data[start : start + _WRITE_PIECE])
                    try:
                        await asyncio.wait_for(self.connection.drain(), timeout)
                    except TimeoutError:
                        raise SessionTimeoutError(where) from None
        except ConnectionLostError:
            self.client.receive_data(b"")  # the core reports it as the end of the session

    async def quit(self, *, wait_for_reply: bool, timeout: float) -> None:
        """QUIT if the session allows it, then close; never raises."""
        try:
            if self.usable:
                self.client.quit()
                if wait_for_reply:
                    await self.exchange(lambda _: Stage("sending QUIT", timeout))
                else:
                    await self._flush(Stage("sending QUIT", timeout))
        except SessionTimeoutError:
            pass
        finally:
            self.close()

    def close(self) -> None:
        self.connection.close()

    def abort(self) -> None:
        self.connection.abort()
