"""Retry timing of deferred mail, as Postfix's queue manager reckons it (pure).

Parameters: ``minimal_backoff_time`` and ``maximal_backoff_time`` bound the wait
between attempts; ``maximal_queue_lifetime`` (and ``bounce_queue_lifetime`` for
bounces) is how long a message may stay in the queue, where 0 means "return after the
first failed attempt" (postconf(5)).

Postfix's qmgr (``qmgr_active_done``) waits as long as the message has already been
queued, clamped to the bounds: that doubles the interval after each failure.
:func:`next_backoff` doubles the previous wait explicitly; :func:`backoff_for_age` is
Postfix's reckoning from the arrival time. Both clamp as Postfix does: to the maximum
first, then to the minimum, so a minimum configured above the maximum wins.
"""

from __future__ import annotations

__all__ = ["backoff_for_age", "is_expired", "next_backoff"]


def _clamp(wait: float, minimal: float, maximal: float) -> float:
    return max(min(wait, maximal), minimal)


def next_backoff(previous: float | None, minimal: float, maximal: float) -> float:
    """The wait before the next attempt: ``minimal`` first, then doubled, within bounds."""
    return _clamp(minimal if previous is None else previous * 2, minimal, maximal)


def backoff_for_age(arrival: float, now: float, minimal: float, maximal: float) -> float:
    """Postfix's wait: the time the message has spent in the queue, within bounds."""
    return _clamp(now - arrival, minimal, maximal)


def is_expired(arrival: float, now: float, lifetime: float) -> bool:
    """Whether a message that arrived at ``arrival`` has been queued too long to retry."""
    if lifetime <= 0:
        return True
    # Postfix bounces when the arrival is strictly before now - lifetime.
    return now - arrival > lifetime
