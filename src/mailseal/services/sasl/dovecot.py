"""``smtpd_sasl_type = dovecot``: authenticate through Dovecot's auth server socket.

``DovecotBackend(smtpd_sasl_path)`` keeps one connection to the socket (Postfix
resolves a relative ``smtpd_sasl_path`` against ``queue_directory``; the caller
passes an absolute path) and multiplexes every session's exchange over it by request
id: a reader task hands each reply to the future of its request. A lost connection
fails the requests in flight and the next exchange connects again. Reply texts and
warnings are Postfix's (xsasl_dovecot_server.c); the mechanisms offered follow
``smtpd_sasl_security_options``. Passwords pass through as base64 and are never
logged or kept.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import os
from collections.abc import Callable
from enum import Enum

from mailseal.services.sasl.backend import (
    Continue,
    Rejected,
    SaslExchange,
    SaslPeer,
    SaslResult,
)
from mailseal.services.sasl.dovecot_protocol import (
    AuthRequest,
    HandshakeError,
    HandshakeParser,
    ServerHello,
    cancel_line,
    cont_line,
    filter_mechanisms,
    handshake_lines,
    parse_reply,
    parse_security_options,
)

__all__ = ["CANT_CONNECT", "CONNECTION_LOST", "INVALID_MECHANISM", "DovecotBackend"]

# Postfix's texts (xsasl_dovecot_server.c).
CANT_CONNECT = "Can't connect to authentication server"
CONNECTION_LOST = "Connection lost to authentication server"
INVALID_MECHANISM = "Invalid authentication mechanism"

# CANCEL lets Dovecot drop an abandoned request at once instead of timing it out;
# protocol 1.2 servers (Dovecot 2.2 and later) take it.
_CANCEL_MINOR_VERSION = 2

_MAX_REQUEST_ID = 2**32 - 1

Warn = Callable[[str], None]


class _SendError(Exception):
    """Writing to the socket failed: the connection is gone."""


class _Connection:
    """One handshaken connection to the auth socket and its reader task."""

    def __init__(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        hello: ServerHello,
        warn: Warn,
    ) -> None:
        self.hello = hello
        self._reader = reader
        self._writer = writer
        self._warn = warn
        self._waiters: dict[int, asyncio.Future[SaslResult]] = {}
        self._write_lock = asyncio.Lock()
        self.alive = True
        self._task = asyncio.get_running_loop().create_task(self._read_replies())

    async def request(self, request_id: int, line: bytes, timeout: float) -> SaslResult:
        """Send ``line`` and wait for the reply to ``request_id``."""
        waiter: asyncio.Future[SaslResult] = asyncio.get_running_loop().create_future()
        self._waiters[request_id] = waiter
        try:
            # One bound for the whole round trip: waiting to write, writing, the reply.
            async with asyncio.timeout(timeout):
                await self._send(line)
                return await waiter
        except TimeoutError:
            self._warn(f"SASL: timeout waiting for a Dovecot auth server reply ({timeout:g}s)")
            self.cancel(request_id)
            return Rejected(CONNECTION_LOST, None, temporary=True)
        finally:
            self._waiters.pop(request_id, None)

    def cancel(self, request_id: int) -> None:
        """Ask the server to forget a request (best effort, without waiting)."""
        if self.alive and self.hello.minor_version >= _CANCEL_MINOR_VERSION:
            with contextlib.suppress(OSError, RuntimeError):
                self._writer.write(cancel_line(request_id))

    async def close(self) -> None:
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task
        self._lost()

    async def _send(self, line: bytes) -> None:
        if not self.alive:
            raise _SendError
        # One writer at a time: concurrent drain() calls are not safe on every Python.
        async with self._write_lock:
            try:
                self._writer.write(line)
                await self._writer.drain()
            except (OSError, RuntimeError) as error:
                self._lost()
                raise _SendError from error

    async def _read_replies(self) -> None:
        try:
            while True:
                line = await self._reader.readline()
                if not line.endswith(b"\n"):
                    break  # EOF, possibly after a partial line
                self._dispatch(line[:-1].decode("utf-8", "surrogateescape"))
        except ValueError:  # a line longer than the stream's limit
            self._warn("SASL: Dovecot auth server sent an overlong line")
        except OSError:
            pass
        finally:
            self._lost()

    def _dispatch(self, line: str) -> None:
        reply = parse_reply(line)
        if reply is None:
            return
        if reply.problem is not None:
            self._warn(reply.problem)
        waiter = self._waiters.get(reply.request_id)
        # A reply nobody waits for answers a request that timed out or was abandoned.
        if waiter is not None and not waiter.done():
            waiter.set_result(reply.result)

    def _lost(self) -> None:
        if not self.alive:
            return
        self.alive = False
        self._writer.close()
        for waiter in self._waiters.values():
            if not waiter.done():
                waiter.set_result(Rejected(CONNECTION_LOST, None, temporary=True))


class DovecotBackend:
    """A ``SaslBackend`` over Dovecot's auth client socket at ``path``.

    ``timeout`` bounds every wait (connect, handshake, each reply);
    ``security_options`` is ``smtpd_sasl_security_options``; ``warn`` receives
    Postfix-worded warnings (never a password) for the caller's log.
    """

    def __init__(
        self,
        path: str,
        *,
        timeout: float = 30.0,
        security_options: str = "noanonymous",
        warn: Warn | None = None,
    ) -> None:
        self.path = path
        self.timeout = timeout
        self._options = parse_security_options(security_options)
        self._warn: Warn = warn if warn is not None else _ignore
        self._connection: _Connection | None = None
        self._connect_lock = asyncio.Lock()
        self._request_ids = itertools.count()
        self._closed = False
        self._last_offered: tuple[str, ...] = ()

    async def mechanisms(self) -> tuple[str, ...]:
        """The mechanisms to offer; when Dovecot cannot be reached, the last ones seen.

        A client then still sees AUTH and gets a temporary failure (454) for its
        login, where an empty list would make AUTH look permanently unavailable.
        Before Dovecot was ever reached the list is empty.
        """
        connection = await self.connection()
        if connection is not None:
            self._last_offered = self.offered(connection)
        return self._last_offered

    def exchange(self, mechanism: str, peer: SaslPeer) -> SaslExchange:
        return _DovecotExchange(self, mechanism.upper(), peer)

    async def aclose(self) -> None:
        self._closed = True
        connection, self._connection = self._connection, None
        if connection is not None:
            await connection.close()

    async def connection(self) -> _Connection | None:
        """The live connection, made (again) if needed; ``None`` when that fails."""
        if self._closed:
            return None
        try:
            # Waiting for another session's connect attempt counts against our timeout.
            return await asyncio.wait_for(self._connection_locked(), self.timeout)
        except TimeoutError:
            self._warn(f"SASL: Connect to Dovecot auth socket '{self.path}' failed: timed out")
            return None

    def offered(self, connection: _Connection) -> tuple[str, ...]:
        """The server's mechanisms that ``smtpd_sasl_security_options`` lets us offer."""
        return filter_mechanisms(connection.hello.mechanisms, self._options)

    def next_request_id(self) -> int:
        """A fresh id for an AUTH request; Dovecot reads it as a 32-bit unsigned number."""
        return next(self._request_ids) % _MAX_REQUEST_ID + 1

    async def _connection_locked(self) -> _Connection | None:
        async with self._connect_lock:
            current = self._connection
            if current is not None and current.alive:
                return current
            if current is not None:
                await current.close()
            self._connection = await self._connect()
            return self._connection

    async def _connect(self) -> _Connection | None:
        try:
            reader, writer = await asyncio.open_unix_connection(self.path)
        except OSError as error:
            reason = error.strerror or str(error)
            self._warn(f"SASL: Connect to Dovecot auth socket '{self.path}' failed: {reason}")
            return None
        try:
            writer.write(handshake_lines(os.getpid()))
            await writer.drain()
            hello = await _read_handshake(reader)
        except (HandshakeError, OSError, EOFError) as error:
            writer.close()
            self._warn(str(error) or f"SASL: Couldn't complete handshake with '{self.path}'")
            return None
        except asyncio.CancelledError:
            writer.close()
            raise
        return _Connection(reader, writer, hello, self._warn)


async def _read_handshake(reader: asyncio.StreamReader) -> ServerHello:
    parser = HandshakeParser()
    while True:
        line = await reader.readline()
        if not line.endswith(b"\n"):
            raise EOFError
        hello = parser.feed(line[:-1].decode("utf-8", "surrogateescape"))
        if hello is not None:
            return hello


def _ignore(message: str) -> None:
    del message


class _State(Enum):
    NEW = "new"  # nothing sent yet
    RUNNING = "running"  # AUTH sent, the server wants more
    DONE = "done"  # accepted, rejected or abandoned


class _DovecotExchange:
    """One AUTH request on the backend's shared connection."""

    def __init__(self, backend: DovecotBackend, mechanism: str, peer: SaslPeer) -> None:
        self._backend = backend
        self._mechanism = mechanism
        self._peer = peer
        self._state = _State.NEW
        self._connection: _Connection | None = None
        self._request_id: int | None = None

    async def step(self, response: bytes | None) -> SaslResult:
        if self._state is _State.DONE:
            raise RuntimeError("SASL exchange already finished")
        if self._state is _State.NEW:
            result = await self._start(response)
        else:
            result = await self._continue(response or b"")
        if isinstance(result, Continue):
            self._state = _State.RUNNING
        else:
            self._state = _State.DONE
            self._connection = None
        return result

    def close(self) -> None:
        if self._state is _State.DONE:
            return
        self._state = _State.DONE
        # The server keeps a request that waits for our CONT until its own timeout.
        if self._connection is not None and self._request_id is not None:
            self._connection.cancel(self._request_id)
        self._connection = None

    async def _start(self, initial_response: bytes | None) -> SaslResult:
        # Postfix tries twice: a write may fail on a connection that the server closed
        # while idle (a failed write marks it dead), and a new connection then succeeds.
        for _attempt in range(2):
            connection = await self._backend.connection()
            if connection is None:
                return Rejected(CANT_CONNECT, None, temporary=True)
            if self._mechanism not in self._backend.offered(connection):
                return Rejected(INVALID_MECHANISM, None)
            self._connection = connection
            self._request_id = self._backend.next_request_id()
            request = AuthRequest(self._request_id, self._mechanism, self._peer, initial_response)
            try:
                return await connection.request(
                    self._request_id, request.encode(), self._backend.timeout
                )
            except _SendError:
                continue
        return Rejected(CANT_CONNECT, None, temporary=True)

    async def _continue(self, response: bytes) -> SaslResult:
        connection, request_id = self._connection, self._request_id
        if connection is None or request_id is None or not connection.alive:
            return Rejected(CONNECTION_LOST, None, temporary=True)
        try:
            return await connection.request(
                request_id, cont_line(request_id, response), self._backend.timeout
            )
        except _SendError:
            return Rejected(CONNECTION_LOST, None, temporary=True)
