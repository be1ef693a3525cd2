"""Run the real ``mailseal`` command in a child process, as an admin would."""

from __future__ import annotations

import os
import subprocess
import sys

__all__ = ["run_mailseal"]


def run_mailseal(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    """Run ``python -m mailseal ARGS``; the exit status is returned, never raised."""
    env = {k: v for k, v in os.environ.items() if k != "MAILSEAL_CONFIG_DIR"}
    return subprocess.run(  # noqa: S603 - our own interpreter and module
        [sys.executable, "-m", "mailseal", *args],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env=env,
    )
