"""Servers whose opportunistic TLS handshake failed, remembered so that later mail gets through.

Postfix's smtp(8) retries a server in plaintext after a failed handshake at
level ``may`` (RETRY_AS_PLAINTEXT in smtp.h) when the message has waited at
least ``minimal_backoff_time`` (so a new message first tries another MX) and
no SASL password applies. Postfix runs one process per delivery and so
re-learns the failure each time; mailseal runs one long-lived client and also
remembers, per ``host[addr]:port``, for :data:`REMEMBER_SECONDS` (one hour,
mailseal's choice: long enough to drain a queue, short enough that a fixed
server gets TLS again soon). Only opportunistic levels consult this memory:
a level that requires TLS never falls back to plaintext.

In memory only, bounded by :data:`MAX_ENTRIES` (the oldest are dropped).
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable

__all__ = ["MAX_ENTRIES", "REMEMBER_SECONDS", "TlsFailureMemory"]

REMEMBER_SECONDS = 3600.0
MAX_ENTRIES = 10_000

_Key = tuple[str, str, int]


class TlsFailureMemory:
    """``host[addr]:port`` -> when the handshake failure is forgotten."""

    def __init__(
        self,
        *,
        ttl: float = REMEMBER_SECONDS,
        limit: int = MAX_ENTRIES,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._ttl = ttl
        self._limit = limit
        self._clock = clock
        self._until: OrderedDict[_Key, float] = OrderedDict()

    def remember(self, host: str, addr: str, port: int) -> None:
        key = (host.lower(), addr, port)
        self._until.pop(key, None)
        self._until[key] = self._clock() + self._ttl
        while len(self._until) > self._limit:
            self._until.popitem(last=False)

    def failed_recently(self, host: str, addr: str, port: int) -> bool:
        key = (host.lower(), addr, port)
        until = self._until.get(key)
        if until is None:
            return False
        if until <= self._clock():
            del self._until[key]
            return False
        return True

    def forget(self, host: str, addr: str, port: int) -> None:
        """A handshake with this server worked again."""
        self._until.pop((host.lower(), addr, port), None)

    def __len__(self) -> int:
        return len(self._until)
