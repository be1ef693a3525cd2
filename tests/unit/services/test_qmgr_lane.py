"""The queue manager's local lane: jobs gathered while a batch runs share the next one."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Sequence

import pytest

from mailseal.services.qmgr_lane import LocalLane


class _Work:
    """Doubles numbers in the lane's thread; a negative number is an error for its job."""

    def __init__(self) -> None:
        self.batches: list[list[int]] = []
        self.threads: set[str] = set()
        self.release = threading.Event()

    def __call__(self, jobs: Sequence[int]) -> list[int | Exception]:
        self.release.wait(5)
        self.batches.append(list(jobs))
        self.threads.add(threading.current_thread().name)
        return [ValueError(job) if job < 0 else job * 2 for job in jobs]


def test_jobs_that_wait_are_worked_together_in_one_thread() -> None:
    work = _Work()

    async def scenario() -> list[int]:
        lane: LocalLane[int, int] = LocalLane(work, limit=3)
        first = asyncio.ensure_future(lane.run(1))
        await asyncio.sleep(0.05)  # the first batch ([1]) is now blocked in the thread
        rest = [asyncio.ensure_future(lane.run(n)) for n in (2, 3, 4, 5)]
        work.release.set()
        results = await asyncio.gather(first, *rest)
        lane.close()
        return results

    assert asyncio.run(scenario()) == [2, 4, 6, 8, 10]
    assert work.batches == [[1], [2, 3, 4], [5]]  # at most `limit` at once, in order
    assert len(work.threads) == 1
    assert next(iter(work.threads)).startswith("qmgr-local")


def test_an_error_reaches_only_its_own_job() -> None:
    work = _Work()
    work.release.set()

    async def scenario() -> tuple[int, int]:
        lane: LocalLane[int, int] = LocalLane(work)
        bad = asyncio.ensure_future(lane.run(-1))
        good = asyncio.ensure_future(lane.run(7))
        with pytest.raises(ValueError, match="-1"):
            await bad
        value = await good
        # The lane keeps working after an error.
        again = await lane.run(8)
        lane.close()
        return value, again

    assert asyncio.run(scenario()) == (14, 16)


def test_close_cancels_jobs_not_started() -> None:
    work = _Work()

    async def scenario() -> None:
        lane: LocalLane[int, int] = LocalLane(work, limit=1)
        running = asyncio.ensure_future(lane.run(1))
        await asyncio.sleep(0.05)
        waiting = asyncio.ensure_future(lane.run(2))
        await asyncio.sleep(0)
        lane.close()
        with pytest.raises(asyncio.CancelledError):
            await waiting
        work.release.set()
        assert await running == 2  # the batch under way finishes

    asyncio.run(scenario())
    assert work.batches == [[1]]
