"""Where mail-log lines go: ``maillog_file``, else syslog's ``/dev/log``, else stderr.

Every line gets the classic syslog prefix ``Mmm dd hh:mm:ss host program[N]:``
(what Postfix's postlogd writes to ``maillog_file`` too), so pflogsumm and
fail2ban read our file unchanged. ``program`` is ``$syslog_name/smtpd`` and
the like; ``N`` is a per-session number (:func:`session_numbers`) because
pflogsumm pairs ``connect``/``disconnect`` lines by it, and we serve many
sessions in one process.

Reads: maillog_file, syslog_name, syslog_facility (mail only).
"""

from __future__ import annotations

import functools
import itertools
import os
import socket
import sys
import threading
import time
from collections.abc import Callable, Iterator
from enum import IntEnum
from pathlib import Path
from typing import Protocol, TextIO

__all__ = [
    "FileSink",
    "LogObserver",
    "LogSink",
    "MailLog",
    "Severity",
    "StderrSink",
    "SyslogSink",
    "open_sink",
    "session_numbers",
]

_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
_DEV_LOG = "/dev/log"
_FACILITY_MAIL = 2


class Severity(IntEnum):
    """syslog severities (RFC 5424); the prefix word is part of the message, as Postfix does."""

    ERROR = 3
    WARNING = 4
    INFO = 6


def timestamp(now: float) -> str:
    """``Nov  9 23:03:17``: English month, day padded with a space, local time."""
    return _timestamp(int(now))


@functools.lru_cache(maxsize=4)
def _timestamp(now: int) -> str:
    # Every line of a second has the same stamp: made once, not once per line.
    tm = time.localtime(now)
    clock = f"{tm.tm_hour:02d}:{tm.tm_min:02d}:{tm.tm_sec:02d}"
    return f"{_MONTHS[tm.tm_mon - 1]} {tm.tm_mday:2d} {clock}"


class LogSink(Protocol):
    def write(self, severity: Severity, program: str, number: int, message: str) -> None: ...

    def close(self) -> None: ...


class _TextSink:
    """Shared by the file and stderr sinks: full syslog-style lines."""

    def __init__(self, stream: TextIO, hostname: str) -> None:
        self._stream = stream
        self._host = hostname.split(".", 1)[0]
        self._lock = threading.Lock()  # the queue manager logs from worker threads too

    def write(self, severity: Severity, program: str, number: int, message: str) -> None:
        line = f"{timestamp(time.time())} {self._host} {program}[{number}]: {message}\n"
        with self._lock:
            self._stream.write(line)
            self._stream.flush()

    def close(self) -> None:
        self._stream.flush()


class FileSink(_TextSink):
    """Appends to ``maillog_file`` (created 0640 if missing)."""

    def __init__(self, path: Path, hostname: str) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o640)
        super().__init__(os.fdopen(fd, "a", encoding="utf-8", errors="replace"), hostname)

    def close(self) -> None:
        self._stream.close()


class StderrSink(_TextSink):
    def __init__(self, hostname: str) -> None:
        super().__init__(sys.stderr, hostname)


class SyslogSink:
    """RFC 3164 datagrams to ``/dev/log`` with facility mail; syslogd adds the host."""

    def __init__(self, address: str = _DEV_LOG) -> None:
        self._socket = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self._socket.connect(address)

    def write(self, severity: Severity, program: str, number: int, message: str) -> None:
        priority = _FACILITY_MAIL * 8 + int(severity)
        datagram = f"<{priority}>{timestamp(time.time())} {program}[{number}]: {message}"
        try:
            self._socket.send(datagram.encode("utf-8", "replace"))
        except OSError:
            # A full or restarting syslogd must never stop mail; Postfix drops too.
            return

    def close(self) -> None:
        self._socket.close()


def open_sink(maillog_file: str, hostname: str) -> LogSink:
    """``maillog_file`` when set, else ``/dev/log`` when a syslogd listens, else stderr."""
    if maillog_file:
        return FileSink(Path(maillog_file), hostname)
    if Path(_DEV_LOG).exists():
        try:
            return SyslogSink()
        except OSError:
            pass
    return StderrSink(hostname)


def session_numbers() -> Iterator[int]:
    """Distinct, pid-like numbers for ``program[N]``: one per session."""
    return itertools.count(os.getpid() * 1000 % 9_000_000 + 1)


# Sees every line after the sink wrote it: (severity, program, number, message).
LogObserver = Callable[[Severity, str, int, str], None]


class MailLog:
    """A sink plus the ``syslog_name`` prefix: ``log.info("smtpd", n, "connect from ...")``.

    Observers (the JSON sink, the metrics) see every line the sink gets, so what
    they report never drifts from what the log says.
    """

    def __init__(self, sink: LogSink, syslog_name: str) -> None:
        self.sink = sink
        self.syslog_name = syslog_name
        self._observers: tuple[LogObserver, ...] = ()

    def add_observer(self, observer: LogObserver) -> None:
        self._observers = (*self._observers, observer)

    def remove_observer(self, observer: LogObserver) -> None:
        self._observers = tuple(o for o in self._observers if o is not observer)

    @property
    def observed(self) -> bool:
        """Whether anything but the sink wants the lines (smtpd workers forward them then)."""
        return bool(self._observers)

    def relay(self, severity: Severity, program: str, number: int, message: str) -> None:
        """A line another process already wrote to the sink: show it to the observers."""
        for observer in self._observers:
            observer(severity, program, number, message)

    def _write(self, severity: Severity, program: str, number: int, message: str) -> None:
        self.sink.write(severity, program, number, message)
        for observer in self._observers:
            observer(severity, program, number, message)

    def program(self, name: str, syslog_name: str | None = None) -> str:
        return f"{syslog_name or self.syslog_name}/{name}"

    def info(self, program: str, number: int, message: str) -> None:
        self._write(Severity.INFO, program, number, message)

    def warning(self, program: str, number: int, message: str) -> None:
        self._write(Severity.WARNING, program, number, f"warning: {message}")

    def error(self, program: str, number: int, message: str) -> None:
        self._write(Severity.ERROR, program, number, f"error: {message}")

    def close(self) -> None:
        self.sink.close()
