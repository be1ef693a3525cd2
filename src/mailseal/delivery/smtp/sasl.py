"""SMTP AUTH as a client (RFC 4954): whose password to use, and which mechanism.

Parameters: ``smtp_sasl_auth_enable``, ``smtp_sasl_password_maps``,
``smtp_sender_dependent_authentication``, ``smtp_sasl_mechanism_filter``,
``smtp_sasl_security_options`` (plaintext sessions),
``smtp_sasl_tls_security_options`` (TLS) and
``smtp_sasl_tls_verified_security_options`` (TLS with a verified server).

Password lookup order (smtp_sasl_glue.c smtp_sasl_passwd_lookup()): the
sender address (only with sender-dependent authentication, and not for the
null sender), then the server's host name, then the next hop as written
(``[smtp.example.com]:587``). The value is ``user:password``.

Mechanism choice: of those the server offers and the filter lets through, the
strongest we speak whose properties the security options allow, as Cyrus SASL
picks: SCRAM-SHA-256, then PLAIN, then LOGIN. The options follow Cyrus:
``noplaintext`` excludes PLAIN and LOGIN, ``noactive`` the same two,
``nodictionary`` all three, ``mutual_auth`` all but SCRAM, ``noanonymous``
none of ours. With Postfix's default ``noplaintext, noanonymous`` for both
plaintext and TLS sessions, only SCRAM-SHA-256 is allowed until the admin
relaxes ``smtp_sasl_tls_security_options`` (Postfix's SASL_README says so too).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from mailseal.config.tables import Table, lookup_address

__all__ = ["MECHANISMS", "Credentials", "choose_mechanism", "find_credentials"]

# Mechanism -> the Cyrus security properties it lacks (what an option can exclude).
MECHANISMS: dict[str, frozenset[str]] = {
    "SCRAM-SHA-256": frozenset({"nodictionary"}),
    "PLAIN": frozenset({"noplaintext", "noactive", "nodictionary", "mutual_auth"}),
    "LOGIN": frozenset({"noplaintext", "noactive", "nodictionary", "mutual_auth"}),
}


@dataclass(frozen=True)
class Credentials:
    username: str
    password: str

    def __repr__(self) -> str:  # never show the password in a traceback or log
        return f"Credentials(username={self.username!r})"


def _search(tables: Sequence[Table], key: str) -> str | None:
    for table in tables:
        value = table.lookup(key)
        if value is not None:
            return value
    return None


def find_credentials(
    tables: Sequence[Table],
    *,
    sender: str,
    host: str,
    nexthop: str,
    sender_dependent: bool,
) -> Credentials | None:
    """The login for this server; raises the tables' ``TableError`` on a lookup failure."""
    value = lookup_address(tables, sender) if sender_dependent and sender else None
    if value is None:
        value = _search(tables, host) or _search(tables, nexthop)
    if value is None:
        return None
    username, _, password = value.partition(":")
    return Credentials(username, password)


def choose_mechanism(
    offered: Sequence[str], *, mechanism_filter: Sequence[str], options: Sequence[str]
) -> str | None:
    """The mechanism to use, or None when nothing offered is acceptable."""
    wanted = {option.strip().lower() for option in options if option.strip()}
    allowed = {name.upper() for name in mechanism_filter}
    server = {name.upper() for name in offered}
    for name, weaknesses in MECHANISMS.items():
        if name not in server or (allowed and name not in allowed):
            continue
        if wanted & weaknesses:
            continue
        return name
    return None
