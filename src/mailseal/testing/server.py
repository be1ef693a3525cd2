"""A real mailseal server process for integration tests: free loopback ports, a temp config.

``make_instance`` runs ``mailseal init`` with ports chosen free at test time
and appends main.cf lines; ``MailsealProcess`` runs ``mailseal -c DIR
start-fg`` as a child, waits until it says it runs (its listeners are
bound by then), and stops it by PID
(SIGTERM, then SIGKILL). Helpers read the mail log and the Maildirs, so tests
assert on what an admin would look at.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from mailseal.testing.logs import wait_for_lines
from mailseal.testing.process import run_mailseal

__all__ = ["Instance", "MailsealProcess", "Ports", "Servers", "free_port", "make_instance"]

HOSTNAME = "mail.example.test"
NO_DNS_PORT = 9  # discard: nothing listens there on a test machine
DOMAIN = "example.test"


# Ports this process has handed out. The kernel may give a just-closed probe's
# port to the next probe, and a test that asks for three ports before binding
# any of them once got the same port twice; no port is handed out twice.
_handed_out: set[int] = set()
_PROBES = 100


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago and is new to this process."""
    for _ in range(_PROBES):
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port = int(probe.getsockname()[1])
        if port not in _handed_out:
            _handed_out.add(port)
            return port
    raise RuntimeError(f"no new free port in {_PROBES} probes")


@dataclass(frozen=True)
class Ports:
    smtp: int
    submission: int
    smtps: int


def make_instance(directory: Path, main_cf_extra: str = "", hostname: str = HOSTNAME) -> Ports:
    """``mailseal init`` into ``directory`` on free ports; append ``main_cf_extra``."""
    ports = Ports(free_port(), free_port(), free_port())
    result = run_mailseal(
        "init",
        str(directory),
        "--hostname",
        hostname,
        "--smtp-port",
        str(ports.smtp),
        "--submission-port",
        str(ports.submission),
        "--smtps-port",
        str(ports.smtps),
    )
    if result.returncode != 0:
        raise RuntimeError(f"mailseal init failed: {result.stderr}")
    with (directory / "main.cf").open("a", encoding="utf-8") as main_cf:
        # Tests never ask the network's DNS: a closed loopback port answers nothing,
        # so a lookup fails as a temporary error; tests that need DNS use DnsStub.
        main_cf.write(f"\n# added by the test harness\ndns_servers = 127.0.0.1:{NO_DNS_PORT}\n")
        # Sessions in the master process: each worker process costs a second or
        # more of start-up, times hundreds of instances. Worker mode has its own
        # tests (tests/integration/smtpd/test_smtpd_workers.py), which set it back.
        main_cf.write("smtpd_worker_processes = 1\n")
        if main_cf_extra:
            main_cf.write("\n# added by the test\n" + main_cf_extra.strip() + "\n")
    return ports


@dataclass
class MailsealProcess:
    """``mailseal -c DIR start-fg`` as a child process."""

    directory: Path
    process: subprocess.Popen[bytes] | None = None
    stderr_path: Path = field(init=False)

    def __post_init__(self) -> None:
        self.stderr_path = self.directory / "start-fg.stderr"

    def start(self, timeout: float = 20.0) -> MailsealProcess:
        env = {k: v for k, v in os.environ.items() if k != "MAILSEAL_CONFIG_DIR"}
        with self.stderr_path.open("ab") as stderr:
            self.process = subprocess.Popen(  # noqa: S603 - our own interpreter and module
                [sys.executable, "-m", "mailseal", "-c", str(self.directory), "start-fg"],
                stdin=subprocess.DEVNULL,
                stdout=stderr,
                stderr=stderr,
                env=env,
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"mailseal exited at start: {self.stderr()}")
            if "the mail system is running" in self.stderr():
                return self
            time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"mailseal did not listen within {timeout}s: {self.stderr()}")

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def stderr(self) -> str:
        return self.stderr_path.read_text(encoding="utf-8", errors="replace")

    def stop(self, timeout: float = 20.0) -> int | None:
        """SIGTERM by PID, SIGKILL if it does not exit in time; the exit status."""
        if self.process is None or self.process.poll() is not None:
            return None if self.process is None else self.process.returncode
        self.process.send_signal(signal.SIGTERM)
        try:
            return self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            return self.process.wait(timeout)

    def kill(self) -> None:
        """SIGKILL by PID: the crash case."""
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(10)

    def maillog(self) -> str:
        path = self.directory / "log" / "maillog"
        return path.read_text(encoding="utf-8", errors="replace") if path.exists() else ""

    def wait_log(self, pattern: str, timeout: float = 10.0, count: int = 1) -> list[str]:
        """Wait until ``pattern`` (a regex) matches ``count`` log lines; return them."""
        return wait_for_lines(self.maillog, pattern, timeout=timeout, count=count)

    def maildir(self, user: str = "postmaster", domain: str = DOMAIN) -> Path:
        return self.directory / "mail" / domain / user

    def delivered(self, user: str = "postmaster", domain: str = DOMAIN) -> list[Path]:
        new = self.maildir(user, domain) / "new"
        return sorted(new.iterdir()) if new.is_dir() else []

    def wait_delivered(
        self, count: int, user: str = "postmaster", domain: str = DOMAIN, timeout: float = 15.0
    ) -> list[Path]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            files = self.delivered(user, domain)
            if len(files) >= count:
                return files
            time.sleep(0.05)
        raise AssertionError(
            f"{len(self.delivered(user, domain))} of {count} messages delivered:\n{self.maillog()}"
        )

    def __enter__(self) -> MailsealProcess:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


@dataclass
class Instance:
    """A started server with its configuration directory and ports."""

    directory: Path
    ports: Ports
    process: MailsealProcess

    @property
    def cafile(self) -> str:
        """The self-signed certificate ``init`` made: trust it to verify the server."""
        return str(self.directory / "tls" / "server.crt")


class Servers:
    """Starts instances under one directory and stops them all at the end."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.started: list[MailsealProcess] = []

    def start(self, main_cf_extra: str = "", name: str = "mailseal") -> Instance:
        directory = self.root / name
        ports = make_instance(directory, main_cf_extra)
        process = MailsealProcess(directory).start()
        self.started.append(process)
        return Instance(directory, ports, process)

    def stop_all(self) -> None:
        for process in self.started:
            process.stop()
