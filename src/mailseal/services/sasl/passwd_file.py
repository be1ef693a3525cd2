"""The built-in SASL backend's users file (``smtpd_sasl_passwd_file``): Dovecot's passwd-file.

One ``user:password[:uid:gid:gecos:home:shell:extra_fields]`` line per user;
blank lines, ``#`` comments and lines starting with ``:`` are ignored (as
Dovecot's db-passwd-file does), and kept as they are when the file is
rewritten. The password is ``{SCHEME}hash`` (see ``hashes``). Extra fields are
space-separated ``key=value`` words; ours is
``mailseal_scram={SCRAM-SHA-256}iter,salt,StoredKey,ServerKey``, the SCRAM keys
kept beside the hash so SCRAM-SHA-256 works without the password. Dovecot
ignores the extra field it does not know, so the same file serves both.

``PasswdFile`` is an immutable copy of the file; ``PasswdStore`` is what the
running server asks: it re-reads the file whenever it changes on disk.
"""

from __future__ import annotations

import os
import stat
import tempfile
import threading
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

from mailseal.services.sasl.hashes import hash_password
from mailseal.smtp.sasl.credentials import SCRAM_PREFIX, ScramCredentials

__all__ = [
    "SCRAM_FIELD",
    "PasswdEntry",
    "PasswdFile",
    "PasswdFileError",
    "PasswdStore",
    "check_user_name",
]

SCRAM_FIELD = "mailseal_scram"
# uid, gid, gecos, home, shell: the fields before the extra fields.
_BEFORE_EXTRA = 5
_FILE_MODE = 0o600
# The most an existing file may keep: a file shared with Dovecot is typically
# root:dovecot 0640 (Dovecot's auth process runs as the dovecot user), and
# rewriting it as 0600 would lock Dovecot out. Never anything for others.
_SHARED_MODE = 0o640


@dataclass(frozen=True)
class PasswdEntry:
    """One user line: the name, ``{SCHEME}hash``, SCRAM keys if any, the other fields."""

    user: str
    password: str
    scram: ScramCredentials | None
    fields: tuple[str, ...]  # uid, gid, gecos, home, shell, extra...: kept verbatim

    def render(self) -> str:
        return ":".join((self.user, self.password, *self.fields))


class PasswdFileError(ValueError):
    """A users file that cannot be used: ``FILE, line N: what is wrong``."""


@dataclass(frozen=True)
class _Line:
    """One line of the file as read (or as we will write it), and its user if it has one."""

    text: str
    entry: PasswdEntry | None


def _extra_words(fields: tuple[str, ...]) -> list[str]:
    # Dovecot joins everything after the shell field back with ':' before splitting on spaces.
    return ":".join(fields[_BEFORE_EXTRA:]).split()


def _scram_of(password: str, fields: tuple[str, ...]) -> ScramCredentials | None:
    """The SCRAM keys of a line: the password itself, or our extra field (ValueError)."""
    if password.startswith(SCRAM_PREFIX):
        return ScramCredentials.from_text(password)
    for word in _extra_words(fields):
        key, _, value = word.partition("=")
        if key == SCRAM_FIELD:
            return ScramCredentials.from_text(value)
    return None


def _parse_line(text: str, where: str, first_seen: dict[str, int], number: int) -> _Line:
    if not text or text.startswith(("#", ":")):
        return _Line(text, None)
    parts = text.split(":")
    if len(parts) < 2:
        raise PasswdFileError(f"{where}: no password field (want user:{{SCHEME}}hash)")
    user, password, fields = parts[0], parts[1], tuple(parts[2:])
    if user in first_seen:
        # Dovecot keeps the first and logs an error; two passwords for one name is a
        # mistake worth stopping for, not guessing about.
        raise PasswdFileError(
            f"{where}: user {user} exists more than once (first on line {first_seen[user]})"
        )
    first_seen[user] = number
    try:
        scram = _scram_of(password, fields)
    except ValueError as error:
        raise PasswdFileError(f"{where}: user {user}: {error}") from None
    return _Line(text, PasswdEntry(user, password, scram, fields))


def check_user_name(user: str) -> None:
    """Refuse names the file cannot hold: ':' splits fields, '#' starts a comment."""
    if not user:
        raise ValueError("empty user name")
    if user.startswith("#"):
        raise ValueError(f"user name must not start with '#': {user!r}")
    for char in user:
        if char == ":" or char.isspace() or unicodedata.category(char).startswith("C"):
            raise ValueError(f"user name must not contain {char!r}: {user!r}")


@dataclass(frozen=True)
class PasswdFile:
    """The whole users file: every line in order, user lines parsed."""

    path: str
    lines: tuple[_Line, ...] = ()

    @classmethod
    def parse(cls, text: str, path: str) -> PasswdFile:
        """Read ``text`` (the contents of ``path``); ``PasswdFileError`` names the line."""
        raw = text.split("\n")
        if raw and raw[-1] == "":
            raw.pop()
        first_seen: dict[str, int] = {}
        lines = tuple(
            _parse_line(line.removesuffix("\r"), f"{path}, line {number}", first_seen, number)
            for number, line in enumerate(raw, start=1)
        )
        return cls(path, lines)

    @classmethod
    def load(cls, path: str) -> PasswdFile:
        """Read ``path``; a missing file is an empty one (no users yet)."""
        try:
            data = Path(path).read_bytes()
        except FileNotFoundError:
            return cls(path)
        except OSError as error:
            raise PasswdFileError(f"{path}: cannot read: {error.strerror}") from None
        return cls.parse(_decode(data, path), path)

    def entries(self) -> tuple[PasswdEntry, ...]:
        """Every user, in file order."""
        return tuple(line.entry for line in self.lines if line.entry is not None)

    def lookup(self, user: str) -> PasswdEntry | None:
        """The entry for ``user``, else for its lower-case form (Dovecot's ``%Lu``)."""
        found = self._find(user)
        if found is None and user.lower() != user:
            found = self._find(user.lower())
        return found

    def _find(self, user: str) -> PasswdEntry | None:
        for line in self.lines:
            if line.entry is not None and line.entry.user == user:
                return line.entry
        return None

    def with_password(self, user: str, password: str, salt: bytes) -> PasswdFile:
        """A copy where ``user`` has ``password``: a new Argon2id hash and SCRAM keys.

        An existing line for exactly ``user`` keeps its other fields; otherwise a
        line ``user:{ARGON2ID}...::::::mailseal_scram=...`` is appended.
        """
        check_user_name(user)
        scram = ScramCredentials.derive(password, salt)
        old = self._find(user)
        fields = ("",) * _BEFORE_EXTRA if old is None else old.fields
        before = (*fields, *("",) * _BEFORE_EXTRA)[:_BEFORE_EXTRA]
        fields = (*before, _with_scram(_extra_words(fields), scram))
        entry = PasswdEntry(user, hash_password(password), scram, fields)
        new = _Line(entry.render(), entry)
        if old is None:
            return replace(self, lines=(*self.lines, new))
        return replace(self, lines=tuple(new if line.entry is old else line for line in self.lines))

    def without(self, user: str) -> PasswdFile:
        """A copy without the line of exactly ``user``; ``KeyError`` when there is none."""
        old = self._find(user)
        if old is None:
            raise KeyError(user)
        return replace(self, lines=tuple(line for line in self.lines if line.entry is not old))

    def render(self) -> str:
        """The file's text: untouched lines exactly as read, changed ones rewritten."""
        return "".join(line.text + "\n" for line in self.lines)

    def save(self, path: str) -> None:
        """Replace ``path`` atomically with ``render()``, synced to disk.

        Mode 0600; a file that was there keeps its owner, group and group read bit.
        """
        _write_atomically(path, self.render().encode("utf-8"))


def _with_scram(words: list[str], scram: ScramCredentials) -> str:
    kept = [word for word in words if word.partition("=")[0] != SCRAM_FIELD]
    return " ".join([*kept, f"{SCRAM_FIELD}={scram.to_text()}"])


def _decode(data: bytes, path: str) -> str:
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as error:
        number = data.count(b"\n", 0, error.start) + 1
        raise PasswdFileError(f"{path}, line {number}: not UTF-8") from None


def _write_atomically(path: str, data: bytes) -> None:
    """Temp file in the same directory (created 0600), write, fsync, rename, fsync the directory.

    A crash leaves either the old file or the new one, never half of one; the
    hashes are never readable by others, not even for an instant. The result
    is mode 0600, except that an existing file's owner and group are kept and
    so is its group read permission (see ``_SHARED_MODE``).
    """
    target = Path(path)
    directory = target.parent
    try:
        old: os.stat_result | None = target.stat()
    except FileNotFoundError:
        old = None
    fd, temp = tempfile.mkstemp(prefix=f".{target.name}.", dir=directory)
    try:
        with os.fdopen(fd, "wb") as out:
            os.fchmod(out.fileno(), _mode_like(out.fileno(), old))
            out.write(data)
            out.flush()
            os.fsync(out.fileno())
        Path(temp).replace(target)
    except BaseException:
        Path(temp).unlink(missing_ok=True)
        raise
    dir_fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


def _mode_like(fd: int, old: os.stat_result | None) -> int:
    """Give ``fd`` the old file's owner and group; the mode it may then have."""
    if old is None:
        return _FILE_MODE
    try:
        if (old.st_uid, old.st_gid) != (os.geteuid(), os.getegid()):
            os.fchown(fd, old.st_uid, old.st_gid)
    except PermissionError:
        return _FILE_MODE  # the group would be ours, not the one that was allowed to read
    return _FILE_MODE | (stat.S_IMODE(old.st_mode) & _SHARED_MODE)


# (st_ino, st_size, st_mtime_ns), or None for a missing file.
_Stamp = tuple[int, int, int] | None


class PasswdStore:
    """The users file as the running server sees it: re-read whenever it changes.

    Each lookup stat()s the file and reloads it when its inode, size or mtime
    changed, so ``mailseal passwd`` takes effect without a reload. A file that
    breaks keeps the last good copy in use (``on_error`` hears about it once);
    only when there never was a good copy does the lookup raise.
    """

    def __init__(
        self, path: str, on_error: Callable[[PasswdFileError], None] | None = None
    ) -> None:
        self.path = path
        self._on_error = on_error
        self._lock = threading.Lock()  # lookups may come from several verifier threads
        self._file: PasswdFile | None = None
        self._stamp: _Stamp = None
        self._reported: str | None = None

    def lookup(self, user: str) -> PasswdEntry | None:
        """The entry for ``user`` in the file as it is now (see ``PasswdFile.lookup``)."""
        with self._lock:
            current = self._current()
        return current.lookup(user)

    def _current(self) -> PasswdFile:
        try:
            stamp = _stamp(self.path)
        except PasswdFileError as error:
            return self._keep(error)
        if self._file is not None and stamp == self._stamp:
            return self._file
        # Remembered even when the load fails: a broken version is parsed once, not
        # on every login, and a good copy stays in use until the file changes again.
        self._stamp = stamp
        try:
            self._file = PasswdFile.load(self.path)
        except PasswdFileError as error:
            return self._keep(error)
        self._reported = None
        return self._file

    def _keep(self, error: PasswdFileError) -> PasswdFile:
        """The last good copy after ``error``, which is reported once; raise if none."""
        if self._file is None:
            raise error
        if str(error) != self._reported:
            self._reported = str(error)
            if self._on_error is not None:
                self._on_error(error)
        return self._file


def _stamp(path: str) -> _Stamp:
    try:
        st = Path(path).stat()
    except FileNotFoundError:
        return None
    except OSError as error:
        raise PasswdFileError(f"{path}: cannot stat: {error.strerror}") from None
    return (st.st_ino, st.st_size, st.st_mtime_ns)
