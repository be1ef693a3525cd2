"""Next-hop syntax and ports, as Postfix's smtp(8) reads them (transport(5), host_port())."""

import pytest

from mailseal.delivery.smtp.nexthop import Nexthop, NexthopError, parse_nexthop, resolve_port
from mailseal.delivery.smtp.settings import parse_dns_servers

KNOWN = ("lmtp=24", "smtp=25", "smtps=submissions=465", "submission=587")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("example.com", Nexthop("example.com", "example.com", 25, False)),
        ("Example.COM.", Nexthop("Example.COM.", "example.com", 25, False)),
        ("example.com:2525", Nexthop("example.com:2525", "example.com", 2525, False)),
        ("[mx.example.com]", Nexthop("[mx.example.com]", "mx.example.com", 25, True)),
        ("[192.0.2.1]:587", Nexthop("[192.0.2.1]:587", "192.0.2.1", 587, True)),
        ("[192.0.2.1]:submission", Nexthop("[192.0.2.1]:submission", "192.0.2.1", 587, True)),
        ("[2001:db8::1]:25", Nexthop("[2001:db8::1]:25", "2001:db8::1", 25, True)),
        ("[ipv6:2001:db8::1]", Nexthop("[ipv6:2001:db8::1]", "2001:db8::1", 25, True)),
        ("192.0.2.7", Nexthop("192.0.2.7", "192.0.2.7", 25, True)),
        ("2001:db8::7", Nexthop("2001:db8::7", "2001:db8::7", 25, True)),
        ("relay.example:smtps", Nexthop("relay.example:smtps", "relay.example", 465, False)),
    ],
)
def test_parse_nexthop(text: str, expected: Nexthop) -> None:
    assert parse_nexthop(text, "smtp", KNOWN) == expected


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[mx.example.com", 'missing "]" in server description: [mx.example.com'),
        ("[]:25", 'missing "]" in server description: []:25'),
        ("[mx.example]x", 'missing "]" in server description: [mx.example]x'),
        ("example.com:0", "bad network port: 0 for destination: example.com:0"),
        ("example.com:70000", "bad network port: 70000 for destination: example.com:70000"),
        ("example.com:nonesuch-svc", "unknown service: nonesuch-svc/tcp"),
    ],
)
def test_bad_nexthops(text: str, message: str) -> None:
    with pytest.raises(NexthopError) as caught:
        parse_nexthop(text, "smtp", KNOWN)
    assert str(caught.value) == message


def test_default_port_from_smtp_tcp_port() -> None:
    assert parse_nexthop("example.com", "2525", KNOWN).port == 2525
    assert resolve_port("submissions", KNOWN, "x") == 465
    # Not in known_tcp_ports: /etc/services (or the resolver library's table) answers.
    assert resolve_port("smtp", (), "x") == 25


@pytest.mark.parametrize(
    ("items", "expected"),
    [
        ((), None),
        (("192.0.2.53",), [("192.0.2.53", 53)]),
        (("[127.0.0.1]:5353", "[2001:db8::53]"), [("127.0.0.1", 5353), ("2001:db8::53", 53)]),
        (("127.0.0.1:5353", "2001:db8::53"), [("127.0.0.1", 5353), ("2001:db8::53", 53)]),
    ],
)
def test_dns_servers(items: tuple[str, ...], expected: list[tuple[str, int]] | None) -> None:
    assert parse_dns_servers(items) == expected


@pytest.mark.parametrize("item", ["[127.0.0.1]x", "[127.0.0.1]:0", "[]:53", "127.0.0.1:x"])
def test_bad_dns_servers(item: str) -> None:
    with pytest.raises(ValueError, match="bad dns_servers entry"):
        parse_dns_servers((item,))
