"""Fixtures for the smtp(8) agent tests: receiving mailseal instances, a private CA, DNS."""

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import trustme

from mailseal.testing.dns_stub import DnsStub
from mailseal.testing.server import Instance, Servers


@pytest.fixture
def servers(tmp_path: Path) -> Iterator[Servers]:
    started = Servers(tmp_path)
    yield started
    started.stop_all()


@pytest.fixture
def server(servers: Servers) -> Instance:
    """The embedded default configuration of ``mailseal init`` (STARTTLS, self-signed)."""
    return servers.start()


@pytest.fixture(scope="session")
def ca() -> trustme.CA:
    return trustme.CA(organization_name="mailseal smtp agent test CA")


@pytest.fixture
def dns() -> Iterator[Callable[[str], DnsStub]]:
    """Start a DNS stub for zone text; every stub started is stopped at the end."""
    stubs: list[DnsStub] = []

    def start(zones: str) -> DnsStub:
        stub = DnsStub.from_text(zones)
        stub.start()
        stubs.append(stub)
        return stub

    yield start
    for stub in stubs:
        stub.stop()
