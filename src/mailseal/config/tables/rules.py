"""The rule machinery shared by pattern tables (regexp, pcre, cidr).

regexp_table(5), pcre_table(5) and cidr_table(5) share one shape: rules are
tried in file order and the first that matches gives the result;
``if PATTERN`` ... ``endif`` (any case, nestable) limits the rules between
them to keys that match PATTERN; ``!PATTERN`` negates. Each table type only
says how to parse its PATTERN and its result; this module does the rest.

Like Postfix, a bad rule is skipped with a warning (``Diagnostics.skip``),
so one typo does not take the whole table down. One deliberate difference:
an ``if`` whose pattern is bad still opens a block, one that is never
entered, so its ``endif`` pairs up and the rules meant to be conditional do
not silently become unconditional.

Since Postfix 3.7 the rules may also be written in the table name,
``regexp:{ { rule-1 }, { rule-2 } }``; ``rule_lines`` reads either form.

Pure: imports only the standard library.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Generic, TypeVar

from mailseal.config.errors import Location
from mailseal.config.kinds import TableRef, split_list
from mailseal.config.tables.base import Diagnostics, TableError
from mailseal.config.tables.source import LogicalLine, logical_lines, read_lines

__all__ = [
    "Groups",
    "Pattern",
    "Rule",
    "RuleError",
    "Template",
    "compile_rules",
    "first_match",
    "rule_lines",
]

S = TypeVar("S")

# What a matching condition hands to the result: group 0 and the numbered
# groups of a regular expression (None for a group that took no part), or ()
# for rules that capture nothing (negated patterns, cidr).
Groups = tuple[str | None, ...]


class RuleError(Exception):
    """A rule that cannot be used; the message is Postfix's description of why."""


@dataclass(frozen=True)
class Template:
    """A result: literal text and group numbers to substitute (``$1``, ``${2}``)."""

    parts: tuple[str | int, ...]

    @classmethod
    def literal(cls, text: str) -> Template:
        return cls((text,))

    def expand(self, groups: Groups) -> str:
        return "".join(
            part if isinstance(part, str) else (groups[part] or "") for part in self.parts
        )


@dataclass(frozen=True)
class Pattern(Generic[S]):
    """A parsed PATTERN: its test, the text after it, and what a result may use."""

    condition: Callable[[S], Groups | None]
    rest: str
    groups: int = 0
    negated: bool = False


@dataclass
class Rule(Generic[S]):
    """A compiled line: a result rule, or an ``if`` (``template`` None) up to ``end``."""

    condition: Callable[[S], Groups | None]
    template: Template | None
    location: Location
    end: int = 0  # for an ``if``: index of the first rule after its ``endif``


def first_match(rules: Sequence[Rule[S]], subject: S) -> str | None:
    """The result of the first rule that matches ``subject``, if any."""
    index = 0
    while index < len(rules):
        rule = rules[index]
        groups = rule.condition(subject)
        if rule.template is None:
            index = index + 1 if groups is not None else rule.end
        elif groups is not None:
            return rule.template.expand(groups)
        else:
            index += 1
    return None


def _never(subject: object) -> Groups | None:
    """The condition of an ``if`` whose pattern was bad: the block is skipped."""
    return None


def _statement(text: str) -> tuple[str, str]:
    """Split ``if``/``endif`` (any case, not glued to a word) from the rest of the line."""
    for keyword in ("endif", "if"):
        head, tail = text[: len(keyword)], text[len(keyword) :]
        if head.lower() == keyword and not tail[:1].isalnum():
            return keyword, tail.strip()
    return "", text


def compile_rules(
    lines: Iterable[LogicalLine],
    parse_pattern: Callable[[str], Pattern[S]],
    make_template: Callable[[Pattern[S], Location, Diagnostics], Template],
    diagnostics: Diagnostics,
) -> list[Rule[S]]:
    """Compile a table's lines; ``parse_pattern`` and ``make_template`` raise RuleError."""
    rules: list[Rule[S]] = []
    open_ifs: list[Rule[S]] = []
    for line in lines:
        keyword, rest = _statement(line.text)
        if keyword == "endif":
            if rest:
                diagnostics.warn("ignoring extra text after ENDIF", line.location)
            if open_ifs:
                open_ifs.pop().end = len(rules)
            else:
                diagnostics.skip("ignoring ENDIF without matching IF", line.location)
            continue
        rule = _compile_line(
            keyword == "if",
            rest,
            line.location,
            parse_pattern=parse_pattern,
            make_template=make_template,
            diagnostics=diagnostics,
        )
        if rule is not None:
            if rule.template is None:
                open_ifs.append(rule)
            rules.append(rule)
    for rule in open_ifs:
        rule.end = len(rules)
        diagnostics.skip("IF has no matching ENDIF", rule.location)
    return rules


def _compile_line(
    is_if: bool,
    text: str,
    location: Location,
    *,
    parse_pattern: Callable[[str], Pattern[S]],
    make_template: Callable[[Pattern[S], Location, Diagnostics], Template],
    diagnostics: Diagnostics,
) -> Rule[S] | None:
    """One ``if`` or result rule; None for a result rule that had to be skipped."""
    try:
        pattern = parse_pattern(text)
        if not is_if:
            return Rule(pattern.condition, make_template(pattern, location, diagnostics), location)
        if pattern.rest:
            diagnostics.warn(f'ignoring extra text after IF statement: "{pattern.rest}"', location)
        return Rule(pattern.condition, None, location)
    except RuleError as error:
        diagnostics.skip(f"{error}: skipping this rule", location)
        return Rule(_never, None, location) if is_if else None


def rule_lines(ref: TableRef, diagnostics: Diagnostics) -> Iterator[LogicalLine]:
    """The logical lines of a pattern table: its file, or ``{ {rule}, ... }`` in the name."""
    name = ref.name.strip()
    if not name.startswith("{"):
        return logical_lines(read_lines(ref.name), ref.name, diagnostics)
    if not name.endswith("}"):
        raise TableError(f"bad syntax: \"{ref}\": missing '}}'")
    try:
        items = split_list(name[1:-1])
    except ValueError as error:
        raise TableError(f'bad syntax: "{ref}": {error}') from None
    # Each braced item is one line of an in-memory file (regexp_table(5),
    # "INLINE SPECIFICATION"), parsed like any file.
    texts = [
        item[1:-1].strip() if item.startswith("{") and item.endswith("}") else item
        for item in items
    ]
    return logical_lines(texts, str(ref), diagnostics)
