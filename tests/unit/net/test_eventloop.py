"""``event_loop``: uvloop when chosen and installed, asyncio's own loop otherwise."""

from __future__ import annotations

import asyncio
import sys

import pytest
import uvloop

from mailseal.net import eventloop


async def _running_loop_type() -> type[asyncio.AbstractEventLoop]:
    await asyncio.sleep(0)
    return type(asyncio.get_running_loop())


def test_uvloop_runs_the_coroutine_on_uvloop() -> None:
    assert eventloop.run(_running_loop_type(), "uvloop") is uvloop.Loop


def test_asyncio_runs_the_coroutine_on_the_standard_loop() -> None:
    kind = eventloop.run(_running_loop_type(), "asyncio")
    assert kind is not uvloop.Loop
    assert issubclass(kind, asyncio.BaseEventLoop)


def test_without_uvloop_installed_the_standard_loop_runs(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "uvloop", None)  # import uvloop -> ImportError
    kind = eventloop.run(_running_loop_type(), "uvloop")
    assert kind is not uvloop.Loop
    assert issubclass(kind, asyncio.BaseEventLoop)
