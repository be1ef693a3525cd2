"""``cidr:`` tables: results chosen by the network a client address is in.

Follows cidr_table(5), checked against Postfix 3.7:

* a rule is ``network/prefix result``, ``address result`` (exact match) or
  either with ``!`` in front (matches addresses outside); IPv6 patterns may be
  written in brackets, ``[2001:db8::]/32``; ``if``/``endif`` blocks nest;
* a network with bits set after the prefix is a mistake Postfix refuses
  ("non-null host address bits"), as are a bad address, prefix or a missing
  result: each skips the rule (see ``rules``);
* addresses are compared in binary, so ``2001:DB8:0::1`` is ``2001:db8::1``;
  IPv4 octets with leading zeros are rejected (Postfix would read them as
  octal and refuses them);
* a key that is not an IP address never matches, not even a negated rule; a
  rule for the other address family does not apply at all, negated or not.

Pure: imports only the standard library.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable

from mailseal.config.errors import Location
from mailseal.config.kinds import TableRef
from mailseal.config.tables.base import Diagnostics, Table, register_type
from mailseal.config.tables.rules import (
    Groups,
    Pattern,
    Rule,
    RuleError,
    Template,
    compile_rules,
    first_match,
    rule_lines,
)

__all__ = ["CidrTable", "open_cidr", "parse_address"]

Address = ipaddress.IPv4Address | ipaddress.IPv6Address
Network = ipaddress.IPv4Network | ipaddress.IPv6Network


class CidrTable(Table):
    """Rules tried in order against the key read as an IP address."""

    fixed = False

    def __init__(self, ref: TableRef, rules: list[Rule[Address]]) -> None:
        super().__init__(ref)
        self.rules = rules

    def lookup(self, key: str) -> str | None:
        address = parse_address(key)
        return None if address is None else first_match(self.rules, address)


def parse_address(text: str) -> Address | None:
    """``text`` as an IPv4 or IPv6 address, or None (no brackets, no ``%zone``)."""
    if "%" in text:
        return None  # Postfix's inet_pton() has no zone identifiers
    try:
        return ipaddress.ip_address(text)
    except ValueError:
        return None


@register_type("cidr")
def open_cidr(ref: TableRef, diagnostics: Diagnostics) -> Table:
    """Compile the CIDR table ``ref``."""
    rules = compile_rules(rule_lines(ref, diagnostics), _parse_pattern, _make_template, diagnostics)
    return CidrTable(ref, rules)


def _parse_pattern(text: str) -> Pattern[Address]:
    negated = False
    while text.startswith("!"):
        negated = not negated
        text = text[1:].lstrip()
    token, rest = [*text.split(None, 1), "", ""][:2]
    network = _parse_network(token)
    return Pattern(_condition(network, negated), rest.strip(), negated=negated)


def _parse_network(token: str) -> Network:
    """``address``, ``address/prefix`` or their bracketed forms, strictly."""
    text, slash, prefix_text = token.partition("/")
    if text.startswith("[") and text.endswith("]"):
        text = text[1:-1]
    address = parse_address(text)
    if address is None:
        raise RuleError(f'bad address pattern: "{token}"')
    if not slash:
        return ipaddress.ip_network(address)
    if not (prefix_text.isascii() and prefix_text.isdigit()):
        raise RuleError(f'bad mask value in "{token}"')
    prefix = int(prefix_text)
    if prefix > address.max_prefixlen:
        raise RuleError(f'bad mask length in "{token}"')
    network = ipaddress.ip_network((address, prefix), strict=False)
    if network.network_address != address:
        raise RuleError(
            f'non-null host address bits in "{token}", perhaps you should use "{network}" instead'
        )
    return network


def _condition(network: Network, negated: bool) -> Callable[[Address], Groups | None]:
    def test(address: Address) -> Groups | None:
        if address.version != network.version:
            return None  # as Postfix: another family is neither inside nor outside
        return () if (address in network) != negated else None

    return test


def _make_template(
    pattern: Pattern[Address], location: Location, diagnostics: Diagnostics
) -> Template:
    if not pattern.rest:
        raise RuleError("no lookup result")
    return Template.literal(pattern.rest)
