"""Retry arithmetic: doubling backoff within bounds, queue lifetime expiry."""

from __future__ import annotations

from mailseal.queue.schedule import backoff_for_age, is_expired, next_backoff


def test_backoff_starts_at_minimum_and_doubles_to_maximum() -> None:
    waits = [next_backoff(None, 300, 4000)]
    for _ in range(5):
        waits.append(next_backoff(waits[-1], 300, 4000))
    assert waits == [300, 600, 1200, 2400, 4000, 4000]


def test_backoff_clamps_like_postfix_when_minimum_exceeds_maximum() -> None:
    assert next_backoff(None, 500, 100) == 500
    assert next_backoff(1000, 500, 100) == 500


def test_backoff_for_age_is_time_in_queue_within_bounds() -> None:
    assert backoff_for_age(1000, 1010, 300, 4000) == 300
    assert backoff_for_age(1000, 3000, 300, 4000) == 2000
    assert backoff_for_age(0, 100_000, 300, 4000) == 4000


def test_expiry() -> None:
    assert not is_expired(1000, 1000 + 5 * 86400, 5 * 86400)
    assert is_expired(1000, 1001 + 5 * 86400, 5 * 86400)
    # maximal_queue_lifetime = 0: return after the first failed attempt.
    assert is_expired(1000, 1000, 0)
