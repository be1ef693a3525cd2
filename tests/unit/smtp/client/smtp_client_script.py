"""Drive ``SmtpClient`` against scripted server bytes, fed whole and split every way.

A script is a list of steps: ``bytes`` are what the server sends (``b""`` closes),
a callable is an operation on the client. ``check_splits`` runs the script with each
server piece whole, one byte at a time, and cut at every position, and requires the
same bytes on the wire and the same events each time (h11's habit).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from mailseal.smtp.client import ClientSettings, SmtpClient
from mailseal.smtp.client_events import ClientEvent

Step = bytes | Callable[[SmtpClient], None]
Split = Callable[[bytes], list[bytes]]

HELO_NAME = "client.example"
GREETING = b"220 mx.example ESMTP\r\n"
EHLO_PIPELINING = (
    b"250-mx.example\r\n"
    b"250-PIPELINING\r\n"
    b"250-SIZE 10240000\r\n"
    b"250-ENHANCEDSTATUSCODES\r\n"
    b"250-8BITMIME\r\n"
    b"250-CHUNKING\r\n"
    b"250 DSN\r\n"
)
EHLO_PLAIN = b"250-mx.example\r\n250-SIZE\r\n250 ENHANCEDSTATUSCODES\r\n"


def settings(**overrides: Any) -> ClientSettings:
    values: dict[str, Any] = {"helo_name": HELO_NAME, **overrides}
    return ClientSettings(**values)


def ehlo(client: SmtpClient) -> None:
    client.ehlo()


@dataclass
class Transcript:
    sent: bytes
    events: list[ClientEvent]
    client: SmtpClient

    def of_type(self, kind: type[Any]) -> list[Any]:
        return [e for e in self.events if isinstance(e, kind)]

    @property
    def lines(self) -> list[bytes]:
        """What the client sent, split after each CRLF (the CRLF kept)."""
        return self.sent.splitlines(keepends=True)


def whole(data: bytes) -> list[bytes]:
    return [data]


def bytewise(data: bytes) -> list[bytes]:
    return [data[i : i + 1] for i in range(len(data))] or [data]


def cut_at(position: int) -> Split:
    def split(data: bytes) -> list[bytes]:
        if 0 < position < len(data):
            return [data[:position], data[position:]]
        return [data]

    return split


def run(
    steps: Sequence[Step], config: ClientSettings | None = None, split: Split = whole
) -> Transcript:
    client = SmtpClient(config or settings())
    sent = bytearray()
    events: list[ClientEvent] = []
    for step in steps:
        if isinstance(step, bytes):
            for piece in split(step):
                client.receive_data(piece)
                events.extend(drain(client))
        else:
            step(client)
        sent += client.data_to_send()
        events.extend(drain(client))
    return Transcript(bytes(sent), events, client)


def drain(client: SmtpClient) -> list[ClientEvent]:
    out = []
    while (event := client.next_event()) is not None:
        out.append(event)
    return out


def check_splits(steps: Sequence[Step], config: ClientSettings | None = None) -> Transcript:
    """Run whole, bytewise and cut at every position; all must agree."""
    base = run(steps, config)
    longest = max((len(s) for s in steps if isinstance(s, bytes)), default=0)
    splits: list[Split] = [bytewise, *(cut_at(i) for i in range(1, longest))]
    for split in splits:
        other = run(steps, config, split)
        assert other.sent == base.sent
        assert other.events == base.events
    return base
