"""The options of ``mailseal tls-finger`` (posttls-finger's letters), without the probe.

Registering the sub-command must stay cheap: every ``mailseal`` command builds all
sub-parsers, and the server runs in that process (``mailseal start``). The probe
itself (:mod:`mailseal.cli.tls_finger`) needs ``cryptography``'s X.509 parser and
dnspython, so it is imported only when ``tls-finger`` runs.
"""

from __future__ import annotations

import argparse

__all__ = ["LEVELS", "PROGRAM", "register"]

PROGRAM = "tls-finger"
LEVELS = ("none", "may", "encrypt", "fingerprint", "verify", "secure")


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the ``tls-finger`` sub-command."""
    parser = commands.add_parser(
        PROGRAM,
        help="probe the TLS of an SMTP server (like posttls-finger)",
        description=(
            "Connect to an SMTP server, start TLS and report the protocol, cipher and "
            "certificate, and whether the security level is met (exit status 0) or not (1)."
        ),
    )
    _add_tls_options(parser)
    _add_connection_options(parser)
    parser.add_argument(
        "destination", metavar="DESTINATION", help="domain[:port], [host] or [host]:port"
    )
    parser.add_argument("matches", metavar="MATCH", nargs="*", help="names or fingerprints")
    parser.set_defaults(handler=_run)


def _add_tls_options(parser: argparse.ArgumentParser) -> None:
    """posttls-finger's TLS options (``-c`` is mailseal's configuration directory)."""
    add = parser.add_argument
    add("-l", dest="level", default="secure", choices=LEVELS, help="security level (secure)")
    add("-F", "-P", dest="ca", metavar="CAFILE", help="trust anchors: a PEM file or CApath dir")
    add("-p", dest="protocols", metavar="PROTOCOLS", help='TLS protocols, e.g. ">=TLSv1.2"')
    add("-s", dest="servername", metavar="NAME", help="SNI name (none by default)")
    add("-d", dest="digest", metavar="MDALG", help="fingerprint digest (sha256)")
    add(
        "-H",
        "-x",
        "-f",
        dest="extra_matches",
        metavar="MATCH",
        action="append",
        default=[],
        help="a name (verify/secure) or fingerprint (fingerprint level) to match",
    )
    add("-C", dest="pem", action="store_true", help="print the chain in PEM form too")
    add(
        "-o",
        dest="overrides",
        metavar="NAME=VALUE",
        action="append",
        default=[],
        help="override a main.cf parameter",
    )


def _add_connection_options(parser: argparse.ArgumentParser) -> None:
    add = parser.add_argument
    add("-m", dest="count", type=int, default=5, metavar="COUNT", help="addresses to try (5)")
    add(
        "-t",
        dest="connect_timeout",
        type=float,
        default=30.0,
        metavar="SECONDS",
        help="TCP connection timeout (30)",
    )
    add(
        "-T",
        dest="command_timeout",
        type=float,
        default=30.0,
        metavar="SECONDS",
        help="timeout for each reply, the handshake and each DNS query (30)",
    )
    add("-w", "--smtps", dest="wrapper", action="store_true", help="implicit TLS (port 465)")
    add("--no-chat", dest="chat", action="store_false", help="show only TLS information")
    add(
        "--dns-server",
        dest="dns_servers",
        metavar="ADDR[:PORT]",
        action="append",
        default=[],
        help="DNS server to ask (default: dns_servers, else /etc/resolv.conf)",
    )


def _run(args: argparse.Namespace) -> int:
    from mailseal.cli.tls_finger import run  # heavy: see the module docstring

    return run(args)
