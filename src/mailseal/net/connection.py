"""One TCP connection as a small stream: read with a deadline, write, upgrade to TLS.

Built on :class:`asyncio.BufferedProtocol` rather than asyncio streams so that we own
every byte: at STARTTLS the plaintext that arrived after the STARTTLS line is
handed back to the caller (who discards it, CVE-2011-0411) and reading stops
*before* the ``220`` reply leaves, so nothing the client sends after it can be
read as plaintext. The upgrade uses the public ``loop.start_tls`` (never
private transport internals, which break under uvloop and new Pythons). In
wrapper mode (port 465) a connection has no transport until :meth:`start_tls`
builds a TLS one on the accepted socket (``connect_accepted_socket(ssl=...)``),
so not one byte of the ClientHello can be read as plaintext first: uvloop
starts reading right after ``connection_made``, so pausing there is not enough.
Either way one method bounds and reports every handshake.
"""

from __future__ import annotations

import asyncio
import asyncio.sslproto
import contextlib
import socket
import ssl
import threading
from collections.abc import Callable
from typing import cast

__all__ = ["Connection", "ConnectionLostError", "HandshakeError", "InterruptedRead", "accepted"]

# asyncio gives every TLS connection a receive buffer of SSLProtocol.max_size
# (256 KiB), zero-filled when the connection starts: 12 MB for 50 TLS sessions, over
# 1 GB for 5,000 idle ones. A TLS record is at most 16 KiB plus overhead, so 64 KiB
# still takes several records per read. Process-wide: the smtp client's TLS too.
TLS_READ_BUFFER = 64 * 1024
asyncio.sslproto.SSLProtocol.max_size = TLS_READ_BUFFER

# One receive buffer per thread, lent to whichever connection its loop reads for:
# asyncio fills it (recv_into, or SSLObject.read into it) and calls buffer_updated
# at once, which copies the bytes out before anything else runs. Per thread, not per
# process, because recv_into fills it without the GIL. Without it every plaintext
# read was asyncio's recv(256 KiB): an mmap, a mremap and a munmap, about 25 us more
# per read than recv_into; and every TLS read allocated 64 KiB objects. As large as
# asyncio's own recv size, so a read takes as much as before.
_RECEIVE_SIZE = 256 * 1024


class _Receive(threading.local):
    def __init__(self) -> None:
        self.view = memoryview(bytearray(_RECEIVE_SIZE))


_RECEIVE = _Receive()

# Stop reading from the socket while this much is buffered and unread: a client
# that floods while we wait for the disk gets TCP back-pressure, not our memory.
_HIGH_WATER = 1 << 20


class ConnectionLostError(Exception):
    """The peer went away (or the transport was closed) while we wrote."""


class InterruptedRead(Exception):  # noqa: N818 - a signal, not an error
    """:meth:`Connection.interrupt` woke a pending read (the server is stopping)."""


class HandshakeError(Exception):
    """The TLS handshake failed or timed out; ``cause`` is the library's exception."""

    def __init__(self, reason: str, cause: BaseException | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.cause = cause


class Connection(asyncio.BufferedProtocol):
    """A connection's bytes, readable with a timeout, upgradable to TLS."""

    def __init__(
        self,
        on_connected: Callable[[Connection], None] | None = None,
        *,
        tls_socket: socket.socket | None = None,
    ) -> None:
        """``tls_socket``: wrapper mode's accepted socket, which :meth:`start_tls` wraps."""
        self._on_connected = on_connected
        self._transport: asyncio.Transport | None = None
        self._socket = tls_socket  # until the handshake: not read from yet
        # What arrived and is not read yet, as the transport delivered it: a reader
        # usually takes exactly one chunk, which then reaches it without a copy.
        self._chunks: list[bytes] = []
        self._buffered = 0
        self._eof = False
        self._waiter: asyncio.Future[None] | None = None
        self._writable: asyncio.Future[None] | None = None
        self.peer: tuple[str, int] = ("", 0)
        self.local: tuple[str, int] = ("", 0)
        self.ssl_object: ssl.SSLObject | None = None
        if tls_socket is not None:
            peer, local = tls_socket.getpeername(), tls_socket.getsockname()
            self.peer = (str(peer[0]), int(peer[1]))
            self.local = (str(local[0]), int(local[1]))
        self._interrupted = False
        self._reading_paused = False

    # -- asyncio.BufferedProtocol ----------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = cast(asyncio.Transport, transport)
        peer = transport.get_extra_info("peername") or ("", 0)
        local = transport.get_extra_info("sockname") or ("", 0)
        self.peer = (str(peer[0]), int(peer[1]))
        self.local = (str(local[0]), int(local[1]))
        # A one-shot callback: dropping it breaks the cycle callback -> its closure's
        # future -> this connection -> callback, which left every closed connection,
        # with its TLS buffers, to the cyclic GC's rare full collections (about 1 MB
        # per connection piled up; see docs/performance.md).
        on_connected, self._on_connected = self._on_connected, None
        if on_connected is not None:
            on_connected(self)

    def get_buffer(self, sizehint: int) -> memoryview:
        return _RECEIVE.view

    def buffer_updated(self, nbytes: int) -> None:
        self.data_received(bytes(_RECEIVE.view[:nbytes]))

    def data_received(self, data: bytes) -> None:
        """Keep ``data`` for the next read (what a plain Protocol's callback did)."""
        self._chunks.append(data)
        self._buffered += len(data)
        if self._buffered > _HIGH_WATER and self._transport is not None:
            self._transport.pause_reading()
            self._reading_paused = True
        self._wake()

    def eof_received(self) -> bool:
        self._eof = True
        self._wake()
        return False  # close our side too: SMTP has no half-open use

    def connection_lost(self, exc: Exception | None) -> None:
        self._eof = True
        self._transport = None
        self._wake()
        if self._writable is not None and not self._writable.done():
            self._writable.set_result(None)

    def pause_writing(self) -> None:
        self._writable = asyncio.get_running_loop().create_future()

    def resume_writing(self) -> None:
        if self._writable is not None and not self._writable.done():
            self._writable.set_result(None)
        self._writable = None

    def _wake(self) -> None:
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(None)

    # -- the stream ------------------------------------------------------------------

    @property
    def is_closed(self) -> bool:
        if self._socket is not None:
            return False  # wrapper mode, before the handshake
        return self._transport is None or self._transport.is_closing()

    def take_buffered(self) -> bytes:
        """Whatever has arrived and not been read yet, without waiting."""
        data = self._drain_chunks()
        if self._reading_paused and self._transport is not None:
            self._reading_paused = False
            self._transport.resume_reading()
        return data

    async def read(self, timeout: float | None) -> bytes:
        """The next bytes; ``b""`` at end of stream.

        Raises :class:`TimeoutError` after ``timeout`` and :class:`InterruptedRead`
        when :meth:`interrupt` is called while nothing is buffered.
        """
        if not self._chunks and not self._eof:
            if self._interrupted:
                raise InterruptedRead
            loop = asyncio.get_running_loop()
            waiter = self._waiter = loop.create_future()
            # A timer on the future, not asyncio.wait_for: this runs for every
            # command of every session, and wait_for's extra future and callbacks
            # showed in the profile (docs/performance.md).
            timer = None if timeout is None else loop.call_later(timeout, _expire, waiter)
            try:
                await waiter
            finally:
                self._waiter = None
                if timer is not None:
                    timer.cancel()
            if self._interrupted and not self._chunks and not self._eof:
                raise InterruptedRead
        return self.take_buffered()

    def _drain_chunks(self) -> bytes:
        chunks = self._chunks
        data = chunks[0] if len(chunks) == 1 else b"".join(chunks)
        self._chunks = []
        self._buffered = 0
        return data

    def interrupt(self) -> None:
        """Make the current and every later empty read raise :class:`InterruptedRead`."""
        self._interrupted = True
        self._wake()

    def write(self, data: bytes) -> None:
        if self._transport is None or self._transport.is_closing():
            raise ConnectionLostError("connection closed")
        self._transport.write(data)

    @property
    def write_blocked(self) -> bool:
        """The transport asked us to stop writing (its buffer is over the high-water mark)."""
        return self._writable is not None

    async def drain(self) -> None:
        if self._writable is not None:
            await self._writable

    def pause_reading(self) -> None:
        if self._transport is not None and not self._reading_paused:
            self._transport.pause_reading()
            self._reading_paused = True

    async def start_tls(self, context: ssl.SSLContext, timeout: float) -> bytes:
        """Upgrade to TLS as the server; return the plaintext bytes thrown away.

        The caller has already paused reading (before sending ``220``), so
        bytes sent after our reply stay in the kernel and become TLS records.
        """
        if self._socket is not None:
            await self._accept_tls(context, timeout)
            return b""
        # Not take_buffered(): that would resume reading on the plaintext transport.
        discarded = self._drain_chunks()
        transport = self._transport
        if transport is None:
            raise HandshakeError("lost connection")
        loop = asyncio.get_running_loop()
        try:
            new = await loop.start_tls(
                transport, self, context, server_side=True, ssl_handshake_timeout=timeout
            )
        except TimeoutError:
            transport.abort()
            raise HandshakeError("timeout") from None
        except (ssl.SSLError, OSError, ConnectionError) as error:
            transport.abort()
            raise HandshakeError(_reason(error), error) from None
        if new is None:
            raise HandshakeError("lost connection")
        self._transport = new
        self._reading_paused = False  # start_tls resumed reading on the new transport
        self._eof = False
        self.ssl_object = new.get_extra_info("ssl_object")
        return discarded

    async def _accept_tls(self, context: ssl.SSLContext, timeout: float) -> None:
        """Wrapper mode: the first transport of the accepted socket is a TLS one."""
        sock, self._socket = self._socket, None
        assert sock is not None
        loop = asyncio.get_running_loop()
        try:
            # On failure the loop closes the transport it made, and the socket with it.
            new, _ = await loop.connect_accepted_socket(
                lambda: self, sock=sock, ssl=context, ssl_handshake_timeout=timeout
            )
        except TimeoutError:
            raise HandshakeError("timeout") from None
        except (ssl.SSLError, OSError, ConnectionError) as error:
            raise HandshakeError(_reason(error), error) from None
        self.ssl_object = new.get_extra_info("ssl_object")

    def close(self) -> None:
        self._close_unwrapped()
        if self._transport is not None:
            self._transport.close()

    def abort(self) -> None:
        self._close_unwrapped()
        if self._transport is not None:
            self._transport.abort()

    def _close_unwrapped(self) -> None:
        """Close a wrapper-mode socket that never got its TLS transport."""
        if self._socket is not None:
            self._socket.close()
            self._socket = None


async def accepted(sock: socket.socket, *, tls_first: bool = False) -> Connection:
    """The :class:`Connection` of a socket just accepted (non-blocking).

    ``tls_first`` (wrapper mode): no transport until :meth:`Connection.start_tls`.
    Raises OSError when the client is gone already; the socket is closed then.
    """
    try:
        if tls_first:
            return Connection(tls_socket=sock)
        _transport, protocol = await asyncio.get_running_loop().connect_accepted_socket(
            Connection, sock=sock
        )
    except OSError:
        with contextlib.suppress(OSError):
            sock.close()
        raise
    return protocol


def _reason(error: BaseException) -> str:
    if isinstance(error, ssl.SSLError):
        return error.reason or error.strerror or str(error)
    return str(error) or type(error).__name__


def _expire(waiter: asyncio.Future[None]) -> None:
    """A read's deadline passed: wake it with TimeoutError (what wait_for raised)."""
    if not waiter.done():
        waiter.set_exception(TimeoutError())
