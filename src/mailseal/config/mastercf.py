"""master.cf: the services to run, read as Postfix's master(5) describes them.

Each entry has eight columns, ``service type private unpriv chroot wakeup
maxproc command [args]``, and continues on lines that start with whitespace.
``-o name=value`` and ``-o { name = value }`` arguments override main.cf for
that service only. Lines for programs mailseal does not run (pickup, tlsmgr,
pipe, ...) are accepted and kept, so a stock Debian master.cf loads unchanged.

Error texts follow Postfix's (``bad field count``, ``invalid type field
"bogus" in "..."``), always with the file and line.

Pure: imports only the standard library and this package.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from mailseal.config.errors import ConfigError, Location, Setting
from mailseal.config.maincf import logical_lines, parse_assignment, read_config_text

__all__ = [
    "SERVICE_TYPES",
    "MasterCf",
    "MasterService",
    "Override",
    "format_service",
    "inet_port",
    "known_port",
    "parse_entry",
    "parse_master_cf",
    "read_master_cf",
    "tokenize",
]

# master(5): the transport types a service may have.
SERVICE_TYPES = ("inet", "unix", "unix-dgram", "fifo", "pass")
_FLAG_COLUMNS = ("private", "unpriv", "chroot")
# Column stops used by ``postconf -M`` (postconf_master.c pads each field to these).
_COLUMN_STOPS = (0, 11, 17, 25, 33, 41, 49, 57)
# postconf -Mf wraps before column 80 and indents continuation lines by four spaces.
_FOLD_LIMIT = 80
_FOLD_INDENT = "    "


@dataclass(frozen=True)
class Override:
    """A ``-o name=value`` argument of one service."""

    name: str
    value: str
    location: Location

    def render(self) -> str:
        """The argument as ``postconf -M`` prints it (braces when the value has spaces)."""
        text = f"{self.name}={self.value}"
        return "{" + text + "}" if re.search(r"\s", self.value) else text


@dataclass(frozen=True)
class MasterService:
    """One master.cf entry.

    ``args`` are the arguments after the command, normalized as Postfix
    normalizes them (``-o`` and its ``name=value`` as two words); only the
    options before the first non-option word are daemon options, as with
    getopt(3), so ``-o`` inside a pipe(8) ``argv=`` is not an override.
    ``first`` and ``last`` are the 0-based physical lines of the entry.
    """

    name: str
    type: str
    private: str
    unpriv: str
    chroot: str
    wakeup: str
    maxproc: str
    command: str
    args: tuple[str, ...]
    overrides: tuple[Override, ...]
    location: Location
    last: int

    @property
    def first(self) -> int:
        return self.location.line - 1

    @property
    def fields(self) -> tuple[str, ...]:
        """The first seven columns."""
        return (
            self.name,
            self.type,
            self.private,
            self.unpriv,
            self.chroot,
            self.wakeup,
            self.maxproc,
        )

    @property
    def key(self) -> str:
        """``name/type``, how Postfix names a service (``submission/inet``)."""
        return f"{self.name}/{self.type}"

    @property
    def is_smtpd(self) -> bool:
        """An SMTP server listening on the network: the services mailseal runs as smtpd."""
        return self.type == "inet" and self.command == "smtpd"

    def settings(self) -> dict[str, Setting]:
        """The ``-o`` overrides as settings (the last one of a name wins)."""
        return {o.name: Setting(o.value, o.location) for o in self.overrides}


@dataclass(frozen=True)
class MasterCf:
    """A parsed master.cf: its services in file order."""

    path: str
    services: tuple[MasterService, ...]

    def find(self, key: str) -> MasterService | None:
        """The service named ``name/type`` (or just ``name`` when unique), if any."""
        for service in self.services:
            if key in (service.key, service.name):
                return service
        return None


def tokenize(text: str) -> list[str]:
    """Split on whitespace, keeping a ``{ ... }`` group (nesting counted) as one token."""
    tokens: list[str] = []
    index = 0
    while index < len(text):
        if text[index].isspace():
            index += 1
            continue
        if text[index] == "{":
            end = _closing_brace(text, index)
            tokens.append(text[index : end + 1])
            index = end + 1
            continue
        end = index
        while end < len(text) and not text[end].isspace():
            end += 1
        tokens.append(text[index:end])
        index = end
    return tokens


def parse_master_cf(text: str, path: str) -> MasterCf:
    """Parse master.cf ``text`` read from ``path``; raise ConfigError on a bad entry."""
    services: list[MasterService] = []
    for first, last, logical in logical_lines(text):
        services.append(parse_entry(logical.strip(), Location(path, first + 1), last))
    return MasterCf(path, tuple(services))


def read_master_cf(path: str) -> MasterCf:
    """Read and parse the master.cf at ``path`` (ConfigError when it cannot be read)."""
    return parse_master_cf(read_config_text(path), path)


def format_service(service: MasterService, *, fold: bool = False) -> str:
    """One entry as ``postconf -M`` (``fold``: ``-Mf``, and what ``-Me``/``-Pe`` write).

    The seven columns go to Postfix's column stops (at least one space apart),
    then the command and its arguments. Folding wraps before a word that would
    reach column 80, with a four-space indent, and gives each ``-o name=value``
    a line of its own.
    """
    line = ""
    for stop, field in zip(_COLUMN_STOPS, (*service.fields, service.command), strict=True):
        line = _pad_to(line, stop) + field
    lines: list[str] = []
    length = len(line)
    options = True
    words = iter(service.args)
    for word in words:
        if options and (not word.startswith("-") or word == "--"):
            options = False
        value = next(words, None) if options and word == "-o" else None
        item = word if value is None else f"{word} {value}"
        if value is not None:
            length = _FOLD_LIMIT  # an option with a value starts a line ...
        if fold and length + 1 + len(item) >= _FOLD_LIMIT:
            lines.append(line)
            line, length = _FOLD_INDENT + item, len(_FOLD_INDENT) + len(item)
        else:
            line, length = f"{line} {item}", length + 1 + len(item)
        if value is not None:
            length = _FOLD_LIMIT  # ... and ends it
    lines.append(line)
    return "\n".join(lines)


def inet_port(name: str) -> tuple[str | None, str]:
    """Split an inet service name into (host or None, port or service name).

    master(5): ``smtp`` and ``2525`` listen on every ``inet_interfaces``
    address; ``127.0.0.1:2525`` and ``[::1]:submission`` on one address.
    """
    host, colon, port = name.rpartition(":")
    if not colon:
        return None, name
    if host.startswith("[") != host.endswith("]") or not port:
        raise ValueError(f'bad inet service name "{name}": expected [host:]port')
    return host.strip("[]") or None, port


def known_port(service: str, known_tcp_ports: tuple[str, ...]) -> str | None:
    """The port ``known_tcp_ports`` gives ``service`` (``smtps=submissions=465``), if any.

    Postfix 3.6+ consults this before /etc/services, so a container without
    /etc/services still knows ``smtp`` and ``submission``.
    """
    for item in known_tcp_ports:
        *names, port = (part.strip() for part in item.split("="))
        if service in names:
            return port
    return None


def _pad_to(line: str, stop: int) -> str:
    if not line:
        return line
    return line.ljust(stop) if len(line) < stop else line + " "


def parse_entry(logical: str, location: Location, last: int | None = None) -> MasterService:
    """Parse one logical master.cf line (also the text given to ``postconf -Me``)."""
    try:
        tokens = tokenize(logical)
    except ValueError as error:
        raise ConfigError(str(error), location) from None
    if len(tokens) < 8:
        raise ConfigError("bad field count", location)
    name, kind, private, unpriv, chroot, wakeup, maxproc, command = tokens[:8]

    def invalid(column: str, value: str) -> ConfigError:
        return ConfigError(f'invalid {column} field "{value}" in "{logical}"', location)

    if kind not in SERVICE_TYPES:
        raise invalid("type", kind)
    for column, value in zip(_FLAG_COLUMNS, (private, unpriv, chroot), strict=True):
        if value not in ("y", "n", "-"):
            raise invalid(column, value)
    if not re.fullmatch(r"-|[0-9]+\??", wakeup):
        raise invalid("wakeup", wakeup)
    if not re.fullmatch(r"-|[0-9]+", maxproc):
        raise invalid("process_limit", maxproc)
    args, overrides = _daemon_arguments(tokens[8:], location)
    return MasterService(
        name,
        kind,
        private,
        unpriv,
        chroot,
        wakeup,
        maxproc,
        command,
        args,
        overrides,
        location,
        location.line - 1 if last is None else last,
    )


def _daemon_arguments(
    tokens: list[str], location: Location
) -> tuple[tuple[str, ...], tuple[Override, ...]]:
    """Normalize the arguments and collect the ``-o`` overrides among the daemon options.

    Options end at the first word that does not start with ``-`` (or at
    ``--``), as getopt(3) in every Postfix daemon ends them; ``-oname=value``
    and ``-o { name = value }`` become ``-o`` plus ``name=value``.
    """
    args: list[str] = []
    overrides: list[Override] = []
    index = 0
    while index < len(tokens):
        word = tokens[index]
        if not word.startswith("-") or word == "--":
            return (*args, *tokens[index:]), tuple(overrides)
        index += 1
        if not word.startswith("-o"):
            args.append(word)
            continue
        if word == "-o":
            if index >= len(tokens):
                raise ConfigError('missing "name=value" after -o', location)
            text, index = tokens[index], index + 1
        else:
            text = word[2:]
        override = _override(text, location)
        overrides.append(override)
        args += ["-o", override.render()]
    return tuple(args), tuple(overrides)


def _override(text: str, location: Location) -> Override:
    if text.startswith("{"):
        text = text[1:-1]
    assignment = parse_assignment(text)
    if assignment is None:
        raise ConfigError(f"missing '=' after attribute name: \"{text.strip()}\"", location)
    return Override(assignment[0], assignment[1], location)


def _closing_brace(text: str, start: int) -> int:
    depth = 0
    for index in range(start, len(text)):
        if text[index] == "{":
            depth += 1
        elif text[index] == "}":
            depth -= 1
            if depth == 0:
                return index
    raise ValueError(f"missing '}}' in \"{text[start:]}\"")
