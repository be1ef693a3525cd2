"""Reload and the service manager (issue #6): new certificates, new services, sd_notify.

A certbot deploy hook runs ``mailseal reload``: the next connection must see the
renewed certificate while a session that began before the reload finishes its
transaction on the old one. A reload also starts services added to master.cf and
stops accepting on removed ones. Under systemd (``Type=notify``) the master says
READY=1 when it listens, RELOADING=1 ... READY=1 around a reload and STOPPING=1
when it stops; the test plays systemd's part with a datagram socket.
"""

from __future__ import annotations

import secrets
import signal
import socket
import ssl
import time
from pathlib import Path

import pytest
from cryptography import x509
from raw_smtp import Dialogue, client_context

from mailseal.testing.process import run_mailseal
from mailseal.testing.server import HOSTNAME, MailsealProcess, Servers, free_port, make_instance
from mailseal.tls.certs import make_self_signed

RCPT = "postmaster@example.test"


def _serial_after_starttls(smtp: Dialogue) -> int:
    smtp.reply()
    smtp.command("EHLO client.example.net")
    assert smtp.command("STARTTLS").code == 220
    smtp.starttls(client_context())
    assert isinstance(smtp.sock, ssl.SSLSocket)
    der = smtp.sock.getpeercert(binary_form=True)
    assert der is not None
    smtp.command("EHLO client.example.net")
    return x509.load_der_x509_certificate(der).serial_number


def _reload(directory: Path, process: MailsealProcess, count: int) -> None:
    assert run_mailseal("-c", str(directory), "reload").returncode == 0
    process.wait_log(r"reload -- version", count=count)


def test_reload_serves_a_renewed_certificate_to_new_sessions_only(servers: Servers) -> None:
    instance = servers.start()
    tls = instance.directory / "tls"
    with Dialogue(instance.ports.smtp) as before:
        old_serial = _serial_after_starttls(before)
        assert before.command("MAIL FROM:<s@client.example.net>").code == 250
        assert before.command(f"RCPT TO:<{RCPT}>").code == 250
        # certbot's deploy hook: new files renamed into place, then a reload.
        make_self_signed(HOSTNAME, tls / "new.crt", tls / "new.key")
        (tls / "new.key").replace(tls / "server.key")
        (tls / "new.crt").replace(tls / "server.crt")
        _reload(instance.directory, instance.process, 1)
        with Dialogue(instance.ports.smtp) as after:
            new_serial = _serial_after_starttls(after)
        assert new_serial != old_serial
        assert before.command("DATA").code == 354
        before.send("Subject: begun before the reload\r\n\r\nhi\r\n.\r\n")
        assert before.reply().code == 250
        assert before.command("QUIT").code == 221
    delivered = instance.process.wait_delivered(1)[0].read_bytes()
    assert b"Subject: begun before the reload" in delivered


def test_reload_starts_added_services_and_retires_removed_ones(servers: Servers) -> None:
    instance = servers.start()
    master_cf = instance.directory / "master.cf"
    added = free_port()
    with master_cf.open("a", encoding="utf-8") as out:
        out.write(f"{added} inet n - n - - smtpd\n  -o syslog_name=mailseal/added\n")
    _reload(instance.directory, instance.process, 1)
    with Dialogue(added) as smtp:
        assert smtp.reply().code == 220
        smtp.command("EHLO client.example.net")
        with Dialogue(instance.ports.smtps) as kept_open:  # opened before its removal
            kept_open.starttls(client_context())
            assert kept_open.reply().code == 220
            # Remove the smtps service (its line and its -o lines).
            lines = master_cf.read_text(encoding="utf-8").splitlines(keepends=True)
            kept: list[str] = []
            skipping = False
            for line in lines:
                if line[:1] not in (" ", "\t"):
                    skipping = line.startswith(f"{instance.ports.smtps} ")
                if not skipping:
                    kept.append(line)
            master_cf.write_text("".join(kept), encoding="utf-8")
            _reload(instance.directory, instance.process, 2)
            with pytest.raises(ConnectionRefusedError):
                socket.create_connection(("127.0.0.1", instance.ports.smtps), timeout=5)
            assert kept_open.command("EHLO client.example.net").code == 250
            assert kept_open.command("QUIT").code == 221
        assert smtp.command("QUIT").code == 221
    assert "mailseal/added/smtpd[" in instance.process.maillog()


def test_a_reload_that_cannot_read_the_configuration_keeps_serving(servers: Servers) -> None:
    instance = servers.start()
    main_cf = instance.directory / "main.cf"
    main_cf.write_text(
        main_cf.read_text(encoding="utf-8") + "\nsmtpd_tls_security_level = bogus\n",
        encoding="utf-8",
    )
    # The command checks first, as "postfix reload" does, and says why it refuses...
    refused = run_mailseal("-c", str(instance.directory), "reload")
    assert refused.returncode == 1
    assert 'invalid smtpd_tls_security_level value "bogus"' in refused.stderr
    # ...and a bare SIGHUP (kill -HUP, systemd's ExecReload) is logged and survived.
    instance.process.process.send_signal(signal.SIGHUP)  # type: ignore[union-attr]
    instance.process.wait_log(r"reload failed, keeping the running configuration: .*bogus")
    with Dialogue(instance.ports.smtp) as smtp:
        assert smtp.reply().code == 220


def _datagrams(sock: socket.socket, until: str, timeout: float = 20.0) -> list[str]:
    """Messages received until one holds ``until`` (bounded in time)."""
    seen: list[str] = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        sock.settimeout(max(0.05, deadline - time.monotonic()))
        try:
            seen.append(sock.recv(4096).decode())
        except TimeoutError:
            break
        if until in seen[-1]:
            return seen
    raise AssertionError(f"no {until!r} from the master within {timeout}s: {seen}")


def test_systemd_type_notify_sees_ready_reloading_and_stopping(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    name = f"mailseal-test-{secrets.token_hex(6)}"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as systemd:
        systemd.bind(b"\0" + name.encode())
        monkeypatch.setenv("NOTIFY_SOCKET", "@" + name)
        directory = tmp_path / "mailseal"
        make_instance(directory)
        process = MailsealProcess(directory).start()
        try:
            ready = _datagrams(systemd, "READY=1")
            assert "STATUS=accepting mail:" in ready[-1]
            process.process.send_signal(signal.SIGHUP)  # type: ignore[union-attr]
            reload = _datagrams(systemd, "READY=1")
            assert reload[0].startswith("RELOADING=1\nMONOTONIC_USEC=")
            assert int(reload[0].split("MONOTONIC_USEC=")[1]) > 0
            assert process.stop() == 0
            assert _datagrams(systemd, "STOPPING=1")[-1] == "STOPPING=1"
        finally:
            process.stop()
