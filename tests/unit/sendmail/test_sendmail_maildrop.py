"""The maildrop file format, its durable writes, and the pickup poke socket."""

import os
import socket
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mailseal.queue.maildrop import (
    Maildrop,
    MaildropError,
    Submission,
    decode,
    encode,
    poke,
    socket_address,
)

SUB = Submission(
    uid=1000,
    sender="joe",
    recipients=("a@example.test", "b"),
    extract_recipients=True,
    full_name="Joe User",
    notify="SUCCESS,DELAY",
    envid="id+2B1",
    body="8BITMIME",
    submitted=1700000000.5,
)


def test_round_trip_keeps_every_field_and_the_bytes() -> None:
    content = b"Subject: x\n\n\xff binary \r\n.\n"
    assert decode(encode(SUB, content)) == (SUB, content)


def test_per_recipient_notify_round_trip() -> None:
    sub = Submission(uid=0, sender="", recipients=("a", "b"), recipient_notify=("NEVER", ""))
    decoded, _ = decode(encode(sub, b""))
    assert decoded.notify_of(0) == "NEVER"
    assert decoded.notify_of(1) == ""


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"From: x\n", "not a mailseal maildrop file"),
        (b"mailseal-maildrop 1\n{", "no envelope line"),
        (b"mailseal-maildrop 1\n[]\n", "not an object"),
        (encode(SUB, b"abc")[:-1], "truncated"),
        (
            encode(SUB, b"").replace(b'"uid":1000', b'"uid":"root"'),
            "bad envelope: uid",
        ),
        (encode(SUB, b"").replace(b'"body"', b'"boody"'), "unknown fields"),
    ],
)
def test_damaged_files_are_refused_with_a_reason(data: bytes, reason: str) -> None:
    with pytest.raises(MaildropError, match=reason):
        decode(data)


@given(st.binary(max_size=300))
def test_any_bytes_decode_or_raise_maildrop_error(data: bytes) -> None:
    try:
        submission, _ = decode(b"mailseal-maildrop 1\n" + data)
    except MaildropError as error:
        assert str(error)  # always a reason, never another exception
    else:
        assert isinstance(submission, Submission)


def test_write_list_read_remove(tmp_path: Path) -> None:
    (tmp_path / "corrupt").mkdir()
    drop = Maildrop(tmp_path)
    drop.create()
    assert (tmp_path / "maildrop").stat().st_mode & 0o7777 == 0o1733
    first = drop.write(SUB, b"one\n")
    second = drop.write(SUB, b"two\n")
    assert drop.list() == [first, second]
    assert [p.name for p in (tmp_path / "maildrop").iterdir() if p.name.startswith("tmp-")] == []
    dropped = drop.read(first)
    assert dropped.content == b"one\n"
    assert dropped.owner == os.getuid()
    assert dropped.submission == SUB
    drop.remove(first)
    assert drop.list() == [second]
    moved = drop.quarantine(second, tmp_path / "corrupt")
    assert moved == tmp_path / "corrupt" / f"maildrop-{second}"
    assert drop.list() == []


def test_stale_temporary_files_are_removed(tmp_path: Path) -> None:
    drop = Maildrop(tmp_path)
    drop.create()
    stale = tmp_path / "maildrop" / "tmp-ABC"
    stale.write_bytes(b"half")
    os.utime(stale, (1000, 1000))
    fresh = tmp_path / "maildrop" / "tmp-DEF"
    fresh.write_bytes(b"half")
    assert drop.remove_stale_temporaries() == ["tmp-ABC"]
    assert fresh.exists()


def test_write_into_a_missing_queue_raises_os_error(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x")
    drop = Maildrop(blocker / "queue")
    with pytest.raises(OSError) as caught:
        drop.create()
    assert "queue" in str(caught.value.filename)


def _listen(queue: Path) -> socket.socket:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    with socket_address(queue) as address:
        sock.bind(address)
    sock.settimeout(5)
    return sock


@pytest.mark.parametrize("depth", [1, 12])
def test_poke_reaches_the_socket_even_past_the_sun_path_limit(tmp_path: Path, depth: int) -> None:
    queue = tmp_path.joinpath(*(["a-long-directory-name"] * depth))
    queue.mkdir(parents=True)
    Maildrop(queue).create()
    long_path = len(str(queue / "public" / "pickup")) > 107
    assert long_path == (depth > 1)
    with _listen(queue) as sock:
        assert (queue / "public" / "pickup").is_socket()
        assert poke(queue)
        assert sock.recv(16) == b"W"


def test_poke_without_a_listener_is_no_error(tmp_path: Path) -> None:
    Maildrop(tmp_path).create()
    assert poke(tmp_path) is False
