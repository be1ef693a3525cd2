"""Value kinds: each parses Postfix's spellings and explains what it refuses."""

import pytest

from mailseal.config.kinds import (
    BoolKind,
    EnumKind,
    IntKind,
    ProtocolsKind,
    SizeKind,
    TableListKind,
    TableRef,
    TimeKind,
    split_list,
)


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("300s", 300), ("5m", 300), ("1h", 3600), ("5d", 432000), ("1w", 604800), ("7", 7 * 86400)],
)
def test_time_units_and_default_unit(text: str, seconds: int) -> None:
    assert TimeKind("d").parse(text) == seconds


@pytest.mark.parametrize(("text", "why"), [("5x", "unknown time unit"), ("-1s", "expected a time")])
def test_time_refusals(text: str, why: str) -> None:
    with pytest.raises(ValueError, match=why):
        TimeKind().parse(text)


def test_bool_int_size_enum() -> None:
    assert BoolKind().parse(" YES ") is True
    assert BoolKind().parse("no") is False
    with pytest.raises(ValueError, match="expected yes or no"):
        BoolKind().parse("true")
    assert IntKind(0, 4).parse("4") == 4
    with pytest.raises(ValueError, match="more than the maximum 4"):
        IntKind(0, 4).parse("5")
    assert SizeKind().parse("10240000") == 10240000
    with pytest.raises(ValueError, match="number of bytes"):
        SizeKind().parse("10M")
    assert EnumKind(("", "may")).parse("MAY") == "may"
    with pytest.raises(ValueError, match="expected one of may or empty"):
        EnumKind(("", "may")).parse("maybe")


def test_lists_split_on_commas_and_space_but_keep_braces() -> None:
    assert split_list("permit_mynetworks,  reject\n\tdefer") == (
        "permit_mynetworks",
        "reject",
        "defer",
    )
    assert split_list("inline:{ a=b, c=d }, static:x") == ("inline:{ a=b, c=d }", "static:x")
    with pytest.raises(ValueError, match="missing"):
        split_list("inline:{ a=b")


def test_table_refs() -> None:
    assert TableListKind().parse("hash:/etc/x, regexp:/etc/y") == (
        TableRef("hash", "/etc/x"),
        TableRef("regexp", "/etc/y"),
    )
    with pytest.raises(ValueError, match="not a lookup table"):
        TableListKind().parse("/etc/x")


@pytest.mark.parametrize(
    ("text", "allowed"),
    [
        (">=TLSv1", ("TLSv1", "TLSv1.1", "TLSv1.2", "TLSv1.3")),
        ("!SSLv2, !SSLv3, !TLSv1", ("TLSv1.1", "TLSv1.2", "TLSv1.3")),
        ("!SSLv2:!SSLv3:!TLSv1:!TLSv1.1", ("TLSv1.2", "TLSv1.3")),
        (">=TLSv1.2, <=TLSv1.2", ("TLSv1.2",)),
        ("TLSv1.2 TLSv1.3", ("TLSv1.2", "TLSv1.3")),
        (">=tlsv1.2", ("TLSv1.2", "TLSv1.3")),
    ],
)
def test_protocols_both_syntaxes(text: str, allowed: tuple[str, ...]) -> None:
    assert ProtocolsKind().parse(text).allowed() == allowed


@pytest.mark.parametrize("text", [">=TLSv1.3, <=TLSv1.2", "!TLSv1.3 TLSv1.3"])
def test_protocols_that_leave_nothing_are_refused(text: str) -> None:
    with pytest.raises(ValueError, match="no TLS protocol is left"):
        ProtocolsKind().parse(text)


def test_empty_protocols_mean_openssl_defaults() -> None:
    assert ProtocolsKind().parse("").allowed() == ProtocolsKind().parse(">=SSLv2").allowed()
