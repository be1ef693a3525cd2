"""access(5): which keys an smtpd access table is asked, and what its answer means.

Key order, as smtpd_check.c searches (access(5) "EMAIL ADDRESS PATTERNS",
"DOMAIN NAME PATTERNS", "HOST NAME/ADDRESS PATTERNS"):

* a host or domain: ``sub.example.com``, then each parent, ``.example.com``
  (or ``example.com`` when ``smtpd_access_maps`` is listed in
  parent_domain_matches_subdomains, Postfix's default), then ``.com``;
  an IP address is not split that way;
* a client: its host name as above, then its address and each shorter
  prefix (``192.0.2.1``, ``192.0.2``, ``192.0``, ``192``; for IPv6 up to each
  ``:``);
* a mail address: ``user+ext@domain``, ``user@domain``, the domain as above,
  ``user+ext@``, ``user@``.

Only the first key (and the full address) goes to pattern tables (regexp,
pcre, cidr); partial keys go to fixed-string tables only.

A result is parsed into an ``AccessResult`` (Postfix's check_table_result):
``OK``/``RELAY`` or all digits permit; ``REJECT [text]``, ``DEFER [text]`` and
``4NN text``/``5NN text`` refuse (an optional RFC 3463 code may start the
text); ``DUNNO``; ``DEFER_IF_PERMIT``/``DEFER_IF_REJECT``; ``WARN``/``INFO``
are logged; anything else is a list of restrictions to evaluate (restriction
names and restriction classes). A value naming a lookup table is a
configuration error. The actions that change what happens to the message --
``FILTER``, ``HOLD``, ``DISCARD``, ``REDIRECT``, ``BCC``, ``PREPEND`` -- are
not implemented yet: they are reported and otherwise ignored (DUNNO), never
silently taken as a permit.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass
from enum import Enum

from mailseal.config.kinds import split_list

__all__ = [
    "AccessKind",
    "AccessResult",
    "address_keys",
    "client_keys",
    "domain_keys",
    "dsn_fix",
    "dsn_split",
    "parse_result",
]

# A key and whether it is the "full" one (asked of pattern tables too).
Key = tuple[str, bool]

_DSN = re.compile(r"^[245]\.\d{1,3}\.\d{1,3}(?=\s|$)")
_UNSUPPORTED_ACTIONS = frozenset({"FILTER", "HOLD", "DISCARD", "REDIRECT", "BCC", "PREPEND"})


class AccessKind(Enum):
    """What an access table result asks for."""

    DUNNO = "dunno"
    OK = "ok"
    REJECT = "reject"  # access_map_reject_code
    DEFER = "defer"  # access_map_defer_code
    CODE = "code"  # an explicit 4NN/5NN reply
    DEFER_IF_PERMIT = "defer_if_permit"
    DEFER_IF_REJECT = "defer_if_reject"
    WARN = "warn"
    INFO = "info"
    UNSUPPORTED = "unsupported"  # FILTER, HOLD, ... (see module docstring)
    TABLE = "table"  # a lookup table in a result: configuration error
    RESTRICTIONS = "restrictions"


@dataclass(frozen=True)
class AccessResult:
    """A parsed access table value."""

    kind: AccessKind
    text: str = ""
    code: int = 0
    dsn: str = ""
    restrictions: tuple[str, ...] = ()


def dsn_split(default: str, text: str) -> tuple[str, str]:
    """``("5.7.1", "go away")`` from ``"5.7.1 go away"``; ``default`` when none is given."""
    match = _DSN.match(text)
    if match is None:
        return default, text
    return match.group(0), text[match.end() :].strip()


# smtpd_dsn_fix.c: address DSNs (X.1.Y) reworded for what is being rejected.
_SENDER_DSN = {"1": "1.0", "2": "1.8", "3": "1.7", "4": "1.0", "5": "1.0", "6": "1.0"}
_SENDER_DSN |= {"7": "1.7", "8": "1.8"}
_RECIPIENT_DSN = {"1": "1.1", "2": "1.2", "3": "1.3", "4": "1.4", "5": "1.5", "6": "1.6"}
_RECIPIENT_DSN |= {"7": "1.3", "8": "1.2"}


def dsn_fix(dsn: str, reply_class: str) -> str:
    """Postfix's smtpd_dsn_fix: a sender/recipient DSN fitting ``reply_class``."""
    if dsn[1:4] != ".1.":
        return dsn
    detail = dsn[4:]
    if reply_class == "Sender address":
        return f"{dsn[0]}.{_SENDER_DSN.get(detail, '1.0')}"
    if reply_class == "Recipient address":
        return f"{dsn[0]}.{_RECIPIENT_DSN.get(detail, '1.0')}"
    return f"{dsn[0]}.0.0"


def parse_result(value: str) -> AccessResult:
    """Parse one access table value (check_table_result)."""
    command, _, rest = value.strip().partition(" ")
    text = rest.strip()
    word = command.upper()
    simple = {
        "DUNNO": AccessKind.DUNNO,
        "WARN": AccessKind.WARN,
        "INFO": AccessKind.INFO,
        "DEFER_IF_PERMIT": AccessKind.DEFER_IF_PERMIT,
        "DEFER_IF_REJECT": AccessKind.DEFER_IF_REJECT,
        "REJECT": AccessKind.REJECT,
        "DEFER": AccessKind.DEFER,
        "OK": AccessKind.OK,
        "RELAY": AccessKind.OK,
    }
    if word in simple:
        return AccessResult(simple[word], text)
    if word in _UNSUPPORTED_ACTIONS:
        return AccessResult(AccessKind.UNSUPPORTED, word)
    if value.strip().isdigit():
        return AccessResult(AccessKind.OK)  # a time stamp of some out-of-band check
    if re.fullmatch(r"[45]\d\d", command) and text:
        dsn, message = dsn_split(f"{command[0]}.7.1", text)
        return AccessResult(AccessKind.CODE, message, int(command), dsn)
    if ":" in value:
        return AccessResult(AccessKind.TABLE, value.strip())
    return AccessResult(AccessKind.RESTRICTIONS, restrictions=split_list(value))


def domain_keys(domain: str, *, parent_style: bool, full: bool = True) -> list[Key]:
    """A host or domain and its parents (check_domain_access)."""
    name = domain.lower()
    if name.endswith(".") and not name.endswith(".."):
        name = name[:-1]  # HELO names may end in a dot
    keys: list[Key] = [(name, full)] if name else []
    if not name or _is_ip(name):
        return keys
    rest = name
    while "." in rest[1:]:
        rest = rest[rest.index(".", 1) :]
        keys.append((rest[1:] if parent_style else rest, False))
    return keys


def client_keys(name: str, addr: str, *, parent_style: bool) -> list[Key]:
    """A client's host name keys, then its address and shorter prefixes (check_namadr_access)."""
    keys = domain_keys(name, parent_style=parent_style)
    address = addr.lower()
    delimiter = ":" if ":" in address else "."
    first = True
    while address:
        keys.append((address, first))
        first = False
        cut = address.rfind(delimiter)
        if cut < 0:
            break
        address = address[:cut]
    return keys


def address_keys(address: str, base: str | None, *, parent_style: bool) -> list[Key]:
    """``user+ext@domain``, ``user@domain``, domain and parents, ``user+ext@``, ``user@``."""
    at = address.rfind("@")
    localpart, domain = (address, "") if at < 0 else (address[:at], address[at + 1 :])
    keys: list[Key] = [(address, True)]
    base_at = base.rfind("@") if base else -1
    if base is not None and base != address:
        keys.append((base, False))
    keys += domain_keys(domain, parent_style=parent_style, full=False)
    keys.append((f"{localpart}@", False))
    if base is not None and base != address:
        keys.append((base[: base_at + 1] if base_at >= 0 else f"{base}@", False))
    return keys


def _is_ip(name: str) -> bool:
    """valid_hostaddr: a bare IPv4 or IPv6 address."""
    try:
        ipaddress.ip_address(name)
    except ValueError:
        return False
    return True
