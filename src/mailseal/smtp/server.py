"""The ESMTP server as a sans-IO state machine: bytes in, events and replies out.

Use::

    server = SmtpServer(settings)
    server.greet()
    send(server.data_to_send())
    while True:
        server.receive_data(read())            # b"" when the peer closed
        while (event := server.next_event()) is not None:
            ...                                 # answer requests with server.answer(...)
        send(server.data_to_send())

``next_event()`` returns ``None`` when it needs more bytes, while a request waits for
``answer()``, and once closed. No input can make it raise: every protocol error becomes
a reply (and, where Postfix hangs up, ``ConnectionClosing``). Only misuse by the driver
raises ``SmtpUsageError``.

Command lines longer than ``line_length_limit`` (Postfix's ``line_length_limit``, 2048;
RFC 5321 section 4.5.3.1.4 requires at least 512 with CRLF) are refused whole with
``500 5.5.2 Error: command too long``, never truncated and run. A NUL or other control
character (except TAB) in a command line gets ``500 5.5.2 Error: bad syntax``; bytes
that are not UTF-8 get ``500 5.5.2 Error: bad UTF-8 syntax`` (Postfix's replies).
"""

from __future__ import annotations

import base64
import re

from mailseal.smtp import reply as replies
from mailseal.smtp.commands import execute
from mailseal.smtp.content import ChunkReader, DataReader, Outcome, SpillFactory
from mailseal.smtp.events import (
    AuthAborted,
    AuthRequest,
    AuthResponse,
    DataRequest,
    Event,
    MessageComplete,
    ProtocolViolation,
    Request,
    SmtpUsageError,
)
from mailseal.smtp.reply import Reply
from mailseal.smtp.session import Phase, Session
from mailseal.smtp.settings import ServerSettings
from mailseal.smtp.verbs import auth_answered, decode_response

__all__ = ["Phase", "ServerSettings", "SmtpServer"]

# Control characters but TAB, and DEL: one C-level scan of a command line.
_CONTROL = re.compile(rb"[\x00-\x08\x0a-\x1f\x7f]")


class SmtpServer:
    """One server-side SMTP session (RFC 5321 with the extensions in settings)."""

    def __init__(self, settings: ServerSettings) -> None:
        self._s = Session(settings)
        self._greeted = False
        self._eof = False
        self._skipping_long_line = False

    # The facade.

    def greet(self) -> None:
        """Queue the ``220`` greeting with ``smtpd_banner``."""
        if self._greeted:
            raise SmtpUsageError("greet() called twice")
        self._greeted = True
        denied = self._s.settings.access_denied
        if denied is not None:
            self._s.send(denied)
            self._s.error_count += 1
            return
        self._s.send(replies.greeting(self._s.settings.banner))

    def receive_data(self, data: bytes) -> None:
        """Feed bytes from the client; ``b""`` means it closed its side (EOF)."""
        s = self._s
        if not data:
            self._eof = True
        elif not s.closed and s.phase is not Phase.STARTTLS:
            # Plaintext after STARTTLS is never read: the TLS layer owns the bytes now.
            s.inbuf += data

    def next_event(self) -> Event | None:
        """The next event, or ``None``: need more data, waiting for ``answer()``, or closed."""
        s = self._s
        while True:
            if s.events:
                return s.events.popleft()
            if s.closed or s.pending is not None:
                return None
            if self._step():
                continue
            if not self._eof:
                return None
            s.close("lost connection")

    def spill_to(self, factory: SpillFactory | None) -> None:
        """Content past SPILL_THRESHOLD bytes goes to spills made by ``factory`` (a file)."""
        self._s.spill = factory

    def answer(self, reply: Reply | None = None) -> None:
        """Answer the pending request; ``None`` is its default positive reply."""
        s = self._s
        if s.closed:
            return
        pending, on_answer = s.pending, s.on_answer
        if pending is None or on_answer is None:
            raise SmtpUsageError("answer() without a pending request")
        _check_answer(pending, reply)
        s.pending = s.on_answer = None
        on_answer(reply)

    def auth_challenge(self, data: bytes) -> None:
        """Answer the pending AUTH request or response with ``334 base64(data)``."""
        s = self._s
        if s.closed:
            return
        self._take_auth_request()
        s.send(replies.challenge(base64.b64encode(data).decode("ascii")))
        s.phase = Phase.AUTH

    def auth_success(self, username: str) -> None:
        """Answer the pending AUTH request or response: ``235``, the session is authenticated."""
        s = self._s
        if s.closed:
            return
        self._take_auth_request()
        s.authenticated = username
        s.phase = Phase.COMMAND
        s.complete(replies.AUTH_SUCCESSFUL, "auth")

    def _take_auth_request(self) -> None:
        s = self._s
        if not isinstance(s.pending, AuthRequest | AuthResponse):
            raise SmtpUsageError("no AUTH request or response is pending")
        s.pending = s.on_answer = None

    def data_to_send(self) -> bytes:
        """Pop the replies queued so far, in order."""
        out = bytes(self._s.output)
        self._s.output.clear()
        return out

    def tls_established(self) -> None:
        """The STARTTLS handshake succeeded: session state starts afresh (RFC 3207 4.2)."""
        s = self._s
        if s.closed:
            return
        if s.phase is not Phase.STARTTLS:
            raise SmtpUsageError("tls_established() without an accepted STARTTLS")
        s.tls_started()

    def timeout(self) -> None:
        """The driver's read deadline passed (``smtpd_timeout``)."""
        if not self._s.closed:
            self._s.close("timeout", replies.timeout(self._s.settings.hostname))

    def shutdown(self) -> None:
        """The server is going down: say so and close."""
        if not self._s.closed:
            self._s.close("shutdown", replies.shutting_down(self._s.settings.hostname))

    # Read-only state.

    @property
    def tls_active(self) -> bool:
        return self._s.tls_active

    @property
    def helo_name(self) -> str | None:
        return self._s.helo_name

    @property
    def extended(self) -> bool:
        return self._s.extended

    @property
    def error_count(self) -> int:
        return self._s.error_count

    @property
    def authenticated(self) -> str | None:
        """The SASL user name once AUTH succeeded (reset by STARTTLS), else ``None``."""
        return self._s.authenticated

    @property
    def auth_mechanism(self) -> str:
        """The mechanism of the current or last AUTH exchange ("" before any)."""
        return self._s.auth_mechanism

    @property
    def closed(self) -> bool:
        return self._s.closed

    @property
    def pending(self) -> Request | None:
        return self._s.pending

    @property
    def phase(self) -> Phase:
        return self._s.phase

    @property
    def last_command(self) -> str:
        """Postfix's "where": CONNECT, the last verb, UNKNOWN, or END-OF-MESSAGE."""
        return self._s.last_command

    @property
    def last_command_detail(self) -> str:
        """``last_command``, or ``DATA (N bytes)`` / ``BDAT (N bytes)`` while reading content."""
        s = self._s
        if isinstance(s.reader, DataReader):
            return f"DATA ({s.reader.raw_size + len(s.inbuf)} bytes)"
        if isinstance(s.reader, ChunkReader):
            return f"BDAT ({s.reader.size - s.reader.remaining + len(s.inbuf)} bytes)"
        return s.last_command

    def command_counts(self) -> list[tuple[str, int, int]]:
        """``[(name, ok, total)]`` in first-use order, for Postfix's disconnect line."""
        return [(name, ok, total) for name, (ok, total) in self._s.counts.items()]

    # The machine.

    def _step(self) -> bool:
        """Make progress on buffered input; ``False`` when more bytes are needed."""
        phase = self._s.phase
        if phase is Phase.COMMAND:
            return self._command_step()
        if phase is Phase.AUTH:
            return self._auth_step()
        if phase in (Phase.DATA, Phase.BDAT):
            return self._content_step()
        return False

    def _command_step(self) -> bool:
        s = self._s
        st = s.settings
        # Postfix checks the hard limit before reading each command.
        if s.error_count >= st.hard_error_limit:
            s.close("too many errors", replies.too_many_errors(st.hostname))
            return True
        line = self._take_line(st.line_length_limit)
        if line is None:
            return False
        if self._skipping_long_line:
            self._skipping_long_line = False
            self._too_long()
        elif len(line) > st.line_length_limit:
            self._too_long()
        elif not s.line_crlf and st.rejects_bare_newline:
            self._bare_newline(line)
        else:
            self._command_line(line)
        return True

    def _auth_step(self) -> bool:
        """One SASL response line (RFC 4954 section 4): "*" cancels, else base64."""
        s = self._s
        limit = s.settings.auth_response_limit
        line = self._take_line(limit)
        if line is None:
            return False
        mechanism = s.auth_mechanism
        s.phase = Phase.COMMAND
        if self._skipping_long_line or len(line) > limit:
            self._skipping_long_line = False
            s.notice(AuthAborted(mechanism, "SASL response limit exceeded"))
            s.complete(replies.SASL_RESPONSE_LIMIT, "auth")
        elif line == b"*":
            s.notice(AuthAborted(mechanism, ""))
            s.complete(replies.AUTH_ABORTED, "auth")
        else:
            response = decode_response(line.decode("latin-1"), initial=False)
            if response is None:
                s.notice(AuthAborted(mechanism, "Invalid base64 data in continued response"))
                s.complete(replies.bad_base64("continued"), "auth")
            else:
                s.request(AuthResponse(mechanism, response), lambda a: auth_answered(s, a))
        return True

    def _take_line(self, limit: int) -> bytes | None:
        """The next line without its ending (sets ``line_crlf``); ``None`` for more data."""
        s = self._s
        buf = s.inbuf
        lf = buf.find(b"\n")
        if lf < 0:
            # An over-long line is dropped as it comes; its reply waits for its end.
            if len(buf) > limit + 1:
                self._skipping_long_line = True
                buf.clear()
            return None
        line = bytes(buf[:lf])
        del buf[: lf + 1]
        s.line_crlf = line.endswith(b"\r")
        return line[:-1] if s.line_crlf else line

    def _too_long(self) -> None:
        limit = self._s.settings.line_length_limit
        self._s.notice(ProtocolViolation("command too long", f"longer than {limit} bytes"))
        self._s.send(replies.COMMAND_TOO_LONG)

    def _bare_newline(self, raw: bytes) -> None:
        # smtpd_forbid_bare_newline = reject: reply and disconnect (Postfix 3.9).
        st = self._s.settings
        self._s.notice(ProtocolViolation("bare <LF> received", _printable(raw)))
        self._s.close(
            "bare <LF> received", replies.bare_newline(st.bare_newline_reject_code, st.hostname)
        )

    def _command_line(self, raw: bytes) -> None:
        s = self._s
        if b"\x00" in raw:
            s.notice(ProtocolViolation("NUL character in command", _printable(raw)))
            s.send(replies.BAD_SYNTAX)
            return
        if _CONTROL.search(raw):
            s.send(replies.BAD_SYNTAX)
            return
        try:
            line = raw.decode("utf-8")
        except UnicodeDecodeError:
            s.send(replies.BAD_UTF8)
            return
        execute(s, line)

    def _content_step(self) -> bool:
        s = self._s
        reader = s.reader
        assert reader is not None  # phase DATA/BDAT always has a reader
        outcome = reader.feed(s.inbuf)
        if outcome is Outcome.BARE_LF:
            s.reader = None
            self._bare_newline(b"(in message content)")
            return True
        if outcome is Outcome.NEED_MORE:
            return False
        on_done = s.on_read_done
        s.reader = s.on_read_done = None
        s.phase = Phase.COMMAND
        assert on_done is not None
        on_done()
        return True


def _check_answer(pending: Request, reply: Reply | None) -> None:
    """Refuse answers that cannot be meant (SmtpUsageError), before state changes."""
    if reply is not None and not isinstance(reply, Reply):
        raise SmtpUsageError(f"answer() takes a Reply or None, not {type(reply).__name__}")
    if isinstance(pending, MessageComplete) and reply is None:
        raise SmtpUsageError("MessageComplete needs an explicit reply (queued(id) or an error)")
    if isinstance(pending, AuthRequest | AuthResponse) and (reply is None or reply.is_positive):
        raise SmtpUsageError("answer AUTH with auth_challenge()/auth_success() or a failure reply")
    if (
        isinstance(pending, DataRequest)
        and not pending.chunking
        and reply is not None
        and reply.is_positive
        and reply.code != 354
    ):
        raise SmtpUsageError("a positive answer to DATA must be a 354 reply")


def _printable(raw: bytes) -> str:
    return raw[:100].decode("ascii", "backslashreplace")
