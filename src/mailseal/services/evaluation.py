"""The smtpd restriction engine: Postfix's generic_checks and the reply machinery around it.

smtpd_check.c, as of Postfix 3.7, for what matters to the result:

* a list is evaluated in order; each restriction answers DUNNO (go on), OK
  (stop: this list permits) or REJECT (stop: the reply is set);
* ``warn_if_reject`` makes the next restriction log ``reject_warning``
  instead of rejecting (a ``Note``); configuration errors still reject;
* ``defer_if_permit`` remembers a 4xx reply that replaces an eventual
  permit, ``defer_if_reject`` one that replaces an eventual 5xx reject; the
  first reason of each kind is kept;
* a ``type:table`` item stands for the list's own access check
  (``check_client_access`` in smtpd_client_restrictions, ...);
* a restriction class (smtpd_restriction_classes) is evaluated like a list,
  as is the restriction list an access table returns (at most 100 deep);
* an unknown restriction, a table in an access result, or a missing table
  argument is a configuration error: ``451 4.3.5 Server configuration
  error``, with a warning note saying what is wrong; a table that cannot
  answer gives ``451 4.3.0 <name>: Temporary lookup failure``; both end the
  list at once (Postfix longjmps out);
* every reply is checked (code 400-599, a valid RFC 3463 code, else
  ``450 4.7.1 Service unavailable``), its enhanced code gets the class of the
  reply code, and ``soft_bounce`` turns 5xx into 4xx.

The restrictions themselves live in ``restriction_table``; the stages
(client, HELO, MAIL, RCPT, DATA) in ``restrictions``.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import IntEnum
from typing import NoReturn

from mailseal.config.model import Config
from mailseal.config.tables import Table
from mailseal.services.access import AccessKind, Key, dsn_fix, dsn_split, parse_result
from mailseal.services.addresses import Addressing
from mailseal.services.maps import Maps, TableLookupError
from mailseal.services.networks import NetworkList
from mailseal.services.recipients import Recipients
from mailseal.services.verdict import Verdict

__all__ = [
    "ClientFacts",
    "Cursor",
    "Engine",
    "Handler",
    "ListContext",
    "Note",
    "Run",
    "Status",
]

_VALID_DSN = re.compile(r"[245]\.\d{1,3}\.\d{1,3}")
_MAX_RECURSION = 100
_MAX_TEXT = 500  # Postfix truncates the whole reply line to 510 bytes


class Status(IntEnum):
    """The answer of one restriction (SMTPD_CHECK_DUNNO / OK / REJECT)."""

    DUNNO = 0
    OK = 1
    REJECT = 2


@dataclass(frozen=True)
class ClientFacts:
    """What smtpd knows about the client when a restriction list runs."""

    name: str  # verified reverse name, or "unknown"
    addr: str
    helo: str | None
    sasl_username: str | None
    tls_active: bool
    tls_trust: str | None = None  # "Trusted"/"Verified" when the client certificate verified
    tls_fingerprint: str | None = None  # client certificate fingerprint (relay_clientcerts)

    @property
    def namaddr(self) -> str:
        """``name[addr]``, as Postfix names the client in replies and logs."""
        return f"{self.name}[{self.addr}]"

    @property
    def certificate_trusted(self) -> bool:
        """A client certificate that verified against the trusted CAs."""
        return (self.tls_trust or "").lower() in ("trusted", "verified")


@dataclass(frozen=True)
class Note:
    """Something the caller logs: ``reject_warning``, ``warn``, ``info`` or ``warning``."""

    action: str
    text: str


@dataclass
class Run:
    """The state of one evaluation (one SMTP command); never shared between sessions."""

    client: ClientFacts
    sender: str | None = None
    recipient: str | None = None
    recursion: int = 0
    warn_if_reject: int = 0
    defer_if_permit: Verdict | None = None
    defer_if_reject: Verdict | None = None
    recipient_checked: bool = False
    sender_checked: bool = False
    # defer_if_permit as each earlier stage left it (defer_if_permit_client, ...).
    client_defer: Verdict | None = None
    helo_defer: Verdict | None = None
    sender_defer: Verdict | None = None
    reply: Verdict | None = None
    notes: list[Note] = field(default_factory=list)


@dataclass(frozen=True)
class ListContext:
    """Whose list this is: the name and class in replies, the default access check."""

    reply_name: str
    reply_class: str
    default_access: str | None


class Cursor:
    """Walks a restriction list; some restrictions take the next item as argument."""

    def __init__(self, items: Sequence[str]) -> None:
        self.items = items
        self.index = 0

    def next(self) -> str | None:
        if self.index >= len(self.items):
            return None
        self.index += 1
        return self.items[self.index - 1]

    def back(self) -> None:
        self.index -= 1

    def argument(self) -> str | None:
        return self.next()


class _Abort(Exception):  # noqa: N818 - Postfix's longjmp, not an error
    def __init__(self, status: Status) -> None:
        super().__init__(status.name)
        self.status = status


Handler = Callable[["Engine", Run, ListContext, Cursor], Status]


class Engine:
    """Evaluates restriction lists against one ``Run``."""

    def __init__(
        self,
        config: Config,
        handlers: Mapping[str, Handler],
        classes: Mapping[str, tuple[str, ...]],
        tables: Mapping[str, Table],
        *,
        addressing: Addressing,
        recipients: Recipients,
        networks: NetworkList,
        relay_clientcerts: Maps,
        sender_logins: Maps | None = None,
    ) -> None:
        self.config = config
        self.handlers = handlers
        self.classes = classes
        self.tables = tables
        self.addressing = addressing
        self.recipients = recipients
        self.networks = networks
        self.relay_clientcerts = relay_clientcerts
        self.sender_logins = sender_logins or Maps("smtpd_sender_login_maps", ())

    # -- lists ------------------------------------------------------------------------

    def run_list(self, run: Run, items: Sequence[str], context: ListContext) -> Status:
        """One top-level list; an abort (configuration error, lookup failure) ends it."""
        run.recursion = 0
        run.warn_if_reject = 0
        run.defer_if_reject = None
        if not items:
            return Status.DUNNO
        try:
            return self.generic(run, items, context)
        except _Abort as abort:
            return abort.status

    def generic(self, run: Run, items: Sequence[str], context: ListContext) -> Status:
        saved = run.recursion
        run.recursion += 1
        status = Status.DUNNO
        cursor = Cursor(items)
        try:
            while (name := cursor.next()) is not None:
                if name.lower() == "warn_if_reject":
                    run.warn_if_reject = run.warn_if_reject or run.recursion
                    continue
                if ":" in name:
                    name = self._default_access(run, name, context, cursor)
                status = self._apply(run, name, context, cursor)
                if run.warn_if_reject >= run.recursion:
                    run.warn_if_reject = 0
                if status is not Status.DUNNO:
                    break
                if run.defer_if_permit is not None and run.defer_if_reject is not None:
                    break
        finally:
            run.recursion = saved
            if run.warn_if_reject >= run.recursion:
                run.warn_if_reject = 0
        return status

    def _default_access(self, run: Run, item: str, context: ListContext, cursor: Cursor) -> str:
        if context.default_access is None:
            self.server_error(
                run,
                "specify one of (check_client_access, check_helo_access, check_sender_access, "
                f'check_recipient_access) before {context.reply_class} restriction "{item}"',
            )
        cursor.back()
        return context.default_access

    def _apply(self, run: Run, name: str, context: ListContext, cursor: Cursor) -> Status:
        handler = self.handlers.get(name.lower())
        if handler is not None:
            return handler(self, run, context, cursor)
        members = self.classes.get(name)
        if members is None:
            self.server_error(run, f'unknown smtpd restriction: "{name}"')
        return self.generic(run, members, context)

    def table_argument(self, run: Run, command: str, cursor: Cursor) -> Table:
        """The ``type:table`` after ``command`` (is_map_command), opened beforehand."""
        argument = cursor.argument()
        if argument is None or ":" not in argument:
            self.server_error(
                run, f'restriction {command}: bad argument "{argument or ""}": need maptype:mapname'
            )
        return self.tables[argument]

    # -- replies ------------------------------------------------------------------------

    def reject(self, run: Run, code: int, dsn: str, text: str, *, software: bool = False) -> Status:
        """smtpd_check_reject: set the reply (or only warn); see the module docstring."""
        text = "".join(char if char.isprintable() else " " for char in text)[:_MAX_TEXT]
        verdict = Verdict(code, dsn, text)
        if not 400 <= code <= 599 or not _VALID_DSN.fullmatch(dsn):
            run.notes.append(Note("warning", f"SMTP reply code configuration error: {verdict}"))
            verdict = Verdict(450, "4.7.1", "Service unavailable")
        if run.warn_if_reject and not software:
            run.notes.append(Note("reject_warning", str(Verdict.of(*_fields(verdict)))))
            return Status.DUNNO
        deferred = run.defer_if_reject
        if deferred is not None and verdict.code >= 500:
            run.warn_if_reject = 0
            run.defer_if_reject = None
            return self.reject(run, deferred.code, deferred.enhanced, deferred.text)
        code = verdict.code
        if self.config.soft_bounce and code >= 500:
            code -= 100
        run.reply = Verdict.of(code, verdict.enhanced, verdict.text)
        return Status.REJECT

    def defer_if_permit(self, run: Run, code: int, dsn: str, text: str) -> None:
        if run.warn_if_reject:
            self.reject(run, code, dsn, text)
        elif run.defer_if_permit is None:
            run.defer_if_permit = Verdict(code, dsn, text)

    def defer_if_reject(self, run: Run, code: int, dsn: str, text: str) -> None:
        if run.defer_if_reject is None:
            run.defer_if_reject = Verdict(code, dsn, text)

    def server_error(self, run: Run, warning: str) -> NoReturn:
        run.notes.append(Note("warning", warning))
        raise _Abort(self.reject(run, 451, "4.3.5", "Server configuration error", software=True))

    def retry(self, run: Run, name: str) -> NoReturn:
        raise _Abort(self.reject(run, 451, "4.3.0", f"<{name}>: Temporary lookup failure"))

    # -- access tables ------------------------------------------------------------------

    def access(
        self,
        run: Run,
        table: Table,
        keys: Sequence[Key],
        subject: tuple[str, str],
        context: ListContext,
    ) -> Status:
        """Look ``keys`` up in order; the first hit decides (check_access and friends)."""
        for key, full in keys:
            if not (full or table.fixed):
                continue
            try:
                value = table.lookup(key)
            except TableLookupError:
                self.retry(run, context.reply_name)
            if value is not None:
                return self.table_result(run, table, value, subject, context)
        return Status.DUNNO

    def table_result(
        self, run: Run, table: Table, value: str, subject: tuple[str, str], context: ListContext
    ) -> Status:
        """check_table_result: what an access table value means (see ``access``)."""
        name, reply_class = subject
        result = parse_result(value)
        kind = result.kind
        if kind in (AccessKind.REJECT, AccessKind.DEFER, AccessKind.CODE):
            code = {
                AccessKind.REJECT: self.config.access_map_reject_code,
                AccessKind.DEFER: self.config.access_map_defer_code,
            }.get(kind, result.code)
            default_dsn = "4.7.1" if kind is AccessKind.DEFER else "5.7.1"
            dsn, text = dsn_split(result.dsn or default_dsn, result.text)
            reason = text or "Access denied"
            return self.reject(
                run, code, dsn_fix(dsn, reply_class), f"<{name}>: {reply_class} rejected: {reason}"
            )
        if kind in (AccessKind.DEFER_IF_PERMIT, AccessKind.DEFER_IF_REJECT):
            dsn, text = dsn_split("4.7.1", result.text)
            reason = f"<{name}>: {reply_class} rejected: {text or 'Service unavailable'}"
            if kind is AccessKind.DEFER_IF_PERMIT:
                self.defer_if_permit(run, 450, dsn_fix(dsn, reply_class), reason)
            else:
                self.defer_if_reject(run, 450, dsn_fix(dsn, reply_class), reason)
            return Status.DUNNO
        if kind is AccessKind.OK:
            return Status.OK
        if kind in (AccessKind.WARN, AccessKind.INFO):
            run.notes.append(Note(kind.value, result.text))
        elif kind is AccessKind.UNSUPPORTED:
            run.notes.append(
                Note("warning", f"access table {table.ref}: {result.text} is not supported yet")
            )
        elif kind is AccessKind.TABLE:
            self.server_error(
                run,
                f"access table {table.ref} has entry with lookup table: {result.text}; "
                "define a restriction class and specify its name instead",
            )
        elif kind is AccessKind.RESTRICTIONS:
            return self._nested(
                run, table, value, result.restrictions, subject=subject, context=context
            )
        return Status.DUNNO

    def _nested(
        self,
        run: Run,
        table: Table,
        value: str,
        restrictions: tuple[str, ...],
        *,
        subject: tuple[str, str],
        context: ListContext,
    ) -> Status:
        if run.recursion > _MAX_RECURSION:
            self.server_error(
                run, f"access table {table.ref} entry {value} causes unreasonable recursion"
            )
        if not restrictions:
            run.notes.append(Note("warning", f"access table {table.ref} entry has empty value"))
            return Status.OK
        nested = ListContext(subject[0], subject[1], context.default_access)
        return self.generic(run, restrictions, nested)


def _fields(verdict: Verdict) -> tuple[int, str, str]:
    return verdict.code, verdict.enhanced, verdict.text
