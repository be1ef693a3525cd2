"""Which recipients this host accepts (smtpd) and where they go (queue manager).

``Recipients.check`` is smtpd's recipient validation, check_rcpt_maps in
smtpd_check.c (smtpd(8), LOCAL_RECIPIENT_README, VIRTUAL_README), what
``smtpd_reject_unlisted_recipient`` and ``reject_unlisted_recipient`` apply:

1. an address found in ``recipient_canonical_maps``, ``canonical_maps`` or
   ``virtual_alias_maps`` (virtual(5) search order, with recipient_delimiter)
   is accepted: its expansion decides later;
2. otherwise, by address class (``addresses``):

   * virtual alias domain: ``unknown_virtual_alias_reject_code``,
     "User unknown in virtual alias table";
   * local: ``local_recipient_maps`` (when not empty) must know the address
     or its local part; ``postmaster``, ``mailer-daemon`` and
     ``$double_bounce_sender`` always pass;
     ``unknown_local_recipient_reject_code``, "User unknown in local recipient
     table";
   * virtual mailbox: ``virtual_mailbox_maps``;
     ``unknown_virtual_mailbox_reject_code``;
   * relay: ``relay_recipient_maps`` when set;
     ``unknown_relay_recipient_reject_code``;
   * default (remote): no check here; relay control is elsewhere.

The text is ``<address>: Recipient address rejected: User unknown in ... table``
with DSN 5.1.1 (the table name only with ``show_user_unknown_table_name``).
``check_sender`` is the same test for ``reject_unlisted_sender``: "Sender
address rejected", DSN 5.1.0. A table that cannot answer gives
``451 4.3.0 <address>: Temporary lookup failure``.

A list whose every table was of an unsupported type (see ``maps``) checks
nothing, rather than rejecting every address.

``Recipients.expand`` is the queue manager's view: see ``expansion`` and
``routing``.
"""

from __future__ import annotations

from collections.abc import Iterable

from mailseal.config.errors import ConfigWarning
from mailseal.config.kinds import TableRef
from mailseal.config.model import Config
from mailseal.services.addresses import AddressClass, Addressing, split_address
from mailseal.services.expansion import Expander
from mailseal.services.maps import Maps, TableLookupError, open_maps
from mailseal.services.routing import Destination, Router
from mailseal.services.verdict import Verdict

__all__ = ["RECIPIENT", "SENDER", "Destination", "Recipients", "Verdict"]

# smtpd's reply classes ("<a@b>: Recipient address rejected: ...").
RECIPIENT = "Recipient address"
SENDER = "Sender address"


class Recipients:
    """The recipient tables of one ``Config``, opened once; ``close()`` releases them."""

    def __init__(self, config: Config, addressing: Addressing) -> None:
        self.config = config
        self.addressing = addressing
        self._opened: list[Maps] = []
        self.canonical_maps = self._open("canonical_maps", config.canonical_maps)
        self.recipient_canonical_maps = self._open(
            "recipient_canonical_maps", config.recipient_canonical_maps
        )
        self.sender_canonical_maps = self._open(
            "sender_canonical_maps", config.sender_canonical_maps
        )
        self.virtual_alias_maps = self._open("virtual_alias_maps", config.virtual_alias_maps)
        self.local_recipient_maps = self._open("local_recipient_maps", config.local_recipient_maps)
        self.virtual_mailbox_maps = self._open("virtual_mailbox_maps", config.virtual_mailbox_maps)
        self.relay_recipient_maps = self._open("relay_recipient_maps", config.relay_recipient_maps)
        self.alias_maps = self._open("alias_maps", config.alias_maps)
        router = Router(
            config,
            addressing,
            transport_maps=self._open("transport_maps", config.transport_maps),
            virtual_mailbox_maps=self.virtual_mailbox_maps,
            virtual_uid_maps=self._open("virtual_uid_maps", config.virtual_uid_maps),
            virtual_gid_maps=self._open("virtual_gid_maps", config.virtual_gid_maps),
        )
        self.router = router
        self._expander = Expander(
            config,
            addressing,
            router,
            virtual_alias_maps=self.virtual_alias_maps,
            alias_maps=self.alias_maps,
        )
        # Which table must know an address of each class, the reply code, the table's name.
        self._rules: dict[AddressClass, tuple[Maps, int, str]] = {
            AddressClass.LOCAL: (
                self.local_recipient_maps,
                config.unknown_local_recipient_reject_code,
                "local recipient",
            ),
            AddressClass.VIRTUAL_MAILBOX: (
                self.virtual_mailbox_maps,
                config.unknown_virtual_mailbox_reject_code,
                "virtual mailbox",
            ),
            AddressClass.RELAY: (
                self.relay_recipient_maps,
                config.unknown_relay_recipient_reject_code,
                "relay recipient",
            ),
        }
        seen: dict[str, ConfigWarning] = {}
        for maps in self._opened:
            for warning in maps.warnings:
                seen.setdefault(str(warning), warning)
        self.warnings: tuple[ConfigWarning, ...] = tuple(seen.values())

    def _open(self, title: str, refs: Iterable[TableRef]) -> Maps:
        maps = open_maps(title, refs)
        self._opened.append(maps)
        return maps

    # -- smtpd: RCPT TO / MAIL FROM validation -------------------------------------------

    def check(self, address: str) -> Verdict | None:
        """None when ``address`` is a known recipient (or not ours to know); else the reply."""
        return self.validate(address, RECIPIENT)

    def check_sender(self, address: str) -> Verdict | None:
        """``reject_unlisted_sender``: the same tables, worded for the sender."""
        return self.validate(address, SENDER)

    def validate(self, address: str, reply_class: str) -> Verdict | None:
        try:
            return self._validate(address, reply_class)
        except TableLookupError:
            return Verdict(451, "4.3.0", f"<{address}>: Temporary lookup failure")

    def _validate(self, address: str, reply_class: str) -> Verdict | None:
        canonical = self.addressing.canonical(address)
        rewriting = [self.recipient_canonical_maps, self.canonical_maps, self.virtual_alias_maps]
        if reply_class == SENDER:
            rewriting.insert(1, self.sender_canonical_maps)
        if any(self._finds(maps, canonical) for maps in rewriting):
            return None
        address_class = self.addressing.classify(canonical)
        config = self.config
        if address_class is AddressClass.VIRTUAL_ALIAS:
            code, table = config.unknown_virtual_alias_reject_code, "virtual alias"
        else:
            rule = self._rules.get(address_class)
            if rule is None:
                return None  # remote: relay control decides, not this check
            maps, code, table = rule
            if not maps or self._finds(maps, canonical):
                return None
            if address_class is AddressClass.LOCAL and self._is_always_local(canonical):
                return None
        shown = f" in {table} table" if config.show_user_unknown_table_name else ""
        dsn = "5.1.0" if reply_class == SENDER else "5.1.1"
        return Verdict.of(code, dsn, f"<{address}>: {reply_class} rejected: User unknown{shown}")

    def _finds(self, maps: Maps, address: str) -> bool:
        match = maps.find_address(
            address,
            delimiter=self.config.recipient_delimiter,
            is_local_domain=self.addressing.is_local_domain,
        )
        return match is not None

    def _is_always_local(self, address: str) -> bool:
        """Names the queue manager and bounce service absorb (check_rcpt_maps)."""
        localpart = split_address(address)[0].lower()
        always = {"postmaster", "mailer-daemon", self.config.double_bounce_sender.lower()}
        return localpart in always

    # -- queue manager ----------------------------------------------------------------

    def expand(self, address: str) -> list[Destination] | Verdict:
        """Every destination of ``address`` after alias expansion, or why there is none."""
        return self._expander.expand(address)

    def close(self) -> None:
        for maps in self._opened:
            maps.close()
