"""One delivery attempt to one final recipient, as Postfix's log_adhoc.c and bounce(8) see it."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["Outcome"]


@dataclass(frozen=True)
class Outcome:
    """The result the queue manager logs (``status=``) and, when final, remembers.

    ``remote_mta`` and ``diagnostic`` come from the smtp client: the server that answered
    and its reply, for a delivery status notification's Remote-MTA and Diagnostic-Code.
    ``setup`` and ``transmission`` are the last two ``delays=`` fields, in seconds.
    """

    status: str  # sent | deferred | bounced
    dsn: str
    reason: str
    relay: str
    address: str
    remote_mta: str | None = None
    diagnostic: str | None = None
    setup: float = 0.0
    transmission: float | None = None  # None: measured by the caller
    tls_level: str = ""
    conn_use: int = 0  # smtp: which use of a cached session (log_adhoc.c's conn_use=)

    @property
    def final(self) -> bool:
        return self.status != "deferred"
