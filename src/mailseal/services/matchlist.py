"""Postfix's match lists: domain lists and client name/address lists.

postconf(5) for mydestination, relay_domains, virtual_*_domains (domain
lists) and mynetworks (a name/address list); match_list(3) and match_ops(3)
for the details:

* items are tried in order and the first that matches decides; ``!item``
  matches the opposite way and, when it matches, the answer is "no";
* ``/file/name`` stands for the items written in that file;
* ``type:table`` is a lookup table: the name is looked up, then each parent
  domain (``.parent`` keys, or ``parent`` keys when the parameter is listed in
  parent_domain_matches_subdomains); a client address is looked up as is;
* a domain item ``example.com`` matches that domain, and its subdomains when
  the parameter is in parent_domain_matches_subdomains; ``.example.com``
  matches the subdomains only;
* a network item is ``address``, ``address/prefix``, ``[ipv6]`` or
  ``[ipv6]/prefix``; a network with host bits set is a configuration error,
  worded as Postfix words it.

Comparisons ignore case and a trailing dot. A table that cannot answer makes
the match raise ``TableLookupError`` (see ``maps``).
"""

from __future__ import annotations

import functools
import ipaddress
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from mailseal.config.errors import ConfigError, ConfigWarning
from mailseal.config.kinds import split_list
from mailseal.services.maps import Maps, open_maps

__all__ = ["Address", "MatchList", "Network", "parse_address", "parse_network"]

Address = ipaddress.IPv4Address | ipaddress.IPv6Address
Network = ipaddress.IPv4Network | ipaddress.IPv6Network


@dataclass(frozen=True)
class _Item:
    negated: bool
    text: str  # lower-cased domain or host pattern
    network: Network | None = None
    maps: Maps | None = None


# Every restriction stage asks about the same few client addresses; parsing one costs
# more than the match itself. Addresses are immutable, so a bounded cache is safe.
@functools.lru_cache(maxsize=4096)
def parse_address(text: str) -> Address | None:
    """``text`` (brackets allowed, IPv4-mapped IPv6 unmapped) as an address, or None."""
    text = text.strip()
    if text.startswith("[") and text.endswith("]"):
        text = text[1:-1]
    if text.lower().startswith("ipv6:"):
        text = text[5:]
    try:
        address = ipaddress.ip_address(text.split("%", 1)[0])
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def parse_network(title: str, text: str) -> Network | None:
    """A network item (``a.b.c.d/n``, ``[v6]/n``, bare address), or None when it is a name."""
    body, slash, prefix = text.partition("/")
    if body.startswith("[") and body.endswith("]"):
        body = body[1:-1]
    try:
        address = ipaddress.ip_address(body)
    except ValueError:
        if slash:
            raise ConfigError(f'{title}: bad net/mask pattern: "{text}"') from None
        return None
    if not slash:
        return ipaddress.ip_network(address)
    try:
        return ipaddress.ip_network(f"{address}/{prefix}", strict=True)
    except ValueError:
        try:
            network = ipaddress.ip_network(f"{address}/{prefix}", strict=False)
        except ValueError:
            raise ConfigError(f'{title}: bad net/mask pattern: "{text}"') from None
        raise ConfigError(
            f'{title}: non-null host address bits in "{text}", '
            f'perhaps you should use "{network.with_prefixlen}" instead'
        ) from None


class MatchList:
    """The items of one list parameter, compiled once; ask ``match_domain`` / ``match_client``."""

    def __init__(self, title: str, items: Sequence[str], *, parent_style: bool = False) -> None:
        self.title = title
        self.parent_style = parent_style
        warnings: list[ConfigWarning] = []
        self._items = tuple(self._compile(items, warnings))
        self.warnings = tuple(warnings)

    def _compile(self, items: Sequence[str], warnings: list[ConfigWarning]) -> Iterator[_Item]:
        for raw in items:
            negated = raw.startswith("!")
            text = raw[1:] if negated else raw
            if text.startswith("/"):
                yield from self._compile(self._read_file(text, warnings), warnings)
                continue
            # An address first: an unbracketed IPv6 network also contains ':'.
            if parse_address(text.partition("/")[0]) is None and ":" in text:
                maps = open_maps(self.title, [text])
                warnings.extend(maps.warnings)
                if maps:
                    yield _Item(negated, text, maps=maps)
                continue
            yield _Item(negated, _fold(text), network=parse_network(self.title, text))

    def _read_file(self, path: str, warnings: list[ConfigWarning]) -> tuple[str, ...]:
        try:
            text = Path(path).read_text(encoding="utf-8")
        except OSError as error:
            raise ConfigError(f"{self.title}: open {path}: {error.strerror}") from None
        words: list[str] = []
        for line in text.splitlines():
            if line.strip() and not line.lstrip().startswith("#"):
                words.extend(split_list(line))
        return tuple(words)

    def match_domain(self, domain: str) -> bool:
        """Does ``domain`` match? Raises ``TableLookupError`` when a table cannot answer."""
        name = _fold(domain)
        for item in self._items:
            if item.network is None and self._host_matches(item, name):
                return not item.negated
        return False

    def match_client(self, name: str, addr: str) -> bool:
        """Does the client (host name, IP address) match (namadr_list)?"""
        host = _fold(name)
        address = parse_address(addr)
        for item in self._items:
            hit = self._address_matches(item, addr, address)
            if not hit and item.network is None and host and host != "unknown":
                hit = self._host_matches(item, host)
            if hit:
                return not item.negated
        return False

    def _host_matches(self, item: _Item, name: str) -> bool:
        if item.maps is not None:
            return self._table_has_domain(item.maps, name)
        pattern = item.text
        if name == pattern:
            return True
        if pattern.startswith("."):
            return name.endswith(pattern) and len(name) > len(pattern)
        return self.parent_style and name.endswith("." + pattern)

    def _table_has_domain(self, maps: Maps, name: str) -> bool:
        if maps.find(name) is not None:
            return True
        rest = name
        while "." in rest[1:]:
            rest = rest[rest.index(".", 1) :]  # ".parent.tld"
            key = rest[1:] if self.parent_style else rest
            if maps.find_fixed(key) is not None:
                return True
        return False

    @staticmethod
    def _address_matches(item: _Item, text: str, address: Address | None) -> bool:
        if address is None:
            return False
        if item.maps is not None:
            return item.maps.find(str(address)) is not None
        network = item.network
        return network is not None and address.version == network.version and address in network

    def close(self) -> None:
        for item in self._items:
            if item.maps is not None:
                item.maps.close()


def _fold(name: str) -> str:
    """Lower case, without one trailing dot (``example.com.`` is ``example.com``)."""
    name = name.strip().lower()
    return name[:-1] if name.endswith(".") and not name.endswith("..") else name
