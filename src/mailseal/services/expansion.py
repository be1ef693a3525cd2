"""Alias expansion at queue-manager time: virtual(5) aliases, then aliases(5) for local users.

**virtual_alias_maps** (cleanup's one-to-many mapping, virtual(5)): an
address found in the tables (virtual(5) search order, with
recipient_delimiter) is replaced by the addresses of the result, separated by
commas or spaces, and each of those is looked up again. An address that
expands into itself is kept as is (``a@x  a@x, b@y`` delivers to both) and
not expanded again. When a result was found without the address extension,
the extension is put back on every target (propagate_unmatched_extensions
names ``virtual``). More than ``virtual_alias_expansion_limit`` addresses, or
more than ``virtual_alias_recursion_limit`` lookups for one address (which is
what a loop ``a -> b -> a`` runs into), stop the expansion: the message is not
accepted now, ``451 4.6.0 Alias expansion error``, as cleanup defers it.

**alias_maps** (local(8), aliases(5)): a recipient that goes to the ``local``
transport is looked up by its local part (``user+ext``, then ``user``). Each
target address goes through the whole expansion again (it may be virtual or
remote). An alias that names itself (``root: root, admin``) delivers to its
own mailbox; a loop through other aliases ends where an alias comes round a
second time, as local(8)'s duplicate filter ends it. Targets mailseal does not
deliver to -- ``|command``, ``/file`` and ``:include:/file`` -- reject the
recipient with ``550 5.3.0`` and a text that says so.

A table that cannot answer defers: ``451 4.3.0 <address>: Temporary lookup
failure``. Destinations that are the same (transport, next hop, address) are
listed once.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from mailseal.config.model import Config
from mailseal.services.addresses import AddressClass, Addressing, split_address
from mailseal.services.maps import Maps, TableLookupError
from mailseal.services.routing import LOCAL, VIRTUAL, Destination, Router
from mailseal.services.verdict import Verdict

__all__ = ["Expander", "split_targets"]

_EXPANSION_ERROR = Verdict(451, "4.6.0", "Alias expansion error")


class _ExpansionError(Exception):
    """Ends the whole expansion with ``verdict``."""

    def __init__(self, verdict: Verdict) -> None:
        super().__init__(str(verdict))
        self.verdict = verdict


@dataclass(frozen=True)
class _Job:
    address: str
    chain: tuple[str, ...]  # local alias names being expanded, outermost first
    self_alias: str | None = None  # the alias this address came from by naming itself


def split_targets(value: str) -> list[str]:
    """The addresses of a table result: comma/space separated, quotes kept together."""
    targets: list[str] = []
    current: list[str] = []
    quoted = False
    for char in value:
        if char == '"':
            quoted = not quoted
        if not quoted and (char == "," or char.isspace()):
            if current:
                targets.append("".join(current))
                current = []
            continue
        current.append(char)
    if current:
        targets.append("".join(current))
    return [_unbracket(target) for target in targets if _unbracket(target)]


def _unbracket(target: str) -> str:
    target = target.strip()
    return target[1:-1].strip() if target.startswith("<") and target.endswith(">") else target


class Expander:
    """Expands one recipient into its destinations (see the module docstring)."""

    def __init__(
        self,
        config: Config,
        addressing: Addressing,
        router: Router,
        *,
        virtual_alias_maps: Maps,
        alias_maps: Maps,
    ) -> None:
        self.config = config
        self.addressing = addressing
        self.router = router
        self.virtual_alias_maps = virtual_alias_maps
        self.alias_maps = alias_maps

    def expand(self, address: str) -> list[Destination] | Verdict:
        try:
            found: dict[tuple[str, str, str], Destination] = {}
            for destination in self._destinations(_Job(address, ()), address, depth=0):
                key = (destination.transport, destination.nexthop, destination.address.lower())
                found.setdefault(key, destination)
        except _ExpansionError as stop:
            return stop.verdict
        except TableLookupError:
            return Verdict(451, "4.3.0", f"<{address}>: Temporary lookup failure")
        return list(found.values())

    def _destinations(self, job: _Job, original: str, depth: int) -> Iterator[Destination]:
        if depth > self.config.virtual_alias_recursion_limit:
            raise _ExpansionError(_EXPANSION_ERROR)
        for final in self.virtual_expand(self.addressing.canonical(job.address)):
            address_class = self.addressing.classify(final)
            transport, nexthop = self.router.route(final, address_class)
            if address_class is AddressClass.VIRTUAL_ALIAS:
                yield Destination(transport, nexthop, final, original)
            elif transport == LOCAL:
                yield from self._local(
                    _Job(final, job.chain, job.self_alias), original, nexthop, depth
                )
            elif transport == VIRTUAL:
                yield self.router.virtual_mailbox(final, original, nexthop)
            else:
                yield Destination(transport, nexthop, final, original)

    # -- virtual_alias_maps -------------------------------------------------------------

    def virtual_expand(self, address: str) -> list[str]:
        """cleanup_map1n: the addresses ``address`` expands to (itself when not aliased)."""
        expanded = [address]
        done: set[str] = set()  # addresses that expanded into themselves
        index = 0
        while index < len(expanded):
            if len(expanded) > self.config.virtual_alias_expansion_limit:
                raise _ExpansionError(_EXPANSION_ERROR)
            for count in range(self.config.virtual_alias_recursion_limit + 1):
                current = expanded[index]
                if current.lower() in done:
                    break
                if count >= self.config.virtual_alias_recursion_limit:
                    raise _ExpansionError(_EXPANSION_ERROR)
                targets = self._virtual_lookup(current)
                if targets is None:
                    break
                expanded[index : index + 1] = targets[:1]
                expanded.extend(targets[1:])
                if any(target.lower() == current.lower() for target in targets):
                    done.add(current.lower())
            index += 1
        return expanded

    def _virtual_lookup(self, address: str) -> list[str] | None:
        match = self.virtual_alias_maps.find_address(
            address,
            delimiter=self.config.recipient_delimiter,
            is_local_domain=self.addressing.is_local_domain,
        )
        if match is None:
            return None
        targets = split_targets(match.value)
        if match.extension and "virtual" in self.config.propagate_unmatched_extensions:
            targets = [_with_extension(target, match.extension) for target in targets]
        return targets or None

    # -- alias_maps (local delivery) ------------------------------------------------------

    def _local(self, job: _Job, original: str, nexthop: str, depth: int) -> Iterator[Destination]:
        localpart = split_address(job.address)[0].lower()
        name, value = self._alias_lookup(localpart)
        if value is None or name == job.self_alias:
            yield self.router.local_mailbox(job.address, original, nexthop)
            return
        if name in job.chain:
            return  # this alias was expanded already: local(8)'s duplicate filter
        for target in split_targets(value):
            _refuse_unsupported(original, name, target)
            target_name = split_address(target)[0].lower()
            naming_itself = target_name == name and "@" not in target
            child = _Job(target, (*job.chain, name), name if naming_itself else None)
            yield from self._destinations(child, original, depth + 1)

    def _alias_lookup(self, localpart: str) -> tuple[str, str | None]:
        """``(name, value)``: ``user+ext`` first, then ``user`` (local(8) aliases)."""
        if not self.alias_maps:
            return localpart, None
        value = self.alias_maps.find(localpart)
        if value is not None:
            return localpart, value
        base = self.router.strip_extension(localpart)
        if base != localpart:
            return base, self.alias_maps.find(base)
        return localpart, None


def _refuse_unsupported(original: str, name: str, target: str) -> None:
    """mailseal delivers to mailboxes only; commands, files and includes are refused."""
    bare = target.strip('"')
    kind = None
    if bare.startswith("|"):
        kind = "mail to command"
    elif bare.lower().startswith(":include:"):
        kind = ":include: files"
    elif bare.startswith("/"):
        kind = "mail to file"
    if kind is not None:
        text = f"<{original}>: alias {name}: {kind} is not supported by mailseal"
        raise _ExpansionError(Verdict(550, "5.3.0", text))


def _with_extension(target: str, extension: str) -> str:
    localpart, domain = split_address(target)
    return f"{localpart}{extension}@{domain}" if domain else f"{localpart}{extension}"
