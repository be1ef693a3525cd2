"""The maildrop directory: where ``mailseal sendmail`` leaves mail for the pickup service.

Postfix's sendmail(1) hands a message to postdrop(1), which writes one file into
``$queue_directory/maildrop/`` and then wakes pickup(8) through the
``public/pickup`` socket; when nothing listens, the file simply waits there
until the mail system starts. mailseal does the same, without a set-gid helper:

* a maildrop file is written under a temporary name (``tmp-...``), fsynced,
  linked to its final name (a queue-ID-shaped name that never replaces a file)
  and the directory is fsynced: once :meth:`Maildrop.write` returns, the
  message survives a crash, so sendmail may exit 0;
* its format is mailseal's own: a magic line, one line of envelope JSON
  (:class:`Submission`), then the message content as sendmail read it;
* :func:`poke` sends a one-byte datagram to the unix socket ``public/pickup``.
  Socket paths are limited to 108 bytes (``sun_path``); a long queue directory
  is reached through ``/proc/self/fd/N/``, a directory file descriptor.

Reads: queue_directory (the caller passes it).
"""

from __future__ import annotations

import builtins
import contextlib
import errno
import json
import os
import socket
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from mailseal.queue.fsio import fsync_directory, write_new_file
from mailseal.queue.ids import is_queue_id, new_queue_id, sort_oldest_first

__all__ = [
    "MAILDROP",
    "PICKUP_SOCKET",
    "PUBLIC",
    "DroppedFile",
    "Maildrop",
    "MaildropError",
    "Submission",
    "decode",
    "encode",
    "poke",
    "socket_address",
]

MAILDROP = "maildrop"
PUBLIC = "public"
PICKUP_SOCKET = "pickup"
_MAGIC = b"mailseal-maildrop 1\n"
_TEMP_PREFIX = "tmp-"
_NAME_ATTEMPTS = 100
# sun_path is 108 bytes on Linux, including the terminating NUL.
_SUN_PATH_MAX = 107
# A temporary file this old belongs to a sendmail that died: nothing will finish it.
_STALE_TEMP_SECONDS = 24 * 3600


class MaildropError(ValueError):
    """A maildrop file that is not in our format (or is damaged)."""


@dataclass(frozen=True)
class Submission:
    """What sendmail tells pickup besides the content (Postfix's postdrop records).

    ``sender`` and ``recipients`` are as given (not yet qualified with
    ``@$myorigin``: cleanup's job); ``extract_recipients`` is ``-t``;
    ``full_name`` is ``-F`` (or ``$NAME``); ``notify`` is ``-N`` in RFC 3461
    NOTIFY form (``SUCCESS,DELAY``, ``NEVER``, "" = default); ``envid`` is
    ``-V`` (xtext), ``body`` is ``-B`` (``7BIT``/``8BITMIME``); ``uid`` is the
    submitting user's (pickup trusts the file's owner instead).
    ``recipient_notify``, when not empty, is a NOTIFY value per recipient
    (``sendmail -bs``, where RCPT TO carries its own) and replaces ``notify``.
    """

    uid: int
    sender: str
    recipients: tuple[str, ...]
    extract_recipients: bool = False
    full_name: str = ""
    notify: str = ""
    envid: str = ""
    body: str = ""
    submitted: float = 0.0
    recipient_notify: tuple[str, ...] = ()

    def notify_of(self, index: int) -> str:
        """The NOTIFY value of recipient ``index``."""
        if self.recipient_notify:
            return self.recipient_notify[index]
        return self.notify


def encode(submission: Submission, content: bytes) -> bytes:
    """The whole file: magic line, envelope JSON line (with the content length), content."""
    record = asdict(submission)
    record["recipients"] = list(submission.recipients)
    record["recipient_notify"] = list(submission.recipient_notify)
    record["content_length"] = len(content)
    line = json.dumps(record, ensure_ascii=True, separators=(",", ":")).encode("ascii")
    return _MAGIC + line + b"\n" + content


def decode(data: bytes) -> tuple[Submission, bytes]:
    """Parse :func:`encode` output; :class:`MaildropError` says what is wrong."""
    if not data.startswith(_MAGIC):
        raise MaildropError("not a mailseal maildrop file")
    end = data.find(b"\n", len(_MAGIC))
    if end < 0:
        raise MaildropError("no envelope line")
    try:
        record = json.loads(data[len(_MAGIC) : end])
    except ValueError as error:
        raise MaildropError(f"bad envelope: {error}") from None
    if not isinstance(record, dict):
        raise MaildropError("bad envelope: not an object")
    content = data[end + 1 :]
    if record.pop("content_length", None) != len(content):
        raise MaildropError("content length mismatch (truncated file)")
    return _submission(record), content


def _strings(record: dict[str, Any], name: str) -> tuple[str, ...]:
    value = record.get(name, [])
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise MaildropError(f"bad envelope: {name}")
    return tuple(value)


def _submission(record: dict[str, Any]) -> Submission:
    record["recipients"] = _strings(record, "recipients")
    record["recipient_notify"] = _strings(record, "recipient_notify")
    if record["recipient_notify"] and len(record["recipient_notify"]) != len(record["recipients"]):
        raise MaildropError("bad envelope: recipient_notify")
    expected = {
        "uid": int,
        "sender": str,
        "extract_recipients": bool,
        "full_name": str,
        "notify": str,
        "envid": str,
        "body": str,
        "submitted": float,
    }
    unknown = set(record) - set(expected) - {"recipients", "recipient_notify"}
    if unknown:
        raise MaildropError(f"bad envelope: unknown fields {', '.join(sorted(unknown))}")
    for name, kind in expected.items():
        value = record.get(name)
        if kind is float and isinstance(value, int) and not isinstance(value, bool):
            record[name] = value = float(value)
        if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
            raise MaildropError(f"bad envelope: {name}")
    return Submission(**record)


@dataclass(frozen=True)
class DroppedFile:
    """One maildrop file as pickup reads it; ``owner`` is the file's uid (trusted)."""

    name: str
    submission: Submission
    content: bytes = field(repr=False)
    owner: int
    mtime: float


class Maildrop:
    """``$queue_directory/maildrop``: write (sendmail), list, read and remove (pickup)."""

    def __init__(self, queue_directory: Path, *, fsync: bool = True) -> None:
        self.queue_directory = Path(queue_directory)
        self.directory = self.queue_directory / MAILDROP
        self._fsync = fsync

    def create(self) -> None:
        """Make maildrop/ and public/ inside an existing queue directory.

        maildrop/ is 1733 (sticky, writable by every local user, not listable),
        public/ 0755: any user's sendmail may drop a file and poke pickup.
        """
        for name, mode in ((MAILDROP, 0o1733), (PUBLIC, 0o755)):
            path = self.queue_directory / name
            with contextlib.suppress(FileExistsError):
                path.mkdir()
                path.chmod(mode)  # mkdir's mode is cut by the umask

    def write(self, submission: Submission, content: bytes) -> str:
        """Store one message durably; return its file name. Raises OSError."""
        data = encode(submission, content)
        for _ in range(_NAME_ATTEMPTS):
            name = new_queue_id()
            temp = self.directory / f"{_TEMP_PREFIX}{name}"
            if not write_new_file(temp, (data,), sync=self._fsync):
                continue
            try:
                name = self._publish(temp, name)
            except BaseException:
                temp.unlink(missing_ok=True)
                raise
            if self._fsync:
                self._sync_name()
            return name
        raise FileExistsError(errno.EEXIST, "no free file name", str(self.directory))

    def _sync_name(self) -> None:
        try:
            fsync_directory(self.directory)
        except PermissionError:
            # A user who is not the owner cannot open maildrop/ (mode 1733: no
            # read bit) to fsync it; the file itself is synced, which is all
            # Postfix's postdrop does too.
            return

    def _publish(self, temp: Path, name: str) -> str:
        for _ in range(_NAME_ATTEMPTS):
            try:
                os.link(temp, self.directory / name)  # never replaces a file, unlike rename
            except FileExistsError:
                name = new_queue_id()
                continue
            temp.unlink()
            return name
        raise FileExistsError(errno.EEXIST, "no free file name", str(self.directory))

    def list(self) -> list[str]:
        """Finished files, oldest first (temporary files are still being written)."""
        with os.scandir(self.directory) as entries:
            names = [e.name for e in entries if is_queue_id(e.name)]
        return sort_oldest_first(names)

    def read(self, name: str) -> DroppedFile:
        """Read one file; :class:`MaildropError` when it is not ours, OSError when unreadable."""
        fd = os.open(self._path(name), os.O_RDONLY | os.O_CLOEXEC | os.O_NOFOLLOW)
        with os.fdopen(fd, "rb") as handle:
            stat = os.fstat(handle.fileno())
            data = handle.read()
        submission, content = decode(data)
        return DroppedFile(name, submission, content, stat.st_uid, stat.st_mtime)

    def remove(self, name: str) -> None:
        """Delete a file that is safely in the queue; durable when this returns."""
        self._path(name).unlink(missing_ok=True)
        if self._fsync:
            fsync_directory(self.directory)

    def quarantine(self, name: str, corrupt: Path) -> Path:
        """Move a bad file out of the way (to ``corrupt/maildrop-NAME``) and return where."""
        target = corrupt / f"maildrop-{name}"
        self._path(name).rename(target)
        return target

    def remove_stale_temporaries(self, now: float | None = None) -> builtins.list[str]:
        """Delete ``tmp-`` files older than a day: their sendmail died before finishing."""
        limit = (time.time() if now is None else now) - _STALE_TEMP_SECONDS
        removed: list[str] = []
        with os.scandir(self.directory) as entries:
            for entry in entries:
                if entry.name.startswith(_TEMP_PREFIX) and entry.stat().st_mtime < limit:
                    Path(entry.path).unlink(missing_ok=True)
                    removed.append(entry.name)
        return removed

    def _path(self, name: str) -> Path:
        if not is_queue_id(name):
            raise ValueError(f"not a maildrop file name: {name!r}")
        return self.directory / name


@contextmanager
def socket_address(queue_directory: Path) -> Iterator[str]:
    """A path for ``public/pickup`` that fits ``sun_path``, valid inside the block.

    A short path is used as it is; a long one goes through ``/proc/self/fd/N``
    of an open descriptor of public/, which the kernel resolves like the
    directory itself (Linux). Changing directory would be process-wide.
    """
    public = Path(queue_directory) / PUBLIC
    direct = str(public / PICKUP_SOCKET)
    if len(os.fsencode(direct)) <= _SUN_PATH_MAX:
        yield direct
        return
    fd = os.open(public, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        yield f"/proc/self/fd/{fd}/{PICKUP_SOCKET}"
    finally:
        os.close(fd)


def poke(queue_directory: Path) -> bool:
    """Wake pickup (a datagram to ``public/pickup``); False when nothing listens.

    Not being heard is no error: the file waits in maildrop/ for pickup's next
    scan or the next start, as with Postfix.
    """
    try:
        with (
            socket_address(queue_directory) as address,
            socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock,
        ):
            sock.setblocking(False)
            sock.sendto(b"W", address)
    except OSError:
        return False
    return True
