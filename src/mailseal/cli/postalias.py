"""Placeholder: the postalias command (issue #6, being built)."""

from __future__ import annotations

from typing import Any


def register(commands: Any) -> None:
    """Not built yet: registers nothing."""
