"""RFC 3464 bounce and delay notices: structure, fields, returned original, NOTIFY rules."""

from __future__ import annotations

import email
import email.policy
import email.utils
import re
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage, Message
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mailseal.services.dsn import (
    DsnRecipient,
    NoticeDestination,
    NoticeRoute,
    build_bounce,
    delay_warning_due,
    needs_notice,
    route_notice,
    should_bounce,
)
from mailseal.services.dsn_render import fold, wrap

NOW = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
ARRIVAL = NOW - timedelta(hours=5)
ORIGINAL = (
    b"Received: from client.example (client.example [192.0.2.9])\r\n"
    b"\tby mail.example.com (mailseal) with ESMTP id 4ABC\r\n"
    b"From: Sender <s@example.com>\r\n"
    b"To: u@example.org\r\n"
    b"Subject: hello\r\n"
    b"Message-ID: <orig-1@example.com>\r\n"
    b"\r\n"
    b"first body line\r\n"
    b"second body line\r\n"
)
REASON = (
    "host mx.example.org[192.0.2.1] said: 550 5.1.1 <u@example.org>: Recipient address "
    "rejected: User unknown in virtual mailbox table (in reply to RCPT TO command)"
)
FAILED = DsnRecipient(
    address="u@example.org",
    original=None,
    action="failed",
    status="5.1.1",
    diagnostic="550 5.1.1 <u@example.org>: Recipient address rejected: User unknown",
    remote_mta="mx.example.org",
    reason=REASON,
    last_attempt=NOW - timedelta(minutes=1),
    will_retry_until=None,
)


def bounce(**overrides: Any) -> bytes:
    args: dict[str, Any] = {
        "kind": "failure",
        "reporting_mta": "mail.example.com",
        "queue_id": "4ABC",
        "sender": "s@example.com",
        "arrival": ARRIVAL,
        "now": NOW,
        "recipients": [FAILED],
        "original": ORIGINAL,
        "ret": None,
        "envid": None,
        "message_id": "20240501120000.4XYZ@mail.example.com",
    }
    args.update(overrides)
    return build_bounce(**args)


def parse(raw: bytes) -> EmailMessage:
    message = email.message_from_bytes(raw, policy=email.policy.default)
    assert isinstance(message, EmailMessage)
    return message


def messages(payload: object) -> list[Message]:
    assert isinstance(payload, list)
    assert all(isinstance(item, Message) for item in payload)
    return [item for item in payload if isinstance(item, Message)]


def parts(message: EmailMessage) -> list[Message]:
    return messages(message.get_payload())


def status_blocks(message: EmailMessage) -> list[Message]:
    """The header blocks email's parser makes of message/delivery-status."""
    return messages(parts(message)[1].get_payload())


def boundary_of(raw: bytes) -> bytes:
    match = re.search(rb'boundary="([^"]+)"', raw)
    assert match is not None
    return match.group(1)


# -- the report's shape -------------------------------------------------------------


def test_failure_is_a_multipart_report_with_three_parts_in_order() -> None:
    message = parse(bounce())
    assert message.get_content_type() == "multipart/report"
    assert message.get_param("report-type") == "delivery-status"
    types = [part.get_content_type() for part in parts(message)]
    assert types == ["text/plain", "message/delivery-status", "message/rfc822"]
    descriptions = [part["Content-Description"] for part in parts(message)]
    assert descriptions == ["Notification", "Delivery report", "Undelivered Message"]


def test_notice_header_fields() -> None:
    raw = bounce()
    message = parse(raw)
    assert raw.startswith(b"From: MAILER-DAEMON@mail.example.com (Mail Delivery System)\r\n")
    assert message["From"].addresses[0].addr_spec == "MAILER-DAEMON@mail.example.com"
    assert message["To"] == "s@example.com"
    assert message["Subject"] == "Undelivered Mail Returned to Sender"
    assert message["Auto-Submitted"] == "auto-replied"
    assert message["MIME-Version"] == "1.0"
    assert message["Message-Id"] == "<20240501120000.4XYZ@mail.example.com>"
    assert email.utils.parsedate_to_datetime(message["Date"]) == NOW
    assert "References" not in message  # only with enable_threaded_bounces


def test_message_id_given_with_brackets_is_not_doubled() -> None:
    message = parse(bounce(message_id="<id@mail.example.com>"))
    assert message["Message-Id"] == "<id@mail.example.com>"


def test_threaded_bounce_refers_to_the_original_message_id() -> None:
    message = parse(bounce(threaded=True))
    assert message["References"] == "<orig-1@example.com>"
    assert message["In-Reply-To"] == "<orig-1@example.com>"


def test_notification_text_is_postfix_template_then_recipient_lines() -> None:
    text = parts(parse(bounce()))[0]
    assert text.get_content_charset() == "us-ascii"
    body = text.get_payload(decode=True)
    assert isinstance(body, bytes)
    lines = body.decode().split("\r\n")
    assert lines[0] == "This is the mail system at host mail.example.com."
    assert "I'm sorry to have to inform you that your message could not" in lines
    assert "For further assistance, please send mail to postmaster." in lines
    assert "                   The mail system" in lines
    # the recipient line, wrapped as Postfix wraps it (79 columns, indent 4)
    joined = " ".join(line.strip() for line in lines[lines.index("") :] if line)
    assert f"<u@example.org>: {REASON}" in joined
    assert all(len(line) <= 79 for line in lines)
    assert any(line.startswith("    ") for line in lines)


def test_postmaster_name_in_the_text() -> None:
    raw = bounce(postmaster="hostmaster@example.com")
    assert b"please send mail to hostmaster@example.com.\r\n" in raw


def test_expanded_from_shows_in_text_and_as_original_recipient() -> None:
    rcpt = replace(FAILED, expanded_from="alias@example.com")
    raw = bounce(recipients=[rcpt])
    unwrapped = re.sub(rb"\r\n    ", b" ", raw)
    assert b"\r\n<u@example.org> (expanded from <alias@example.com>): host mx" in unwrapped
    message = parse(raw)
    assert status_blocks(message)[1]["Original-Recipient"] == "rfc822; alias@example.com"


# -- message/delivery-status ----------------------------------------------------------


def test_per_message_and_per_recipient_fields() -> None:
    second = replace(
        FAILED,
        address="v@example.net",
        status="5.7.1",
        diagnostic="554 5.7.1 relay access denied",
        remote_mta="mx.example.net",
    )
    blocks = status_blocks(parse(bounce(recipients=[FAILED, second])))
    assert len(blocks) == 3
    head = blocks[0]
    assert head["Reporting-MTA"] == "dns; mail.example.com"
    assert head["X-Postfix-Queue-ID"] == "4ABC"
    assert head["X-Postfix-Sender"] == "rfc822; s@example.com"
    assert email.utils.parsedate_to_datetime(head["Arrival-Date"]) == ARRIVAL
    first = blocks[1]
    assert first["Final-Recipient"] == "rfc822; u@example.org"
    assert first["Action"] == "failed"
    assert first["Status"] == "5.1.1"
    assert first["Remote-MTA"] == "dns; mx.example.org"
    assert first["Diagnostic-Code"] == (
        "smtp; 550 5.1.1 <u@example.org>: Recipient address rejected: User unknown"
    )
    assert email.utils.parsedate_to_datetime(first["Last-Attempt-Date"]) == FAILED.last_attempt
    assert "Will-Retry-Until" not in first
    assert blocks[2]["Final-Recipient"] == "rfc822; v@example.net"
    assert blocks[2]["Status"] == "5.7.1"
    assert blocks[2]["Remote-MTA"] == "dns; mx.example.net"


def test_postfix_field_order() -> None:
    raw = bounce(envid="ENV1", recipients=[replace(FAILED, original="rfc822;u@example.org")])
    order = [
        b"Reporting-MTA:",
        b"Original-Envelope-Id:",
        b"X-Postfix-Queue-ID:",
        b"X-Postfix-Sender:",
        b"Arrival-Date:",
        b"Final-Recipient:",
        b"Original-Recipient:",
        b"Action:",
        b"Status:",
        b"Remote-MTA:",
        b"Diagnostic-Code:",
        b"Last-Attempt-Date:",
    ]
    positions = [raw.index(b"\r\n" + name) for name in order]
    assert positions == sorted(positions)


def test_orcpt_and_envid_absent_when_not_given() -> None:
    raw = bounce()
    assert b"Original-Recipient" not in raw
    assert b"Original-Envelope-Id" not in raw


def test_orcpt_and_envid_present_and_xtext_decoded_when_given() -> None:
    rcpt = replace(FAILED, original="rfc822;u+2Btag@example.org")
    blocks = status_blocks(parse(bounce(recipients=[rcpt], envid="QQ+2B314")))
    assert blocks[0]["Original-Envelope-Id"] == "QQ+314"
    assert blocks[1]["Original-Recipient"] == "rfc822;u+tag@example.org"


def test_without_remote_reply_diagnostic_is_postfix_reason() -> None:
    rcpt = replace(FAILED, diagnostic=None, remote_mta=None, reason="mail for x loops back")
    block = status_blocks(parse(bounce(recipients=[rcpt])))[1]
    assert block["Diagnostic-Code"] == "X-Postfix; mail for x loops back"
    assert "Remote-MTA" not in block


def test_typed_diagnostic_is_kept_as_given() -> None:
    rcpt = replace(FAILED, diagnostic="x-unix; command died with status 1")
    block = status_blocks(parse(bounce(recipients=[rcpt])))[1]
    assert block["Diagnostic-Code"] == "x-unix; command died with status 1"


def test_null_sender_has_no_sender_field() -> None:
    head = status_blocks(parse(bounce(sender="", postmaster_copy_to="postmaster")))[0]
    assert "X-Postfix-Sender" not in head


def test_long_diagnostic_is_folded_not_cut() -> None:
    long_reply = "550 5.7.1 " + " ".join(f"word{i}" for i in range(40))
    rcpt = replace(FAILED, diagnostic=long_reply)
    raw = bounce(recipients=[rcpt])
    block = status_blocks(parse(raw))[1]
    assert block["Diagnostic-Code"] == f"smtp; {long_reply}"
    start = raw.index(b"Diagnostic-Code:")
    field_lines = raw[start : raw.index(b"\r\nLast-Attempt-Date", start)].split(b"\r\n")
    assert len(field_lines) > 1
    assert all(len(line) <= 79 for line in field_lines)


# -- the returned original ------------------------------------------------------------


def test_full_original_is_returned_with_return_path() -> None:
    raw = bounce()
    assert b"\r\n\r\nReturn-Path: <s@example.com>\r\n" + ORIGINAL + b"\r\n--" in raw
    attached = messages(parts(parse(raw))[2].get_payload())
    assert attached[0]["Subject"] == "hello"


def test_ret_hdrs_returns_headers_only() -> None:
    raw = bounce(ret="HDRS")
    third = parts(parse(raw))[2]
    assert third.get_content_type() == "text/rfc822-headers"
    assert third["Content-Description"] == "Undelivered Message Headers"
    assert b"Message-ID: <orig-1@example.com>\r\n" in raw
    assert b"first body line" not in raw


def test_ret_full_keeps_the_body() -> None:
    assert b"first body line" in bounce(ret="FULL")


def test_original_over_size_limit_returns_headers_only() -> None:
    raw = bounce(size_limit=len(ORIGINAL) - 1)
    assert parts(parse(raw))[2].get_content_type() == "text/rfc822-headers"
    assert b"first body line" not in raw
    assert b"\tby mail.example.com (mailseal) with ESMTP id 4ABC\r\n" in raw  # folded header


@pytest.mark.parametrize("limit", [0, len(ORIGINAL)])
def test_original_within_size_limit_or_no_limit_is_whole(limit: int) -> None:
    raw = bounce(size_limit=limit)
    assert parts(parse(raw))[2].get_content_type() == "message/rfc822"
    assert b"second body line" in raw


def test_utf8_original_survives_byte_for_byte() -> None:
    original = (
        "From: Jürgen <j@example.com>\r\nSubject: Grüße ☃\r\n\r\nKörper 日本語\r\n"
    ).encode()
    raw = bounce(original=original)
    boundary = boundary_of(raw)
    expected = original + b"\r\n--" + boundary + b"--\r\n"
    assert raw.endswith(expected)
    third = parts(parse(raw))[2]
    assert third["Content-Transfer-Encoding"] == "8bit"
    assert parse(raw)["Content-Transfer-Encoding"] == "8bit"
    start = raw.index(b"Return-Path: <s@example.com>\r\n")
    assert raw[start:].split(b"\r\n", 1)[1].startswith(original)


def test_ascii_notice_is_7bit() -> None:
    raw = bounce()
    assert parse(raw)["Content-Transfer-Encoding"] == "7bit"
    assert b"Content-Transfer-Encoding: 8bit" not in raw


def test_bare_line_ends_in_the_original_become_crlf() -> None:
    raw = bounce(original=b"Subject: x\n\nline one\rline two\n")
    assert b"\r\n\r\nReturn-Path: <s@example.com>\r\nSubject: x\r\n\r\nline one\r\n" in raw
    assert re.search(rb"(?<!\r)\n", raw) is None
    assert re.search(rb"\r(?!\n)", raw) is None


def test_boundary_absent_from_the_original_is_kept_unique() -> None:
    plain = boundary_of(bounce())
    tricky = ORIGINAL + b"--" + plain + b"--\r\n"
    raw = bounce(original=tricky)
    assert boundary_of(raw) != plain
    assert len(parts(parse(raw))) == 3


# -- delay notices --------------------------------------------------------------------


def test_delay_notice() -> None:
    delayed = replace(
        FAILED,
        action="delayed",
        status="4.4.1",
        diagnostic=None,
        reason="connect to mx.example.org[192.0.2.1]:25: Connection timed out",
    )
    raw = bounce(kind="delay", recipients=[delayed], delay_warning_time=4 * 3600, ret="FULL")
    message = parse(raw)
    assert message["Subject"] == "Delayed Mail (still being retried)"
    assert message["Auto-Submitted"] == "auto-replied"
    text = parts(message)[0].get_payload(decode=True)
    assert isinstance(text, bytes)
    assert b"# THIS IS A WARNING ONLY.  YOU DO NOT NEED TO RESEND YOUR MESSAGE. #" in text
    assert b"Your message could not be delivered for more than 4 hour(s).\r\n" in text
    assert b"It will be retried until it is 5 day(s) old.\r\n" in text
    block = status_blocks(message)[1]
    assert block["Action"] == "delayed"
    assert block["Status"] == "4.4.1"
    assert email.utils.parsedate_to_datetime(block["Will-Retry-Until"]) == ARRIVAL + timedelta(
        days=5
    )
    # Postfix returns only the headers with a delay warning, whatever RET says.
    assert parts(message)[2].get_content_type() == "text/rfc822-headers"
    assert parts(message)[2]["Content-Description"] == "Undelivered Message Headers"


def test_delay_notice_uses_the_recipients_retry_time_and_the_age() -> None:
    until = NOW + timedelta(days=2)
    delayed = replace(FAILED, action="delayed", status="4.2.0", will_retry_until=until)
    raw = bounce(kind="delay", recipients=[delayed], maximal_queue_lifetime=3 * 86400)
    block = status_blocks(parse(raw))[1]
    assert email.utils.parsedate_to_datetime(block["Will-Retry-Until"]) == until
    assert b"for more than 5 hour(s)." in raw
    assert b"until it is 3 day(s) old." in raw


def test_success_notice() -> None:
    done = replace(FAILED, action="delivered", status="2.0.0", diagnostic="250 2.0.0 Ok")
    message = parse(bounce(kind="success", recipients=[done]))
    assert message["Subject"] == "Successful Mail Delivery Report"
    assert status_blocks(message)[1]["Action"] == "delivered"
    assert parts(message)[2]["Content-Description"] == "Message Headers"


# -- postmaster copies (double bounces) ----------------------------------------------


def test_double_bounce_goes_to_postmaster_without_template_text() -> None:
    raw = bounce(sender="", postmaster_copy_to="postmaster")
    message = parse(raw)
    assert message["To"] == "postmaster"
    assert message["Subject"] == "Postmaster Copy: Undelivered Mail"
    assert message["Auto-Submitted"] == "auto-generated"
    assert b"This is the mail system" not in raw
    assert b"<u@example.org>: host mx.example.org" in raw
    assert b"Return-Path: <>\r\n" in raw


# -- hygiene ------------------------------------------------------------------------


def test_crlf_everywhere() -> None:
    for raw in (bounce(), bounce(ret="HDRS"), bounce(kind="delay", recipients=[FAILED])):
        assert raw.endswith(b"--\r\n")
        assert re.search(rb"(?<!\r)\n", raw) is None
        assert re.search(rb"\r(?!\n)", raw) is None


def test_line_breaks_in_remote_text_cannot_forge_fields() -> None:
    evil = replace(FAILED, reason="bad\r\nAction: delivered", diagnostic="550 no\nStatus: 2.0.0")
    raw = bounce(recipients=[evil])
    block = status_blocks(parse(raw))[1]
    assert block.get_all("Action") == ["failed"]
    assert block.get_all("Status") == ["5.1.1"]
    assert b"bad??Action: delivered" in raw


def test_smtputf8_uses_global_types_and_utf8_addresses() -> None:
    rcpt = replace(FAILED, address="jürgen@example.org", reason="unknown user")
    raw = bounce(recipients=[rcpt], smtputf8=True, sender="søren@example.com")
    message = parse(raw)
    types = [part.get_content_type() for part in parts(message)]
    assert types == ["text/plain", "message/global-delivery-status", "message/global"]
    assert "Final-Recipient: utf-8; jürgen@example.org\r\n".encode() in raw
    assert "X-Postfix-Sender: utf-8; søren@example.com\r\n".encode() in raw
    assert parts(message)[0].get_content_charset() == "utf-8"


def test_invalid_recipient_values_are_refused() -> None:
    with pytest.raises(ValueError, match="action"):
        replace(FAILED, action="bounced")
    with pytest.raises(ValueError, match="status"):
        replace(FAILED, status="550")
    with pytest.raises(ValueError, match="recipient"):
        bounce(recipients=[])


@pytest.mark.parametrize("sender", ["", "<>"])
def test_a_bounce_is_never_addressed_to_the_null_sender(sender: str) -> None:
    with pytest.raises(ValueError, match="null sender"):
        bounce(sender=sender)


def test_odd_host_and_queue_id_give_a_legal_boundary() -> None:
    raw = bounce(reporting_mta="mäil.example.com " + "x" * 80, queue_id="4A BC")
    boundary = boundary_of(raw)
    assert len(boundary) <= 70
    assert re.fullmatch(rb"[0-9A-Za-z'()+_,\-./:=?]+", boundary)
    assert len(parts(parse(raw))) == 3


@settings(max_examples=60, deadline=None)
@given(
    reason=st.text(max_size=300),
    address=st.text(min_size=1, max_size=40),
    original=st.binary(max_size=400),
    ret=st.sampled_from([None, "", "FULL", "HDRS"]),
)
def test_any_input_gives_a_clean_three_part_report(
    reason: str, address: str, original: bytes, ret: str | None
) -> None:
    rcpt = replace(FAILED, address=address, reason=reason, diagnostic=reason or None)
    raw = bounce(recipients=[rcpt], original=original, ret=ret)
    assert re.search(rb"(?<!\r)\n", raw) is None
    assert re.search(rb"\r(?!\n)", raw) is None
    message = parse(raw)
    assert [part["Content-Description"] for part in parts(message)][:2] == [
        "Notification",
        "Delivery report",
    ]
    assert len(parts(message)) == 3
    assert len(status_blocks(message)) == 2


# -- who is told ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("notify", "failure", "delay", "success"),
    [
        (None, True, True, False),
        ("", True, True, False),
        ("NEVER", False, False, False),
        ("never", False, False, False),
        ("FAILURE", True, False, False),
        ("DELAY", False, True, False),
        ("SUCCESS", False, False, True),
        ("SUCCESS,FAILURE", True, False, True),
        ("FAILURE,DELAY", True, True, False),
        ("SUCCESS,FAILURE,DELAY", True, True, True),
        ("delay, success", False, True, True),
    ],
)
def test_needs_notice(notify: str | None, failure: bool, delay: bool, success: bool) -> None:
    assert needs_notice("failure", notify) is failure
    assert needs_notice("delay", notify) is delay
    assert needs_notice("success", notify) is success


@pytest.mark.parametrize(
    ("sender", "expected"),
    [("", False), ("<>", False), ("s@example.com", True), ("MAILER-DAEMON@example.com", True)],
)
def test_should_bounce(sender: str, expected: bool) -> None:
    assert should_bounce(sender) is expected


DOUBLE = "double-bounce@mail.example.com"
TO_SENDER = NoticeDestination(NoticeRoute.SENDER, "", "s@example.com")
TO_PM = NoticeDestination(NoticeRoute.POSTMASTER, DOUBLE, "pm")
DROP = NoticeDestination(NoticeRoute.DISCARD)


@pytest.mark.parametrize(
    ("kind", "sender", "classes", "expected"),
    [
        ("failure", "s@example.com", (), TO_SENDER),
        ("failure", "", ("resource", "software"), DROP),
        ("failure", "", ("bounce",), TO_PM),
        ("failure", "", ("2bounce",), TO_PM),
        ("failure", "Double-Bounce@mail.example.com", ("2bounce",), DROP),
        ("delay", "", ("2bounce",), DROP),
        ("delay", "", ("delay",), TO_PM),
        ("delay", "s@example.com", (), TO_SENDER),
    ],
)
def test_route_notice(
    kind: str, sender: str, classes: tuple[str, ...], expected: NoticeDestination
) -> None:
    assert kind in ("failure", "delay")
    got = route_notice(
        "failure" if kind == "failure" else "delay",
        sender,
        double_bounce_address=DOUBLE,
        postmaster_recipient="pm",
        notify_classes=classes,
    )
    assert got == expected
    assert got.postmaster_copy is (expected.route is NoticeRoute.POSTMASTER)


@pytest.mark.parametrize(
    ("age", "warn_after", "warned", "due"),
    [
        (timedelta(hours=3), timedelta(hours=4), False, False),
        (timedelta(hours=4), timedelta(hours=4), False, True),
        (timedelta(hours=5), 4 * 3600, False, True),
        (timedelta(hours=5), timedelta(hours=4), True, False),
        (timedelta(days=3), 0, False, False),
        (timedelta(days=3), timedelta(0), False, False),
    ],
)
def test_delay_warning_due(
    age: timedelta, warn_after: timedelta | int, warned: bool, due: bool
) -> None:
    assert delay_warning_due(NOW - age, NOW, warn_after, warned) is due


def test_wrap_keeps_long_words_whole_and_indents() -> None:
    word = "x" * 100
    assert wrap(f"short {word} tail") == ["short", f"    {word}", "    tail"]
    assert wrap("fits") == ["fits"]


def test_fold_unfolds_to_the_same_text() -> None:
    field = "Diagnostic-Code: smtp; " + " ".join(["word"] * 40) + " " + "y" * 90
    lines = fold(field)
    assert len(lines) > 2
    assert "\r\n".join(lines).replace("\r\n", "") == field
    assert all(line.startswith(" ") for line in lines[1:])
    assert all(len(line) <= 79 for line in lines[:-2])
