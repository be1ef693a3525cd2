"""Where one final recipient goes: transport, next hop and mailbox (trivial-rewrite, qmgr).

The address class (``addresses``) chooses the default route, as postconf(5)
and ADDRESS_CLASS_README describe:

=================  ===================  ==========================================
class              transport            next hop when the transport names none
=================  ===================  ==========================================
local              ``local_transport``  the recipient domain
virtual mailbox    ``virtual_transport`` the recipient domain
relay              ``relay_transport``  ``relayhost``, else the recipient domain
default            ``default_transport`` ``relayhost``, else the recipient domain
virtual alias      ``error``            ``5.1.1 User unknown in virtual alias table``
=================  ===================  ==========================================

``transport_maps`` then override it (transport(5) "TABLE SEARCH ORDER"):
``user+ext@domain``, ``user@domain``, ``domain``, each parent domain
(``.parent``), then ``*``; pattern tables see only the whole address and the
domain. A result ``transport:nexthop`` replaces both; an empty half keeps
the default (``:[gateway]``, ``smtp:``).

For mailseal's own delivery agents the mailbox is found here too:

* ``virtual``: ``virtual_mailbox_base``/value of ``virtual_mailbox_maps``,
  owned by ``virtual_uid_maps``/``virtual_gid_maps`` (``static:5000``);
* ``local``: the user's home directory plus ``home_mailbox``, owned by the
  user. An empty ``home_mailbox`` (Postfix's default, which means the mbox
  file in ``mail_spool_directory``) is taken as ``Maildir/``.

mailseal delivers to Maildir only: a mailbox path not ending in ``/`` (an
mbox file) gives an ``error`` destination that bounces with
``5.3.0 ... mailbox format is not supported``, as a delivery error would.
"""

from __future__ import annotations

import pwd
from dataclasses import dataclass
from pathlib import Path

from mailseal.config.model import Config
from mailseal.config.tables import split_extension
from mailseal.services.addresses import AddressClass, Addressing, split_address
from mailseal.services.maps import Maps

__all__ = ["Destination", "Router", "parse_transport"]

LOCAL = "local"
VIRTUAL = "virtual"
ERROR = "error"


@dataclass(frozen=True)
class Destination:
    """One delivery: the transport to use, its next hop, and for mailboxes where and as whom."""

    transport: str
    nexthop: str
    address: str  # the final recipient, after alias expansion
    original: str  # the address as received (X-Original-To:)
    mailbox: Path | None = None  # Maildir directory, for local and virtual delivery
    uid: int | None = None
    gid: int | None = None


def parse_transport(text: str) -> tuple[str, str]:
    """``"smtp:[relay]:587"`` -> ``("smtp", "[relay]:587")``; the nexthop may be ''."""
    transport, _, nexthop = text.strip().partition(":")
    return transport, nexthop


class Router:
    """Routes final addresses; the tables are opened by the caller (``Recipients``)."""

    def __init__(
        self,
        config: Config,
        addressing: Addressing,
        *,
        transport_maps: Maps,
        virtual_mailbox_maps: Maps,
        virtual_uid_maps: Maps,
        virtual_gid_maps: Maps,
    ) -> None:
        self.config = config
        self.addressing = addressing
        self.transport_maps = transport_maps
        self.virtual_mailbox_maps = virtual_mailbox_maps
        self.virtual_uid_maps = virtual_uid_maps
        self.virtual_gid_maps = virtual_gid_maps

    def route(self, address: str, address_class: AddressClass) -> tuple[str, str]:
        """``(transport, nexthop)`` for ``address`` (canonical form) of ``address_class``."""
        domain = split_address(address)[1]
        default = {
            AddressClass.LOCAL: self.config.local_transport,
            AddressClass.VIRTUAL_MAILBOX: self.config.virtual_transport,
            AddressClass.RELAY: self.config.relay_transport,
            AddressClass.DEFAULT: self.config.default_transport,
        }.get(address_class)
        if default is None:
            return ERROR, self._unknown_alias_text()
        transport, nexthop = parse_transport(default)
        if not nexthop:
            remote = address_class in (AddressClass.RELAY, AddressClass.DEFAULT)
            nexthop = self.config.relayhost if remote and self.config.relayhost else domain
        override = self._transport_map(address)
        if override is not None:
            new_transport, new_nexthop = parse_transport(override)
            transport = new_transport or transport
            nexthop = new_nexthop or nexthop
        return transport, nexthop

    def _unknown_alias_text(self) -> str:
        table = " in virtual alias table" if self.config.show_user_unknown_table_name else ""
        return f"5.1.1 User unknown{table}"

    def _transport_map(self, address: str) -> str | None:
        """transport(5) search order (module docstring)."""
        maps = self.transport_maps
        if not maps:
            return None
        localpart, domain = split_address(address)
        value = maps.find(address)
        base = self.strip_extension(localpart)
        if value is None and base != localpart:
            value = maps.find_fixed(f"{base}@{domain}")
        if value is None and domain:
            value = maps.find(domain)
        parent = domain
        while value is None and "." in parent[1:]:
            parent = parent[parent.index(".", 1) :]
            value = maps.find_fixed(parent)
        return value if value is not None else maps.find_fixed("*")

    def strip_extension(self, localpart: str) -> str:
        """``user`` of ``user+ext`` (recipient_delimiter, split as Postfix splits)."""
        return split_extension(
            localpart,
            self.config.recipient_delimiter,
            owner_request_special=self.config.owner_request_special,
        )[0]

    def virtual_mailbox(self, address: str, original: str, nexthop: str) -> Destination:
        """The virtual(8) mailbox of ``address``, or an ``error`` destination."""
        match = self.virtual_mailbox_maps.find_address(
            address,
            delimiter=self.config.recipient_delimiter,
            is_local_domain=self.addressing.is_local_domain,
        )
        if match is None:
            return Destination(ERROR, f'5.1.1 unknown user: "{address}"', address, original)
        if not match.value.endswith("/"):
            return _mbox_unsupported(address, original, "virtual_mailbox_maps", match.value)
        mailbox = Path(self.config.virtual_mailbox_base) / match.value.lstrip("/")
        uid = self._id_of(self.virtual_uid_maps, address)
        gid = self._id_of(self.virtual_gid_maps, address)
        return Destination(VIRTUAL, nexthop, address, original, mailbox, uid, gid)

    def _id_of(self, maps: Maps, address: str) -> int | None:
        match = maps.find_address(
            address,
            delimiter=self.config.recipient_delimiter,
            is_local_domain=self.addressing.is_local_domain,
        )
        if match is None or not match.value.strip().isdigit():
            return None
        return int(match.value)

    def local_mailbox(self, address: str, original: str, nexthop: str) -> Destination:
        """The local(8) Maildir of the user ``address`` names, or an ``error`` destination."""
        localpart = split_address(address)[0]
        user = self.strip_extension(localpart).lower()
        try:
            entry = pwd.getpwnam(user)
        except KeyError:
            return Destination(ERROR, f'5.1.1 unknown user: "{user}"', address, original)
        home_mailbox = self.config.home_mailbox or "Maildir/"
        if not home_mailbox.endswith("/"):
            return _mbox_unsupported(address, original, "home_mailbox", home_mailbox)
        mailbox = Path(entry.pw_dir) / home_mailbox
        return Destination(LOCAL, nexthop, address, original, mailbox, entry.pw_uid, entry.pw_gid)


def _mbox_unsupported(address: str, original: str, parameter: str, value: str) -> Destination:
    text = (
        f"5.3.0 mailbox format is not supported: {parameter} gives {value}; "
        'mailseal delivers to Maildir only (end the path with "/")'
    )
    return Destination(ERROR, text, address, original)
