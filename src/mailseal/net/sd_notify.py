"""systemd's readiness protocol (sd_notify(3)), the part a ``Type=notify`` service needs.

systemd passes a unix datagram socket in ``$NOTIFY_SOCKET`` (a path, or an
abstract name written with a leading ``@``); the service sends newline-separated
``KEY=value`` assignments to it: ``READY=1`` once it accepts mail,
``RELOADING=1`` with ``MONOTONIC_USEC=`` when a reload begins (systemd 253's
``Type=notify-reload`` requires the timestamp; older ones ignore it) and
``READY=1`` again when it is done, ``STOPPING=1`` when shutting down, and
``STATUS=`` free text for ``systemctl status``.

Without ``$NOTIFY_SOCKET`` (not started by systemd) every call does nothing. A
failed send is ignored: telling systemd is a courtesy that must never stop mail.
"""

from __future__ import annotations

import os
import socket
import time
from collections.abc import Mapping

__all__ = ["Notifier"]


class Notifier:
    """Sends state changes to systemd, when systemd asked for them."""

    def __init__(self, address: str | None) -> None:
        self._address = _socket_address(address) if address else None

    @classmethod
    def from_environment(cls, environ: Mapping[str, str] | None = None) -> Notifier:
        """The notifier ``$NOTIFY_SOCKET`` asks for (a silent one when it is unset)."""
        env = os.environ if environ is None else environ
        return cls(env.get("NOTIFY_SOCKET") or None)

    @property
    def enabled(self) -> bool:
        return self._address is not None

    def ready(self, status: str = "") -> None:
        self._send({"READY": "1", "STATUS": status})

    def reloading(self) -> None:
        usec = time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000
        self._send({"RELOADING": "1", "MONOTONIC_USEC": str(usec)})

    def stopping(self) -> None:
        self._send({"STOPPING": "1"})

    def status(self, text: str) -> None:
        self._send({"STATUS": text})

    def _send(self, fields: Mapping[str, str]) -> None:
        if self._address is None:
            return
        # A value may not contain a newline: it would start a new assignment.
        lines = (f"{key}={value.replace(chr(10), ' ')}" for key, value in fields.items() if value)
        message = "\n".join(lines).encode("utf-8", "replace")
        try:
            with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as sock:
                sock.sendto(message, self._address)
        except OSError:
            return


def _socket_address(text: str) -> str | bytes:
    """``@name`` is Linux's abstract namespace, spelled with a leading NUL byte."""
    if text.startswith("@"):
        return b"\0" + text[1:].encode("utf-8")
    return text
