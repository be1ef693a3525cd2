"""The client core against mailseal's own server core, in memory: DATA and BDAT, both ways."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pytest
from hypothesis import given
from hypothesis import settings as hsettings
from hypothesis import strategies as st

from mailseal.smtp.client import ClientSettings, SmtpClient
from mailseal.smtp.client_content import normalise
from mailseal.smtp.client_events import (
    ClientEvent,
    Closed,
    DataStart,
    Helo,
    MailFrom,
    MessageSent,
    Quit,
    RcptTo,
)
from mailseal.smtp.events import (
    Event,
    MailRequest,
    MessageComplete,
    ProtocolViolation,
    RcptRequest,
)
from mailseal.smtp.reply import Reply, queued, reply, user_unknown
from mailseal.smtp.server import ServerSettings, SmtpServer

QUEUE_ID = "4XyZ1"


@dataclass
class Link:
    """A client and a server core wired together; the server answers as told."""

    client: SmtpClient
    server: SmtpServer
    refuse: set[str] = field(default_factory=set)
    client_events: list[ClientEvent] = field(default_factory=list)
    server_events: list[Event] = field(default_factory=list)

    def answer(self, event: Event) -> Reply | None:
        if isinstance(event, MessageComplete):
            return queued(QUEUE_ID)
        if isinstance(event, RcptRequest) and event.recipient in self.refuse:
            return user_unknown(event.recipient, "local recipient table")
        return None

    def only(self, kind: type[Any]) -> Any:
        """The one event of ``kind`` either side produced (there must be exactly one)."""
        found = [e for e in [*self.server_events, *self.client_events] if isinstance(e, kind)]
        assert len(found) == 1, found
        return found[0]

    def pump(self) -> None:
        """Move bytes both ways until neither side has anything to say."""
        while True:
            moved = False
            while (event := self.server.next_event()) is not None:
                self.server_events.append(event)
                if self.server.pending is event:
                    self.server.answer(self.answer(event))
            to_client = self.server.data_to_send()
            if to_client:
                self.client.receive_data(to_client)
                moved = True
            while (cevent := self.client.next_event()) is not None:
                self.client_events.append(cevent)
            to_server = self.client.data_to_send()
            if to_server:
                self.server.receive_data(to_server)
                moved = True
            if not moved:
                return


def connect(prefer_bdat: bool = False, **server_overrides: Any) -> Link:
    config = ServerSettings(hostname="mx.example", banner="mx.example ESMTP", **server_overrides)
    server = SmtpServer(config)
    client = SmtpClient(
        ClientSettings(helo_name="client.example", prefer_bdat=prefer_bdat, chunk_size=64)
    )
    link = Link(client, server)
    server.greet()
    link.pump()
    assert client.ready
    client.ehlo()
    link.pump()
    assert client.ready
    return link


def send(link: Link, content: bytes, recipients: tuple[str, ...] = ("a@y", "b@y")) -> Link:
    start = len(link.client_events)
    link.client.send_mail("s@x", recipients, content)
    link.pump()
    assert link.client.ready
    del link.client_events[:start]
    return link


MESSAGE = b"Subject: test\n\n.leading dot\r\n..two\rbare CR\n" + b"x" * 300 + b"\n.\n"


@pytest.mark.parametrize("prefer_bdat", [False, True])
def test_message_round_trip(prefer_bdat: bool) -> None:
    link = connect(prefer_bdat)
    caps = link.client.capabilities
    assert caps.pipelining and caps.chunking and caps.size == 10240000
    send(link, MESSAGE)
    kinds = [type(e) for e in link.client_events]
    expected = [MailFrom, RcptTo, RcptTo, MessageSent]
    assert kinds == (expected if prefer_bdat else [*expected[:3], DataStart, MessageSent])
    sent = link.client_events[-1]
    assert isinstance(sent, MessageSent)
    assert sent.reply.code == 250 and QUEUE_ID in sent.reply.lines[0]
    message = link.only(MessageComplete)
    assert message.content == normalise(MESSAGE)
    assert message.envelope.chunking is prefer_bdat
    assert message.envelope.size == len(normalise(MESSAGE))
    assert [r.address for r in message.envelope.recipients] == ["a@y", "b@y"]
    mail = link.only(MailRequest)
    assert mail.params["SIZE"] == str(len(normalise(MESSAGE)))
    assert not [e for e in link.server_events if isinstance(e, ProtocolViolation)]


@pytest.mark.parametrize("prefer_bdat", [False, True])
def test_refused_recipient_and_then_quit(prefer_bdat: bool) -> None:
    link = connect(prefer_bdat)
    link.refuse.add("b@y")
    send(link, b"hello")
    rcpts = [e for e in link.client_events if isinstance(e, RcptTo)]
    assert [r.reply.code for r in rcpts] == [250, 550]
    assert rcpts[1].reply.enhanced == "5.1.1"
    message = link.only(MessageComplete)
    assert [r.address for r in message.envelope.recipients] == ["a@y"]
    link.client.quit()
    link.pump()
    assert link.server.closed
    link.client.receive_data(b"")  # the driver saw the server close
    link.pump()
    assert [type(e) for e in link.client_events[-2:]] == [Quit, Closed]


@pytest.mark.parametrize("prefer_bdat", [False, True])
def test_all_refused_keeps_both_sides_in_step(prefer_bdat: bool) -> None:
    link = connect(prefer_bdat)
    link.refuse.update({"a@y", "b@y"})
    send(link, b"hello")
    assert [type(e) for e in link.client_events] == [MailFrom, RcptTo, RcptTo]
    assert not [e for e in link.server_events if isinstance(e, MessageComplete)]
    link.refuse.clear()
    link.client.rset()
    link.pump()
    send(link, b"second")
    message = link.only(MessageComplete)
    assert message.content == b"second\r\n"


def test_without_pipelining_and_helo_fallback_still_delivers() -> None:
    link = connect(pipelining=False, discard_ehlo_keywords=frozenset({"ENHANCEDSTATUSCODES"}))
    assert not link.client.capabilities.pipelining
    send(link, b"one\ntwo")
    message = link.only(MessageComplete)
    assert message.content == b"one\r\ntwo\r\n"
    sent = link.client_events[-1]
    assert isinstance(sent, MessageSent)
    # The server drops the enhanced codes with the keyword (Postfix's ehlo_mask()).
    assert sent.reply == Reply(250, "", (f"Ok: queued as {QUEUE_ID}",))


def test_server_size_limit_refused_locally() -> None:
    link = connect(message_size_limit=100)
    send(link, b"x" * 200)
    assert link.client_events == [
        MessageSent(reply(552, "5.3.4", "message size 202 exceeds size limit 100"), local=True)
    ]
    assert not [e for e in link.server_events if isinstance(e, MailRequest)]


def test_helo_event_after_connect() -> None:
    link = connect()
    helo = link.only(Helo)
    assert helo.extended and helo.reply.lines[0] == "mx.example"


@hsettings(max_examples=40, deadline=None)
@given(st.binary(max_size=400), st.booleans())
def test_any_content_arrives_normalised(content: bytes, prefer_bdat: bool) -> None:
    link = connect(prefer_bdat)
    send(link, content.replace(b"\0", b""), recipients=("a@y",))
    message = link.only(MessageComplete)
    assert message.content == normalise(content.replace(b"\0", b""))
