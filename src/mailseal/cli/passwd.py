"""``mailseal passwd``: add, change or remove a user of the built-in SASL backend.

* ``mailseal -c DIR passwd USER`` reads the new password from standard input
  (one line; at a terminal it asks twice without echo), stores an Argon2id hash
  and SCRAM-SHA-256 keys for USER in ``smtpd_sasl_passwd_file``, and prints
  ``passwd: added USER`` or ``passwd: changed USER``;
* ``mailseal -c DIR passwd -d USER`` removes USER (``passwd: removed USER``).

The password is never an argument (argv is visible to every local user in
ps) and never printed. The file is rewritten atomically with mode 0600; a lock
on its directory keeps two concurrent runs from losing each other's change.
The running server notices the new file by itself: no reload is needed.
"""

from __future__ import annotations

import argparse
import fcntl
import getpass
import os
import secrets
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import NoReturn

from mailseal.cli import context
from mailseal.cli.report import CommandError
from mailseal.services.sasl.passwd_file import PasswdFile, PasswdFileError

__all__ = ["PROGRAM", "register", "run"]

PROGRAM = "passwd"
# RFC 5802's advice for SCRAM salts is "random"; 16 bytes is what Dovecot uses.
_SALT_BYTES = 16


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the ``passwd`` sub-command."""
    parser = commands.add_parser(
        "passwd",
        help="add, change or remove a SASL user (password read from standard input)",
        description=(
            "Set USER's password in smtpd_sasl_passwd_file (the new password is read "
            "from standard input), or remove USER with -d."
        ),
    )
    parser.add_argument("-d", dest="delete", action="store_true", help="remove USER")
    parser.add_argument("user", metavar="USER", help="the SASL user name")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    """Carry out one ``passwd`` invocation; return the exit status."""
    path = context.main_config(args.config_dir).smtpd_sasl_passwd_file
    if not path:
        _fail("smtpd_sasl_passwd_file is empty")
    user: str = args.user
    password = None if args.delete else _read_password()
    with _locked(path):
        users = _load(path)
        if password is None:
            try:
                users = users.without(user)
            except KeyError:
                _fail(f"no such user: {user}")
            done = "removed"
        else:
            done = "changed" if _has_exactly(users, user) else "added"
            try:
                users = users.with_password(user, password, secrets.token_bytes(_SALT_BYTES))
            except ValueError as error:
                _fail(str(error))
        users.save(path)
    print(f"{PROGRAM}: {done} {user}")
    return 0


def _fail(message: str) -> NoReturn:
    # "mailseal: fatal: passwd: ...": the command is a part of mailseal, not a
    # program of its own the way postmap is.
    raise CommandError("mailseal", f"{PROGRAM}: {message}")


def _has_exactly(users: PasswdFile, user: str) -> bool:
    return any(entry.user == user for entry in users.entries())


def _read_password() -> str:
    """One line of standard input, without its line ending; asked twice at a terminal."""
    if sys.stdin.isatty():
        password = getpass.getpass("New password: ")
        if password and getpass.getpass("Retype new password: ") != password:
            _fail("the passwords do not match")
    else:
        password = sys.stdin.readline().removesuffix("\n").removesuffix("\r")
    if not password:
        _fail("empty password")
    return password


def _load(path: str) -> PasswdFile:
    try:
        return PasswdFile.load(path)
    except PasswdFileError as error:
        _fail(str(error))


@contextmanager
def _locked(path: str) -> Iterator[None]:
    """An exclusive lock on the file's directory while we read, change and replace it.

    The directory, not the file: the file is replaced by rename, so a lock on the
    old inode would not stop a second writer that opened the new one.
    """
    fd = os.open(Path(path).parent, os.O_RDONLY | os.O_DIRECTORY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)
