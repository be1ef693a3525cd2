"""The event loop a daemon runs on: uvloop when installed and chosen, else asyncio's own.

``event_loop = uvloop`` (the default) runs the master and the smtpd workers on
uvloop, whose loop, transports and timers are compiled: with one or ten clients,
where every command wakes a process from sleep, it took 6-13% less CPU per
message than asyncio's pure-Python selector loop, and as much at 50 clients
(docs/performance.md, "uvloop, measured again").
Where uvloop is not installed (it is not built for every platform), or with
``event_loop = asyncio``, the standard loop runs; mailseal uses only public
asyncio interfaces, so either works.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

__all__ = ["loop_factory", "run"]

T = TypeVar("T")


def loop_factory(implementation: str) -> Callable[[], asyncio.AbstractEventLoop]:
    """What makes the loop ``implementation`` names ("uvloop" or "asyncio")."""
    if implementation == "uvloop":
        try:
            import uvloop  # optional: not built for every platform
        except ImportError:
            return asyncio.new_event_loop
        return uvloop.new_event_loop
    return asyncio.new_event_loop


def run(main: Coroutine[Any, Any, T], implementation: str) -> T:
    """``asyncio.run(main)`` on the loop ``implementation`` names."""
    with asyncio.Runner(loop_factory=loop_factory(implementation)) as runner:
        return runner.run(main)
