"""$name expansion as postconf(5) describes it, including Postfix 3.x relational forms."""

import pytest

from mailseal.config.expand import ExpansionError, compare_levels, expand, references

TABLE = {
    "myhostname": "mail.example.com",
    "mydomain": "example.com",
    "banner": "$myhostname ESMTP $mail_name",
    "mail_name": "mailseal",
    "empty": "",
    "level": "3.6",
    "loop_a": "$loop_b",
    "loop_b": "$loop_a",
}


def x(text: str) -> str:
    return expand(text, TABLE.get)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("$myhostname", "mail.example.com"),
        ("${myhostname}", "mail.example.com"),
        ("$(myhostname)", "mail.example.com"),
        ("$banner", "mail.example.com ESMTP mailseal"),
        ("<$undefined>", "<>"),
        ("a$$b", "a$b"),
        ("${mydomain?yes}", "yes"),
        ("${empty?yes}", ""),
        ("${mydomain:fallback}", "example.com"),
        ("${empty:fallback $mydomain}", "fallback example.com"),
        ("${mydomain?{set}:{unset}}", "set"),
        ("${empty?{set}:{unset}}", "unset"),
        ("${{$level} <level {3.6} ? {md5} : {sha256}}", "sha256"),
        ("${{$level} <level {3.10} ? {old} : {new}}", "old"),
        ("${{$level} == {3.6} ? {same}}", "same"),
        ("${{10} > {9} ? {numeric} : {lexical}}", "numeric"),
        ("${{b} > {a} ? {after}}", "after"),
        ("${{$mail_name} != {postfix} ? {not postfix} : {postfix}}", "not postfix"),
        ("!SSLv2, !SSLv3, >=TLSv1.2", "!SSLv2, !SSLv3, >=TLSv1.2"),
    ],
)
def test_expand_forms(text: str, expected: str) -> None:
    assert x(text) == expected


@pytest.mark.parametrize("text", ["$", "${myhostname", "${{a} ~~ {b} ? {c}}", "$-x"])
def test_expand_rejects_malformed(text: str) -> None:
    with pytest.raises(ExpansionError):
        x(text)


def test_expand_detects_loops() -> None:
    with pytest.raises(ExpansionError, match="nesting"):
        x("$loop_a")


def test_references_lists_names_without_expanding() -> None:
    assert references("$a ${b} ${c?{$d}:{x}} $$e") == {"a", "b", "c", "d"}


def test_compare_levels_is_numeric_per_component() -> None:
    assert compare_levels("3.10", "3.9") == 1
    assert compare_levels("3", "3.0.0") == 0
    assert compare_levels("2", "3.6") == -1
