"""The memory checks of issue #7, each a scenario of its own.

- ``mem-50x100k``: RSS of all the server's processes while 50 sessions send 100 KB
  messages (the peak, and the idle RSS before); ``mem-50x100k-fresh`` the same on
  a just-restarted mailseal;
- ``mem-50mb``: one 50 MB message (``message_size_limit`` is raised on every server)
  and the RSS increase it causes;
- ``mem-idle``: N idle connections (5,000 by default) held after their 220; the
  total RSS, and how long a new client then waits for its own 220;
- ``mem-after-idle`` (mailseal, full runs): the RSS after everything above, and
  again once the server has had no client for ``max_idle`` (100 s by default), by
  when each smtpd worker that served clients has been replaced by a fresh one.

The runner raises its own RLIMIT_NOFILE before it starts any server, so the servers
inherit room for the idle connections; ``loadgen idle`` raises its own.
"""

from __future__ import annotations

import resource
import statistics
import time
from typing import Any

from mailbench.common import log, run_loadgen
from mailbench.procstat import Sampler, group_pids, group_stat
from mailbench.scenarios import SCENARIOS, measure, wait_drained
from mailbench.servers import Server


def raise_fd_limit(wanted: int = 65536) -> int:
    """Raise the soft (and, as root, the hard) open-files limit; the limit now in force."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = max(soft, wanted)
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, max(hard, target)))
    except (ValueError, OSError):
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


def rss_50x100k(server: Server, duration: float) -> dict[str, Any]:
    row = measure(server, SCENARIOS["plain"], 50, "100k", duration)
    return {
        "check": "mem-50x100k",
        "server": server.name,
        "idle_rss_mb": row["idle_rss_mb"],
        "peak_rss_mb": row["peak_rss_mb"],
        "peak_pss_mb": row["peak_pss_mb"],
        "msgs_per_s": row["msgs_per_s"],
        "failures": row["failures"],
    }


def rss_50x100k_fresh(server: Server, duration: float) -> dict[str, Any]:
    """``mem-50x100k`` on a just-restarted server: the bar's own condition.

    After the matrix and 5,000 idle connections a long-lived process keeps memory
    that a fresh one does not have (fragmented object arenas); both are reported.
    """
    server.stop()
    server.start(configure=False)
    row = rss_50x100k(server, duration)
    row["check"] = "mem-50x100k-fresh"
    return row


def rss_after_idle(server: Server, max_idle: float = 100.0, margin: float = 45.0) -> dict[str, Any]:
    """``mem-after-idle``: wait (bounded) until every process but the master is new."""
    before, pids = group_stat(server.groups()), group_pids(server.groups())
    log(f"  mem-after-idle {server.name}: {before.rss_bytes / 2**20:.1f} MB; idle for max_idle")
    started = time.monotonic()
    replaced_at = None
    while time.monotonic() - started < max_idle + margin:
        time.sleep(1.0)
        now = group_pids(server.groups())
        if len(now) == len(pids) and len(now - pids) == len(pids) - 1:
            replaced_at = replaced_at or time.monotonic()
            if time.monotonic() - replaced_at >= 3.0:  # the fresh ones have settled
                break
    after = group_stat(server.groups())
    row = {
        "check": "mem-after-idle",
        "server": server.name,
        "rss_before_mb": round(before.rss_bytes / 2**20, 1),
        "rss_after_mb": round(after.rss_bytes / 2**20, 1),
        "processes": after.processes,
        "replaced": len(group_pids(server.groups()) - pids),
        "waited_s": round(time.monotonic() - started, 1),
    }
    log(
        f"  mem-after-idle {server.name}: {row['rss_before_mb']} -> {row['rss_after_mb']} MB, "
        f"{row['replaced']} processes new after {row['waited_s']} s"
    )
    return row


def big_message(server: Server, size: str = "50m") -> dict[str, Any]:
    server.clear()
    args = ["send", "-a", f"127.0.0.1:{server.ports.smtp}", "-m", "plain", "-c", "1"]
    args += ["-n", "1", "-k", "1", "-s", size, "--timeout", "120"]
    with Sampler(server.groups, interval=0.05) as sampler:
        result = run_loadgen(args, timeout=300)
        drained = wait_drained(server, int(result.get("messages_ok", 0)), 120)
    row = {
        "check": "mem-50mb",
        "server": server.name,
        "size": size,
        "idle_rss_mb": round(sampler.start_stat.rss_bytes / 2**20, 1),
        "peak_rss_mb": round(sampler.peak_rss / 2**20, 1),
        "rss_increase_mb": round((sampler.peak_rss - sampler.start_stat.rss_bytes) / 2**20, 1),
        "txn_ms": result.get("txn_p50_ms"),
        "server_cpu_s": round(sampler.cpu_s, 3),
        "drained": drained,
        "failures": int(result.get("messages_failed", 0)) + int(result.get("sessions_failed", 0)),
        "loadgen": result,
    }
    server.clear()
    log(f"  {row['check']} {server.name}: +{row['rss_increase_mb']} MB, fail {row['failures']}")
    return row


def idle_connections(server: Server, count: int, hold: float) -> dict[str, Any]:
    args = ["idle", "-a", f"127.0.0.1:{server.ports.smtp}", "-c", str(count)]
    args += ["-H", str(hold), "-p", "5", "-b", "200", "-w", "90"]
    with Sampler(server.groups, interval=0.1) as sampler:
        result = run_loadgen(args, timeout=hold + 150)
    probes = [p for p in result.get("probe_ms", []) if p >= 0]
    row = {
        "check": "mem-idle",
        "server": server.name,
        "connections": count,
        "greeted": result.get("greeted"),
        "dropped_while_held": result.get("dropped_while_held"),
        "connect_all_s": result.get("connect_all_s"),
        "idle_rss_mb": round(sampler.start_stat.rss_bytes / 2**20, 1),
        "peak_rss_mb": round(sampler.peak_rss / 2**20, 1),
        "rss_per_connection_kb": round(
            (sampler.peak_rss - sampler.start_stat.rss_bytes) / 1024 / count, 1
        ),
        "new_client_220_ms_median": round(statistics.median(probes), 2) if probes else None,
        "new_client_220_ms_max": round(max(probes), 2) if probes else None,
        "probe_failures": len(result.get("probe_ms", [])) - len(probes),
        "server_cpu_s": round(sampler.cpu_s, 3),
        "loadgen": result,
    }
    log(
        f"  mem-idle {server.name}: {row['greeted']}/{count} held, "
        f"peak {row['peak_rss_mb']} MB, new client 220 in {row['new_client_220_ms_median']} ms"
    )
    return row
