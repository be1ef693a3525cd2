"""The next hop of a delivery and the servers to try for it (Postfix's smtp_connect.c).

Next-hop syntax (transport(5)): ``domain``, ``domain:port``, ``[host]`` and
``[host]:port``. A name in ``[ ]`` (or a numeric address) gets no MX lookup;
a plain domain gets one, with the domain itself as implicit MX (RFC 5321
section 5.1). The port is the one given, else ``smtp_tcp_port``; a service
name goes through ``known_tcp_ports`` first, then ``/etc/services``, as
Postfix 3.6+ does (``filter_known_tcp_port``).

The server list is every address of every MX host in preference order
(:class:`mailseal.net.dns.Resolver` has already sorted and shuffled them),
cut at ``smtp_mx_address_limit`` (0: no limit).
"""

from __future__ import annotations

import ipaddress
import socket
from dataclasses import dataclass

from mailseal.config.mastercf import known_port
from mailseal.net.dns import MxResolution, Resolver

__all__ = ["Nexthop", "NexthopError", "Target", "parse_nexthop", "resolve_port", "targets"]


class NexthopError(ValueError):
    """A next hop or port we cannot use; the text is Postfix's fatal message."""


@dataclass(frozen=True)
class Nexthop:
    """A parsed next hop: ``host`` without brackets, ``literal`` when no MX lookup is done."""

    text: str
    host: str
    port: int
    literal: bool

    @property
    def domain(self) -> str:
        """The name certificates are matched against (``nexthop`` strategy)."""
        return self.host


@dataclass(frozen=True)
class Target:
    """One server address to try: MX host name, address, port, and where the name came from."""

    host: str
    addr: str
    port: int
    from_dns_mx: bool
    best_mx: bool

    @property
    def namaddr(self) -> str:
        return f"{self.host}[{self.addr}]"

    @property
    def namaddrport(self) -> str:
        return f"{self.host}[{self.addr}]:{self.port}"


def _is_address(text: str) -> bool:
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True


def resolve_port(service: str, known_tcp_ports: tuple[str, ...], destination: str) -> int:
    """A service name or number as a TCP port (smtp_parse_destination())."""
    name = known_port(service, known_tcp_ports) or service
    if name.isascii() and name.isdigit():
        port = int(name)
        if not 0 < port < 65536:
            raise NexthopError(f"bad network port: {name} for destination: {destination}")
        return port
    try:
        return socket.getservbyname(name, "tcp")
    except OSError:
        raise NexthopError(f"unknown service: {name}/tcp") from None


def parse_nexthop(text: str, default_service: str, known_tcp_ports: tuple[str, ...]) -> Nexthop:
    """Parse a next hop as Postfix's host_port() does; raises :class:`NexthopError`."""
    given = text.strip()
    if given.startswith("["):
        inside, bracket, rest = given[1:].partition("]")
        if not bracket or not inside or (rest and not rest.startswith(":")):
            raise NexthopError(f'missing "]" in server description: {given}')
        host = inside.removeprefix("ipv6:").removeprefix("IPv6:")
        service = rest[1:] or default_service
        literal = True
    else:
        # A bare IPv6 address has colons of its own; only [ ] may carry a port then.
        host, colon, service = given.rpartition(":")
        if not colon or ":" in host:
            host, service = given, default_service
        service = service or default_service
        literal = _is_address(host)
    if not host or any(c.isspace() for c in host):
        raise NexthopError(f"bad host name in server description: {given}")
    port = resolve_port(service, known_tcp_ports, given)
    return Nexthop(given, host.rstrip(".").lower() if not literal else host, port, literal)


async def targets(nexthop: Nexthop, resolver: Resolver, limit: int) -> tuple[Target, ...]:
    """The addresses to try, best first; raises ``DnsError`` / ``NullMxError``."""
    if nexthop.literal:
        addresses = await resolver.host_addresses(nexthop.host)
        found = tuple(Target(nexthop.host, a, nexthop.port, False, True) for a in addresses)
    else:
        found = _from_mx(await resolver.resolve_mx(nexthop.host), nexthop.port)
    return found[:limit] if limit > 0 else found


def _from_mx(resolution: MxResolution, port: int) -> tuple[Target, ...]:
    if not resolution.hosts:
        return ()
    best = resolution.hosts[0].preference
    from_dns = not resolution.implicit
    return tuple(
        Target(mx.name, addr, port, from_dns, mx.preference == best)
        for mx in resolution.hosts
        for addr in mx.addresses
    )
