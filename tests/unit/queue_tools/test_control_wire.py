"""The control socket's wire on a real unix socket, at a path longer than sun_path allows."""

import asyncio
import json
import socket
import stat
from pathlib import Path
from typing import Any

import pytest

from mailseal.net.control import (
    MAX_REQUEST,
    ControlError,
    ControlPeer,
    ControlServer,
    ControlUnavailable,
    request,
)
from mailseal.net.unixpath import SUN_PATH_MAX, bind_unix, connect_unix


@pytest.fixture
def deep(tmp_path: Path) -> Path:
    directory = tmp_path.joinpath(*["deep-directory-name"] * 6)
    directory.mkdir(parents=True)
    path = directory / "private" / "control"
    assert len(str(path)) > SUN_PATH_MAX
    return path


async def echo(message: dict[str, Any], peer: ControlPeer) -> dict[str, Any]:
    if message.get("command") == "fail":
        return {"ok": False, "error": "asked to fail"}
    return {"ok": True, "echo": message, "pid": peer.pid}


def raw_exchange(path: Path, data: bytes) -> list[bytes]:
    """Send raw bytes, half-close, and read every reply line until the server closes."""
    with connect_unix(path, 10.0) as sock:
        sock.sendall(data)
        sock.shutdown(socket.SHUT_WR)
        chunks = []
        while chunk := sock.recv(65536):
            chunks.append(chunk)
    return b"".join(chunks).splitlines()


async def serve(path: Path, work: Any) -> Any:
    server = ControlServer(path, echo)
    await server.start()
    try:
        return await asyncio.get_running_loop().run_in_executor(None, work)
    finally:
        await server.close()


def test_round_trip_permissions_and_cleanup(deep: Path) -> None:
    def work() -> tuple[Any, int, int]:
        mode = stat.S_IMODE(deep.parent.stat().st_mode)
        sock_mode = stat.S_IMODE(deep.stat().st_mode)
        return request(deep, {"command": "list", "x": [1, 2]}), mode, sock_mode

    reply, dir_mode, sock_mode = asyncio.run(serve(deep, work))
    assert reply["echo"] == {"command": "list", "x": [1, 2]}
    assert reply["pid"] > 0
    assert (dir_mode, sock_mode) == (0o700, 0o600)
    assert not deep.exists()  # close() removes the socket


def test_error_reply_raises(deep: Path) -> None:
    def work() -> str:
        with pytest.raises(ControlError, match="asked to fail") as caught:
            request(deep, {"command": "fail"})
        return str(caught.value)

    assert asyncio.run(serve(deep, work)) == "asked to fail"


def test_garbage_gets_error_replies_and_the_server_survives(deep: Path) -> None:
    def work() -> tuple[list[bytes], list[bytes], Any]:
        lines = raw_exchange(deep, b'garbage\n[1, 2]\n\xff\xfe\n{"command": "ok"}\nno newline')
        huge = raw_exchange(deep, b"{" + b" " * (MAX_REQUEST + 10) + b"}\n")
        return lines, huge, request(deep, {"command": "still there"})

    lines, huge, after = asyncio.run(serve(deep, work))
    replies = [json.loads(line) for line in lines]
    assert [r["ok"] for r in replies] == [False, False, False, True, False]
    assert replies[0]["error"].startswith("malformed request")
    assert replies[1]["error"] == "malformed request: not a JSON object"
    assert replies[4]["error"] == "request is not terminated by a newline"
    assert json.loads(huge[0]) == {
        "ok": False,
        "error": f"request longer than {MAX_REQUEST} bytes",
    }
    assert after["echo"] == {"command": "still there"}


def test_nobody_listening_is_unavailable(deep: Path) -> None:
    deep.parent.mkdir()
    with pytest.raises(ControlUnavailable):
        request(deep, {"command": "list"})
    # A socket file left by a crashed master: connection refused, the same answer.
    bind_unix(deep).close()
    assert deep.exists()
    with pytest.raises(ControlUnavailable):
        request(deep, {"command": "list"})
