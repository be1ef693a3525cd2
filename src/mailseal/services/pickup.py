"""pickup(8) with cleanup(8)'s part: mail from maildrop/ into the queue.

``mailseal sendmail`` leaves one file per message in ``$queue_directory/maildrop``
(:mod:`mailseal.queue.maildrop`) and pokes ``public/pickup``. The service here
listens on that socket, and also scans maildrop/ at start and every few
seconds (a poke may be missed; a file written while the server was down waits
for the start, as in Postfix). For each file, oldest first:

1. read it; a file that is not ours goes to ``corrupt/maildrop-NAME`` with a
   warning (never a retry loop);
2. cleanup for local submission (:mod:`.pickup_headers`): sender and recipients
   qualified with ``@$myorigin`` (append_at_myorigin), ``-t`` recipients,
   ``Received: by ... (mail_name, from userid UID)``, Bcc: removed, missing
   Message-Id:/Date:/From: added, CRLF line ends;
3. ``QueueStore.enqueue`` into incoming/ (fsynced), log
   ``pickup[N]: ID: uid=U from=<sender>`` and ``cleanup[N]: ID: message-id=<...>``;
4. only then delete the maildrop file, and wake the queue manager.

A crash between 3 and 4 leaves both copies: the message is delivered twice,
never zero times. Reads: myhostname, mail_name, myorigin, append_at_myorigin.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from mailseal.config.model import Config
from mailseal.log import format as fmt
from mailseal.log.sinks import MailLog
from mailseal.queue.envelope import Envelope, Recipient
from mailseal.queue.ids import new_queue_id
from mailseal.queue.maildrop import (
    MAILDROP,
    DroppedFile,
    Maildrop,
    MaildropError,
    socket_address,
)
from mailseal.queue.store import QueueName, QueueStore
from mailseal.services.pickup_headers import (
    LocalFacts,
    extract_recipients,
    local_cleanup,
    normalize_lines,
    parse_message,
    qualify,
    unique,
)

__all__ = ["Pickup", "PickupService", "PickupSettings"]

# Postfix's pickup wakes every 60s (master.cf); pokes make that rarely matter,
# and a few seconds keep mail moving when a poke is lost.
SCAN_INTERVAL = 5.0


@dataclass(frozen=True)
class PickupSettings:
    hostname: str
    mail_name: str
    myorigin: str
    append_at_myorigin: bool

    @classmethod
    def from_config(cls, config: Config) -> PickupSettings:
        return cls(
            hostname=config.myhostname,
            mail_name=config.mail_name,
            myorigin=config.myorigin,
            append_at_myorigin=config.append_at_myorigin,
        )


@dataclass(frozen=True)
class _Cleaned:
    """One maildrop file made ready for the queue."""

    queue_id: str  # the ID in the Received: header; enqueue uses it unless taken
    envelope: Envelope
    content: bytes
    message_id: str
    resent: bool


class Pickup:
    """The synchronous part: one scan of maildrop/ (run in a worker thread)."""

    def __init__(
        self,
        settings: PickupSettings,
        store: QueueStore,
        log: MailLog,
        numbers: Iterator[int],
        *,
        fsync: bool = True,
    ) -> None:
        self.settings = settings
        self.store = store
        self.maildrop = Maildrop(store.directory, fsync=fsync)
        self.log = log
        # One pickup and one cleanup "process", as in Postfix.
        self.number = next(numbers)
        self.cleanup_number = next(numbers)
        self._unreadable: set[str] = set()  # warned once, kept for the admin

    def warning(self, message: str) -> None:
        self.log.warning(self.log.program("pickup"), self.number, message)

    def scan(self) -> list[str]:
        """Queue every finished maildrop file; the new queue IDs, for the queue manager."""
        queued: list[str] = []
        for name in self.maildrop.list():
            queue_id = self.process(name)
            if queue_id is not None:
                queued.append(queue_id)
        with contextlib.suppress(OSError):
            self.maildrop.remove_stale_temporaries()
        return queued

    def process(self, name: str) -> str | None:
        """Queue one file and delete it; its queue ID, or None when it stays or was moved."""
        try:
            dropped = self.maildrop.read(name)
        except FileNotFoundError:
            return None  # taken by a concurrent scan
        except MaildropError as error:
            self._quarantine(name, f"malformed maildrop file: {error}")
            return None
        except OSError as error:
            if name not in self._unreadable:
                self._unreadable.add(name)
                self.warning(f"open input file {MAILDROP}/{name}: {error.strerror}")
            return None
        cleaned = self._cleanup(dropped)
        if not cleaned.envelope.recipients:
            self._quarantine(name, "no recipients specified")
            return None
        try:
            queue_id = self.store.enqueue(cleaned.envelope, cleaned.content, cleaned.queue_id)
        except OSError as error:
            self.warning(f"{MAILDROP}/{name}: queue file write error: {error}")
            return None  # stays in maildrop/ for the next scan
        self.log.info(
            self.log.program("pickup"),
            self.number,
            f"{queue_id}: uid={dropped.owner} from=<{dropped.submission.sender}>",
        )
        line = fmt.message_id(queue_id, cleaned.message_id)
        if cleaned.resent:
            line = line.replace(": message-id=", ": resent-message-id=", 1)
        self.log.info(self.log.program("cleanup"), self.cleanup_number, line)
        # The message is safely in incoming/ now. Should we crash before this
        # remove, the next scan queues it again: twice, never zero times.
        try:
            self.maildrop.remove(name)
        except OSError as error:
            self.warning(f"remove {MAILDROP}/{name}: {error.strerror}")
        return queue_id

    def _cleanup(self, dropped: DroppedFile) -> _Cleaned:
        s, sub = self.settings, dropped.submission
        message = parse_message(normalize_lines(dropped.content))
        wanted = [(r, sub.notify_of(i)) for i, r in enumerate(sub.recipients)]
        if sub.extract_recipients:
            wanted += [(r, sub.notify) for r in extract_recipients(message)]
        recipients = unique(
            [(qualify(r, s.myorigin, s.append_at_myorigin), notify) for r, notify in wanted]
        )
        sender = qualify(sub.sender, s.myorigin, s.append_at_myorigin)
        queue_id = new_queue_id()
        facts = LocalFacts(
            queue_id=queue_id,
            sender=sender,
            full_name=sub.full_name,
            uid=dropped.owner,
            hostname=s.hostname,
            mail_name=s.mail_name,
            submitted=dropped.mtime,
            now=time.time(),
        )
        content, message_id, resent = local_cleanup(message, facts)
        envelope = Envelope(
            sender=sender,
            recipients=tuple(Recipient(r, r, notify=notify) for r, notify in recipients),
            arrival_time=dropped.mtime,
            protocol="",
            envid=sub.envid,
            body=sub.body,
            message_id=message_id,
        )
        return _Cleaned(queue_id, envelope, content, message_id, resent)

    def _quarantine(self, name: str, reason: str) -> None:
        corrupt = self.store.directory / QueueName.CORRUPT
        try:
            target = self.maildrop.quarantine(name, corrupt)
        except OSError as error:
            if name not in self._unreadable:
                self._unreadable.add(name)
                self.warning(f"{MAILDROP}/{name}: {reason}; cannot move it: {error.strerror}")
            return
        self.warning(f"{MAILDROP}/{name}: {reason}; saved as {QueueName.CORRUPT}/{target.name}")


class PickupService:
    """The asynchronous part: the ``public/pickup`` socket and the periodic scan."""

    def __init__(
        self, pickup: Pickup, wake: Callable[[str], None], interval: float = SCAN_INTERVAL
    ) -> None:
        self.pickup = pickup
        self._wake = wake
        self._interval = interval
        self._poked = asyncio.Event()
        self._socket: socket.socket | None = None
        self._task: asyncio.Task[None] | None = None

    @property
    def queue_directory(self) -> Path:
        return self.pickup.store.directory

    async def start(self) -> None:
        """Create maildrop/ and public/, listen on public/pickup, and scan at once."""
        self.pickup.maildrop.create()
        try:
            self._socket = self._bind()
        except OSError as error:
            # Without the socket sendmail's mail still arrives, a scan later.
            self.pickup.warning(f"cannot listen on public/pickup: {error}")
        else:
            loop = asyncio.get_running_loop()
            loop.add_reader(self._socket.fileno(), self._readable)
        self._task = asyncio.get_running_loop().create_task(self._run())

    def _bind(self) -> socket.socket:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        try:
            sock.setblocking(False)
            with socket_address(self.queue_directory) as address:
                with contextlib.suppress(FileNotFoundError):
                    Path(address).unlink()  # left by a killed master
                sock.bind(address)
                # Any local user's sendmail may poke; a poke only makes pickup scan.
                Path(address).chmod(0o666)
        except BaseException:
            sock.close()
            raise
        return sock

    def _readable(self) -> None:
        assert self._socket is not None
        with contextlib.suppress(OSError):
            while self._socket.recv(64):
                pass
        self._poked.set()

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            self._poked.clear()
            try:
                queued = await loop.run_in_executor(None, self.pickup.scan)
            except Exception as error:  # a broken disk must not end pickup for good
                self.pickup.warning(f"maildrop scan failed: {error!r}")
                queued = []
            for queue_id in queued:
                self._wake(queue_id)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._poked.wait(), self._interval)

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if self._socket is not None:
            asyncio.get_running_loop().remove_reader(self._socket.fileno())
            self._socket.close()
            with (
                contextlib.suppress(OSError),
                socket_address(self.queue_directory) as address,
            ):
                Path(address).unlink()
