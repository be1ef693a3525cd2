"""Debian's ``smtp-sink`` (from the postfix package) as a plaintext receiving peer in tests.

smtp-sink(1) is Postfix's test SMTP server: it answers every command with a
canned reply and, with ``-d TEMPLATE``, dumps each mail transaction to its own
file (smtp-sink headers ``X-Client-Addr``, ``X-Helo-Args``, ``X-Mail-Args``,
``X-Rcpt-Args`` and a ``Received:``, then the message as received with
dot-stuffing undone, LF line ends, then an empty line).

It does **not** implement TLS: its EHLO reply never lists STARTTLS (only
PIPELINING, 8BITMIME, AUTH PLAIN LOGIN, XCLIENT, XFORWARD, ENHANCEDSTATUSCODES,
DSN; ``-e`` turns ESMTP off altogether and ``-8``/``-a``/``-C``/``-E``/``-F``/``-N``/``-p``
withdraw single keywords, see ``extra_args``). So it is the peer for "TLS not
offered": a client at level ``may`` sends in plaintext, one at ``encrypt`` must defer.

As root, smtp-sink needs ``-u USER`` (it drops to that user after binding); it
is also chrooted (``-R``) into ``DIR/root`` so that the dump directory inside it
is reachable by that user even though pytest's directories above are 0700.
It listens on ``127.0.0.1:port`` only, runs in the foreground as our child, and
is stopped by its PID.
"""

from __future__ import annotations

import os
import pwd
import socket
import subprocess
import time
from collections.abc import Sequence
from pathlib import Path

__all__ = ["SMTP_SINK", "SmtpSink", "SmtpSinkError"]

SMTP_SINK = "/usr/sbin/smtp-sink"
_DUMP = "dump"
# The file name prefix; smtp-sink appends a random hex number per transaction.
_PREFIX = "msg."
_BACKLOG = "10"


class SmtpSinkError(RuntimeError):
    """smtp-sink would not start; the message carries what it printed."""


class SmtpSink:
    """``smtp-sink -d`` on ``127.0.0.1:port``; ``messages()`` are the dumped transactions."""

    def __init__(
        self,
        port: int,
        workdir: Path,
        *,
        hostname: str = "smtp-sink.test",
        user: str = "nobody",
        extra_args: Sequence[str] = (),
    ) -> None:
        self.port = port
        self.workdir = workdir
        self.hostname = hostname
        self.user = user
        self.extra_args = tuple(extra_args)
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def root(self) -> Path:
        """The chroot directory (as root) or the directory dump paths are relative to."""
        return self.workdir / "root"

    @property
    def dump_directory(self) -> Path:
        return self.root / _DUMP

    @property
    def log_file(self) -> Path:
        """What smtp-sink prints: with ``-v`` (always on here), the SMTP conversation."""
        return self.workdir / "smtp-sink.log"

    @property
    def pid(self) -> int | None:
        return None if self._process is None else self._process.pid

    def log(self) -> str:
        if not self.log_file.exists():
            return ""
        return self.log_file.read_text(encoding="utf-8", errors="replace")

    def argv(self) -> list[str]:
        """The command line: IPv4, verbose, dump per transaction, our hostname."""
        argv = [SMTP_SINK, "-4", "-v", "-h", self.hostname]
        if os.geteuid() == 0:
            argv += ["-u", self.user, "-R", str(self.root), "-d", f"/{_DUMP}/{_PREFIX}"]
        else:
            argv += ["-d", str(self.dump_directory / _PREFIX)]
        return [*argv, *self.extra_args, f"127.0.0.1:{self.port}", _BACKLOG]

    def start(self, timeout: float = 10.0) -> SmtpSink:
        """Start it and wait until it accepts connections on 127.0.0.1:port."""
        self.dump_directory.mkdir(parents=True, exist_ok=True)
        if os.geteuid() == 0:
            # smtp-sink creates the dump files after it dropped to -u USER.
            uid, gid = _user_ids(self.user)
            os.chown(self.dump_directory, uid, gid)
        with self.log_file.open("ab") as log:
            self._process = subprocess.Popen(  # noqa: S603 - Debian's smtp-sink, our arguments
                self.argv(), stdin=subprocess.DEVNULL, stdout=log, stderr=log
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                raise SmtpSinkError(f"smtp-sink exited {self._process.returncode}:\n{self.log()}")
            if _accepts(self.port):
                return self
            time.sleep(0.05)
        self.stop()
        raise SmtpSinkError(f"smtp-sink did not listen within {timeout}s:\n{self.log()}")

    def stop(self, timeout: float = 10.0) -> None:
        """SIGTERM by PID, SIGKILL if it lingers. Safe to call twice."""
        process, self._process = self._process, None
        if process is None or process.poll() is not None:
            return
        process.terminate()
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout)

    def dump_files(self) -> list[Path]:
        """One file per transaction, oldest first."""
        if not self.dump_directory.is_dir():
            return []
        files = self.dump_directory.glob(f"{_PREFIX}*")
        return sorted(files, key=lambda path: (path.stat().st_mtime_ns, path.name))

    def messages(self) -> list[bytes]:
        """The dumped transactions, oldest first.

        smtp-sink writes a file while the DATA arrives and closes it before it
        answers the final dot: read after the client has seen that 250.
        """
        return [path.read_bytes() for path in self.dump_files()]

    def wait_messages(self, count: int, timeout: float = 15.0) -> list[bytes]:
        """Wait until ``count`` transactions are dumped; return them all."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if len(self.dump_files()) >= count:
                return self.messages()
            time.sleep(0.05)
        raise AssertionError(
            f"{len(self.dump_files())} of {count} messages dumped by smtp-sink:\n{self.log()}"
        )

    def __enter__(self) -> SmtpSink:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _accepts(port: int) -> bool:
    # A probe connection is one more (empty) session in smtp-sink's log; harmless.
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1.0):
            return True
    except OSError:
        return False


def _user_ids(user: str) -> tuple[int, int]:

    entry = pwd.getpwnam(user)
    return entry.pw_uid, entry.pw_gid
