"""``mailseal sendmail`` against a running server: what cron and scripts do, end to end.

One server for the module (two virtual mailboxes, ``myorigin = example.test`` so
bare names land in them); each test finds its message by a unique Subject.
"""

import os
import pwd
import re
import time
from collections.abc import Iterator

import pytest
from sendmail_support import sendmail, tag, wait_message

from mailseal.queue.store import QueueName, QueueStore
from mailseal.testing.server import MailsealProcess, make_instance

LOGIN = pwd.getpwuid(os.getuid()).pw_name
UID = os.getuid()


@pytest.fixture(scope="module")
def running(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MailsealProcess]:
    directory = tmp_path_factory.mktemp("sendmail") / "mailseal"
    make_instance(directory, "myorigin = example.test\n")
    with (directory / "vmailbox").open("a") as vmailbox:
        vmailbox.write("alice@example.test  example.test/alice/\n")
    process = MailsealProcess(directory).start()
    yield process
    process.stop()


def test_t_takes_recipients_from_headers_removes_bcc_and_adds_headers(
    running: MailsealProcess,
) -> None:
    subject = tag()
    result = sendmail(
        running.directory,
        "-t",
        "-F",
        "Joe Q. User",
        stdin=f"To: postmaster\nBcc: alice\nSubject: {subject}\n\nhi\n".encode(),
    )
    assert (result.returncode, result.stderr) == (0, b"")
    queue_ids = set()
    for user in ("postmaster", "alice"):
        message = wait_message(running, subject, user)
        assert "Bcc" not in message
        assert message["Return-Path"] == f"<{LOGIN}@example.test>"
        assert message["From"] == f'"Joe Q. User" <{LOGIN}@example.test>'
        assert message["To"] == "postmaster"
        assert re.fullmatch(r"<\d{14}\.[0-9A-F]{12}@mail\.example\.test>", message["Message-Id"])
        assert message["Date"]
        received = str(message.get_all("Received", [""])[0])
        assert received.startswith(f"by mail.example.test (mailseal, from userid {UID})")
        found = re.search(r"id ([0-9A-F]{12});", received)
        assert found is not None
        queue_ids.add(found[1])
    [queue_id] = queue_ids  # one queue file, delivered to both
    running.wait_log(rf"mailseal/pickup\[\d+\]: {queue_id}: uid={UID} from=<{LOGIN}>")
    message_id = re.escape(str(message["Message-Id"]))
    running.wait_log(rf"mailseal/cleanup\[\d+\]: {queue_id}: message-id={message_id}")
    running.wait_log(rf"mailseal/qmgr\[\d+\]: {queue_id}: from=<{LOGIN}@example\.test>")


def test_t_adds_header_recipients_to_argument_recipients(running: MailsealProcess) -> None:
    subject = tag()
    stdin = f"To: postmaster@example.test\nSubject: {subject}\n\nx\n".encode()
    assert sendmail(running.directory, "-t", "alice", stdin=stdin).returncode == 0
    assert wait_message(running, subject, "alice")["To"] == "postmaster@example.test"
    assert wait_message(running, subject, "postmaster")


@pytest.mark.parametrize(
    ("options", "body"),
    [
        ((), "line1\n"),  # a lone dot ends the input
        (("-oi",), "line1\n.\nline2\n"),
        (("-i",), "line1\n.\nline2\n"),
    ],
)
def test_a_single_dot_ends_input_unless_i(
    running: MailsealProcess, options: tuple[str, ...], body: str
) -> None:
    subject = tag()
    stdin = f"Subject: {subject}\r\n\r\nline1\r\n.\r\nline2\r\n".encode()
    assert sendmail(running.directory, *options, "postmaster", stdin=stdin).returncode == 0
    message = wait_message(running, subject)
    assert message.get_payload() == body


@pytest.mark.parametrize(
    ("options", "sender"),
    [
        (("-fbounces@example.test",), "bounces@example.test"),
        (("-f", "Ann <ann@example.test>"), "ann@example.test"),
        (("-r", "old-style@example.test"), "old-style@example.test"),
        (("-f", "daemon"), "daemon@example.test"),
        (("-f", "<>"), ""),
    ],
)
def test_sender_options(running: MailsealProcess, options: tuple[str, ...], sender: str) -> None:
    subject = tag()
    stdin = f"Subject: {subject}\n\nx\n".encode()
    result = sendmail(running.directory, *options, "-F", "Test Sender", "postmaster", stdin=stdin)
    assert result.returncode == 0
    message = wait_message(running, subject)
    assert message["Return-Path"] == f"<{sender}>"
    # cleanup's From: has the full name, except for the null sender
    assert message["From"] == (f"Test Sender <{sender}>" if sender else "MAILER-DAEMON")


def test_notify_envid_and_body_reach_the_queue_file(running: MailsealProcess) -> None:
    # A remote recipient whose domain DNS cannot resolve stays queued: read its envelope.
    result = sendmail(
        running.directory,
        "-N",
        "never",
        "-V",
        "env+1",
        "-B",
        "8BITMIME",
        "someone@remote.test",
        stdin=b"Subject: dsn\n\nx\n",
    )
    assert result.returncode == 0
    line = running.wait_log(r"to=<someone@remote\.test>.*status=deferred", timeout=30)[0]
    queue_id = line.split(": ")[1]
    store = QueueStore(running.directory / "queue")
    # The qmgr logs the deferral before it moves the file to deferred/: wait for the move.
    deadline = time.monotonic() + 10
    while queue_id not in store.list(QueueName.DEFERRED) and time.monotonic() < deadline:
        time.sleep(0.05)
    envelope = store.read(queue_id, QueueName.DEFERRED).envelope
    assert [(r.address, r.notify) for r in envelope.recipients] == [
        ("someone@remote.test", "NEVER")
    ]
    assert envelope.envid == "env+2B1"  # kept xtext-encoded, as smtpd keeps ENVID
    assert envelope.body == "8BITMIME"


def test_mailseal_sendmail_entry_point(running: MailsealProcess) -> None:
    subject = tag()
    stdin = f"Subject: {subject}\n\nx\n".encode()
    result = sendmail(running.directory, "-oi", "alice", stdin=stdin, entry_point=True)
    assert (result.returncode, result.stderr) == (0, b"")
    assert wait_message(running, subject, "alice")


def test_stand_alone_smtp_session(running: MailsealProcess) -> None:
    subject = tag()
    dialogue = (
        "EHLO client\r\nMAIL FROM:<bs@example.test>\r\nRCPT TO:<alice@example.test>\r\n"
        f"DATA\r\nSubject: {subject}\r\n\r\n..dotted\r\n.\r\nQUIT\r\n"
    )
    result = sendmail(running.directory, "-bs", stdin=dialogue.encode())
    assert result.returncode == 0
    replies = result.stdout.decode().splitlines()
    assert replies[0] == "220 mail.example.test ESMTP mailseal"
    assert any(re.fullmatch(r"250 2\.0\.0 Ok: queued as [0-9A-F]{12}", r) for r in replies)
    assert replies[-1] == "221 2.0.0 Bye"
    message = wait_message(running, subject, "alice")
    assert message["Return-Path"] == "<bs@example.test>"
    assert message.get_payload() == ".dotted\n"


@pytest.mark.parametrize(
    ("args", "stdin", "stderr"),
    [
        (
            (),
            b"Subject: x\n\n",
            b"sendmail: fatal: Recipient addresses must be specified on "
            b"the command line or via the -t option\n",
        ),
        (
            ("-t",),
            b"Subject: x\n\nbody\n",
            f"sendmail: fatal: {LOGIN}({UID}): No recipient "
            "addresses found in message header\n".encode(),
        ),
        (
            ("-z",),
            b"",
            b"sendmail: invalid option -- 'z'\nsendmail: fatal: usage: sendmail [options]\n",
        ),
        (("-n", "x"), b"", b"sendmail: fatal: -n option not supported\n"),
        (("-bp", "x"), b"", b"sendmail: fatal: display queue mode requires no recipient\n"),
        (("-B", "x", "r"), b"", b"sendmail: fatal: -B option needs 8BITMIME or 7BIT\n"),
    ],
)
def test_bad_usage_exits_64_with_postfix_messages(
    running: MailsealProcess, args: tuple[str, ...], stdin: bytes, stderr: bytes
) -> None:
    before = sorted((running.directory / "queue" / "maildrop").iterdir())
    result = sendmail(running.directory, *args, stdin=stdin)
    assert (result.returncode, result.stderr) == (64, stderr)
    assert sorted((running.directory / "queue" / "maildrop").iterdir()) == before


def test_ignored_legacy_options_still_deliver(running: MailsealProcess) -> None:
    subject = tag()
    stdin = f"Subject: {subject}\n\nx\n".encode()
    result = sendmail(
        running.directory, "-odq", "-oem", "-v", "-m", "-U", "-q30m", "postmaster", stdin=stdin
    )
    # -q30m makes Postfix's sendmail exit at once without reading the message
    assert (result.returncode, result.stderr) == (0, b"")
    result = sendmail(
        running.directory, "-odb", "-oem", "-v", "-m", "-U", "-Am", "postmaster", stdin=stdin
    )
    assert (result.returncode, result.stderr) == (0, b"")
    assert wait_message(running, subject)


def test_pickup_made_maildrop_and_its_socket_and_left_nothing(running: MailsealProcess) -> None:
    maildrop = running.directory / "queue" / "maildrop"
    assert maildrop.stat().st_mode & 0o7777 == 0o1733
    assert (running.directory / "queue" / "public" / "pickup").is_socket()
    assert list(maildrop.iterdir()) == []  # everything picked up


def test_bp_lists_the_queue_and_q_flushes_it(running: MailsealProcess) -> None:
    result = sendmail(running.directory, "-f", "postmaster@example.test", "late@slow.test")
    assert result.returncode == 0
    line = running.wait_log(r"to=<late@slow\.test>.*status=deferred", timeout=30)[0]
    queue_id = line.split(": ")[1]
    listing = sendmail(running.directory, "-bp")
    assert listing.returncode == 0
    text = listing.stdout.decode()
    assert re.search(rf"^{queue_id}\s+\d+ .* postmaster@example\.test$", text, re.M), text
    assert "late@slow.test" in text
    # -q attempts deferred mail now (not at queue_run_delay): a second deferral follows
    flush = sendmail(running.directory, "-q")
    assert (flush.returncode, flush.stderr) == (0, b"")
    running.wait_log(rf"{queue_id}: to=<late@slow\.test>.*status=deferred", count=2, timeout=30)
    site = sendmail(running.directory, "-qRslow.test")
    assert (site.returncode, site.stderr) == (0, b"")
    running.wait_log(rf"{queue_id}: to=<late@slow\.test>.*status=deferred", count=3, timeout=30)
