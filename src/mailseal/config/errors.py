"""Where a configuration value came from, and the errors and warnings about it.

Every message names the file and line, as Postfix does ("/etc/postfix/main.cf,
line 12: ..."), so an admin can go straight to the culprit.

Pure: imports only the standard library.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["ConfigError", "ConfigWarning", "Location", "Setting"]


@dataclass(frozen=True)
class Location:
    """A line in a configuration file (line numbers start at 1)."""

    path: str
    line: int

    def __str__(self) -> str:
        return f"{self.path}, line {self.line}"


@dataclass(frozen=True)
class Setting:
    """A parameter value as written, and where (None: built in or from the command line)."""

    value: str
    location: Location | None = None


class ConfigError(Exception):
    """A configuration the product cannot run with; the text is shown to the admin."""

    def __init__(self, message: str, location: Location | None = None) -> None:
        self.message = message
        self.location = location
        super().__init__(f"{location}: {message}" if location else message)


@dataclass(frozen=True)
class ConfigWarning:
    """Something worth telling the admin that does not stop the product."""

    message: str
    location: Location | None = None

    def __str__(self) -> str:
        return f"{self.location}: {self.message}" if self.location else self.message
