"""mynetworks / mynetworks_style, and address classes (ADDRESS_CLASS_README)."""

from pathlib import Path

import pytest

from mailseal.config.errors import ConfigError, Setting
from mailseal.config.facts import SystemFacts
from mailseal.config.model import Config
from mailseal.services.addresses import AddressClass, Addressing
from mailseal.services.maps import TableLookupError
from mailseal.services.networks import NetworkList, my_networks, networks_for_style


def make_config(**settings: str) -> Config:
    facts = SystemFacts(hostname="mail.example.com", config_directory="/etc/mailseal")
    return Config({name: Setting(value) for name, value in settings.items()}, facts)


# -- mynetworks -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("addr", "name", "expected"),
    [
        ("127.0.0.1", "unknown", True),
        ("127.255.0.9", "unknown", True),
        ("::1", "unknown", True),
        ("::ffff:127.0.0.1", "unknown", True),
        ("192.0.2.1", "unknown", False),
        ("2001:db8::1", "unknown", False),
    ],
)
def test_default_mynetworks_is_loopback(addr: str, name: str, expected: bool) -> None:
    assert my_networks(make_config()).matches(addr, name) is expected


def test_mynetworks_items_negation_names_and_ipv6() -> None:
    config = make_config(
        mynetworks="!192.0.2.7, 192.0.2.0/24 [2001:db8::]/32 .trusted.example [2001:db8:1::5]"
    )
    networks = my_networks(config)
    assert networks.matches("192.0.2.6")
    assert not networks.matches("192.0.2.7")  # the negation comes first
    assert networks.matches("2001:db8:ffff::1")
    assert networks.matches("198.51.100.1", "host.trusted.example")
    assert not networks.matches("198.51.100.1", "trusted.example")
    assert not networks.matches("198.51.100.1", "unknown")


def test_mynetworks_parent_domain_matching_follows_the_parameter() -> None:
    networks = my_networks(make_config(mynetworks="example.org"))
    assert networks.matches("198.51.100.1", "a.example.org")  # mynetworks is listed by default
    plain = my_networks(
        make_config(mynetworks="example.org", parent_domain_matches_subdomains="relay_domains")
    )
    assert not plain.matches("198.51.100.1", "a.example.org")
    assert plain.matches("198.51.100.1", "EXAMPLE.ORG.")


def test_mynetworks_from_a_cidr_table(tmp_path: Path) -> None:
    table = tmp_path / "networks.cidr"
    table.write_text("203.0.113.0/24 OK\n")
    networks = my_networks(make_config(mynetworks=f"cidr:{table}"))
    assert networks.matches("203.0.113.9")
    assert not networks.matches("203.0.114.9")


def test_network_with_host_bits_is_a_configuration_error() -> None:
    with pytest.raises(ConfigError, match=r'non-null host address bits in "192.0.2.1/24"'):
        NetworkList("mynetworks", ["192.0.2.1/24"])


@pytest.mark.parametrize(
    ("style", "expected"),
    [
        ("host", ("172.16.5.4/32", "[2001:db8::5]/128")),
        ("subnet", ("172.16.5.0/24", "[2001:db8::]/64")),
        ("class", ("172.16.0.0/16", "[2001:db8::]/64")),  # class B; IPv6 keeps its subnet
    ],
)
def test_mynetworks_style(style: str, expected: tuple[str, ...]) -> None:
    assert networks_for_style(style, ["172.16.5.4/24", "2001:db8::5/64"]) == expected


def test_mynetworks_style_applies_only_when_mynetworks_is_unset() -> None:
    config = make_config(mynetworks_style="subnet")
    networks = my_networks(config, ["10.1.2.3/16"])
    assert networks.matches("10.1.200.1")
    assert not networks.matches("127.0.0.1")
    # Without interfaces the loopback ones stand in.
    assert my_networks(config).matches("127.0.0.2")
    explicit = make_config(mynetworks_style="subnet", mynetworks="192.0.2.0/24")
    assert not my_networks(explicit, ["10.1.2.3/16"]).matches("10.1.200.1")


# -- address classes ------------------------------------------------------------------


def addressing(tmp_path: Path, **settings: str) -> Addressing:
    vmailbox = tmp_path / "vmailbox"
    vmailbox.write_text("alice@virtual.example  virtual.example/alice/\n")
    defaults = {
        "mydestination": "$myhostname, localhost",
        "virtual_mailbox_domains": "virtual.example",
        "virtual_mailbox_maps": f"texthash:{vmailbox}",
        "virtual_alias_domains": "alias.example",
        "relay_domains": "relay.example",
        "myorigin": "$myhostname",
    }
    return Addressing(make_config(**(defaults | settings)))


@pytest.mark.parametrize(
    ("address", "expected"),
    [
        ("root@mail.example.com", AddressClass.LOCAL),
        ("Root@MAIL.Example.COM.", AddressClass.LOCAL),
        ("user@localhost", AddressClass.LOCAL),
        ("root", AddressClass.LOCAL),  # completed with @$myorigin
        ("user@[127.0.0.1]", AddressClass.LOCAL),
        ("user@[IPv6:::1]", AddressClass.LOCAL),
        ("user@[192.0.2.1]", AddressClass.DEFAULT),
        ("x@alias.example", AddressClass.VIRTUAL_ALIAS),
        ("alice@virtual.example", AddressClass.VIRTUAL_MAILBOX),
        ("x@relay.example", AddressClass.RELAY),
        ("x@sub.relay.example", AddressClass.RELAY),  # relay_domains matches subdomains
        ("x@remote.example", AddressClass.DEFAULT),
    ],
)
def test_classify(tmp_path: Path, address: str, expected: AddressClass) -> None:
    addresses = addressing(tmp_path)
    assert addresses.classify(address) is expected
    assert addresses.is_local_or_virtual_or_relay(address) is (expected != AddressClass.DEFAULT)


def test_bare_user_takes_the_class_of_myorigin(tmp_path: Path) -> None:
    addresses = addressing(tmp_path, myorigin="relay.example")
    assert addresses.canonical("bob") == "bob@relay.example"
    assert addresses.classify("bob") is AddressClass.RELAY


def test_virtual_mailbox_domains_from_a_table(tmp_path: Path) -> None:
    domains = tmp_path / "domains"
    domains.write_text("hosted.example  anything\n")
    addresses = addressing(tmp_path, virtual_mailbox_domains=f"texthash:{domains}")
    assert addresses.classify("a@hosted.example") is AddressClass.VIRTUAL_MAILBOX
    assert addresses.classify("a@virtual.example") is AddressClass.DEFAULT


def test_a_domain_table_that_cannot_be_opened_fails_temporarily(tmp_path: Path) -> None:
    addresses = addressing(tmp_path, relay_domains=f"hash:{tmp_path / 'missing'}")
    assert any("is unavailable" in str(w) for w in addresses.warnings)
    assert addresses.classify("root@localhost") is AddressClass.LOCAL  # decided before
    with pytest.raises(TableLookupError):
        addresses.classify("x@remote.example")
