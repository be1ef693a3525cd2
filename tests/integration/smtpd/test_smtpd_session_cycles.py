"""A finished smtpd session leaves nothing for the cyclic garbage collector.

A session's connection holds its TLS state: OpenSSL's memory BIOs and asyncio's
read buffer, 100-200 KB per session. Caught in a reference cycle, a closed session
waits for a full collection, which a busy worker hardly ever runs: under TLS load
the workers grew to 75-78 MB each (docs/performance.md, "Reference cycles").

Here a real worker, in this process, gets its connections the way the master hands
them over, and serves one session of each kind (plain, STARTTLS, submission with
AUTH, implicit TLS with AUTH, a failed AUTH) with the cyclic GC switched off.
Afterwards none of the sessions' objects may be left. (The worker also runs a full
collection every 10 seconds, see :mod:`mailseal.daemons.heap`; that is the net for
cycles in code not ours, such as asyncio's transports, and is off here.)
"""

from __future__ import annotations

import asyncio
import gc
import smtplib
import socket
from collections.abc import Callable
from pathlib import Path

import pytest
from raw_smtp import client_context

from mailseal.config.loader import load_config
from mailseal.daemons.heap import HeapTrimmer
from mailseal.daemons.smtpd_worker import Worker
from mailseal.net.handoff import MessageKind, channel_pair, encode, pass_connection
from mailseal.queue.store import QueueStore
from mailseal.testing.process import run_mailseal
from mailseal.testing.server import HOSTNAME, make_instance

USER, PASSWORD = "alice@example.test", "correct horse battery staple"
LOCAL = "postmaster@example.test"
MESSAGE = b"Subject: cycles\r\n\r\n" + b"x" * 200 + b"\r\n"
# What a session is made of; none may outlive it.
SESSION_TYPES = {"Connection", "_Session", "SessionAuth", "SSLObject", "SmtpServer"}

Client = Callable[[int], None]


def _plain(port: int) -> None:
    with smtplib.SMTP("127.0.0.1", port, timeout=10) as smtp:
        smtp.sendmail("a@example.org", [LOCAL], MESSAGE)


def _starttls(port: int) -> None:
    with smtplib.SMTP("127.0.0.1", port, timeout=10) as smtp:
        smtp.starttls(context=client_context())
        smtp.sendmail("a@example.org", [LOCAL], MESSAGE)


def _submission(port: int) -> None:
    with smtplib.SMTP("127.0.0.1", port, timeout=10) as smtp:
        smtp.starttls(context=client_context())
        smtp.login(USER, PASSWORD)
        smtp.sendmail(USER, [LOCAL], MESSAGE)


def _submission_refused(port: int) -> None:
    with smtplib.SMTP("127.0.0.1", port, timeout=10) as smtp:
        smtp.starttls(context=client_context())
        try:
            smtp.login(USER, "wrong")
        except smtplib.SMTPAuthenticationError:
            return
        raise AssertionError("a wrong password was accepted")


def _smtps(port: int) -> None:
    with smtplib.SMTP_SSL("127.0.0.1", port, timeout=10, context=client_context()) as smtp:
        smtp.login(USER, PASSWORD)
        smtp.sendmail(USER, [LOCAL], MESSAGE)


def _session_objects() -> list[str]:
    return sorted(type(o).__name__ for o in gc.get_objects() if type(o).__name__ in SESSION_TYPES)


async def _serve(directory: Path, sessions: list[tuple[str, Client]]) -> list[str]:
    """Run the worker, hand it one connection per session, stop it; what is left."""
    loaded = load_config(str(directory), HOSTNAME)
    QueueStore(Path(loaded.base.queue_directory)).create()  # the master's part
    by_name = {service.name: service.key for service, _config in loaded.smtpd_services()}
    master_conn, worker_conn = channel_pair()
    master_events, worker_events = channel_pair()
    worker = Worker(loaded, worker_conn, worker_events, forward_log=False)
    running = asyncio.create_task(worker.run())
    listener = socket.create_server(("127.0.0.1", 0))
    listener.setblocking(False)
    port = listener.getsockname()[1]
    loop = asyncio.get_running_loop()
    try:
        for name, client in sessions:
            done = asyncio.create_task(asyncio.to_thread(client, port))
            accepted, _ = await loop.sock_accept(listener)
            assert pass_connection(master_conn, by_name[name], accepted)
            accepted.close()  # the worker has its own descriptor now
            await asyncio.wait_for(done, 30)
        master_conn.send(encode(MessageKind.STOP))
        assert await asyncio.wait_for(running, 30) == 0
    finally:
        listener.close()
        for channel in (master_conn, worker_conn, master_events, worker_events):
            channel.close()
    del worker, running
    return _session_objects()


def test_finished_sessions_leave_no_cycles(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # The worker's periodic full collection would hide a cycle: only reference
    # counting may free the sessions here.
    monkeypatch.setattr(HeapTrimmer, "start", lambda _self: None)
    ports = make_instance(tmp_path)
    result = run_mailseal("-c", str(tmp_path), "passwd", USER, stdin=PASSWORD + "\n")
    assert result.returncode == 0, result.stderr
    smtp, submission, smtps = (str(p) for p in (ports.smtp, ports.submission, ports.smtps))
    sessions: list[tuple[str, Client]] = [
        (smtp, _plain),
        (smtp, _starttls),
        (submission, _submission),
        (submission, _submission_refused),
        (smtps, _smtps),
    ]
    gc.collect()
    assert _session_objects() == []
    gc.disable()
    try:
        left = asyncio.run(_serve(tmp_path, sessions))
    finally:
        gc.enable()
    assert left == []
