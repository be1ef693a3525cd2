"""Reading server replies from a byte buffer (RFC 5321 section 4.2, RFC 2034).

A reply is one or more lines ``code "-" text`` ending with ``code SP text`` or a line
of just the code. Every line must carry the same code, and the code must be 200-599
(SMTP has no 1yz replies). The reader is bounded: a line longer than
``max_line_length`` or a reply of more than ``max_lines`` lines is an error, so a server
that sends endless continuation lines costs at most ``max_lines * max_line_length``.

Text is decoded as UTF-8 (bad bytes replaced) and non-printable characters become
``?``, as Postfix's smtp_chat_resp() does with printable(); a reply line can then
never hold a CR or LF. With ENHANCEDSTATUSCODES the ``x.y.z`` code of the first line
becomes ``Reply.enhanced`` and is removed from each line that repeats it; a code whose
class differs from the reply's stays in the text.
"""

from __future__ import annotations

import re

from mailseal.smtp.reply import Reply

__all__ = ["MalformedReplyError", "ReplyReader", "printable"]

_LINE = re.compile(rb"([0-9]{3})(?:([ -])(.*))?", re.DOTALL)
_ENHANCED = re.compile(r"([245]\.\d{1,3}\.\d{1,3})(?: |$)")
_UNPRINTABLE = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")


class MalformedReplyError(Exception):
    """The bytes are not an SMTP reply; ``reason`` and ``detail`` go to the log."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail


def printable(raw: bytes, limit: int = 100) -> str:
    """Raw bytes for a log line: at most ``limit`` bytes, escapes for the unprintable."""
    text = raw[:limit].decode("ascii", "backslashreplace")
    return _UNPRINTABLE.sub("?", text) + ("..." if len(raw) > limit else "")


class ReplyReader:
    """Takes complete replies out of a receive buffer, one at a time."""

    def __init__(self, *, max_line_length: int, max_lines: int) -> None:
        self._max_line = max_line_length
        self._max_lines = max_lines
        self._code = 0
        self._lines: list[str] = []

    def read(self, buf: bytearray, *, enhanced: bool) -> Reply | None:
        """The next complete reply from ``buf`` (consumed), or None when more is needed.

        Raises ``MalformedReplyError``; the reader is then unusable (the caller closes).
        """
        while True:
            lf = buf.find(b"\n")
            if lf < 0:
                # A line still without LF may be one CR short of its end.
                if len(buf) > self._max_line + 1:
                    raise self._too_long(bytes(buf))
                return None
            raw = bytes(buf[:lf])
            del buf[: lf + 1]
            # RFC 5321 asks for CRLF; a bare LF is read too, as Postfix's smtp_get() does.
            raw = raw.removesuffix(b"\r")
            if len(raw) > self._max_line:
                raise self._too_long(raw)
            if self._add(raw):
                return self._build(enhanced)

    def _too_long(self, raw: bytes) -> MalformedReplyError:
        return MalformedReplyError(f"response longer than {self._max_line}", printable(raw, 30))

    def _add(self, raw: bytes) -> bool:
        """Add one line; True when it was the last line of the reply."""
        match = _LINE.fullmatch(raw)
        if match is None:
            raise MalformedReplyError("non-SMTP response", printable(raw))
        code = int(match[1])
        if not 200 <= code <= 599:
            raise MalformedReplyError("reply code out of range", printable(raw))
        if self._lines and code != self._code:
            raise MalformedReplyError("reply code changed within a reply", printable(raw))
        if len(self._lines) >= self._max_lines:
            raise MalformedReplyError(f"reply longer than {self._max_lines} lines", printable(raw))
        self._code = code
        text = (match[3] or b"").decode("utf-8", "replace")
        self._lines.append(_UNPRINTABLE.sub("?", text))
        return match[2] != b"-"

    def _build(self, enhanced: bool) -> Reply:
        code, lines = self._code, self._lines
        self._code, self._lines = 0, []
        detail = ""
        if enhanced:
            found = _ENHANCED.match(lines[0])
            if found is not None and found[1][0] == str(code)[0]:
                detail = found[1]
                lines = [_strip_code(line, detail) for line in lines]
        return Reply(code, detail, tuple(lines))


def _strip_code(line: str, detail: str) -> str:
    """RFC 2034 section 4 repeats the code on every line; the text is what follows."""
    if line == detail:
        return ""
    return line.removeprefix(detail + " ")
