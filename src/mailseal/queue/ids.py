"""Queue IDs in Postfix's short style: upper-case hexadecimal, 12 characters.

Postfix builds its short queue IDs from the microsecond clock and the queue file's
inode number (``enable_long_queue_ids = no``), which log tools such as pflogsumm
match as ``[0-9A-F]+``. Ours are 12 hex digits (48 bits) made of:

* 32 bits: a per-process clock in milliseconds (modulo 2**32, about 49.7 days). The
  clock never repeats within a process: when two IDs are asked for in the same
  millisecond the second one takes the next tick, so the clock doubles as the
  counter. A burst of more than 1000 IDs a second runs ahead of real time and falls
  back in step when the burst ends.
* 16 bits: the low bits of the process ID, which tells apart processes running at once.

So IDs sort roughly by time, and :func:`sort_oldest_first` orders them by age even
across the 49.7-day wrap of the clock. Two processes whose PIDs agree in the low 16
bits could in principle meet on one ID; :class:`mailseal.queue.store.QueueStore`
refuses to reuse a name already on disk, so such a meeting costs a retry, not a message.
"""

from __future__ import annotations

import os
import re
import threading
import time
from collections.abc import Iterable

__all__ = ["is_queue_id", "new_queue_id", "sort_oldest_first"]

_TICK_BITS = 32
_TICK_MASK = (1 << _TICK_BITS) - 1
_PID_MASK = 0xFFFF
_QUEUE_ID = re.compile(r"[0-9A-F]{10,12}")

# One clock per process, shared by the executor threads that create queue files.
_lock = threading.Lock()
_last_tick = 0


def _now_tick() -> int:
    return time.time_ns() // 1_000_000


def new_queue_id() -> str:
    """Return a new queue ID, unique on this machine and later than the last one here."""
    global _last_tick  # noqa: PLW0603 - the process-wide clock is the point
    with _lock:
        tick = max(_now_tick(), _last_tick + 1)
        _last_tick = tick
    return f"{tick & _TICK_MASK:08X}{os.getpid() & _PID_MASK:04X}"


def is_queue_id(text: str) -> bool:
    """Say whether ``text`` has the shape of a queue ID (10 to 12 upper-case hex digits)."""
    return _QUEUE_ID.fullmatch(text) is not None


def _age(queue_id: str, now_tick: int) -> int:
    """Milliseconds since the ID was made, reading the 32-bit clock modulo its wrap."""
    tick = int(queue_id[:8], 16)
    age = (now_tick - tick) & _TICK_MASK
    # An ID from a clock that ran ahead of real time looks slightly in the future.
    return age - (1 << _TICK_BITS) if age >= 1 << (_TICK_BITS - 1) else age


def sort_oldest_first(queue_ids: Iterable[str], now: float | None = None) -> list[str]:
    """Order queue IDs oldest first; IDs not made by :func:`new_queue_id` come last."""
    now_tick = _now_tick() if now is None else int(now * 1000)
    ours: list[str] = []
    others: list[str] = []
    for queue_id in queue_ids:
        (ours if len(queue_id) == 12 and is_queue_id(queue_id) else others).append(queue_id)
    others.sort()
    ours.sort(key=lambda q: (-_age(q, now_tick), q))
    return ours + others
