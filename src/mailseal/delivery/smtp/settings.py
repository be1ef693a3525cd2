"""One configuration's worth of SMTP client state: the config, its tables, its resolver.

``smtp_tls_policy_maps`` and ``smtp_sasl_password_maps`` are opened once per
configuration and searched in order. A table that cannot be opened is not fatal
here (Postfix's smtp(8) would exit and the mail would wait): every lookup in that
list then fails, which defers the mail with the reason of the failing step, until
a reload fixes the table. ``dns_servers`` (mailseal's: ``addr`` or ``[addr]:port``,
empty for /etc/resolv.conf) and ``inet_protocols``, ``smtp_address_preference``,
``smtp_randomize_addresses``, ``smtp_defer_if_no_mx_address_found`` build the
resolver.

A reload makes a new ``Settings``; the old one closes its tables once the last
delivery that began under it has finished.
"""

from __future__ import annotations

from collections.abc import Sequence

from mailseal.config.kinds import TableRef
from mailseal.config.model import Config
from mailseal.config.tables import Table, TableError, open_table
from mailseal.net.dns import Resolver

__all__ = ["Settings", "parse_dns_servers"]


def parse_dns_servers(items: Sequence[str]) -> list[tuple[str, int]] | None:
    """``dns_servers`` as ``(addr, port)`` pairs; None (the system resolver) when empty."""
    servers: list[tuple[str, int]] = []
    for item in items:
        text = item.strip()
        if text.startswith("["):
            addr, _, rest = text[1:].partition("]")
            port_text = rest.removeprefix(":") if rest.startswith(":") else ""
            if rest and not rest.startswith(":"):
                raise ValueError(f"bad dns_servers entry: {item!r}")
        elif text.count(":") == 1:  # IPv4 address or name with a port; IPv6 needs [ ]
            addr, _, port_text = text.partition(":")
        else:
            addr, port_text = text, ""
        if port_text and not port_text.isdigit():
            raise ValueError(f"bad dns_servers entry: {item!r}")
        port = int(port_text) if port_text else 53
        if not addr or not 0 < port < 65536:
            raise ValueError(f"bad dns_servers entry: {item!r}")
        servers.append((addr, port))
    return servers or None


def _make_resolver(config: Config) -> tuple[Resolver, str | None]:
    try:
        servers, error = parse_dns_servers(config.dns_servers), None
    except ValueError as problem:
        servers, error = None, str(problem)
    resolver = Resolver(
        servers,
        inet_protocols=config.inet_protocols,
        address_preference=config.smtp_address_preference,
        randomize=config.smtp_randomize_addresses,
        defer_if_no_mx_address_found=config.smtp_defer_if_no_mx_address_found,
    )
    return resolver, error


class _Tables:
    """An ordered table list; ``error`` when one of them could not be opened."""

    def __init__(self, refs: Sequence[TableRef]) -> None:
        self.tables: list[Table] = []
        self.error: str | None = None
        for ref in refs:
            try:
                self.tables.append(open_table(ref))
            except TableError as error:
                self.error = f"{ref}: {error}"

    def checked(self) -> list[Table]:
        """The tables; raises TableError when one of them could not be opened."""
        if self.error is not None:
            raise TableError(self.error)
        return self.tables

    def lookup(self, key: str) -> str | None:
        for table in self.checked():
            value = table.lookup(key)
            if value is not None:
                return value
        return None

    def close(self) -> None:
        for table in self.tables:
            table.close()


class Settings:
    """The configuration, tables and resolver that deliveries started now will use."""

    def __init__(self, config: Config, resolver: Resolver | None) -> None:
        self.config = config
        self.policy_tables = _Tables(config.smtp_tls_policy_maps)
        self.sasl_tables = _Tables(
            config.smtp_sasl_password_maps if config.smtp_sasl_auth_enable else ()
        )
        # A bad dns_servers entry defers mail (``resolver_error``) rather than
        # silently asking other servers.
        self.resolver_error: str | None = None
        if resolver is None:
            resolver, self.resolver_error = _make_resolver(config)
        self.resolver = resolver
        self.users = 0
        self.retired = False

    def policy_lookup(self, key: str) -> str | None:
        """``smtp_tls_policy_maps``; raises TableError (resolve_policy reports it)."""
        return self.policy_tables.lookup(key)

    def close(self) -> None:
        self.policy_tables.close()
        self.sasl_tables.close()
