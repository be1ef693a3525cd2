"""smtpd access control: the restriction lists per SMTP stage, and relay control.

Postfix's SMTPD_ACCESS_README and smtpd(8): each stage has its list --
``smtpd_client_restrictions`` (connect), ``smtpd_helo_restrictions``,
``smtpd_sender_restrictions`` (MAIL FROM), ``smtpd_relay_restrictions`` and
``smtpd_recipient_restrictions`` (RCPT TO), ``smtpd_data_restrictions`` and
``smtpd_end_of_data_restrictions``. What smtpd_check.c does with them:

* with ``smtpd_delay_reject = yes`` (the default) the client, HELO and
  sender lists are evaluated at RCPT TO, so that a reject names the
  recipient; ``at_connect``, ``at_helo`` and ``at_mail`` then accept;
* at RCPT TO, the relay list and then the recipient list
  (``smtpd_relay_before_recipient_restrictions``; the other way round when
  it is ``no``); a reject in either ends it; then a pending
  ``defer_if_permit`` turns acceptance into 450; then, with
  ``smtpd_reject_unlisted_recipient``, the recipient must be known
  (``Recipients.check``) unless ``reject_unlisted_recipient`` already ran;
  a bare ``postmaster`` is always accepted (RFC 5321 section 4.5.1);
* at MAIL FROM, ``smtpd_reject_unlisted_sender`` likewise validates the
  sender after the sender list;
* a ``defer_if_permit`` raised by an earlier stage carries over to the later
  ones. Evaluation keeps no state between calls: with delay_reject = no the
  earlier lists are evaluated again (their rejects were answered already) to
  learn it.

Postfix refuses to start when neither the relay nor the recipient list holds
a restriction that can refuse relaying, and when a restriction class has no
definition: building ``Restrictions`` raises ``ConfigError`` with Postfix's
words. Every ``type:table`` in the lists and classes is opened once, here;
one that cannot be opened answers with a temporary failure (see ``maps``).

The ``evaluate_*`` methods return an ``Outcome``: the reply (None accepts)
and the notes the caller logs (``reject_warning`` from warn_if_reject,
``warn``/``info`` from access tables, configuration ``warning``s). The
``at_*`` methods return only the reply.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from mailseal.config.errors import ConfigError, ConfigWarning
from mailseal.config.kinds import TableRef, split_list
from mailseal.config.model import Config
from mailseal.config.tables import Table, TableError, open_table
from mailseal.services.addresses import Addressing
from mailseal.services.evaluation import ClientFacts, Engine, ListContext, Note, Run, Status
from mailseal.services.maps import Maps, UnavailableTable, open_maps
from mailseal.services.networks import NetworkList
from mailseal.services.recipients import RECIPIENT, SENDER, Recipients
from mailseal.services.restriction_table import (
    CLIENT,
    HELO,
    REQUIRED_FOR_RELAY,
    RESTRICTIONS,
    check_recipient_maps,
    check_sender_maps,
)
from mailseal.services.verdict import Verdict

__all__ = ["ClientFacts", "Note", "Outcome", "RestrictionLists", "Restrictions"]

_DATA = ListContext("DATA", "Data command", None)
_END_OF_DATA = ListContext("END-OF-MESSAGE", "End-of-data", None)


@dataclass(frozen=True)
class RestrictionLists:
    """The restriction lists of one service, and the flags that order them."""

    client: tuple[str, ...]
    helo: tuple[str, ...]
    sender: tuple[str, ...]
    relay: tuple[str, ...]
    recipient: tuple[str, ...]
    data: tuple[str, ...]
    end_of_data: tuple[str, ...]
    delay_reject: bool
    relay_before_recipient: bool
    reject_unlisted_recipient: bool
    reject_unlisted_sender: bool
    classes: Mapping[str, tuple[str, ...]]

    @classmethod
    def from_config(cls, config: Config) -> RestrictionLists:
        """The lists of ``config``; ``ConfigError`` for a class without a definition."""
        classes: dict[str, tuple[str, ...]] = {}
        for name in config.smtpd_restriction_classes:
            definition = config.expanded(name)
            if not definition.strip():
                raise ConfigError(f"restriction class `{name}' needs a definition")
            classes[name] = split_list(definition)
        return cls(
            client=config.smtpd_client_restrictions,
            helo=config.smtpd_helo_restrictions,
            sender=config.smtpd_sender_restrictions,
            relay=config.smtpd_relay_restrictions,
            recipient=config.smtpd_recipient_restrictions,
            data=config.smtpd_data_restrictions,
            end_of_data=config.smtpd_end_of_data_restrictions,
            delay_reject=config.smtpd_delay_reject,
            relay_before_recipient=config.smtpd_relay_before_recipient_restrictions,
            reject_unlisted_recipient=config.smtpd_reject_unlisted_recipient,
            reject_unlisted_sender=config.smtpd_reject_unlisted_sender,
            classes=classes,
        )

    def all_items(self) -> list[str]:
        lists = (self.client, self.helo, self.sender, self.relay, self.recipient, self.data)
        items = [item for entries in (*lists, self.end_of_data) for item in entries]
        return items + [item for entries in self.classes.values() for item in entries]

    def check_relay_control(self) -> None:
        """fail_required: some restriction must be able to refuse relaying."""
        if self._has_required(self.recipient, set()) or self._has_required(self.relay, set()):
            return
        *first, last = REQUIRED_FOR_RELAY
        raise ConfigError(
            "in parameter smtpd_relay_restrictions or smtpd_recipient_restrictions, "
            f"specify at least one working instance of: {', '.join(first)} or {last}"
        )

    def _has_required(self, items: Sequence[str], seen: set[str]) -> bool:
        skip = False
        for index, item in enumerate(items):
            if skip:
                skip = False
                continue
            lowered = item.lower()
            if lowered == "warn_if_reject" and index + 1 < len(items):
                skip = True  # a warned restriction refuses nothing
            elif lowered == "permit":
                return False
            elif lowered in REQUIRED_FOR_RELAY:
                return True
            elif item in self.classes and item not in seen:
                seen.add(item)
                if self._has_required(self.classes[item], seen):
                    return True
        return False


@dataclass(frozen=True)
class Outcome:
    """The reply of one stage (None: accept) and what to log about it."""

    verdict: Verdict | None
    notes: tuple[Note, ...] = ()


class Restrictions:
    """The restriction lists of one service with their tables open; ``close()`` ends it."""

    def __init__(
        self,
        config: Config,
        addressing: Addressing,
        recipients: Recipients,
        networks: NetworkList,
    ) -> None:
        self.config = config
        self.lists = RestrictionLists.from_config(config)
        self.lists.check_relay_control()
        warnings: list[ConfigWarning] = []
        self._tables = _open_tables(self.lists.all_items(), warnings)
        self._relay_clientcerts: Maps = open_maps(
            "relay_clientcerts",
            [TableRef.parse(ref) for ref in split_list(config.expanded("relay_clientcerts"))],
        )
        warnings.extend(self._relay_clientcerts.warnings)
        self._sender_logins = open_maps("smtpd_sender_login_maps", config.smtpd_sender_login_maps)
        warnings.extend(self._sender_logins.warnings)
        self.warnings = tuple(warnings)
        self.engine = Engine(
            config,
            RESTRICTIONS,
            self.lists.classes,
            self._tables,
            addressing=addressing,
            recipients=recipients,
            networks=networks,
            relay_clientcerts=self._relay_clientcerts,
            sender_logins=self._sender_logins,
        )

    # -- the stages, returning the reply only -------------------------------------------

    def at_connect(self, client: ClientFacts) -> Verdict | None:
        return self.evaluate_connect(client).verdict

    def at_helo(self, client: ClientFacts) -> Verdict | None:
        return self.evaluate_helo(client).verdict

    def at_mail(self, client: ClientFacts, sender: str) -> Verdict | None:
        return self.evaluate_mail(client, sender).verdict

    def at_rcpt(self, client: ClientFacts, sender: str, recipient: str) -> Verdict | None:
        return self.evaluate_rcpt(client, sender, recipient).verdict

    def at_data(
        self, client: ClientFacts, sender: str, recipients: Sequence[str]
    ) -> Verdict | None:
        return self.evaluate_data(client, sender, recipients).verdict

    def at_end_of_data(
        self, client: ClientFacts, sender: str, recipients: Sequence[str]
    ) -> Verdict | None:
        return self.evaluate_end_of_data(client, sender, recipients).verdict

    # -- the stages, with notes -------------------------------------------------------

    def evaluate_connect(self, client: ClientFacts) -> Outcome:
        if self.lists.delay_reject:
            return Outcome(None)
        run = Run(client)
        return _outcome(run, self._client(run))

    def evaluate_helo(self, client: ClientFacts) -> Outcome:
        if self.lists.delay_reject:
            return Outcome(None)
        run = Run(client)
        self._silently(run, self._client)
        return _outcome(run, self._helo(run))

    def evaluate_mail(self, client: ClientFacts, sender: str) -> Outcome:
        if self.lists.delay_reject:
            return Outcome(None)
        run = Run(client, sender=sender)
        self._silently(run, self._client)
        self._silently(run, self._helo)
        return _outcome(run, self._mail(run))

    def evaluate_rcpt(self, client: ClientFacts, sender: str, recipient: str) -> Outcome:
        run = Run(client, sender=sender, recipient=recipient)
        return _outcome(run, self._rcpt(run))

    def evaluate_data(self, client: ClientFacts, sender: str, recipients: Sequence[str]) -> Outcome:
        return self._after_rcpt(client, sender, recipients, self.lists.data, _DATA)

    def evaluate_end_of_data(
        self, client: ClientFacts, sender: str, recipients: Sequence[str]
    ) -> Outcome:
        return self._after_rcpt(client, sender, recipients, self.lists.end_of_data, _END_OF_DATA)

    # -- smtpd_check_client / _helo / _mail / _rcpt ---------------------------------------

    def _client(self, run: Run) -> Status:
        run.defer_if_permit = None
        context = ListContext(run.client.namaddr, CLIENT, "check_client_access")
        status = self.engine.run_list(run, self.lists.client, context)
        run.client_defer = run.defer_if_permit
        return status

    def _helo(self, run: Run) -> Status:
        helo = run.client.helo
        if helo is None:
            return Status.DUNNO
        run.defer_if_permit = run.client_defer
        context = ListContext(helo, HELO, "check_helo_access")
        status = self.engine.run_list(run, self.lists.helo, context)
        run.helo_defer = run.defer_if_permit
        return status

    def _mail(self, run: Run) -> Status:
        sender = run.sender
        if sender is None:
            return Status.DUNNO
        run.defer_if_permit = run.client_defer or run.helo_defer
        run.sender_checked = False
        context = ListContext(sender, SENDER, "check_sender_access")
        status = self.engine.run_list(run, self.lists.sender, context)
        run.sender_defer = run.defer_if_permit
        if self.lists.reject_unlisted_sender and status is not Status.REJECT and sender:
            status = check_sender_maps(self.engine, run)
        return status

    def _rcpt(self, run: Run) -> Status:
        recipient = run.recipient or ""
        if recipient.lower() == "postmaster":
            return Status.DUNNO
        run.recipient_checked = False
        for stage in (self._client, self._helo, self._mail):
            if self.lists.delay_reject:
                if stage(run) is Status.REJECT:
                    return Status.REJECT
            else:
                self._silently(run, stage)
        run.defer_if_permit = run.sender_defer
        context = ListContext(recipient, RECIPIENT, "check_recipient_access")
        lists = [self.lists.relay, self.lists.recipient]
        if not self.lists.relay_before_recipient:
            lists.reverse()
        status = Status.DUNNO
        for items in lists:
            status = self.engine.run_list(run, items, context)
            if status is Status.REJECT:
                return status
        deferred = run.defer_if_permit
        if deferred is not None:
            return self.engine.reject(run, deferred.code, deferred.enhanced, deferred.text)
        if self.lists.reject_unlisted_recipient:
            return check_recipient_maps(self.engine, run)
        return status

    def _after_rcpt(
        self,
        client: ClientFacts,
        sender: str,
        recipients: Sequence[str],
        items: tuple[str, ...],
        context: ListContext,
    ) -> Outcome:
        # With several recipients no one of them is "the" recipient (smtpd_check_data).
        only = recipients[0] if len(recipients) == 1 else None
        run = Run(client, sender=sender, recipient=only)
        status = self.engine.run_list(run, items, context)
        deferred = run.defer_if_permit
        if status is not Status.REJECT and deferred is not None:
            status = self.engine.reject(run, deferred.code, deferred.enhanced, deferred.text)
        return _outcome(run, status)

    def _silently(self, run: Run, stage: Callable[[Run], Status]) -> None:
        """Run an earlier stage for its defer_if_permit only (delay_reject = no)."""
        notes = list(run.notes)
        stage(run)
        run.notes[:] = notes
        run.reply = None

    def close(self) -> None:
        for table in self._tables.values():
            table.close()
        self._relay_clientcerts.close()
        self._sender_logins.close()


def _outcome(run: Run, status: Status) -> Outcome:
    verdict = run.reply if status is Status.REJECT else None
    return Outcome(verdict, tuple(run.notes))


def _open_tables(items: Sequence[str], warnings: list[ConfigWarning]) -> dict[str, Table]:
    """Open each ``type:table`` once; one that fails answers with a temporary failure."""
    tables: dict[str, Table] = {}
    previous = ""
    for item in items:
        after_policy = previous.lower() == "check_policy_service"
        previous = item
        if after_policy or ":" not in item or item in tables or item.startswith("{"):
            continue
        try:
            ref = TableRef.parse(item)
        except ValueError:
            continue  # e.g. a policy server address "inet:host:port" is not a table
        try:
            table = open_table(ref)
        except TableError as error:
            warnings.append(ConfigWarning(f"{ref} is unavailable. {error.message}"))
            table = UnavailableTable(ref, error.message)
        warnings.extend(table.warnings)
        tables[item] = table
    return tables
