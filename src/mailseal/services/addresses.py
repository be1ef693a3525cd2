"""Address classes (ADDRESS_CLASS_README): which kind of destination an address is.

Postfix's trivial-rewrite resolves a recipient to one class, by its domain,
tested in this order:

1. **local**: the domain matches ``mydestination``, or is an address literal
   (``[192.0.2.1]``, ``[IPv6:2001:db8::1]``) of this host's
   ``inet_interfaces`` / ``proxy_interfaces``;
2. **virtual alias**: ``virtual_alias_domains``;
3. **virtual mailbox**: ``virtual_mailbox_domains``;
4. **relay**: ``relay_domains``;
5. **default**: everything else, delivered to other hosts.

Domains compare without regard to case and to one trailing dot. An address
without a domain is first completed with ``@$myorigin`` (append_at_myorigin,
what trivial-rewrite's "local" context does for smtpd's checks), so ``root``
is ``root@$myorigin`` and takes that domain's class.

"Authorized destinations" for relay control (permit_auth_destination,
reject_unauth_destination) are the first four classes.

Not done: source routes and the ``%`` hack (``user%other@here``); such
addresses are classified by their last domain only.

When ``inet_interfaces`` is ``all`` this package cannot list the host's
addresses itself; the caller may pass them as ``own_addresses``. Loopback
addresses always count as this host's.
"""

from __future__ import annotations

from collections.abc import Iterable
from enum import StrEnum

from mailseal.config.errors import ConfigWarning
from mailseal.config.model import Config
from mailseal.services.matchlist import Address, MatchList, parse_address

__all__ = ["AddressClass", "Addressing", "split_address"]

_LOOPBACK = ("127.0.0.1", "::1")


class AddressClass(StrEnum):
    """The address classes of ADDRESS_CLASS_README, in resolution order."""

    LOCAL = "local"
    VIRTUAL_ALIAS = "virtual_alias"
    VIRTUAL_MAILBOX = "virtual_mailbox"
    RELAY = "relay"
    DEFAULT = "default"

    @property
    def is_authorized_destination(self) -> bool:
        """Mail this host accepts from anyone: final delivery here, or a relay domain."""
        return self is not AddressClass.DEFAULT


def split_address(address: str) -> tuple[str, str]:
    """``("user", "example.com")``; the domain is '' when there is none."""
    at = address.rfind("@")
    if at < 0:
        return address, ""
    return address[:at], address[at + 1 :]


class Addressing:
    """The domain lists of one ``Config``, opened once; classifies addresses."""

    def __init__(self, config: Config, own_addresses: Iterable[str] = ()) -> None:
        self.config = config
        parents = set(config.parent_domain_matches_subdomains)

        def domain_list(name: str, items: tuple[str, ...]) -> MatchList:
            return MatchList(name, items, parent_style=name in parents)

        self.mydestination = domain_list("mydestination", config.mydestination)
        self.virtual_alias_domains = domain_list(
            "virtual_alias_domains", config.virtual_alias_domains
        )
        self.virtual_mailbox_domains = domain_list(
            "virtual_mailbox_domains", config.virtual_mailbox_domains
        )
        self.relay_domains = domain_list("relay_domains", config.relay_domains)
        self._lists = (
            self.mydestination,
            self.virtual_alias_domains,
            self.virtual_mailbox_domains,
            self.relay_domains,
        )
        self.own_addresses = _own_addresses(config, own_addresses)
        self.warnings: tuple[ConfigWarning, ...] = tuple(
            warning for match_list in self._lists for warning in match_list.warnings
        )

    def canonical(self, address: str) -> str:
        """``address`` with ``@$myorigin`` added when it has no domain, domain folded."""
        localpart, domain = split_address(address)
        domain = _fold_domain(domain)
        if not domain:
            if not self.config.append_at_myorigin:
                return localpart
            domain = _fold_domain(self.config.myorigin)
        return f"{localpart}@{domain}"

    def is_local_domain(self, domain: str) -> bool:
        """Postfix's resolve_local: mydestination, or a literal of one of our addresses."""
        domain = _fold_domain(domain)
        if not domain:
            return True
        if domain.startswith("[") and domain.endswith("]"):
            address = parse_address(domain)
            return address is not None and address in self.own_addresses
        return self.mydestination.match_domain(domain)

    def classify(self, address: str) -> AddressClass:
        """The class of ``address``; ``TableLookupError`` when a domain table cannot answer."""
        domain = split_address(self.canonical(address))[1]
        if self.is_local_domain(domain):
            return AddressClass.LOCAL
        if self.virtual_alias_domains.match_domain(domain):
            return AddressClass.VIRTUAL_ALIAS
        if self.virtual_mailbox_domains.match_domain(domain):
            return AddressClass.VIRTUAL_MAILBOX
        if self.relay_domains.match_domain(domain):
            return AddressClass.RELAY
        return AddressClass.DEFAULT

    def is_local_or_virtual_or_relay(self, address: str) -> bool:
        """An authorized destination (permit_auth_destination / reject_unauth_destination)."""
        return self.classify(address).is_authorized_destination

    def close(self) -> None:
        for match_list in self._lists:
            match_list.close()


def _fold_domain(domain: str) -> str:
    domain = domain.strip().lower()
    return domain[:-1] if domain.endswith(".") and not domain.endswith("..") else domain


def _own_addresses(config: Config, extra: Iterable[str]) -> frozenset[Address]:
    """This host's addresses as far as the configuration (and the caller) tells."""
    texts = [*_LOOPBACK, *extra, *config.proxy_interfaces]
    texts += [item for item in config.inet_interfaces if item not in ("all", "loopback-only")]
    addresses = (parse_address(text.partition("/")[0]) for text in texts)
    return frozenset(address for address in addresses if address is not None)
