"""Server CPU and memory from /proc: every process of the server's process groups.

Each server runs in process groups of its own (Postfix's master calls setsid();
mailseal, aiosmtpd and Dovecot are started with ``start_new_session``), so "the
server" is every process whose pgrp is one of those groups. CPU is
``utime + stime + cutime + cstime``: the ``c`` part holds the CPU of children
that already exited and were reaped by a process of the group (Postfix's master
reaps its smtpd processes), so a short-lived process is not lost between
samples. Memory is the sum of the groups' resident set sizes (VmRSS), sampled
every ``interval`` seconds by a thread; the peak is kept. The proportional set size
(PSS, shared pages split among the processes sharing them) is sampled every tenth
time, as summed RSS overstates a server of many processes.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass

# The /proc walk runs every 100 ms beside the server under test: plain os.listdir and
# open() are cheaper than pathlib there (hence the PTH noqa below).
_TICK = os.sysconf("SC_CLK_TCK")
_PAGE = os.sysconf("SC_PAGE_SIZE")


@dataclass(frozen=True)
class GroupStat:
    cpu_s: float
    rss_bytes: int
    processes: int


def _stat_fields(pid: str) -> list[str] | None:
    try:
        with open(f"/proc/{pid}/stat", "rb") as handle:  # noqa: PTH123
            raw = handle.read().decode("ascii", "replace")
    except OSError:
        return None
    # The command name may hold spaces and parentheses: split after the last ')'.
    return raw[raw.rfind(")") + 2 :].split()


def _members(groups: Iterable[int]) -> Iterator[tuple[str, list[str]]]:
    """(pid, stat fields) of every process now in ``groups``."""
    wanted = set(groups)
    for pid in os.listdir("/proc"):  # noqa: PTH208
        if not pid.isdigit():
            continue
        fields = _stat_fields(pid)
        # fields[0] is the state (field 3 of stat(5)): pgrp is fields[2].
        if fields is not None and int(fields[2]) in wanted:
            yield pid, fields


def group_stat(groups: Iterable[int]) -> GroupStat:
    """CPU seconds (with reaped children) and RSS of every process in ``groups``."""
    cpu_ticks = rss_pages = count = 0
    for _pid, fields in _members(groups):
        count += 1
        cpu_ticks += sum(int(value) for value in fields[11:15])
        rss_pages += int(fields[21])
    return GroupStat(cpu_ticks / _TICK, rss_pages * _PAGE, count)


def group_pids(groups: Iterable[int]) -> set[int]:
    """The processes in ``groups`` now."""
    return {int(pid) for pid, _fields in _members(groups)}


def group_pss(groups: Iterable[int]) -> int:
    """Proportional set size of the groups (shared pages divided among their users), bytes.

    Summed RSS counts a shared library once per process; PSS does not, which is the
    fair figure for a server of many processes (Postfix). Dearer to read than stat.
    """
    total = 0
    for pid, _fields in _members(groups):
        try:
            smaps = f"/proc/{pid}/smaps_rollup"
            with open(smaps, encoding="ascii", errors="replace") as handle:  # noqa: PTH123
                for line in handle:
                    if line.startswith("Pss:"):
                        total += int(line.split()[1]) * 1024
                        break
        except OSError:
            continue
    return total


def system_busy_s() -> float:
    """CPU seconds all CPUs spent not idle since boot (/proc/stat), for noise checks."""
    with open("/proc/stat", encoding="ascii") as handle:  # noqa: PTH123
        values = [int(v) for v in handle.readline().split()[1:]]
    idle = values[3] + values[4]  # idle + iowait
    return (sum(values[:8]) - idle) / _TICK


class Sampler:
    """Peak RSS and CPU of some process groups while a measurement runs."""

    def __init__(self, groups: Callable[[], list[int]], interval: float = 0.1) -> None:
        self.groups = groups
        self.interval = interval
        self.peak_rss = 0
        self.peak_processes = 0
        self.peak_pss = 0
        self._samples = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self.start_stat = group_stat(groups())
        self.peak_rss = self.start_stat.rss_bytes
        self.start_busy = system_busy_s()
        self.start_time = time.monotonic()

    def __enter__(self) -> Sampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self._sample()

    def _sample(self) -> GroupStat:
        stat = group_stat(self.groups())
        self.peak_rss = max(self.peak_rss, stat.rss_bytes)
        self.peak_processes = max(self.peak_processes, stat.processes)
        # PSS about once a second: reading smaps_rollup of every process costs more.
        if self._samples % 10 == 0:
            self.peak_pss = max(self.peak_pss, group_pss(self.groups()))
        self._samples += 1
        return stat

    def stop(self) -> None:
        if self._stop.is_set():
            return
        self._stop.set()
        self._thread.join(5)
        stat = self._sample()
        self.cpu_s = stat.cpu_s - self.start_stat.cpu_s
        self.busy_s = system_busy_s() - self.start_busy
        self.wall_s = time.monotonic() - self.start_time


class CpuTrace:
    """CPU seconds of some process groups over wall-clock time, sampled by a thread.

    For windows that start at an event seen elsewhere (the sink's first message):
    ``cpu_at(wall)`` is the last sample taken at or before ``wall``.
    """

    def __init__(self, groups: Callable[[], list[int]], interval: float = 0.05) -> None:
        self.groups = groups
        self.interval = interval
        self.samples: list[tuple[float, float]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> CpuTrace:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _run(self) -> None:
        while True:
            self.sample()
            if self._stop.wait(self.interval):
                return

    def sample(self) -> float:
        cpu = group_stat(self.groups()).cpu_s
        self.samples.append((time.time(), cpu))
        return cpu

    def stop(self) -> None:
        if not self._stop.is_set():
            self._stop.set()
            self._thread.join(5)

    def cpu_at(self, wall: float) -> float:
        before = [cpu for when, cpu in self.samples if when <= wall]
        return before[-1] if before else 0.0
