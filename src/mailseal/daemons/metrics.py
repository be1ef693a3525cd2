"""Placeholder: the metrics companion of the master (issue #6, being built)."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from mailseal.daemons.companions import Companion, MasterContext


def companion(context: MasterContext) -> Companion | None:
    """Not built yet."""
    return None
