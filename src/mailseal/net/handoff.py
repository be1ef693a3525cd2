"""Handing accepted connections from the master to smtpd worker processes, and back-talk.

The master owns every listening socket. It accepts, picks a worker, and passes
the connected socket over a ``SOCK_SEQPACKET`` unix socket pair with
``SCM_RIGHTS`` (:func:`socket.send_fds`); the worker turns the descriptor into a
:class:`~mailseal.net.connection.Connection`. Because the master chooses, one
client address can always go to the same worker, so the per-client counters of
anvil(8) (connection rate and count, AUTH rate) stay exact with several
processes -- which ``SO_REUSEPORT`` would not give.

A second pair carries the worker's messages to the master: "ready", "queued
ID" (wake the queue manager, Postfix's cleanup-to-qmgr trigger) and log lines
for the master's observers (metrics, JSON log).

Messages are small datagrams: a one-byte kind, then fields separated by NUL.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import socket
from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum

__all__ = [
    "Accepter",
    "Message",
    "MessageKind",
    "channel_pair",
    "decode",
    "encode",
    "pass_connection",
    "read_messages",
    "receive_connections",
]

_MAX_MESSAGE = 16 * 1024
_ACCEPT_BATCH = 64  # connections taken per wake-up of a listening socket
_ACCEPT_RETRY_DELAY = 1.0  # seconds without accepting after EMFILE and the like
_OUT_OF_RESOURCES = frozenset({errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM})


class MessageKind(Enum):
    CONNECTION = b"C"  # master -> worker, with a descriptor: service key
    DRAIN = b"D"  # master -> worker: take no more, finish sessions, exit (reload)
    STOP = b"S"  # master -> worker: shut down (421 to idle sessions), exit
    READY = b"R"  # worker -> master: services built, taking connections
    QUEUED = b"Q"  # worker -> master: queue ID written to incoming/
    LOG = b"L"  # worker -> master: severity, program, number, message
    IDLE = b"I"  # worker -> master: served clients, then none for max_idle: replace me


@dataclass(frozen=True)
class Message:
    kind: MessageKind
    fields: tuple[str, ...] = ()


def encode(kind: MessageKind, *fields: str) -> bytes:
    body = "\0".join(fields).encode("utf-8", "surrogateescape")
    return kind.value + body


def decode(data: bytes) -> Message | None:
    """The message in ``data``; None for anything that is not one (ignored)."""
    try:
        kind = MessageKind(data[:1])
    except ValueError:
        return None
    text = data[1:].decode("utf-8", "surrogateescape")
    return Message(kind, tuple(text.split("\0")) if text else ())


def channel_pair() -> tuple[socket.socket, socket.socket]:
    """A connected SOCK_SEQPACKET pair (message boundaries kept, descriptors allowed)."""
    return socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)


def pass_connection(channel: socket.socket, key: str, connection: socket.socket) -> bool:
    """Send ``connection`` to a worker without blocking; False when its queue is full."""
    try:
        socket.send_fds(channel, [encode(MessageKind.CONNECTION, key)], [connection.fileno()])
    except (BlockingIOError, InterruptedError):
        return False
    return True


def read_messages(
    channel: socket.socket,
    on_message: Callable[[Message, list[int]], None],
    on_closed: Callable[[], None],
) -> None:
    """Call ``on_message`` for each datagram (with descriptors) as they arrive on the loop.

    ``on_closed`` runs once when the other end is gone (the peer process exited).
    """
    loop = asyncio.get_running_loop()
    channel.setblocking(False)

    def readable() -> None:
        for _ in range(256):  # bounded per wake-up, so one busy peer cannot starve the loop
            try:
                data, fds, _flags, _addr = socket.recv_fds(channel, _MAX_MESSAGE, 1)
            except (BlockingIOError, InterruptedError):
                return
            except OSError:
                data, fds = b"", []
            if not data:
                for fd in fds:
                    with contextlib.suppress(OSError):
                        socket.close(fd)
                loop.remove_reader(channel.fileno())
                on_closed()
                return
            message = decode(data)
            if message is None:
                for fd in fds:
                    socket.close(fd)
                continue
            on_message(message, fds)

    loop.add_reader(channel.fileno(), readable)


def receive_connections(
    channel: socket.socket,
    on_connection: Callable[[str, socket.socket], None],
    on_control: Callable[[MessageKind], None],
) -> None:
    """Worker side: descriptors become sockets; DRAIN and STOP go to ``on_control``."""

    def message(received: Message, fds: list[int]) -> None:
        if received.kind is MessageKind.CONNECTION and fds and received.fields:
            sock = socket.socket(fileno=fds[0])
            sock.setblocking(False)
            on_connection(received.fields[0], sock)
            return
        for fd in fds:
            socket.close(fd)
        if received.kind in (MessageKind.DRAIN, MessageKind.STOP):
            on_control(received.kind)

    read_messages(channel, message, lambda: on_control(MessageKind.STOP))


class Accepter:
    """A listening socket the master accepts on, handing each connection on."""

    def __init__(
        self,
        host: str | None,
        port: int,
        key: str,
        on_connection: Callable[[str, socket.socket], None],
        *,
        backlog: int = 100,
    ) -> None:
        self.key = key
        self._on_connection = on_connection
        self._sockets = _listen(host, port, backlog)
        self._loop: asyncio.AbstractEventLoop | None = None

    def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        for sock in self._sockets:
            self._loop.add_reader(sock.fileno(), self._accept, sock)

    def _accept(self, listening: socket.socket) -> None:
        for _ in range(_ACCEPT_BATCH):
            try:
                connection, _address = listening.accept()
            except (BlockingIOError, InterruptedError, ConnectionAbortedError):
                return
            except OSError as error:
                if error.errno in _OUT_OF_RESOURCES:
                    self._pause(listening)
                return
            self._on_connection(self.key, connection)

    def _pause(self, listening: socket.socket) -> None:
        """Out of descriptors or memory: stop accepting for a while.

        The connection stays queued and would wake the loop again at once: a busy
        loop. asyncio's own servers wait the same way.
        """
        if self._loop is None or listening not in self._sockets:
            return
        self._loop.remove_reader(listening.fileno())
        self._loop.call_later(_ACCEPT_RETRY_DELAY, self._resume, listening)

    def _resume(self, listening: socket.socket) -> None:
        if self._loop is not None and listening in self._sockets:
            self._loop.add_reader(listening.fileno(), self._accept, listening)

    def stop_accepting(self) -> None:
        for sock in self._sockets:
            if self._loop is not None:
                self._loop.remove_reader(sock.fileno())
            sock.close()
        self._sockets = []


def _listen(host: str | None, port: int, backlog: int) -> list[socket.socket]:
    """Bound, listening, non-blocking sockets for ``host`` (None: every address)."""
    infos = socket.getaddrinfo(
        host, port, socket.AF_UNSPEC, socket.SOCK_STREAM, 0, socket.AI_PASSIVE
    )
    sockets: list[socket.socket] = []
    try:
        for family, kind, proto, _name, address in dict.fromkeys(infos):
            sock = socket.socket(family, kind, proto)
            sockets.append(sock)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            if family == socket.AF_INET6:
                # As asyncio's create_server: the IPv6 socket does not also take IPv4.
                sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
            sock.bind(address)
            sock.listen(backlog)
            sock.setblocking(False)
    except OSError:
        for sock in sockets:
            sock.close()
        raise
    return sockets
