"""MAIL FROM / RCPT TO arguments: the path and its ESMTP parameters.

Paths follow RFC 5321 section 4.1.2 with Postfix's tolerance
(``strict_rfc821_envelopes = no``): the angle brackets may be missing, a source route
``<@a,@b:user@dom>`` is dropped (section 4.1.1.3 / appendix C), and a quoted local part
is unquoted into Postfix's internal form (``"a b"@dom`` becomes ``a b@dom``).

Parameters (RFC 5321 section 4.1.1.11) are checked like Postfix's ``mail_cmd`` and
``rcpt_cmd``: SIZE (RFC 1870), BODY (RFC 6152), SMTPUTF8 (RFC 6531), RET, ENVID,
NOTIFY, ORCPT (RFC 3461) and AUTH (RFC 4954). Errors raise ``RemoteProtocolError``
carrying Postfix's reply.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from mailseal.smtp import reply as replies

__all__ = [
    "Path",
    "is_xtext",
    "parse_mail_params",
    "parse_path",
    "parse_rcpt_params",
    "xtext_decode",
]

# Characters that may not appear in an unquoted local part or a domain.
_SPECIALS = frozenset('<>()[]\\,;:@" \t')
# One C-level scan each instead of a Python loop over every character (every
# MAIL FROM and RCPT TO of every session passes here).
_HAS_SPECIAL = re.compile("[" + re.escape("".join(sorted(_SPECIALS))) + "]")
_HAS_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_DOMAIN = re.compile(r"[A-Za-z0-9._\-]+|\[[^\[\]\\\s]+\]")
_XTEXT = re.compile(r"(?:[!-*,-~]|\+[0-9A-Fa-f]{2})*")
_NOTIFY = frozenset({"SUCCESS", "FAILURE", "DELAY"})


@dataclass(frozen=True)
class Path:
    """A parsed MAIL/RCPT path: the address in internal form and the parameter words."""

    address: str
    words: tuple[str, ...]

    @property
    def is_ascii(self) -> bool:
        return self.address.isascii()


def parse_path(argument: str, keyword: str) -> Path | None:
    """Parse ``FROM:<addr> params`` (keyword "FROM") or ``TO:<addr> params``.

    Returns ``None`` for a syntax error in the command itself (missing ``FROM:`` or
    no path: Postfix's "501 5.5.4 Syntax: ..."); raises ``ValueError`` when the path is
    there but is no valid address (Postfix's "Bad ... address syntax").
    """
    head, colon, rest = argument.partition(":")
    if not colon or head.strip().upper() != keyword:
        return None
    rest = rest.lstrip(" \t")
    if not rest:
        return None
    if rest.startswith("<"):
        end = _closing_bracket(rest)
        if end is None:
            raise ValueError("unbalanced <>")
        inner, tail = rest[1:end], rest[end + 1 :]
        if tail and tail[0] not in " \t":
            raise ValueError("text after >")
    else:
        inner, _, tail = rest.replace("\t", " ").partition(" ")
    return Path(_mailbox(_strip_route(inner)), tuple(tail.split()))


def _closing_bracket(text: str) -> int | None:
    """Index of the ``>`` that closes ``text[0] == "<"``, skipping quoted strings."""
    quoted = escaped = False
    for i, ch in enumerate(text[1:], start=1):
        if escaped:
            escaped = False
        elif ch == "\\" and quoted:
            escaped = True
        elif ch == '"':
            quoted = not quoted
        elif ch == ">" and not quoted:
            return i
    return None


def _strip_route(inner: str) -> str:
    """Drop an RFC 5321 source route ``@a,@b:`` (servers SHOULD ignore it, appendix C)."""
    if not inner.startswith("@"):
        return inner
    route, colon, mailbox = inner.partition(":")
    hops = route.split(",")
    if not colon or not mailbox:
        raise ValueError("bad source route")
    if not all(h.startswith("@") and _DOMAIN.fullmatch(h[1:]) for h in hops):
        raise ValueError("bad source route")
    return mailbox


def _mailbox(text: str) -> str:
    """Validate ``local@domain`` (or a bare local part, or "") and return internal form."""
    if not text:
        return ""
    if _HAS_CONTROL.search(text):
        raise ValueError("control character in address")
    if text.startswith('"'):
        local, rest = _quoted_local(text)
    else:
        at = text.rfind("@")
        local, rest = (text, "") if at < 0 else (text[:at], text[at:])
        if not local or _HAS_SPECIAL.search(local):
            raise ValueError("bad local part")
    if not rest:
        return local
    domain = rest[1:]
    if not rest.startswith("@") or not (_DOMAIN.fullmatch(domain) or _is_idn(domain)):
        raise ValueError("bad domain")
    return f"{local}@{domain}"


def _quoted_local(text: str) -> tuple[str, str]:
    """Unquote ``"..."`` at the start of ``text`` (RFC 5321 Quoted-string); rest after it."""
    out: list[str] = []
    i = 1
    while i < len(text):
        ch = text[i]
        if ch == "\\" and i + 1 < len(text):
            out.append(text[i + 1])
            i += 2
            continue
        if ch == '"':
            return "".join(out), text[i + 1 :]
        out.append(ch)
        i += 1
    raise ValueError("unterminated quoted string")


def _is_idn(domain: str) -> bool:
    """An internationalized domain (RFC 6531 U-labels): non-ASCII, no specials."""
    return bool(domain) and not domain.isascii() and not _HAS_SPECIAL.search(domain)


def is_xtext(value: str) -> bool:
    """RFC 3461 section 4 xtext (lenient like Postfix: ``=`` is let through)."""
    return _XTEXT.fullmatch(value) is not None


def xtext_decode(value: str) -> str:
    """Decode ``+HH`` escapes of a valid xtext."""
    return re.sub(r"\+([0-9A-Fa-f]{2})", lambda m: chr(int(m.group(1), 16)), value)


def parse_mail_params(
    words: tuple[str, ...], *, dsn: bool, smtputf8: bool, auth: bool = False
) -> dict[str, str]:
    """MAIL FROM parameters, keyword upper-cased, value as given (Postfix's ``mail_cmd``)."""
    params: dict[str, str] = {}
    for word in words:
        key, sep, value = word.partition("=")
        key = key.upper()
        if key == "SIZE" and sep:
            if not value.isascii() or not value.isdigit():
                raise replies.RemoteProtocolError(replies.BAD_MESSAGE_SIZE)
        elif key == "BODY" and sep:
            if value.upper() not in ("7BIT", "8BITMIME"):
                raise replies.RemoteProtocolError(replies.unsupported_option(word))
        elif key == "SMTPUTF8" and not sep and smtputf8:
            value = ""
        elif key in ("RET", "ENVID") and sep:
            _check_dsn_param(key, value, params, dsn)
        elif key == "AUTH" and sep:
            if not auth:
                raise replies.RemoteProtocolError(replies.AUTH_DISABLED)
            if key in params:
                raise replies.RemoteProtocolError(replies.MULTIPLE_AUTH)
            if value != "<>" and (not value or not is_xtext(value)):
                raise replies.RemoteProtocolError(replies.BAD_AUTH)
        else:
            raise replies.RemoteProtocolError(replies.unsupported_option(word))
        params[key] = value
    return params


def _check_dsn_param(key: str, value: str, params: dict[str, str], dsn: bool) -> None:
    """RET=FULL|HDRS and ENVID=xtext, once each (RFC 3461 sections 4.3, 4.4)."""
    if not dsn:
        raise replies.RemoteProtocolError(replies.DSN_DISABLED)
    if key == "RET":
        if key in params or value.upper() not in ("FULL", "HDRS"):
            raise replies.RemoteProtocolError(replies.BAD_RET)
        return
    if (
        key in params
        or not value
        or not is_xtext(value)
        or not all(32 <= ord(ch) < 127 for ch in xtext_decode(value))
    ):
        raise replies.RemoteProtocolError(replies.BAD_ENVID)


def parse_rcpt_params(words: tuple[str, ...], *, dsn: bool) -> dict[str, str]:
    """RCPT TO parameters NOTIFY and ORCPT (RFC 3461 sections 4.1, 4.2)."""
    params: dict[str, str] = {}
    for word in words:
        key, sep, value = word.partition("=")
        key = key.upper()
        if key not in ("NOTIFY", "ORCPT") or not sep:
            raise replies.RemoteProtocolError(replies.unsupported_option(word))
        if not dsn:
            raise replies.RemoteProtocolError(replies.DSN_DISABLED)
        if key == "NOTIFY" and (key in params or not _valid_notify(value)):
            raise replies.RemoteProtocolError(replies.BAD_NOTIFY)
        if key == "ORCPT" and (key in params or not _valid_orcpt(value)):
            raise replies.RemoteProtocolError(replies.BAD_ORCPT)
        params[key] = value
    return params


def _valid_notify(value: str) -> bool:
    """NEVER alone, or a list of SUCCESS, FAILURE, DELAY."""
    items = value.upper().split(",")
    if items == ["NEVER"]:
        return True
    return all(item in _NOTIFY for item in items) and len(set(items)) == len(items)


def _valid_orcpt(value: str) -> bool:
    """``addr-type ";" xtext`` with a non-empty type."""
    kind, semi, address = value.partition(";")
    return bool(semi and kind) and kind.isascii() and is_xtext(address)
