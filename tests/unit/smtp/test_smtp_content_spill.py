"""SMTP server core: large content goes to the driver's spill, not to memory."""

from __future__ import annotations

from smtp_dialogue import accept_all, settings

from mailseal.smtp.content import HEAD_KEEP, SPILL_THRESHOLD, ContentSink
from mailseal.smtp.events import Event, MessageComplete
from mailseal.smtp.server import SmtpServer


class ListSpill:
    """A spill that remembers what it was given (the driver's file, in memory)."""

    def __init__(self) -> None:
        self.data = bytearray()
        self.discarded = False

    def write(self, data: bytes) -> None:
        assert not self.discarded
        self.data += data

    def discard(self) -> None:
        self.discarded = True


class Factory:
    """Makes spills and keeps them for the test to look at."""

    def __init__(self) -> None:
        self.made: list[ListSpill] = []

    def __call__(self) -> ListSpill:
        self.made.append(ListSpill())
        return self.made[-1]


def test_small_content_stays_in_memory() -> None:
    factory = Factory()
    made = factory.made
    sink = ContentSink(0, factory, threshold=100)
    sink.add(b"x" * 100)
    assert made == []
    assert sink.content == b"x" * 100


def test_content_past_the_threshold_goes_to_the_spill_and_the_head_stays() -> None:
    factory = Factory()
    made = factory.made
    sink = ContentSink(0, factory, threshold=10)
    pieces = [b"Subject: a\r\n", b"\r\n", b"y" * (HEAD_KEEP + 5000)]
    for piece in pieces:
        sink.add(piece)
    assert len(made) == 1
    assert bytes(made[0].data) == b"".join(pieces)
    assert sink.spill is made[0]
    assert sink.content == b"".join(pieces)[:HEAD_KEEP]
    assert sink.size == sum(map(len, pieces))


def test_too_big_discards_the_spill() -> None:
    factory = Factory()
    made = factory.made
    sink = ContentSink(50, factory, threshold=10)
    sink.add(b"a" * 20)
    sink.add(b"b" * 40)
    assert made[0].discarded
    assert sink.too_big
    assert sink.spill is None
    assert sink.content == b""


def test_nul_discards_the_spill() -> None:
    factory = Factory()
    made = factory.made
    sink = ContentSink(0, factory, threshold=10)
    sink.add(b"a" * 20)
    sink.add(b"b\x00c")
    sink.add(b"more")
    assert made[0].discarded
    assert sink.has_nul
    assert sink.content == b""


def _session(spill: ListSpill | None, *turns: bytes) -> list[Event]:
    server = SmtpServer(settings(message_size_limit=0))
    if spill is not None:
        server.spill_to(lambda: spill)
    server.greet()
    events: list[Event] = []
    for turn in turns:
        server.receive_data(turn)
        while (event := server.next_event()) is not None:
            events.append(event)
            if server.pending is event:
                server.answer(accept_all(event))
        server.data_to_send()
    return events


def test_a_large_data_message_arrives_through_the_spill() -> None:
    line = b"z" * 998 + b"\r\n"
    body = b"Subject: big\r\n\r\n" + line * (SPILL_THRESHOLD // len(line) + 10)
    spill = ListSpill()
    wire = body  # no line starts with a dot: nothing to stuff
    events = _session(
        spill,
        b"EHLO c\r\n",
        b"MAIL FROM:<a@b>\r\nRCPT TO:<c@d>\r\nDATA\r\n",
        *(wire[i : i + 65536] for i in range(0, len(wire), 65536)),
        b".\r\n",
    )
    done = [e for e in events if isinstance(e, MessageComplete)]
    assert len(done) == 1
    assert done[0].spill is spill
    assert bytes(spill.data) == body
    assert done[0].content == body[:HEAD_KEEP]
    assert done[0].envelope.size == len(body)


def test_a_large_bdat_message_arrives_through_the_spill() -> None:
    chunk = b"q" * 100_000 + b"\r\n"
    spill = ListSpill()
    turns = [b"EHLO c\r\n", b"MAIL FROM:<a@b>\r\nRCPT TO:<c@d>\r\n"]
    turns += [b"BDAT %d\r\n%s" % (len(chunk), chunk) for _ in range(3)]
    turns.append(b"BDAT 0 LAST\r\n")
    events = _session(spill, *turns)
    done = [e for e in events if isinstance(e, MessageComplete)]
    assert bytes(spill.data) == chunk * 3
    assert done[0].spill is spill


def test_without_a_spill_factory_everything_stays_in_memory() -> None:
    body = b"w" * (SPILL_THRESHOLD * 2) + b"\r\n"
    events = _session(
        None, b"EHLO c\r\n", b"MAIL FROM:<a@b>\r\nRCPT TO:<c@d>\r\nDATA\r\n", body, b".\r\n"
    )
    done = [e for e in events if isinstance(e, MessageComplete)]
    assert done[0].spill is None
    assert done[0].content == body
