"""Group commit for Maildir deliveries: many messages made durable by one sync.

A delivery on its own costs two fsyncs (the file, then new/). The queue manager's
local lane writes a batch of messages to their tmp/ directories first, then makes
them durable together: one syncfs(2) per file system for the files, then every
file is linked into new/ and each new/ directory is fsynced once. As for one
delivery, nothing reaches new/ before its content is on disk, and a delivery is
reported only after its new/ entry is.

When syncfs fails (or does not exist) every file is fsynced on its own, so an
error lands on the message it belongs to.
"""

from __future__ import annotations

import os
from collections.abc import Callable

from mailseal.delivery.maildir import MaildirDelivery, MaildirError, StagedMessage
from mailseal.queue.fsio import can_sync_filesystem, sync_descriptor

__all__ = ["MaildirBatch", "MaildirResult"]

# What the caller learns about each message: where it landed, or why it did not.
MaildirResult = MaildirDelivery | MaildirError


class MaildirBatch:
    """Staged Maildir messages waiting to be made durable together."""

    def __init__(self) -> None:
        self._staged: list[tuple[StagedMessage, Callable[[MaildirResult], None]]] = []
        # Since the start, for the log: how many messages shared how many commits.
        self.committed = 0
        self.commits = 0

    def __len__(self) -> int:
        return len(self._staged)

    def add(self, staged: StagedMessage, done: Callable[[MaildirResult], None]) -> None:
        """Take ``staged``; ``done`` gets its result when :meth:`commit` has run."""
        self._staged.append((staged, done))

    def commit(self) -> None:
        """Sync, link into new/, sync new/, then report every message (and start afresh)."""
        staged, self._staged = self._staged, []
        if not staged:
            return
        self.committed += len(staged)
        self.commits += 1
        results: dict[int, MaildirResult] = {}
        try:
            self._sync_files(staged, results)
            directories: dict[str, list[int]] = {}
            for index, (message, _) in enumerate(staged):
                if index in results:
                    continue
                try:
                    results[index] = message.publish()
                except MaildirError as error:
                    results[index] = error
                    continue
                directories.setdefault(os.fspath(message.maildir), []).append(index)
            for members in directories.values():
                try:
                    staged[members[0]][0].sync_new()
                except MaildirError as error:
                    # Linked but perhaps not durable: deferred, delivered again later.
                    results.update(dict.fromkeys(members, error))
        finally:
            for message, _ in staged:
                message.finish()
        for index, (_, done) in enumerate(staged):
            done(results[index])

    @staticmethod
    def _sync_files(
        staged: list[tuple[StagedMessage, Callable[[MaildirResult], None]]],
        results: dict[int, MaildirResult],
    ) -> None:
        """Make every file durable; a failed file gets its error in ``results``."""
        if len(staged) > 1 and can_sync_filesystem():
            devices = {os.fstat(message.fd).st_dev: message.fd for message, _ in staged}
            try:
                for fd in devices.values():
                    sync_descriptor(fd)
            except OSError:
                pass  # find out which file failed, one fsync at a time
            else:
                return
        for index, (message, _) in enumerate(staged):
            try:
                message.sync()
            except MaildirError as error:
                results[index] = error
