"""swaks and openssl s_client, installed from Debian, talk to a running mailseal."""

import email
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from mailseal.testing.server import Instance, Servers

pytestmark = pytest.mark.interop

RCPT = "postmaster@example.test"


@pytest.fixture
def server(tmp_path: Path) -> Iterator[Instance]:
    servers = Servers(tmp_path)
    yield servers.start()
    servers.stop_all()


def need(tool: str) -> str:
    path = shutil.which(tool)
    if path is None:
        pytest.fail(f"{tool} is not installed: run ./dev test (it installs debian-packages.txt)")
    return path


def test_swaks_with_starttls_delivers_to_the_maildir(server: Instance) -> None:
    result = subprocess.run(
        [
            need("swaks"),
            "--server",
            f"127.0.0.1:{server.ports.smtp}",
            "--to",
            RCPT,
            "--from",
            "swaks@client.example.net",
            "--ehlo",
            "client.example.net",
            "--tls",
            "--header",
            "Subject: swaks interop",
            "--body",
            "sent by swaks",
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "<-  220 2.0.0 Ready to start TLS" in result.stdout
    assert "250 2.0.0 Ok: queued as" in result.stdout
    files = server.process.wait_delivered(1)
    delivered = email.message_from_bytes(files[0].read_bytes())
    assert delivered["Subject"] == "swaks interop"
    assert "with ESMTPS id" in delivered["Received"]


def test_openssl_s_client_starttls_verifies_and_sends(server: Instance) -> None:
    # Paced like a real client: nothing may follow EHLO or DATA before their
    # replies (mailseal, like Postfix 3.9+, drops unauthorized pipelining).
    steps = [
        "EHLO client.example.net\n",
        f"MAIL FROM:<openssl@client.example.net>\nRCPT TO:<{RCPT}>\nDATA\n",
        "Subject: via s_client\n\nhello\n.\n",
        "QUIT\n",
    ]
    process = subprocess.Popen(
        [
            need("openssl"),
            "s_client",
            "-starttls",
            "smtp",
            "-crlf",
            "-ign_eof",
            "-connect",
            f"127.0.0.1:{server.ports.smtp}",
            "-CAfile",
            server.cafile,
            "-verify_hostname",
            "mail.example.test",
            "-verify_return_error",
            "-tls1_3",
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    assert process.stdin is not None
    try:
        time.sleep(1.0)
        for step in steps:
            process.stdin.write(step)
            process.stdin.flush()
            time.sleep(0.7)
        output, _ = process.communicate(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
    assert "Verify return code: 0 (ok)" in output, output
    assert "250 2.0.0 Ok: queued as" in output, output
    assert "221 2.0.0 Bye" in output
    server.process.wait_delivered(1)
    server.process.wait_log(r"TLS connection established from \S+\[127\.0\.0\.1\]: TLSv1\.3")
