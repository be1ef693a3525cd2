"""Waiting for log lines: the one polling loop the server and peer fixtures share."""

from __future__ import annotations

import re
import time
from collections.abc import Callable

__all__ = ["wait_for_lines"]


def wait_for_lines(
    read: Callable[[], str], pattern: str, *, timeout: float, count: int = 1, what: str = "log"
) -> list[str]:
    """Poll ``read()`` until ``pattern`` (a regex) matches ``count`` lines; return them.

    Raises AssertionError with the whole log when the time is up, so a failing
    test shows what was logged instead.
    """
    regex = re.compile(pattern)
    deadline = time.monotonic() + timeout
    while True:
        text = read()
        found = [line for line in text.splitlines() if regex.search(line)]
        if len(found) >= count:
            return found
        if time.monotonic() > deadline:
            raise AssertionError(
                f"no {count} {what} lines match {pattern!r} within {timeout}s:\n{text}"
            )
        time.sleep(0.05)
