"""The control companion of the master: the socket the queue tools talk to.

Listens on ``$queue_directory/private/control`` (:func:`control_socket_path`)
while the master runs, so that ``mailseal postqueue`` and ``mailseal postsuper``
act through the running queue manager (Postfix's showq service and qmgr
trigger, in one socket). Requests are answered by
:class:`mailseal.services.queue_admin_commands.ControlCommands`. ``stop()``
closes the socket and removes its file, so a tool run after the stop works on
the queue files directly. Reads: queue_directory.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from mailseal.config.loader import LoadedConfig
from mailseal.net.control import ControlServer
from mailseal.services.queue_admin_client import control_socket_path
from mailseal.services.queue_admin_commands import ControlCommands

if TYPE_CHECKING:
    from mailseal.daemons.companions import Companion, MasterContext

__all__ = ["ControlCompanion", "companion"]


class ControlCompanion:
    """Serves the control socket for the lifetime of the master."""

    observes_log = False

    def __init__(self, context: MasterContext) -> None:
        self._context = context
        self._commands = ControlCommands(context.store, context.log, context.qmgr)
        path = control_socket_path(context.config.base.queue_directory)
        self._server = ControlServer(path, self._commands.handle)

    async def start(self) -> None:
        await self._server.start()

    def reload(self, config: LoadedConfig) -> None:
        # queue_directory cannot change under a running master (Postfix requires a
        # restart too); nothing else here reads the configuration.
        return

    async def stop(self) -> None:
        await self._server.close()


def companion(context: MasterContext) -> Companion | None:
    """Always built: the queue tools need it whenever the master runs."""
    return ControlCompanion(context)
