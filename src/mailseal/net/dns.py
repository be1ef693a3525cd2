"""MX and host address lookups for outbound delivery, as Postfix's smtp(8) does them.

Follows Postfix 3.7's ``smtp_addr.c`` and ``dns_lookup.c`` (read for behaviour,
not copied):

- MX records are sorted by preference; equally preferred hosts are shuffled
  (RFC 5321 section 5.1, ``smtp_randomize_addresses``), then each host's A/AAAA
  records are looked up for the families in ``inet_protocols``.
- No MX records (NXDOMAIN or NODATA) means the domain itself, at preference 0
  (RFC 5321 section 5.1 implicit MX). So an unknown domain fails on its address
  lookup, with Postfix's text ``... name=DOMAIN type=AAAA: Host not found``
  (``type=A`` when only IPv4 is on: the last type tried is named).
- Any MX record whose exchange is the root is a null MX (RFC 7505): bounce
  with ``Domain DOMAIN does not accept mail (nullMX)``, DSN 5.1.0.
- An MX host without a usable address is skipped silently, as Postfix does; the
  skipped hosts are listed in :class:`MxResolution` for callers who log more.
  When no MX host has one, Postfix logs ``no MX host for DOMAIN has a valid
  address record`` (:attr:`DnsError.warning`) and fails with the last host's
  error; one temporary host error makes the whole failure temporary, and so
  does ``smtp_defer_if_no_mx_address_found``.
- When A and AAAA disagree, the better outcome wins (found > not found >
  try again > non-recoverable), a tie naming the later type (``dns_lookup_rv``).

Simplifications (documented, deliberate): an exchange written as an IPv4
address is used as that address (Postfix too, after a warning); a CNAME is
followed only as far as the answering server's own reply carries it (dnspython
does not re-query the alias target); there is no DNSSEC or TLSA here yet.
Address shuffling across hosts, ``smtp_mx_address_limit`` and
``smtp_balance_inet_protocols`` are the caller's: results stay grouped by host.
"""

from __future__ import annotations

import asyncio
import functools
import ipaddress
import random
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from enum import IntEnum
from typing import TYPE_CHECKING

# dnspython is imported where a query is made, not here: it costs a process about
# 7 MB, and a master that delivers only locally never asks the DNS anything.
if TYPE_CHECKING:
    import dns.asyncresolver
    import dns.name
    import dns.rdtypes.ANY.MX
    import dns.resolver
    import dns.rrset

__all__ = ["DnsError", "MxHost", "MxResolution", "NullMxError", "Resolver", "SkippedMx"]

# Postfix's var_dns_rr_list_limit default: a domain cannot make us chase more hosts.
_MX_LIMIT = 100

# glibc's resolver tries the next server on these and finally says TRY_AGAIN;
# any other unhappy rcode (FORMERR, ...) is NO_RECOVERY, a hard error.
# (SERVFAIL, NOTIMP, REFUSED: RFC 1035 section 4.1.1 codes 2, 4, 5.)
_RETRY_RCODES = frozenset({2, 4, 5})

# dns_strerror()'s texts for the resolver's h_errno values.
_HOST_NOT_FOUND = "Host not found"
_TRY_AGAIN = "Host not found, try again"
_NO_RECOVERY = "Non-recoverable error"
_NO_DATA = "Host found but no data record of requested type"


class _Status(IntEnum):
    """Postfix's lookup status codes, in its order: a higher one wins a merge."""

    FAIL = -4  # non-recoverable (5.4.3)
    RETRY = -3  # try again (4.4.3)
    NOTFOUND = -2  # NXDOMAIN or NODATA (5.4.4)
    OK = 0


class DnsError(Exception):
    """A failed lookup: Postfix's reason text, whether to retry, and the DSN code."""

    def __init__(self, text: str, *, temporary: bool, dsn: str, warning: str | None = None) -> None:
        super().__init__(text)
        self.text = text
        self.temporary = temporary
        self.dsn = dsn
        # A line Postfix logs as "warning: ..." beside the deferral or bounce.
        self.warning = warning


class NullMxError(DnsError):
    """The domain publishes a null MX (RFC 7505): it accepts no mail at all."""

    def __init__(self, domain: str) -> None:
        super().__init__(
            f"Domain {domain} does not accept mail (nullMX)", temporary=False, dsn="5.1.0"
        )
        self.domain = domain


@dataclass(frozen=True)
class MxHost:
    """One mail exchanger with its addresses, in the order to try them."""

    name: str  # lower case, no trailing dot
    preference: int
    addresses: tuple[str, ...]


@dataclass(frozen=True)
class SkippedMx:
    """An MX host left out because its address lookup failed."""

    name: str
    preference: int
    text: str
    temporary: bool


@dataclass(frozen=True)
class MxResolution:
    """The hosts to try, best first; ``implicit`` when the domain had no MX records."""

    hosts: tuple[MxHost, ...]
    skipped: tuple[SkippedMx, ...] = ()
    implicit: bool = False


@dataclass(frozen=True)
class _Reply:
    """One query's outcome: records on OK, else Postfix's reason text."""

    status: _Status
    rrset: dns.rrset.RRset | None = None
    text: str = ""


def _parse_protocols(inet_protocols: str | Iterable[str]) -> tuple[str, ...]:
    """A then AAAA (record type names), as Postfix's inet_proto.c lists them; ``all`` is both."""
    items = [inet_protocols] if isinstance(inet_protocols, str) else list(inet_protocols)
    words = [word.lower() for item in items for word in item.replace(",", " ").split()]
    if not words or any(w not in ("all", "ipv4", "ipv6") for w in words):
        raise ValueError(f"bad inet_protocols value: {inet_protocols!r}")
    types: list[str] = []
    if "all" in words or "ipv4" in words:
        types.append("A")
    if "all" in words or "ipv6" in words:
        types.append("AAAA")
    return tuple(types)


def _looks_valid(text: str) -> bool:
    """Postfix's valid_hostname() in short: LDH (and _) labels, no edge hyphens, not numeric."""
    labels = text.split(".")
    if len(text) > 253 or not all(0 < len(label) <= 63 for label in labels):
        return False
    if all(label.isdigit() for label in labels):
        return False
    allowed = set("abcdefghijklmnopqrstuvwxyz0123456789-_")
    return all(set(label.lower()) <= allowed and label[0] != "-" != label[-1] for label in labels)


def _is_ip(text: str) -> bool:
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True


def _to_name(host: str) -> tuple[dns.name.Name, str]:
    """The absolute DNS name to query and the spelling Postfix shows in texts."""
    import dns.exception
    import dns.name

    shown = host.removesuffix(".")
    invalid = DnsError(
        f"Name service error for {shown}: invalid host or domain name",
        temporary=False,
        dsn="5.4.4",
    )
    if _is_ip(shown):
        raise invalid
    try:
        name = dns.name.from_text(shown)  # IDNA for non-ASCII names
    except (dns.exception.DNSException, UnicodeError):
        raise invalid from None
    ascii_text = name.to_text(omit_final_dot=True)
    if name == dns.name.root or not _looks_valid(ascii_text):
        raise invalid
    return name, ascii_text


def _failure(name: str, rdtype: str, status: _Status, why: str) -> _Reply:
    text = f"Host or domain name not found. Name service error for name={name} type={rdtype}: {why}"
    return _Reply(status, text=text)


def _failure_from(exc: Exception, name: str, rdtype: str) -> _Reply:
    """A resolver exception as the h_errno Postfix would have seen, with its text."""
    import dns.exception
    import dns.resolver

    if isinstance(exc, dns.resolver.NXDOMAIN):
        status, why = _Status.NOTFOUND, _HOST_NOT_FOUND
    elif isinstance(exc, dns.resolver.NoNameservers):
        status, why = _no_nameservers(exc)
    elif isinstance(exc, dns.resolver.YXDOMAIN):
        status, why = _Status.FAIL, _NO_RECOVERY
    elif isinstance(exc, (dns.exception.Timeout, OSError)):
        status, why = _Status.RETRY, _TRY_AGAIN
    else:
        text = f"Name service error for name={name} type={rdtype}: "
        return _Reply(_Status.RETRY, text=text + "Malformed or unexpected name server reply")
    return _failure(name, rdtype, status, why)


def _no_nameservers(exc: dns.resolver.NoNameservers) -> tuple[_Status, str]:
    """Every server failed: only rcodes glibc does not retry make it hard."""
    errors = exc.kwargs.get("errors") or []
    rcodes = [error[4].rcode() if error[4] is not None else None for error in errors]
    if rcodes and all(rc is not None and rc not in _RETRY_RCODES for rc in rcodes):
        return _Status.FAIL, _NO_RECOVERY
    return _Status.RETRY, _TRY_AGAIN


def _dsn(status: _Status, soft: bool) -> str:
    """smtp_addr_one()'s DSN per status; a soft error so far keeps later ones soft."""
    if status is _Status.RETRY:
        return "4.4.3"
    code = "5.4.3" if status is _Status.FAIL else "5.4.4"
    return "4" + code[1:] if soft else code


def _address_key(address: str) -> tuple[int, bytes]:
    parsed = ipaddress.ip_address(address)
    return parsed.version, parsed.packed


def _order_by_family(addresses: list[str], preference: str) -> list[str]:
    if preference == "any":
        return addresses
    first = 4 if preference == "ipv4" else 6
    # sorted() is stable: the shuffled (or DNS) order holds within each family.
    return sorted(addresses, key=lambda a: ipaddress.ip_address(a).version != first)


def _make_resolver(
    nameservers: Sequence[tuple[str, int]] | None, timeout: float
) -> dns.asyncresolver.Resolver | None:
    """dnspython's stub resolver without a cache; ``None`` if resolv.conf is unusable."""
    import dns.asyncresolver
    import dns.nameserver
    import dns.resolver

    try:
        resolver = dns.asyncresolver.Resolver(configure=nameservers is None)
    except dns.resolver.NoResolverConfiguration:
        return None
    if nameservers is not None:
        resolver.nameservers = [
            dns.nameserver.Do53Nameserver(host, port) for host, port in nameservers
        ]
    # The whole query, over every server and the TCP retry after a truncated
    # answer, ends within this time (dnspython cuts each try to what is left).
    resolver.lifetime = timeout
    resolver.cache = None  # each delivery attempt asks afresh, as Postfix does
    return resolver


class Resolver:
    """MX and host address lookups with Postfix's outcomes, texts and DSN codes.

    ``nameservers`` of ``None`` reads ``/etc/resolv.conf``; tests give the stub
    server's ``(host, port)``. ``timeout`` bounds each DNS query. The other
    keywords are the main.cf parameters ``inet_protocols``,
    ``smtp_address_preference``, ``smtp_randomize_addresses`` and
    ``smtp_defer_if_no_mx_address_found``; ``rng`` makes shuffling repeatable.
    """

    def __init__(
        self,
        nameservers: Sequence[tuple[str, int]] | None = None,
        *,
        timeout: float = 10.0,
        inet_protocols: str | Iterable[str] = "all",
        address_preference: str = "any",
        randomize: bool = True,
        defer_if_no_mx_address_found: bool = False,
        rng: random.Random | None = None,
    ) -> None:
        if address_preference not in ("any", "ipv4", "ipv6"):
            raise ValueError(f"bad smtp_address_preference value: {address_preference!r}")
        self._types = _parse_protocols(inet_protocols)
        self._versions = {4 if t == "A" else 6 for t in self._types}
        self._preference = address_preference
        self._randomize = randomize
        self._defer_no_address = defer_if_no_mx_address_found
        # Shuffling spreads load over equal MX hosts; it needs no secrecy.
        self._rng = rng if rng is not None else random.Random()  # noqa: S311
        self._nameservers = nameservers
        self._timeout = timeout

    @functools.cached_property
    def _resolver(self) -> dns.asyncresolver.Resolver | None:
        # Made at the first query (reading resolv.conf then), so that a process
        # that never resolves never loads dnspython.
        return _make_resolver(self._nameservers, self._timeout)

    async def mx_hosts(self, domain: str) -> list[MxHost]:
        """The domain's mail exchangers, best first; raises DnsError or NullMxError."""
        return list((await self.resolve_mx(domain)).hosts)

    async def resolve_mx(self, domain: str) -> MxResolution:
        """Like :meth:`mx_hosts`, also telling which hosts were skipped and why."""
        import dns.name

        name, shown = _to_name(domain)
        reply = await self._query(name, shown, "MX")
        if reply.status is _Status.NOTFOUND:
            addresses = await self._addresses_or_raise(shown)
            return MxResolution((MxHost(shown.lower(), 0, addresses),), implicit=True)
        if reply.rrset is None:
            temporary = reply.status is _Status.RETRY
            raise DnsError(reply.text, temporary=temporary, dsn="4.4.3" if temporary else "5.4.3")
        records: list[dns.rdtypes.ANY.MX.MX] = list(reply.rrset)
        # Postfix treats any root exchange as null MX, not only RFC 7505's lone "0 .".
        if any(record.exchange == dns.name.root for record in records):
            raise NullMxError(shown)
        return await self._exchangers(shown, records)

    async def host_addresses(self, host: str) -> tuple[str, ...]:
        """A and AAAA addresses of one host (an IP address is itself); raises DnsError."""
        return await self._addresses_or_raise(host)

    async def _exchangers(self, domain: str, records: list[dns.rdtypes.ANY.MX.MX]) -> MxResolution:
        # A canonical order first, so that a seeded rng repeats whatever order
        # the server sent (servers shuffle too); sort() is stable, so equal
        # preferences keep the shuffled order.
        records.sort(key=lambda record: record.exchange)
        if self._randomize:
            self._rng.shuffle(records)
        records.sort(key=lambda record: record.preference)
        records = records[:_MX_LIMIT]
        names = [record.exchange.to_text(omit_final_dot=True).lower() for record in records]
        results = await asyncio.gather(*(self._lookup_addresses(name) for name in names))
        hosts: list[MxHost] = []
        skipped: list[SkippedMx] = []
        soft, text, dsn = False, "", ""
        for record, name, (addresses, reply) in zip(records, names, results, strict=True):
            if addresses:
                hosts.append(MxHost(name, record.preference, self._arrange(addresses)))
                continue
            text, dsn = reply.text, _dsn(reply.status, soft)
            soft = dsn.startswith("4")
            retry = reply.status is _Status.RETRY
            skipped.append(SkippedMx(name, record.preference, reply.text, retry))
        if hosts:
            return MxResolution(tuple(hosts), tuple(skipped))
        temporary = soft or self._defer_no_address
        raise DnsError(
            text,
            temporary=temporary,
            dsn="4" + dsn[1:] if temporary else dsn,
            warning=f"no MX host for {domain} has a valid address record",
        )

    async def _addresses_or_raise(self, host: str) -> tuple[str, ...]:
        addresses, reply = await self._lookup_addresses(host)
        if not addresses:
            temporary = reply.status is _Status.RETRY
            raise DnsError(reply.text, temporary=temporary, dsn=_dsn(reply.status, soft=False))
        return self._arrange(addresses)

    async def _lookup_addresses(self, host: str) -> tuple[tuple[str, ...], _Reply]:
        """dns_lookup_v() over the enabled types: the addresses and the merged outcome."""
        literal = host.removesuffix(".")
        if _is_ip(literal) and ipaddress.ip_address(literal).version in self._versions:
            return (literal,), _Reply(_Status.OK)
        try:
            name, shown = _to_name(host)
        except DnsError as error:
            return (), _Reply(_Status.NOTFOUND, text=error.text)
        replies = await asyncio.gather(*(self._query(name, shown, t) for t in self._types))
        best = replies[0]
        for reply in replies[1:]:
            if reply.status >= best.status:  # a tie reports the later type, as Postfix does
                best = reply
        addresses = [str(rd.address) for reply in replies if reply.rrset for rd in reply.rrset]
        return tuple(addresses), best

    def _arrange(self, addresses: tuple[str, ...]) -> tuple[str, ...]:
        """smtp_randomize_addresses, then smtp_address_preference (a stable sort)."""
        ordered = list(addresses)
        if self._randomize:
            # Sorted first, and shuffled in host order (never as lookups finish),
            # so that a seeded rng gives one answer.
            ordered.sort(key=_address_key)
            self._rng.shuffle(ordered)
        return tuple(_order_by_family(ordered, self._preference))

    async def _query(self, name: dns.name.Name, shown: str, rdtype: str) -> _Reply:
        """One question, its failure mapped to Postfix's status and text."""
        import dns.exception

        if self._resolver is None:
            # Postfix bounces here (DNS_FAIL); a broken resolv.conf is ours, so we wait.
            raise DnsError("Name service initialization failure", temporary=True, dsn="4.3.0")
        try:
            answer = await self._resolver.resolve(
                name, rdtype, search=False, raise_on_no_answer=False
            )
        except (dns.exception.DNSException, OSError) as exc:
            return _failure_from(exc, shown, rdtype)
        if answer.rrset is None:
            return _failure(shown, rdtype, _Status.NOTFOUND, _NO_DATA)
        return _Reply(_Status.OK, rrset=answer.rrset)
