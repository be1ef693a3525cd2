"""``mailseal [-c CONFIG_DIR] SUBCOMMAND ...``: the entry point of the command.

``-c`` works like Postfix's: it names the configuration directory, defaulting
to ``$MAILSEAL_CONFIG_DIR`` and then to the ``config_directory`` default of the
parameter table. Each sub-command lives in its own module with a ``register``
function; this module only wires them together and turns errors into
Postfix-style messages and exit statuses.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence

from mailseal import __version__
from mailseal.cli import (
    check,
    init,
    passwd,
    postalias,
    postcat,
    postconf,
    postmap,
    postqueue,
    postsuper,
    sendmail,
    server,
    tls_finger_options,
)
from mailseal.cli.report import CommandError
from mailseal.config.errors import ConfigError
from mailseal.config.params.system import DEFAULT_CONFIG_DIRECTORY

__all__ = ["build_parser", "config_directory", "main"]

_SUBCOMMANDS = (
    init,
    check,
    postconf,
    postmap,
    postalias,
    server,
    passwd,
    tls_finger_options,
    postqueue,
    postsuper,
    postcat,
    sendmail,
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="mailseal",
        description="A mail server configured with Postfix's main.cf and master.cf.",
    )
    parser.add_argument(
        "-c",
        dest="config_dir",
        metavar="CONFIG_DIR",
        help=(
            "configuration directory (default: $MAILSEAL_CONFIG_DIR, "
            f"else {DEFAULT_CONFIG_DIRECTORY})"
        ),
    )
    parser.add_argument("--version", action="version", version=f"mailseal {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="SUBCOMMAND", required=True)
    for module in _SUBCOMMANDS:
        module.register(commands)
    for subparser in commands.choices.values():
        # Postfix's tools take -c after their own name (postconf -c DIR -n); so do ours.
        subparser.add_argument(
            "-c", dest="sub_config_dir", metavar="CONFIG_DIR", help="configuration directory"
        )
    return parser


def config_directory(args: argparse.Namespace) -> str:
    """The configuration directory chosen by ``-c``, the environment, or the default."""
    chosen: str | None = (
        getattr(args, "sub_config_dir", None)
        or args.config_dir
        or os.environ.get("MAILSEAL_CONFIG_DIR")
    )
    return chosen or DEFAULT_CONFIG_DIRECTORY


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    args.config_dir = config_directory(args)
    try:
        status: int = args.handler(args)
    except CommandError as error:
        print(error, file=sys.stderr)
        return 1
    except ConfigError as error:
        print(f"mailseal: fatal: {error}", file=sys.stderr)
        return 1
    except OSError as error:  # a file or socket the command needed: say which, no trace
        print(f"mailseal: fatal: {error}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    return status
