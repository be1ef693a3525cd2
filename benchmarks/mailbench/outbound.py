"""Outbound: N queued messages delivered to a TLS sink (``smtp_tls_security_level = may``).

Both Postfix and mailseal get the same treatment, on instances of their own whose
``relayhost`` is ``[127.0.0.1]:PORT``:

1. start the server while nothing listens on PORT; queue N messages to a remote
   recipient over SMTP (``loadgen send``); every first attempt fails at once
   (connection refused) and the messages wait in ``deferred/`` (backoff 1s);
2. stop the server; start the TLS sink (``loadgen sink -S -e N``: STARTTLS with
   the benchmark certificate, PIPELINING offered);
3. start the server again: the deferred queue is due, so it is delivered at start
   (Postfix additionally gets ``postqueue -f``); the sink prints the wall-clock time
   of its first and last message once it has N.

Rate = (N - 1) / (last - first arrival at the sink). Server CPU per message = CPU of
the server's processes from the sink's first message until the queue is empty,
sampled every 50 ms, / (N - 1): mailseal's start-up costs seconds of CPU by itself
and must stay out of the window.
"""

from __future__ import annotations

import json
import selectors
import subprocess
import time
from pathlib import Path
from typing import Any

from mailbench.common import (
    CERT,
    KEY,
    LOADGEN,
    REMOTE_RECIPIENT,
    Ports,
    log,
    run_loadgen,
)
from mailbench.procstat import CpuTrace
from mailbench.servers import MailsealServer, PostfixServer, Server, count_files
from mailseal.testing.server import free_port


def read_json_line(process: subprocess.Popen[bytes], key: str, timeout: float) -> dict[str, Any]:
    """The first JSON line of ``process``'s stdout that has ``key`` (bounded in time)."""
    assert process.stdout is not None
    selector = selectors.DefaultSelector()
    selector.register(process.stdout, selectors.EVENT_READ)
    buffer = b""
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            if not selector.select(timeout=0.2):
                continue
            chunk = process.stdout.read1(65536)  # type: ignore[attr-defined]
            if not chunk:
                break
            buffer += chunk
            while b"\n" in buffer:
                line, buffer = buffer.split(b"\n", 1)
                if line.startswith(b"{"):
                    data: dict[str, Any] = json.loads(line)
                    if key in data:
                        return data
    finally:
        selector.close()
    return {}


def _mta_groups(server: Server) -> list[int]:
    """The MTA's own processes (Postfix's Dovecot has nothing to do here)."""
    if isinstance(server, PostfixServer):
        return server.groups()[:1] if server.postfix is not None else []
    return server.groups()


def _deferred(server: Server) -> int:
    return count_files(server.workdir / "queue" / "deferred")


def _wait(predicate: Any, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return False


def outbound_run(kind: str, workdir: Path, users: str, count: int) -> dict[str, Any]:
    sink_port = free_port()
    extra = {
        "relayhost": f"[127.0.0.1]:{sink_port}",
        "smtp_tls_security_level": "may",
        "minimal_backoff_time": "1s",
        "maximal_backoff_time": "1s",
    }
    server: Server
    if kind == "postfix":
        extra |= {"default_transport": "smtp", "relay_transport": "relay"}
        extra |= {"smtp_tls_loglevel": "1"}
        server = PostfixServer(workdir / "postfix-out", Ports.free(), users, extra)
    else:
        server = MailsealServer(workdir / "mailseal-out", Ports.free(), users, extra)
    row: dict[str, Any] = {"check": "outbound", "server": kind, "messages": count}
    sink: subprocess.Popen[bytes] | None = None
    try:
        server.start()
        log(f"  outbound {kind}: started; queueing {count} messages")
        args = ["send", "-a", f"127.0.0.1:{server.ports.smtp}", "-m", "plain", "-c", "10"]
        args += ["-k", "10", "-n", str(count), "--rcpt", REMOTE_RECIPIENT, "--timeout", "60"]
        queued = run_loadgen(args, timeout=300)
        accepted = int(queued.get("messages_ok", 0))
        if not _wait(
            lambda: _deferred(server) >= accepted and server.queue_size() == accepted, 120
        ):
            log(f"  outbound {kind}: {_deferred(server)} of {accepted} deferred; going on")
        log(f"  outbound {kind}: {accepted} queued and deferred; restarting")
        server.stop(keep_dovecot=True)
        argv = [str(LOADGEN), "sink", "-a", f"127.0.0.1:{sink_port}", "-S", "-C", str(CERT)]
        argv += ["-K", str(KEY), "-e", str(accepted), "-x", "900"]
        sink = subprocess.Popen(  # noqa: S603 - our own sink
            argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, start_new_session=True
        )
        read_json_line(sink, "listening", 10)
        time.sleep(1.2)  # the 1s backoff of the last deferral has passed
        t_start = time.time()
        # Traced from before the start, so the sample before the first delivery exists.
        with CpuTrace(lambda: _mta_groups(server)) as trace:
            server.start(configure=False)
            if isinstance(server, PostfixServer):
                server.flush()
            got = read_json_line(sink, "messages", 600)
            drained = _wait(lambda: server.queue_size() == 0, 120)
            end_cpu = trace.sample()
        first, last = float(got.get("first_msg_wall", 0)), float(got.get("last_msg_wall", 0))
        delivered = int(got.get("messages", 0))
        # The window is the sink's first to last message: the start-up (seconds of CPU
        # for mailseal) is outside it, and so is the first delivery, hence N - 1.
        window_cpu = end_cpu - trace.cpu_at(first)
        row |= {
            "accepted": accepted,
            "delivered": delivered,
            "drained": drained,
            "start_to_last_s": round(last - t_start, 3) if last else None,
            "first_to_last_s": round(last - first, 3) if last else None,
            "msgs_per_s": round((delivered - 1) / (last - first), 1) if last > first else None,
            "server_cpu_since_start_s": round(end_cpu, 3),
            "server_cpu_s": round(window_cpu, 3),
            "server_cpu_ms_per_msg": round(window_cpu / (delivered - 1) * 1000, 3)
            if delivered > 1
            else None,
            "sink_connections": got.get("connections"),
            "sink_handshakes": got.get("handshakes"),
            "failures": accepted - delivered + int(queued.get("sessions_failed", 0)),
        }
    finally:
        server.stop()
        if sink is not None:
            sink.terminate()
            try:
                sink.wait(10)
            except subprocess.TimeoutExpired:
                sink.kill()
                sink.wait(10)
    log(
        f"  outbound {kind}: {row.get('delivered')}/{count} at {row.get('msgs_per_s')} msg/s, "
        f"{row.get('server_cpu_ms_per_msg')} ms CPU/msg, "
        f"{row.get('sink_handshakes')} TLS handshakes"
    )
    return row
