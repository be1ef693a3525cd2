"""Inbound scenarios and one measured run of the load generator against one server.

A run: clear the server's Maildir, start sampling the server's process groups,
run ``loadgen send`` for ``duration`` seconds, then wait (bounded) until every
accepted message has left the queue and reached the Maildir, so the server CPU per
message includes the delivery, then stop sampling. The system's total busy CPU is
recorded too: ``foreign_cpu_s`` is what neither the server, the generator nor this
runner used (other programs on the machine), so a disturbed run shows in the JSON.
"""

from __future__ import annotations

import resource
import time
from dataclasses import dataclass
from typing import Any

from mailbench.common import AUTH_PASSWORD, AUTH_USER, log, run_loadgen
from mailbench.procstat import Sampler
from mailbench.servers import Server


@dataclass(frozen=True)
class Scenario:
    name: str
    port: str  # "smtp" | "submission" | "smtps"
    mode: str  # loadgen -m: plain | starttls | tls
    per_session: int
    resume: bool = False
    auth: bool = False
    doc: str = ""


SCENARIOS = {
    s.name: s
    for s in (
        Scenario("plain", "smtp", "plain", 1, doc="port 25 style, no TLS, 1 message/session"),
        Scenario("starttls-1", "smtp", "starttls", 1, doc="STARTTLS, 1 message/session"),
        Scenario("starttls-10", "smtp", "starttls", 10, doc="STARTTLS, 10 messages/session"),
        Scenario(
            "starttls-resume", "smtp", "starttls", 1, resume=True, doc="STARTTLS, TLS resumption"
        ),
        Scenario(
            "submission", "submission", "starttls", 1, auth=True, doc="587: STARTTLS + AUTH PLAIN"
        ),
        Scenario("smtps", "smtps", "tls", 1, auth=True, doc="465: implicit TLS + AUTH PLAIN"),
    )
}


def loadgen_args(
    server: Server, scenario: Scenario, concurrency: int, size: str, duration: float
) -> list[str]:
    port = getattr(server.ports, scenario.port)
    args = ["send", "-a", f"127.0.0.1:{port}", "-m", scenario.mode, "-c", str(concurrency)]
    args += ["-k", str(scenario.per_session), "-s", size, "-t", str(duration), "-n", "100000000"]
    args += ["--timeout", "60"]
    if scenario.resume:
        args.append("-r")
    if scenario.auth:
        args += ["-u", f"{AUTH_USER}:{AUTH_PASSWORD}"]
    return args


def wait_drained(server: Server, accepted: int, timeout: float) -> bool:
    """Until ``accepted`` messages are in the Maildir and the queue is empty (bounded)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.delivered() >= accepted and server.queue_size() == 0:
            return True
        time.sleep(0.05)
    return False


def measure(
    server: Server,
    scenario: Scenario,
    concurrency: int,
    size: str,
    duration: float,
    *,
    drain_timeout: float = 120.0,
) -> dict[str, Any]:
    """One measured run; a flat dict of everything the table and the JSON need."""
    server.clear()
    args = loadgen_args(server, scenario, concurrency, size, duration)
    runner_before = _own_cpu()
    with Sampler(server.groups) as sampler:
        result = run_loadgen(args, timeout=duration + 120)
        accepted = int(result.get("messages_ok", 0))
        drained = wait_drained(server, accepted, drain_timeout)
    gen_cpu = float(result.get("cpu_user_s", 0)) + float(result.get("cpu_sys_s", 0))
    runner_cpu = _own_cpu() - runner_before
    row: dict[str, Any] = {
        "scenario": scenario.name,
        "server": server.name,
        "concurrency": concurrency,
        "size": size,
        "duration_s": duration,
        "server_cpu_s": round(sampler.cpu_s, 3),
        "server_cpu_ms_per_msg": round(sampler.cpu_s / accepted * 1000, 3) if accepted else None,
        "server_cpu_s_per_1000": round(sampler.cpu_s / accepted * 1000, 3) if accepted else None,
        "peak_rss_mb": round(sampler.peak_rss / 2**20, 1),
        "peak_pss_mb": round(sampler.peak_pss / 2**20, 1),
        "idle_rss_mb": round(sampler.start_stat.rss_bytes / 2**20, 1),
        "peak_processes": sampler.peak_processes,
        "drained": drained,
        "wall_s": round(sampler.wall_s, 3),
        "loadgen_cpu_s": round(gen_cpu, 3),
        "runner_cpu_s": round(runner_cpu, 3),
        "foreign_cpu_s": round(max(0.0, sampler.busy_s - sampler.cpu_s - gen_cpu - runner_cpu), 3),
        "loadgen": result,
    }
    for key in ("msgs_per_s", "handshakes_per_s", "txn_p50_ms", "txn_p99_ms"):
        row[key] = result.get(key)
    for key in ("session_p50_ms", "session_p99_ms", "messages_ok", "messages_failed"):
        row[key] = result.get(key)
    row["failures"] = int(result.get("messages_failed", 0)) + int(result.get("sessions_failed", 0))
    if "error" in result:
        row["failures"] += 1
    if not drained:
        log(f"  {server.name}: queue not drained in {drain_timeout:.0f}s after the run")
    return row


def _own_cpu() -> float:
    """This runner's CPU (its /proc sampling thread included): not "foreign" load."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def describe(row: dict[str, Any]) -> str:
    return (
        f"{row['scenario']:<16} c={row['concurrency']:<3} {row['size']:>5} {row['server']:<9}"
        f" {row['msgs_per_s'] or 0:8.1f} msg/s  cpu {row['server_cpu_ms_per_msg'] or 0:7.2f} ms/msg"
        f"  fail {row['failures']}  foreign {row['foreign_cpu_s']:.2f}s"
    )
