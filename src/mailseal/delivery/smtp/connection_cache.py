"""Idle SMTP sessions kept for the next delivery to the same next hop (Postfix's scache).

Parameters: ``smtp_connection_cache_on_demand`` and
``smtp_connection_cache_destinations`` (whether to keep a session at all),
``smtp_connection_cache_time_limit`` (how long one waits idle, 2s),
``smtp_connection_reuse_time_limit`` (how long after it was opened it may
still be reused, 300s) and ``smtp_connection_reuse_count_limit`` (how many
deliveries it may carry, 0 for no limit).

A session is taken out of the cache for exactly one delivery at a time, so
concurrent deliveries never share one. Keys hold the next hop and what the
session was set up for (TLS level, SASL login), so a session is never reused
under a policy it did not satisfy. Postfix caches a TLS session only through
tlsproxy(8), because its TLS state cannot move between processes; here the
TLS state stays in the one process, so TLS sessions are cached like the rest.
An expired or closed session is closed (QUIT without waiting) when found.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable
from dataclasses import dataclass

from mailseal.delivery.smtp.session import SmtpSession
from mailseal.net.connection import ConnectionLostError

__all__ = ["CacheKey", "CacheLimits", "ConnectionCache"]


@dataclass(frozen=True)
class CacheKey:
    nexthop: str
    tls_level: str
    sasl_user: str


@dataclass(frozen=True)
class CacheLimits:
    idle: float  # smtp_connection_cache_time_limit
    lifetime: float  # smtp_connection_reuse_time_limit
    uses: int  # smtp_connection_reuse_count_limit, 0: no limit


class ConnectionCache:
    """Sessions waiting for reuse, each under one key, each closed when its idle time is up."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._idle: dict[CacheKey, list[tuple[SmtpSession, asyncio.TimerHandle]]] = {}

    def reusable(self, session: SmtpSession, limits: CacheLimits) -> bool:
        """Whether ``session`` may carry one more delivery after this one."""
        if not session.usable:
            return False
        if limits.uses and session.uses >= limits.uses:
            return False
        return self._clock() - session.created < limits.lifetime

    def store(self, key: CacheKey, session: SmtpSession, limits: CacheLimits) -> bool:
        """Keep ``session`` for ``limits.idle`` seconds; False (and nothing kept) if it is spent."""
        if not self.reusable(session, limits):
            return False
        loop = asyncio.get_running_loop()
        timer = loop.call_later(limits.idle, self._expire, key, session)
        self._idle.setdefault(key, []).append((session, timer))
        return True

    def take(self, key: CacheKey, limits: CacheLimits) -> SmtpSession | None:
        """The most recently stored live session under ``key``, removed from the cache."""
        entries = self._idle.get(key, [])
        while entries:
            session, timer = entries.pop()
            timer.cancel()
            if self.reusable(session, limits):
                return session
            _drop(session)
        self._idle.pop(key, None)
        return None

    def _expire(self, key: CacheKey, session: SmtpSession) -> None:
        entries = self._idle.get(key, [])
        self._idle[key] = [entry for entry in entries if entry[0] is not session]
        if not self._idle[key]:
            del self._idle[key]
        _drop(session)

    def close_all(self) -> None:
        for entries in self._idle.values():
            for session, timer in entries:
                timer.cancel()
                _drop(session)
        self._idle.clear()

    def __len__(self) -> int:
        return sum(len(entries) for entries in self._idle.values())


def _drop(session: SmtpSession) -> None:
    """Say QUIT without waiting for the reply (smtp_skip_quit_response), then close."""
    if session.usable:
        session.client.quit()
        # A server that is gone already leaves nothing to do but close.
        with contextlib.suppress(ConnectionLostError, OSError):
            session.connection.write(session.client.data_to_send())
    session.close()
