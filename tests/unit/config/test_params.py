"""The parameter table: names, docs, defaults that parse, computed defaults, references."""

import re

import pytest

from mailseal.config.errors import ConfigError, Location, Setting
from mailseal.config.expand import references
from mailseal.config.facts import SystemFacts
from mailseal.config.kinds import TableRef
from mailseal.config.model import PARAMS, Config
from mailseal.config.param import Computed, Param
from mailseal.config.params.delivery import DeliveryParams
from mailseal.config.params.identity import IdentityParams
from mailseal.config.params.queue import QueueParams
from mailseal.config.params.smtp import SmtpParams
from mailseal.config.params.smtpd import SmtpdParams
from mailseal.config.params.smtpd_access import SmtpdAccessParams
from mailseal.config.params.system import DEFAULT_CONFIG_DIRECTORY, SystemParams
from mailseal.config.params.tls_client import TlsClientParams
from mailseal.config.params.tls_common import TlsCommonParams
from mailseal.config.params.tls_server import TlsServerParams

FACTS = SystemFacts(hostname="mail.example.com", config_directory="/etc/mailseal")
FAMILIES = (
    TlsServerParams,
    SystemParams,
    IdentityParams,
    DeliveryParams,
    SmtpdParams,
    SmtpdAccessParams,
    SmtpParams,
    TlsClientParams,
    TlsCommonParams,
    QueueParams,
)

# Every parameter that Debian's stock /etc/postfix/main.cf sets and every
# "-o name=value" in its master.cf (commented examples included).
DEBIAN_STOCK_NAMES = (
    "smtpd_banner",
    "biff",
    "append_dot_mydomain",
    "delay_warning_time",
    "readme_directory",
    "compatibility_level",
    "smtpd_relay_restrictions",
    "myhostname",
    "myorigin",
    "alias_maps",
    "alias_database",
    "mydestination",
    "relayhost",
    "mynetworks",
    "mailbox_size_limit",
    "recipient_delimiter",
    "inet_interfaces",
    "inet_protocols",
    "syslog_name",
    "smtpd_tls_security_level",
    "smtpd_sasl_auth_enable",
    "smtpd_tls_auth_only",
    "smtpd_tls_wrappermode",
    "smtpd_reject_unlisted_recipient",
    "smtpd_client_restrictions",
    "smtpd_helo_restrictions",
    "smtpd_sender_restrictions",
    "smtpd_recipient_restrictions",
    "milter_macro_daemon_name",
    "smtp_helo_timeout",
    "smtp_connect_timeout",
    "mailbox_transport",
    "virtual_transport",
)


def config(hostname: str = "mail.example.com", **settings: str) -> Config:
    facts = SystemFacts(hostname=hostname, config_directory="/etc/mailseal")
    return Config({name: Setting(value) for name, value in settings.items()}, facts)


# -- the table itself ------------------------------------------------------------------


def test_families_declare_no_instance_slots() -> None:
    for family in FAMILIES:
        assert family.__dict__["__slots__"] == (), family.__name__


def test_every_parameter_has_a_postfix_style_name() -> None:
    for name, param in PARAMS.items():
        assert re.fullmatch(r"[A-Za-z0-9_]+", name), name
        assert param.name == name


@pytest.mark.parametrize("param", list(PARAMS.values()), ids=lambda param: param.name)
def test_every_parameter_has_a_one_line_doc(param: Param[object]) -> None:
    assert param.doc.strip(), param.name
    assert "\n" not in param.doc
    assert len(param.doc) <= 100


def test_families_cover_the_debian_stock_configuration() -> None:
    missing = [name for name in DEBIAN_STOCK_NAMES if name not in PARAMS]
    assert missing == []


def test_computed_defaults_are_described() -> None:
    for param in PARAMS.values():
        if isinstance(param.default, Computed):
            assert param.default.description.strip(), param.name


# -- defaults ----------------------------------------------------------------------------


def test_every_default_parses_with_its_own_kind() -> None:
    built = Config({}, FACTS)
    for name in PARAMS:
        built.value_of(name)  # built (and parsed) in the constructor; no KeyError


def test_typed_defaults() -> None:
    built = Config({}, FACTS)
    assert built.maximal_queue_lifetime == 5 * 86400
    assert built.bounce_queue_lifetime == 5 * 86400
    assert built.minimal_backoff_time == 300
    assert built.delay_warning_time == 0
    assert built.smtpd_tls_security_level == ""
    assert built.message_size_limit == 10240000
    assert built.mailbox_size_limit == 51200000
    assert built.smtpd_timeout == 300
    assert built.smtpd_hard_error_limit == 20
    assert built.relay_domains == ()
    assert built.transport_maps == ()
    assert built.mynetworks_style == "host"
    assert built.append_dot_mydomain is False
    assert built.smtputf8_enable is True
    assert built.smtpd_relay_restrictions == (
        "permit_mynetworks",
        "permit_sasl_authenticated",
        "defer_unauth_destination",
    )
    assert built.smtpd_banner == "mail.example.com ESMTP mailseal"
    assert built.smtpd_sasl_type == "mailseal"
    assert built.smtpd_forbid_bare_newline == "normalize"
    assert built.smtp_tls_security_level == "may"
    assert built.smtp_tls_dane_insecure_mx_policy == "may"
    assert built.smtp_tls_fingerprint_digest == "sha256"
    assert built.mail_name == "mailseal"
    assert built.syslog_name == "mailseal"
    assert built.compatibility_level == "3.11"
    assert built.queue_directory == "/var/spool/mailseal"
    assert built.data_directory == "/var/lib/mailseal"
    assert built.tls_random_exchange_name == "/var/lib/mailseal/prng_exch"
    assert built.local_recipient_maps == (
        TableRef("proxy", "unix:passwd.byname"),
        TableRef("hash", "/etc/aliases"),
        TableRef("nis", "mail.aliases"),
    )
    assert built.smtpd_client_event_limit_exceptions == built.mynetworks
    assert built.smtp_sasl_tls_verified_security_options == ("noplaintext", "noanonymous")
    assert built.smtp_destination_concurrency_limit == 20


def test_mailseal_directories_follow_the_config_directory() -> None:
    assert DEFAULT_CONFIG_DIRECTORY == "/etc/mailseal"
    other = Config({}, SystemFacts(hostname="mx.example.com", config_directory="/srv/mail"))
    assert other.config_directory == "/srv/mail"
    assert other.meta_directory == "/srv/mail"


def test_old_compatibility_level_restores_old_defaults() -> None:
    old = config(compatibility_level="0")
    assert old.mynetworks_style == "subnet"
    assert old.relay_domains == ("mail.example.com", "localhost.example.com", "localhost")
    assert old.append_dot_mydomain is True
    assert old.smtputf8_enable is False
    assert old.smtpd_relay_restrictions == ()
    assert old.smtp_tls_security_level == ""
    assert old.smtp_tls_fingerprint_digest == "md5"
    assert old.smtpd_relay_before_recipient_restrictions is False


def test_compatibility_level_below_3_11_keeps_client_tls_off() -> None:
    assert config(compatibility_level="3.10").smtp_tls_security_level == ""
    assert config(compatibility_level="3.11").smtp_tls_security_level == "may"
    assert config(compatibility_level="3.12").smtp_tls_security_level == "may"


def test_time_values_without_unit_use_the_parameters_unit() -> None:
    built = config(maximal_queue_lifetime="3", delay_warning_time="4", queue_run_delay="30")
    assert built.maximal_queue_lifetime == 3 * 86400
    assert built.delay_warning_time == 4 * 3600
    assert built.queue_run_delay == 30


def test_dane_level_makes_insecure_mx_policy_dane() -> None:
    assert config(smtp_tls_security_level="dane").smtp_tls_dane_insecure_mx_policy == "dane"


def test_stress_shortens_smtpd_limits() -> None:
    stressed = config(stress="yes")
    assert stressed.smtpd_timeout == 10
    assert stressed.smtpd_hard_error_limit == 1
    assert stressed.smtpd_junk_command_limit == 1


# -- myhostname and mydomain ---------------------------------------------------------------


def test_fully_qualified_hostname() -> None:
    built = Config({}, FACTS)
    assert built.myhostname == "mail.example.com"
    assert built.mydomain == "example.com"
    assert built.myorigin == "mail.example.com"
    assert built.mydestination == ("mail.example.com", "localhost.example.com", "localhost")


def test_short_hostname_gets_localdomain() -> None:
    built = config(hostname="vm")
    assert built.myhostname == "vm.localdomain"
    assert built.mydomain == "localdomain"


def test_hostname_with_one_dot_has_no_domain_of_its_own() -> None:
    built = config(hostname="example.com")
    assert built.myhostname == "example.com"
    assert built.mydomain == "localdomain"


def test_mydomain_follows_an_explicit_myhostname() -> None:
    assert config(hostname="vm", myhostname="mx.example.org").mydomain == "example.org"
    assert config(mydomain="example.net").mydomain == "example.net"


# -- defaults as text ----------------------------------------------------------------------


def text_defaults() -> list[tuple[str, str]]:
    return [
        (name, param.default)
        for name, param in PARAMS.items()
        if isinstance(param.default, str) and not param.raw
    ]


def test_every_reference_in_a_default_is_a_parameter() -> None:
    unknown = {
        name: sorted(references(default) - set(PARAMS))
        for name, default in text_defaults()
        if references(default) - set(PARAMS)
    }
    assert unknown == {}


def test_no_default_points_at_postfix_paths() -> None:
    for name, param in PARAMS.items():
        if isinstance(param.default, str):
            assert "/postfix" not in param.default, name
            assert "/etc/postfix" not in param.default, name


def test_an_invalid_explicit_value_carries_its_location() -> None:
    settings = {"smtpd_tls_loglevel": Setting("x", Location("main.cf", 7))}
    with pytest.raises(ConfigError) as caught:
        Config(settings, FACTS)
    assert caught.value.location == Location("main.cf", 7)
