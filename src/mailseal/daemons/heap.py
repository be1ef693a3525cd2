"""Give freed heap memory back to the kernel now and then: glibc's malloc_trim(3).

A 100 KB message is one allocation too big for Python's small-object allocator,
so it comes from glibc's malloc. When the message is gone, glibc keeps the freed
pages for later (in every thread's arena) unless they happen to lie at the top
of the heap: after a burst of sessions an smtpd process stays 10-15 MB above
its idle size for good, and the master likewise after its deliveries. Every
``interval`` seconds the process calls ``malloc_trim(0)``, which returns the
free pages of every arena (about a millisecond; nothing when there is nothing to
free). Without glibc (musl, other systems) this does nothing.

An smtpd worker also asks for a full garbage collection first (``collect=True``).
Reference cycles hold memory until a full collection, and a process that has
loaded everything runs those rarely: Python starts one only when the objects
created since the last exceed a quarter of the long-lived ones (tens of thousands
of objects from the imports alone). asyncio's selector transport is such a cycle,
one per closed connection; ours were too (docs/performance.md, "Reference
cycles"). The worker freezes what it loaded at start (``gc.freeze``), so this
collection walks only what came after: microseconds when idle.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import gc
import sys
from collections.abc import Callable

__all__ = ["TRIM_INTERVAL", "HeapTrimmer", "malloc_trim"]

TRIM_INTERVAL = 10.0  # seconds: cheap enough to be frequent, rare enough to be free


def _libc_trim() -> Callable[[], int] | None:
    if not sys.platform.startswith("linux"):
        return None
    try:
        function = ctypes.CDLL(None).malloc_trim  # the process's own symbols: libc
    except (OSError, AttributeError):
        return None  # not glibc
    function.argtypes = [ctypes.c_size_t]
    function.restype = ctypes.c_int
    return lambda: int(function(0))


_TRIM = _libc_trim()


def malloc_trim() -> bool:
    """Return free heap pages to the kernel; True if glibc released any."""
    return _TRIM is not None and _TRIM() == 1


class HeapTrimmer:
    """Calls :func:`malloc_trim` (after ``gc.collect``) every ``interval`` seconds on the loop.

    :meth:`soon` asks for one more now: an smtpd worker calls it when its last
    session ends, so that what a burst of clients left is given back before the next
    burst rather than up to ``interval`` later. At most one per ``settle`` seconds
    (a later request waits for that), so a worker that serves one client after
    another spends about a millisecond a second on it.
    """

    def __init__(
        self, interval: float = TRIM_INTERVAL, *, collect: bool = False, settle: float = 1.0
    ) -> None:
        self.interval = interval
        self.collect = collect  # a full gc.collect() before each trim
        self.settle = settle
        self._task: asyncio.Task[None] | None = None
        self._early: asyncio.TimerHandle | None = None
        self._last = float("-inf")  # loop time of the latest trim

    def start(self) -> None:
        if (_TRIM is not None or self.collect) and self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._run())

    def soon(self) -> None:
        """One trim now, or ``settle`` seconds after the latest; none if one is pending."""
        if self._task is None or self._early is not None:
            return
        loop = asyncio.get_running_loop()
        wait = max(self._last + self.settle - loop.time(), 0.0)
        self._early = loop.call_later(wait, self._trim_early)

    async def stop(self) -> None:
        task, self._task = self._task, None
        if self._early is not None:
            self._early.cancel()
            self._early = None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self.interval)
            self._trim()

    def _trim_early(self) -> None:
        self._early = None
        self._trim()

    def _trim(self) -> None:
        if self.collect:
            gc.collect()  # first: what it frees is what the trim can give back
        malloc_trim()
        self._last = asyncio.get_running_loop().time()  # settle counts from the end
