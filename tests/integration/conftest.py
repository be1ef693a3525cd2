"""Fixtures of the integration tests: real mailseal processes, a private CA, stub DNS.

Everything started here runs on loopback and is stopped by PID at the end.
"""

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import trustme
from outbound_net import Network

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


@pytest.fixture
def network(tmp_path: Path) -> Iterator[Network]:
    made = Network(tmp_path, [])
    yield made
    for process in made.started:
        process.stop()


@pytest.fixture
def zones() -> Iterator[DnsStub]:
    """MX and address records for the test domains; everything points at 127.0.0.1."""
    zones = """
b.test.          60 IN MX 10 mx.b.test.
mx.b.test.       60 IN A  127.0.0.1
down.test.       60 IN MX 10 mx.down.test.
mx.down.test.    60 IN A  127.0.0.1
two.test.        60 IN MX 10 dead.two.test.
two.test.        60 IN MX 20 mx.b.test.
dead.two.test.   60 IN A  127.0.0.9
nullmx.test.     60 IN MX 0 .
;; SERVFAIL broken.test.
"""
    stub = DnsStub.from_text(zones)
    stub.start()
    yield stub
    stub.stop()
