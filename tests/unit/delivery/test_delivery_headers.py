"""Prepended delivery headers (Postfix mail_copy order) and the Delivered-To: loop check."""

from __future__ import annotations

import pytest

from mailseal.delivery.headers import (
    delivery_headers,
    has_delivered_to,
    loop_reason,
    quote_822_local,
)


def test_order_is_postfix_order() -> None:
    assert delivery_headers("s@example.org", "user@example.net", "alias@example.net") == (
        b"Return-Path: <s@example.org>\n"
        b"X-Original-To: alias@example.net\n"
        b"Delivered-To: user@example.net\n"
    )


@pytest.mark.parametrize("original", [None, ""])
def test_no_original_recipient_no_x_original_to(original: str | None) -> None:
    assert delivery_headers("", "user@example.net", original, eol=b"\r\n") == (
        b"Return-Path: <>\r\nDelivered-To: user@example.net\r\n"
    )


@pytest.mark.parametrize(
    ("address", "quoted"),
    [
        ("user@example.net", "user@example.net"),
        ("first.last@example.net", "first.last@example.net"),
        ("a b@example.net", '"a b"@example.net'),
        ('we"ird@example.net', '"we\\"ird"@example.net'),
        (".dot@example.net", '".dot"@example.net'),
        ("dot.@example.net", '"dot."@example.net'),
        ("two..dots@example.net", '"two..dots"@example.net'),
        ("a@b@example.net", '"a@b"@example.net'),
        ("jörg@example.net", "jörg@example.net"),  # 8-bit clean, as Postfix's default
        ("@relay.example:user@example.net", "@relay.example:user@example.net"),
        ("bare", "bare"),
    ],
)
def test_quote_822_local(address: str, quoted: str) -> None:
    assert quote_822_local(address) == quoted


def test_headers_quote_and_keep_utf8() -> None:
    headers = delivery_headers("a b@example.org", "jörg@example.net", None)
    assert headers == (
        b'Return-Path: <"a b"@example.org>\n' + "Delivered-To: jörg@example.net\n".encode()
    )


MESSAGE = (
    b"Received: from x\r\n\tby y\r\n"
    b"Delivered-To: Other@Example.NET\r\n"
    b"DELIVERED-TO :  User@Example.NET  \r\n"
    b"Subject: s\r\n"
    b"\r\n"
    b"Delivered-To: body@example.net\r\n"
)


@pytest.mark.parametrize(
    ("address", "looping"),
    [
        ("user@example.net", True),
        ("other@example.net", True),
        ("body@example.net", False),  # only the header block counts
        ("nobody@example.net", False),
    ],
)
def test_has_delivered_to(address: str, looping: bool) -> None:
    assert has_delivered_to(MESSAGE, address) is looping


def test_loop_check_reads_our_own_headers() -> None:
    message = delivery_headers("s@x", "a b@example.net", None) + b"Subject: s\n\nbody\n"
    assert has_delivered_to(message, "a b@example.net")
    assert not has_delivered_to(b"not a header line\nDelivered-To: a@b\n", "a@b")


def test_loop_reason_is_postfix_text() -> None:
    assert loop_reason("user@example.net") == "mail forwarding loop for user@example.net"
