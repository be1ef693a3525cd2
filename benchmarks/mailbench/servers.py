"""The servers under test, started on loopback with equivalent configurations.

All three listen on 127.0.0.1 only, on free high ports: smtp (STARTTLS offered,
``smtpd_tls_security_level = may``), submission (STARTTLS + AUTH required) and
submissions (implicit TLS, AUTH required), as ``mailseal init`` lays them out. All
use the same RSA-2048 certificate and deliver mail for ``postmaster@example.test``
into a Maildir, fsynced before the client hears 250 (Postfix and mailseal: a durable
queue, then a Maildir delivery; aiosmtpd: the Maildir file itself).

- ``MailsealServer``: ``mailseal init`` + main.cf edits, ``mailseal -c DIR start-fg``;
  AUTH by its built-in passwd-file backend.
- ``PostfixServer``: Debian's Postfix 3.7, a private instance (own config, queue, data
  and log directories; started as root with ``postfix -c DIR start``, stopped by its
  master's PID) built on ``mailseal.testing.postfix_receiver``; Maildir delivery by
  virtual(8); AUTH through a private Dovecot auth server reading the same users file.
  Dovecot's processes count as Postfix's CPU and memory (they do its AUTH work).
- ``AiosmtpdServer``: ``aiosmtpd_server.py`` in its own venv.

Every process is stopped by its PID (or its own process group), never by name.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
import subprocess
import time
from pathlib import Path

from mailbench.common import (
    AIOSMTPD_PYTHON,
    AIOSMTPD_SCRIPT,
    CERT,
    DOMAIN,
    HOSTNAME,
    KEY,
    MAILSEAL,
    SIZE_LIMIT,
    Ports,
    wait_port,
)
from mailseal.testing.dovecot import DovecotAuthServer
from mailseal.testing.postfix import NULL_CLIENT_MASTER_CF, signal_group, wait_group_gone
from mailseal.testing.postfix_receiver import PostfixReceiver

QUEUE_DIRS = ("incoming", "active", "deferred", "maildrop")


def count_files(directory: Path) -> int:
    """Regular files below ``directory`` (0 if it does not exist)."""
    total = 0
    for _root, _dirs, files in os.walk(directory):
        total += len(files)
    return total


def clear_files(directory: Path) -> None:
    if directory.is_dir():
        for entry in os.scandir(directory):
            with contextlib.suppress(FileNotFoundError):
                Path(entry.path).unlink()


def set_main_cf(path: Path, settings: dict[str, str]) -> None:
    """Replace or append ``name = value`` lines (no duplicates: Postfix would warn)."""
    lines = path.read_text(encoding="utf-8").splitlines()
    pending = dict(settings)
    out = []
    for line in lines:
        name = line.split("=", 1)[0].strip() if "=" in line and line[:1].isalpha() else None
        if name in pending:
            out.append(f"{name} = {pending.pop(name)}")
        else:
            out.append(line)
    out += ["", "# benchmark settings"] + [f"{k} = {v}" for k, v in pending.items()]
    path.write_text("\n".join(out) + "\n", encoding="utf-8")


def stop_group(process: subprocess.Popen[bytes], timeout: float = 20.0) -> None:
    """SIGTERM the leader by PID; SIGKILL its process group if anything lingers."""
    group = process.pid
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            signal_group(group, signal.SIGKILL)
            process.wait(5)
    if not wait_group_gone(group, 2.0):
        signal_group(group, signal.SIGKILL)
        wait_group_gone(group, 5.0)


class Server:
    """What the runner needs of a server under test."""

    name = "server"

    def __init__(self, workdir: Path, ports: Ports, extra: dict[str, str] | None = None) -> None:
        self.workdir = workdir
        self.ports = ports
        self.extra = extra or {}

    def start(self, configure: bool = True, timeout: float = 60.0) -> None:
        """Start (``configure``: from a fresh work directory; else keep its queue)."""
        raise NotImplementedError

    def stop(self, keep_dovecot: bool = False) -> None:
        """Stop every process (``keep_dovecot``: Postfix's auth server stays up)."""
        raise NotImplementedError

    def groups(self) -> list[int]:
        """The process groups whose processes are this server."""
        raise NotImplementedError

    def maildir_new(self) -> Path:
        raise NotImplementedError

    def queue_size(self) -> int:
        """Messages accepted but not yet delivered or bounced."""
        return 0

    def delivered(self) -> int:
        new = self.maildir_new()
        return sum(1 for _ in os.scandir(new)) if new.is_dir() else 0

    def clear(self) -> None:
        """Remove delivered messages (between runs, outside the measured time)."""
        clear_files(self.maildir_new())

    def version(self) -> str:
        return ""


class MailsealServer(Server):
    name = "mailseal"

    def __init__(
        self, workdir: Path, ports: Ports, users: str, extra: dict[str, str] | None = None
    ) -> None:
        super().__init__(workdir, ports, extra)
        self.users = users
        self.process: subprocess.Popen[bytes] | None = None

    def configure(self) -> None:
        shutil.rmtree(self.workdir, ignore_errors=True)
        self.workdir.parent.mkdir(parents=True, exist_ok=True)
        init = [str(MAILSEAL), "init", str(self.workdir), "--hostname", HOSTNAME]
        init += ["--smtp-port", str(self.ports.smtp)]
        init += ["--submission-port", str(self.ports.submission)]
        init += ["--smtps-port", str(self.ports.smtps)]
        subprocess.run(init, check=True, capture_output=True, timeout=60)  # noqa: S603
        (self.workdir / "sasl_passwd").write_text(self.users, encoding="utf-8")
        settings = {
            "smtpd_tls_cert_file": str(CERT),
            "smtpd_tls_key_file": str(KEY),
            "message_size_limit": str(SIZE_LIMIT),
            "virtual_mailbox_limit": "0",
            # Nothing here needs DNS; a closed loopback port fails any lookup at once.
            "dns_servers": "127.0.0.1:9",
        }
        settings.update(self.extra)
        set_main_cf(self.workdir / "main.cf", settings)

    def start(self, configure: bool = True, timeout: float = 60.0) -> None:
        if configure:
            self.configure()
        # Truncated: a restart must not find the previous start's "running" line.
        out = (self.workdir / "start-fg.out").open("wb")
        self.process = subprocess.Popen(  # noqa: S603 - the project's own command
            [str(MAILSEAL), "-c", str(self.workdir), "start-fg"],
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=out,
            start_new_session=True,
            env={k: v for k, v in os.environ.items() if k != "MAILSEAL_CONFIG_DIR"},
        )
        out.close()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            text = (self.workdir / "start-fg.out").read_text(errors="replace")
            if "the mail system is running" in text:
                return
            if self.process.poll() is not None:
                raise RuntimeError(f"mailseal exited at start:\n{text}")
            time.sleep(0.05)
        self.stop()
        raise RuntimeError("mailseal did not start in time")

    def stop(self, keep_dovecot: bool = False) -> None:
        if self.process is not None:
            stop_group(self.process)
            self.process = None

    def groups(self) -> list[int]:
        return [self.process.pid] if self.process is not None else []

    def maildir_new(self) -> Path:
        return self.workdir / "mail" / DOMAIN / "postmaster" / "new"

    def queue_size(self) -> int:
        return sum(count_files(self.workdir / "queue" / name) for name in QUEUE_DIRS)

    def version(self) -> str:
        out = subprocess.run(  # noqa: S603
            [str(MAILSEAL), "--version"], capture_output=True, text=True, timeout=30, check=False
        )
        return out.stdout.strip() or out.stderr.strip()


def _postfix_master_cf(ports: Ports) -> str:
    """Three smtpd services as mailseal init has them, plus what delivery needs."""
    header, *services = NULL_CLIENT_MASTER_CF.splitlines(keepends=True)
    kept = [line for line in services if line.split()[0] != "local"]
    auth = [
        "  -o smtpd_sasl_auth_enable=yes\n",
        "  -o smtpd_client_restrictions=permit_sasl_authenticated,reject\n",
        "  -o smtpd_recipient_restrictions=permit_sasl_authenticated,reject\n",
    ]
    return "".join(
        [
            header,
            f"127.0.0.1:{ports.smtp} inet n - n - - smtpd\n",
            f"127.0.0.1:{ports.submission} inet n - n - - smtpd\n",
            "  -o syslog_name=postfix/submission\n",
            "  -o smtpd_tls_security_level=encrypt\n",
            *auth,
            f"127.0.0.1:{ports.smtps} inet n - n - - smtpd\n",
            "  -o syslog_name=postfix/submissions\n",
            "  -o smtpd_tls_wrappermode=yes\n",
            *auth,
            *kept,
            "virtual   unix  -       n       n       -       -       virtual\n",
        ]
    )


class _BenchPostfix(PostfixReceiver):
    """PostfixReceiver with mailseal's three services instead of one."""

    bench_ports: Ports | None = None

    def _write_config(self) -> None:
        super()._write_config()
        assert self.bench_ports is not None
        (self.config_directory / "master.cf").write_text(
            _postfix_master_cf(self.bench_ports), encoding="utf-8"
        )


class PostfixServer(Server):
    name = "postfix"

    def __init__(
        self, workdir: Path, ports: Ports, users: str, extra: dict[str, str] | None = None
    ) -> None:
        super().__init__(workdir, ports, extra)
        self.dovecot = DovecotAuthServer(workdir / "dovecot", users, mechanisms=("plain", "login"))
        self.postfix: _BenchPostfix | None = None

    def _main_cf_extra(self) -> str:
        settings = {
            "smtpd_tls_auth_only": "yes",
            "smtpd_tls_protocols": ">=TLSv1.2",
            "smtpd_tls_mandatory_protocols": ">=TLSv1.2",
            # mailseal logs the same TLS line; the Received: header note is not logged.
            "smtpd_tls_received_header": "no",
            "smtpd_sasl_type": "dovecot",
            "smtpd_sasl_path": str(self.dovecot.socket_path),
            "message_size_limit": str(SIZE_LIMIT),
            "virtual_mailbox_limit": "0",
        }
        settings.update(self.extra)
        return "\n".join(f"{k} = {v}" for k, v in settings.items())

    def start(self, configure: bool = True, timeout: float = 60.0) -> None:
        if configure:
            for sub in ("etc", "queue", "data", "log", "mail"):
                path = self.workdir / sub
                if path.is_symlink():
                    path.unlink()
                shutil.rmtree(path, ignore_errors=True)
            shutil.rmtree(self.workdir / "dovecot", ignore_errors=True)
        if self.dovecot.pid is None:
            self.dovecot.start(timeout)
        postfix = _BenchPostfix(
            self.workdir,
            port=self.ports.smtp,
            hostname=HOSTNAME,
            domain=DOMAIN,
            cert_file=CERT,
            key_file=KEY,
            tls_level="may",
            extra_main_cf=self._main_cf_extra(),
        )
        postfix.bench_ports = self.ports
        # Known before it runs: a CPU trace then sees the master as soon as it exists.
        self.postfix = postfix
        postfix.start(timeout)
        if not wait_port(self.ports.smtp, timeout):
            raise RuntimeError("Postfix does not listen")

    def stop(self, keep_dovecot: bool = False) -> None:
        if self.postfix is not None:
            self.postfix.stop()
            self.postfix = None
        if not keep_dovecot:
            self.dovecot.stop()

    def groups(self) -> list[int]:
        groups = []
        if self.postfix is not None and self.postfix.master_pid is not None:
            with contextlib.suppress(ProcessLookupError):
                groups.append(os.getpgid(self.postfix.master_pid))
        if self.dovecot.pid is not None:
            groups.append(self.dovecot.pid)
        return groups

    def maildir_new(self) -> Path:
        return self.workdir / "mail" / DOMAIN / "inbox" / "new"

    def queue_size(self) -> int:
        return sum(count_files(self.workdir / "queue" / name) for name in QUEUE_DIRS)

    def flush(self) -> None:
        subprocess.run(  # noqa: S603 - Debian's postqueue, our own config
            ["/usr/sbin/postqueue", "-c", str(self.workdir / "etc"), "-f"],
            capture_output=True,
            timeout=30,
            check=False,
        )

    def version(self) -> str:
        out = subprocess.run(
            ["/usr/sbin/postconf", "-dh", "mail_version"],
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
        return f"Postfix {out.stdout.strip()}"


class AiosmtpdServer(Server):
    name = "aiosmtpd"

    def __init__(self, workdir: Path, ports: Ports, users: str) -> None:
        super().__init__(workdir, ports)
        self.users = users
        self.process: subprocess.Popen[bytes] | None = None

    def start(self, configure: bool = True, timeout: float = 60.0) -> None:
        shutil.rmtree(self.workdir, ignore_errors=True)
        self.workdir.mkdir(parents=True)
        users = self.workdir / "users"
        users.write_text(self.users, encoding="utf-8")
        out = (self.workdir / "server.out").open("ab")
        argv = [str(AIOSMTPD_PYTHON), str(AIOSMTPD_SCRIPT)]
        argv += ["--smtp", str(self.ports.smtp), "--submission", str(self.ports.submission)]
        argv += ["--smtps", str(self.ports.smtps), "--cert", str(CERT), "--key", str(KEY)]
        argv += ["--maildir", str(self.workdir / "Maildir"), "--users", str(users)]
        argv += ["--size-limit", str(SIZE_LIMIT)]
        self.process = subprocess.Popen(  # noqa: S603 - our script in our venv
            argv, stdin=subprocess.DEVNULL, stdout=out, stderr=out, start_new_session=True
        )
        out.close()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            text = (self.workdir / "server.out").read_text(errors="replace")
            if "ready" in text:
                return
            if self.process.poll() is not None:
                raise RuntimeError(f"aiosmtpd exited at start:\n{text}")
            time.sleep(0.05)
        self.stop()
        raise RuntimeError("aiosmtpd did not start in time")

    def stop(self, keep_dovecot: bool = False) -> None:
        if self.process is not None:
            stop_group(self.process)
            self.process = None

    def groups(self) -> list[int]:
        return [self.process.pid] if self.process is not None else []

    def maildir_new(self) -> Path:
        return self.workdir / "Maildir" / "new"

    def version(self) -> str:
        out = subprocess.run(  # noqa: S603
            [str(AIOSMTPD_PYTHON), "-c", "import aiosmtpd; print(aiosmtpd.__version__)"],
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
        return f"aiosmtpd {out.stdout.strip()}"


def users_file(scheme: str, user: str, password: str) -> str:
    """One passwd-file line every server reads: ``user:{SCHEME}hash``."""
    if scheme.upper() == "PLAIN":
        return f"{user}:{{PLAIN}}{password}\n"
    out = subprocess.run(  # noqa: S603 - Dovecot's doveadm, our own throwaway password
        ["/usr/bin/doveadm", "pw", "-s", scheme, "-p", password],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    hashed = out.stdout.strip()
    if not re.match(r"\{[A-Z0-9-]+\}", hashed):
        raise RuntimeError(f"doveadm pw printed {hashed!r}")
    return f"{user}:{hashed}\n"
