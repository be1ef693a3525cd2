"""The requests of the control socket and their answers (what showq and postsuper ask the master).

Each request is a JSON object with a ``command``; each answer has ``"ok"`` and,
on success, the command's result:

- ``{"command": "list"}`` -> ``{"ok": true, "entries": [postqueue -j objects]}``
- ``{"command": "ids", "queues": [...]}`` -> ``{"ok": true, "ids": [[id, queue], ...]}``
- ``{"command": "flush"}`` -> ``{"ok": true}`` (postqueue -f)
- ``{"command": "flush_site", "site": "example.com"}`` -> ``{"ok": true, "count": n}``
- ``{"command": "admin", "action": "delete|hold|release|requeue", "ids": [...],
  "queues": [...], "log_each": bool}`` -> ``{"ok": true, "count": n}`` (postsuper)

Anything else gets ``{"ok": false, "error": "..."}``; a request never raises.
The postsuper log lines carry the PID of the client (``SO_PEERCRED``), as the
lines Postfix's postsuper writes itself do.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

from mailseal.log.sinks import MailLog
from mailseal.net.control import ControlPeer
from mailseal.queue import admin
from mailseal.queue.admin import MESSAGE_QUEUES, Action
from mailseal.queue.store import QueueName, QueueStore
from mailseal.services.qmgr import QueueManager
from mailseal.services.queue_admin import AdminRequest, QueueAdmin, due_for_site
from mailseal.services.showq import scan_queue

__all__ = ["ControlCommands", "RequestError"]

# Host names are at most 255 octets (RFC 1035); a site longer than that is no site.
_MAX_SITE = 255


class RequestError(ValueError):
    """A request that cannot be carried out; the text goes back to the client."""


class ControlCommands:
    """Answers control-socket requests with the store, the log and the queue manager."""

    def __init__(self, store: QueueStore, log: MailLog, qmgr: QueueManager) -> None:
        self.store = store
        self.log = log
        self.qmgr = qmgr
        self.admin = QueueAdmin(store, log)
        self._commands: dict[str, Callable[[dict[str, Any], ControlPeer], Awaitable[Any]]] = {
            "list": self._list,
            "ids": self._ids,
            "flush": self._flush,
            "flush_site": self._flush_site,
            "admin": self._admin,
        }

    async def handle(self, message: dict[str, Any], peer: ControlPeer) -> dict[str, Any]:
        """One request -> one answer; errors are answers too."""
        command = message.get("command")
        handler = self._commands.get(command) if isinstance(command, str) else None
        if handler is None:
            return {"ok": False, "error": f"unknown command: {command!r}"}
        try:
            result: dict[str, Any] = await handler(message, peer)
        except RequestError as error:
            return {"ok": False, "error": str(error)}
        except OSError as error:
            return {"ok": False, "error": f"queue directory: {error}"}
        return {"ok": True, **result}

    async def _list(self, message: dict[str, Any], peer: ControlPeer) -> dict[str, Any]:
        entries = await asyncio.get_running_loop().run_in_executor(None, scan_queue, self.store)
        return {"entries": [entry.to_json() for entry in entries]}

    async def _ids(self, message: dict[str, Any], peer: ControlPeer) -> dict[str, Any]:
        queues = _queues(message, MESSAGE_QUEUES)
        loop = asyncio.get_running_loop()
        found = await loop.run_in_executor(None, admin.list_ids, self.store, queues)
        return {"ids": [[queue_id, queue.value] for queue_id, queue in found]}

    async def _flush(self, message: dict[str, Any], peer: ControlPeer) -> dict[str, Any]:
        self.qmgr.flush()
        return {}

    async def _flush_site(self, message: dict[str, Any], peer: ControlPeer) -> dict[str, Any]:
        site = message.get("site")
        if not isinstance(site, str) or not site or len(site) > _MAX_SITE:
            raise RequestError("flush_site needs a site")
        loop = asyncio.get_running_loop()
        due = await loop.run_in_executor(None, due_for_site, self.store, site)
        for queue_id in due:
            self.qmgr.kick(queue_id, QueueName.DEFERRED)
        return {"count": len(due)}

    async def _admin(self, message: dict[str, Any], peer: ControlPeer) -> dict[str, Any]:
        try:
            action = Action(str(message.get("action")))
        except ValueError:
            raise RequestError(f"unknown action: {message.get('action')!r}") from None
        ids = message.get("ids")
        if not isinstance(ids, list) or not all(isinstance(i, str) for i in ids):
            raise RequestError("admin needs a list of queue IDs")
        log_each = message.get("log_each", True)
        if not isinstance(log_each, bool):
            raise RequestError("log_each must be true or false")
        try:
            request = AdminRequest(
                action, tuple(ids), _queues(message, admin.default_queues(action)), log_each
            )
        except ValueError as error:
            raise RequestError(str(error)) from None
        count = await self.admin.run_live(request, peer.pid, self.qmgr)
        return {"count": count}


def _queues(message: dict[str, Any], default: tuple[QueueName, ...]) -> tuple[QueueName, ...]:
    names = message.get("queues")
    if names is None or names == []:
        return default
    if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
        raise RequestError("queues must be a list of queue names")
    try:
        return admin.parse_queue_names(names)
    except ValueError as error:
        raise RequestError(f"invalid directory name: {error}") from None
