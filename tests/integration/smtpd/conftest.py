"""Fixtures: real mailseal processes on free loopback ports, stopped by PID at the end."""

from collections.abc import Iterator
from pathlib import Path

import pytest

from mailseal.testing.server import Instance, Servers


@pytest.fixture
def servers(tmp_path: Path) -> Iterator[Servers]:
    started = Servers(tmp_path)
    yield started
    started.stop_all()


@pytest.fixture
def server(servers: Servers) -> Instance:
    """The embedded default configuration of ``mailseal init``."""
    return servers.start()
