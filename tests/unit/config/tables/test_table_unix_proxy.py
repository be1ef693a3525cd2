"""unix: tables (the system's passwd and group databases) and the proxy: prefix."""

import pwd
from pathlib import Path

import pytest

from mailseal.config.tables import TableError, open_table


def test_passwd_byname_answers_the_whole_entry_for_root() -> None:
    table = open_table("unix:passwd.byname")
    entry = table.lookup("root")
    assert entry is not None
    fields = entry.split(":")
    assert len(fields) == 7
    assert fields[0] == "root"
    assert fields[2] == "0"
    assert fields[5] == pwd.getpwnam("root").pw_dir
    assert table.fixed


def test_passwd_byname_folds_the_key_and_misses_unknown_users() -> None:
    table = open_table("unix:passwd.byname")
    assert table.lookup("ROOT") == table.lookup("root")
    assert table.lookup("no-such-user-mailseal") is None
    assert table.lookup("") is None
    assert table.lookup("ro\0ot") is None


def test_group_byname_knows_the_root_group() -> None:
    entry = open_table("unix:group.byname").lookup("root")
    assert entry is not None
    assert entry.split(":")[2] == "0"


def test_unknown_unix_map_is_postfix_unknown_table() -> None:
    with pytest.raises(TableError, match=r"unknown table: unix:passwd\.byuid"):
        open_table("unix:passwd.byuid")


def test_proxy_is_transparent_for_unix_tables() -> None:
    table = open_table("proxy:unix:passwd.byname")
    assert table.lookup("root") == open_table("unix:passwd.byname").lookup("root")
    assert str(table.ref) == "proxy:unix:passwd.byname"
    assert table.fixed


def test_proxy_keeps_pattern_tables_pattern_tables(tmp_path: Path) -> None:
    source = tmp_path / "re"
    source.write_text("/^a(.*)$/ got $1\n")
    table = open_table(f"proxy:regexp:{source}")
    assert not table.fixed
    assert table.lookup("abc") == "got bc"
    texthash = tmp_path / "t"
    texthash.write_text("Key value\n")
    assert open_table(f"proxy:texthash:{texthash}").lookup("KEY") == "value"


def test_proxy_refuses_itself_unsupported_types_and_missing_files(tmp_path: Path) -> None:
    with pytest.raises(TableError, match="cannot be proxied again"):
        open_table("proxy:proxy:unix:passwd.byname")
    with pytest.raises(TableError, match="unsupported dictionary type: nis"):
        open_table("proxy:nis:mail.aliases")
    with pytest.raises(TableError, match="No such file or directory"):
        open_table(f"proxy:hash:{tmp_path / 'aliases'}")
