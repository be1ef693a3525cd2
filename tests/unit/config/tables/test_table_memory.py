"""texthash:, inline: and static: tables."""

from pathlib import Path

import pytest

from mailseal.config.tables import TableError, open_table


def test_texthash_hit_miss_and_case_folding(tmp_path: Path) -> None:
    source = tmp_path / "virtual"
    source.write_text("# aliases\nInfo@Example.com  Alice@Example.NET\nbob  robert\n")
    table = open_table(f"texthash:{source}")
    assert table.lookup("info@example.com") == "Alice@Example.NET"
    assert table.lookup("INFO@EXAMPLE.COM") == "Alice@Example.NET"
    assert table.lookup("carol") is None
    assert table.fixed
    assert list(table.items()) == [("info@example.com", "Alice@Example.NET"), ("bob", "robert")]


def test_texthash_exposes_duplicate_warning(tmp_path: Path) -> None:
    source = tmp_path / "t"
    source.write_text("a 1\na 2\n")
    table = open_table(f"texthash:{source}")
    assert table.lookup("a") == "1"
    assert [str(w) for w in table.warnings] == [f'{source}, line 2: duplicate entry: "a"']


def test_texthash_missing_file(tmp_path: Path) -> None:
    with pytest.raises(TableError, match=r"open database .*/nope: No such file or directory"):
        open_table(f"texthash:{tmp_path / 'nope'}")


def test_inline_plain_and_braced_entries() -> None:
    table = open_table("inline:{ a=b, { c = d e }, X=y=z }")
    assert table.lookup("a") == "b"
    assert table.lookup("C") == "d e"
    assert table.lookup("x") == "y=z"
    assert table.lookup("missing") is None


def test_inline_later_duplicate_wins_like_postfix() -> None:
    assert open_table("inline:{a=b, a=c}").lookup("a") == "c"


@pytest.mark.parametrize(
    ("ref", "message"),
    [
        ("inline:{a}", "missing '=' after attribute name"),
        ("inline:{ a = b }", "missing '=' after attribute name"),
        ("inline:{ { a } }", "missing '=' after attribute name"),
        ("inline:a=b", "bad syntax"),
        ("inline:{}", "bad syntax"),
        ("inline:{a=b", "bad syntax"),
    ],
)
def test_inline_errors(ref: str, message: str) -> None:
    with pytest.raises(TableError, match=message):
        open_table(ref)


def test_static_every_key_same_value() -> None:
    table = open_table("static:OK")
    assert table.lookup("anything") == "OK"
    assert table.lookup("") == "OK"
    assert open_table("static:{ text with spaces }").lookup("k") == "text with spaces"


def test_static_unbalanced_brace() -> None:
    with pytest.raises(TableError, match="missing '}'"):
        open_table("static:{foo")


def test_static_cannot_be_listed() -> None:
    with pytest.raises(TableError, match="sequence operation is not supported"):
        list(open_table("static:x").items())
