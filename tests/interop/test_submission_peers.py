"""swaks (Debian's) submits with AUTH PLAIN and LOGIN over real TLS (issue #4).

Port 587 style with STARTTLS (``--tls``) and port 465 style with TLS from the
first byte (``--tlsc``), to a local mailbox and to a foreign domain; a wrong
password ends swaks with its AUTH exit status and the server's 535. The
instance is ``mailseal init``'s, with a user added by ``mailseal passwd``.
"""

import email
import re
import shutil
import subprocess
from collections.abc import Iterator

import pytest

from mailseal.testing.process import run_mailseal
from mailseal.testing.server import Instance, Servers, free_port

pytestmark = pytest.mark.interop

USER, PASSWORD = "alice@example.test", "swaks pass phrase"
LOCAL = "postmaster@example.test"
FOREIGN = "friend@far-away.example"
# swaks(1), EXIT CODES: "28 error in AUTH transaction".
SWAKS_AUTH_ERROR = 28
# How the two submission ports are reached: (port attribute, swaks TLS option).
STYLES = {"submission-starttls": ("submission", "--tls"), "smtps-implicit": ("smtps", "--tlsc")}


def need(tool: str) -> str:
    path = shutil.which(tool)
    if path is None:
        pytest.fail(f"{tool} is not installed: run ./dev test (it installs debian-packages.txt)")
    return path


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Instance]:
    servers = Servers(tmp_path_factory.mktemp("submission-peers"))
    # Foreign mail goes to a loopback port nobody listens on: never to the network.
    instance = servers.start(f"relayhost = [127.0.0.1]:{free_port()}\n")
    added = run_mailseal("-c", str(instance.directory), "passwd", USER, stdin=PASSWORD + "\n")
    assert added.returncode == 0, added.stderr
    yield instance
    servers.stop_all()


def swaks(
    server: Instance, style: str, mechanism: str, password: str, to: str, subject: str
) -> subprocess.CompletedProcess[str]:
    port_name, tls_option = STYLES[style]
    port = getattr(server.ports, port_name)
    return subprocess.run(
        [
            need("swaks"),
            "--server",
            f"127.0.0.1:{port}",
            tls_option,
            "--auth",
            mechanism,
            "--auth-user",
            USER,
            "--auth-password",
            password,
            "--from",
            USER,
            "--to",
            to,
            "--ehlo",
            "laptop.example.net",
            "--header",
            f"Subject: {subject}",
            "--body",
            "sent by swaks with AUTH",
            "--timeout",
            "20",
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def replied(output: str, reply: str) -> bool:
    """Whether swaks shows the server sending ``reply`` (a regex).

    swaks marks what it reads with ``<-`` in plaintext and ``<~`` inside TLS, and
    adds ``*`` to a reply it did not expect (``<~* 535 ...``).
    """
    return re.search(rf"^<[-~]\*?\s+{reply}$", output, re.MULTILINE) is not None


def queued_id(output: str) -> str:
    found = re.search(r"^<~  250 2\.0\.0 Ok: queued as (\S+)$", output, re.MULTILINE)
    assert found is not None, output
    return found.group(1)


@pytest.mark.parametrize("mechanism", ["PLAIN", "LOGIN"])
@pytest.mark.parametrize("style", sorted(STYLES))
def test_swaks_authenticates_and_sends_to_a_local_mailbox(
    server: Instance, style: str, mechanism: str
) -> None:
    subject = f"local via {style} {mechanism}"
    result = swaks(server, style, mechanism, PASSWORD, LOCAL, subject)
    assert result.returncode == 0, result.stdout + result.stderr
    assert replied(result.stdout, "235 2.7.0 Authentication successful"), result.stdout
    if style == "submission-starttls":
        assert replied(result.stdout, "220 2.0.0 Ready to start TLS"), result.stdout
    queue_id = queued_id(result.stdout)
    server.process.wait_log(rf"{queue_id}: to=<{LOCAL}>, .*status=sent")
    subjects = {
        email.message_from_bytes(p.read_bytes())["Subject"] for p in server.process.delivered()
    }
    assert subject in subjects
    client_line = server.process.wait_log(rf"{queue_id}: client=")[0]
    assert client_line.endswith(f"sasl_method={mechanism}, sasl_username={USER}")


@pytest.mark.parametrize("mechanism", ["PLAIN", "LOGIN"])
@pytest.mark.parametrize("style", sorted(STYLES))
def test_swaks_authenticates_and_relays_to_a_foreign_domain(
    server: Instance, style: str, mechanism: str
) -> None:
    result = swaks(server, style, mechanism, PASSWORD, FOREIGN, f"out via {style}")
    assert result.returncode == 0, result.stdout + result.stderr
    assert replied(result.stdout, "235 2.7.0 Authentication successful"), result.stdout
    assert replied(result.stdout, "250 2.1.5 Ok"), result.stdout  # a foreign RCPT: relayed
    queue_id = queued_id(result.stdout)
    # The relayhost is a closed loopback port: the message waits in the queue.
    server.process.wait_log(rf"{queue_id}: to=<{FOREIGN}>, .*status=deferred", timeout=30)


@pytest.mark.parametrize("mechanism", ["PLAIN", "LOGIN"])
@pytest.mark.parametrize("style", sorted(STYLES))
def test_swaks_wrong_password_gets_535(server: Instance, style: str, mechanism: str) -> None:
    result = swaks(server, style, mechanism, "not the password", LOCAL, "never sent")
    assert result.returncode == SWAKS_AUTH_ERROR, result.stdout + result.stderr
    assert replied(
        result.stdout, "535 5.7.8 Error: authentication failed: authentication failure"
    ), result.stdout
    assert "queued as" not in result.stdout
    server.process.wait_log(
        rf"SASL {mechanism} authentication failed: authentication failure, "
        rf"sasl_username={re.escape(USER)}"
    )
