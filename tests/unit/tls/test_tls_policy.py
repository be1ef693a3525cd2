"""Client TLS policy resolution: the golden truth table, parse errors, keys, name matching."""

from __future__ import annotations

from pathlib import Path

import pytest
from tls_helpers import make_config

from mailseal.config.tables.base import TableError
from mailseal.testing.golden import assert_golden
from mailseal.tls.client_phrases import (
    CONFIG_PROBLEM,
    dane_unavailable,
    offered_starttls,
    setting_up_to,
    tls_required_not_offered,
)
from mailseal.tls.levels import TlsLevel
from mailseal.tls.policy import (
    PolicyError,
    TlsPolicy,
    match_peer_name,
    nexthop_domain,
    parse_policy_entry,
    policy_lookup_keys,
    resolve_policy,
)

GOLDEN = Path(__file__).resolve().parents[2] / "golden" / "tls-policy"

# Main.cf settings under every line of the truth table: distinct values show which applied.
BASE = {
    "smtp_tls_protocols": "!SSLv2, !SSLv3",
    "smtp_tls_mandatory_protocols": ">=TLSv1.2",
    "smtp_tls_ciphers": "medium",
    "smtp_tls_mandatory_ciphers": "high",
    "smtp_tls_exclude_ciphers": "RC4",
    "smtp_tls_mandatory_exclude_ciphers": "3DES",
    "smtp_tls_fingerprint_cert_match": "12:34:56, 78:9A:BC",
}


def _show(values: tuple[str, ...]) -> str:
    return ",".join(values) or "-"


def describe(policy: TlsPolicy) -> str:
    warnings = "".join(f"\n  warning: {text}" for text in policy.warnings)
    return (
        f"level={policy.level.value} source={policy.source!r}\n"
        f"  matches={_show(policy.matches)} protocols={policy.protocols!r} "
        f"ciphers={policy.ciphers or '-'} exclude={_show(policy.exclude)}\n"
        f"  servername={policy.servername or '-'} "
        f"reuse={'yes' if policy.connection_reuse else 'no'} digest={policy.fingerprint_digest}"
        f"{warnings}"
    )


def run_case(line: str) -> str:
    # Columns are separated by " | ": a bare "|" separates fingerprints in a match.
    columns = [column.strip() for column in line.split(" | ")]
    level, table_line, nexthop = columns[:3]
    settings = dict(BASE, smtp_tls_security_level=level)
    for item in columns[3].split(";") if len(columns) > 3 else []:
        name, _, value = item.partition("=")
        settings[name.strip()] = value.strip()
    table: dict[str, str] = {}
    if table_line != "-":
        key, _, value = table_line.partition(" ")
        table[key] = value
    tried: list[str] = []

    def lookup(key: str) -> str | None:
        tried.append(key)
        return table.get(key)

    try:
        result = describe(resolve_policy(make_config(**settings), nexthop, port=25, lookup=lookup))
    except PolicyError as error:
        result = f"error: {error}"
    out = [f"> {line}", f"  tried: {' '.join(tried)}", f"  {result}"]
    return "\n".join(out) + "\n"


def test_resolution_truth_table() -> None:
    lines = (GOLDEN / "resolve.in").read_text(encoding="utf-8").splitlines()
    cases = [line for line in lines if line.strip() and not line.startswith("#")]
    assert len(cases) > 50
    assert_golden("".join(run_case(line) for line in cases), GOLDEN / "resolve.ref")


# -- parsing ------------------------------------------------------------------------------

WHERE = 'smtp_tls_policy_maps, next-hop destination "example.com"'


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        ("bogus", 'invalid security level "bogus"'),
        ("encrypt match=nexthop", 'attribute "match" invalid at security level "encrypt"'),
        ("verify color=blue", 'invalid attribute name: "color"'),
        ("verify ciphers=high ciphers=medium", 'attribute "ciphers" is specified multiple times'),
        ("verify match=", 'attribute "match" has empty value'),
        ("verify servername=a..b", '"servername=a..b" specifies an invalid hostname'),
        (
            "may connection_reuse=sometimes",
            'attribute "connection_reuse" has bad value: "sometimes"',
        ),
        (
            "may ciphers",
            "malformed attribute/value pair \"ciphers\": missing '=' after attribute name",
        ),
        ("may =high", 'malformed attribute/value pair "=high": missing attribute name'),
        ("", "invalid empty policy"),
    ],
)
def test_parse_errors_use_postfix_words(entry: str, message: str) -> None:
    with pytest.raises(PolicyError) as caught:
        parse_policy_entry(entry, where=WHERE)
    assert caught.value.detail == message
    assert str(caught.value) == f"{WHERE}: {message}"


def test_attribute_order_and_case_are_free() -> None:
    one = parse_policy_entry("SECURE protocols=>=TLSv1.2 Match=nexthop ciphers=high")
    two = parse_policy_entry("secure, ciphers=high,match=nexthop   protocols=>=TLSv1.2")
    assert one == two
    assert one.level is TlsLevel.SECURE
    assert one.matches == ("nexthop",)
    assert one.protocols == ">=TLSv1.2"


def test_braces_keep_white_space_inside_a_value() -> None:
    entry = parse_policy_entry("encrypt { protocols = !TLSv1, !TLSv1.1 } exclude=3DES")
    assert entry.protocols == "!TLSv1, !TLSv1.1"
    assert entry.exclude == ("3DES",)


def test_attributes_with_tls_off_are_ignored_with_a_warning() -> None:
    entry = parse_policy_entry("none match=nexthop", where=WHERE)
    assert entry.level is TlsLevel.NONE
    assert entry.warnings == (f'{WHERE}: ignoring attribute "match=nexthop" with TLS disabled',)


# -- resolution details ---------------------------------------------------------------------


def test_lookup_keys_walk_parents_of_plain_domains_only() -> None:
    assert policy_lookup_keys("a.b.example.com") == (
        "a.b.example.com",
        ".b.example.com",
        ".example.com",
        ".com",
    )
    assert policy_lookup_keys("[mx.example.com]:587") == ("[mx.example.com]:587",)
    assert policy_lookup_keys("mx.example.com:25") == ("mx.example.com:25",)


def test_a_failing_table_defers_with_a_configuration_problem() -> None:
    def broken(key: str) -> str | None:
        raise TableError(f"cannot read table for {key}")

    with pytest.raises(PolicyError, match="policy table lookup error"):
        resolve_policy(make_config(), "example.com", port=25, lookup=broken)
    assert CONFIG_PROBLEM.status == "4.7.0"


def test_dane_is_invalid_over_unix_sockets() -> None:
    config = make_config(smtp_tls_security_level="dane")
    with pytest.raises(PolicyError, match="invalid for delivery via unix-domain sockets"):
        resolve_policy(config, "/run/lmtp", port=0, lookup=lambda _key: None)


def test_compatibility_level_decides_the_default() -> None:
    modern = resolve_policy(make_config(), "example.com", port=25, lookup=lambda _key: None)
    assert modern.level is TlsLevel.MAY
    old = make_config(compatibility_level="3.6")
    assert resolve_policy(old, "example.com", port=25, lookup=lambda _key: None).level is (
        TlsLevel.NONE
    )


@pytest.mark.parametrize(
    ("nexthop", "domain"),
    [
        ("[mx.example.com]:587", "mx.example.com"),
        ("[mx.example.com]", "mx.example.com"),
        ("mx.example.com:25", "mx.example.com"),
        ("example.com", "example.com"),
    ],
)
def test_nexthop_domain_strips_brackets_and_port(nexthop: str, domain: str) -> None:
    assert nexthop_domain(nexthop) == domain


def test_sni_names_resolve_per_connection() -> None:
    config = make_config(smtp_tls_servername="nexthop")
    policy = resolve_policy(config, "[relay.example.com]:587", port=587, lookup=lambda _k: None)
    assert policy.sni(nexthop="[relay.example.com]:587", mx_host="x.example") == "relay.example.com"
    hostname = resolve_policy(
        make_config(smtp_tls_servername="hostname"), "a.example", port=25, lookup=lambda _k: None
    )
    assert hostname.sni(nexthop="a.example", mx_host="mx.a.example") == "mx.a.example"
    plain = resolve_policy(make_config(), "a.example", port=25, lookup=lambda _k: None)
    assert plain.sni(nexthop="a.example", mx_host="mx.a.example") is None


# -- name matching ----------------------------------------------------------------------------


def policy_with(level: TlsLevel, *matches: str) -> TlsPolicy:
    return TlsPolicy(level, matches, "", "high", (), None, False, "test")


@pytest.mark.parametrize(
    ("names", "matches", "found"),
    [
        (("mx.example.com",), ("hostname",), "mx.example.com"),
        (("example.com",), ("nexthop",), "example.com"),
        (("a.example.com",), ("nexthop",), None),
        (("a.example.com",), ("dot-nexthop",), "a.example.com"),
        (("example.com",), ("dot-nexthop",), None),
        (("*.example.com",), ("dot-nexthop",), "*.example.com"),
        (("mail.example.org",), (".example.org",), "mail.example.org"),
        (("mail.example.org",), ("MAIL.example.org",), "mail.example.org"),
        (("*.example.com",), ("hostname",), "*.example.com"),
        (("*.com",), ("nexthop",), None),
        (("x.example.com", "mx.example.com"), ("hostname",), "mx.example.com"),
    ],
)
def test_match_strategies(
    names: tuple[str, ...], matches: tuple[str, ...], found: str | None
) -> None:
    policy = policy_with(TlsLevel.VERIFY, *matches)
    got = match_peer_name(
        names, policy, nexthop="[example.com]:25", mx_host="mx.example.com", from_dns_mx=True
    )
    assert got == found


def test_secure_skips_hostname_from_dns_only() -> None:
    policy = policy_with(TlsLevel.SECURE, "hostname")
    args = {"nexthop": "example.net", "mx_host": "mx.example.com"}
    assert match_peer_name(("mx.example.com",), policy, from_dns_mx=True, **args) is None
    assert match_peer_name(("mx.example.com",), policy, from_dns_mx=False, **args) == (
        "mx.example.com"
    )


# -- phrases ------------------------------------------------------------------------------------


def test_client_phrases_follow_postfix() -> None:
    assert setting_up_to("mx.example.com", "192.0.2.1", 25) == (
        "setting up TLS connection to mx.example.com[192.0.2.1]:25"
    )
    assert offered_starttls("mx.example.com") == "Host offered STARTTLS: [mx.example.com]"
    reason = tls_required_not_offered("mx.example.com", "192.0.2.1")
    assert (reason.status, reason.text) == (
        "4.7.4",
        "TLS is required, but was not offered by host mx.example.com[192.0.2.1]",
    )
    assert dane_unavailable("example.com", TlsLevel.DANE_ONLY) == (
        "example.com: dane-only configured, but DANE is not available in mailseal: "
        "deferring delivery"
    )
