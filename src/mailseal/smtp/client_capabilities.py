"""The ESMTP service extensions a server announced in its EHLO reply (RFC 5321 4.1.1.1).

Each line after the first is ``keyword [param ...]``; keywords compare without case.
As Postfix's smtp_helo() does, a keyword may also be followed by ``=`` (``AUTH=LOGIN
PLAIN``, the form of an old AUTH draft that Microsoft servers still send), and a SIZE
whose parameter is not a number counts as SIZE without a known limit ("bad EHLO SIZE
limit" in Postfix).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

from mailseal.smtp.reply import Reply

__all__ = ["Capabilities"]

# RFC 5321 section 4.1.1.1: ehlo-keyword = (ALPHA / DIGIT) *(ALPHA / DIGIT / "-").
_KEYWORD = re.compile(r"[A-Za-z0-9][A-Za-z0-9-]*")


@dataclass(frozen=True)
class Capabilities:
    """Keywords (upper case) with their parameters, in the order the server sent them."""

    keywords: Mapping[str, tuple[str, ...]] = field(default_factory=lambda: MappingProxyType({}))

    @classmethod
    def from_ehlo(cls, reply: Reply) -> Capabilities:
        """Parse a 250 EHLO reply; its first line (the server's name) is skipped."""
        found: dict[str, tuple[str, ...]] = {}
        for line in reply.lines[1:]:
            words = line.split()
            if not words:
                continue
            keyword, eq, first = words[0].partition("=")
            if not _KEYWORD.fullmatch(keyword):
                continue
            params = ([first] if eq and first else []) + words[1:]
            key = keyword.upper()
            # AUTH and AUTH= may both appear; keep every parameter once, in order.
            merged = found.get(key, ()) + tuple(p for p in params if p not in found.get(key, ()))
            found[key] = merged
        return cls(MappingProxyType(found))

    def has(self, keyword: str) -> bool:
        """Whether the server announced ``keyword`` (any case)."""
        return keyword.upper() in self.keywords

    def params(self, keyword: str) -> tuple[str, ...]:
        """The parameters after ``keyword``; empty when absent or without parameters."""
        return self.keywords.get(keyword.upper(), ())

    @property
    def size(self) -> int | None:
        """RFC 1870: None without SIZE; 0 for no fixed limit (bare SIZE, SIZE 0, bad value)."""
        if not self.has("SIZE"):
            return None
        params = self.params("SIZE")
        if params and params[0].isascii() and params[0].isdigit():
            return int(params[0])
        return 0

    @property
    def auth_mechanisms(self) -> tuple[str, ...]:
        """SASL mechanisms from ``AUTH`` and ``AUTH=`` (upper case, each once)."""
        out: list[str] = []
        for name in self.params("AUTH"):
            if name.upper() not in out:
                out.append(name.upper())
        return tuple(out)

    @property
    def pipelining(self) -> bool:
        """RFC 2920."""
        return self.has("PIPELINING")

    @property
    def chunking(self) -> bool:
        """RFC 3030 (BDAT)."""
        return self.has("CHUNKING")

    @property
    def starttls(self) -> bool:
        """RFC 3207."""
        return self.has("STARTTLS")

    @property
    def eightbitmime(self) -> bool:
        """RFC 6152."""
        return self.has("8BITMIME")

    @property
    def smtputf8(self) -> bool:
        """RFC 6531."""
        return self.has("SMTPUTF8")

    @property
    def dsn(self) -> bool:
        """RFC 3461."""
        return self.has("DSN")

    @property
    def enhanced_status_codes(self) -> bool:
        """RFC 2034: replies carry ``class.subject.detail`` after the code."""
        return self.has("ENHANCEDSTATUSCODES")
