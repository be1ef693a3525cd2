"""postqueue -p and -j against golden files: the same report through the socket and from disk.

The queue is made by the test with fixed IDs, arrival times and contents, and read
under a fixed TZ: deferred messages (reasons shared, long, missing; a delivered
recipient left out), a held bounce from ``<>``, and an active message whose
delivery stays in progress (the relay stalls) while the master runs. After the
master stops, the same files give the same report.
"""

import time
from pathlib import Path

import pytest
from queue_tools_peer import StallingRelay, put_message, tool

from mailseal.queue.store import QueueName, QueueStore
from mailseal.testing.golden import assert_golden
from mailseal.testing.server import MailsealProcess, make_instance

GOLDEN = Path(__file__).parents[2] / "golden" / "postqueue"
SHORT = "connect to mx.example.net[192.0.2.25]:25: Connection refused"
LONG = (
    "host mx.example.org[198.51.100.7] said: 450 4.7.1 <carol@example.org>: "
    "Recipient address rejected: Greylisted, see https://example.org/greylist "
    "(in reply to RCPT TO command)"
)


RECIPIENTS = (
    "done@example.net",
    "bob@example.net",
    "dan@example.net",
    "carol@example.org",
    "eve@x.test",
)


def build_queue(store: QueueStore) -> None:
    later = time.time() + 86400  # deferred mail is not due while the test runs
    first = put_message(
        store,
        "1A2B3C4D5E1",
        QueueName.DEFERRED,
        (
            "done@example.net",
            "bob@example.net",
            "dan@example.net",
            "carol@example.org",
            "eve@x.test",
        ),
        arrival=1_700_000_000.0,
        content=b"Subject: big\r\n\r\n" + b"x" * 3000 + b"\r\n",
    )
    store.mark_done(first, QueueName.DEFERRED, 0)
    store.defer(first, QueueName.DEFERRED, {1: SHORT, 2: SHORT, 3: LONG}, later)
    second = put_message(
        store, "1A2B3C4D5E2", QueueName.DEFERRED, ("zed@example.net",), arrival=1_700_003_600.5
    )
    store.defer(second, QueueName.DEFERRED, {0: SHORT}, later)
    put_message(
        store,
        "1A2B3C4D5E3",
        QueueName.HOLD,
        ("alice@example.test",),
        sender="",
        arrival=1_700_100_000,
    )
    put_message(
        store, "1A2B3C4D5E4", QueueName.ACTIVE, ("frank@example.com",), arrival=1_700_200_000
    )


def test_report_is_the_same_running_and_stopped(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TZ", "Europe/Berlin")
    relay = StallingRelay(stalled=True).start()
    directory = tmp_path / "mailseal"
    try:
        make_instance(directory, f"relayhost = [127.0.0.1]:{relay.port}\n")
        store = QueueStore(directory / "queue")
        store.create()
        build_queue(store)
        with MailsealProcess(directory) as server:
            relay.wait_connections(1)  # the active message's attempt is under way
            status, running, errors = tool(directory, "postqueue", "-p")
            assert (status, errors) == (0, "")
            _, running_json, _ = tool(directory, "postqueue", "-j")
            _, mailq, _ = tool(directory, "mailq")
            assert "1A2B3C4D5E4: from=<alice@example.test>" in server.maillog()
        status, stopped, errors = tool(directory, "postqueue", "-p")
        _, stopped_json, _ = tool(directory, "postqueue", "-j")
    finally:
        relay.stop()
    assert status == 0
    assert errors == (
        "postqueue: warning: Mail system is down -- accessing queue directly "
        "(Connect to the mailseal control service: No such file or directory)\n"
    )
    assert_golden(running, GOLDEN / "postqueue-p.ref")
    assert stopped == running == mailq
    assert_golden(running_json, GOLDEN / "postqueue-j.ref")
    assert stopped_json == running_json
