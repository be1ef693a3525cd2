"""The SMTP client's TLS policy for one next hop, resolved as Postfix's ``smtp_tls_policy.c`` does.

Parameters: ``smtp_tls_security_level`` (empty: the obsolete ``smtp_enforce_tls``,
``smtp_tls_enforce_peername`` and ``smtp_use_tls`` decide), ``smtp_tls_policy_maps``
(through the caller's ``lookup``), ``smtp_tls_(mandatory_)protocols``,
``smtp_tls_(mandatory_)ciphers``, ``smtp_tls_(mandatory_)exclude_ciphers``,
``smtp_tls_verify_cert_match``, ``smtp_tls_secure_cert_match``,
``smtp_tls_fingerprint_cert_match``, ``smtp_tls_fingerprint_digest``,
``smtp_tls_servername``, ``smtp_tls_connection_reuse``. TLS_README "TLS policy table".

Lookup keys (``policy_lookup_keys``): the next-hop destination exactly as written,
with any ``[ ]`` and ``:port`` (``[mx.example.com]:587`` is one key, never
shortened). Only a plain domain (typically the recipient domain) walks up its
parents with a leading dot: ``a.example.com``, ``.example.com``, ``.com``. This
does not depend on ``parent_domain_matches_subdomains``.

Levels ``may`` take ``smtp_tls_protocols``/``smtp_tls_ciphers``; every stronger
level the mandatory ones, plus ``eNULL`` excluded at ``encrypt`` and ``aNULL``
at the levels that check a certificate. ``exclude=`` replaces the main.cf
exclusions. DANE is not implemented: ``dane`` and ``dane-only`` are parsed and
kept; ``dane`` gets ``may``'s protocols and ciphers (the caller uses it as
``may``), ``dane-only`` the mandatory ones (the caller defers the mail).

``smtp_tls_servername`` / ``servername=`` stay symbolic here (``hostname``,
``nexthop`` or a literal name); ``TlsPolicy.sni`` resolves them per connection.
The name-match strategies of ``verify``/``secure`` are applied by ``match_peer_name``.

Errors are ``PolicyError`` with Postfix's warning text; the caller logs it and
defers with ``4.7.5 client TLS configuration problem``. Pure: no ``ssl``.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from mailseal.config.tables.base import TableError
from mailseal.tls.certs import name_matches
from mailseal.tls.levels import TlsLevel

if TYPE_CHECKING:
    from mailseal.config.model import Config

__all__ = [
    "CONFIG_PROBLEM",
    "PolicyEntry",
    "PolicyError",
    "TlsPolicy",
    "configured_level",
    "is_valid_hostname",
    "match_peer_name",
    "nexthop_domain",
    "parse_policy_entry",
    "policy_lookup_keys",
    "resolve_policy",
]

# The defer reason smtp_tls_policy.c gives for any policy error (MARK_INVALID).
CONFIG_PROBLEM = ("4.7.5", "client TLS configuration problem")
_TABLE = "smtp_tls_policy_maps"
_SEPARATORS = ", \t\r\n"
_LABEL = re.compile(r"^[^\W][\w-]*$")
# TLSRPT attributes (Postfix 3.10) accepted from MTA-STS resolvers; unused here.
_TLSRPT_SINGLE = ("policy_type", "policy_ttl", "policy_domain", "policy_failure")
_TLSRPT_MULTI = ("policy_string", "mx_host_pattern")
_TLSRPT_TYPES = ("tlsa", "sts", "no-policy-found")


class PolicyError(Exception):
    """A policy that cannot be used; ``str()`` is Postfix's warning text."""

    def __init__(self, detail: str, *, where: str = "") -> None:
        super().__init__(f"{where}: {detail}" if where else detail)
        self.detail = detail
        self.where = where


@dataclass(frozen=True)
class PolicyEntry:
    """One parsed policy table value; ``None`` means "not given, use main.cf"."""

    level: TlsLevel
    matches: tuple[str, ...] = ()
    protocols: str | None = None
    ciphers: str | None = None
    exclude: tuple[str, ...] | None = None
    servername: str | None = None
    connection_reuse: bool | None = None
    warnings: tuple[str, ...] = ()


@dataclass(frozen=True)
class TlsPolicy:
    """The TLS policy in effect for one delivery attempt to one next hop."""

    level: TlsLevel
    matches: tuple[str, ...]
    protocols: str
    ciphers: str
    exclude: tuple[str, ...]
    servername: str | None
    connection_reuse: bool
    source: str
    fingerprint_digest: str = "sha256"
    warnings: tuple[str, ...] = field(default=(), compare=False)

    def sni(self, *, nexthop: str, mx_host: str) -> str | None:
        """The SNI name to send: ``hostname`` is the MX host, ``nexthop`` the next-hop domain."""
        if not self.servername or self.level is TlsLevel.NONE:
            return None
        if self.servername == "hostname":
            return mx_host
        if self.servername == "nexthop":
            return nexthop_domain(nexthop)
        return self.servername


def configured_level(config: Config) -> TlsLevel:
    """``smtp_tls_security_level``, or what the obsolete switches mean when it is empty."""
    if config.smtp_tls_security_level:
        return TlsLevel.parse(config.smtp_tls_security_level)
    if config.smtp_enforce_tls:
        return TlsLevel.VERIFY if config.smtp_tls_enforce_peername else TlsLevel.ENCRYPT
    return TlsLevel.MAY if config.smtp_use_tls else TlsLevel.NONE


def nexthop_domain(nexthop: str) -> str:
    """The name inside ``[host]:port`` / ``host:port``: what certificates are matched against."""
    text = nexthop.strip()
    if text.startswith("["):
        return text[1:].partition("]")[0]
    host, colon, port = text.rpartition(":")
    return host if colon and port.isdigit() and ":" not in host else text


def is_valid_hostname(name: str) -> bool:
    """Postfix valid_hostname(): dot-separated labels of letters, digits, ``-``, ``_``."""
    if not name or len(name) > 255 or name.replace(".", "").isdigit():
        return False
    labels = name[:-1].split(".") if name.endswith(".") else name.split(".")
    return all(
        len(label) <= 63 and _LABEL.match(label) and not label.endswith("-") for label in labels
    )


def policy_lookup_keys(nexthop: str) -> tuple[str, ...]:
    """The table keys tried, in order: the destination, then parent domains for a plain name."""
    if not is_valid_hostname(nexthop):
        return (nexthop,)
    keys = [nexthop]
    rest = nexthop
    while (dot := rest.find(".", 1)) > 0:
        rest = rest[dot:]
        keys.append(rest)
        rest = rest[1:]
    return tuple(keys)


def resolve_policy(
    config: Config, nexthop: str, *, port: int, lookup: Callable[[str], str | None]
) -> TlsPolicy:
    """The policy for ``nexthop``: the first policy table entry found, else main.cf.

    ``lookup`` searches ``smtp_tls_policy_maps`` (None: no entry; a ``TableError``
    or ``OSError`` is a lookup failure). ``port`` 0 means a UNIX-domain socket (LMTP).
    """
    entry, key = _find_entry(nexthop, lookup)
    level = entry.level if entry else configured_level(config)
    if level.is_dane_based and port == 0:
        raise PolicyError(
            f'{nexthop}: the "{level.value}" security level is invalid for delivery via '
            "unix-domain sockets"
        )
    source = f"{_TABLE}: {key}" if entry else "smtp_tls_security_level"
    if level is TlsLevel.NONE:
        warnings = entry.warnings if entry else ()
        return TlsPolicy(level, (), "", "", (), None, False, source, warnings=warnings)
    entry = entry or PolicyEntry(level)
    grade, exclude = _cipher_grade(config, level, entry)
    return TlsPolicy(
        level=level,
        matches=_matches(config, level, entry, nexthop),
        protocols=_protocols(config, level, entry),
        ciphers=grade,
        exclude=exclude,
        servername=_servername(config, entry),
        connection_reuse=(
            config.smtp_tls_connection_reuse
            if entry.connection_reuse is None
            else entry.connection_reuse
        ),
        source=source,
        fingerprint_digest=config.smtp_tls_fingerprint_digest,
        warnings=entry.warnings,
    )


def _where(key: str) -> str:
    return f'{_TABLE}, next-hop destination "{key}"'


def _find_entry(
    nexthop: str, lookup: Callable[[str], str | None]
) -> tuple[PolicyEntry | None, str]:
    for key in policy_lookup_keys(nexthop):
        try:
            value = lookup(key)
        except (TableError, OSError):
            raise PolicyError("policy table lookup error", where=_where(key)) from None
        if value is not None:
            return parse_policy_entry(value, where=_where(key)), key
    return None, ""


def _is_may(level: TlsLevel) -> bool:
    # DANE is not implemented: "dane" is used as "may" (see the module docstring).
    return level in (TlsLevel.MAY, TlsLevel.DANE)


def _protocols(config: Config, level: TlsLevel, entry: PolicyEntry) -> str:
    if entry.protocols is not None:
        return entry.protocols
    name = "smtp_tls_protocols" if _is_may(level) else "smtp_tls_mandatory_protocols"
    return config.expanded(name)


def _cipher_grade(
    config: Config, level: TlsLevel, entry: PolicyEntry
) -> tuple[str, tuple[str, ...]]:
    """smtp_tls_policy.c set_cipher_grade(): the grade and the exclusions for ``level``."""
    mandatory: tuple[str, ...] = ()
    also: tuple[str, ...] = ()
    if _is_may(level):
        grade = config.smtp_tls_ciphers
    else:
        grade, mandatory = (
            config.smtp_tls_mandatory_ciphers,
            config.smtp_tls_mandatory_exclude_ciphers,
        )
        also = ("eNULL",) if level is TlsLevel.ENCRYPT else ("aNULL",)
    if entry.ciphers is not None:
        grade = entry.ciphers
    if entry.exclude is not None:
        exclude = entry.exclude
    else:
        exclude = (*config.smtp_tls_exclude_ciphers, *mandatory)
    return grade, (*exclude, *also)


def _servername(config: Config, entry: PolicyEntry) -> str | None:
    if entry.servername is not None:
        return entry.servername
    name = config.smtp_tls_servername
    if name and not is_valid_hostname(name):
        raise PolicyError(f'"smtp_tls_servername = {name}" specifies an invalid hostname')
    return name or None


def _matches(config: Config, level: TlsLevel, entry: PolicyEntry, nexthop: str) -> tuple[str, ...]:
    if level is TlsLevel.FINGERPRINT:
        found = entry.matches or config.smtp_tls_fingerprint_cert_match
        if not found:
            raise PolicyError(
                f"nexthop domain {nexthop}: configured at fingerprint security level, "
                "but with no fingerprints to match."
            )
        return tuple(found)
    if not level.requires_pkix:
        return ()
    if entry.matches:
        return entry.matches
    configured = (
        config.smtp_tls_verify_cert_match
        if level is TlsLevel.VERIFY
        else config.smtp_tls_secure_cert_match
    )
    return tuple(part for item in configured for part in item.split(":") if part)


# -- parsing a policy table value ----------------------------------------------------------


def _tokens(text: str) -> list[str]:
    """Postfix mystrtokq(): split on commas and white space, but not inside ``{ }``."""
    tokens: list[str] = []
    current: list[str] = []
    depth = 0
    for char in text:
        if char in _SEPARATORS and depth == 0:
            if current:
                tokens.append("".join(current))
                current = []
            continue
        depth += {"{": 1, "}": -1}.get(char, 0)
        current.append(char)
    if current:
        tokens.append("".join(current))
    return tokens


def _split_nameval(token: str) -> tuple[str, str]:
    """Postfix split_nameval() and extpar(): ``name=value`` or ``{ name = value }``."""
    text = token
    if text.startswith("{"):
        if not text.endswith("}"):
            raise ValueError(f"missing '}}' in \"{text}\"")
        text = " ".join(text[1:-1].split())
    name, equals, value = text.strip().partition("=")
    if not name.strip():
        raise ValueError("missing attribute name")
    if not equals or any(char.isspace() for char in name.strip()):
        raise ValueError("missing '=' after attribute name")
    return name.strip(), value.strip()


def parse_policy_entry(text: str, *, where: str = "") -> PolicyEntry:
    """Parse a policy table value such as ``secure match=nexthop:dot-nexthop protocols=>=TLSv1.2``.

    Raises ``PolicyError`` with Postfix's wording; ``where`` prefixes it (the
    table and key, as Postfix's warnings name them).
    """
    tokens = _tokens(text)
    if not tokens:
        raise PolicyError("invalid empty policy", where=where)
    try:
        level = TlsLevel.parse(tokens[0])
    except ValueError:
        raise PolicyError(f'invalid security level "{tokens[0]}"', where=where) from None
    if level < TlsLevel.MAY:
        ignored = tuple(
            f'{where}: ignoring attribute "{token}" with TLS disabled' for token in tokens[1:]
        )
        return PolicyEntry(level, warnings=ignored)
    values: dict[str, str | tuple[str, ...] | bool] = {}
    for token in tokens[1:]:
        try:
            name, value = _split_nameval(token)
        except ValueError as error:
            raise PolicyError(
                f'malformed attribute/value pair "{token}": {error}', where=where
            ) from None
        try:
            _attribute(level, name.lower(), value, values)
        except ValueError as error:
            raise PolicyError(str(error), where=where) from None
    if any(name in values for name in (*_TLSRPT_SINGLE[1:], *_TLSRPT_MULTI)) and (
        "policy_type" not in values
    ):
        raise PolicyError(
            "built-in policy has unexpected attribute policy_ttl, policy_domain, "
            "policy_string, mx_host_pattern or policy_failure",
            where=where,
        )
    return _entry(level, values)


def _entry(level: TlsLevel, values: dict[str, str | tuple[str, ...] | bool]) -> PolicyEntry:
    def text(name: str) -> str | None:
        value = values.get(name)
        return value if isinstance(value, str) else None

    matches = values.get("match", ())
    exclude = text("exclude")
    reuse = values.get("connection_reuse")
    return PolicyEntry(
        level=level,
        matches=matches if isinstance(matches, tuple) else (),
        protocols=text("protocols"),
        ciphers=text("ciphers"),
        exclude=tuple(exclude.replace(",", " ").split()) if exclude is not None else None,
        servername=text("servername"),
        connection_reuse=reuse if isinstance(reuse, bool) else None,
    )


def _once(name: str, values: dict[str, str | tuple[str, ...] | bool]) -> None:
    if name in values:
        raise ValueError(f'attribute "{name}" is specified multiple times')


def _attribute(
    level: TlsLevel, name: str, value: str, values: dict[str, str | tuple[str, ...] | bool]
) -> None:
    """Check one attribute as smtp_tls_policy.c does and record it in ``values``."""
    if name in ("ciphers", "match", "policy_string", "mx_host_pattern") and not value:
        raise ValueError(f'attribute "{name}" has empty value')
    if name in ("ciphers", "protocols", "exclude", "servername", *_TLSRPT_SINGLE):
        _once(name, values)
    if name == "servername" and not is_valid_hostname(value):
        raise ValueError(f'"{name}={value}" specifies an invalid hostname')
    if name in ("ciphers", "protocols", "exclude", "servername"):
        values[name] = value
    elif name == "match":
        values[name] = (*_tuple(values.get(name)), *_split_match(level, value))
    elif name in ("connection_reuse", "enable_rpk"):
        if value.lower() not in ("yes", "no"):
            raise ValueError(f'attribute "{name}" has bad value: "{value}"')
        values[name] = value.lower() == "yes"
    elif name == "tafile":
        # Trust anchors restrict whom we trust; ignoring them would weaken the policy.
        raise ValueError(f'attribute "{name}" is not supported by mailseal yet')
    elif name in _TLSRPT_SINGLE or name in _TLSRPT_MULTI:
        _tlsrpt_attribute(name, value)
        values[name] = value
    else:
        raise ValueError(f'invalid attribute name: "{name}"')


def _tuple(value: object) -> tuple[str, ...]:
    return value if isinstance(value, tuple) else ()


def _split_match(level: TlsLevel, value: str) -> tuple[str, ...]:
    # Fingerprints contain colons, so they are separated by "|"; names by ":".
    if level is TlsLevel.FINGERPRINT:
        return tuple(part for part in value.split("|") if part)
    if level.requires_pkix:
        return tuple(part for part in value.split(":") if part)
    raise ValueError(f'attribute "match" invalid at security level "{level.value}"')


def _tlsrpt_attribute(name: str, value: str) -> None:
    if name == "policy_ttl" and not value.isdigit():
        raise ValueError(f'attribute "{name}" has a malformed value: "{value}"')
    if name == "policy_type" and value not in _TLSRPT_TYPES:
        raise ValueError(f'attribute "{name}" has an unexpected value: "{value}"')
    if name == "policy_domain" and not is_valid_hostname(value):
        raise ValueError(f'attribute "{name}" has a malformed value: "{value}"')


# -- certificate name matching (tls_client.c match_hostname) ---------------------------------


def match_peer_name(
    peer_names: Iterable[str],
    policy: TlsPolicy,
    *,
    nexthop: str,
    mx_host: str,
    from_dns_mx: bool,
) -> str | None:
    """The first certificate name that satisfies one of ``policy.matches``, else None.

    Strategies: ``hostname`` (the MX host), ``nexthop`` (the next-hop domain),
    ``dot-nexthop`` (any sub-domain of it), ``.domain`` (any sub-domain) or a
    literal name. A ``*`` in a certificate name stands for the whole leftmost
    label only (RFC 6125 6.4.3). At ``secure`` an MX host name learned from DNS
    proves nothing (the DNS answer may be forged), so ``hostname`` is skipped
    then: a mailseal rule, stricter than Postfix, which only discourages it.
    """
    domain = nexthop_domain(nexthop)
    patterns: list[tuple[str, bool]] = []
    for strategy in policy.matches:
        lowered = strategy.lower()
        if lowered == "hostname":
            if policy.level is TlsLevel.SECURE and from_dns_mx:
                continue
            patterns.append((mx_host, False))
        elif lowered == "nexthop":
            patterns.append((domain, False))
        elif lowered == "dot-nexthop":
            patterns.append((domain, True))
        elif strategy.startswith(".") and len(strategy) > 1:
            patterns.append((strategy[1:], True))
        else:
            patterns.append((strategy, False))
    for name in peer_names:
        for pattern, sub in patterns:
            if _name_fits(name, pattern, sub):
                return name
    return None


def _name_fits(name: str, pattern: str, sub: bool) -> bool:
    if not name or not pattern:
        return False
    if sub:
        # Postfix: the certificate name is any (strict) sub-domain of the pattern.
        suffix = "." + pattern.lower().rstrip(".")
        candidate = name.lower().rstrip(".")
        return candidate.endswith(suffix) and len(candidate) > len(suffix)
    return name_matches(name, pattern)
