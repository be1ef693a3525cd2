"""hash: and the other indexed types: atomic build, read-only lookup, stale index, errors."""

import os
import stat
import time
from pathlib import Path

import pytest

from mailseal.config.errors import ConfigWarning
from mailseal.config.kinds import TableRef
from mailseal.config.tables import INDEX_SUFFIXES, TableError, build_index, delete_key, open_table
from mailseal.config.tables.index import index_path


@pytest.fixture
def source(tmp_path: Path) -> Path:
    path = tmp_path / "virtual"
    path.write_text("Alice@Example.COM  alice@mail.example\n# comment\nbob  robert\n continued\n")
    return path


def test_build_then_lookup(source: Path) -> None:
    index = build_index(f"hash:{source}")
    assert index == f"{source}.db"
    table = open_table(f"hash:{source}")
    assert table.lookup("alice@example.com") == "alice@mail.example"
    assert table.lookup("ALICE@example.COM") == "alice@mail.example"
    assert table.lookup("bob") == "robert continued"
    assert table.lookup("carol") is None
    assert table.warnings == ()
    assert list(table.items()) == [
        ("alice@example.com", "alice@mail.example"),
        ("bob", "robert continued"),
    ]
    table.close()


@pytest.mark.parametrize(("kind", "suffix"), sorted(INDEX_SUFFIXES.items()))
def test_each_indexed_type_has_its_postfix_file_name(source: Path, kind: str, suffix: str) -> None:
    assert build_index(TableRef(kind, str(source))) == f"{source}{suffix}"
    assert open_table(f"{kind}:{source}").lookup("bob") == "robert continued"
    assert open_table(f"{kind}:{source}").lookup("nobody") is None


def test_build_reports_warnings_and_keeps_first_duplicate(tmp_path: Path) -> None:
    path = tmp_path / "t"
    path.write_text("a 1\na 2\nnovalue\n")
    seen: list[ConfigWarning] = []
    build_index(f"hash:{path}", seen.append)
    assert [str(w) for w in seen] == [
        f'{path}, line 2: duplicate entry: "a"',
        f"{path}, line 3: expected format: key whitespace value -- ignoring this line",
    ]
    assert open_table(f"hash:{path}").lookup("a") == "1"


def test_build_is_atomic_and_leaves_no_temporary_files(source: Path) -> None:
    build_index(f"hash:{source}")
    first_inode = Path(f"{source}.db").stat().st_ino
    build_index(f"hash:{source}")
    assert Path(f"{source}.db").stat().st_ino != first_inode  # replaced, not rewritten
    assert sorted(p.name for p in source.parent.iterdir()) == ["virtual", "virtual.db"]


def test_index_mode_takes_group_and_other_read_bits_from_source(source: Path) -> None:
    source.chmod(0o751)
    build_index(f"hash:{source}")
    assert stat.S_IMODE(Path(f"{source}.db").stat().st_mode) == 0o640
    source.chmod(0o604)
    build_index(f"hash:{source}")
    assert stat.S_IMODE(Path(f"{source}.db").stat().st_mode) == 0o604


def test_missing_index(source: Path) -> None:
    with pytest.raises(TableError) as caught:
        open_table(f"hash:{source}")
    assert str(caught.value) == f"open database {source}.db: No such file or directory"


def test_missing_source_when_building(tmp_path: Path) -> None:
    with pytest.raises(TableError, match=r"^open .*/nope: No such file or directory$"):
        build_index(f"hash:{tmp_path / 'nope'}")


def test_stale_index_still_answers_but_warns(source: Path) -> None:
    build_index(f"hash:{source}")
    now = time.time()
    os.utime(f"{source}.db", (now - 3600, now - 3600))
    os.utime(source, (now - 600, now - 600))
    table = open_table(f"hash:{source}")
    assert table.lookup("bob") == "robert continued"
    assert [w.message for w in table.warnings] == [
        f"database {source}.db is older than source file {source}"
    ]


def test_source_edited_moments_ago_does_not_warn_yet(source: Path) -> None:
    # Postfix gives the admin 100 seconds to run postmap after an edit.
    build_index(f"hash:{source}")
    now = time.time()
    os.utime(f"{source}.db", (now - 3600, now - 3600))
    assert open_table(f"hash:{source}").warnings == ()


def test_index_built_by_something_else_is_refused(source: Path) -> None:
    Path(f"{source}.db").write_bytes(b"\x00\x06\x15\x61 Berkeley DB hash file" * 100)
    with pytest.raises(TableError, match="not a mailseal index"):
        open_table(f"hash:{source}")


def test_index_is_opened_read_only(source: Path) -> None:
    build_index(f"hash:{source}")
    Path(f"{source}.db").chmod(0o400)
    assert open_table(f"hash:{source}").lookup("bob") == "robert continued"


def test_delete_key(source: Path) -> None:
    build_index(f"hash:{source}")
    assert delete_key(f"hash:{source}", "BOB") is True
    assert delete_key(f"hash:{source}", "bob") is False
    assert open_table(f"hash:{source}").lookup("bob") is None


@pytest.mark.parametrize(
    ("ref", "message"),
    [
        ("texthash:/x", "unsupported dictionary type: texthash does not support bulk-mode"),
        ("regexp:/x", "unsupported dictionary type: regexp does not support bulk-mode"),
        ("foo:/x", "^unsupported dictionary type: foo$"),
    ],
)
def test_only_indexed_types_can_be_built(ref: str, message: str) -> None:
    with pytest.raises(TableError, match=message):
        build_index(ref)


def test_index_path() -> None:
    assert index_path(TableRef("lmdb", "/etc/x")) == "/etc/x.lmdb"
    assert index_path(TableRef("cdb", "/etc/x")) == "/etc/x.cdb"
