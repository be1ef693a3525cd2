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

from mailseal.net.connection import Connection

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
        self._server: asyncio.Server | None = None

    async def start(self, *, backlog: int = 100) -> None:
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(
            lambda: Connection(self._accepted, tls_first=self.tls_first),
            host=self.host,
            port=self.port,
            backlog=backlog,
            reuse_address=True,
            family=socket.AF_UNSPEC,
        )

    def _accepted(self, connection: Connection) -> None:
        task = asyncio.get_running_loop().create_task(self.runner(connection))
        self.sessions.add(task)
        task.add_done_callback(self.sessions.discard)

    def stop_accepting(self) -> None:
        if self._server is not None:
            self._server.close()

    async def wait_sessions(self, timeout: float) -> int:
        """Wait up to ``timeout`` for sessions to end; return how many still run."""
        if self.sessions:
            await asyncio.wait(set(self.sessions), timeout=timeout)
        return len(self.sessions)

    async def close(self) -> None:
        self.stop_accepting()
        if self._server is not None:
            await self._server.wait_closed()
