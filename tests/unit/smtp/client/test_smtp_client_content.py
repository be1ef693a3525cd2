"""SMTP client core: CRLF normalisation, dot-stuffing and BDAT chunks of message content."""

from __future__ import annotations

import re

import pytest
from hypothesis import given
from hypothesis import strategies as st
from smtp_client_script import GREETING, run

from mailseal.smtp.client_content import bdat_chunks, dot_stuff, has_8bit, normalise

# Lines made of the characters that matter here, so that dots, CRs and LFs meet often.
tricky = st.lists(st.sampled_from([b".", b"\r", b"\n", b"a", b"\r\n", b"..", b"\x80"])).map(
    b"".join
)
content = st.one_of(tricky, st.binary(max_size=200))


def unstuff(wire: bytes) -> bytes:
    """What a server stores from a DATA stream (RFC 5321 4.5.2), or fails on bad input."""
    assert wire.endswith(b".\r\n")
    body = wire[:-3]
    assert body == b"" or body.endswith(b"\r\n")
    lines = body.split(b"\r\n")[:-1] if body else []
    out = []
    for line in lines:
        assert line != b".", "the data ended early"
        out.append(line[1:] if line.startswith(b".") else line)
    return b"".join(line + b"\r\n" for line in out)


def test_normalise_examples() -> None:
    assert normalise(b"") == b""
    assert normalise(b"a") == b"a\r\n"
    assert normalise(b"a\nb\rc\r\nd\n\re") == b"a\r\nb\r\nc\r\nd\r\n\r\ne\r\n"
    assert normalise(b"\r\r\n") == b"\r\n\r\n"


def test_dot_stuff_examples() -> None:
    assert dot_stuff(b"") == b".\r\n"
    assert dot_stuff(b".\r\n") == b"..\r\n.\r\n"
    assert dot_stuff(b"a\r\n.b\r\n..\r\n") == b"a\r\n..b\r\n...\r\n.\r\n"


def test_8bit() -> None:
    assert has_8bit(b"caf\xe9")
    assert not has_8bit(b"plain\r\n\x7f")


@given(content)
def test_unstuffing_what_is_sent_gives_the_normalised_content(data: bytes) -> None:
    normal = normalise(data)
    assert unstuff(dot_stuff(normal)) == normal


@given(content)
def test_no_bare_cr_or_lf_ever_reaches_the_wire(data: bytes) -> None:
    wire = dot_stuff(normalise(data))
    assert re.search(rb"(?<!\r)\n", wire) is None
    assert re.search(rb"\r(?!\n)", wire) is None
    # Only the final line is a lone dot: no early end of data, no smuggled one.
    assert wire.find(b"\r\n.\r\n") in (-1, len(wire) - 5)


@given(content, st.integers(1, 40))
def test_bdat_chunks_reassemble(data: bytes, size: int) -> None:
    normal = normalise(data)
    chunks = bdat_chunks(normal, size)
    joined = b""
    for i, chunk in enumerate(chunks):
        header, _, body = chunk.partition(b"\r\n")
        words = header.split()
        assert words[0] == b"BDAT"
        assert int(words[1]) == len(body) <= size
        assert (words[2:] == [b"LAST"]) == (i == len(chunks) - 1)
        joined += body
    assert joined == normal


def test_bdat_chunk_size_must_be_positive() -> None:
    with pytest.raises(ValueError, match="chunk size"):
        bdat_chunks(b"x", 0)


@given(content)
def test_the_client_sends_stuffed_normalised_content(data: bytes) -> None:
    ehlo = b"250 mx\r\n"
    t = run(
        [
            GREETING,
            lambda c: c.ehlo(),
            ehlo,
            lambda c: c.send_mail("s@x", ["r@y"], data),
            b"250 ok\r\n",
            b"250 ok\r\n",
            b"354 go\r\n",
        ]
    )
    sent_body = t.sent.split(b"DATA\r\n", 1)[1]
    assert unstuff(sent_body) == normalise(data)
    assert re.search(rb"(?<!\r)\n", t.sent) is None
