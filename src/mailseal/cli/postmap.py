"""``mailseal postmap``: build, query and list lookup tables, as postmap(1) does.

* ``mailseal postmap [TYPE:]FILE ...`` builds the index of each FILE
  (default type ``hash``);
* ``-q KEY [TYPE:]NAME ...`` prints the first value found, searching the
  tables in order; exit status 1, silently, when there is none;
* ``-q - [TYPE:]NAME ...`` reads keys from standard input and prints
  ``key<TAB>value`` for each key found; exit status 0 when any was found;
* ``-s [TYPE:]NAME ...`` prints every ``key<TAB>value`` of each table, where
  the type allows it;
* ``-d KEY [TYPE:]NAME ...`` (or ``-d -``) removes the key from each index.

Like postmap, this command needs no configuration: file names are relative
to the current directory, the key is used as given (only one query per key,
no partial-address searches), and diagnostics read
``postmap: warning: ...`` / ``postmap: fatal: ...``. All the table logic
lives in ``mailseal.config.tables``; this module only does the I/O.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Iterator

from mailseal.cli import context, report
from mailseal.config.errors import ConfigError, ConfigWarning
from mailseal.config.kinds import TableRef
from mailseal.config.tables import Table, TableError, build_index, delete_key, open_table

__all__ = ["PROGRAM", "default_type", "register", "run", "table_argument"]

PROGRAM = "postmap"


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the ``postmap`` sub-command."""
    parser = commands.add_parser(
        "postmap",
        help="build, query or list lookup tables (like postmap(1))",
        description="Build, query or list Postfix-style lookup tables.",
    )
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument(
        "-q", dest="query", metavar="KEY", help="print the value of KEY ('-': keys from stdin)"
    )
    mode.add_argument("-s", dest="dump", action="store_true", help="print every key and value")
    mode.add_argument(
        "-d", dest="delete", metavar="KEY", help="remove KEY from the index ('-': keys from stdin)"
    )
    parser.add_argument(
        "tables",
        nargs="+",
        metavar="[TYPE:]FILE",
        help="lookup table (default type: $default_database_type)",
    )
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    """Carry out one ``postmap`` invocation; return the exit status."""
    fallback = default_type(args.config_dir)
    names = [str(table_argument(name, fallback)) for name in args.tables]
    try:
        if args.query is not None:
            return _query(args.query, names)
        if args.dump:
            return _dump(names)
        if args.delete is not None:
            return _delete(args.delete, names)
        return _build(names)
    except TableError as error:
        report.fatal(PROGRAM, str(error))


def table_argument(text: str, fallback: str) -> TableRef:
    """``TYPE:NAME``, or a bare file name meaning ``FALLBACK:NAME``, as postmap reads it."""
    try:
        return TableRef.parse(text)
    except ValueError:
        return TableRef(fallback, text)


def default_type(config_dir: str) -> str:
    """``default_database_type`` of main.cf, as postmap(1) uses it.

    The table's default when main.cf is missing or unusable: a table should
    still build then.
    """
    try:
        return context.main_config(config_dir).default_database_type
    except ConfigError as error:
        report.warn(PROGRAM, f"{error}; using the default database type")
        return context.main_config(None).default_database_type


def _warn(warning: ConfigWarning) -> None:
    report.warn(PROGRAM, str(warning))


def _open(text: str) -> Table:
    table = open_table(text)
    for warning in table.warnings:
        _warn(warning)
    return table


def _build(names: list[str]) -> int:
    for name in names:
        build_index(name, _warn)
    return 0


def _keys(key: str) -> Iterator[str]:
    """The key itself, or with ``-`` each line of standard input."""
    if key != "-":
        yield key
        return
    for line in sys.stdin:
        yield line.rstrip("\n")


def _query(key: str, names: list[str]) -> int:
    # Tables are opened only when a search reaches them, as postmap does: a
    # later table that does not exist is no error when an earlier one answers.
    opened: dict[str, Table] = {}

    def search(one_key: str) -> str | None:
        for name in names:
            if name not in opened:
                opened[name] = _open(name)
            value = opened[name].lookup(one_key)
            if value is not None:
                return value
        return None

    found = _each_key(key, search)
    for table in opened.values():
        table.close()
    return 0 if found else 1


def _each_key(key: str, search: Callable[[str], str | None]) -> bool:
    """Print the answer for each key (``-q``); True when any was found."""
    found = False
    for one_key in _keys(key):
        value = search(one_key)
        if value is None:
            continue
        found = True
        print(value if key != "-" else f"{one_key}\t{value}")
    return found


def _dump(names: list[str]) -> int:
    for name in names:
        with _open(name) as table:
            for key, value in table.items():
                print(f"{key}\t{value}")
    return 0


def _delete(key: str, names: list[str]) -> int:
    found = False
    for one_key in _keys(key):
        for name in names:
            found = delete_key(name, one_key) or found
    return 0 if found else 1
