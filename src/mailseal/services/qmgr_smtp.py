"""The queue manager's bridge to smtp(8): a worker thread hands a request to the event loop.

The queue manager processes a message in a worker thread (disk work, table lookups);
the SMTP delivery itself (:class:`mailseal.delivery.smtp.SmtpAgent`) runs on the event
loop. ``SmtpDispatch.deliver`` submits it there and waits, under a semaphore per next
hop (``smtp_destination_concurrency_limit``). ``cancel_all`` cuts off what is in flight
at shutdown, as Postfix's master stops its smtp processes: nothing of theirs was marked
done, so the next start delivers those recipients again.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import threading

from mailseal.config.model import Config
from mailseal.delivery.smtp import RecipientResult, SmtpAgent, SmtpRequest
from mailseal.services.delivery_outcome import Outcome

__all__ = ["ShutdownError", "SmtpDispatch", "outcome_of"]


class ShutdownError(Exception):
    """Shutdown cut an SMTP delivery short: the queue file stays in active/ as it is."""


class SmtpDispatch:
    """Runs the agent's deliveries on the loop for callers in worker threads."""

    def __init__(self, config: Config, agent: SmtpAgent) -> None:
        self.config = config
        self.agent = agent
        self.loop: asyncio.AbstractEventLoop | None = None
        self._per_destination: dict[str, asyncio.Semaphore] = {}
        self._users: dict[str, int] = {}
        self._inflight: set[concurrent.futures.Future[list[RecipientResult]]] = set()
        self._lock = threading.Lock()

    def reconfigure(self, config: Config) -> None:
        self.config = config
        self.agent.reconfigure(config)
        self._per_destination.clear()

    def deliver(self, request: SmtpRequest) -> list[RecipientResult]:
        """Deliver from a worker thread; ``ShutdownError`` when stopping cut it off."""
        if self.loop is None:
            raise RuntimeError("the queue manager is not running")
        future = asyncio.run_coroutine_threadsafe(self._limited(request), self.loop)
        with self._lock:
            self._inflight.add(future)
        try:
            return future.result()
        except concurrent.futures.CancelledError:
            raise ShutdownError from None
        finally:
            with self._lock:
                self._inflight.discard(future)

    def cancel_all(self) -> None:
        with self._lock:
            for future in self._inflight:
                future.cancel()

    async def aclose(self) -> None:
        await self.agent.aclose()

    async def _limited(self, request: SmtpRequest) -> list[RecipientResult]:
        nexthop = request.nexthop
        slots = self._per_destination.get(nexthop)
        if slots is None:
            limit = max(1, self.config.smtp_destination_concurrency_limit)
            slots = self._per_destination[nexthop] = asyncio.Semaphore(limit)
        # Counted, so a long-running server does not keep one semaphore per next hop
        # it ever saw: the last delivery holding or waiting for it removes it.
        self._users[nexthop] = self._users.get(nexthop, 0) + 1
        try:
            async with slots:
                return await self.agent.deliver(request)
        finally:
            self._users[nexthop] -= 1
            if not self._users[nexthop]:
                del self._users[nexthop]
                if self._per_destination.get(nexthop) is slots:
                    del self._per_destination[nexthop]


def outcome_of(answer: RecipientResult) -> Outcome:
    """The queue manager's view of one smtp(8) result."""
    return Outcome(
        answer.status,
        answer.dsn,
        answer.reason,
        answer.relay,
        answer.recipient.address,
        remote_mta=answer.remote_mta,
        diagnostic=answer.diagnostic,
        setup=answer.setup,
        transmission=answer.transmission,
        tls_level=answer.tls_level,
        conn_use=answer.conn_use,
    )
