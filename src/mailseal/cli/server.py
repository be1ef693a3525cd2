"""``mailseal start-fg | start | stop | status | reload``: the lifecycle, as ``postfix(1)`` has it.

- ``start-fg`` runs the server in the foreground (containers, systemd, tests);
- ``start`` detaches (double fork, new session) and returns once the server
  listens, or fails with the reason the server gave;
- ``stop`` sends SIGTERM and waits for the process to exit (graceful: sessions
  finish, nothing acknowledged is lost); ``reload`` sends SIGHUP;
- ``status`` tells whether it runs (exit 0) or not (exit 1).

The pid file is ``$queue_directory/pid/master.pid``; a stale one (no such
process) is ignored and replaced.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import sys
import time
from pathlib import Path
from typing import Any

from mailseal.cli import context
from mailseal.cli.report import CommandError, fatal
from mailseal.config.loader import LoadedConfig
from mailseal.daemons.master import Master, pid_file
from mailseal.net import eventloop

__all__ = ["register"]

PROGRAM = "mailseal"
_STOP_WAIT = 60.0
_START_WAIT = 30.0


def register(commands: Any) -> None:
    for name, handler, text in (
        ("start-fg", _start_fg, "run the mail system in the foreground"),
        ("start", _start, "start the mail system in the background"),
        ("stop", _stop, "stop the mail system (gracefully)"),
        ("status", _status, "tell whether the mail system is running"),
        ("reload", _reload, "re-read the configuration and certificates"),
    ):
        parser = commands.add_parser(name, help=text, description=text)
        parser.set_defaults(handler=handler)


def _loaded(args: argparse.Namespace) -> LoadedConfig:
    return context.load(args.config_dir)


def running_pid(path: Path) -> int | None:
    """The pid in ``path`` if that process is alive, else None."""
    try:
        pid = int(path.read_text(encoding="ascii").strip())
    except (OSError, ValueError):
        return None
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return None
    except PermissionError:
        return pid
    return pid


def _claim_pid_file(path: Path) -> None:
    pid = running_pid(path)
    if pid is not None and pid != os.getpid():
        fatal(PROGRAM, f"the mail system is already running: PID: {pid}")
    try:
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o755)
        temporary = path.with_suffix(".tmp")
        temporary.write_text(f"{os.getpid():>10}\n", encoding="ascii")
        temporary.replace(path)
    except OSError as error:
        fatal(PROGRAM, f"cannot write the pid file {path}: {error.strerror or error}")


def _serve(args: argparse.Namespace, on_ready: Any = None) -> int:
    loaded = _loaded(args)
    path = pid_file(loaded)
    _claim_pid_file(path)
    try:
        return eventloop.run(_run_master(args, on_ready), loaded.base.event_loop)
    except OSError as error:  # e.g. a port in use: the admin needs the reason, not a trace
        fatal(PROGRAM, f"cannot start: {error}")
    finally:
        if running_pid(path) in (os.getpid(), None):
            with contextlib.suppress(OSError):
                path.unlink()


async def _run_master(args: argparse.Namespace, on_ready: Any) -> int:
    master = Master(lambda: _loaded(args), on_ready=on_ready)
    return await master.run()


def _start_fg(args: argparse.Namespace) -> int:
    def ready() -> None:
        print(f"{PROGRAM}: the mail system is running: PID: {os.getpid()}", file=sys.stderr)

    return _serve(args, ready)


def _start(args: argparse.Namespace) -> int:
    loaded = _loaded(args)  # configuration errors are reported here, in the foreground
    pid = running_pid(pid_file(loaded))
    if pid is not None:
        fatal(PROGRAM, f"the mail system is already running: PID: {pid}")
    read_end, write_end = os.pipe()
    if os.fork() > 0:
        os.close(write_end)
        return _wait_started(read_end)
    os.close(read_end)
    os.setsid()
    if os.fork() > 0:
        os._exit(0)
    _detach_stdio()

    def ready() -> None:
        os.write(write_end, b"ok")
        os.close(write_end)

    try:
        status = _serve(args, ready)
    except BaseException as error:  # report to the waiting parent, then exit
        reason = error.message if isinstance(error, CommandError) else str(error)
        with contextlib.suppress(OSError):
            os.write(write_end, f"error: {reason}".encode())
        os._exit(1)
    os._exit(status)


def _detach_stdio() -> None:
    null = os.open(os.devnull, os.O_RDWR)
    for fd in (0, 1, 2):
        os.dup2(null, fd)
    os.close(null)


def _wait_started(read_end: int) -> int:
    deadline = time.monotonic() + _START_WAIT
    chunks = []
    with os.fdopen(read_end, "rb") as pipe:
        while time.monotonic() < deadline:
            chunk = pipe.read(4096)
            if not chunk:
                break
            chunks.append(chunk)
            if b"".join(chunks).startswith(b"ok"):
                print(f"{PROGRAM}: starting the mail system", file=sys.stderr)
                return 0
    message = b"".join(chunks).decode("utf-8", "replace").removeprefix("error: ")
    raise CommandError(PROGRAM, f"the mail system did not start: {message or 'no reason given'}")


def _stop(args: argparse.Namespace) -> int:
    path = pid_file(_loaded(args))
    pid = running_pid(path)
    if pid is None:
        fatal(PROGRAM, "the mail system is not running")
    print(f"{PROGRAM}: stopping the mail system", file=sys.stderr)
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + _STOP_WAIT
    while time.monotonic() < deadline:
        if running_pid(path) != pid:
            return 0
        time.sleep(0.1)
    raise CommandError(
        PROGRAM, f"the mail system (PID {pid}) did not stop within {_STOP_WAIT:.0f}s"
    )


def _status(args: argparse.Namespace) -> int:
    pid = running_pid(pid_file(_loaded(args)))
    if pid is None:
        print(f"{PROGRAM}: the mail system is not running", file=sys.stderr)
        return 1
    print(f"{PROGRAM}: the mail system is running: PID: {pid}", file=sys.stderr)
    return 0


def _reload(args: argparse.Namespace) -> int:
    pid = running_pid(pid_file(_loaded(args)))
    if pid is None:
        fatal(PROGRAM, "the mail system is not running")
    print(f"{PROGRAM}: refreshing the mail system", file=sys.stderr)
    os.kill(pid, signal.SIGHUP)
    return 0
