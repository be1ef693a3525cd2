"""The SMTP command table, as data, and the dispatcher that applies it to one command line.

Each verb has a handler (verbs.py) and flags, after Postfix's ``smtpd_cmd_table``:

- ``JUNK``: counts towards ``smtpd_junk_command_limit`` (SMTPD_CMD_FLAG_LIMIT); past
  the limit every such command also counts an error.
- ``PRE_TLS``: allowed before STARTTLS when TLS is required (SMTPD_CMD_FLAG_PRE_TLS);
  other verbs get ``530 5.7.0 Must issue a STARTTLS command first``.
- ``LAST``: must be the last command of a pipelined group (RFC 2920 section 3.1 lists
  EHLO, DATA, VRFY, EXPN, TURN, QUIT, NOOP; Postfix adds HELO, STARTTLS, AUTH). When
  PIPELINING was not offered (before EHLO, after HELO) every command must come alone.
  BDAT is exempt: its chunk follows the command line by design (RFC 3030 section 2).

"Came alone" means nothing else was already buffered when the command line was read
(Postfix peeks at its input buffer the same way); with
``smtpd_forbid_unauth_pipelining`` a violation gets ``554 5.5.0 Error: SMTP protocol
synchronization`` and the connection closes before the command runs.

Verbs outside the table get ``500 5.5.2 Error: command not recognized``, except what
Postfix's default ``smtpd_forbid_cmds`` catches (HTTP verbs, header lines, text that
does not start with a letter): ``221 2.7.0 Error: I can break rules, too. Goodbye.``
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from enum import Flag, auto
from types import MappingProxyType

from mailseal.smtp import reply as replies
from mailseal.smtp import verbs
from mailseal.smtp.events import ProtocolViolation
from mailseal.smtp.reply import RemoteProtocolError
from mailseal.smtp.session import Session

__all__ = ["COMMANDS", "Command", "CommandFlag", "escape", "execute"]


class CommandFlag(Flag):
    """Properties of a verb (see the module docstring)."""

    NONE = 0
    JUNK = auto()
    PRE_TLS = auto()
    LAST = auto()


@dataclass(frozen=True)
class Command:
    """One row of the command table."""

    name: str
    handler: Callable[[Session, str], None]
    flags: CommandFlag


_F = CommandFlag
COMMANDS: Mapping[str, Command] = MappingProxyType(
    {
        c.name: c
        for c in (
            Command("EHLO", verbs.ehlo, _F.JUNK | _F.PRE_TLS | _F.LAST),
            Command("HELO", verbs.helo, _F.JUNK | _F.PRE_TLS | _F.LAST),
            Command("STARTTLS", verbs.starttls, _F.PRE_TLS | _F.LAST),
            Command("AUTH", verbs.auth, _F.LAST),
            Command("MAIL", verbs.mail, _F.NONE),
            Command("RCPT", verbs.rcpt, _F.NONE),
            Command("DATA", verbs.data, _F.LAST),
            Command("BDAT", verbs.bdat, _F.NONE),
            Command("RSET", verbs.rset, _F.JUNK),
            Command("NOOP", verbs.noop, _F.JUNK | _F.PRE_TLS | _F.LAST),
            Command("VRFY", verbs.vrfy, _F.JUNK | _F.LAST),
            Command("QUIT", verbs.quit, _F.PRE_TLS | _F.LAST),
        )
    }
)

# Postfix's default smtpd_forbid_cmds: "CONNECT GET POST regexp:{{/^[^A-Z]/ Bogus}}".
_FORBIDDEN = frozenset({"CONNECT", "GET", "POST"})


def execute(s: Session, line: str) -> None:
    """Run one command line (already stripped of CRLF, checked for length and bytes)."""
    words = line.split(None, 1)
    if not words:
        s.send(replies.BAD_SYNTAX)
        return
    verb = words[0].upper()
    arg = words[1] if len(words) > 1 else ""
    command = COMMANDS.get(verb)
    if command is None:
        _unknown(s, verb, line)
        return
    s.begin(verb.lower())
    if s.settings.access_denied is not None and verb != "QUIT":
        s.complete(replies.access_denied(s.settings.client))
        return
    if s.settings.tls_required and not s.tls_active and _F.PRE_TLS not in command.flags:
        if verb == "BDAT":
            verbs.refuse_bdat(s, arg, replies.MUST_STARTTLS)
        else:
            s.complete(replies.MUST_STARTTLS)
        return
    s.last_command = verb
    if _breaks_pipelining(s, command):
        return
    if _F.JUNK in command.flags:
        # Postfix: "junk_cmds++ > var_smtpd_junk_cmd_limit" adds an error.
        if s.junk_count > s.settings.junk_command_limit:
            s.error_count += 1
        s.junk_count += 1
    try:
        command.handler(s, arg)
    except RemoteProtocolError as error:
        s.complete(error.reply)


def _unknown(s: Session, verb: str, line: str) -> None:
    s.begin("unknown")
    s.last_command = "UNKNOWN"
    if verb in _FORBIDDEN or verb.endswith(":") or not (verb[0].isascii() and verb[0].isalpha()):
        s.notice(ProtocolViolation("non-SMTP command", line[:100]))
        s.close("non-SMTP command", replies.NON_SMTP_COMMAND)
        return
    s.complete(replies.COMMAND_NOT_RECOGNIZED)


def _breaks_pipelining(s: Session, command: Command) -> bool:
    """RFC 2920 section 3.1 check; ``True`` when the connection was closed for it."""
    pipelining = s.extended and s.settings.enabled("PIPELINING")
    alone = _F.LAST in command.flags or not pipelining
    if command.name == "BDAT" or not alone or not s.inbuf:
        return False
    if not s.ill_pipelining:
        s.ill_pipelining = True
        reason = f"improper command pipelining after {command.name}"
        s.notice(ProtocolViolation(reason, escape(bytes(s.inbuf[:100]))))
    if not s.settings.forbid_unauth_pipelining:
        return False
    s.close("improper command pipelining", replies.PROTOCOL_SYNC)
    return True


_ESCAPES = {0x5C: "\\\\", 0x0D: "\\r", 0x0A: "\\n", 0x09: "\\t"}


def escape(data: bytes) -> str:
    """Client bytes made printable for a log line, as Postfix's ``escape()`` does."""
    return "".join(_ESCAPES.get(b) or (chr(b) if 32 <= b < 127 else f"\\{b:03o}") for b in data)
