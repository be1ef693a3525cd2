"""What the smtpd sessions of one service, and of the whole process, share.

``SmtpdService`` is built from one master.cf smtpd service's Config by
:mod:`mailseal.daemons.smtpd` (again on reload: sessions keep the object they
started with); ``SmtpdShared`` is process-wide: the log, the queue, the
connection-rate counter, the name cache, and the live connections a shutdown
interrupts.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from typing import Any

from mailseal.log.sinks import MailLog
from mailseal.net.connection import Connection
from mailseal.queue.store import QueueStore
from mailseal.services.addresses import Addressing
from mailseal.services.anvil import RateCounter
from mailseal.services.networks import NetworkList
from mailseal.services.queue_writer import QueueWriter
from mailseal.services.recipients import Recipients
from mailseal.services.restrictions import Restrictions
from mailseal.services.smtpd_auth import SaslService
from mailseal.smtp.server import ServerSettings
from mailseal.tls.server import ServerTls

__all__ = ["SessionLimits", "SmtpdService", "SmtpdShared"]

_MAX_VARIANTS = 32


@dataclass(frozen=True)
class SessionLimits:
    """The time limits of smtpd, in seconds (see the module docstring)."""

    timeout: float
    starttls_timeout: float
    per_request_deadline: bool
    min_data_rate: int
    soft_error_limit: int
    error_sleep_time: float
    pregreet_wait: float
    connection_rate_limit: int
    connection_count_limit: int


@dataclass
class SmtpdService:
    """Everything one master.cf smtpd service needs, built once per (re)load."""

    name: str
    program: str
    hostname: str
    product: str
    settings: ServerSettings
    tls: ServerTls
    wrapper_mode: bool
    received_tls_postfix_style: bool
    limits: SessionLimits
    restrictions: Restrictions
    recipients: Recipients
    bare_newline_exclusions: NetworkList
    pregreet_exclusions: NetworkList
    rate_exceptions: NetworkList
    peername_lookup: bool
    warnings: tuple[str, ...] = ()  # configuration problems to log once at (re)load
    addressing: Addressing | None = None
    sasl: SaslService | None = None  # smtpd_sasl_auth_enable = yes
    # Sessions still using this object; a reload retires it and the last one closes it.
    users: int = 0
    retired: bool = False

    # The settings sessions start with, by (bare-newline exempt, AUTH mechanisms):
    # a handful of combinations, each made once instead of a dataclasses.replace of
    # ~30 fields per session (the default exemption list, $mynetworks, matches every
    # loopback and local client).
    _variants: dict[tuple[bool, tuple[str, ...] | None], ServerSettings] = field(
        default_factory=dict, repr=False
    )

    def session_settings(
        self, *, bare_newline_exempt: bool, mechanisms: tuple[str, ...] | None = None
    ) -> ServerSettings:
        """``settings`` for one session: wrapper mode, the exemption, what AUTH offers."""
        key = (bare_newline_exempt, mechanisms)
        found = self._variants.get(key)
        if found is not None:
            return found
        changes: dict[str, Any] = {}  # ServerSettings field -> value
        if self.wrapper_mode:
            changes.update(tls_active=True, starttls_offered=False)
        if bare_newline_exempt and self.settings.bare_newline != "no":
            changes["bare_newline"] = "no"
        if mechanisms is not None:
            changes["auth_mechanisms"] = mechanisms
        made = replace(self.settings, **changes) if changes else self.settings
        if len(self._variants) < _MAX_VARIANTS:  # a SASL server could vary its list
            self._variants[key] = made
        return made

    def enter(self) -> None:
        self.users += 1

    def leave(self) -> None:
        self.users -= 1
        if self.retired and self.users == 0:
            self.close()

    def retire(self) -> None:
        """Replaced by a reload: close the tables once no session uses them."""
        self.retired = True
        if self.users == 0:
            self.close()

    def close(self) -> None:
        for lookups in (self.restrictions, self.recipients, self.addressing):
            if lookups is not None:
                lookups.close()
        for networks in (self.bare_newline_exclusions, self.pregreet_exclusions):
            networks.close()
        self.rate_exceptions.close()
        if self.sasl is not None:
            self.sasl.exceptions.close()
            self.sasl.close_backend()


@dataclass
class SmtpdShared:
    """What all smtpd sessions of the process share."""

    log: MailLog
    store: QueueStore
    queued: Callable[[str], None]  # tells the queue manager a new file is in incoming/
    numbers: Iterator[int]  # session numbers (mailseal.log.sinks.session_numbers)
    rates: RateCounter
    names: dict[str, tuple[str, float]] = field(default_factory=dict)
    sessions: set[Connection] = field(default_factory=set)
    per_client: dict[str, int] = field(default_factory=dict)  # live sessions by address
    stopping: bool = False
    writer: QueueWriter = field(init=False)  # group commit of the queue files

    def __post_init__(self) -> None:
        self.writer = QueueWriter(self.store)

    def stop(self) -> None:
        """Server shutdown: idle sessions get 421 now, busy ones after their message."""
        self.stopping = True
        for connection in self.sessions:
            connection.interrupt()
