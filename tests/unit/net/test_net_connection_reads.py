"""Connection.read over a real socket pair: chunks, deadlines, and the one timer behind them."""

from __future__ import annotations

import asyncio
import gc
import socket
import threading
import time
import weakref
from collections.abc import Awaitable, Callable

import pytest

from mailseal.net.connection import Connection


async def _connected() -> tuple[Connection, socket.socket]:
    ours, theirs = socket.socketpair()
    loop = asyncio.get_running_loop()
    _transport, connection = await loop.connect_accepted_socket(Connection, sock=ours)
    theirs.setblocking(False)
    return connection, theirs


def _run(body: Callable[[Connection, socket.socket], Awaitable[None]]) -> None:
    async def main() -> None:
        connection, peer = await _connected()
        try:
            await body(connection, peer)
        finally:
            connection.close()
            peer.close()

    asyncio.run(main())


def test_what_arrived_in_several_chunks_is_read_at_once_in_order() -> None:
    async def body(connection: Connection, peer: socket.socket) -> None:
        for piece in (b"EHLO a\r\n", b"MAIL FROM:<>\r\n", b"RCPT TO:<b@c>\r\n"):
            peer.send(piece)
            await asyncio.sleep(0.02)  # each its own segment, its own data_received
        assert await connection.read(1.0) == b"EHLO a\r\nMAIL FROM:<>\r\nRCPT TO:<b@c>\r\n"

    _run(body)


def test_a_read_times_out_after_its_timeout() -> None:
    async def body(connection: Connection, _peer: socket.socket) -> None:
        started = time.monotonic()
        with pytest.raises(TimeoutError):
            await connection.read(0.2)
        assert 0.19 <= time.monotonic() - started < 1.0

    _run(body)


def test_a_later_read_gets_its_own_full_timeout() -> None:
    """The first read's timer is kept; it must not cut the second read short."""

    async def body(connection: Connection, peer: socket.socket) -> None:
        loop = asyncio.get_running_loop()
        loop.call_later(0.05, peer.send, b"one\r\n")
        assert await connection.read(0.3) == b"one\r\n"
        # The first timer would fire at about 0.3 s; this read may wait until 0.65 s.
        loop.call_later(0.5, peer.send, b"two\r\n")
        assert await connection.read(0.6) == b"two\r\n"

    _run(body)


def test_a_shorter_timeout_after_a_longer_one_still_holds() -> None:
    async def body(connection: Connection, peer: socket.socket) -> None:
        peer.send(b"one\r\n")
        assert await connection.read(30.0) == b"one\r\n"
        started = time.monotonic()
        with pytest.raises(TimeoutError):
            await connection.read(0.2)
        assert time.monotonic() - started < 1.0

    _run(body)


def test_a_read_without_timeout_is_not_cut_by_an_earlier_timer() -> None:
    async def body(connection: Connection, peer: socket.socket) -> None:
        peer.send(b"one\r\n")
        assert await connection.read(0.1) == b"one\r\n"
        asyncio.get_running_loop().call_later(0.3, peer.send, b"two\r\n")
        assert await connection.read(None) == b"two\r\n"

    _run(body)


def test_a_closed_connection_is_not_kept_alive_by_its_timer() -> None:
    async def main() -> None:
        connection, peer = await _connected()
        peer.send(b"QUIT\r\n")
        assert await connection.read(300.0) == b"QUIT\r\n"
        connection.close()
        peer.close()
        await asyncio.sleep(0.05)  # connection_lost runs
        gone = weakref.ref(connection)
        del connection
        gc.collect()
        assert gone() is None

    asyncio.run(main())


def test_a_closed_connection_is_freed_without_the_cyclic_gc() -> None:
    """Reference counting alone frees a closed connection and what it holds (TLS buffers).

    smtpd_worker learns of its connection through a callback whose closure holds a
    future, and the future holds the connection. Were the connection to keep the
    callback, that would be a cycle, left to the cyclic GC's rare full collections.
    """

    async def main() -> weakref.ref[Connection]:
        loop = asyncio.get_running_loop()
        made: asyncio.Future[Connection] = loop.create_future()

        def connected(connection: Connection) -> None:
            made.set_result(connection)

        ours, theirs = socket.socketpair()
        await loop.connect_accepted_socket(lambda: Connection(connected), sock=ours)
        connection = await made
        gone = weakref.ref(connection)
        connection.close()
        theirs.close()
        await asyncio.sleep(0.05)  # connection_lost runs
        return gone

    gc.collect()
    gc.disable()
    try:
        gone = asyncio.run(main())
        assert gone() is None
    finally:
        gc.enable()


def _read_all(expected: bytes, errors: list[str]) -> None:
    """One thread's event loop reads ``expected`` from a peer thread writing it in pieces."""

    async def main() -> None:
        connection, peer = await _connected()
        peer.setblocking(True)
        writer = threading.Thread(target=_send_in_pieces, args=(peer, expected))
        writer.start()
        received = bytearray()
        try:
            while len(received) < len(expected):
                data = await connection.read(10.0)
                if not data:
                    break
                received += data
        finally:
            connection.close()
            await asyncio.to_thread(writer.join, 10.0)
            peer.close()
        if received != expected:
            where = _first_difference(received, expected)
            errors.append(f"{len(received)} bytes, first difference at {where}")

    asyncio.run(main())


def _send_in_pieces(peer: socket.socket, data: bytes) -> None:
    for start in range(0, len(data), 1500):
        peer.sendall(data[start : start + 1500])


def _first_difference(received: bytes | bytearray, expected: bytes) -> int:
    return next((i for i, (a, b) in enumerate(zip(received, expected, strict=False)) if a != b), -1)


def test_two_threads_loops_reading_at_once_each_get_their_own_bytes() -> None:
    """The receive buffer asyncio fills is lent per thread: recv_into runs without the GIL.

    A buffer shared by the whole process would let one thread's recv_into overwrite
    what another thread's connection has not copied out yet.
    """
    streams = [bytes([65 + n]) * 4_000_000 for n in range(2)]
    errors: list[str] = []
    readers = [threading.Thread(target=_read_all, args=(data, errors)) for data in streams]
    for reader in readers:
        reader.start()
    for reader in readers:
        reader.join(60.0)
    assert not any(reader.is_alive() for reader in readers)
    assert errors == []
