"""``mailseal postalias`` and ``mailseal newaliases``: alias databases, as postalias(1).

* ``mailseal postalias [TYPE:]FILE ...`` builds the index of each aliases(5)
  file (default type ``$default_database_type``), printing Postfix's warnings
  for bad lines (``postalias: warning: FILE, line N: need name:value pair``);
* ``-q KEY [TYPE:]FILE ...`` prints the value of KEY from the first table that
  has it (exit status 1, silently, when none does); ``-q -`` reads keys from
  standard input and prints ``key:<TAB>value``;
* ``-s [TYPE:]FILE`` prints every ``key:<TAB>value``;
* ``mailseal newaliases`` (also ``sendmail -bi`` / ``-I``) rebuilds every table
  of ``alias_database``; an empty ``alias_database`` is nothing to do.

The format lives in :mod:`mailseal.config.tables.aliases`; this module only
does the I/O. Reads: alias_database, default_database_type.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from mailseal.cli import context, report
from mailseal.cli.postmap import default_type, table_argument
from mailseal.config.errors import ConfigWarning
from mailseal.config.tables import Table, TableError, open_table
from mailseal.config.tables.aliases import build_alias_index

__all__ = ["PROGRAM", "newaliases", "register", "run"]

PROGRAM = "postalias"


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the ``postalias`` and ``newaliases`` sub-commands."""
    parser = commands.add_parser(
        "postalias",
        help="build or query alias databases (like postalias(1))",
        description="Build, query or list aliases(5) databases.",
    )
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument(
        "-q", dest="query", metavar="KEY", help="print the value of KEY ('-': keys from stdin)"
    )
    mode.add_argument("-s", dest="dump", action="store_true", help="print every entry")
    parser.add_argument("tables", nargs="+", metavar="[TYPE:]FILE", help="aliases file")
    parser.set_defaults(handler=run)
    rebuild = commands.add_parser(
        "newaliases",
        help="rebuild the alias databases of alias_database",
        description="Rebuild every alias database named by alias_database.",
    )
    rebuild.set_defaults(handler=lambda args: newaliases(args.config_dir))


def run(args: argparse.Namespace) -> int:
    """Carry out one ``postalias`` invocation; return the exit status."""
    fallback = default_type(args.config_dir)
    names = [str(table_argument(name, fallback)) for name in args.tables]
    try:
        if args.query is not None:
            return _query(args.query, names)
        if args.dump:
            return _dump(names[0])
        return build(names)
    except TableError as error:
        report.fatal(PROGRAM, str(error))


def newaliases(config_dir: str, databases: Sequence[str] | None = None) -> int:
    """Rebuild ``alias_database`` (or ``databases``, sendmail's ``-oA``); exit status."""
    if databases is None:
        config = context.main_config(config_dir)
        databases = [str(ref) for ref in config.alias_database]
    if not databases:
        return 0
    fallback = default_type(config_dir)
    names = [str(table_argument(name, fallback)) for name in databases]
    try:
        return build(names)
    except TableError as error:
        report.fatal(PROGRAM, str(error))


def build(names: Sequence[str]) -> int:
    """Build each index; warnings on standard error."""
    for name in names:
        build_alias_index(name, _warn)
    return 0


def _warn(warning: ConfigWarning) -> None:
    report.warn(PROGRAM, str(warning))


def _open(name: str) -> Table:
    table = open_table(name)
    for warning in table.warnings:
        _warn(warning)
    return table


def _query(key: str, names: list[str]) -> int:
    keys = [line.rstrip("\n") for line in sys.stdin] if key == "-" else [key]
    opened: dict[str, Table] = {}
    found = False
    try:
        for one_key in keys:
            for name in names:
                if name not in opened:  # opened lazily, as postalias does
                    opened[name] = _open(name)
                value = opened[name].lookup(one_key)
                if value is not None:
                    found = True
                    print(value if key != "-" else f"{one_key}:\t{value}")
                    break
    finally:
        for table in opened.values():
            table.close()
    return 0 if found else 1


def _dump(name: str) -> int:
    with _open(name) as table:
        for key, value in table.items():
            print(f"{key}:\t{value}")
    return 0
