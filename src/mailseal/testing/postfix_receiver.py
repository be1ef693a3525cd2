"""Debian's Postfix 3.7 as a *receiving peer* in tests: one private smtpd on 127.0.0.1:PORT.

``PostfixReceiver`` is the counterpart of :class:`mailseal.testing.postfix.PostfixSender`:
the same private instance under one directory (own ``main.cf``/``master.cf``,
queue, data and log, ``chroot = n`` everywhere, started as root with
``postfix -c DIR start``, stopped by its own master PID), plus ONE ``inet``
service, ``127.0.0.1:PORT inet n - n - - smtpd``, so it listens nowhere else.
Mail for ``domain`` is delivered by virtual(8) into one Maildir,
``mail/<domain>/inbox/`` (``virtual_mailbox_maps = static:<domain>/inbox/``,
owned by an unprivileged uid, ``nobody`` by default).

virtual(8) writes as that uid and insists on an absolute ``virtual_mailbox_base``,
but pytest's work directories sit under a 0700 root-owned directory the uid cannot
search. So while the instance runs, the mailbox base is a private directory made
with ``mkdtemp`` (``/tmp/mailseal-postfix-mail-*``, owned by the uid) and
``DIR/mail`` is a symlink to it; ``stop()`` moves it to ``DIR/mail``, so paths
under ``DIR/mail`` stay valid before and after, and nothing is left in /tmp.

TLS is smtpd's: ``smtpd_tls_security_level`` (none, may, encrypt) with the given
certificate and key, ``smtpd_tls_loglevel = 1`` (so the log says "Anonymous TLS
connection established from ...") and ``smtpd_tls_received_header = yes`` (so
the Received: header says which protocol and cipher were used). Nothing leaves
this instance: ``default_transport = error`` and no smtp service in master.cf.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from dataclasses import KW_ONLY, dataclass, field
from pathlib import Path

from mailseal.testing.postfix import NULL_CLIENT_MASTER_CF, PostfixSender

__all__ = ["NOBODY", "PostfixReceiver"]

# Debian's nobody/nogroup: a real unprivileged owner for the Maildir (virtual(8)
# refuses uids below virtual_minimum_uid = 100, so never root).
NOBODY = 65534

# What a receiving instance needs: the null client's services (see postfix.py) with
# smtpd on one loopback address and virtual(8) for the Maildir in place of the smtp
# client and local(8); default_transport is error:, so nothing leaves.
_DROPPED = ("smtp", "relay", "local")


def _master_cf(listen: str) -> str:
    header, *services = NULL_CLIENT_MASTER_CF.splitlines(keepends=True)
    kept = [line for line in services if line.split()[0] not in _DROPPED]
    return (
        header
        + f"{listen} inet n       -       n       -       -       smtpd\n"
        + "".join(kept)
        + "virtual   unix  -       n       n       -       -       virtual\n"
    )


_TLS_LEVELS = ("none", "may", "encrypt")


@dataclass
class PostfixReceiver(PostfixSender):
    """A private Postfix whose smtpd on ``127.0.0.1:port`` accepts mail for ``domain``.

    Reuses PostfixSender's lifecycle (``start``/``stop``/``maillog``/``wait_log``,
    ``postfix check`` must not complain); only the configuration differs. The
    sender's ``relayhost`` and ``ca_file`` have no meaning here and are not set.
    """

    relayhost: str = field(default="", init=False)
    ca_file: Path | None = field(default=None, init=False)
    _: KW_ONLY
    port: int
    hostname: str = "postfix-receiver.test"
    domain: str = "receiver.test"
    cert_file: str | Path | None = None
    key_file: str | Path | None = None
    # smtpd_tls_security_level, not smtp's: the field is inherited, its meaning is ours.
    tls_level: str = "may"
    mailbox_uid: int = NOBODY
    mailbox_gid: int = NOBODY
    extra_main_cf: str = ""
    _mail_base: Path | None = field(default=None, init=False, repr=False)

    def __post_init__(self) -> None:
        if self.tls_level not in _TLS_LEVELS:
            raise ValueError(f"smtpd_tls_security_level must be one of {_TLS_LEVELS}")
        if self.tls_level != "none" and (self.cert_file is None or self.key_file is None):
            # Postfix would only warn and turn TLS off: a test would then pass for the
            # wrong reason.
            raise ValueError(f"tls_level={self.tls_level} needs cert_file and key_file")

    @property
    def mail_directory(self) -> Path:
        """The Maildir base as tests see it (a symlink to virtual_mailbox_base while running)."""
        return self.directory / "mail"

    @property
    def maildir(self) -> Path:
        """The one Maildir every recipient in ``domain`` is delivered to."""
        return self.mail_directory / self.domain / "inbox"

    def maildir_messages(self) -> list[Path]:
        """Delivered messages (``new/``), oldest first."""
        new = self.maildir / "new"
        if not new.is_dir():
            return []
        return sorted(new.iterdir(), key=lambda path: (path.stat().st_mtime_ns, path.name))

    def wait_delivered(self, count: int, timeout: float = 30.0) -> list[Path]:
        """Wait until ``count`` messages are in the Maildir; return them all."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            files = self.maildir_messages()
            if len(files) >= count:
                return files
            time.sleep(0.05)
        raise AssertionError(
            f"{len(self.maildir_messages())} of {count} messages in {self.maildir}:\n"
            f"{self.maillog()}"
        )

    def start(self, timeout: float = 30.0) -> PostfixReceiver:
        """Write the config, check it, start; the listener is bound once the master runs."""
        super().start(timeout)
        return self

    def stop(self, timeout: float = 15.0) -> None:
        """Stop the master (as PostfixSender does), then bring the Maildirs home to DIR/mail."""
        try:
            super().stop(timeout)
        finally:
            self._bring_mail_home()

    def __enter__(self) -> PostfixReceiver:
        return self.start()

    def _write_config(self) -> None:
        if self._mail_base is None:
            self._mail_base = self._make_mail_base()
        super()._write_config()
        (self.config_directory / "master.cf").write_text(
            _master_cf(f"127.0.0.1:{self.port}"), encoding="utf-8"
        )

    def _make_mail_base(self) -> Path:
        """A fresh virtual_mailbox_base, with the Maildirs of an earlier run moved in."""
        base = Path(tempfile.mkdtemp(prefix="mailseal-postfix-mail-"))
        if self.mail_directory.is_symlink():  # left by a run that was never stopped
            self.mail_directory.unlink()
        if self.mail_directory.is_dir():
            for child in self.mail_directory.iterdir():
                shutil.move(child, base / child.name)
            self.mail_directory.rmdir()
        # virtual(8) writes as the mailbox owner, in directories it may have made before;
        # a move across file systems would have left them root's.
        for path in (base, *base.rglob("*")):
            os.chown(path, self.mailbox_uid, self.mailbox_gid, follow_symlinks=False)
        self.mail_directory.parent.mkdir(parents=True, exist_ok=True)
        self.mail_directory.symlink_to(base, target_is_directory=True)
        return base

    def _bring_mail_home(self) -> None:
        base, self._mail_base = self._mail_base, None
        if base is None:
            return
        if self.mail_directory.is_symlink():
            self.mail_directory.unlink()
            shutil.move(base, self.mail_directory)
        else:
            shutil.rmtree(base, ignore_errors=True)

    def _main_cf(self) -> str:
        lines = [
            "compatibility_level = 3.6",
            f"queue_directory = {self.queue_directory}",
            # Relative to queue_directory, as PostfixSender has it (see there).
            "data_directory = ../data",
            f"maillog_file = {self.log_file}",
            f"maillog_file_prefixes = {self.log_file.parent}",
            f"myhostname = {self.hostname}",
            "mydestination =",
            "alias_maps =",
            "alias_database =",
            "inet_interfaces = loopback-only",
            "inet_protocols = ipv4",
            "mynetworks = 127.0.0.0/8",
            # Nothing this instance accepts may leave it (bounces included).
            "default_transport = error:outbound mail is disabled in this test receiver",
            "relay_transport = error:outbound mail is disabled in this test receiver",
            f"virtual_mailbox_domains = {self.domain}",
            f"virtual_mailbox_base = {self._mail_base}",
            f"virtual_mailbox_maps = static:{self.domain}/inbox/",
            f"virtual_uid_maps = static:{self.mailbox_uid}",
            f"virtual_gid_maps = static:{self.mailbox_gid}",
            f"smtpd_tls_security_level = {self.tls_level}",
            "smtpd_tls_loglevel = 1",
            "smtpd_tls_received_header = yes",
        ]
        if self.cert_file is not None and self.key_file is not None:
            # smtpd loads them as root before it drops privileges: absolute is fine.
            lines.append(f"smtpd_tls_cert_file = {self.cert_file}")
            lines.append(f"smtpd_tls_key_file = {self.key_file}")
        return _with_extra(lines, self.extra_main_cf)


def _with_extra(lines: list[str], extra_main_cf: str) -> str:
    """``lines`` with ``extra_main_cf`` appended; a name set again there replaces ours.

    Postfix would warn "overriding earlier entry", and start() treats that as a failure.
    """
    overridden = {
        line.split("=", 1)[0].strip()
        for line in extra_main_cf.splitlines()
        if "=" in line and line[:1] not in ("", " ", "\t", "#")
    }
    kept = [line for line in lines if line.split("=", 1)[0].strip() not in overridden]
    if extra_main_cf.strip():
        kept.append(extra_main_cf.strip())
    return "\n".join(kept) + "\n"
