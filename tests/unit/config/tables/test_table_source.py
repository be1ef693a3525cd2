"""postmap(1) source format: comments, continuation lines, folding, duplicates, bad lines."""

from pathlib import Path

import pytest

from mailseal.config.errors import Location
from mailseal.config.tables.base import Diagnostics, TableError
from mailseal.config.tables.source import (
    logical_lines,
    parse_entries,
    parse_source,
    read_lines,
    split_entry,
)


def entries(text: str, *, strict: bool = False) -> tuple[dict[str, str], list[str]]:
    diagnostics = Diagnostics(strict=strict)
    parsed = parse_entries(text.split("\n"), "src", diagnostics)
    return {key: entry.value for key, entry in parsed.items()}, [
        str(w) for w in diagnostics.warnings
    ]


def test_key_and_value_with_inner_whitespace_kept() -> None:
    found, warnings = entries("key  value with  spaces  \n")
    assert found == {"key": "value with  spaces"}
    assert warnings == []


def test_comments_only_when_first_non_blank_character() -> None:
    found, _ = entries("# comment\n   # indented comment\nkey a # not a comment\n")
    assert found == {"key": "a # not a comment"}


def test_continuation_joined_as_written_even_across_blank_and_comment_lines() -> None:
    # Postfix 3.7 keeps the whitespace at the join and drops only the newline.
    text = "a value\n continued\nb value\n\tcontinued\nd value  \n\n# c\n  after blank\n"
    found, _ = entries(text)
    assert found == {
        "a": "value continued",
        "b": "value\tcontinued",
        "d": "value    after blank",
    }


def test_value_may_start_on_the_continuation_line() -> None:
    assert entries("c\n continued value\n")[0] == {"c": "continued value"}


def test_keys_fold_to_lower_case_values_do_not() -> None:
    assert entries("User@Example.COM Some@Where\n")[0] == {"user@example.com": "Some@Where"}


def test_duplicate_keeps_first_and_warns_with_first_line_of_logical_line() -> None:
    found, warnings = entries("a one\nb two\n\nA\n  three\n")
    assert found == {"a": "one", "b": "two"}
    assert warnings == ['src, line 4: duplicate entry: "a"']


def test_key_without_value_is_skipped_with_postfix_warning() -> None:
    found, warnings = entries("x y\nnovalue\nonlykey   \n")
    assert found == {"x": "y"}
    assert warnings == [
        "src, line 2: expected format: key whitespace value -- ignoring this line",
        "src, line 3: expected format: key whitespace value -- ignoring this line",
    ]


def test_strict_makes_key_without_value_an_error_with_location() -> None:
    with pytest.raises(TableError) as caught:
        entries("x y\nnovalue\n", strict=True)
    assert caught.value.location == Location("src", 2)
    assert "expected format: key whitespace value" in str(caught.value)


def test_quoted_key_may_contain_whitespace_and_keeps_its_quotes() -> None:
    found, _ = entries('"x y" quoted\n"p\\"q" esc\nk"e y" v\n')
    assert found == {'"x y"': "quoted", '"p\\"q"': "esc", 'k"e y"': "v"}


def test_unbalanced_quote_is_skipped() -> None:
    found, warnings = entries('"unterminated val\nok yes\n')
    assert found == {"ok": "yes"}
    assert warnings == [
        "src, line 1: unbalanced '\"' in '\"unterminated val' -- ignoring this line"
    ]


def test_line_starting_with_whitespace_before_any_entry_is_skipped() -> None:
    diagnostics = Diagnostics()
    lines = list(logical_lines(["  orphan", "a b"], "src", diagnostics))
    assert [line.text for line in lines] == ["a b"]
    assert diagnostics.warnings[0].location == Location("src", 1)


def test_split_entry() -> None:
    assert split_entry("key\tvalue  ") == ("key", "value")
    with pytest.raises(ValueError, match="expected format"):
        split_entry("key")


def test_non_utf8_line_is_skipped(tmp_path: Path) -> None:
    source = tmp_path / "u"
    source.write_bytes(b"caf\xe9 x\nb y\n")
    diagnostics = Diagnostics()
    parsed = parse_source(str(source), diagnostics)
    assert list(parsed) == ["b"]
    assert 'non-UTF-8 input "caf? x" -- ignoring this line' in str(diagnostics.warnings[0])


def test_missing_file_error_is_worded_like_postfix(tmp_path: Path) -> None:
    missing = str(tmp_path / "nope")
    with pytest.raises(TableError, match=f"^open database {missing}: No such file or directory$"):
        read_lines(missing, "open database")
