"""The client end of one TCP connection for ``mailseal tls-finger``: read, write, go TLS.

An :class:`asyncio.Protocol` rather than asyncio streams, so that every byte is
ours: at STARTTLS the caller takes whatever plaintext arrived after the ``220``
(:meth:`Wire.take_buffered`) and hands it to the SMTP core, which refuses it
(RFC 3207 section 5, CVE-2011-0411). Python 3.11's ``StreamWriter.start_tls``
would instead keep such bytes and later return them as if they had come over
TLS. The upgrade is the public ``loop.start_tls``; between taking the buffer and
calling it there is no ``await``, so no byte can slip in between, and anything
that arrives later is fed to the TLS layer as a record (and fails the handshake).

The ``SSLContext`` comes from ``mailseal.tls.client``; this module never imports
``ssl`` (only ``tls/`` and ``net/`` may). It lives here, not in ``net/``, because
``net.Connection`` upgrades only as a server; TODO(#5): move it to ``net/``.
"""

from __future__ import annotations

import asyncio
from typing import Any, cast

__all__ = ["Wire", "open_wire"]


class Wire(asyncio.Protocol):
    """Received bytes in a buffer, readable with a timeout; upgradable to TLS once."""

    def __init__(self) -> None:
        self._transport: asyncio.Transport | None = None
        self._buffer = bytearray()
        self._eof = False
        self._waiter: asyncio.Future[None] | None = None
        self.ssl_object: Any = None  # ssl.SSLObject once TLS is up (typed loosely: no ssl here)

    # -- asyncio.Protocol ------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = cast(asyncio.Transport, transport)

    def data_received(self, data: bytes) -> None:
        self._buffer += data
        self._wake()

    def eof_received(self) -> bool:
        self._eof = True
        self._wake()
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        self._eof = True
        self._wake()

    def _wake(self) -> None:
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(None)

    # -- the stream ------------------------------------------------------------------

    def take_buffered(self) -> bytes:
        """What has arrived and not been read yet, without waiting."""
        data = bytes(self._buffer)
        self._buffer.clear()
        return data

    async def read(self, timeout: float) -> bytes:
        """The next bytes; ``b""`` at the end of the stream; TimeoutError after ``timeout``."""
        if not self._buffer and not self._eof:
            self._waiter = asyncio.get_running_loop().create_future()
            try:
                await asyncio.wait_for(self._waiter, timeout)
            finally:
                self._waiter = None
        return self.take_buffered()

    def write(self, data: bytes) -> None:
        if self._transport is None or self._transport.is_closing():
            raise ConnectionResetError("connection closed")
        self._transport.write(data)

    async def start_tls(self, context: Any, server_hostname: str | None, timeout: float) -> Any:
        """Handshake as the client; return the ``SSLObject``. Raises the library's error.

        ``server_hostname`` None sends no SNI. The certificate is not checked here:
        the context verifies nothing and ``mailseal.tls.client`` judges it afterwards.
        """
        transport = self._transport
        if transport is None or transport.is_closing():
            raise ConnectionResetError("lost connection")
        loop = asyncio.get_running_loop()
        try:
            new = await loop.start_tls(
                transport,
                self,
                context,
                server_side=False,
                server_hostname=server_hostname,
                ssl_handshake_timeout=timeout,
            )
        except BaseException:
            transport.abort()
            raise
        if new is None:
            raise ConnectionResetError("lost connection")
        self._transport = new
        self._eof = False
        self.ssl_object = new.get_extra_info("ssl_object")
        return self.ssl_object

    def abort(self) -> None:
        """Drop the connection at once (after QUIT, or when the session is broken)."""
        if self._transport is not None:
            self._transport.abort()
            self._transport = None


async def open_wire(address: str, port: int, timeout: float) -> Wire:
    """Connect to ``address``:``port`` within ``timeout`` seconds; raises OSError/TimeoutError."""
    loop = asyncio.get_running_loop()
    _, wire = await asyncio.wait_for(loop.create_connection(Wire, address, port), timeout)
    return wire
