"""``mailseal postsuper -d|-h|-H|-r ID|ALL|- [queue...]``: Postfix's postsuper(1) queue operations.

- ``-d`` delete, ``-h`` put on hold, ``-H`` release from hold, ``-r`` requeue; each
  takes a queue ID, ``ALL`` (upper case, as a safety measure) or ``-`` (IDs on
  standard input, one per line), and may be given several times in one run;
- the queues named after the options restrict every operation (``postsuper -d ALL
  deferred``); the defaults are postsuper's (:mod:`mailseal.queue.admin`).

As in postsuper.c the ``ALL`` operations run first, queue by queue, each message
getting the first of delete, requeue, hold, release that applies to its queue;
then the operations by ID: delete, requeue, hold, release. The report goes to
standard error and to the mail log as ``postsuper: Deleted: 3 messages`` and
friends (singular for 1, nothing for 0); a malformed ID is
``postsuper: warning: invalid mail queue id: ID``; an ID that names no message is
skipped silently, as Postfix does. The per-message log lines (``ID: removed``...)
are written by the master when it runs, else by this command.

Over more than :data:`PROGRESS_MIN` messages, a progress bar is drawn on standard
error when it is a terminal. -p, -s and -v are accepted and do nothing: queue files
need no structure repair, and temporary files are removed at start-up.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TextIO

from mailseal.cli import context
from mailseal.cli.report import fatal
from mailseal.queue.admin import Action, default_queues, parse_queue_names
from mailseal.queue.ids import is_queue_id
from mailseal.queue.store import QueueName
from mailseal.services.queue_admin import AdminRequest
from mailseal.services.queue_admin_client import ControlError, QueueClient

__all__ = ["PROGRESS_MIN", "Progress", "register", "run", "summary_lines"]

PROGRAM = "postsuper"
PROGRESS_MIN = 100
_BATCH = 100
_BAR_WIDTH = 30
_OPTIONS = {
    Action.DELETE: "-d",
    Action.HOLD: "-h",
    Action.RELEASE: "-H",
    Action.REQUEUE: "-r",
}
# postsuper.c's order for the mass operations and for the operations by ID.
_ALL_ORDER = (Action.DELETE, Action.REQUEUE, Action.HOLD, Action.RELEASE)
_REPORT_ORDER = (
    (Action.REQUEUE, "Requeued"),
    (Action.DELETE, "Deleted"),
    (Action.HOLD, "Placed on hold"),
    (Action.RELEASE, "Released from hold"),
)
_ALL_QUEUES = (QueueName.INCOMING, QueueName.ACTIVE, QueueName.DEFERRED, QueueName.HOLD)


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the ``postsuper`` sub-command (no -h for help: -h is hold, as in Postfix)."""
    parser = commands.add_parser(
        "postsuper",
        add_help=False,
        help="delete, hold, release or requeue queued mail",
        description="Postfix's postsuper: queue maintenance by queue ID.",
    )
    for action, option in _OPTIONS.items():
        parser.add_argument(option, dest=action.value, action="append", default=[], metavar="ID")
    for flag in ("-p", "-s", "-v"):
        parser.add_argument(flag, action="count", default=0, help="accepted, does nothing")
    parser.add_argument("queues", nargs="*", metavar="queue")
    parser.set_defaults(handler=run)


def summary_lines(counts: dict[Action, int]) -> list[str]:
    """postsuper's report: one line per operation that acted on at least one message."""
    return [
        f"{label}: {counts[action]} message{'s' if counts[action] > 1 else ''}"
        for action, label in _REPORT_ORDER
        if counts.get(action, 0) > 0
    ]


@dataclass
class Progress:
    """A bar such as ``[#####     ] 512/1000`` on a terminal, for runs over many messages."""

    total: int
    stream: TextIO = field(default_factory=lambda: sys.stderr)
    done: int = 0

    @property
    def shown(self) -> bool:
        return self.total > PROGRESS_MIN and self.stream.isatty()

    def advance(self, count: int) -> None:
        self.done += count
        if self.shown:
            filled = _BAR_WIDTH * self.done // self.total
            bar = "#" * filled + " " * (_BAR_WIDTH - filled)
            # Carriage return: each update overwrites the last on the same line.
            self.stream.write(f"\r[{bar}] {self.done}/{self.total}")
            self.stream.flush()

    def finish(self) -> None:
        if self.shown and self.done:
            self.stream.write("\n")
            self.stream.flush()


def run(args: argparse.Namespace) -> int:
    """One ``postsuper`` invocation; the exit status."""
    config = context.load(args.config_dir).base
    try:
        queues = parse_queue_names(args.queues)
    except ValueError as error:
        fatal(PROGRAM, f"invalid directory name: {error}")
    named: dict[Action, list[str]] = {action: getattr(args, action.value) for action in Action}
    mass = [action for action in _ALL_ORDER if "ALL" in named[action]]
    for action in mass:
        if any(item != "ALL" for item in named[action]):
            _warn(f'option "{_OPTIONS[action]} ALL" will ignore other command line queue IDs')
    # postsuper.c narrows the default queues only when one mass operation is all there is.
    alone = len(mass) == 1 and not any(named[a] for a in Action if a not in mass)
    client = QueueClient(config)
    try:
        batches = _mass_batches(client, mass, queues, alone=alone)
        batches += _named_batches(named, mass, queues)
        counts = _carry_out(client, batches)
        _report(client, counts)
    except ControlError as error:
        fatal(PROGRAM, str(error))
    finally:
        client.close()
    return 0


def _mass_batches(
    client: QueueClient,
    mass: Sequence[Action],
    queues: tuple[QueueName, ...],
    *,
    alone: bool,
) -> list[AdminRequest]:
    """The ``ALL`` operations as batches of IDs, each message to its first applicable one."""
    if not mass:
        return []
    if not queues:
        queues = _applies(mass[0]) if alone else _ALL_QUEUES
    groups: dict[tuple[Action, QueueName], list[str]] = {}
    for queue_id, queue in client.ids(queues):
        action = next((a for a in mass if queue in _applies(a)), None)
        if action is not None:
            groups.setdefault((action, queue), []).append(queue_id)
    return [
        AdminRequest(action, tuple(chunk), (queue,), log_each=False)
        for (action, queue), ids in groups.items()
        for chunk in _chunks(ids)
    ]


def _named_batches(
    named: dict[Action, list[str]], mass: Sequence[Action], queues: tuple[QueueName, ...]
) -> list[AdminRequest]:
    """The operations by ID, in postsuper's order, after warning about malformed IDs."""
    stdin_read = False
    batches: list[AdminRequest] = []
    for action in _ALL_ORDER:
        if action in mass:
            continue
        ids: list[str] = []
        for item in named[action]:
            if item != "-":
                ids.append(item)
            elif not stdin_read:  # a second "-" finds standard input at its end
                ids += _stdin_ids()
                stdin_read = True
        valid = []
        for queue_id in ids:
            if is_queue_id(queue_id):
                valid.append(queue_id)
            else:
                _warn(f"invalid mail queue id: {queue_id}")
        restrict = queues or default_queues(action)
        batches += [AdminRequest(action, tuple(c), restrict) for c in _chunks(valid)]
    return batches


def _applies(action: Action) -> tuple[QueueName, ...]:
    if action is Action.HOLD:
        return (QueueName.INCOMING, QueueName.ACTIVE, QueueName.DEFERRED)
    if action is Action.RELEASE:
        return (QueueName.HOLD,)
    return _ALL_QUEUES


def _chunks(ids: list[str]) -> list[list[str]]:
    return [ids[start : start + _BATCH] for start in range(0, len(ids), _BATCH)]


def _stdin_ids() -> list[str]:
    return [line.removesuffix("\n") for line in sys.stdin]


def _carry_out(client: QueueClient, batches: list[AdminRequest]) -> dict[Action, int]:
    counts = dict.fromkeys(Action, 0)
    progress = Progress(sum(len(batch.queue_ids) for batch in batches))
    try:
        for batch in batches:
            counts[batch.action] += client.apply(batch)
            progress.advance(len(batch.queue_ids))
    finally:
        progress.finish()
    return counts


def _report(client: QueueClient, counts: dict[Action, int]) -> None:
    log = client.maillog()
    for line in summary_lines(counts):
        print(f"{PROGRAM}: {line}", file=sys.stderr)
        if log is not None:
            log.info(log.program(PROGRAM), client.number, line)


def _warn(text: str) -> None:
    print(f"{PROGRAM}: warning: {text}", file=sys.stderr)
