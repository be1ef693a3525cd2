"""``mailseal check``: validate the configuration and every file it refers to.

Like ``postfix check``, but about what mailseal needs: main.cf and master.cf
parse and every value has its type; certificate and key files are readable,
PEM, matching, not expired, and the key is not readable by others; CA files
load; every lookup table explicitly configured opens (index present, regexps
compile); queue and data directories exist; every inet service name resolves
to a port. For every smtpd service with ``smtpd_sasl_auth_enable = yes``: the
``smtpd_sasl_passwd_file`` of ``smtpd_sasl_type = mailseal`` parses, has users,
is not readable by others and holds only password schemes we can check; the
socket of ``smtpd_sasl_type = dovecot`` exists; AUTH without TLS is pointed out.
Problems print as ``check: error: FILE, line N: ...`` (or
``warning``); the exit status is 1 when there is an error.
"""

from __future__ import annotations

import argparse
import datetime
import socket
import stat
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mailseal.cli import context
from mailseal.config.errors import ConfigError, Location
from mailseal.config.kinds import ListKind, TableListKind, TableRef
from mailseal.config.loader import LoadedConfig, load_config
from mailseal.config.mastercf import MasterService, inet_port, known_port
from mailseal.config.model import PARAMS, Config
from mailseal.config.tables import TABLE_TYPES, TableError, open_table
from mailseal.daemons.smtpd import build_service
from mailseal.services.sasl.hashes import SCHEMES
from mailseal.services.sasl.passwd_file import PasswdEntry, PasswdFile, PasswdFileError
from mailseal.tls.certs import inspect_pair, name_matches
from mailseal.tls.levels import TlsLevel, server_level

__all__ = ["Finding", "check_directory", "register", "run"]

PROGRAM = "check"

# (certificate parameter, key parameter) pairs, server and client side.
_PAIRS = (
    ("smtpd_tls_cert_file", "smtpd_tls_key_file"),
    ("smtpd_tls_eccert_file", "smtpd_tls_eckey_file"),
    ("smtp_tls_cert_file", "smtp_tls_key_file"),
    ("smtp_tls_eccert_file", "smtp_tls_eckey_file"),
)
_CA_FILES = ("smtpd_tls_CAfile", "smtp_tls_CAfile")
_CA_PATHS = ("smtpd_tls_CApath", "smtp_tls_CApath")


@dataclass(frozen=True)
class Finding:
    """One problem: ``error`` stops the server from running as configured."""

    severity: str
    message: str
    location: Location | None = None

    def __str__(self) -> str:
        where = f"{self.location}: " if self.location else ""
        return f"{PROGRAM}: {self.severity}: {where}{self.message}"


def register(commands: Any) -> None:
    parser = commands.add_parser(
        "check",
        help="validate main.cf, master.cf and every file they refer to",
        description="Validate the configuration and the files it refers to; exit 1 on errors.",
    )
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    now = datetime.datetime.now(datetime.UTC)
    findings = check_directory(args.config_dir, context.system_hostname(), now)
    for finding in findings:
        print(finding)
    errors = sum(f.severity == "error" for f in findings)
    if errors:
        return 1
    print(f"{PROGRAM}: {args.config_dir}: configuration is usable")
    return 0


def check_directory(directory: str, hostname: str, now: datetime.datetime) -> list[Finding]:
    """Every finding about the configuration in ``directory``."""
    try:
        loaded = load_config(directory, hostname)
    except ConfigError as error:
        return [Finding("error", error.message, error.location)]
    findings = [Finding("warning", w.message, w.location) for w in loaded.warnings]
    seen: set[tuple[str, str]] = set()
    for config in _all_configs(loaded):
        for finding in _check_config(config, now):
            key = (finding.severity, finding.message)
            if key not in seen:
                seen.add(key)
                findings.append(finding)
    findings += _check_services(loaded)
    return findings


def _all_configs(loaded: LoadedConfig) -> Iterator[Config]:
    yield loaded.base
    for service in loaded.master.services:
        if service.overrides:
            yield loaded.service_config(service)


def _check_config(config: Config, now: datetime.datetime) -> Iterator[Finding]:
    yield from _check_certificates(config, now)
    yield from _check_server_tls(config)
    yield from _check_tables(config)
    yield from _check_directories(config)


def _where(config: Config, name: str) -> Location | None:
    setting = config.setting(name)
    return setting.location if setting else None


def _check_certificates(config: Config, now: datetime.datetime) -> Iterator[Finding]:
    pairs = [(c, k, config.expanded(c), config.expanded(k)) for c, k in _PAIRS]
    chains = (
        ("smtpd_tls_chain_files", config.smtpd_tls_chain_files),
        ("smtp_tls_chain_files", config.smtp_tls_chain_files),
    )
    pairs += [(name, name, f, f) for name, files in chains for f in files]
    for cert_name, _key_name, cert_file, key_file in pairs:
        if not cert_file:
            continue
        report = inspect_pair(cert_file, key_file or cert_file, now=now)
        where = _where(config, cert_name)
        yield from (Finding("error", f"{cert_name}: {e}", where) for e in report.errors)
        yield from (Finding("warning", f"{cert_name}: {w}", where) for w in report.warnings)
        if cert_name.startswith("smtpd_") and report.names:
            yield from _check_server_name(cert_name, report.names, config.myhostname, where)
    for name in _CA_FILES:
        path = config.expanded(name)
        if path:
            yield from _check_ca_file(name, path, _where(config, name))
    for name in _CA_PATHS:
        path = config.expanded(name)
        if path and not Path(path).is_dir():
            yield Finding("error", f"{name}: {path} is not a directory", _where(config, name))


def _check_server_name(
    name: str, names: tuple[str, ...], hostname: str, where: Location | None
) -> Iterator[Finding]:
    """Senders that verify (DANE-EE aside, MTA-STS, "secure") need myhostname in the cert."""
    if any(name_matches(pattern, hostname) for pattern in names):
        return
    yield Finding(
        "warning",
        f"{name}: the certificate is for {', '.join(names)}, not myhostname {hostname}; "
        "senders that verify names (MTA-STS, secure) will refuse it",
        where,
    )


def _check_ca_file(name: str, path: str, where: Location | None) -> Iterator[Finding]:
    # Imported here: cli.main imports this module in every process, the server's too,
    # and cryptography's X.509 parser costs about 10 MB there.
    from cryptography import x509

    try:
        x509.load_pem_x509_certificates(Path(path).read_bytes())
    except OSError as error:
        yield Finding("error", f"{name}: cannot read {path}: {error.strerror}", where)
    except ValueError:
        yield Finding("error", f"{name}: no PEM certificate found in {path}", where)


def _check_server_tls(config: Config) -> Iterator[Finding]:
    has_certificate = bool(
        config.smtpd_tls_cert_file or config.smtpd_tls_eccert_file or config.smtpd_tls_chain_files
    )
    if has_certificate:
        return
    level = config.smtpd_tls_security_level
    if level == "encrypt" or config.smtpd_tls_wrappermode:
        why = "smtpd_tls_wrappermode = yes" if config.smtpd_tls_wrappermode else "level encrypt"
        yield Finding(
            "error",
            f"{why} needs a server certificate: set smtpd_tls_cert_file and "
            "smtpd_tls_key_file, or smtpd_tls_chain_files",
            _where(config, "smtpd_tls_security_level") or _where(config, "smtpd_tls_wrappermode"),
        )
    elif level == "may":
        yield Finding(
            "warning",
            "smtpd_tls_security_level = may without a certificate: STARTTLS will not be offered",
            _where(config, "smtpd_tls_security_level"),
        )


def _check_tables(config: Config) -> Iterator[Finding]:
    """Open every table that main.cf or ``-o`` names explicitly (defaults are not ours)."""
    for name, param in PARAMS.items():
        if config.setting(name) is None:
            continue
        if isinstance(param.kind, TableListKind):
            refs: tuple[TableRef, ...] = config.value_of(name)  # type: ignore[assignment]
        elif isinstance(param.kind, ListKind):
            refs = _tables_in_list(config.value_of(name))  # type: ignore[arg-type]
        else:
            continue
        for ref in refs:
            yield from _check_table(name, ref, _where(config, name))


def _tables_in_list(items: tuple[str, ...]) -> tuple[TableRef, ...]:
    """Tables inside a mixed list such as ``check_client_access hash:/etc/x`` or mynetworks.

    Only types mailseal has are taken: ``inet:127.0.0.1:10023`` after
    ``check_policy_service`` is an address, not a table.
    """
    refs = []
    for item in items:
        try:
            ref = TableRef.parse(item)
        except ValueError:
            continue
        if ref.type in TABLE_TYPES:
            refs.append(ref)
    return tuple(refs)


def _check_table(name: str, ref: TableRef, where: Location | None) -> Iterator[Finding]:
    try:
        table = open_table(ref)
    except TableError as error:
        yield Finding("error", f"{name}: {error}", where)
        return
    with table:
        for warning in table.warnings:
            yield Finding("warning", f"{name}: {warning}", where)


def _check_directories(config: Config) -> Iterator[Finding]:
    for name in ("queue_directory", "data_directory"):
        path = config.expanded(name)
        if not Path(path).is_dir():
            yield Finding("warning", f"{name}: {path} does not exist yet", _where(config, name))


def _check_services(loaded: LoadedConfig) -> Iterator[Finding]:
    for service in loaded.master.services:
        if service.type == "inet":
            yield from _check_inet_name(service, loaded.service_config(service))
    passwd_files: set[str] = set()
    for service, config in loaded.smtpd_services():
        yield from _check_smtpd_parts(service, config)
        if config.smtpd_sasl_auth_enable:
            yield from _check_sasl(service, config, loaded.directory, passwd_files)


def _check_sasl(
    service: MasterService, config: Config, directory: str, passwd_files: set[str]
) -> Iterator[Finding]:
    """One AUTH-enabled service; ``passwd_files`` already checked are not checked again.

    ``cyrus`` needs nothing here: building the service (``_check_smtpd_parts``)
    already reports "unsupported SASL server implementation".
    """
    yield from _check_auth_tls(service, config)
    if config.smtpd_sasl_type == "dovecot":
        # As smtpd does: relative to the queue directory (Postfix's "private/auth").
        path = Path(config.queue_directory) / config.smtpd_sasl_path
        if not path.exists():
            yield Finding(
                "warning",
                f"service {service.name}: smtpd_sasl_path: Dovecot auth socket {path} does not "
                "exist (is Dovecot running?): logins fail until it does",
                _where(config, "smtpd_sasl_path") or service.location,
            )
    elif config.smtpd_sasl_type == "mailseal":
        path_text = config.smtpd_sasl_passwd_file
        if not path_text:
            yield Finding(
                "error",
                f"service {service.name}: smtpd_sasl_passwd_file is empty: "
                "smtpd_sasl_type = mailseal has no users to check",
                _where(config, "smtpd_sasl_passwd_file") or service.location,
            )
        elif path_text not in passwd_files:
            passwd_files.add(path_text)
            yield from _check_passwd_file(path_text, directory)


def _check_auth_tls(service: MasterService, config: Config) -> Iterator[Finding]:
    """AUTH offered where the session may stay plaintext (no TLS, or TLS optional)."""
    if config.smtpd_tls_wrappermode or config.smtpd_tls_auth_only:
        return
    level = server_level(config)
    if level in (TlsLevel.NONE, TlsLevel.MAY):
        yield Finding(
            "warning",
            f"service {service.name}: smtpd_sasl_auth_enable = yes at TLS level "
            f"{level.value} without smtpd_tls_auth_only = yes: "
            "passwords may cross the network in plaintext",
            _where(config, "smtpd_sasl_auth_enable") or service.location,
        )


def _check_passwd_file(path: str, directory: str) -> Iterator[Finding]:
    """The built-in backend's users file: parses, has users, private, known schemes."""
    add_one = f"add one with mailseal -c {directory} passwd USER"
    try:
        mode = stat.S_IMODE(Path(path).stat().st_mode)
    except FileNotFoundError:
        yield Finding(
            "warning", f"smtpd_sasl_passwd_file {path} does not exist: no SASL users yet: {add_one}"
        )
        return
    except OSError as error:
        yield Finding("error", f"smtpd_sasl_passwd_file {path}: cannot stat: {error.strerror}")
        return
    try:
        users = PasswdFile.load(path)
    except PasswdFileError as error:
        yield Finding("error", str(error))  # "FILE, line N: what is wrong"
        return
    # Group read is allowed on purpose: a file shared with Dovecot is root:dovecot 0640.
    if mode & 0o004:
        yield Finding(
            "warning",
            f"smtpd_sasl_passwd_file {path} is readable by others (mode {mode:04o}); "
            "use chmod 600 (or 640 for a file shared with Dovecot)",
        )
    if not users.entries():
        yield Finding("warning", f"smtpd_sasl_passwd_file {path} has no SASL users yet: {add_one}")
    yield from _check_schemes(users)


def _check_schemes(users: PasswdFile) -> Iterator[Finding]:
    """A warning for each user whose password no login could ever match."""
    for number, line in enumerate(users.lines, start=1):
        problem = None if line.entry is None else _scheme_problem(line.entry)
        if line.entry is not None and problem is not None:
            yield Finding(
                "warning",
                f"{users.path}, line {number}: user {line.entry.user}: {problem}; "
                "this user cannot log in",
            )


def _scheme_problem(entry: PasswdEntry) -> str | None:
    """Why ``verify_password`` would refuse the stored password, from its prefix alone.

    Only the ``{SCHEME}`` is looked at: checking the hash itself costs a password check.
    """
    stored = entry.password
    scheme, hashed = "CRYPT", stored  # no {SCHEME}: Dovecot's default for passwd-file
    if stored.startswith("{"):
        end = stored.find("}")
        if end < 0:
            return "password scheme has no closing '}'"
        scheme, hashed = stored[1:end].upper(), stored[end + 1 :]
    if scheme not in SCHEMES:
        return f"unsupported password scheme {{{scheme}}}"
    if not hashed:
        return f"empty {{{scheme}}} password"
    return None


def _check_smtpd_parts(service: MasterService, config: Config) -> Iterator[Finding]:
    """Build the service as start would: what refuses to start is an error here too.

    Postfix refuses to start without a relay restriction that can reject, or with
    a restriction class that has no definition; so do we, and say so beforehand.
    """
    try:
        built = build_service(service, config)
    except ConfigError as error:
        yield Finding("error", f"service {service.name}: {error.message}", error.location)
        return
    for text in built.warnings:
        yield Finding("warning", f"service {service.name}: {text}", service.location)


def _check_inet_name(service: MasterService, config: Config) -> Iterator[Finding]:
    try:
        _host, port = inet_port(service.name)
    except ValueError as error:
        yield Finding("error", str(error), service.location)
        return
    if port.isdigit() or known_port(port, config.known_tcp_ports) is not None:
        return
    try:
        socket.getservbyname(port, "tcp")
    except OSError:
        yield Finding("error", f"unknown service: {port}/tcp", service.location)
