"""One delivery from the first server to the last (smtp_connect.c, smtp_trouble.c).

The servers are tried in order. A temporary failure at a server that is not the
last one is logged (``ID: reason``; a failed connect is logged as ``connect to
...``) and leaves its recipients for the next server; a permanent failure, or
any failure at the last server, decides them. A session that got through
set-up counts towards ``smtp_mx_session_limit``, after which that session is
the last. Recipients no server decided take the last failure seen.

After a failed opportunistic TLS handshake the same address is tried again in
plaintext when the message has waited ``minimal_backoff_time`` and no SASL
password applies (Postfix's RETRY_AS_PLAINTEXT); otherwise the failure is
remembered (:mod:`.tls_memory`) and the next server is tried.
"""

from __future__ import annotations

import time

from mailseal.config.tables import TableError
from mailseal.delivery.smtp.connection_cache import CacheKey, CacheLimits, ConnectionCache
from mailseal.delivery.smtp.handshake import establish
from mailseal.delivery.smtp.nexthop import Target
from mailseal.delivery.smtp.plan import Plan, SetupFailure
from mailseal.delivery.smtp.request import SmtpRequest
from mailseal.delivery.smtp.results import Failure, Ledger, Timing
from mailseal.delivery.smtp.sasl import Credentials, find_credentials
from mailseal.delivery.smtp.session import SessionTimeoutError, SmtpSession, Stage
from mailseal.delivery.smtp.settings import Settings
from mailseal.delivery.smtp.tls_memory import TlsFailureMemory
from mailseal.delivery.smtp.transaction import Transfer, transmit
from mailseal.log import smtp_client as words
from mailseal.smtp.client_events import Rset

__all__ = ["Run"]


class Run:
    """The state of one delivery: its ledger, clock, and the last failure seen."""

    def __init__(
        self,
        plan: Plan,
        settings: Settings,
        request: SmtpRequest,
        ledger: Ledger,
        *,
        memory: TlsFailureMemory,
        cache: ConnectionCache,
        cache_key: CacheKey | None,
    ) -> None:
        self.plan = plan
        self.settings = settings
        self.config = settings.config
        self.request = request
        self.ledger = ledger
        self.memory = memory
        self.cache = cache
        self.cache_key = cache_key
        self.started = time.monotonic()
        self.last: Failure | None = None
        self.limits = CacheLimits(
            idle=self.config.smtp_connection_cache_time_limit,
            lifetime=self.config.smtp_connection_reuse_time_limit,
            uses=self.config.smtp_connection_reuse_count_limit,
        )

    # -- settling -----------------------------------------------------------------------

    def elapsed(self) -> Timing:
        """Everything so far counts as set-up (nothing was transmitted)."""
        return Timing(time.monotonic() - self.started, 0.0)

    def fail_pending(self, failure: Failure, relay: str = "none", tls_level: str = "") -> None:
        level = tls_level or self.plan.level.value
        self.ledger.failed(self.ledger.pending, failure, relay, self.elapsed(), level)

    def finish(self) -> None:
        """Recipients no server decided: the last failure, or Postfix's excuse."""
        if self.ledger.pending:
            self.fail_pending(self.last or Failure("4.3.0", words.SERVER_UNAVAILABLE))

    def _skip(self, failure: Failure) -> None:
        self.last = failure
        self.plan.info(words.skipping(self.request.queue_id, failure.reason))

    def _apply(
        self, session: SmtpSession, transfer: Transfer, setup_done: float, *, final: bool
    ) -> None:
        target = session.target
        timing = Timing(
            setup_done - self.started, time.monotonic() - setup_done, conn_use=session.uses
        )
        for index, reply in sorted(transfer.sent.items()):
            self.ledger.sent(index, target, reply, timing, session.tls_level)
        for group, failure in transfer.failed:
            if not group:
                continue
            if failure.soft and not final:
                self._skip(failure)
                continue
            self.last = failure
            self.ledger.failed(group, failure, target.namaddrport, timing, session.tls_level)

    # -- sessions -------------------------------------------------------------------------

    async def _transmit(self, session: SmtpSession, *, final: bool) -> None:
        setup_done = time.monotonic()
        transfer = await transmit(self.plan, session, self.request, self.ledger.pending)
        self._apply(session, transfer, setup_done, final=final)
        stored = (
            transfer.reusable
            and self.cache_key is not None
            and self.cache.store(self.cache_key, session, self.limits)
        )
        if not stored:
            await session.quit(
                wait_for_reply=not self.config.smtp_skip_quit_response,
                timeout=self.config.smtp_quit_timeout,
            )

    async def try_cached(self) -> None:
        """Deliver over a cached session to this next hop, if one is alive (RSET probe)."""
        if self.cache_key is None:
            return
        while self.ledger.pending and (session := self.cache.take(self.cache_key, self.limits)):
            if not await self._probe(session):
                continue
            if self.plan.needs_smtputf8 and not session.client.capabilities.smtputf8:
                self.cache.store(self.cache_key, session, self.limits)
                return
            await self._transmit(session, final=False)

    async def _probe(self, session: SmtpSession) -> bool:
        session.client.rset()
        timeout = self.config.smtp_rset_timeout
        try:
            events = await session.exchange(lambda _: Stage("sending RSET probe", timeout))
        except SessionTimeoutError:
            session.abort()
            return False
        answer = next((e for e in events if isinstance(e, Rset)), None)
        if answer is None or answer.reply.code // 100 != 2 or not session.usable:
            session.close()
            return False
        return True

    async def try_targets(self, targets: tuple[Target, ...]) -> None:
        sessions = 0
        index = 0
        plaintext_retry = False
        while index < len(targets) and self.ledger.pending:
            target = targets[index]
            last = index == len(targets) - 1
            credentials = self._credentials(target)
            if isinstance(credentials, Failure):
                self.fail_pending(credentials)
                return
            result = await establish(
                self.plan,
                target,
                plaintext=plaintext_retry or self._remembered(target, credentials),
                credentials=credentials,
                memory=self.memory,
            )
            plaintext_retry = False
            if isinstance(result, SetupFailure):
                if self._retry_plaintext(result, credentials):
                    self._skip(result.failure)
                    plaintext_retry = True
                    continue
                if not self._setup_failed(result, target, final=last):
                    return
                index += 1
                continue
            sessions += 1
            limit = self.config.smtp_mx_session_limit
            final = last or (limit > 0 and sessions >= limit)
            await self._transmit(result, final=final)
            if final:
                return
            index += 1

    def _setup_failed(self, result: SetupFailure, target: Target, *, final: bool) -> bool:
        """Skip to the next server (True) or decide every pending recipient (False)."""
        failure = result.failure
        if (failure.soft or result.next_server) and not final:
            self.last = failure
            if result.connected:
                self._skip(failure)
            return True
        self.last = failure
        relay = target.namaddrport if result.connected else "none"
        self.fail_pending(failure, relay)
        return False

    def _retry_plaintext(self, result: SetupFailure, credentials: Credentials | None) -> bool:
        """RETRY_AS_PLAINTEXT: an opportunistic handshake failed and the message is old enough."""
        if not result.tls_handshake or credentials is not None:
            return False
        waited = time.time() - self.request.envelope.arrival_time
        return waited >= self.config.minimal_backoff_time

    def _remembered(self, target: Target, credentials: Credentials | None) -> bool:
        """A recent handshake failure with this server makes ``may`` go plaintext at once."""
        if not self.plan.level.is_opportunistic or credentials is not None:
            return False
        return self.memory.failed_recently(target.host, target.addr, target.port)

    def _credentials(self, target: Target) -> Credentials | Failure | None:
        if not self.config.smtp_sasl_auth_enable:
            return None
        try:
            return find_credentials(
                self.settings.sasl_tables.checked(),
                sender=self.request.sender,
                host=target.host,
                nexthop=self.request.nexthop,
                sender_dependent=self.config.smtp_sender_dependent_authentication,
            )
        except (TableError, OSError) as error:
            self.plan.warning(f"smtp_sasl_password_maps lookup error: {error}")
            return Failure("4.3.0", "SASL password table lookup error")
