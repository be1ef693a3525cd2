"""The SMTP delivery agent: Postfix's smtp(8) as one asynchronous object in the queue manager.

``SmtpAgent.deliver(request)`` delivers one message to the recipients of one
next hop and returns one :class:`RecipientResult` per recipient, in order; a
network or protocol problem is a result, never an exception. Each delivery gets
its own log number (a Postfix smtp process id), under which every line of the
delivery is logged as ``$syslog_name/smtp[N]``; the queue manager logs the
``to=<...>, relay=..., status=...`` line itself with that number.

Order of work: parse the next hop; resolve the TLS policy (``smtp_tls_policy_maps``
then ``smtp_tls_security_level``; DANE is not implemented, so ``dane`` works as
``may`` after one warning per next hop and ``dane-only`` defers); reuse a cached
session to the next hop if one is alive; else look up the servers (MX, or the
host of ``[host]``) and try them (:mod:`.run`).

State kept across deliveries, in memory: the connection cache
(:mod:`.connection_cache`) and the opportunistic-TLS failures (:mod:`.tls_memory`).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace

from mailseal.config.model import Config
from mailseal.delivery.smtp.connection_cache import CacheKey, ConnectionCache
from mailseal.delivery.smtp.nexthop import Nexthop, NexthopError, parse_nexthop, targets
from mailseal.delivery.smtp.plan import Plan
from mailseal.delivery.smtp.request import RecipientResult, SmtpRequest
from mailseal.delivery.smtp.results import Failure, Ledger
from mailseal.delivery.smtp.run import Run
from mailseal.delivery.smtp.settings import Settings
from mailseal.delivery.smtp.tls_memory import TlsFailureMemory
from mailseal.log.sinks import MailLog
from mailseal.net.dns import DnsError, Resolver
from mailseal.tls import client_phrases as phrases
from mailseal.tls.client import ClientTls, ClientTlsError, client_tls
from mailseal.tls.levels import TlsLevel
from mailseal.tls.policy import CONFIG_PROBLEM, PolicyError, resolve_policy

__all__ = ["SmtpAgent", "needs_smtputf8"]


def needs_smtputf8(request: SmtpRequest) -> bool:
    """Postfix's DELIVERY_REQUIRES_SMTPUTF8: SMTPUTF8 was asked for and is used.

    Used means a non-ASCII envelope address or header; an ASCII message received
    with SMTPUTF8 goes to any server (RFC 6531 section 3.2 allows the downgrade).
    """
    if not request.envelope.smtputf8:
        return False
    addresses = [request.sender, *(r.address for r in request.recipients)]
    if any(not address.isascii() for address in addresses):
        return True
    return not request.headers.isascii()


class SmtpAgent:
    """Delivers queued mail over SMTP; one instance per queue manager."""

    def __init__(
        self,
        config: Config,
        log: MailLog,
        numbers: Iterator[int],
        *,
        resolver: Resolver | None = None,
    ) -> None:
        self._log = log
        self._numbers = numbers
        self._resolver = resolver
        self._settings = Settings(config, resolver)
        self._retired: list[Settings] = []
        self._memory = TlsFailureMemory()
        self._cache = ConnectionCache()
        self._dane_warned: set[str] = set()

    def reconfigure(self, config: Config) -> None:
        """Use ``config`` for deliveries that start from now on (``mailseal reload``)."""
        old, self._settings = self._settings, Settings(config, self._resolver)
        old.retired = True
        self._retired.append(old)
        self._close_idle_settings()

    async def aclose(self) -> None:
        """Close cached connections and the tables of every configuration."""
        self._cache.close_all()
        for settings in (*self._retired, self._settings):
            settings.close()
        self._retired.clear()

    async def deliver(self, request: SmtpRequest) -> list[RecipientResult]:
        """Deliver ``request``; one result per recipient, in the request's order."""
        settings = self._settings
        settings.users += 1
        try:
            return await self._deliver(settings, request)
        finally:
            settings.users -= 1
            self._close_idle_settings()

    def _close_idle_settings(self) -> None:
        for settings in [s for s in self._retired if s.users == 0]:
            settings.close()
            self._retired.remove(settings)

    async def _deliver(self, settings: Settings, request: SmtpRequest) -> list[RecipientResult]:
        config = settings.config
        number = next(self._numbers)
        program = self._log.program("smtp")
        ledger = Ledger(request, number)
        draft = Plan(
            config=config,
            log=self._log,
            program=program,
            number=number,
            queue_id=request.queue_id,
            nexthop=request.nexthop,
            level=TlsLevel.NONE,
            tls=None,
            needs_smtputf8=needs_smtputf8(request),
        )
        run = Run(
            draft, settings, request, ledger, memory=self._memory, cache=self._cache, cache_key=None
        )
        try:
            nexthop = parse_nexthop(request.nexthop, config.smtp_tcp_port, config.known_tcp_ports)
        except NexthopError as error:
            draft.warning(str(error))
            run.fail_pending(Failure("4.3.5", str(error)))
            return ledger.results()
        plan = self._plan(draft, settings, nexthop.port)
        if isinstance(plan, Failure):
            run.fail_pending(plan, tls_level="none")
            return ledger.results()
        run.plan = plan
        run.cache_key = self._cache_key(config, request, nexthop.host, plan.level)
        await run.try_cached()
        if ledger.pending:
            await self._try_servers(run, settings, nexthop)
        run.finish()
        return ledger.results()

    async def _try_servers(self, run: Run, settings: Settings, nexthop: Nexthop) -> None:
        if settings.resolver_error is not None:
            run.plan.warning(f"dns_servers: {settings.resolver_error}")
            run.fail_pending(Failure("4.3.0", "Name service initialization failure"))
            return
        try:
            found = await targets(nexthop, settings.resolver, settings.config.smtp_mx_address_limit)
        except DnsError as error:
            if error.warning:
                run.plan.warning(error.warning)
            run.fail_pending(Failure(error.dsn, error.text))
            return
        await run.try_targets(found)

    def _plan(self, draft: Plan, settings: Settings, port: int) -> Plan | Failure:
        """The TLS policy and context for this next hop, or why the mail must wait."""
        config = settings.config
        try:
            policy = resolve_policy(config, draft.nexthop, port=port, lookup=settings.policy_lookup)
        except PolicyError as error:
            draft.warning(str(error))
            return Failure(*CONFIG_PROBLEM)
        for warning in policy.warnings:
            draft.warning(warning)
        level = policy.level
        if level.is_dane_based:
            if draft.nexthop not in self._dane_warned or level is TlsLevel.DANE_ONLY:
                self._dane_warned.add(draft.nexthop)
                draft.warning(phrases.dane_unavailable(draft.nexthop, level))
            if level is TlsLevel.DANE_ONLY:
                return Failure(phrases.CONFIG_PROBLEM.status, phrases.CONFIG_PROBLEM.text)
            level = TlsLevel.MAY
        tls: ClientTls | None = None
        if level is not TlsLevel.NONE:
            try:
                tls = client_tls(policy, config)
            except ClientTlsError as error:
                draft.warning(str(error))
                if level.requires_tls:
                    return Failure(
                        phrases.ENGINE_UNAVAILABLE.status, phrases.ENGINE_UNAVAILABLE.text
                    )
            else:
                for warning in tls.warnings:
                    draft.warning(warning)
        return replace(draft, level=level, tls=tls)

    @staticmethod
    def _cache_key(
        config: Config, request: SmtpRequest, domain: str, level: TlsLevel
    ) -> CacheKey | None:
        """Where this delivery's session may be cached, or None when caching is off for it."""
        wanted = config.smtp_connection_cache_on_demand or domain in (
            d.lower() for d in config.smtp_connection_cache_destinations
        )
        if not wanted:
            return None
        sender_login = config.smtp_sasl_auth_enable and config.smtp_sender_dependent_authentication
        return CacheKey(request.nexthop, level.value, request.sender if sender_login else "")
