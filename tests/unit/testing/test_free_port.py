"""``free_port``: a port is free when handed out and never handed out twice."""

from __future__ import annotations

import socket
from types import SimpleNamespace, TracebackType
from typing import ClassVar

import pytest

from mailseal.testing import server
from mailseal.testing.server import free_port


class _ProbeOfferingPorts:
    """A stand-in probe whose kernel offers the ports of ``offers`` in turn."""

    offers: ClassVar[list[int]] = []

    def __enter__(self) -> _ProbeOfferingPorts:
        return self

    def __exit__(self, *_: type[BaseException] | BaseException | TracebackType | None) -> None:
        return None

    def bind(self, _address: tuple[str, int]) -> None:
        self.port = self.offers.pop(0)

    def getsockname(self) -> tuple[str, int]:
        return ("127.0.0.1", self.port)


def test_a_port_the_kernel_offers_again_is_skipped(monkeypatch: pytest.MonkeyPatch) -> None:
    # CI once got one port for both smtp and submission: the kernel offered a
    # just-closed probe's port to the next probe.
    _ProbeOfferingPorts.offers = [61001, 61001, 61001, 61002]
    monkeypatch.setattr(server, "socket", SimpleNamespace(socket=_ProbeOfferingPorts))
    monkeypatch.setattr(server, "_handed_out", set())
    assert [free_port(), free_port()] == [61001, 61002]


def test_ports_asked_for_in_a_row_are_all_different() -> None:
    ports = [free_port() for _ in range(300)]
    assert len(set(ports)) == len(ports)


def test_a_handed_out_port_can_be_bound() -> None:
    port = free_port()
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", port))
        assert listener.getsockname()[1] == port
