"""Helpers of the queue-tool tests: a relay that can stall, queue files with fixed facts.

``StallingRelay`` is a tiny plaintext SMTP server on 127.0.0.1 (threads, blocking
sockets). While ``stalled`` it accepts a connection and says nothing, so a
delivery attempt stays in progress; ``end_stalls()`` closes those connections
(the attempt is deferred: lost connection before the greeting). Otherwise it
accepts every message and keeps it.
"""

from __future__ import annotations

import socket
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from mailseal.queue.envelope import Envelope, Recipient
from mailseal.queue.store import QueueName, QueueStore
from mailseal.testing.process import run_mailseal

_WAIT = 60.0


@dataclass
class Received:
    sender: str
    recipients: list[str]
    data: bytes


@dataclass
class StallingRelay:
    port: int = 0
    stalled: bool = False
    received: list[Received] = field(default_factory=list)
    connections: int = 0
    _listener: socket.socket | None = None
    _stalls: list[socket.socket] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _stop: threading.Event = field(default_factory=threading.Event)

    def start(self) -> StallingRelay:
        listener = socket.socket()
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen(16)
        listener.settimeout(0.2)
        self.port = listener.getsockname()[1]
        self._listener = listener
        threading.Thread(target=self._accept, daemon=True).start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self.end_stalls()
        if self._listener is not None:
            self._listener.close()

    def end_stalls(self) -> None:
        with self._lock:
            stalls, self._stalls = self._stalls, []
        for conn in stalls:
            conn.close()

    def wait_connections(self, count: int, timeout: float = 20.0) -> None:
        deadline = time.monotonic() + timeout
        while self.connections < count:
            assert time.monotonic() < deadline, f"{self.connections} of {count} connections"
            time.sleep(0.05)

    def wait_received(self, count: int, timeout: float = 20.0) -> list[Received]:
        deadline = time.monotonic() + timeout
        while len(self.received) < count:
            assert time.monotonic() < deadline, f"{len(self.received)} of {count} messages"
            time.sleep(0.05)
        return self.received

    def _accept(self) -> None:
        assert self._listener is not None
        while not self._stop.is_set():
            try:
                conn, _ = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            with self._lock:
                self.connections += 1
                if self.stalled:
                    self._stalls.append(conn)
                    continue
            threading.Thread(target=self._session, args=(conn,), daemon=True).start()

    def _session(self, conn: socket.socket) -> None:
        conn.settimeout(_WAIT)
        with conn, conn.makefile("rb") as lines:

            def say(text: str) -> None:
                conn.sendall(text.encode() + b"\r\n")

            say("220 relay.test ESMTP")
            sender, recipients = "", list[str]()
            for raw in lines:
                verb = raw.decode().strip()
                upper = verb.upper()
                if upper.startswith(("EHLO", "HELO")):
                    say("250 relay.test")
                elif upper.startswith("MAIL FROM:"):
                    sender, recipients = verb[10:].strip("<> "), []
                    say("250 2.1.0 Ok")
                elif upper.startswith("RCPT TO:"):
                    recipients.append(verb[8:].strip("<> "))
                    say("250 2.1.5 Ok")
                elif upper == "DATA":
                    say("354 End data with <CR><LF>.<CR><LF>")
                    body = b"".join(iter(lines.readline, b".\r\n"))
                    self.received.append(Received(sender, recipients, body))
                    say("250 2.0.0 Ok: queued as 0123456789")
                elif upper == "QUIT":
                    say("221 2.0.0 Bye")
                    return
                else:
                    say("250 Ok")


def tool(directory: Path, *args: str, stdin: str | None = None) -> tuple[int, str, str]:
    """Run ``mailseal -c DIR ARGS``; (status, stdout, stderr), never a traceback."""
    result = run_mailseal("-c", str(directory), *args, stdin=stdin)
    assert "Traceback" not in result.stderr, result.stderr
    return result.returncode, result.stdout, result.stderr


def put_message(
    store: QueueStore,
    queue_id: str,
    queue: QueueName,
    recipients: tuple[str, ...],
    *,
    sender: str = "alice@example.test",
    arrival: float = 1_700_000_000.0,
    content: bytes = b"Subject: test\r\n\r\nbody\r\n",
) -> str:
    envelope = Envelope(
        sender=sender,
        recipients=tuple(Recipient(a, a) for a in recipients),
        arrival_time=arrival,
    )
    stored = store.enqueue(envelope, content, queue_id)
    assert stored == queue_id
    if queue is not QueueName.INCOMING:
        store.move(queue_id, QueueName.INCOMING, queue)
    return queue_id


def queue_of(store: QueueStore, queue_id: str) -> str | None:
    for queue in QueueName:
        if store.path(queue_id, queue).exists():
            return queue.value
    return None
