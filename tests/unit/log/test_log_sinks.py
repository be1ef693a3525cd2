"""The log file gets syslog-shaped lines with per-session numbers."""

import re
import socket
from pathlib import Path

from mailseal.log.sinks import FileSink, MailLog, SyslogSink, session_numbers

LINE = re.compile(r"^[A-Z][a-z]{2} [ \d]\d \d\d:\d\d:\d\d mail mailseal/smtpd\[(\d+)\]: (.*)$")


def test_file_sink_writes_syslog_shaped_lines(tmp_path: Path) -> None:
    path = tmp_path / "log" / "maillog"
    log = MailLog(FileSink(path, "mail.example.test"), "mailseal")
    numbers = session_numbers()
    first, second = next(numbers), next(numbers)
    log.info(log.program("smtpd"), first, "connect from localhost[127.0.0.1]")
    log.warning(log.program("smtpd"), second, "something odd")
    log.close()
    lines = path.read_text().splitlines()
    parsed = [LINE.match(line) for line in lines]
    assert all(parsed), lines
    assert [m[2] for m in parsed if m] == [
        "connect from localhost[127.0.0.1]",
        "warning: something odd",
    ]
    assert first != second


def test_syslog_sink_sends_mail_facility_datagrams(tmp_path: Path) -> None:
    address = str(tmp_path / "dev-log")
    receiver = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    receiver.bind(address)
    try:
        sink = SyslogSink(address)
        MailLog(sink, "postfix").info("postfix/smtpd", 42, "connect from x[1.2.3.4]")
        datagram = receiver.recv(4096).decode()
        sink.close()
    finally:
        receiver.close()
    assert datagram.startswith("<22>")  # facility mail (2) * 8 + info (6)
    assert datagram.endswith(" postfix/smtpd[42]: connect from x[1.2.3.4]")
