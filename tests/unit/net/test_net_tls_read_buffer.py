"""Every TLS connection's receive buffer is 64 KiB, not asyncio's 256 KiB (RSS per session)."""

from __future__ import annotations

import asyncio
import asyncio.sslproto
import ssl

from mailseal.net.connection import TLS_READ_BUFFER


def test_a_tls_connection_allocates_the_smaller_buffer() -> None:
    async def build() -> int:
        loop = asyncio.get_running_loop()
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        protocol = asyncio.sslproto.SSLProtocol(
            loop, asyncio.Protocol(), context, loop.create_future(), server_hostname="x"
        )
        return len(protocol.get_buffer(-1))

    assert TLS_READ_BUFFER == 64 * 1024
    assert asyncio.run(build()) == TLS_READ_BUFFER
