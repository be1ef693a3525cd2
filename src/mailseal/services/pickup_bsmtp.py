"""``sendmail -bs``: an SMTP session on standard input and output, queued through maildrop/.

Postfix runs ``smtpd -S`` (stand-alone mode) for ``sendmail -bs``: the dialogue
of an SMTP server with the local user on stdin/stdout, relaying and other
access controls off, each message posted like ``sendmail`` posts one (so it
reaches the queue through pickup). Here the sans-IO server core
(:class:`mailseal.smtp.server.SmtpServer`) is driven with blocking reads: MAIL,
RCPT, DATA and VRFY are accepted as the core parses them; a complete message
is handed to ``submit`` (which writes the maildrop file) before ``250 ... queued
as NAME`` goes out. No STARTTLS and no AUTH: the user is already known by uid.

Reads (through :func:`stdio_settings`): myhostname, smtpd_banner,
line_length_limit, message_size_limit, smtpd_recipient_limit,
smtpd_hard_error_limit, smtputf8_enable.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from mailseal.config.model import Config
from mailseal.smtp import events as ev
from mailseal.smtp.reply import QUEUE_WRITE_ERROR, Reply, queued
from mailseal.smtp.server import ServerSettings, SmtpServer

__all__ = ["StdioMessage", "serve_stdio", "stdio_settings"]


@dataclass(frozen=True)
class StdioMessage:
    """One message of the session: envelope values as received, content in CRLF form."""

    sender: str
    recipients: tuple[str, ...]
    notify: tuple[str, ...]  # NOTIFY= of each recipient ("" when absent)
    envid: str
    body: str
    content: bytes


def stdio_settings(config: Config) -> ServerSettings:
    """The core's settings for a local session: no TLS, no AUTH, pipelining allowed."""
    return ServerSettings(
        hostname=config.myhostname,
        banner=config.smtpd_banner,
        line_length_limit=config.line_length_limit,
        message_size_limit=config.message_size_limit,
        recipient_limit=config.smtpd_recipient_limit,
        hard_error_limit=config.smtpd_hard_error_limit,
        smtputf8=config.smtputf8_enable,
        # The local user is not a spam bot that talks before its turn.
        forbid_unauth_pipelining=False,
    )


def serve_stdio(
    settings: ServerSettings,
    read: Callable[[], bytes],
    write: Callable[[bytes], None],
    submit: Callable[[StdioMessage], str],
) -> None:
    """Run one session until QUIT or end of input.

    ``read`` returns the next bytes (``b""`` at the end), ``write`` sends replies,
    ``submit`` stores a message and returns the name to report, raising
    ``OSError`` when it cannot (the client is told ``451``, nothing is lost).
    """
    core = SmtpServer(settings)
    core.greet()
    while True:
        while (event := core.next_event()) is not None:
            if isinstance(event, ev.ConnectionClosing):
                write(core.data_to_send())
                return
            if core.pending is event:
                core.answer(_answer(event, submit))
        write(core.data_to_send())
        if core.closed:
            return
        core.receive_data(read())


def _answer(event: ev.Event, submit: Callable[[StdioMessage], str]) -> Reply | None:
    """Stand-alone mode decides nothing: every request gets its default answer."""
    if not isinstance(event, ev.MessageComplete):
        return None
    envelope = event.envelope
    message = StdioMessage(
        sender=envelope.sender,
        recipients=tuple(r.address for r in envelope.recipients),
        notify=tuple(r.params.get("NOTIFY", "") for r in envelope.recipients),
        envid=envelope.sender_params.get("ENVID", ""),
        body=envelope.sender_params.get("BODY", ""),
        content=event.content,
    )
    try:
        return queued(submit(message))
    except OSError:
        return QUEUE_WRITE_ERROR
