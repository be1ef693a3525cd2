"""``mailseal postqueue -p | -j | -f | -s SITE`` and ``mailseal mailq``: Postfix's postqueue(1).

- ``-p`` (and ``mailq``): the queue in showq's layout (:mod:`mailseal.services.showq`);
- ``-j``: one JSON object per message, as Postfix 3.1+;
- ``-f``: attempt every deferred message now;
- ``-s SITE``: attempt now the deferred mail for the domain SITE.

The running master answers through its control socket; when it is down the
listing is read from the queue files (with Postfix's warning, as Postfix does
for root), while a flush fails as in Postfix. Diagnostics and exit statuses are
postqueue's: ``postqueue: fatal: ...`` with 64 (usage), 69 (unavailable) or 70
(software error, e.g. a malformed reply).

:func:`print_queue` and :func:`flush_queue` are what ``mailseal sendmail -bp``
and ``-q`` use. Reads: queue_directory.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable
from pathlib import Path

from mailseal.cli import context
from mailseal.config.model import Config
from mailseal.services.hostnames import is_valid_hostaddr, is_valid_hostname
from mailseal.services.queue_admin_client import ControlError, QueueClient
from mailseal.services.showq import format_json, format_mailq

__all__ = ["flush_queue", "print_queue", "register", "run", "run_mailq"]

PROGRAM = "postqueue"
# sysexits.h, as postqueue uses them.
EX_USAGE = 64
EX_UNAVAILABLE = 69
EX_SOFTWARE = 70
_USAGE = "usage: postqueue -f | postqueue -j | postqueue -p | postqueue -s site"
_SERVICE = "mailseal control"


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``postqueue`` and its alias ``mailq``."""
    parser = commands.add_parser(
        "postqueue",
        help="list (-p, -j) or flush (-f, -s SITE) the mail queue",
        description="Postfix's postqueue: list the mail queue or ask for its delivery now.",
    )
    parser.add_argument("-p", dest="modes", action="append_const", const="p", help="list")
    parser.add_argument("-j", dest="modes", action="append_const", const="j", help="JSON list")
    parser.add_argument("-f", dest="modes", action="append_const", const="f", help="flush")
    parser.add_argument("-s", dest="sites", action="append", metavar="SITE", help="flush SITE")
    parser.add_argument("-v", action="count", default=0, help="ignored (verbose)")
    parser.set_defaults(handler=run)
    mailq = commands.add_parser("mailq", help="list the mail queue (postqueue -p)")
    mailq.set_defaults(handler=run_mailq)


def run(args: argparse.Namespace) -> int:
    """One ``postqueue`` invocation; the exit status."""
    modes: list[str] = list(args.modes or []) + ["s"] * len(args.sites or [])
    if len(modes) != 1:
        return _fatal(EX_USAGE, _USAGE)
    mode = modes[0]
    if mode == "p":
        return print_queue(args.config_dir)
    if mode == "j":
        return _list(_config(args.config_dir), json_lines=True)
    if mode == "f":
        return flush_queue(args.config_dir)
    return flush_site(args.config_dir, args.sites[0])


def run_mailq(args: argparse.Namespace) -> int:
    """``mailq``: the same as ``postqueue -p``."""
    return print_queue(args.config_dir)


def print_queue(config_dir: str) -> int:
    """Print what ``mailq`` prints; the exit status."""
    return _list(_config(config_dir), json_lines=False)


def flush_queue(config_dir: str) -> int:
    """Do what ``postqueue -f`` does; the exit status."""
    return _flush(_config(config_dir), QueueClient.flush)


def flush_site(config_dir: str, site: str) -> int:
    """``postqueue -s SITE``; the exit status."""
    config = _config(config_dir)
    if not is_valid_site(site):
        shown = site[:100] + ("..." if len(site) > 100 else "")
        return _fatal(EX_USAGE, f'Cannot flush mail queue - invalid destination: "{shown}"')
    return _flush(config, lambda client: client.flush_site(site))


def _flush(config: Config, ask: Callable[[QueueClient], bool]) -> int:
    """Ask the running server to flush; Postfix's errors when it cannot."""
    status = _queue_directory_status(config)
    if status:
        return status
    try:
        flushed = ask(QueueClient(config))
    except ControlError as error:
        return _fatal(EX_SOFTWARE, str(error))
    if not flushed:
        return _fatal(EX_UNAVAILABLE, "Cannot flush mail queue - mail system is down")
    return 0


def is_valid_site(site: str) -> bool:
    """A host name, an address, or ``[address]`` (postqueue's valid_hostname/valid_hostaddr)."""
    if site.startswith("[") and site.endswith("]"):
        return is_valid_hostaddr(site[1:-1].removeprefix("IPv6:"))
    return is_valid_hostaddr(site.removeprefix("IPv6:")) or is_valid_hostname(site)


def _config(config_dir: str) -> Config:
    return context.load(config_dir).base


def _list(config: Config, *, json_lines: bool) -> int:
    status = _queue_directory_status(config)
    if status:
        return status
    client = QueueClient(config)
    try:
        entries = client.entries()
    except ControlError as error:
        return _fatal(EX_SOFTWARE, str(error))
    except OSError as error:
        reason = f"Connect to the {_SERVICE} service: {client.down or error.strerror}"
        return _fatal(EX_UNAVAILABLE, f"Queue report unavailable - mail system is down ({reason})")
    if client.down is not None:
        # Postfix's words when root lists the queue of a stopped mail system.
        _warn(
            "Mail system is down -- accessing queue directly "
            f"(Connect to the {_SERVICE} service: {client.down})"
        )
    return _write(format_json(entries) if json_lines else format_mailq(entries))


def _queue_directory_status(config: Config) -> int:
    """postqueue's chdir to queue_directory: 0, or the status of its fatal error."""
    directory = Path(config.queue_directory)
    try:
        directory.stat()
        if not directory.is_dir():
            raise NotADirectoryError(20, "Not a directory")
    except OSError as error:
        return _fatal(EX_UNAVAILABLE, f"chdir {directory}: {error.strerror}")
    return 0


def _write(text: str) -> int:
    try:
        sys.stdout.write(text)
        sys.stdout.flush()
    except BrokenPipeError:
        # "mailq | head": the reader left; postqueue stops quietly too. Point stdout
        # at /dev/null so that the interpreter's final flush does not complain.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    return 0


def _warn(text: str) -> None:
    print(f"{PROGRAM}: warning: {text}", file=sys.stderr)


def _fatal(status: int, text: str) -> int:
    print(f"{PROGRAM}: fatal: {text}", file=sys.stderr)
    return status
