"""A short soak: many concurrent sessions, plain and STARTTLS, each message exactly once.

Bounded in count (MESSAGES) and in time (DEADLINE); marked ``soak`` so it can be
selected or skipped by name, and run by ``./dev test`` like everything else.
"""

import email
import smtplib
import threading
import time
import uuid
from pathlib import Path

import pytest
from raw_smtp import client_context

from mailseal.testing.server import MailsealProcess, make_instance

pytestmark = pytest.mark.soak

RCPT = "postmaster@example.test"
MESSAGES = 1200
WORKERS = 16
DEADLINE = 120.0


def test_concurrent_sessions_deliver_every_message_exactly_once(tmp_path: Path) -> None:
    directory = tmp_path / "mailseal"
    ports = make_instance(directory)
    server = MailsealProcess(directory).start()
    acknowledged: list[str] = []
    failures: list[str] = []
    lock = threading.Lock()
    started = time.monotonic()

    def worker(index: int) -> None:
        context = client_context()
        for n in range(index, MESSAGES, WORKERS):
            if time.monotonic() - started > DEADLINE:
                return
            msgid = f"<{uuid.uuid4().hex}@soak.test>"
            body = f"Subject: soak {n}\r\nMessage-ID: {msgid}\r\n\r\n{'z' * (n % 7000)}\r\n"
            try:
                with smtplib.SMTP("127.0.0.1", ports.smtp, timeout=30) as client:
                    if n % 2:
                        client.starttls(context=context)
                    client.sendmail("soak@client.example.net", [RCPT], body.encode())
            except (OSError, smtplib.SMTPException) as error:
                with lock:
                    failures.append(f"{n}: {error!r}")
                continue
            with lock:
                acknowledged.append(msgid)

    try:
        threads = [threading.Thread(target=worker, args=(i,)) for i in range(WORKERS)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(DEADLINE + 30)
        assert not failures, failures[:5]
        assert len(acknowledged) == MESSAGES
        files = server.wait_delivered(MESSAGES, timeout=60)
        seen = [email.message_from_bytes(p.read_bytes())["Message-ID"] for p in files]
        assert sorted(seen) == sorted(acknowledged)  # every one, none twice
        assert not list((directory / "queue" / "incoming").iterdir())
        assert not list((directory / "queue" / "active").iterdir())
        log = server.maillog()
        assert log.count("status=sent (delivered to maildir)") == MESSAGES
        assert "Traceback" not in server.stderr() and "error:" not in log
    finally:
        server.stop()
