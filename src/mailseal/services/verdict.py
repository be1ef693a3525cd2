"""``Verdict``: an SMTP reply decided by the smtpd checks or by recipient routing.

A reply code (RFC 5321 section 4.2), an enhanced status code (RFC 3463) and
the text, exactly as Postfix words it (``<a@b>: Relay access denied``). The
SMTP layer's ``Reply`` is built from it by the caller, so that this package
does not depend on the wire format.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["Verdict"]


@dataclass(frozen=True)
class Verdict:
    """``code enhanced text``, e.g. ``554 5.7.1 <a@b>: Relay access denied``."""

    code: int
    enhanced: str
    text: str

    @property
    def is_temporary(self) -> bool:
        """A 4xx reply: the client should try again later."""
        return 400 <= self.code < 500

    @classmethod
    def of(cls, code: int, enhanced: str, text: str) -> Verdict:
        """A verdict whose enhanced code agrees with the reply code's class, as Postfix forces."""
        return cls(code, f"{str(code)[0]}{enhanced[1:]}", text)

    def __str__(self) -> str:
        return f"{self.code} {self.enhanced} {self.text}"
