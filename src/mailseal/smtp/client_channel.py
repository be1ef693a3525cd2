"""The client's wire state: commands out, the replies they await, and events for the driver.

Each command written adds one *expectation* (its kind and the handler of its reply) to
a queue; replies are matched to expectations strictly in order, which is what makes
PIPELINING (RFC 2920) work. Which reply codes each kind of command may get is data
(``ALLOWED``): a reply outside it is a protocol error, so a stray 354 can never make
the client send a message body, nor a 334 feed a SASL mechanism.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterator
from enum import Enum

from mailseal.smtp.client_events import ClientEvent
from mailseal.smtp.reply import Reply

__all__ = ["ALLOWED", "Channel", "Expect", "Handler", "Phase"]

Handler = Callable[[Reply], None]


class Expect(Enum):
    """What a reply answers; the value is Postfix's name for it in "(in reply to ...)"."""

    GREETING = "initial server greeting"
    EHLO = "EHLO command"
    HELO = "HELO command"
    STARTTLS = "STARTTLS command"
    AUTH = "AUTH command"
    AUTH_CANCEL = "AUTH cancellation"
    MAIL = "MAIL FROM command"
    RCPT = "RCPT TO command"
    DATA = "DATA command"
    DOT = "end of DATA command"
    BDAT = "BDAT command"
    RSET = "RSET command"
    NOOP = "NOOP command"
    QUIT = "QUIT command"

    @property
    def has_enhanced_code(self) -> bool:
        """RFC 2034 section 3: the greeting and HELO/EHLO replies carry none."""
        return self not in (Expect.GREETING, Expect.EHLO, Expect.HELO)


_FINAL = frozenset(range(200, 300)) | frozenset(range(400, 600))
# RFC 5321 section 4.3.2 and RFC 4954: only DATA may get 354, only AUTH may get 334,
# and DATA never gets a 2yz (there would be no way to tell whether to send the body).
ALLOWED: dict[Expect, frozenset[int]] = dict.fromkeys(Expect, _FINAL)
ALLOWED[Expect.DATA] = frozenset({354}) | frozenset(range(400, 600))
ALLOWED[Expect.AUTH] = frozenset({334}) | _FINAL


class Phase(Enum):
    """Where the client is; operations start only in READY."""

    GREETING = "waiting for the greeting"
    READY = "ready"
    BUSY = "an operation in progress"
    STARTTLS = "waiting for the TLS handshake"
    QUIT = "after QUIT"
    CLOSED = "closed"


class Channel:
    """Output buffer, awaited replies, queued events and the phase, shared by the parts."""

    def __init__(self) -> None:
        self.output = bytearray()
        # Output queued ahead of ``output``: bytes, and streams (a message body read
        # piece by piece by the driver's iterator, never held whole).
        self._ahead: deque[bytes | Iterator[bytes]] = deque()
        self.expected: deque[tuple[Expect, Handler]] = deque()
        self.events: deque[ClientEvent] = deque()
        self.phase = Phase.GREETING
        # Set while the handler of a 421 runs: whatever it would send next is dropped,
        # since the server is about to close (RFC 5321 section 3.8).
        self.closing = False

    def command(self, line: str, kind: Expect, handler: Handler) -> None:
        """Write one command line (already checked for CR/LF) and await its reply."""
        self.send(line.encode("utf-8") + b"\r\n", kind, handler)

    def send(self, data: bytes, kind: Expect, handler: Handler) -> None:
        """Write raw bytes that get one reply (a DATA body, a BDAT chunk)."""
        if self.closing:
            return
        self.output += data
        self.expected.append((kind, handler))

    def send_stream(self, pieces: Iterator[bytes], kind: Expect, handler: Handler) -> None:
        """Like :meth:`send` for bytes that come from ``pieces`` as the driver writes."""
        if self.closing:
            return
        if self.output:
            self._ahead.append(bytes(self.output))
            self.output.clear()
        self._ahead.append(pieces)
        self.expected.append((kind, handler))

    def take_output(self) -> bytes:
        """The next bytes to write, in order; ``b""`` when nothing is left.

        A stream gives one piece per call, so the driver calls this until it gets
        ``b""`` and writes (and drains) each piece before asking for the next.
        """
        while self._ahead:
            head = self._ahead[0]
            if isinstance(head, bytes):
                self._ahead.popleft()
                return head
            piece = next(head, None)
            if piece is None:
                self._ahead.popleft()
            elif piece:
                return piece
        out = bytes(self.output)
        self.output.clear()
        return out

    def drop_output(self) -> None:
        """Forget everything not yet written (the connection is gone)."""
        self._ahead.clear()
        self.output.clear()

    def emit(self, event: ClientEvent) -> None:
        self.events.append(event)

    def finish(self) -> None:
        """The running operation is over."""
        if self.phase is Phase.BUSY:
            self.phase = Phase.READY
