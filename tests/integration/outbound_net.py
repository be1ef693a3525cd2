"""Mailseal instances for the outbound tests: prepared (ports reserved) and started apart."""

from dataclasses import dataclass
from pathlib import Path

from mailseal.testing.server import Instance, MailsealProcess, Ports, make_instance


@dataclass
class Network:
    """Instances made under one directory; all are stopped by PID at the end."""

    root: Path
    started: list[MailsealProcess]

    def prepare(self, name: str, hostname: str, main_cf_extra: str = "") -> Instance:
        """Write an instance's configuration (not started: its ports stay reserved names)."""
        directory = self.root / name
        ports: Ports = make_instance(directory, main_cf_extra, hostname=hostname)
        return Instance(directory, ports, MailsealProcess(directory))

    def start(self, instance: Instance) -> Instance:
        instance.process.start()
        self.started.append(instance.process)
        return instance
