"""Two mailseal instances on loopback (A sends to B) and a stub DNS server for MX lookups."""

from collections.abc import Iterator
from pathlib import Path

import pytest
from outbound_net import Network

from mailseal.testing.dns_stub import DnsStub


@pytest.fixture
def network(tmp_path: Path) -> Iterator[Network]:
    made = Network(tmp_path, [])
    yield made
    for process in made.started:
        process.stop()


@pytest.fixture
def dns() -> Iterator[DnsStub]:
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
