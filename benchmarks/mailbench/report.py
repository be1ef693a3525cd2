"""The printed table and the summary that goes into the JSON file.

Repetitions of one (scenario, concurrency, size, server) are summarised by their
median (rates, latencies, CPU) and maximum (peak RSS, failures summed). The
ratios are mailseal's value over Postfix's and over aiosmtpd's: for msgs/s above
1 is better, for CPU per 1000 messages below 1 is better. The ratio of medians hides
how far one repetition's pair (mailseal and Postfix run back to back) strays from
the next on a shared machine, so each pair's ratios are kept too
(``rate_vs_pf_reps``, ``cpu_vs_pf_reps``) and printed under the table.
"""

from __future__ import annotations

import statistics
from collections import defaultdict
from typing import Any

from mailbench.steps import STEPS

_MEDIANS = (
    "msgs_per_s",
    "handshakes_per_s",
    "txn_p50_ms",
    "txn_p99_ms",
    "session_p50_ms",
    "session_p99_ms",
    "server_cpu_s_per_1000",
    "foreign_cpu_s",
)


def _median(values: list[Any]) -> float | None:
    real = [float(v) for v in values if v is not None and float(v) >= 0]
    return round(statistics.median(real), 3) if real else None


def summarise(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    groups: dict[tuple[str, int, str, str], list[dict[str, Any]]] = defaultdict(list)
    for row in rows:
        groups[(row["scenario"], row["concurrency"], row["size"], row["server"])].append(row)
    out = []
    for (scenario, conc, size, server), runs in groups.items():
        summary: dict[str, Any] = {
            "scenario": scenario,
            "concurrency": conc,
            "size": size,
            "server": server,
            "reps": len(runs),
        }
        for key in _MEDIANS:
            summary[key] = _median([r.get(key) for r in runs])
        summary["peak_rss_mb"] = max(float(r.get("peak_rss_mb") or 0) for r in runs)
        summary["peak_pss_mb"] = max(float(r.get("peak_pss_mb") or 0) for r in runs)
        summary["failures"] = sum(int(r.get("failures") or 0) for r in runs)
        summary["rate_spread"] = _spread([r.get("msgs_per_s") for r in runs])
        out.append(summary)
    _add_ratios(out)
    _add_pair_ratios(out, groups)
    return out


def _spread(values: list[Any]) -> float | None:
    """(max - min) / median of the repetitions' rates: how noisy this cell was."""
    real = [float(v) for v in values if v]
    if len(real) < 2:
        return None
    return round((max(real) - min(real)) / statistics.median(real), 2)


def _ratio(a: Any, b: Any) -> float | None:
    if a is None or b is None or float(b) == 0:
        return None
    return round(float(a) / float(b), 2)


def _add_ratios(summary: list[dict[str, Any]]) -> None:
    index = {(s["scenario"], s["concurrency"], s["size"], s["server"]): s for s in summary}
    for s in summary:
        if s["server"] != "mailseal":
            continue
        for peer, tag in (("postfix", "pf"), ("aiosmtpd", "aio")):
            other = index.get((s["scenario"], s["concurrency"], s["size"], peer))
            if other is None:
                continue
            s[f"rate_vs_{tag}"] = _ratio(s["msgs_per_s"], other["msgs_per_s"])
            s[f"cpu_vs_{tag}"] = _ratio(s["server_cpu_s_per_1000"], other["server_cpu_s_per_1000"])


def _add_pair_ratios(
    summary: list[dict[str, Any]],
    groups: dict[tuple[str, int, str, str], list[dict[str, Any]]],
) -> None:
    """Per repetition: mailseal's run over the peer's run of the same repetition."""
    for s in summary:
        if s["server"] != "mailseal":
            continue
        ours = _by_rep(groups, s, "mailseal")
        for peer, tag in (("postfix", "pf"), ("aiosmtpd", "aio")):
            theirs = _by_rep(groups, s, peer)
            reps = sorted(set(ours) & set(theirs), key=lambda rep: (rep is None, rep or 0))
            if not reps:
                continue
            s[f"rate_vs_{tag}_reps"] = [
                _ratio(ours[rep].get("msgs_per_s"), theirs[rep].get("msgs_per_s")) for rep in reps
            ]
            s[f"cpu_vs_{tag}_reps"] = [
                _ratio(
                    ours[rep].get("server_cpu_s_per_1000"), theirs[rep].get("server_cpu_s_per_1000")
                )
                for rep in reps
            ]


def _by_rep(
    groups: dict[tuple[str, int, str, str], list[dict[str, Any]]],
    cell: dict[str, Any],
    server: str,
) -> dict[Any, dict[str, Any]]:
    """``server``'s runs of ``cell``'s scenario, concurrency and size, by repetition."""
    key = (cell["scenario"], cell["concurrency"], cell["size"], server)
    return {r.get("rep"): r for r in groups.get(key, [])}


def pair_ratios_text(summary: list[dict[str, Any]]) -> str:
    """mailseal/Postfix for every repetition pair, where there are several."""
    lines = [
        f"{s['scenario']:<16} {s['concurrency']:>3} {s['size']:>5}  rate "
        f"{' '.join(_fmt(v, 4, 2) for v in s['rate_vs_pf_reps'])}  CPU "
        f"{' '.join(_fmt(v, 4, 2) for v in s['cpu_vs_pf_reps'])}"
        for s in summary
        if len(s.get("rate_vs_pf_reps", [])) > 1
    ]
    if not lines:
        return ""
    return "\nmailseal/Postfix per repetition (each pair run back to back):\n" + "\n".join(lines)


def _fmt(value: Any, width: int, digits: int = 1) -> str:
    if value is None:
        return "-".rjust(width)
    if isinstance(value, float):
        return f"{value:{width}.{digits}f}"
    return str(value).rjust(width)


def _pair(a: Any, b: Any, digits: int = 1) -> str:
    return f"{_fmt(a, 0, digits).strip()}/{_fmt(b, 0, digits).strip()}"


_ORDER = {"mailseal": 0, "postfix": 1, "aiosmtpd": 2}


def table(summary: list[dict[str, Any]], scenario_order: list[str]) -> str:
    head = (
        f"{'scenario':<16} {'c':>3} {'size':>5} {'server':<9} {'msgs/s':>8} {'hs/s':>7} "
        f"{'txn p50/p99 ms':>16} {'sess p50/p99 ms':>16} {'CPU s/1k':>8} {'RSS/PSS MB':>11} "
        f"{'fail':>4}  {'rate ms/pf ms/aio':>17}  {'CPU ms/pf ms/aio':>16}"
    )
    lines = [head, "-" * len(head)]

    def key(s: dict[str, Any]) -> tuple[int, int, float, int]:
        order = scenario_order.index(s["scenario"]) if s["scenario"] in scenario_order else 99
        size = float(s["size"].rstrip("kKmM") or 0) * (1024 if s["size"][-1] in "mM" else 1)
        return (order, s["concurrency"], size, _ORDER.get(s["server"], 9))

    previous = None
    for s in sorted(summary, key=key):
        group = (s["scenario"], s["concurrency"], s["size"])
        if previous is not None and group != previous:
            lines.append("")
        previous = group
        ratios = cpu = ""
        if s["server"] == "mailseal":
            ratios = _pair(s.get("rate_vs_pf"), s.get("rate_vs_aio"), 2)
            cpu = _pair(s.get("cpu_vs_pf"), s.get("cpu_vs_aio"), 2)
        lines.append(
            f"{s['scenario']:<16} {s['concurrency']:>3} {s['size']:>5} {s['server']:<9} "
            f"{_fmt(s['msgs_per_s'], 8)} {_fmt(s['handshakes_per_s'], 7)} "
            f"{_pair(s['txn_p50_ms'], s['txn_p99_ms']):>16} "
            f"{_pair(s['session_p50_ms'], s['session_p99_ms']):>16} "
            f"{_fmt(s['server_cpu_s_per_1000'], 8, 2)} "
            f"{_pair(s['peak_rss_mb'], s.get('peak_pss_mb'), 0):>11} "
            f"{s['failures']:>4}  {ratios:>17}  {cpu:>16}"
        )
    return "\n".join(lines)


def extras_text(result: dict[str, Any]) -> str:
    """Calibration, physical bound, memory checks and outbound, as short text blocks."""
    out = []
    if result.get("calibration_verdict"):
        out.append("\nload generator self-test (generator rate vs best server rate, same mode):")
        for v in result["calibration_verdict"]:
            out.append(
                f"  {v['sink']:<32} {v['size']:>5} c={v['concurrency']:<3}: "
                f"{v['generator_msgs_per_s']:8.1f} msg/s vs "
                f"{v['best_server_msgs_per_s']:7.1f} -> x{v['ratio']}  "
                f"{'OK (>= 2x)' if v['meets_2x'] else 'BELOW 2x'}; generator capacity "
                f"{v['capacity_msgs_per_cpu_s']} msg per CPU s -> x{v['capacity_ratio']}"
            )
    bound = result.get("physical_bound")
    if bound:
        out.append("\nphysical bound (openssl speed, all cores):")
        out.append(
            f"  RSA-2048 sign {bound.get('rsa2048_sign_per_s')}/s per core, ECDSA P-256 sign "
            f"{bound.get('ecdsap256_sign_per_s')}/s per core, {bound.get('cores')} cores"
        )
        for server, frac in sorted(bound.get("fraction", {}).items()):
            out.append(
                f"  {server:<9} best handshakes/s {frac['handshakes_per_s']:8.1f} = "
                f"{frac['of_rsa_bound'] * 100:5.1f}% of the RSA-2048 sign bound"
            )
    if result.get("steps"):
        out.append("\nsteps of a sequential plain session, p50 ms (one client, servers in turns):")
        out.append("  " + f"{'':<9}" + "".join(f"{step:>12}" for step in STEPS))
        for row in result["steps"]:
            cells = "".join(f"{row.get(f'{step}_p50_ms', '-'):>12}" for step in STEPS)
            fails = f"  ({row['failures']} failed)" if row["failures"] else ""
            out.append(f"  {row['server']:<9}{cells}{fails}")
    for row in result.get("memory", []):
        if row["check"] == "mem-idle":
            out.append(
                f"\nmem-idle    {row['server']:<9} {row['greeted']}/{row['connections']} idle "
                f"connections held: RSS {row['idle_rss_mb']} -> {row['peak_rss_mb']} MB "
                f"({row['rss_per_connection_kb']} KB/conn), a new client's 220 after "
                f"{row['new_client_220_ms_median']} ms (max {row['new_client_220_ms_max']})"
            )
        elif row["check"] == "mem-after-idle":
            out.append(
                f"\nmem-after-idle {row['server']:<9} RSS {row['rss_before_mb']} MB after the "
                f"load -> {row['rss_after_mb']} MB once idle for max_idle "
                f"({row['replaced']} of {row['processes']} processes fresh, {row['waited_s']} s)"
            )
        elif row["check"] == "mem-50mb":
            out.append(
                f"\nmem-50mb    {row['server']:<9} one {row['size']} message: RSS "
                f"{row['idle_rss_mb']} -> {row['peak_rss_mb']} MB (+{row['rss_increase_mb']} MB), "
                f"{row['txn_ms']} ms, fail {row['failures']}"
            )
        else:
            fresh = " (restarted)" if row["check"].endswith("-fresh") else ""
            out.append(
                f"\nmem-50x100k {row['server']:<9} RSS {row['idle_rss_mb']} MB idle{fresh} -> "
                f"{row['peak_rss_mb']} MB peak (PSS {row['peak_pss_mb']} MB) during c=50 x 100 KB"
                f" ({row['msgs_per_s']} msg/s)"
            )
    for row in result.get("outbound", []):
        out.append(
            f"\noutbound    {row['server']:<9} {row.get('delivered')}/{row['messages']} to a "
            f"STARTTLS sink: {row.get('msgs_per_s')} msg/s, "
            f"{row.get('server_cpu_ms_per_msg')} ms server CPU/msg, "
            f"{row.get('sink_connections')} connections, fail {row.get('failures')}"
        )
    return "\n".join(out)
