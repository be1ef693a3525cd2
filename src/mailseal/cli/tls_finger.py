"""``mailseal tls-finger``: probe the TLS of an SMTP server, as Postfix's posttls-finger(1).

``mailseal [-c DIR] tls-finger [options] destination[:port] [match ...]`` connects
to the destination (MX lookup unless ``[host]``), shows the SMTP dialogue,
upgrades with STARTTLS (or implicit TLS with ``--smtps``/``-w``), judges the
server's certificate exactly as mailseal's smtp client would at the chosen
level, and prints posttls-finger's lines with the prefix ``tls-finger:``, then the
certificate chain and ``tls-finger: level LEVEL: met`` or ``... not met (reason)``.

Exit status: 0 when the level was met, 1 when it was not (or the connection or
the protocol failed), 2 for a usage error.

The TLS settings are the smtp client's (``smtp_tls_*`` from ``-c DIR``'s main.cf,
or the defaults), with the options below layered on top, as posttls-finger's
``-o name=value``; no policy table is consulted (posttls-finger does not either).
Options: ``-l level`` (default secure), ``-F``/``-P`` CAfile (``-P`` may also name
a CApath directory), ``-p protocols``, ``-s servername`` (SNI), ``-d mdalg``,
match names or fingerprints as trailing arguments or with ``-H``, ``-x``, ``-f``,
``-m count`` (addresses to try), ``-t``/``-T`` timeouts, ``--no-chat``
(posttls-finger's ``-c``: that letter is mailseal's configuration directory),
``-C`` (PEM too), ``--dns-server addr[:port]`` (else ``dns_servers``, else
/etc/resolv.conf).
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import warnings
from pathlib import Path

from cryptography.utils import CryptographyDeprecationWarning

from mailseal.cli import context
from mailseal.cli.report import CommandError
from mailseal.cli.tls_finger_dest import (
    Destination,
    parse_destination,
    parse_nameserver,
    resolve_targets,
)
from mailseal.cli.tls_finger_options import LEVELS, PROGRAM, register
from mailseal.cli.tls_finger_report import chain_lines
from mailseal.cli.tls_finger_session import SessionPlan, Verdict, finger
from mailseal.config.errors import ConfigError, Setting
from mailseal.config.model import PARAMS, Config
from mailseal.net.dns import DnsError, Resolver
from mailseal.tls.client import ClientTls, ClientTlsError, client_tls
from mailseal.tls.levels import TlsLevel
from mailseal.tls.policy import PolicyError, resolve_policy

__all__ = ["LEVELS", "PROGRAM", "register", "run"]
_SMTP_PORT = 25
_SMTPS_PORT = 465  # RFC 8314 submissions; posttls-finger would still default to 25


class _UsageError(Exception):
    """Options that cannot work together: exit status 2."""


def run(args: argparse.Namespace) -> int:
    """Carry out one probe; print the report; return the exit status."""
    with warnings.catch_warnings():
        # Some system CA bundles hold a certificate with a negative serial number;
        # cryptography warns about it on every load, which is noise in a report.
        warnings.simplefilter("ignore", CryptographyDeprecationWarning)
        return _run(args)


def _run(args: argparse.Namespace) -> int:
    try:
        plan, resolver, count = _prepare(args)
    except _UsageError as error:
        print(f"{PROGRAM}: fatal: {error}", file=sys.stderr)
        return 2
    verdict = asyncio.run(_probe(plan, resolver, count))
    if verdict.chain:
        for line in chain_lines(verdict.chain, _digest(plan), pem=args.pem):
            print(line)
    ending = "met" if verdict.met else f"not met ({verdict.reason})"
    _say(f"level {plan.level.value}: {ending}")
    return 0 if verdict.met else 1


def _say(line: str) -> None:
    print(f"{PROGRAM}: {line}", flush=True)


def _digest(plan: SessionPlan) -> str:
    return plan.tls.policy.fingerprint_digest if plan.tls is not None else "sha256"


async def _probe(plan: SessionPlan, resolver: Resolver, count: int) -> Verdict:
    try:
        targets = await resolve_targets(plan.destination, resolver, count)
    except DnsError as error:
        _say(f"Destination address lookup failed: {error.text}")
        return Verdict(False, f"Destination address lookup failed: {error.text}")
    return await finger(plan, targets, _say)


def _prepare(args: argparse.Namespace) -> tuple[SessionPlan, Resolver, int]:
    """Check the options and build everything the probe needs before connecting."""
    level = TlsLevel.parse(args.level)
    if args.count < 1 or args.connect_timeout <= 0 or args.command_timeout <= 0:
        raise _UsageError("-m, -t and -T need positive values")
    if args.wrapper and level is TlsLevel.NONE:
        raise _UsageError("wrapper mode (-w, --smtps) needs a security level above none")
    try:
        destination = parse_destination(
            args.destination, _SMTPS_PORT if args.wrapper else _SMTP_PORT
        )
        nameservers = [parse_nameserver(text) for text in args.dns_servers]
    except ValueError as error:
        raise _UsageError(str(error)) from None
    config = _config(args, level)
    if not nameservers and config.dns_servers:
        try:
            nameservers = [parse_nameserver(text) for text in config.dns_servers]
        except ValueError as error:
            raise CommandError(PROGRAM, f"dns_servers: {error}") from None
    plan = SessionPlan(
        destination=destination,
        level=level,
        tls=_client_tls(config, level, destination),
        helo_name=config.smtp_helo_name,
        connect_timeout=args.connect_timeout,
        command_timeout=args.command_timeout,
        wrapper=args.wrapper,
        chat=args.chat,
    )
    resolver = Resolver(
        nameservers or None,
        timeout=args.command_timeout,
        inet_protocols=config.inet_protocols,
        address_preference=config.smtp_address_preference,
        randomize=config.smtp_randomize_addresses,
    )
    return plan, resolver, args.count


def _config(args: argparse.Namespace, level: TlsLevel) -> Config:
    """main.cf (or the defaults) with the command line's settings on top."""
    overrides: dict[str, str] = {}
    for item in args.overrides:
        name, equals, value = item.partition("=")
        if not equals or not name.strip():
            raise _UsageError(f'-o wants name=value, not "{item}"')
        if name.strip() not in PARAMS:
            raise _UsageError(f"-o {name.strip()}: unknown parameter")
        overrides[name.strip()] = value.strip()
    overrides["smtp_tls_security_level"] = level.value
    if args.ca:
        kind = "smtp_tls_CApath" if Path(args.ca).is_dir() else "smtp_tls_CAfile"
        overrides[kind] = args.ca
    if args.protocols is not None:
        overrides["smtp_tls_protocols"] = overrides["smtp_tls_mandatory_protocols"] = args.protocols
    if args.servername is not None:
        overrides["smtp_tls_servername"] = args.servername
    if args.digest is not None:
        overrides["smtp_tls_fingerprint_digest"] = args.digest
    matches = [*args.extra_matches, *args.matches]
    if matches:
        name = {TlsLevel.FINGERPRINT: "fingerprint", TlsLevel.VERIFY: "verify"}.get(level, "secure")
        overrides[f"smtp_tls_{name}_cert_match"] = ", ".join(matches)
    try:
        return context.main_config(args.config_dir).derive(
            {name: Setting(value) for name, value in overrides.items()}
        )
    except ConfigError as error:
        raise _UsageError(str(error)) from None


def _client_tls(config: Config, level: TlsLevel, destination: Destination) -> ClientTls | None:
    if level is TlsLevel.NONE:
        return None
    try:
        # No table lookups: the command line is the whole policy (as posttls-finger).
        policy = resolve_policy(
            config, destination.host, port=destination.port, lookup=lambda _key: None
        )
    except PolicyError as error:
        raise _UsageError(str(error)) from None
    try:
        return client_tls(policy, config)
    except ClientTlsError as error:
        raise CommandError(PROGRAM, str(error)) from None
