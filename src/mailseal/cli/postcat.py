"""``mailseal postcat [-e] [-h] [-b] [-q] ID|FILE...``: Postfix's postcat(1) for our queue files.

The output has postcat's shape: ``*** ENVELOPE RECORDS deferred/ID ***``, the
envelope as Postfix names its records (``message_size:``, ``message_arrival_time:``,
``named_attribute:``, ``sender:``, ``original_recipient:``, ``recipient:`` or
``done_recipient:``...), ``*** MESSAGE CONTENTS ... ***``, the message with LF line
ends, ``*** HEADER EXTRACTED ... ***`` and ``*** MESSAGE FILE END ... ***``. ``-e``,
``-h`` and ``-b`` select envelope, header and body (all three by default; the markers
come with the envelope). With ``-q`` the arguments are queue IDs, looked up in
incoming, active, deferred and hold (twice, as a file may move between queues
while we look: files are readable while the master runs); without it they are
file names, and no argument means standard input. Errors are postcat's:
``postcat: fatal: bad mail queue ID: X``, ``postcat: fatal: open queue file ID: No
such file or directory``, ``postcat: warning: PATH: input is not a valid queue file``.
Reads: queue_directory.
"""

from __future__ import annotations

import argparse
import errno
import os
import re
import sys
from pathlib import Path

from mailseal.cli import context
from mailseal.cli.report import CommandError, fatal
from mailseal.queue.ids import is_queue_id
from mailseal.queue.qfile import ParsedQueueFile, QueueFileError, encode_head, parse_queue_file
from mailseal.queue.store import QueueName
from mailseal.services.showq import asctime

__all__ = ["postcat_text", "register", "run"]

PROGRAM = "postcat"
_SEARCH = (QueueName.INCOMING, QueueName.ACTIVE, QueueName.DEFERRED, QueueName.HOLD)
_HEADER = re.compile(rb"[!-9;-~]+:")
# RFC 3461 NOTIFY keywords as Postfix's DSN_NOTIFY_* bits (dsn_mask.h).
_NOTIFY_BITS = {"NEVER": 1, "SUCCESS": 2, "FAILURE": 4, "DELAY": 8}
_ENCODING = {"8BITMIME": "8bit", "7BIT": "7bit"}


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``postcat`` (no -h for help: -h is "header", as in Postfix)."""
    parser = commands.add_parser(
        "postcat",
        add_help=False,
        help="show a queue file (-q ID) in postcat's format",
        description="Postfix's postcat: the envelope and content of queue files.",
    )
    parser.add_argument("-e", dest="envelope", action="store_true", help="envelope records")
    parser.add_argument("-h", dest="header", action="store_true", help="header text")
    parser.add_argument("-b", dest="body", action="store_true", help="body text")
    parser.add_argument("-q", dest="search", action="store_true", help="arguments are IDs")
    parser.add_argument("-v", action="count", default=0, help="ignored (verbose)")
    parser.add_argument("names", nargs="*", metavar="ID|FILE")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    """One ``postcat`` invocation; the exit status."""
    parts = (args.envelope, args.header, args.body)
    if not any(parts):
        parts = (True, True, True)
    if not args.names:
        _show("stdin", sys.stdin.buffer.read(), parts)
        return 0
    if not args.search:
        for name in args.names:
            try:
                data = Path(name).read_bytes()
            except OSError as error:
                fatal(PROGRAM, f"open {name}: {error.strerror}")
            _show(name, data, parts)
        return 0
    queue_directory = Path(context.load(args.config_dir).base.queue_directory)
    if not queue_directory.is_dir():
        fatal(PROGRAM, f"chdir {queue_directory}: No such file or directory")
    for queue_id in args.names:
        if not is_queue_id(queue_id):
            fatal(PROGRAM, f"bad mail queue ID: {queue_id}")
        label, data = _find(queue_directory, queue_id)
        _show(label, data, parts)
    return 0


def _find(queue_directory: Path, queue_id: str) -> tuple[str, bytes]:
    """The file's label (``deferred/ID``) and bytes, searching each queue twice."""
    for _ in range(2):
        for queue in _SEARCH:
            try:
                return f"{queue}/{queue_id}", (queue_directory / queue / queue_id).read_bytes()
            except FileNotFoundError:
                continue
            except OSError as error:
                text = f"open queue file {queue_id}: {error.strerror}"
                raise CommandError(PROGRAM, text) from None
    raise CommandError(PROGRAM, f"open queue file {queue_id}: {os.strerror(errno.ENOENT)}")


def _show(label: str, data: bytes, parts: tuple[bool, bool, bool]) -> None:
    try:
        parsed = parse_queue_file(data)
    except QueueFileError:
        print(f"{PROGRAM}: warning: {label}: input is not a valid queue file", file=sys.stderr)
        return
    sys.stdout.flush()
    sys.stdout.buffer.write(postcat_text(label, parsed, *parts))
    sys.stdout.buffer.flush()


def postcat_text(
    label: str, parsed: ParsedQueueFile, envelope: bool, header: bool, body: bool
) -> bytes:
    """What postcat prints for one queue file (bytes: the content is not always UTF-8)."""
    out: list[bytes] = []
    if envelope:
        out.append(_marker("ENVELOPE RECORDS", label))
        out += [line.encode("utf-8", "surrogateescape") + b"\n" for line in _records(parsed)]
        out.append(_marker("MESSAGE CONTENTS", label))
    head, text = _split(parsed.content)
    if header:
        out += [line + b"\n" for line in head]
    if body:
        out += [line + b"\n" for line in text]
    if envelope:
        out.append(_marker("HEADER EXTRACTED", label))
        encoding = _ENCODING.get(parsed.envelope.body.upper())
        if encoding:
            out.append(f"named_attribute: encoding={encoding}\n".encode())
        out.append(_marker("MESSAGE FILE END", label))
    return b"".join(out)


def _marker(text: str, label: str) -> bytes:
    return f"*** {text} {label} ***\n".encode("utf-8", "surrogateescape")


def _records(parsed: ParsedQueueFile) -> list[str]:
    env = parsed.envelope
    size = len(parsed.content)
    # Postfix's size record: content size, content offset, recipients, qmgr options,
    # content length, SMTPUTF8 flag, each "%15ld".
    offset = len(encode_head(env, len(parsed.content)))
    numbers = (size, offset, len(env.recipients), 0, size, int(env.smtputf8))
    lines = ["message_size: " + " ".join(f"{n:15d}" for n in numbers)]
    lines.append(f"message_arrival_time: {asctime(env.arrival_time)}")
    for name, value in (
        ("log_client_name", env.client_name),
        ("log_client_address", env.client_addr),
        ("log_helo_name", env.helo),
        ("log_protocol_name", env.protocol),
        ("sasl_username", env.sasl_username),
    ):
        if value:
            lines.append(f"named_attribute: {name}={value}")
    if env.envid:
        lines.append(f"dsn_envelope_id: {env.envid}")
    lines.append(f"sender: {env.sender}")
    for index, rcpt in enumerate(env.recipients):
        if rcpt.orcpt:
            lines.append(f"dsn_original_recipient: {rcpt.orcpt}")
        if rcpt.notify:
            bits = sum(_NOTIFY_BITS.get(word.upper(), 0) for word in rcpt.notify.split(","))
            lines.append(f"dsn_notify_flags: {bits}")
        if rcpt.original:
            lines.append(f"original_recipient: {rcpt.original}")
        kind = "done_recipient" if index in parsed.done else "recipient"
        lines.append(f"{kind}: {rcpt.address}")
    return lines


def _split(content: bytes) -> tuple[list[bytes], list[bytes]]:
    """Header lines and body lines (from the first line that is neither header nor fold)."""
    lines = content.split(b"\r\n")
    if lines and lines[-1] == b"":
        lines.pop()
    for index, line in enumerate(lines):
        if not (_HEADER.match(line) or (index and line[:1] in (b" ", b"\t"))):
            return lines[:index], lines[index:]
    return lines, []
