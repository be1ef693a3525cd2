"""SMTP replies as values, with Postfix's exact wording for every reply the server core sends.

A reply is a code (RFC 5321 section 4.2), an optional enhanced status code (RFC 3463,
announced with ENHANCEDSTATUSCODES, RFC 2034) and one or more text lines. RFC 2034
section 3 exempts the greeting and the HELO/EHLO replies from carrying an enhanced code,
and so does Postfix: those replies have ``enhanced == ""``.

The texts below are the ones Postfix 3.9's smtpd(8) sends (``smtpd.c``,
``smtpd_check.c``, ``cleanup_stat.c``); where Postfix has no wording for a case that
mailseal handles (a NUL byte in the content, an over-long command line, shutdown),
the text is ours and says so.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

__all__ = [
    "ALREADY_AUTHENTICATED",
    "AUTH_ABORTED",
    "AUTH_DISABLED",
    "AUTH_NEEDS_ENCRYPTION",
    "AUTH_NOT_ENABLED",
    "AUTH_SUCCESSFUL",
    "AUTH_SYNTAX",
    "BAD_AUTH",
    "BAD_ENVID",
    "BAD_MESSAGE_SIZE",
    "BAD_NOTIFY",
    "BAD_ORCPT",
    "BAD_RCPT_ADDRESS",
    "BAD_RET",
    "BAD_SENDER_ADDRESS",
    "BAD_SYNTAX",
    "BAD_UTF8",
    "BDAT_NOT_IMPLEMENTED",
    "BDAT_SYNTAX",
    "BYE",
    "CHUNK_TOO_BIG",
    "COMMAND_NOT_RECOGNIZED",
    "COMMAND_TOO_LONG",
    "DATA_AFTER_BDAT",
    "DATA_SYNTAX",
    "DSN_DISABLED",
    "EHLO_SYNTAX",
    "HELO_SYNTAX",
    "INSUFFICIENT_STORAGE",
    "INVALID_MECHANISM",
    "MAIL_AFTER_BDAT",
    "MAIL_SYNTAX",
    "MESSAGE_TOO_BIG",
    "MULTIPLE_AUTH",
    "MUST_STARTTLS",
    "NEED_HELO",
    "NEED_MAIL",
    "NEED_RCPT",
    "NESTED_MAIL",
    "NON_SMTP_COMMAND",
    "NOT_IMPLEMENTED",
    "NO_VALID_RECIPIENTS",
    "NULL_BDAT",
    "NUL_IN_CONTENT",
    "OK",
    "OK_MAIL",
    "OK_RCPT",
    "PROTOCOL_SYNC",
    "QUEUE_WRITE_ERROR",
    "RCPT_AFTER_BDAT",
    "RCPT_SYNTAX",
    "READY_TO_START_TLS",
    "RSET_SYNTAX",
    "SASL_RESPONSE_LIMIT",
    "SIZE_EXCEEDED",
    "SMTPUTF8_REQUIRED",
    "STARTTLS_SYNTAX",
    "START_MAIL_INPUT",
    "TLS_ALREADY_ACTIVE",
    "TLS_UNAVAILABLE",
    "TOO_MANY_RECIPIENTS",
    "TRANSACTION_IN_PROGRESS",
    "VRFY_DISABLED",
    "RemoteProtocolError",
    "Reply",
    "access_denied",
    "auth_failed",
    "auth_rate_limited",
    "auth_temporary_failure",
    "bad_base64",
    "bare_newline",
    "challenge",
    "chunk_ok",
    "discarded_after_error",
    "greeting",
    "queued",
    "queued_bytes",
    "relay_denied",
    "reply",
    "service_unavailable",
    "shutting_down",
    "timeout",
    "too_many_errors",
    "unsupported_option",
    "user_unknown",
    "vrfy_syntax",
    "vrfy_unverified",
]

# RFC 3463 section 2: class.subject.detail; class is 2, 4 or 5.
_ENHANCED = re.compile(r"[245]\.\d{1,3}\.\d{1,3}")


@dataclass(frozen=True, slots=True)
class Reply:
    """One SMTP reply: ``code``, RFC 3463 ``enhanced`` code ("" for none) and text ``lines``."""

    code: int
    enhanced: str
    lines: tuple[str, ...]

    def __post_init__(self) -> None:
        # A reply is built by us or by the driver; a bad one is a programming error, and
        # a CR or LF in a line would let text split into an extra reply (reply injection).
        if not 200 <= self.code <= 599:
            raise ValueError(f"SMTP reply code out of range: {self.code}")
        if self.enhanced and not _ENHANCED.fullmatch(self.enhanced):
            raise ValueError(f"malformed enhanced status code: {self.enhanced!r}")
        if self.enhanced and self.enhanced[0] != str(self.code)[0]:
            raise ValueError(f"enhanced code {self.enhanced} does not match class of {self.code}")
        if not self.lines:
            raise ValueError("an SMTP reply needs at least one line")
        for line in self.lines:
            if "\r" in line or "\n" in line:
                raise ValueError(f"reply line contains CR or LF: {line!r}")

    def encode(self, *, enhanced_codes: bool = True) -> bytes:
        """The reply on the wire; the enhanced code is repeated on every line (RFC 2034 sec. 4).

        ``enhanced_codes=False`` drops it, as Postfix does when ENHANCEDSTATUSCODES is
        removed with ``smtpd_discard_ehlo_keywords``.
        """
        prefix = f"{self.enhanced} " if self.enhanced and enhanced_codes else ""
        last = len(self.lines) - 1
        out = []
        for i, line in enumerate(self.lines):
            sep = " " if i == last else "-"
            text = f"{prefix}{line}".rstrip(" ")
            out.append(f"{self.code}{sep}{text}\r\n" if text else f"{self.code}{sep}\r\n")
        return "".join(out).encode("utf-8")

    @property
    def text(self) -> str:
        """One-line form for logs: ``554 5.7.1 <x@y>: Relay access denied``."""
        prefix = f"{self.code} {self.enhanced} " if self.enhanced else f"{self.code} "
        return prefix + "; ".join(self.lines)

    @property
    def is_positive(self) -> bool:
        """2xx or 3xx (RFC 5321 section 4.2.1)."""
        return self.code < 400


def reply(code: int, enhanced: str, *lines: str) -> Reply:
    """Build a reply; ``reply(250, "2.1.0", "Ok")``."""
    return Reply(code, enhanced, tuple(lines) or ("",))


def greeting(banner: str) -> Reply:
    """``220 <smtpd_banner>``; a banner containing newlines becomes a multi-line reply."""
    return Reply(220, "", tuple(banner.split("\n")))


# Positive replies (smtpd.c).
OK = reply(250, "2.0.0", "Ok")
OK_MAIL = reply(250, "2.1.0", "Ok")
OK_RCPT = reply(250, "2.1.5", "Ok")
START_MAIL_INPUT = reply(354, "", "End data with <CR><LF>.<CR><LF>")
READY_TO_START_TLS = reply(220, "2.0.0", "Ready to start TLS")
BYE = reply(221, "2.0.0", "Bye")


def queued(queue_id: str) -> Reply:
    """``250 2.0.0 Ok: queued as ID``: the end-of-DATA acknowledgement."""
    return reply(250, "2.0.0", f"Ok: queued as {queue_id}")


def queued_bytes(size: int, queue_id: str) -> Reply:
    """``250 2.0.0 Ok: N bytes queued as ID``: Postfix's acknowledgement of BDAT LAST."""
    return reply(250, "2.0.0", f"Ok: {size} bytes queued as {queue_id}")


def chunk_ok(size: int) -> Reply:
    """``250 2.0.0 Ok: N bytes``: an intermediate BDAT chunk was received."""
    return reply(250, "2.0.0", f"Ok: {size} bytes")


def vrfy_unverified(argument: str) -> Reply:
    """``252 2.0.0 ARG``: Postfix's answer to VRFY when nothing rejects the address."""
    return reply(252, "2.0.0", argument)


# Command syntax (RFC 5321 section 4.1.1; texts from smtpd.c).
BAD_SYNTAX = reply(500, "5.5.2", "Error: bad syntax")
BAD_UTF8 = reply(500, "5.5.2", "Error: bad UTF-8 syntax")
COMMAND_NOT_RECOGNIZED = reply(500, "5.5.2", "Error: command not recognized")
# Ours: Postfix chops long lines; we refuse the whole line rather than run a truncated one.
COMMAND_TOO_LONG = reply(500, "5.5.2", "Error: command too long")
EHLO_SYNTAX = reply(501, "", "Syntax: EHLO hostname")
HELO_SYNTAX = reply(501, "", "Syntax: HELO hostname")
MAIL_SYNTAX = reply(501, "5.5.4", "Syntax: MAIL FROM:<address>")
RCPT_SYNTAX = reply(501, "5.5.4", "Syntax: RCPT TO:<address>")
DATA_SYNTAX = reply(501, "5.5.4", "Syntax: DATA")
RSET_SYNTAX = reply(501, "5.5.4", "Syntax: RSET")
STARTTLS_SYNTAX = reply(501, "5.5.4", "Syntax: STARTTLS")
BDAT_SYNTAX = reply(521, "5.5.4", "Syntax: BDAT count [LAST]")
BAD_SENDER_ADDRESS = reply(501, "5.1.7", "Bad sender address syntax")
BAD_RCPT_ADDRESS = reply(501, "5.1.3", "Bad recipient address syntax")
BAD_MESSAGE_SIZE = reply(501, "5.5.4", "Bad message size syntax")
BAD_RET = reply(501, "5.5.4", "Bad RET parameter syntax")
BAD_ENVID = reply(501, "5.5.4", "Bad ENVID parameter syntax")
BAD_NOTIFY = reply(501, "5.5.4", "Error: Bad NOTIFY parameter syntax")
BAD_ORCPT = reply(501, "5.5.4", "Error: Bad ORCPT parameter syntax")
DSN_DISABLED = reply(501, "5.7.1", "DSN support is disabled")
MULTIPLE_AUTH = reply(503, "5.5.4", "Error: multiple AUTH= options")
SMTPUTF8_REQUIRED = reply(553, "5.6.7", "Must declare SMTPUTF8 to send unicode address")


def vrfy_syntax(smtputf8: bool) -> Reply:
    """``501 5.5.4 Syntax: VRFY address`` (Postfix adds `` [SMTPUTF8]`` when it offers it)."""
    return reply(501, "5.5.4", "Syntax: VRFY address" + (" [SMTPUTF8]" if smtputf8 else ""))


def unsupported_option(parameter: str) -> Reply:
    """``555 5.5.4 Unsupported option: KEY=VALUE`` (RFC 5321 section 4.1.1.11; Postfix)."""
    return reply(555, "5.5.4", f"Unsupported option: {parameter}")


# Command sequence (RFC 5321 section 4.1.4).
NEED_HELO = reply(503, "5.5.1", "Error: send HELO/EHLO first")
NESTED_MAIL = reply(503, "5.5.1", "Error: nested MAIL command")
NEED_MAIL = reply(503, "5.5.1", "Error: need MAIL command")
NEED_RCPT = reply(503, "5.5.1", "Error: need RCPT command")
NO_VALID_RECIPIENTS = reply(554, "5.5.1", "Error: no valid recipients")
TRANSACTION_IN_PROGRESS = reply(503, "5.5.1", "Error: MAIL transaction in progress")
MAIL_AFTER_BDAT = reply(503, "5.5.1", "Error: MAIL after BDAT")
RCPT_AFTER_BDAT = reply(503, "5.5.1", "Error: RCPT after BDAT")
DATA_AFTER_BDAT = reply(503, "5.5.1", "Error: DATA after BDAT")
NULL_BDAT = reply(551, "5.7.1", "Null BDAT request")
TOO_MANY_RECIPIENTS = reply(452, "4.5.3", "Error: too many recipients")
NOT_IMPLEMENTED = reply(502, "5.5.1", "Error: command not implemented")
# 521: Postfix hangs up, since it cannot skip the chunk of a BDAT it does not take.
BDAT_NOT_IMPLEMENTED = reply(521, "5.5.1", "Error: command not implemented")
VRFY_DISABLED = reply(502, "5.5.1", "VRFY command is disabled")
AUTH_NOT_ENABLED = reply(503, "5.5.1", "Error: authentication not enabled")

# SMTP AUTH (RFC 4954; Postfix's smtpd_sasl_proto.c and smtpd_sasl_glue.c).
AUTH_SYNTAX = reply(501, "5.5.4", "Syntax: AUTH mechanism")
AUTH_NEEDS_ENCRYPTION = reply(
    504, "5.5.4", "Encryption required for requested authentication mechanism"
)
ALREADY_AUTHENTICATED = reply(503, "5.5.1", "Error: already authenticated")
AUTH_DISABLED = reply(503, "5.5.4", "Error: authentication disabled")
AUTH_ABORTED = reply(501, "5.7.0", "Authentication aborted")
AUTH_SUCCESSFUL = reply(235, "2.7.0", "Authentication successful")
SASL_RESPONSE_LIMIT = reply(500, "5.5.6", "SASL response limit exceeded")
INVALID_MECHANISM = "Invalid authentication mechanism"


def auth_failed(reason: str) -> Reply:
    """``535 5.7.8 Error: authentication failed: REASON`` (the password was wrong...)."""
    return reply(535, "5.7.8", f"Error: authentication failed: {reason}")


def auth_temporary_failure(reason: str) -> Reply:
    """``454 4.7.0``: the backend could not decide (RFC 4954 section 6)."""
    return reply(454, "4.7.0", f"Temporary authentication failure: {reason}")


def bad_base64(where: str) -> Reply:
    """A response that is not base64: RFC 4954 section 4 asks for 501 with 5.5.2.

    ``where`` is "initial" or "continued"; the words are those Postfix's Dovecot client
    logs ("Invalid base64 data in initial response").
    """
    return reply(501, "5.5.2", f"Error: Invalid base64 data in {where} response")


def auth_rate_limited(addr: str) -> Reply:
    """smtpd_client_auth_rate_limit exceeded (anvil), Postfix's text."""
    return reply(450, "4.7.1", f"Error: too many AUTH commands from {addr}")


def challenge(data: str) -> Reply:
    """``334 <base64>``: a SASL server challenge (no enhanced code, RFC 4954 section 4)."""
    return Reply(334, "", (data,))


# TLS (RFC 3207; smtpd.c).
TLS_UNAVAILABLE = reply(454, "4.7.0", "TLS not available due to local problem")
MUST_STARTTLS = reply(530, "5.7.0", "Must issue a STARTTLS command first")
TLS_ALREADY_ACTIVE = reply(554, "5.5.1", "Error: TLS already active")

# Sizes (RFC 1870; "Message size exceeds fixed limit" is smtpd_check_size at MAIL time,
# "message file too big" is cleanup's CLEANUP_STAT_SIZE detail after the data).
SIZE_EXCEEDED = reply(552, "5.3.4", "Message size exceeds fixed limit")
MESSAGE_TOO_BIG = reply(552, "5.3.4", "Error: message file too big")
CHUNK_TOO_BIG = reply(552, "5.3.4", "Chunk exceeds message size limit")
INSUFFICIENT_STORAGE = reply(452, "4.3.1", "Insufficient system storage")
QUEUE_WRITE_ERROR = reply(451, "4.3.0", "Error: queue file write error")


def access_denied(client: str) -> Reply:
    """Every command but QUIT after the client restrictions refused at connect."""
    return reply(503, "5.7.0", f"Error: access denied for {client}")


# Ours: Postfix stores NUL bytes; we refuse the message instead of keeping them silently.
NUL_IN_CONTENT = reply(550, "5.6.0", "Error: message content contains a NUL character")


def discarded_after_error(size: int) -> Reply:
    """``551 5.0.0 Discarded N bytes after earlier error``: BDAT after a failed BDAT."""
    return reply(551, "5.0.0", f"Discarded {size} bytes after earlier error")


# Protocol abuse: smtpd_forbid_unauth_pipelining, smtpd_forbid_bare_newline, smtpd_forbid_cmds.
PROTOCOL_SYNC = reply(554, "5.5.0", "Error: SMTP protocol synchronization")
NON_SMTP_COMMAND = reply(221, "2.7.0", "Error: I can break rules, too. Goodbye.")


def bare_newline(code: int, hostname: str) -> Reply:
    """``550 5.5.2 HOST Error: bare <LF> received``; code from ..._reject_code."""
    return reply(code, f"{str(code)[0]}.5.2", f"{hostname} Error: bare <LF> received")


# Disconnects.
def too_many_errors(hostname: str) -> Reply:
    """``421 4.7.0 HOST Error: too many errors`` (smtpd_hard_error_limit)."""
    return reply(421, "4.7.0", f"{hostname} Error: too many errors")


def timeout(hostname: str) -> Reply:
    """``421 4.4.2 HOST Error: timeout exceeded`` (smtpd_timeout)."""
    return reply(421, "4.4.2", f"{hostname} Error: timeout exceeded")


def shutting_down(hostname: str) -> Reply:
    """``421 4.3.2 HOST Service shutting down``: ours; Postfix's smtpd just exits."""
    return reply(421, "4.3.2", f"{hostname} Service shutting down")


def service_unavailable(hostname: str) -> Reply:
    """``421 HOST Service unavailable - try again later`` (Postfix's wording, no enhanced code)."""
    return reply(421, "", f"{hostname} Service unavailable - try again later")


# Recipient and relay policy (smtpd_check.c), for the services that answer requests.
def relay_denied(address: str) -> Reply:
    """``554 5.7.1 <addr>: Relay access denied`` (reject_unauth_destination)."""
    return reply(554, "5.7.1", f"<{address}>: Relay access denied")


def user_unknown(address: str, table: str = "", code: int = 550) -> Reply:
    """``550 5.1.1 <addr>: Recipient address rejected: User unknown in TABLE``.

    ``table`` is e.g. "virtual mailbox table" or "local recipient table"; empty leaves
    the name out, as with ``show_user_unknown_table_name = no``. ``code`` is the
    matching ``unknown_*_reject_code``.
    """
    where = f" in {table}" if table else ""
    return reply(
        code,
        f"{str(code)[0]}.1.1",
        f"<{address}>: Recipient address rejected: User unknown{where}",
    )


# Ours: Postfix's SASL code rejects a malformed AUTH= parameter with a syntax reply too.
BAD_AUTH = reply(501, "5.5.4", "Bad AUTH parameter syntax")


class RemoteProtocolError(Exception):
    """The client broke the protocol; the exception carries the reply to send back."""

    def __init__(self, answer: Reply) -> None:
        super().__init__(answer.text)
        self.reply = answer
