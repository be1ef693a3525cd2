"""cleanup's header work for local submissions: -t extraction, Bcc, missing headers."""

import re

import pytest

from mailseal.services.pickup_headers import (
    LocalFacts,
    extract_recipients,
    from_header,
    local_cleanup,
    mail_date,
    normalize_lines,
    parse_message,
    qualify,
    unique,
)

FACTS = LocalFacts(
    queue_id="0123456789AB",
    sender="joe@example.test",
    full_name="Joe User",
    uid=1000,
    hostname="mail.example.test",
    mail_name="mailseal",
    submitted=1700000000.0,
    now=1700000001.0,
)


def cleaned(text: bytes) -> tuple[str, str, bool]:
    content, message_id, resent = local_cleanup(parse_message(normalize_lines(text)), FACTS)
    return content.decode(), message_id, resent


def test_normalize_lines() -> None:
    assert normalize_lines(b"a\nb\r\nc") == b"a\r\nb\r\nc\r\n"
    assert normalize_lines(b"") == b""
    assert normalize_lines(b"\n") == b"\r\n"


def test_parse_message_with_folding_and_body() -> None:
    message = parse_message(b"To: a,\r\n b\r\nSubject: s\r\n\r\nbody\r\n")
    assert [f.name for f in message.fields] == ["to", "subject"]
    assert message.fields[0].value == "a, b"
    assert message.body == b"body\r\n"


def test_a_non_header_line_ends_the_header_block() -> None:
    message = parse_message(b"Subject: s\r\nthis is text\r\n")
    assert [f.name for f in message.fields] == ["subject"]
    assert message.body == b"this is text\r\n"


def test_extract_recipients_from_to_cc_bcc() -> None:
    message = parse_message(
        normalize_lines(
            b'To: "Ann A." <ann@example.test>, bob\nCc: team: c@x.test, d@x.test;\n'
            b"Bcc: hidden@x.test\nFrom: joe\n\nTo: not-a-header@x.test\n"
        )
    )
    assert extract_recipients(message) == [
        "ann@example.test",
        "bob",
        "c@x.test",
        "d@x.test",
        "hidden@x.test",
    ]


def test_resent_headers_take_over() -> None:
    message = parse_message(normalize_lines(b"To: old@x.test\nResent-To: new@x.test\n\nb\n"))
    assert extract_recipients(message) == ["new@x.test"]


def test_missing_headers_are_added_and_bcc_removed() -> None:
    text, message_id, resent = cleaned(b"To: a@x.test\nBcc: secret@x.test\nSubject: s\n\nhi\n")
    lines = text.split("\r\n")
    assert lines[0] == "Received: by mail.example.test (mailseal, from userid 1000)"
    assert lines[1].startswith("\tid 0123456789AB; ")
    assert "Bcc" not in text
    assert "secret" not in text
    assert re.fullmatch(r"<\d{14}\.0123456789AB@mail\.example\.test>", message_id)
    assert f"Message-Id: {message_id}\r\n" in text
    assert "\r\nDate: " in text
    assert "\r\nFrom: Joe User <joe@example.test>\r\n\r\nhi\r\n" in text
    assert not resent


def test_existing_headers_are_kept() -> None:
    source = b"From: Me <me@x.test>\nDate: Mon, 1 Jan 2024 00:00:00 +0000\nMessage-ID: <m@x>\n\nb\n"
    text, message_id, _ = cleaned(source)
    assert message_id == "<m@x>"
    assert text.count("From:") == 1
    assert text.count("Date:") == 1
    assert "Message-Id" not in text


def test_resent_message_gets_resent_headers() -> None:
    text, message_id, resent = cleaned(b"From: a@x\nResent-To: b@x\n\nbody\n")
    assert resent
    assert f"Resent-Message-Id: {message_id}\r\n" in text
    assert "Resent-Date: " in text
    assert "Resent-From: Joe User <joe@example.test>" in text


def test_body_without_headers_gets_an_empty_line() -> None:
    text, _, _ = cleaned(b"just text\n")
    header, _, body = text.partition("\r\n\r\n")
    assert body == "just text\r\n"
    assert header.startswith("Received:")


@pytest.mark.parametrize(
    ("sender", "name", "header"),
    [
        ("joe@x.test", "", "From: joe@x.test"),
        ("joe@x.test", "Joe Q. User", 'From: "Joe Q. User" <joe@x.test>'),
        ("joe@x.test", 'Say "hi"', 'From: "Say \\"hi\\"" <joe@x.test>'),
        ("", "Joe", "From: MAILER-DAEMON"),
        ("a b@x.test", "", 'From: "a b"@x.test'),
        ("joe@x.test", "Jörg", "From: =?utf-8?b?SsO2cmc=?= <joe@x.test>"),
    ],
)
def test_from_header(sender: str, name: str, header: str) -> None:
    assert from_header("", sender, name) == header


def test_mail_date_shape() -> None:
    assert re.fullmatch(
        r"[A-Z][a-z]{2}, [ \d]\d [A-Z][a-z]{2} \d{4} \d\d:\d\d:\d\d [+-]\d{4} \(\S+\)",
        mail_date(1700000000.0),
    )


def test_qualify_and_unique() -> None:
    assert qualify("joe", "example.test") == "joe@example.test"
    assert qualify("joe@x", "example.test") == "joe@x"
    assert qualify("", "example.test") == ""
    assert qualify("joe", "example.test", append_at_myorigin=False) == "joe"
    assert unique([("a@x", "N"), ("A@X", ""), ("b@x", "")]) == [("a@x", "N"), ("b@x", "")]
