"""master(8)'s composition root: run the smtpd services of master.cf and the queue manager.

One asyncio process listens for every inet smtpd service and runs the queue
manager beside them. Signals, as Postfix's master takes them:

- SIGTERM / SIGINT: stop accepting, let sessions finish for a bounded time
  (then they get ``421``), let the queue manager finish the deliveries in
  progress; everything acknowledged is already in the queue on disk.
- SIGHUP: re-read main.cf, master.cf, tables and certificates; new sessions use
  them, sessions in progress keep what they started with.

Log lines: ``daemon started -- version V, configuration DIR``,
``reload -- version V, configuration DIR``, ``terminating on signal 15``.
"""

from __future__ import annotations

import asyncio
import os
import signal
import socket
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from mailseal import __version__
from mailseal.config.errors import ConfigError
from mailseal.config.loader import LoadedConfig
from mailseal.config.model import Config
from mailseal.daemons.companions import Companion, MasterContext, build_companions
from mailseal.daemons.heap import HeapTrimmer
from mailseal.daemons.smtpd import ListenAddress, build_service, listen_addresses
from mailseal.daemons.workers import WorkerPool, worker_count
from mailseal.log.sinks import MailLog, open_sink, session_numbers
from mailseal.net.connection import Connection
from mailseal.net.handoff import Accepter
from mailseal.net.listener import Listener, SessionRunner
from mailseal.net.sd_notify import Notifier
from mailseal.queue.store import QueueStore
from mailseal.services.addresses import Addressing
from mailseal.services.anvil import RateCounter
from mailseal.services.qmgr import QueueManager
from mailseal.services.recipients import Recipients
from mailseal.services.smtpd_service import SmtpdService, SmtpdShared
from mailseal.services.smtpd_session import run_session

__all__ = ["Master", "pid_file"]

# How long a graceful stop waits for sessions before cutting them off.
_STOP_GRACE = 10.0


def pid_file(config: LoadedConfig) -> Path:
    """``$queue_directory/pid/master.pid``, where Postfix keeps it."""
    return Path(config.base.queue_directory) / "pid" / "master.pid"


@dataclass
class _Running:
    """A service's listeners; the service object is swapped on reload."""

    service: SmtpdService
    # Where and how it listens: a reload that changes this restarts the listeners.
    identity: tuple[tuple[ListenAddress, ...], bool]
    listeners: list[Listener] = field(default_factory=list)  # sessions in this process
    accepters: list[Accepter] = field(default_factory=list)  # sessions in workers


class Master:
    """Owns the listeners, the queue manager, the log and the signal handling."""

    def __init__(
        self,
        loader: Callable[[], LoadedConfig],
        *,
        on_ready: Callable[[], None] | None = None,
    ) -> None:
        self._loader = loader
        self.config = loader()
        self._on_ready = on_ready
        base = self.config.base
        self.log = MailLog(open_sink(base.maillog_file, base.myhostname), base.syslog_name)
        self.number = os.getpid()
        self.program = self.log.program("master")
        self._numbers = session_numbers()
        self.store = QueueStore(Path(base.queue_directory))
        self._running: dict[str, _Running] = {}
        self._stop = asyncio.Event()
        self._signal = 0
        self.qmgr: QueueManager | None = None
        self._shared: SmtpdShared | None = None
        self._companions: list[Companion] = []
        self._systemd = Notifier.from_environment()
        self._retired: list[Listener] = []  # of services a reload removed; sessions may run
        self._reload_lock = asyncio.Lock()
        self._reloads: set[asyncio.Task[None]] = set()
        self._pool: WorkerPool | None = None
        self._trimmer = HeapTrimmer()  # deliveries and sessions leave freed heap behind

    def _build_qmgr(self) -> QueueManager:
        base = self.config.base
        recipients = Recipients(base, Addressing(base))
        return QueueManager(base, self.store, recipients, self.log, self._numbers)

    async def run(self) -> int:
        """Serve until SIGTERM/SIGINT; return the exit status."""
        self.store.create()
        # Before any listener: recovery deletes half-written files in incoming/,
        # which must never include one a new session is writing.
        report = self.store.recover()
        qmgr_program = self.log.program("qmgr")
        for quarantined in report.quarantined:
            self.log.warning(qmgr_program, self.number, quarantined.log_text)
        self.qmgr = self._build_qmgr()
        shared = SmtpdShared(
            log=self.log,
            store=self.store,
            queued=self.qmgr.wake,
            numbers=self._numbers,
            rates=RateCounter(float(self.config.base.anvil_rate_time_unit)),
        )
        self._shared = shared
        self._install_signals()
        # Companions first: the metrics and the JSON log observe the log, and
        # worker processes forward their lines only if someone observes them.
        await self._start_companions(self.qmgr)
        try:
            await self._start_services(shared)
            if self._pool is not None:
                await self._pool.start()
        except (OSError, ValueError) as error:
            self.log.error(self.program, self.number, f"cannot start: {error}")  # noqa: TRY400
            await self._abandon_start()
            raise
        for running in self._running.values():
            for accepter in running.accepters:
                accepter.start()
        self.log.info(
            self.program,
            self.number,
            f"daemon started -- version {__version__}, configuration {self.config.directory}",
        )
        qmgr_task = asyncio.get_running_loop().create_task(self.qmgr.run())
        self._trimmer.start()
        if self._on_ready is not None:
            self._on_ready()
        self._systemd.ready(self._status_text())
        await self._stop.wait()
        self._systemd.stopping()
        self.log.info(self.program, self.number, f"terminating on signal {self._signal}")
        await self._trimmer.stop()
        await self._shutdown()
        qmgr_task.cancel()
        self.log.close()
        return 0

    async def _start_companions(self, qmgr: QueueManager) -> None:
        context = MasterContext(
            config=self.config,
            store=self.store,
            log=self.log,
            numbers=self._numbers,
            qmgr=qmgr,
            number=self.number,
            reload=self.reload,
        )
        for companion in build_companions(context):
            await companion.start()
            self._companions.append(companion)

    def _warner(self, config: Config) -> Callable[[str], None]:
        """Where a service's run-time warnings go (the SASL backend's, for one)."""
        program = f"{config.syslog_name}/smtpd"
        return lambda text: self.log.warning(program, self.number, text)

    async def _abandon_start(self) -> None:
        for running in self._running.values():
            for accepter in running.accepters:
                accepter.stop_accepting()
            for listener in running.listeners:
                listener.stop_accepting()
        if self._pool is not None:
            await self._pool.stop(0.0)
        for companion in reversed(self._companions):
            await companion.stop()

    def _worker_pool(self) -> WorkerPool | None:
        """The smtpd worker processes, or None when sessions run in this process."""
        services = list(self.config.smtpd_services())
        base = self.config.base
        count = worker_count(
            base.smtpd_worker_processes,
            [s.maxproc for s, _ in services],
            base.default_process_limit,
        )
        if count <= 1 or not services:
            return None
        return WorkerPool(
            self.config.directory,
            self.config.base.facts.hostname,
            count,
            log=self.log,
            program=self.program,
            number=self.number,
            queued=self._wake_qmgr,
            # A worker that crashed mid-DATA leaves its spool files: nobody else will.
            exited=self.store.remove_spools,
        )

    def _wake_qmgr(self, queue_id: str) -> None:
        if self.qmgr is not None:
            self.qmgr.wake(queue_id)

    async def _start_services(self, shared: SmtpdShared) -> None:
        self._pool = self._worker_pool()
        for master_service, config in self.config.smtpd_services():
            service = build_service(master_service, config, self._warner(config))
            addresses = listen_addresses(master_service, config)
            await self._start_service(master_service.key, service, addresses, shared)

    async def _start_service(
        self,
        key: str,
        service: SmtpdService,
        addresses: list[ListenAddress],
        shared: SmtpdShared,
    ) -> None:
        for text in service.warnings:
            self.log.warning(service.program, self.number, text)
        if service.tls.problem is not None:
            self.log.warning(service.program, self.number, service.tls.problem)
        running = _Running(service, identity=(tuple(addresses), service.wrapper_mode))
        self._running[key] = running
        if self._pool is not None:
            # Bound now (a port in use fails the start); accepting starts once
            # the workers are ready (the kernel queues connections meanwhile).
            for address in addresses:
                running.accepters.append(Accepter(address.host, address.port, key, self._dispatch))
            return
        for address in addresses:
            listener = Listener(
                address.host,
                address.port,
                self._runner(running, shared),
                tls_first=service.wrapper_mode,
            )
            await listener.start()
            running.listeners.append(listener)

    def _dispatch(self, key: str, connection: socket.socket) -> None:
        """An accepted connection of service ``key``: to a worker process."""
        running = self._running.get(key)
        if running is None or self._pool is None:
            connection.close()
            return
        try:
            addr = str(connection.getpeername()[0])
        except OSError:
            connection.close()  # gone already
            return
        exempt = running.service.rate_exceptions.matches(addr)
        self._pool.dispatch(key, connection, sticky_addr=None if exempt else addr)

    def _retire_service(self, key: str) -> None:
        """Stop accepting for a service gone from master.cf; its sessions run on."""
        running = self._running.pop(key)
        for accepter in running.accepters:
            accepter.stop_accepting()
        for listener in running.listeners:
            listener.stop_accepting()
        self._retired.extend(running.listeners)
        running.service.retire()

    @staticmethod
    def _runner(running: _Running, shared: SmtpdShared) -> SessionRunner:
        async def serve(connection: Connection) -> None:
            # Read the service at accept time: a reload swaps it for new sessions only.
            service = running.service
            service.enter()
            try:
                await run_session(service, shared, connection)
            finally:
                service.leave()

        return serve

    def _install_signals(self) -> None:
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, self.request_stop, signum)
        loop.add_signal_handler(signal.SIGHUP, self.reload)

    def request_stop(self, signum: int = signal.SIGTERM) -> None:
        self._signal = signum
        self._stop.set()

    def _status_text(self) -> str:
        """``systemctl status``'s line: what listens."""
        services = ", ".join(sorted(self._running)) or "no smtpd services"
        return f"accepting mail: {services}"

    def reload(self) -> None:
        """SIGHUP: new configuration, tables and certificates for new sessions.

        Services added to master.cf start listening, removed ones stop accepting
        (their sessions finish), the others swap their settings for new sessions.
        """
        task = asyncio.get_running_loop().create_task(self._reload_serialised())
        self._reloads.add(task)
        task.add_done_callback(self._reloads.discard)

    async def _reload_serialised(self) -> None:
        async with self._reload_lock:
            self._systemd.reloading()
            try:
                await self._reload()
            finally:
                self._systemd.ready(self._status_text())

    async def _reload(self) -> None:
        try:
            fresh = self._loader()
            plan = {
                s.key: (build_service(s, c, self._warner(c)), listen_addresses(s, c))
                for s, c in fresh.smtpd_services()
            }
        except (ConfigError, OSError, ValueError) as error:
            self.log.warning(
                self.program,
                self.number,
                f"reload failed, keeping the running configuration: {error}",
            )
            return
        for key, running in list(self._running.items()):
            entry = plan.get(key)
            if entry is None or running.identity != (tuple(entry[1]), entry[0].wrapper_mode):
                self._retire_service(key)
        for key, (service, addresses) in plan.items():
            kept = self._running.get(key)
            if kept is not None:
                kept.service.retire()
                kept.service = service
                for text in service.warnings:
                    self.log.warning(service.program, self.number, text)
            elif self._shared is not None:
                await self._start_new_service(key, service, addresses, self._shared)
        self.config = fresh
        if self._pool is not None:
            await self._reload_workers()
        for companion in self._companions:
            companion.reload(fresh)
        if self.qmgr is not None:
            base = fresh.base
            self.qmgr.reconfigure(base, Recipients(base, Addressing(base)))
        self.log.info(
            self.program,
            self.number,
            f"reload -- version {__version__}, configuration {self.config.directory}",
        )

    async def _reload_workers(self) -> None:
        """A new generation of workers for the new configuration; the old one drains."""
        assert self._pool is not None
        try:
            await self._pool.reload()
        except OSError as error:
            self.log.warning(self.program, self.number, f"{error}; the old ones keep serving")
        for running in self._running.values():
            for accepter in running.accepters:
                accepter.start()

    async def _start_new_service(
        self, key: str, service: SmtpdService, addresses: list[ListenAddress], shared: SmtpdShared
    ) -> None:
        """A service a reload added; a port it cannot bind is a warning, not a stop."""
        try:
            await self._start_service(key, service, addresses, shared)
        except OSError as error:
            self.log.warning(self.program, self.number, f"cannot start service {key}: {error}")
            failed = self._running.pop(key, None)
            if failed is not None:
                for accepter in failed.accepters:
                    accepter.stop_accepting()
                for listener in failed.listeners:
                    listener.stop_accepting()

    async def _stop_companions(self, *, observers: bool) -> None:
        """Stop the log observers, or the others, in the reverse of their start order."""
        for companion in reversed(self._companions):
            if companion.observes_log == observers:
                await companion.stop()

    async def _shutdown(self) -> None:
        listeners = [lst for r in self._running.values() for lst in r.listeners]
        listeners += self._retired
        for listener in listeners:
            listener.stop_accepting()
        for running in self._running.values():
            for accepter in running.accepters:
                accepter.stop_accepting()
        if self._shared is not None:
            self._shared.stop()
        if self._pool is not None:
            await self._pool.stop(_STOP_GRACE)
        if self._shared is not None and self._shared.writer.messages:
            self.log.info(self.log.program("smtpd"), self.number, self._shared.writer.summary())
        left = 0
        for listener in listeners:
            left += await listener.wait_sessions(_STOP_GRACE)
        for listener in listeners:
            for task in list(listener.sessions):
                task.cancel()
        if left:
            self.log.warning(self.program, self.number, f"{left} sessions cut off at shutdown")
        await self._stop_companions(observers=False)
        if self.qmgr is not None:
            await self.qmgr.stop(_STOP_GRACE)
        await self._stop_companions(observers=True)
