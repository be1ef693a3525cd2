"""Envelope JSON round trip and rejection of malformed stored envelopes."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mailseal.queue.envelope import Envelope, EnvelopeError, Recipient

text = st.text(max_size=40)
recipients = st.builds(Recipient, text, text, text, text)
envelopes = st.builds(
    Envelope,
    sender=text,
    recipients=st.lists(recipients, max_size=4).map(tuple),
    arrival_time=st.floats(min_value=0, max_value=4e9),
    client_name=text,
    helo=text,
    smtputf8=st.booleans(),
    message_id=text,
)


@given(envelopes)
def test_round_trip(envelope: Envelope) -> None:
    assert Envelope.from_json(envelope.to_json()) == envelope
    assert envelope.to_json().isascii()


def test_surrogate_escaped_bytes_survive() -> None:
    raw = "us\udcc3\udcb6er@example.org"  # undecodable 8-bit bytes kept by surrogateescape
    envelope = Envelope(raw, (Recipient(raw, raw),), 1.0)
    assert Envelope.from_json(envelope.to_json()).sender == raw


@pytest.mark.parametrize(
    "data",
    [
        [],
        {"sender": "a", "arrival_time": 1},
        {"sender": "a", "recipients": "b", "arrival_time": 1},
        {"sender": "a", "recipients": [], "arrival_time": "x"},
        {"sender": "a", "recipients": [], "arrival_time": True},
        {"sender": 1, "recipients": [], "arrival_time": 1},
        {"sender": "a", "recipients": [{"address": "b"}], "arrival_time": 1},
        {"sender": "a", "recipients": [5], "arrival_time": 1},
        {"sender": "a", "recipients": [], "arrival_time": 1, "bogus": ""},
        {"sender": "a", "recipients": [], "arrival_time": 1, "smtputf8": "yes"},
    ],
)
def test_malformed_is_rejected(data: object) -> None:
    with pytest.raises(EnvelopeError):
        Envelope.from_json(json.dumps(data))
