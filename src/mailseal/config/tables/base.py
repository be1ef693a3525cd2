"""What every lookup table is, and how a ``type:name`` reference becomes one.

Follows DATABASE_README and postmap(1): a table answers ``lookup(key)`` with a
string or "not found"; the ``type`` selects the implementation through the
registry ``TABLE_TYPES`` (filled by the modules of this package when they are
imported); an unknown type fails with Postfix's own words, "unsupported
dictionary type".

Problems that Postfix reports and then survives (a malformed line is skipped,
a duplicate key ignored) become ``ConfigWarning`` objects on the table's
``warnings`` attribute, never printed here. With ``strict=True`` the problems
that make Postfix skip a line are raised as ``TableError`` instead, for
callers such as ``mailseal check`` that want a clean table.

Pure: imports only the standard library.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator
from types import TracebackType
from typing import ClassVar

from mailseal.config.errors import ConfigError, ConfigWarning, Location
from mailseal.config.kinds import TableRef

__all__ = [
    "TABLE_TYPES",
    "Diagnostics",
    "Opener",
    "Table",
    "TableError",
    "open_table",
    "register_type",
    "table_ref",
]


class TableError(ConfigError):
    """A table that cannot be opened or parsed; names the file and line when known."""


class Table(ABC):
    """One open lookup table.

    ``fixed`` is Postfix's DICT_FLAG_FIXED: the keys are fixed strings that
    are folded to lower case, and partial keys (``@domain``, a bare localpart)
    make sense. Pattern tables (regexp, pcre, cidr) clear it; they only ever
    see whole keys, as written.
    """

    fixed: ClassVar[bool] = True

    def __init__(self, ref: TableRef) -> None:
        self.ref = ref
        self.warnings: tuple[ConfigWarning, ...] = ()

    @abstractmethod
    def lookup(self, key: str) -> str | None:
        """The value for ``key``, or None when the table has no entry for it."""

    def items(self) -> Iterator[tuple[str, str]]:
        """Every ``(key, value)`` pair, for ``postmap -s``; not all types can."""
        raise TableError(f"table {self.ref}: sequence operation is not supported")

    def close(self) -> None:  # noqa: B027 - optional hook: most tables hold nothing open
        """Release files held open; the default table holds none."""

    def __enter__(self) -> Table:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.ref}>"


class Diagnostics:
    """Collects the warnings of one table load; ``strict`` turns skipped lines into errors."""

    def __init__(self, *, strict: bool = False) -> None:
        self.strict = strict
        self.warnings: list[ConfigWarning] = []

    def warn(self, message: str, location: Location | None = None) -> None:
        """Something worth telling the admin that changes nothing (a duplicate key)."""
        self.warnings.append(ConfigWarning(message, location))

    def skip(self, message: str, location: Location | None = None) -> None:
        """A line Postfix ignores with a warning; an error when strict."""
        if self.strict:
            raise TableError(message, location)
        self.warn(message, location)


# How each type opens: a function of the reference and the load's diagnostics.
Opener = Callable[[TableRef, Diagnostics], Table]

# type name -> opener. Data rather than an if-chain, so a new type is one
# decorated function in its own module.
TABLE_TYPES: dict[str, Opener] = {}


def register_type(*names: str) -> Callable[[Opener], Opener]:
    """Decorator: make ``opener`` the implementation of the table types ``names``."""

    def register(opener: Opener) -> Opener:
        for name in names:
            TABLE_TYPES[name] = opener
        return opener

    return register


def table_ref(ref: TableRef | str) -> TableRef:
    """``ref`` as a ``TableRef``; TableError (Postfix's wording) when it is not ``type:name``."""
    if isinstance(ref, TableRef):
        return ref
    try:
        return TableRef.parse(ref)
    except ValueError:
        raise TableError(
            f'open dictionary: expecting "type:name" form instead of "{ref}"'
        ) from None


def open_table(ref: TableRef | str, *, strict: bool = False) -> Table:
    """Open the table ``ref`` (``"hash:/etc/x"`` or a ``TableRef``).

    Raises ``TableError`` for an unsupported type, a missing file or index,
    or a syntax error Postfix also treats as fatal (``inline:`` without '=').
    """
    ref = table_ref(ref)
    opener = TABLE_TYPES.get(ref.type)
    if opener is None:
        raise TableError(f"unsupported dictionary type: {ref.type}")
    diagnostics = Diagnostics(strict=strict)
    table = opener(ref, diagnostics)
    table.warnings = tuple(diagnostics.warnings)
    return table
