"""``Config``: the frozen, typed view of every parameter for one service.

A ``Config`` layers explicit settings (main.cf, then a master.cf service's
``-o`` overrides) over the defaults of the parameter table; attribute names are
the main.cf names (``config.smtpd_tls_security_level``). Every parameter is
expanded and parsed when the ``Config`` is built, so a bad value is reported
with its file and line at load time, never halfway through an SMTP session.

Pure: imports only the standard library and this package.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from mailseal.config.errors import ConfigError, Setting
from mailseal.config.expand import ExpansionError, check_syntax, expand
from mailseal.config.facts import SystemFacts
from mailseal.config.param import Computed, Param
from mailseal.config.params.identity import IdentityParams
from mailseal.config.params.queue import QueueParams
from mailseal.config.params.smtp import SmtpParams
from mailseal.config.params.smtpd import SmtpdParams
from mailseal.config.params.system import SystemParams
from mailseal.config.params.tls_client import TlsClientParams
from mailseal.config.params.tls_common import TlsCommonParams
from mailseal.config.params.tls_server import TlsServerParams

__all__ = ["PARAMS", "Config", "default_text"]


class Config(
    SystemParams,
    IdentityParams,
    SmtpdParams,
    TlsServerParams,
    SmtpParams,
    TlsClientParams,
    TlsCommonParams,
    QueueParams,
):
    """Every parameter in effect for one service; immutable once built."""

    __slots__ = ("_facts", "_settings", "_values")
    _facts: SystemFacts
    _settings: dict[str, Setting]
    _values: dict[str, object]

    def __init__(self, settings: Mapping[str, Setting], facts: SystemFacts) -> None:
        object.__setattr__(self, "_settings", dict(settings))
        object.__setattr__(self, "_facts", facts)
        object.__setattr__(self, "_values", {})
        # Blame a malformed "$" form on the line that holds it, not on the first
        # parameter whose default happens to refer to it.
        for name, setting in self._settings.items():
            try:
                check_syntax(setting.value)
            except ExpansionError as error:
                raise ConfigError(f"{name}: {error}", setting.location) from None
        # Explicit settings first, so that an error names the line that causes it
        # rather than a default that refers to it.
        for param in sorted(PARAMS.values(), key=lambda p: p.name not in self._settings):
            self._values[param.name] = self._parse(param)

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError("Config is immutable; use derive() for a changed copy")

    # -- reading -------------------------------------------------------------------

    def value_of(self, name: str) -> object:
        """The typed value of a table parameter (what ``config.NAME`` returns)."""
        return self._values[name]

    def raw(self, name: str) -> str | None:
        """The text in effect before expansion: explicit, else default, else None."""
        setting = self._settings.get(name)
        if setting is not None:
            return setting.value
        param = PARAMS.get(name)
        if param is None:
            return None
        return default_text(param, self._facts, self.expanded)

    def expanded(self, name: str) -> str:
        """The text in effect with every ``$name`` expanded ('' when undefined)."""
        text = self.raw(name)
        if text is None:
            return ""
        param = PARAMS.get(name)
        if param is not None and param.raw:
            return text
        return expand(text, self.raw)

    def setting(self, name: str) -> Setting | None:
        """The explicit setting of ``name`` (main.cf or ``-o``), if there is one."""
        return self._settings.get(name)

    @property
    def facts(self) -> SystemFacts:
        return self._facts

    def derive(self, overrides: Mapping[str, Setting]) -> Config:
        """A new ``Config`` with ``overrides`` layered on top (master.cf ``-o``)."""
        return Config({**self._settings, **overrides}, self._facts)

    # -- building ------------------------------------------------------------------

    def _parse(self, param: Param[Any]) -> object:
        setting = self._settings.get(param.name)
        location = setting.location if setting else None
        try:
            text = self.expanded(param.name)
        except ExpansionError as error:
            raise ConfigError(f"{param.name}: {error}", location) from None
        try:
            return param.kind.parse(text)
        except ValueError as error:
            origin = "" if setting else " (default)"
            raise ConfigError(
                f'invalid {param.name} value{origin} "{text}": {error}', location
            ) from None


def default_text(param: Param[Any], facts: SystemFacts, expanded: Any) -> str:
    """The default of ``param`` in main.cf syntax (computed defaults evaluated)."""
    if isinstance(param.default, Computed):
        return param.default.compute(facts, expanded)
    return param.default


def _collect() -> dict[str, Param[Any]]:
    table: dict[str, Param[Any]] = {}
    for family in reversed(Config.__mro__):
        for name, attribute in vars(family).items():
            if isinstance(attribute, Param):
                if name in table:
                    raise RuntimeError(f"parameter {name} is declared twice")
                table[name] = attribute
    return dict(sorted(table.items()))


PARAMS: Mapping[str, Param[Any]] = _collect()
