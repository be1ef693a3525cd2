"""The Accepter out of descriptors (EMFILE): it waits, then accepts again; it never spins.

A connection the process cannot accept stays queued, so its listening socket stays
readable: an accept loop that simply returns is woken again at once, burning a core
until a descriptor frees up. The server runs in a child process whose descriptor
limit the test lowers, so the pytest process keeps its own.
"""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time

from mailseal.testing.server import free_port

_SERVER = r"""
import asyncio, json, os, resource, sys, time
from mailseal.net.handoff import Accepter

port, starved_for = int(sys.argv[1]), float(sys.argv[2])
taken = []

async def main():
    accepter = Accepter("127.0.0.1", port, "smtp", lambda key, sock: taken.append(sock))
    accepter.start()
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    in_use = len(os.listdir("/proc/self/fd")) - 1  # listdir's own descriptor is gone now
    resource.setrlimit(resource.RLIMIT_NOFILE, (in_use + 1, hard))  # room for one more
    print("ready", flush=True)
    while len(taken) < 1:
        await asyncio.sleep(0.01)
    await asyncio.sleep(0.2)  # the others are queued now, and accept() says EMFILE
    cpu = time.process_time()
    await asyncio.sleep(starved_for)
    starved = {"taken": len(taken), "cpu": time.process_time() - cpu}
    resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
    deadline = time.monotonic() + 5
    while len(taken) < 3 and time.monotonic() < deadline:
        await asyncio.sleep(0.05)
    print(json.dumps({**starved, "after": len(taken)}), flush=True)

asyncio.run(main())
"""


def test_out_of_descriptors_it_pauses_instead_of_spinning_then_accepts_again() -> None:
    port = free_port()
    server = subprocess.Popen(
        [sys.executable, "-c", _SERVER, str(port), "1.5"],
        stdout=subprocess.PIPE,
        text=True,
    )
    clients: list[socket.socket] = []
    try:
        assert server.stdout is not None
        assert server.stdout.readline().strip() == "ready"
        for _ in range(3):
            clients.append(socket.create_connection(("127.0.0.1", port), timeout=5))
            time.sleep(0.05)
        result = json.loads(server.stdout.readline())
        assert server.wait(10) == 0
    finally:
        if server.poll() is None:
            server.kill()
            server.wait(10)
        for client in clients:
            client.close()
    assert result["taken"] == 1  # one descriptor was left: one connection
    assert result["cpu"] < 0.3  # 1.5 s out of descriptors, not 1.5 s of a busy loop
    assert result["after"] == 3  # with descriptors again, the queued ones are taken
