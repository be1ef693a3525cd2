"""How sub-commands talk to the admin: Postfix-style ``program: warning: ...`` lines.

Postfix tools prefix their diagnostics with the program name and a severity
("postconf: warning: foo: unknown parameter"); admins and scripts grep for that
shape, so every mailseal sub-command reports the same way.
"""

from __future__ import annotations

import sys
from typing import NoReturn

__all__ = ["CommandError", "fatal", "warn"]


class CommandError(Exception):
    """A failure the command reports as ``program: fatal: message`` and exit status 1."""

    def __init__(self, program: str, message: str) -> None:
        self.program = program
        self.message = message
        super().__init__(f"{program}: fatal: {message}")


def warn(program: str, message: str) -> None:
    """Print ``program: warning: message`` on standard error."""
    print(f"{program}: warning: {message}", file=sys.stderr)


def fatal(program: str, message: str) -> NoReturn:
    """Stop the command with ``program: fatal: message`` (exit status 1)."""
    raise CommandError(program, message)
