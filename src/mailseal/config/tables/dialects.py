r"""Rewrite POSIX and PCRE regular expressions into Python ``re`` syntax.

regexp_table(5) patterns are POSIX regular expressions (regex(7)): extended
(ERE) by default, basic (BRE) when the ``x`` flag is toggled off.
pcre_table(5) patterns are Perl-compatible. Python's ``re`` is close to both
but not equal; this module rewrites the constructs whose meaning differs:

* bracket expressions: POSIX classes ``[[:alpha:]]`` (also valid in PCRE),
  collating elements ``[[.-.]]`` and ``[[=a=]]``; in POSIX a backslash in
  brackets is an ordinary character;
* GNU word boundaries ``\<`` and ``\>``, buffer anchors ``\``` and ``\'``;
* in BRE, ``\( \) \{ \} \| \+ \?`` are the operators and the bare
  characters are literals;
* ``$`` matching only at the very end of the key (POSIX without ``m``, PCRE
  with ``E``), where Python's ``$`` also matches before a final newline;
* PCRE ``\z``, ``\Z``, ``\h``, ``\Q...\E`` and ``(?<name>...)``.

Not reproduced: POSIX leftmost-longest matching (Python, like PCRE, takes
the leftmost alternative that matches), which can change what ``$1`` holds
when alternatives overlap.

Pure: imports only the standard library.
"""

from __future__ import annotations

import re

__all__ = ["POSIX_CLASSES", "translate"]

# POSIX character classes in the C locale, as Python set contents.
POSIX_CLASSES: dict[str, str] = {
    "alnum": "0-9A-Za-z",
    "alpha": "A-Za-z",
    "blank": " \\t",
    "cntrl": "\\x00-\\x1f\\x7f",
    "digit": "0-9",
    "graph": "!-~",
    "lower": "a-z",
    "print": " -~",
    "punct": "!-/:-@\\[-`{-~",
    "space": " \\t\\n\\r\\f\\v",
    "upper": "A-Z",
    "word": "0-9A-Za-z_",
    "xdigit": "0-9A-Fa-f",
}

# Backslash sequences outside brackets with a POSIX (GNU regex) meaning.
_POSIX_ESCAPES: dict[str, str] = {
    "<": r"\b(?=\w)",
    ">": r"\b(?<=\w)",
    "`": r"\A",
    "'": r"\Z",
    **{letter: "\\" + letter for letter in "wWsSbB123456789"},
}

_PCRE_ESCAPES: dict[str, str] = {
    "z": r"\Z",
    "Z": r"(?=\n?\Z)",
    "h": r"[ \t]",
}

# In a BRE these are literals unless preceded by a backslash.
_BRE_OPERATORS = "(){}|+?"


def translate(pattern: str, dialect: str, *, dollar_end_only: bool) -> str:
    """Rewrite ``pattern`` of ``dialect`` (``ere``, ``bre`` or ``pcre``) for ``re``.

    ``dollar_end_only`` makes ``$`` match only at the end of the key.
    Raises ``re.error`` for a pattern that cannot be rewritten.
    """
    out: list[str] = []
    index = 0
    while index < len(pattern):
        char = pattern[index]
        if char == "[":
            text, index = _bracket(pattern, index, posix=dialect != "pcre")
            out.append(text)
            continue
        if char == "\\":
            text, index = _escape(pattern, index, dialect)
            out.append(text)
            continue
        if dialect == "bre" and char in _BRE_OPERATORS:
            out.append("\\" + char)
        elif char == "$" and dollar_end_only:
            out.append(r"\Z")
        elif (
            dialect == "pcre"
            and pattern.startswith("(?<", index)
            and _starts_name(pattern, index + 3)
        ):
            out.append("(?P<")
            index += 3
            continue
        else:
            out.append(char)
        index += 1
    return "".join(out)


def _starts_name(pattern: str, index: int) -> bool:
    return index < len(pattern) and (pattern[index].isalpha() or pattern[index] == "_")


def _escape(pattern: str, index: int, dialect: str) -> tuple[str, int]:
    """Translate the backslash sequence at ``index``; return it and the next index."""
    if index + 1 >= len(pattern):
        raise re.error("trailing backslash", pattern, index)
    char = pattern[index + 1]
    if dialect == "pcre":
        if char == "Q":
            end = pattern.find("\\E", index + 2)
            end = len(pattern) if end < 0 else end
            return re.escape(pattern[index + 2 : end]), min(end + 2, len(pattern))
        return _PCRE_ESCAPES.get(char, "\\" + char), index + 2
    if dialect == "bre" and char in _BRE_OPERATORS:
        return char, index + 2
    return _POSIX_ESCAPES.get(char, re.escape(char)), index + 2


def _bracket(pattern: str, start: int, *, posix: bool) -> tuple[str, int]:
    """Translate the bracket expression at ``start``; return it and the index after it."""
    out = ["["]
    index = start + 1
    if pattern.startswith("^", index):
        out.append("^")
        index += 1
    first = True
    while index < len(pattern):
        char = pattern[index]
        if char == "]" and not first:
            out.append("]")
            return "".join(out), index + 1
        first = False
        if char == "[" and pattern[index + 1 : index + 2] in (":", ".", "="):
            text, index = _bracket_element(pattern, index)
            out.append(text)
            continue
        if char == "\\" and not posix:
            out.append(pattern[index : index + 2])
            index += 2
            continue
        # Escape what Python would read as an escape, a nested set or a set
        # operation; in a bracket expression they are plain characters.
        out.append("\\" + char if char in "\\[]&~|" else char)
        index += 1
    raise re.error("unterminated character set", pattern, start)


def _bracket_element(pattern: str, index: int) -> tuple[str, int]:
    """``[:class:]``, ``[.c.]`` or ``[=c=]`` inside brackets."""
    kind = pattern[index + 1]
    close = pattern.find(kind + "]", index + 2)
    if close < 0:
        raise re.error(f"unterminated [{kind}", pattern, index)
    name = pattern[index + 2 : close]
    if kind != ":":
        # Collating elements are single characters in the C locale.
        return re.escape(name), close + 2
    if name not in POSIX_CLASSES:
        raise re.error(f"invalid character class {name!r}", pattern, index)
    return POSIX_CLASSES[name], close + 2
