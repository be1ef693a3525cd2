"""The ESMTP client as a sans-IO state machine: operations and replies in, bytes and events out.

Use::

    client = SmtpClient(ClientSettings(helo_name="mx.example.org"))
    while not client.ready:                 # the greeting; then after each operation
        client.receive_data(read())         # b"" when the server closed
        while (event := client.next_event()) is not None:
            ...                             # Greeting, Helo, MailFrom, RcptTo, ...
        write(client.data_to_send())
    client.ehlo()                           # then the same loop until ready again

One operation runs at a time (``ready`` says when another may start); each ends with
the events listed in :mod:`mailseal.smtp.client_events`. ``receive_data`` parses at
once, so the events and the next commands are there when it returns. No input can
make the client raise: a reply that breaks RFC 5321 becomes ``ProtocolError``, and a
421 or the end of the connection ``Closed``; after either the client is closed. Only
misuse by the driver raises ``SmtpClientUsageError``.

EHLO refused with anything but 421 falls back to HELO, as Postfix's smtp_helo() does.
After a 220 to STARTTLS the client reads nothing more in plaintext: any byte that
arrives before ``tls_established()`` is a protocol error (a server must not speak
first in TLS, and such bytes would be a command-injection attempt, RFC 3207 5).
``tls_established()`` forgets the capabilities (RFC 3207 section 4.2); the driver
sends EHLO again.

Limits: ``max_line_length`` (2048, Postfix's ``line_length_limit``, which its
smtp_chat_resp() applies to replies; RFC 5321 4.5.3.1.5 asks for 512 at least) and
``max_reply_lines`` (100); ``chunk_size`` for BDAT (64 KiB).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from mailseal.smtp.client_auth import AuthExchange, ClientMechanism
from mailseal.smtp.client_capabilities import Capabilities
from mailseal.smtp.client_channel import ALLOWED, Channel, Expect, Phase
from mailseal.smtp.client_content import CHUNK_SIZE, StreamedContent
from mailseal.smtp.client_events import (
    ClientEvent,
    Closed,
    Greeting,
    Helo,
    Noop,
    ProtocolError,
    Quit,
    Rset,
    SmtpClientUsageError,
    StartTls,
)
from mailseal.smtp.client_mail import MailTransaction
from mailseal.smtp.client_replies import MalformedReplyError, ReplyReader, printable
from mailseal.smtp.reply import Reply

__all__ = ["ClientMechanism", "ClientSettings", "Phase", "SmtpClient"]

_HELO_NAME = re.compile(r"[^\x00-\x20\x7f]+")


@dataclass(frozen=True)
class ClientSettings:
    """Per-session settings (``smtp_helo_name``; BDAT is mailseal's own choice)."""

    helo_name: str
    prefer_bdat: bool = False
    max_reply_lines: int = 100
    max_line_length: int = 2048
    chunk_size: int = CHUNK_SIZE

    def __post_init__(self) -> None:
        if not _HELO_NAME.fullmatch(self.helo_name):
            raise ValueError(f"bad HELO name: {self.helo_name!r}")
        # RFC 5321 section 4.5.3.1.5: a reply line may be 512 octets with its CRLF.
        if self.max_line_length < 510 or self.max_reply_lines < 1 or self.chunk_size < 1:
            raise ValueError("max_line_length >= 510, max_reply_lines and chunk_size >= 1")


class SmtpClient:
    """One client-side SMTP session (RFC 5321 with the extensions the server offers)."""

    def __init__(self, settings: ClientSettings) -> None:
        self._settings = settings
        self._ch = Channel()
        self._reader = ReplyReader(
            max_line_length=settings.max_line_length, max_lines=settings.max_reply_lines
        )
        self._inbuf = bytearray()
        self._caps = Capabilities()
        self._extended = False
        self._tls_active = False
        self._ch.expected.append((Expect.GREETING, self._on_greeting))

    # The facade.

    def receive_data(self, data: bytes) -> None:
        """Feed bytes from the server; ``b""`` means it closed the connection."""
        ch = self._ch
        if ch.phase is Phase.CLOSED:
            return
        if not data:
            self._close(Closed())
            return
        if ch.phase is Phase.STARTTLS:
            self._fail("unexpected plaintext after STARTTLS reply", printable(data))
            return
        self._inbuf += data
        self._process()

    def next_event(self) -> ClientEvent | None:
        """The next event, or None when there is none yet."""
        return self._ch.events.popleft() if self._ch.events else None

    def data_to_send(self) -> bytes:
        """Pop the next bytes to write to the server, in order (``b""``: none left).

        A streamed message body comes a piece at a time: call again until ``b""``.
        """
        return self._ch.take_output()

    def tls_established(self) -> None:
        """The handshake after STARTTLS succeeded: start afresh with EHLO (RFC 3207 4.2)."""
        if self._ch.phase is Phase.CLOSED:
            return
        if self._ch.phase is not Phase.STARTTLS:
            raise SmtpClientUsageError("tls_established() without an accepted STARTTLS")
        self._tls_active = True
        self._caps = Capabilities()
        self._extended = False
        self._ch.phase = Phase.READY

    # Operations.

    def ehlo(self) -> None:
        """EHLO, and HELO if the server refuses it; ends with ``Helo``."""
        self._begin("ehlo")
        self._ch.command(f"EHLO {self._settings.helo_name}", Expect.EHLO, self._on_ehlo)

    def helo(self) -> None:
        """HELO only (``smtp_never_send_ehlo``); ends with ``Helo(extended=False)``."""
        self._begin("helo")
        self._send_helo(None)

    def starttls(self) -> None:
        """STARTTLS; ends with ``StartTls``."""
        if self._tls_active:
            raise SmtpClientUsageError("starttls() when TLS is already active")
        self._begin("starttls")
        self._ch.command("STARTTLS", Expect.STARTTLS, self._on_starttls)

    def auth(self, mechanism: ClientMechanism) -> None:
        """AUTH with ``mechanism``; ends with ``Auth``."""
        exchange = AuthExchange(self._ch, mechanism)
        self._begin("auth")
        exchange.start()

    def send_mail(
        self,
        sender: str,
        recipients: Sequence[str],
        content: bytes | StreamedContent,
        *,
        sender_params: Mapping[str, str] | None = None,
        recipient_params: Sequence[Mapping[str, str]] | None = None,
    ) -> None:
        """One transaction; see :mod:`mailseal.smtp.client_events` for its events.

        Addresses are sent as given, between ``<>`` ("" is the null sender); params
        are ESMTP ``KEY=VALUE`` (value "" for a bare keyword). SIZE and BODY are the
        client's.
        """
        transaction = MailTransaction(
            self._ch,
            self._caps,
            prefer_bdat=self._settings.prefer_bdat,
            chunk_size=self._settings.chunk_size,
            sender=sender,
            recipients=recipients,
            content=content,
            sender_params=sender_params,
            recipient_params=recipient_params,
        )
        self._begin("send_mail")
        transaction.start()

    def rset(self) -> None:
        """RSET; ends with ``Rset``."""
        self._simple("RSET", Expect.RSET, Rset)

    def noop(self) -> None:
        """NOOP; ends with ``Noop``."""
        self._simple("NOOP", Expect.NOOP, Noop)

    def quit(self) -> None:
        """QUIT; ends with ``Quit``. Nothing but the server's close may follow."""
        self._begin("quit")
        self._ch.command("QUIT", Expect.QUIT, self._on_quit)

    # Read-only state.

    @property
    def ready(self) -> bool:
        """Whether an operation may start: greeted, none running, not closed."""
        return self._ch.phase is Phase.READY

    @property
    def phase(self) -> Phase:
        return self._ch.phase

    @property
    def closed(self) -> bool:
        return self._ch.phase is Phase.CLOSED

    @property
    def capabilities(self) -> Capabilities:
        """What the last EHLO announced; empty before, after HELO and after STARTTLS."""
        return self._caps

    @property
    def extended(self) -> bool:
        """Whether the session is ESMTP (the last greeting exchange was EHLO)."""
        return self._extended

    @property
    def tls_active(self) -> bool:
        return self._tls_active

    # The machine.

    def _begin(self, name: str) -> None:
        if self._ch.phase is not Phase.READY:
            raise SmtpClientUsageError(f"{name}() while {self._ch.phase.value}")
        self._ch.phase = Phase.BUSY

    def _simple(self, verb: str, kind: Expect, event: type[Rset | Noop]) -> None:
        self._begin(verb.lower())

        def on_reply(reply: Reply) -> None:
            self._ch.emit(event(reply))
            self._ch.finish()

        self._ch.command(verb, kind, on_reply)

    def _process(self) -> None:
        """Turn buffered bytes into replies and hand each to the command it answers."""
        ch = self._ch
        while self._inbuf and ch.phase is not Phase.CLOSED:
            # An expectation stays queued until its whole reply is read, so bytes with
            # none queued answer nothing: a reply out of step, or garbage.
            if not ch.expected:
                self._unexpected()
                return
            kind = ch.expected[0][0]
            enhanced = self._caps.enhanced_status_codes and kind.has_enhanced_code
            try:
                reply = self._reader.read(self._inbuf, enhanced=enhanced)
            except MalformedReplyError as exc:
                self._fail(exc.reason, exc.detail)
                return
            if reply is None:
                return
            self._dispatch(reply)

    def _dispatch(self, reply: Reply) -> None:
        ch = self._ch
        kind, handler = ch.expected.popleft()
        if reply.code not in ALLOWED[kind]:
            self._fail("unexpected reply code", f"{reply.text} (in reply to {kind.value})")
            return
        # RFC 5321 section 3.8: 421 means the server closes; nothing more is sent.
        ch.closing = reply.code == 421
        handler(reply)
        if ch.closing:
            self._close(Closed(reply))

    def _unexpected(self) -> None:
        """Bytes that answer no command: fail, naming the line they start."""
        if self._ch.phase is Phase.STARTTLS:
            # At once: these bytes must never reach the TLS layer.
            self._fail("unexpected plaintext after STARTTLS reply", printable(bytes(self._inbuf)))
            return
        line = bytes(self._inbuf).split(b"\n", 1)[0]
        if len(line) == len(self._inbuf) and len(line) <= self._settings.max_line_length:
            return  # wait for the whole line, so that the log shows it
        self._fail("unexpected data without a command", printable(line.removesuffix(b"\r")))

    def _fail(self, reason: str, detail: str) -> None:
        self._close(ProtocolError(reason, detail))

    def _close(self, event: ProtocolError | Closed) -> None:
        ch = self._ch
        ch.phase = Phase.CLOSED
        ch.expected.clear()
        ch.drop_output()
        self._inbuf.clear()
        ch.emit(event)

    # Reply handlers.

    def _on_greeting(self, reply: Reply) -> None:
        self._ch.emit(Greeting(reply))
        self._ch.phase = Phase.READY

    def _on_ehlo(self, reply: Reply) -> None:
        if reply.code // 100 == 2:
            self._caps = Capabilities.from_ehlo(reply)
            self._extended = True
            self._ch.emit(Helo(reply, extended=True, capabilities=self._caps))
            self._ch.finish()
        elif reply.code == 421:
            self._ch.emit(Helo(reply, extended=True, capabilities=Capabilities()))
            self._ch.finish()
        else:
            self._send_helo(reply)

    def _send_helo(self, refused_ehlo: Reply | None) -> None:
        def on_helo(reply: Reply) -> None:
            self._caps = Capabilities()
            self._extended = False
            self._ch.emit(Helo(reply, False, self._caps, refused_ehlo))
            self._ch.finish()

        self._ch.command(f"HELO {self._settings.helo_name}", Expect.HELO, on_helo)

    def _on_starttls(self, reply: Reply) -> None:
        self._ch.emit(StartTls(reply))
        self._ch.phase = Phase.STARTTLS if reply.code == 220 else Phase.READY

    def _on_quit(self, reply: Reply) -> None:
        self._ch.emit(Quit(reply))
        self._ch.phase = Phase.QUIT
