"""Trusted client networks: ``mynetworks`` and ``mynetworks_style`` (postconf(5)).

``permit_mynetworks`` and relay control ask ``NetworkList.matches(addr)``.
The list is ``mynetworks`` when it is set. mailseal's table gives
``mynetworks`` a loopback-only default instead of computing one from
``mynetworks_style`` (see ``config.params.identity``); so the style is used
only when the admin sets ``mynetworks_style`` and leaves ``mynetworks`` unset,
and then it is applied, as Postfix applies it, to this host's interface
addresses:

* ``host``: each interface address alone (``/32``, ``/128``);
* ``subnet``: the network each interface is on;
* ``class``: the whole class A, B or C network of each IPv4 interface (the
  subnet for IPv6, as Postfix does).

This package does no system calls, so the caller passes the interfaces as
``address/prefix`` strings (``"192.0.2.10/24"``). When it passes none, the
loopback interfaces ``127.0.0.1/8`` and ``::1/128`` stand in for them.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable

from mailseal.config.model import Config
from mailseal.services.matchlist import MatchList

__all__ = [
    "LOOPBACK_INTERFACES",
    "NetworkList",
    "my_networks",
    "network_list",
    "networks_for_style",
]

LOOPBACK_INTERFACES = ("127.0.0.1/8", "::1/128")

_Interface = ipaddress.IPv4Interface | ipaddress.IPv6Interface


class NetworkList:
    """A client name/address list such as mynetworks; ``matches`` answers for one client."""

    def __init__(self, title: str, items: Iterable[str], *, parent_style: bool = False) -> None:
        self.items = tuple(items)
        self._list = MatchList(title, self.items, parent_style=parent_style)
        self.warnings = self._list.warnings

    def matches(self, addr: str, name: str = "unknown") -> bool:
        """Is the client at ``addr`` (reverse name ``name``) in the list?"""
        return self._list.match_client(name, addr)

    def close(self) -> None:
        self._list.close()

    def __repr__(self) -> str:
        return f"<NetworkList {' '.join(self.items)}>"


def networks_for_style(style: str, interfaces: Iterable[str]) -> tuple[str, ...]:
    """The mynetworks items that ``mynetworks_style`` gives for these interfaces."""
    networks: list[str] = []
    for text in interfaces:
        interface: _Interface = ipaddress.ip_interface(text)
        if style == "host":
            network = ipaddress.ip_network(interface.ip)
        elif style == "class" and isinstance(interface, ipaddress.IPv4Interface):
            prefix = _class_prefix(interface.ip)
            network = ipaddress.ip_network(f"{interface.ip}/{prefix}", strict=False)
        else:
            network = interface.network
        item = network.with_prefixlen
        if network.version == 6:
            item = f"[{network.network_address}]/{network.prefixlen}"
        if item not in networks:
            networks.append(item)
    return tuple(networks)


def _class_prefix(address: ipaddress.IPv4Address) -> int:
    """The classful prefix of ``address`` (A: /8, B: /16, C and above: /24)."""
    first = int(address) >> 24
    if first < 128:
        return 8
    if first < 192:
        return 16
    return 24


def my_networks(config: Config, interfaces: Iterable[str] | None = None) -> NetworkList:
    """The ``NetworkList`` of ``mynetworks`` (or of ``mynetworks_style``: module docstring)."""
    parent_style = "mynetworks" in config.parent_domain_matches_subdomains
    items: tuple[str, ...] = config.mynetworks
    if config.setting("mynetworks") is None and config.setting("mynetworks_style") is not None:
        chosen = LOOPBACK_INTERFACES if interfaces is None else tuple(interfaces)
        items = networks_for_style(config.mynetworks_style, chosen or LOOPBACK_INTERFACES)
    return NetworkList("mynetworks", items, parent_style=parent_style)


def network_list(config: Config, items: Iterable[str], title: str = "mynetworks") -> NetworkList:
    """A ``NetworkList`` of other client lists (``smtpd_client_event_limit_exceptions``...)."""
    parent_style = title in config.parent_domain_matches_subdomains
    return NetworkList(title, items, parent_style=parent_style)
