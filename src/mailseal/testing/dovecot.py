"""Debian's Dovecot as a private SASL auth server for tests (``smtpd_sasl_type = dovecot``).

``DovecotAuthServer`` writes a minimal ``dovecot.conf`` under one work directory and runs
``dovecot -F -c CONF`` in the foreground as a child of the test. Nothing listens on the
network (``protocols =``, no TLS): the only way in is the auth client socket
``socket_path`` (mode 0666), which speaks Dovecot's client authentication protocol as
Postfix's smtpd expects. Users live in a passwd-file whose hashes are
``doveadm pw -s SCRAM-SHA-256``, so Dovecot can do PLAIN, LOGIN and SCRAM-SHA-256.

Test-friendly choices, each explained in ``_config``: the auth process runs as root
(pytest's work directories are 0700, out of the ``dovecot`` user's reach), and the
anvil penalty socket is disabled so wrong passwords are not slowed down by Dovecot's
growing per-IP penalty (up to 15s). Must run as root: Dovecot's master needs the
``dovecot`` and ``dovenull`` users (created by the Debian package) for its other
services. Stopped by its master's PID, never by name.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

from mailseal.testing.postfix import signal_group, wait_group_gone

__all__ = ["DOVEADM", "DOVECOT", "DovecotAuthServer", "DovecotError"]

DOVECOT = "/usr/sbin/dovecot"
DOVEADM = "/usr/bin/doveadm"

# sun_path holds 108 bytes; Dovecot's longest socket in base_dir is
# "replication-notify-fifo".
_SUN_PATH_MAX = 107


class DovecotError(RuntimeError):
    """Dovecot would not start or stop; the message carries its log."""


class DovecotAuthServer:
    """A private Dovecot whose only service is SASL authentication over a unix socket.

    ``users`` maps user names to passwords (hashed here with ``doveadm pw``) or is the
    text of a passwd-file as is. ``start()`` and ``stop()`` may be called repeatedly
    (a test can stop Dovecot mid-way and start it again on the same socket).
    """

    def __init__(
        self,
        workdir: Path,
        users: Mapping[str, str] | str,
        mechanisms: Sequence[str] = ("plain", "login", "scram-sha-256"),
    ) -> None:
        self.workdir = workdir
        self.users = users
        self.mechanisms = tuple(mechanisms)
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def socket_path(self) -> Path:
        """The auth client socket (``smtpd_sasl_path``)."""
        return self.workdir / "auth-client"

    @property
    def config_file(self) -> Path:
        return self.workdir / "dovecot.conf"

    @property
    def log_file(self) -> Path:
        return self.workdir / "dovecot.log"

    @property
    def pid(self) -> int | None:
        """The master's PID while it runs."""
        return None if self._process is None else self._process.pid

    def log(self) -> str:
        """Dovecot's log and whatever the master printed, for failure messages."""
        parts = []
        for path in (self.log_file, self.workdir / "dovecot.out"):
            if path.exists():
                parts.append(path.read_text(encoding="utf-8", errors="replace"))
        return "".join(parts)

    def start(self, timeout: float = 30.0) -> DovecotAuthServer:
        """Write the config (the first time), start the master, wait for the socket."""
        if os.geteuid() != 0:
            raise DovecotError("Dovecot's master must be started as root")
        if self._process is not None:
            raise DovecotError("Dovecot already runs")
        if not self.config_file.exists():
            self._write_config()
        with contextlib.suppress(FileNotFoundError):
            self.socket_path.unlink()  # a leftover from a previous run is not readiness
        with (self.workdir / "dovecot.out").open("ab") as output:
            self._process = subprocess.Popen(  # noqa: S603 - fixed program, our own config
                [DOVECOT, "-F", "-c", str(self.config_file)],
                stdin=subprocess.DEVNULL,
                stdout=output,
                stderr=subprocess.STDOUT,
                # Its own process group, so a SIGKILL escalation reaches the children too.
                start_new_session=True,
            )
        try:
            self._wait_socket(timeout)
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self, timeout: float = 15.0) -> None:
        """SIGTERM the master, then its leftover children; SIGKILL what lingers."""
        process, self._process = self._process, None
        if process is None:
            return
        group = process.pid  # start_new_session: the master leads its own group
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout)
            except subprocess.TimeoutExpired:
                signal_group(group, signal.SIGKILL)
                process.wait(5.0)
        # The auth process outlives its master while clients stay connected (up to 30s):
        # a stopped Dovecot must drop them now, as a service manager's stop would.
        signal_group(group, signal.SIGTERM)
        if wait_group_gone(group, timeout):
            return
        signal_group(group, signal.SIGKILL)
        if not wait_group_gone(group, 5.0):
            raise DovecotError(f"Dovecot process group {group} survived SIGKILL")

    def __enter__(self) -> DovecotAuthServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _wait_socket(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while not self.socket_path.exists():
            assert self._process is not None
            if self._process.poll() is not None:
                raise DovecotError(
                    f"dovecot exited with status {self._process.returncode}:\n{self.log()}"
                )
            if time.monotonic() > deadline:
                raise DovecotError(f"no Dovecot auth socket within {timeout}s:\n{self.log()}")
            time.sleep(0.05)

    def _write_config(self) -> None:
        self.workdir.mkdir(parents=True, exist_ok=True)
        longest = self.workdir / "run" / "replication-notify-fifo"
        if len(os.fsencode(longest)) > _SUN_PATH_MAX:
            raise DovecotError(f"work directory too deep for unix sockets: {self.workdir}")
        users = self.users if isinstance(self.users, str) else _passwd_file(self.users)
        users_file = self.workdir / "users"
        users_file.write_text(users, encoding="utf-8")
        users_file.chmod(0o600)
        self.config_file.write_text(self._config(users_file), encoding="utf-8")

    def _config(self, users_file: Path) -> str:
        return f"""\
base_dir = {self.workdir / "run"}
state_dir = {self.workdir / "state"}
log_path = {self.log_file}
# No IMAP/POP3/LMTP listeners and no TLS: the auth socket is the only way in.
protocols =
ssl = no
auth_mechanisms = {" ".join(self.mechanisms)}
# The SMTP side decides whether plaintext mechanisms need TLS, not Dovecot.
disable_plaintext_auth = no
auth_failure_delay = 0
passdb {{
  driver = passwd-file
  args = {users_file}
}}
userdb {{
  driver = static
  args = uid=65534 gid=65534 home=/nonexistent
}}
service auth {{
  # pytest's directories are 0700 root: the "dovecot" user could not read the users.
  user = root
  unix_listener {self.socket_path} {{
    mode = 0666
  }}
}}
service anvil {{
  # No penalty socket: Dovecot then delays no failed login (its penalty reaches 15s).
  unix_listener anvil-auth-penalty {{
    mode = 0
  }}
}}
"""


def _passwd_file(users: Mapping[str, str]) -> str:
    """passwd-file lines ``user:{SCRAM-SHA-256}...`` hashed by ``doveadm pw``."""
    lines = []
    for name, password in users.items():
        result = subprocess.run(  # noqa: S603 - fixed program; the password is a test's
            [DOVEADM, "pw", "-s", "SCRAM-SHA-256", "-p", password],
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
        if result.returncode != 0:
            raise DovecotError(f"doveadm pw failed: {result.stderr}")
        lines.append(f"{name}:{result.stdout.strip()}\n")
    return "".join(lines)
