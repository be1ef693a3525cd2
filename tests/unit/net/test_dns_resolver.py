"""MX and address lookups against the loopback DNS stub: order, fallbacks, Postfix's texts."""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Iterator

import pytest

from mailseal.net.dns import DnsError, MxHost, NullMxError, Resolver
from mailseal.testing.dns_stub import DnsStub

ZONES = (
    """
example.test.       60 IN MX 20 mx2.example.test.
example.test.       60 IN MX 10 mx1.example.test.
example.test.       60 IN MX 30 mx3.example.test.
mx1.example.test.   60 IN A    127.0.0.11
mx2.example.test.   60 IN A    127.0.0.12
mx2.example.test.   60 IN AAAA ::1
mx3.example.test.   60 IN AAAA ::3

equal.test.         60 IN MX 10 a.equal.test.
equal.test.         60 IN MX 10 b.equal.test.
equal.test.         60 IN MX 10 c.equal.test.
equal.test.         60 IN MX 10 d.equal.test.
equal.test.         60 IN MX 20 z.equal.test.
a.equal.test.       60 IN A 127.0.1.1
b.equal.test.       60 IN A 127.0.1.2
c.equal.test.       60 IN A 127.0.1.3
d.equal.test.       60 IN A 127.0.1.4
z.equal.test.       60 IN A 127.0.1.26

plain.test.         60 IN A    127.0.2.1
dual.test.          60 IN A    127.0.2.2
dual.test.          60 IN AAAA ::2
txtonly.test.       60 IN TXT  "no mail here"

nullmx.test.        60 IN MX 0 .

v6mx.test.          60 IN MX 10 v6only.v6mx.test.
v6mx.test.          60 IN MX 20 v4.v6mx.test.
v6only.v6mx.test.   60 IN AAAA ::6
v4.v6mx.test.       60 IN A    127.0.3.4

deadmx.test.        60 IN MX 10 gone.deadmx.test.
deadmx.test.        60 IN MX 20 v6only.v6mx.test.

softmx.test.        60 IN MX 10 mx.broken.test.
softmx.test.        60 IN MX 20 gone.softmx.test.

alias.test.         60 IN MX 10 www.alias.test.
www.alias.test.     60 IN CNAME real.alias.test.
real.alias.test.    60 IN A 127.0.4.1

literal.test.       60 IN MX 10 192.0.2.7.

big.test.           60 IN MX 10 many.big.test.
"""
    + "".join(f"many.big.test. 60 IN A 127.0.5.{i}\n" for i in range(1, 61))
    + """
;; SERVFAIL broken.test.
;; TIMEOUT slow.test.
;; FORMERR odd.test.
"""
)


@pytest.fixture(scope="module")
def stub() -> Iterator[DnsStub]:
    with DnsStub.from_text(ZONES) as server:
        yield server


def resolver(stub: DnsStub, **options: object) -> Resolver:
    options.setdefault("timeout", 2.0)
    return Resolver([stub.address], **options)  # type: ignore[arg-type]


def mx(stub: DnsStub, domain: str, **options: object) -> list[MxHost]:
    return asyncio.run(resolver(stub, **options).mx_hosts(domain))


def mx_error(stub: DnsStub, domain: str, **options: object) -> DnsError:
    with pytest.raises(DnsError) as caught:
        mx(stub, domain, **options)
    return caught.value


def test_mx_hosts_come_in_preference_order_with_their_addresses(stub: DnsStub) -> None:
    hosts = mx(stub, "example.test", randomize=False)
    assert hosts == [
        MxHost("mx1.example.test", 10, ("127.0.0.11",)),
        MxHost("mx2.example.test", 20, ("127.0.0.12", "::1")),
        MxHost("mx3.example.test", 30, ("::3",)),
    ]


def test_names_are_case_insensitive_and_reported_in_lower_case(stub: DnsStub) -> None:
    hosts = mx(stub, "EXAMPLE.Test.", randomize=False)
    assert [host.name for host in hosts] == [
        "mx1.example.test",
        "mx2.example.test",
        "mx3.example.test",
    ]


def test_equal_preferences_are_shuffled_repeatably_with_a_seeded_random(stub: DnsStub) -> None:
    def order(seed: int) -> list[str]:
        hosts = mx(stub, "equal.test", rng=random.Random(seed))
        assert hosts[-1].name == "z.equal.test"  # the worse preference stays last
        return [host.name for host in hosts[:-1]]

    orders = [order(seed) for seed in range(12)]
    assert all(sorted(o) == [f"{c}.equal.test" for c in "abcd"] for o in orders)
    assert len({tuple(o) for o in orders}) > 1  # the seeds give different orders
    assert order(3) == orders[3]  # the same seed, the same order


def test_no_mx_records_means_the_domain_itself_at_preference_zero(stub: DnsStub) -> None:
    resolution = asyncio.run(resolver(stub).resolve_mx("plain.test"))
    assert resolution.implicit
    assert resolution.hosts == (MxHost("plain.test", 0, ("127.0.2.1",)),)
    assert mx(stub, "dual.test", randomize=False) == [MxHost("dual.test", 0, ("127.0.2.2", "::2"))]


def test_nxdomain_is_permanent_with_postfix_wording(stub: DnsStub) -> None:
    # Postfix falls back to the domain's addresses and names the last type it asked.
    error = mx_error(stub, "nowhere.test")
    assert not error.temporary
    assert error.dsn == "5.4.4"
    assert error.text == (
        "Host or domain name not found. "
        "Name service error for name=nowhere.test type=AAAA: Host not found"
    )
    error = mx_error(stub, "nowhere.test", inet_protocols="ipv4")
    assert error.text.endswith("name=nowhere.test type=A: Host not found")


def test_a_domain_without_mail_or_address_records_is_permanent(stub: DnsStub) -> None:
    error = mx_error(stub, "txtonly.test")
    assert (error.temporary, error.dsn) == (False, "5.4.4")
    assert error.text.endswith(
        "name=txtonly.test type=AAAA: Host found but no data record of requested type"
    )


def test_servfail_is_temporary_with_postfix_wording(stub: DnsStub) -> None:
    error = mx_error(stub, "broken.test")
    assert error.temporary
    assert error.dsn == "4.4.3"
    assert error.text == (
        "Host or domain name not found. "
        "Name service error for name=broken.test type=MX: Host not found, try again"
    )
    assert mx_error(stub, "deeper.broken.test").temporary  # the directive covers subnames


def test_a_silent_server_is_a_temporary_error_within_the_timeout(stub: DnsStub) -> None:
    started = time.monotonic()
    error = mx_error(stub, "slow.test", timeout=0.5)
    elapsed = time.monotonic() - started
    assert error.temporary
    assert error.text.endswith("name=slow.test type=MX: Host not found, try again")
    assert 0.4 < elapsed < 2.0


def test_formerr_is_a_non_recoverable_error(stub: DnsStub) -> None:
    error = mx_error(stub, "odd.test")
    assert (error.temporary, error.dsn) == (False, "5.4.3")
    assert error.text.endswith("name=odd.test type=MX: Non-recoverable error")


def test_null_mx_bounces_with_postfix_wording(stub: DnsStub) -> None:
    with pytest.raises(NullMxError) as caught:
        mx(stub, "nullmx.test")
    assert isinstance(caught.value, DnsError)
    assert caught.value.domain == "nullmx.test"
    assert caught.value.text == "Domain nullmx.test does not accept mail (nullMX)"
    assert (caught.value.temporary, caught.value.dsn) == (False, "5.1.0")


def test_ipv6_only_mx_hosts_are_skipped_when_only_ipv4_is_on(stub: DnsStub) -> None:
    resolution = asyncio.run(resolver(stub, inet_protocols="ipv4").resolve_mx("v6mx.test"))
    assert resolution.hosts == (MxHost("v4.v6mx.test", 20, ("127.0.3.4",)),)
    [skipped] = resolution.skipped
    assert (skipped.name, skipped.preference, skipped.temporary) == ("v6only.v6mx.test", 10, False)
    assert skipped.text.endswith(
        "name=v6only.v6mx.test type=A: Host found but no data record of requested type"
    )
    # With IPv6 on, the same host is used.
    assert [h.name for h in mx(stub, "v6mx.test")] == ["v6only.v6mx.test", "v4.v6mx.test"]


def test_no_mx_host_with_an_address_fails_with_the_last_hosts_error(stub: DnsStub) -> None:
    error = mx_error(stub, "deadmx.test", inet_protocols=("ipv4",))
    assert (error.temporary, error.dsn) == (False, "5.4.4")
    assert error.warning == "no MX host for deadmx.test has a valid address record"
    assert error.text.endswith(
        "name=v6only.v6mx.test type=A: Host found but no data record of requested type"
    )
    deferred = mx_error(
        stub, "deadmx.test", inet_protocols="ipv4", defer_if_no_mx_address_found=True
    )
    assert (deferred.temporary, deferred.dsn) == (True, "4.4.4")


def test_one_temporary_mx_host_error_makes_the_failure_temporary(stub: DnsStub) -> None:
    error = mx_error(stub, "softmx.test", randomize=False)
    assert (error.temporary, error.dsn) == (True, "4.4.4")  # the later hard error is softened
    assert error.text.endswith("name=gone.softmx.test type=AAAA: Host not found")


def test_cname_and_ip_literal_exchangers(stub: DnsStub) -> None:
    assert mx(stub, "alias.test") == [MxHost("www.alias.test", 10, ("127.0.4.1",))]
    assert mx(stub, "literal.test") == [MxHost("192.0.2.7", 10, ("192.0.2.7",))]


def test_a_truncated_udp_answer_is_asked_again_over_tcp(stub: DnsStub) -> None:
    [host] = mx(stub, "big.test")
    assert len(host.addresses) == 60
    assert any(q.name == "many.big.test" and q.transport == "tcp" for q in stub.queries)


def test_host_addresses_gives_a_and_aaaa_per_inet_protocols(stub: DnsStub) -> None:
    def addresses(host: str, **options: object) -> tuple[str, ...]:
        return asyncio.run(resolver(stub, randomize=False, **options).host_addresses(host))

    assert addresses("mx2.example.test") == ("127.0.0.12", "::1")
    assert addresses("mx2.example.test", address_preference="ipv6") == ("::1", "127.0.0.12")
    assert addresses("mx2.example.test", inet_protocols="ipv4") == ("127.0.0.12",)
    assert addresses("mx2.example.test", inet_protocols="ipv6") == ("::1",)
    assert addresses("192.0.2.9") == ("192.0.2.9",)
    assert set(asyncio.run(resolver(stub).host_addresses("dual.test"))) == {"127.0.2.2", "::2"}


def test_host_addresses_failures(stub: DnsStub) -> None:
    def error(host: str, **options: object) -> DnsError:
        with pytest.raises(DnsError) as caught:
            asyncio.run(resolver(stub, **options).host_addresses(host))
        return caught.value

    assert error("nowhere.test").text.endswith("name=nowhere.test type=AAAA: Host not found")
    broken = error("mx.broken.test")
    assert (broken.temporary, broken.dsn) == (True, "4.4.3")
    assert error("mx3.example.test", inet_protocols="ipv4").dsn == "5.4.4"
    assert (
        error("bad..name").text == "Name service error for bad..name: invalid host or domain name"
    )
    assert error("-x.test").text == "Name service error for -x.test: invalid host or domain name"
    assert error("::1", inet_protocols="ipv4").text.endswith("invalid host or domain name")
    assert error("12.345").text == "Name service error for 12.345: invalid host or domain name"
    assert mx_error(stub, "192.0.2.1").text.endswith("192.0.2.1: invalid host or domain name")


def test_bad_settings_are_refused() -> None:
    with pytest.raises(ValueError, match="inet_protocols"):
        Resolver([("127.0.0.1", 53)], inet_protocols="ipv5")
    with pytest.raises(ValueError, match="smtp_address_preference"):
        Resolver([("127.0.0.1", 53)], address_preference="both")


def test_addresses_are_shuffled_repeatably_or_kept_in_dns_order(stub: DnsStub) -> None:
    in_zone_order = tuple(f"127.0.5.{i}" for i in range(1, 61))

    def addresses(**options: object) -> tuple[str, ...]:
        return asyncio.run(resolver(stub, **options).host_addresses("many.big.test"))

    assert addresses(randomize=False) == in_zone_order
    seeded = addresses(rng=random.Random(7))
    assert seeded != in_zone_order
    assert sorted(seeded) == sorted(in_zone_order)
    assert addresses(rng=random.Random(7)) == seeded
