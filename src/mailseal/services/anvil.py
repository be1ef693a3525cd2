"""Per-client connection rates, as Postfix's anvil(8) counts them for smtpd.

``smtpd_client_connection_rate_limit`` is the number of connections one
client address may make per ``anvil_rate_time_unit``; Postfix counts in
fixed windows that start at the client's first event, which is what we do
(cheap, and an admin's mental model of "N per minute"). The clock is passed
in, so the counting is pure and testable.
"""

from __future__ import annotations

from dataclasses import dataclass, field

__all__ = ["RateCounter"]


@dataclass
class _Window:
    start: float
    count: int


@dataclass
class RateCounter:
    """Counts events per key in windows of ``unit`` seconds."""

    unit: float
    _windows: dict[str, _Window] = field(default_factory=dict)

    def hit(self, key: str, now: float) -> int:
        """Count one event for ``key``; return the count in its current window."""
        window = self._windows.get(key)
        if window is None or now - window.start >= self.unit:
            window = _Window(now, 0)
            self._windows[key] = window
        window.count += 1
        if len(self._windows) > 10_000:
            self._expire(now)
        return window.count

    def _expire(self, now: float) -> None:
        # Bounded memory under a flood of distinct addresses.
        stale = [k for k, w in self._windows.items() if now - w.start >= self.unit]
        for key in stale:
            del self._windows[key]
