"""Where ``mailseal tls-finger`` connects: the destination argument, DNS servers, MX targets.

The destination syntax is posttls-finger(1)'s (Postfix ``host_port()``):
``domain`` (MX lookup), ``domain:port``, ``[host]`` and ``[host]:port`` (no MX
lookup), ``[ipv6:addr]:port``, with an optional ``inet:`` prefix. The port is a
number or a service name from /etc/services (``smtp`` is 25 even without one).
An IP address without brackets is used as if bracketed (Postfix would try an MX
lookup and fail on it; there is nothing else it could mean).

Targets are tried in order: MX hosts by preference (``mailseal.net.dns``), each
host's addresses as the resolver arranged them, at most ``-m`` of them in all.
"""

from __future__ import annotations

import ipaddress
import socket
from dataclasses import dataclass

from mailseal.net.dns import Resolver

__all__ = ["Destination", "Target", "parse_destination", "parse_nameserver", "resolve_targets"]

_DNS_PORT = 53
# Postfix's filter_known_tcp_port() and a missing /etc/services entry for smtp.
_KNOWN_PORTS = {"smtp": 25, "submission": 587, "submissions": 465, "smtps": 465}


@dataclass(frozen=True)
class Destination:
    """The parsed destination: ``host`` without brackets, whether to look up MX records."""

    text: str
    host: str
    port: int
    bracketed: bool

    @property
    def uses_mx(self) -> bool:
        return not self.bracketed and not _is_ip(self.host)


@dataclass(frozen=True)
class Target:
    """One address to try, with the host name it belongs to (for logs and name checks)."""

    host: str
    address: str
    from_dns_mx: bool


def _is_ip(text: str) -> bool:
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True


def _port(service: str, destination: str) -> int:
    if service.isdigit():
        port = int(service)
        if not 0 < port < 65536:
            raise ValueError(f"bad network port: {service} for destination: {destination}")
        return port
    try:
        return socket.getservbyname(service, "tcp")
    except OSError:
        if service in _KNOWN_PORTS:
            return _KNOWN_PORTS[service]
        raise ValueError(f"unknown service: {service}/tcp") from None


def parse_destination(text: str, default_port: int) -> Destination:
    """Parse ``[inet:]domain[:port]`` / ``[host]:port``; ValueError in Postfix's words."""
    spec = text.removeprefix("inet:")
    bracketed = spec.startswith("[")
    if bracketed:
        host, close, rest = spec[1:].partition("]")
        if not close or (rest and not rest.startswith(":")):
            raise ValueError(f'missing "]" in server description: {text}')
        service = rest[1:]
        host = host[5:] if host.lower().startswith("ipv6:") else host
    else:
        host, _, service = spec.partition(":")
        if ":" in service:
            raise ValueError(f"an IPv6 address needs the [ipv6:address] form: {text}")
    if not host:
        raise ValueError(f"missing host in server description: {text}")
    port = _port(service, text) if service else default_port
    return Destination(text, host.rstrip(".") if not _is_ip(host) else host, port, bracketed)


def parse_nameserver(text: str) -> tuple[str, int]:
    """``addr``, ``addr:port``, ``[addr]:port`` or ``[v6addr]:port`` as ``(addr, port)``."""
    spec = text.strip()
    if spec.startswith("["):
        address, _, rest = spec[1:].partition("]")
        port_text = rest.removeprefix(":")
    elif spec.count(":") == 1:
        address, _, port_text = spec.partition(":")
    else:
        address, port_text = spec, ""
    if not _is_ip(address) or (port_text and not port_text.isdigit()):
        raise ValueError(f"bad DNS server address: {text} (use addr, addr:port or [addr]:port)")
    port = int(port_text) if port_text else _DNS_PORT
    if not 0 < port < 65536:
        raise ValueError(f"bad DNS server port: {text}")
    return address, port


async def resolve_targets(
    destination: Destination, resolver: Resolver, limit: int
) -> tuple[Target, ...]:
    """The addresses to try, best first, at most ``limit``; raises ``DnsError``."""
    if not destination.uses_mx:
        addresses = await resolver.host_addresses(destination.host)
        return tuple(Target(destination.host, a, False) for a in addresses[:limit])
    resolution = await resolver.resolve_mx(destination.host)
    # A domain without MX records is its own exchanger: its name did not come from an MX.
    from_mx = not resolution.implicit
    targets = [
        Target(host.name, address, from_mx)
        for host in resolution.hosts
        for address in host.addresses
    ]
    return tuple(targets[:limit])
