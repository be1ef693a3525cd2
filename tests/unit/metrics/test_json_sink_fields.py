"""The JSON log: one object per line, with the fields log tools read out of Postfix's lines."""

import datetime as dt
import json
import stat
from pathlib import Path

from mailseal.log import format as fmt
from mailseal.log import smtp_client as words
from mailseal.log.json_sink import JsonSink, json_line, parse_fields
from mailseal.log.sinks import FileSink, MailLog, Severity
from mailseal.tls import phrases
from mailseal.tls.outcome import PeerTrust, TlsOutcome

QID = "4F2A1B3C9D"
TIMES = fmt.DeliveryTimes(1.27, 0.1, 0.01, 0.5, 0.66)


def test_delivery_line() -> None:
    reason = words.said("mx.b.test[127.0.0.1]:25", "250 2.0.0 Ok: queued as X", "end of DATA")
    line = fmt.recipient_status(
        QID,
        "user@b.test",
        original="alias@example.test",
        relay="mx.b.test[127.0.0.1]:25",
        times=TIMES,
        dsn="2.0.0",
        status="sent",
        reason=reason,
        tls="may",
        conn_use=3,
    )
    assert parse_fields(line) == {
        "queue_id": QID,
        "to": "user@b.test",
        "orig_to": "alias@example.test",
        "relay": "mx.b.test[127.0.0.1]:25",
        "conn_use": 3,
        "delay": 1.3,
        "delays": "0.1/0.01/0.5/0.66",
        "tls": "may",
        "dsn": "2.0.0",
        "status": "sent",
        "status_detail": reason,
    }


def test_deferred_line_keeps_pairs_inside_the_detail_out() -> None:
    detail = (
        "host mx[127.0.0.1] said: 450 4.2.0 <a@b>: to=<x> relay=y (in reply to RCPT TO command)"
    )
    line = fmt.recipient_status(
        QID,
        "a@b.test",
        original="",
        relay="none",
        times=TIMES,
        dsn="4.2.0",
        status="deferred",
        reason=detail,
    )
    fields = parse_fields(line)
    assert fields["to"] == "a@b.test"
    assert fields["relay"] == "none"
    assert fields["status_detail"] == detail


def test_qmgr_client_message_id_and_expired_lines() -> None:
    assert parse_fields(fmt.qmgr_from(QID, "", 2048, 3)) == {
        "queue_id": QID,
        "from": "",
        "size": 2048,
        "nrcpt": 3,
    }
    assert parse_fields(fmt.client(QID, "h.test", "192.0.2.1", ("PLAIN", "alice@x.test"))) == {
        "queue_id": QID,
        "client": "h.test[192.0.2.1]",
        "client_name": "h.test",
        "client_address": "192.0.2.1",
        "sasl_method": "PLAIN",
        "sasl_username": "alice@x.test",
    }
    assert parse_fields(fmt.message_id(QID, "<abc.123@x.test>")) == {
        "queue_id": QID,
        "message-id": "abc.123@x.test",
    }
    assert parse_fields(fmt.expired(QID, "a@b.test")) == {
        "queue_id": QID,
        "from": "a@b.test",
        "status": "expired",
    }
    assert parse_fields(fmt.queue_removed(QID)) == {"queue_id": QID}


def test_connect_disconnect_lost_and_timeout_lines() -> None:
    client = {
        "client": "unknown[2001:db8::1]",
        "client_name": "unknown",
        "client_address": "2001:db8::1",
    }
    assert parse_fields(fmt.connect_from("", "2001:db8::1")) == client
    counts = [("ehlo", 1, 1), ("mail", 1, 1), ("rcpt", 0, 1), ("quit", 1, 1)]
    assert parse_fields(fmt.disconnect_from("", "2001:db8::1", counts)) == {
        **client,
        "ehlo": "1",
        "mail": "1",
        "rcpt": "0/1",
        "quit": "1",
        "commands": "3/4",
    }
    lost = fmt.lost_connection("DATA (123 bytes)", "", "2001:db8::1")
    assert parse_fields(lost) == {**client, "after": "DATA"}
    assert parse_fields(fmt.timeout_after("END-OF-MESSAGE", "", "2001:db8::1")) == {
        **client,
        "after": "END-OF-MESSAGE",
    }


def test_noqueue_reject_line() -> None:
    line = fmt.noqueue(
        "reject",
        "RCPT",
        "h.test",
        "192.0.2.1",
        "554 5.7.1 <x@far.test>: Relay access denied; try later",
        sender="a@b.test",
        recipient="x@far.test",
        proto="ESMTP",
        helo="client.example",
    )
    assert parse_fields(line) == {
        "action": "reject",
        "stage": "RCPT",
        "client": "h.test[192.0.2.1]",
        "client_name": "h.test",
        "client_address": "192.0.2.1",
        "reject_code": 554,
        "reject_dsn": "5.7.1",
        "reject_text": "<x@far.test>: Relay access denied; try later",
        "from": "a@b.test",
        "to": "x@far.test",
        "proto": "ESMTP",
        "helo": "client.example",
    }
    connect = fmt.noqueue(
        "reject", "CONNECT", "", "192.0.2.1", "554 5.7.1 go away", sender=None,
        recipient=None, proto="SMTP", helo=None, queue_id=QID,
    )  # fmt: skip
    fields = parse_fields(connect)
    assert (fields["queue_id"], fields["stage"], fields["reject_code"]) == (QID, "CONNECT", 554)
    assert "from" not in fields
    assert fields["proto"] == "SMTP"


def test_sasl_and_tls_lines() -> None:
    failed = "warning: " + fmt.sasl_failed("h", "192.0.2.1", "LOGIN", "authentication failure", "u")
    assert parse_fields(failed) == {
        "client": "h[192.0.2.1]",
        "client_name": "h",
        "client_address": "192.0.2.1",
        "sasl_method": "LOGIN",
        "sasl_username": "u",
    }
    outcome = TlsOutcome("TLSv1.3", "TLS_AES_256_GCM_SHA384", 256, 256, PeerTrust.ANONYMOUS)
    assert parse_fields(phrases.established_from(outcome, "h", "192.0.2.1")) == {
        "trust": "Anonymous",
        "client": "h[192.0.2.1]",
        "client_name": "h",
        "client_address": "192.0.2.1",
        "protocol": "TLSv1.3",
        "cipher": "TLS_AES_256_GCM_SHA384",
        "secret_bits": "256",
        "algorithm_bits": "256",
    }


def test_free_text_yields_no_fields() -> None:
    assert parse_fields("daemon started -- version 0.1.0, configuration /etc/x=y") == {}
    assert parse_fields("improper command pipelining after CONNECT from h[1.2.3.4]: a=b") == {}


def test_json_line_has_the_fixed_fields_first_and_exact_message() -> None:
    when = dt.datetime(2025, 1, 2, 3, 4, 5, 678000, tzinfo=dt.UTC).timestamp()
    message = fmt.queue_removed(QID)
    record = json.loads(
        json_line(Severity.INFO, "mailseal/qmgr", 42, message, when=when, host="mail")
    )
    assert list(record)[:6] == ["time", "host", "program", "pid", "severity", "message"]
    parsed = dt.datetime.fromisoformat(record["time"])
    assert parsed.utcoffset() is not None  # RFC 3339: always with an offset
    assert parsed.timestamp() == when
    assert record["time"].endswith(parsed.strftime("%z")[:3] + ":" + parsed.strftime("%z")[3:])
    assert record | {"time": ""} == {
        "time": "",
        "host": "mail",
        "program": "mailseal/qmgr",
        "pid": 42,
        "severity": "info",
        "message": message,
        "queue_id": QID,
    }


def test_sink_beside_the_text_sink(tmp_path: Path) -> None:
    text_path, json_path = tmp_path / "maillog", tmp_path / "json" / "maillog.json"
    log = MailLog(FileSink(text_path, "mail.example.test"), "mailseal")
    sink = JsonSink(json_path, "mail.example.test", warn=lambda _: None, clock=lambda: 0.0)
    log.add_observer(sink.observe)
    program = "mailseal/smtpd"
    log.info(program, 7, fmt.connect_from("", "192.0.2.1"))
    log.warning(program, 7, "odd: ünïcode")
    sink.close()
    log.close()
    assert stat.S_IMODE(json_path.stat().st_mode) & 0o027 == 0  # 0640 or tighter (umask)
    records = [json.loads(line) for line in json_path.read_text(encoding="utf-8").splitlines()]
    texts = [line.split("]: ", 1)[1] for line in text_path.read_text().splitlines()]
    assert [r["message"] for r in records] == texts
    assert [r["severity"] for r in records] == ["info", "warning"]
    assert records[0]["host"] == "mail"
    assert records[0]["pid"] == 7


def test_write_errors_drop_lines_and_warn_once() -> None:
    warnings: list[str] = []
    sink = JsonSink(Path("/dev/full"), "mail", warn=warnings.append, clock=lambda: 0.0)
    try:
        for _ in range(3):
            sink.observe(Severity.INFO, "mailseal/smtpd", 1, "connect from h[192.0.2.1]")
    finally:
        sink.close()
    assert warnings == ["cannot write /dev/full: No space left on device; dropping JSON log lines"]
    sink.observe(Severity.INFO, "mailseal/smtpd", 1, "after close: ignored")
    assert len(warnings) == 1
