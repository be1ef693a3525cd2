"""An smtpd worker process: runs the SMTP sessions the master hands it.

Started by :mod:`mailseal.daemons.workers` as
``python -m mailseal.daemons.smtpd_worker CONFIG_DIR HOSTNAME CONN_FD EVENT_FD LOG``.
It loads the configuration itself (a reload starts a new generation of workers,
so each generation reads the files once), builds every smtpd service of
master.cf, and then serves the connections that arrive on ``CONN_FD``
(:mod:`mailseal.net.handoff`). It never listens: the master owns the ports.

It writes its own log lines (``maillog_file`` is opened for appending, one
write per line, so lines of several processes never mix) and, when ``LOG`` is
``forward``, sends them to the master too, for its metrics and JSON sink. A
queued message is announced to the master's queue manager over ``EVENT_FD``.

DRAIN (after a reload): take no more connections, let the sessions finish,
exit. STOP (shutdown, or the master is gone): Postfix's graceful stop, as the
in-process master does it: idle clients get 421, sessions get a bounded time.

IDLE (to the master): a worker that has served clients and then had none for
``max_idle`` asks to be replaced by a fresh process, which the master starts
before it drains this one. A burst of sessions leaves Python's object arenas
partly used for good (5,000 idle clients: 31 -> 37-39 MB; docs/performance.md);
Postfix's smtpd processes exit after ``max_idle`` without a client for the same
reason, among others.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import os
import signal
import socket
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from mailseal.config.errors import ConfigError
from mailseal.config.loader import LoadedConfig, load_config
from mailseal.config.model import Config
from mailseal.daemons.heap import HeapTrimmer
from mailseal.daemons.smtpd import build_service
from mailseal.log.sinks import MailLog, Severity, open_sink, session_numbers
from mailseal.net import eventloop
from mailseal.net.connection import accepted
from mailseal.net.handoff import MessageKind, encode, receive_connections
from mailseal.queue.store import QueueStore
from mailseal.services.anvil import RateCounter
from mailseal.services.smtpd_service import SmtpdService, SmtpdShared
from mailseal.services.smtpd_session import run_session
from mailseal.tls.tickets import TICKET_KEYS_LENGTH, share_ticket_keys

__all__ = ["STOP_GRACE", "Worker", "main"]

STOP_GRACE = 10.0  # as the in-process master: sessions get this long at shutdown


class Worker:
    """The sessions of one worker process."""

    def __init__(
        self,
        loaded: LoadedConfig,
        connections: socket.socket,
        events: socket.socket,
        *,
        forward_log: bool,
        ticket_keys: bytes = b"",
    ) -> None:
        base = loaded.base
        self._events = events
        self.log = MailLog(open_sink(base.maillog_file, base.myhostname), base.syslog_name)
        if forward_log:
            self.log.add_observer(self._forward)
        self._connections = connections
        self._services: dict[str, SmtpdService] = {
            s.key: build_service(s, c, self._warner(c)) for s, c in loaded.smtpd_services()
        }
        self.shared = SmtpdShared(
            log=self.log,
            store=QueueStore(Path(base.queue_directory)),
            queued=self._queued,
            numbers=session_numbers(),
            rates=RateCounter(float(base.anvil_rate_time_unit)),
        )
        if ticket_keys:
            self._share_ticket_keys(ticket_keys)
        self._sessions: set[asyncio.Task[None]] = set()
        self._max_idle = float(base.max_idle)
        self._served = 0  # sessions since this process started
        self._last_session = 0.0  # loop time when the latest session ended
        # Message buffers come and go, and closed transports are cycles: see daemons.heap.
        self._trimmer = HeapTrimmer(collect=True)
        self._done = asyncio.Event()
        self._mode: MessageKind | None = None
        self._syslog_name = base.syslog_name

    def _warner(self, config: Config) -> Callable[[str], None]:
        """Run-time warnings of a service (the SASL backend's); startup ones are the master's."""
        program = f"{config.syslog_name}/smtpd"
        return lambda text: self.log.warning(program, os.getpid(), text)

    def _share_ticket_keys(self, keys: bytes) -> None:
        """Every worker encrypts tickets with the master's keys: resumption anywhere."""
        for service in self._services.values():
            context = service.tls.context
            if context is None:
                continue
            problem = share_ticket_keys(context, keys)
            if problem is not None:
                self.log.warning(
                    service.program,
                    os.getpid(),
                    f"TLS session tickets work within one smtpd process only: {problem}",
                )

    # -- to the master -----------------------------------------------------------------

    def _send(self, data: bytes) -> None:
        with contextlib.suppress(OSError):  # the master is gone: STOP follows
            self._events.send(data)

    def _forward(self, severity: Severity, program: str, number: int, message: str) -> None:
        self._send(encode(MessageKind.LOG, str(int(severity)), program, str(number), message))

    def _queued(self, queue_id: str) -> None:
        self._send(encode(MessageKind.QUEUED, queue_id))

    # -- serving -----------------------------------------------------------------------

    async def run(self) -> int:
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            # The master stops us over the channel; a signal is someone else's stop.
            loop.add_signal_handler(signum, self._control, MessageKind.STOP)
        loop.add_signal_handler(signal.SIGHUP, lambda: None)
        receive_connections(self._connections, self._accepted, self._control)
        self._trimmer.start()
        idle = loop.create_task(self._retire_when_idle())
        self._send(encode(MessageKind.READY))
        await self._done.wait()
        idle.cancel()
        await self._finish()
        await self._trimmer.stop()
        if self.shared.writer.messages:
            self.log.info(f"{self._syslog_name}/smtpd", os.getpid(), self.shared.writer.summary())
        self.log.close()
        return 0

    def _accepted(self, key: str, sock: socket.socket) -> None:
        service = self._services.get(key)
        if service is None or self._mode is not None:
            sock.close()  # a service this generation does not know: the master's race
            return
        task = asyncio.get_running_loop().create_task(self._serve(service, sock))
        self._served += 1
        self._sessions.add(task)
        task.add_done_callback(self._session_ended)

    def _session_ended(self, task: asyncio.Task[None]) -> None:
        self._sessions.discard(task)
        self._last_session = asyncio.get_running_loop().time()
        if not self._sessions:
            self._trimmer.soon()  # a burst is over: give its memory back now

    async def _retire_when_idle(self) -> None:
        """Ask the master for a fresh process once served and then idle for ``max_idle``."""
        loop = asyncio.get_running_loop()
        while True:
            await asyncio.sleep(max(self._max_idle / 4, 0.25))
            idle = loop.time() - self._last_session
            if self._served and not self._sessions and idle >= self._max_idle:
                self._send(encode(MessageKind.IDLE))
                # The master drains us once the fresh process is up; should that
                # fail, ask again after another max_idle.
                self._last_session = loop.time()

    async def _serve(self, service: SmtpdService, sock: socket.socket) -> None:
        try:
            connection = await accepted(sock, tls_first=service.wrapper_mode)
        except OSError:
            return  # the client left already
        service.enter()
        try:
            await run_session(service, self.shared, connection)
        finally:
            service.leave()

    def _control(self, kind: MessageKind) -> None:
        if self._mode is MessageKind.STOP:
            return
        self._mode = kind
        self._done.set()

    def _draining(self) -> bool:
        return self._mode is MessageKind.DRAIN

    async def _finish(self) -> None:
        # DRAIN: sessions end by themselves (their own timeouts bound them),
        # unless a STOP arrives meanwhile.
        while self._draining() and self._sessions:
            self._done.clear()
            waiting = asyncio.ensure_future(self._done.wait())
            await asyncio.wait({waiting, *self._sessions}, return_when=asyncio.FIRST_COMPLETED)
            waiting.cancel()
        if not self._draining():
            self.shared.stop()
            if self._sessions:
                await asyncio.wait(set(self._sessions), timeout=STOP_GRACE)
            cut = list(self._sessions)
            for task in cut:
                task.cancel()
            if cut:  # let their finally blocks run (service.leave, closing the socket)
                await asyncio.wait(cut, timeout=1.0)
        for service in self._services.values():
            service.retire()


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if len(args) != 5:
        print("usage: smtpd_worker CONFIG_DIR HOSTNAME CONN_FD EVENT_FD LOG", file=sys.stderr)
        return 2
    directory, hostname, conn_fd, event_fd, log_mode = args
    connections = socket.socket(fileno=int(conn_fd))
    events = socket.socket(fileno=int(event_fd))
    ticket_keys = sys.stdin.buffer.read(TICKET_KEYS_LENGTH)  # the master writes them first
    try:
        loaded = load_config(directory, hostname)
    except (ConfigError, OSError) as error:
        print(f"mailseal/smtpd: fatal: {error}", file=sys.stderr)
        return 1

    async def run() -> int:
        worker = Worker(
            loaded,
            connections,
            events,
            forward_log=log_mode == "forward",
            ticket_keys=ticket_keys if len(ticket_keys) == TICKET_KEYS_LENGTH else b"",
        )
        # The imports and the services live as long as the process (a reload starts
        # new workers), so the garbage collector need not walk them again: the
        # trimmer's full collections then cost microseconds instead of ~20 ms.
        gc.freeze()
        return await worker.run()

    return eventloop.run(run(), loaded.base.event_loop)


if __name__ == "__main__":
    sys.exit(main())
