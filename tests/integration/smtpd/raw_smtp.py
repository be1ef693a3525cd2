"""A raw SMTP client for the smtpd tests: send exact bytes, read exact replies.

It lives beside the tests, not in ``mailseal.testing``: it needs ``ssl``, which
the package imports only in ``tls/`` and ``net/`` (docs/DESIGN.md).

smtplib hides what the tests need to see (pipelined writes, bytes after
STARTTLS, bare LFs, half-sent commands), so this speaks SMTP on a plain
socket: ``send`` writes bytes as given, ``reply`` reads one complete
(multi-line) reply, ``starttls`` wraps the socket with a real handshake.
"""

from __future__ import annotations

import socket
import ssl
from dataclasses import dataclass

__all__ = ["Dialogue", "Reply", "client_context"]


@dataclass(frozen=True)
class Reply:
    code: int
    lines: tuple[str, ...]

    @property
    def text(self) -> str:
        """The first line as the server sent it: ``250 2.1.0 Ok``."""
        return f"{self.code} {self.lines[0]}" if self.lines else str(self.code)


def client_context(
    cafile: str | None = None,
    *,
    minimum: ssl.TLSVersion | None = None,
    maximum: ssl.TLSVersion | None = None,
    ciphers: str | None = None,
) -> ssl.SSLContext:
    """A client context; without ``cafile`` it does not check the certificate."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    if cafile is None:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    else:
        context.load_verify_locations(cafile)
    if minimum is not None:
        context.minimum_version = minimum
    if maximum is not None:
        context.maximum_version = maximum
    if ciphers is not None:
        context.set_ciphers(ciphers)
    return context


class Dialogue:
    """One SMTP connection driven byte by byte."""

    def __init__(self, port: int, host: str = "127.0.0.1", timeout: float = 10.0) -> None:
        self.sock: socket.socket = socket.create_connection((host, port), timeout=timeout)
        self._buffer = b""

    def send(self, data: bytes | str) -> None:
        self.sock.sendall(data.encode() if isinstance(data, str) else data)

    def command(self, line: str) -> Reply:
        self.send(line + "\r\n")
        return self.reply()

    def _line(self) -> bytes:
        while b"\n" not in self._buffer:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise ConnectionError(f"connection closed; unread: {self._buffer!r}")
            self._buffer += chunk
        line, _, self._buffer = self._buffer.partition(b"\n")
        return line.rstrip(b"\r")

    def reply(self) -> Reply:
        lines: list[str] = []
        while True:
            raw = self._line().decode("utf-8", "replace")
            lines.append(raw[4:])
            if raw[3:4] != "-":
                return Reply(int(raw[:3]), tuple(lines))

    def closed(self, timeout: float = 5.0) -> bool:
        """True when the server has closed the connection (EOF) within ``timeout``."""
        self.sock.settimeout(timeout)
        try:
            while True:
                chunk = self.sock.recv(65536)
                if not chunk:
                    return True
                self._buffer += chunk
        except TimeoutError:
            return False
        except (ConnectionResetError, ssl.SSLError):
            return True

    def starttls(self, context: ssl.SSLContext, server_hostname: str | None = None) -> None:
        self.sock = context.wrap_socket(self.sock, server_hostname=server_hostname)

    def close(self) -> None:
        self.sock.close()

    def __enter__(self) -> Dialogue:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
