"""Reply values: wire encoding, log text, validation and Postfix's wording."""

from __future__ import annotations

import pytest

from mailseal.smtp import reply as replies
from mailseal.smtp.reply import Reply, reply
from mailseal.smtp.settings import ServerSettings, ehlo_keywords


def test_encode_single_and_multi_line() -> None:
    assert replies.OK_MAIL.encode() == b"250 2.1.0 Ok\r\n"
    two = reply(550, "5.1.1", "a", "b")
    assert two.encode() == b"550-5.1.1 a\r\n550 5.1.1 b\r\n"
    assert two.encode(enhanced_codes=False) == b"550-a\r\n550 b\r\n"
    assert Reply(250, "", ("mx", "PIPELINING")).encode() == b"250-mx\r\n250 PIPELINING\r\n"


def test_text_and_positive() -> None:
    denied = replies.relay_denied("x@y")
    assert denied.text == "554 5.7.1 <x@y>: Relay access denied"
    assert reply(550, "5.1.1", "a", "b").text == "550 5.1.1 a; b"
    assert replies.START_MAIL_INPUT.text == "354 End data with <CR><LF>.<CR><LF>"
    assert replies.START_MAIL_INPUT.is_positive
    assert not denied.is_positive


@pytest.mark.parametrize(
    ("code", "enhanced", "lines"),
    [
        (199, "", ("x",)),
        (250, "4.0.0", ("x",)),
        (250, "2.0", ("x",)),
        (250, "", ("a\r\nb",)),
        (250, "", ()),
    ],
)
def test_invalid_replies_are_refused(code: int, enhanced: str, lines: tuple[str, ...]) -> None:
    with pytest.raises(ValueError, match=r"."):
        Reply(code, enhanced, lines)


def test_postfix_wording() -> None:
    cases = {
        replies.queued("ABC"): "250 2.0.0 Ok: queued as ABC",
        replies.queued_bytes(12, "ABC"): "250 2.0.0 Ok: 12 bytes queued as ABC",
        replies.chunk_ok(5): "250 2.0.0 Ok: 5 bytes",
        replies.user_unknown("u@d", "virtual mailbox table"): (
            "550 5.1.1 <u@d>: Recipient address rejected: User unknown in virtual mailbox table"
        ),
        replies.user_unknown("u@d"): "550 5.1.1 <u@d>: Recipient address rejected: User unknown",
        replies.too_many_errors("mx"): "421 4.7.0 mx Error: too many errors",
        replies.timeout("mx"): "421 4.4.2 mx Error: timeout exceeded",
        replies.service_unavailable("mx"): "421 mx Service unavailable - try again later",
        replies.bare_newline(550, "mx"): "550 5.5.2 mx Error: bare <LF> received",
        replies.SIZE_EXCEEDED: "552 5.3.4 Message size exceeds fixed limit",
        replies.TLS_UNAVAILABLE: "454 4.7.0 TLS not available due to local problem",
        replies.MUST_STARTTLS: "530 5.7.0 Must issue a STARTTLS command first",
        replies.QUEUE_WRITE_ERROR: "451 4.3.0 Error: queue file write error",
        replies.PROTOCOL_SYNC: "554 5.5.0 Error: SMTP protocol synchronization",
    }
    for value, text in cases.items():
        assert value.text == text


def test_ehlo_keywords_drop_starttls_once_active() -> None:
    config = ServerSettings(hostname="h", banner="b", starttls_offered=True)
    assert "STARTTLS" in ehlo_keywords(config, tls_active=False)
    assert "STARTTLS" not in ehlo_keywords(config, tls_active=True)


def test_settings_validation() -> None:
    with pytest.raises(ValueError, match="bare_newline"):
        ServerSettings(hostname="h", banner="b", bare_newline="strict")
    with pytest.raises(ValueError, match="reject_code"):
        ServerSettings(hostname="h", banner="b", bare_newline_reject_code=250)
