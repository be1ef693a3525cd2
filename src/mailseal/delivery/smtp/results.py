"""Server replies turned into delivery outcomes, and the per-recipient ledger of a delivery.

Postfix's rules (smtp_trouble.c, smtp_chat.c):

- a reply's status code is its RFC 3463 enhanced code when it has one (also in
  a greeting, which carries none by RFC 2034 but often has one anyway), else
  ``X.0.0`` from the reply class;
- the text quoted in a reason is the whole reply as received, lines joined by
  a space (``550-5.1.1 first 550 5.1.1 second``), the way Postfix translits
  the newlines of its multi-line buffer;
- 2xx is sent, 4xx deferred, 5xx bounced. A soft (4xx) error from a server
  that is not the last one leaves the recipient for the next server (KEEP);
  a hard error, or any error from the last server, decides it (DROP).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from mailseal.delivery.smtp.nexthop import Target
from mailseal.delivery.smtp.request import RecipientResult, SmtpRequest
from mailseal.log import smtp_client as words
from mailseal.smtp.reply import Reply

__all__ = [
    "Failure",
    "Ledger",
    "Timing",
    "reply_dsn",
    "reply_failure",
    "reply_text",
    "soften",
]

_ENHANCED = re.compile(r"([245])\.\d{1,3}\.\d{1,3}(?= |$)")


@dataclass(frozen=True)
class Failure:
    """Why a recipient (or every recipient) was not delivered by one server."""

    dsn: str
    reason: str
    remote_mta: str | None = None
    diagnostic: str | None = None

    @property
    def soft(self) -> bool:
        return self.dsn.startswith("4")


@dataclass(frozen=True)
class Timing:
    """``delays=`` set-up and transmission seconds of one recipient's outcome."""

    setup: float
    transmission: float
    conn_use: int = 0  # which use of its SMTP session this was (1: new); 0: no session


def reply_dsn(reply: Reply) -> str:
    """The reply's enhanced code, else one found at the start of its text, else ``X.0.0``."""
    if reply.enhanced:
        return reply.enhanced
    match = _ENHANCED.match(reply.lines[0])
    if match is not None and match.group(1) == str(reply.code)[0]:
        return match.group(0)
    return f"{reply.code // 100}.0.0"


def reply_text(reply: Reply) -> str:
    """The reply as it came over the wire, one line: ``550-5.1.1 a 550 5.1.1 b``."""
    prefix = f"{reply.enhanced} " if reply.enhanced else ""
    last = len(reply.lines) - 1
    return " ".join(
        f"{reply.code}{' ' if i == last else '-'}{prefix}{line}".rstrip()
        for i, line in enumerate(reply.lines)
    )


def reply_failure(reply: Reply, target: Target, command: str) -> Failure:
    """``host h[a] said: REPLY (in reply to COMMAND)`` with the reply's own status."""
    text = reply_text(reply)
    dsn = reply_dsn(reply)
    reason = words.said(target.namaddr, text, command)
    if reply.code // 100 not in (4, 5):
        # smtp_trouble.c: a reply that is neither 4xx nor 5xx where one is due.
        dsn, reason = "5.5.0", "Protocol error: " + reason
    return Failure(dsn, reason, target.host, text)


def soften(failure: Failure) -> Failure:
    """The same failure as a temporary one (smtp_skip_5xx_greeting, SASL soft bounce)."""
    if failure.soft:
        return failure
    return Failure("4" + failure.dsn[1:], failure.reason, failure.remote_mta, failure.diagnostic)


class Ledger:
    """Who is still to be delivered, and the result of everyone who is not."""

    def __init__(self, request: SmtpRequest, number: int) -> None:
        self._request = request
        self._number = number
        self._results: list[RecipientResult | None] = [None] * len(request.recipients)

    @property
    def pending(self) -> list[int]:
        """Indices of the recipients without a result yet, in request order."""
        return [i for i, result in enumerate(self._results) if result is None]

    def sent(
        self, index: int, target: Target, reply: Reply, timing: Timing, tls_level: str
    ) -> None:
        text = reply_text(reply)
        outcome = Failure(reply_dsn(reply), text, target.host, text)
        self._set(index, "sent", outcome, relay=target.namaddrport, timing=timing, level=tls_level)

    def failed(
        self, indices: list[int], failure: Failure, relay: str, timing: Timing, tls_level: str
    ) -> None:
        """Defer (4xx) or bounce (5xx) ``indices`` with ``failure``."""
        status = "deferred" if failure.soft else "bounced"
        for index in indices:
            self._set(index, status, failure, relay=relay, timing=timing, level=tls_level)

    def results(self) -> list[RecipientResult]:
        out = [result for result in self._results if result is not None]
        if len(out) != len(self._results):
            raise RuntimeError("a recipient was left without a result")
        return out

    def _set(
        self, index: int, status: str, what: Failure, *, relay: str, timing: Timing, level: str
    ) -> None:
        """Record one result; ``what`` carries the code, text, Remote-MTA and diagnostic."""
        if self._results[index] is not None:
            raise RuntimeError(f"recipient {index} already has a result")
        self._results[index] = RecipientResult(
            recipient=self._request.recipients[index],
            status=status,
            dsn=what.dsn,
            reason=what.reason,
            relay=relay,
            setup=max(timing.setup, 0.0),
            transmission=max(timing.transmission, 0.0),
            remote_mta=what.remote_mta,
            diagnostic=what.diagnostic,
            tls_level=level,
            number=self._number,
            conn_use=timing.conn_use,
        )
