"""pickup(8)'s composition root: the master's companion that queues mail from maildrop/.

Postfix runs pickup as a master.cf service of its own; mailseal runs it inside
the master (see :mod:`mailseal.daemons.companions`), always, since local
submission (``mailseal sendmail``) must work whatever master.cf says. The work
is :mod:`mailseal.services.pickup`; this module builds it from the running
state and hands it a new configuration on reload.

Reads: queue_directory (through the master's queue store), myhostname,
mail_name, myorigin, append_at_myorigin.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from mailseal.config.loader import LoadedConfig
from mailseal.services.pickup import Pickup, PickupService, PickupSettings

if TYPE_CHECKING:
    from mailseal.daemons.companions import Companion, MasterContext

__all__ = ["PickupCompanion", "companion"]


class PickupCompanion:
    """Starts and stops the pickup service; passes reloads on."""

    observes_log = False

    def __init__(self, context: MasterContext) -> None:
        settings = PickupSettings.from_config(context.config.base)
        self.pickup = Pickup(settings, context.store, context.log, context.numbers)
        self.service = PickupService(self.pickup, context.qmgr.wake)

    async def start(self) -> None:
        await self.service.start()

    def reload(self, config: LoadedConfig) -> None:
        # Read by the next scan; a scan in progress finishes with what it had.
        self.pickup.settings = PickupSettings.from_config(config.base)

    async def stop(self) -> None:
        await self.service.stop()


def companion(context: MasterContext) -> Companion | None:
    """Always built: mail dropped by sendmail must reach the queue."""
    return PickupCompanion(context)
