"""The queue manager's local lane: one thread that takes messages in batches.

Deliveries to Maildirs are mostly Python and short system calls. Run in
several threads at once they fight over the GIL, and every hand-over is a
context switch: at c=50 that cost the master a fifth of its CPU
(docs/performance.md). The lane gives them one thread instead, and batches so
that the thread need not wait for the disk once per message: each run takes
every message announced since the last one (up to ``limit``), and the Maildir
files of a run share their syncs (:mod:`mailseal.delivery.maildir_batch`).

Callers ``await lane.run(job)`` and get what the work function returned for
their job (an exception is raised to them). The work function gets a list of
jobs and must return one result per job, in order.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Generic, TypeVar

__all__ = ["LocalLane"]

Job = TypeVar("Job")
Result = TypeVar("Result")


class LocalLane(Generic[Job, Result]):
    """Jobs gathered on the event loop, worked in batches by one thread."""

    def __init__(
        self,
        work: Callable[[Sequence[Job]], Sequence[Result | Exception]],
        *,
        limit: int = 64,
        name: str = "qmgr-local",
    ) -> None:
        self._work = work
        self._limit = limit
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix=name)
        self._waiting: list[tuple[Job, asyncio.Future[Result]]] = []
        self._runner: asyncio.Task[None] | None = None

    async def run(self, job: Job) -> Result:
        """Queue ``job`` for the next batch and wait for its result."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Result] = loop.create_future()
        self._waiting.append((job, future))
        if self._runner is None:
            self._runner = loop.create_task(self._drain())
        return await future

    def close(self) -> None:
        """Stop: jobs not started are cancelled; a batch under way finishes in its thread."""
        waiting, self._waiting = self._waiting, []
        for _, future in waiting:
            future.cancel()
        self._executor.shutdown(wait=False, cancel_futures=True)

    async def _drain(self) -> None:
        loop = asyncio.get_running_loop()
        try:
            while self._waiting:
                batch = self._waiting[: self._limit]
                del self._waiting[: self._limit]
                live = [(job, future) for job, future in batch if not future.done()]
                if not live:
                    continue
                jobs = [job for job, _ in live]
                try:
                    results = await loop.run_in_executor(self._executor, self._work, jobs)
                except Exception as error:  # the executor is shut down (stopping)
                    results = [error] * len(live)
                except asyncio.CancelledError:
                    for _, future in live:
                        future.cancel()
                    raise
                for (_, future), result in zip(live, results, strict=True):
                    if future.done():
                        continue
                    if isinstance(result, Exception):
                        future.set_exception(result)
                    else:
                        future.set_result(result)
        finally:
            self._runner = None
