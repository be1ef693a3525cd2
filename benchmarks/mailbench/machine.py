"""Facts about the machine a result was measured on (they go into every JSON file)."""

from __future__ import annotations

import os
import platform
import ssl
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from mailbench.common import REPO, WORK


def _first(path: str, prefix: str) -> str:
    try:
        for line in Path(path).read_text(encoding="utf-8", errors="replace").splitlines():
            if line.startswith(prefix):
                # /proc files say "name : value", os-release says NAME="value".
                sep = ":" if ":" in line.split("=", 1)[0] else "="
                return line.split(sep, 1)[1].strip().strip('"')
    except OSError:
        pass
    return ""


def _command(argv: list[str]) -> str:
    try:
        out = subprocess.run(argv, capture_output=True, text=True, timeout=30, check=False)  # noqa: S603
    except (OSError, subprocess.TimeoutExpired):
        return ""
    return (out.stdout or out.stderr).strip()


def fsync_latency_ms(count: int = 100) -> float:
    """Median of create + write 4 KiB + fsync + close + directory fsync, on WORK's disk.

    The durable-queue pattern: it bounds the accept rate of every server here.
    """
    directory = WORK / "fsync-probe"
    directory.mkdir(parents=True, exist_ok=True)
    dir_fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    times = []
    try:
        for i in range(count):
            t0 = time.perf_counter()
            fd = os.open(directory / f"p{i}", os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            os.write(fd, b"x" * 4096)
            os.fsync(fd)
            os.close(fd)
            os.fsync(dir_fd)
            times.append((time.perf_counter() - t0) * 1000)
    finally:
        os.close(dir_fd)
        for i in range(count):
            (directory / f"p{i}").unlink(missing_ok=True)
    times.sort()
    return round(times[len(times) // 2], 3)


def facts(versions: dict[str, str]) -> dict[str, Any]:
    meminfo = _first("/proc/meminfo", "MemTotal")
    git = _command(["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"])
    dirty = _command(["git", "-C", str(REPO), "status", "--porcelain", "--untracked-files=no"])
    return {
        "cores": os.cpu_count(),
        "cpu_model": _first("/proc/cpuinfo", "model name"),
        "memory": meminfo,
        "kernel": platform.release(),
        "os": _first("/etc/os-release", "PRETTY_NAME") or platform.platform(),
        "python": sys.version.split()[0],
        "python_ssl": ssl.OPENSSL_VERSION,
        "openssl": _command(["/usr/bin/openssl", "version"]),
        "cc": _command(["cc", "--version"]).splitlines()[0]
        if _command(["cc", "--version"])
        else "",
        "loadavg_at_start": Path("/proc/loadavg").read_text(encoding="ascii").split()[:3],
        "fsync_latency_ms_p50": fsync_latency_ms(),
        "mailseal_git": git + ("-dirty" if dirty else ""),
        **versions,
    }
