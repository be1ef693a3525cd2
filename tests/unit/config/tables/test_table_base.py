"""open_table dispatch, errors and the type registry."""

import pytest

from mailseal.config.kinds import TableRef
from mailseal.config.tables import TABLE_TYPES, TableError, open_table, table_ref


def test_unknown_type_uses_postfix_wording() -> None:
    with pytest.raises(TableError, match=r"^unsupported dictionary type: foo$"):
        open_table("foo:/etc/x")


def test_not_a_table_reference() -> None:
    with pytest.raises(TableError, match='expecting "type:name" form instead of "static:"'):
        open_table("static:")


def test_accepts_tableref_and_string() -> None:
    assert open_table(TableRef("static", "x")).ref == TableRef("static", "x")
    assert table_ref("hash:/etc/x") == TableRef("hash", "/etc/x")


def test_registry_lists_every_supported_type() -> None:
    expected = {"texthash", "inline", "static", "regexp", "pcre", "cidr"}
    expected |= {"hash", "btree", "lmdb", "cdb", "dbm", "sdbm"}
    assert expected <= set(TABLE_TYPES)


def test_table_is_a_context_manager() -> None:
    with open_table("static:x") as table:
        assert table.lookup("k") == "x"
    assert "static:x" in repr(table)
