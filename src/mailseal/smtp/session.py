"""The mutable state of one SMTP server session and its output side (replies, events).

``SmtpServer`` (server.py) owns one ``Session``; the verb handlers (verbs.py) change it.
Two rules hold throughout, in the manner of h11's state module:

1. Only one request is outstanding at a time. While ``pending`` is set nothing else
   is parsed; ``answer()`` runs the continuation the handler registered.
2. Once ``closed`` is set every input is ignored; only already queued events and
   replies remain to be collected.

Error and junk counting follow Postfix's smtpd.c: every negative reply counts one
error (``smtpd_hard_error_limit``), a successfully queued message forgives them.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import Enum

from mailseal.smtp.content import (
    ChunkAssembler,
    ChunkReader,
    ContentSink,
    DataReader,
    SpillFactory,
)
from mailseal.smtp.events import (
    ConnectionClosing,
    EnvelopeRecipient,
    Event,
    Request,
    StartTlsRequest,
)
from mailseal.smtp.reply import Reply
from mailseal.smtp.settings import ServerSettings

__all__ = ["AnswerHandler", "BdatState", "Phase", "Session", "Transaction"]

AnswerHandler = Callable[[Reply | None], None]


class Phase(Enum):
    """What the next input bytes are."""

    COMMAND = "command"
    DATA = "data"  # message content after 354, up to the final dot
    BDAT = "bdat"  # the octets of one BDAT chunk (kept or skipped)
    AUTH = "auth"  # 334 sent: the next line is a SASL response (RFC 4954 section 4)
    STARTTLS = "starttls"  # 220 sent; no plaintext is read until tls_established()
    CLOSED = "closed"


class BdatState(Enum):
    """Where a BDAT sequence stands (Postfix's bdat_state)."""

    NONE = "none"
    ACTIVE = "active"  # chunks received, LAST not yet
    ERROR = "error"  # a chunk failed: the rest are read and discarded up to LAST


@dataclass
class Transaction:
    """A mail transaction from MAIL FROM to the end of the message (RFC 5321 section 3.3)."""

    sender: str
    params: dict[str, str]
    recipients: list[EnvelopeRecipient] = field(default_factory=list)

    @property
    def smtputf8(self) -> bool:
        return "SMTPUTF8" in self.params


class Session:
    """State of one session; see the module docstring for its two rules."""

    def __init__(self, settings: ServerSettings) -> None:
        self.settings = settings
        self.phase = Phase.COMMAND
        self.inbuf = bytearray()
        self.tls_active = settings.tls_active
        self.helo_name: str | None = None
        self.extended = False
        self.authenticated: str | None = None  # the SASL user name after 235
        self.auth_mechanism = ""  # of the exchange in progress or the one that succeeded
        self.transaction: Transaction | None = None
        self.bdat = BdatState.NONE
        self.assembler: ChunkAssembler | None = None
        self.reader: DataReader | ChunkReader | None = None
        self.on_read_done: Callable[[], None] | None = None
        self.line_crlf = True
        self.error_count = 0
        self.junk_count = 0
        self.ill_pipelining = False
        self.last_command = "CONNECT"
        self.current = ""
        self.counts: dict[str, list[int]] = {}
        self.output = bytearray()
        self.events: deque[Event] = deque()
        self.pending: Request | None = None
        self.on_answer: AnswerHandler | None = None
        self.closed = False
        self._enhanced = settings.enabled("ENHANCEDSTATUSCODES")
        self.spill: SpillFactory | None = None  # the driver's; see ContentSink

    def new_sink(self) -> ContentSink:
        """A sink for the next message's content, spilling through the driver's factory."""
        return ContentSink(self.settings.message_size_limit, self.spill)

    # Output.

    def send(self, reply: Reply) -> None:
        """Queue a reply; a 4xx/5xx counts as a client error, as in Postfix."""
        self.output += reply.encode(enhanced_codes=self._enhanced)
        if not reply.is_positive:
            self.error_count += 1

    def begin(self, name: str) -> None:
        """A command (lower-case name, or "unknown") starts: count it for the disconnect log."""
        self.counts.setdefault(name, [0, 0])[1] += 1
        self.current = name

    def complete(self, reply: Reply, name: str | None = None) -> None:
        """Send the final reply of the current (or named) command and count its success."""
        self.send(reply)
        if reply.is_positive:
            self.counts.setdefault(name or self.current, [0, 0])[0] += 1

    def notice(self, event: Event) -> None:
        self.events.append(event)

    def request(self, event: Request, on_answer: AnswerHandler) -> None:
        """Stop and ask the driver; ``on_answer`` receives its reply (``None`` = default)."""
        self.events.append(event)
        self.pending = event
        self.on_answer = on_answer

    def close(self, reason: str, reply: Reply | None = None) -> None:
        """Queue the final reply and ``ConnectionClosing``; nothing is read after this."""
        if reply is not None:
            self.send(reply)
        self.events.append(ConnectionClosing(reason))
        self.closed = True
        self.phase = Phase.CLOSED
        self.pending = None
        self.on_answer = None
        self.reader = None
        self.inbuf.clear()

    # State changes.

    def reset_transaction(self) -> None:
        """Forget the envelope and any BDAT sequence (RSET, EHLO, end of message)."""
        self.transaction = None
        self.bdat = BdatState.NONE
        self.assembler = None

    @property
    def in_transaction(self) -> bool:
        return self.transaction is not None or self.bdat is not BdatState.NONE

    def read_content(self, reader: DataReader | ChunkReader, on_done: Callable[[], None]) -> None:
        """Switch to reading message bytes; ``on_done`` runs once ``reader`` is finished."""
        self.phase = Phase.DATA if isinstance(reader, DataReader) else Phase.BDAT
        self.reader = reader
        self.on_read_done = on_done

    def start_tls(self) -> None:
        """STARTTLS accepted: throw away buffered plaintext (CVE-2011-0411) and wait."""
        discarded = bytes(self.inbuf)
        self.inbuf.clear()
        self.phase = Phase.STARTTLS
        self.notice(StartTlsRequest(discarded))

    def tls_started(self) -> None:
        """Handshake done: back to the state right after the greeting (RFC 3207 sec. 4.2)."""
        self.tls_active = True
        self.helo_name = None
        self.extended = False
        self.authenticated = None
        self.reset_transaction()
        self.inbuf.clear()
        self.phase = Phase.COMMAND
