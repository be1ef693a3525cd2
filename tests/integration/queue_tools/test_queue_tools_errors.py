"""Bad input to the queue tools and the control socket; the tools with the master stopped.

Every bad input gets Postfix's diagnostic and exit status, never a traceback;
garbage on the control socket gets an error reply and the master keeps serving.
With the master stopped, postsuper works on the files itself and writes the log
lines, and a run over many messages draws a progress bar on a terminal only.
"""

import json
import os
import select
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from queue_tools_peer import put_message, queue_of, tool

from mailseal.net.control import MAX_REQUEST
from mailseal.net.unixpath import connect_unix
from mailseal.queue.store import QueueName, QueueStore
from mailseal.testing.server import Instance, make_instance


def control_exchange(path: Path, data: bytes) -> list[dict[str, object]]:
    with connect_unix(path, 10.0) as sock:
        sock.sendall(data)
        sock.shutdown(socket.SHUT_WR)
        chunks = []
        while chunk := sock.recv(65536):
            chunks.append(chunk)
    return [json.loads(line) for line in b"".join(chunks).splitlines()]


def test_bad_input_while_running(server: Instance) -> None:
    directory = server.directory
    store = QueueStore(directory / "queue")
    kept = put_message(store, "1A2B3C4D5E9", QueueName.HOLD, ("bob@remote.test",))

    assert tool(directory, "postsuper", "-d", "1a2b-not-an-id") == (
        0,
        "",
        "postsuper: warning: invalid mail queue id: 1a2b-not-an-id\n",
    )
    # Postfix's postsuper says nothing about a well-formed ID that names no message.
    assert tool(directory, "postsuper", "-d", "ABCDEF012345") == (0, "", "")
    assert tool(directory, "postsuper", "-d", "ALL", "nosuchqueue") == (
        1,
        "",
        "postsuper: fatal: invalid directory name: nosuchqueue\n",
    )
    assert tool(directory, "postsuper", "-H", "ALL", "deferred")[2] == ""  # nothing on hold there
    assert queue_of(store, kept) == "hold"
    assert tool(directory, "postcat", "-q", "ABCDEF012345") == (
        1,
        "",
        "postcat: fatal: open queue file ABCDEF012345: No such file or directory\n",
    )
    assert tool(directory, "postcat", "-q", "../../etc/passwd")[2] == (
        "postcat: fatal: bad mail queue ID: ../../etc/passwd\n"
    )
    usage = (
        "postqueue: fatal: usage: postqueue -f | postqueue -j | postqueue -p | postqueue -s site\n"
    )
    assert tool(directory, "postqueue") == (64, "", usage)
    assert tool(directory, "postqueue", "-p", "-f") == (64, "", usage)
    assert tool(directory, "postqueue", "-s", "bad site!") == (
        64,
        "",
        'postqueue: fatal: Cannot flush mail queue - invalid destination: "bad site!"\n',
    )

    path = directory / "queue" / "private" / "control"
    replies = control_exchange(
        path,
        b"garbage\n"
        b'{"command": "admin", "action": "explode", "ids": []}\n'
        b'{"command": "admin", "action": "delete", "ids": ["../x"]}\n'
        b'{"command": "admin", "action": "delete", "ids": [], "queues": ["corrupt"]}\n'
        b'{"command": "flush_site"}\n'
        b'{"command": 42}\n',
    )
    assert [r["ok"] for r in replies] == [False] * 6
    assert [str(r["error"]) for r in replies[1:]] == [
        "unknown action: 'explode'",
        "invalid mail queue id: ../x",
        "invalid directory name: corrupt",
        "flush_site needs a site",
        "unknown command: 42",
    ]
    huge = control_exchange(path, b'{"command": "list", "pad": "' + b"x" * MAX_REQUEST + b'"}\n')
    assert huge == [{"ok": False, "error": f"request longer than {MAX_REQUEST} bytes"}]
    status, listing, _ = tool(directory, "postqueue", "-p")
    assert status == 0
    assert f"{kept}! " in listing  # still served, nothing touched
    assert "Traceback" not in server.process.stderr()


def test_stopped_master_tools_work_on_files(tmp_path: Path) -> None:
    directory = tmp_path / "mailseal"
    make_instance(directory)
    store = QueueStore(directory / "queue")
    store.create()
    first = put_message(store, "1A2B3C4D5E1", QueueName.DEFERRED, ("bob@remote.test",))
    second = put_message(store, "1A2B3C4D5E2", QueueName.DEFERRED, ("carol@remote.test",))
    assert tool(directory, "postqueue", "-f") == (
        69,
        "",
        "postqueue: fatal: Cannot flush mail queue - mail system is down\n",
    )
    assert tool(directory, "postqueue", "-s", "remote.test")[0] == 69
    status, _, err = tool(directory, "postsuper", "-h", "-", "-r", second, stdin=f"{first}\n")
    assert status == 0
    assert err == "postsuper: Requeued: 1 message\npostsuper: Placed on hold: 1 message\n"
    assert (queue_of(store, first), queue_of(store, second)) == ("hold", "deferred")
    assert store.next_attempt(second, QueueName.DEFERRED) > time.time() - 60
    log = (directory / "log" / "maillog").read_text()
    assert "mailseal/postsuper[" in log
    for text in (f"{first}: placed on hold", f"{second}: requeued", "Placed on hold: 1 message"):
        assert text in log
    status, _, err = tool(directory, "postsuper", "-d", "ALL", "-d", first)
    assert err == (
        'postsuper: warning: option "-d ALL" will ignore other command line queue IDs\n'
        "postsuper: Deleted: 2 messages\n"
    )
    assert tool(directory, "postqueue", "-p")[1] == "Mail queue is empty\n"
    log = (directory / "log" / "maillog").read_text()
    assert f"{first}: removed" not in log  # ALL is not logged per message, as in Postfix
    assert "Deleted: 2 messages" in log


def read_all(fd: int, timeout: float = 60.0) -> str:
    text = b""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        ready, _, _ = select.select([fd], [], [], 0.2)
        if not ready:
            continue
        try:
            chunk = os.read(fd, 65536)
        except OSError:  # EIO: the child closed its end
            break
        if not chunk:
            break
        text += chunk
    return text.decode()


@pytest.mark.parametrize("terminal", [True, False])
def test_progress_bar_only_on_a_terminal(tmp_path: Path, terminal: bool) -> None:
    directory = tmp_path / "mailseal"
    make_instance(directory)
    store = QueueStore(directory / "queue", fsync=False)
    store.create()
    for number in range(150):
        put_message(store, f"1A2B3C4{number:04X}", QueueName.DEFERRED, ("x@remote.test",))
    argv = [sys.executable, "-m", "mailseal", "-c", str(directory), "postsuper", "-h", "ALL"]
    env = {k: v for k, v in os.environ.items() if k != "MAILSEAL_CONFIG_DIR"}
    if terminal:
        master, slave = os.openpty()
        with subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=slave, env=env) as child:
            os.close(slave)
            drawn = read_all(master)
            assert child.wait(60) == 0
        os.close(master)
        assert "\r[" in drawn
        assert "] 150/150" in drawn
        assert drawn.rstrip().endswith("postsuper: Placed on hold: 150 messages")
    else:
        done = subprocess.run(
            argv, capture_output=True, text=True, env=env, timeout=60, check=False
        )
        assert done.returncode == 0
        assert done.stderr == "postsuper: Placed on hold: 150 messages\n"
    assert len(store.list(QueueName.HOLD)) == 150
