"""Debian's Postfix 3.7 as a *sending peer* in tests: a private instance under one directory.

``PostfixSender`` writes a minimal ``main.cf``/``master.cf`` (no ``inet``
service, so it listens on no port; ``chroot = n`` everywhere), starts it with
``postfix -c DIR start``, injects mail with ``sendmail -C DIR`` and lets its
``smtp`` client relay to ``relayhost`` with ``smtp_tls_security_level``.
Nothing outside the directory is touched: the system's ``/etc/postfix`` and
its master stay as they are, and the instance is stopped by its own master PID
(the master leads its process group, so the whole group is waited for).

Layout: ``etc/`` (config_directory), ``queue/`` (queue_directory), ``data/``
(data_directory), ``log/maillog`` (maillog_file, written by the ``postlog``
service: Postfix 3.4+). Postfix parameters set: see ``_main_cf``.

Must run as root (Postfix's master drops to ``mail_owner`` itself). Running
``postfix -c DIR`` for a directory that the default ``main.cf`` does not list
in ``alternate_config_directories`` works for root, so /etc/postfix needs no edit.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

from mailseal.testing.logs import wait_for_lines

__all__ = ["NULL_CLIENT_MASTER_CF", "PostfixError", "PostfixSender"]

POSTFIX = "/usr/sbin/postfix"
SENDMAIL = "/usr/sbin/sendmail"
POSTQUEUE = "/usr/sbin/postqueue"
MASTER = "/usr/lib/postfix/sbin/master"

# One line per service: what a relaying null client needs, and nothing that listens
# on the network. Columns as in master.cf(5): type private unpriv chroot wakeup maxproc.
NULL_CLIENT_MASTER_CF = """\
# service type  private unpriv  chroot  wakeup  maxproc command
pickup    unix  n       -       n       60      1       pickup
cleanup   unix  n       -       n       -       0       cleanup
qmgr      unix  n       -       n       300     1       qmgr
tlsmgr    unix  -       -       n       1000?   1       tlsmgr
rewrite   unix  -       -       n       -       -       trivial-rewrite
bounce    unix  -       -       n       -       0       bounce
defer     unix  -       -       n       -       0       bounce
trace     unix  -       -       n       -       0       bounce
verify    unix  -       -       n       -       1       verify
flush     unix  n       -       n       1000?   0       flush
proxymap  unix  -       -       n       -       -       proxymap
smtp      unix  -       -       n       -       -       smtp
relay     unix  -       -       n       -       -       smtp
showq     unix  n       -       n       -       -       showq
error     unix  -       -       n       -       -       error
retry     unix  -       -       n       -       -       error
discard   unix  -       -       n       -       -       discard
local     unix  -       n       n       -       -       local
anvil     unix  -       -       n       -       1       anvil
scache    unix  -       -       n       -       1       scache
postlog   unix-dgram n  -       n       -       1       postlogd
"""


class PostfixError(RuntimeError):
    """A Postfix command failed; the message carries its output and the log's tail."""


@dataclass
class PostfixSender:
    """A private Postfix instance that relays everything to ``relayhost``."""

    directory: Path
    relayhost: str
    tls_level: str = "may"
    ca_file: Path | None = None
    extra_main_cf: str = ""
    _master_pid: int | None = field(default=None, init=False, repr=False)

    @property
    def config_directory(self) -> Path:
        return self.directory / "etc"

    @property
    def queue_directory(self) -> Path:
        return self.directory / "queue"

    @property
    def log_file(self) -> Path:
        return self.directory / "log" / "maillog"

    @property
    def master_pid(self) -> int | None:
        """The PID of this instance's running master, if it runs."""
        return self._master_pid

    def start(self, timeout: float = 30.0) -> PostfixSender:
        """Write the config, ``postfix check`` it (no warning allowed), start, wait for master."""
        if os.geteuid() != 0:
            raise PostfixError("Postfix's master must be started as root")
        self._write_config()
        stderr = self._postfix("check")
        # Only complaints about this instance count: system-wide ones (for example
        # "/usr/lib/sendmail and /usr/sbin/sendmail differ") are not ours to fix.
        # postconf complains on stderr, postfix-script in the log.
        problems = [
            line
            for line in (stderr + self.maillog()).splitlines()
            if _is_problem(line) and str(self.directory) in line
        ]
        if problems:
            raise PostfixError("postfix check complained:\n" + "\n".join(problems))
        try:
            self._postfix("start")
            self._master_pid = self._wait_master(timeout)
            # postlogd writes asynchronously: once the master's own line is in, so is
            # everything logged before it, and callers may read the log at once.
            self.wait_log(rf"/master\[{self._master_pid}\]: daemon started", timeout)
        except BaseException:
            # A master that came up while its starter failed must not outlive the test.
            self._master_pid = self._read_pid()
            self.stop()
            raise
        return self

    def send(self, sender: str, recipient: str, message: bytes) -> None:
        """Queue ``message`` through Postfix's sendmail (postdrop, then pickup and cleanup)."""
        # -i: a line with a lone dot is content, not the end (the message may hold one).
        self._run(
            [SENDMAIL, "-C", str(self.config_directory), "-i", "-f", sender, recipient],
            stdin=message,
        )

    def flush(self) -> None:
        """``postqueue -f``: attempt every queued message now."""
        self._run([POSTQUEUE, "-c", str(self.config_directory), "-f"])

    def maillog(self) -> str:
        if not self.log_file.exists():
            return ""
        return self.log_file.read_text(encoding="utf-8", errors="replace")

    def wait_log(self, pattern: str, timeout: float = 30.0, count: int = 1) -> list[str]:
        """Wait until ``pattern`` (a regex) matches ``count`` log lines; return the matches."""
        return wait_for_lines(
            self.maillog, pattern, timeout=timeout, count=count, what="Postfix log"
        )

    def stop(self, timeout: float = 15.0) -> None:
        """SIGTERM the master (it signals its children), wait until its process group is gone.

        Escalates to SIGKILL for the group if it outlives ``timeout``. Safe to call twice.
        """
        pid, self._master_pid = self._master_pid, None
        if pid is None or not _is_postfix_master(pid, self.config_directory):
            return
        # The master calls setsid(): its PID is the group of every daemon it forked.
        group = os.getpgid(pid)
        os.kill(pid, signal.SIGTERM)
        if wait_group_gone(group, timeout):
            return
        signal_group(group, signal.SIGKILL)
        if not wait_group_gone(group, 5.0):
            raise PostfixError(f"Postfix process group {group} survived SIGKILL")

    def __enter__(self) -> PostfixSender:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _write_config(self) -> None:
        # The top directory too: mail_owner reaches data_directory through it ("../data").
        for directory in (
            self.directory,
            self.config_directory,
            self.queue_directory,
            self.log_file.parent,
        ):
            directory.mkdir(parents=True, exist_ok=True)
            # Postfix warns unless its root-owned directories are root's and not group-writable;
            # its own subdirectories (postfix:postdrop) are made by `postfix start`/`check`.
            directory.chmod(0o755)
        (self.config_directory / "main.cf").write_text(self._main_cf(), encoding="utf-8")
        (self.config_directory / "master.cf").write_text(NULL_CLIENT_MASTER_CF, encoding="utf-8")

    def _main_cf(self) -> str:
        lines = [
            "compatibility_level = 3.6",
            f"queue_directory = {self.queue_directory}",
            # Relative, so resolved from queue_directory (where every Postfix program
            # chdirs as root): the master opens data_directory/master.lock *as mail_owner*,
            # and an absolute path would need search permission on pytest's 0700 tmp dirs.
            "data_directory = ../data",
            f"maillog_file = {self.log_file}",
            f"maillog_file_prefixes = {self.log_file.parent}",
            "myhostname = postfix-sender.test",
            "mydestination =",
            "alias_maps =",
            "alias_database =",
            "inet_interfaces = loopback-only",
            "inet_protocols = ipv4",
            f"relayhost = {self.relayhost}",
            "smtp_host_lookup = native",
            f"smtp_tls_security_level = {self.tls_level}",
            "smtp_tls_loglevel = 1",
            # Retry quickly: a test waits seconds, not Postfix's 300s/4000s defaults.
            "minimal_backoff_time = 1s",
            "maximal_backoff_time = 2s",
            "queue_run_delay = 1s",
        ]
        if self.ca_file is not None:
            # smtp reads the CA file as root before it drops privileges: absolute is fine.
            lines.append(f"smtp_tls_CAfile = {self.ca_file}")
        # A name set again in extra_main_cf replaces ours: Postfix would warn
        # "overriding earlier entry", and start() treats that as a failure.
        overridden = _names(self.extra_main_cf)
        lines = [line for line in lines if line.split("=", 1)[0].strip() not in overridden]
        if self.extra_main_cf.strip():
            lines.append(self.extra_main_cf.strip())
        return "\n".join(lines) + "\n"

    def _postfix(self, command: str) -> str:
        return self._run([POSTFIX, "-c", str(self.config_directory), command])

    def _run(self, argv: list[str], stdin: bytes = b"") -> str:
        """Run a Postfix command; raise unless it exits 0; its stderr."""
        # MAIL_CONFIG in our own environment would override nothing (-c wins) but
        # would confuse a reader of a failure; drop it.
        env = {k: v for k, v in os.environ.items() if k != "MAIL_CONFIG"}
        result = subprocess.run(  # noqa: S603 - fixed Postfix programs, our own arguments
            argv, input=stdin, capture_output=True, timeout=60, check=False, env=env
        )
        if result.returncode != 0:
            raise PostfixError(
                f"{' '.join(argv)} exited {result.returncode}: "
                f"{result.stderr.decode(errors='replace')}\nlog:\n{self.maillog()}"
            )
        return result.stderr.decode(errors="replace")

    def _read_pid(self) -> int | None:
        path = self.queue_directory / "pid" / "master.pid"
        try:
            # The master writes its PID right-aligned in a fixed-width field.
            return int(path.read_text(encoding="ascii").strip())
        except (FileNotFoundError, ValueError):
            return None

    def _wait_master(self, timeout: float) -> int:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            pid = self._read_pid()
            if pid is not None and _is_postfix_master(pid, self.config_directory):
                return pid
            time.sleep(0.05)
        raise PostfixError(f"Postfix master not running within {timeout}s:\n{self.maillog()}")


def _names(main_cf: str) -> set[str]:
    """Parameter names assigned in ``main_cf`` text (continuation lines start with space)."""
    return {
        line.split("=", 1)[0].strip()
        for line in main_cf.splitlines()
        if "=" in line and line[:1] not in ("", " ", "\t", "#")
    }


def _is_problem(line: str) -> bool:
    return bool(re.search(r"\b(warning|error|fatal|panic):", line))


def _is_postfix_master(pid: int, config_directory: Path) -> bool:
    """Whether ``pid`` is the master of ``config_directory``.

    A stale pid file (the master leaves it behind) must never make us signal a
    reused PID, let alone the system's own Postfix: ``postfix -c`` exports
    MAIL_CONFIG, which the master inherits.
    """
    try:
        if str(Path(f"/proc/{pid}/exe").readlink()) != MASTER:
            return False
        environ = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
    except OSError:
        return False
    return f"MAIL_CONFIG={config_directory}".encode() in environ


def signal_group(group: int, signum: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(group, signum)


def wait_group_gone(group: int, timeout: float) -> bool:
    """Poll until no process (zombies included) is left in ``group``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            os.killpg(group, 0)
        except ProcessLookupError:
            return True
        time.sleep(0.05)
    return False
