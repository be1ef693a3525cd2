"""virtual(5)/canonical(5) address search order."""

from pathlib import Path

import pytest

from mailseal.config.tables import (
    AddressMatch,
    Table,
    address_keys,
    find_address,
    lookup_address,
    open_table,
    split_extension,
)


def local(domain: str) -> bool:
    return domain == "example.com"


def keys(address: str, *, delimiter: str = "+", is_local: bool = True) -> list[str]:
    found = address_keys(
        address, delimiter=delimiter, is_local_domain=local if is_local else (lambda d: False)
    )
    return [key.key for key in found]


def test_order_with_extension_in_local_domain() -> None:
    assert keys("user+foo@example.com") == [
        "user+foo@example.com",
        "user@example.com",
        "user+foo",
        "user",
        "@example.com",
    ]


def test_order_without_extension_in_remote_domain() -> None:
    assert keys("user@example.org") == ["user@example.org", "@example.org"]
    assert keys("user+foo@example.org") == [
        "user+foo@example.org",
        "user@example.org",
        "@example.org",
    ]


def test_no_delimiter_means_no_extension() -> None:
    assert keys("user+foo@example.com", delimiter="") == [
        "user+foo@example.com",
        "user+foo",
        "@example.com",
    ]


def test_address_without_domain() -> None:
    assert keys("user+foo") == ["user+foo", "user"]


def test_only_full_address_goes_to_pattern_tables() -> None:
    found = address_keys("user+foo@example.com", delimiter="+", is_local_domain=local)
    assert [key.full for key in found] == [True, False, False, False, False]
    assert [key.extension for key in found] == [None, "+foo", None, "+foo", None]


@pytest.mark.parametrize(
    ("localpart", "delimiter", "expected"),
    [
        ("user+foo", "+", ("user", "+foo")),
        ("user+foo+bar", "+", ("user", "+foo+bar")),
        ("user-foo+bar", "+-", ("user", "-foo+bar")),
        ("+foo", "+", ("+foo", None)),
        ("user", "+", ("user", None)),
        ("user+", "+", ("user", "+")),
        ("Postmaster+x", "+", ("Postmaster", "+x")),
        ("MAILER-DAEMON", "-", ("MAILER-DAEMON", None)),
        ("double-bounce", "-+", ("double-bounce", None)),
        ("owner-list", "-", ("owner-list", None)),
        ("list-request", "-", ("list-request", None)),
        ("owner+x", "+", ("owner", "+x")),
        ("user-foo", "-", ("user", "-foo")),
    ],
)
def test_split_extension(localpart: str, delimiter: str, expected: tuple[str, str | None]) -> None:
    assert split_extension(localpart, delimiter) == expected


def test_owner_request_special_can_be_turned_off() -> None:
    assert split_extension("owner-list", "-", owner_request_special=False) == ("owner", "-list")


@pytest.fixture
def tables(tmp_path: Path) -> list[Table]:
    first = tmp_path / "first"
    first.write_text("@example.com  catchall@first\nUser+Foo  localext@first\n")
    second = tmp_path / "second"
    second.write_text("user@example.com  exact@second\nuser  bare@second\n")
    return [open_table(f"texthash:{first}"), open_table(f"texthash:{second}")]


def test_key_form_beats_table_order(tables: list[Table]) -> None:
    # user@example.com in the second table wins over @example.com in the first.
    assert lookup_address(tables, "user@example.com", is_local_domain=local) == "exact@second"


def test_extension_stripped_then_localpart_then_domain(tables: list[Table]) -> None:
    assert (
        lookup_address(tables, "USER+bar@Example.COM", delimiter="+", is_local_domain=local)
        == "exact@second"
    )
    assert lookup_address(tables, "user+foo@elsewhere.example", delimiter="+") is None
    assert lookup_address(tables, "other@example.com", is_local_domain=local) == "catchall@first"


def test_localpart_only_when_domain_is_local(tables: list[Table]) -> None:
    found = find_address(tables, "user+foo@mail.example.com", delimiter="+")
    assert found is None
    found = find_address(
        tables, "user+foo@mail.example.com", delimiter="+", is_local_domain=lambda d: True
    )
    assert found == AddressMatch("localext@first", "user+foo", None)
    found = find_address(
        tables, "user+bar@mail.example.com", delimiter="+", is_local_domain=lambda d: True
    )
    assert found == AddressMatch("bare@second", "user", "+bar")


def test_local_domain_check_gets_lower_case_domain() -> None:
    seen: list[str] = []

    def is_local(domain: str) -> bool:
        seen.append(domain)
        return False

    address_keys("u@Example.COM", is_local_domain=is_local)
    assert seen == ["example.com"]


def test_miss(tables: list[Table]) -> None:
    assert lookup_address(tables, "nobody@example.org", delimiter="+") is None


def test_pattern_tables_see_only_the_full_address_as_written() -> None:
    regexp = open_table("regexp:{ {/^(.*)@Example\\.com$/i full:$1} }")
    catch_all = open_table("regexp:{ {/^@/ never} }")
    assert lookup_address([regexp], "Joe@Example.com") == "full:Joe"
    # "@example.com" is never offered to a pattern table.
    assert lookup_address([catch_all], "joe@example.com") is None
    assert lookup_address(
        [catch_all, open_table("inline:{@example.com=dom}")], "j@example.com"
    ) == ("dom")
