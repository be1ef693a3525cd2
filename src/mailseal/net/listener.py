"""Listening sockets for inet services, and the tasks of the sessions they accept.

Each accepted connection becomes a :class:`Connection` and one task running
the service's session coroutine; the listener keeps the tasks so a graceful
stop can wait for them (bounded) and a crash in one session never reaches
another or the accept loop.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Callable, Coroutine
from typing import Any

from mailseal.net.connection import Connection, accepted
from mailseal.net.handoff import Accepter

__all__ = ["Listener", "SessionRunner"]

SessionRunner = Callable[[Connection], Coroutine[Any, Any, None]]


class Listener:
    """One listening address of a service, and the sessions it started."""

    def __init__(
        self, host: str | None, port: int, runner: SessionRunner, *, tls_first: bool = False
    ) -> None:
        self.tls_first = tls_first
        self.host = host
        self.port = port
        self.runner = runner
        self.sessions: set[asyncio.Task[None]] = set()
        self._accepter: Accepter | None = None

    async def start(self, *, backlog: int = 100) -> None:
        # Our own accept loop, as the workers' master has: a wrapper-mode socket
        # must reach Connection before any transport reads from it.
        self._accepter = Accepter(self.host, self.port, "", self._accepted, backlog=backlog)
        self._accepter.start()

    def _accepted(self, _key: str, sock: socket.socket) -> None:
        task = asyncio.get_running_loop().create_task(self._serve(sock))
        self.sessions.add(task)
        task.add_done_callback(self.sessions.discard)

    async def _serve(self, sock: socket.socket) -> None:
        sock.setblocking(False)
        try:
            connection = await accepted(sock, tls_first=self.tls_first)
        except OSError:
            return  # the client left already
        await self.runner(connection)

    def stop_accepting(self) -> None:
        if self._accepter is not None:
            self._accepter.stop_accepting()

    async def wait_sessions(self, timeout: float) -> int:
        """Wait up to ``timeout`` for sessions to end; return how many still run."""
        if self.sessions:
            await asyncio.wait(set(self.sessions), timeout=timeout)
        return len(self.sessions)

    async def close(self) -> None:
        self.stop_accepting()
