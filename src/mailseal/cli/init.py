"""``mailseal init DIR``: write a ready configuration directory, and nothing outside it.

The directory gets main.cf and master.cf in Postfix syntax with comments, a
self-signed RSA-2048 certificate and its key (mode 0600), a queue directory, a
data directory, a log directory, a Maildir base for one virtual domain with
a ``postmaster`` mailbox, and an empty users file for the built-in SASL backend
(``smtpd_sasl_passwd_file``'s default ``$config_directory/sasl_passwd``, mode
0600), since the submission services require AUTH. Services listen on
unprivileged loopback ports by default (2525 smtp, 2587 submission, 2465
submissions) so a developer can start it without root. An existing
configuration (main.cf, master.cf or a users file) is never overwritten.
"""

from __future__ import annotations

import argparse
import datetime
import os
from pathlib import Path
from typing import Any

from mailseal.cli import context
from mailseal.cli.report import fatal
from mailseal.config.errors import Setting
from mailseal.config.loader import MAIN_CF, MASTER_CF
from mailseal.config.model import Config
from mailseal.tls.certs import make_self_signed

__all__ = ["register", "run", "write_config_directory"]

PROGRAM = "init"

# The embedded default: loopback only, unprivileged ports (see module docstring).
DEFAULT_LISTEN = "127.0.0.1"
DEFAULT_SMTP_PORT = 2525
DEFAULT_SUBMISSION_PORT = 2587
DEFAULT_SMTPS_PORT = 2465
# smtpd_sasl_passwd_file's default name, inside the configuration directory.
SASL_USERS_FILE = "sasl_passwd"

_MAIN_CF = """\
# main.cf for mailseal, written by "mailseal init" on {date}.
#
# The syntax and the parameter names are Postfix's (see postconf(5)):
# "name = value", a line starting with whitespace continues the one before,
# "$name" refers to another parameter. "mailseal -c {dir} postconf -n"
# shows what is set here; "mailseal -c {dir} check" checks it.

compatibility_level = 3.11

# Who we are and what we accept mail for.
myhostname = {hostname}
inet_interfaces = {listen}
mydestination = $myhostname, localhost
mynetworks = 127.0.0.0/8 [::1]/128

# Where mailseal keeps its state. Everything lives inside this directory.
queue_directory = {dir}/queue
data_directory = {dir}/data
maillog_file = {dir}/log/maillog

# One virtual domain, delivered to Maildirs that Dovecot can read:
# {dir}/mail/<domain>/<user>/{{cur,new,tmp}}.
virtual_mailbox_domains = {domain}
virtual_mailbox_base = {dir}/mail
virtual_mailbox_maps = texthash:{dir}/vmailbox

# No local aliases file: mail for the virtual domain goes to the Maildirs above.
alias_maps =
alias_database =

# TLS for mail from other servers to us: offered, not required (port 25 style).
# The certificate is self-signed for {hostname}; replace both files with a
# real certificate (e.g. from Let's Encrypt) for a public server.
smtpd_tls_cert_file = {dir}/tls/server.crt
smtpd_tls_key_file = {dir}/tls/server.key
smtpd_tls_security_level = may
smtpd_tls_auth_only = yes
smtpd_tls_loglevel = 1
smtpd_tls_session_cache_database =
smtpd_tls_protocols = >=TLSv1.2
smtpd_tls_mandatory_protocols = >=TLSv1.2

# TLS for mail from us to other servers: used when offered.
smtp_tls_security_level = may
smtp_tls_note_starttls_offer = yes
smtp_tls_loglevel = 1
smtp_tls_session_cache_database =
smtp_tls_mandatory_protocols = >=TLSv1.2
"""

_MASTER_CF = """\
# master.cf for mailseal, written by "mailseal init" on {date}.
# Postfix syntax (see master(5)); "-o name=value" overrides main.cf for one service.
#
# service type  private unpriv  chroot  wakeup  maxproc command + args
#               (yes)   (yes)   (no)    (never) (100)
# ==========================================================================
# Mail from other servers: STARTTLS offered (smtpd_tls_security_level = may).
{smtp_port:<9} inet  n       -       n       -       -       smtpd
# Your users, port 587 style: STARTTLS and AUTH required. The users are in
# {dir}/sasl_passwd: add one with "mailseal -c {dir} passwd USER".
{submission_port:<9} inet  n       -       n       -       -       smtpd
  -o syslog_name=mailseal/submission
  -o smtpd_tls_security_level=encrypt
  -o smtpd_sasl_auth_enable=yes
  -o smtpd_tls_auth_only=yes
  -o smtpd_client_restrictions=permit_sasl_authenticated,reject
  -o smtpd_recipient_restrictions=permit_sasl_authenticated,reject
# Your users, port 465 style: TLS from the first byte, AUTH required.
{smtps_port:<9} inet  n       -       n       -       -       smtpd
  -o syslog_name=mailseal/submissions
  -o smtpd_tls_wrappermode=yes
  -o smtpd_sasl_auth_enable=yes
  -o smtpd_client_restrictions=permit_sasl_authenticated,reject
  -o smtpd_recipient_restrictions=permit_sasl_authenticated,reject
"""


def register(commands: Any) -> None:
    parser = commands.add_parser(
        "init",
        help="write a ready configuration directory (self-signed certificate, loopback ports)",
        description="Write main.cf, master.cf, a self-signed certificate, a queue and a "
        "Maildir base into DIR. Refuses to overwrite an existing configuration.",
    )
    parser.add_argument("directory", nargs="?", metavar="DIR", help="default: the -c directory")
    parser.add_argument("--hostname", help="host name (default: this host's, as myhostname)")
    parser.add_argument("--listen", default=DEFAULT_LISTEN, help="address to listen on")
    parser.add_argument("--smtp-port", type=_port, default=DEFAULT_SMTP_PORT)
    parser.add_argument("--submission-port", type=_port, default=DEFAULT_SUBMISSION_PORT)
    parser.add_argument("--smtps-port", type=_port, default=DEFAULT_SMTPS_PORT)
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    directory = Path(args.directory or args.config_dir).absolute()
    for name in (MAIN_CF, MASTER_CF, SASL_USERS_FILE):
        if (directory / name).exists():
            fatal(PROGRAM, f"{directory / name} exists; not overwriting an existing configuration")
    ports = {args.smtp_port, args.submission_port, args.smtps_port}
    if len(ports) != 3:
        fatal(PROGRAM, "the smtp, submission and smtps ports must differ")
    facts = context.system_facts(str(directory))
    hostname = args.hostname or Config({}, facts).myhostname
    write_config_directory(
        directory,
        hostname=hostname,
        listen=args.listen,
        ports=(args.smtp_port, args.submission_port, args.smtps_port),
    )
    print(f"{PROGRAM}: wrote a configuration for {hostname} in {directory}")
    return 0


def write_config_directory(
    directory: Path, *, hostname: str, listen: str, ports: tuple[int, int, int]
) -> None:
    """Create every file and directory of a fresh configuration under ``directory``."""
    facts = context.system_facts(str(directory))
    domain = Config({"myhostname": Setting(hostname)}, facts).mydomain
    values = {
        "date": datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d"),
        "dir": str(directory),
        "hostname": hostname,
        "listen": listen,
        "domain": domain,
        "smtp_port": ports[0],
        "submission_port": ports[1],
        "smtps_port": ports[2],
    }
    directory.mkdir(parents=True, exist_ok=True)
    # queue/ is searchable (0711) so local users can reach maildrop/ (mailseal sendmail).
    for sub, mode in (("queue", 0o711), ("data", 0o700), ("log", 0o755), ("tls", 0o755)):
        (directory / sub).mkdir(mode=mode, exist_ok=True)
    (directory / "mail" / domain).mkdir(parents=True, exist_ok=True)
    make_self_signed(hostname, directory / "tls" / "server.crt", directory / "tls" / "server.key")
    (directory / "vmailbox").write_text(
        "# virtual_mailbox_maps: address, then the Maildir under virtual_mailbox_base\n"
        "# (a trailing / means Maildir format).\n"
        f"postmaster@{domain}  {domain}/postmaster/\n",
        encoding="utf-8",
    )
    _write_users_file(directory / SASL_USERS_FILE, directory)
    (directory / MAIN_CF).write_text(_MAIN_CF.format(**values), encoding="utf-8")
    (directory / MASTER_CF).write_text(_MASTER_CF.format(**values), encoding="utf-8")


def _write_users_file(path: Path, directory: Path) -> None:
    """An empty users file, 0600 from the moment it exists: it will hold password hashes.

    O_EXCL: a users file that is already there belongs to someone; it is never replaced.
    """
    text = (
        "# SASL users, user:{SCHEME}hash (Dovecot's passwd-file format); "
        f"add one with: mailseal -c {directory} passwd USER\n"
    )
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as out:
        os.fchmod(out.fileno(), 0o600)  # whatever the umask
        out.write(text)


def _port(text: str) -> int:
    port = int(text)
    if not 1 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"{text} is not a TCP port")
    return port
