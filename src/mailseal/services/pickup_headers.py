"""What cleanup(8) does to the headers of locally submitted mail (sendmail, pickup).

Postfix's sendmail(1), pickup(8) and cleanup(8) together:

* ``sendmail -t`` takes the recipients from ``To:``, ``Cc:`` and ``Bcc:``, or
  only from ``Resent-To:``, ``Resent-Cc:`` and ``Resent-Bcc:`` when the
  message has any of those (RFC 5322 section 3.6.6); :func:`extract_recipients`;
* pickup puts ``Received: by HOST (MAIL_NAME, from userid UID)`` first, with
  the queue ID and the submission time on a folded second line;
* cleanup removes ``Bcc:`` headers, and adds what is missing at the end of
  the header block: ``Message-Id: <YYYYmmddHHMMSS.ID@myhostname>`` (logged as
  ``message-id=``), ``Date:`` in Postfix's mail_date() form, and ``From:``
  (``From: Full Name <sender>`` with ``header_from_format = standard``, the
  bare address without a full name, ``MAILER-DAEMON`` for the null sender).
  With Resent- headers present these are ``Resent-Message-Id:``,
  ``Resent-Date:`` and ``Resent-From:``;
* lines end in CRLF in the queue; bare LF input is fine.

A header block ends at an empty line or at the first line that is not a header
field; in the second case an empty line is put in, as Postfix does.

Reads (through :class:`LocalFacts`): myhostname, mail_name.
"""

from __future__ import annotations

import email.utils
import re
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from email.header import Header

__all__ = [
    "HeaderField",
    "LocalFacts",
    "Message",
    "extract_recipients",
    "from_header",
    "local_cleanup",
    "mail_date",
    "normalize_lines",
    "parse_message",
]

_FIELD = re.compile(rb"^([\x21-\x39\x3b-\x7e]+)[ \t]*:")
_RECIPIENT_FIELDS = ("to", "cc", "bcc")
_RESENT_RECIPIENT_FIELDS = ("resent-to", "resent-cc", "resent-bcc")
# RFC 5322 atext plus space: a full name made of these needs no quotes.
_PLAIN_PHRASE = re.compile(r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~ -]*")
_MAILER_DAEMON = "MAILER-DAEMON"


@dataclass(frozen=True)
class HeaderField:
    """One header field with its continuation lines, CRLF-terminated."""

    name: str  # lower case
    raw: bytes

    @property
    def value(self) -> str:
        """The unfolded value, decoded leniently."""
        text = self.raw.decode("utf-8", "replace")
        text = text.split(":", 1)[1] if ":" in text else ""
        return re.sub(r"\r?\n[ \t]", " ", text).strip()


@dataclass(frozen=True)
class Message:
    """A message split into its header fields and its body (after the empty line)."""

    fields: tuple[HeaderField, ...]
    body: bytes

    def has(self, name: str) -> bool:
        return any(f.name == name for f in self.fields)

    @property
    def resent(self) -> bool:
        """Whether Resent- headers are present (cleanup adds Resent- headers then)."""
        return any(f.name.startswith("resent-") for f in self.fields)


@dataclass(frozen=True)
class LocalFacts:
    """What cleanup needs about one submission."""

    queue_id: str
    sender: str  # qualified, "" for the null sender
    full_name: str
    uid: int
    hostname: str  # myhostname
    mail_name: str
    submitted: float  # the maildrop file's time
    now: float  # for Date: and Message-Id:


def normalize_lines(content: bytes) -> bytes:
    """Every line ending as CRLF (bare LF and CRLF alike), the last line terminated."""
    if not content:
        return b""
    lines = content.split(b"\n")
    if lines[-1] == b"":
        lines.pop()
    return b"".join(line.removesuffix(b"\r") + b"\r\n" for line in lines)


def parse_message(content: bytes) -> Message:
    """Split CRLF content into header fields and body (see the module docstring)."""
    fields: list[HeaderField] = []
    position = 0
    while position < len(content):
        end = content.find(b"\r\n", position)
        end = len(content) if end < 0 else end + 2
        line = content[position:end]
        if line in (b"\r\n", b""):
            return Message(tuple(fields), content[end:])
        if line[:1] in (b" ", b"\t") and fields:
            last = fields[-1]
            fields[-1] = HeaderField(last.name, last.raw + line)
        elif (match := _FIELD.match(line)) is not None:
            fields.append(HeaderField(match.group(1).decode("ascii").lower(), line))
        else:
            break  # not a header: the body starts here, without an empty line
        position = end
    return Message(tuple(fields), content[position:])


def extract_recipients(message: Message) -> list[str]:
    """``sendmail -t``: the addresses of To/Cc/Bcc, or of the Resent- ones when present."""
    resent = [f for f in message.fields if f.name in _RESENT_RECIPIENT_FIELDS]
    chosen = resent or [f for f in message.fields if f.name in _RECIPIENT_FIELDS]
    return addresses(f.value for f in chosen)


def addresses(texts: Iterable[str]) -> list[str]:
    """The addresses in header-style lists (``Name <a@b>, c@d, group: e@f;``), internal form."""
    found = email.utils.getaddresses(list(texts))
    return [address for _, address in found if address]


def mail_date(when: float) -> str:
    """Postfix's mail_date(): ``Tue,  3 Oct 2023 10:00:00 +0200 (CEST)``."""
    local = time.localtime(when)
    offset = local.tm_gmtoff or 0
    sign = "-" if offset < 0 else "+"
    hours, minutes = divmod(abs(offset) // 60, 60)
    stamp = time.strftime("%a, %e %b %Y %H:%M:%S", local)
    return f"{stamp} {sign}{hours:02d}{minutes:02d} ({local.tm_zone})"


def from_header(prefix: str, sender: str, full_name: str) -> str:
    """``From: Name <sender>`` (header_from_format = standard), or the bare address."""
    if not sender:
        return f"{prefix}From: {_MAILER_DAEMON}"
    address = _quote_local(sender)
    name = " ".join(full_name.replace("\r", " ").replace("\n", " ").split())
    if not name:
        return f"{prefix}From: {address}"
    return f"{prefix}From: {_phrase(name)} <{address}>"


def _phrase(name: str) -> str:
    if not name.isascii():
        return Header(name, "utf-8").encode()  # RFC 2047 encoded-word
    if _PLAIN_PHRASE.fullmatch(name):
        return name
    return '"' + name.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _quote_local(address: str) -> str:
    """quote_822_local: a local part with specials or spaces goes in quotes."""
    local, at, domain = address.rpartition("@")
    if not at:
        local, domain = address, ""
    if re.fullmatch(r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~.-]+", local) and ".." not in local:
        return address
    quoted = '"' + local.replace("\\", "\\\\").replace('"', '\\"') + '"'
    return f"{quoted}@{domain}" if at else quoted


def message_id_value(facts: LocalFacts) -> str:
    """``<YYYYmmddHHMMSS.ID@myhostname>``: GMT time and queue ID, as cleanup makes it."""
    stamp = time.strftime("%Y%m%d%H%M%S", time.gmtime(facts.now))
    return f"<{stamp}.{facts.queue_id}@{facts.hostname}>"


def local_cleanup(message: Message, facts: LocalFacts) -> tuple[bytes, str, bool]:
    """The queued content, the Message-ID value to log, and whether it is a Resent- one."""
    prefix = "Resent-" if message.resent else ""
    received = (
        f"Received: by {facts.hostname} ({facts.mail_name}, from userid {facts.uid})\r\n"
        f"\tid {facts.queue_id}; {mail_date(facts.submitted)}\r\n"
    )
    kept = [f.raw for f in message.fields if f.name != "bcc"]
    added: list[str] = []
    id_field = f"{prefix.lower()}message-id"
    existing = [f for f in message.fields if f.name == id_field]
    message_id = existing[0].value if existing else message_id_value(facts)
    if not existing:
        added.append(f"{prefix}Message-Id: {message_id}")
    if not message.has(f"{prefix.lower()}date"):
        added.append(f"{prefix}Date: {mail_date(facts.now)}")
    if not message.has(f"{prefix.lower()}from"):
        added.append(from_header(prefix, facts.sender, facts.full_name))
    head = received.encode("utf-8") + b"".join(kept)
    head += b"".join(line.encode("utf-8", "surrogateescape") + b"\r\n" for line in added)
    return head + b"\r\n" + message.body, message_id, bool(prefix)


def qualify(address: str, myorigin: str, append_at_myorigin: bool = True) -> str:
    """``user`` -> ``user@$myorigin`` (append_at_myorigin); others and "" unchanged."""
    if not address or "@" in address or not append_at_myorigin:
        return address
    return f"{address}@{myorigin}"


def unique(recipients: Sequence[tuple[str, str]]) -> list[tuple[str, str]]:
    """Drop repeated ``(address, notify)`` addresses (case-insensitive), keeping the first."""
    seen: set[str] = set()
    kept: list[tuple[str, str]] = []
    for address, notify in recipients:
        if address.lower() not in seen:
            seen.add(address.lower())
            kept.append((address, notify))
    return kept
