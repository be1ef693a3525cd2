"""The control socket's wire: one JSON object per line each way, over a unix stream socket.

The master listens on ``$queue_directory/private/control`` (directory 0700, socket
0600: only the mail system's owner may talk to it, as only root may run Postfix's
postsuper). A client writes one request line and reads one reply line; it may send
more requests on the same connection. Every reply is a JSON object with ``"ok"``:
``{"ok": true, ...}`` or ``{"ok": false, "error": "text"}``.

Limits, so that a confused or hostile client costs little: a request line is at
most :data:`MAX_REQUEST` bytes (a longer one gets an error reply and the connection
is closed), a client has :data:`IDLE_TIMEOUT` seconds to send its next line, and a
request is answered within :data:`REQUEST_TIMEOUT` seconds or gets an error reply.
What the requests mean is the handler's business (:mod:`mailseal.daemons.control`).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
import struct
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mailseal.net.unixpath import bind_unix, connect_unix, unlink_unix

__all__ = [
    "IDLE_TIMEOUT",
    "MAX_REQUEST",
    "REQUEST_TIMEOUT",
    "ControlError",
    "ControlHandler",
    "ControlPeer",
    "ControlServer",
    "ControlUnavailable",
    "request",
]

# postsuper -d - with tens of thousands of IDs is sent in batches well below this.
MAX_REQUEST = 1 << 20
# A queue listing can be large; the client trusts the server's replies up to this.
MAX_REPLY = 1 << 28
IDLE_TIMEOUT = 30.0
REQUEST_TIMEOUT = 120.0
_PEERCRED = struct.Struct("3i")  # struct ucred: pid, uid, gid


class ControlUnavailable(OSError):  # noqa: N818 - "the mail system is down" is not a bug
    """Nobody listens on the control socket: the mail system is down."""


class ControlError(Exception):
    """The server answered with an error, or with something that is not a reply."""


@dataclass(frozen=True)
class ControlPeer:
    """Who is on the other end (``SO_PEERCRED``): the log names postsuper by its PID."""

    pid: int
    uid: int


ControlHandler = Callable[[dict[str, Any], ControlPeer], Awaitable[dict[str, Any]]]


class ControlServer:
    """Serves ``handler`` on a unix socket at ``path``."""

    def __init__(self, path: Path, handler: ControlHandler) -> None:
        self.path = path
        self._handler = handler
        self._server: asyncio.AbstractServer | None = None
        self._clients: set[asyncio.Task[None]] = set()

    async def start(self) -> None:
        """Create the private directory (0700) and listen."""
        self.path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        self.path.parent.chmod(0o700)
        sock = bind_unix(self.path, 0o600)
        self._server = await asyncio.start_unix_server(self._serve, sock=sock, limit=MAX_REQUEST)

    async def close(self) -> None:
        """Stop listening, end the connections, and remove the socket file."""
        if self._server is not None:
            self._server.close()
            self._server = None
        for task in list(self._clients):
            task.cancel()
        if self._clients:
            await asyncio.wait(set(self._clients), timeout=5.0)
        with contextlib.suppress(OSError):
            unlink_unix(self.path)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        if task is not None:
            self._clients.add(task)
        try:
            peer = _peer(writer)
            while await self._one(reader, writer, peer):
                pass
        except (ConnectionError, asyncio.CancelledError):
            pass
        finally:
            if task is not None:
                self._clients.discard(task)
            writer.close()
            with contextlib.suppress(ConnectionError, asyncio.CancelledError):
                await writer.wait_closed()

    async def _one(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, peer: ControlPeer
    ) -> bool:
        """Answer one request; False when the connection should end."""
        try:
            line = await asyncio.wait_for(reader.readline(), IDLE_TIMEOUT)
        except TimeoutError:
            return False
        except (asyncio.LimitOverrunError, ValueError):
            await _reply(writer, _error(f"request longer than {MAX_REQUEST} bytes"))
            return False
        if not line:
            return False
        if not line.endswith(b"\n"):
            await _reply(writer, _error("request is not terminated by a newline"))
            return False
        await _reply(writer, await self._answer(line, peer))
        return True

    async def _answer(self, line: bytes, peer: ControlPeer) -> dict[str, Any]:
        try:
            message = json.loads(line)
        except (ValueError, UnicodeDecodeError) as error:
            return _error(f"malformed request: {error}")
        if not isinstance(message, dict):
            return _error("malformed request: not a JSON object")
        try:
            return await asyncio.wait_for(self._handler(message, peer), REQUEST_TIMEOUT)
        except TimeoutError:
            return _error(f"request not finished within {REQUEST_TIMEOUT:.0f}s")


def _error(text: str) -> dict[str, Any]:
    return {"ok": False, "error": text}


async def _reply(writer: asyncio.StreamWriter, reply: dict[str, Any]) -> None:
    writer.write(json.dumps(reply, ensure_ascii=True).encode("ascii") + b"\n")
    await writer.drain()


def _peer(writer: asyncio.StreamWriter) -> ControlPeer:
    sock = writer.get_extra_info("socket")
    if sock is None:
        return ControlPeer(0, -1)
    pid, uid, _ = _PEERCRED.unpack(
        sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, _PEERCRED.size)
    )
    return ControlPeer(pid, uid)


def request(path: Path, message: dict[str, Any], timeout: float = REQUEST_TIMEOUT + 5) -> Any:
    """Send one request and return its reply (blocking; for the command-line tools).

    Raises :class:`ControlUnavailable` when no server listens at ``path``, and
    :class:`ControlError` for an error reply or a broken exchange.
    """
    try:
        sock = connect_unix(path, timeout)
    except (FileNotFoundError, ConnectionRefusedError) as error:
        raise ControlUnavailable(error.errno, error.strerror) from None
    with sock:
        try:
            sock.sendall(json.dumps(message, ensure_ascii=True).encode("ascii") + b"\n")
            line = _read_line(sock)
        except OSError as error:
            raise ControlError(f"control socket: {error}") from None
    try:
        reply = json.loads(line)
    except ValueError:
        raise ControlError("malformed reply from the control socket") from None
    if not isinstance(reply, dict) or not isinstance(reply.get("ok"), bool):
        raise ControlError("malformed reply from the control socket")
    if not reply["ok"]:
        raise ControlError(str(reply.get("error", "unknown error")))
    return reply


def _read_line(sock: socket.socket) -> bytes:
    chunks: list[bytes] = []
    size = 0
    while True:
        chunk = sock.recv(65536)
        if not chunk:
            raise ControlError("the control socket closed without a reply")
        chunks.append(chunk)
        size += len(chunk)
        if chunk.endswith(b"\n") or b"\n" in chunk:
            return b"".join(chunks).split(b"\n", 1)[0]
        if size > MAX_REPLY:
            raise ControlError("reply from the control socket is too long")
