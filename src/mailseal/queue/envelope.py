"""The envelope of a queued message: sender, recipients and how the message arrived.

Field names follow what Postfix keeps in its queue file and logs: ``client_name`` /
``client_addr`` / ``helo`` (the smtpd ``client=`` and Received: data), ``protocol``
("SMTP" or "ESMTP", Postfix's ``proto=``), ``sasl_username``, and the DSN parameters
of RFC 3461 (``envid``, ``ret``, per recipient ``notify`` and ``orcpt``) and RFC 6152
/ RFC 6531 (``body``, ``smtputf8``). Values are frozen and stored as JSON.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

__all__ = ["Envelope", "EnvelopeError", "Recipient"]


class EnvelopeError(ValueError):
    """Stored envelope text that does not describe an envelope."""


@dataclass(frozen=True)
class Recipient:
    """One envelope recipient.

    ``address`` is where to deliver; ``original`` is the address as the client gave it
    (X-Original-To:, DSN Original-Recipient); ``notify`` and ``orcpt`` are the RFC 3461
    NOTIFY= and ORCPT= parameters as received, empty when absent.
    """

    address: str
    original: str
    notify: str = ""
    orcpt: str = ""


@dataclass(frozen=True)
class Envelope:
    """Sender, recipients and arrival facts of one queued message."""

    sender: str
    recipients: tuple[Recipient, ...]
    arrival_time: float
    client_name: str = ""
    client_addr: str = ""
    helo: str = ""
    protocol: str = ""
    sasl_username: str = ""
    envid: str = ""
    ret: str = ""
    body: str = ""
    smtputf8: bool = False
    message_id: str = ""

    def to_json(self) -> str:
        """Serialise to JSON text (ASCII only, so any surrogate-escaped byte survives)."""
        # vars(), not dataclasses.asdict: asdict deep-copies every value and was 50 us
        # of a 4 KiB message's path through smtpd (docs/performance.md).
        fields = dict(vars(self))
        fields["recipients"] = [vars(recipient) for recipient in self.recipients]
        return json.dumps(fields, ensure_ascii=True, separators=(",", ":"))

    @classmethod
    def from_json(cls, text: str | bytes) -> Envelope:
        """Parse :meth:`to_json` output; raise :class:`EnvelopeError` on anything else."""
        data = json.loads(text)
        if not isinstance(data, dict):
            raise EnvelopeError("envelope is not a JSON object")
        fields = dict(data)
        rcpts = fields.pop("recipients", None)
        if not isinstance(rcpts, list):
            raise EnvelopeError("envelope recipients are not a list")
        recipients = tuple(_recipient(item) for item in rcpts)
        arrival = fields.pop("arrival_time", None)
        if isinstance(arrival, bool) or not isinstance(arrival, int | float):
            raise EnvelopeError("envelope arrival_time is not a number")
        smtputf8 = fields.pop("smtputf8", False)
        if not isinstance(smtputf8, bool):
            raise EnvelopeError("envelope smtputf8 is not a boolean")
        _check_strings(fields, _ENVELOPE_STRINGS, required=("sender",))
        return cls(recipients=recipients, arrival_time=float(arrival), smtputf8=smtputf8, **fields)


_ENVELOPE_STRINGS = frozenset(
    {
        "sender",
        "client_name",
        "client_addr",
        "helo",
        "protocol",
        "sasl_username",
        "envid",
        "ret",
        "body",
        "message_id",
    }
)
_RECIPIENT_STRINGS = frozenset({"address", "original", "notify", "orcpt"})


def _check_strings(
    fields: dict[str, Any], allowed: frozenset[str], required: tuple[str, ...]
) -> None:
    unknown = set(fields) - allowed
    if unknown:
        raise EnvelopeError(f"unknown envelope fields: {', '.join(sorted(unknown))}")
    for name in required:
        if name not in fields:
            raise EnvelopeError(f"envelope field {name} is missing")
    for name, value in fields.items():
        if not isinstance(value, str):
            raise EnvelopeError(f"envelope field {name} is not a string")


def _recipient(item: object) -> Recipient:
    if not isinstance(item, dict):
        raise EnvelopeError("envelope recipient is not a JSON object")
    fields = dict(item)
    _check_strings(fields, _RECIPIENT_STRINGS, required=("address", "original"))
    return Recipient(**fields)
