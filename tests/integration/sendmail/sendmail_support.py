"""Helpers of the sendmail integration tests: run the command, read what was delivered."""

import email
import email.message
import os
import subprocess
import sys
import time
import uuid
from pathlib import Path

from mailseal.testing.server import MailsealProcess

SENDMAIL_ENTRY = Path(sys.executable).parent / "mailseal-sendmail"


def sendmail(
    directory: Path, *args: str, stdin: bytes = b"", entry_point: bool = False
) -> subprocess.CompletedProcess[bytes]:
    """``mailseal -c DIR sendmail ARGS`` (or the mailseal-sendmail entry point with -C)."""
    env = {k: v for k, v in os.environ.items() if k not in ("MAILSEAL_CONFIG_DIR", "NAME")}
    if entry_point:
        command = [str(SENDMAIL_ENTRY), "-C", str(directory), *args]
    else:
        command = [sys.executable, "-m", "mailseal", "-c", str(directory), "sendmail", *args]
    return subprocess.run(
        command, input=stdin, capture_output=True, timeout=60, check=False, env=env
    )


def tag() -> str:
    """A subject unique to one test, to find its message among the others."""
    return f"t-{uuid.uuid4().hex[:12]}"


def wait_message(
    process: MailsealProcess, subject: str, user: str = "postmaster", timeout: float = 15.0
) -> email.message.Message:
    """The delivered message whose Subject is ``subject``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for path in process.delivered(user):
            message = email.message_from_bytes(path.read_bytes())
            if message["Subject"] == subject:
                return message
        time.sleep(0.05)
    raise AssertionError(f"no message {subject!r} for {user}:\n{process.maillog()}")
