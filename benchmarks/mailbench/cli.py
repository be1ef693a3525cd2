"""``benchmarks/run [options]``: start the servers, run the matrix, print the table, write JSON.

Order of a run: machine facts; start the selected servers (each on its own free
ports, all kept running, idle when not measured) and warm them up; the inbound
matrix, interleaved so that every (scenario, concurrency, size) runs on each
server in turn before the next combination and the next repetition (A B C A B C
...); the memory checks; stop the servers; outbound (fresh instances); the
generator's self-test against the sinks; ``openssl speed``. The table goes to
stdout, progress to stderr, everything to ``benchmarks/results/<timestamp>.json``.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import datetime as dt
import json
import os
import time
from pathlib import Path
from typing import Any

from mailbench import calibrate, memory, outbound, report, steps
from mailbench.common import (
    AUTH_PASSWORD,
    AUTH_USER,
    RESULTS,
    WORK,
    Ports,
    log,
    run_loadgen,
)
from mailbench.machine import facts
from mailbench.scenarios import SCENARIOS, describe, measure
from mailbench.servers import AiosmtpdServer, MailsealServer, PostfixServer, Server, users_file

SERVERS = ("mailseal", "postfix", "aiosmtpd")
CHECKS = ("steps", "memory", "outbound", "calibrate", "speed")


def _csv(text: str) -> list[str]:
    return [part.strip() for part in text.split(",") if part.strip()]


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="benchmarks/run",
        description="Benchmark mailseal against Postfix 3.7 and aiosmtpd 1.4.6 on loopback "
        "(issue #7). Prints one table; writes benchmarks/results/<timestamp>.json.",
        epilog="Inbound scenarios: "
        + "; ".join(f"{s.name} ({s.doc})" for s in SCENARIOS.values())
        + ". Checks: steps (sequential plain sessions timed step by step: connect-220, "
        "EHLO, MAIL, RCPT, DATA, message, QUIT), memory (mem-50x100k, mem-50mb, mem-idle), "
        "outbound (queued mail "
        "to a STARTTLS sink), calibrate (the generator against smtp-sink and its TLS sink), "
        "speed (openssl speed: the physical bound).",
    )
    p.add_argument("--quick", action="store_true", help="a short pass over everything (<2 min)")
    p.add_argument("--scenarios", type=_csv, help="inbound scenarios (default: all; 'none')")
    p.add_argument(
        "--checks", type=_csv, help=f"extra checks (default: {','.join(CHECKS)}; 'none')"
    )
    p.add_argument("--servers", type=_csv, help=f"servers (default: {','.join(SERVERS)})")
    p.add_argument("--reps", type=int, help="repetitions (default 3; --quick 1)")
    p.add_argument("--concurrency", type=_csv, help="sessions at once (default 1,10,50)")
    p.add_argument("--sizes", type=_csv, help="message sizes (default 4k,100k)")
    p.add_argument("--duration", type=float, help="seconds per run (default 5; --quick 1.5)")
    p.add_argument(
        "--idle-connections", type=int, help="mem-idle connections (default 5000; --quick 2000)"
    )
    p.add_argument("--outbound-messages", type=int, help="outbound N (default 2000; --quick 100)")
    p.add_argument("--big-message", default="50m", help="mem-50mb message size (default 50m)")
    p.add_argument(
        "--auth-scheme",
        default="PLAIN",
        help="password scheme of the one SASL user, read by all servers: PLAIN (default: "
        "measures the servers, not the hash) or ARGON2ID (what `mailseal passwd` writes)",
    )
    p.add_argument("--output", type=Path, help="JSON file (default results/<timestamp>.json)")
    return p


def _defaults(args: argparse.Namespace) -> None:
    quick = args.quick
    args.scenarios = args.scenarios or list(SCENARIOS)
    if args.scenarios == ["none"]:
        args.scenarios = []
    args.checks = args.checks if args.checks is not None else list(CHECKS)
    if args.checks == ["none"]:
        args.checks = []
    args.servers = args.servers or list(SERVERS)
    args.reps = args.reps or (1 if quick else 3)
    args.concurrency = [
        int(c) for c in (args.concurrency or (["10"] if quick else ["1", "10", "50"]))
    ]
    args.sizes = args.sizes or (["4k"] if quick else ["4k", "100k"])
    args.duration = args.duration or (1.5 if quick else 5.0)
    args.idle_connections = args.idle_connections or (2000 if quick else 5000)
    args.outbound_messages = args.outbound_messages or (100 if quick else 2000)
    unknown = [s for s in args.scenarios if s not in SCENARIOS]
    unknown += [s for s in args.servers if s not in SERVERS]
    unknown += [c for c in args.checks if c not in CHECKS]
    if unknown:
        raise SystemExit(f"run: unknown scenario/server/check: {', '.join(unknown)}")
    if os.geteuid() != 0 and "postfix" in args.servers:
        log("not root: Postfix's master cannot start; leaving Postfix out")
        args.servers.remove("postfix")


def _make_server(name: str, users: str) -> Server:
    ports = Ports.free()
    if name == "mailseal":
        return MailsealServer(WORK / "mailseal", ports, users)
    if name == "postfix":
        return PostfixServer(WORK / "postfix", ports, users)
    return AiosmtpdServer(WORK / "aiosmtpd", ports, users)


def _start_all(servers: list[Server]) -> None:
    """Start the servers side by side (mailseal's start alone takes seconds), fail on any."""
    with concurrent.futures.ThreadPoolExecutor(len(servers) or 1) as pool:
        futures = {}
        for server in servers:
            log(f"starting {server.name} (smtp {server.ports.smtp})")
            futures[pool.submit(server.start)] = server
        for future in concurrent.futures.as_completed(futures):
            future.result()
            log(f"{futures[future].name} is running")


def _warm_up(server: Server) -> None:
    """A short unmeasured run per TLS kind: first-use costs (imports, process spawns)."""
    for mode, port in (("plain", server.ports.smtp), ("starttls", server.ports.smtp)):
        run_loadgen(
            ["send", "-a", f"127.0.0.1:{port}", "-m", mode, "-c", "10", "-t", "0.5", "-n", "500"],
            timeout=60,
        )
    run_loadgen(
        [
            *["send", "-a", f"127.0.0.1:{server.ports.submission}", "-m", "starttls", "-c", "2"],
            *["-n", "4", "-u", f"{AUTH_USER}:{AUTH_PASSWORD}"],
        ],
        timeout=60,
    )
    server.clear()


def _inbound(args: argparse.Namespace, servers: list[Server]) -> list[dict[str, Any]]:
    rows = []
    combos = [
        (SCENARIOS[name], conc, size)
        for name in args.scenarios
        for conc in args.concurrency
        for size in args.sizes
    ]
    total = len(combos) * len(servers) * args.reps
    done = 0
    for rep in range(args.reps):
        for scenario, conc, size in combos:
            for server in servers:
                row = measure(server, scenario, conc, size, args.duration)
                row["rep"] = rep
                rows.append(row)
                done += 1
                log(f"[{done}/{total}] {describe(row)}")
    return rows


def _memory(args: argparse.Namespace, servers: list[Server]) -> list[dict[str, Any]]:
    out = []
    # The memory checks are mailseal's; --quick keeps to them, a full run
    # measures the peers too, for scale.
    for server in [s for s in servers if s.name == "mailseal" or not args.quick]:
        # Idle connections first: memory a big message leaves allocated would hide
        # what the connections cost.
        if server.name != "postfix":
            # Postfix runs one smtpd process per session (default_process_limit 100):
            # thousands of idle sessions are not its model; the check is about ours.
            out.append(memory.idle_connections(server, args.idle_connections, hold=2.0))
        out.append(memory.rss_50x100k(server, args.duration))
        out.append(memory.big_message(server, args.big_message))
        if server.name == "mailseal":
            if not args.quick:  # it waits for max_idle: 100 s
                out.append(memory.rss_after_idle(server))
            out.append(memory.rss_50x100k_fresh(server, args.duration))
    return out


def _physical_bound(speed: dict[str, Any], rows: list[dict[str, Any]]) -> dict[str, Any]:
    cores = os.cpu_count() or 1
    bound = dict(speed, cores=cores, fraction={})
    rsa = float(speed.get("rsa2048_sign_per_s") or 0)
    for server in {r["server"] for r in rows}:
        rates = [
            float(r["handshakes_per_s"])
            for r in rows
            if r["server"] == server and r["scenario"] == "starttls-1" and r["handshakes_per_s"]
        ]
        if rates and rsa:
            best = max(rates)
            bound["fraction"][server] = {
                "handshakes_per_s": best,
                "of_rsa_bound": round(best / (rsa * cores), 4),
            }
    return bound


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    _defaults(args)
    started = time.monotonic()
    stamp = dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    output = args.output or RESULTS / f"{stamp}.json"
    limit = memory.raise_fd_limit()
    log(f"open files limit {limit}; servers {args.servers}; reps {args.reps}")
    users = users_file(args.auth_scheme, AUTH_USER, AUTH_PASSWORD)
    servers = [_make_server(name, users) for name in args.servers]
    result: dict[str, Any] = {
        "started": stamp,
        "options": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
    }
    try:
        _start_all(servers)
        for server in servers:
            _warm_up(server)
        result["machine"] = facts({s.name: s.version() for s in servers})
        log(f"machine: {json.dumps(result['machine'])}")
        result["rows"] = _inbound(args, servers)
        if "steps" in args.checks:
            result["steps"] = steps.step_latencies(servers, sessions=100 if args.quick else 400)
        if "memory" in args.checks:
            result["memory"] = _memory(args, servers)
    finally:
        for server in servers:
            server.stop()
    rows = result.get("rows", [])
    if "outbound" in args.checks:
        result["outbound"] = [
            outbound.outbound_run(kind, WORK, users, args.outbound_messages)
            for kind in ("postfix", "mailseal")
            if kind in args.servers
        ]
    if "calibrate" in args.checks:
        sizes = sorted({"4k", *args.sizes})
        # As many rounds as repetitions: the verdict keeps the best, and one run on a
        # shared machine can catch a slow moment (x1.7 once, x2.8 a minute later).
        cal = [
            calibrate.sink_run(kind, conc, size, args.duration)
            for _ in range(args.reps)
            for kind in ("plain", "starttls")
            for size in sizes
            for conc in (10, 50)
        ]
        result["calibration"] = cal
        result["calibration_verdict"] = calibrate.verdict(cal, rows)
    if "speed" in args.checks:
        speed = calibrate.openssl_speed(1 if args.quick else 3)
        result["physical_bound"] = _physical_bound(speed, rows)
    result["summary"] = report.summarise(rows)
    result["elapsed_s"] = round(time.monotonic() - started, 1)
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(json.dumps(result, indent=1) + "\n", encoding="utf-8")
    print(report.table(result["summary"], list(SCENARIOS)))
    print(report.pair_ratios_text(result["summary"]))
    print(report.extras_text(result))
    print(f"\n{len(rows)} runs in {result['elapsed_s']}s; JSON: {output}")
    return 0
