"""``mailseal sendmail`` and ``mailseal-sendmail``: the Sendmail-compatible submission command.

Link ``mailseal-sendmail`` as ``/usr/sbin/sendmail`` and cron, PHP's mail()
and scripts keep working. As Postfix's sendmail(1) (options: see
:mod:`mailseal.services.pickup_options`):

* the message is read from standard input (a line with a single dot ends it
  unless ``-i``/``-oi``; CRs at line ends and leading ``From `` lines are
  dropped), written durably into ``$queue_directory/maildrop/`` and pickup is
  poked (:mod:`mailseal.queue.maildrop`); with the server stopped the file
  waits there and is delivered after the start;
* the sender is ``-f`` (or ``-r``), else the invoking user's login name; the
  full name is ``-F``, else ``$NAME``, else the GECOS field; pickup qualifies
  addresses with ``@$myorigin``;
* ``-bs`` runs an SMTP session on stdin/stdout (:mod:`.pickup_bsmtp`),
  ``-bp``/``-q``/``-qRsite`` are ``postqueue -p``/``-f``/``-s site``
  (:mod:`mailseal.cli.postqueue`), ``-bi`` is
  newaliases, ``-bd`` starts the mail system;
* the configuration directory is ``-C DIR``, else ``$MAILSEAL_CONFIG_DIR``
  (or ``mailseal -c DIR sendmail``), else the built-in default.

Errors are ``sendmail: fatal: ...`` on standard error with sendmail's exit
statuses (sysexits.h): 64 bad usage, 75 when the queue cannot be written (the
caller should try again later), never a traceback.
"""

from __future__ import annotations

import argparse
import os
import pwd
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import BinaryIO, NoReturn

from mailseal.cli import context, postqueue
from mailseal.config.errors import ConfigError
from mailseal.config.model import Config
from mailseal.config.params.system import DEFAULT_CONFIG_DIRECTORY
from mailseal.queue.maildrop import Maildrop, Submission, poke
from mailseal.services.pickup_bsmtp import StdioMessage, serve_stdio, stdio_settings
from mailseal.services.pickup_headers import addresses, extract_recipients, parse_message
from mailseal.services.pickup_options import Mode, Options, UsageError, parse_options

__all__ = ["PROGRAM", "main", "read_message", "register", "run"]

PROGRAM = "sendmail"
# sysexits.h
EX_USAGE = 64
EX_SOFTWARE = 70
EX_OSERR = 71
EX_TEMPFAIL = 75
_READ_SIZE = 65536


class FatalError(Exception):
    """``sendmail: fatal: MESSAGE`` and exit with ``status``."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def _fatal(status: int, message: str) -> NoReturn:
    raise FatalError(status, message)


def _warn(message: str) -> None:
    print(f"{PROGRAM}: warning: {message}", file=sys.stderr)


class _RawArguments(argparse.ArgumentParser):
    """Takes every argument as it is: sendmail's options are not argparse-shaped."""

    def parse_known_args(  # type: ignore[override]
        self, args: Sequence[str] | None = None, namespace: argparse.Namespace | None = None
    ) -> tuple[argparse.Namespace, list[str]]:
        namespace = namespace if namespace is not None else argparse.Namespace()
        namespace.sendmail_argv = list(args or [])
        namespace.handler = _subcommand
        return namespace, []


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the ``sendmail`` sub-command (its arguments are parsed by sendmail's rules)."""
    parser = commands.add_parser(
        "sendmail",
        help="submit mail like sendmail(1): sendmail [options] [recipient ...]",
        description="The Sendmail-compatible mail submission command.",
        add_help=False,
    )
    parser.__class__ = _RawArguments


def _subcommand(args: argparse.Namespace) -> int:
    return run(args.sendmail_argv, args.config_dir)


def main(argv: Sequence[str] | None = None) -> int:
    """The ``mailseal-sendmail`` entry point (``mailq``/``newaliases`` by link name too)."""
    name = Path(sys.argv[0]).name
    default = {"mailq": Mode.MAILQ, "newaliases": Mode.NEWALIAS}.get(name, Mode.ENQUEUE)
    config_dir = os.environ.get("MAILSEAL_CONFIG_DIR") or DEFAULT_CONFIG_DIRECTORY
    return run(list(sys.argv[1:] if argv is None else argv), config_dir, default)


def run(argv: Sequence[str], config_dir: str, default_mode: Mode = Mode.ENQUEUE) -> int:
    """Carry out one sendmail invocation; return its exit status."""
    try:
        options = parse_options(list(argv), default_mode)
        for warning in options.warnings:
            _warn(warning)
        return _dispatch(options, options.config_dir or config_dir)
    except UsageError as error:
        if error.detail:
            print(f"{PROGRAM}: {error.detail}", file=sys.stderr)
        print(f"{PROGRAM}: fatal: {error.message}", file=sys.stderr)
        return EX_USAGE
    except FatalError as error:
        print(f"{PROGRAM}: fatal: {error.message}", file=sys.stderr)
        return error.status
    except ConfigError as error:
        print(f"{PROGRAM}: fatal: {error}", file=sys.stderr)
        return EX_TEMPFAIL
    except KeyboardInterrupt:
        return EX_TEMPFAIL
    except Exception as error:  # never a traceback for cron's mail
        print(f"{PROGRAM}: fatal: internal error: {error!r}", file=sys.stderr)
        return EX_SOFTWARE


def _dispatch(options: Options, config_dir: str) -> int:
    mode = options.mode
    if options.queue_interval and mode is not Mode.DAEMON:
        return 0  # -q30m: the queue manager's own schedule (queue_run_delay) decides
    if options.recipients and mode is not Mode.ENQUEUE:
        _fatal(EX_USAGE, f"{_NO_RECIPIENT[mode]} requires no recipient")
    if options.flush_site is not None:
        return postqueue.flush_site(config_dir, options.flush_site)  # postqueue -s
    return _MODES[mode](options, config_dir)


def _deliver(options: Options, config_dir: str) -> int:
    return enqueue(options, _config(config_dir), sys.stdin.buffer)


def _stand_alone(options: Options, config_dir: str) -> int:
    return stand_alone(_config(config_dir), sys.stdin.buffer, sys.stdout.buffer)


def _newaliases(options: Options, config_dir: str) -> int:
    from mailseal.cli.postalias import newaliases

    override = options.alias_database
    return newaliases(config_dir, None if override is None else _split(override))


def _daemon(options: Options, config_dir: str) -> int:
    from mailseal.cli.main import main as mailseal  # imported here: main imports us

    return mailseal(["-c", config_dir, "start"])


_NO_RECIPIENT = {
    Mode.NEWALIAS: "alias initialization mode",
    Mode.MAILQ: "display queue mode",
    Mode.DAEMON: "daemon mode",
    Mode.USER: "stand-alone mode",
    Mode.FLUSHQ: "flush queue mode",
    Mode.IGNORE: "this mode",
}


_MODES: dict[Mode, Callable[[Options, str], int]] = {
    Mode.ENQUEUE: _deliver,
    Mode.USER: _stand_alone,
    Mode.NEWALIAS: _newaliases,
    Mode.MAILQ: lambda _, config_dir: postqueue.print_queue(config_dir),
    Mode.FLUSHQ: lambda _, config_dir: postqueue.flush_queue(config_dir),
    Mode.DAEMON: _daemon,
    Mode.IGNORE: lambda _, __: 0,
}


def _split(text: str) -> list[str]:
    return text.replace(",", " ").split()


def _config(config_dir: str) -> Config:
    return context.main_config(config_dir)


# -- delivery mode --------------------------------------------------------------------


def login_name(uid: int) -> str:
    """username(): the login name of ``uid``."""
    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:
        _fatal(EX_OSERR, f"no login name found for user ID {uid}")


def full_name(uid: int) -> str:
    """fullname(): ``$NAME``, else the GECOS name with ``&`` as the capitalised login."""
    name = os.environ.get("NAME")
    if name is not None:
        return name
    try:
        entry = pwd.getpwuid(uid)
    except KeyError:
        return ""
    return entry.pw_gecos.split(",", 1)[0].replace("&", entry.pw_name.capitalize())


def envelope_sender(given: str | None, uid: int) -> str:
    """``-f``'s first address in internal form ("" for ``<>``), else the login name."""
    if given is None:
        return login_name(uid)
    found = addresses([given]) if given.strip() not in ("", "<>") else []
    if len(found) > 1:
        _warn(f"-f option specified malformed sender: {given}")
    return found[0] if found else ""


def read_message(stream: BinaryIO, *, dot_ends_input: bool) -> bytes:
    """Standard input as Postfix's sendmail takes it (LF line ends, see the module doc)."""
    lines: list[bytes] = []
    at_start = True
    for raw in stream:
        line = raw.removesuffix(b"\n").rstrip(b"\r")
        if at_start:
            if line.lstrip(b">").startswith(b"From "):
                continue  # an mbox separator, not a header
            at_start = False
        if dot_ends_input and line == b".":
            break
        lines.append(line + b"\n")
    return b"".join(lines)


def enqueue(options: Options, config: Config, stdin: BinaryIO) -> int:
    """Delivery mode: read the message, check the recipients, drop it, poke pickup."""
    uid = os.getuid()
    sender = envelope_sender(options.sender, uid)
    recipients = addresses(options.recipients)
    content = read_message(stdin, dot_ends_input=options.dot_ends_input)
    if options.extract:
        found = extract_recipients(parse_message(content.replace(b"\n", b"\r\n")))
        if not recipients and not found:
            _fatal(EX_USAGE, f"{sender}({uid}): No recipient addresses found in message header")
    elif not recipients:
        _fatal(
            EX_USAGE,
            "Recipient addresses must be specified on the command line or via the -t option",
        )
    submission = Submission(
        uid=uid,
        sender=sender,
        recipients=tuple(recipients),
        extract_recipients=options.extract,
        full_name=options.full_name if options.full_name is not None else full_name(uid),
        notify=options.notify,
        envid=_xtext(options.envid),
        body=options.body,
        submitted=time.time(),
    )
    _drop(config, submission, content)
    return 0


def _xtext(text: str) -> str:
    """RFC 3461 xtext, as envelopes keep ENVID (``+`` and ``=`` become ``+2B``/``+3D``)."""
    return "".join(c if 33 <= ord(c) <= 126 and c not in "+=" else f"+{ord(c):02X}" for c in text)


def _drop(config: Config, submission: Submission, content: bytes) -> str:
    """Write the maildrop file (EX_TEMPFAIL when we cannot) and wake pickup."""
    maildrop = Maildrop(Path(config.queue_directory))
    try:
        maildrop.create()
        name = maildrop.write(submission, content)
    except OSError as error:
        where = error.filename or maildrop.directory
        _fatal(
            EX_TEMPFAIL,
            f"{submission.sender}({submission.uid}): error writing queue file: "
            f"{where}: {error.strerror or error}",
        )
    poke(maildrop.queue_directory)
    return name


# -- stand-alone SMTP mode (-bs) ----------------------------------------------------------


def stand_alone(config: Config, stdin: BinaryIO, stdout: BinaryIO) -> int:
    """``-bs``: one SMTP session on stdin/stdout; each message is dropped as sendmail drops it."""
    uid = os.getuid()
    maildrop = Maildrop(Path(config.queue_directory))

    def submit(message: StdioMessage) -> str:
        maildrop.create()
        name = maildrop.write(
            Submission(
                uid=uid,
                sender=message.sender,
                recipients=message.recipients,
                recipient_notify=message.notify,
                envid=message.envid,
                body=message.body,
                submitted=time.time(),
            ),
            message.content,
        )
        poke(maildrop.queue_directory)
        return name

    def write(data: bytes) -> None:
        stdout.write(data)
        stdout.flush()

    fd = stdin.fileno()
    serve_stdio(stdio_settings(config), lambda: os.read(fd, _READ_SIZE), write, submit)
    return 0
