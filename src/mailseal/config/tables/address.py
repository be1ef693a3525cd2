"""Address lookups in the order Postfix uses for virtual(5), canonical(5) and friends.

virtual(5) and canonical(5), "TABLE SEARCH ORDER" and "ADDRESS EXTENSION":
a query for ``user+ext@domain`` tries, in this order,

1. ``user+ext@domain``
2. ``user@domain`` (only when the localpart has an extension)
3. ``user+ext`` and then ``user``, only when ``domain`` is local ($myorigin,
   $mydestination, $inet_interfaces, $proxy_interfaces: ``is_local_domain``)
4. ``@domain``

and each key form is sent to every table in turn before the next form is
tried ("each query pattern is sent to each specified lookup table before
trying the next query pattern"), so a ``user@domain`` entry in the last
table beats an ``@domain`` entry in the first.

As in Postfix (maps_find with DICT_FLAG_FIXED), pattern tables -- regexp,
pcre, cidr -- are asked only for the full address; the partial forms go to
fixed-string tables only. The tables fold fixed keys to lower case
themselves; pattern tables see the address as written, so ``$1`` keeps its
case (regexp patterns are case-insensitive by default anyway).

The extension is split as Postfix's split_addr does: at the first of the
``delimiter`` characters (recipient_delimiter), not when the localpart
starts with one, never for postmaster, mailer-daemon and double-bounce, and,
when ``-`` is a delimiter, not for ``owner-*`` and ``*-request``
(owner_request_special = yes).

Not done here: quoting of localparts (Postfix also tries the RFC 5322
quoted form) and propagate_unmatched_extensions, for which
``find_address`` reports the extension that was stripped.

Pure: imports only the standard library.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass

from mailseal.config.tables.base import Table

__all__ = [
    "AddressKey",
    "AddressMatch",
    "address_keys",
    "find_address",
    "lookup_address",
    "split_extension",
]

# Localparts that are never split, whatever the delimiter (split_addr).
_UNSPLIT = frozenset({"postmaster", "mailer-daemon", "double-bounce"})


@dataclass(frozen=True)
class AddressMatch:
    """A hit: the value, the key form that found it, the extension stripped to get there."""

    value: str
    key: str
    extension: str | None = None


@dataclass(frozen=True)
class AddressKey:
    """One key form to look up; ``full`` forms go to pattern tables too."""

    key: str
    full: bool
    extension: str | None = None  # stripped from the address to make this key


def _never_local(domain: str) -> bool:
    return False


def split_extension(
    localpart: str, delimiter: str, *, owner_request_special: bool = True
) -> tuple[str, str | None]:
    """``("user", "+ext")`` for ``user+ext``; ``(localpart, None)`` when it is not split."""
    if not delimiter or localpart.lower() in _UNSPLIT:
        return localpart, None
    if "-" in delimiter and owner_request_special:
        lowered = localpart.lower()
        if lowered.startswith("owner-") or (len(lowered) > 8 and lowered.endswith("-request")):
            return localpart, None
    cut = next((index for index, char in enumerate(localpart) if char in delimiter), -1)
    if cut <= 0:
        return localpart, None  # no delimiter, or nothing would be left of the user
    return localpart[:cut], localpart[cut:]


def address_keys(
    address: str,
    *,
    delimiter: str = "",
    is_local_domain: Callable[[str], bool] = _never_local,
    owner_request_special: bool = True,
) -> list[AddressKey]:
    """The key forms for ``address``, in the order they are tried."""
    rat = address.rfind("@")
    localpart, domain = (address, None) if rat < 0 else (address[:rat], address[rat + 1 :])
    base, extension = split_extension(
        localpart, delimiter, owner_request_special=owner_request_special
    )
    queries = [AddressKey(address, full=True)]
    if extension is not None:
        queries.append(AddressKey(base if domain is None else f"{base}@{domain}", False, extension))
    if domain is not None:
        if is_local_domain(domain.lower()):
            queries.append(AddressKey(localpart, False))
            if extension is not None:
                queries.append(AddressKey(base, False, extension))
        queries.append(AddressKey(f"@{domain}", False))
    return queries


def find_address(
    tables: Iterable[Table],
    address: str,
    *,
    delimiter: str = "",
    is_local_domain: Callable[[str], bool] = _never_local,
    owner_request_special: bool = True,
) -> AddressMatch | None:
    """The first hit for ``address`` in ``tables`` (see the module docstring for the order)."""
    tables = list(tables)
    keys = address_keys(
        address,
        delimiter=delimiter,
        is_local_domain=is_local_domain,
        owner_request_special=owner_request_special,
    )
    for query in keys:
        for table in tables:
            if not (query.full or table.fixed):
                continue
            value = table.lookup(query.key)
            if value is not None:
                return AddressMatch(value, query.key, query.extension)
    return None


def lookup_address(
    tables: Iterable[Table],
    address: str,
    *,
    delimiter: str = "",
    is_local_domain: Callable[[str], bool] = _never_local,
) -> str | None:
    """The value for ``address`` in virtual(5)/canonical(5) search order, or None."""
    match = find_address(tables, address, delimiter=delimiter, is_local_domain=is_local_domain)
    return None if match is None else match.value
