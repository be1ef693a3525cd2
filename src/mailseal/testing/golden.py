"""Golden files: compare output with a reviewed file, or rewrite it on request.

Set ``MAILSEAL_UPDATE_GOLDEN=1`` to rewrite golden files from the current
output; review the diff before committing, since that diff *is* the change in
behaviour (Postfix's tls_policy.in/.ref habit).
"""

from __future__ import annotations

import difflib
import os
from pathlib import Path

__all__ = ["assert_golden"]


def assert_golden(actual: str, path: Path) -> None:
    """Fail with a unified diff unless ``actual`` equals the contents of ``path``."""
    if os.environ.get("MAILSEAL_UPDATE_GOLDEN") == "1":
        path.write_text(actual, encoding="utf-8")
        return
    if not path.exists():
        raise AssertionError(f"golden file {path} is missing; rerun with MAILSEAL_UPDATE_GOLDEN=1")
    expected = path.read_text(encoding="utf-8")
    if actual != expected:
        diff = difflib.unified_diff(
            expected.splitlines(keepends=True),
            actual.splitlines(keepends=True),
            fromfile=str(path),
            tofile="actual",
        )
        raise AssertionError("output differs from golden file:\n" + "".join(diff))
