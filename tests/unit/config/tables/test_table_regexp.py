"""regexp: and pcre: tables (regexp_table(5), pcre_table(5))."""

from pathlib import Path

import pytest

from mailseal.config.errors import Location
from mailseal.config.tables import Table, TableError, open_table


def table(tmp_path: Path, text: str, kind: str = "regexp", *, strict: bool = False) -> Table:
    path = tmp_path / "rules"
    path.write_text(text)
    return open_table(f"{kind}:{path}", strict=strict)


def warnings(found: Table) -> list[str]:
    return [f"line {w.location.line}: {w.message}" for w in found.warnings if w.location]


def test_hit_miss_and_group_substitution(tmp_path: Path) -> None:
    found = table(tmp_path, "/^(.*)-outgoing@(.*)$/  550 Use ${1}@${2} instead\n")
    assert found.lookup("list-outgoing@Example.COM") == "550 Use list@Example.COM instead"
    assert found.lookup("list@example.com") is None
    assert not found.fixed


def test_all_substitution_spellings(tmp_path: Path) -> None:
    found = table(tmp_path, "%^x(y)z(q)?$% a $1 $(1)x $$ ${1}.$1-[${2}]\n")
    assert found.lookup("xyz") == "a y yx $ y.y-[]"


def test_first_match_wins_and_key_is_matched_whole(tmp_path: Path) -> None:
    found = table(tmp_path, "/^user@/ FIRST\n/example/ SECOND\n")
    assert found.lookup("user@example.com") == "FIRST"
    assert found.lookup("other@example.com") == "SECOND"


def test_case_insensitive_by_default_and_i_toggles_it_off(tmp_path: Path) -> None:
    found = table(tmp_path, "/^abc$/i CASE\n/^abc$/ NOCASE\n")
    assert found.lookup("abc") == "CASE"
    assert found.lookup("ABC") == "NOCASE"


def test_key_keeps_its_case_for_substitution(tmp_path: Path) -> None:
    assert table(tmp_path, "/^(.*)$/ <$1>\n").lookup("MiXeD") == "<MiXeD>"


def test_negation(tmp_path: Path) -> None:
    found = table(tmp_path, "!/^neg/ NOT-NEG\n")
    assert found.lookup("other") == "NOT-NEG"
    assert found.lookup("neg-thing") is None
    assert table(tmp_path, "!!/^a/ TWICE\n").lookup("abc") == "TWICE"


def test_if_endif_blocks_nest_and_are_case_insensitive(tmp_path: Path) -> None:
    text = (
        "if /@example\\.com$/\n"
        "IF !/^postmaster@/\n"
        "/^(.*)@/ local $1\n"
        "ENDIF\n"
        "/./ postmaster\n"
        "endif\n"
        "/./ elsewhere\n"
    )
    found = table(tmp_path, text)
    assert found.lookup("joe@example.com") == "local joe"
    assert found.lookup("postmaster@example.com") == "postmaster"
    assert found.lookup("joe@example.org") == "elsewhere"


def test_if_needs_no_space_before_the_pattern(tmp_path: Path) -> None:
    assert table(tmp_path, "if/a/\n/a/ X\nendif\n").lookup("a") == "X"


def test_multiline_flag_and_newlines(tmp_path: Path) -> None:
    found = table(tmp_path, "/^abc$/ END\n/^x.y$/ DOT\n/^l1$/m MULTI\n")
    assert found.lookup("abc\n") is None  # POSIX $ is the very end
    assert found.lookup("x\ny") == "DOT"  # POSIX . matches a newline
    assert found.lookup("l1\nl2") == "MULTI"


def test_x_flag_switches_to_basic_regular_expressions(tmp_path: Path) -> None:
    found = table(tmp_path, "/^p(q)+r$/x LITERAL\n/^p\\(q\\)\\{2\\}r$/x GROUPED\n")
    assert found.lookup("p(q)+r") == "LITERAL"
    assert found.lookup("pqqr") == "GROUPED"


def test_posix_bracket_expressions(tmp_path: Path) -> None:
    found = table(tmp_path, "/^[[:digit:]]+$/ DIGITS\n/^[\\]x$/ BACKSLASH\n/\\<word\\>/ WORD\n")
    assert found.lookup("123") == "DIGITS"
    assert found.lookup("\\x") == "BACKSLASH"
    assert found.lookup("a word here") == "WORD"
    assert found.lookup("awordhere") is None


def test_continued_result(tmp_path: Path) -> None:
    assert table(tmp_path, "/a/ first\n  second\n").lookup("a") == "first  second"


@pytest.mark.parametrize(
    ("rule", "message"),
    [
        ("/a(/ X", 'bad regular expression "a("'),
        ("/a X", 'no closing regexp delimiter "/"'),
        ("/a/q X", 'unknown regexp option "q"'),
        ("/a/OK", 'unknown regexp option "O"'),
        ("/(a)/ $2", 'out of range replacement index "2"'),
        ("/(a)/ $0", 'out of range replacement index "0"'),
        ("/(a)/ $1x", 'non-numeric replacement index "1x"'),
        ("/(a)/ ${1", "truncated macro reference"),
        ("/(a)/ x $ y", "empty macro name"),
        ("!/(a)/ $1", "$number found in negative match replacement text"),
        ("foo bar", "ignoring unrecognized request"),
    ],
)
def test_bad_rules_are_skipped_with_file_and_line(tmp_path: Path, rule: str, message: str) -> None:
    found = table(tmp_path, f"# first\n{rule}\n/a/ FALLBACK\n")
    assert found.lookup("a") == "FALLBACK"
    assert len(found.warnings) == 1
    assert found.warnings[0].location == Location(str(tmp_path / "rules"), 2)
    assert message in found.warnings[0].message
    assert found.warnings[0].message.endswith(": skipping this rule")


def test_strict_turns_a_bad_rule_into_an_error(tmp_path: Path) -> None:
    with pytest.raises(TableError) as caught:
        table(tmp_path, "/a(/ X\n", strict=True)
    assert caught.value.location == Location(str(tmp_path / "rules"), 1)


def test_endif_without_if_and_missing_endif(tmp_path: Path) -> None:
    found = table(tmp_path, "endif\nif /a/\n/a/ X\n")
    assert found.lookup("a") == "X"
    assert warnings(found) == [
        "line 1: ignoring ENDIF without matching IF",
        "line 2: IF has no matching ENDIF",
    ]


def test_extra_text_after_if_and_endif_is_ignored_with_warning(tmp_path: Path) -> None:
    found = table(tmp_path, "if /a/ junk\n/a/ X\nendif junk\n")
    assert found.lookup("a") == "X"
    assert warnings(found) == [
        'line 1: ignoring extra text after IF statement: "junk"',
        "line 3: ignoring extra text after ENDIF",
    ]


def test_bad_if_pattern_skips_its_whole_block(tmp_path: Path) -> None:
    found = table(tmp_path, "if /a(/\n/a/ INSIDE\nendif\n/a/ OUTSIDE\n")
    assert found.lookup("a") == "OUTSIDE"


def test_missing_result_means_empty_text(tmp_path: Path) -> None:
    found = table(tmp_path, "/a/\n")
    assert found.lookup("a") == ""
    assert warnings(found) == ["line 1: no replacement text: using empty string"]


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(TableError, match=r"^open .*/nope: No such file or directory$"):
        open_table(f"regexp:{tmp_path / 'nope'}")


def test_rules_inline_in_the_name() -> None:
    found = open_table("regexp:{ {/^a(.)$/ A$1}, {/^b/ B} }")
    assert found.lookup("ax") == "Ax"
    assert found.lookup("bee") == "B"
    assert found.lookup("c") is None


def test_regexp_cannot_be_listed(tmp_path: Path) -> None:
    with pytest.raises(TableError, match="sequence operation is not supported"):
        list(table(tmp_path, "/a/ b\n").items())


def test_pcre_basics(tmp_path: Path) -> None:
    found = table(tmp_path, "/^(\\w+)\\d{2}$/ W$1\n!/^z/ NOT-Z\n", kind="pcre")
    assert found.lookup("ABC12") == "WABC"
    assert found.lookup("zzz") is None
    assert found.lookup("q") == "NOT-Z"


@pytest.mark.parametrize(
    ("rule", "key", "hit"),
    [
        ("/^abc$/i X", "ABC", False),
        ("/^a.c$/ X", "a\nc", False),
        ("/^a.c$/s X", "a\nc", True),
        ("/^a b c$/x X", "abc", True),
        ("/b/ X", "abc", True),
        ("/b/A X", "abc", False),
        ("/c$/ X", "abc\n", True),
        ("/c$/E X", "abc\n", False),
        ("/^b$/m X", "a\nb\nc", True),
        ("/^[[:alpha:]]+$/ X", "abc", True),
        ("/^(?<first>a)b$/ X", "ab", True),
        ("/^\\Qa.b\\E$/ X", "a.b", True),
        ("/^\\Qa.b\\E$/ X", "axb", False),
    ],
)
def test_pcre_flags(tmp_path: Path, rule: str, key: str, hit: bool) -> None:
    assert (table(tmp_path, rule + "\n", kind="pcre").lookup(key) == "X") is hit


def test_pcre_ungreedy_flag_is_not_supported(tmp_path: Path) -> None:
    found = table(tmp_path, "/a/U X\n", kind="pcre")
    assert found.lookup("a") is None
    assert 'unsupported pcre option "U"' in found.warnings[0].message
