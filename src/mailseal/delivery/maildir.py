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

__all__ = ["MaildirDelivery", "MaildirError", "deliver_to_maildir", "maildir_filename"]

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


def _open_subdir(root_fd: int, name: str, owner: tuple[int, int] | None) -> int:
    with contextlib.suppress(FileExistsError):
        os.mkdir(name, 0o700, dir_fd=root_fd)
        if owner is not None:
            os.chown(name, *owner, dir_fd=root_fd, follow_symlinks=False)
    return os.open(name, _DIR_FLAGS | os.O_NOFOLLOW, dir_fd=root_fd)


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
    body = content.chunks() if isinstance(content, MessageBody) else (content,)
    data = _lf_pieces(itertools.chain((prepend,), body))
    owner = _owner(uid, gid)
    maildir = Path(maildir)
    with contextlib.ExitStack() as fds:
        try:
            _make_dirs(maildir, owner)
            root_fd = os.open(maildir, _DIR_FLAGS)
            fds.callback(os.close, root_fd)
            dir_fds = [_open_subdir(root_fd, name, owner) for name in ("tmp", "new", "cur")]
            for fd in dir_fds:
                fds.callback(os.close, fd)
        except OSError as exc:
            raise _error(f"create maildir file {maildir / 'tmp'}", exc, "4.2.0") from None
        _check_owner([root_fd, *dir_fds[:2]], maildir, owner)
        tmp_fd, new_fd = dir_fds[0], dir_fds[1]
        name, size = _write_tmp(tmp_fd, maildir, data, owner, hostname)
        final = _link_new(tmp_fd, new_fd, maildir, name, hostname=hostname, size=size)
    return MaildirDelivery(maildir / "new" / final, size)


def _write_tmp(
    tmp_fd: int,
    maildir: Path,
    data: Iterable[bytes],
    owner: tuple[int, int] | None,
    hostname: str,
) -> tuple[str, int]:
    """Create, write and fsync the file in tmp/; return its name and size.

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
            try:
                if owner is not None:
                    os.fchown(fd, *owner)
                size = write_all(fd, data)
                os.fsync(fd)
            finally:
                os.close(fd)
        except OSError as exc:
            with contextlib.suppress(OSError):
                os.unlink(name, dir_fd=tmp_fd)
            if isinstance(exc, BodyReadError):
                # Our queue file, not the mailbox, failed: try again later, never bounce.
                raise MaildirError(str(exc), True, "4.3.0") from None
            raise _error("error writing message", exc, "5.3.0") from None
        return name, size
    raise MaildirError(f"create maildir file {maildir / 'tmp'}: no unique file name", True)


def _link_new(
    tmp_fd: int, new_fd: int, maildir: Path, name: str, *, hostname: str, size: int
) -> str:
    """Link the tmp/ file into new/ (synced), drop the tmp/ name; return the new name."""
    final = f"{name},S={size}"
    try:
        for _ in range(_NAME_ATTEMPTS):
            try:
                # link() never replaces a file already in new/, where rename() would.
                os.link(name, final, src_dir_fd=tmp_fd, dst_dir_fd=new_fd)
                break
            except FileExistsError:
                final = maildir_filename(hostname, size)
        else:
            raise FileExistsError(errno.EEXIST, os.strerror(errno.EEXIST))
        os.fsync(new_fd)
    except OSError as exc:
        raise _error(f"link to {maildir / 'new' / final}", exc, "4.2.0") from None
    finally:
        # The tmp/ name goes unsynced: a crash can only leave a stale file in tmp/,
        # which Maildir readers never look at (and cleaners remove), never lose mail.
        with contextlib.suppress(OSError):
            os.unlink(name, dir_fd=tmp_fd)
    return final
