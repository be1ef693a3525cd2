"""The load generator's self-test: how fast it drives sinks that do (almost) nothing.

The generator shares the 2 cores with the server under test, so it has to be cheap.
Proof: its rate against Postfix's ``smtp-sink`` (plain) and against its own
TLS-terminating sink (``loadgen sink -S``: STARTTLS with the benchmark certificate)
must be at least twice the best rate it measured against a real server in the same
mode (``meets_2x``; the best of c=10 and c=50 over ``--reps`` rounds). The sink
shares the 2 cores, so it uses an ECDSA P-256 certificate (its signature costs 1/25
of RSA-2048's): the generator still does a full TLS 1.3 handshake and checks the
signature, and the sink leaves it the CPU. The generator's own CPU per message is
reported as well (``capacity_msgs_per_cpu_s``: messages per second of generator CPU,
what one core of generator drives; ``capacity_ratio`` compares it with the best
server rate).
"""

from __future__ import annotations

import json
import subprocess
import time
from typing import Any

from mailbench.common import (
    LOADGEN,
    SINK_CERT,
    SINK_KEY,
    SMTP_SINK,
    log,
    run_loadgen,
    wait_port,
)
from mailbench.procstat import Sampler
from mailseal.testing.server import free_port


def _start(argv: list[str], port: int) -> subprocess.Popen[bytes]:
    process = subprocess.Popen(  # noqa: S603 - Debian's smtp-sink or our loadgen
        argv,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    if not wait_port(port, 10):
        process.kill()
        raise RuntimeError(f"{argv[0]} did not listen on {port}")
    return process


def _stop(process: subprocess.Popen[bytes]) -> str:
    process.terminate()
    try:
        out, _ = process.communicate(timeout=10)
    except subprocess.TimeoutExpired:
        process.kill()
        out, _ = process.communicate(timeout=10)
    return out.decode(errors="replace")


def sink_run(
    kind: str, concurrency: int, size: str, duration: float, per_session: int = 1
) -> dict[str, Any]:
    """Drive one sink (``plain`` = smtp-sink, ``starttls`` = loadgen's TLS sink)."""
    port = free_port()
    if kind == "plain":
        # -u: smtp-sink drops root; 4096: its listen backlog.
        argv = [SMTP_SINK, "-4", "-u", "nobody", f"127.0.0.1:{port}", "4096"]
    else:
        argv = [str(LOADGEN), "sink", "-a", f"127.0.0.1:{port}", "-S", "-C", str(SINK_CERT)]
        argv += ["-K", str(SINK_KEY)]
    sink = _start(argv, port)
    time.sleep(0.2)
    try:
        with Sampler(lambda: [sink.pid]) as sampler:
            args = ["send", "-a", f"127.0.0.1:{port}", "-m", kind, "-c", str(concurrency)]
            args += ["-k", str(per_session), "-s", size, "-t", str(duration), "-n", "100000000"]
            result = run_loadgen(args, timeout=duration + 60)
    finally:
        _stop(sink)
    gen_cpu = float(result.get("cpu_user_s", 0)) + float(result.get("cpu_sys_s", 0))
    msgs = int(result.get("messages_ok", 0))
    row = {
        "sink": "smtp-sink" if kind == "plain" else "loadgen sink (STARTTLS, P-256)",
        "mode": kind,
        "concurrency": concurrency,
        "size": size,
        "per_session": per_session,
        "msgs_per_s": result.get("msgs_per_s"),
        "handshakes_per_s": result.get("handshakes_per_s"),
        "loadgen_cpu_s": round(gen_cpu, 3),
        "loadgen_cpu_ms_per_msg": round(gen_cpu / msgs * 1000, 4) if msgs else None,
        "capacity_msgs_per_cpu_s": round(msgs / gen_cpu, 1) if gen_cpu else None,
        "sink_cpu_s": round(sampler.cpu_s, 3),
        "failures": int(result.get("messages_failed", 0)) + int(result.get("sessions_failed", 0)),
        "loadgen": result,
    }
    log(
        f"calibrate {row['sink']:<24} c={concurrency} {size}: {row['msgs_per_s']} msg/s, "
        f"generator {row['loadgen_cpu_ms_per_msg']} ms CPU/msg"
    )
    return row


def verdict(calibration: list[dict[str, Any]], rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Generator rate vs the best server rate measured in the same mode: the 2x bar."""
    plain_modes = {"plain"}
    best_runs: dict[tuple[str, str], dict[str, Any]] = {}
    for cal in calibration:
        key = (cal["sink"], cal["size"])
        if key not in best_runs or (cal["msgs_per_s"] or 0) > (best_runs[key]["msgs_per_s"] or 0):
            best_runs[key] = cal
    out = []
    for cal in best_runs.values():
        same = [
            r
            for r in rows
            if r.get("msgs_per_s")
            and r["size"] == cal["size"]
            and (r["scenario"] in plain_modes) == (cal["mode"] == "plain")
            and r["scenario"] in ("plain", "starttls-1")
        ]
        best = max((float(r["msgs_per_s"]) for r in same), default=0.0)
        rate = float(cal["msgs_per_s"] or 0)
        out.append(
            {
                "sink": cal["sink"],
                "size": cal["size"],
                "concurrency": cal["concurrency"],
                "generator_msgs_per_s": rate,
                "best_server_msgs_per_s": best,
                "ratio": round(rate / best, 2) if best else None,
                "capacity_msgs_per_cpu_s": cal["capacity_msgs_per_cpu_s"],
                "capacity_ratio": round(float(cal["capacity_msgs_per_cpu_s"] or 0) / best, 2)
                if best
                else None,
                "meets_2x": bool(best) and rate >= 2 * best,
            }
        )
    return out


def openssl_speed(seconds: int) -> dict[str, Any]:
    """``openssl speed`` RSA-2048 and ECDSA P-256 sign/s on one core."""
    out = subprocess.run(  # noqa: S603 - the system's openssl
        ["/usr/bin/openssl", "speed", "-seconds", str(seconds), "rsa2048", "ecdsap256"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    ).stdout
    facts: dict[str, Any] = {"seconds": seconds}
    for line in out.splitlines():
        parts = line.split()
        if line.startswith("rsa 2048 bits") and len(parts) >= 7:
            facts["rsa2048_sign_per_s"] = float(parts[5])
            facts["rsa2048_verify_per_s"] = float(parts[6])
        if "ecdsa (nistp256)" in line and len(parts) >= 8:
            facts["ecdsap256_sign_per_s"] = float(parts[6])
            facts["ecdsap256_verify_per_s"] = float(parts[7])
    log(f"openssl speed: {json.dumps(facts)}")
    return facts
