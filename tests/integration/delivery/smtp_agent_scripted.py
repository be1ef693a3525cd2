"""A small scripted SMTP server on a loopback address, in a thread, for the smtp agent tests.

It answers each command from a table (``replies`` by verb, ``rcpt`` by address),
can offer STARTTLS and then misbehave after its ``220`` (``starttls="close"``:
hang up; ``"garbage"``: send plaintext instead of a handshake), can stay silent,
and records every command line and every message it accepted, so a test can prove
that no mail crossed in plaintext.
"""

from __future__ import annotations

import contextlib
import io
import socket
import threading
import time
from dataclasses import dataclass, field


@dataclass
class ScriptedServer:
    host: str = "127.0.0.1"
    port: int = 0
    greeting: str = "220 scripted.example ESMTP"
    capabilities: tuple[str, ...] = ("PIPELINING", "8BITMIME", "ENHANCEDSTATUSCODES", "DSN")
    replies: dict[str, str] = field(default_factory=dict)
    rcpt: dict[str, str] = field(default_factory=dict)
    starttls: str | None = None  # None, "close" or "garbage"
    silent: bool = False
    commands: list[str] = field(default_factory=list)
    messages: list[bytes] = field(default_factory=list)
    connections: int = 0
    hang_up_after_greeting: bool = False

    def __post_init__(self) -> None:
        self._socket = socket.socket()
        self._socket.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._socket.bind((self.host, self.port))
        self.port = self._socket.getsockname()[1]
        self._socket.listen(16)
        self._socket.settimeout(0.2)
        self._stop = threading.Event()
        self._state = ""  # "", "mail", "rcpt": one transaction at a time is enough here
        self._threads: list[threading.Thread] = []
        self._open: list[socket.socket] = []
        self._accept = threading.Thread(target=self._serve, daemon=True)
        self._accept.start()

    def __enter__(self) -> ScriptedServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def stop(self) -> None:
        self._stop.set()
        self._accept.join(5)
        self.drop_connections()  # sessions the client keeps cached
        for thread in self._threads:
            thread.join(5)
        self._socket.close()

    def drop_connections(self) -> None:
        """Hang up on every client (an idle timeout on the server side)."""
        for conn in self._open:
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self._socket.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            self.connections += 1
            self._open.append(conn)
            thread = threading.Thread(target=self._session, args=(conn,), daemon=True)
            self._threads.append(thread)
            thread.start()

    def _session(self, conn: socket.socket) -> None:
        conn.settimeout(10)
        with conn, contextlib.suppress(OSError):
            if self.silent:
                self._stop.wait(10)
                return
            reader = conn.makefile("rb")
            conn.sendall(self.greeting.encode() + b"\r\n")
            if not self.greeting.startswith("2") or self.hang_up_after_greeting:
                return
            while not self._stop.is_set():
                line = reader.readline()
                if not line:
                    return
                if not self._command(conn, reader, line.decode().rstrip("\r\n")):
                    return

    def _command(self, conn: socket.socket, reader: io.BufferedReader, text: str) -> bool:
        self.commands.append(text)
        verb = text.split(" ", 1)[0].upper()

        def send(reply: str) -> None:
            conn.sendall(reply.encode() + b"\r\n")

        if verb == "EHLO":
            caps = list(self.capabilities) + (["STARTTLS"] if self.starttls else [])
            lines = ["scripted.example", *caps]
            last = len(lines) - 1
            send("\r\n".join(f"250{'-' if i < last else ' '}{w}" for i, w in enumerate(lines)))
        elif verb == "STARTTLS" and self.starttls:
            send("220 2.0.0 Ready to start TLS")
            if self.starttls == "garbage":
                send("250 this is not a TLS handshake")
                time.sleep(0.5)
            return False
        elif verb == "MAIL":
            reply = self.replies.get("MAIL", "250 2.1.0 Ok")
            self._state = "mail" if reply.startswith("2") else ""
            send(reply)
        elif verb == "RCPT" and not self._state:
            send("503 5.5.1 Error: need MAIL command")
        elif verb == "RCPT":
            address = text.split("<", 1)[1].split(">", 1)[0]
            reply = self.rcpt.get(address, self.replies.get("RCPT", "250 2.1.5 Ok"))
            self._state = "rcpt" if reply.startswith("2") else self._state
            send(reply)
        elif verb == "DATA" and self._state != "rcpt":
            send("554 5.5.1 Error: no valid recipients")
        elif verb == "DATA":
            self._state = ""
            reply = self.replies.get("DATA", "354 End data with <CR><LF>.<CR><LF>")
            send(reply)
            if reply.startswith("354"):
                self._data(reader)
                send(self.replies.get("DOT", "250 2.0.0 Ok: queued as SCRIPTED1"))
        elif verb == "QUIT":
            send("221 2.0.0 Bye")
            return False
        elif verb == "RSET":
            self._state = ""
            send("250 2.0.0 Ok")
        elif verb in ("NOOP", "HELO"):
            send("250 2.0.0 Ok")
        else:
            send("502 5.5.2 Error: command not recognized")
        return True

    def _data(self, reader: io.BufferedReader) -> None:
        lines = []
        while True:
            line = reader.readline()
            if not line or line == b".\r\n":
                break
            lines.append(line)
        self.messages.append(b"".join(lines))
