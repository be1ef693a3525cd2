"""The client side of a TCP connection: connect with a deadline, upgrade to TLS as the client.

:class:`mailseal.net.connection.Connection` is the server's stream; its
``start_tls`` is server-side only. This subclass adds the client's upgrade
with the public ``loop.start_tls(..., server_side=False, server_hostname=SNI)``.
The SSL context comes ready-made from :mod:`mailseal.tls.client` (this layer
does not import ``ssl``: an ``ssl.SSLError`` is an ``OSError``).

Before the upgrade the caller has checked that nothing arrived after the
``220`` to STARTTLS (the client core treats such bytes as an injection
attempt, RFC 3207 section 5), so every byte read from here on is TLS.

Not done: TLS session resumption. ``loop.start_tls`` takes no ``session``
argument, so an ``ssl.SSLSession`` from an earlier connection cannot be offered;
each connection makes a full handshake (``smtp_tls_session_cache_database``
is read but has no effect).
"""

from __future__ import annotations

import asyncio
import errno
import os

from mailseal.net.connection import Connection, HandshakeError
from mailseal.tls.client import ClientTls

__all__ = ["ClientConnection", "ConnectError", "open_connection"]


class ConnectError(Exception):
    """The TCP connection failed; ``why`` is the errno text Postfix's ``%m`` would give."""

    def __init__(self, why: str) -> None:
        super().__init__(why)
        self.why = why


class ClientConnection(Connection):
    """A connection we opened, upgradable to TLS as the client."""

    async def start_tls_client(
        self, tls: ClientTls, server_hostname: str | None, timeout: float
    ) -> None:
        """Handshake as the client; raises :class:`HandshakeError` (the transport is gone)."""
        transport = self._transport
        if transport is None or transport.is_closing():
            raise HandshakeError("lost connection")
        loop = asyncio.get_running_loop()
        try:
            new = await loop.start_tls(
                transport,
                self,
                tls.context,
                server_side=False,
                server_hostname=server_hostname,
                ssl_handshake_timeout=timeout,
            )
        except TimeoutError:
            transport.abort()
            raise HandshakeError("timeout") from None
        except (OSError, ConnectionError, ValueError) as error:
            transport.abort()
            raise HandshakeError(_reason(error), error) from None
        if new is None:
            raise HandshakeError("lost connection")
        self._transport = new
        self._reading_paused = False  # start_tls reads on the new transport
        self._eof = False
        self.ssl_object = new.get_extra_info("ssl_object")


async def open_connection(addr: str, port: int, timeout: float) -> ClientConnection:
    """Connect to ``addr:port`` within ``timeout`` (0: the system's own limit)."""
    loop = asyncio.get_running_loop()
    try:
        _, protocol = await asyncio.wait_for(
            loop.create_connection(ClientConnection, addr, port), timeout or None
        )
    except TimeoutError:
        raise ConnectError(os.strerror(errno.ETIMEDOUT)) from None
    except OSError as error:
        raise ConnectError(_errno_text(error)) from None
    return protocol


def _errno_text(error: OSError) -> str:
    """strerror(errno), as Postfix's ``%m``: "Connection refused", "No route to host"..."""
    if error.errno is not None:
        return os.strerror(error.errno)
    # asyncio joins the errors of several addresses into one message without errno.
    return str(error) or type(error).__name__


def _reason(error: BaseException) -> str:
    reason = getattr(error, "reason", None)
    if isinstance(reason, str) and reason:
        return reason
    return str(error) or type(error).__name__
