"""SMTP server core under hypothesis: no input makes it raise, and it stays usable."""

from __future__ import annotations

import itertools

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from smtp_dialogue import accept_all, pump, run
from smtp_dialogue import settings as server_settings

from mailseal.smtp.events import Event, MessageComplete
from mailseal.smtp.server import Phase, ServerSettings, SmtpServer

VALID = [
    b"EHLO c\r\n",
    b"MAIL FROM:<a@b> SIZE=10\r\nRCPT TO:<c@d>\r\nDATA\r\n",
    b"Subject: x\r\n\r\n..body\r\n.\r\n",
    b"BDAT 3\r\nabc",
    b"RSET\r\n",
    b"MAIL FROM:<a@b>\r\nRCPT TO:<c@d>\r\nBDAT 2 LAST\r\nxy",
    b"QUIT\r\n",
]
CONFIGS = st.sampled_from(
    [
        server_settings(),
        server_settings(bare_newline="reject", starttls_offered=True),
        server_settings(bare_newline="no", forbid_unauth_pipelining=False, line_length_limit=20),
        server_settings(tls_required=True, starttls_offered=True, message_size_limit=16),
    ]
)
FUZZ = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _still_answers_noop(server: SmtpServer) -> bool:
    """Close any open content, then NOOP must be answered (or the session has ended)."""
    events: list[Event] = []

    def feed(data: bytes) -> None:
        server.receive_data(data)
        pump(server, events, accept_all, auto_tls=True)

    if server.phase is Phase.BDAT:
        feed(b"x" * 10**6)
        if server.phase is Phase.BDAT:
            return True  # a chunk announced with more than a megabyte: nothing to learn
    if server.phase is Phase.DATA:
        feed(b"\r\n.\r\n")
    if server.phase is Phase.STARTTLS:
        server.tls_established()
    feed(b"\r\n")
    server.data_to_send()
    feed(b"NOOP\r\n")
    out = server.data_to_send()
    return server.closed or out.endswith(b"250 2.0.0 Ok\r\n")


@FUZZ
@given(data=st.lists(st.binary(max_size=64), max_size=12), config=CONFIGS)
def test_arbitrary_bytes_never_raise(data: list[bytes], config: ServerSettings) -> None:
    t = run([[piece] for piece in data], config)
    assert t.output.startswith(b"220 ")
    assert _still_answers_noop(t.server)


@FUZZ
@given(
    cuts=st.lists(st.integers(min_value=0, max_value=200), max_size=6),
    junk=st.lists(st.tuples(st.integers(0, 200), st.binary(max_size=16)), max_size=3),
    config=CONFIGS,
)
def test_valid_dialogue_with_junk_and_random_splits(
    cuts: list[int], junk: list[tuple[int, bytes]], config: ServerSettings
) -> None:
    stream = bytearray(b"".join(VALID))
    for at, noise in junk:
        stream[at:at] = noise
    points = sorted({min(c, len(stream)) for c in cuts} | {0, len(stream)})
    pieces = [bytes(stream[a:b]) for a, b in itertools.pairwise(points)]
    t = run([pieces], config)
    assert t.output.startswith(b"220 ")
    assert all(line[:3].isdigit() for line in t.replies)
    assert _still_answers_noop(t.server)


@FUZZ
@given(body=st.binary(max_size=300), config=CONFIGS)
def test_data_content_never_has_bare_lf_or_nul(body: bytes, config: ServerSettings) -> None:
    turns = [b"EHLO c\r\n", b"MAIL FROM:<a@b>\r\nRCPT TO:<c@d>\r\nDATA\r\n", body + b"\r\n.\r\n"]
    for message in run(turns, config).of_type(MessageComplete):
        content = message.content
        assert b"\x00" not in content
        assert b"\n" not in content.replace(b"\r\n", b"")
        assert content == b"" or content.endswith(b"\r\n")
