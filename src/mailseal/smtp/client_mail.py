"""One mail transaction of the SMTP client: MAIL, RCPT..., then DATA or BDAT.

With PIPELINING (RFC 2920) MAIL, every RCPT and DATA (or, with CHUNKING, every BDAT
chunk, RFC 3030 section 4.2) leave in one write and the replies are matched in
order; DATA stays a synchronisation point, the body follows its 354. Without it the
client waits for each reply before the next command and stops early: no RCPT after
a refused MAIL, no DATA/BDAT when no recipient was accepted, no further chunk after a
refused one.

What Postfix's smtp_loop() does and this does too: after a refused MAIL the other
pipelined replies are read and dropped; when every recipient was refused, a 354 to
the pipelined DATA is answered with a lone "." (RFC 2920 section 3.1) and the
reply to it dropped; RSET is not sent here (the driver decides). MAIL FROM carries
``SIZE=`` when the server offers SIZE and ``BODY=8BITMIME`` for 8-bit content when
it offers 8BITMIME or SMTPUTF8 (Postfix assumes 8BITMIME from SMTPUTF8, "Fix
20140706"). Parameters of an extension the server did not announce are left out,
as Postfix leaves out ENVID/RET/NOTIFY/ORCPT without DSN.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from functools import partial

from mailseal.smtp.client_capabilities import Capabilities
from mailseal.smtp.client_channel import Channel, Expect
from mailseal.smtp.client_content import (
    StreamedContent,
    bdat_chunks,
    dot_stuff,
    dot_stuff_stream,
    has_8bit,
    normalise,
)
from mailseal.smtp.client_events import (
    DataStart,
    MailFrom,
    MessageSent,
    RcptTo,
    SmtpClientUsageError,
)
from mailseal.smtp.reply import Reply

__all__ = ["MailTransaction", "size_exceeded"]

# Which extension each ESMTP parameter belongs to; others are sent as given.
_NEEDS = {
    "SMTPUTF8": "SMTPUTF8",
    "RET": "DSN",
    "ENVID": "DSN",
    "NOTIFY": "DSN",
    "ORCPT": "DSN",
    "AUTH": "AUTH",
    "REQUIRETLS": "REQUIRETLS",
}
_COMPUTED = frozenset({"SIZE", "BODY"})
_PARAM_KEY = re.compile(r"[A-Za-z0-9][A-Za-z0-9-]*")
# RFC 5321 esmtp-value: printable characters except "=" and SP (UTF-8 for SMTPUTF8).
_PARAM_VALUE = re.compile(r"[^\x00-\x20=\x7f]*")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def size_exceeded(size: int, limit: int) -> Reply:
    """The local reply for a message over the server's SIZE limit (Postfix's wording).

    Postfix says "message size N exceeds size limit M of server host[addr]"; the core
    does not know the peer's name, so the driver may add " of server ...".
    """
    return Reply(552, "5.3.4", (f"message size {size} exceeds size limit {limit}",))


class MailTransaction:
    """Sends one message; its handlers turn the replies into events."""

    def __init__(
        self,
        channel: Channel,
        caps: Capabilities,
        *,
        prefer_bdat: bool,
        chunk_size: int,
        sender: str,
        recipients: Sequence[str],
        content: bytes | StreamedContent,
        sender_params: Mapping[str, str] | None,
        recipient_params: Sequence[Mapping[str, str]] | None,
    ) -> None:
        if not recipients:
            raise SmtpClientUsageError("send_mail() needs at least one recipient")
        if recipient_params is not None and len(recipient_params) != len(recipients):
            raise SmtpClientUsageError("recipient_params needs one mapping per recipient")
        self._channel = channel
        self._caps = caps
        self._pipelined = caps.pipelining
        self._stream = content if isinstance(content, StreamedContent) else None
        self._body = normalise(content) if isinstance(content, bytes) else b""
        self._size = len(self._body) if self._stream is None else self._stream.size
        eight_bit = has_8bit(self._body) if self._stream is None else self._stream.eight_bit
        self._bdat = prefer_bdat and caps.chunking and self._stream is None
        self._chunk_size = chunk_size
        self._recipients = [_checked_address(r) for r in recipients]
        self._mail = self._mail_line(_checked_address(sender), eight_bit, sender_params or {})
        self._rcpts = [
            f"RCPT TO:<{r}>" + self._params((recipient_params or [{}] * len(recipients))[i])
            for i, r in enumerate(self._recipients)
        ]
        self._mail_ok = False
        self._accepted = 0
        self._chunks: list[bytes] = []
        self._chunk_failure: Reply | None = None

    def start(self) -> None:
        limit = self._caps.size
        if limit and self._size > limit:
            self._channel.emit(MessageSent(size_exceeded(self._size, limit), local=True))
            self._channel.finish()
            return
        self._channel.command(self._mail, Expect.MAIL, self._on_mail)
        if self._pipelined:
            for i in range(len(self._rcpts)):
                self._send_rcpt(i)
            self._send_body_start()

    # Building commands.

    def _mail_line(self, sender: str, eight_bit: bool, params: Mapping[str, str]) -> str:
        for key in params:
            if key.upper() in _COMPUTED:
                raise SmtpClientUsageError(f"{key} is set by the client, not by sender_params")
        line = f"MAIL FROM:<{sender}>"
        if self._caps.size is not None:
            line += f" SIZE={self._size}"
        if eight_bit and (self._caps.eightbitmime or self._caps.smtputf8):
            line += " BODY=8BITMIME"
        return line + self._params(params)

    def _params(self, params: Mapping[str, str]) -> str:
        out = ""
        for key, value in params.items():
            if not _PARAM_KEY.fullmatch(key) or not _PARAM_VALUE.fullmatch(value):
                raise SmtpClientUsageError(f"bad ESMTP parameter: {key!r}={value!r}")
            needs = _NEEDS.get(key.upper())
            if needs is not None and not self._caps.has(needs):
                continue
            out += f" {key}={value}" if value else f" {key}"
        return out

    # Sending and the reply handlers.

    @property
    def _live(self) -> bool:
        """MAIL accepted and at least one recipient: the message is worth sending."""
        return self._mail_ok and self._accepted > 0

    def _send_rcpt(self, index: int) -> None:
        self._channel.command(self._rcpts[index], Expect.RCPT, partial(self._on_rcpt, index))

    def _send_body_start(self) -> None:
        if not self._bdat:
            self._channel.command("DATA", Expect.DATA, self._on_data)
            return
        self._chunks = bdat_chunks(self._body, self._chunk_size)
        for i in range(len(self._chunks) if self._pipelined else 1):
            self._send_chunk(i)

    def _send_chunk(self, index: int) -> None:
        self._channel.send(self._chunks[index], Expect.BDAT, partial(self._on_chunk, index))

    def _on_mail(self, reply: Reply) -> None:
        self._mail_ok = reply.code // 100 == 2
        self._channel.emit(MailFrom(reply))
        if self._pipelined:
            return
        if self._mail_ok:
            self._send_rcpt(0)
        else:
            self._channel.finish()

    def _on_rcpt(self, index: int, reply: Reply) -> None:
        if self._mail_ok:
            self._channel.emit(RcptTo(index, self._recipients[index], reply))
            self._accepted += reply.code // 100 == 2
        if self._pipelined:
            return
        if index + 1 < len(self._rcpts):
            self._send_rcpt(index + 1)
        elif self._live:
            self._send_body_start()
        else:
            self._channel.finish()

    def _on_data(self, reply: Reply) -> None:
        if not self._live:
            # Only pipelined DATA gets here. A 354 needs an end of data all the same.
            if reply.code == 354:
                self._channel.send(b".\r\n", Expect.DOT, self._on_dropped)
            else:
                self._channel.finish()
            return
        self._channel.emit(DataStart(reply))
        if reply.code == 354:
            if self._stream is not None:
                body = dot_stuff_stream(self._stream.pieces())
                self._channel.send_stream(body, Expect.DOT, self._on_end)
            else:
                self._channel.send(dot_stuff(self._body), Expect.DOT, self._on_end)
        else:
            self._channel.finish()

    def _on_dropped(self, reply: Reply) -> None:
        self._channel.finish()

    def _on_end(self, reply: Reply) -> None:
        self._channel.emit(MessageSent(reply))
        self._channel.finish()

    def _on_chunk(self, index: int, reply: Reply) -> None:
        last = index == len(self._chunks) - 1
        failed = reply.code // 100 != 2
        if self._pipelined:
            # Every chunk is on its way already: the first refusal decides the message.
            if failed and self._chunk_failure is None:
                self._chunk_failure = reply
            if last:
                if self._live:
                    self._channel.emit(MessageSent(self._chunk_failure or reply))
                self._channel.finish()
            return
        if failed or last:
            self._channel.emit(MessageSent(reply))
            self._channel.finish()
        else:
            self._send_chunk(index + 1)


def _checked_address(address: str) -> str:
    # A CR or LF would end the command early and inject another (RFC 5321 section 4.1.2
    # has no control characters in a path).
    if _CONTROL.search(address) or "<" in address or ">" in address:
        raise SmtpClientUsageError(f"bad address for the SMTP envelope: {address!r}")
    return address
