"""sd_notify(3) datagrams as systemd reads them (mailseal.net.sd_notify)."""

from __future__ import annotations

import socket
import tempfile
from pathlib import Path

from mailseal.net.sd_notify import Notifier


def _receiver() -> tuple[socket.socket, str]:
    # A short directory: unix socket paths are limited to 108 bytes.
    path = Path(tempfile.mkdtemp(prefix="sdn", dir="/tmp")) / "notify"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(str(path))
    sock.settimeout(5)
    return sock, str(path)


def test_ready_with_status_is_one_datagram_of_assignments() -> None:
    sock, path = _receiver()
    with sock:
        Notifier(path).ready("accepting mail: 25/inet")
        assert sock.recv(4096) == b"READY=1\nSTATUS=accepting mail: 25/inet"


def test_reloading_carries_the_monotonic_clock_and_stopping_is_bare() -> None:
    sock, path = _receiver()
    with sock:
        notifier = Notifier(path)
        notifier.reloading()
        first = sock.recv(4096).decode()
        notifier.stopping()
        assert sock.recv(4096) == b"STOPPING=1"
    key, _, usec = first.partition("\nMONOTONIC_USEC=")
    assert key == "RELOADING=1"
    assert int(usec) > 0


def test_a_newline_in_a_status_cannot_inject_an_assignment() -> None:
    sock, path = _receiver()
    with sock:
        Notifier(path).status("bad\nREADY=1")
        assert sock.recv(4096) == b"STATUS=bad READY=1"


def test_abstract_socket_names_start_with_at() -> None:
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.bind(b"\0mailseal-unit-sd-notify")
        sock.settimeout(5)
        Notifier("@mailseal-unit-sd-notify").ready()
        assert sock.recv(4096) == b"READY=1"


def test_without_notify_socket_nothing_is_sent_and_nothing_fails(tmp_path: Path) -> None:
    silent = Notifier.from_environment({})
    assert not silent.enabled
    silent.ready("x")
    gone = Notifier.from_environment({"NOTIFY_SOCKET": str(tmp_path / "nobody-listens")})
    assert gone.enabled
    gone.stopping()  # ENOENT is swallowed: systemd going away must not stop mail
