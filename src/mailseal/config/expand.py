"""``$name`` expansion in main.cf and master.cf values, as postconf(5) describes it.

Forms: ``$name``, ``${name}``, ``$(name)``, ``${name?value}`` (value when name is
non-empty), ``${name:value}`` (value when name is empty), ``${name?{v1}:{v2}}``,
relational tests ``${{a} == {b} ? {t} : {f}}`` with ``== != < <= > >=`` (numeric
when both sides are digits) and their ``level`` forms (``<level``) that compare
compatibility levels such as ``3.6``, and ``$$`` for a literal ``$``.
An undefined name expands to the empty string, as in Postfix.

Pure: imports only the standard library.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Callable

__all__ = ["ExpansionError", "check_syntax", "compare_levels", "expand", "references"]

# mac_expand.c stops at 100 levels of nesting: "unreasonable macro call nesting".
_MAX_DEPTH = 100
_NAME = re.compile(r"[A-Za-z0-9_]+")
_RELATIONS = ("==", "!=", "<=", ">=", "<", ">")

Lookup = Callable[[str], str | None]


class ExpansionError(ValueError):
    """A value whose ``$`` syntax is malformed or recurses without end."""


def expand(text: str, lookup: Lookup) -> str:
    """Expand every ``$`` form in ``text``; ``lookup(name)`` gives a raw value or None."""
    return _Expander(lookup).expand(text, 0)


def check_syntax(text: str) -> None:
    """Raise ExpansionError if ``text`` itself is malformed (references not followed)."""
    _Expander(lambda _name: None, visit_all=True).expand(text, 0)


def references(text: str) -> set[str]:
    """The parameter names ``text`` mentions through ``$name`` forms (not expanded)."""
    found: set[str] = set()

    def record(name: str) -> str | None:
        found.add(name)
        return None

    # A malformed value is reported where it is parsed; here it simply
    # mentions whatever names were seen before the error.
    with contextlib.suppress(ExpansionError):
        _Expander(record, visit_all=True).expand(text, 0)
    return found


def compare_levels(left: str, right: str) -> int:
    """Compare compatibility levels ``major[.minor[.patch]]`` (-1, 0 or 1)."""

    def key(level: str) -> tuple[int, ...]:
        parts = level.strip().split(".")
        if not all(p.isdigit() for p in parts):
            raise ExpansionError(f"bad compatibility level {level.strip()!r}")
        numbers = [int(p) for p in parts] + [0, 0]
        return tuple(numbers[:3])

    a, b = key(left), key(right)
    return (a > b) - (a < b)


class _Expander:
    def __init__(self, lookup: Lookup, *, visit_all: bool = False) -> None:
        self._lookup = lookup
        # visit_all: expand both branches of every conditional (to find references).
        self._visit_all = visit_all

    def expand(self, text: str, depth: int) -> str:
        if depth > _MAX_DEPTH:
            raise ExpansionError("unreasonable macro call nesting")
        out: list[str] = []
        pos = 0
        while True:
            dollar = text.find("$", pos)
            if dollar < 0:
                out.append(text[pos:])
                return "".join(out)
            out.append(text[pos:dollar])
            pos = self._one(text, dollar + 1, out, depth)

    def _value_of(self, name: str, depth: int) -> str:
        raw = self._lookup(name)
        return "" if raw is None else self.expand(raw, depth + 1)

    def _one(self, text: str, pos: int, out: list[str], depth: int) -> int:
        """Expand the form starting just after a ``$``; return the position after it."""
        if pos >= len(text):
            raise ExpansionError("'$' at the end of a value (write $$ for a literal $)")
        char = text[pos]
        if char == "$":
            out.append("$")
            return pos + 1
        if char in "{(":
            close = "}" if char == "{" else ")"
            end = _matching(text, pos, char, close)
            out.append(self._braced(text[pos + 1 : end], depth))
            return end + 1
        match = _NAME.match(text, pos)
        if match is None:
            raise ExpansionError(f"bad '$' form at {text[pos - 1 : pos + 10]!r}")
        out.append(self._value_of(match.group(0), depth))
        return match.end()

    def _braced(self, body: str, depth: int) -> str:
        if body.lstrip().startswith("{"):
            return self._relational(body.strip(), depth)
        match = _NAME.match(body)
        if match is None:
            raise ExpansionError(f"bad parameter name in ${{{body}}}")
        name, rest = match.group(0), body[match.end() :]
        if not rest:
            return self._value_of(name, depth)
        value = self._value_of(name, depth)
        return self._conditional(rest, bool(value), value, depth)

    def _conditional(self, rest: str, truth: bool, value: str, depth: int) -> str:
        """``?text``, ``:text``, ``?{a}:{b}`` after a name or a relation."""
        rest = rest.strip()
        if rest.startswith("?"):
            when_true, when_false = _branches(rest[1:].strip())
            if self._visit_all:
                self.expand(when_true, depth + 1)
                self.expand(when_false or "", depth + 1)
            if truth:
                return self.expand(when_true, depth + 1)
            return self.expand(when_false, depth + 1) if when_false is not None else ""
        if rest.startswith(":"):
            branch = rest[1:].strip()
            if branch.startswith("{") and branch.endswith("}"):
                branch = branch[1:-1]
            if self._visit_all:
                self.expand(branch, depth + 1)
            return value if truth else self.expand(branch, depth + 1)
        raise ExpansionError(f"expected '?' or ':' but found {rest[:10]!r}")

    def _relational(self, body: str, depth: int) -> str:
        left_end = _matching(body, 0, "{", "}")
        left = self.expand(body[1:left_end], depth + 1)
        rest = body[left_end + 1 :].strip()
        for relation in _RELATIONS:
            if rest.startswith(relation):
                rest = rest[len(relation) :]
                by_level = rest.startswith("level")
                if by_level:
                    rest = rest[len("level") :]
                break
        else:
            raise ExpansionError(f"unknown relational operator in {rest[:10]!r}")
        rest = rest.strip()
        if not rest.startswith("{"):
            raise ExpansionError("expected '{' after relational operator")
        right_end = _matching(rest, 0, "{", "}")
        right = self.expand(rest[1:right_end], depth + 1)
        truth = _test(left, relation, right, by_level=by_level)
        return self._conditional(rest[right_end + 1 :], truth, "", depth)


def _test(left: str, relation: str, right: str, *, by_level: bool) -> bool:
    if by_level:
        order = compare_levels(left, right)
    elif left.isdigit() and right.isdigit():
        order = (int(left) > int(right)) - (int(left) < int(right))
    else:
        order = (left > right) - (left < right)
    return {
        "==": order == 0,
        "!=": order != 0,
        "<": order < 0,
        "<=": order <= 0,
        ">": order > 0,
        ">=": order >= 0,
    }[relation]


def _branches(text: str) -> tuple[str, str | None]:
    """Split ``{a}:{b}`` / ``{a}`` / ``plain text`` after a ``?``."""
    if not text.startswith("{"):
        return text, None
    end = _matching(text, 0, "{", "}")
    when_true = text[1:end]
    rest = text[end + 1 :].strip()
    if not rest:
        return when_true, None
    if not rest.startswith(":"):
        raise ExpansionError(f"expected ':' but found {rest[:10]!r}")
    other = rest[1:].strip()
    if other.startswith("{"):
        other_end = _matching(other, 0, "{", "}")
        return when_true, other[1:other_end]
    return when_true, other


def _matching(text: str, start: int, opening: str, closing: str) -> int:
    """Index of the bracket closing the one at ``start`` (nesting counted)."""
    depth = 0
    for index in range(start, len(text)):
        if text[index] == opening:
            depth += 1
        elif text[index] == closing:
            depth -= 1
            if depth == 0:
                return index
    raise ExpansionError(f"missing '{closing}' in {text[start : start + 20]!r}")
