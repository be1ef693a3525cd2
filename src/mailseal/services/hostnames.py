"""Syntax of host names and address literals, as Postfix's valid_hostname(3) checks them.

Used by reject_invalid_helo_hostname and reject_non_fqdn_* (postconf(5)):

* a host name is at most 255 characters of labels separated by single dots;
  a label is 1 to 63 letters, digits, ``_`` or ``-``, and does not begin or
  end with ``-``; a name made of digits and dots only is not a host name;
* an address literal is ``[IPv4]`` or ``[IPv6:...]`` (RFC 5321 section
  4.1.3); smtpd also takes a bare IPv4 or IPv6 address as a HELO argument.
"""

from __future__ import annotations

import ipaddress

__all__ = ["is_valid_hostaddr", "is_valid_hostname", "is_valid_mailhost_literal"]

_MAX_NAME = 255
_MAX_LABEL = 63


def is_valid_hostname(name: str) -> bool:
    """A syntactically valid host name (not an address)."""
    if not name or len(name) > _MAX_NAME:
        return False
    labels = name.split(".")
    for label in labels:
        if not label or len(label) > _MAX_LABEL:
            return False
        if label.startswith("-") or label.endswith("-"):
            return False
        if not all(char.isascii() and (char.isalnum() or char in "-_") for char in label):
            return False
    return not all(label.isdigit() for label in labels)


def is_valid_hostaddr(text: str) -> bool:
    """A bare IPv4 or IPv6 address."""
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True


def is_valid_mailhost_literal(text: str) -> bool:
    """``[192.0.2.1]`` or ``[IPv6:2001:db8::1]`` (also without the brackets)."""
    if text.startswith("[") and text.endswith("]"):
        text = text[1:-1]
    if text[:5].lower() == "ipv6:":
        text = text[5:]
        return ":" in text and is_valid_hostaddr(text)
    return "." in text and ":" not in text and is_valid_hostaddr(text)
