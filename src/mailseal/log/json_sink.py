"""The JSON log sink (``maillog_json_file``): each mail-log line also as one JSON object.

It observes the :class:`~mailseal.log.sinks.MailLog` beside the text sink
(pflogsumm and fail2ban keep reading ``maillog_file``) and writes one object a
line::

    {"time": "2025-01-02T03:04:05.678+01:00", "host": "mail", "program":
     "mailseal/smtp", "pid": 4242, "severity": "info", "message": "<the text line's
     message>", "queue_id": "...", "to": "...", "relay": "...", "status": "sent",
     "status_detail": "250 2.0.0 Ok", ...}

``message`` is exactly the text line's message; the other fields are read out
of it the way log tools read Postfix's lines (:func:`parse_fields`): the queue
ID that starts a line, Postfix's ``key=value`` and ``key=<value>`` pairs, the
``(...)`` text after ``status=``, and the client, reject code and stage of
``connect from``/``disconnect from``/``NOQUEUE: reject:`` lines.

The file is created 0640 and appended to with one ``write(2)`` per line, so
nothing sits in a buffer; a write error never stops mail: the line is dropped
and the first failure of a run of them is reported once through ``warn``.

Reads: maillog_json_file.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import threading
from collections.abc import Callable
from pathlib import Path

from mailseal.log.sinks import Severity

__all__ = ["JsonSink", "json_line", "parse_fields"]

_QUEUE_ID = re.compile(r"^([0-9A-F]{6,}|NOQUEUE): ")
# The keys Postfix's lines carry; anything else that looks like k=v is message text.
_KEYS = frozenset(
    {
        "from", "to", "orig_to", "relay", "delay", "delays", "conn_use", "tls", "dsn",
        "status", "size", "nrcpt", "message-id", "resent-message-id", "client", "orig_client",
        "sasl_method", "sasl_username", "sasl_sender", "proto", "helo", "uid",
    }
)  # fmt: skip
_COUNTS = frozenset(
    {
        "ehlo", "helo", "mail", "rcpt", "data", "bdat", "rset", "noop", "vrfy", "etrn",
        "quit", "auth", "starttls", "unknown", "commands",
    }
)  # fmt: skip
_NUMBERS = frozenset({"size", "nrcpt", "uid", "conn_use"})
_DECIMAL = re.compile(r"\d+(?:\.\d+)?")
# key=<value> (the value may hold ", " inside its brackets) or key=value.
_PAIR = re.compile(r"(?:^|(?<=[ ,]))([a-z][a-z_-]*)=(?:<(.*?)>(?=,|\s|$)|([^,\s]*))")
_STATUS_DETAIL = re.compile(r", status=\w+ \((.*)\)$")
_CLIENT_LINE = re.compile(
    r"^(?:(?:dis)?connect from|(?:lost connection|timeout) after (?P<after>\S+)"
    r"(?: \(\d+ bytes\))? from) (?P<client>\S+?\[[^\]]*\])"
)
_REJECT = re.compile(
    r"^(?P<action>reject|reject_warning|warn|defer|hold|discard|filter|redirect): "
    r"(?P<stage>\S+) from (?P<client>\S+?\[[^\]]*\]): "
    r"(?P<code>\d{3})(?: (?P<dsn>\d\.\d{1,3}\.\d{1,3}))? (?P<text>.*?); "
    r"(?P<tail>(?:from=<.*?> )?(?:to=<.*?> )?proto=\S+(?: helo=<.*>)?)$"
)
_SASL = re.compile(
    r"^(?P<client>\S+?\[[^\]]*\]): SASL (?P<method>\S+) authentication (?:failed|aborted)"
)
_TLS = re.compile(
    r"^(?P<trust>\S+) TLS connection established (?:from (?P<client>\S+?\[[^\]]*\])|to "
    r"(?P<relay>\S+?))(?: to \S+)?: (?P<protocol>\S+) with cipher (?P<cipher>\S+) "
    r"\((?P<secret_bits>\d+)/(?P<algorithm_bits>\d+) bits\)"
)
_CLIENT_ADDR = re.compile(r"^(.*)\[([^\]]*)\]$")


def _add_client(fields: dict[str, object], client: str) -> None:
    """``client`` as logged (``host[addr]``) and its two halves."""
    fields["client"] = client
    match = _CLIENT_ADDR.match(client)
    if match is not None:
        fields["client_name"], fields["client_address"] = match[1], match[2]


def _pairs(fields: dict[str, object], text: str) -> None:
    for key, bracketed, plain in _PAIR.findall(text):
        if key in _KEYS or key in _COUNTS:
            value = bracketed or plain
            fields[key] = int(value) if key in _NUMBERS and value.isdigit() else value
    client = fields.get("client")
    if isinstance(client, str):
        _add_client(fields, client)


def _delivery(fields: dict[str, object], rest: str) -> None:
    """A queue-ID line: pairs, and the status text in parentheses."""
    detail = _STATUS_DETAIL.search(rest)
    head = rest
    if detail is not None:
        fields["status_detail"] = detail[1]
        head = rest[: detail.start(1) - 1]  # the pairs end where the "(" opens
    _pairs(fields, head)
    delay = fields.get("delay")
    if isinstance(delay, str) and _DECIMAL.fullmatch(delay):
        fields["delay"] = float(delay)


def _reject(fields: dict[str, object], rest: str) -> bool:
    match = _REJECT.match(rest)
    if match is None:
        return False
    fields["action"], fields["stage"] = match["action"], match["stage"]
    _add_client(fields, match["client"])
    fields["reject_code"] = int(match["code"])
    if match["dsn"]:
        fields["reject_dsn"] = match["dsn"]
    fields["reject_text"] = match["text"]
    tail: dict[str, object] = {}
    _pairs(tail, match["tail"])
    fields.update(tail)
    return True


def parse_fields(message: str) -> dict[str, object]:
    """The fields log tools read out of one Postfix-shaped message (see the module doc)."""
    fields: dict[str, object] = {}
    text = message
    for prefix in ("warning: ", "error: "):
        text = text.removeprefix(prefix)
    queue = _QUEUE_ID.match(text)
    if queue is not None:
        rest = text[queue.end() :]
        if queue[1] != "NOQUEUE":
            fields["queue_id"] = queue[1]
        if not _reject(fields, rest):
            _delivery(fields, rest)
        return fields
    if (match := _CLIENT_LINE.match(text)) is not None:
        _add_client(fields, match["client"])
        if match["after"]:
            fields["after"] = match["after"]
        if text.startswith("disconnect from "):
            _pairs(fields, text[match.end() :])
    elif (match := _SASL.match(text)) is not None:
        _add_client(fields, match["client"])
        fields["sasl_method"] = match["method"]
        _pairs(fields, text[match.end() :])
    elif (match := _TLS.match(text)) is not None:
        fields.update({k: v for k, v in match.groupdict().items() if v is not None})
        if match["client"]:
            _add_client(fields, match["client"])
    return fields


def json_line(
    severity: Severity, program: str, number: int, message: str, *, when: float, host: str
) -> str:
    """One JSON object (no newline): the fixed fields, then what :func:`parse_fields` found."""
    stamp = dt.datetime.fromtimestamp(when).astimezone().isoformat(timespec="milliseconds")
    record: dict[str, object] = {
        "time": stamp,
        "host": host,
        "program": program,
        "pid": number,
        "severity": severity.name.lower(),
        "message": message,
    }
    for key, value in parse_fields(message).items():
        record.setdefault(key, value)  # the fixed fields win over a parsed namesake
    return json.dumps(record, ensure_ascii=False, separators=(",", ":"))


class JsonSink:
    """Appends JSON lines to ``path``; use :meth:`observe` as a log observer."""

    def __init__(
        self,
        path: Path,
        hostname: str,
        warn: Callable[[str], None],
        clock: Callable[[], float],
    ) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self._fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o640)
        self._host = hostname.split(".", 1)[0]  # as the text sink writes it
        self._warn = warn
        self._clock = clock
        self._lock = threading.Lock()  # the queue manager logs from worker threads
        self._failing = False

    def observe(self, severity: Severity, program: str, number: int, message: str) -> None:
        """Write one line; on error drop it (and say so once per run of failures)."""
        line = (
            json_line(severity, program, number, message, when=self._clock(), host=self._host)
            + "\n"
        )
        data = line.encode("utf-8", "replace")
        problem = ""
        with self._lock:
            if self._fd < 0:
                return
            try:
                while data:
                    data = data[os.write(self._fd, data) :]
            except OSError as error:
                if not self._failing:
                    problem = error.strerror or str(error)
                self._failing = True
            else:
                self._failing = False
        if problem:
            # Outside the lock: the warning comes back here through the MailLog, and
            # is dropped too while the file keeps failing.
            self._warn(f"cannot write {self.path}: {problem}; dropping JSON log lines")

    def close(self) -> None:
        with self._lock:
            if self._fd >= 0:
                os.close(self._fd)
                self._fd = -1
