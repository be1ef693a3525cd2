"""Drive ``SmtpServer`` without a network: feed client turns, answer requests, collect output.

A dialogue is a list of client *turns*: the bytes a client sends before it waits for
replies. ``check_splits`` feeds every turn whole, split at every byte position, one
byte at a time, and with trailing garbage after the end, and requires the same
replies, events and command counts each time (h11's habit).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from mailseal.smtp.events import Event, MessageComplete, StartTlsRequest
from mailseal.smtp.reply import Reply, queued
from mailseal.smtp.server import ServerSettings, SmtpServer

Answer = Callable[[Event], Reply | None]

HOST = "mx.example"
BANNER = "mx.example ESMTP mailseal"
GREETING = b"220 mx.example ESMTP mailseal\r\n"
QUEUE_ID = "4XyZ1"


def settings(**overrides: Any) -> ServerSettings:
    values: dict[str, Any] = {"hostname": HOST, "banner": BANNER, **overrides}
    return ServerSettings(**values)


def accept_all(event: Event) -> Reply | None:
    """Answer every request positively: default replies, ``queued(QUEUE_ID)`` for messages."""
    if isinstance(event, MessageComplete):
        return queued(QUEUE_ID)
    return None


@dataclass
class Transcript:
    output: bytes
    events: list[Event]
    counts: list[tuple[str, int, int]]
    closed: bool
    server: SmtpServer

    @property
    def replies(self) -> list[str]:
        """Reply lines after the greeting, without CRLF."""
        text = self.output.decode("utf-8")
        return [line for line in text.split("\r\n") if line][1:]

    def of_type(self, kind: type[Any]) -> list[Any]:
        return [e for e in self.events if isinstance(e, kind)]


def pump(server: SmtpServer, events: list[Event], answer: Answer, *, auto_tls: bool) -> None:
    """Collect events until the server needs input, answering requests as they come."""
    while (event := server.next_event()) is not None:
        events.append(event)
        if server.pending is event:
            server.answer(answer(event))
        elif isinstance(event, StartTlsRequest) and auto_tls:
            server.tls_established()


def run(
    turns: Iterable[bytes | Sequence[bytes]],
    config: ServerSettings | None = None,
    answer: Answer = accept_all,
    *,
    auto_tls: bool = True,
    eof: bool = False,
) -> Transcript:
    """Feed each turn (or each piece of a pre-split turn), pumping events after each piece."""
    server = SmtpServer(config or settings())
    server.greet()
    events: list[Event] = []
    output = bytearray(server.data_to_send())
    for turn in turns:
        pieces = [turn] if isinstance(turn, bytes) else list(turn)
        for piece in pieces:
            server.receive_data(piece)
            pump(server, events, answer, auto_tls=auto_tls)
            output += server.data_to_send()
    if eof:
        server.receive_data(b"")
        pump(server, events, answer, auto_tls=auto_tls)
        output += server.data_to_send()
    return Transcript(bytes(output), events, server.command_counts(), server.closed, server)


def _split_runs(turns: list[bytes]) -> Iterable[list[list[bytes]]]:
    yield [[t[i : i + 1] for i in range(len(t))] for t in turns]
    for index, turn in enumerate(turns):
        for cut in range(1, len(turn)):
            split = [[t] for t in turns]
            split[index] = [turn[:cut], turn[cut:]]
            yield split


def check_splits(
    turns: list[bytes],
    config: ServerSettings | None = None,
    answer: Answer = accept_all,
    *,
    eof: bool = False,
) -> Transcript:
    """Run ``turns`` whole and split every way; all runs must agree. Returns the whole run."""
    whole = run(turns, config, answer, eof=eof)
    expected = (whole.output, whole.events, whole.counts, whole.closed)
    for pieces in _split_runs(turns):
        got = run(pieces, config, answer, eof=eof)
        assert (got.output, got.events, got.counts, got.closed) == expected, pieces
    if whole.closed:
        garbage = run([*turns, b"garbage after the end\r\nNOOP\r\n"], config, answer, eof=eof)
        assert garbage.output == whole.output
        assert garbage.events == whole.events
    return whole


EHLO_REPLY = [
    "250-mx.example",
    "250-PIPELINING",
    "250-SIZE 10240000",
    "250-VRFY",
    "250-ENHANCEDSTATUSCODES",
    "250-8BITMIME",
    "250-DSN",
    "250-SMTPUTF8",
    "250 CHUNKING",
]
