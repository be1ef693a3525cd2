"""``regexp:`` and ``pcre:`` tables, matched with Python's ``re``.

Follows regexp_table(5) and pcre_table(5), checked against Postfix 3.7:

* a rule is ``/pattern/flags result`` or ``!/pattern/flags result``; the
  delimiter may be any character that is not a letter, digit or whitespace
  (``%pattern%``), a backslash escapes the delimiter inside the pattern; a
  line starting with ``#`` is a comment, so ``#`` only delimits after ``!``;
* ``if /pattern/flags`` ... ``endif`` blocks nest (see ``rules``);
* matching is case-insensitive; the flags toggle options: for regexp ``i``
  (case), ``x`` (extended syntax, on by default; off means POSIX basic
  syntax) and ``m`` (multi-line); for pcre ``i``, ``m``, ``s`` (dot matches
  newline), ``x`` (verbose), ``A`` (anchored), ``E`` (``$`` only at the end)
  and ``X`` (accepted; Python already rejects unknown escapes). ``U``
  (ungreedy) has no Python equivalent and skips the rule;
* the key is matched as a whole, as written (no case folding, no splitting);
* the result may use ``$1``, ``${1}`` or ``$(1)`` for a group and ``$$`` for
  ``$``; a group that took no part gives empty text; a negated rule cannot use
  groups; ``$1x`` is the (bad) group "1x", as in Postfix.

Pure: imports only the standard library.
"""

from __future__ import annotations

import re
import warnings
from collections.abc import Callable
from dataclasses import dataclass

from mailseal.config.errors import Location
from mailseal.config.kinds import TableRef
from mailseal.config.tables.base import Diagnostics, Table, register_type
from mailseal.config.tables.dialects import translate
from mailseal.config.tables.rules import (
    Groups,
    Pattern,
    Rule,
    RuleError,
    Template,
    compile_rules,
    first_match,
    rule_lines,
)

__all__ = ["PatternTable", "open_pcre", "open_regexp"]

_MACRO_NAME = re.compile(r"[A-Za-z0-9_]+")


@dataclass(frozen=True)
class _Flavour:
    """What differs between regexp: and pcre: -- flag letters and their defaults."""

    label: str
    defaults: dict[str, bool]
    unsupported: frozenset[str] = frozenset()


_REGEXP = _Flavour("regexp", {"i": True, "x": True, "m": False})
_PCRE = _Flavour(
    "pcre",
    {"i": True, "m": False, "s": False, "x": False, "A": False, "E": False, "X": False},
    unsupported=frozenset("U"),
)


class PatternTable(Table):
    """Rules tried in order against the whole key."""

    fixed = False

    def __init__(self, ref: TableRef, rules: list[Rule[str]]) -> None:
        super().__init__(ref)
        self.rules = rules

    def lookup(self, key: str) -> str | None:
        return first_match(self.rules, key)


@register_type("regexp")
def open_regexp(ref: TableRef, diagnostics: Diagnostics) -> Table:
    """Compile the POSIX regular expression table ``ref``."""
    return _open(ref, diagnostics, _REGEXP)


@register_type("pcre")
def open_pcre(ref: TableRef, diagnostics: Diagnostics) -> Table:
    """Compile the PCRE table ``ref``."""
    return _open(ref, diagnostics, _PCRE)


def _open(ref: TableRef, diagnostics: Diagnostics, flavour: _Flavour) -> Table:
    lines = rule_lines(ref, diagnostics)
    rules = compile_rules(
        lines, lambda text: _parse_pattern(text, flavour), _make_template, diagnostics
    )
    return PatternTable(ref, rules)


def _parse_pattern(text: str, flavour: _Flavour) -> Pattern[str]:
    """Parse ``[!]/pattern/flags`` at the start of ``text``."""
    negated = False
    while text.startswith("!"):
        negated = not negated
        text = text[1:].lstrip()
    if not text or text[0].isalnum() or text[0].isspace():
        raise RuleError("ignoring unrecognized request")
    delimiter, index = text[0], 1
    while index < len(text) and text[index] != delimiter:
        index += 2 if text[index] == "\\" else 1
    if index >= len(text):
        raise RuleError(f'no closing regexp delimiter "{delimiter}"')
    flags_end = index + 1
    while flags_end < len(text) and not text[flags_end].isspace():
        flags_end += 1
    options = _options(text[index + 1 : flags_end], flavour)
    regex = _compile(text[1:index], options, flavour)
    search = regex.match if options["A"] else regex.search
    return Pattern(
        _condition(search, negated),
        text[flags_end:].strip(),
        groups=0 if negated else regex.groups,
        negated=negated,
    )


def _options(flags: str, flavour: _Flavour) -> dict[str, bool]:
    """Toggle the flavour's defaults by each flag letter (regexp_table(5) "flags")."""
    options = {"A": False, "E": False, "s": False, **flavour.defaults}
    for letter in flags:
        if letter in flavour.unsupported:
            raise RuleError(f'unsupported {flavour.label} option "{letter}"')
        if letter not in flavour.defaults:
            raise RuleError(f'unknown {flavour.label} option "{letter}"')
        options[letter] = not options[letter]
    return options


def _compile(source: str, options: dict[str, bool], flavour: _Flavour) -> re.Pattern[str]:
    flags = re.IGNORECASE if options["i"] else 0
    if options["m"]:
        flags |= re.MULTILINE
    if flavour is _REGEXP:
        # POSIX: without REG_NEWLINE a newline is an ordinary character.
        flags |= 0 if options["m"] else re.DOTALL
        dialect, end_only = ("ere" if options["x"] else "bre"), not options["m"]
    else:
        flags |= (re.DOTALL if options["s"] else 0) | (re.VERBOSE if options["x"] else 0)
        dialect, end_only = "pcre", options["E"] and not options["m"]
    try:
        with warnings.catch_warnings():
            # Python's FutureWarnings about odd sets must not reach the admin's
            # terminal from the config layer; the rule compiles the same.
            warnings.simplefilter("ignore")
            return re.compile(translate(source, dialect, dollar_end_only=end_only), flags)
    except re.error as error:
        raise RuleError(f'bad regular expression "{source}": {error}') from None


def _condition(
    search: Callable[[str], re.Match[str] | None], negated: bool
) -> Callable[[str], Groups | None]:
    if negated:
        return lambda key: None if search(key) else ()

    def groups(key: str) -> Groups | None:
        match = search(key)
        return None if match is None else (match.group(0), *match.groups())

    return groups


def _make_template(pattern: Pattern[str], location: Location, diagnostics: Diagnostics) -> Template:
    """Parse the result text, checking ``$n`` against the pattern's groups."""
    text = pattern.rest
    if not text:
        diagnostics.warn("no replacement text: using empty string", location)
        return Template(())
    parts: list[str | int] = []
    literal: list[str] = []
    index = 0
    while index < len(text):
        dollar = text.find("$", index)
        if dollar < 0:
            literal.append(text[index:])
            break
        literal.append(text[index:dollar])
        if text.startswith("$$", dollar):
            literal.append("$")
            index = dollar + 2
            continue
        name, index = _macro(text, dollar)
        parts.extend(["".join(literal), _group_number(name, pattern)])
        literal = []
    parts.append("".join(literal))
    return Template(tuple(part for part in parts if part != ""))


def _macro(text: str, dollar: int) -> tuple[str, int]:
    """The name of the ``$name``, ``${name}`` or ``$(name)`` at ``dollar``; and the next index."""
    opening = text[dollar + 1 : dollar + 2]
    if opening in ("{", "("):
        end = text.find("}" if opening == "{" else ")", dollar + 2)
        if end < 0:
            raise RuleError(f'bad replacement syntax: truncated macro reference: "{text[dollar:]}"')
        return text[dollar + 2 : end], end + 1
    match = _MACRO_NAME.match(text, dollar + 1)
    if match is None:
        raise RuleError(f'bad replacement syntax: empty macro name: "{text}"')
    return match.group(), match.end()


def _group_number(name: str, pattern: Pattern[str]) -> int:
    if not (name.isascii() and name.isdigit()):
        raise RuleError(f'bad replacement syntax: non-numeric replacement index "{name}"')
    if pattern.negated:
        raise RuleError("$number found in negative match replacement text")
    number = int(name)
    if not 1 <= number <= pattern.groups:
        raise RuleError(f'out of range replacement index "{name}"')
    return number
