"""The client core sending a streamed message body: pieces in, the same wire bytes out."""

from __future__ import annotations

from collections.abc import Iterator

from hypothesis import given
from hypothesis import strategies as st
from test_smtp_client_roundtrip import MESSAGE, connect, send

from mailseal.smtp.client_content import (
    StreamedContent,
    dot_stuff,
    dot_stuff_stream,
    normalise,
)
from mailseal.smtp.client_events import DataStart, MailFrom, MessageSent, RcptTo
from mailseal.smtp.events import MailRequest, MessageComplete

_TEXT = st.lists(
    st.sampled_from([b"a", b".", b"\r", b"\n", b"\r\n", b"\r\n.", b"\xe9"]), max_size=40
).map(b"".join)


@given(_TEXT, st.lists(st.integers(0, 80), max_size=6))
def test_streamed_stuffing_equals_stuffing_the_whole(data: bytes, cuts: list[int]) -> None:
    points = sorted({min(c, len(data)) for c in cuts})
    pieces = [data[a:b] for a, b in zip([0, *points], [*points, len(data)], strict=True)]
    assert b"".join(dot_stuff_stream(pieces)) == dot_stuff(normalise(data))


class Pieces:
    """The driver's reader: the message in small pieces, counting the reads."""

    def __init__(self, data: bytes, size: int = 7) -> None:
        self.data = data
        self.size = size
        self.reads = 0

    def __call__(self) -> Iterator[bytes]:
        self.reads += 1
        for start in range(0, len(self.data), self.size):
            yield self.data[start : start + self.size]


def test_a_streamed_message_goes_by_data_even_when_bdat_is_preferred() -> None:
    link = connect(prefer_bdat=True)
    pieces = Pieces(MESSAGE)
    send(link, StreamedContent(size=len(MESSAGE), eight_bit=True, pieces=pieces))  # type: ignore[arg-type]
    kinds = [type(e) for e in link.client_events]
    assert kinds == [MailFrom, RcptTo, RcptTo, DataStart, MessageSent]
    assert link.only(MessageComplete).content == normalise(MESSAGE)
    mail = link.only(MailRequest)
    assert mail.params["SIZE"] == str(len(MESSAGE))
    assert mail.params["BODY"] == "8BITMIME"
    assert pieces.reads == 1


def test_nothing_is_read_when_every_recipient_is_refused() -> None:
    link = connect()
    link.refuse = {"a@y", "b@y"}
    pieces = Pieces(MESSAGE)
    send(link, StreamedContent(size=len(MESSAGE), eight_bit=False, pieces=pieces))  # type: ignore[arg-type]
    assert pieces.reads == 0
    assert not [e for e in link.server_events if isinstance(e, MessageComplete)]
