"""The queue tools' side: ask the running master, or do the same work on the files.

``mailseal postqueue`` and ``mailseal postsuper`` use one :class:`QueueClient`.
Each call first tries the control socket (``$queue_directory/private/control``);
when nobody listens there (no socket file, or connection refused: the mail system
is down) the client performs the very same operation on the queue files itself,
and :attr:`QueueClient.down` says why the socket did not answer. Flushing needs
a queue manager, so :meth:`QueueClient.flush` and :meth:`QueueClient.flush_site`
only report that the system is down, as Postfix's postqueue does.

Reads: queue_directory, maillog_file, syslog_name, myhostname (for the log lines
postsuper writes itself when the master is not running).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from mailseal.config.model import Config
from mailseal.log.sinks import MailLog, open_sink
from mailseal.net.control import ControlError, ControlUnavailable, request
from mailseal.queue import admin
from mailseal.queue.store import QueueName, QueueStore
from mailseal.services.queue_admin import AdminRequest, QueueAdmin
from mailseal.services.showq import QueueEntry, entry_from_json, scan_queue

__all__ = ["ControlError", "QueueClient", "control_socket_path"]


def control_socket_path(queue_directory: str) -> Path:
    """Where the master's control socket lives (``private/``, as Postfix's private services)."""
    return Path(queue_directory) / "private" / "control"


class QueueClient:
    """One tool run's view of the queue; :meth:`close` it at the end."""

    def __init__(self, config: Config) -> None:
        self.config = config
        self.store = QueueStore(Path(config.queue_directory))
        self.socket = control_socket_path(config.queue_directory)
        self.number = os.getpid()
        self.down: str | None = None  # why the master did not answer, once it did not
        self._log: MailLog | None = None

    def _ask(self, message: dict[str, Any]) -> dict[str, Any] | None:
        """The master's reply, or None when it does not run (ControlError on a bad reply)."""
        try:
            reply: dict[str, Any] = request(self.socket, message)
        except ControlUnavailable as error:
            self.down = error.strerror or "mail system is down"
            return None
        self.down = None
        return reply

    def entries(self) -> list[QueueEntry]:
        """The queue as showq sees it."""
        reply = self._ask({"command": "list"})
        if reply is None:
            return scan_queue(self.store)
        raw = reply.get("entries")
        if not isinstance(raw, list):
            raise ControlError("malformed reply from the control socket")
        try:
            return [entry_from_json(item) for item in raw]
        except ValueError as error:
            raise ControlError(str(error)) from None

    def ids(self, queues: tuple[QueueName, ...]) -> list[tuple[str, QueueName]]:
        """Every message in ``queues`` (what ``ALL`` stands for), queue by queue."""
        reply = self._ask({"command": "ids", "queues": [q.value for q in queues]})
        if reply is None:
            return admin.list_ids(self.store, queues)
        try:
            return [(str(queue_id), QueueName(queue)) for queue_id, queue in reply["ids"]]
        except (KeyError, TypeError, ValueError):
            raise ControlError("malformed reply from the control socket") from None

    def flush(self) -> bool:
        """Ask for every deferred message now (postqueue -f); False when the system is down."""
        return self._ask({"command": "flush"}) is not None

    def flush_site(self, site: str) -> bool:
        """Ask for the deferred mail of ``site`` now (postqueue -s); False when down."""
        return self._ask({"command": "flush_site", "site": site}) is not None

    def apply(self, request: AdminRequest) -> int:
        """Carry out a postsuper request; the number of messages acted on."""
        reply = self._ask(
            {
                "command": "admin",
                "action": request.action.value,
                "ids": list(request.queue_ids),
                "queues": [q.value for q in request.queues],
                "log_each": request.log_each,
            }
        )
        if reply is None:
            return QueueAdmin(self.store, self.maillog()).run(request, self.number)
        count = reply.get("count")
        if isinstance(count, bool) or not isinstance(count, int):
            raise ControlError("malformed reply from the control socket")
        return count

    def maillog(self) -> MailLog | None:
        """The mail log, for lines the tool writes itself; None if it cannot be opened."""
        if self._log is None:
            try:
                sink = open_sink(self.config.maillog_file, self.config.myhostname)
            except OSError:
                return None
            self._log = MailLog(sink, self.config.syslog_name)
        return self._log

    def close(self) -> None:
        if self._log is not None:
            self._log.close()
            self._log = None
