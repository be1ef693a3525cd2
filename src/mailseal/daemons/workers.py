"""The master's smtpd worker processes: spawn, hand connections to, reload, stop.

With more than one worker (``smtpd_worker_processes``, by default one per CPU
core within the smtpd services' ``maxproc``), the master keeps the listening
sockets and the queue manager and passes each accepted connection to a worker
(:mod:`mailseal.net.handoff`). Choosing the worker:

- a client that anvil(8)'s limits apply to (not in
  ``smtpd_client_event_limit_exceptions``) always goes to the same worker, by a
  hash of its address, so its connection count and rates are counted in one
  place, exactly as with Postfix's single anvil;
- exempt clients (``$mynetworks`` by default) go round-robin, spreading the load.

A reload starts a new generation of workers that read the new configuration;
the old generation gets DRAIN and exits when its sessions end (Postfix's old
smtpd processes do the same). A worker that dies is replaced after a pause
(``warning: process ... pid N exit status S``, as Postfix's master logs it).
A worker that says IDLE (it served clients, then had none for ``max_idle``) is
replaced the same way as at a reload, one worker at a time: the fresh process
first, then DRAIN to the old one, so no connection finds no worker.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import os
import socket
import sys
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field

from mailseal.log.sinks import MailLog, Severity
from mailseal.net.handoff import (
    Message,
    MessageKind,
    channel_pair,
    encode,
    pass_connection,
    read_messages,
)
from mailseal.tls.tickets import new_ticket_keys

__all__ = ["WorkerPool", "worker_count"]

_READY_WAIT = 30.0
_RESPAWN_PAUSE = 1.0
_WORKER_MODULE = "mailseal.daemons.smtpd_worker"


def worker_count(setting: int, maxprocs: list[str], default_process_limit: int) -> int:
    """How many smtpd processes: the setting, else one per core within every maxproc."""
    if setting > 0:
        return setting
    limits = [default_process_limit if m == "-" else int(m) for m in maxprocs if m != "0"]
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return max(1, min([cores or 1, *limits]))


async def _wait_ready(workers: list[_Worker]) -> None:
    """Until each has said READY; OSError saying why when one exits or time runs out."""
    try:
        await asyncio.wait_for(asyncio.gather(*(w.ready for w in workers)), _READY_WAIT)
    except (TimeoutError, RuntimeError) as error:
        raise OSError(str(error) or f"not ready within {_READY_WAIT:.0f}s") from None


@dataclass
class _Worker:
    process: asyncio.subprocess.Process
    connections: socket.socket  # master's end: connections go out here
    events: socket.socket  # master's end: the worker's messages come in here
    ready: asyncio.Future[None]
    draining: bool = False
    retiring: bool = False  # a fresh process is being started to take its place
    watcher: asyncio.Task[None] | None = field(default=None, repr=False)


class WorkerPool:
    """N smtpd worker processes of the current generation, plus draining old ones."""

    def __init__(
        self,
        config_dir: str,
        hostname: str,
        count: int,
        *,
        log: MailLog,
        program: str,
        number: int,
        queued: Callable[[str], None],
        exited: Callable[[int], object] = lambda pid: None,
    ) -> None:
        """``queued(id)`` when a worker stored a message, ``exited(pid)`` when one ended."""
        self._config_dir = config_dir
        self._hostname = hostname
        self.count = count
        self._log = log
        self._program = program
        self._number = number
        self._queued = queued
        self._exited = exited
        self._current: list[_Worker] = []
        self._old: list[_Worker] = []
        self._turn = itertools.count()
        self._stopping = False
        self._replacing: set[asyncio.Task[None]] = set()
        self._ticket_keys = new_ticket_keys()

    # -- lifecycle ------------------------------------------------------------------

    async def start(self) -> None:
        """Start a generation and wait until every worker has built its services."""
        self._current = await self._generation()

    async def reload(self) -> None:
        """A new generation reads the new configuration; the old one drains."""
        fresh = await self._generation()
        old, self._current = self._current, fresh
        for worker in old:
            self._tell(worker, MessageKind.DRAIN)
            worker.draining = True
        self._old.extend(old)

    async def stop(self, grace: float) -> None:
        """STOP every worker; wait for them (bounded), then kill what is left."""
        self._stopping = True
        for task in list(self._replacing):
            task.cancel()
        if self._replacing:
            await asyncio.wait(set(self._replacing), timeout=5.0)
        everyone = self._current + self._old
        for worker in everyone:
            self._tell(worker, MessageKind.STOP)
        waits = [asyncio.ensure_future(w.process.wait()) for w in everyone]
        if waits:
            _done, pending = await asyncio.wait(waits, timeout=grace + 5.0)
            for worker in everyone:
                if worker.process.returncode is None:
                    with contextlib.suppress(ProcessLookupError):
                        worker.process.kill()
            if pending:
                await asyncio.wait(pending, timeout=5.0)
        for worker in everyone:
            self._close(worker)

    async def _generation(self) -> list[_Worker]:
        workers = [await self._spawn() for _ in range(self.count)]
        try:
            await _wait_ready(workers)
        except OSError as error:
            for worker in workers:
                self._tell(worker, MessageKind.STOP)
                with contextlib.suppress(ProcessLookupError):
                    worker.process.kill()
                self._close(worker)
            raise OSError(f"smtpd worker processes did not start: {error}") from None
        return workers

    async def _spawn(self) -> _Worker:
        master_conn, worker_conn = channel_pair()
        master_events, worker_events = channel_pair()
        log_mode = "forward" if self._log.observed else "local"
        try:
            process = await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                _WORKER_MODULE,
                self._config_dir,
                self._hostname,
                str(worker_conn.fileno()),
                str(worker_events.fileno()),
                log_mode,
                pass_fds=(worker_conn.fileno(), worker_events.fileno()),
                stdin=asyncio.subprocess.PIPE,
            )
        finally:
            worker_conn.close()
            worker_events.close()
        # The TLS session-ticket keys, shared so a client resumes in any worker
        # (tlsmgr's job in Postfix); a pipe, because argv and environ are visible.
        assert process.stdin is not None
        process.stdin.write(self._ticket_keys)
        with contextlib.suppress(ConnectionError):
            await process.stdin.drain()
        process.stdin.close()
        master_conn.setblocking(False)
        ready = asyncio.get_running_loop().create_future()
        worker = _Worker(process, master_conn, master_events, ready)
        read_messages(
            master_events,
            lambda message, fds: self._message(worker, message, fds),
            lambda: None,
        )
        worker.watcher = asyncio.get_running_loop().create_task(self._watch(worker))
        return worker

    async def _watch(self, worker: _Worker) -> None:
        status = await worker.process.wait()
        self._exited(worker.process.pid)
        if not worker.ready.done():
            worker.ready.set_exception(RuntimeError(f"a worker exited with status {status}"))
        self._close(worker)
        if worker in self._old:
            self._old.remove(worker)
            return
        if self._stopping or worker not in self._current:
            return
        self._log.warning(
            self._program,
            self._number,
            f"process {_WORKER_MODULE} pid {worker.process.pid} exit status {status}",
        )
        await asyncio.sleep(_RESPAWN_PAUSE)
        if self._stopping or worker not in self._current:
            return
        try:
            replacement = await self._spawn()
        except OSError as error:
            self._log.warning(self._program, self._number, f"cannot restart smtpd: {error}")
            self._current.remove(worker)
            return
        self._current[self._current.index(worker)] = replacement

    # -- traffic ----------------------------------------------------------------------

    def dispatch(self, key: str, connection: socket.socket, *, sticky_addr: str | None) -> None:
        """Pass ``connection`` (of service ``key``) to a worker; the master's copy is closed."""
        with connection:
            alive = [w for w in self._current if w.process.returncode is None]
            if not alive:
                return  # every worker is being replaced: the client may retry
            if sticky_addr is not None:
                first = zlib.crc32(sticky_addr.encode()) % len(alive)
            else:
                first = next(self._turn) % len(alive)
            for step in range(len(alive)):
                if pass_connection(alive[(first + step) % len(alive)].connections, key, connection):
                    return
            self._log.warning(self._program, self._number, "smtpd workers overloaded")

    def _message(self, worker: _Worker, message: Message, fds: list[int]) -> None:
        for fd in fds:
            os.close(fd)
        if message.kind is MessageKind.QUEUED and message.fields:
            self._queued(message.fields[0])
        elif message.kind is MessageKind.READY and not worker.ready.done():
            worker.ready.set_result(None)
        elif message.kind is MessageKind.IDLE:
            self._retire(worker)
        elif message.kind is MessageKind.LOG and len(message.fields) >= 4:
            severity, program, number, text = message.fields[:4]
            with contextlib.suppress(ValueError):
                self._log.relay(Severity(int(severity)), program, int(number), text)

    def _retire(self, worker: _Worker) -> None:
        if self._stopping or worker.retiring or worker not in self._current:
            return  # stopping, already being replaced, or an old generation's
        worker.retiring = True
        task = asyncio.get_running_loop().create_task(self._replace(worker))
        self._replacing.add(task)
        task.add_done_callback(self._replacing.discard)

    async def _replace(self, worker: _Worker) -> None:
        """Start a fresh worker in ``worker``'s place, then drain ``worker``."""
        try:
            fresh = await self._spawn()
        except OSError as error:
            worker.retiring = False
            self._log.warning(self._program, self._number, f"cannot start smtpd: {error}")
            return
        self._old.append(fresh)  # until it is ready: stop() must find it meanwhile
        try:
            await _wait_ready([fresh])
        except OSError as error:
            worker.retiring = False
            self._tell(fresh, MessageKind.STOP)
            self._log.warning(self._program, self._number, f"cannot start smtpd: {error}")
            return
        if self._stopping or worker not in self._current:
            self._tell(fresh, MessageKind.DRAIN)  # a reload replaced them all meanwhile
            return
        if fresh not in self._old:  # it exited as soon as it was ready
            worker.retiring = False
            return
        self._old.remove(fresh)
        self._current[self._current.index(worker)] = fresh
        self._tell(worker, MessageKind.DRAIN)
        worker.draining = True
        self._old.append(worker)

    @staticmethod
    def _tell(worker: _Worker, kind: MessageKind) -> None:
        with contextlib.suppress(OSError):
            worker.connections.send(encode(kind))

    @staticmethod
    def _close(worker: _Worker) -> None:
        loop = asyncio.get_running_loop()
        for sock in (worker.connections, worker.events):
            if sock.fileno() >= 0:
                with contextlib.suppress(ValueError, OSError):
                    loop.remove_reader(sock.fileno())
                sock.close()
