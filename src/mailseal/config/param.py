"""``Param``: one row of the parameter table, declared as a class attribute.

The parameter table is the class body of ``mailseal.config.model.Config`` (split
into families under ``mailseal.config.params``). Each row is

    smtpd_tls_security_level = Param(EnumKind(...), "", "one-line doc")

so the attribute name *is* the main.cf name, and reading
``config.smtpd_tls_security_level`` on a per-service ``Config`` returns the
typed, ``$``-expanded value in effect for that service. ``postconf``,
validation, documentation and tests all read this one table.

Pure: imports only the standard library and this package.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum
from typing import Any, Generic, Protocol, TypeVar, overload

from mailseal.config.facts import SystemFacts
from mailseal.config.kinds import Kind

__all__ = ["Computed", "Origin", "Param", "ParamHost"]

T = TypeVar("T")


class Origin(Enum):
    """Whether a parameter is Postfix's (same name and meaning) or mailseal's own."""

    POSTFIX = "postfix"
    MAILSEAL = "mailseal"


@dataclass(frozen=True)
class Computed:
    """A default computed at run time, as Postfix computes ``myhostname``.

    ``compute(facts, expanded)`` returns the default text; ``expanded(name)``
    gives another parameter's expanded value.
    """

    description: str
    compute: Callable[[SystemFacts, Callable[[str], str]], str]


class ParamHost(Protocol):
    """What a ``Param`` needs from the object it is read on (``Config``)."""

    def value_of(self, name: str) -> object: ...


class Param(Generic[T]):
    """A main.cf parameter: kind (parser), default text, one-line doc, origin.

    ``default`` is written in main.cf syntax (it may say ``$myhostname``) or is
    ``Computed``. ``raw`` marks parameters whose value Postfix does not
    ``$``-expand at read time (their ``$`` is expanded later, per message).
    """

    name: str

    def __init__(
        self,
        kind: Kind[T],
        default: str | Computed,
        doc: str,
        *,
        origin: Origin = Origin.POSTFIX,
        raw: bool = False,
    ) -> None:
        self.kind = kind
        self.default = default
        self.doc = doc
        self.origin = origin
        self.raw = raw

    def __set_name__(self, owner: type[Any], name: str) -> None:
        self.name = name

    @overload
    def __get__(self, obj: None, owner: type[Any]) -> Param[T]: ...

    @overload
    def __get__(self, obj: ParamHost, owner: type[Any]) -> T: ...

    def __get__(self, obj: ParamHost | None, owner: type[Any]) -> Param[T] | T:
        if obj is None:
            return self
        value: T = obj.value_of(self.name)  # type: ignore[assignment]
        return value

    def __repr__(self) -> str:
        return f"Param({self.name!r})"
