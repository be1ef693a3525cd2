"""The Received: header and Message-ID extraction of cleanup."""

from mailseal.services.anvil import RateCounter
from mailseal.services.cleanup import (
    ReceivedFacts,
    find_message_id,
    received_header,
    with_protocol,
)

WHEN = 1_800_000_000.0


def facts(**changes: object) -> ReceivedFacts:
    values: dict[str, object] = {
        "helo": "client.example.net",
        "client_name": "localhost",
        "client_addr": "127.0.0.1",
        "by_host": "mail.example.test",
        "product": "mailseal",
        "protocol": "ESMTPS",
        "queue_id": "4ABCDEF012",
        "recipients": ("u@example.test",),
        "when": WHEN,
    }
    values.update(changes)
    return ReceivedFacts(**values)  # type: ignore[arg-type]


def test_single_recipient_header_is_folded_like_postfix() -> None:
    header = received_header(facts(tls_comments=("(using TLSv1.3 with cipher X (256/256 bits))",)))
    lines = header.decode().split("\r\n")
    assert lines[0] == "Received: from client.example.net (localhost [127.0.0.1])"
    assert lines[1] == "\t(using TLSv1.3 with cipher X (256/256 bits))"
    assert lines[2] == "\tby mail.example.test (mailseal) with ESMTPS id 4ABCDEF012"
    assert lines[3].startswith("\tfor <u@example.test>; ")
    assert header.endswith(b"\r\n")


def test_rfc_8314_tls_clause_follows_for() -> None:
    header = received_header(facts(tls_clause="tls TLS_AES_256_GCM_SHA384")).decode()
    lines = header.split("\r\n")
    assert lines[2] == "\tfor <u@example.test>"
    assert lines[3].startswith("\ttls TLS_AES_256_GCM_SHA384; ")


def test_many_recipients_are_not_listed_and_ipv6_is_tagged() -> None:
    header = received_header(facts(recipients=("a@x", "b@x"), client_addr="::1")).decode()
    assert "for <" not in header
    assert "[IPv6:::1]" in header


def test_with_protocol_follows_rfc_3848() -> None:
    assert with_protocol(extended=False, tls=False, authenticated=False) == "SMTP"
    assert with_protocol(extended=True, tls=False, authenticated=False) == "ESMTP"
    assert with_protocol(extended=True, tls=True, authenticated=False) == "ESMTPS"
    assert with_protocol(extended=True, tls=True, authenticated=True) == "ESMTPSA"


def test_message_id_found_only_in_the_header_block() -> None:
    content = b"Subject: x\r\nMessage-ID:\r\n <abc@example.test>\r\n\r\nMessage-ID: <body@x>\r\n"
    assert find_message_id(content) == "<abc@example.test>"
    assert find_message_id(b"Subject: x\r\n\r\nMessage-ID: <body@x>\r\n") == ""
    assert find_message_id(b"message-id: <first@x>\r\n\r\n") == "<first@x>"


def test_rate_counter_windows() -> None:
    counter = RateCounter(60.0)
    assert [counter.hit("1.2.3.4", t) for t in (0, 1, 2)] == [1, 2, 3]
    assert counter.hit("5.6.7.8", 3) == 1
    assert counter.hit("1.2.3.4", 61) == 1  # a new window
