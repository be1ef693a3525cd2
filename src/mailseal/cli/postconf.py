"""``mailseal postconf``: show and edit the configuration with Postfix's postconf(1) output.

``postconf`` prints every parameter in effect as ``name = value``; ``-n``
only those set in main.cf; ``-d`` the defaults; ``-h`` values alone; ``-x``
with ``$name`` expanded; ``NAME ...`` just those. ``-e 'name = value'`` edits
main.cf in place (comments and order kept), ``-X`` removes, ``-#`` comments
out. ``-M`` lists master.cf services (``-f`` folded) and ``-P`` their ``-o``
overrides; ``-Me``/``-MX``/``-M#`` and ``-Pe``/``-PX`` edit them the way
Postfix does, so Ansible or Puppet modules that drive postconf keep working.
Output is sorted by name, as Postfix sorts it, so ``diff`` against a Postfix
host's ``postconf -n`` works.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from mailseal.cli import context
from mailseal.cli.report import fatal, warn
from mailseal.config.errors import ConfigError, ConfigWarning
from mailseal.config.loader import MAIN_CF, MASTER_CF, LoadedConfig
from mailseal.config.maincf import (
    edit_main_cf,
    parse_assignment,
    read_config_text,
    write_atomically,
)
from mailseal.config.mastercf import format_service
from mailseal.config.masteredit import OverrideChange, edit_entries, edit_overrides
from mailseal.config.model import PARAMS, Config, default_text

__all__ = [
    "defaults_listing",
    "override_listing",
    "parameter_listing",
    "register",
    "run",
    "service_listing",
]

PROGRAM = "postconf"


def register(commands: Any) -> None:
    parser = commands.add_parser(
        "postconf",
        help="show or edit main.cf / master.cf (Postfix postconf syntax)",
        description="Show or edit the configuration, with the output of Postfix's postconf.",
        add_help=False,  # -h means "values only", as in Postfix
    )
    parser.add_argument("--help", action="help", help="show this help message and exit")
    show = parser.add_mutually_exclusive_group()
    show.add_argument("-n", action="store_true", help="only parameters set in main.cf")
    show.add_argument("-d", action="store_true", help="default values")
    show.add_argument("-M", action="store_true", help="master.cf services (-Me/-MX/-M# edit)")
    show.add_argument("-P", action="store_true", help="master.cf -o overrides (-Pe/-PX edit)")
    edit = parser.add_mutually_exclusive_group()
    edit.add_argument("-e", action="store_true", help="edit: arguments are name=value")
    edit.add_argument("-X", action="store_true", help="remove the named parameters or services")
    edit.add_argument("-#", dest="comment", action="store_true", help="comment them out")
    parser.add_argument("-h", dest="values_only", action="store_true", help="values only")
    parser.add_argument("-x", dest="expand", action="store_true", help="expand $name in values")
    parser.add_argument("-f", dest="fold", action="store_true", help="fold long master.cf lines")
    parser.add_argument("names", nargs="*", metavar="NAME", help="parameters (or assignments)")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    if args.d:
        facts = context.system_facts(args.config_dir)
        lines = defaults_listing(
            Config({}, facts), args.names, values_only=args.values_only, expanded=args.expand
        )
        _print_lines(lines)
        return 0
    if args.e or args.X or args.comment:
        if (args.n or args.d) or (args.P and args.comment):
            fatal(PROGRAM, "specify -e, -X or -# alone, or with -M (or -e, -X with -P)")
        if args.M:
            _edit_services(args)
        elif args.P:
            _edit_overrides(args)
        else:
            _edit(args)
        _check_after_edit(args.config_dir)
        return 0
    loaded = context.load(args.config_dir)
    for warning in loaded.warnings:
        warn(PROGRAM, str(warning))
    if args.M:
        _print_lines(service_listing(loaded, args.names, fold=args.fold))
    elif args.P:
        _print_lines(
            override_listing(loaded, args.names, expanded=args.expand, values_only=args.values_only)
        )
    else:
        lines = parameter_listing(
            loaded,
            args.names,
            non_default=args.n,
            expanded=args.expand,
            values_only=args.values_only,
        )
        _print_lines(lines)
    return 0


def defaults_listing(
    config: Config, names: Iterable[str], *, values_only: bool = False, expanded: bool = False
) -> list[str]:
    """``postconf -d [-x]`` lines: each parameter's default, as main.cf text or expanded."""
    chosen = list(names) or list(PARAMS)
    lines = []
    for name in chosen:
        param = PARAMS.get(name)
        if param is None:
            warn(PROGRAM, f"{name}: unknown parameter")
            continue
        if expanded:
            value = config.expanded(name)
        else:
            value = default_text(param, config.facts, config.expanded)
        lines.append(_render(name, value, values_only))
    return lines


def parameter_listing(
    loaded: LoadedConfig,
    names: Iterable[str],
    *,
    non_default: bool = False,
    expanded: bool = False,
    values_only: bool = False,
) -> list[str]:
    """``postconf [-n] [-x] [-h] [NAME...]`` lines, sorted by name unless names are given."""
    config = loaded.base
    chosen = list(names)
    if not chosen:
        explicit = set(loaded.main.settings())
        chosen = sorted(explicit if non_default else explicit | set(PARAMS))
    value_of: Callable[[str], str] = config.expanded if expanded else _raw_text(config)
    lines = []
    for name in chosen:
        if name not in PARAMS and config.setting(name) is None:
            warn(PROGRAM, f"{name}: unknown parameter")
            continue
        lines.append(_render(name, value_of(name), values_only))
    return lines


def _raw_text(config: Config) -> Callable[[str], str]:
    return lambda name: config.raw(name) or ""


def service_listing(
    loaded: LoadedConfig, wanted: Iterable[str] = (), *, fold: bool = False
) -> list[str]:
    """``postconf -M[f] [service[/type]...]`` lines."""
    wanted = list(wanted)
    return [
        format_service(s, fold=fold)
        for s in loaded.master.services
        if not wanted or s.name in wanted or s.key in wanted
    ]


def override_listing(
    loaded: LoadedConfig,
    wanted: Iterable[str] = (),
    *,
    expanded: bool = False,
    values_only: bool = False,
) -> list[str]:
    """``postconf -P[x][h] [service/type[/name]...]`` lines: ``service/type/name = value``."""
    wanted = list(wanted)
    lines = []
    for service in loaded.master.services:
        # Postfix prints each service's parameters sorted by name, the last -o winning.
        for name, setting in sorted(service.settings().items()):
            key = f"{service.key}/{name}"
            if wanted and not any(key == w or key.startswith(w + "/") for w in wanted):
                continue
            value = loaded.service_config(service).expanded(name) if expanded else setting.value
            lines.append(_render(key, value, values_only))
    return lines


def _edit(args: argparse.Namespace) -> None:
    """``-e`` / ``-X`` / ``-#`` on main.cf parameters."""
    path = str(Path(args.config_dir) / MAIN_CF)
    changes: dict[str, str | None] = {}
    for text in args.names:
        if args.e:
            assignment = parse_assignment(text)
            if assignment is None:
                fatal(PROGRAM, f"missing '=' after attribute name: \"{text}\"")
            changes[assignment[0]] = assignment[1]
        else:
            changes[text] = None
    original = read_config_text(path)
    edited, warnings = edit_main_cf(original, path, changes, comment_out=args.comment)
    _finish_edit(path, edited, warnings)


def _edit_services(args: argparse.Namespace) -> None:
    """``-Me service/type=entry``, ``-MX service/type``, ``-M# service/type``."""
    path = str(Path(args.config_dir) / MASTER_CF)
    replace: dict[str, str] = {}
    for text in args.names if args.e else ():
        key, equals, entry = text.partition("=")
        if not equals or "/" not in key:
            fatal(PROGRAM, f'-Me requires service_name/type=value, not "{text}"')
        replace[key.strip()] = entry
    remove = () if args.e else args.names
    try:
        edited, warnings = edit_entries(
            read_config_text(path), path, replace=replace, remove=remove, comment_out=args.comment
        )
    except ConfigError as error:
        fatal(PROGRAM, f"invalid master.cf entry: {error.message}")
    _finish_edit(path, edited, warnings)


def _edit_overrides(args: argparse.Namespace) -> None:
    """``-Pe service/type/name=value`` and ``-PX service/type/name``."""
    path = str(Path(args.config_dir) / MASTER_CF)
    changes = []
    for text in args.names:
        target, equals, value = text.partition("=") if args.e else (text, "", "")
        parts = target.strip().split("/")
        if len(parts) != 3 or not all(parts) or (args.e and not equals):
            form = "service_name/type/parameter=value" if args.e else "service/type/parameter"
            fatal(PROGRAM, f'-P{"e" if args.e else "X"} requires {form}, not "{text}"')
        value = value.strip()
        if any(char.isspace() for char in value):
            fatal(PROGRAM, "-Pe does not accept whitespace in parameter value")
        changes.append(
            OverrideChange(f"{parts[0]}/{parts[1]}", parts[2], value if args.e else None)
        )
    edited, warnings = edit_overrides(read_config_text(path), path, changes)
    _finish_edit(path, edited, warnings)


def _finish_edit(path: str, edited: str, warnings: list[ConfigWarning]) -> None:
    for warning in warnings:
        warn(PROGRAM, str(warning))
    write_atomically(path, edited)


def _check_after_edit(config_dir: str) -> None:
    """Tell the admin at once when an edit left a value mailseal cannot use."""
    try:
        loaded = context.load(config_dir)
    except ConfigError as error:
        warn(PROGRAM, str(error))
        return
    for warning in loaded.warnings:
        warn(PROGRAM, str(warning))


def _render(name: str, value: str, values_only: bool) -> str:
    if values_only:
        return value
    return f"{name} = {value}" if value else f"{name} ="


def _print_lines(lines: Iterable[str]) -> None:
    for line in lines:
        sys.stdout.write(line + "\n")
