r"""Delivery into a Maildir (local(8) ``home_mailbox = Maildir/``, virtual(8) mailboxes).

The file is written in tmp/ under a unique name, fsynced, linked into new/, removed
from tmp/, and both directories are fsynced (Maildir: cr.yp.to/proto/maildir.html;
the size field is Maildir++'s ``,S=<bytes>``). Names look like
``<sec>.M<usec>P<pid>Q<count>.<host>,S=<size>``, with "/", ":" and "," in the host
name written as ``\057``, ``\072`` and ``\054``. Lines end in LF, as Postfix writes
mailbox files, and a last line without one gets one (``mail_copy.c``).

When running as root with a recipient uid/gid, every directory created is chowned to
them and so is the file. Postfix writes as the recipient instead (``set_eugid``), which
a threaded daemon cannot do; in its place the maildir and its tmp/ and new/ must be
owned by that uid, and tmp/ and new/ are never followed as symlinks, so a user cannot
steer root's writes elsewhere.

Errors carry Postfix's texts ("create maildir file PATH: ERROR", "error writing
message: ERROR", "link to PATH: ERROR") and its DSN mapping of errno (``mbox_dsn``):
the queue manager defers a temporary error and bounces a permanent one, with
"maildir delivery failed: " before the reason.
"""

from __future__ import annotations

import contextlib
import errno
import itertools
import os
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from mailseal.queue.body import BodyReadError, MessageBody
from mailseal.queue.fsio import write_all

__all__ = [
    "MaildirDelivery",
    "MaildirError",
    "StagedMessage",
    "complete_alone",
    "deliver_to_maildir",
    "maildir_filename",
    "stage_in_maildir",
]

_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC
_FILE_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
_NAME_ATTEMPTS = 100
_HOST_ESCAPES = str.maketrans({"/": "\\057", ":": "\\072", ",": "\\054"})
# Deliveries made by this process: the Q part of the name (Maildir spec "Qn").
_deliveries = itertools.count(1)


class MaildirError(Exception):
    """A Maildir delivery failed; ``temporary`` says whether to defer or to bounce."""

    def __init__(self, reason: str, temporary: bool, dsn: str | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.temporary = temporary
        self.dsn = dsn or ("4.2.0" if temporary else "5.2.0")

    @property
    def text(self) -> str:
        """The reason as Postfix logs and reports it."""
        return f"maildir delivery failed: {self.reason}"


@dataclass(frozen=True)
class MaildirDelivery:
    """Where the message landed (in new/) and the size of the file in bytes."""

    path: Path
    size: int


def dsn_for_errno(err: int, default: str) -> str:
    """Postfix's ``mbox_dsn``: which DSN code a system error gives a mailbox delivery."""
    if err in (errno.EAGAIN, errno.ESTALE):
        return "4.2.0"
    if err == errno.ENOSPC:
        return "4.3.0"
    if err in (errno.EDQUOT, errno.EFBIG):
        return "5.2.2"
    # Ours: a path that cannot be a maildir does not heal by waiting; Postfix defers it.
    if err in (errno.ENOTDIR, errno.ELOOP, errno.ENAMETOOLONG, errno.EISDIR):
        return "5.2.0"
    return default


def _error(what: str, exc: OSError, default: str) -> MaildirError:
    code = exc.errno or 0
    dsn = dsn_for_errno(code, default)
    return MaildirError(f"{what}: {os.strerror(code)}", dsn.startswith("4"), dsn)


def maildir_filename(hostname: str, size: int | None, now_ns: int | None = None) -> str:
    """A unique Maildir++ file name for a message of ``size`` bytes (None: not known yet)."""
    ns = time.time_ns() if now_ns is None else now_ns
    sec, usec = divmod(ns // 1000, 1_000_000)
    host = hostname.translate(_HOST_ESCAPES)
    name = f"{sec}.M{usec}P{os.getpid()}Q{next(_deliveries)}.{host}"
    return name if size is None else f"{name},S={size}"


def _lf_pieces(pieces: Iterable[bytes]) -> Iterator[bytes]:
    """CRLF -> LF over a stream of pieces, ending the last line; a CR split off waits."""
    carry = b""
    last = b""
    for piece in pieces:
        data = carry + piece if carry else piece
        carry = b"\r" if data.endswith(b"\r") else b""
        data = (data[:-1] if carry else data).replace(b"\r\n", b"\n")
        if data:
            last = data
            yield data
    if carry:
        last = carry
        yield carry
    if last and not last.endswith(b"\n"):
        yield b"\n"


def _owner(uid: int | None, gid: int | None) -> tuple[int, int] | None:
    if (uid is None and gid is None) or os.geteuid() != 0:
        return None
    return (-1 if uid is None else uid, -1 if gid is None else gid)


def _make_dirs(path: Path, owner: tuple[int, int] | None) -> None:
    """Create ``path`` and missing parents, mode 0700, owned by the recipient."""
    missing: list[Path] = []
    while not path.is_dir() and path != path.parent:
        missing.append(path)
        path = path.parent
    for directory in reversed(missing):
        with contextlib.suppress(FileExistsError):
            directory.mkdir(mode=0o700)
            if owner is not None:
                os.chown(directory, *owner, follow_symlinks=False)


def _open_dir(root_fd: int, name: str) -> int:
    return os.open(name, _DIR_FLAGS | os.O_NOFOLLOW, dir_fd=root_fd)


def _open_subdir(root_fd: int, name: str, owner: tuple[int, int] | None) -> int:
    with contextlib.suppress(FileExistsError):
        os.mkdir(name, 0o700, dir_fd=root_fd)
        if owner is not None:
            os.chown(name, *owner, dir_fd=root_fd, follow_symlinks=False)
    return _open_dir(root_fd, name)


def _check_owner(fds: list[int], maildir: Path, owner: tuple[int, int] | None) -> None:
    if owner is None or owner[0] < 0:
        return
    if any(os.fstat(fd).st_uid != owner[0] for fd in fds):
        raise MaildirError(f"maildir {maildir} is not owned by UID {owner[0]}", True)


def deliver_to_maildir(
    maildir: Path,
    content: bytes | MessageBody,
    *,
    prepend: bytes = b"",
    uid: int | None = None,
    gid: int | None = None,
    hostname: str,
) -> MaildirDelivery:
    """Deliver ``prepend + content`` to ``maildir``; raise :class:`MaildirError` on failure.

    A queue file's body is copied a chunk at a time, so a large message never sits
    in memory whole.
    """
    staged = stage_in_maildir(
        maildir, content, prepend=prepend, uid=uid, gid=gid, hostname=hostname
    )
    return complete_alone(staged)


def complete_alone(staged: StagedMessage) -> MaildirDelivery:
    """The second half of a delivery made on its own: fsync, link into new/, fsync new/."""
    try:
        staged.sync()
        delivered = staged.publish()
        staged.sync_new()
    finally:
        staged.finish()
    return delivered


def stage_in_maildir(
    maildir: Path,
    content: bytes | MessageBody,
    *,
    prepend: bytes = b"",
    uid: int | None = None,
    gid: int | None = None,
    hostname: str,
) -> StagedMessage:
    """Write ``prepend + content`` into ``maildir``'s tmp/, not synced and not yet in new/.

    The first half of a delivery, for group commit (:mod:`mailseal.delivery.maildir_batch`):
    the caller syncs, publishes and finishes what this returns.
    """
    body = content.chunks() if isinstance(content, MessageBody) else (content,)
    data = _lf_pieces(itertools.chain((prepend,), body))
    owner = _owner(uid, gid)
    maildir = Path(maildir)
    with contextlib.ExitStack() as fds:
        try:
            tmp_fd, new_fd = _open_maildir(maildir, owner, fds)
        except OSError as exc:
            raise _error(f"create maildir file {maildir / 'tmp'}", exc, "4.2.0") from None
        name, size, fd = _write_tmp(tmp_fd, maildir, data, owner, hostname)
        fds.pop_all()  # from here on the StagedMessage owns the descriptors
    return StagedMessage(
        maildir, hostname=hostname, name=name, size=size, fd=fd, tmp_fd=tmp_fd, new_fd=new_fd
    )


def _open_maildir(
    maildir: Path, owner: tuple[int, int] | None, fds: contextlib.ExitStack
) -> tuple[int, int]:
    """Descriptors of tmp/ and new/ (closed by ``fds``), creating what is missing."""
    with contextlib.suppress(FileNotFoundError):
        # An existing maildir (every delivery but the first): no mkdir attempts.
        # Postfix too creates the directories only when a step fails with ENOENT.
        return _open_subdirs(maildir, owner, fds, create=False)
    _make_dirs(maildir, owner)
    return _open_subdirs(maildir, owner, fds, create=True)


def _open_subdirs(
    maildir: Path, owner: tuple[int, int] | None, fds: contextlib.ExitStack, *, create: bool
) -> tuple[int, int]:
    root_fd = os.open(maildir, _DIR_FLAGS)
    try:
        with contextlib.ExitStack() as opened:
            if create:
                os.close(_open_subdir(root_fd, "cur", owner))  # made, never written here
            dir_fds: list[int] = []
            for name in ("tmp", "new"):
                fd = _open_subdir(root_fd, name, owner) if create else _open_dir(root_fd, name)
                opened.callback(os.close, fd)
                dir_fds.append(fd)
            _check_owner([root_fd, *dir_fds], maildir, owner)
            fds.enter_context(opened.pop_all())
    finally:
        os.close(root_fd)
    return dir_fds[0], dir_fds[1]


class StagedMessage:
    """A message written to a Maildir's tmp/ and not yet delivered.

    ``sync`` makes the file durable (or the caller does, for many at once),
    ``publish`` links it into new/, ``sync_new`` makes that link durable and
    ``finish`` drops the tmp/ name and closes the descriptors; ``finish`` before
    ``publish`` abandons the message.
    """

    def __init__(
        self,
        maildir: Path,
        *,
        hostname: str,
        name: str,
        size: int,
        fd: int,
        tmp_fd: int,
        new_fd: int,
    ) -> None:
        self.maildir = maildir
        self.size = size
        self._hostname = hostname
        self._name = name
        self._fd = fd
        self._tmp_fd = tmp_fd
        self._new_fd = new_fd
        self._final = name  # the new/ name, once published
        self._closed = False

    @property
    def fd(self) -> int:
        """The tmp/ file, open until :meth:`publish` (syncfs(2) needs a descriptor)."""
        return self._fd

    def sync(self) -> None:
        """fsync the file (errors as a write error: "error writing message")."""
        try:
            os.fsync(self._fd)
        except OSError as exc:
            raise _error("error writing message", exc, "5.3.0") from None

    def publish(self) -> MaildirDelivery:
        """Link the durable tmp/ file into new/, with its size in the name (not synced)."""
        self._close_file()
        name = self._name
        final = f"{name},S={self.size}"
        try:
            for _ in range(_NAME_ATTEMPTS):
                try:
                    # link() never replaces a file already in new/, where rename() would.
                    os.link(name, final, src_dir_fd=self._tmp_fd, dst_dir_fd=self._new_fd)
                    break
                except FileExistsError:
                    final = maildir_filename(self._hostname, self.size)
            else:
                raise FileExistsError(errno.EEXIST, os.strerror(errno.EEXIST))
        except OSError as exc:
            raise _error(f"link to {self.maildir / 'new' / final}", exc, "4.2.0") from None
        self._final = final
        return MaildirDelivery(self.maildir / "new" / final, self.size)

    def sync_new(self) -> None:
        """Make the new/ entry durable (once per directory is enough for a batch)."""
        try:
            os.fsync(self._new_fd)
        except OSError as exc:
            raise _error(f"link to {self.maildir / 'new' / self._final}", exc, "4.2.0") from None

    def finish(self) -> None:
        """Drop the tmp/ name and close the descriptors; safe to call more than once."""
        if self._closed:
            return
        self._closed = True
        self._close_file()
        # The tmp/ name goes unsynced: a crash can only leave a stale file in tmp/,
        # which Maildir readers never look at (and cleaners remove), never lose mail.
        with contextlib.suppress(OSError):
            os.unlink(self._name, dir_fd=self._tmp_fd)
        os.close(self._tmp_fd)
        os.close(self._new_fd)

    def _close_file(self) -> None:
        if self._fd >= 0:
            fd, self._fd = self._fd, -1
            os.close(fd)


def _write_tmp(
    tmp_fd: int,
    maildir: Path,
    data: Iterable[bytes],
    owner: tuple[int, int] | None,
    hostname: str,
) -> tuple[str, int, int]:
    """Create and write the file in tmp/; return its name, its size and its open descriptor.

    The tmp/ name has no ``S=`` (the size is known once written); new/ gets it.
    """
    for _ in range(_NAME_ATTEMPTS):
        name = maildir_filename(hostname, None)
        try:
            fd = os.open(name, _FILE_FLAGS, 0o600, dir_fd=tmp_fd)
        except FileExistsError:
            continue
        except OSError as exc:
            raise _error(f"create maildir file {maildir / 'tmp' / name}", exc, "4.2.0") from None
        try:
            if owner is not None:
                os.fchown(fd, *owner)
            size = write_all(fd, data)
        except OSError as exc:
            os.close(fd)
            with contextlib.suppress(OSError):
                os.unlink(name, dir_fd=tmp_fd)
            if isinstance(exc, BodyReadError):
                # Our queue file, not the mailbox, failed: try again later, never bounce.
                raise MaildirError(str(exc), True, "4.3.0") from None
            raise _error("error writing message", exc, "5.3.0") from None
        return name, size, fd
    raise MaildirError(f"create maildir file {maildir / 'tmp'}: no unique file name", True)
