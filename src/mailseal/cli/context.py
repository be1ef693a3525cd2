"""What every sub-command needs before it starts: the host name and the loaded configuration.

This is the one place that asks the operating system for the host name
(``myhostname``'s default, as Postfix computes it), so the configuration layer
stays free of system calls and can be tested with fixed facts.
"""

from __future__ import annotations

import socket
from pathlib import Path

from mailseal.config.facts import SystemFacts
from mailseal.config.loader import MAIN_CF, LoadedConfig, load_config
from mailseal.config.maincf import read_main_cf
from mailseal.config.model import Config

__all__ = ["load", "main_config", "system_facts", "system_hostname"]


def system_hostname() -> str:
    """The host name as the OS reports it (Postfix's starting point for myhostname)."""
    return socket.gethostname()


def system_facts(config_dir: str) -> SystemFacts:
    """Facts for ``config_dir`` on this host."""
    return SystemFacts(hostname=system_hostname(), config_directory=config_dir)


def load(config_dir: str) -> LoadedConfig:
    """Load ``config_dir`` with this host's facts (raises ConfigError with file:line)."""
    return load_config(config_dir, system_hostname())


def main_config(config_dir: str | None) -> Config:
    """main.cf alone, for commands that need no services (postmap).

    Defaults only when ``config_dir`` is None or holds no main.cf.
    """
    facts = system_facts(config_dir or "")
    path = Path(config_dir or "") / MAIN_CF
    if config_dir is None or not path.exists():
        return Config({}, facts)
    return Config(read_main_cf(str(path)).settings(), facts)
