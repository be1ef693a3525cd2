"""The queue manager: moves queue files through active/ and deferred/ and delivers them.

Postfix's qmgr(8) with the local(8)/virtual(8) Maildir delivery agents folded
in, and smtp(8) (:mod:`mailseal.delivery.smtp`) for the ``smtp`` and ``relay``
transports. A message enters ``active/`` (from ``incoming/`` when smtpd announces it,
or at start-up, or when its ``deferred/`` retry time has come), each
recipient not yet marked done is expanded (virtual_alias_maps, alias_maps,
transport) and delivered. Then the file is removed, or deferred with its
finished recipients marked done (one append, one fsync) and Postfix's back-off: the
time since arrival, clamped to [minimal_backoff_time, maximal_backoff_time]
(qmgr_active.c), until ``maximal_queue_lifetime``; then the sender gets a
bounce for what is still undelivered (:mod:`mailseal.services.notices`), as
for every permanent failure, and a delay warning once ``delay_warning_time``
has passed. Durability follows Postfix: every delivery is durable before the file
changes, the moves to active/ and the final removal are not synced (a crash can bring
a file back and deliver a recipient twice, never lose one).

Recipients for the smtp client are grouped per (transport, next hop), at most
``smtp_destination_recipient_limit`` per delivery, and no more than
``smtp_destination_concurrency_limit`` deliveries run to one next hop at once.

Disk work (reading, Maildir writes, fsync) runs in threads; the asyncio side
only schedules. Every message goes to the local lane first (one thread, batches:
:mod:`mailseal.services.qmgr_lane`), which delivers the messages whose destinations
are all local and makes their Maildir files durable together
(:mod:`mailseal.delivery.maildir_batch`); a message with an smtp destination goes on
to a pool thread, which waits for the smtp client. Reads: queue_run_delay,
minimal_backoff_time, maximal_backoff_time, maximal_queue_lifetime,
enable_original_recipient, myhostname, syslog_name.

Queue operations of the admin (postsuper, postqueue -f/-s, through the control
socket) coordinate with deliveries through :attr:`QueueManager.gate`
(:mod:`mailseal.services.queue_admin_gate`): an operation on a message being
delivered takes effect when the attempt ends.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import os
import time
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace

from mailseal.config.model import Config
from mailseal.delivery.maildir import MaildirError
from mailseal.delivery.maildir_batch import MaildirBatch, MaildirResult
from mailseal.delivery.smtp import RecipientResult, SmtpAgent, SmtpRequest
from mailseal.log import format as fmt
from mailseal.log.sinks import MailLog
from mailseal.queue.body import MessageBody
from mailseal.queue.envelope import Recipient
from mailseal.queue.store import CorruptQueueFile, QueuedMessage, QueueName, QueueStore
from mailseal.services.delivery_outcome import Outcome
from mailseal.services.dsn import NoticeKind, delay_warning_due
from mailseal.services.local_transports import (
    MAILDIR_TRANSPORTS,
    MaildirJob,
    deliver_local,
    outcome_from_verdict,
    plan_local,
)
from mailseal.services.notices import Failure, queue_notice
from mailseal.services.qmgr_lane import LocalLane
from mailseal.services.qmgr_smtp import ShutdownError, SmtpDispatch, outcome_of
from mailseal.services.queue_admin_gate import DeliveryGate
from mailseal.services.recipients import Destination, Recipients, Verdict
from mailseal.smtp.client_content import StreamedContent

__all__ = ["Outcome", "QueueManager"]

_SMTP_TRANSPORTS = ("smtp", "relay")
_LOCAL_PROGRAMS = (*MAILDIR_TRANSPORTS, "discard", "error")
_RETIRE_AFTER = 60.0
# A lane run commits its Maildir files early past these (descriptors, memory held).
_BATCH_FILES = 64
_BATCH_BYTES = 8 << 20

# A lane job: the message and the queue it is in; its result says whether the
# lane finished the attempt (False: it has smtp destinations, for the pool).
_Job = tuple[str, QueueName]


class QueueManager:
    """Schedules deliveries from the queue; ``wake(id)`` announces a new message."""

    def __init__(
        self,
        config: Config,
        store: QueueStore,
        recipients: Recipients,
        log: MailLog,
        numbers: Iterator[int],
        *,
        workers: int = 4,
    ) -> None:
        self.config = config
        self.store = store
        self.recipients = recipients
        self.log = log
        self.number = next(numbers)
        self._numbers = numbers
        self.program = log.program("qmgr")
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="qmgr")
        self._slots = asyncio.Semaphore(workers)
        self._lane: LocalLane[_Job, bool] = LocalLane(self.process_local, limit=_BATCH_FILES)
        self._batch = MaildirBatch()  # the lane's; only its thread touches it
        self.gate = DeliveryGate()
        self._tasks: set[asyncio.Task[None]] = set()
        self._stopping = False
        self._scan_now = asyncio.Event()
        self.as_root = os.geteuid() == 0
        self.smtp = SmtpDispatch(config, SmtpAgent(config, log, numbers))
        self._loop: asyncio.AbstractEventLoop | None = None

    # -- scheduling (event loop) ---------------------------------------------------

    def wake(self, queue_id: str) -> None:
        """smtpd queued ``queue_id`` in incoming/: deliver it now."""
        if not self._stopping:
            self._start(queue_id, QueueName.INCOMING)

    def reconfigure(self, config: Config, recipients: Recipients) -> None:
        """After a reload: new tables and parameters for the next deliveries.

        Deliveries in progress keep the objects they started with; the old
        tables are closed a minute later, when those have long finished.
        """
        old = self.recipients
        self.config, self.recipients = config, recipients
        self.smtp.reconfigure(config)
        asyncio.get_running_loop().call_later(_RETIRE_AFTER, _close_recipients, old)

    def flush(self) -> None:
        """Attempt deferred mail now (postqueue -f)."""
        self._scan_now.set()

    def kick(self, queue_id: str, queue: QueueName) -> None:
        """Deliver ``queue_id`` from ``queue`` now (released, requeued, flushed per site)."""
        if not self._stopping and self.store.path(queue_id, queue).is_file():
            self._start(queue_id, queue)

    def _start(self, queue_id: str, queue: QueueName) -> None:
        if not self.gate.enter(queue_id, queue):
            return
        task = asyncio.get_running_loop().create_task(self._run_one(queue_id, queue))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _run_one(self, queue_id: str, queue: QueueName) -> None:
        loop = asyncio.get_running_loop()
        try:
            try:
                # A queue operation that came before the attempt began replaces it.
                if not self.gate.has_after(queue_id) and not await self._lane.run(
                    (queue_id, queue)
                ):
                    # smtp destinations: a pool thread waits for the smtp client.
                    async with self._slots:
                        if not self.gate.has_after(queue_id):
                            await loop.run_in_executor(
                                self._pool, self.process, queue_id, QueueName.ACTIVE
                            )
            except ShutdownError:
                pass  # shutdown: the file stays in active/ and is delivered at the next start
            except Exception as error:  # the file stays queued; the next scan retries it
                self.log.warning(
                    self.program, self.number, f"{queue_id}: delivery error: {error!r}"
                )
            again = await self._after_attempt(queue_id)
        finally:
            self.gate.leave(queue_id)
        if again is not None:
            self.kick(queue_id, again)

    async def _after_attempt(self, queue_id: str) -> QueueName | None:
        """Queue operations that waited for this attempt (postsuper on a busy message)."""
        loop = asyncio.get_running_loop()
        again: QueueName | None = None
        while actions := self.gate.take_after(queue_id):
            for action in actions:
                try:
                    again = await loop.run_in_executor(self._pool, action)
                except Exception as error:  # the pool is gone at shutdown: the file stays
                    text = f"{queue_id}: queue operation after delivery failed: {error!r}"
                    self.log.warning(self.program, self.number, text)
        return again

    async def run(self) -> None:
        """Deliver: what the queue holds at start, on wake(), and every queue_run_delay.

        The master has run ``QueueStore.recover`` before smtpd accepted anything.
        """
        self._loop = self.smtp.loop = asyncio.get_running_loop()
        for queue in (QueueName.ACTIVE, QueueName.INCOMING):
            for queue_id in self.store.list(queue):
                self._start(queue_id, queue)
        flush = False
        while not self._stopping:
            self._scan_deferred(flush)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._scan_now.wait(), self.config.queue_run_delay)
            # Read before clearing: the scan after a flush takes every deferred message.
            flush = self._scan_now.is_set()
            self._scan_now.clear()

    def _scan_deferred(self, flush: bool) -> None:
        now = time.time()
        for queue_id in self.store.list(QueueName.DEFERRED):
            try:
                due = self.store.next_attempt(queue_id, QueueName.DEFERRED) <= now
            except OSError:
                continue  # removed meanwhile
            if due or flush:
                self._start(queue_id, QueueName.DEFERRED)

    async def stop(self, timeout: float) -> None:
        """Finish deliveries in progress (bounded); what is not done stays queued."""
        self._stopping = True
        self._scan_now.set()
        # SMTP sessions may wait for minutes (connect and reply timeouts): they are cut
        # off, as Postfix's master stops its smtp processes; nothing of theirs was
        # marked done, so the next start delivers those recipients again.
        self.smtp.cancel_all()
        if self._tasks:
            await asyncio.wait(set(self._tasks), timeout=timeout)
        self._lane.close()
        self._pool.shutdown(wait=False, cancel_futures=True)
        await self.smtp.aclose()
        if self._batch.commits:
            text = (
                f"maildir writes: {self._batch.committed} messages in {self._batch.commits} syncs"
            )
            self.log.info(self.program, self.number, text)

    # -- one message (worker thread) -------------------------------------------------

    def process(self, queue_id: str, queue: QueueName) -> None:
        """Deliver every pending recipient of one queue file, then remove or defer it."""
        activated = self._activate(queue_id, queue)
        if activated is None:
            return
        message, active_arrival = activated
        pending = self._pending(message)
        self._log_from(message, pending)
        results: dict[int, list[Outcome]] = {index: [] for index in pending}
        remote: list[tuple[int, Destination]] = []
        for index in pending:
            recipient = message.envelope.recipients[index]
            for dest in self._expand(message, recipient, active_arrival, results[index]):
                if dest.transport in _SMTP_TRANSPORTS:
                    remote.append((index, dest))
                else:
                    self._deliver_locally(message, index, dest, active_arrival, results[index])
        if remote:
            self._deliver_remote(message, remote, active_arrival, results)
        self._settle(message, results)

    def process_local(self, jobs: Sequence[_Job]) -> list[bool | Exception]:
        """The local lane's batch: attempt each message whose destinations are all local.

        A message with an smtp destination is left in active/ for :meth:`process`
        (result False). Maildir files of the batch are made durable together, and
        a message is settled (removed or deferred) only after its files are.
        """
        results: list[bool | Exception] = []
        attempts: list[tuple[int, QueuedMessage, dict[int, list[Outcome]]]] = []
        held = 0
        for queue_id, queue in jobs:
            try:
                attempt = self._local_attempt(queue_id, queue)
            except Exception as error:  # this message stays queued; the others go on
                results.append(error)
                continue
            if isinstance(attempt, bool):
                results.append(attempt)
                continue
            results.append(True)
            attempts.append((len(results) - 1, *attempt))
            held += attempt[0].size
            if held > _BATCH_BYTES:
                self._settle_batch(attempts, results)
                attempts, held = [], 0
        self._settle_batch(attempts, results)
        return results

    def _local_attempt(
        self, queue_id: str, queue: QueueName
    ) -> bool | tuple[QueuedMessage, dict[int, list[Outcome]]]:
        """Stage one message's local deliveries in the lane's batch; True: settled already."""
        activated = self._activate(queue_id, queue)
        if activated is None:
            return True
        message, active_arrival = activated
        pending = self._pending(message)
        recipients = message.envelope.recipients
        expanded = {index: self.recipients.expand(recipients[index].address) for index in pending}
        for found in expanded.values():
            if not isinstance(found, Verdict) and any(
                dest.transport in _SMTP_TRANSPORTS for dest in found
            ):
                return False  # nothing logged yet: process() does it all again
        self._log_from(message, pending)
        results: dict[int, list[Outcome]] = {index: [] for index in pending}
        for index, found in expanded.items():
            if isinstance(found, Verdict):
                self._verdict(message, recipients[index], found, active_arrival, results[index])
                continue
            for dest in found:
                self._stage_locally(message, index, dest, active_arrival, results[index])
        return message, results

    def _settle_batch(
        self,
        attempts: list[tuple[int, QueuedMessage, dict[int, list[Outcome]]]],
        results: list[bool | Exception],
    ) -> None:
        """Commit the batch's Maildir files, then remove or defer each of its messages."""
        self._batch.commit()
        for position, message, outcomes in attempts:
            try:
                self._settle(message, outcomes)
            except Exception as error:
                results[position] = error

    def _activate(self, queue_id: str, queue: QueueName) -> tuple[QueuedMessage, float] | None:
        """Move the file to active/ and read it; None when it was corrupt (quarantined)."""
        if queue is not QueueName.ACTIVE:
            self.store.move(queue_id, queue, QueueName.ACTIVE, durable=False)
        active_arrival = time.time()
        try:
            message = self.store.read(queue_id, QueueName.ACTIVE)
        except CorruptQueueFile as error:
            self.store.quarantine(queue_id, QueueName.ACTIVE)
            self.log.warning(
                self.program,
                self.number,
                f"{queue_id}: corrupt queue file moved to corrupt/: {error.reason}",
            )
            return None
        return message, active_arrival

    @staticmethod
    def _pending(message: QueuedMessage) -> list[int]:
        """Indexes of the recipients not marked done."""
        return [i for i in range(len(message.envelope.recipients)) if i not in message.done]

    def _log_from(self, message: QueuedMessage, pending: list[int]) -> None:
        envelope = message.envelope
        self.log.info(
            self.program,
            self.number,
            fmt.qmgr_from(message.queue_id, envelope.sender, message.size, len(pending)),
        )

    def _settle(self, message: QueuedMessage, results: dict[int, list[Outcome]]) -> None:
        """After the attempt: bounce what failed, then remove or defer the file."""
        envelope = message.envelope
        deferred: dict[int, Outcome] = {}
        finished: list[int] = []
        bounced: list[Failure] = []
        for index, outcomes in results.items():
            recipient = envelope.recipients[index]
            if all(o.final for o in outcomes):
                finished.append(index)
            else:
                deferred[index] = next(o for o in outcomes if not o.final)
            bounced += [Failure(recipient, o) for o in outcomes if o.status == "bounced"]
        if bounced:
            self._notify(message, bounced, "failure")
        self._finish(message, deferred, finished)

    def _finish(
        self, message: QueuedMessage, deferred: dict[int, Outcome], finished: list[int]
    ) -> None:
        """Remove the file, or defer it with its finished recipients marked done.

        The done marks are written only when the file stays (with the deferral, one
        append and one fsync): a file that goes needs none. Deliveries themselves
        (Maildir, smtp) are durable before this runs, so a crash in between can
        deliver a recipient twice, never lose one.
        """
        queue_id = message.queue_id
        envelope = message.envelope
        now = time.time()
        if deferred and now - envelope.arrival_time >= self.config.maximal_queue_lifetime:
            # Postfix: the sender is told, the file goes (qmgr's "status=expired").
            self.log.info(self.program, self.number, fmt.expired(queue_id, envelope.sender))
            expired = [Failure(envelope.recipients[i], o) for i, o in sorted(deferred.items())]
            self._notify(message, expired, "failure")
            deferred = {}
        if not deferred:
            self.store.remove(queue_id, QueueName.ACTIVE, durable=False)
            self.log.info(self.program, self.number, fmt.queue_removed(queue_id))
            return
        warn_after = self.config.delay_warning_time
        if warn_after and delay_warning_due(
            _utc(envelope.arrival_time), _utc(now), warn_after, message.warned
        ):
            delayed = [Failure(envelope.recipients[i], o) for i, o in sorted(deferred.items())]
            self._notify(message, delayed, "delay")
            self.store.mark_warned(queue_id, QueueName.ACTIVE)
        delay = min(
            max(now - envelope.arrival_time, float(self.config.minimal_backoff_time)),
            float(self.config.maximal_backoff_time),
        )
        reasons = {i: o.reason for i, o in deferred.items()}
        self.store.defer(queue_id, QueueName.ACTIVE, reasons, now + delay, done=finished)

    def _notify(self, message: QueuedMessage, failures: list[Failure], kind: NoticeKind) -> None:
        """Queue a bounce or delay notice and hand it to delivery (worker thread)."""
        queued = queue_notice(
            self.config, self.store, message, failures, kind=kind, now=time.time()
        )
        if queued is None:
            return
        notice_id, line = queued
        self.log.info(self.log.program("bounce"), next(self._numbers), line)
        if self._loop is not None:
            self._loop.call_soon_threadsafe(self.wake, notice_id)

    def _expand(
        self,
        message: QueuedMessage,
        recipient: Recipient,
        active_arrival: float,
        outcomes: list[Outcome],
    ) -> list[Destination]:
        """The recipient's destinations; a lookup verdict is logged and kept as its outcome."""
        expanded = self.recipients.expand(recipient.address)
        if not isinstance(expanded, Verdict):
            return list(expanded)
        self._verdict(message, recipient, expanded, active_arrival, outcomes)
        return []

    def _verdict(
        self,
        message: QueuedMessage,
        recipient: Recipient,
        verdict: Verdict,
        active_arrival: float,
        outcomes: list[Outcome],
    ) -> None:
        """A recipient that expansion refused: log the outcome and keep it."""
        outcome = outcome_from_verdict(verdict, recipient.address)
        self._log_outcome(
            message,
            recipient=recipient,
            outcome=outcome,
            program="qmgr",
            number=next(self._numbers),
            active_arrival=active_arrival,
        )
        outcomes.append(outcome)

    def _deliver_locally(
        self,
        message: QueuedMessage,
        index: int,
        dest: Destination,
        active_arrival: float,
        outcomes: list[Outcome],
    ) -> None:
        handoff = time.time()
        outcome = self._deliver_destination(message, message.envelope.recipients[index], dest)
        self._log_local(
            message, index, dest, outcome, active_arrival=active_arrival, handoff=handoff
        )
        outcomes.append(outcome)

    def _stage_locally(
        self,
        message: QueuedMessage,
        index: int,
        dest: Destination,
        active_arrival: float,
        outcomes: list[Outcome],
    ) -> None:
        """As :meth:`_deliver_locally`, a Maildir file left to the lane's batch to sync."""
        handoff = time.time()
        recipient = message.envelope.recipients[index]
        planned = plan_local(self.config, message, recipient, dest, as_root=self.as_root)
        if isinstance(planned, MaildirJob):
            try:
                staged = planned.stage(message)
            except MaildirError as error:
                planned = planned.failed(error)
            else:

                def done(result: MaildirResult, job: MaildirJob = planned) -> None:
                    outcome = (
                        job.failed(result) if isinstance(result, MaildirError) else job.delivered()
                    )
                    self._log_local(
                        message,
                        index,
                        dest,
                        outcome,
                        active_arrival=active_arrival,
                        handoff=handoff,
                    )
                    outcomes.append(outcome)

                self._batch.add(staged, done)
                if len(self._batch) >= _BATCH_FILES:
                    self._batch.commit()
                return
        self._log_local(
            message, index, dest, planned, active_arrival=active_arrival, handoff=handoff
        )
        outcomes.append(planned)

    def _log_local(
        self,
        message: QueuedMessage,
        index: int,
        dest: Destination,
        outcome: Outcome,
        *,
        active_arrival: float,
        handoff: float,
    ) -> None:
        self._log_outcome(
            message,
            recipient=message.envelope.recipients[index],
            outcome=outcome,
            program=dest.transport if dest.transport in _LOCAL_PROGRAMS else "qmgr",
            number=next(self._numbers),
            active_arrival=active_arrival,
            handoff=handoff,
        )

    def _deliver_remote(
        self,
        message: QueuedMessage,
        remote: list[tuple[int, Destination]],
        active_arrival: float,
        results: dict[int, list[Outcome]],
    ) -> None:
        """smtp and relay destinations, one request per next hop (this worker thread waits)."""
        groups: dict[str, list[tuple[int, Destination]]] = {}
        for index, dest in remote:
            groups.setdefault(dest.nexthop, []).append((index, dest))
        limit = max(1, self.config.smtp_destination_recipient_limit)
        # Once per message, not per next hop: a large body is scanned for 8-bit octets.
        content = _smtp_content(message.body)
        for nexthop, members in groups.items():
            for start in range(0, len(members), limit):
                chunk = members[start : start + limit]
                handoff = time.time()
                answers = self._smtp(message, content, nexthop, chunk)
                for (index, _), answer in zip(chunk, answers, strict=True):
                    outcome = outcome_of(answer)
                    self._log_outcome(
                        message,
                        recipient=message.envelope.recipients[index],
                        outcome=outcome,
                        program="smtp",
                        number=answer.number,
                        active_arrival=active_arrival,
                        handoff=handoff,
                    )
                    results[index].append(outcome)

    def _smtp(
        self,
        message: QueuedMessage,
        content: bytes | StreamedContent,
        nexthop: str,
        chunk: list[tuple[int, Destination]],
    ) -> list[RecipientResult]:
        envelope = message.envelope
        request = SmtpRequest(
            queue_id=message.queue_id,
            nexthop=nexthop,
            sender=envelope.sender,
            recipients=tuple(
                replace(envelope.recipients[index], address=dest.address) for index, dest in chunk
            ),
            content=content,
            envelope=envelope,
        )
        return self.smtp.deliver(request)

    def _deliver_destination(
        self, message: QueuedMessage, recipient: Recipient, dest: Destination
    ) -> Outcome:
        return deliver_local(self.config, message, recipient, dest, as_root=self.as_root)

    def _log_outcome(
        self,
        message: QueuedMessage,
        *,
        recipient: Recipient,
        outcome: Outcome,
        program: str,
        number: int,
        active_arrival: float,
        handoff: float | None = None,
    ) -> None:
        done = time.time()
        arrival = message.envelope.arrival_time
        start = handoff if handoff is not None else done
        measured = outcome.transmission is not None
        times = fmt.DeliveryTimes(
            total=done - arrival,
            before_qmgr=max(active_arrival - arrival, 0.0),
            in_qmgr=max(start - active_arrival, 0.0),
            setup=outcome.setup if measured else 0.0,
            transmission=(outcome.transmission or 0.0) if measured else max(done - start, 0.0),
        )
        line = fmt.recipient_status(
            message.queue_id,
            outcome.address,
            original=recipient.original,
            relay=outcome.relay,
            times=times,
            dsn=outcome.dsn,
            status=outcome.status,
            reason=outcome.reason,
            tls=outcome.tls_level if self.config.smtp_log_tls_field else "",
            conn_use=outcome.conn_use,
        )
        self.log.info(self.log.program(program), number, line)


def _close_recipients(recipients: Recipients) -> None:
    recipients.close()
    recipients.addressing.close()


def _utc(timestamp: float) -> dt.datetime:
    return dt.datetime.fromtimestamp(timestamp, dt.UTC)


def _smtp_content(body: MessageBody) -> bytes | StreamedContent:
    """What the smtp client sends: the bytes, or for a large file a stream read from it."""
    if body.in_memory:
        return body.read()
    return StreamedContent(size=body.size, eight_bit=not body.is_ascii(), pieces=body.chunks)
