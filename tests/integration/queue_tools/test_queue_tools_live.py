"""postsuper, postqueue and postcat against a running master, and after it stopped.

Mail goes to a relayhost that the test controls: it can stall an attempt (the
message stays active) or accept mail. Every test checks where the queue file is,
what the relay got, and what the mail log says, so a message lost or delivered
twice fails it.
"""

import json
import smtplib
import time
from collections.abc import Iterator

import pytest
from queue_tools_peer import StallingRelay, queue_of, tool

from mailseal.queue.store import QueueStore
from mailseal.testing.server import Instance, Servers, free_port

SENDER = "alice@example.test"


@pytest.fixture
def relay() -> Iterator[StallingRelay]:
    started = StallingRelay().start()
    yield started
    started.stop()


def start(servers: Servers, port: int) -> Instance:
    return servers.start(f"relayhost = [127.0.0.1]:{port}\n")


def submit(instance: Instance, *recipients: str) -> str:
    """Send one message; its queue ID, from smtpd's "250 ... queued as ID"."""
    with smtplib.SMTP("127.0.0.1", instance.ports.smtp, timeout=10) as client:
        client.ehlo()
        client.mail(SENDER)
        for recipient in recipients:
            assert client.rcpt(recipient)[0] == 250
        code, reply = client.data(f"From: {SENDER}\r\nSubject: t\r\n\r\nhi\r\n")
    assert code == 250, reply
    return reply.decode().rsplit(" ", 1)[1]


def store_of(instance: Instance) -> QueueStore:
    return QueueStore(instance.directory / "queue")


def wait_queue(store: QueueStore, queue_id: str, queue: str | None, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while queue_of(store, queue_id) != queue:
        assert time.monotonic() < deadline, f"{queue_id} in {queue_of(store, queue_id)}"
        time.sleep(0.05)


def test_hold_during_delivery_applies_after_the_attempt_then_release_delivers(
    servers: Servers, relay: StallingRelay
) -> None:
    relay.stalled = True
    server = start(servers, relay.port)
    queue_id = submit(server, "bob@remote.test")
    relay.wait_connections(1)
    store = store_of(server)
    assert queue_of(store, queue_id) == "active"
    _, listing, _ = tool(server.directory, "postqueue", "-p")
    assert f"{queue_id}* " in listing

    status, out, err = tool(server.directory, "postsuper", "-h", queue_id)
    assert (status, out, err) == (0, "", "postsuper: Placed on hold: 1 message\n")
    time.sleep(0.3)
    assert queue_of(store, queue_id) == "active"  # not pulled from under the delivery
    assert f"{queue_id}: placed on hold" not in server.process.maillog()

    relay.end_stalls()
    relay.stalled = False
    wait_queue(store, queue_id, "hold")
    log = server.process.maillog()
    deferred_at = log.index(f"{queue_id}: to=<bob@remote.test>")
    assert "status=deferred" in log[deferred_at:].splitlines()[0]
    held = server.process.wait_log(rf"mailseal/postsuper\[\d+\]: {queue_id}: placed on hold")
    assert log.index(held[0]) > deferred_at
    _, listing, _ = tool(server.directory, "postqueue", "-p")
    assert f"{queue_id}! " in listing

    status, _, err = tool(server.directory, "postsuper", "-H", queue_id)
    assert (status, err) == (0, "postsuper: Released from hold: 1 message\n")
    received = relay.wait_received(1)
    assert received[0].recipients == ["bob@remote.test"]
    wait_queue(store, queue_id, None)
    server.process.wait_log(rf"{queue_id}: released from hold")
    server.process.wait_log(rf"{queue_id}: to=<bob@remote\.test>, .*status=sent")
    time.sleep(0.5)
    assert len(relay.received) == 1  # delivered once


def test_delete_during_delivery_and_requeue(servers: Servers, relay: StallingRelay) -> None:
    relay.stalled = True
    server = start(servers, relay.port)
    store = store_of(server)
    doomed = submit(server, "gone@remote.test")
    relay.wait_connections(1)
    status, _, err = tool(server.directory, "postsuper", "-d", doomed)
    assert (status, err) == (0, "postsuper: Deleted: 1 message\n")
    assert queue_of(store, doomed) == "active"
    relay.end_stalls()
    wait_queue(store, doomed, None)
    server.process.wait_log(rf"mailseal/postsuper\[\d+\]: {doomed}: removed")

    # A deferred message (the relay hung up) is requeued: delivered at once.
    later = submit(server, "later@remote.test")
    relay.wait_connections(2)
    relay.end_stalls()
    wait_queue(store, later, "deferred")
    relay.stalled = False
    status, _, err = tool(server.directory, "postsuper", "-r", later)
    assert (status, err) == (0, "postsuper: Requeued: 1 message\n")
    assert relay.wait_received(1)[0].recipients == ["later@remote.test"]
    wait_queue(store, later, None)
    server.process.wait_log(rf"mailseal/postsuper\[\d+\]: {later}: requeued")
    assert all(m.recipients != ["gone@remote.test"] for m in relay.received)


def test_flush_site_and_flush_once_the_destination_works(servers: Servers) -> None:
    port = free_port()  # nothing listens yet: every attempt is deferred
    server = start(servers, port)
    store = store_of(server)
    first = submit(server, "a@site-a.test")
    second_id = submit(server, "b@site-b.test")
    wait_queue(store, first, "deferred")
    wait_queue(store, second_id, "deferred")

    status, out, _ = tool(server.directory, "postqueue", "-j")
    assert status == 0
    listed = [json.loads(line) for line in out.splitlines()]
    assert {e["queue_id"]: e["queue_name"] for e in listed} == {
        first: "deferred",
        second_id: "deferred",
    }
    reasons = [r["delay_reason"] for e in listed for r in e["recipients"]]
    assert all("Connection refused" in reason for reason in reasons)

    relay = StallingRelay(port=port).start()
    try:
        assert tool(server.directory, "postqueue", "-s", "site-a.test")[:2] == (0, "")
        assert relay.wait_received(1)[0].recipients == ["a@site-a.test"]
        wait_queue(store, first, None)
        time.sleep(0.5)
        assert queue_of(store, second_id) == "deferred"  # another site: left alone
        assert tool(server.directory, "postqueue", "-f")[:2] == (0, "")
        assert relay.wait_received(2)[1].recipients == ["b@site-b.test"]
        wait_queue(store, second_id, None)
    finally:
        relay.stop()
    assert tool(server.directory, "postqueue", "-p")[1] == "Mail queue is empty\n"


def test_postcat_shows_envelope_and_content(servers: Servers) -> None:
    server = start(servers, free_port())
    queue_id = submit(server, "bob@remote.test", "carol@remote.test")
    wait_queue(store_of(server), queue_id, "deferred")
    status, out, err = tool(server.directory, "postcat", "-q", queue_id)
    assert (status, err) == (0, "")
    lines = out.splitlines()
    label = f"deferred/{queue_id}"
    assert lines[0] == f"*** ENVELOPE RECORDS {label} ***"
    assert lines[1].startswith("message_size: ")
    assert lines[2].startswith("message_arrival_time: ")
    assert f"sender: {SENDER}" in lines
    assert "recipient: bob@remote.test" in lines
    assert "recipient: carol@remote.test" in lines
    contents = lines.index(f"*** MESSAGE CONTENTS {label} ***")
    assert lines[contents + 1].startswith("Received: from ")
    assert "Subject: t" in lines
    assert lines[-2:] == [f"*** HEADER EXTRACTED {label} ***", f"*** MESSAGE FILE END {label} ***"]
    headers = tool(server.directory, "postcat", "-h", "-q", queue_id)[1]
    assert "Subject: t\n" in headers
    assert "***" not in headers
    assert "hi" not in headers.splitlines()
    assert tool(server.directory, "postcat", "-b", "-q", queue_id)[1] == "\nhi\n"
    envelope = tool(server.directory, "postcat", "-e", "-q", queue_id)[1]
    assert "Subject: t" not in envelope
    assert f"*** MESSAGE FILE END {label} ***" in envelope
