"""The parameter reference (docs/parameters.md), rendered from the parameter table.

Generated, never written by hand: a test compares the file with this output,
so the documentation cannot drift from what ``postconf -d`` and the code use.

Pure: imports only the standard library and this package.
"""

from __future__ import annotations

from mailseal.config.model import PARAMS
from mailseal.config.param import Computed, Origin

__all__ = ["render_reference"]

_HEADER = """\
# mailseal parameters

Generated from the parameter table (`src/mailseal/config/params/`); do not edit.
Rewrite with `MAILSEAL_UPDATE_GOLDEN=1 ./dev test tests/unit/config/test_reference.py`.

Every parameter keeps Postfix's name and meaning (see postconf(5)); those marked
**mailseal** are mailseal's own. Defaults are in main.cf syntax; `mailseal postconf -d`
shows them with computed values filled in.

| Parameter | Type | Default | What it does |
|---|---|---|---|
"""


def render_reference() -> str:
    """The whole Markdown reference, one table row per parameter, sorted by name."""
    rows = [_row(name) for name in PARAMS]
    return _HEADER + "".join(rows)


def _row(name: str) -> str:
    param = PARAMS[name]
    if isinstance(param.default, Computed):
        default = f"*{param.default.description}*"
    elif param.default:
        default = "`" + param.default.replace("|", "\\|") + "`"
    else:
        default = "(empty)"
    doc = param.doc.replace("|", "\\|")
    if param.origin is Origin.MAILSEAL:
        doc = f"**mailseal**: {doc}"
    kind = param.kind.describe().replace("|", "\\|")
    return f"| `{name}` | {kind} | {default} | {doc} |\n"
