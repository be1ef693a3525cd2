"""Facts about the running system that some parameter defaults are computed from.

Postfix computes ``myhostname`` from the host name and ``config_directory`` from
``-c``; mailseal does the same, but the facts are passed in as a value so that
``postconf -d`` output can be tested with fixed facts.

Pure: imports only the standard library.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["SystemFacts"]


@dataclass(frozen=True)
class SystemFacts:
    """The host name (as the OS reports it) and the configuration directory in use."""

    hostname: str
    config_directory: str
