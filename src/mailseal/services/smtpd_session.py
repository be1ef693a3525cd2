"""One smtpd session: the sans-IO core driven over a connection, with Postfix's decisions.

This is smtpd(8)'s per-client loop. The protocol itself (commands, replies,
DATA framing, pipelining rules) is :class:`mailseal.smtp.server.SmtpServer`;
here we add what needs the world:

- time: ``smtpd_timeout`` per request (``smtpd_per_request_deadline``, with
  ``smtpd_min_data_rate`` crediting DATA progress), the soft-error tarpit
  (``smtpd_error_sleep_time``), the pre-greeting pause, ``smtpd_starttls_timeout``;
- TLS: the STARTTLS upgrade (discarding pipelined plaintext) and wrapper mode;
- decisions: restrictions at MAIL/RCPT/DATA, VRFY answers, AUTH through the
  service's SASL backend (:mod:`mailseal.services.smtpd_auth`);
- the queue: the queue ID at the first accepted recipient (as Postfix creates
  its queue file then), the Received: header, and the fsynced queue file
  *before* ``250 Ok: queued as``;
- the log lines of a session, in Postfix's shapes.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import replace

from mailseal.log import format as fmt
from mailseal.net.connection import (
    Connection,
    ConnectionLostError,
    InterruptedRead,
)
from mailseal.net.peername import reverse_lookup
from mailseal.queue.ids import new_queue_id
from mailseal.queue.spool import SpoolFile
from mailseal.services.restrictions import ClientFacts, Outcome
from mailseal.services.smtpd_admission import admit
from mailseal.services.smtpd_auth import SessionAuth, offer_auth
from mailseal.services.smtpd_queueing import QueueClient, queue_entry
from mailseal.services.smtpd_service import SmtpdService, SmtpdShared
from mailseal.services.smtpd_tls import SessionLog, server_handshake
from mailseal.smtp import events as ev
from mailseal.smtp.reply import (
    AUTH_NOT_ENABLED,
    QUEUE_WRITE_ERROR,
    Reply,
    queued,
    reply,
)
from mailseal.smtp.server import Phase, ServerSettings, SmtpServer
from mailseal.tls.outcome import TlsOutcome

__all__ = ["run_session"]


async def run_session(service: SmtpdService, shared: SmtpdShared, conn: Connection) -> None:
    """Serve one client until it quits, times out, misbehaves or the server stops."""
    number = next(shared.numbers)
    shared.sessions.add(conn)
    addr = conn.peer[0]
    shared.per_client[addr] = shared.per_client.get(addr, 0) + 1
    if shared.stopping:
        conn.interrupt()
    session = _Session(service, shared, conn, number)
    try:
        await session.run()
    except Exception as error:  # one broken session must not take the server down
        shared.log.error(service.program, number, f"session aborted: {error!r}")  # noqa: TRY400
    finally:
        shared.sessions.discard(conn)
        left = shared.per_client.pop(addr, 1) - 1
        if left > 0:
            shared.per_client[addr] = left
        conn.close()


class _Session:
    def __init__(
        self, service: SmtpdService, shared: SmtpdShared, conn: Connection, number: int
    ) -> None:
        self.service = service
        self.shared = shared
        self.conn = conn
        self.number = number
        self.addr = conn.peer[0]
        self.host = "unknown"
        self.tls: TlsOutcome | None = None
        self.sender: str | None = None
        self.queue_id: str | None = None
        self.deadline = 0.0
        self.auth: SessionAuth | None = None
        self.spool: SpoolFile | None = None  # content of a large message as it arrives

    # -- logging -----------------------------------------------------------------

    def info(self, message: str) -> None:
        self.shared.log.info(self.service.program, self.number, message)

    def warning(self, message: str) -> None:
        self.shared.log.warning(self.service.program, self.number, message)

    @property
    def namaddr(self) -> str:
        return fmt.host_addr(self.host, self.addr)

    # -- the session ---------------------------------------------------------------

    async def run(self) -> None:
        self.host = await self._client_name()
        self.info(fmt.connect_from(self.host, self.addr))
        core: SmtpServer | None = None
        try:
            if not await self._admit():
                return
            if self.service.wrapper_mode and not await self._handshake(b""):
                return
            settings = await self._settings()
            core = SmtpServer(self._refuse_at_connect(settings))
            core.spill_to(self._open_spool)
            core.greet()
            await self._loop(core)
        finally:
            self._discard_spool()
            if self.auth is not None:
                # Also a cycle (the auth keeps our bound warning): drop it, so that
                # the connection and its TLS buffers go now, not at a full GC.
                self.auth.close()
                self.auth = None
            counts = core.command_counts() if core is not None else []
            self.info(fmt.disconnect_from(self.host, self.addr, counts))

    async def _client_name(self) -> str:
        """The verified client name, or ``unknown`` (smtpd_peername_lookup)."""
        if not self.service.peername_lookup or not self.addr:
            return "unknown"
        cached = self.shared.names.get(self.addr)
        now = time.monotonic()
        if cached is not None and now - cached[1] < 60:
            return cached[0]
        name = await reverse_lookup(self.addr)
        if len(self.shared.names) > 4096:
            self.shared.names.clear()
        self.shared.names[self.addr] = (name, now)
        return name

    async def _settings(self) -> ServerSettings:
        """The session's protocol settings, with AUTH offered when the service has SASL."""
        service = self.service
        exempt = service.settings.bare_newline != "no" and (
            service.bare_newline_exclusions.matches(self.addr)
        )
        settings = service.session_settings(bare_newline_exempt=exempt)
        if service.sasl is None:
            return settings
        mechanisms, self.auth = await offer_auth(
            service.sasl,
            settings,
            self.conn,
            rates=self.shared.rates,
            rate_exempt=service.rate_exceptions.matches(self.addr),
            service=service.name,
            host=self.host,
            warning=self.warning,
        )
        return service.session_settings(bare_newline_exempt=exempt, mechanisms=mechanisms)

    def _refuse_at_connect(self, settings: ServerSettings) -> ServerSettings:
        """smtpd_delay_reject = no: the client restrictions decide before the greeting."""
        client = ClientFacts(
            name=self.host, addr=self.addr, helo=None, sasl_username=None, tls_active=False
        )
        outcome = self.service.restrictions.evaluate_connect(client)
        for note in outcome.notes:
            self.warning(note.text)
        if outcome.verdict is None:
            return settings
        verdict = outcome.verdict
        answer = reply(verdict.code, verdict.enhanced, verdict.text)
        self.info(
            fmt.noqueue(
                "reject",
                "CONNECT",
                self.host,
                self.addr,
                answer.text,
                sender=None,
                recipient=None,
                proto="SMTP",
                helo=None,
            )
        )
        return replace(settings, access_denied=answer, client=self.namaddr)

    async def _admit(self) -> bool:
        """Connection limits (anvil's) and the pre-greeting test; False = session over."""
        return await admit(
            self.conn,
            self.service,
            self.shared,
            SessionLog(self.host, self.addr, self.info, self.warning),
        )

    async def _send(self, data: bytes) -> None:
        try:
            self.conn.write(data)
            await self.conn.drain()
        except ConnectionLostError:
            return

    async def _loop(self, core: SmtpServer) -> None:
        self._new_request()
        while True:
            event = core.next_event()
            if event is not None:
                if not await self._handle(core, event):
                    return
                continue
            if not await self._flush(core) or core.closed:
                return
            if core.pending is not None:
                # _handle answers every request before returning; never spin here.
                raise RuntimeError(f"unanswered SMTP request {core.pending!r}")
            if not await self._receive(core):
                return

    async def _flush(self, core: SmtpServer) -> bool:
        data = core.data_to_send()
        if not data:
            return True
        limits = self.service.limits
        if core.error_count > limits.soft_error_limit and not core.closed:
            await asyncio.sleep(limits.error_sleep_time)  # Postfix's tarpit
        try:
            self.conn.write(data)
            if self.conn.write_blocked:  # rare: a client that does not read its replies
                await asyncio.wait_for(self.conn.drain(), limits.timeout)
        except (ConnectionLostError, TimeoutError):
            # A client that hangs up right after QUIT, not waiting for the 221,
            # did nothing wrong; Postfix logs nothing, and fail2ban's ddos and
            # aggressive modes would ban every such mail server.
            if not (core.closed and core.last_command == "QUIT"):
                self.info(fmt.lost_connection(self._after(core), self.host, self.addr))
            return False
        self._new_request()
        return True

    def _new_request(self) -> None:
        self.deadline = time.monotonic() + self.service.limits.timeout

    async def _receive(self, core: SmtpServer) -> bool:
        limits = self.service.limits
        now = time.monotonic()
        if not limits.per_request_deadline:
            self.deadline = now + limits.timeout
        try:
            data = await self.conn.read(max(self.deadline - now, 0.0))
        except InterruptedRead:
            # Shutdown. Mid-message the client finishes (and gets its 250);
            # between messages it is told 421 now (see SmtpdShared.stop).
            if self.queue_id is None and core.phase is Phase.COMMAND:
                core.shutdown()
                await self._flush(core)
                return False
            data = await self._read_uninterruptible(core)
        except TimeoutError:
            self.info(fmt.timeout_after(self._after(core), self.host, self.addr))
            core.timeout()
            await self._flush(core)
            return False
        if not data:
            self.info(fmt.lost_connection(self._after(core), self.host, self.addr))
            core.receive_data(b"")
            return False
        if limits.per_request_deadline and core.last_command in ("DATA", "BDAT"):
            # smtpd_min_data_rate: progress earns time, never beyond smtpd_timeout.
            credit = len(data) / limits.min_data_rate
            self.deadline = min(self.deadline + credit, time.monotonic() + limits.timeout)
        core.receive_data(data)
        return True

    async def _read_uninterruptible(self, core: SmtpServer) -> bytes:
        """A read that a shutdown does not cut short (the deadline still holds)."""
        while True:
            try:
                return await self.conn.read(max(self.deadline - time.monotonic(), 0.0))
            except InterruptedRead:
                await asyncio.sleep(0.05)  # woken by shutdown while mid-message: keep reading

    def _after(self, core: SmtpServer) -> str:
        return core.last_command_detail

    # -- events --------------------------------------------------------------------

    async def _handle(self, core: SmtpServer, event: ev.Event) -> bool:
        """React to one core event; False ends the session."""
        if isinstance(event, ev.AuthRequest | ev.AuthResponse | ev.AuthAborted):
            if self.auth is not None:
                await self.auth.handle(core, event)
            elif core.pending is event:  # cannot happen: no mechanisms without SASL
                core.answer(AUTH_NOT_ENABLED)
            return True
        if core.pending is event:
            await self._answer(core, event)
            return True
        match event:
            case ev.StartTlsRequest(discarded=discarded):
                return await self._starttls(core, discarded)
            case ev.ProtocolViolation(reason=reason, detail=detail):
                self.info(f"{reason} from {self.namaddr}: {detail}")
            case ev.Reset():
                self.sender = None
                self.queue_id = None
                self._discard_spool()
            case ev.ConnectionClosing(reason=reason):
                if reason == "too many errors":  # smtpd_hard_error_limit; fail2ban reads it
                    self.info(f"too many errors after {self._after(core)} from {self.namaddr}")
                await self._flush(core)
                return False
            case _:
                pass
        return True

    async def _answer(self, core: SmtpServer, event: ev.Event) -> None:
        """Answer a MAIL, RCPT, DATA, end-of-message or VRFY request."""
        match event:
            case ev.MailRequest(sender=sender):
                self.sender = sender
                outcome = self.service.restrictions.evaluate_mail(self._client(core), sender)
                core.answer(self._outcome(outcome, core, "MAIL", None))
            case ev.RcptRequest(recipient=recipient):
                core.answer(self._rcpt(core, recipient))
            case ev.DataRequest():
                outcome = self.service.restrictions.evaluate_data(
                    self._client(core), self.sender or "", ()
                )
                core.answer(self._outcome(outcome, core, "DATA", None))
            case ev.MessageComplete(envelope=envelope, content=content, spill=spill):
                try:
                    core.answer(await self._queue(core, envelope, content, spill))
                finally:
                    self._discard_spool()
            case ev.VrfyRequest(argument=argument):
                core.answer(self._vrfy(argument))
            case _:
                raise AssertionError(f"unexpected request {event!r}")

    def _client(self, core: SmtpServer) -> ClientFacts:
        return ClientFacts(
            name=self.host,
            addr=self.addr,
            helo=core.helo_name,
            sasl_username=core.authenticated,
            tls_active=core.tls_active,
            tls_trust=str(self.tls.trust) if self.tls is not None else None,
        )

    def _outcome(
        self, outcome: Outcome, core: SmtpServer, stage: str, recipient: str | None
    ) -> Reply | None:
        """Log the notes and the reject of one restriction stage; the reply (None: go on)."""
        for note in outcome.notes:
            if note.action in ("reject_warning", "warn"):
                self._noqueue(note.action, core, stage, recipient, note.text)
            else:
                self.warning(note.text)
        verdict = outcome.verdict
        if verdict is None:
            return None
        answer = reply(verdict.code, verdict.enhanced, verdict.text)
        self._noqueue("reject", core, stage, recipient, answer.text)
        return answer

    def _noqueue(
        self, action: str, core: SmtpServer, stage: str, recipient: str | None, text: str
    ) -> None:
        self.info(
            fmt.noqueue(
                action,
                stage,
                self.host,
                self.addr,
                text,
                sender=self.sender,
                recipient=recipient,
                proto="ESMTP" if core.extended else "SMTP",
                helo=core.helo_name,
                queue_id=self.queue_id,
            )
        )

    def _rcpt(self, core: SmtpServer, recipient: str) -> Reply | None:
        outcome = self.service.restrictions.evaluate_rcpt(
            self._client(core), self.sender or "", recipient
        )
        if outcome.verdict is not None or outcome.notes:
            answer = self._outcome(outcome, core, "RCPT", recipient)
            if answer is not None:
                return answer
        if self.queue_id is None:
            # Postfix creates the queue file, and so names the message, here.
            self.queue_id = new_queue_id()
            user = core.authenticated
            sasl = (core.auth_mechanism, user) if user is not None else None
            self.info(fmt.client(self.queue_id, self.host, self.addr, sasl))
        return None

    def _vrfy(self, argument: str) -> Reply:
        address = argument.strip().strip("<>")
        verdict = self.service.recipients.check(address)
        if verdict is not None:
            return reply(verdict.code, verdict.enhanced, verdict.text)
        return reply(252, "2.0.0", address)

    def _open_spool(self) -> SpoolFile:
        """The core's spill for a large message: a file in incoming/ (see queue.spool)."""
        self._discard_spool()
        try:
            self.spool = self.shared.store.open_spool(self.queue_id or new_queue_id())
        except OSError as error:
            self.spool = SpoolFile.failed(error)
        return self.spool

    def _discard_spool(self) -> None:
        if self.spool is not None:
            self.spool.discard()
            self.spool = None

    async def _queue(
        self, core: SmtpServer, envelope: ev.Envelope, content: bytes, spill: object
    ) -> Reply:
        queue_id = self.queue_id or new_queue_id()
        client = QueueClient(
            self.host, self.addr, core.helo_name or "", core.tls_active, core.authenticated
        )
        queued_envelope, data = queue_entry(
            self.service,
            client,
            self.tls,
            envelope,
            content,
            queue_id=queue_id,
            now=time.time(),
            # The core only spills into what _open_spool gave it.
            spool=spill if isinstance(spill, SpoolFile) else None,
        )
        try:
            await self.shared.writer.enqueue(queued_envelope, data, queue_id)
        except OSError as error:
            self.warning(f"{queue_id}: queue file write error: {error}")
            self.queue_id = None
            return QUEUE_WRITE_ERROR
        if queued_envelope.message_id:
            self.shared.log.info(
                self.service.program.rsplit("/", 1)[0] + "/cleanup",
                self.number,
                fmt.message_id(queue_id, queued_envelope.message_id),
            )
        self.shared.queued(queue_id)
        self.queue_id = None
        self.sender = None
        return queued(queue_id)

    async def _starttls(self, core: SmtpServer, discarded: bytes) -> bool:
        self.conn.pause_reading()  # before the 220 leaves: see net.connection
        if not await self._flush(core):
            return False
        if discarded:
            self.warning(
                f"{self.namaddr}: discarding {len(discarded)} bytes of plaintext "
                "pipelined after STARTTLS"
            )
        if not await self._handshake(discarded):
            return False
        core.tls_established()
        self.sender = None
        self.queue_id = None
        self._new_request()
        return True

    async def _handshake(self, already_discarded: bytes) -> bool:
        """Run the server TLS handshake (logged as Postfix does); False = session over."""
        self.tls = await server_handshake(
            self.conn,
            self.service,
            SessionLog(self.host, self.addr, self.info, self.warning),
            already_discarded=already_discarded,
        )
        return self.tls is not None
