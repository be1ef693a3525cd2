"""POSIX / PCRE pattern rewriting for Python's re."""

import re

import pytest

from mailseal.config.tables.dialects import translate


@pytest.mark.parametrize(
    ("pattern", "dialect", "expected"),
    [
        ("[[:alpha:]]", "ere", "[A-Za-z]"),
        ("[^[:digit:]x]", "ere", "[^0-9x]"),
        ("[]a]", "ere", "[\\]a]"),
        ("[\\d]", "ere", "[\\\\d]"),
        ("[\\d]", "pcre", "[\\d]"),
        ("[[.-.]]", "ere", "[\\-]"),
        ("a\\.b", "ere", "a\\.b"),
        ("\\<w\\>", "ere", "\\b(?=\\w)w\\b(?<=\\w)"),
        ("a+(b)", "bre", "a\\+\\(b\\)"),
        ("\\(a\\)\\{2\\}", "bre", "(a){2}"),
        ("end$", "ere", "end\\Z"),
        ("end\\z", "pcre", "end\\Z"),
        ("(?<n>x)", "pcre", "(?P<n>x)"),
        ("(?<=x)y", "pcre", "(?<=x)y"),
        ("\\Qa.b\\E", "pcre", "a\\.b"),
    ],
)
def test_translate(pattern: str, dialect: str, expected: str) -> None:
    assert translate(pattern, dialect, dollar_end_only=dialect != "pcre") == expected


@pytest.mark.parametrize("pattern", ["[abc", "[[:nonsense:]]", "a\\", "[[:alpha:"])
def test_untranslatable(pattern: str) -> None:
    with pytest.raises(re.error):
        translate(pattern, "ere", dollar_end_only=True)
