"""Services that run in the master process beside smtpd and the queue manager.

Postfix's master runs pickup, showq, the queue manager's control fifo and
friends as their own programs; mailseal runs them as *companions* of the one
master process: each is built from the running state (:class:`MasterContext`),
started after the listeners, told about reloads, and stopped before the queue
manager (the log observers after it). A companion that its configuration turns off
is simply not built.

- :mod:`.control`: the local control socket the queue tools talk to;
- :mod:`.pickup`: mail dropped by ``mailseal sendmail`` into maildrop/;
- :mod:`.metrics`: the Prometheus listener (``metrics_listen_address``);
- :mod:`.json_log`: the JSON log sink (``maillog_json_file``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Protocol

from mailseal.config.loader import LoadedConfig
from mailseal.log.sinks import MailLog
from mailseal.queue.store import QueueStore
from mailseal.services.qmgr import QueueManager

__all__ = ["Companion", "MasterContext", "build_companions"]


@dataclass(frozen=True)
class MasterContext:
    """What a companion may use of the running master."""

    config: LoadedConfig
    store: QueueStore
    log: MailLog
    numbers: Iterator[int]
    qmgr: QueueManager
    number: int  # the master's pid, for its own log lines
    reload: Callable[[], None]  # what SIGHUP does, for a control command


class Companion(Protocol):
    # A log observer (JSON log, metrics) stops after the queue manager, so that the
    # lines of deliveries finishing during shutdown reach it; the others stop before.
    observes_log: bool

    async def start(self) -> None:
        """Begin serving (called on the event loop once the listeners are up)."""

    def reload(self, config: LoadedConfig) -> None:
        """Use a freshly loaded configuration from now on."""

    async def stop(self) -> None:
        """Stop serving: before the queue manager stops, or after it for log observers."""


def build_companions(context: MasterContext) -> list[Companion]:
    """The companions this configuration asks for, in start order."""
    # Imported here: each module is a composition root of its own, and the
    # master must not depend on the ones a configuration leaves off.
    from mailseal.daemons import control, json_log, metrics, pickup

    factories = (json_log.companion, metrics.companion, control.companion, pickup.companion)
    built = (factory(context) for factory in factories)
    return [c for c in built if c is not None]
