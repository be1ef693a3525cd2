"""Parameters of the installation itself: directories, accounts, logging, processes.

Defaults are Postfix 3.7's except the places that name mailseal: the
directories are mailseal's own (``/etc/mailseal``, ``/var/spool/mailseal``,
``/var/lib/mailseal``), ``mail_name`` and ``syslog_name`` say "mailseal", and
``compatibility_level`` is 3.11, the Postfix release mailseal tracks. Directories
mailseal does not install (README and HTML documents) default to ``no``.
"""

from __future__ import annotations

from collections.abc import Callable

from mailseal.config.facts import SystemFacts
from mailseal.config.kinds import BoolKind, EnumKind, IntKind, ListKind, SizeKind, StrKind, TimeKind
from mailseal.config.param import Computed, Param

__all__ = ["DEFAULT_CONFIG_DIRECTORY", "SYSLOG_FACILITIES", "SystemParams"]

# Where mailseal looks for main.cf and master.cf when no -c option is given.
DEFAULT_CONFIG_DIRECTORY = "/etc/mailseal"

# Facility names of syslog.conf(5) that Postfix's msg_syslog_facility() accepts.
SYSLOG_FACILITIES = (
    "auth",
    "authpriv",
    "cron",
    "daemon",
    "ftp",
    "kern",
    "lpr",
    "mail",
    "news",
    "syslog",
    "user",
    "uucp",
    "local0",
    "local1",
    "local2",
    "local3",
    "local4",
    "local5",
    "local6",
    "local7",
)


def _config_directory(facts: SystemFacts, expanded: Callable[[str], str]) -> str:
    return facts.config_directory


class SystemParams:
    """Directories, accounts, compatibility level, logging and process management."""

    __slots__ = ()

    # -- directories ---------------------------------------------------------------

    config_directory: Param[str] = Param(
        StrKind(nonempty=True),
        Computed("the directory given with -c, else the built-in one", _config_directory),
        "Directory holding main.cf and master.cf (set with -c, not in main.cf).",
    )
    alternate_config_directories: Param[tuple[str, ...]] = Param(
        ListKind(),
        "",
        "Other configuration directories that unprivileged commands may be pointed at.",
        raw=True,
    )
    queue_directory: Param[str] = Param(
        StrKind(nonempty=True), "/var/spool/mailseal", "Root of the mail queue directories."
    )
    data_directory: Param[str] = Param(
        StrKind(nonempty=True),
        "/var/lib/mailseal",
        "Directory for mailseal's own caches and state (TLS caches, verify cache).",
    )
    command_directory: Param[str] = Param(
        StrKind(nonempty=True), "/usr/sbin", "Directory holding the administrative commands."
    )
    daemon_directory: Param[str] = Param(
        StrKind(nonempty=True),
        "/usr/lib/mailseal",
        "Directory of the programs that master.cf services may run.",
    )
    meta_directory: Param[str] = Param(
        StrKind(nonempty=True),
        "$config_directory",
        "Directory of installation metadata shared by all instances.",
    )
    sample_directory: Param[str] = Param(
        StrKind(), "$config_directory", "Directory of sample configuration files (obsolete)."
    )
    readme_directory: Param[str] = Param(
        StrKind(), "no", "Directory of README documents; no when they are not installed."
    )
    html_directory: Param[str] = Param(
        StrKind(), "no", "Directory of HTML documents; no when they are not installed."
    )
    manpage_directory: Param[str] = Param(
        StrKind(), "/usr/share/man", "Root of the installed manual pages."
    )
    process_id_directory: Param[str] = Param(
        StrKind(nonempty=True), "pid", "Directory of PID files, relative to queue_directory."
    )

    # -- accounts and identity of the software ----------------------------------------

    mail_owner: Param[str] = Param(
        StrKind(nonempty=True),
        "mailseal",
        "Unprivileged account that owns the queue and runs most services.",
    )
    setgid_group: Param[str] = Param(
        StrKind(),
        "mailseal",
        "Group that local submission and queue inspection commands run as.",
    )
    default_privs: Param[str] = Param(
        StrKind(nonempty=True),
        "nobody",
        "Account used for deliveries to files and commands when no owner applies.",
    )
    compatibility_level: Param[str] = Param(
        StrKind(nonempty=True),
        "3.11",
        "Postfix release whose defaults apply; lower it to keep older default behaviour.",
    )
    mail_name: Param[str] = Param(
        StrKind(nonempty=True), "mailseal", "Name of the mail system, shown in the SMTP banner."
    )

    # -- logging -------------------------------------------------------------------

    syslog_name: Param[str] = Param(
        StrKind(nonempty=True), "mailseal", "Tag in front of every log line (e.g. mailseal/smtpd)."
    )
    syslog_facility: Param[str] = Param(
        EnumKind(SYSLOG_FACILITIES), "mail", "Syslog facility used for logging."
    )
    maillog_file: Param[str] = Param(
        StrKind(), "", "Log to this file (or /dev/stdout) instead of syslog; empty uses syslog."
    )
    maillog_file_prefixes: Param[tuple[str, ...]] = Param(
        ListKind(),
        "/var, /dev/stdout",
        "Prefixes that maillog_file must start with, to contain a mistyped path.",
    )
    maillog_file_compressor: Param[str] = Param(
        StrKind(), "gzip", "Command that compresses a rotated maillog_file."
    )
    maillog_file_rotate_suffix: Param[str] = Param(
        StrKind(nonempty=True),
        "%Y%m%d-%H%M%S",
        "strftime(3) suffix added to maillog_file when it is rotated.",
    )
    maillog_json_file: Param[str] = Param(
        StrKind(),
        "",
        "mailseal: also write every log line as one JSON object to this file; empty: off.",
    )
    metrics_listen_address: Param[str] = Param(
        StrKind(),
        "",
        "mailseal: host:port of the Prometheus /metrics listener (loopback); empty: off.",
    )
    respectful_logging: Param[bool] = Param(
        BoolKind(),
        "${{$compatibility_level} <level {3.6} ? {no} : {yes}}",
        "Log allowlist/denylist wording instead of the older whitelist/blacklist.",
    )
    helpful_warnings: Param[bool] = Param(
        BoolKind(), "yes", "Log warnings about likely configuration mistakes."
    )
    debug_peer_list: Param[tuple[str, ...]] = Param(
        ListKind(), "", "Hosts or networks whose sessions are logged verbosely."
    )
    debug_peer_level: Param[int] = Param(
        IntKind(1), "2", "Extra verbosity for sessions with hosts in debug_peer_list."
    )

    # -- environment -------------------------------------------------------------------

    import_environment: Param[tuple[str, ...]] = Param(
        ListKind(),
        "MAIL_CONFIG MAIL_DEBUG MAIL_LOGTAG TZ XAUTHORITY DISPLAY LANG=C"
        " POSTLOG_SERVICE POSTLOG_HOSTNAME",
        "Environment variables (NAME or NAME=value) passed to mailseal's own processes.",
    )
    export_environment: Param[tuple[str, ...]] = Param(
        ListKind(),
        "TZ MAIL_CONFIG LANG",
        "Environment variables (NAME or NAME=value) passed to external commands.",
    )

    # -- processes -------------------------------------------------------------------

    default_process_limit: Param[int] = Param(
        IntKind(1), "100", "Most processes per master.cf service whose maxproc is '-'."
    )
    service_throttle_time: Param[int] = Param(
        TimeKind("s", 1), "60s", "Pause before restarting a service that failed to start."
    )
    max_idle: Param[int] = Param(
        TimeKind("s", 1), "100s", "How long an idle service process waits for work before exiting."
    )
    max_use: Param[int] = Param(
        IntKind(1), "100", "Clients or requests a service process handles before it exits."
    )
    daemon_timeout: Param[int] = Param(
        TimeKind("s", 1), "18000s", "Longest time a service process may spend on one request."
    )
    ipc_timeout: Param[int] = Param(
        TimeKind("s", 1), "3600s", "Time limit for one exchange with an internal service."
    )
    ipc_idle: Param[int] = Param(
        TimeKind("s", 1), "5s", "Close an idle connection to an internal service after this."
    )
    ipc_ttl: Param[int] = Param(
        TimeKind("s", 1), "1000s", "Close a connection to an internal service after this long."
    )
    in_flow_delay: Param[int] = Param(
        TimeKind("s", 0, 10), "1s", "Slow down message arrival when the queue cannot keep up."
    )
    event_loop: Param[str] = Param(
        EnumKind(("uvloop", "asyncio")),
        "uvloop",
        "mailseal: event loop of the master and smtpd processes; uvloop when installed.",
    )
    master_service_disable: Param[tuple[str, ...]] = Param(
        ListKind(), "", "master.cf services (name/type) to leave switched off."
    )
    stress: Param[str] = Param(
        StrKind(), "", "Set to yes by the master process under overload; never set it by hand."
    )
    service_name: Param[str] = Param(
        StrKind(), "", "Name of the master.cf service being run (set at run time, per service)."
    )
    known_tcp_ports: Param[tuple[str, ...]] = Param(
        ListKind(),
        "lmtp=24, smtp=25, smtps=submissions=465, submission=587",
        "Service names and their TCP ports, used instead of looking in services(5).",
    )

    # -- storage -------------------------------------------------------------------

    default_database_type: Param[str] = Param(
        StrKind(nonempty=True), "hash", "Table type that bare table file names default to."
    )
    queue_minfree: Param[int] = Param(
        SizeKind(), "0", "Free bytes the queue file system needs to accept mail; 0 means no check."
    )
    enable_long_queue_ids: Param[bool] = Param(
        BoolKind(), "no", "Use long, non-repeating queue IDs instead of short inode-based ones."
    )
    biff: Param[bool] = Param(
        BoolKind(), "yes", "Notify logged-in users of new mail through the comsat service."
    )
    sendmail_path: Param[str] = Param(
        StrKind(), "/usr/sbin/sendmail", "Where the sendmail-compatible command is installed."
    )
    newaliases_path: Param[str] = Param(
        StrKind(), "/usr/bin/newaliases", "Where the newaliases command is installed."
    )
    mailq_path: Param[str] = Param(
        StrKind(), "/usr/bin/mailq", "Where the mailq command is installed."
    )
    debugger_command: Param[str] = Param(
        StrKind(),
        "",
        "Command run to attach a debugger to a daemon started with -D (accepted, unused).",
        raw=True,
    )
