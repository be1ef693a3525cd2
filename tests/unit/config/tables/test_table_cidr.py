"""cidr: tables (cidr_table(5))."""

from pathlib import Path

import pytest

from mailseal.config.errors import Location
from mailseal.config.tables import Table, TableError, open_table


def table(tmp_path: Path, text: str, *, strict: bool = False) -> Table:
    path = tmp_path / "clients.cidr"
    path.write_text(text)
    return open_table(f"cidr:{path}", strict=strict)


RULES = """\
# Order matters: specific entries first.
192.0.2.1        OK
192.0.2.0/24     REJECT local net
[2001:db8::1]    OK6
2001:db8::/32    REJECT6
[2001:db9::]/32  BRACKETED
"""


@pytest.mark.parametrize(
    ("key", "expected"),
    [
        ("192.0.2.1", "OK"),
        ("192.0.2.77", "REJECT local net"),
        ("198.51.100.1", None),
        ("2001:db8::1", "OK6"),
        ("2001:DB8:0:0::1", "OK6"),
        ("2001:db8:ffff::2", "REJECT6"),
        ("2001:db9::5", "BRACKETED"),
        ("2001:dba::1", None),
        ("mail.example.com", None),
        ("[192.0.2.1]", None),
        ("", None),
        ("010.0.0.1", None),
        ("fe80::1%eth0", None),
    ],
)
def test_lookup(tmp_path: Path, key: str, expected: str | None) -> None:
    assert table(tmp_path, RULES).lookup(key) == expected


def test_not_fixed(tmp_path: Path) -> None:
    assert not table(tmp_path, RULES).fixed


def test_negation_never_matches_other_family_or_non_addresses(tmp_path: Path) -> None:
    found = table(tmp_path, "!192.0.2.0/24 OUTSIDE\n")
    assert found.lookup("198.51.100.1") == "OUTSIDE"
    assert found.lookup("192.0.2.9") is None
    assert found.lookup("2001:db8::1") is None
    assert found.lookup("not-an-address") is None


def test_everything_patterns(tmp_path: Path) -> None:
    found = table(tmp_path, "0.0.0.0/0 ALL4\n::/0 ALL6\n")
    assert found.lookup("8.8.8.8") == "ALL4"
    assert found.lookup("::ffff:192.0.2.1") == "ALL6"


def test_if_endif(tmp_path: Path) -> None:
    text = (
        "if 192.0.2.0/24\nif !192.0.2.128/25\n192.0.2.0/24 LOW\nendif\n192.0.2.0/24 HIGH\nENDIF\n"
    )
    found = table(tmp_path, text)
    assert found.lookup("192.0.2.1") == "LOW"
    assert found.lookup("192.0.2.200") == "HIGH"
    assert found.lookup("198.51.100.1") is None


@pytest.mark.parametrize(
    ("rule", "message"),
    [
        (
            "192.0.2.1/24 BAD",
            'non-null host address bits in "192.0.2.1/24", '
            'perhaps you should use "192.0.2.0/24" instead: skipping this rule',
        ),
        ("2001:db8::1/32 BAD", 'perhaps you should use "2001:db8::/32" instead'),
        ("foo bar", 'bad address pattern: "foo"'),
        ("010.0.0.1 OCTAL", 'bad address pattern: "010.0.0.1"'),
        ("192.0.2.0/33 X", 'bad mask length in "192.0.2.0/33"'),
        ("192.0.2.0/ X", 'bad mask value in "192.0.2.0/"'),
        ("192.0.2.0/24", "no lookup result: skipping this rule"),
    ],
)
def test_bad_rules_are_skipped_with_location(tmp_path: Path, rule: str, message: str) -> None:
    found = table(tmp_path, f"{rule}\n0.0.0.0/0 FALLBACK\n")
    assert found.lookup("192.0.2.1") == "FALLBACK"
    assert found.warnings[0].location == Location(str(tmp_path / "clients.cidr"), 1)
    assert message in found.warnings[0].message


def test_host_bits_are_an_error_when_strict(tmp_path: Path) -> None:
    with pytest.raises(TableError, match="non-null host address bits") as caught:
        table(tmp_path, "# x\n192.0.2.1/24 BAD\n", strict=True)
    assert caught.value.location == Location(str(tmp_path / "clients.cidr"), 2)


def test_result_keeps_inner_whitespace(tmp_path: Path) -> None:
    assert (
        table(tmp_path, "192.0.2.0/24  spaced  result \n").lookup("192.0.2.3") == "spaced  result"
    )


def test_rules_inline_in_the_name() -> None:
    found = open_table("cidr:{ {192.0.2.0/24 NET}, {::/0 SIX} }")
    assert found.lookup("192.0.2.5") == "NET"
    assert found.lookup("::1") == "SIX"
