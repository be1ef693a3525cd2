"""Paths, fixed identities and the loadgen wrapper shared by every part of the runner."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mailseal.testing.server import free_port

BENCH_DIR = Path(__file__).resolve().parent.parent
REPO = BENCH_DIR.parent
WORK = BENCH_DIR / ".work"
RESULTS = BENCH_DIR / "results"
LOADGEN = WORK / "bin" / "loadgen"
AIOSMTPD_PYTHON = WORK / "aiosmtpd-venv" / "bin" / "python"
AIOSMTPD_SCRIPT = BENCH_DIR / "aiosmtpd_server.py"
MAILSEAL = REPO / ".venv" / "bin" / "mailseal"
SMTP_SINK = "/usr/sbin/smtp-sink"

# One certificate for every server (and the TLS sink): RSA-2048, as `mailseal init` makes.
CERT = WORK / "tls" / "server.crt"
KEY = WORK / "tls" / "server.key"
# The generator's TLS sink: ECDSA P-256, so the sink's signatures leave the cores to the
# generator during its self-test (see calibrate.py).
SINK_CERT = WORK / "tls" / "sink-p256.crt"
SINK_KEY = WORK / "tls" / "sink-p256.key"

HOSTNAME = "mail.example.test"
DOMAIN = "example.test"
RECIPIENT = f"postmaster@{DOMAIN}"
REMOTE_RECIPIENT = "user@remote.test"
AUTH_USER = "bench"
AUTH_PASSWORD = "bench-password-42"  # noqa: S105 - a throwaway loopback benchmark user
# Messages big enough for the 50 MB check, on every server alike.
SIZE_LIMIT = 104857600


def wait_port(port: int, timeout: float) -> bool:
    """Poll until something accepts on 127.0.0.1:port (bounded)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1.0):
                return True
        except OSError:
            time.sleep(0.05)
    return False


def log(message: str) -> None:
    """Progress goes to stderr; stdout carries only the table."""
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


@dataclass(frozen=True)
class Ports:
    smtp: int
    submission: int
    smtps: int

    @classmethod
    def free(cls) -> Ports:
        return cls(free_port(), free_port(), free_port())


def run_loadgen(args: list[str], timeout: float) -> dict[str, Any]:
    """Run ``loadgen ARGS``; its one JSON line (plus ``exit_status``)."""
    try:
        result = subprocess.run(  # noqa: S603 - our own program
            [str(LOADGEN), *args], capture_output=True, text=True, timeout=timeout, check=False
        )
    except subprocess.TimeoutExpired:
        return {"error": f"loadgen timed out after {timeout:.0f}s", "exit_status": -1}
    lines = [line for line in result.stdout.splitlines() if line.startswith("{")]
    if not lines:
        return {"error": f"loadgen printed no result: {result.stderr.strip()}", "exit_status": -1}
    data: dict[str, Any] = json.loads(lines[-1])
    data["exit_status"] = result.returncode
    return data
