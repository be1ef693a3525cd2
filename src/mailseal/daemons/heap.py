"""Give freed heap memory back to the kernel now and then: glibc's malloc_trim(3).

A 100 KB message is one allocation too big for Python's small-object allocator,
so it comes from glibc's malloc. When the message is gone, glibc keeps the freed
pages for later (in every thread's arena) unless they happen to lie at the top
of the heap: after a burst of sessions an smtpd process stays 10-15 MB above
its idle size for good, and the master likewise after its deliveries. Every
``interval`` seconds the process calls ``malloc_trim(0)``, which returns the
free pages of every arena (about a millisecond; nothing when there is nothing to
free). Without glibc (musl, other systems) this does nothing.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
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
    """Calls :func:`malloc_trim` every ``interval`` seconds on the running loop."""

    def __init__(self, interval: float = TRIM_INTERVAL) -> None:
        self.interval = interval
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        if _TRIM is not None and self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._run())

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self.interval)
            malloc_trim()
