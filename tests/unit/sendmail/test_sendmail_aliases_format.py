"""The aliases(5) format as postalias reads it, and the index it builds."""

from pathlib import Path

import pytest

from mailseal.config.errors import ConfigWarning
from mailseal.config.tables import open_table
from mailseal.config.tables.aliases import build_alias_index, parse_alias_line

SOURCE = """\
# comment
root: admin, ops
Postmaster:   root
"first last": fl@example.test
list: :include:/etc/mail/list,
  more@example.test
  # a comment between continuation lines
pipe: "|/usr/bin/prog arg", /var/mail/file
bad line without colon
: novalue
noname:
a, b: c
remote@example.test: x
root: duplicate
spaced  :  a ,b
"""


@pytest.mark.parametrize(
    ("line", "entry"),
    [
        ("root: admin", ("root", "admin")),
        ("ROOT:admin,ops", ("root", "admin, ops")),
        ('"x: y": z', ("x: y", "z")),
        ("list: :include:/x", ("list", ":include:/x")),
        ('p: "|cmd  with  spaces"', ("p", '"|cmd  with  spaces"')),
        ("c: a (a comment, with comma) , b", ("c", "a (a comment, with comma), b")),
    ],
)
def test_parse_alias_line(line: str, entry: tuple[str, str]) -> None:
    assert parse_alias_line(line) == entry


@pytest.mark.parametrize(
    ("line", "reason"),
    [
        ("no colon", "need name:value pair"),
        (": value", "need name:value pair"),
        ("name:", "need name:value pair"),
        ("a, b: c", "need name:value pair"),
        ("a@b: c", "name must be local"),
        ("a%b: c", "name must be local"),
    ],
)
def test_bad_lines(line: str, reason: str) -> None:
    with pytest.raises(ValueError, match=reason):
        parse_alias_line(line)


def test_build_index_with_postfix_warnings(tmp_path: Path) -> None:
    source = tmp_path / "aliases"
    source.write_text(SOURCE)
    warnings: list[ConfigWarning] = []
    index = build_alias_index(f"hash:{source}", warnings.append)
    assert index == f"{source}.db"
    assert [str(w) for w in warnings] == [
        f"{source}, line 9: need name:value pair",
        f"{source}, line 10: need name:value pair",
        f"{source}, line 11: need name:value pair",
        f"{source}, line 12: need name:value pair",
        f"{source}, line 13: name must be local",
        f'{source}, line 14: duplicate entry: "root"',
    ]
    with open_table(f"hash:{source}") as table:
        assert table.lookup("root") == "admin, ops"
        assert table.lookup("POSTMASTER") == "root"
        assert table.lookup("first last") == "fl@example.test"
        assert table.lookup("list") == ":include:/etc/mail/list, more@example.test"
        assert table.lookup("pipe") == '"|/usr/bin/prog arg", /var/mail/file'
        assert table.lookup("spaced") == "a, b"
        assert table.lookup("@") == "@"  # Sendmail's "complete" signature
        assert table.lookup("remote@example.test") is None
