"""Value kinds of main.cf parameters: how a text value becomes a typed one.

Each kind parses the *expanded* text of a parameter (after ``$name`` expansion)
and raises ``ValueError`` with a one-line explanation when the text is not
valid. The spellings follow postconf(5): booleans are ``yes``/``no``, times are
a number with an optional unit ``s m h d w``, lists are separated by
whitespace or commas, lookup tables are ``type:name``.

Pure: imports only the standard library.
"""

from __future__ import annotations

import re
from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import ClassVar, Generic, TypeVar

__all__ = [
    "TIME_UNITS",
    "TLS_PROTOCOL_NAMES",
    "BoolKind",
    "EnumKind",
    "IntKind",
    "Kind",
    "ListKind",
    "ProtocolsKind",
    "SizeKind",
    "StrKind",
    "TableListKind",
    "TableRef",
    "TimeKind",
    "TlsProtocolRange",
    "split_list",
]

T = TypeVar("T")

# postconf(5) "time" values: a number followed by an optional unit letter.
TIME_UNITS: dict[str, int] = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}

# Names Postfix accepts in *_tls_protocols / *_tls_mandatory_protocols.
TLS_PROTOCOL_NAMES: tuple[str, ...] = ("SSLv2", "SSLv3", "TLSv1", "TLSv1.1", "TLSv1.2", "TLSv1.3")

# Postfix list separators: CHARS_COMMA_SP (mail_params.h) is ", \t\r\n".
_LIST_SEPARATORS = re.compile(r"[,\s]+")
_TABLE_REF = re.compile(r"^([a-z][a-z0-9_-]*):(.+)$", re.DOTALL)


def split_list(text: str) -> tuple[str, ...]:
    """Split a Postfix list on commas and whitespace, keeping ``{ ... }`` groups whole.

    Postfix 3.0+ lets a list element contain spaces when written in braces, as in
    ``inline:{ a=b, c=d }`` or ``check_policy_service { inet:127.0.0.1:9998, timeout=10s }``.
    """
    items: list[str] = []
    current: list[str] = []
    depth = 0
    for char in text:
        if char == "{":
            depth += 1
        elif char == "}" and depth > 0:
            depth -= 1
        if depth == 0 and _LIST_SEPARATORS.fullmatch(char):
            if current:
                items.append("".join(current))
                current = []
            continue
        current.append(char)
    if depth:
        raise ValueError(f"missing '}}' in {text.strip()!r}")
    if current:
        items.append("".join(current))
    return tuple(items)


class Kind(ABC, Generic[T]):
    """One parameter type: a parser from expanded text to a value."""

    label: ClassVar[str]

    @abstractmethod
    def parse(self, text: str) -> T:
        """Return the value of ``text`` or raise ``ValueError`` saying why not."""

    def describe(self) -> str:
        """A short human description of what the kind accepts (for docs)."""
        return self.label


@dataclass(frozen=True)
class BoolKind(Kind[bool]):
    """``yes`` or ``no`` (mail_conf_bool.c accepts exactly these, any case)."""

    label: ClassVar[str] = "bool"

    def parse(self, text: str) -> bool:
        word = text.strip().lower()
        if word == "yes":
            return True
        if word == "no":
            return False
        raise ValueError("expected yes or no")


@dataclass(frozen=True)
class IntKind(Kind[int]):
    """A decimal integer within ``[minimum, maximum]``."""

    minimum: int = 0
    maximum: int | None = None
    label: ClassVar[str] = "int"

    def parse(self, text: str) -> int:
        word = text.strip()
        if not re.fullmatch(r"-?[0-9]+", word):
            raise ValueError("expected a whole number")
        return _bounded(int(word), self.minimum, self.maximum)

    def describe(self) -> str:
        return _describe_bounds("int", self.minimum, self.maximum)


@dataclass(frozen=True)
class SizeKind(Kind[int]):
    """A byte count (Postfix has no unit suffixes for sizes)."""

    minimum: int = 0
    maximum: int | None = None
    label: ClassVar[str] = "size"

    def parse(self, text: str) -> int:
        word = text.strip()
        if not word.isdigit():
            raise ValueError("expected a number of bytes")
        return _bounded(int(word), self.minimum, self.maximum)

    def describe(self) -> str:
        return _describe_bounds("size", self.minimum, self.maximum)


@dataclass(frozen=True)
class TimeKind(Kind[int]):
    """A duration in whole seconds: number plus unit (s, m, h, d, w).

    ``unit`` is the parameter's default unit, used when the value has none
    (``maximal_queue_lifetime = 5`` means five days, as in Postfix).
    """

    unit: str = "s"
    minimum: int = 0
    maximum: int | None = None
    label: ClassVar[str] = "time"

    def parse(self, text: str) -> int:
        match = re.fullmatch(r"([0-9]+)([a-z]?)", text.strip())
        if match is None:
            raise ValueError("expected a time such as 300s, 5m, 1h, 5d or 1w")
        number, unit = match.group(1), match.group(2) or self.unit
        if unit not in TIME_UNITS:
            raise ValueError(f"unknown time unit {unit!r}: use s, m, h, d or w")
        return _bounded(int(number) * TIME_UNITS[unit], self.minimum, self.maximum)

    def describe(self) -> str:
        return _describe_bounds(f"time ({self.unit})", self.minimum, self.maximum)


@dataclass(frozen=True)
class StrKind(Kind[str]):
    """Free text (hostnames, paths, banner text); ``nonempty`` forbids ''."""

    nonempty: bool = False
    label: ClassVar[str] = "string"

    def parse(self, text: str) -> str:
        value = text.strip()
        if self.nonempty and not value:
            raise ValueError("must not be empty")
        return value


@dataclass(frozen=True)
class EnumKind(Kind[str]):
    """One word out of a fixed set (case-insensitive, returned lower-case)."""

    choices: tuple[str, ...]
    label: ClassVar[str] = "enum"

    def parse(self, text: str) -> str:
        word = text.strip()
        for choice in self.choices:
            if word.lower() == choice.lower():
                return choice
        shown = ", ".join(c for c in self.choices if c)
        raise ValueError(f"expected one of {shown}" + (" or empty" if "" in self.choices else ""))

    def describe(self) -> str:
        return "one of " + " | ".join(c if c else '""' for c in self.choices)


@dataclass(frozen=True)
class ListKind(Kind[tuple[str, ...]]):
    """A list separated by commas and/or whitespace."""

    label: ClassVar[str] = "list"

    def parse(self, text: str) -> tuple[str, ...]:
        return split_list(text)


@dataclass(frozen=True)
class TableRef:
    """A lookup-table reference ``type:name`` such as ``hash:/etc/mailseal/virtual``."""

    type: str
    name: str

    @classmethod
    def parse(cls, text: str) -> TableRef:
        match = _TABLE_REF.match(text.strip())
        if match is None:
            raise ValueError(f"{text.strip()!r} is not a lookup table (expected type:name)")
        return cls(match.group(1), match.group(2))

    def __str__(self) -> str:
        return f"{self.type}:{self.name}"


@dataclass(frozen=True)
class TableListKind(Kind[tuple[TableRef, ...]]):
    """A list of lookup tables, searched in order."""

    label: ClassVar[str] = "tables"

    def parse(self, text: str) -> tuple[TableRef, ...]:
        return tuple(TableRef.parse(item) for item in split_list(text))

    def describe(self) -> str:
        return "list of type:name lookup tables"


@dataclass(frozen=True)
class TlsProtocolRange:
    """The TLS protocol versions a parameter allows, as written by the admin.

    ``excluded`` holds names written as ``!NAME``; ``included`` names written
    bare (Postfix's legacy "only these" form); ``minimum`` / ``maximum`` the
    Postfix 3.6+ ``>=NAME`` / ``<=NAME`` bounds. Turning this into an OpenSSL
    configuration is the job of ``mailseal.tls``.
    """

    excluded: frozenset[str] = frozenset()
    included: frozenset[str] = frozenset()
    minimum: str | None = None
    maximum: str | None = None

    def allowed(self) -> tuple[str, ...]:
        """The protocol names these limits leave, oldest first (before OpenSSL's own)."""
        names = TLS_PROTOCOL_NAMES
        low = names.index(self.minimum) if self.minimum else 0
        high = names.index(self.maximum) if self.maximum else len(names) - 1
        return tuple(
            name
            for index, name in enumerate(names)
            if low <= index <= high
            and name not in self.excluded
            and (not self.included or name in self.included)
        )


@dataclass(frozen=True)
class ProtocolsKind(Kind[TlsProtocolRange]):
    """``!SSLv2, !SSLv3`` (exclusions), ``>=TLSv1.2`` (bounds), or both."""

    label: ClassVar[str] = "tls-protocols"

    def parse(self, text: str) -> TlsProtocolRange:
        excluded: set[str] = set()
        included: set[str] = set()
        minimum: str | None = None
        maximum: str | None = None
        for item in _LIST_SEPARATORS.split(text.replace(":", " ").strip()):
            if not item:
                continue
            for prefix in (">=", "<=", "!"):
                if item.startswith(prefix):
                    name = _protocol_name(item[len(prefix) :])
                    break
            else:
                prefix, name = "", _protocol_name(item)
            if prefix == ">=":
                minimum = name
            elif prefix == "<=":
                maximum = name
            elif prefix == "!":
                excluded.add(name)
            else:
                included.add(name)
        chosen = TlsProtocolRange(frozenset(excluded), frozenset(included), minimum, maximum)
        if text.strip() and not chosen.allowed():
            raise ValueError("no TLS protocol is left once these limits are applied")
        return chosen

    def describe(self) -> str:
        return "TLS protocols: !NAME exclusions and/or >=NAME, <=NAME bounds"


def _protocol_name(word: str) -> str:
    for name in TLS_PROTOCOL_NAMES:
        if word.lower() == name.lower():
            return name
    raise ValueError(
        f"unknown TLS protocol {word!r}: expected one of {', '.join(TLS_PROTOCOL_NAMES)}"
    )


def _bounded(value: int, minimum: int, maximum: int | None) -> int:
    if value < minimum:
        raise ValueError(f"{value} is less than the minimum {minimum}")
    if maximum is not None and value > maximum:
        raise ValueError(f"{value} is more than the maximum {maximum}")
    return value


def _describe_bounds(label: str, minimum: int, maximum: int | None) -> str:
    if maximum is None:
        return f"{label} >= {minimum}"
    return f"{label} in [{minimum}, {maximum}]"
