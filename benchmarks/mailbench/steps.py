"""The ``steps`` check: where one plain session's time goes, step by step, per server.

At concurrency 1 the client waits for every reply, so the rate is one over the
session's latency, and a server's work per step shows directly. One blocking client
(this process, TCP_NODELAY) runs sequential sessions: connect, EHLO, MAIL FROM,
RCPT TO, DATA, a 4 KiB message, QUIT. It times each step from sending the command
to the last line of its reply. The servers take turns in rounds, so a change in the
machine's load touches all of them. Python's client costs are the same for every
server, so differences between servers are the servers'.
"""

from __future__ import annotations

import socket
import statistics
import time
from typing import Any

from mailbench.common import RECIPIENT, log
from mailbench.servers import Server

__all__ = ["STEPS", "step_latencies"]

STEPS = ("connect-220", "EHLO", "MAIL", "RCPT", "DATA-354", "message-250", "QUIT", "session")
_BODY = (
    f"From: <bench@loadgen.test>\r\nTo: <{RECIPIENT}>\r\nSubject: steps\r\n\r\n".encode()
    + (b"x" * 76 + b"\r\n") * 52
    + b".\r\n"
)
_TIMEOUT = 10.0  # seconds for any one reply; a stuck server fails the check, not the run


def step_latencies(
    servers: list[Server], sessions: int = 400, rounds: int = 4, limit_s: float = 60.0
) -> list[dict[str, Any]]:
    """p50 and p90 of every step, in ms, per server (``sessions`` in ``rounds`` turns)."""
    timings: dict[str, dict[str, list[float]]] = {s.name: {k: [] for k in STEPS} for s in servers}
    failures = dict.fromkeys(timings, 0)
    deadline = time.monotonic() + limit_s
    per_round = max(sessions // rounds, 1)
    for _ in range(rounds):
        for server in servers:
            for _ in range(per_round):
                if time.monotonic() > deadline:
                    break
                try:
                    _session(server.ports.smtp, timings[server.name])
                except (OSError, ValueError):
                    failures[server.name] += 1
    out = []
    for server in servers:
        steps = timings[server.name]
        row: dict[str, Any] = {
            "check": "steps",
            "server": server.name,
            "sessions": len(steps["session"]),
            "failures": failures[server.name],
        }
        for step, values in steps.items():
            kept = values[len(values) // 10 :]  # the first tenth warms caches and processes
            if kept:
                row[f"{step}_p50_ms"] = round(1000 * statistics.median(kept), 3)
            if len(kept) > 1:  # quantiles needs two values
                row[f"{step}_p90_ms"] = round(1000 * statistics.quantiles(kept, n=10)[-1], 3)
        out.append(row)
        log(f"steps {server.name}: {_summary(row)}")
    return out


def _summary(row: dict[str, Any]) -> str:
    return ", ".join(f"{step} {row.get(f'{step}_p50_ms', '-')}" for step in STEPS)


def _session(port: int, timings: dict[str, list[float]]) -> None:
    started = time.perf_counter()
    with socket.create_connection(("127.0.0.1", port), timeout=_TIMEOUT) as sock:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        reader = _Replies(sock)
        reader.expect("220")
        timings["connect-220"].append(time.perf_counter() - started)
        for step, command, code in (
            ("EHLO", b"EHLO steps.test\r\n", "250"),
            ("MAIL", b"MAIL FROM:<bench@loadgen.test>\r\n", "250"),
            ("RCPT", f"RCPT TO:<{RECIPIENT}>\r\n".encode(), "250"),
            ("DATA-354", b"DATA\r\n", "354"),
            ("message-250", _BODY, "250"),
            ("QUIT", b"QUIT\r\n", "221"),
        ):
            sent = time.perf_counter()
            sock.sendall(command)
            reader.expect(code)
            timings[step].append(time.perf_counter() - sent)
    timings["session"].append(time.perf_counter() - started)


class _Replies:
    """Reads whole SMTP replies (multi-line ones to their last line)."""

    def __init__(self, sock: socket.socket) -> None:
        self._sock = sock
        self._buffer = b""

    def expect(self, code: str) -> None:
        while True:
            lines = self._buffer.split(b"\r\n")
            for index, line in enumerate(lines[:-1]):
                if line[3:4] != b"-":
                    self._buffer = b"\r\n".join(lines[index + 1 :])
                    if not line.startswith(code.encode()):
                        raise ValueError(f"expected {code}, got {line[:60]!r}")
                    return
            data = self._sock.recv(65536)
            if not data:
                raise ValueError(f"connection closed while waiting for {code}")
            self._buffer += data
