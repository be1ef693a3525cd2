"""Load a configuration directory: main.cf, master.cf, and one ``Config`` per service.

Each service's ``Config`` is defaults <- main.cf <- its master.cf ``-o``
overrides, built (and so validated) when the directory is loaded. Parameters
the table does not know are reported as Postfix reports them, "unused
parameter: name=value", unless something refers to them with ``$name`` (the
stock master.cf's ``$mua_client_restrictions`` idiom) or they are per-transport
settings such as ``relay_destination_concurrency_limit``.

Pure: imports only the standard library and this package.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from mailseal.config.errors import ConfigWarning, Location, Setting
from mailseal.config.expand import references
from mailseal.config.facts import SystemFacts
from mailseal.config.kinds import split_list
from mailseal.config.maincf import MainCf, read_main_cf
from mailseal.config.mastercf import MasterCf, MasterService, read_master_cf
from mailseal.config.model import PARAMS, Config

__all__ = ["MAIN_CF", "MASTER_CF", "LoadedConfig", "load_config"]

MAIN_CF = "main.cf"
MASTER_CF = "master.cf"

# Per-transport parameters named after a master.cf service (postconf(5), "transport_...").
_TRANSPORT_SUFFIXES = (
    "delivery_slot_cost",
    "delivery_slot_discount",
    "delivery_slot_loan",
    "destination_concurrency_failed_cohort_limit",
    "destination_concurrency_limit",
    "destination_concurrency_negative_feedback",
    "destination_concurrency_positive_feedback",
    "destination_rate_delay",
    "destination_recipient_limit",
    "extra_recipient_limit",
    "initial_destination_concurrency",
    "minimum_delivery_slots",
    "recipient_limit",
    "recipient_refill_delay",
    "recipient_refill_limit",
    "time_limit",
    "transport_rate_delay",
)


@dataclass(frozen=True)
class LoadedConfig:
    """A configuration directory as loaded: files, the base Config, one per service."""

    directory: str
    main: MainCf
    master: MasterCf
    base: Config
    services: dict[str, Config] = field(default_factory=dict)
    warnings: tuple[ConfigWarning, ...] = ()

    def service_config(self, service: MasterService) -> Config:
        """The frozen Config of ``service``: main.cf, ``service_name``, its ``-o`` overrides.

        Services with overrides were built (and so validated) at load time; the
        others differ from main.cf only in ``service_name`` and are built on
        first use.
        """
        config = self.services.get(service.key)
        if config is None:
            config = self.services[service.key] = _derive(self.base, service)
        return config

    def smtpd_services(self) -> Iterator[tuple[MasterService, Config]]:
        """The inet smtpd services of master.cf, with their Configs, in file order."""
        for service in self.master.services:
            if service.is_smtpd:
                yield service, self.service_config(service)


def load_config(directory: str, hostname: str) -> LoadedConfig:
    """Load ``directory``/main.cf and master.cf; raise ConfigError with file:line on errors."""
    facts = SystemFacts(hostname=hostname, config_directory=directory)
    main = read_main_cf(str(Path(directory) / MAIN_CF))
    master = read_master_cf(str(Path(directory) / MASTER_CF))
    base = Config(main.settings(), facts)
    services = {s.key: _derive(base, s) for s in master.services if s.overrides}
    warnings = [*main.warnings, *_unused(main, master)]
    return LoadedConfig(directory, main, master, base, services, tuple(warnings))


def _derive(base: Config, service: MasterService) -> Config:
    # Postfix's master sets service_name for each service it runs ($service_name
    # in the stock master.cf's "-o syslog_name=postfix/$service_name").
    return base.derive({"service_name": Setting(service.name), **service.settings()})


def _unused(main: MainCf, master: MasterCf) -> Iterator[ConfigWarning]:
    """Warn about names no parameter, reference or transport explains."""
    referenced = _referenced_names(
        [e.value for e in main.entries]
        + [o.value for s in master.services for o in s.overrides]
        + [w for s in master.services for w in s.args]
    )
    # Restriction classes are named in restriction lists without a "$" (postconf(5)).
    classes = main.settings().get("smtpd_restriction_classes")
    if classes is not None:
        referenced |= set(split_list(classes.value))
    transports = {s.name for s in master.services}
    definitions: list[tuple[str, str, Location]] = [
        (e.name, e.value, e.location) for e in main.entries
    ]
    definitions += [(o.name, o.value, o.location) for s in master.services for o in s.overrides]
    for name, value, location in definitions:
        if name in PARAMS or name in referenced or _is_transport_param(name, transports):
            continue
        yield ConfigWarning(f"unused parameter: {name}={value}", location)


def _referenced_names(values: Iterable[str]) -> set[str]:
    names: set[str] = set()
    for value in values:
        names |= references(value)
    return names


def _is_transport_param(name: str, transports: set[str]) -> bool:
    return any(
        name == f"{transport}_{suffix}"
        for transport in transports
        for suffix in _TRANSPORT_SUFFIXES
    )
